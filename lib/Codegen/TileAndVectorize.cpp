//===- TileAndVectorize.cpp - Tiled, vectorised contractions --------------===//

#include "moe/Codegen/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/SCF/Transforms/Patterns.h"
#include "mlir/Dialect/SCF/Transforms/TileUsingInterface.h"
#include "mlir/Dialect/SCF/Transforms/Transforms.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::moe {
#define GEN_PASS_DEF_TILEANDVECTORIZE
#include "moe/CodegenPasses.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
struct TileAndVectorizePass
    : public moe::impl::TileAndVectorizeBase<TileAndVectorizePass> {
  using TileAndVectorizeBase::TileAndVectorizeBase;
  void runOnOperation() override;
};
} // namespace

/// The largest tile not above `wanted` that divides `extent`.
static int64_t dividingTile(int64_t extent, int64_t wanted) {
  int64_t tile = std::min(extent, wanted);
  while (extent % tile != 0)
    --tile;
  return tile;
}

static FailureOr<scf::SCFTilingResult>
tile(RewriterBase &rewriter, linalg::LinalgOp op, ArrayRef<int64_t> sizes) {
  scf::SCFTilingOptions options;
  options.setLoopType(scf::SCFTilingOptions::LoopType::ForOp);
  SmallVector<OpFoldResult> values;
  for (int64_t size : sizes)
    values.push_back(rewriter.getIndexAttr(size));
  options.setTileSizes(values);
  rewriter.setInsertionPoint(op);
  FailureOr<scf::SCFTilingResult> tiled = scf::tileUsingSCF(
      rewriter, cast<TilingInterface>(op.getOperation()), options);
  if (succeeded(tiled))
    rewriter.replaceOp(op, tiled->replacements);
  return tiled;
}

void TileAndVectorizePass::runOnOperation() {
  SmallVector<int64_t> sizes(tileSizes.begin(), tileSizes.end());
  if (sizes.empty())
    sizes = {4, 8, 64};
  if (sizes.size() != 3 ||
      llvm::any_of(sizes, [](int64_t s) { return s < 1; })) {
    emitError(getOperation().getLoc())
        << "tile-sizes needs three positive sizes (two parallel dimensions "
           "and the reduction)";
    return signalPassFailure();
  }
  MLIRContext *context = &getContext();
  func::FuncOp func = getOperation();
  SmallVector<linalg::LinalgOp> contractions;
  func.walk([&](linalg::LinalgOp op) {
    if (op.hasPureTensorSemantics() && linalg::isaContractionOpInterface(op))
      contractions.push_back(op);
  });

  // 1. Tile. The innermost two parallel dimensions and the innermost
  // reduction get tiles of the requested sizes, shrunk to divide their
  // static extent so that every tile is full; the first dynamic one among
  // them (tokens) gets a full-size tile too, and its loop is peeled so that
  // only the last iteration is ragged. Other dimensions advance one at a
  // time.
  IRRewriter rewriter(context);
  for (linalg::LinalgOp op : contractions) {
    SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
    SmallVector<int64_t> bounds = op.getStaticLoopRanges();
    int64_t loops = iterators.size();
    SmallVector<int64_t> tiles(loops, 1);
    int64_t parallelSeen = 0, peeled = -1;
    bool reductionSeen = false;
    for (int64_t d = loops - 1; d >= 0; --d) {
      bool reduction = iterators[d] == utils::IteratorType::reduction;
      int64_t wanted = 1;
      if (reduction && !reductionSeen)
        wanted = sizes[2];
      else if (!reduction && parallelSeen < 2)
        wanted = sizes[1 - parallelSeen];
      reductionSeen |= reduction;
      parallelSeen += !reduction;
      if (!ShapedType::isDynamic(bounds[d]))
        tiles[d] = bounds[d] > 0 ? dividingTile(bounds[d], wanted) : 1;
      else if (peeled < 0 && !reduction && wanted > 1) {
        tiles[d] = wanted;
        peeled = d;
      }
    }
    FailureOr<scf::SCFTilingResult> tiled = tile(rewriter, op, tiles);
    if (failed(tiled) || peeled < 0)
      continue;
    // The loops follow the dimensions in order.
    auto loop = dyn_cast<scf::ForOp>(tiled->loops[peeled].getOperation());
    scf::ForOp remainder;
    if (loop)
      (void)scf::peelForLoopAndSimplifyBounds(rewriter, loop, remainder);
  }

  // 2. Let full tiles become statically shaped.
  RewritePatternSet patterns(context);
  for (Dialect *dialect : context->getLoadedDialects())
    dialect->getCanonicalizationPatterns(patterns);
  for (RegisteredOperationName name : context->getRegisteredOperations())
    name.getCanonicalizationPatterns(patterns, context);
  scf::populateSCFForLoopCanonicalizationPatterns(patterns);
  if (failed(applyPatternsGreedily(func, std::move(patterns))))
    return signalPassFailure();

  // 3. Vectorise static tiles; ragged ones (the peeled last iterations)
  // advance one token at a time first.
  SmallVector<linalg::LinalgOp> tiles;
  func.walk([&](linalg::LinalgOp op) {
    if (op.hasPureTensorSemantics() && linalg::isaContractionOpInterface(op) &&
        op->getParentOfType<scf::ForOp>())
      tiles.push_back(op);
  });
  for (linalg::LinalgOp op : tiles) {
    SmallVector<linalg::LinalgOp> vectorizable{op};
    if (op.hasDynamicShape()) {
      SmallVector<int64_t> ones;
      for (int64_t bound : op.getStaticLoopRanges())
        ones.push_back(ShapedType::isDynamic(bound) ? 1 : 0);
      FailureOr<scf::SCFTilingResult> tiled = tile(rewriter, op, ones);
      if (failed(tiled))
        continue;
      vectorizable.clear();
      for (Operation *tiledOp : tiled->tiledOps)
        if (auto linalgOp = dyn_cast<linalg::LinalgOp>(tiledOp))
          vectorizable.push_back(linalgOp);
    }
    for (linalg::LinalgOp candidate : vectorizable) {
      if (candidate.hasDynamicShape())
        continue;
      rewriter.setInsertionPoint(candidate);
      // As vector.contract, which lowers to dot products along the
      // contiguous reduction rather than to huge broadcasts.
      FailureOr<linalg::VectorizationResult> vectorized = linalg::vectorize(
          rewriter, candidate, /*inputVectorSizes=*/{},
          /*inputScalableVecDims=*/{}, /*vectorizeNDExtract=*/false,
          /*flatten1DDepthwiseConv=*/false,
          /*assumeDynamicDimsMatchVecSizes=*/false,
          /*createNamedContraction=*/true);
      if (succeeded(vectorized))
        rewriter.replaceOp(candidate, vectorized->replacements);
    }
  }
}
