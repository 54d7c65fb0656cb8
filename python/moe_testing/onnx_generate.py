"""Greedy generation from KV-cache ONNX exports, checked against transformers.

    python -m moe_testing.onnx_generate MODEL=HF_DIR ... --prompts "1,5,9;2,6,10" \\
        [--new-tokens 32] [--tolerance 1e-4] [--cache-tolerance 1e-4] \\
        [--threads 1]

MODEL is either a model file of `moe-translate --export-onnx
--onnx-form=kv-cache`, run by ONNX Runtime (CPU) with the loop below, or a
folder of `moe-translate --export-onnx-genai`, run by onnxruntime-genai.
HF_DIR is the `--export-hf` checkpoint of the same mix: the reference is
transformers' `generate` (greedy, KV cache, float32, eager attention, no
end-of-sequence token). For ONNX Runtime, rows of --prompts may differ in
length: shorter ones are padded on the left and masked, as transformers
does; onnxruntime-genai 0.18 masks no padding, so its prompts must be of
equal length, and it stops at an end-of-sequence token.

The ONNX Runtime loop follows the decoder-with-past convention of
onnxruntime-genai and Optimum: the prefill feeds every prompt token with an
empty past (length 0), `attention_mask` over past and current tokens and
`position_ids` (the count of earlier unmasked tokens; 0 on padding, as
transformers computes them), then each step feeds the token just chosen
(argmax of the last logits) with `present.{i}.key/value` as
`past_key_values.{i}.key/value`.

Checked, for each model:
- the tokens: identical to transformers' for --new-tokens steps;
- the logits of the prompt (prefill, unmasked positions) and of every step
  (onnxruntime-genai: those it returns), max |ours - transformers| within
  --tolerance;
- ONNX Runtime only: `present.*` after the prefill against transformers'
  DynamicCache after the same prefill (keys after rotary embedding; the
  positions a sliding-window layer keeps), within --cache-tolerance.

Prints one line per step (`step N: logits E, tokens ...`) and a summary
per model; exits 1 at the first model that differs, naming the step, the
batch row, the token or the layer.
"""

import argparse
import json
import os
import sys

import numpy as np

KV_INPUT = "past_key_values.{}.{}"
KV_OUTPUT = "present.{}.{}"
ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class Mismatch(Exception):
    """Where a model's generation departs from the reference."""


def parse_prompts(text):
    """"1,2,3;4,5" -> [[1, 2, 3], [4, 5]] (rows of any length >= 1)."""
    try:
        rows = [[int(v) for v in row.split(",")] for row in text.split(";")]
    except ValueError:
        raise SystemExit(f"onnx_generate: --prompts {text!r}: expected "
                         "comma-separated token ids, rows separated by ';'")
    return rows


def left_pad(prompts, pad_id=0):
    """Token ids and attention mask [batch, longest], padded on the left."""
    width = max(len(row) for row in prompts)
    ids = np.full((len(prompts), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(prompts), width), dtype=np.int64)
    for row, tokens in enumerate(prompts):
        ids[row, width - len(tokens):] = tokens
        mask[row, width - len(tokens):] = 1
    return ids, mask


def positions(mask):
    """Position ids of a left-padded batch: earlier unmasked tokens; 0 on
    padding (transformers' `_prepare_position_ids_for_generation`)."""
    return np.where(mask == 1, np.cumsum(mask, axis=1) - 1, 0)


class Generation:
    """What one generator produced: `tokens` [batch, steps], `step_logits`
    [steps, batch, vocab] (step 0 is the prefill's last position; may be
    shorter than the tokens, or None), `prefill_logits` [batch, prompt,
    vocab] or None, `cache` [(key, value)] per layer after the prefill or
    None."""

    def __init__(self, tokens, step_logits, prefill_logits=None, cache=None):
        self.tokens = tokens
        self.step_logits = step_logits
        self.prefill_logits = prefill_logits
        self.cache = cache


def transformers_generation(hf_dir, prompts, new_tokens):
    """transformers' greedy generation and its cache after the prefill."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import transformers
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    model = transformers.AutoModelForCausalLM.from_pretrained(
        hf_dir, dtype=torch.float32, attn_implementation="eager",
        trust_remote_code=False).eval()
    ids, mask = left_pad(prompts)
    ids, mask = torch.from_numpy(ids), torch.from_numpy(mask)
    with torch.no_grad():
        prefill = model(input_ids=ids, attention_mask=mask,
                        position_ids=torch.from_numpy(positions(mask.numpy())),
                        use_cache=True)
        # No end-of-sequence token: every row runs --new-tokens steps
        # (generate fills what its config leaves unset from the model's).
        model.generation_config.eos_token_id = None
        out = model.generate(input_ids=ids, attention_mask=mask,
                             do_sample=False, max_new_tokens=new_tokens,
                             pad_token_id=0, output_logits=True,
                             return_dict_in_generate=True, use_cache=True)
    cache = [(layer.keys.numpy(), layer.values.numpy())
             for layer in prefill.past_key_values.layers]
    return Generation(tokens=out.sequences[:, ids.shape[1]:].numpy(),
                      step_logits=np.stack([s.float().numpy()
                                            for s in out.logits]),
                      prefill_logits=prefill.logits.float().numpy(),
                      cache=cache)


def _kv_inputs(session, path):
    """[(layer, kv heads, head dim, numpy dtype)] of a KV-cache model's past
    inputs, checked against the convention."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    layers = []
    while KV_INPUT.format(len(layers), "key") in inputs:
        layers.append(len(layers))
    expected = ["input_ids", "attention_mask", "position_ids"] + [
        KV_INPUT.format(i, part) for i in layers for part in ("key", "value")]
    expected_out = ["logits"] + [
        KV_OUTPUT.format(i, part) for i in layers for part in ("key", "value")]
    if not layers or sorted(inputs) != sorted(expected) or \
            sorted(outputs) != sorted(expected_out):
        raise SystemExit(
            f"onnx_generate: {path}: not a KV-cache model: inputs "
            f"{sorted(inputs)}, outputs {sorted(outputs)}")
    shapes = []
    for layer in layers:
        past = inputs[KV_INPUT.format(layer, "key")]
        heads, head_dim = past.shape[1], past.shape[3]
        if not isinstance(heads, int) or not isinstance(head_dim, int) or \
                past.type not in ONNX_DTYPES:
            raise SystemExit(f"onnx_generate: {path}: {past.name} is "
                             f"{past.type} {past.shape}; expected float "
                             "[batch, kv heads, past, head dim] with fixed "
                             "kv heads and head dim")
        shapes.append((layer, heads, head_dim, ONNX_DTYPES[past.type]))
    return shapes


def onnxruntime_generation(path, prompts, new_tokens, threads):
    """Greedy generation by ONNX Runtime on a KV-cache model."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options,
                                   providers=["CPUExecutionProvider"])
    layers = _kv_inputs(session, path)
    ids, mask = left_pad(prompts)
    batch = ids.shape[0]
    feed = {"input_ids": ids, "attention_mask": mask,
            "position_ids": positions(mask)}
    for layer, heads, head_dim, dtype in layers:
        for part in ("key", "value"):
            feed[KV_INPUT.format(layer, part)] = np.zeros(
                (batch, heads, 0, head_dim), dtype=dtype)
    names = [o.name for o in session.get_outputs()]
    tokens, step_logits, prefill_logits, cache = [], [], None, None
    for step in range(new_tokens):
        results = dict(zip(names, session.run(names, feed)))
        logits = results["logits"].astype(np.float32)
        if step == 0:
            prefill_logits = logits
            cache = [tuple(results[KV_OUTPUT.format(layer, part)]
                           for part in ("key", "value"))
                     for layer, *_ in layers]
        step_logits.append(logits[:, -1])
        chosen = logits[:, -1].argmax(axis=-1)
        tokens.append(chosen)
        mask = np.concatenate([mask, np.ones((batch, 1), np.int64)], axis=1)
        feed = {"input_ids": chosen[:, None].astype(np.int64),
                "attention_mask": mask,
                "position_ids": feed["position_ids"][:, -1:] + 1}
        for layer, *_ in layers:
            for part in ("key", "value"):
                feed[KV_INPUT.format(layer, part)] = \
                    results[KV_OUTPUT.format(layer, part)]
    return Generation(np.stack(tokens, axis=1), np.stack(step_logits),
                      prefill_logits, cache)


def genai_generation(folder, prompts, new_tokens):
    """Greedy generation by onnxruntime-genai on an --export-onnx-genai
    folder, with the logits of every step."""
    import onnxruntime_genai as og
    if len({len(row) for row in prompts}) != 1:
        raise SystemExit("onnx_generate: onnxruntime-genai does not mask "
                         "padding (append_tokens feeds an all-ones "
                         "attention_mask): give prompts of equal length")
    model = og.Model(folder)
    params = og.GeneratorParams(model)
    ids = np.array(prompts, dtype=np.int32)
    params.set_search_options(do_sample=False, batch_size=len(prompts),
                              max_length=ids.shape[1] + new_tokens)
    generator = og.Generator(model, params)
    generator.append_tokens(ids)
    step_logits = []
    prefill_logits = np.array(generator.get_output("logits"))
    for _ in range(new_tokens):
        if generator.is_done():
            break
        step_logits.append(np.array(generator.get_logits())[:, -1])
        generator.generate_next_token()
    # A row that ends (at an end-of-sequence token) is padded after it: keep
    # the steps up to the first end of any row.
    with open(os.path.join(folder, "genai_config.json")) as f:
        eos = json.load(f)["model"]["eos_token_id"]
    eos = eos if isinstance(eos, list) else [eos]
    rows = [np.array(generator.get_sequence(row))[ids.shape[1]:]
            for row in range(len(prompts))]
    steps = min(min([len(row)] + [int(np.flatnonzero(row == token)[0]) + 1
                                  for token in eos if token in row])
                for row in rows)
    tokens = np.stack([row[:steps] for row in rows])
    return Generation(tokens, np.stack(step_logits),
                      prefill_logits.astype(np.float32))


def _max_error(ours, reference):
    return float(np.abs(ours.astype(np.float64) -
                        reference.astype(np.float64)).max())


def _check_cache(ours, reference, mask, tolerance):
    """present.* after the prefill against transformers' cache, over the
    unmasked positions the reference keeps; returns the largest error."""
    if len(ours) != len(reference):
        raise Mismatch(f"{len(ours)} present layers, transformers has "
                       f"{len(reference)}")
    largest = 0.0
    for layer, (pair, ref_pair) in enumerate(zip(ours, reference)):
        for part, value, ref in zip(("key", "value"), pair, ref_pair):
            name = KV_OUTPUT.format(layer, part)
            if value.shape[:2] != ref.shape[:2] or value.shape[3] != ref.shape[3] \
                    or value.shape[2] < ref.shape[2]:
                raise Mismatch(f"prefill: {name} is {list(value.shape)}, "
                               f"transformers' cache {list(ref.shape)}")
            kept = ref.shape[2]   # a sliding-window layer keeps the last ones
            value = value[:, :, value.shape[2] - kept:]
            for row in range(value.shape[0]):
                valid = mask[row, mask.shape[1] - kept:] == 1
                error = _max_error(value[row][:, valid], ref[row][:, valid])
                if not error <= tolerance:
                    where = np.unravel_index(
                        np.abs(value[row][:, valid] - ref[row][:, valid]).argmax(),
                        value[row][:, valid].shape)
                    raise Mismatch(
                        f"prefill: {name} of row {row} differs from "
                        f"transformers' cache by {error:.3g} > {tolerance:g} "
                        f"(kv head {where[0]}, position {where[1]} of the "
                        f"unmasked ones, dim {where[2]})")
                largest = max(largest, error)
    return largest


def compare(ours, reference, mask, tolerance, cache_tolerance):
    """Prints the per-step report; raises Mismatch at the first difference."""
    if ours.prefill_logits is not None:
        valid = mask == 1
        error = _max_error(ours.prefill_logits[valid],
                           reference.prefill_logits[valid])
        line = f"prefill: logits {error:.3g}"
        if not error <= tolerance:
            raise Mismatch(f"prefill: logits of the prompt differ by "
                           f"{error:.3g} > {tolerance:g}")
        if ours.cache is not None:
            line += (", present " +
                     f"{_check_cache(ours.cache, reference.cache, mask, cache_tolerance):.3g}")
        print(line)
    steps = reference.tokens.shape[1]
    if ours.tokens.shape != reference.tokens.shape:
        stopped = ours.tokens.shape[1]
        raise Mismatch(
            f"generation stopped after {stopped} of {steps} tokens; "
            f"transformers' next tokens are "
            f"{reference.tokens[:, min(stopped, steps - 1)].tolist()} (an "
            "end-of-sequence token ends onnxruntime-genai's generation: "
            "choose prompts that do not generate one)")
    largest = 0.0
    for step in range(steps):
        line = f"step {step}:"
        if step < len(ours.step_logits):
            error = _max_error(ours.step_logits[step],
                               reference.step_logits[step])
            largest = max(largest, error)
            line += f" logits {error:.3g},"
        print(f"{line} tokens {ours.tokens[:, step].tolist()}")
        for row in range(reference.tokens.shape[0]):
            if ours.tokens[row, step] != reference.tokens[row, step]:
                top = np.sort(reference.step_logits[step, row])[-2:]
                raise Mismatch(
                    f"step {step}, row {row}: token {ours.tokens[row, step]}, "
                    f"transformers chose {reference.tokens[row, step]} "
                    f"(its top-2 margin {top[1] - top[0]:.3g})")
        if step < len(ours.step_logits) and not error <= tolerance:
            row = int(np.abs(ours.step_logits[step] -
                             reference.step_logits[step]).max(axis=-1).argmax())
            raise Mismatch(f"step {step}, row {row}: logits differ by "
                           f"{error:.3g} > {tolerance:g}")
    return largest


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m moe_testing.onnx_generate",
        description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", metavar="MODEL=HF_DIR",
                        help="a KV-cache .onnx file or an --export-onnx-genai "
                             "folder, and the --export-hf checkpoint")
    parser.add_argument("--prompts", required=True,
                        help='token ids, rows separated by ";"')
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="max abs error of logits (default 1e-4)")
    parser.add_argument("--cache-tolerance", type=float, default=1e-4,
                        help="max abs error of present.* after the prefill")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    prompts = parse_prompts(args.prompts)
    _, mask = left_pad(prompts)
    references = {}
    for spec in args.models:
        path, _, hf_dir = spec.partition("=")
        if not hf_dir:
            parser.error(f"{spec}: expected MODEL=HF_DIR")
        if hf_dir not in references:
            references[hf_dir] = transformers_generation(hf_dir, prompts,
                                                         args.new_tokens)
        if os.path.isdir(path):
            runtime = "onnxruntime-genai"
            ours = genai_generation(path, prompts, args.new_tokens)
        else:
            runtime = "onnxruntime"
            ours = onnxruntime_generation(path, prompts, args.new_tokens,
                                          args.threads)
        print(f"== {os.path.basename(os.path.normpath(path))} ({runtime}, "
              f"{len(prompts)} prompts, {args.new_tokens} new tokens)")
        try:
            largest = compare(ours, references[hf_dir], mask, args.tolerance,
                              args.cache_tolerance)
        except Mismatch as mismatch:
            print(f"error: {path}: {mismatch}")
            return 1
        print(f"ok: {args.new_tokens} tokens identical, logits max abs "
              f"error {largest:.3g} (tolerance {args.tolerance:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
