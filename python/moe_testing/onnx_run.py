"""Checks and runs exported ONNX models, for lit tests.

    python -m moe_testing.onnx_run MODEL.onnx --ids "1,5,9;2,6,10" \\
        [--ref REF.npy [--tolerance 1e-4]] [--out LOGITS.npy] \\
        [--expect-op TYPE=COUNT ...] [--no-op TYPE ...] [--nodes]
    python -m moe_testing.onnx_run A.onnx=HF_DIR B.onnx=HF_DIR ... --ids IDS

With MODEL.onnx=HF_DIR the reference is transformers' logits of the Hugging
Face model in HF_DIR (moe_fixtures.logits, float32, eager attention),
computed in this process: one torch import for many models; --ref applies
to every model without one. With several models, each report starts with a
line `== MODEL.onnx`.

Runs `onnx.checker.check_model` on the file path (which resolves external
data next to the model), checks that every initializer that holds weights
lives in external data, runs the model with ONNX Runtime on the CPU
(CPUExecutionProvider) and prints

    ops: Gemm=14 MatMul=4 ...          (node counts by domain::op_type)
    logits: [2, 3, 128]
    max relative error: 1.234e-07      (with --ref: max|a-b| / max|b|)

It exits non-zero when the error exceeds the tolerance, when an --expect-op
count differs or when a --no-op type is present. `--nodes` also prints
every node as `node NAME: OP_TYPE` (with the attributes of contrib-domain
nodes), `--initializers` every external initializer as
`initializer NAME: [DIMS] DATA_TYPE` (FLOAT, FLOAT16, UINT8...).
"""

import argparse
import collections
import os
import sys

import numpy as np

from moe_testing.compare import relative_error


def parse_ids(text):
    rows = [[int(v) for v in row.split(",")] for row in text.split(";")]
    if len({len(row) for row in rows}) != 1:
        raise SystemExit("onnx_run: --ids rows must have equal lengths")
    return np.array(rows, dtype=np.int64)


def op_counts(model):
    counts = collections.Counter()
    for node in model.graph.node:
        key = node.op_type if not node.domain else f"{node.domain}::{node.op_type}"
        counts[key] += 1
    return counts


def check_external(model, path):
    """Every float initializer above 1 KiB must live in external data, in
    files next to the model (relative location, no '..', no links)."""
    from onnx import TensorProto
    base = os.path.dirname(os.path.abspath(path))
    for tensor in model.graph.initializer:
        if tensor.data_location != TensorProto.EXTERNAL:
            if tensor.data_type == TensorProto.FLOAT and len(tensor.raw_data) > 1024:
                raise SystemExit(f"onnx_run: initializer '{tensor.name}' "
                                 f"({len(tensor.raw_data)} bytes) is inline")
            continue
        entries = {e.key: e.value for e in tensor.external_data}
        location = entries["location"]
        if os.path.isabs(location) or ".." in location.split("/"):
            raise SystemExit(f"onnx_run: bad external data location {location}")
        full = os.path.join(base, location)
        if os.path.islink(full) or not os.path.isfile(full):
            raise SystemExit(f"onnx_run: external data {full} is not a file")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", metavar="MODEL.onnx[=HF_DIR]")
    parser.add_argument("--ids", required=True)
    parser.add_argument("--ref")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--out")
    parser.add_argument("--expect-op", action="append", default=[],
                        metavar="TYPE=COUNT")
    parser.add_argument("--no-op", action="append", default=[], metavar="TYPE")
    parser.add_argument("--nodes", action="store_true")
    parser.add_argument("--initializers", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    if args.out and len(args.models) != 1:
        raise SystemExit("onnx_run: --out needs exactly one model")
    ids = parse_ids(args.ids)
    status = 0
    for spec in args.models:
        path, _, hf_dir = spec.partition("=")
        if len(args.models) > 1:
            print(f"== {os.path.basename(path)}")
        ref = None
        if hf_dir:
            from moe_fixtures.logits import compute
            ref = compute(hf_dir, ids.tolist())
        elif args.ref:
            ref = np.load(args.ref)
        status |= run_one(path, ids, ref, args)
    return status


def run_one(path, ids, ref, args):
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(path, full_check=True)
    model = onnx.load(path, load_external_data=False)
    check_external(model, path)
    counts = op_counts(model)
    print("ops: " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    if args.nodes:
        for node in model.graph.node:
            line = f"node {node.name}: {node.op_type}"
            if node.domain:
                attrs = sorted((a.name, onnx.helper.get_attribute_value(a))
                               for a in node.attribute)
                line += "".join(f" {k}={v.decode() if isinstance(v, bytes) else v}"
                                for k, v in attrs)
            print(line)
    if args.initializers:
        for tensor in model.graph.initializer:
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                data_type = onnx.TensorProto.DataType.Name(tensor.data_type)
                print(f"initializer {tensor.name}: {list(tensor.dims)} "
                      f"{data_type}")
    status = 0
    for spec in args.expect_op:
        op, _, count = spec.partition("=")
        if counts.get(op, 0) != int(count):
            print(f"error: expected {count} {op} nodes, found {counts.get(op, 0)}")
            status = 1
    for op in args.no_op:
        if counts.get(op, 0):
            print(f"error: found {counts[op]} {op} nodes")
            status = 1

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options,
                                   providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    logits = session.run(None, {input_name: ids})[0]
    print("logits: [" + ", ".join(str(d) for d in logits.shape) + "]")
    if args.out:
        np.save(args.out, logits)
    if ref is not None:
        if ref.shape != logits.shape:
            print(f"error: reference shape {list(ref.shape)} differs")
            return 1
        error = relative_error(logits, ref)
        print(f"max relative error: {error:.3e}")
        if not error <= args.tolerance:
            print(f"error: above the tolerance {args.tolerance:g}")
            status = 1
    return status

if __name__ == "__main__":
    sys.exit(main())
