"""Builds the LoRA adapter fixtures of :mod:`moe_fixtures.catalog` with peft.

The base fixture is loaded from the cache, ``torch.manual_seed(spec.seed)``
is set, and ``get_peft_model(base, LoraConfig(r, lora_alpha, target_modules,
use_rslora, lora_dropout=0, task_type=CAUSAL_LM))`` adds the adapter: peft
initialises lora_A (Kaiming-uniform, seeded) and zeroes lora_B, which is then
filled with seeded N(0, 0.02) values so that the adapter changes the output.
``save_pretrained`` writes adapter_config.json, adapter_model.safetensors
(keys ``base_model.model.model.layers.N.<module>.lora_{A,B}.weight``, no
adapter name) and peft's model-card README.md. peft stores target_modules as
a set, so its list in adapter_config.json comes out in hash order; it is
sorted afterwards (the only edit to peft's output) to keep fixtures, and the
output of tests that print them, deterministic.

``base_model_name_or_path`` in adapter_config.json is the plain fixture name
of the base (e.g. ``llama``), not a path: materialise the base with
``python -m moe_fixtures make llama DIR`` and pass DIR explicitly.
"""

import json

import peft
import torch
import transformers

LORA_B_STD = 0.02


def build(spec, dest, inputs):
    """Writes the adapter of AdapterSpec ``spec`` into directory ``dest``.

    inputs maps ``spec.base`` to the base fixture's cache directory.
    """
    base = transformers.AutoModelForCausalLM.from_pretrained(
        inputs[spec.base], dtype=torch.float32)
    # peft records these (config and model card) as the base's name.
    base.name_or_path = base.config._name_or_path = spec.base
    torch.manual_seed(spec.seed)
    model = peft.get_peft_model(base, peft.LoraConfig(
        r=spec.r, lora_alpha=spec.lora_alpha,
        target_modules=list(spec.target_modules), use_rslora=spec.use_rslora,
        lora_dropout=0.0, task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".lora_B." in name:
                param.normal_(0.0, LORA_B_STD)
    model.save_pretrained(dest)
    _sort_target_modules(dest / "adapter_config.json")


def _sort_target_modules(path):
    config = json.loads(path.read_text())
    config["target_modules"] = sorted(config["target_modules"])
    # peft's own formatting.
    path.write_text(json.dumps(config, indent=2, sort_keys=True))
