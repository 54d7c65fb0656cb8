//===- Format.h - Numbers and shapes in messages ----------------*- C++ -*-===//

#ifndef MOE_SUPPORT_FORMAT_H
#define MOE_SUPPORT_FORMAT_H

#include "mlir/IR/BuiltinTypeInterfaces.h"
#include "mlir/IR/Operation.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdio>
#include <string>

namespace mlir::moe {

/// A dimension as messages show it: '?' when dynamic.
inline std::string formatDim(int64_t dim) {
  return ShapedType::isDynamic(dim) ? "?" : std::to_string(dim);
}

/// "[2, ?, 8]": a shape as messages show it.
inline std::string formatShape(llvm::ArrayRef<int64_t> shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + formatDim(shape[i]);
  return text + "]";
}

/// "'moe.param' at loc(...)": an operation as messages name it.
inline std::string formatOp(Operation *op) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "'" << op->getName() << "' at " << op->getLoc();
  return text;
}

/// A number with four significant digits ("0.7115", "3.917e-08", "inf").
inline std::string formatNumber(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.4g", value);
  return text;
}

} // namespace mlir::moe

#endif // MOE_SUPPORT_FORMAT_H
