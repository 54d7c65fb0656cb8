"""moe-train-router: trains the routers of an exported MoE mix on domain text.

Example:

    moe-translate --import-hf models/base --expert=code=models/code \\
        --expert=legal=models/legal -o in.mlir
    moe-opt in.mlir --moe-mix-experts="router=noisy k=2" -o mix.mlir
    moe-translate --export-hf mix.mlir -o mix-hf
    moe-train-router mix-hf --data code=code.txt --data legal=legal.txt \\
        --proportions code=1,legal=1 --steps 200 --router-out routers.safetensors
    moe-opt in.mlir --moe-mix-experts="router=given k=2 \\
        router-weights=routers.safetensors" -o trained.mlir   # to every output

MIX is a Hugging Face checkpoint that `moe-translate --export-hf` wrote
(MixtralForCausalLM, Qwen2MoeForCausalLM or GraniteMoeForCausalLM; loaded
by transformers, no remote code). Every step draws --batch-size sequences
of --seq-len tokens: each picks a domain with the --proportions and a random
place in that domain's text (its files joined, EOS between them), from
(--seed, step) alone, so a resumed run sees the same batches. The loss is
the language-model loss plus --aux-loss-coef times the Mixtral/Switch
load-balancing loss over the trained routers, with the architecture's own
top-k routing. Only the routers train unless --train adds
shared-expert-gate, experts or attention (AdamW, --lr after
--warmup-steps of linear warm-up, gradients clipped to --max-grad-norm).
Layers whose experts are all identical (the dense layers of a layer-subset
mix) keep their router and are not written.

--init base-init starts from `router=base-init`: zero router weights plus a
trainable bias of 0 for expert 0 and -margin for the others, so every token
goes to expert 0 at first (with k >= 2 the others get weights of about
e^-margin). No Hugging Face MoE config holds a router bias: such routers
are written only to --router-out (as gate.bias), for the ONNX export and
moe-run. The compiler's base-init uses a margin of 30, where the other
experts' probabilities are ~1e-13 and their gradients vanish, so nothing
learns: the default margin, 4, starts near the base and still trains.

Outputs: --router-out, the safetensors file that `router=given` reads
(model.layers.{l}.block_sparse_moe.gate.weight [E, H] per trained layer,
gate.bias with base-init, mlp.shared_expert_gate.weight [1, H] for
Qwen2-MoE); --hf-out, the updated checkpoint (needed when experts or
attention train); --stats-out, losses and expert load as JSON. Outputs are
written whole or not at all; existing ones are kept unless --force.
"""

import argparse
import json
import os
import sys

from moe_outputs import StagedOutputs
from moe_text import MixedBatches, TextError, load_domains, parse_proportions
from moe_text.corpus import tokenize_domains

from .common import (GIVEN_BIAS, GIVEN_SHARED_GATE, GIVEN_WEIGHT, PARTS,
                     NoRouters, TrainError, resolve_device)


def _parts(text):
    parts = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [part for part in parts if part not in PARTS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown part(s) {', '.join(unknown)} (choose from {', '.join(PARTS)})")
    if "router" not in parts:
        raise argparse.ArgumentTypeError("the routers always train: include 'router'")
    return parts


def _arguments(argv):
    parser = argparse.ArgumentParser(
        prog="moe-train-router", description=__doc__.splitlines()[0],
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mix", metavar="MIX", help="Hugging Face MoE checkpoint directory")
    parser.add_argument("--data", action="append", default=[], required=True,
                        metavar="NAME=FILE[,FILE...]", help="training text of a domain (repeatable)")
    parser.add_argument("--proportions", metavar="NAME=W,...",
                        help="domain weights (default: equal)")
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps (default 100)")
    parser.add_argument("--batch-size", type=int, default=4, help="sequences per step (default 4)")
    parser.add_argument("--seq-len", type=int, default=256, help="tokens per sequence (default 256)")
    parser.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default 1e-3)")
    parser.add_argument("--warmup-steps", type=int, default=0, help="linear warm-up steps")
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--max-grad-norm", type=float, default=1.0,
                        help="gradient clipping (0: none; default 1)")
    parser.add_argument("--aux-loss-coef", type=float, default=0.01,
                        help="weight of the load-balancing loss (default 0.01)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the batches")
    parser.add_argument("--train", type=_parts, default=("router",), metavar="PARTS",
                        help="router[,shared-expert-gate][,experts][,attention]")
    parser.add_argument("--init", choices=("checkpoint", "base-init"), default="checkpoint",
                        help="routers as loaded, or base-init (zero weight + bias)")
    parser.add_argument("--base-init-margin", type=float, default=4.0,
                        help="bias of experts 1.. below expert 0 with base-init (default 4)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="compute dtype (bfloat16: autocast, float32 master weights)")
    parser.add_argument("--checkpoint-dir", metavar="DIR", help="save the training state here")
    parser.add_argument("--save-every", type=int, default=50, help="steps between saves")
    parser.add_argument("--resume", action="store_true",
                        help="continue from --checkpoint-dir if it holds a state")
    parser.add_argument("--log-every", type=int, default=10,
                        help="steps between progress lines when not on a terminal")
    parser.add_argument("--router-out", metavar="FILE.safetensors",
                        help="router weights for router=given")
    parser.add_argument("--hf-out", metavar="DIR", help="the updated Hugging Face checkpoint")
    parser.add_argument("--stats-out", metavar="FILE.json", help="losses and expert load")
    parser.add_argument("--force", action="store_true", help="replace existing outputs")
    args = parser.parse_args(argv)
    for option in ("steps", "batch_size", "seq_len", "save_every", "log_every"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")
    if args.warmup_steps < 0 or args.lr <= 0 or args.aux_loss_coef < 0 \
            or args.base_init_margin < 0 or args.max_grad_norm < 0:
        parser.error("--lr must be positive; --warmup-steps, --aux-loss-coef, "
                     "--max-grad-norm and --base-init-margin non-negative")
    if not (args.router_out or args.hf_out):
        parser.error("nothing to write: give --router-out and/or --hf-out")
    if args.resume and not args.checkpoint_dir:
        parser.error("--resume needs --checkpoint-dir")
    return args


def _check_outputs(args):
    """Fails before any work on outputs that cannot or must not be written."""
    if args.init == "base-init" and args.hf_out:
        raise TrainError("--hf-out with --init base-init: base-init routers have "
                         "a bias, which no Mixtral, Qwen2-MoE or GraniteMoE "
                         "config can hold; write --router-out (router=given "
                         "carries it to the ONNX export and moe-run)")
    if ("experts" in args.train or "attention" in args.train) and not args.hf_out:
        raise TrainError("--train with experts or attention changes more than "
                         "the routers: give --hf-out (a router file cannot hold "
                         "those weights)")
    for path in (args.router_out, args.hf_out, args.stats_out):
        if not path:
            continue
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise TrainError(f"{path}: directory {parent} does not exist")
        if os.path.lexists(path) and not args.force:
            raise TrainError(f"{path}: exists (use --force to replace it)")


def _device(name):
    try:
        return resolve_device(name)
    except ValueError as error:
        raise TrainError(str(error)) from None


def _load(mix):
    import torch
    import transformers
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    if not os.path.isfile(os.path.join(mix, "config.json")):
        raise TrainError(f"{mix}: no config.json (not a Hugging Face checkpoint)")
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            mix, dtype=torch.float32, trust_remote_code=False)
        tokenizer = transformers.AutoTokenizer.from_pretrained(mix)
    except Exception as error:  # transformers raises many kinds
        raise TrainError(f"{mix}: cannot be loaded by transformers: "
                         f"{str(error).splitlines()[0]}") from None
    with open(os.path.join(mix, "config.json")) as f:
        config = json.load(f)
    stored_dtype = config.get("dtype") or config.get("torch_dtype")
    return model, tokenizer, stored_dtype


def _write_routers(path, trained, source, steps):
    """The router=given file: f32 Mixtral-named tensors per trained layer."""
    from safetensors.torch import save_file
    tensors = {}
    for site in trained:
        tensors[GIVEN_WEIGHT.format(site.layer)] = site.router.weight.detach().float().cpu().contiguous()
        if getattr(site.router, "bias", None) is not None:
            tensors[GIVEN_BIAS.format(site.layer)] = site.router.bias.detach().float().cpu().contiguous()
        if site.shared_gate is not None:
            tensors[GIVEN_SHARED_GATE.format(site.layer)] = \
                site.shared_gate.weight.detach().float().cpu().contiguous()
    save_file(tensors, path, metadata={
        "format": "pt", "producer": "moe-train-router",
        "source": os.path.abspath(source), "steps": str(steps),
        "layers": ",".join(str(s.layer) for s in trained)})


def _write_checkpoint(path, model, tokenizer, stored_dtype):
    """The whole updated model, in the mix's stored dtype."""
    import torch
    if stored_dtype in ("bfloat16", "float16"):
        model.to(getattr(torch, stored_dtype))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)


def _load_summary(load, names, trained):
    """{all: {layer: share}, by_domain: {d: {layer: share}}} of a [steps,
    domains, layers, E] count array."""
    def shares(counts):
        total = counts.sum(-1, keepdims=True).clip(min=1)
        return {str(site.layer): (counts[i] / total[i]).round(6).tolist()
                for i, site in enumerate(trained)}
    return {"all": shares(load.sum((0, 1))),
            "by_domain": {name: shares(load[:, d].sum(0)) for d, name in enumerate(names)}}


def _stats(args, model, layout, domains, proportions, batches, record):
    """The --stats-out record: settings, losses, expert load per domain."""
    names = [d.name for d in domains]
    trained = record["trained"]
    last = max(1, args.steps // 10)
    return {
        "mix": os.path.abspath(args.mix), "architecture": type(model).__name__,
        "experts": layout.experts, "top_k": layout.top_k,
        "trained_layers": [s.layer for s in trained],
        "identical_expert_layers": [s.layer for s in record["dense"]],
        "train": list(args.train), "init": args.init,
        "device": record["device"], "dtype": args.dtype,
        "settings": {k: v for k, v in vars(args).items()
                     if k not in ("data", "force", "resume")},
        "domains": {d.name: {"files": d.files, "proportion": float(p),
                             "tokens": batches.tokens(d.name)}
                    for d, p in zip(domains, proportions)},
        "tokens": args.steps * args.batch_size * args.seq_len,
        "seconds_this_run": round(record["seconds"], 2),
        "tokens_per_second_this_run": round(record["tokens_per_second"], 1),
        "losses": record["losses"],
        "expert_load": _load_summary(record["load"], names, trained),
        "expert_load_last_steps": {
            "steps": last, **_load_summary(record["load"][-last:], names, trained)},
    }


def run(args):
    import numpy as np

    _check_outputs(args)
    domains = load_domains(args.data)
    proportions = parse_proportions(args.proportions, domains)
    # torch and transformers only once the cheap checks passed.
    from .routers import moe_layout
    from .trainer import Checkpoints, Settings, fingerprint, train

    device = _device(args.device)
    model, tokenizer, stored_dtype = _load(args.mix)
    layout = moe_layout(model, args.mix)
    if "shared-expert-gate" in args.train and layout.sites[0].shared_gate is None:
        raise TrainError(f"--train shared-expert-gate: {args.mix} "
                         f"({type(model).__name__}) has no shared expert gate")
    if layout.top_k == 1 and layout.renormalize:
        print("moe-train-router: warning: top-1 routing with renormalised "
              "weights gives every chosen expert weight 1, so the language-model "
              "loss gives the routers no gradient; only the balance loss "
              "(--aux-loss-coef) trains them", file=sys.stderr)
    tokens = tokenize_domains(tokenizer, domains)
    batches = MixedBatches(tokens, proportions, args.seq_len, args.batch_size,
                           args.seed, separator=tokenizer.eos_token_id)
    settings = Settings(
        steps=args.steps, batch_size=args.batch_size, seq_len=args.seq_len,
        lr=args.lr, warmup_steps=args.warmup_steps, weight_decay=args.weight_decay,
        max_grad_norm=args.max_grad_norm, aux_loss_coef=args.aux_loss_coef,
        seed=args.seed, parts=args.train, init=args.init,
        base_init_margin=args.base_init_margin,
        autocast_bf16=args.dtype == "bfloat16", log_every=args.log_every,
        save_every=args.save_every)
    checkpoints = Checkpoints(args.checkpoint_dir)
    expected = fingerprint(args.mix, domains, settings)
    resume_state = checkpoints.load(expected) if args.resume else None
    if args.checkpoint_dir and not args.resume and os.path.exists(checkpoints.path):
        raise TrainError(f"{checkpoints.path}: a saved state exists: add --resume "
                         "to continue it, or remove it")

    if resume_state is not None:
        print(f"resuming from step {resume_state['step']} of {checkpoints.path}")
    record = train(model, layout, batches, settings, device, checkpoints,
                   resume_state, expected)
    record["device"] = device
    trained, dense = record["trained"], record["dense"]

    with StagedOutputs("moe-train", replace_directories=args.force) as staging:
        if args.router_out:
            _write_routers(staging.path(args.router_out), trained, args.mix, args.steps)
        if args.stats_out:
            with open(staging.path(args.stats_out), "w") as f:
                json.dump(_stats(args, model, layout, domains, proportions, batches,
                                 record), f, indent=1)
                f.write("\n")
        if args.hf_out:
            _write_checkpoint(staging.path(args.hf_out, directory=True), model,
                              tokenizer, stored_dtype)
        staging.publish()

    losses = record["losses"]
    span = max(1, min(10, len(losses) // 4))
    first = np.mean([entry["loss"] for entry in losses[:span]])
    final = np.mean([entry["loss"] for entry in losses[-span:]])
    share = record["load"].sum((0, 1, 2))
    share = share / max(share.sum(), 1)
    print(f"trained the routers of {len(trained)} layer(s) of {args.mix} "
          f"({type(model).__name__}, {layout.experts} experts, top {layout.top_k}) "
          f"for {args.steps} steps of {args.batch_size}x{args.seq_len} tokens on "
          f"{device} ({record['tokens_per_second']:.0f} tokens/s): loss "
          f"{first:.4f} -> {final:.4f} (mean of the first and last {span} steps); "
          "expert load " + " ".join(f"{s:.2f}" for s in share))
    if dense:
        print(f"left as they are: layer(s) {', '.join(str(s.layer) for s in dense)} "
              "(identical experts)")
    for path in (args.router_out, args.hf_out, args.stats_out):
        if path:
            print(f"wrote {path}")


def main(argv=None):
    args = _arguments(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        run(args)
    except (TextError, TrainError, NoRouters) as error:
        print(f"moe-train-router: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("moe-train-router: interrupted (the last checkpoint, if any, "
              "can be resumed)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
