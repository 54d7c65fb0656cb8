"""The ONNX Runtime benchmark of docs/benchmarks.md: prefill latency of
exported mixes against their dense base, fused and portable.

    .venv/bin/python bench/onnx_moe_latency.py [--work /tmp/moe-onnx-bench] \\
        [--bin build/bin] [--experts 4,8] [--k 1,2] [--seq 128] [--threads 2]

Makes a synthetic Llama-shaped base (python/moe_testing/synthetic_model.py:
hidden 512, intermediate 2048, 4 layers, 8 heads of 64 with 2 KV heads,
vocab 1024, f32, FFN-dominated) and E - 1 fine-tuned experts of it (the
base with perturbed MLP weights), mixes them with `moe-opt
--moe-mix-experts="router=noisy k=K"` (Mixtral routing: softmax, top-k,
renormalised), exports the dense base and each mix with `moe-translate
--export-onnx` in both encodings, and times one prefill of SEQ tokens
(batch 1) in ONNX Runtime's CPUExecutionProvider (all graph optimisations,
THREADS intra-op threads, sequential execution): ROUNDS rounds that each run
every model WARMUP + REPEATS times, interleaved so that background load
falls on all models alike. Ratios use the minimum (--statistic min, the
time least disturbed by other processes) or the median.

The ideal ratio counts the multiply-adds of one decoder layer as executed,
per token: the q/k/v/o projections, q k^T and p v over the whole sequence
(the graph computes the full S x S scores), k FFNs (gate, up, down) and the
router, against the same attention and one FFN. Prints a Markdown table;
`--kernels` adds one for a single FFN layer: com.microsoft.MoE against the
dense FFN (three Gemm nodes).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(command, **kwargs):
    subprocess.run(command, check=True, **kwargs)


def make_models(args, experts):
    """The base and experts - 1 perturbed copies, made once."""
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    names = ["base"] + [f"expert-{i}" for i in range(1, experts)]
    for index, name in enumerate(names):
        path = os.path.join(args.work, "models", name)
        if os.path.exists(os.path.join(path, "model.safetensors")):
            continue
        shutil.rmtree(path, ignore_errors=True)
        command = [sys.executable, "-m", "moe_testing.synthetic_model", path,
                   "--vocab", str(args.vocab), "--hidden", str(args.hidden),
                   "--intermediate", str(args.intermediate),
                   "--layers", str(args.layers), "--heads", str(args.heads),
                   "--kv-heads", str(args.kv_heads), "--std", "0.05"]
        if index:
            command += ["--perturb", "0.01", "--perturb-seed", str(index)]
        run(command, env=env)
    return names


def export(args, name, mix_options, experts, encoding):
    """moe-translate --import-hf | [moe-opt] | moe-translate --export-onnx."""
    tool = lambda t: os.path.join(args.bin, t)
    models = os.path.join(args.work, "models")
    out = os.path.join(args.work, "onnx", f"{name}.{encoding}.onnx")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    if os.path.exists(out):
        return out
    command = [tool("moe-translate"), "--import-hf", os.path.join(models, "base")]
    for i in range(1, experts):
        command += ["--expert", f"e{i}=" + os.path.join(models, f"expert-{i}")]
    imported = subprocess.run(command, check=True, capture_output=True).stdout
    if mix_options:
        imported = subprocess.run(
            [tool("moe-opt"), f"--moe-mix-experts={mix_options}"],
            input=imported, check=True, capture_output=True).stdout
    subprocess.run([tool("moe-translate"), "--export-onnx", f"--onnx-moe={encoding}",
                    "-o", out], input=imported, check=True)
    return out


def session(args, path):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def measure(args, sessions):
    """Prefill times (ms) of every session, interleaved: ROUNDS rounds, each
    running every model REPEATS times after WARMUP runs, so that background
    load falls on every model alike."""
    ids = np.random.default_rng(0).integers(3, args.vocab, (1, args.seq), dtype=np.int64)
    times = {name: [] for name in sessions}
    for _ in range(args.rounds):
        for name, sess in sessions.items():
            feed = {sess.get_inputs()[0].name: ids}
            for _ in range(args.warmup):
                sess.run(None, feed)
            for _ in range(args.repeats):
                start = time.perf_counter()
                sess.run(None, feed)
                times[name].append((time.perf_counter() - start) * 1e3)
    return times


def kernel_graphs(args, experts, k):
    """One SwiGLU FFN layer on SEQ tokens: dense (three Gemm nodes, as the
    export writes it) or one com.microsoft.MoE over E experts (k of them per
    token), with random weights."""
    from onnx import TensorProto, helper, numpy_helper
    h, i, t = args.hidden, args.intermediate, args.seq
    rng = np.random.default_rng(1)
    weight = lambda name, *shape: numpy_helper.from_array(
        (0.02 * rng.standard_normal(shape)).astype(np.float32), name)
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [t, h])]
    if experts == 0:
        nodes = [helper.make_node("Gemm", ["x", "g"], ["gx"], transB=1),
                 helper.make_node("Gemm", ["x", "u"], ["ux"], transB=1),
                 helper.make_node("Sigmoid", ["gx"], ["sg"]),
                 helper.make_node("Mul", ["gx", "sg"], ["si"]),
                 helper.make_node("Mul", ["si", "ux"], ["hx"]),
                 helper.make_node("Gemm", ["hx", "d"], ["y"], transB=1)]
        inits = [weight("g", i, h), weight("u", i, h), weight("d", h, i)]
    else:
        inputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, [t, experts]))
        nodes = [helper.make_node(
            "MoE", ["x", "r", "fc1", "", "fc2"], ["y"], domain="com.microsoft", k=k,
            activation_type="swiglu", swiglu_fusion=1, activation_alpha=1.0,
            activation_beta=0.0, normalize_routing_weights=1)]
        inits = [weight("fc1", experts, 2 * i, h), weight("fc2", experts, h, i)]
    graph = helper.make_graph(nodes, "ffn", inputs, [helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, [t, h])], inits)
    return helper.make_model(graph, opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])


def kernel_bench(args, expert_counts, ks):
    """The FFN alone: com.microsoft.MoE against the dense FFN it replaces."""
    import onnxruntime as ort
    rng = np.random.default_rng(2)
    cases = [("dense FFN", 0, 1)] + [(f"MoE E={e}, k={k}", e, k)
                                     for e in expert_counts for k in ks]
    sessions, feeds = {}, {}
    for name, experts, k in cases:
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        sessions[name] = ort.InferenceSession(
            kernel_graphs(args, experts, k).SerializeToString(), options,
            providers=["CPUExecutionProvider"])
        feeds[name] = {"x": rng.standard_normal((args.seq, args.hidden), dtype=np.float32)}
        if experts:
            feeds[name]["r"] = rng.standard_normal((args.seq, experts), dtype=np.float32)
    times = {name: [] for name in sessions}
    for _ in range(args.rounds):
        for name, sess in sessions.items():
            for _ in range(args.warmup):
                sess.run(None, feeds[name])
            for _ in range(args.repeats):
                start = time.perf_counter()
                sess.run(None, feeds[name])
                times[name].append((time.perf_counter() - start) * 1e3)
    dense = min(times["dense FFN"])
    print(f"\nOne SwiGLU FFN layer on {args.seq} tokens (min ms; ideal = k x dense):\n")
    print("| kernel | min ms | ratio to dense FFN | ideal |")
    print("| --- | ---: | ---: | ---: |")
    for name, experts, k in cases:
        print(f"| {name} | {min(times[name]):.2f} | {min(times[name]) / dense:.2f} | "
              f"{k if experts else 1} |")


def layer_macs(args, experts, k):
    """Multiply-adds of one decoder layer per token, as the graph runs it."""
    h, i, s = args.hidden, args.intermediate, args.seq
    d = h // args.heads
    projections = h * args.heads * d * 2 + h * args.kv_heads * d * 2
    scores = 2 * s * args.heads * d
    attention = projections + scores
    ffn = 3 * h * i
    router = h * experts if experts else 0
    return attention + k * ffn + router, attention + ffn


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/moe-onnx-bench")
    parser.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    parser.add_argument("--experts", default="4,8")
    parser.add_argument("--k", default="1,2")
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--statistic", choices=("min", "median"), default="min",
                        help="the statistic ratios are taken of (default: min, the "
                             "least disturbed by other load)")
    parser.add_argument("--kernels", action="store_true",
                        help="also time one FFN layer alone: com.microsoft.MoE "
                             "against the dense FFN")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--intermediate", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--kv-heads", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=1024)
    args = parser.parse_args(argv)
    expert_counts = [int(e) for e in args.experts.split(",")]
    ks = [int(k) for k in args.k.split(",")]
    make_models(args, max(expert_counts))

    import onnxruntime as ort
    print(f"onnxruntime {ort.__version__}, {args.threads} threads, "
          f"prefill of {args.seq} tokens, batch 1; hidden {args.hidden}, "
          f"intermediate {args.intermediate}, {args.layers} layers, "
          f"{args.heads} heads ({args.kv_heads} KV), vocab {args.vocab}; "
          f"{args.rounds} interleaved rounds of {args.repeats} runs (after "
          f"{args.warmup}) per model\n")
    paths = {"dense": export(args, "dense", None, 1, "portable")}
    for experts in expert_counts:
        for k in ks:
            for encoding in ("fused", "portable"):
                paths[(experts, k, encoding)] = export(
                    args, f"e{experts}k{k}", f"router=noisy k={k}", experts, encoding)
    times = measure(args, {name: session(args, path) for name, path in paths.items()})
    stat = statistics.median if args.statistic == "median" else min
    dense_ms = stat(times["dense"])
    print(f"| model | encoding | median ms | min ms | {args.statistic} ratio to dense | "
          "ideal FLOP ratio | ratio / ideal |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    print(f"| dense base | - | {statistics.median(times['dense']):.1f} | "
          f"{min(times['dense']):.1f} | 1.00 | 1.00 | 1.00 |")
    results = []
    for experts in expert_counts:
        for k in ks:
            moe, base = layer_macs(args, experts, k)
            ideal = moe / base
            for encoding in ("fused", "portable"):
                runs = times[(experts, k, encoding)]
                ratio = stat(runs) / dense_ms
                results.append({"experts": experts, "k": k, "encoding": encoding,
                                "median_ms": statistics.median(runs), "min_ms": min(runs),
                                "ratio": ratio, "ideal": ideal})
                print(f"| E={experts}, k={k} | {encoding} | {statistics.median(runs):.1f} | "
                      f"{min(runs):.1f} | {ratio:.2f} | {ideal:.2f} | {ratio / ideal:.2f} |")
    if args.kernels:
        kernel_bench(args, expert_counts, ks)
    with open(os.path.join(args.work, "results.json"), "w") as f:
        json.dump({"dense_ms": dense_ms, "statistic": args.statistic,
                   "runs": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
