"""moe_calibrate: router prototypes from prompts (see README.md)."""

from .errors import CalibrationError
from .prompts import PromptSet, read_prompt_file

__all__ = ["CalibrationError", "PromptSet", "read_prompt_file"]
