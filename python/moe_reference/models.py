"""Loading Hugging Face checkpoints and running them, the way the reference
does everywhere: ``AutoModelForCausalLM`` in float32 with eager attention,
no remote code, in eval mode, offline."""

import os
import warnings

import numpy as np
import torch


def parse_ids(text):
    """Parses "1,2,3;4,5,6" into equally long rows of token ids."""
    rows = [[int(token) for token in row.split(",")] for row in text.split(";")]
    if len({len(row) for row in rows}) != 1:
        raise ValueError(f"token id rows differ in length: {text!r}")
    return rows


def load_model(path):
    """``AutoModelForCausalLM.from_pretrained(path)`` in float32, eager
    attention, eval mode."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import transformers
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        model = transformers.AutoModelForCausalLM.from_pretrained(
            path, dtype=torch.float32, attn_implementation="eager",
            trust_remote_code=False)
    return model.eval()


def logits_of(model, ids):
    """Float32 logits ``[batch, sequence, vocab]`` of a causal LM for a batch
    of equally long id rows (no padding, no cache)."""
    with torch.no_grad():
        out = model(input_ids=torch.tensor(ids, dtype=torch.long), use_cache=False)
    return out.logits.float().numpy()


def decoder_layers(model):
    """The decoder layers (``model.model.layers``) of a causal LM."""
    return model.get_decoder().layers


def read_safetensors(path):
    """Every tensor of a safetensors file as float32 numpy arrays."""
    from safetensors.torch import load_file
    return {key: value.float().numpy() for key, value in load_file(path).items()}


def write_safetensors(tensors, path):
    """Writes float32 numpy arrays to a safetensors file."""
    from safetensors.numpy import save_file
    save_file({key: np.ascontiguousarray(value, dtype=np.float32)
               for key, value in tensors.items()}, path)
