"""moe-calibrate: router prototypes from prompts, for moe-mix-experts."""

import argparse
import os
import sys
import time

from moe_outputs import StagedOutputs

from .errors import CalibrationError
from .prompts import (PromptSet, check_sets, check_token_sets,
                      check_tokenizer_files, read_prompt_file)

EXAMPLE = """\
example:
  moe-calibrate models/base --prompts math=math.txt --prompts code=code.txt \\
      --negative-prompts code=not-code.txt -o prototypes.safetensors
  moe-opt in.mlir --moe-mix-experts="experts=math,code router=hidden \\
      prototypes=prototypes.safetensors" -o mix.mlir

Prompt files: .txt (one prompt per line), or .json/.yml/.yaml (a list of
strings). Outputs (at least one):
  -o FILE                 [layers, experts, hidden] tensor 'prototypes' of
                          router=hidden (--mode hidden or cheap-embed)
  --router-weights FILE   the normalised rows of router=given (with
                          --shared-expert NAME, that set is the gate of a
                          Qwen2-MoE shared expert)
  --cheap-embed-tokens FILE   the token ids per expert of router=cheap-embed
                          ("5,17;8;9,2")
"""


def _named_files(values, option):
    """[(name, path)] from NAME=FILE values, names unique."""
    pairs = []
    for value in values or []:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise CalibrationError(f"{option} {value}: expected NAME=FILE")
        if any(name == seen for seen, _ in pairs):
            raise CalibrationError(f"{option}: '{name}' given twice")
        pairs.append((name, path))
    return pairs


def _save_safetensors(path, tensors, metadata):
    from safetensors.torch import save_file
    save_file(tensors, path, metadata)


def _progress(kind):
    """A progress(done, total) callback for the layers, and a closer."""
    if kind == "none":
        return None, lambda: None
    if kind == "lines":
        def report(done, total):
            print(f"progress {done}/{total}", file=sys.stderr, flush=True)
        return report, lambda: None
    import tqdm
    bar = tqdm.tqdm(desc="calibrating", unit="layer", file=sys.stderr, leave=False)

    def update(done, total):
        bar.total = total
        bar.n = done
        bar.refresh()
    return update, bar.close


def build_parser():
    parser = argparse.ArgumentParser(
        prog="moe-calibrate",
        description="Runs the base model on each expert's prompts and writes "
                    "the router prototypes that moe-mix-experts reads "
                    "(router=hidden, given or cheap-embed), computed as "
                    "mergekit-moe computes its gates.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="the base model's directory (config.json, "
                        "safetensors, tokenizer)")
    parser.add_argument("--prompts", action="append", metavar="NAME=FILE",
                        required=True, help="an expert's prompts (repeatable, "
                        "in the order of the router's rows)")
    parser.add_argument("--negative-prompts", action="append", metavar="NAME=FILE",
                        help="prompts to route away from expert NAME")
    parser.add_argument("--mode", choices=["hidden", "cheap-embed"], default="hidden",
                        help="hidden: hidden states entering each layer "
                        "(mergekit's gate_mode hidden); cheap-embed: summed "
                        "token embeddings, the same for every layer "
                        "(mergekit's cheap_embed). Default: hidden")
    parser.add_argument("--pooling", choices=["last", "mean", "mean-padded"],
                        default="last",
                        help="over a prompt's positions (--mode hidden): the "
                        "last token (mergekit's hidden), the mean over its "
                        "tokens, or the mean over the padded batch "
                        "(mergekit's hidden_avg). Default: last")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="arithmetic of --mode hidden: float32, or bfloat16 "
                        "as mergekit-moe runs the base. Default: float32")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="the prototypes file (router=hidden)")
    parser.add_argument("--router-weights", metavar="FILE",
                        help="the router rows file (router=given)")
    parser.add_argument("--shared-expert", metavar="NAME",
                        help="with --router-weights: the prompt set that gates "
                        "a shared expert")
    parser.add_argument("--cheap-embed-tokens", metavar="FILE",
                        help="the token ids per expert (router=cheap-embed)")
    parser.add_argument("--progress", choices=["auto", "bar", "lines", "none"],
                        default="auto", help="progress over the layers on "
                        "stderr: a bar, 'progress DONE/TOTAL' lines, none "
                        "(auto: a bar on a terminal)")
    return parser


def run(args):
    # Everything that can be checked without torch is checked before it is
    # imported (seconds): options, files, prompts.
    if not (args.output or args.router_weights or args.cheap_embed_tokens):
        raise CalibrationError("nothing to write: give -o, --router-weights or "
                               "--cheap-embed-tokens")
    if args.shared_expert and not args.router_weights:
        raise CalibrationError("--shared-expert needs --router-weights (the "
                               "shared expert's gate is a router=given tensor)")
    if not os.path.isdir(args.base):
        raise CalibrationError(f"{args.base}: no such model directory")
    positive = _named_files(args.prompts, "--prompts")
    negative = dict(_named_files(args.negative_prompts, "--negative-prompts"))
    names = [name for name, _ in positive]
    for name in negative:
        if name not in names:
            raise CalibrationError(f"--negative-prompts {name}=...: no --prompts "
                                   f"{name}=... to go with it")
    sets = [PromptSet(name, read_prompt_file(path),
                      read_prompt_file(negative[name]) if name in negative else [])
            for name, path in positive]
    check_sets(sets)
    if args.shared_expert and args.shared_expert not in names:
        raise CalibrationError(f"--shared-expert {args.shared_expert}: no prompt set "
                               "of that name")
    if args.cheap_embed_tokens:
        check_token_sets(sets)
    for path in (args.output, args.router_weights, args.cheap_embed_tokens):
        directory = os.path.dirname(os.path.abspath(path)) if path else None
        if directory and not os.path.isdir(directory):
            raise CalibrationError(f"{path}: no directory {directory}")
    check_tokenizer_files(args.base)

    from . import prototypes as compute
    start = time.monotonic()
    metadata = {"mode": args.mode, "pooling": args.pooling, "dtype": args.dtype,
                "experts": ",".join(names), "base": os.path.abspath(args.base)}
    # Token lists first: they are cheap and check the prompts.
    lists = compute.cheap_embed_token_ids(args.base, sets) \
        if args.cheap_embed_tokens else None
    rows = None
    if args.output or args.router_weights:
        if args.mode == "hidden":
            kind = args.progress
            if kind == "auto":
                kind = "bar" if sys.stderr.isatty() else "none"
            progress, close = _progress(kind)
            try:
                rows = compute.hidden_prototypes(args.base, sets, args.pooling,
                                                 args.dtype, progress)
            finally:
                close()
        else:
            rows = compute.cheap_embed_prototypes(args.base, sets)

    with StagedOutputs("moe-calibrate") as outputs:
        if args.output:
            _save_safetensors(outputs.path(args.output), {"prototypes": rows},
                              metadata)
        if args.router_weights:
            tensors = compute.router_rows(
                rows, names, args.shared_expert,
                args.dtype if args.mode == "hidden" else "float32")
            _save_safetensors(
                outputs.path(args.router_weights), tensors,
                dict(metadata, shared_expert=args.shared_expert or ""))
        if lists is not None:
            text = ";".join(",".join(str(i) for i in ids) for ids in lists) + "\n"
            with open(outputs.path(args.cheap_embed_tokens), "w",
                      encoding="utf-8") as f:
                f.write(text)
        outputs.publish()
    written = [path for path in (args.output, args.router_weights,
                                 args.cheap_embed_tokens) if path]

    prompts = sum(len(s.positive) + len(s.negative) for s in sets)
    what = (f"{len(sets)} experts x {rows.shape[0]} layers" if rows is not None
            else f"{len(sets)} experts")
    how = args.mode if rows is not None else "token ids"
    if rows is not None and args.mode == "hidden":
        how += f", {args.pooling} pooling, {args.dtype}"
    print(f"calibrated {what} from {prompts} prompts ({how}) in "
          f"{time.monotonic() - start:.1f} s: {', '.join(written)}")


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except CalibrationError as error:
        print(f"moe-calibrate: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"moe-calibrate: error: {error.filename or ''}: {error.strerror}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("moe-calibrate: interrupted", file=sys.stderr)
        return 130
    return 0
