"""Writes model directories whose config.json or adapter_config.json is
hostile: FIFOs, devices, deep nesting, duplicate keys, absurd sizes. Only the
config files exist: every case must be refused before any weight is read.

    hostile_configs.py OUT
"""

import json
import os
import sys

LLAMA = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
    "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 64,
    "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
    "tie_word_embeddings": False,
}


def model(out, name, text):
    directory = os.path.join(out, name)
    os.makedirs(directory)
    with open(os.path.join(directory, "config.json"), "w") as f:
        f.write(text)
    return directory


def main():
    out = sys.argv[1]
    os.makedirs(out)
    model(out, "good", json.dumps(LLAMA))
    os.makedirs(os.path.join(out, "fifo"))
    os.mkfifo(os.path.join(out, "fifo", "config.json"))
    os.makedirs(os.path.join(out, "device"))
    os.symlink("/dev/zero", os.path.join(out, "device", "config.json"))
    model(out, "deep", "[" * 100000 + "]" * 100000)
    model(out, "duplicate", json.dumps(LLAMA)[:-1] + ', "hidden_size": 32}')
    for field, value in (("num_hidden_layers", 10**12), ("head_dim", 2**62),
                         ("vocab_size", 2**40), ("num_attention_heads", -3)):
        model(out, field, json.dumps({**LLAMA, field: value}))
    model(out, "wrong-type", json.dumps({**LLAMA, "hidden_size": "16"}))
    huge = model(out, "huge", "")
    with open(os.path.join(huge, "config.json"), "w") as f:
        f.truncate((100 << 20) + 1)   # sparse: one byte past the limit
    adapter = os.path.join(out, "adapter")
    os.makedirs(adapter)
    os.mkfifo(os.path.join(adapter, "adapter_config.json"))


if __name__ == "__main__":
    main()
