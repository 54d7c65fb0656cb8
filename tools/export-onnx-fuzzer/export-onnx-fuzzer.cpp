//===- export-onnx-fuzzer.cpp - libFuzzer target of the ONNX export -------===//
//
// Each input is the MLIR text --export-onnx reads, parsed with the dialects
// that translation registers and verified. A module that verifies is
// exported, in both MoE encodings and both forms (prefill, KV cache), into a
// fresh directory with every moe.scope bound to a tiny one-layer Llama base
// (made once in a scratch directory; a fuzzed path is never read). An export
// that succeeds must have written exactly the model and its data file, the
// model must parse as an ONNX ModelProto with the interface of its form, and
// each external tensor must lie inside the data file; one that fails must
// leave the directory empty (no partial output, no staging directory). Any
// crash, sanitizer report or broken invariant is a finding.
//
//===----------------------------------------------------------------------===//

#include "FuzzerSupport.h"

#include "moe/Dialect/MoeOps.h"
#include "moe/Export/ONNXExport.h"
#include "moe/Formats/HF/TensorNames.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include "onnx/onnx_pb.h"

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

using namespace mlir;
using namespace mlir::moe;
using namespace moe_fuzz;

/// Stops the fuzzer with a report: a property of the library was violated.
[[noreturn]] static void fail(const llvm::Twine &what) {
  llvm::errs() << "export-onnx-fuzzer: " << what << "\n";
  std::abort();
}

static constexpr llvm::StringLiteral kModelName = "model.onnx";
static constexpr llvm::StringLiteral kDataName = "model.onnx.data";

static ExportFixture &fixture() {
  static ExportFixture instance("export-onnx-fuzz");
  return instance;
}

/// Checks an external tensor of the model: in the data file, whole.
static void checkExternalTensor(const onnx::TensorProto &tensor,
                                uint64_t dataSize) {
  std::string location;
  std::optional<uint64_t> offset, length;
  for (const onnx::StringStringEntryProto &entry : tensor.external_data()) {
    uint64_t number = 0;
    if (entry.key() == "location")
      location = entry.value();
    else if (entry.key() != "offset" && entry.key() != "length")
      continue;
    else if (!llvm::to_integer(entry.value(), number, 10))
      fail("tensor '" + tensor.name() + "' has " + entry.key() + " '" +
           entry.value() + "'");
    else
      (entry.key() == "offset" ? offset : length) = number;
  }
  if (location != kDataName)
    fail("tensor '" + tensor.name() + "' is in '" + location +
         "', not in the data file");
  if (!offset || !length)
    fail("tensor '" + tensor.name() + "' has no offset or length");
  if (*offset > dataSize || *length > dataSize - *offset)
    fail("tensor '" + tensor.name() + "' ends beyond the data file");
  uint64_t bytes = tensor.data_type() == onnx::TensorProto::FLOAT ? 4 : 0;
  for (int64_t dim : tensor.dims())
    bytes *= dim < 0 ? 0 : static_cast<uint64_t>(dim);
  if (bytes != *length)
    fail("tensor '" + tensor.name() + "' has " + llvm::Twine(*length) +
         " bytes of data for " + llvm::Twine(bytes));
}

/// Checks every tensor of `graph` and its subgraphs stored externally.
static void checkGraph(const onnx::GraphProto &graph, uint64_t dataSize) {
  auto check = [&](const onnx::TensorProto &tensor) {
    if (tensor.data_location() == onnx::TensorProto::EXTERNAL)
      checkExternalTensor(tensor, dataSize);
    else if (tensor.external_data_size())
      fail("tensor '" + tensor.name() + "' has external data but is inline");
  };
  for (const onnx::TensorProto &tensor : graph.initializer())
    check(tensor);
  for (const onnx::NodeProto &node : graph.node())
    for (const onnx::AttributeProto &attribute : node.attribute()) {
      if (attribute.has_t())
        check(attribute.t());
      for (const onnx::TensorProto &tensor : attribute.tensors())
        check(tensor);
      if (attribute.has_g())
        checkGraph(attribute.g(), dataSize);
      for (const onnx::GraphProto &subgraph : attribute.graphs())
        checkGraph(subgraph, dataSize);
    }
}

/// Checks the names of a graph's interface: `input_ids` -> `logits`, and in
/// the KV-cache form the convention's inputs and one present output for each
/// past input.
static void checkInterface(const onnx::GraphProto &graph, OnnxForm form) {
  std::vector<std::string> inputs, outputs;
  for (const onnx::ValueInfoProto &input : graph.input())
    inputs.push_back(input.name());
  for (const onnx::ValueInfoProto &output : graph.output())
    outputs.push_back(output.name());
  // The token ids may be named by moe.name.
  std::vector<std::string> wantInputs = {inputs.empty() ? "" : inputs[0]},
                           wantOutputs = {"logits"};
  if (form == OnnxForm::KvCache) {
    wantInputs.push_back("attention_mask");
    wantInputs.push_back("position_ids");
    for (size_t layer = 0; 3 + 2 * layer < inputs.size(); ++layer)
      for (const char *part : {"key", "value"}) {
        std::string suffix = std::to_string(layer) + "." + part;
        wantInputs.push_back("past_key_values." + suffix);
        wantOutputs.push_back("present." + suffix);
      }
  }
  if (inputs != wantInputs || outputs != wantOutputs)
    fail("the graph's interface is '" + llvm::join(inputs, "', '") + "' -> '" +
         llvm::join(outputs, "', '") + "'");
}

/// Checks what an export that succeeded wrote into `dir`.
static void checkExport(llvm::StringRef dir, OnnxForm form) {
  std::vector<std::string> names = listDirectoryOrAbort(dir);
  llvm::sort(names);
  if (names != std::vector<std::string>{kModelName.str(), kDataName.str()})
    fail("the export wrote '" + llvm::join(names, "', '") +
         "' instead of the model and its data file");
  uint64_t dataSize = 0;
  if (llvm::sys::fs::file_size(joinPath(dir, kDataName), dataSize))
    fail("cannot stat the data file");
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> model =
      llvm::MemoryBuffer::getFile(joinPath(dir, kModelName));
  if (!model)
    fail("cannot read the model: " + model.getError().message());
  onnx::ModelProto proto;
  if (!proto.ParseFromArray((*model)->getBufferStart(),
                            static_cast<int>((*model)->getBufferSize())))
    fail("the model is no ONNX ModelProto");
  checkGraph(proto.graph(), dataSize);
  checkInterface(proto.graph(), form);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  OwningOpRef<ModuleOp> module = parseExportInput(data, size);
  if (!module)
    return 0;

  // The export reads scopes bound by --moe-scope, a command-line option:
  // the fuzzer binds them by rewriting their paths, to the same effect.
  const ExportFixture &files = fixture();
  for (ScopeOp scope : module->getOps<ScopeOp>())
    scope.setPath(files.base);

  for (OnnxMoeEncoding encoding :
       {OnnxMoeEncoding::Portable, OnnxMoeEncoding::Fused})
    for (OnnxForm form : {OnnxForm::Prefill, OnnxForm::KvCache}) {
      if (llvm::sys::fs::create_directory(files.out, /*IgnoreExisting=*/false))
        fail("cannot create " + files.out);
      OnnxExportOptions options;
      options.modelPath = joinPath(files.out, kModelName);
      options.encoding = encoding;
      options.form = form;
      if (succeeded(exportOnnx(*module, options)))
        checkExport(files.out, form);
      else if (std::vector<std::string> left = listDirectoryOrAbort(files.out);
               !left.empty())
        fail("a failed export left '" + llvm::join(left, "', '") + "'");
      if (llvm::sys::fs::remove_directories(files.out))
        fail("cannot remove " + files.out);
    }
  return 0;
}
