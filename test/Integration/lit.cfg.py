# -*- Python -*-
# check-moe-integration: the tools against the real libraries. Fixtures are
# made by transformers and peft (python/moe_fixtures), numerics are compared
# with transformers, peft, onnxruntime and the independent PyTorch reference
# (python/moe_reference), and the Python tools run in the project's
# virtualenv (`%python`). A missing or incomplete virtualenv is an error,
# never a silent skip.

import os
import subprocess
import sys

import lit.formats
from lit.llvm import llvm_config

config.name = "MOE-Integration"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.moe_obj_root, "test", "Integration")
config.excludes = ["Inputs", "lit.cfg.py", "lit.site.cfg.py"]

llvm_config.with_system_environment(["HOME", "TMP", "TEMP", "MOE_FIXTURE_CACHE"])
llvm_config.use_default_substitutions()
# %python is the project's virtualenv (checked below), not lit's own Python.
config.substitutions = [(key, value) for key, value in config.substitutions
                        if key != "%python"]
config.substitutions.append(("%python", '"%s"' % config.moe_python))

config.moe_tools_dir = os.path.join(config.moe_obj_root, "bin")
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.add_tool_substitutions(
    ["moe-opt", "moe-translate", "moe-run", "mlir-runner", "mlir-translate"],
    [config.moe_tools_dir, config.llvm_tools_dir])

python = config.moe_python
probe = subprocess.run(
    [python, "-c",
     "import torch, transformers, peft, safetensors, numpy, onnx, onnxruntime,"
     " onnxruntime_genai, yaml, tokenizers, tqdm, matplotlib, gguf,"
     " llama_cpp"],
    capture_output=True, text=True) if os.path.exists(python) else None
if probe is None or probe.returncode != 0:
    lit_config.fatal(
        "the test Python at %s cannot import what python/requirements.txt "
        "lists: run scripts/setup.sh "
        "first%s"
        % (python, "" if probe is None else "\n" + probe.stderr))
# The virtualenv's torch brings triton's ptxas, so it is always there.
sys.path.insert(0, os.path.dirname(config.test_source_root))
from find_ptxas import find_ptxas  # noqa: E402
from sanitizers import use_sanitizers  # noqa: E402

# A sanitized build: the sanitizers' options and symbolizer.
use_sanitizers(config)

ptxas = find_ptxas(config.moe_src_root)
if ptxas is None:
    lit_config.fatal("no ptxas: run scripts/setup.sh (the virtualenv's triton "
                     "ships one) or set MOE_PTXAS")
config.substitutions.append(("%ptxas", '"%s"' % ptxas))
# SmolLM2-135M-Instruct's GGUF file, which scripts/setup.sh extracts.
smollm2 = subprocess.run([python, "-m", "moe_testing.smollm2", "path"],
                         capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.path.join(
                             config.moe_src_root, "python")})
if smollm2.returncode != 0:
    lit_config.fatal("no SmolLM2 GGUF file: " + smollm2.stdout + smollm2.stderr)
config.substitutions.append(("%smollm2", '"%s"' % smollm2.stdout.strip()))
config.substitutions.append(("%moe_src", config.moe_src_root))
config.substitutions.append(("%moe_obj", config.moe_obj_root))
config.substitutions.append(("%mlir_lib_dir", config.llvm_lib_dir))
config.environment["PYTHONPATH"] = os.path.join(config.moe_src_root, "python")
config.environment["MOE_BIN"] = config.moe_tools_dir
# Fixtures are made once per build tree and shared between tests.
config.environment["MOE_FIXTURE_CACHE"] = os.environ.get(
    "MOE_FIXTURE_CACHE", os.path.join(config.moe_obj_root, "fixtures"))
config.environment["OMP_NUM_THREADS"] = "1"
config.environment["TOKENIZERS_PARALLELISM"] = "false"
config.environment["HF_HUB_OFFLINE"] = "1"
