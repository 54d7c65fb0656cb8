"""A config run end to end through the tools: import, calibration, mix,
then every output, into the staging directory.

| step | tool |
| --- | --- |
| import | `moe-translate --import-hf BASE --expert=NAME=DIR --adapter=NAME=DIR` |
| calibrate | `moe-calibrate` (gate modes hidden, hidden_avg, hidden_last, cheap_embed) |
| mix | `moe-opt --moe-mix-experts` / `--moe-decompose-experts` / `--moe-mix-adapters`, with `--moe-report-params` |
| hf | `moe-translate --export-hf` |
| onnx | `moe-translate --export-onnx` |
| onnx-genai | `moe-translate --export-onnx-genai` |
| gguf | `moe-translate --export-gguf` |
| mlir | the mixed module, with the files it reads |
| gpu | `moe-opt --moe-outline-weights [--moe-lower-to-gpu]`, the PTX of each kernel module |
"""

import json
import os
import re

from . import tools
from .config import MERGEKIT_RANDOM_STD
from .yaml_source import ConfigError

# gate_mode -> moe-mix-experts router of the modes that need no calibration.
_DIRECT_ROUTERS = {"random": "noisy", "uniform_random": "uniform-random",
                   "gateless": "gateless", "noisy": "noisy",
                   "base_init": "base-init", "given": "given"}
_ROOT_HF = ".moe-mix-hf"
_VERBS = {"hf": "export", "onnx": "export", "onnx-genai": "export",
          "gguf": "export", "mlir": "write", "gpu": "compile"}
# Our exports' architectures, as mergekit-moe names its output classes.
_MERGEKIT_ARCHITECTURE_NAMES = {"MixtralForCausalLM": "Mixtral",
                                "Qwen2MoeForCausalLM": "Qwen MoE"}


def option_value(text):
    """`text` quoted for an MLIR pass option when it holds separators."""
    if not re.search(r"[\s,='\"{}]", text):
        return text
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    raise ConfigError(f"{text}: a path with both kinds of quotes cannot be passed "
                      "to moe-opt")


def pass_option(name, options):
    """--name="key=value ..." from (key, value) pairs, None values skipped."""
    parts = []
    for key, value in options:
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            value = ",".join(str(item) for item in value)
        parts.append(f"{key}={option_value(str(value))}")
    return f"--{name}=" + " ".join(parts)


def _mlir_string(text):
    """`text` as MLIR prints it inside a string literal."""
    out = []
    for byte in text.encode("utf-8"):
        if byte == 0x5C:
            out.append("\\\\")
        elif 0x20 <= byte < 0x7F and byte != 0x22:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:02X}")
    return "".join(out)


def relocate_scopes(text, old, new):
    """The module `text` with the checkpoint paths of its `moe.scope`
    declarations that start with directory `old` moved under `new`: the
    files the mix reads from the staging directory are published with it."""
    old_prefix, new_prefix = _mlir_string(old.rstrip("/") + "/"), \
        _mlir_string(new.rstrip("/") + "/")
    pattern = re.compile(r'^(\s*moe\.scope @\S+ path ")' + re.escape(old_prefix),
                         re.MULTILINE)
    return pattern.sub(lambda match: match.group(1) + new_prefix, text)


def _directory_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass  # renamed while we looked
    return total


def _bytes(count):
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.2f} {unit}"
        count /= 1000


class Pipeline:
    def __init__(self, config, staged, display, found_tools):
        self.config = config
        self.staged = staged
        self.display = display
        self.tools = found_tools
        self.work = staged.work
        self.stage = staged.stage
        self.input = os.path.join(self.work, "input.mlir")
        self.mix = os.path.join(self.work, "mix.mlir")
        self.params = os.path.join(self.work, "params.json")
        # Files the mix reads (calibration, SVD factors) go with the mlir or
        # gpu output that needs them, else stay in the work directory.
        keep = [o for o in config.outputs if o.format == "mlir"] or \
            [o for o in config.outputs if o.format == "gpu"]
        self.data = os.path.join(self.stage, keep[0].path) if keep else self.work
        self.summaries = []
        self.prompt_count = 0
        # What calibration wrote, for the router options.
        self.prototypes = self.router_weights = self.tokens = None
        self.current = None

    # -- steps ---------------------------------------------------------------

    def steps(self):
        config = self.config
        steps = [("import", self.import_models)]
        if config.needs_calibration:
            steps.append(("calibrate", self.calibrate))
        steps.append(("mix", self.mix_models))
        for output in config.outputs:
            steps.append((f"{_VERBS[output.format]} {output.format}",
                          lambda output=output: self.write_output(output)))
        return steps

    def run(self):
        steps = self.steps()
        self.display.steps(len(steps))
        os.makedirs(self.data, exist_ok=True)
        for label, action in steps:
            with self.display.step(label) as step:
                self.current = step
                action()

    def _run(self, command, on_stderr_line=None):
        _, stderr = tools.run(command, self.current.name, on_stderr_line)
        self._warnings(stderr)

    def _run_export(self, command):
        """An export, with the bytes written so far shown while it runs."""
        self.current.poll = lambda: f"{_bytes(_directory_bytes(self.stage))} written"
        try:
            self._run(command)
        finally:
            self.current.poll = None
        self.current.progress("")

    def _warnings(self, stderr):
        for line in stderr.splitlines():
            if "warning:" in line:
                self.current.warnings.append("moe-mix: " + self.clean(line.strip()))

    def clean(self, text):
        """Tool output in the user's terms: the staging directory is OUT,
        the work directory's modules are not named, no IR excerpt."""
        text = text.replace(self.stage, self.staged.out)
        lines = []
        for line in text.splitlines():
            # IR excerpts: the module's first line, carets, the op printed.
            if line.strip() in ("module {", "^") or re.match(r"\s*%\S+ = ", line) \
                    or "note: see current operation" in line:
                continue
            line = re.sub(re.escape(self.work) + r"/\S+?\.mlir:\d+:\d+: ", "", line)
            lines.append(line.replace(self.work + "/", ""))
        return "\n".join(lines)

    def import_models(self):
        config = self.config
        command = [self.tools["moe-translate"], "--import-hf", config.base.path]
        imported = set()
        for expert in config.experts + ([config.shared] if config.shared else []):
            if expert.name != "base" and expert.name not in imported:
                command.append(f"--expert={expert.name}={expert.model.path}")
                imported.add(expert.name)
        for adapter in config.adapters:
            command.append(f"--adapter={adapter.name}={adapter.path}")
        command += ["-o", self.input]
        parts = [f"{len(imported)} models" if imported else "",
                 f"{len(config.adapters)} adapters" if config.adapters else ""]
        self.current.detail = "base + " + ", ".join(p for p in parts if p) \
            if imported or config.adapters else "base"
        self._run(command)

    def calibrate(self):
        config = self.config
        calibration = config.calibration
        prompts_dir = os.path.join(self.work, "prompts")
        os.makedirs(prompts_dir, exist_ok=True)
        gated_shared = config.shared if config.shared and not config.shared.always_on \
            else None
        command = list(self.tools["moe-calibrate"]) + [config.base.path]
        for expert in config.experts + ([gated_shared] if gated_shared else []):
            for kind, prompts in (("prompts", expert.positive),
                                  ("negative-prompts", expert.negative)):
                if not prompts:
                    continue
                path = os.path.join(prompts_dir, f"{expert.name}.{kind}.json")
                with open(path, "w", encoding="utf-8") as f:
                    json.dump(prompts, f)
                command.append(f"--{kind}={expert.name}={path}")
                self.prompt_count += len(prompts)
        if config.gate_mode == "cheap_embed" and calibration.cheap_embed == "moe":
            self.tokens = os.path.join(self.work, "cheap-embed-tokens.txt")
            command += ["--cheap-embed-tokens", self.tokens]
        else:
            mode = "cheap-embed" if config.gate_mode == "cheap_embed" else "hidden"
            command += ["--mode", mode, "--pooling",
                        calibration.pooling.replace("_", "-"),
                        "--dtype", calibration.dtype, "--progress", "lines"]
            # Router rows normalised in bfloat16 as mergekit normalises them
            # (router=given), or prototypes that router=hidden normalises in
            # float32; a gated shared expert's gate is a router=given tensor.
            if gated_shared or (mode == "hidden" and calibration.dtype == "bfloat16"):
                self.router_weights = os.path.join(self.data, "routers.safetensors")
                command += ["--router-weights", self.router_weights]
                if gated_shared:
                    command += ["--shared-expert", gated_shared.name]
            else:
                self.prototypes = os.path.join(self.data, "prototypes.safetensors")
                command += ["-o", self.prototypes]
        self.current.detail = f"{config.gate_mode}, {self.prompt_count} prompts"

        def progress(line):
            match = re.fullmatch(r"progress (\d+)/(\d+)\s*", line)
            if match:
                self.current.progress(f"layer {match.group(1)}/{match.group(2)}")
            return bool(match)
        self._run(command, progress)

    def _router_options(self):
        config = self.config
        routing = config.routing
        mode = config.gate_mode
        options = []
        std = routing.router_std
        if mode in _DIRECT_ROUTERS:
            router = _DIRECT_ROUTERS[mode]
            if mode == "random" and std is None:
                std = MERGEKIT_RANDOM_STD
        elif self.router_weights:
            router = "given"
        elif self.tokens:
            router = "cheap-embed"
            with open(self.tokens, encoding="utf-8") as f:
                options.append(("cheap-embed-tokens", f.read().strip()))
        else:
            router = "hidden"
            options.append(("prototypes", self.prototypes))
        options.insert(0, ("router", router))
        if router == "given":
            options.append(("router-weights", routing.router_weights
                            or self.router_weights))
        if router != "gateless":
            options.append(("k", config.experts_per_token))
        options += [("scoring", routing.scoring), ("renormalize", routing.renormalize),
                    ("router-std", std), ("seed", routing.seed),
                    ("condition-warning", routing.condition_warning)]
        return options

    def mix_models(self):
        config = self.config
        command = [self.tools["moe-opt"], self.input]
        if config.kind == "experts":
            names = [e.name for e in config.experts]
            shared = config.shared
            if shared:
                names.append(shared.name)
            options = [("base", "base"), ("experts", names), ("output", "mix")]
            options += self._router_options()
            if shared:
                options.append(("always-on" if shared.always_on else "shared-expert",
                                shared.name))
            options += [("layers", config.layers), ("stem", config.stem)]
            for key in ("fine_grained", "route_attention", "global_router"):
                if getattr(config.routing, key):
                    options.append((key.replace("_", "-"), True))
            command.append(pass_option("moe-mix-experts", options))
            router = dict(options)["router"]
            self.current.detail = f"{len(config.experts)} experts, router {router}" + \
                (f", top {config.experts_per_token}" if router != "gateless" else "")
        else:
            adapters = []
            if config.kind == "decompose":
                decompose = config.decompose
                experts = [e.name for e in config.experts]
                command.append(pass_option("moe-decompose-experts", [
                    ("base", "base"), ("experts", experts),
                    ("rank", decompose.rank),
                    ("output-dir", os.path.join(self.data, "factors")),
                    ("modules", decompose.modules),
                    ("oversample", decompose.oversample),
                    ("power-iterations", decompose.power_iterations),
                    ("seed", decompose.seed)]))
                adapters += experts
            adapters += [a.name for a in config.adapters]
            routing = config.adapter_routing
            command.append(pass_option("moe-mix-adapters", [
                ("base", "base"), ("adapters", adapters), ("output", "mix"),
                ("router", routing.router and routing.router.replace("_", "-")),
                ("normalization", routing.normalization), ("top-k", routing.top_k),
                ("router-std", routing.router_std), ("seed", routing.seed),
                ("router-weights", routing.router_weights)]))
            self.current.detail = f"{len(adapters)} adapters" + \
                (" (SVD of the experts)" if config.kind == "decompose" else "")
        command += [pass_option("moe-report-params", [("output", self.params)]),
                    "-o", self.mix]
        self._run(command)

    # -- outputs -------------------------------------------------------------

    def write_output(self, output):
        if output.path != ".":
            self.current.detail = output.path
        {"hf": self.export_hf, "onnx": self.export_onnx,
         "onnx-genai": self.export_onnx_genai, "gguf": self.export_gguf,
         "mlir": self.write_mlir, "gpu": self.write_gpu}[output.format](output)

    def export_hf(self, output):
        root = output.path == "."
        target = os.path.join(self.stage, _ROOT_HF if root else output.path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        command = [self.tools["moe-translate"], "--export-hf", self.mix, "-o", target,
                   "--export-func=mix"]
        if output.options.get("dtype"):
            command.append(f"--export-dtype={output.options['dtype']}")
        if output.options.get("shard_size"):
            command.append(f"--shard-size={output.options['shard_size']}")
        self._run_export(command)
        written = _bytes(_directory_bytes(target))
        with open(os.path.join(target, "config.json"), encoding="utf-8") as f:
            architecture = (json.load(f).get("architectures") or ["?"])[0]
        self._check_architecture(architecture, output)
        if root:
            for name in os.listdir(target):
                destination = os.path.join(self.stage, name)
                if os.path.lexists(destination):
                    raise ConfigError(f"{output.where}: the checkpoint's file '{name}' "
                                      "collides with another output's path")
                os.rename(os.path.join(target, name), destination)
            os.rmdir(target)
        self.current.detail = " ".join(p for p in (self.current.detail, architecture) if p) \
            + f", {written}"
        self.summaries.append(f"{architecture} ({'.' if root else output.path})")

    def _check_architecture(self, architecture, output):
        wanted = self.config.architecture
        if wanted is None:
            return
        name = _MERGEKIT_ARCHITECTURE_NAMES.get(architecture, architecture)
        if not name.lower().startswith(wanted.lower()):
            raise ConfigError(
                f"{self.config.architecture_where}: {wanted}: this mix is a "
                f"{architecture} ({name}); a Mixtral has no shared expert, a Qwen "
                "MoE has one (see docs/mix-config.md)")

    @staticmethod
    def _onnx_options(output):
        flags = {"moe": "--onnx-moe", "form": "--onnx-form",
                 "weights": "--onnx-weights", "block_size": "--onnx-block-size"}
        command = [f"{flag}={output.options[key]}" for key, flag in flags.items()
                   if output.options.get(key) is not None]
        if output.options.get("int8_activations"):
            command.append("--onnx-int8-activations")
        return command

    def export_onnx(self, output):
        target = os.path.join(self.stage, output.path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        command = [self.tools["moe-translate"], "--export-onnx", self.mix, "-o", target,
                   "--export-func=mix"] + self._onnx_options(output)
        self._run_export(command)
        directory, name = os.path.split(target)
        self.current.detail += ", " + _bytes(sum(
            os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory)
            if f.startswith(name)))
        self.summaries.append(f"ONNX ({output.path})")

    def export_onnx_genai(self, output):
        target = os.path.join(self.stage, output.path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        command = [self.tools["moe-translate"], "--export-onnx-genai", self.mix,
                   "-o", target, "--export-func=mix"] + self._onnx_options(output)
        self._run_export(command)
        self.current.detail += ", " + _bytes(sum(
            os.path.getsize(os.path.join(target, f)) for f in os.listdir(target)))
        self.summaries.append(f"onnxruntime-genai ({output.path})")

    def export_gguf(self, output):
        target = os.path.join(self.stage, output.path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        command = [self.tools["moe-translate"], "--export-gguf", self.mix, "-o", target,
                   "--export-func=mix"]
        if output.options.get("type"):
            command.append(f"--gguf-type={output.options['type']}")
        self._run_export(command)
        self.current.detail += ", " + _bytes(os.path.getsize(target))
        self.summaries.append(f"GGUF ({output.path})")

    def _relocated_module(self, source):
        with open(source, encoding="utf-8") as f:
            text = f.read()
        return relocate_scopes(text, self.stage, self.staged.out)

    def write_mlir(self, output):
        directory = os.path.join(self.stage, output.path)
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "mix.mlir"), "w", encoding="utf-8") as f:
            f.write(self._relocated_module(self.mix))
        self.summaries.append(f"MLIR ({output.path}/mix.mlir)")

    def write_gpu(self, output):
        directory = os.path.join(self.stage, output.path)
        os.makedirs(directory, exist_ok=True)
        outlined = os.path.join(self.work, "outlined.mlir")
        self._run([self.tools["moe-opt"], self.mix, "--moe-outline-weights",
                   "-o", outlined])
        with open(os.path.join(directory, "weights.mlir"), "w", encoding="utf-8") as f:
            f.write(self._relocated_module(outlined))
        options = output.options
        kernels = os.path.join(directory, "kernels.mlir")
        self._run([self.tools["moe-opt"], outlined, pass_option("moe-lower-to-gpu", [
            ("chip", options.get("chip")), ("features", options.get("features")),
            ("mma", options.get("mma")), ("format", options.get("binary")),
            ("block-m", options.get("block_m")), ("block-n", options.get("block_n")),
            ("block-k", options.get("block_k")), ("threads", options.get("threads"))]),
            "-o", kernels])
        if options.get("binary") in (None, "isa"):
            from moe_testing.gpu_binaries import extract
            with open(kernels, encoding="utf-8") as f:
                binaries = extract(f.read())
            os.makedirs(os.path.join(directory, "ptx"), exist_ok=True)
            for name, ptx in binaries.items():
                with open(os.path.join(directory, "ptx", f"{name}.ptx"), "w",
                          encoding="utf-8") as f:
                    f.write(ptx)
            self.current.detail += f", {len(binaries)} kernel modules"
        self.summaries.append(f"GPU code ({output.path})")

    def parameters(self):
        """{'total': .., 'active': ..} of the mix (moe-report-params)."""
        try:
            with open(self.params, encoding="utf-8") as f:
                return json.load(f)["functions"]["mix"]
        except (OSError, ValueError, KeyError):
            return None
