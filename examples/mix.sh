#!/usr/bin/env bash
# The built-in example: runs a small mixed module through a moe-opt pipeline.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/build/bin/moe-opt" "$root/examples/tiny-mix.mlir" --canonicalize --cse
