//===- Translations.h - moe-translate registrations -------------*- C++ -*-===//

#ifndef MOE_TRANSLATION_TRANSLATIONS_H
#define MOE_TRANSLATION_TRANSLATIONS_H

namespace mlir::moe {
/// Registers the import and export translations of moe-translate.
void registerMoeTranslations();
} // namespace mlir::moe

#endif // MOE_TRANSLATION_TRANSLATIONS_H
