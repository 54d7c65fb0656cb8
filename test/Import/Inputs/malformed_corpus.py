"""Runs the tools on every malformed input we have and checks the refusal.

    malformed_corpus.py WORKDIR --translate PATH --corpora DIR

Inputs: the seed corpora of the fuzzers under DIR (tools/*/corpus: config
files, adapter configs, safetensors files, shard indexes, modules for
--export-hf), each
put in the place it plays in a model directory, and mutations of a valid
config.json (every field given every wrong kind of value) and of a valid
safetensors file (truncated at every length, header length lied about).
Each case is run with `moe-translate` and must end, within 2 seconds, with
exit status 1 (0 is allowed for inputs that may be valid), a message with
`error:` naming the file at fault, no crash report and no output file.
Prints one line per class and FAILED lines; exits 1 when any case failed.
Standard library only: check-moe runs it on the Python that runs lit.
"""

import argparse
import concurrent.futures
import json
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import time

from moe_fixtures import safetensors_io

TIME_LIMIT = 2.0
CRASH_SIGNS = ("Stack dump", "LLVM ERROR", "Assertion", "PLEASE submit",
               "Sanitizer", "terminate called")

# The base of the adapter cases: the adapter fuzzer's tiny Llama.
BASE_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
    "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4,
    "vocab_size": 32, "max_position_embeddings": 64, "rms_norm_eps": 1e-06,
    "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": False,
}


def zeros(name, shape):
    count = 1
    for dim in shape:
        count *= dim
    return safetensors_io.Tensor(name, "F32", shape, bytes(4 * count))


def base_tensors():
    tensors = [zeros("model.embed_tokens.weight", [32, 8]),
               zeros("model.norm.weight", [8]),
               zeros("lm_head.weight", [32, 8])]
    for layer in range(2):
        prefix = f"model.layers.{layer}."
        tensors += [zeros(prefix + "input_layernorm.weight", [8]),
                    zeros(prefix + "post_attention_layernorm.weight", [8])]
        for projection, rows in (("q_proj", 8), ("k_proj", 4),
                                 ("v_proj", 4), ("o_proj", 8)):
            tensors.append(zeros(f"{prefix}self_attn.{projection}.weight",
                                 [rows, 8]))
        tensors += [zeros(prefix + "mlp.gate_proj.weight", [16, 8]),
                    zeros(prefix + "mlp.up_proj.weight", [16, 8]),
                    zeros(prefix + "mlp.down_proj.weight", [8, 16])]
    return tensors


def lora_tensors():
    tensors = []
    for module, rows, columns, rank in (
            ("model.layers.0.self_attn.q_proj", 8, 8, 2),
            ("model.layers.1.self_attn.v_proj", 4, 8, 4),
            ("model.layers.1.mlp.down_proj", 8, 16, 2)):
        tensors += [zeros(f"base_model.model.{module}.lora_A.weight",
                          [rank, columns]),
                    zeros(f"base_model.model.{module}.lora_B.weight",
                          [rows, rank])]
    return tensors


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


class Case:
    """One run: `command` must refuse (or, if `may_pass`, accept) cleanly,
    naming `culprit` (a file name) in its message."""

    def __init__(self, kind, name, command, culprit, output, may_pass):
        self.kind, self.name, self.command = kind, name, command
        self.culprit, self.output, self.may_pass = culprit, output, may_pass


def check(case):
    start = time.monotonic()
    try:
        result = subprocess.run(case.command, capture_output=True, text=True,
                                errors="replace", timeout=10 * TIME_LIMIT)
    except subprocess.TimeoutExpired:
        return f"did not end within {10 * TIME_LIMIT:.0f} s"
    seconds = time.monotonic() - start
    stderr = result.stderr
    if result.returncode < 0:
        return f"killed by signal {-result.returncode}: {stderr[-300:]}"
    if any(sign in stderr for sign in CRASH_SIGNS):
        return f"crash report: {stderr[-300:]}"
    if seconds > TIME_LIMIT:
        return f"took {seconds:.2f} s"
    if result.returncode == 0:
        if not case.may_pass:
            return "accepted"
        return None
    if result.returncode != 1:
        return f"exit status {result.returncode}: {stderr[-300:]}"
    if "error:" not in stderr or case.culprit not in stderr:
        return f"the message does not name {case.culprit}: {stderr[-300:]}"
    if os.path.lexists(case.output):
        return f"left an output at {case.output}"
    return None


def config_cases(work, corpora, translate):
    """config.json: the corpus of hf-config-fuzzer and every top-level
    field of a valid config given each wrong kind of value."""
    inputs = {}
    for seed in sorted((corpora / "hf-config-fuzzer" / "corpus").iterdir()):
        inputs[seed.stem] = (seed.read_bytes(), seed.stem.startswith("valid"))
    valid = json.loads(
        (corpora / "hf-config-fuzzer" / "corpus" / "valid-llama.json")
        .read_text())
    wrong = {"negative": -1, "zero": 0, "huge": 2 ** 63, "max-double": 1e308,
             "fraction": 0.5, "string": "x", "null": None, "list": [],
             "object": {}, "true": True}
    for field in sorted(valid):
        for kind, value in wrong.items():
            mutated = dict(valid, **{field: value})
            # Some wrong values are tolerated in fields the importer does
            # not read; a clean error or a clean import are both fine.
            inputs[f"{field}-{kind}"] = (json.dumps(mutated), True)
    for name, (text, may_pass) in inputs.items():
        model = work / "config" / name
        write(model / "config.json", text)
        write(model / "model.safetensors",
              safetensors_io.encode(base_tensors()))
        output = model / "out.mlir"
        # A valid config of another shape meets the fixed tensors: the
        # refusal then names the checkpoint.
        yield Case("config.json", name,
                   [translate, "--import-hf", str(model), "-o", str(output)],
                   "config.json" if not may_pass else str(model), output,
                   may_pass)


def safetensors_cases(work, corpora, translate):
    """model.safetensors: the header fuzzer's corpus, and a valid file
    truncated at every length and with its header length changed."""
    inputs = {}
    for seed in sorted((corpora / "safetensors-fuzzer" / "corpus").iterdir()):
        inputs[seed.stem] = seed.read_bytes()
    valid = safetensors_io.encode(base_tensors())
    for length in range(0, len(valid), max(1, len(valid) // 64)):
        inputs[f"truncated-{length}"] = valid[:length]
    header_length = struct.unpack("<Q", valid[:8])[0]
    for delta in (-1, 1, 1 << 20, 1 << 40, -header_length):
        inputs[f"header-length{delta:+d}"] = (
            struct.pack("<Q", (header_length + delta) % (1 << 64)) + valid[8:])
    for name, data in inputs.items():
        model = work / "safetensors" / name
        write(model / "config.json", json.dumps(BASE_CONFIG))
        write(model / "model.safetensors", data)
        output = model / "out.mlir"
        # A valid file without the base's tensors: the refusal names the
        # checkpoint directory and the tensor.
        yield Case("model.safetensors", name,
                   [translate, "--import-hf", str(model), "-o", str(output)],
                   str(model) if name.startswith("valid")
                   else "model.safetensors", output, False)


def index_cases(work, corpora, translate):
    """model.safetensors.index.json: the index fuzzer's corpus, in a
    directory laid out as the fuzzer's (two shards, a third file, a shard
    in a subdirectory, a link to a shard outside). The tensors are not the
    base's, so valid indexes are refused too, naming the directory."""
    def shard(*names):
        return safetensors_io.encode([zeros(name, [1]) for name in names])

    for seed in sorted((corpora / "safetensors-index-fuzzer" / "corpus")
                       .iterdir()):
        root = work / "index" / seed.stem
        model = root / "model"
        write(root / "outside.safetensors", shard("a", "b"))
        write(model / "model-00001-of-00002.safetensors", shard("a", "b"))
        write(model / "model-00002-of-00002.safetensors", shard("c"))
        write(model / "extra.safetensors", shard("d"))
        write(model / "sub" / "inner.safetensors", shard("c"))
        (model / "link.safetensors").symlink_to("../outside.safetensors")
        write(model / "config.json", json.dumps(BASE_CONFIG))
        write(model / "model.safetensors.index.json", seed.read_bytes())
        output = model / "out.mlir"
        yield Case("model.safetensors.index.json", seed.stem,
                   [translate, "--import-hf", str(model), "-o", str(output)],
                   str(model), output, False)


def adapter_cases(work, corpora, translate):
    """adapter_config.json: the adapter fuzzer's corpus beside the factors
    of three modules of a tiny base."""
    base = work / "adapter-base"
    write(base / "config.json", json.dumps(BASE_CONFIG))
    write(base / "model.safetensors", safetensors_io.encode(base_tensors()))
    factors = safetensors_io.encode(lora_tensors())
    for seed in sorted((corpora / "adapter-config-fuzzer" / "corpus")
                       .iterdir()):
        adapter = work / "adapter" / seed.stem
        write(adapter / "adapter_config.json", seed.read_bytes())
        write(adapter / "adapter_model.safetensors", factors)
        output = adapter / "out.mlir"
        # The factors have ranks 2 and 4: a valid config that says
        # otherwise is refused, naming the adapter.
        yield Case("adapter_config.json", seed.stem,
                   [translate, "--import-hf", str(base), "--adapter",
                    f"a={adapter}", "-o", str(output)],
                   "adapter_config.json" if seed.stem.startswith("invalid")
                   else str(adapter), output,
                   seed.stem.startswith("valid"))


def module_cases(work, corpora, translate):
    """Modules for --export-hf: the export fuzzer's corpus (their
    checkpoints are not on this machine, which the export must say)."""
    for seed in sorted((corpora / "export-hf-fuzzer" / "corpus").iterdir()):
        output = work / "export" / seed.stem
        output.parent.mkdir(parents=True, exist_ok=True)
        yield Case("--export-hf module", seed.stem,
                   [translate, "--export-hf", str(seed), "-o", str(output)],
                   seed.name, output, False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work")
    parser.add_argument("--translate", required=True)
    parser.add_argument("--corpora", required=True)
    args = parser.parse_args()
    work, corpora = pathlib.Path(args.work), pathlib.Path(args.corpora)
    shutil.rmtree(work, ignore_errors=True)
    cases = []
    for make in (config_cases, safetensors_cases, index_cases,
                 adapter_cases, module_cases):
        cases += list(make(work, corpora, args.translate))
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(check, cases))
    failed = 0
    counts = {}
    for case, problem in zip(cases, outcomes):
        counts[case.kind] = counts.get(case.kind, 0) + 1
        if problem:
            failed += 1
            print(f"FAILED {case.kind} {case.name}: {problem}")
    for kind, count in counts.items():
        print(f"{kind}: {count} cases")
    print(f"{len(cases)} cases, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
