//===- TileAndVectorize.cpp - Tiled, vectorised contractions --------------===//

#include "moe/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/SCF/Transforms/TileUsingInterface.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::moe {
#define GEN_PASS_DEF_TILEANDVECTORIZE
#include "moe/Passes.h.inc"
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

void TileAndVectorizePass::runOnOperation() {
  SmallVector<int64_t> sizes(tileSizes.begin(), tileSizes.end());
  if (sizes.empty())
    sizes = {4, 16, 64};
  if (sizes.size() != 3 || llvm::any_of(sizes, [](int64_t s) { return s < 1; })) {
    getOperation().emitError()
        << "tile-sizes needs three positive sizes (two parallel dimensions "
           "and the reduction)";
    return signalPassFailure();
  }

  SmallVector<linalg::LinalgOp> contractions;
  getOperation().walk([&](linalg::LinalgOp op) {
    if (op.hasPureTensorSemantics() && linalg::isaContractionOpInterface(op))
      contractions.push_back(op);
  });

  IRRewriter rewriter(&getContext());
  for (linalg::LinalgOp op : contractions) {
    SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
    SmallVector<int64_t> bounds = op.getStaticLoopRanges();
    int64_t loops = iterators.size();
    // The innermost two parallel dimensions and the innermost reduction get
    // tiles of the requested sizes, shrunk to divide their static extent so
    // that every tile is full and vectorises without masks; dynamic
    // dimensions (tokens) and the other dimensions advance one at a time.
    auto dividingTile = [](int64_t extent, int64_t wanted) {
      int64_t tile = std::min(extent, wanted);
      while (extent % tile != 0)
        --tile;
      return tile;
    };
    SmallVector<int64_t> tiles(loops, 1);
    int64_t parallelSeen = 0;
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
      if (!ShapedType::isDynamic(bounds[d]) && bounds[d] > 0)
        tiles[d] = dividingTile(bounds[d], wanted);
    }
    SmallVector<int64_t> vectorSizes(tiles);
    scf::SCFTilingOptions options;
    options.setLoopType(scf::SCFTilingOptions::LoopType::ForOp);
    SmallVector<OpFoldResult> tileValues;
    for (int64_t tile : tiles)
      tileValues.push_back(rewriter.getIndexAttr(tile));
    options.setTileSizes(tileValues);
    rewriter.setInsertionPoint(op);
    FailureOr<scf::SCFTilingResult> tiled = scf::tileUsingSCF(
        rewriter, cast<TilingInterface>(op.getOperation()), options);
    if (failed(tiled))
      continue;
    rewriter.replaceOp(op, tiled->replacements);
    for (Operation *tile : tiled->tiledOps) {
      rewriter.setInsertionPoint(tile);
      FailureOr<linalg::VectorizationResult> vectorized =
          linalg::vectorize(rewriter, tile);
      if (succeeded(vectorized))
        rewriter.replaceOp(tile, vectorized->replacements);
    }
  }
}
