"""Checks of the model and adapter directories a config names, before any
tool runs: each exists, has a readable config, and every expert has the
base's architecture. The importer checks the rest (sizes, tensors, dtypes)
and names the first difference; `locate_names` maps the function names in
its messages back to the config's lines."""

import json
import os
import re

from .yaml_source import ConfigError


def _read_config(directory, file_name, where, what):
    if not os.path.exists(directory):
        raise ConfigError(f"{where}: {directory}: no such directory (moe-mix reads "
                          f"local {what} directories)")
    if not os.path.isdir(directory):
        raise ConfigError(f"{where}: {directory}: not a directory")
    path = os.path.join(directory, file_name)
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{where}: {directory}: no {file_name} (not a {what} "
                          "directory)") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"{where}: {path}: unreadable ({error})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: {path}: not a JSON object")
    return config


def _architecture(config):
    names = config.get("architectures")
    return names[0] if isinstance(names, list) and names else None


def check_models(config):
    """Raises ConfigError for the first model or adapter directory that is
    missing, unreadable or of another architecture than the base."""
    base = _read_config(config.base.path, "config.json", config.base.where, "model")
    base_architecture = _architecture(base)
    if base_architecture is None:
        raise ConfigError(f"{config.base.where}: {config.base.path}/config.json "
                          "names no architecture ('architectures')")
    experts = config.experts + ([config.shared] if config.shared else [])
    for expert in experts:
        own = _read_config(expert.model.path, "config.json", expert.model.where, "model")
        if _architecture(own) != base_architecture or \
                own.get("model_type") != base.get("model_type"):
            raise ConfigError(
                f"{expert.model.where}: {expert.model.path} is "
                f"{_architecture(own) or own.get('model_type') or 'of no known architecture'}"
                f", the base ({config.base.path}) is {base_architecture}: experts "
                "must be fine-tuned from the base")
    for adapter in config.adapters:
        _read_config(adapter.path, "adapter_config.json", adapter.where, "PEFT adapter")


def locate_names(config, message):
    """`message` with the config location of every expert or adapter it
    names ('math' or @math, as the tools name functions) appended, so that
    a tool's error points at the config line."""
    places = {}
    for expert in config.experts + ([config.shared] if config.shared else []):
        if expert.name != "base":
            places.setdefault(expert.name, expert.model.where)
    for adapter in config.adapters:
        places.setdefault(adapter.name, adapter.where)
    found = []
    for name, where in places.items():
        if re.search(rf"(@|')({re.escape(name)})(\.ckpt)?\b", message) and where not in found:
            found.append(where)
    return message if not found else message.rstrip() + "\n  (" + "; ".join(found) + ")"
