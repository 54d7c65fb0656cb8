"""Builds the full-checkpoint fixtures of :mod:`moe_fixtures.catalog`.

A fresh model is ``<Family>ForCausalLM(<Family>Config(**spec.config))``
created right after ``torch.manual_seed(spec.seed)``, so transformers' own
random initialisation (normal, std ``initializer_range``, 0.2 here) makes
the weights. Because that initialisation leaves RMSNorm weights at exactly 1
(0 for Gemma's ``1 + w`` norm) and biases at 0, a fresh model is then
"textured", still from the same seeded generator: N(0, 0.1) is added to every
``*norm.weight`` and N(0, 0.02) to every bias, so an importer that drops norm
weights or biases gets visibly wrong numbers.

A derived model (``spec.weights_from``) instead loads the weights of another
fixture from the cache, optionally perturbed like a fine-tuned expert:
N(0, 0.02) added to every tensor under ``.mlp.`` and N(0, 0.002) to every
other tensor (embeddings, attention, norms, biases, lm_head). Against weights
of std 0.2 that is ~10% on the FFNs and ~1% elsewhere: llama-expert-1's
logits differ from llama's by ~23% (relative L2), the non-MLP noise alone
accounting for ~4%.

Every model is saved with ``save_pretrained(safe_serialization=True)`` in
``spec.dtype`` (config.json, generation_config.json, model.safetensors or
shards + model.safetensors.index.json), plus the tiny tokenizer of
:mod:`moe_fixtures.tokenizer` except for the families in WITHOUT_TOKENIZER.
"""

import copy

import torch
import transformers

from . import tokenizer

# Family name -> the prefix of its transformers Config / ForCausalLM classes.
FAMILIES = {
    "llama": "Llama",
    "mistral": "Mistral",
    "qwen2": "Qwen2",
    "granite": "Granite",
    "phi3": "Phi3",
    "gemma": "Gemma",
}

# For model_type qwen2, AutoTokenizer in transformers 5 ignores the class and
# pipeline in tokenizer_config.json / tokenizer.json and rebuilds Qwen2's
# byte-level BPE from the vocabulary, which breaks the word-level tokenizer:
# these families ship without one.
WITHOUT_TOKENIZER = {"qwen2"}

NORM_STD = 0.1
BIAS_STD = 0.02
EXPERT_MLP_STD = 0.02
EXPERT_OTHER_STD = 0.002


def build(spec, dest, inputs):
    """Writes the checkpoint of ModelSpec ``spec`` into directory ``dest``.

    inputs maps the fixtures named by ``spec.requires`` to their cache
    directories.
    """
    prefix = FAMILIES[spec.family]
    # A copy: config classes edit nested dicts such as rope_parameters in place.
    config_class = getattr(transformers, prefix + "Config")
    config = config_class(**copy.deepcopy(spec.config))
    torch.manual_seed(spec.seed)
    model = getattr(transformers, prefix + "ForCausalLM")(config)
    with torch.no_grad():
        if spec.weights_from:
            _load_weights(model, inputs[spec.weights_from])
            if spec.perturb:
                _perturb(model)
        else:
            _texture(model)
    model.to(getattr(torch, spec.dtype))
    sharding = ({"max_shard_size": spec.max_shard_size}
                if spec.max_shard_size else {})
    model.save_pretrained(dest, safe_serialization=True, **sharding)
    if spec.family not in WITHOUT_TOKENIZER:
        tokenizer.build(config.vocab_size, config.max_position_embeddings) \
            .save_pretrained(dest)


def _texture(model):
    for name, param in model.named_parameters():
        if name.endswith("norm.weight"):
            param.add_(torch.randn_like(param) * NORM_STD)
        elif name.endswith(".bias"):
            param.add_(torch.randn_like(param) * BIAS_STD)


def _perturb(model):
    for name, param in model.named_parameters():
        std = EXPERT_MLP_STD if ".mlp." in name else EXPERT_OTHER_STD
        param.add_(torch.randn_like(param) * std)


def _load_weights(model, source_dir):
    """Copies the weights of the checkpoint in source_dir into model.

    A tied model takes the source's embedding and ignores its lm_head.
    """
    source = transformers.AutoModelForCausalLM.from_pretrained(
        source_dir, dtype=torch.float32)
    state = source.state_dict()
    if model.config.tie_word_embeddings:
        del state["lm_head.weight"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = ["lm_head.weight"] if model.config.tie_word_embeddings else []
    if missing != tied or unexpected:
        raise RuntimeError(
            f"weights of {source_dir} do not fit: missing {missing}, "
            f"unexpected {unexpected}")
