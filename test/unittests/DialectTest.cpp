//===- DialectTest.cpp - C++ API of the moe dialect -----------------------===//

#include "moe/Dialect/MoeOps.h"
#include "moe/InitMoe.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

using namespace mlir;

namespace {
class MoeDialectTest : public ::testing::Test {
protected:
  MoeDialectTest() {
    DialectRegistry registry;
    moe::registerMoeDialects(registry);
    context.appendDialectRegistry(registry);
    context.loadAllAvailableDialects();
  }
  MLIRContext context;
};

TEST_F(MoeDialectTest, LayerIndexRoundTrips) {
  OpBuilder builder(&context);
  auto module = ModuleOp::create(builder.getUnknownLoc());
  builder.setInsertionPointToEnd(module.getBody());
  auto scope =
      moe::ScopeOp::create(builder, builder.getUnknownLoc(), "base",
                           "models/base", moe::ScopeFormat::huggingface);
  auto type = RankedTensorType::get({4, 8}, builder.getF32Type());
  auto param = moe::ParamOp::create(
      builder, builder.getUnknownLoc(), type,
      FlatSymbolRefAttr::get(scope.getSymNameAttr()),
      builder.getStringAttr("model.layers.3.mlp.up_proj.weight"),
      IntegerAttr());
  EXPECT_FALSE(moe::getLayerIndex(param).has_value());
  moe::setLayerIndex(param, 3);
  EXPECT_EQ(moe::getLayerIndex(param), 3);
  EXPECT_TRUE(moe::isWeight(param));
  EXPECT_TRUE(succeeded(verify(module)));
  module->erase();
}

TEST_F(MoeDialectTest, ParamNeedsAScope) {
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(
      R"mlir(
        moe.scope @base path "m" format huggingface
        func.func @f() -> tensor<2xf32> {
          %w = moe.param @base::"w" : tensor<2xf32>
          return %w : tensor<2xf32>
        }
      )mlir",
      &context);
  ASSERT_TRUE(module);
  int diagnostics = 0;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &) {
    ++diagnostics;
    return success();
  });
  module->lookupSymbol<moe::ScopeOp>("base")->erase();
  EXPECT_TRUE(failed(verify(*module)));
  EXPECT_EQ(diagnostics, 1);
}

TEST_F(MoeDialectTest, ComputeOpsAreNotWeightExpressions) {
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(
      R"mlir(
        func.func @f(%x: tensor<?x8xf32>, %w: tensor<4x8xf32>) -> tensor<?x4xf32> {
          %y = moe.linear %x, %w : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
          return %y : tensor<?x4xf32>
        }
      )mlir",
      &context);
  ASSERT_TRUE(module);
  module->walk([](moe::LinearOp op) {
    EXPECT_FALSE(isa<moe::WeightExpressionOpInterface>(op.getOperation()));
  });
}
} // namespace
