"""What `/usr/bin/time -v -o FILE` reports, for the benchmarks that time
whole commands."""

import re


def read_gnu_time(path):
    """(wall seconds, peak RSS of the largest process in KiB) from the
    report `/usr/bin/time -v -o path` wrote."""
    text = open(path).read()
    elapsed = re.search(r"Elapsed \(wall clock\) time .*: (.*)", text).group(1)
    seconds = 0.0
    for part in elapsed.split(":"):   # [h:]mm:ss.ss
        seconds = seconds * 60 + float(part)
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)",
                         text).group(1))
    return seconds, peak
