//===- Translations.h - moe-translate registrations -------------*- C++ -*-===//

#ifndef MOE_TRANSLATION_TRANSLATIONS_H
#define MOE_TRANSLATION_TRANSLATIONS_H

#include "llvm/ADT/StringRef.h"

namespace mlir::moe {

/// Registers the import and export translations of moe-translate and their
/// options.
void registerMoeTranslations();

/// Whether the translation registered as `translation` ("export-hf", ...)
/// writes files of its own at the path of `-o` (given by setOutputPath);
/// its output stream then carries a summary, for stdout.
bool writesOwnFiles(llvm::StringRef translation);

/// The path of moe-translate's `-o`, for the translations that write files
/// of their own.
void setOutputPath(llvm::StringRef path);

} // namespace mlir::moe

#endif // MOE_TRANSLATION_TRANSLATIONS_H
