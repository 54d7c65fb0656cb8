"""Recomputes moe-eval's numbers directly, for lit tests.

    python -m moe_testing.perplexity EVAL.json --model NAME=DIR[@ADAPTER] ... \\
        --data NAME=FILE ... --context C --stride S [--max-tokens N] \\
        [--tolerance 1e-5]

For every model entry of EVAL.json named by --model (an ONNX entry is
given the Hugging Face checkpoint it was exported from), and every domain:
tokenises each file with the model's tokenizer (no special tokens), then
for every token i decides from the documented rule alone which window
scores it (window j starts at j*S and holds tokens j*S .. j*S+C-1; token i
goes to the first window holding it at a position >= 1, and is not scored
if that window starts at i), runs the model on exactly that window's
tokens up to i (one forward per token, float32, eager attention) and takes
-log p(token i). Perplexity = exp(mean over the scored tokens), --max-tokens
keeping the first ones. For MoE checkpoints it also recomputes, from
transformers' own `output_router_logits`, each routed layer's share of
top-k choices and mean routing entropy over the tokens whose predictions
are scored (ONNX entries carry no routing). Fails unless every number agrees with EVAL.json to --tolerance
(relative for perplexities, absolute for shares and entropies).
"""

import argparse
import json
import math
import sys

import numpy as np


def _scoring_window(i, context, stride):
    """Start of the window that scores token i, or None."""
    j = max(0, -(-(i - context + 1) // stride))
    start = j * stride
    return start if start <= i - 1 else None


def _load(spec):
    import torch
    import transformers
    transformers.logging.set_verbosity_error()
    directory, _, adapter = spec.partition("@")
    model = transformers.AutoModelForCausalLM.from_pretrained(
        directory, dtype=torch.float32, attn_implementation="eager")
    if adapter:
        import peft
        model = peft.PeftModel.from_pretrained(model, adapter)
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    return model.eval(), tokenizer


def _recompute(model, tokenizer, files, args):
    import torch
    moe = getattr(model.config, "model_type", "") in ("mixtral", "qwen2_moe", "granitemoe")
    top_k = getattr(model.config, "num_experts_per_tok", None)
    nll, scored = 0.0, 0
    counts, entropy = {}, {}
    for path in files:
        with open(path, encoding="utf-8") as f:
            ids = tokenizer(f.read(), add_special_tokens=False)["input_ids"]
        for i in range(1, len(ids)):
            if args.max_tokens is not None and scored >= args.max_tokens:
                break
            start = _scoring_window(i, args.context, args.stride)
            if start is None:
                continue
            window = torch.tensor([ids[start:i + 1]])
            with torch.no_grad():
                output = model(input_ids=window, output_router_logits=moe)
            log_probs = torch.log_softmax(output.logits[0, -2].double(), dim=-1)
            nll -= float(log_probs[ids[i]])
            scored += 1
            if moe:
                for layer, logits in enumerate(output.router_logits):
                    probabilities = torch.softmax(logits[-2].double(), dim=-1)
                    chosen = torch.topk(probabilities, top_k).indices
                    counts.setdefault(layer, np.zeros(len(probabilities)))[chosen.numpy()] += 1
                    entropy[layer] = entropy.get(layer, 0.0) - float(
                        (probabilities * torch.log(probabilities)).sum())
        if args.max_tokens is not None and scored >= args.max_tokens:
            break
    routing = None
    if moe:
        routing = [{"share": counts[l] / counts[l].sum(), "entropy": entropy[l] / scored}
                   for l in sorted(counts)]
    return math.exp(nll / scored), scored, routing


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m moe_testing.perplexity",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("eval_json")
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--data", action="append", required=True)
    parser.add_argument("--context", type=int, required=True)
    parser.add_argument("--stride", type=int, required=True)
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--tolerance", type=float, default=1e-5)
    args = parser.parse_args(argv)
    with open(args.eval_json) as f:
        report = {m["name"]: m for m in json.load(f)["models"]}
    domains = {}
    for spec in args.data:
        name, _, files = spec.partition("=")
        domains[name] = files.split(",")
    failures = 0
    for spec in args.model:
        name, _, directory = spec.partition("=")
        model, tokenizer = _load(directory)
        entry = report[name]
        for domain, files in domains.items():
            perplexity, scored, routing = _recompute(model, tokenizer, files, args)
            reported = entry["perplexity"][domain]
            error = abs(reported - perplexity) / perplexity
            ok = error <= args.tolerance and entry["tokens"][domain] == scored
            line = (f"{name} {domain}: perplexity {reported:.6f}, direct {perplexity:.6f} "
                    f"(relative error {error:.1e}), {scored} tokens")
            if routing is not None and entry["kind"] != "onnx":
                layers = entry["routing"][domain] if entry.get("routing") else []
                if len(layers) != len(routing):
                    ok = False
                for mine, theirs in zip(routing, layers):
                    share_error = np.abs(mine["share"] - np.array(theirs["expert_share"])).max()
                    entropy_error = abs(mine["entropy"] - theirs["entropy"])
                    ok &= share_error <= args.tolerance and entropy_error <= args.tolerance
                line += f", routing of {len(routing)} layers"
            print(line + (" ok" if ok else " MISMATCH"))
            failures += not ok
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
