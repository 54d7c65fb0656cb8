//===- ONNXAttention.cpp - Attention in ONNX graphs -----------------------===//
//
// The token shapes, positions, rotary tables and causal masks that
// attention needs (built once per graph and shared by the layers), and the
// grouped-query attention itself.
//
//===----------------------------------------------------------------------===//

#include "ONNXTranslator.h"

#include <limits>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::onnx_export;

//===----------------------------------------------------------------------===//
// Shared subgraphs
//===----------------------------------------------------------------------===//

const std::string &Translator::idsShape() {
  if (idsShapeName.empty())
    idsShapeName = g.add("Shape", {values[ids]}, "input_ids/shape").out();
  return idsShapeName;
}

const std::string &Translator::flatIds() {
  if (flatIdsName.empty())
    flatIdsName =
        g.add("Reshape", {values[ids], g.i64Vector({-1})}, "input_ids/flat")
            .out();
  return flatIdsName;
}

const std::string &Translator::seqLen() {
  if (seqLenName.empty())
    seqLenName =
        g.add("Gather", {idsShape(), g.i64Scalar(1)}, "input_ids/seq_len")
            .attr("axis", int64_t(0))
            .out();
  return seqLenName;
}

const std::string &Translator::totalLen() {
  if (totalLenName.empty())
    totalLenName =
        g.add("Gather",
              {g.add("Shape", {attentionMask}, "attention_mask/shape"),
               g.i64Scalar(1)},
              "attention_mask/total_len")
            .attr("axis", int64_t(0))
            .out();
  return totalLenName;
}

const std::string &Translator::pastLen() {
  if (pastLenName.empty())
    pastLenName = g.add("Sub", {totalLen(), seqLen()}, "past_len").out();
  return pastLenName;
}

/// Prefill: the positions 0 .. S-1 [S]; KV cache: position_ids [B, S].
const std::string &Translator::positionsF32() {
  if (positionsF32Name.empty()) {
    std::string positions =
        kvCache() ? positionIds
                  : g.add("Range", {g.i64Scalar(0), seqLen(), g.i64Scalar(1)},
                          "positions")
                        .out();
    positionsF32Name = g.add("Cast", {positions}, "positions/f32")
                           .attr("to", int64_t(onnx::TensorProto::FLOAT))
                           .out();
  }
  return positionsF32Name;
}

/// The sequence length dynamic rotary scaling adapts to, as a float: the
/// largest position plus one (transformers' rule; during generation the
/// positions only grow, so it is the length seen so far).
const std::string &Translator::ropeLength() {
  if (ropeLengthName.empty()) {
    std::string last =
        g.add("ReduceMax", {positionsF32()}, "rope/last_position")
            .attr("keepdims", int64_t(0));
    ropeLengthName =
        g.add("Add", {last, g.f32Scalar(1.0f)}, "rope/length").out();
  }
  return ropeLengthName;
}

/// [B, S, trailing...]: the shape that restores token dimensions.
std::string Translator::tokenShape(ArrayRef<int64_t> trailing, StringRef name) {
  std::string key;
  for (int64_t dim : trailing)
    key += std::to_string(dim) + ",";
  auto it = shapes.find(key);
  if (it != shapes.end())
    return it->second;
  std::string shape = g.add("Concat", {idsShape(), g.i64Vector(trailing)}, name)
                          .attr("axis", int64_t(0))
                          .out();
  shapes[key] = shape;
  return shape;
}

/// [rows of x, columns].
std::string Translator::rowsShape(const std::string &x, int64_t columns,
                                  StringRef name) {
  std::string rows = g.add("Shape", {x}, (name + "/rows").str())
                         .attr("start", int64_t(0))
                         .attr("end", int64_t(1))
                         .out();
  return g.add("Concat", {rows, g.i64Vector({columns})}, name)
      .attr("axis", int64_t(0))
      .out();
}

FailureOr<RopeTables> Translator::rope(AttentionOp op) {
  int64_t dim = op.getHeadDim();
  double theta = op.getRopeTheta().convertToDouble();
  RopeScalingAttr scaling = op.getRopeScaling().value_or(RopeScalingAttr());
  std::string key = std::to_string(dim) + "/" + std::to_string(theta);
  if (scaling) {
    std::string text;
    llvm::raw_string_ostream os(text);
    os << scaling;
    key += "/" + text;
  }
  auto it = ropeTables.find(key);
  if (it != ropeTables.end())
    return it->second;
  if (dim % 2)
    return op.emitOpError() << "has an odd head_dim (" << dim
                            << "): its rotary embedding cannot be exported";
  std::string prefix = "rope" + std::to_string(ropeTables.size());
  auto [inverseDouble, attentionFactor] = op.getRopeInverseFrequencies();
  std::vector<float> inverse(inverseDouble.begin(), inverseDouble.end());
  std::string inverseName;
  if (scaling && scaling.getKind() == RopeScalingKind::dynamic) {
    // NTK scaling: base = theta * max(factor * S / original - (factor - 1),
    // 1) ^ (d / (d - 2)); the maximum keeps theta up to the original
    // length.
    if (scaling.getOriginalMaxPosition() <= 0)
      return op.emitOpError() << "uses dynamic rotary scaling without "
                                 "original_max_position";
    double factor = scaling.getFactor().convertToDouble();
    std::string ratio = g.add(
        "Mul",
        {ropeLength(),
         g.f32Scalar(float(factor / double(scaling.getOriginalMaxPosition())))},
        prefix + "/ratio");
    ratio = g.add("Sub", {ratio, g.f32Scalar(float(factor - 1))},
                  prefix + "/ratio_shift");
    ratio = g.add("Max", {ratio, g.f32Scalar(1.0f)}, prefix + "/ratio_min");
    std::string power =
        g.add("Pow", {ratio, g.f32Scalar(float(double(dim) / (dim - 2)))},
              prefix + "/ntk");
    std::string base =
        g.add("Mul", {power, g.f32Scalar(float(theta))}, prefix + "/base");
    std::vector<float> exponents(dim / 2);
    for (int64_t i = 0; i < dim / 2; ++i)
      exponents[i] = float(double(2 * i) / double(dim));
    std::string pow =
        g.add("Pow", {base, g.f32(exponents, {dim / 2})}, prefix + "/base_pow");
    inverseName = g.add("Reciprocal", {pow}, prefix + "/inv_freq");
  } else {
    inverseName = g.f32(inverse, {dim / 2});
  }
  // Prefill: positions [S] -> tables [S, D], which broadcast over keys and
  // grouped queries alike. KV cache: position_ids [B, S] -> [B, S, D],
  // [B, 1, S, D] for keys and [B, 1, 1, S, D] for grouped queries.
  std::string column =
      g.add("Unsqueeze", {positionsF32(), g.i64Vector({kvCache() ? 2 : 1})},
            prefix + "/pos");
  std::string freqs =
      g.add("Mul", {column, inverseName}, prefix + "/freqs").out();
  std::string emb = g.add("Concat", {freqs, freqs}, prefix + "/emb")
                        .attr("axis", int64_t(-1))
                        .out();
  std::string cos = g.add("Cos", {emb}, prefix + "/cos");
  std::string sin = g.add("Sin", {emb}, prefix + "/sin");
  if (attentionFactor != 1.0) {
    cos = g.add("Mul", {cos, g.f32Scalar(float(attentionFactor))},
                prefix + "/cos_scaled")
              .out();
    sin = g.add("Mul", {sin, g.f32Scalar(float(attentionFactor))},
                prefix + "/sin_scaled")
              .out();
  }
  if (!kvCache())
    return ropeTables[key] = {cos, sin, cos, sin};
  RopeTables tables;
  tables.cos = g.add("Unsqueeze", {cos, g.i64Vector({1})}, prefix + "/cos_kv");
  tables.sin = g.add("Unsqueeze", {sin, g.i64Vector({1})}, prefix + "/sin_kv");
  tables.groupCos = g.add("Unsqueeze", {tables.cos, g.i64Vector({1})},
                          prefix + "/cos_groups");
  tables.groupSin = g.add("Unsqueeze", {tables.sin, g.i64Vector({1})},
                          prefix + "/sin_groups");
  return ropeTables[key] = tables;
}

/// Which keys each query sees: [S, S] for a prefill; [B, 1, 1, S, T] with a
/// KV cache (T = past + S), where query i sits at key index past + i and
/// the attention mask removes padded keys.
const std::string &Translator::causalMask(int64_t window) {
  auto it = masks.find(window);
  if (it != masks.end())
    return it->second;
  std::string prefix =
      window ? "mask/window" + std::to_string(window) : std::string("mask");
  std::string queries, keys;
  if (kvCache()) {
    queries = g.add("Range", {pastLen(), totalLen(), g.i64Scalar(1)},
                    "mask/query_index");
    keys = g.add("Range", {g.i64Scalar(0), totalLen(), g.i64Scalar(1)},
                 "mask/key_index");
  } else {
    queries = keys = g.add("Range", {g.i64Scalar(0), seqLen(), g.i64Scalar(1)},
                           "mask/index");
  }
  std::string rows =
      g.add("Unsqueeze", {queries, g.i64Vector({1})}, prefix + "/rows");
  std::string columns =
      g.add("Unsqueeze", {keys, g.i64Vector({0})}, prefix + "/columns");
  std::string allowed =
      g.add("LessOrEqual", {columns, rows}, prefix + "/causal");
  if (window) {
    // Query i sees keys j with i - window < j.
    std::string first =
        g.add("Sub", {rows, g.i64Scalar(window)}, prefix + "/first");
    std::string near = g.add("Greater", {columns, first}, prefix + "/near");
    allowed = g.add("And", {allowed, near}, prefix + "/window").out();
  }
  if (kvCache()) {
    std::string present = g.add("Cast", {attentionMask}, "mask/present")
                              .attr("to", int64_t(onnx::TensorProto::BOOL));
    std::string padding =
        g.add("Unsqueeze", {present, g.i64Vector({1, 2, 3})}, "mask/padding");
    allowed = g.add("And", {allowed, padding}, prefix + "/padded").out();
  }
  return masks[window] = allowed;
}

LogicalResult Translator::lower(AttentionOp op) {
  std::string name = nameOf(op);
  FailureOr<Names> qkv = acts(op, {op.getQuery(), op.getKey(), op.getValue()});
  if (failed(qkv))
    return failure();
  int64_t heads = op.getNumHeads(), kvHeads = op.getNumKvHeads();
  int64_t dim = op.getHeadDim();
  if (heads % kvHeads)
    return op.emitOpError()
           << "heads " << heads << " is not a multiple of kv_heads " << kvHeads;
  int64_t group = heads / kvHeads;
  // q: [T, H * D] -> [B, S, KV, G, D] -> [B, KV, G, S, D]; k and v:
  // [T, KV * D] -> [B, KV, S, D] (the cache's layout), then [B, KV, 1, S, D]
  // so that MatMul broadcasts the group.
  std::string q = g.add(
      "Reshape", {(*qkv)[0], tokenShape({kvHeads, group, dim}, "shape/q")},
      name + "/q_heads");
  q = g.add("Transpose", {q}, name + "/q_transpose")
          .attr("perm", ArrayRef<int64_t>{0, 2, 3, 1, 4})
          .out();
  auto kvHeadsOf = [&](const std::string &value, StringRef part) {
    std::string reshaped =
        g.add("Reshape", {value, tokenShape({kvHeads, dim}, "shape/kv")},
              (name + "/" + part + "_heads").str());
    return g
        .add("Transpose", {reshaped}, (name + "/" + part + "_transpose").str())
        .attr("perm", ArrayRef<int64_t>{0, 2, 1, 3})
        .out();
  };
  std::string k = kvHeadsOf((*qkv)[1], "k");
  std::string v = kvHeadsOf((*qkv)[2], "v");

  if (op.getRopeTheta().convertToDouble() != 0) {
    FailureOr<RopeTables> table = rope(op);
    if (failed(table))
      return failure();
    auto rotate = [&](const std::string &x, const std::string &cosTable,
                      const std::string &sinTable, StringRef part) {
      std::string prefix = (name + "/rope_" + part).str();
      std::string axes = g.i64Vector({-1});
      std::string first =
          g.add("Slice", {x, g.i64Vector({0}), g.i64Vector({dim / 2}), axes},
                prefix + "/first");
      std::string second =
          g.add("Slice", {x, g.i64Vector({dim / 2}), g.i64Vector({dim}), axes},
                prefix + "/second");
      std::string negated = g.add("Neg", {second}, prefix + "/neg");
      std::string rotated = g.add("Concat", {negated, first}, prefix + "/rot")
                                .attr("axis", int64_t(-1));
      std::string cos = g.add("Mul", {x, cosTable}, prefix + "/cos");
      std::string sin = g.add("Mul", {rotated, sinTable}, prefix + "/sin");
      return g.add("Add", {cos, sin}, prefix).out();
    };
    q = rotate(q, table->groupCos, table->groupSin, "q");
    k = rotate(k, table->cos, table->sin, "k");
  }
  if (kvCache()) {
    // The cache holds keys after their rotation, as transformers' does.
    const CacheNames &names = cacheNames[presents.size()];
    k = g.add("Concat", {names.pastKey, k}, name + "/present_key")
            .attr("axis", int64_t(2))
            .out();
    v = g.add("Concat", {names.pastValue, v}, name + "/present_value")
            .attr("axis", int64_t(2))
            .out();
    presents.push_back({k, v, kvHeads, dim});
  }
  k = g.add("Unsqueeze", {k, g.i64Vector({2})}, name + "/k_group");
  v = g.add("Unsqueeze", {v, g.i64Vector({2})}, name + "/v_group");

  double scale = op.getScale().has_value() ? op.getScale()->convertToDouble()
                                           : 1.0 / std::sqrt(double(dim));
  std::string kT = g.add("Transpose", {k}, name + "/k_t")
                       .attr("perm", ArrayRef<int64_t>{0, 1, 2, 4, 3});
  std::string scores = g.add("MatMul", {q, kT}, name + "/scores");
  scores =
      g.add("Mul", {scores, g.f32Scalar(float(scale))}, name + "/scores_scaled")
          .out();
  int64_t window = op.getSlidingWindow().value_or(0);
  if (window < 0)
    return op.emitOpError() << "has a negative sliding window";
  // The lowest float rather than -inf: a query that sees no key (a padded
  // position) gets an even mix instead of NaN, which would reach the real
  // positions through its values.
  std::string mask = causalMask(window);
  scores =
      g.add("Where",
            {mask, scores, g.f32Scalar(std::numeric_limits<float>::lowest())},
            name + "/masked")
          .out();
  std::string probs =
      g.add("Softmax", {scores}, name + "/softmax").attr("axis", int64_t(-1));
  std::string out = g.add("MatMul", {probs, v}, name + "/context");
  out = g.add("Transpose", {out}, name + "/context_transpose")
            .attr("perm", ArrayRef<int64_t>{0, 3, 1, 2, 4})
            .out();
  bind(op.getResult(),
       g.add("Reshape", {out, g.i64Vector({-1, heads * dim})}, name).out());
  return success();
}
