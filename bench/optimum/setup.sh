#!/usr/bin/env bash
# Makes bench/optimum/.venv: Optimum's ONNX exporter (optimum-onnx, PyPI)
# in a virtualenv of its own, so that its transformers (< 4.58) cannot
# change the project's pinned packages in .venv (transformers 5.24). Like
# bench/setup-mergekit.sh, it reads .venv's packages through a .pth file,
# after its own, so that torch (several GB) is not downloaded twice; pip
# installs transformers 4.57 and the rest into bench/optimum/.venv only
# (pip never removes packages outside the environment it installs into).
# Idempotent: a second run does nothing unless requirements.txt changed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ -x "$venv/bin/optimum-cli" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
  exit 0
fi
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
project_site="$("$root/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
own_site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$project_site" >"$own_site/moe-project-venv.pth"
"$venv/bin/pip" install -q -r "$here/requirements.txt"
"$venv/bin/python" -c 'import transformers, optimum.exporters.onnx; assert transformers.__version__.startswith("4.57"), transformers.__version__'
echo "$want" >"$stamp"
