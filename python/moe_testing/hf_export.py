"""Checks a Hugging Face MoE checkpoint made by `moe-translate --export-hf`.

    python -m moe_testing.hf_export check OUT --arch MixtralForCausalLM \\
        --ids "1,5,9;2,6,10" [--tolerance 1e-4] [--rounded-from F32_OUT] \\
        -- <moe_reference logits options: --base DIR --expert NAME=DIR ...>

In one process (torch is imported once):

1. loads OUT with `AutoModelForCausalLM.from_pretrained` (no remote code,
   float32, eager attention) and fails on any missing, unexpected or
   mismatched key, on any warning transformers logs or raises while
   loading, and unless the model class is --arch;
2. checks that the loaded parameters hold the tensors of OUT's safetensors
   files, mapping the per-expert names on disk onto transformers' fused
   in-memory layout independently of transformers' conversion code, and
   that every parameter was written;
3. with --rounded-from, checks that every tensor of OUT is the tensor of
   the float32 export F32_OUT rounded to OUT's dtype (round to nearest even,
   as torch rounds);
4. computes the logits of the same mix with the independent reference
   (`python -m moe_reference logits` with the options after `--`) and fails
   unless max|export - reference| / max|reference| <= --tolerance.

It prints one line: `OUT: <class>, <n> tensors checked, max relative error
<e> (tolerance <t>)`.
"""

import argparse
import io
import json
import logging
import os
import re
import sys
import tempfile
import warnings

from moe_testing.compare import relative_error


def _disk_tensors(directory):
    """Every tensor of the checkpoint's safetensors files, as torch tensors in
    their stored dtype."""
    from safetensors.torch import load_file
    tensors = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".safetensors"):
            tensors.update(load_file(os.path.join(directory, name)))
    return tensors


def _check_index(directory, tensors):
    """A sharded checkpoint's index names every tensor and its shard."""
    shards = [n for n in os.listdir(directory) if n.endswith(".safetensors")]
    index_path = os.path.join(directory, "model.safetensors.index.json")
    if len(shards) == 1:
        if os.path.exists(index_path):
            raise SystemExit(f"{directory}: one shard but an index file")
        return
    with open(index_path) as f:
        weight_map = json.load(f)["weight_map"]
    if sorted(weight_map) != sorted(tensors):
        raise SystemExit(f"{index_path}: weight_map does not list the tensors")
    if set(weight_map.values()) != set(shards):
        raise SystemExit(f"{index_path}: shards differ from the files")


# On-disk per-expert names and where transformers keeps them: (pattern,
# in-memory parameter, index function of (match, intermediate size)).
_EXPERT_LAYOUTS = [
    (r"(model\.layers\.\d+)\.block_sparse_moe\.experts\.(\d+)\.w1\.weight",
     r"\1.mlp.experts.gate_up_proj", "gate"),
    (r"(model\.layers\.\d+)\.block_sparse_moe\.experts\.(\d+)\.w3\.weight",
     r"\1.mlp.experts.gate_up_proj", "up"),
    (r"(model\.layers\.\d+)\.block_sparse_moe\.experts\.(\d+)\.w2\.weight",
     r"\1.mlp.experts.down_proj", "whole"),
    (r"(model\.layers\.\d+)\.block_sparse_moe\.gate\.weight",
     r"\1.mlp.gate.weight", None),
    (r"(model\.layers\.\d+)\.mlp\.experts\.(\d+)\.gate_proj\.weight",
     r"\1.mlp.experts.gate_up_proj", "gate"),
    (r"(model\.layers\.\d+)\.mlp\.experts\.(\d+)\.up_proj\.weight",
     r"\1.mlp.experts.gate_up_proj", "up"),
    (r"(model\.layers\.\d+)\.mlp\.experts\.(\d+)\.down_proj\.weight",
     r"\1.mlp.experts.down_proj", "whole"),
    (r"(model\.layers\.\d+)\.block_sparse_moe\.input_linear\.weight",
     r"\1.block_sparse_moe.experts.gate_up_proj", None),
    (r"(model\.layers\.\d+)\.block_sparse_moe\.output_linear\.weight",
     r"\1.block_sparse_moe.experts.down_proj", None),
    (r"(model\.layers\.\d+)\.block_sparse_moe\.router\.layer\.weight",
     r"\1.block_sparse_moe.router.weight", None),
]


def _in_memory(name, parameters):
    """The loaded tensor that on-disk tensor `name` must equal, and the name
    of the parameter it belongs to."""
    for pattern, target, part in _EXPERT_LAYOUTS:
        match = re.fullmatch(pattern, name)
        if not match:
            continue
        parameter = match.expand(target)
        value = parameters[parameter]
        if part is None:
            return value, parameter
        expert = value[int(match.group(2))]
        if part == "whole":
            return expert, parameter
        half = expert.shape[0] // 2
        return (expert[:half] if part == "gate" else expert[half:]), parameter
    return parameters[name], name


def _check_parameters(model, tensors):
    """Every on-disk tensor is held by the loaded model, and every parameter
    was written (tied heads excepted)."""
    import torch
    parameters = dict(model.named_parameters(remove_duplicate=False))
    covered = set()
    for name, stored in tensors.items():
        value, parameter = _in_memory(name, parameters)
        covered.add(parameter)
        if not torch.equal(value.detach().to(stored.dtype), stored):
            raise SystemExit(f"parameter {parameter} does not hold the tensor "
                             f"{name} of the checkpoint")
    tied = getattr(model.config, "tie_word_embeddings", False)
    missing = [name for name in parameters
               if name not in covered and not (tied and name == "lm_head.weight")]
    if missing:
        raise SystemExit(f"parameters not in the checkpoint: {missing}")


def _check_rounding(tensors, reference_dir):
    """Every tensor equals the float32 export's, rounded to its dtype."""
    import torch
    reference = _disk_tensors(reference_dir)
    if sorted(reference) != sorted(tensors):
        raise SystemExit(f"{reference_dir} holds other tensors")
    for name, value in tensors.items():
        if reference[name].dtype != torch.float32:
            raise SystemExit(f"{reference_dir}: {name} is not float32")
        if not torch.equal(reference[name].to(value.dtype), value):
            raise SystemExit(f"{name} is not the float32 export rounded to "
                             f"{value.dtype}")


def _load(directory):
    """from_pretrained with loading info; any log record or warning fails."""
    import torch
    import transformers
    records = io.StringIO()
    handler = logging.StreamHandler(records)
    handler.setLevel(logging.WARNING)
    transformers.logging.set_verbosity_warning()
    transformers.logging.disable_progress_bar()
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, info = transformers.AutoModelForCausalLM.from_pretrained(
            directory, dtype=torch.float32, attn_implementation="eager",
            trust_remote_code=False, output_loading_info=True)
    logger.removeHandler(handler)
    problems = {key: value for key, value in info.items() if value}
    if problems:
        raise SystemExit(f"{directory}: loading reported {problems}")
    if records.getvalue() or caught:
        raise SystemExit(f"{directory}: loading warned: {records.getvalue()}"
                         f"{[str(w.message) for w in caught]}")
    return model.eval()


def check(args, reference_options):
    import numpy as np
    import torch
    import moe_reference.__main__ as reference
    from moe_reference.models import parse_ids

    model = _load(args.out)
    if type(model).__name__ != args.arch:
        raise SystemExit(f"{args.out}: loaded as {type(model).__name__}, "
                         f"expected {args.arch}")
    tensors = _disk_tensors(args.out)
    _check_index(args.out, tensors)
    _check_parameters(model, tensors)
    if args.rounded_from:
        _check_rounding(tensors, args.rounded_from)

    ids = parse_ids(args.ids)
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "reference.npy")
        if reference.main(["logits", *reference_options, "--ids", args.ids,
                           "--out", path]) != 0:
            raise SystemExit("the reference failed")
        expected = np.load(path)
    with torch.no_grad():
        actual = model(input_ids=torch.tensor(ids), use_cache=False).logits
    actual = actual.float().numpy()
    error = relative_error(actual, expected)
    print(f"{args.out}: {type(model).__name__}, {len(tensors)} tensors "
          f"checked, max relative error {error:.3g} "
          f"(tolerance {args.tolerance:.3g})")
    if not error <= args.tolerance:
        raise SystemExit(f"{args.out}: the logits differ from the reference "
                         f"by {error:.3g} > {args.tolerance:.3g}")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    reference_options = []
    if "--" in argv:
        split = argv.index("--")
        argv, reference_options = argv[:split], argv[split + 1:]
    parser = argparse.ArgumentParser(prog="python -m moe_testing.hf_export",
                                     description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser("check", help="load, inspect and compare")
    sub.add_argument("out", help="the exported checkpoint directory")
    sub.add_argument("--arch", required=True, help="expected model class")
    sub.add_argument("--ids", required=True, help='token ids, "1,2,3;4,5,6"')
    sub.add_argument("--tolerance", type=float, default=1e-4)
    sub.add_argument("--rounded-from", metavar="F32_OUT",
                     help="float32 export that OUT must equal once rounded")
    args = parser.parse_args(argv)
    if not reference_options:
        parser.error("give the reference's mix options after --")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    check(args, reference_options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
