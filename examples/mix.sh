#!/usr/bin/env bash
# The built-in example, end to end: a tiny Llama base and three domain
# experts fine-tuned from it (made by transformers, see python/moe_fixtures),
# mixed by one command from a mergekit-moe config (examples/mix.yml): routers
# calibrated on the experts' prompts, a Mixtral checkpoint and an ONNX graph
# written; the checkpoint is loaded back by transformers (no remote code)
# and asked for a few tokens, the graph run by ONNX Runtime.
#
#   examples/mix.sh [WORK_DIR]    # default: build/example (replaced)
#
# Run it through scripts/run-example.sh, which sets up and builds first.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MOE_BIN="${MOE_BIN:-$root/build/bin}"
venv="$root/.venv/bin"
work="${1:-$root/build/example}"
export PYTHONPATH="$root/python"
export MOE_FIXTURE_CACHE="${MOE_FIXTURE_CACHE:-$root/build/fixtures}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$work"
mkdir -p "$work"
cd "$work"

step "Models: a base and three experts (LlamaForCausalLM, 2 layers, hidden 32)"
"$venv/python" -m moe_fixtures make llama base >/dev/null
for expert in math:1 code:2 chat:3; do
  "$venv/python" -m moe_fixtures make "llama-expert-${expert#*:}" "${expert%:*}" >/dev/null
done
ls

step "Mix: one command from the config ($root/examples/mix.yml)"
"$venv/moe-mix" "$root/examples/mix.yml" mix-moe
ls mix-moe mix-moe/onnx

step "Load the checkpoint in transformers and generate; run the ONNX graph"
"$venv/python" - mix-moe <<'PYTHON'
import sys
import warnings

import numpy as np
import onnxruntime
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
    logits = model(ids).logits.float().numpy()
print(f"{type(model).__name__}: {model.config.num_local_experts} experts, "
      f"{model.config.num_experts_per_tok} per token, {model.dtype}")
print(f"prompt:     {prompt!r}")
print(f"completion: {tokenizer.decode(out[0, ids.shape[1]:])!r}")
session = onnxruntime.InferenceSession(f"{path}/onnx/model.onnx",
                                       providers=["CPUExecutionProvider"])
feed = {session.get_inputs()[0].name: ids.numpy()}
onnx_logits = session.run(None, feed)[0]
print(f"ONNX Runtime: next token {int(onnx_logits[0, -1].argmax())}, "
      f"transformers (bfloat16 weights): {int(logits[0, -1].argmax())}")
PYTHON
printf '\nEverything is in %s\n' "$work"
