//===- Errors.h - llvm::Error helpers ---------------------------*- C++ -*-===//

#ifndef MOE_SUPPORT_ERRORS_H
#define MOE_SUPPORT_ERRORS_H

#include "llvm/ADT/Twine.h"
#include "llvm/Support/Error.h"

/// Evaluates `expr` (an llvm::Expected); on error returns it from the
/// enclosing function, otherwise moves the value into `lhs`.
#define MOE_ASSIGN_OR_RETURN(lhs, expr)                                        \
  do {                                                                         \
    auto moeExpected = (expr);                                                 \
    if (!moeExpected)                                                          \
      return moeExpected.takeError();                                          \
    lhs = std::move(*moeExpected);                                             \
  } while (false)

/// Evaluates `expr` (an llvm::Error) and returns it when it is an error.
#define MOE_RETURN_IF_ERROR(expr)                                              \
  do {                                                                         \
    if (llvm::Error moeError = (expr))                                         \
      return moeError;                                                         \
  } while (false)

namespace mlir::moe {
/// An llvm::Error carrying `message`.
inline llvm::Error makeError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}
} // namespace mlir::moe

#endif // MOE_SUPPORT_ERRORS_H
