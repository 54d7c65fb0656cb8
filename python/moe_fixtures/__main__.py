"""Command line: python -m moe_fixtures {make,build,list,malformed,logits}."""

import argparse
import sys

from . import cache, logits, malformed
from .catalog import FIXTURES


def _make(args, parser):
    if args.name not in FIXTURES:
        parser.exit(2, f"{parser.prog} make: error: unknown fixture "
                    f"{args.name!r}; valid names: {', '.join(FIXTURES)}\n")
    cache.materialise(cache.ensure(args.name), args.dest, copy=args.copy)


def _build(args, parser):
    unknown = [name for name in args.names if name not in FIXTURES]
    if unknown:
        parser.exit(2, f"{parser.prog} build: error: unknown fixture "
                    f"{unknown[0]!r}; valid names: {', '.join(FIXTURES)}\n")
    for name in args.names or FIXTURES:
        cache.ensure(name)


def _list(args, parser):
    width = max(map(len, FIXTURES))
    for name, fixture in FIXTURES.items():
        print(f"{name:<{width}}  {fixture.description}")


def _malformed(args, parser):
    malformed.write(args.kind, args.dest)


def _logits(args, parser):
    import numpy
    try:
        ids = logits.parse_ids(args.ids)
    except ValueError as error:
        parser.exit(2, f"{parser.prog} logits: error: --ids: {error}\n")
    numpy.save(args.out, logits.compute(args.model_dir, ids, args.dtype,
                                        args.adapter))


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m moe_fixtures",
        description="Tiny Hugging Face checkpoints and PEFT LoRA adapters, "
        "made locally with fixed seeds by transformers and peft and cached in "
        "$MOE_FIXTURE_CACHE (default $XDG_CACHE_HOME/moe-fixtures or "
        "~/.cache/moe-fixtures), for the moe lit tests.",
        epilog="'python -m moe_fixtures COMMAND --help' describes a command.")
    commands = parser.add_subparsers(dest="command", required=True,
                                     metavar="COMMAND")

    make = commands.add_parser(
        "make", help="materialise a fixture into a new directory",
        description="Builds fixture NAME into the cache unless it is there "
        "(under a lock, so parallel tests are safe), then recreates it at "
        "DEST by hard-linking the cached files, which are read-only: replace "
        "a file instead of writing into it, or use --copy. Prints nothing on "
        "success. 'list' shows the names.")
    make.add_argument("name", metavar="NAME", help="fixture name")
    make.add_argument("dest", metavar="DEST",
                      help="new (or empty) directory; parents are created")
    make.add_argument("--copy", action="store_true",
                      help="copy the files (writable) instead of linking")
    make.set_defaults(run=_make)

    build = commands.add_parser(
        "build", help="fill the cache without materialising anything",
        description="Builds the named fixtures (default: all) into the cache "
        "in one process, paying the torch/transformers import once: a warm-up "
        "before running many tests in parallel.")
    build.add_argument("names", metavar="NAME", nargs="*", help="fixture name")
    build.set_defaults(run=_build)

    listing = commands.add_parser("list", help="list fixture names with "
                                  "one-line descriptions")
    listing.set_defaults(run=_list)

    kinds = "\n".join(f"  {kind:<21} {summary}"
                      for kind, (_, summary) in malformed.KINDS.items())
    bad = commands.add_parser(
        "malformed", help="write a model directory broken in one way",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Writes config.json and safetensors weights of the llama "
        "fixture into DEST, corrupted as KIND says (exact details in the "
        "docstring of moe_fixtures/malformed.py).",
        epilog="kinds:\n" + kinds)
    bad.add_argument("kind", metavar="KIND", choices=malformed.KINDS,
                     help="one of the kinds below")
    bad.add_argument("dest", metavar="DEST",
                     help="new (or empty) directory; parents are created")
    bad.set_defaults(run=_malformed)

    logit = commands.add_parser(
        "logits", help="save reference logits computed by transformers",
        description="Loads MODEL_DIR with AutoModelForCausalLM.from_pretrained "
        "(eager attention, no remote code), runs the batch of token ids and "
        "saves the logits, float32 [batch, sequence, vocab], as .npy.")
    logit.add_argument("model_dir", metavar="MODEL_DIR")
    logit.add_argument("out", metavar="OUT.npy")
    logit.add_argument("--ids", required=True, metavar="ROWS",
                       help='token ids, rows separated by ";" and ids by ",", '
                       'e.g. "1,2,3;4,5,6" (rows of equal length)')
    logit.add_argument("--dtype", choices=logits.DTYPES,
                       default="float32",
                       help="dtype the weights are loaded in (default float32)")
    logit.add_argument("--adapter", metavar="ADAPTER_DIR",
                       help="apply this PEFT adapter to MODEL_DIR first")
    logit.set_defaults(run=_logits)
    return parser


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        args.run(args, parser)
    except cache.FixtureError as error:
        parser.exit(1, f"{parser.prog}: error: {error}\n")


if __name__ == "__main__":
    sys.exit(main())
