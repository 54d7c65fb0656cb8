//===- ONNXGraph.h - Building ONNX graphs node by node ----------*- C++ -*-===//
//
// A thin layer over ONNX's GraphProto: unique node and value names, nodes
// with attributes, and small constants (shapes, axes, scalars) as inline
// initializers, shared by content. Weights are not constants: they are
// streamed to external data by ONNXWeights.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_EXPORT_ONNX_ONNXGRAPH_H
#define MOE_LIB_EXPORT_ONNX_ONNXGRAPH_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/ADT/StringSet.h"

#include "onnx/onnx_pb.h"

#include <string>
#include <variant>
#include <vector>

namespace mlir::moe::onnx_export {

/// The domain of ONNX Runtime's contrib operators.
constexpr llvm::StringLiteral kMicrosoftDomain = "com.microsoft";

/// A node being built: set attributes, read its outputs.
class Node {
public:
  explicit Node(onnx::NodeProto *node) : node(node) {}

  Node &attr(llvm::StringRef name, int64_t value);
  Node &attr(llvm::StringRef name, float value);
  Node &attr(llvm::StringRef name, llvm::StringRef value);
  Node &attr(llvm::StringRef name, llvm::ArrayRef<int64_t> values);
  Node &attr(llvm::StringRef name, const onnx::TensorProto &value);

  const std::string &out(unsigned index = 0) const {
    return node->output(static_cast<int>(index));
  }
  operator const std::string &() const { return out(); }

private:
  onnx::NodeProto *node;
};

/// A dimension of a graph input or output: a size, or a symbol that names a
/// dynamic one.
using GraphDim = std::variant<int64_t, std::string>;

class GraphBuilder {
public:
  explicit GraphBuilder(onnx::GraphProto &graph) : graph(graph) {}

  /// Adds node `opType` named `name` (made unique), reading `inputs` (an
  /// empty string skips an optional input) and producing `numOutputs` new
  /// values named after the node.
  Node add(llvm::StringRef opType, llvm::ArrayRef<std::string> inputs,
           llvm::StringRef name, unsigned numOutputs = 1,
           llvm::StringRef domain = "");

  /// A value name not used yet, derived from `base`.
  std::string uniqueValueName(llvm::StringRef base);

  /// Declares graph input `name`, a name reserved with uniqueValueName
  /// before any node was added (so that the graph's interface keeps the
  /// names of its convention).
  const std::string &addInput(llvm::StringRef name, int32_t elementType,
                              llvm::ArrayRef<GraphDim> dims);
  /// Declares `value` a graph output under `name`, reserved like an input's:
  /// the node producing `value` produces `name` instead.
  void addOutput(const std::string &value, llvm::StringRef name,
                 int32_t elementType, llvm::ArrayRef<GraphDim> dims);

  /// Constants, as inline initializers shared by content.
  const std::string &i64(llvm::ArrayRef<int64_t> values,
                         llvm::ArrayRef<int64_t> dims);
  const std::string &i64Vector(llvm::ArrayRef<int64_t> values) {
    return i64(values, {static_cast<int64_t>(values.size())});
  }
  const std::string &i64Scalar(int64_t value) { return i64({value}, {}); }
  const std::string &f32(llvm::ArrayRef<float> values,
                         llvm::ArrayRef<int64_t> dims);
  const std::string &f32Scalar(float value) { return f32({value}, {}); }

  /// Drops the nodes none of whose outputs is read (by a node or as a graph
  /// output) and the initializers nothing reads; `used` receives the names
  /// still read, so that weights can be filtered the same way.
  void removeDeadCode(llvm::StringSet<> &used);

  onnx::GraphProto &proto() { return graph; }

private:
  const std::string &constant(int32_t dataType, llvm::StringRef bytes,
                              llvm::ArrayRef<int64_t> dims);

  onnx::GraphProto &graph;
  llvm::StringSet<> nodeNames, valueNames;
  llvm::StringMap<std::string> constants;
};

} // namespace mlir::moe::onnx_export

#endif // MOE_LIB_EXPORT_ONNX_ONNXGRAPH_H
