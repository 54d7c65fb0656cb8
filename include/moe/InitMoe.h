//===- InitMoe.h - Registration of everything moe provides ------*- C++ -*-===//

#ifndef MOE_INITMOE_H
#define MOE_INITMOE_H

namespace mlir {
class DialectRegistry;

namespace moe {
/// Registers the moe dialect and the upstream dialects (with their interface
/// extensions) that moe lowers to.
void registerMoeDialects(DialectRegistry &registry);

/// Registers the moe passes and pipelines with the global pass registry.
void registerAllMoePasses();
} // namespace moe
} // namespace mlir

#endif // MOE_INITMOE_H
