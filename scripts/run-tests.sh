#!/usr/bin/env bash
# Sets everything up, then runs the whole test suite (lit + GoogleTest +
# integration tests + fuzzing smoke run + generated-docs check).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
cd "$root"
cmake --build build --target check-moe
