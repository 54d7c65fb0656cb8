"""moe-eval: per-domain perplexity and routing statistics of models.

Example:

    moe-eval base=models/base code=models/code mix=models/mix-moe \\
        onnx=mix.onnx --tokenizer models/base \\
        --data code=held-out/code.txt --data legal=held-out/legal.txt \\
        --context 512 --stride 256 --json results.json \\
        --plot-perplexity ppl.png --plot-routing routing.png

A model is NAME=PATH (or PATH): a Hugging Face checkpoint directory, dense
or MoE (transformers, no remote code), a PEFT adapter directory (on the base
its adapter_config.json names, or --adapter-base), or an ONNX export of
ours (ONNX Runtime; its tokenizer from --tokenizer). Each domain's files are
tokenised without special tokens and scored on fixed windows: windows of
--context tokens start every --stride tokens, and each scores the tokens
that no earlier window scored (not its own first token). The perplexity of
a domain is exp(total NLL / scored tokens) over all its files; `mean` is
the arithmetic mean of the domains' perplexities. For MoE checkpoints
(Mixtral, Qwen2-MoE, GraniteMoE layouts) the routing of the scored tokens
is recorded per domain and routed layer: each expert's share of the top-k
choices, the mean router probability, the routing entropy (nats, and
divided by log E) and the load of the busiest expert over the mean load.
Prints a table; --json writes everything, --plot-* write PNGs.
"""

import argparse
import json
import os
import sys
import time

from moe_outputs import StagedOutputs
from moe_text import TextError, load_domains
from moe_text.corpus import tokenize_domains

from moe_train.common import FAMILIES, resolve_device

from .models import ModelError, check_model_path, load_model, parse_model_spec


def _arguments(argv):
    parser = argparse.ArgumentParser(
        prog="moe-eval", description=__doc__.splitlines()[0],
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="NAME=PATH or PATH (checkpoint dir, adapter dir, .onnx)")
    parser.add_argument("--data", action="append", default=[], required=True,
                        metavar="NAME=FILE[,FILE...]",
                        help="held-out text of a domain (repeatable)")
    parser.add_argument("--context", type=int, default=512,
                        help="tokens per window (default 512)")
    parser.add_argument("--stride", type=int, default=256,
                        help="tokens between window starts (default 256)")
    parser.add_argument("--max-tokens", type=int,
                        help="score at most this many tokens per domain")
    parser.add_argument("--batch-size", type=int, default=4,
                        help="windows per forward pass (default 4)")
    parser.add_argument("--tokenizer", metavar="DIR",
                        help="tokenizer of the ONNX models (a model directory)")
    parser.add_argument("--adapter-base", metavar="DIR",
                        help="base model of the PEFT adapters")
    parser.add_argument("--device", default="auto",
                        help="cpu, cuda, cuda:N or auto (default: cuda if present)")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"),
                        default="float32", help="weights of Hugging Face models")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--plot-perplexity", metavar="FILE.png",
                        help="bar chart of per-domain perplexity")
    parser.add_argument("--plot-routing", metavar="FILE.png",
                        help="heatmaps of expert usage by domain and layer")
    parser.add_argument("--expert-names", metavar="A,B,...",
                        help="labels of the experts in the routing plot")
    args = parser.parse_intermixed_args(argv)
    for option in ("context", "stride", "batch_size", "max_tokens"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")
    if args.context < 2:
        parser.error("--context must be at least 2")
    if args.stride > args.context:
        parser.error("--stride cannot exceed --context (tokens would be skipped)")
    return args


def _check_output(path):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ModelError(f"{path}: directory {directory} does not exist")


def _write_all(writers):
    """Calls each write(temporary path) for its (path, write) pair, then
    renames all onto their paths: never a partial output."""
    with StagedOutputs("moe-eval") as outputs:
        for path, write in writers:
            write(outputs.path(path))
        outputs.publish()


def _is_moe(path, kind):
    """Whether a checkpoint directory holds an MoE layout (from config.json)."""
    if kind != "hf":
        return False
    try:
        with open(os.path.join(path, "config.json")) as f:
            return json.load(f).get("model_type") in FAMILIES
    except (OSError, ValueError, AttributeError):
        return False


def _device(name):
    try:
        return resolve_device(name)
    except ValueError as error:
        raise ModelError(str(error)) from None


def _table(report):
    domains = report["domains"]
    names = [m["name"] for m in report["models"]]
    width = max(8, *map(len, names))
    columns = domains + ["mean"]
    widths = [max(9, len(c)) for c in columns]
    lines = [f"{'model':<{width}}  " + "  ".join(
        f"{c:>{w}}" for c, w in zip(columns, widths))]
    for model in report["models"]:
        values = [model["perplexity"][d] for d in domains] + [model["mean_perplexity"]]
        lines.append(f"{model['name']:<{width}}  " + "  ".join(
            f"{v:>{w}.3f}" for v, w in zip(values, widths)))
    tokens = ", ".join(f"{d} {report['models'][0]['tokens'][d]}" for d in domains)
    lines.append(f"perplexity (context {report['settings']['context']}, "
                 f"stride {report['settings']['stride']}); scored tokens: {tokens}")
    for model in report["models"]:
        if not model.get("routing"):
            continue
        lines.append(f"routing of {model['name']} ({model['experts']} experts, "
                     f"top {model['top_k']}): share of choices per expert, "
                     "mean over layers; normalised entropy; max/mean load")
        for domain in domains:
            layers = model["routing"][domain]
            experts = len(layers[0]["expert_share"])
            share = [sum(entry["expert_share"][e] for entry in layers) / len(layers)
                     for e in range(experts)]
            entropy = sum(e["normalized_entropy"] for e in layers) / len(layers)
            load = max(e["max_over_mean_load"] for e in layers)
            lines.append(f"  {domain:<{width}} [" + " ".join(f"{s:.2f}" for s in share)
                         + f"]  entropy {entropy:.2f}  max load {load:.2f}")
    return "\n".join(lines)


def run(args):
    from tqdm import tqdm

    domains = load_domains(args.data)
    specs = [parse_model_spec(spec) for spec in args.models]
    names = [name for name, _ in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ModelError(f"model name(s) given twice: {', '.join(duplicates)} "
                         "(use NAME=PATH)")
    kinds = [check_model_path(path) for _, path in specs]
    if "onnx" in kinds and args.tokenizer is None:
        onnx = specs[kinds.index("onnx")][1]
        raise ModelError(f"{onnx}: an ONNX model carries no tokenizer: give "
                         "--tokenizer DIR (the base model's directory)")
    for path in (args.json, args.plot_perplexity, args.plot_routing):
        if path:
            _check_output(path)
    if args.plot_routing and not any(_is_moe(path, kind)
                                     for (_, path), kind in zip(specs, kinds)):
        raise ModelError("--plot-routing: none of the models is a Hugging Face "
                         "MoE checkpoint (" + ", ".join(FAMILIES) + ")")
    device = _device(args.device)

    report = {
        "settings": {"context": args.context, "stride": args.stride,
                     "max_tokens": args.max_tokens, "batch_size": args.batch_size,
                     "device": device, "dtype": args.dtype},
        "domains": [d.name for d in domains],
        "files": {d.name: d.files for d in domains},
        "models": [],
    }
    tokenized = {}   # tokenizer directory -> {domain: [ids per file]}
    for (name, path), kind in zip(specs, kinds):
        started = time.perf_counter()
        model = load_model(name, path, kind, device, args.dtype,
                           args.tokenizer, args.adapter_base)
        key = os.path.realpath(model.tokenizer_dir)
        if key not in tokenized:
            tokenized[key] = tokenize_domains(model.tokenizer, domains)
        domain_tokens = tokenized[key]
        total = sum(min(sum(len(ids) - 1 for ids in files),
                        args.max_tokens or float("inf"))
                    for files in domain_tokens.values())
        with tqdm(total=total, desc=name, unit="tok", leave=False,
                  disable=not sys.stderr.isatty()) as bar:
            from .evaluate import evaluate, routing_layout
            results = evaluate(model, domain_tokens, args.context, args.stride,
                               args.max_tokens, args.batch_size, bar.update)
        layout = routing_layout(model)
        entry = {
            "name": name, "path": path, "kind": kind,
            "architecture": model.architecture,
            "experts": layout[0] if layout else None,
            "top_k": layout[1] if layout else None,
            "tokens": {d: r.tokens for d, r in results.items()},
            "nll": {d: r.nll for d, r in results.items()},
            "perplexity": {d: r.perplexity for d, r in results.items()},
            "routing": ({d: [layer.summary() for layer in r.routing]
                         for d, r in results.items()} if layout else None),
            "seconds": round(time.perf_counter() - started, 2),
        }
        entry["mean_perplexity"] = sum(entry["perplexity"].values()) / len(results)
        report["models"].append(entry)
        del model
    counts = {d: {m["tokens"][d] for m in report["models"]} for d in report["domains"]}
    differing = [d for d, c in counts.items() if len(c) > 1]
    if differing:
        print(f"warning: the models' tokenizers split {', '.join(differing)} "
              "into different numbers of tokens: per-token perplexities are "
              "not comparable across them", file=sys.stderr)

    print(_table(report))
    # Every output under a temporary name first, renamed once all exist.
    writers = []
    if args.json:
        def write_json(temporary):
            with open(temporary, "w") as f:
                json.dump(report, f, indent=1)
                f.write("\n")
        writers.append((args.json, write_json))
    if args.plot_perplexity or args.plot_routing:
        from . import plots
        if args.plot_perplexity:
            writers.append((args.plot_perplexity,
                            lambda t: plots.perplexity_bars(report, t)))
        if args.plot_routing:
            expert_names = args.expert_names.split(",") if args.expert_names else None
            writers.append((args.plot_routing,
                            lambda t: plots.routing_heatmaps(report, t, expert_names)))
    _write_all(writers)
    return report


def main(argv=None):
    args = _arguments(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        run(args)
    except (TextError, ModelError) as error:
        print(f"moe-eval: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("moe-eval: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
