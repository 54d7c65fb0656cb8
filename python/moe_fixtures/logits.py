"""Reference logits from transformers (and peft) for integration tests."""

import os
import warnings

DTYPES = ("float32", "bfloat16", "float16")


def parse_ids(text):
    """Parses "1,2,3;4,5,6" into equally long rows of token ids."""
    rows = [[int(token) for token in row.split(",")]
            for row in text.split(";")]
    if len({len(row) for row in rows}) != 1:
        raise ValueError(f"token id rows differ in length: {text!r}")
    return rows


def compute(model_dir, ids, dtype="float32", adapter_dir=None):
    """Logits of AutoModelForCausalLM.from_pretrained(model_dir) (eager
    attention, no remote code, weights in dtype), optionally with the PEFT
    adapter in adapter_dir applied, for the batch ``ids`` (a list of equally
    long rows, no padding). Returns a float32 numpy array
    [batch, sequence, vocab]."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torch
        import transformers
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        model = transformers.AutoModelForCausalLM.from_pretrained(
            model_dir, dtype=getattr(torch, dtype), attn_implementation="eager",
            trust_remote_code=False)
        if adapter_dir is not None:
            import peft
            model = peft.PeftModel.from_pretrained(model, adapter_dir)
        model.eval()
        with torch.no_grad():
            logits = model(input_ids=torch.tensor(ids)).logits
    return logits.float().numpy()
