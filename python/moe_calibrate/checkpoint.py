"""Tensors of a Hugging Face checkpoint directory, read a few at a time.

Calibration streams the base model layer by layer, so it never holds more
than one decoder layer's weights: each read opens the safetensors file
(memory-mapped by the safetensors library), copies the tensors it needs and
closes it again, so that no page of the file stays mapped, and resident,
after its layer has run.
"""

import json
import os

from safetensors import safe_open

from .errors import CalibrationError

_SINGLE = "model.safetensors"
_INDEX = "model.safetensors.index.json"


class Checkpoint:
    """The safetensors tensors of one model directory (one file or shards)."""

    def __init__(self, directory):
        self.directory = directory
        index = os.path.join(directory, _INDEX)
        single = os.path.join(directory, _SINGLE)
        if os.path.isfile(index):
            try:
                with open(index, encoding="utf-8") as f:
                    weight_map = json.load(f)["weight_map"]
            except (OSError, ValueError, KeyError, TypeError) as error:
                raise CalibrationError(
                    f"{index}: not a safetensors index with a 'weight_map' "
                    f"({error})") from None
            self._file_of = {name: os.path.join(directory, file)
                             for name, file in weight_map.items()}
        elif os.path.isfile(single):
            self._file_of = {name: single for name in self._keys(single)}
        else:
            raise CalibrationError(
                f"{directory}: no {_SINGLE} or {_INDEX} (calibration reads "
                "safetensors checkpoints)")

    @staticmethod
    def _keys(path):
        try:
            with safe_open(path, framework="pt") as f:
                return list(f.keys())
        except Exception as error:  # safetensors raises its own error types
            raise CalibrationError(f"{path}: cannot read the safetensors "
                                   f"header ({error})") from None

    def __contains__(self, name):
        return name in self._file_of

    def read(self, names):
        """{name: tensor} for `names`, each file opened once and closed."""
        by_file = {}
        for name in names:
            if name not in self._file_of:
                raise CalibrationError(
                    f"{self.directory}: the checkpoint has no tensor '{name}'")
            by_file.setdefault(self._file_of[name], []).append(name)
        tensors = {}
        for path, wanted in by_file.items():
            if not os.path.isfile(path):
                raise CalibrationError(
                    f"{path}: missing (named by {_INDEX} for '{wanted[0]}')")
            try:
                with safe_open(path, framework="pt") as f:
                    for name in wanted:
                        tensors[name] = f.get_tensor(name)
            except Exception as error:
                raise CalibrationError(
                    f"{path}: cannot read '{wanted[0]}' ({error})") from None
        return tensors
