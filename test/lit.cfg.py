# -*- Python -*-
# check-moe: the FileCheck, verify-diagnostics and fuzzing tests of the tools,
# and the GoogleTest unit tests (unittests/, a suite of its own). They need
# only the Debian LLVM/MLIR 22 packages and this build: helper scripts run on
# the Python that runs lit (`%stdpython`, standard library only). Tests that
# need the project's virtualenv (fixtures made by transformers and peft,
# numerics against them, onnxruntime) are the integration suite in
# Integration/ (check-moe-integration).

import os
import sys

import lit.formats
from lit.llvm import llvm_config

config.name = "MOE"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.moe_obj_root, "test")
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py",
                   "unittests", "Integration"]

llvm_config.with_system_environment(["HOME", "TMP", "TEMP"])
llvm_config.use_default_substitutions()
config.substitutions = [(key, value) for key, value in config.substitutions
                        if key != "%python"]
config.substitutions.append(("%stdpython", '"%s"' % sys.executable))

config.moe_tools_dir = os.path.join(config.moe_obj_root, "bin")
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.add_tool_substitutions(
    ["moe-opt", "moe-translate", "moe-run", "mlir-runner", "mlir-translate",
     "safetensors-header-fuzzer", "hf-config-fuzzer", "adapter-config-fuzzer",
     "safetensors-index-fuzzer", "export-hf-fuzzer", "export-onnx-fuzzer",
     "export-gguf-fuzzer", "gguf-header-fuzzer"],
    [config.moe_tools_dir, config.llvm_tools_dir])
config.substitutions.append(("%moe_src", config.moe_src_root))
config.substitutions.append(("%moe_obj", config.moe_obj_root))
config.substitutions.append(("%mlir_lib_dir", config.llvm_lib_dir))
config.environment["PYTHONPATH"] = os.path.join(config.moe_src_root, "python")
config.environment["MOE_BIN"] = config.moe_tools_dir

# Optional tools, as lit features. Tests that need one say `REQUIRES:`; when
# it is missing they are reported UNSUPPORTED and the reason is printed here.
# MOE_REQUIRE_ALL_FEATURES=1 (scripts/run-tests.sh, CI) makes a missing one
# an error instead: a tier is never skipped there.
strict = os.environ.get("MOE_REQUIRE_ALL_FEATURES") == "1"


def optional_feature(feature, available, why_missing):
    if available:
        config.available_features.add(feature)
    elif strict:
        lit_config.fatal("%s (MOE_REQUIRE_ALL_FEATURES=1)" % why_missing)
    else:
        lit_config.note("skipping the tests that need '%s': %s"
                        % (feature, why_missing))


# ptxas assembles the generated PTX (find_ptxas.py says where it is looked for).
sys.path.insert(0, config.test_source_root)
from find_ptxas import find_ptxas  # noqa: E402
from sanitizers import use_sanitizers  # noqa: E402

# A sanitized build: the sanitizers' options and symbolizer.
use_sanitizers(config)

ptxas = find_ptxas(config.moe_src_root)
have_ptxas = ptxas is not None
optional_feature("ptxas", have_ptxas,
                 "no ptxas (set MOE_PTXAS, put the CUDA toolkit on PATH, or "
                 "run scripts/setup.sh, whose torch brings triton's ptxas)")
config.substitutions.append(("%ptxas", '"%s"' % (ptxas or "ptxas")))
optional_feature("fuzzers", config.moe_fuzzers,
                 "the libFuzzer targets are not built (configure with "
                 "-DMOE_ENABLE_FUZZERS=ON)")
