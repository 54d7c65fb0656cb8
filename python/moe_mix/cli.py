"""moe-mix: a mergekit-moe YAML config to a mixed model, in one command."""

import argparse
import signal
import sys
import time

from . import config as config_module
from . import models, tools
from .display import Display
from .pipeline import Pipeline
from .staging import StagedOutput
from .yaml_source import ConfigError

EXAMPLE = """\
example (a mergekit-moe config, unchanged):
  base_model: models/base
  gate_mode: hidden
  dtype: bfloat16
  experts:
    - source_model: models/math
      positive_prompts: ["Solve for x: 3x + 5 = 20"]
    - source_model: models/code
      positive_prompts: ["def fibonacci(n):"]

  moe-mix mix.yml out/mix-moe        # out/mix-moe: a Mixtral checkpoint

Relative model paths are read from the current directory, as mergekit-moe
reads them. Our extensions (gate-less and other routers, always-on experts,
layer subsets, LoRA adapters, SVD, ONNX/MLIR/GPU outputs) are documented in
docs/mix-config.md. OUT appears complete or not at all.
"""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="moe-mix",
        description="Builds a Mixture-of-Experts model from a mergekit-moe YAML "
                    "config: import, calibration of the routers on the "
                    "prompts, mixing and every output, with the moe tools.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="the YAML config (mergekit-moe's schema "
                        "and ours)")
    parser.add_argument("out", help="the output directory (created)")
    parser.add_argument("--force", action="store_true",
                        help="replace OUT if it exists")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the summary (and errors)")
    parser.add_argument("--i-understand-this-is-not-useful-without-training",
                        dest="allow_all_same", action="store_true",
                        help="allow every expert to be the same model (as "
                        "mergekit-moe's flag of that name)")
    return parser


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run(args, display):
    start = time.monotonic()
    config = config_module.parse(args.config, allow_all_same=args.allow_all_same)
    for warning in config.warnings:
        display.note(f"moe-mix: warning: {warning}")
    models.check_models(config)
    found = tools.find_tools()
    with StagedOutput(args.out, args.force) as staged:
        pipeline = Pipeline(config, staged, display, found)
        try:
            pipeline.run()
        except tools.ToolError as error:
            raise ConfigError(f"{error.step} failed:\n" + _indent(
                models.locate_names(config, pipeline.clean(error.output)))) from None
        parameters = pipeline.parameters()
        staged.publish()
    print(_summary(args.out, config, pipeline, parameters, time.monotonic() - start))


def _count(number):
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if number >= size:
            return f"{number / size:.3g} {unit}"
    return str(number)


def _indent(text):
    return "\n".join("  " + line for line in text.strip().splitlines())


def _summary(out, config, pipeline, parameters, seconds):
    if config.kind == "experts":
        what = f"{len(config.experts)} experts"
        if config.shared:
            what += " + " + ("an always-on" if config.shared.always_on
                             else "a gated shared") + " expert"
        what += f", {config.gate_mode} router"
        if config.gate_mode != "gateless":
            what += f", top {config.experts_per_token}"
        if pipeline.prompt_count:
            what += f" from {pipeline.prompt_count} prompts"
    else:
        count = len(config.adapters) + (len(config.experts) if config.decompose else 0)
        what = f"a mixture of {count} LoRA adapters"
    if parameters:
        what += f"; {_count(parameters['total'])} parameters, " \
                f"{_count(parameters['active'])} active"
    return f"moe-mix: {out}: {what}; {', '.join(pipeline.summaries)} in {seconds:.1f} s"


def main(argv=None):
    args = build_parser().parse_args(argv)
    display = Display(quiet=args.quiet)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        run(args, display)
    except ConfigError as error:
        print(f"moe-mix: error: {error}", file=sys.stderr)
        print(f"moe-mix: nothing was written to {args.out}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"moe-mix: error: {error.filename or ''}: {error.strerror}",
              file=sys.stderr)
        print(f"moe-mix: nothing was written to {args.out}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nmoe-mix: interrupted; nothing was written to {args.out}",
              file=sys.stderr)
        return 130
    return 0
