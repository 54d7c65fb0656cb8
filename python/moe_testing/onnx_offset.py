"""Copies an ONNX model with a constant added to one graph input or output,
so that a test can see its check fail on a slightly wrong model.

    python -m moe_testing.onnx_offset IN.onnx OUT.onnx --name present.1.value \\
        --value 1e-3

An output NAME is renamed inside the graph and recomputed as NAME + VALUE;
an input NAME is replaced, for every node that reads it, by NAME + VALUE
(`position_ids` + 1 shifts every position). OUT refers to IN's external
data file by its relative name: write it beside IN, or beside a copy of
that file.
"""

import argparse
import os
import sys


def offset(model, name, value):
    """Adds `value` to graph input or output `name` of `model` in place."""
    import onnx
    from onnx import helper
    graph = model.graph
    inputs = {i.name: i for i in graph.input}
    outputs = {o.name: o for o in graph.output}
    if name not in inputs and name not in outputs:
        raise SystemExit(f"onnx_offset: {name!r} is no graph input or output "
                         f"(inputs {sorted(inputs)}, outputs {sorted(outputs)})")
    info = inputs.get(name) or outputs[name]
    element = info.type.tensor_type.elem_type
    if element in (onnx.TensorProto.INT64, onnx.TensorProto.INT32):
        value = int(value)
    constant = helper.make_tensor(f"{name}/offset_value", element, [], [value])
    graph.initializer.append(constant)
    inner = f"{name}/before_offset" if name in outputs else f"{name}/offset"
    for node in graph.node:
        if name in outputs:
            node.output[:] = [inner if o == name else o for o in node.output]
        node.input[:] = [inner if i == name else i for i in node.input]
    if name in outputs:
        graph.node.append(helper.make_node("Add", [inner, constant.name],
                                           [name], name=f"{name}/offset"))
    else:
        graph.node.insert(0, helper.make_node("Add", [name, constant.name],
                                              [inner], name=inner))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("dest")
    parser.add_argument("--name", required=True)
    parser.add_argument("--value", type=float, required=True)
    args = parser.parse_args(argv)
    import onnx
    model = onnx.load(args.source, load_external_data=False)
    folder = os.path.dirname(os.path.abspath(args.dest))
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location" and \
                    not os.path.isfile(os.path.join(folder, entry.value)):
                raise SystemExit(f"onnx_offset: {folder} has no {entry.value}, "
                                 f"the external data of {args.source}")
    offset(model, args.name, args.value)
    onnx.save(model, args.dest)
    onnx.checker.check_model(args.dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
