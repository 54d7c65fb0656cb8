//===- FuzzerSupport.cpp - Scratch files of the libFuzzer targets ---------===//

#include "FuzzerSupport.h"

#include "moe/Dialect/MoeDialect.h"
#include "moe/Formats/HF/TensorNames.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"

#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>

using namespace mlir::moe;

mlir::OwningOpRef<mlir::ModuleOp>
moe_fuzz::parseExportInput(const uint8_t *data, size_t size) {
  static mlir::MLIRContext *context = [] {
    mlir::DialectRegistry registry;
    registerMoeDialect(registry);
    registry.insert<mlir::func::FuncDialect, mlir::arith::ArithDialect,
                    mlir::tensor::TensorDialect>();
    auto *created =
        new mlir::MLIRContext(registry, mlir::MLIRContext::Threading::DISABLED);
    created->loadAllAvailableDialects();
    created->getDiagEngine().registerHandler(
        [](mlir::Diagnostic &) { return mlir::success(); });
    return created;
  }();
  // MLIR's lexer reads up to a terminating NUL, which libFuzzer's buffer
  // lacks: the parser is given a copy that has one.
  std::string text(reinterpret_cast<const char *>(data), size);
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceString<mlir::ModuleOp>(text, context);
  if (module && mlir::failed(mlir::verify(*module)))
    return nullptr;
  return module;
}

std::string moe_fuzz::makeScratchDirectory(llvm::StringRef prefix) {
  llvm::SmallString<128> dir;
  if (llvm::sys::fs::is_directory("/dev/shm"))
    for (int attempt = 0; attempt < 16; ++attempt) {
      llvm::sys::fs::getPotentiallyUniqueFileName(
          "/dev/shm/" + prefix + "-%%%%%%%%", dir);
      if (!llvm::sys::fs::create_directory(dir, /*IgnoreExisting=*/false))
        return dir.str().str();
    }
  if (std::error_code ec = llvm::sys::fs::createUniqueDirectory(prefix, dir)) {
    llvm::errs() << prefix
                 << ": cannot make a scratch directory: " << ec.message()
                 << "\n";
    std::abort();
  }
  return dir.str().str();
}

std::string moe_fuzz::joinPath(llvm::StringRef dir, llvm::StringRef name) {
  llvm::SmallString<128> path(dir);
  llvm::sys::path::append(path, name);
  return path.str().str();
}

void moe_fuzz::writeFileOrAbort(llvm::StringRef path,
                                llvm::StringRef contents) {
  std::error_code ec;
  llvm::raw_fd_ostream out(path, ec);
  if (!ec) {
    out << contents;
    out.close();
    if (!out.has_error())
      return;
    ec = out.error();
    out.clear_error();
  }
  llvm::errs() << "cannot write " << path << ": " << ec.message() << "\n";
  std::abort();
}

void moe_fuzz::makeDirectoryOrAbort(llvm::StringRef path) {
  if (std::error_code ec = llvm::sys::fs::create_directory(path)) {
    llvm::errs() << "cannot create " << path << ": " << ec.message() << "\n";
    std::abort();
  }
}

std::string moe_fuzz::zeroSafetensors(llvm::ArrayRef<ZeroTensor> tensors) {
  std::string header = "{";
  uint64_t offset = 0;
  for (const ZeroTensor &tensor : tensors) {
    uint64_t bytes = 4;
    std::string shape;
    for (int64_t dim : tensor.shape) {
      bytes *= dim;
      shape += (shape.empty() ? "" : ",") + std::to_string(dim);
    }
    header += (header.size() > 1 ? ",\"" : "\"") + tensor.name +
              "\":{\"dtype\":\"F32\",\"shape\":[" + shape +
              "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + bytes) + "]}";
    offset += bytes;
  }
  header += "}";
  char length[8];
  llvm::support::endian::write64le(length, header.size());
  return std::string(length, 8) + header + std::string(offset, '\0');
}

std::string moe_fuzz::tinyLlamaConfig(int64_t layers) {
  return R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": )" +
         std::to_string(layers) + R"(,
  "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4,
  "vocab_size": 32, "max_position_embeddings": 64, "rms_norm_eps": 1e-06,
  "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": false
})";
}

std::vector<moe_fuzz::ZeroTensor> moe_fuzz::tinyLlamaTensors(int64_t layers) {
  std::vector<ZeroTensor> tensors = {{hf::weightKey(hf::kEmbedTokens), {32, 8}},
                                     {hf::weightKey(hf::kFinalNorm), {8}},
                                     {hf::weightKey(hf::kLmHead), {32, 8}}};
  for (int64_t layer = 0; layer < layers; ++layer) {
    tensors.push_back({hf::weightKey(hf::inputNormModule(layer)), {8}});
    tensors.push_back({hf::weightKey(hf::postAttentionNormModule(layer)), {8}});
    for (auto [projection, rows] :
         {std::pair{"q_proj", 8}, {"k_proj", 4}, {"v_proj", 4}, {"o_proj", 8}})
      tensors.push_back(
          {hf::weightKey(hf::attentionModule(layer, projection)), {rows, 8}});
    tensors.push_back(
        {hf::weightKey(hf::mlpModule(layer, "gate_proj")), {16, 8}});
    tensors.push_back(
        {hf::weightKey(hf::mlpModule(layer, "up_proj")), {16, 8}});
    tensors.push_back(
        {hf::weightKey(hf::mlpModule(layer, "down_proj")), {8, 16}});
  }
  return tensors;
}

void moe_fuzz::writeTinyLlama(llvm::StringRef dir, int64_t layers) {
  writeFileOrAbort(joinPath(dir, "config.json"), tinyLlamaConfig(layers));
  writeFileOrAbort(joinPath(dir, "model.safetensors"),
                   zeroSafetensors(tinyLlamaTensors(layers)));
}

moe_fuzz::ExportFixture::ExportFixture(llvm::StringRef prefix)
    : dir(makeScratchDirectory(prefix)), base(joinPath(dir, "base")),
      out(joinPath(dir, "out")) {
  makeDirectoryOrAbort(base);
  writeTinyLlama(base, /*layers=*/1);
}

moe_fuzz::ExportFixture::~ExportFixture() {
  llvm::sys::fs::remove_directories(dir);
}

std::vector<std::string> moe_fuzz::listDirectoryOrAbort(llvm::StringRef dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec))
    names.push_back(llvm::sys::path::filename(it->path()).str());
  if (ec) {
    llvm::errs() << "cannot list " << dir << ": " << ec.message() << "\n";
    std::abort();
  }
  return names;
}
