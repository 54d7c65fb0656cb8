//===- ONNXGraph.cpp - Building ONNX graphs node by node ------------------===//

#include "ONNXGraph.h"

#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/Twine.h"

#include <cstring>

using namespace mlir::moe::onnx_export;

static onnx::AttributeProto *newAttr(onnx::NodeProto *node,
                                     llvm::StringRef name,
                                     onnx::AttributeProto::AttributeType type) {
  onnx::AttributeProto *attr = node->add_attribute();
  attr->set_name(name.str());
  attr->set_type(type);
  return attr;
}

Node &Node::attr(llvm::StringRef name, int64_t value) {
  newAttr(node, name, onnx::AttributeProto::INT)->set_i(value);
  return *this;
}

Node &Node::attr(llvm::StringRef name, float value) {
  newAttr(node, name, onnx::AttributeProto::FLOAT)->set_f(value);
  return *this;
}

Node &Node::attr(llvm::StringRef name, llvm::StringRef value) {
  newAttr(node, name, onnx::AttributeProto::STRING)->set_s(value.str());
  return *this;
}

Node &Node::attr(llvm::StringRef name, llvm::ArrayRef<int64_t> values) {
  onnx::AttributeProto *attr = newAttr(node, name, onnx::AttributeProto::INTS);
  for (int64_t value : values)
    attr->add_ints(value);
  return *this;
}

Node &Node::attr(llvm::StringRef name, const onnx::TensorProto &value) {
  *newAttr(node, name, onnx::AttributeProto::TENSOR)->mutable_t() = value;
  return *this;
}

/// `base`, or `base_N` for the first N that makes it new to `names`.
static std::string makeUnique(llvm::StringSet<> &names, llvm::StringRef base) {
  std::string candidate = base.empty() ? std::string("v") : base.str();
  for (unsigned suffix = 1; !names.insert(candidate).second; ++suffix)
    candidate = (base + "_" + llvm::Twine(suffix)).str();
  return candidate;
}

std::string GraphBuilder::uniqueValueName(llvm::StringRef base) {
  return makeUnique(valueNames, base);
}

static void setValueType(onnx::ValueInfoProto *info, int32_t elementType,
                         llvm::ArrayRef<GraphDim> dims) {
  onnx::TypeProto::Tensor *type = info->mutable_type()->mutable_tensor_type();
  type->set_elem_type(elementType);
  onnx::TensorShapeProto *shape = type->mutable_shape();
  for (const GraphDim &dim : dims) {
    if (const int64_t *size = std::get_if<int64_t>(&dim))
      shape->add_dim()->set_dim_value(*size);
    else
      shape->add_dim()->set_dim_param(std::get<std::string>(dim));
  }
}

const std::string &GraphBuilder::addInput(llvm::StringRef name,
                                          int32_t elementType,
                                          llvm::ArrayRef<GraphDim> dims) {
  onnx::ValueInfoProto *input = graph.add_input();
  input->set_name(name.str());
  setValueType(input, elementType, dims);
  return input->name();
}

void GraphBuilder::addOutput(const std::string &value, llvm::StringRef name,
                             int32_t elementType,
                             llvm::ArrayRef<GraphDim> dims) {
  std::string output = name.str();
  // Values are named once, by the node that produces them: rename that
  // output (the graph's nodes so far do not read it under the new name).
  for (int i = graph.node_size() - 1; i >= 0; --i) {
    onnx::NodeProto *node = graph.mutable_node(i);
    for (int j = 0; j < node->output_size(); ++j) {
      if (node->output(j) != value)
        continue;
      node->set_output(j, output);
      for (onnx::NodeProto &reader : *graph.mutable_node())
        for (std::string &input : *reader.mutable_input())
          if (input == value)
            input = output;
      onnx::ValueInfoProto *info = graph.add_output();
      info->set_name(output);
      setValueType(info, elementType, dims);
      return;
    }
  }
  // A graph input or initializer: an Identity gives it the output's name.
  onnx::NodeProto *identity = graph.add_node();
  identity->set_name(makeUnique(nodeNames, name));
  identity->set_op_type("Identity");
  identity->add_input(value);
  identity->add_output(output);
  onnx::ValueInfoProto *info = graph.add_output();
  info->set_name(output);
  setValueType(info, elementType, dims);
}

Node GraphBuilder::add(llvm::StringRef opType,
                       llvm::ArrayRef<std::string> inputs, llvm::StringRef name,
                       unsigned numOutputs, llvm::StringRef domain) {
  onnx::NodeProto *node = graph.add_node();
  std::string nodeName = makeUnique(nodeNames, name);
  node->set_name(nodeName);
  node->set_op_type(opType.str());
  if (!domain.empty())
    node->set_domain(domain.str());
  for (const std::string &input : inputs)
    node->add_input(input);
  // Trailing skipped optional inputs are dropped rather than named "".
  while (node->input_size() && node->input(node->input_size() - 1).empty())
    node->mutable_input()->RemoveLast();
  for (unsigned i = 0; i < numOutputs; ++i)
    node->add_output(uniqueValueName(
        numOutputs == 1 ? nodeName : (nodeName + ":" + llvm::Twine(i)).str()));
  return Node(node);
}

const std::string &GraphBuilder::constant(int32_t dataType,
                                          llvm::StringRef bytes,
                                          llvm::ArrayRef<int64_t> dims) {
  std::string key = std::to_string(dataType) + "[";
  for (int64_t dim : dims)
    key += std::to_string(dim) + ",";
  key += "]";
  key.append(bytes.data(), bytes.size());
  auto [it, inserted] = constants.try_emplace(key);
  if (!inserted)
    return it->second;
  // Readable names for the common small constants: const_i64_3, ...
  std::string base =
      dataType == onnx::TensorProto::INT64 ? "const_i64" : "const_f32";
  if (bytes.size() <= 8 * 4) {
    size_t count = bytes.size() / 8 * (dataType == onnx::TensorProto::INT64);
    for (size_t i = 0; i < count; ++i) {
      int64_t value;
      std::memcpy(&value, bytes.data() + 8 * i, 8);
      // The magnitude as unsigned: INT64_MIN has no int64 negation.
      base += "_" + (value < 0 ? "m" + std::to_string(0 - uint64_t(value))
                               : std::to_string(value));
    }
  }
  onnx::TensorProto *tensor = graph.add_initializer();
  tensor->set_name(uniqueValueName(base));
  tensor->set_data_type(dataType);
  for (int64_t dim : dims)
    tensor->add_dims(dim);
  tensor->set_raw_data(bytes.str());
  it->second = tensor->name();
  return it->second;
}

const std::string &GraphBuilder::i64(llvm::ArrayRef<int64_t> values,
                                     llvm::ArrayRef<int64_t> dims) {
  llvm::StringRef bytes(reinterpret_cast<const char *>(values.data()),
                        values.size() * sizeof(int64_t));
  return constant(onnx::TensorProto::INT64, bytes, dims);
}

const std::string &GraphBuilder::f32(llvm::ArrayRef<float> values,
                                     llvm::ArrayRef<int64_t> dims) {
  llvm::StringRef bytes(reinterpret_cast<const char *>(values.data()),
                        values.size() * sizeof(float));
  return constant(onnx::TensorProto::FLOAT, bytes, dims);
}

void GraphBuilder::removeDeadCode(llvm::StringSet<> &used) {
  used.clear();
  for (const onnx::ValueInfoProto &output : graph.output())
    used.insert(output.name());
  // Nodes are in topological order: one backward sweep finds every live one.
  llvm::DenseSet<int> live;
  for (int i = graph.node_size() - 1; i >= 0; --i) {
    const onnx::NodeProto &node = graph.node(i);
    bool needed = false;
    for (const std::string &output : node.output())
      needed |= used.contains(output);
    if (!needed)
      continue;
    live.insert(i);
    for (const std::string &input : node.input())
      if (!input.empty())
        used.insert(input);
  }
  google::protobuf::RepeatedPtrField<onnx::NodeProto> nodes;
  for (int i = 0; i < graph.node_size(); ++i)
    if (live.contains(i))
      nodes.Add()->Swap(graph.mutable_node(i));
  graph.mutable_node()->Swap(&nodes);

  google::protobuf::RepeatedPtrField<onnx::TensorProto> initializers;
  for (onnx::TensorProto &tensor : *graph.mutable_initializer())
    if (used.contains(tensor.name()))
      initializers.Add()->Swap(&tensor);
  graph.mutable_initializer()->Swap(&initializers);
}
