//===- LaunchGpuKernels.cpp - Kernel launches and device buffers ----------===//

#include "moe/Codegen/Passes.h"
#include "moe/Dialect/MoeDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::moe {
#define GEN_PASS_DEF_LAUNCHGPUKERNELS
#include "moe/CodegenPasses.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
/// The buffer a view is made from: its allocation, global or argument.
Value rootBuffer(Value buffer) {
  while (auto view = buffer.getDefiningOp<ViewLikeOpInterface>())
    buffer = view.getViewSource();
  return buffer;
}

/// Whether `root` is in GPU memory: placed there, or an argument of a
/// public function (its caller passes device buffers).
bool isDeviceRoot(Value root, const llvm::SetVector<Value> &device) {
  if (auto argument = dyn_cast<BlockArgument>(root)) {
    auto func = dyn_cast<func::FuncOp>(argument.getOwner()->getParentOp());
    return func && func.isPublic() && argument.getOwner()->isEntryBlock();
  }
  return device.contains(root);
}

struct LaunchGpuKernelsPass
    : public moe::impl::LaunchGpuKernelsBase<LaunchGpuKernelsPass> {
  void runOnOperation() override;
  LogicalResult launchKernels();
  LogicalResult placeOnDevice(func::FuncOp func);
};
} // namespace

LogicalResult LaunchGpuKernelsPass::placeOnDevice(func::FuncOp func) {
  // Buffers the device sees: kernel operands and returned buffers.
  llvm::SetVector<Value> device;
  auto addRoot = [&](Operation *user, Value buffer) -> LogicalResult {
    if (!isa<MemRefType>(buffer.getType()))
      return success();
    Value root = rootBuffer(buffer);
    if (isa<BlockArgument>(root)) {
      if (cast<BlockArgument>(root).getOwner()->isEntryBlock())
        return success();
    } else if (isa<memref::AllocOp, memref::GetGlobalOp>(
                   root.getDefiningOp())) {
      device.insert(root);
      return success();
    }
    return user->emitError()
           << "cannot place this buffer in GPU memory: it is not made by "
              "memref.alloc or memref.get_global, nor a function argument";
  };
  WalkResult walk = func.walk([&](Operation *op) {
    if (isa<gpu::LaunchFuncOp, func::ReturnOp>(op))
      for (Value operand : op->getOperands())
        if (failed(addRoot(op, operand)))
          return WalkResult::interrupt();
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();

  // Host code may pass device buffers around but not touch their elements.
  walk = func.walk([&](Operation *op) {
    Value buffer;
    if (auto load = dyn_cast<memref::LoadOp>(op))
      buffer = load.getMemRef();
    else if (auto store = dyn_cast<memref::StoreOp>(op))
      buffer = store.getMemRef();
    if (buffer && isDeviceRoot(rootBuffer(buffer), device)) {
      op->emitError() << "host code accesses an element of a GPU buffer; "
                         "only kernels may";
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();

  OpBuilder b(func.getContext());
  // The device buffers that replace them.
  llvm::SetVector<Value> placed;
  for (Value root : device) {
    Operation *definition = root.getDefiningOp();
    b.setInsertionPoint(definition);
    auto type = cast<MemRefType>(root.getType());
    if (auto alloc = dyn_cast<memref::AllocOp>(definition)) {
      auto deviceAlloc = gpu::AllocOp::create(
          b, alloc.getLoc(), type, /*asyncToken=*/Type(), ValueRange{},
          alloc.getDynamicSizes(), alloc.getSymbolOperands());
      alloc.replaceAllUsesWith(deviceAlloc.getMemref());
      alloc.erase();
      placed.insert(deviceAlloc.getMemref());
      continue;
    }
    // A constant: copied in per call, freed at the return of its block.
    auto global = cast<memref::GetGlobalOp>(definition);
    Operation *terminator = global->getBlock()->getTerminator();
    if (!isa<func::ReturnOp>(terminator) ||
        llvm::any_of(terminator->getOperands(),
                     [&](Value result) { return rootBuffer(result) == root; }))
      return global.emitError()
             << "a constant buffer used by GPU kernels must be read in the "
                "function's body and not returned";
    b.setInsertionPointAfter(global);
    auto copy = gpu::AllocOp::create(b, global.getLoc(), type, Type(),
                                     ValueRange{}, ValueRange{}, ValueRange{});
    global.getResult().replaceAllUsesWith(copy.getMemref());
    gpu::MemcpyOp::create(b, global.getLoc(), Type(), ValueRange{},
                          copy.getMemref(), global.getResult());
    b.setInsertionPoint(terminator);
    gpu::DeallocOp::create(b, global.getLoc(), Type(), ValueRange{},
                           copy.getMemref());
    placed.insert(copy.getMemref());
  }

  SmallVector<Operation *> hostOps;
  func.walk([&](Operation *op) {
    if (isa<memref::DeallocOp, memref::CopyOp>(op))
      hostOps.push_back(op);
  });
  for (Operation *op : hostOps) {
    b.setInsertionPoint(op);
    if (auto dealloc = dyn_cast<memref::DeallocOp>(op)) {
      if (!isDeviceRoot(rootBuffer(dealloc.getMemref()), placed))
        continue;
      gpu::DeallocOp::create(b, op->getLoc(), Type(), ValueRange{},
                             dealloc.getMemref());
    } else {
      auto copy = cast<memref::CopyOp>(op);
      if (!isDeviceRoot(rootBuffer(copy.getSource()), placed) &&
          !isDeviceRoot(rootBuffer(copy.getTarget()), placed))
        continue;
      gpu::MemcpyOp::create(b, op->getLoc(), Type(), ValueRange{},
                            copy.getTarget(), copy.getSource());
    }
    op->erase();
  }
  return success();
}

LogicalResult LaunchGpuKernelsPass::launchKernels() {
  ModuleOp module = getOperation();
  StringRef attrName = MoeDialect::getGpuKernelAttrName();
  SmallVector<func::FuncOp> declarations;
  for (auto func : module.getOps<func::FuncOp>())
    if (func->hasAttr(attrName))
      declarations.push_back(func);
  for (func::FuncOp declaration : declarations) {
    auto kernelName = cast<SymbolRefAttr>(declaration->getAttr(attrName));
    auto kernel = SymbolTable::lookupNearestSymbolFrom<gpu::GPUFuncOp>(
        module, kernelName);
    if (!kernel || !kernel.getKnownBlockSize())
      return declaration.emitError()
             << "launches " << kernelName
             << ", which is not a gpu.func with a known block size";
    ArrayRef<int32_t> blockSize = *kernel.getKnownBlockSize();
    std::optional<SymbolTable::UseRange> uses =
        SymbolTable::getSymbolUses(declaration, module);
    for (const SymbolTable::SymbolUse &use : *uses) {
      auto call = dyn_cast<func::CallOp>(use.getUser());
      if (!call)
        return use.getUser()->emitError()
               << "uses the kernel declaration @" << declaration.getSymName()
               << " other than by a call";
      OpBuilder b(call);
      Location loc = call.getLoc();
      auto constant = [&](int64_t value) -> Value {
        return arith::ConstantIndexOp::create(b, loc, value);
      };
      ValueRange operands = call.getOperands();
      size_t count = operands.size();
      gpu::LaunchFuncOp::create(
          b, loc, kernel,
          gpu::KernelDim3{operands[count - 2], operands[count - 1],
                          constant(1)},
          gpu::KernelDim3{constant(blockSize[0]), constant(blockSize[1]),
                          constant(blockSize[2])},
          /*dynamicSharedMemorySize=*/Value(), operands.drop_back(2));
      call.erase();
    }
    declaration.erase();
  }
  return success();
}

void LaunchGpuKernelsPass::runOnOperation() {
  if (failed(launchKernels()))
    return signalPassFailure();
  for (auto func : getOperation().getOps<func::FuncOp>())
    if (!func.isExternal() && failed(placeOnDevice(func)))
      return signalPassFailure();
}
