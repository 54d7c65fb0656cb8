"""The fixture catalog: every fixture's name, description and exact recipe.

This module is pure data and imports nothing heavy, so listing fixtures and
computing cache paths stays fast. The recipes are carried out by
:mod:`moe_fixtures.models` (full checkpoints) and :mod:`moe_fixtures.adapters`
(PEFT LoRA adapters).

All models are tiny: hidden_size 32, intermediate_size 64, 2 layers, 4
attention heads of head_dim 8, 2 key/value heads, vocabulary 128,
max_position_embeddings 128, bos/eos token ids 1/2, no pad token, untied
embeddings, initializer_range 0.2, float32 on disk, unless the fixture says
otherwise.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """A full Hugging Face checkpoint made by ``<family>ForCausalLM``.

    family: key of :data:`moe_fixtures.models.FAMILIES` (llama, mistral, ...).
    config: keyword arguments of the family's config class.
    seed: ``torch.manual_seed`` for this fixture. A fresh model is randomly
        initialised from it (then "textured", see :mod:`moe_fixtures.models`);
        a derived model uses it for its perturbation.
    weights_from: the fixture whose weights are reused instead of a fresh
        initialisation (its config must give the same shapes, except that a
        tied model drops ``lm_head.weight``).
    perturb: add the expert perturbation (N(0, 0.02) to every MLP weight,
        N(0, 0.002) to every other tensor) to the reused weights.
    dtype: torch dtype name the checkpoint is saved in.
    max_shard_size: passed to ``save_pretrained`` to shard the checkpoint.
    """

    family: str
    config: dict
    seed: int
    weights_from: str | None = None
    perturb: bool = False
    dtype: str = "float32"
    max_shard_size: str | None = None

    @property
    def requires(self):
        return (self.weights_from,) if self.weights_from else ()


@dataclass(frozen=True)
class AdapterSpec:
    """A PEFT LoRA adapter for the model fixture ``base``.

    Made by ``get_peft_model(base model, LoraConfig(r, lora_alpha,
    target_modules, use_rslora))`` with ``torch.manual_seed(seed)``; lora_A
    keeps peft's seeded initialisation and lora_B, which peft zeroes, is
    filled with seeded N(0, 0.02) values so that the adapter changes the
    output. adapter_config.json names the base by its plain fixture name.
    """

    base: str
    seed: int
    r: int
    lora_alpha: int
    target_modules: tuple[str, ...]
    use_rslora: bool = False

    @property
    def requires(self):
        return (self.base,)


@dataclass(frozen=True)
class Fixture:
    name: str
    description: str
    spec: ModelSpec | AdapterSpec


TINY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 128,
    "max_position_embeddings": 128,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": None,
    "tie_word_embeddings": False,
    # 10x transformers' default (0.02), so that attention is far from
    # uniform and rope, masks and head layout visibly change the logits.
    "initializer_range": 0.2,
    # transformers 5 spelling of rope_theta / rope_scaling.
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
}

LLAMA = {**TINY, "rms_norm_eps": 1e-5}
MISTRAL = {**TINY, "rms_norm_eps": 1e-5, "sliding_window": 16}
QWEN2 = {**TINY, "rms_norm_eps": 1e-6}
GRANITE = {**TINY, "rms_norm_eps": 1e-5, "embedding_multiplier": 12.0,
           "residual_multiplier": 0.22, "attention_multiplier": 0.125,
           "logits_scaling": 4.0}
PHI3 = {**TINY, "rms_norm_eps": 1e-5, "original_max_position_embeddings": 128}
GEMMA = {**TINY, "rms_norm_eps": 1e-6, "head_dim": 8,
         "tie_word_embeddings": True}

LLAMA3_ROPE = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0,
               "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 32}

DECODER_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj",
                   "gate_proj", "up_proj", "down_proj")


def _model(name, description, family, config, seed, **kwargs):
    return Fixture(name, description,
                   ModelSpec(family, config, seed, **kwargs))


def _expert(base, family, config, index, seed):
    return _model(f"{base}-expert-{index}",
                  f"{base} weights + seeded perturbation #{index} "
                  "(MLP N(0,0.02), rest N(0,0.002))",
                  family, config, seed, weights_from=base, perturb=True)


def _lora(name, description, base, seed, r, alpha, targets, rslora=False):
    return Fixture(name, description,
                   AdapterSpec(base, seed, r, alpha, tuple(targets), rslora))


_ALL = [
    _model("llama", "LlamaForCausalLM, the base of the llama experts and "
           "adapters", "llama", LLAMA, 1000),
    _model("llama-tied", "llama weights without lm_head.weight, "
           "tie_word_embeddings=true", "llama",
           {**LLAMA, "tie_word_embeddings": True}, 1001, weights_from="llama"),
    _model("llama-sharded", "llama weights in 3 safetensors shards + "
           "model.safetensors.index.json", "llama", LLAMA, 1002,
           weights_from="llama", max_shard_size="40KB"),
    _model("llama-bf16", "llama weights saved in bfloat16", "llama", LLAMA,
           1003, weights_from="llama", dtype="bfloat16"),
    _model("llama-rope-scaled", "llama weights, llama3 rope scaling "
           "(factor 8, original_max_position_embeddings 32)", "llama",
           {**LLAMA, "rope_parameters": LLAMA3_ROPE}, 1004,
           weights_from="llama"),
    _model("llama-gqa1", "llama config with num_key_value_heads=1 (MQA), "
           "fresh weights", "llama", {**LLAMA, "num_key_value_heads": 1},
           1005),
    _model("llama-wide", "llama config with hidden_size=48, fresh weights",
           "llama", {**LLAMA, "hidden_size": 48}, 1006),
    _model("llama-deep", "llama config with 3 layers, fresh weights",
           "llama", {**LLAMA, "num_hidden_layers": 3}, 1007),
    _model("llama-vocab", "llama config with vocab_size=160, fresh weights",
           "llama", {**LLAMA, "vocab_size": 160}, 1008),
    _model("mistral", "MistralForCausalLM, sliding_window 16", "mistral",
           MISTRAL, 1100),
    _model("qwen2", "Qwen2ForCausalLM, q/k/v projections with biases",
           "qwen2", QWEN2, 1200),
    _model("granite", "GraniteForCausalLM with embedding/residual/attention "
           "multipliers and logits_scaling", "granite", GRANITE, 1300),
    _model("phi3", "Phi3ForCausalLM: fused qkv_proj and gate_up_proj",
           "phi3", PHI3, 1400),
    _model("gemma", "GemmaForCausalLM: tied, (1+w) RMSNorm, sqrt(hidden) "
           "embedding scale, gelu_pytorch_tanh", "gemma", GEMMA, 1500),
    _expert("llama", "llama", LLAMA, 1, 2001),
    _expert("llama", "llama", LLAMA, 2, 2002),
    _expert("llama", "llama", LLAMA, 3, 2003),
    _expert("mistral", "mistral", MISTRAL, 1, 2101),
    _expert("mistral", "mistral", MISTRAL, 2, 2102),
    _expert("qwen2", "qwen2", QWEN2, 1, 2201),
    _expert("qwen2", "qwen2", QWEN2, 2, 2202),
    _lora("llama-lora-attn", "LoRA on llama: r=4, alpha=8, q_proj,v_proj",
          "llama", 3001, 4, 8, ("q_proj", "v_proj")),
    _lora("llama-lora-mlp", "LoRA on llama: r=8, alpha=16, "
          "gate_proj,up_proj,down_proj", "llama", 3002, 8, 16,
          ("gate_proj", "up_proj", "down_proj")),
    _lora("llama-lora-all", "LoRA on llama: r=2, alpha=4, all 7 decoder "
          "linears, use_rslora", "llama", 3003, 2, 4, DECODER_LINEARS,
          rslora=True),
    _lora("llama-lora-wide", "LoRA on llama-wide (hidden 48): r=4, alpha=8, "
          "q_proj,v_proj", "llama-wide", 3004, 4, 8, ("q_proj", "v_proj")),
]

FIXTURES = {fixture.name: fixture for fixture in _ALL}
