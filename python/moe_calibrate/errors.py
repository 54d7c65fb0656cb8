"""The one exception of calibration: a message for the user, no traceback."""


class CalibrationError(Exception):
    """A user-facing failure (bad file, bad prompts, unsupported model); the
    message names the file, tensor or field."""
