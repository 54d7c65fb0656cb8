#!/usr/bin/env bash
# The built-in example, end to end: a tiny Llama base and three domain
# experts fine-tuned from it (made by transformers, see python/moe_fixtures),
# imported into the moe dialect, mixed into a routed MoE with a noisy top-2
# router, exported as a standard Mixtral checkpoint, loaded back by
# transformers (no remote code) and asked for a few tokens.
#
#   examples/mix.sh [WORK_DIR]    # default: build/example (replaced)
#
# Run it through scripts/run-example.sh, which sets up and builds first.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${MOE_BIN:-$root/build/bin}"
python="$root/.venv/bin/python"
work="${1:-$root/build/example}"
export PYTHONPATH="$root/python"
export MOE_FIXTURE_CACHE="${MOE_FIXTURE_CACHE:-$root/build/fixtures}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$work"
mkdir -p "$work"

step "Models: a base and three experts (LlamaForCausalLM, 2 layers, hidden 32)"
"$python" -m moe_fixtures make llama "$work/base" >/dev/null
for expert in math:1 code:2 chat:3; do
  "$python" -m moe_fixtures make "llama-expert-${expert#*:}" \
    "$work/${expert%:*}" >/dev/null
done
ls "$work"

step "Import: one function per model, weights referenced on disk"
"$bin/moe-translate" --import-hf "$work/base" --expert math="$work/math" \
  --expert code="$work/code" --expert chat="$work/chat" -o "$work/input.mlir"
grep -E '^  (moe.scope|func.func)' "$work/input.mlir" | cut -c1-100

step "Mix: the four FFNs of every layer become routed experts, top 2"
# The parameter report is a remark too; it goes to the log, the JSON below.
"$bin/moe-opt" "$work/input.mlir" \
  --moe-mix-experts="experts=base,math,code,chat router=noisy k=2" \
  --moe-report-params="output=$work/params.json" -o "$work/mix.mlir" \
  2>"$work/mix.log" || { cat "$work/mix.log"; exit 1; }
grep -m1 -E 'moe.experts' "$work/mix.mlir" | cut -c1-100

step "Export: a Mixtral checkpoint transformers loads as it is"
"$bin/moe-translate" --export-hf "$work/mix.mlir" -o "$work/mixtral"
ls "$work/mixtral"

step "Load it back in transformers and generate"
"$python" - "$work/mixtral" <<'EOF'
import sys
import warnings

import torch
import transformers

warnings.simplefilter("ignore")
transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()
path = sys.argv[1]
tokenizer = transformers.AutoTokenizer.from_pretrained(path)
model = transformers.AutoModelForCausalLM.from_pretrained(path).eval()
prompt = "w5 w6 w7"
ids = tokenizer(prompt, return_tensors="pt").input_ids
with torch.no_grad():
    out = model.generate(ids, max_new_tokens=8, do_sample=False)
print(f"{type(model).__name__}: {model.config.num_local_experts} experts, "
      f"{model.config.num_experts_per_tok} per token")
print(f"prompt:     {prompt!r}")
print(f"completion: {tokenizer.decode(out[0, ids.shape[1]:])!r}")
EOF

step "Parameters (moe-report-params)"
"$python" - "$work/params.json" <<'EOF'
import json
import sys

for name, counts in json.load(open(sys.argv[1]))["functions"].items():
    print(f"@{name}: " + ", ".join(f"{key} {value:,}"
                                   for key, value in counts.items()))
EOF
printf '\nEverything is in %s\n' "$work"
