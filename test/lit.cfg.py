# -*- Python -*-
# The moe lit suite: FileCheck tests of the tools, integration tests that
# drive the Python reference (transformers, peft, onnxruntime), and the
# GoogleTest unit tests (unittests/, a suite of its own).

import os
import subprocess

import lit.formats
from lit.llvm import llvm_config

config.name = "MOE"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test", ".py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.moe_obj_root, "test")
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py",
                   "unittests", "fixtures.py", "conftest.py"]

llvm_config.with_system_environment(["HOME", "TMP", "TEMP", "MOE_FIXTURE_CACHE"])
llvm_config.use_default_substitutions()
# %python is the project's virtualenv (checked below), not lit's own Python.
config.substitutions = [(key, value) for key, value in config.substitutions
                        if key != "%python"]
config.substitutions.append(("%python", '"%s"' % config.moe_python))

config.moe_tools_dir = os.path.join(config.moe_obj_root, "bin")
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.add_tool_substitutions(
    ["moe-opt", "moe-translate", "moe-run", "mlir-runner", "mlir-translate",
     "safetensors-header-fuzzer"],
    [config.moe_tools_dir, config.llvm_tools_dir])

# Integration tests need the project's virtualenv (scripts/setup.sh makes it).
# A missing or incomplete one is an error, never a silent skip.
python = config.moe_python
probe = subprocess.run(
    [python, "-c",
     "import torch, transformers, peft, safetensors, numpy, onnx, onnxruntime"],
    capture_output=True, text=True) if os.path.exists(python) else None
if probe is None or probe.returncode != 0:
    lit_config.fatal(
        "the test Python at %s cannot import torch, transformers, peft, "
        "safetensors, numpy, onnx and onnxruntime: run scripts/setup.sh "
        "first%s"
        % (python, "" if probe is None else "\n" + probe.stderr))
# ptxas checks the generated PTX: MOE_PTXAS, the CUDA toolkit's on PATH, or
# the one the virtualenv's triton (a torch dependency) ships.
import glob
import shutil
ptxas = os.environ.get("MOE_PTXAS") or shutil.which("ptxas") or next(
    iter(sorted(glob.glob(os.path.join(
        os.path.dirname(os.path.dirname(python)), "lib", "python3*",
        "site-packages", "triton", "backends", "nvidia", "bin", "ptxas")))),
    None)
if not ptxas or not os.access(ptxas, os.X_OK):
    lit_config.fatal("no ptxas to check the generated PTX: set MOE_PTXAS or "
                     "rerun scripts/setup.sh (torch brings triton's ptxas)")
config.substitutions.append(("%ptxas", '"%s"' % ptxas))
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
