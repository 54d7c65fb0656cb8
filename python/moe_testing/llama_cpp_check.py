"""A GGUF file run by llama.cpp (llama-cpp-python), checked against transformers.

    python -m moe_testing.llama_cpp_check logits FILE.gguf HF_DIR \\
        --ids "1,5,6,7;1,9,10" [--tolerance 1e-4] [--threads 1]
    python -m moe_testing.llama_cpp_check generate FILE.gguf HF_DIR \\
        --ids "1,5,6,7" [--steps 32] [--tolerance 1e-4]
    python -m moe_testing.llama_cpp_check tokenize FILE.gguf HF_DIR \\
        --text "Hello world" --text "def f(x): return x" [--add-special]

HF_DIR is a Hugging Face checkpoint of the same model (the `--export-hf`
folder of a mix); with --hf-gguf NAME, transformers reads HF_DIR/NAME, a GGUF
file, instead (from_pretrained(..., gguf_file=NAME), which dequantises it).
The reference is transformers in float32 with eager attention.

llama.cpp runs on the CPU with its KV cache in F32 (type_k = type_v =
GGML_TYPE_F32; the default F16 cache alone costs ~1e-3), flash attention
off, weights not repacked for the CPU (no AMX), every position's logits
kept (logits_all).

- `logits`: every position of each prompt (rows of --ids, separated by ";"),
  llama.cpp's scores against transformers' forward; the error is
  max |llama.cpp - transformers| / max |transformers|, per prompt and over
  all, within --tolerance.
- `generate`: greedy decoding of --steps tokens per prompt, llama.cpp's
  loop being eval + argmax of the last logits; transformers' generate
  (do_sample=False). Neither stops at an end-of-sequence token. The tokens
  must be identical; the logits of every step are held to --tolerance too.
- `tokenize`: llama.cpp's Llama.tokenize(text, add_bos=--add-special,
  special=--special) against the checkpoint's tokenizer (add_special_tokens
  = --add-special, split_special_tokens = not --special: special tokens
  written in the text are parsed only with --special); identical ids, or
  the first difference.

Prints a line per prompt or text and `ok: ...`; exits 1 with `error: ...`
naming the prompt, step or text that differs.
"""

import argparse
import os
import sys

import numpy as np

GGML_TYPE_F32 = 0


class Mismatch(Exception):
    """Where llama.cpp departs from transformers."""


def parse_ids(text):
    """"1,2,3;4,5" -> [[1, 2, 3], [4, 5]]."""
    try:
        return [[int(v) for v in row.split(",")] for row in text.split(";")]
    except ValueError:
        raise SystemExit(f"llama_cpp_check: --ids {text!r}: expected "
                         "comma-separated token ids, rows separated by ';'")


def _without_repacking():
    """Llama() has no use_extra_bufts parameter: its model parameters come
    from llama_model_default_params, wrapped here to turn the CPU's extra
    buffer types (weights repacked for AMX or AVX2 kernels) off. With them,
    0.3.36 built natively crashes (SIGSEGV in ggml_backend_amx_mul_mat) on
    the Q4_1 weights of SmolLM2 on CPUs with AMX; without them every CPU
    runs the same ggml kernels."""
    import llama_cpp.llama_cpp as api
    default = api.llama_model_default_params
    if getattr(default, "moe_without_repacking", False):
        return

    def params():
        result = default()
        result.use_extra_bufts = False
        return result
    params.moe_without_repacking = True
    api.llama_model_default_params = params


def load_llama(path, n_ctx, threads, vocab_only=False):
    import llama_cpp
    _without_repacking()
    return llama_cpp.Llama(
        model_path=path, n_ctx=max(n_ctx, 64), n_batch=max(n_ctx, 64),
        n_ubatch=max(n_ctx, 64), n_threads=threads, n_threads_batch=threads,
        logits_all=True, type_k=GGML_TYPE_F32, type_v=GGML_TYPE_F32,
        flash_attn=False, vocab_only=vocab_only, verbose=False)


def _hf_kwargs(args):
    return {"gguf_file": args.hf_gguf} if args.hf_gguf else {}


def load_transformers(args):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import transformers
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    return transformers.AutoModelForCausalLM.from_pretrained(
        args.hf_dir, dtype=torch.float32, attn_implementation="eager",
        **_hf_kwargs(args)).eval()


def relative_error(ours, reference):
    """max |ours - reference| / max |reference|."""
    if ours.shape != reference.shape:
        raise Mismatch(f"logits of shape {list(ours.shape)}, transformers "
                       f"{list(reference.shape)}")
    scale = float(np.abs(reference).max()) or 1.0
    return float(np.abs(ours - reference).max()) / scale


def llama_prompt_logits(llm, ids):
    llm.reset()
    llm.eval(ids)
    return np.array(llm.scores[:len(ids)], dtype=np.float32)


def check_logits(args, prompts):
    import torch
    model = load_transformers(args)
    llm = load_llama(args.gguf, max(map(len, prompts)), args.threads)
    worst = 0.0
    for row, ids in enumerate(prompts):
        with torch.no_grad():
            reference = model(torch.tensor([ids])).logits[0].numpy()
        error = relative_error(llama_prompt_logits(llm, ids), reference)
        worst = max(worst, error)
        print(f"prompt {row}: {len(ids)} positions, logits relative error "
              f"{error:.3g}")
        if error > args.tolerance:
            raise Mismatch(f"prompt {row}: logits relative error {error:.3g} "
                           f"above tolerance {args.tolerance:g}")
    return (f"logits of {len(prompts)} prompts, relative error {worst:.3g} "
            f"(tolerance {args.tolerance:g})")


def llama_greedy(llm, ids, steps):
    """Tokens and the logits each was chosen from: eval + argmax."""
    llm.reset()
    llm.eval(ids)
    tokens, logits = [], []
    for step in range(steps):
        last = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        tokens.append(int(np.argmax(last)))
        logits.append(last)
        if step + 1 < steps:
            llm.eval([tokens[-1]])
    return tokens, np.stack(logits)


def check_generate(args, prompts):
    import torch
    model = load_transformers(args)
    # No end-of-sequence token: both run --steps steps.
    model.generation_config.eos_token_id = None
    llm = load_llama(args.gguf, max(map(len, prompts)) + args.steps,
                     args.threads)
    worst = 0.0
    for row, ids in enumerate(prompts):
        with torch.no_grad():
            out = model.generate(
                input_ids=torch.tensor([ids]), do_sample=False,
                max_new_tokens=args.steps, min_new_tokens=args.steps,
                pad_token_id=0, output_logits=True,
                return_dict_in_generate=True)
        reference = out.sequences[0, len(ids):].tolist()
        reference_logits = torch.stack(out.logits)[:, 0].numpy()
        tokens, logits = llama_greedy(llm, ids, args.steps)
        for step, (ours, theirs) in enumerate(zip(tokens, reference)):
            if ours != theirs:
                raise Mismatch(
                    f"prompt {row}: step {step}: llama.cpp token {ours}, "
                    f"transformers {theirs} (tokens so far "
                    f"{tokens[:step]})")
            error = relative_error(logits[step], reference_logits[step])
            worst = max(worst, error)
            if error > args.tolerance:
                raise Mismatch(f"prompt {row}: step {step}: logits relative "
                               f"error {error:.3g} above tolerance "
                               f"{args.tolerance:g}")
        print(f"prompt {row}: {len(tokens)} tokens identical {tokens}")
    return (f"{args.steps} greedy tokens identical for {len(prompts)} "
            f"prompts, logits relative error {worst:.3g} (tolerance "
            f"{args.tolerance:g})")


def check_tokenize(args, texts):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers
    transformers.logging.set_verbosity_error()
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        args.hf_dir, **_hf_kwargs(args))
    llm = load_llama(args.gguf, 64, args.threads, vocab_only=True)
    for index, text in enumerate(texts):
        ours = llm.tokenize(text.encode(), add_bos=args.add_special,
                            special=args.special)
        theirs = tokenizer(text, add_special_tokens=args.add_special,
                           split_special_tokens=not args.special
                           )["input_ids"]
        if ours != theirs:
            first = next((i for i, (a, b) in enumerate(zip(ours, theirs))
                          if a != b), min(len(ours), len(theirs)))
            raise Mismatch(
                f"text {index} {text!r}: first difference at token {first}: "
                f"llama.cpp {ours[first:first + 4]}, transformers "
                f"{theirs[first:first + 4]} ({len(ours)} vs {len(theirs)} "
                "tokens)")
        print(f"text {index}: {len(ours)} tokens identical")
    return f"tokenization of {len(texts)} texts identical"


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m moe_testing.llama_cpp_check",
        description=__doc__.splitlines()[0], epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["logits", "generate", "tokenize"])
    parser.add_argument("gguf", metavar="FILE.gguf")
    parser.add_argument("hf_dir", metavar="HF_DIR")
    parser.add_argument("--hf-gguf", metavar="NAME",
                        help="transformers reads HF_DIR/NAME (a GGUF file)")
    parser.add_argument("--ids", help='token ids, prompts separated by ";"')
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--text", action="append", default=[])
    parser.add_argument("--add-special", action="store_true",
                        help="tokenize: add the model's bos/special tokens")
    parser.add_argument("--special", action="store_true",
                        help="tokenize: special tokens in the text are "
                             "parsed as such")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="max |a - b| / max |b| of logits (default 1e-4)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.mode == "tokenize":
        if not args.text:
            parser.error("tokenize needs --text")
        check, inputs = check_tokenize, args.text
    else:
        if not args.ids:
            parser.error(f"{args.mode} needs --ids")
        check = check_logits if args.mode == "logits" else check_generate
        inputs = parse_ids(args.ids)
    try:
        summary = check(args, inputs)
    except Mismatch as mismatch:
        print(f"error: {args.gguf}: {mismatch}")
        return 1
    print(f"ok: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
