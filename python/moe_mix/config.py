"""The moe-mix config: mergekit-moe's YAML schema and our extensions.

mergekit-moe 0.1.5 (`mergekit/moe/config.py`: `MoEMergeConfig`, `Expert`,
`ModelReference`) reads `base_model`, `experts` (`source_model`,
`positive_prompts`, `negative_prompts`, `noise_scale`, `residual_scale`),
`gate_mode`, `dtype`, `experts_per_token`, `shared_experts` (the same
fields as an expert) and `architecture`, and silently ignores any other
key. Here every key is checked: an unknown one is an error naming it and
its line. The extensions (SCHEMA.md) add router options, layer subsets,
averaged stems, LoRA adapters, SVD decomposition, calibration options and
several outputs.

`parse(path)` returns a `MixConfig` whose paths are absolute and whose
values are checked; it reads no model (see `models.py`).
"""

import dataclasses
import difflib
import os
import re

from .yaml_source import ConfigError, load

# gate_mode -> moe-mix-experts router. mergekit's modes first.
MERGEKIT_GATE_MODES = ("hidden", "cheap_embed", "random", "uniform_random")
# mergekit's get_gate_params also takes these two spellings of hidden.
MERGEKIT_HIDDEN_VARIANTS = ("hidden_avg", "hidden_last")
OUR_GATE_MODES = ("gateless", "noisy", "base_init", "given")
GATE_MODES = MERGEKIT_GATE_MODES + MERGEKIT_HIDDEN_VARIANTS + OUR_GATE_MODES
DATA_GATE_MODES = ("hidden", "hidden_avg", "hidden_last", "cheap_embed")
# mergekit's "random" is torch.randn: standard deviation 1.
MERGEKIT_RANDOM_STD = 1.0

DTYPES = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}
OUTPUT_FORMATS = ("hf", "onnx", "onnx-genai", "gguf", "mlir", "gpu")
DEFAULT_OUTPUT_PATHS = {"hf": ".", "onnx": "onnx/model.onnx",
                        "onnx-genai": "onnx-genai", "gguf": "gguf/model.gguf",
                        "mlir": "mlir", "gpu": "gpu"}
ONNX_WEIGHTS = ("f32", "f16", "bf16", "int8", "int4")
GGUF_TYPES = ("auto", "f32", "f16", "bf16", "q8_0")
RESERVED_NAMES = ("base", "mix")


@dataclasses.dataclass
class Model:
    """A model directory named in the config."""
    path: str          # absolute
    written: str       # as written in the config
    where: str         # "file:line: key" for messages


@dataclasses.dataclass
class Expert:
    model: Model
    name: str          # function name in the IR ("base" for the base itself)
    positive: list
    negative: list
    where: str
    always_on: bool = False
    prompts_where: str = ""        # positive_prompts, or the entry without one


@dataclasses.dataclass
class Adapter:
    path: str
    name: str
    where: str


@dataclasses.dataclass
class Routing:
    scoring: str = None
    renormalize: bool = None
    router_std: float = None
    seed: int = None
    fine_grained: bool = False
    route_attention: bool = False
    global_router: bool = False
    router_weights: str = None
    condition_warning: float = None


@dataclasses.dataclass
class Calibration:
    dtype: str = "float32"
    pooling: str = None          # default from gate_mode
    cheap_embed: str = "mergekit"


@dataclasses.dataclass
class AdapterRouting:
    router: str = None
    normalization: str = None
    top_k: int = None
    router_std: float = None
    seed: int = None
    router_weights: str = None


@dataclasses.dataclass
class Decompose:
    rank: int = None
    modules: list = None
    oversample: int = None
    power_iterations: int = None
    seed: int = None


@dataclasses.dataclass
class Output:
    format: str
    path: str                    # relative to OUT, normalised
    options: dict
    where: str


@dataclasses.dataclass
class MixConfig:
    file: str
    base: Model
    experts: list                # routed experts, in router-row order
    shared: Expert = None        # a shared expert (gated or always on)
    adapters: list = dataclasses.field(default_factory=list)
    gate_mode: str = "hidden"
    gate_mode_where: str = ""
    experts_per_token: int = 2
    dtype: str = None            # mergekit's top-level dtype, as f32/bf16/f16
    architecture: str = None
    architecture_where: str = ""
    layers: list = None
    stem: str = None
    routing: Routing = dataclasses.field(default_factory=Routing)
    calibration: Calibration = dataclasses.field(default_factory=Calibration)
    adapter_routing: AdapterRouting = None
    decompose: Decompose = None
    outputs: list = dataclasses.field(default_factory=list)
    warnings: list = dataclasses.field(default_factory=list)

    @property
    def kind(self):
        """'experts' (moe-mix-experts), 'adapters' (moe-mix-adapters over
        PEFT adapters) or 'decompose' (experts turned into adapters first)."""
        if self.decompose is not None:
            return "decompose"
        return "adapters" if self.adapters and not self.experts else "experts"

    @property
    def needs_calibration(self):
        return self.kind == "experts" and self.gate_mode in DATA_GATE_MODES


class _Mapping:
    """A YAML mapping being read: typed getters whose errors name the file,
    line and key path; `finish` rejects the keys nobody read."""

    def __init__(self, located, file, path):
        self.located = located
        self.file = file
        self.path = path  # "experts[1]", "" at the top
        self.read = set()

    def where(self, key=None):
        line = self.located.key_lines.get(key, self.located.line) \
            if key is not None else self.located.line
        name = ".".join(part for part in (self.path, key) if part)
        return f"{self.file}:{line}: {name}" if name else f"{self.file}:{line}"

    def error(self, key, message):
        return ConfigError(f"{self.where(key)}: {message}")

    def has(self, key):
        return key in self.located.value and self.located.value[key].value is not None

    def raw(self, key):
        self.read.add(key)
        item = self.located.value.get(key)
        return None if item is None or item.value is None else item

    def string(self, key, default=None, choices=None):
        item = self.raw(key)
        if item is None:
            return default
        if not isinstance(item.value, str):
            raise self.error(key, f"expected a string, got {_describe(item.value)}")
        if choices is not None and item.value not in choices:
            raise self.error(key, f"'{item.value}' is not one of "
                                  f"{', '.join(choices)}")
        return item.value

    def integer(self, key, default=None, minimum=None):
        item = self.raw(key)
        if item is None:
            return default
        if not isinstance(item.value, int) or isinstance(item.value, bool):
            raise self.error(key, f"expected an integer, got {_describe(item.value)}")
        if minimum is not None and item.value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {item.value}")
        return item.value

    def number(self, key, default=None, positive=False):
        item = self.raw(key)
        if item is None:
            return default
        if not isinstance(item.value, (int, float)) or isinstance(item.value, bool):
            raise self.error(key, f"expected a number, got {_describe(item.value)}")
        if positive and not item.value > 0:
            raise self.error(key, f"must be positive, got {item.value}")
        return float(item.value)

    def boolean(self, key, default=None):
        item = self.raw(key)
        if item is None:
            return default
        if not isinstance(item.value, bool):
            raise self.error(key, f"expected true or false, got {_describe(item.value)}")
        return item.value

    def strings(self, key):
        """A list of strings (None when absent)."""
        item = self.raw(key)
        if item is None:
            return None
        if not isinstance(item.value, list):
            raise self.error(key, f"expected a list of strings, got "
                                  f"{_describe(item.value)}")
        values = []
        for index, element in enumerate(item.value):
            if not isinstance(element.value, str):
                raise ConfigError(
                    f"{self.file}:{element.line}: {self.path + '.' if self.path else ''}"
                    f"{key}[{index}]: expected a string, got {_describe(element.value)}")
            values.append(element.value)
        return values

    def integers(self, key, minimum=None):
        item = self.raw(key)
        if item is None:
            return None
        if not isinstance(item.value, list) or not item.value:
            raise self.error(key, "expected a non-empty list of integers")
        values = []
        for index, element in enumerate(item.value):
            if not isinstance(element.value, int) or isinstance(element.value, bool) \
                    or (minimum is not None and element.value < minimum):
                raise ConfigError(
                    f"{self.file}:{element.line}: {self.path + '.' if self.path else ''}"
                    f"{key}[{index}]: expected an integer"
                    + (f" >= {minimum}" if minimum is not None else "")
                    + f", got {_describe(element.value)}")
            values.append(element.value)
        return values

    def mapping(self, key):
        item = self.raw(key)
        if item is None:
            return None
        if not isinstance(item.value, dict):
            raise self.error(key, f"expected a mapping, got {_describe(item.value)}")
        return _Mapping(item, self.file, ".".join(p for p in (self.path, key) if p))

    def mappings(self, key):
        """A list of mappings (None when absent)."""
        item = self.raw(key)
        if item is None:
            return None
        if not isinstance(item.value, list):
            raise self.error(key, f"expected a list, got {_describe(item.value)}")
        result = []
        for index, element in enumerate(item.value):
            path = f"{'.'.join(p for p in (self.path, key) if p)}[{index}]"
            if not isinstance(element.value, dict):
                raise ConfigError(f"{self.file}:{element.line}: {path}: expected a "
                                  f"mapping, got {_describe(element.value)}")
            result.append(_Mapping(element, self.file, path))
        return result

    def finish(self, known):
        for key in self.located.value:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else \
                    f" (known keys: {', '.join(known)})"
                raise self.error(key, f"unknown key{hint}")


def _describe(value):
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, str):
        return f"the string '{value}'"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _model_reference(mapping, key, base_dir):
    """mergekit's ModelReference: 'path', 'path@revision', 'path+lora' or
    {model: path | {path, revision}, lora, override_architecture}. Only
    local directories are read here: revisions, LoRA references and
    architecture overrides are refused with the reason."""
    item = mapping.raw(key)
    if item is None:
        raise mapping.error(key, "missing (the model's directory)")
    where = mapping.where(key)
    value = item.value
    if isinstance(value, dict):
        sub = _Mapping(item, mapping.file, ".".join(p for p in (mapping.path, key) if p))
        if sub.has("lora"):
            raise sub.error("lora", "LoRA references are not mixed as full "
                            "experts; list the adapter under 'adapters:' instead")
        if sub.has("override_architecture"):
            raise sub.error("override_architecture", "not supported: the "
                            "architecture is read from the model's config.json")
        model = sub.raw("model")
        if model is None:
            raise sub.error("model", "missing (the model's directory)")
        if isinstance(model.value, dict):
            inner = _Mapping(model, mapping.file, sub.path + ".model")
            if inner.has("revision"):
                raise inner.error("revision", "Hub revisions are not supported: "
                                  "moe-mix reads local model directories")
            text = inner.string("path")
            if text is None:
                raise inner.error("path", "missing (the model's directory)")
            inner.finish(("path", "revision"))
        elif isinstance(model.value, str):
            text = model.value
        else:
            raise sub.error("model", f"expected a path, got {_describe(model.value)}")
        sub.finish(("model", "lora", "override_architecture"))
    elif isinstance(value, str):
        text = value
        if "+" in text and not os.path.exists(_resolve(text, base_dir)):
            raise mapping.error(key, f"'{text}' is a mergekit LoRA reference "
                                "(model+lora): list the adapter under 'adapters:' "
                                "instead")
        if "@" in text and not os.path.exists(_resolve(text, base_dir)):
            raise mapping.error(key, f"'{text}' names a Hub revision: moe-mix "
                                "reads local model directories")
    else:
        raise mapping.error(key, f"expected a model directory, got {_describe(value)}")
    return Model(_resolve(text, base_dir), text, where)


def _resolve(path, base_dir):
    return os.path.normpath(os.path.join(base_dir, os.path.expanduser(path)))


def _function_name(model, used):
    """An IR function name for a model: its directory name as an
    identifier, made unique."""
    stem = os.path.basename(model.path.rstrip(os.sep)) or "expert"
    name = re.sub(r"[^A-Za-z0-9_]", "_", stem)
    if not re.match(r"[A-Za-z_]", name):
        name = "m_" + name
    if name in RESERVED_NAMES:
        name += "_expert"
    candidate, suffix = name, 2
    while candidate in used:
        candidate, suffix = f"{name}_{suffix}", suffix + 1
    return candidate


def _name(mapping, used):
    name = mapping.string("name")
    if name is None:
        return None
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise mapping.error("name", f"'{name}' is not an identifier (letters, "
                            "digits and '_', not starting with a digit)")
    if name in RESERVED_NAMES:
        raise mapping.error("name", f"'{name}' is reserved (the base model and "
                            "the mix)")
    if name in used:
        raise mapping.error("name", f"'{name}' is used twice")
    return name


EXPERT_KEYS = ("source_model", "positive_prompts", "negative_prompts",
               "noise_scale", "residual_scale", "name")
SHARED_KEYS = EXPERT_KEYS + ("always_on",)


def _expert(mapping, base, used, base_dir, shared=False):
    model = _model_reference(mapping, "source_model", base_dir)
    # mergekit perturbs expert tensors with these; no pass of ours does.
    noise = mapping.number("noise_scale")
    if noise not in (None, 0.0):
        raise mapping.error("noise_scale", "not supported: moe-mix copies expert "
                            "weights unchanged (remove it, or set it to 0)")
    residual = mapping.number("residual_scale")
    if residual not in (None, 1.0):
        raise mapping.error("residual_scale", "not supported: moe-mix copies expert "
                            "weights unchanged (remove it, or set it to 1)")
    name = _name(mapping, used)
    if name is None:
        # The base listed as an expert is the base function itself, once.
        name = "base" if model.path == base.path and "base" not in used \
            else _function_name(model, used)
    used.add(name)
    always_on = mapping.boolean("always_on", False) if shared else False
    expert = Expert(model, name, mapping.strings("positive_prompts") or [],
                    mapping.strings("negative_prompts") or [], mapping.where(),
                    always_on, mapping.where("positive_prompts"))
    if always_on and (expert.positive or expert.negative):
        raise mapping.error("always_on", "an always-on expert has no gate: remove "
                            "its positive_prompts and negative_prompts")
    mapping.finish(SHARED_KEYS if shared else EXPERT_KEYS)
    return expert


TOP_KEYS = ("base_model", "experts", "gate_mode", "dtype", "experts_per_token",
            "shared_experts", "architecture",
            "layers", "stem", "routing", "calibration", "adapters",
            "adapter_routing", "decompose", "outputs")


def parse(file, base_dir=None, allow_all_same=False):
    """The MixConfig of the YAML file `file`. Relative model paths resolve
    against `base_dir` (default: the current directory, as mergekit-moe).
    `allow_all_same` lets every expert be the same model (mergekit's
    --i-understand-this-is-not-useful-without-training)."""
    base_dir = os.path.abspath(base_dir or os.getcwd())
    located = load(file)
    if not isinstance(located.value, dict):
        raise ConfigError(f"{file}:{located.line}: expected a mapping of keys "
                          f"(base_model, experts, ...), got {_describe(located.value)}")
    top = _Mapping(located, file, "")
    top.finish(TOP_KEYS)

    base = _model_reference(top, "base_model", base_dir)
    used = set()
    experts = [_expert(m, base, used, base_dir) for m in top.mappings("experts") or []]
    shared_list = [_expert(m, base, used, base_dir, shared=True)
                   for m in top.mappings("shared_experts") or []]
    if len(shared_list) > 1:
        raise ConfigError(f"{shared_list[1].where}: one shared expert at most "
                          "(moe-mix-experts takes one always-on or gated model)")
    adapters = _adapters(top, used, base_dir)

    config = MixConfig(file=file, base=base, experts=experts,
                       shared=shared_list[0] if shared_list else None,
                       adapters=adapters)
    config.decompose = _decompose(top)
    _mix_kind(top, config)
    if config.kind == "experts":
        _expert_options(top, config, allow_all_same)
    else:
        _adapter_options(top, config)
    config.outputs = _outputs(top, config)
    return config


def _adapters(top, used, base_dir):
    adapters = []
    for mapping in top.mappings("adapters") or []:
        path = mapping.string("source_adapter")
        if path is None:
            raise mapping.error("source_adapter", "missing (a PEFT LoRA adapter "
                                "directory)")
        model = Model(_resolve(path, base_dir), path, mapping.where("source_adapter"))
        name = _name(mapping, used) or _function_name(model, used)
        used.add(name)
        mapping.finish(("source_adapter", "name"))
        adapters.append(Adapter(model.path, name, model.where))
    return adapters


def _decompose(top):
    mapping = top.mapping("decompose")
    if mapping is None:
        return None
    decompose = Decompose(
        rank=mapping.integer("rank", minimum=1),
        modules=mapping.strings("modules"),
        oversample=mapping.integer("oversample", minimum=0),
        power_iterations=mapping.integer("power_iterations", minimum=0),
        seed=mapping.integer("seed"))
    mapping.finish(("rank", "modules", "oversample", "power_iterations", "seed"))
    return decompose


def _mix_kind(top, config):
    """Checks that experts, shared experts, adapters and decompose combine."""
    if not config.experts and not config.adapters:
        raise top.error("experts", "missing: list the expert models (or "
                        "'adapters:' for a mixture of LoRA adapters)")
    if config.adapters and config.experts and config.decompose is None:
        raise top.error("adapters", "full experts and LoRA adapters mix together "
                        "only as adapters: add 'decompose:' to turn the experts "
                        "into LoRA adapters by SVD, or mix one kind")
    if config.decompose is not None:
        if not config.experts:
            raise top.error("decompose", "needs 'experts:' (the full models to turn "
                            "into LoRA adapters)")
        for expert in config.experts:
            if expert.name == "base":
                raise ConfigError(f"{expert.where}: the base itself decomposes into "
                                  "an empty adapter (expert - base = 0)")
    if config.kind != "experts":
        if config.shared is not None:
            raise top.error("shared_experts", "a mixture of LoRA adapters has no "
                            "shared expert")
        for key in ("gate_mode", "experts_per_token", "layers", "stem",
                    "routing", "calibration"):
            if top.has(key):
                raise top.error(key, "applies to full experts (moe-mix-experts); a "
                                "mixture of LoRA adapters is routed by "
                                "'adapter_routing:'")
        for expert in config.experts:
            if expert.positive or expert.negative:
                raise ConfigError(f"{expert.where}: decomposed experts are routed "
                                  "by 'adapter_routing:', not by prompts: remove "
                                  "positive_prompts and negative_prompts")
    elif top.has("adapter_routing"):
        raise top.error("adapter_routing", "applies to mixtures of LoRA adapters "
                        "('adapters:' or 'decompose:')")


def _expert_options(top, config, allow_all_same):
    config.gate_mode = top.string("gate_mode", "hidden", GATE_MODES)
    config.gate_mode_where = top.where("gate_mode")
    config.experts_per_token = top.integer("experts_per_token", 2, minimum=1)
    dtype = top.string("dtype")
    if dtype is not None:
        config.dtype = _dtype(top, "dtype", dtype)
    architecture = top.string("architecture")
    if architecture is not None:
        if not any(name.lower().startswith(architecture.lower())
                   for name in ("Mixtral", "Qwen MoE")):
            raise top.error("architecture", f"'{architecture}': moe-mix writes "
                            "Mixtral or Qwen MoE (Qwen2-MoE) checkpoints")
        config.architecture = architecture
        config.architecture_where = top.where("architecture")
    config.layers = top.integers("layers", minimum=0)
    config.stem = top.string("stem", None, ("base", "average"))

    routing = top.mapping("routing")
    if routing is not None:
        config.routing = Routing(
            scoring=routing.string("scoring", None, ("softmax", "sigmoid")),
            renormalize=routing.boolean("renormalize"),
            router_std=routing.number("router_std", positive=True),
            seed=routing.integer("seed"),
            fine_grained=routing.boolean("fine_grained", False),
            route_attention=routing.boolean("route_attention", False),
            global_router=routing.boolean("global_router", False),
            router_weights=_path(routing, "router_weights"),
            condition_warning=routing.number("condition_warning", positive=True))
        routing.finish(("scoring", "renormalize", "router_std", "seed",
                        "fine_grained", "route_attention", "global_router",
                        "router_weights", "condition_warning"))
        if config.routing.router_weights and config.gate_mode != "given":
            raise routing.error("router_weights", "is read by gate_mode: given only")
    if config.gate_mode == "given" and not config.routing.router_weights:
        raise top.error("gate_mode", "given needs routing.router_weights (a "
                        "safetensors file of router tensors)")

    calibration = top.mapping("calibration")
    if calibration is not None:
        if config.gate_mode not in DATA_GATE_MODES:
            raise top.error("calibration", f"gate_mode {config.gate_mode} reads no "
                            "prompts: calibration applies to hidden and cheap_embed")
        config.calibration = Calibration(
            dtype=calibration.string("dtype", "float32", ("float32", "bfloat16")),
            pooling=calibration.string("pooling", None,
                                       ("last", "mean", "mean_padded")),
            cheap_embed=calibration.string("cheap_embed", "mergekit",
                                           ("mergekit", "moe")))
        calibration.finish(("dtype", "pooling", "cheap_embed"))
        if config.gate_mode == "cheap_embed" and calibration.has("pooling"):
            raise calibration.error("pooling", "applies to hidden states, not to "
                                    "gate_mode cheap_embed")
        if config.gate_mode != "cheap_embed" and calibration.has("cheap_embed"):
            raise calibration.error("cheap_embed", "applies to gate_mode cheap_embed")
    if config.calibration.pooling is None:
        config.calibration.pooling = \
            "mean_padded" if config.gate_mode == "hidden_avg" else "last"

    _check_experts(top, config, allow_all_same)


def _check_experts(top, config, allow_all_same):
    """mergekit-moe's checks (`is_bad_config`), and what our modes need."""
    experts, k = config.experts, config.experts_per_token
    if config.gate_mode != "gateless" and len(experts) < k:
        raise top.error("experts_per_token", f"{k} experts per token, but only "
                        f"{len(experts)} routed experts")
    if config.gate_mode in DATA_GATE_MODES:
        for expert in experts:
            if not expert.positive:
                raise ConfigError(f"{expert.prompts_where}: gate_mode "
                                  f"{config.gate_mode} needs at least one prompt "
                                  "per expert")
        if len(experts) > 1 and all(
                (e.positive, e.negative) == (experts[0].positive, experts[0].negative)
                for e in experts[1:]):
            raise top.error("experts", "every expert has the same prompts: the "
                            "router could not tell them apart")
        shared = config.shared
        if shared is not None and not shared.always_on and not shared.positive:
            raise ConfigError(f"{shared.prompts_where}: a gated shared "
                              f"expert needs prompts for its gate under gate_mode "
                              f"{config.gate_mode} (or set always_on: true)")
        if config.calibration.cheap_embed == "moe" and config.gate_mode == "cheap_embed":
            for expert in experts + ([shared] if shared else []):
                if expert.negative:
                    raise ConfigError(
                        f"{expert.where}: negative_prompts: calibration.cheap_embed: "
                        "moe (router=cheap-embed) takes positive prompts only")
            if shared is not None and not shared.always_on:
                raise ConfigError(
                    f"{shared.where}: calibration.cheap_embed: moe gives a gated "
                    "shared expert no gate; use the mergekit definition")
    else:
        # mergekit ignores them too (gate_mode random needs none).
        for expert in experts + ([config.shared] if config.shared else []):
            if expert.positive or expert.negative:
                config.warnings.append(
                    f"{expert.where}: prompts are not used by gate_mode "
                    f"{config.gate_mode} (only hidden and cheap_embed read them)")
    # As mergekit: random gates are for training, where copies are the point.
    if config.gate_mode not in ("random", "noisy", "base_init") and \
            not allow_all_same and len(experts) > 1 and all(
            e.model.path == experts[0].model.path for e in experts[1:]):
        raise top.error("experts", "every expert is the same model: the mix would "
                        "compute what that model computes at a higher cost "
                        "(--i-understand-this-is-not-useful-without-training "
                        "allows it, for router training)")


def _adapter_options(top, config):
    routing = top.mapping("adapter_routing")
    config.adapter_routing = AdapterRouting()
    if routing is not None:
        config.adapter_routing = AdapterRouting(
            router=routing.string("router", None,
                                  ("noisy", "uniform_random", "zero", "given")),
            normalization=routing.string("normalization", None, ("sigmoid", "softmax")),
            top_k=routing.integer("top_k", minimum=0),
            router_std=routing.number("router_std", positive=True),
            seed=routing.integer("seed"),
            router_weights=_path(routing, "router_weights"))
        routing.finish(("router", "normalization", "top_k", "router_std", "seed",
                        "router_weights"))
        given = config.adapter_routing.router == "given"
        if given != bool(config.adapter_routing.router_weights):
            raise routing.error("router_weights" if not given else "router",
                                "router: given and router_weights go together")
    count = len(config.adapters) + (len(config.experts) if config.decompose else 0)
    top_k = config.adapter_routing.top_k
    if top_k is not None and top_k > count:
        raise routing.error("top_k", f"{top_k} adapters per token, but the mixture "
                            f"has {count}")
    dtype = top.string("dtype")
    if dtype is not None:
        config.dtype = _dtype(top, "dtype", dtype)
    if top.has("architecture"):
        raise top.error("architecture", "a mixture of LoRA adapters has no Hugging "
                        "Face MoE architecture (export it as onnx)")


def _dtype(mapping, key, value):
    name = value[len("torch."):] if value.startswith("torch.") else value
    if name not in DTYPES:
        raise mapping.error(key, f"'{value}' is not one of {', '.join(DTYPES)}")
    return DTYPES[name]


def _path(mapping, key):
    value = mapping.string(key)
    return None if value is None else os.path.abspath(os.path.expanduser(value))


def _outputs(top, config):
    items = top.mappings("outputs")
    if items is None:
        if config.kind != "experts":
            raise top.error("outputs", "missing: a mixture of LoRA adapters has no "
                            "Hugging Face MoE form; ask for an onnx (or mlir, gpu) "
                            "output")
        return [Output("hf", ".", {"dtype": config.dtype}, top.where())]
    if not items:
        raise top.error("outputs", "empty: list at least one output")
    outputs = []
    for mapping in items:
        kind = mapping.string("format", None, OUTPUT_FORMATS)
        if kind is None:
            raise mapping.error("format", f"missing ({', '.join(OUTPUT_FORMATS)})")
        path = mapping.string("path", DEFAULT_OUTPUT_PATHS[kind])
        normalised = os.path.normpath(path)
        if os.path.isabs(path) or normalised.split(os.sep)[0] == "..":
            raise mapping.error("path", f"'{path}' must stay inside the output "
                                "directory (a relative path)")
        if kind != "hf" and normalised == ".":
            raise mapping.error("path", f"a {kind} output needs a path of its own")
        options = {}
        if kind == "hf":
            if config.kind != "experts":
                raise mapping.error("format", "a mixture of LoRA adapters has no "
                                    "Hugging Face MoE form: export it as onnx")
            dtype = mapping.string("dtype")
            options["dtype"] = _dtype(mapping, "dtype", dtype) if dtype else config.dtype
            shard = mapping.raw("shard_size")
            if shard is not None:
                if isinstance(shard.value, bool) or not isinstance(shard.value, (int, str)):
                    raise mapping.error("shard_size", "expected a size (5GB, 500MB, "
                                        "2GiB or a number of bytes)")
                options["shard_size"] = str(shard.value)
            known = ("format", "path", "dtype", "shard_size")
        elif kind in ("onnx", "onnx-genai"):
            options["moe"] = mapping.string("moe", None, ("fused", "portable"))
            options["weights"] = mapping.string("weights", None, ONNX_WEIGHTS)
            options["block_size"] = mapping.integer("block_size", minimum=16)
            options["int8_activations"] = mapping.boolean("int8_activations")
            known = ("format", "path", "moe", "weights", "block_size",
                     "int8_activations")
            if kind == "onnx":
                options["form"] = mapping.string("form", None,
                                                 ("prefill", "kv-cache"))
                known += ("form",)
        elif kind == "gguf":
            if config.kind != "experts":
                raise mapping.error("format", "a mixture of LoRA adapters has no "
                                    "llama.cpp form: export it as onnx")
            options["type"] = mapping.string("type", None, GGUF_TYPES)
            known = ("format", "path", "type")
        elif kind == "gpu":
            options["chip"] = mapping.string("chip")
            options["features"] = mapping.string("features")
            options["mma"] = mapping.string("mma", None, ("none", "tf32"))
            options["binary"] = mapping.string("binary", None, ("isa", "bin", "fatbin"))
            for key in ("block_m", "block_n", "block_k", "threads"):
                options[key] = mapping.integer(key, minimum=1)
            known = ("format", "path", "chip", "features", "mma", "binary",
                     "block_m", "block_n", "block_k", "threads")
        else:
            known = ("format", "path")
        mapping.finish(known)
        for other in outputs:
            if _overlaps(other.path, normalised):
                raise mapping.error("path", f"'{path}' overlaps the output at "
                                    f"'{other.path}' ({other.where}): give each "
                                    "output a path of its own")
        outputs.append(Output(kind, normalised, options, mapping.where()))
    return outputs


def _overlaps(first, second):
    if first == "." or second == ".":
        return first == second
    a, b = first.split(os.sep), second.split(os.sep)
    return a[:len(b)] == b or b[:len(a)] == a
