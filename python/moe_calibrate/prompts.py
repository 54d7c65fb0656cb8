"""Prompts per expert, and their tokenization as mergekit-moe defines it.

mergekit-moe 0.1.5 (`mergekit/moe/router.py`, `scripts/moe.py`) tokenizes an
expert's prompts in one batch with the base model's own tokenizer: the
tokenizer's bos text is prepended to every prompt and encoded with
`add_special_tokens=False` (so the bos is there exactly once whatever the
tokenizer's post-processor would add), the batch is padded on the left with
the bos id (the eos id when there is no bos), and the attention mask marks
the padding. Calibration uses the same batches, so that a prompt's tokens,
and the padding around it, are those mergekit runs.
"""

import dataclasses
import json
import os

from .errors import CalibrationError


@dataclasses.dataclass
class PromptSet:
    """The prompts of one expert: routed towards `positive`, away from
    `negative` (mergekit's positive_prompts and negative_prompts)."""
    name: str
    positive: list
    negative: list = dataclasses.field(default_factory=list)


def read_prompt_file(path):
    """A list of prompts from `path`: a JSON or YAML list of strings
    (.json, .yml, .yaml; prompts may span lines), otherwise text with one
    prompt per non-blank line."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as error:
        raise CalibrationError(f"{path}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise CalibrationError(f"{path}: not UTF-8 text") from None
    extension = os.path.splitext(path)[1].lower()
    if extension in (".json", ".yml", ".yaml"):
        try:
            if extension == ".json":
                prompts = json.loads(text)
            else:
                import yaml
                prompts = yaml.safe_load(text)
        except ValueError as error:  # json.JSONDecodeError
            raise CalibrationError(f"{path}: invalid JSON ({error})") from None
        except Exception as error:  # yaml.YAMLError and its subclasses
            raise CalibrationError(f"{path}: invalid YAML ({error})") from None
        if not isinstance(prompts, list) or not all(
                isinstance(prompt, str) for prompt in prompts):
            raise CalibrationError(f"{path}: expected a list of strings")
        return prompts
    return [line.strip() for line in text.splitlines() if line.strip()]


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model")


def check_tokenizer_files(base_dir):
    """transformers 5 makes an empty tokenizer for some model types (qwen2)
    when the directory has none: the files are looked for first."""
    if not any(os.path.exists(os.path.join(base_dir, name)) for name in TOKENIZER_FILES):
        raise CalibrationError(
            f"{base_dir}: no tokenizer that transformers can load (none of "
            f"{', '.join(TOKENIZER_FILES)})")


def check_sets(sets):
    """Every set has positive prompts."""
    if not sets:
        raise CalibrationError("no prompt sets: give at least one expert's prompts")
    for prompt_set in sets:
        if not prompt_set.positive:
            raise CalibrationError(
                f"expert '{prompt_set.name}': no positive prompts (a data-derived "
                "router needs at least one)")


def check_token_sets(sets):
    """router=cheap-embed's token lists have no negative side."""
    for prompt_set in sets:
        if prompt_set.negative:
            raise CalibrationError(
                f"expert '{prompt_set.name}': negative prompts have no meaning "
                "for router=cheap-embed's token lists (mergekit's cheap_embed "
                "definition, --mode cheap-embed, takes them)")


def load_tokenizer(base_dir):
    """The base model's tokenizer, set up as mergekit-moe sets it up: left
    padding with the bos id (eos when there is no bos)."""
    import transformers
    check_tokenizer_files(base_dir)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(base_dir)
    except Exception as error:  # OSError, ValueError... depending on the files
        raise CalibrationError(
            f"{base_dir}: no tokenizer that transformers can load "
            f"({str(error).splitlines()[0] if str(error) else type(error).__name__})"
        ) from None
    tokenizer.padding_side = "left"
    tokenizer.pad_token_id = tokenizer.bos_token_id
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.pad_token_id is None:
        raise CalibrationError(
            f"{base_dir}: the tokenizer has neither a bos nor an eos token to "
            "pad prompts with")
    return tokenizer


def encode(tokenizer, prompts):
    """One left-padded batch: {'input_ids', 'attention_mask'} as tensors."""
    batch = tokenizer([(tokenizer.bos_token or "") + prompt for prompt in prompts],
                      return_tensors="pt", padding=True, add_special_tokens=False)
    for prompt, count in zip(prompts, batch["attention_mask"].sum(dim=1).tolist()):
        if count == 0:
            raise CalibrationError(f"the prompt {prompt!r} has no tokens (and the "
                                   "tokenizer no bos token to start it with)")
    return batch


def token_ids(tokenizer, prompts):
    """The ids of every prompt's own tokens (no special tokens), for
    moe-mix-experts' router=cheap-embed."""
    special = set(tokenizer.all_special_ids)
    ids = []
    for prompt in prompts:
        ids.extend(i for i in tokenizer(prompt, add_special_tokens=False)["input_ids"]
                   if i not in special)
    return ids
