#!/usr/bin/env bash
# The main job on the built-in example: sets everything up, then runs
# examples/mix.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
exec "$root/examples/mix.sh" "$@"
