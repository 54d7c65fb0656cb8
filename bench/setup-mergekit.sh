#!/usr/bin/env bash
# Makes bench/.venv-mergekit: mergekit (PyPI) in a virtualenv of its own, so
# that it cannot change the project's pinned packages in .venv. mergekit
# needs torch >= 2 and transformers 5, which .venv pins already: rather than
# downloading torch again (several GB with its CUDA wheels), the virtualenv
# reads .venv's packages through a .pth file, after its own, and pip
# installs what else mergekit needs into bench/.venv-mergekit only (pip
# never removes packages outside the environment it installs into).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/bench/.venv-mergekit"
version="${MERGEKIT_VERSION:-0.1.5}"
if [[ -x "$venv/bin/mergekit-moe" ]]; then
  exit 0
fi
python3 -m venv "$venv"
project_site="$("$root/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
own_site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$project_site" >"$own_site/moe-project-venv.pth"
"$venv/bin/pip" install -q "mergekit==$version"
"$venv/bin/mergekit-moe" --help >/dev/null
