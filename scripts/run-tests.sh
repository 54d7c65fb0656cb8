#!/usr/bin/env bash
# Sets everything up, then runs both test suites:
#   check-moe              FileCheck / verify-diagnostics / GoogleTest tests,
#                          the ptxas checks and a fuzzing smoke run (LLVM only);
#   check-moe-integration  fixtures and numerics against transformers, peft
#                          and onnxruntime, the Python tools (the .venv).
# Both run even when the first fails; any failure fails the script, and so
# does a tier that cannot run (MOE_REQUIRE_ALL_FEATURES: no ptxas, no
# fuzzers, no virtualenv are errors here, not skips).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
cd "$root"
export MOE_REQUIRE_ALL_FEATURES=1
status=0
cmake --build build --target check-moe || status=1
cmake --build build --target check-moe-integration || status=1
exit "$status"
