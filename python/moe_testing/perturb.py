"""Makes a fine-tuned-looking copy of a Hugging Face checkpoint, for bases
that moe_fixtures has no experts of (granite, phi3):

    python -m moe_testing.perturb SRC DEST --seed N

DEST gets SRC's files, with every tensor of model.safetensors perturbed by
seeded normal noise: std 0.02 on MLP weights, 0.002 elsewhere (the recipe
of the moe_fixtures experts). The dtype is kept.
"""

import argparse
import os
import shutil
import sys

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("dest")
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args(argv)

    import torch
    from safetensors.torch import load_file, save_file

    os.makedirs(args.dest)
    for name in os.listdir(args.source):
        if name != "model.safetensors":
            shutil.copy(os.path.join(args.source, name), args.dest)
    tensors = load_file(os.path.join(args.source, "model.safetensors"))
    rng = np.random.default_rng(args.seed)
    perturbed = {}
    for key in sorted(tensors):
        value = tensors[key]
        std = 0.02 if ".mlp." in key else 0.002
        noise = torch.from_numpy(rng.normal(0.0, std, tuple(value.shape)))
        perturbed[key] = (value.double() + noise).to(value.dtype).contiguous()
    save_file(perturbed, os.path.join(args.dest, "model.safetensors"),
              metadata={"format": "pt"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
