"""Several moe_reference runs in one process (one torch import), for lit tests.

    python -m moe_testing.mix_refs [--command logits|adapters-logits|...] \\
        --common "--base DIR --expert math=DIR --ids 1,2;3,4" \\
        OUT.npy="--router noisy --k 2" OUT2.npy="--router gateless" ...

Each OUT=ARGS runs `python -m moe_reference COMMAND COMMON ARGS --out OUT`
(arguments split like a shell would), in order; the first failure stops
the run with its status.
"""

import argparse
import shlex
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--command", default="logits",
                        choices=("logits", "adapters-logits", "router-weights",
                                 "adapters-router-weights"))
    parser.add_argument("--common", default="")
    parser.add_argument("runs", nargs="+", metavar="OUT=ARGS")
    args = parser.parse_args(argv)
    from moe_reference.__main__ import main as reference
    for run in args.runs:
        out, _, extra = run.partition("=")
        argv = ([args.command] + shlex.split(args.common) + shlex.split(extra)
                + ["--out", out])
        status = reference(argv)
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
