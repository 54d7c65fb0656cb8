"""Records what mergekit-moe makes of the mergekit-docs example configs, for
the lit tests of moe-mix (test/Integration/Frontend), which compare against
these records instead of running mergekit (it lives in a virtualenv of its
own, bench/setup-mergekit.sh, that CI does not build).

    .venv/bin/python bench/record_mergekit_references.py [NAME.yml ...]

For every test/Integration/Frontend/Inputs/mergekit-docs/*.yml (or those
named) that mergekit-moe 0.1.5 accepts, runs `mergekit-moe CONFIG OUT --device cpu` in a
directory holding the moe_fixtures models the configs name, loads OUT with
transformers (float32, so bfloat16 values are exact) and writes
Inputs/mergekit/<config>.json: the model class and config fields that
matter, the sha256 of every parameter's float32 bytes, and the values of
every router tensor (gate and shared-expert gate rows, a few hundred
floats). Rerun it when the fixtures' recipes or the pinned library
versions change (the fixture cache is keyed by both).
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INPUTS = os.path.join(ROOT, "test", "Integration", "Frontend", "Inputs")
FIXTURES = ["llama", "llama-expert-1", "llama-expert-2", "llama-expert-3"]
CONFIG_FIELDS = ["architectures", "num_local_experts", "num_experts",
                 "num_experts_per_tok", "norm_topk_prob", "dtype",
                 "shared_expert_intermediate_size", "moe_intermediate_size"]


def is_router(name):
    return name.endswith("mlp.gate.weight") or name.endswith("shared_expert_gate.weight")


def record(out):
    import torch
    import transformers
    model = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    with open(os.path.join(out, "config.json")) as f:
        config = json.load(f)
    tensors = {}
    for name, value in model.state_dict().items():
        value = value.detach().contiguous()
        entry = {"shape": list(value.shape),
                 "sha256": hashlib.sha256(value.numpy().tobytes()).hexdigest()}
        if is_router(name):
            entry["values"] = value.tolist()
        tensors[name] = entry
    return {"class": type(model).__name__,
            "config": {key: config[key] for key in CONFIG_FIELDS if key in config},
            "tensors": tensors}


def main():
    subprocess.run([os.path.join(ROOT, "bench", "setup-mergekit.sh")], check=True)
    mergekit = os.path.join(ROOT, "bench", ".venv-mergekit", "bin", "mergekit-moe")
    # torch's bfloat16 kernels round differently by vector width: record with
    # the AVX2 ones, which the tests' bitwise comparisons pin too.
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), HF_HUB_OFFLINE="1",
               ATEN_CPU_CAPABILITY="avx2")
    os.makedirs(os.path.join(INPUTS, "mergekit"), exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for fixture in FIXTURES:
            subprocess.run([sys.executable, "-m", "moe_fixtures", "make", fixture,
                            os.path.join(scratch, fixture)], check=True, env=env,
                           stdout=subprocess.DEVNULL)
        for name in sys.argv[1:] or sorted(os.listdir(os.path.join(INPUTS, "mergekit-docs"))):
            config = os.path.join(INPUTS, "mergekit-docs", name)
            out = os.path.join(scratch, "out")
            shutil.rmtree(out, ignore_errors=True)
            result = subprocess.run([mergekit, config, out, "--device", "cpu"],
                                    cwd=scratch, env=env, capture_output=True, text=True)
            stem = os.path.splitext(name)[0]
            if result.returncode != 0:
                print(f"{name}: mergekit-moe refused it:\n{result.stderr[-2000:]}")
                continue
            path = os.path.join(INPUTS, "mergekit", f"{stem}.json")
            with open(path, "w") as f:
                json.dump(record(out), f, indent=1, sort_keys=True)
                f.write("\n")
            print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
