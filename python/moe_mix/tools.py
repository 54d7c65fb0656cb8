"""The moe command-line tools, found and run as subprocesses.

moe-mix never mixes anything itself: `moe-translate` imports and exports,
`moe-opt` mixes, and `moe-calibrate` runs the base on the prompts. The C++
tools are found in `$MOE_BIN`, else in the build tree of this checkout
(`build/bin`).
"""

import os
import subprocess
import sys
import threading

from .yaml_source import ConfigError

_CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = ("moe-translate", "moe-opt")


class ToolError(Exception):
    """A tool exited with an error; `output` is what it printed on stderr."""

    def __init__(self, step, output):
        super().__init__(step)
        self.step = step
        self.output = output


def find_tools():
    """{tool name: executable path}; ConfigError naming what is missing."""
    directory = os.environ.get("MOE_BIN") or os.path.join(_CHECKOUT, "build", "bin")
    found = {}
    for tool in TOOLS:
        path = os.path.join(directory, tool)
        if not os.access(path, os.X_OK):
            origin = "$MOE_BIN" if os.environ.get("MOE_BIN") else "the build tree"
            raise ConfigError(
                f"{tool} not found in {directory} ({origin}): build the moe tools "
                "(scripts/setup.sh) or set MOE_BIN to the directory that holds "
                "moe-translate and moe-opt")
        found[tool] = path
    found["moe-calibrate"] = [sys.executable, "-m", "moe_calibrate"]
    return found


def run(command, step, on_stderr_line=None):
    """Runs `command` (a list), stdin closed; returns (stdout, stderr). Each
    stderr line is passed to `on_stderr_line` as it comes (progress); a
    non-zero exit raises ToolError with the stderr text."""
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, errors="replace")
    stdout_lines, stderr_lines = [], []

    def read_stdout():
        for line in process.stdout:
            stdout_lines.append(line)

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    try:
        for line in process.stderr:
            if on_stderr_line is None or not on_stderr_line(line):
                stderr_lines.append(line)
        process.wait()
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM): the tool goes too.
        process.kill()
        process.wait()
        raise
    reader.join()
    stderr = "".join(stderr_lines)
    if process.returncode != 0:
        raise ToolError(step, stderr or f"exit status {process.returncode}\n")
    return "".join(stdout_lines), stderr
