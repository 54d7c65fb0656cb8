//===- MoeToGPU.cpp - Routed experts as routing and grouped-GEMM kernels --===//
//
// Every moe.fused_moe becomes five kernels over flat buffers (gating, align,
// gemm_up, gemm_down, combine). Kernels are written once against
// KernelContext, which emits them either as gpu.funcs (threads are GPU
// threads, phases end with gpu.barrier, shared buffers are workgroup memory)
// or as CPU functions (blocks and threads are loops; each phase is a loop
// over the threads of a block, which is what a barrier guarantees).
//
//===----------------------------------------------------------------------===//

#include "moe/Conversion/TensorBuilder.h"

#include "moe/Conversion/Passes.h"
#include "moe/Dialect/MoeOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"

#include <cmath>

namespace mlir::moe {
#define GEN_PASS_DEF_LOWERMOEKERNELS
#include "moe/ConversionPasses.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// Static workgroup memory a CUDA kernel may declare.
constexpr int64_t kMaxStaticSharedBytes = 48 * 1024;

/// Sizes of one routed-experts layer and of its kernels' tiles.
struct Shape {
  int64_t experts, k, hidden, inter;
  bool gated;
  Activation activation;
  Scoring scoring;
  bool scoreBeforeTopK, renormalize;
  double noiseStd;
  int64_t noiseSeed;
  int64_t blockM, blockN, blockK, threads;
  /// GEMM inner products on tensor cores (mma.sync m16n8k4, TF32 operands).
  bool tf32;
};

/// The warp-level tensor-core product the tf32 GEMMs use.
constexpr int64_t kWarpSize = 32, kMmaM = 16, kMmaN = 8, kMmaK = 4;

/// for (iv = lower; iv < upper; iv += step) body(iv), built with `b` (whose
/// insertion point moves into the loop while `body` runs).
void buildFor(OpBuilder &b, Location loc, Value lower, Value upper, Value step,
              function_ref<void(Value)> body) {
  scf::ForOp::create(b, loc, lower, upper, step, ValueRange{},
                     [&](OpBuilder &nb, Location, Value iv, ValueRange) {
                       OpBuilder::InsertionGuard guard(b);
                       b.setInsertionPoint(nb.getInsertionBlock(),
                                           nb.getInsertionPoint());
                       body(iv);
                       scf::YieldOp::create(b, loc);
                     });
}

/// if (condition) body(), built with `b`.
void buildIf(OpBuilder &b, Location loc, Value condition,
             function_ref<void()> body) {
  auto ifOp = scf::IfOp::create(b, loc, condition, /*withElse=*/false);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(&ifOp.getThenRegion().front());
  body();
}

/// Emits one kernel's body for either target. Kernel code is a sequence of
/// phases; within a phase each thread runs the phase body with its thread
/// id; between phases every thread of the block has finished the previous
/// phase. Code outside phases must be uniform over the block's threads.
class KernelContext {
public:
  KernelContext(OpBuilder &b, Location loc, KernelTarget target,
                int64_t threads, Value blockX, Value blockY,
                ArrayRef<Value> shared, ArrayRef<Value> privates,
                ArrayRef<int64_t> privateSizes)
      : b(b), loc(loc), target(target), threads(threads), blockX(blockX),
        blockY(blockY), sharedBuffers(shared), privateBuffers(privates),
        privateSizes(privateSizes) {}

  OpBuilder &builder() { return b; }
  Location location() const { return loc; }
  Value blockIdX() const { return blockX; }
  Value blockIdY() const { return blockY; }
  Value shared(unsigned i) const { return sharedBuffers[i]; }

  /// Element `i` of thread `tid`'s private array `buffer`, which lives
  /// across phases: registers on the GPU (constant indices let LLVM promote
  /// the array), the thread's slice of a per-block buffer on the CPU.
  Value loadPrivate(unsigned buffer, Value tid, int64_t i) {
    return memref::LoadOp::create(b, loc, privateBuffers[buffer],
                                  ValueRange{privateIndex(buffer, tid, i)});
  }
  void storePrivate(Value value, unsigned buffer, Value tid, int64_t i) {
    memref::StoreOp::create(b, loc, value, privateBuffers[buffer],
                            ValueRange{privateIndex(buffer, tid, i)});
  }

  /// Runs `body(threadId)` on every thread, then waits for all of them.
  void phase(function_ref<void(OpBuilder &, Value)> body) {
    if (target == KernelTarget::gpu) {
      Value tid = gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
      body(b, tid);
      gpu::BarrierOp::create(b, loc);
      return;
    }
    buildFor(b, loc, constant(0), constant(threads), constant(1),
             [&](Value tid) { body(b, tid); });
  }

  /// A uniform loop around phases.
  void loop(Value lower, Value upper, Value step,
            function_ref<void(Value)> body) {
    buildFor(b, loc, lower, upper, step, body);
  }

  /// A uniform condition around phases.
  void when(Value condition, function_ref<void()> body) {
    buildIf(b, loc, condition, body);
  }

  Value constant(int64_t value) {
    return arith::ConstantIndexOp::create(b, loc, value);
  }

  /// One warp's c += A B for a 16x8x4 tile (mma.sync m16n8k4, TF32), seen
  /// from lane `lane`. A holds rows `rowBase`.. and B columns `colBase`.. of
  /// the shared tiles `a` and `b` (row-major with `stride` elements per row,
  /// reduction index from `kk`). `c` holds the lane's four accumulators in
  /// the PTX fragment layout: rows g, g, g+8, g+8 and columns 2t, 2t+1, 2t,
  /// 2t+1 of the tile, for g = lane / 4 and t = lane % 4. On the GPU this
  /// is one instruction of the whole warp; on the CPU the lane computes its
  /// own four sums.
  SmallVector<Value> mmaTf32(Value lane, Value a, Value bTile, int64_t stride,
                             Value kk, Value rowBase, Value colBase,
                             ArrayRef<Value> c);

private:
  Value privateIndex(unsigned buffer, Value tid, int64_t i) {
    if (target == KernelTarget::gpu)
      return constant(i);
    return arith::AddIOp::create(
        b, loc,
        arith::MulIOp::create(b, loc, tid, constant(privateSizes[buffer])),
        constant(i));
  }

  OpBuilder &b;
  Location loc;
  KernelTarget target;
  int64_t threads;
  Value blockX, blockY;
  SmallVector<Value> sharedBuffers, privateBuffers;
  SmallVector<int64_t> privateSizes;
};

/// Thread-level helpers on flat buffers (used inside phases).
struct Scalar {
  OpBuilder &b;
  Location loc;

  Value index(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value f32(double v) {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(float(v)));
  }
  Value i32(int64_t v) {
    return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(v));
  }
  Value add(Value x, Value y) {
    return isa<FloatType>(x.getType())
               ? arith::AddFOp::create(b, loc, x, y).getResult()
               : arith::AddIOp::create(b, loc, x, y).getResult();
  }
  Value mul(Value x, Value y) {
    return isa<FloatType>(x.getType())
               ? arith::MulFOp::create(b, loc, x, y).getResult()
               : arith::MulIOp::create(b, loc, x, y).getResult();
  }
  Value div(Value x, Value y) {
    return isa<FloatType>(x.getType())
               ? arith::DivFOp::create(b, loc, x, y).getResult()
               : arith::DivUIOp::create(b, loc, x, y).getResult();
  }
  Value rem(Value x, Value y) { return arith::RemUIOp::create(b, loc, x, y); }
  Value lt(Value x, Value y) {
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, x, y);
  }
  Value eq(Value x, Value y) {
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, x, y);
  }
  Value andI(Value x, Value y) { return arith::AndIOp::create(b, loc, x, y); }
  Value select(Value c, Value x, Value y) {
    return arith::SelectOp::create(b, loc, c, x, y);
  }
  /// `x` rounded to TF32 (10 mantissa bits, to nearest, ties away from
  /// zero, as cvt.rna.tf32.f32), kept in an f32; NaN stays NaN.
  Value roundToTf32(Value x) {
    Value bits = arith::BitcastOp::create(b, loc, b.getI32Type(), x);
    Value rounded = arith::AndIOp::create(b, loc, add(bits, i32(0x1000)),
                                          i32(~int64_t(0x1fff)));
    Value isNan =
        arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNO, x, x);
    return select(isNan, x,
                  arith::BitcastOp::create(b, loc, b.getF32Type(), rounded));
  }
  Value load(Value buffer, Value i) {
    return memref::LoadOp::create(b, loc, buffer, ValueRange{i});
  }
  void store(Value v, Value buffer, Value i) {
    memref::StoreOp::create(b, loc, v, buffer, ValueRange{i});
  }
  Value toIndex(Value v) {
    return arith::IndexCastOp::create(b, loc, b.getIndexType(), v);
  }
  Value toI32(Value v) {
    return arith::IndexCastOp::create(b, loc, b.getI32Type(), v);
  }
  /// Atomically adds `v` (i32) to buffer[i]; returns the old value.
  Value atomicAdd(Value buffer, Value i, Value v) {
    return memref::AtomicRMWOp::create(b, loc, arith::AtomicRMWKind::addi, v,
                                       buffer, ValueRange{i});
  }
  /// for (i = start; i < end; i += step) body(i), sequential in a thread.
  void forEach(Value start, Value end, Value step,
               function_ref<void(Value)> body) {
    buildFor(b, loc, start, end, step, body);
  }
  /// A sequential loop carrying values.
  ValueRange
  forEachCarrying(Value start, Value end, Value step, ValueRange init,
                  function_ref<SmallVector<Value>(Value, ValueRange)> body) {
    auto loop = scf::ForOp::create(
        b, loc, start, end, step, init,
        [&](OpBuilder &nb, Location, Value iv, ValueRange carried) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          scf::YieldOp::create(b, loc, body(iv, carried));
        });
    return loop.getResults();
  }
  /// body() where `condition` holds; a null condition always does.
  void when(Value condition, function_ref<void()> body) {
    if (!condition)
      return body();
    buildIf(b, loc, condition, body);
  }
};

/// Row and column, within a 16x8 tile, of accumulator `i` (0..3) of lane
/// `lane` in the PTX fragment layout of mma.m16n8k4 with TF32 operands.
std::pair<Value, Value> accumulatorAt(Scalar &sc, Value lane, int64_t i) {
  Value group = sc.div(lane, sc.index(4)), inGroup = sc.rem(lane, sc.index(4));
  return {sc.add(group, sc.index(8 * (i / 2))),
          sc.add(sc.mul(inGroup, sc.index(2)), sc.index(i % 2))};
}

SmallVector<Value> KernelContext::mmaTf32(Value lane, Value a, Value bTile,
                                          int64_t stride, Value kk,
                                          Value rowBase, Value colBase,
                                          ArrayRef<Value> c) {
  Scalar sc{b, loc};
  auto at = [&](Value buffer, Value row, Value column) {
    return sc.load(buffer, sc.add(sc.mul(row, sc.index(stride)), column));
  };
  if (target == KernelTarget::cpu) {
    SmallVector<Value> sums;
    for (int64_t i = 0; i < 4; ++i) {
      auto [row, column] = accumulatorAt(sc, lane, i);
      row = sc.add(rowBase, row);
      column = sc.add(colBase, column);
      Value sum = c[i];
      for (int64_t j = 0; j < kMmaK; ++j) {
        Value inner = sc.add(kk, sc.index(j));
        sum = sc.add(sum, sc.mul(at(a, row, inner), at(bTile, column, inner)));
      }
      sums.push_back(sum);
    }
    return sums;
  }
  // Fragments: a0 = A[g][t], a1 = A[g + 8][t], b0 = B[t][g] (B[k][n] is
  // column n of the tile, stored as its row), for g = lane / 4, t = lane % 4.
  Value group = sc.div(lane, sc.index(4));
  Value inner = sc.add(kk, sc.rem(lane, sc.index(4)));
  Type f32 = b.getF32Type();
  Value row0 = sc.add(rowBase, group);
  Value aFragment = vector::FromElementsOp::create(
      b, loc, VectorType::get({2, 1}, f32),
      ValueRange{at(a, row0, inner), at(a, sc.add(row0, sc.index(8)), inner)});
  Value bFragment = vector::FromElementsOp::create(
      b, loc, VectorType::get({1, 1}, f32),
      ValueRange{at(bTile, sc.add(colBase, group), inner)});
  Value cFragment =
      vector::FromElementsOp::create(b, loc, VectorType::get({2, 2}, f32), c);
  Value d = nvgpu::MmaSyncOp::create(b, loc, aFragment, bFragment, cFragment,
                                     ArrayRef<int64_t>{kMmaM, kMmaN, kMmaK},
                                     /*tf32Enabled=*/true);
  SmallVector<Value> sums;
  for (int64_t i = 0; i < 4; ++i)
    sums.push_back(
        vector::ExtractOp::create(b, loc, d, ArrayRef<int64_t>{i / 2, i % 2}));
  return sums;
}

/// What a kernel is: its name, argument types (flat memrefs and index
/// scalars), shared buffers (flat f32 of given sizes), body and per-thread
/// arrays.
struct KernelSpec {
  std::string name;
  SmallVector<Type> arguments;
  SmallVector<int64_t> sharedSizes;
  std::function<void(KernelContext &, ValueRange)> body;
  /// Per-thread f32 arrays (KernelContext::loadPrivate).
  SmallVector<int64_t> privateSizes = {};
};

//===----------------------------------------------------------------------===//
// The kernels
//===----------------------------------------------------------------------===//

/// gating(x, router, bias, ids, gates, T): one block per token.
void gatingBody(const Shape &s, KernelContext &ctx, ValueRange args) {
  Value x = args[0], router = args[1], bias = args[2], ids = args[3],
        gates = args[4];
  Value t = ctx.blockIdX();
  Value partial = ctx.shared(0), logits = ctx.shared(1);
  OpBuilder &b = ctx.builder();
  Location loc = ctx.location();
  Scalar sc{b, loc};
  ctx.loop(sc.index(0), sc.index(s.experts), sc.index(1), [&](Value e) {
    ctx.phase([&](OpBuilder &, Value tid) {
      Value rowX = sc.mul(t, sc.index(s.hidden));
      Value rowR = sc.mul(e, sc.index(s.hidden));
      ValueRange sum = sc.forEachCarrying(
          tid, sc.index(s.hidden), sc.index(s.threads), {sc.f32(0)},
          [&](Value h, ValueRange acc) -> SmallVector<Value> {
            Value xv = sc.load(x, sc.add(rowX, h));
            Value rv = sc.load(router, sc.add(rowR, h));
            return {sc.add(acc[0], sc.mul(xv, rv))};
          });
      sc.store(sum[0], partial, tid);
    });
    for (int64_t stride = s.threads / 2; stride > 0; stride /= 2)
      ctx.phase([&](OpBuilder &, Value tid) {
        sc.when(sc.lt(tid, sc.index(stride)), [&] {
          Value other = sc.load(partial, sc.add(tid, sc.index(stride)));
          sc.store(sc.add(sc.load(partial, tid), other), partial, tid);
        });
      });
    ctx.phase([&](OpBuilder &, Value tid) {
      sc.when(sc.eq(tid, sc.index(0)), [&] {
        sc.store(sc.add(sc.load(partial, sc.index(0)), sc.load(bias, e)),
                 logits, e);
      });
    });
  });
  // Scores, top-k and normalisation: one thread, E and k are small.
  ctx.phase([&](OpBuilder &, Value tid) {
    sc.when(sc.eq(tid, sc.index(0)), [&] {
      Type f32 = b.getF32Type();
      Value zero = sc.index(0), one = sc.index(1),
            experts = sc.index(s.experts);
      if (s.noiseStd > 0)
        sc.forEach(zero, experts, one, [&](Value e) {
          Value position = arith::IndexCastOp::create(
              b, loc, b.getI64Type(), sc.add(sc.mul(t, experts), e));
          Value noise = arith::TruncFOp::create(
              b, loc, f32,
              arith::MulFOp::create(
                  b, loc, buildNormalSample(b, loc, s.noiseSeed, position),
                  arith::ConstantOp::create(b, loc,
                                            b.getF64FloatAttr(s.noiseStd))));
          sc.store(sc.add(sc.load(logits, e), noise), logits, e);
        });
      auto softmaxOver = [&](Value buffer, Value count, Value offset) {
        ValueRange maximum = sc.forEachCarrying(
            zero, count, one, {sc.f32(-INFINITY)},
            [&](Value i, ValueRange m) -> SmallVector<Value> {
              return {arith::MaximumFOp::create(
                  b, loc, m[0], sc.load(buffer, sc.add(offset, i)))};
            });
        ValueRange total = sc.forEachCarrying(
            zero, count, one, {sc.f32(0)},
            [&](Value i, ValueRange acc) -> SmallVector<Value> {
              Value v = math::ExpOp::create(
                  b, loc,
                  arith::SubFOp::create(
                      b, loc, sc.load(buffer, sc.add(offset, i)), maximum[0]));
              sc.store(v, buffer, sc.add(offset, i));
              return {sc.add(acc[0], v)};
            });
        sc.forEach(zero, count, one, [&](Value i) {
          Value at = sc.add(offset, i);
          sc.store(sc.div(sc.load(buffer, at), total[0]), buffer, at);
        });
      };
      if (s.scoring == Scoring::sigmoid)
        sc.forEach(zero, experts, one, [&](Value e) {
          Value l = sc.load(logits, e);
          Value sig = sc.div(
              sc.f32(1),
              sc.add(sc.f32(1), math::ExpOp::create(
                                    b, loc, arith::NegFOp::create(b, loc, l))));
          sc.store(sig, logits, e);
        });
      else if (s.scoreBeforeTopK)
        softmaxOver(logits, experts, zero);
      Value base = sc.mul(t, sc.index(s.k));
      sc.forEach(zero, sc.index(s.k), one, [&](Value j) {
        ValueRange best = sc.forEachCarrying(
            zero, experts, one, {sc.f32(-INFINITY), sc.i32(-1)},
            [&](Value e, ValueRange current) -> SmallVector<Value> {
              Value eI32 = sc.toI32(e);
              ValueRange taken = sc.forEachCarrying(
                  zero, j, one,
                  {arith::ConstantOp::create(b, loc, b.getBoolAttr(false))},
                  [&](Value previous, ValueRange found) -> SmallVector<Value> {
                    Value chosen = sc.load(ids, sc.add(base, previous));
                    return {arith::OrIOp::create(
                        b, loc, found[0],
                        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                              chosen, eI32))};
                  });
              Value score = sc.load(logits, e);
              Value greater = arith::CmpFOp::create(
                  b, loc, arith::CmpFPredicate::OGT, score, current[0]);
              Value none = arith::CmpIOp::create(
                  b, loc, arith::CmpIPredicate::eq, current[1], sc.i32(-1));
              Value notTaken = arith::XOrIOp::create(
                  b, loc, taken[0],
                  arith::ConstantOp::create(b, loc, b.getBoolAttr(true)));
              Value better = sc.andI(
                  arith::OrIOp::create(b, loc, greater, none), notTaken);
              return {sc.select(better, score, current[0]),
                      sc.select(better, eI32, current[1])};
            });
        sc.store(best[1], ids, sc.add(base, j));
        sc.store(best[0], gates, sc.add(base, j));
      });
      Value k = sc.index(s.k);
      if (s.scoring == Scoring::softmax && !s.scoreBeforeTopK)
        softmaxOver(gates, k, base);
      if (s.renormalize) {
        ValueRange total = sc.forEachCarrying(
            zero, k, one, {sc.f32(0)},
            [&](Value j, ValueRange acc) -> SmallVector<Value> {
              return {sc.add(acc[0], sc.load(gates, sc.add(base, j)))};
            });
        sc.forEach(zero, k, one, [&](Value j) {
          Value at = sc.add(base, j);
          sc.store(sc.div(sc.load(gates, at), total[0]), gates, at);
        });
      }
    });
  });
}

/// align(ids, counts, cursor, offsets, sorted, block_expert, T, rows): one
/// block sorts the (token, slot) pairs by expert into padded segments.
void alignBody(const Shape &s, KernelContext &ctx, ValueRange args) {
  Value ids = args[0], counts = args[1], cursor = args[2], offsets = args[3],
        sorted = args[4], blockExpert = args[5], tokens = args[6],
        rows = args[7];
  OpBuilder &b = ctx.builder();
  Scalar sc{b, ctx.location()};
  Value step = sc.index(s.threads);
  Value pairs = sc.mul(tokens, sc.index(s.k));
  ctx.phase([&](OpBuilder &, Value tid) {
    sc.forEach(tid, sc.index(s.experts), step,
               [&](Value e) { sc.store(sc.i32(0), counts, e); });
  });
  ctx.phase([&](OpBuilder &, Value tid) {
    sc.forEach(tid, pairs, step, [&](Value pair) {
      Value e = sc.toIndex(sc.load(ids, pair));
      sc.atomicAdd(counts, e, sc.i32(1));
    });
  });
  ctx.phase([&](OpBuilder &, Value tid) {
    sc.when(sc.eq(tid, sc.index(0)), [&] {
      Value blockRows = sc.i32(s.blockM);
      ValueRange total = sc.forEachCarrying(
          sc.index(0), sc.index(s.experts), sc.index(1), {sc.i32(0)},
          [&](Value e, ValueRange acc) -> SmallVector<Value> {
            sc.store(acc[0], offsets, e);
            sc.store(acc[0], cursor, e);
            Value count = sc.load(counts, e);
            Value padded =
                sc.mul(sc.div(sc.add(count, sc.i32(s.blockM - 1)), blockRows),
                       blockRows);
            Value firstBlock = sc.toIndex(sc.div(acc[0], blockRows));
            Value lastBlock =
                sc.toIndex(sc.div(sc.add(acc[0], padded), blockRows));
            sc.forEach(firstBlock, lastBlock, sc.index(1), [&](Value block) {
              sc.store(sc.toI32(e), blockExpert, block);
            });
            return {sc.add(acc[0], padded)};
          });
      sc.store(total[0], offsets, sc.index(s.experts));
    });
  });
  ctx.phase([&](OpBuilder &, Value tid) {
    Value sentinel = sc.toI32(pairs);
    sc.forEach(tid, rows, step,
               [&](Value i) { sc.store(sentinel, sorted, i); });
  });
  ctx.phase([&](OpBuilder &, Value tid) {
    sc.forEach(tid, pairs, step, [&](Value pair) {
      Value e = sc.toIndex(sc.load(ids, pair));
      Value position = sc.toIndex(sc.atomicAdd(cursor, e, sc.i32(1)));
      sc.store(sc.toI32(pair), sorted, position);
    });
  });
}

/// The tiled GEMM shared by gemm_up and gemm_down: for row block `mb` (one
/// expert) and column block `nb`, acc[r][n] += A[row r] . B[expert][col n]
/// over `depth`, through shared tiles. `loadA(row, pair, col)` reads the
/// left operand of a (valid) row; `weightOffset(e, col)` the start of the
/// weight row of output column `col`.
struct GemmOperand {
  Value buffer;
  int64_t outputs; // columns of the product (rows of the weight)
};

/// How many accumulators a GEMM thread holds for each weight.
int64_t accumulatorsPerThread(const Shape &s) {
  if (!s.tf32)
    return int64_t(llvm::divideCeil(s.blockM * s.blockN, s.threads));
  int64_t tiles = (s.blockM / kMmaM) * (s.blockN / kMmaN);
  return int64_t(llvm::divideCeil(tiles, s.threads / kWarpSize)) * 4;
}

/// A 16x8 tile of the block's product that a warp takes (tf32): its first
/// row and column, and whether it exists (a null `inside` always does).
struct WarpTile {
  Value rowBase, colBase, inside;
};

/// The tiles of the warp of thread `tid`: warp, warp + warps, ...
SmallVector<WarpTile> warpTiles(const Shape &s, Scalar &sc, Value tid) {
  int64_t tilesN = s.blockN / kMmaN, tiles = (s.blockM / kMmaM) * tilesN;
  int64_t warps = s.threads / kWarpSize;
  Value warp = sc.div(tid, sc.index(kWarpSize));
  SmallVector<WarpTile> result;
  for (int64_t j = 0, e = llvm::divideCeil(tiles, warps); j < e; ++j) {
    Value tile = sc.add(warp, sc.index(j * warps));
    result.push_back(
        {sc.mul(sc.div(tile, sc.index(tilesN)), sc.index(kMmaM)),
         sc.mul(sc.rem(tile, sc.index(tilesN)), sc.index(kMmaN)),
         (j + 1) * warps <= tiles ? Value() : sc.lt(tile, sc.index(tiles))});
  }
  return result;
}

/// Where accumulator `q` of a thread sits in the block's product, and
/// whether it is inside the block (a null `inside` always is).
struct AccumulatorSlot {
  Value row, column, inside;
};

/// The accumulators of thread `tid`: outputs tid, tid + threads, ... of the
/// block with f32 multiply-adds; with tensor cores, the lane's four
/// fragment elements of each tile of its warp.
SmallVector<AccumulatorSlot> accumulatorSlots(const Shape &s, Scalar &sc,
                                              Value tid) {
  SmallVector<AccumulatorSlot> slots;
  if (s.tf32) {
    Value lane = sc.rem(tid, sc.index(kWarpSize));
    for (const WarpTile &tile : warpTiles(s, sc, tid))
      for (int64_t i = 0; i < 4; ++i) {
        auto [row, column] = accumulatorAt(sc, lane, i);
        slots.push_back({sc.add(tile.rowBase, row),
                         sc.add(tile.colBase, column), tile.inside});
      }
    return slots;
  }
  int64_t outputs = s.blockM * s.blockN;
  for (int64_t q = 0; q < accumulatorsPerThread(s); ++q) {
    Value o = sc.add(tid, sc.index(q * s.threads));
    slots.push_back(
        {sc.div(o, sc.index(s.blockN)), sc.rem(o, sc.index(s.blockN)),
         (q + 1) * s.threads <= outputs ? Value()
                                        : sc.lt(o, sc.index(outputs))});
  }
  return slots;
}

/// Adds the product of a block's shared tiles over the block-k slice to
/// thread `tid`'s accumulators (private array 0: accumulator q of weight w
/// at q * weights + w).
void accumulateProducts(const Shape &s, KernelContext &ctx, Value tid,
                        Value tileA, function_ref<Value(unsigned)> tileB,
                        unsigned weights) {
  Scalar sc{ctx.builder(), ctx.location()};
  auto at = [&](unsigned slot, unsigned w) { return slot * weights + w; };
  if (s.tf32) {
    Value lane = sc.rem(tid, sc.index(kWarpSize));
    SmallVector<WarpTile> tiles = warpTiles(s, sc, tid);
    for (unsigned j = 0; j < tiles.size(); ++j) {
      const WarpTile &tile = tiles[j];
      sc.when(tile.inside, [&] {
        for (unsigned w = 0; w < weights; ++w) {
          SmallVector<Value> init;
          for (unsigned i = 0; i < 4; ++i)
            init.push_back(ctx.loadPrivate(0, tid, at(4 * j + i, w)));
          ValueRange sums = sc.forEachCarrying(
              sc.index(0), sc.index(s.blockK), sc.index(kMmaK), init,
              [&](Value kk, ValueRange partial) {
                return ctx.mmaTf32(lane, tileA, tileB(w), s.blockK, kk,
                                   tile.rowBase, tile.colBase,
                                   llvm::to_vector(partial));
              });
          for (unsigned i = 0; i < 4; ++i)
            ctx.storePrivate(sums[i], 0, tid, at(4 * j + i, w));
        }
      });
    }
    return;
  }
  Value bk = sc.index(s.blockK);
  SmallVector<AccumulatorSlot> slots = accumulatorSlots(s, sc, tid);
  for (unsigned q = 0; q < slots.size(); ++q) {
    const AccumulatorSlot &slot = slots[q];
    sc.when(slot.inside, [&] {
      SmallVector<Value> init;
      for (unsigned w = 0; w < weights; ++w)
        init.push_back(ctx.loadPrivate(0, tid, at(q, w)));
      ValueRange sums = sc.forEachCarrying(
          sc.index(0), bk, sc.index(1), init,
          [&](Value c, ValueRange partial) -> SmallVector<Value> {
            Value a = sc.load(tileA, sc.add(sc.mul(slot.row, bk), c));
            SmallVector<Value> next;
            for (unsigned w = 0; w < weights; ++w)
              next.push_back(sc.add(
                  partial[w],
                  sc.mul(a, sc.load(tileB(w),
                                    sc.add(sc.mul(slot.column, bk), c)))));
            return next;
          });
      for (unsigned w = 0; w < weights; ++w)
        ctx.storePrivate(sums[w], 0, tid, at(q, w));
    });
  }
}

void gemmBody(
    const Shape &s, KernelContext &ctx, Value sorted, Value blockExpert,
    Value offsets, Value tokens, int64_t depth,
    function_ref<Value(Scalar &, Value row, Value pair, Value col)> loadA,
    ArrayRef<GemmOperand> weights,
    function_ref<void(Scalar &, Value row, Value pair, Value col,
                      ArrayRef<Value> sums)>
        epilogue) {
  OpBuilder &b = ctx.builder();
  Scalar sc{b, ctx.location()};
  int64_t bm = s.blockM, bn = s.blockN, bk = s.blockK;
  unsigned count = weights.size();
  Value mb = ctx.blockIdX(), nb = ctx.blockIdY();
  Value step = sc.index(s.threads);
  Value pairs = sc.mul(tokens, sc.index(s.k));
  // Shared buffers: the A tile and one B tile per weight; accumulators are
  // per thread (registers on the GPU).
  Value tileA = ctx.shared(0);
  auto tileB = [&](unsigned w) { return ctx.shared(1 + w); };
  Value rowStart = sc.mul(mb, sc.index(bm));
  Value total = sc.toIndex(sc.load(offsets, sc.index(s.experts)));
  ctx.when(sc.lt(rowStart, total), [&] {
    Value e = sc.toIndex(sc.load(blockExpert, mb));
    int64_t outputs = weights.front().outputs;
    ctx.phase([&](OpBuilder &, Value tid) {
      for (int64_t i = 0; i < accumulatorsPerThread(s) * count; ++i)
        ctx.storePrivate(sc.f32(0), 0, tid, i);
    });
    ctx.loop(sc.index(0), sc.index(depth), sc.index(bk), [&](Value kk) {
      ctx.phase([&](OpBuilder &, Value tid) {
        sc.forEach(tid, sc.index(bm * bk), step, [&](Value i) {
          Value r = sc.div(i, sc.index(bk)), c = sc.rem(i, sc.index(bk));
          Value row = sc.add(rowStart, r);
          Value pair = sc.toIndex(sc.load(sorted, row));
          Value col = sc.add(kk, c);
          Value valid =
              sc.andI(sc.lt(pair, pairs), sc.lt(col, sc.index(depth)));
          auto ifOp = scf::IfOp::create(b, sc.loc, TypeRange{b.getF32Type()},
                                        valid, /*withElse=*/true);
          {
            OpBuilder::InsertionGuard guard(b);
            b.setInsertionPointToStart(&ifOp.getThenRegion().front());
            Value value = loadA(sc, row, pair, col);
            scf::YieldOp::create(b, sc.loc,
                                 s.tf32 ? sc.roundToTf32(value) : value);
            b.setInsertionPointToStart(&ifOp.getElseRegion().front());
            scf::YieldOp::create(b, sc.loc, sc.f32(0));
          }
          sc.store(ifOp.getResult(0), tileA, i);
        });
        sc.forEach(tid, sc.index(bn * bk), step, [&](Value i) {
          Value n = sc.div(i, sc.index(bk)), c = sc.rem(i, sc.index(bk));
          Value col = sc.add(sc.mul(nb, sc.index(bn)), n);
          Value inner = sc.add(kk, c);
          Value valid = sc.andI(sc.lt(col, sc.index(outputs)),
                                sc.lt(inner, sc.index(depth)));
          for (auto [w, weight] : llvm::enumerate(weights)) {
            auto ifOp =
                scf::IfOp::create(b, sc.loc, TypeRange{b.getF32Type()}, valid,
                                  /*withElse=*/true);
            {
              OpBuilder::InsertionGuard guard(b);
              b.setInsertionPointToStart(&ifOp.getThenRegion().front());
              Value at =
                  sc.add(sc.mul(sc.add(sc.mul(e, sc.index(outputs)), col),
                                sc.index(depth)),
                         inner);
              Value value = sc.load(weight.buffer, at);
              scf::YieldOp::create(b, sc.loc,
                                   s.tf32 ? sc.roundToTf32(value) : value);
              b.setInsertionPointToStart(&ifOp.getElseRegion().front());
              scf::YieldOp::create(b, sc.loc, sc.f32(0));
            }
            sc.store(ifOp.getResult(0), tileB(w), i);
          }
        });
      });
      ctx.phase([&](OpBuilder &, Value tid) {
        accumulateProducts(s, ctx, tid, tileA, tileB, count);
      });
    });
    ctx.phase([&](OpBuilder &, Value tid) {
      SmallVector<AccumulatorSlot> slots = accumulatorSlots(s, sc, tid);
      for (unsigned q = 0; q < slots.size(); ++q) {
        const AccumulatorSlot &slot = slots[q];
        sc.when(slot.inside, [&] {
          Value row = sc.add(rowStart, slot.row);
          Value col = sc.add(sc.mul(nb, sc.index(bn)), slot.column);
          Value pair = sc.toIndex(sc.load(sorted, row));
          sc.when(sc.andI(sc.lt(pair, pairs), sc.lt(col, sc.index(outputs))),
                  [&] {
                    SmallVector<Value> sums;
                    for (unsigned w = 0; w < count; ++w)
                      sums.push_back(ctx.loadPrivate(0, tid, q * count + w));
                    epilogue(sc, row, pair, col, sums);
                  });
        });
      }
    });
  });
}

/// combine(pair_out, out, T): one block per token sums its k rows.
void combineBody(const Shape &s, KernelContext &ctx, ValueRange args) {
  Value pairOut = args[0], out = args[1];
  Scalar sc{ctx.builder(), ctx.location()};
  Value t = ctx.blockIdX();
  ctx.phase([&](OpBuilder &, Value tid) {
    sc.forEach(tid, sc.index(s.hidden), sc.index(s.threads), [&](Value h) {
      ValueRange sum = sc.forEachCarrying(
          sc.index(0), sc.index(s.k), sc.index(1), {sc.f32(0)},
          [&](Value j, ValueRange acc) -> SmallVector<Value> {
            Value pair = sc.add(sc.mul(t, sc.index(s.k)), j);
            return {sc.add(
                acc[0],
                sc.load(pairOut, sc.add(sc.mul(pair, sc.index(s.hidden)), h)))};
          });
      sc.store(sum[0], out, sc.add(sc.mul(t, sc.index(s.hidden)), h));
    });
  });
}

//===----------------------------------------------------------------------===//
// Emitting kernels and launches
//===----------------------------------------------------------------------===//

class KernelEmitter {
public:
  KernelEmitter(ModuleOp module, KernelTarget target, StringRef prefix)
      : module(module), target(target), prefix(prefix.str()) {}

  /// Creates the kernel function; returns a symbol to launch.
  SymbolRefAttr define(const KernelSpec &spec, int64_t threads);

  /// Launches `kernel` on a grid of `gridX` x `gridY` blocks.
  void launch(OpBuilder &b, Location loc, SymbolRefAttr kernel,
              ValueRange arguments, Value gridX, Value gridY);

private:
  gpu::GPUModuleOp kernelModule();

  ModuleOp module;
  KernelTarget target;
  std::string prefix;
  gpu::GPUModuleOp gpuModule;
};

gpu::GPUModuleOp KernelEmitter::kernelModule() {
  if (gpuModule)
    return gpuModule;
  gpuModule = module.lookupSymbol<gpu::GPUModuleOp>("moe_kernels");
  if (!gpuModule) {
    OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
    gpuModule = gpu::GPUModuleOp::create(b, module.getLoc(), "moe_kernels");
  }
  module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                  UnitAttr::get(module.getContext()));
  return gpuModule;
}

SymbolRefAttr KernelEmitter::define(const KernelSpec &spec, int64_t threads) {
  MLIRContext *context = module.getContext();
  std::string name = prefix + "_" + spec.name;
  Location loc = module.getLoc();
  auto bufferType = [&](int64_t size, Attribute space) {
    return MemRefType::get({size}, Float32Type::get(context),
                           MemRefLayoutAttrInterface(), space);
  };
  if (target == KernelTarget::gpu) {
    gpu::GPUModuleOp container = kernelModule();
    OpBuilder b = OpBuilder::atBlockEnd(container.getBody());
    auto workgroup =
        gpu::AddressSpaceAttr::get(context, gpu::AddressSpace::Workgroup);
    auto privateSpace =
        gpu::AddressSpaceAttr::get(context, gpu::AddressSpace::Private);
    SmallVector<Type> sharedTypes, privateTypes;
    for (int64_t size : spec.sharedSizes)
      sharedTypes.push_back(bufferType(size, workgroup));
    for (int64_t size : spec.privateSizes)
      privateTypes.push_back(bufferType(size, privateSpace));
    auto func = gpu::GPUFuncOp::create(
        b, loc, name, FunctionType::get(context, spec.arguments, {}),
        sharedTypes, privateTypes);
    func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(),
                  UnitAttr::get(context));
    func.setKnownBlockSizeAttr(
        DenseI32ArrayAttr::get(context, {int32_t(threads), 1, 1}));
    Block &entry = func.getBody().front();
    b.setInsertionPointToStart(&entry);
    Value bx = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
    Value by = gpu::BlockIdOp::create(b, loc, gpu::Dimension::y);
    SmallVector<Value> sharedBuffers(func.getWorkgroupAttributions());
    SmallVector<Value> privateBuffers(func.getPrivateAttributions());
    KernelContext ctx(b, loc, target, threads, bx, by, sharedBuffers,
                      privateBuffers, spec.privateSizes);
    spec.body(ctx, entry.getArguments().take_front(spec.arguments.size()));
    gpu::ReturnOp::create(b, loc);
  }
  // The host calls `name(arguments..., gridX, gridY)`: on the CPU a
  // function whose blocks and threads are loops; for the GPU a declaration
  // naming the kernel, launched by moe-launch-gpu-kernels once buffers are
  // allocated and freed (buffer deallocation does not know GPU launches).
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  SmallVector<Type> arguments(spec.arguments);
  arguments.append({b.getIndexType(), b.getIndexType()});
  auto func = func::FuncOp::create(b, loc, name,
                                   FunctionType::get(context, arguments, {}));
  func.setPrivate();
  if (target == KernelTarget::gpu) {
    func->setAttr(MoeDialect::getGpuKernelAttrName(),
                  SymbolRefAttr::get(kernelModule().getSymNameAttr(),
                                     {FlatSymbolRefAttr::get(context, name)}));
    return FlatSymbolRefAttr::get(func.getSymNameAttr());
  }
  Block *entry = func.addEntryBlock();
  b.setInsertionPointToStart(entry);
  SmallVector<Value> shared, privates;
  for (int64_t size : spec.sharedSizes)
    shared.push_back(
        memref::AllocOp::create(b, loc, bufferType(size, Attribute())));
  for (int64_t size : spec.privateSizes)
    privates.push_back(memref::AllocOp::create(
        b, loc, bufferType(size * threads, Attribute())));
  Value gridX = entry->getArgument(spec.arguments.size());
  Value gridY = entry->getArgument(spec.arguments.size() + 1);
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  scf::ForOp::create(
      b, loc, zero, gridX, one, ValueRange{},
      [&](OpBuilder &bxBuilder, Location, Value bx, ValueRange) {
        scf::ForOp::create(
            bxBuilder, loc, zero, gridY, one, ValueRange{},
            [&](OpBuilder &byBuilder, Location, Value by, ValueRange) {
              KernelContext ctx(byBuilder, loc, target, threads, bx, by, shared,
                                privates, spec.privateSizes);
              spec.body(
                  ctx, entry->getArguments().take_front(spec.arguments.size()));
              scf::YieldOp::create(byBuilder, loc);
            });
        scf::YieldOp::create(bxBuilder, loc);
      });
  // The buffer deallocation pipeline frees them (it refuses explicit
  // deallocations).
  func::ReturnOp::create(b, loc);
  return FlatSymbolRefAttr::get(func.getSymNameAttr());
}

void KernelEmitter::launch(OpBuilder &b, Location loc, SymbolRefAttr kernel,
                           ValueRange arguments, Value gridX, Value gridY) {
  SmallVector<Value> operands(arguments);
  operands.append({gridX, gridY});
  func::CallOp::create(b, loc, kernel.getLeafReference(), TypeRange{},
                       operands);
}

/// A tensor as a flat buffer: to_buffer, then collapsed to one dimension
/// and cast to memref<?xT>.
Value flatBuffer(OpBuilder &b, Location loc, Value tensor) {
  auto type = cast<RankedTensorType>(tensor.getType());
  auto bufferType = MemRefType::get(type.getShape(), type.getElementType());
  Value buffer = bufferization::ToBufferOp::create(b, loc, bufferType, tensor,
                                                   /*read_only=*/true);
  if (type.getRank() > 1) {
    ReassociationIndices all;
    for (int64_t i = 0; i < type.getRank(); ++i)
      all.push_back(i);
    buffer = memref::CollapseShapeOp::create(
        b, loc, buffer, ArrayRef<ReassociationIndices>{all});
  }
  auto flatType =
      MemRefType::get({ShapedType::kDynamic}, type.getElementType());
  if (buffer.getType() == flatType)
    return buffer;
  return memref::CastOp::create(b, loc, flatType, buffer);
}

struct LowerMoeKernelsPass
    : public moe::impl::LowerMoeKernelsBase<LowerMoeKernelsPass> {
  using LowerMoeKernelsBase::LowerMoeKernelsBase;
  LogicalResult initialize(MLIRContext *context) override;
  void runOnOperation() override;

private:
  void lower(FusedMoeOp op, unsigned position);
};
} // namespace

void LowerMoeKernelsPass::lower(FusedMoeOp op, unsigned position) {
  // What the kernels do not cover is left to moe-lower-to-linalg.
  auto leave = [&](StringRef why) {
    op.emitWarning() << why << "; left to moe-lower-to-linalg";
  };
  if (!op.getRouter())
    return leave("gate-less mixes run every expert: no routing kernels");
  if (op.getSharedUp())
    return leave("the routing kernels do not support shared experts");
  auto inputType = cast<RankedTensorType>(op.getInput().getType());
  if (!inputType.getElementType().isF32())
    return leave("the routing kernels compute in f32");
  auto upType = cast<RankedTensorType>(op.getUp().getType());
  Shape s{upType.getShape()[0],
          int64_t(op.getK()),
          inputType.getShape().back(),
          upType.getShape()[1],
          bool(op.getGate()),
          op.getActivation(),
          op.getScoring(),
          op.getScoreBeforeTopk(),
          op.getRenormalize(),
          op.getNoiseStd().convertToDouble(),
          int64_t(op.getNoiseSeed()),
          blockM,
          blockN,
          blockK,
          threads,
          mma == MmaKind::tf32};

  ModuleOp module = getOperation();
  std::string prefix = (op->getParentOfType<func::FuncOp>().getSymName() +
                        "_moe" + Twine(position))
                           .str();
  KernelEmitter emitter(module, target, prefix);
  MLIRContext *context = &getContext();
  Type f32 = Float32Type::get(context), i32 = IntegerType::get(context, 32);
  Type index = IndexType::get(context);
  auto flat = [&](Type element) {
    return MemRefType::get({ShapedType::kDynamic}, element);
  };

  SymbolRefAttr gating = emitter.define(
      {"gating",
       {flat(f32), flat(f32), flat(f32), flat(i32), flat(f32), index},
       {s.threads, s.experts},
       [&](KernelContext &ctx, ValueRange args) { gatingBody(s, ctx, args); }},
      s.threads);
  SymbolRefAttr align = emitter.define(
      {"align",
       {flat(i32), flat(i32), flat(i32), flat(i32), flat(i32), flat(i32), index,
        index},
       {},
       [&](KernelContext &ctx, ValueRange args) { alignBody(s, ctx, args); }},
      s.threads);
  int64_t tileA = s.blockM * s.blockK, tileB = s.blockN * s.blockK;
  SmallVector<int64_t> upAccumulators{accumulatorsPerThread(s) *
                                      (s.gated ? 2 : 1)},
      downAccumulators{accumulatorsPerThread(s)};
  SymbolRefAttr gemmUp = emitter.define(
      {"gemm_up",
       {flat(f32), flat(f32), flat(f32), flat(i32), flat(i32), flat(i32),
        flat(f32), index, index},
       s.gated ? SmallVector<int64_t>{tileA, tileB, tileB}
               : SmallVector<int64_t>{tileA, tileB},
       [&](KernelContext &ctx, ValueRange args) {
         Value x = args[0], gate = args[1], up = args[2], inter = args[6];
         SmallVector<GemmOperand> weights;
         if (s.gated)
           weights.push_back({gate, s.inter});
         weights.push_back({up, s.inter});
         gemmBody(
             s, ctx, args[3], args[4], args[5], args[7], s.hidden,
             [&](Scalar &sc, Value, Value pair, Value col) {
               Value token = sc.div(pair, sc.index(s.k));
               return sc.load(x,
                              sc.add(sc.mul(token, sc.index(s.hidden)), col));
             },
             weights,
             [&](Scalar &sc, Value row, Value, Value col,
                 ArrayRef<Value> sums) {
               Value value =
                   s.gated ? sc.mul(TensorBuilder::activationScalar(
                                        sc.b, sc.loc, sums[0], s.activation),
                                    sums[1])
                           : TensorBuilder::activationScalar(
                                 sc.b, sc.loc, sums[0], s.activation);
               sc.store(value, inter,
                        sc.add(sc.mul(row, sc.index(s.inter)), col));
             });
       },
       upAccumulators},
      s.threads);
  SymbolRefAttr gemmDown = emitter.define(
      {"gemm_down",
       {flat(f32), flat(f32), flat(i32), flat(i32), flat(i32), flat(f32),
        flat(f32), index, index},
       {tileA, tileB},
       [&](KernelContext &ctx, ValueRange args) {
         Value inter = args[0], down = args[1], gates = args[5],
               pairOut = args[6];
         gemmBody(
             s, ctx, args[2], args[3], args[4], args[7], s.inter,
             [&](Scalar &sc, Value row, Value, Value col) {
               return sc.load(inter,
                              sc.add(sc.mul(row, sc.index(s.inter)), col));
             },
             {{down, s.hidden}},
             [&](Scalar &sc, Value, Value pair, Value col,
                 ArrayRef<Value> sums) {
               sc.store(sc.mul(sums[0], sc.load(gates, pair)), pairOut,
                        sc.add(sc.mul(pair, sc.index(s.hidden)), col));
             });
       },
       downAccumulators},
      s.threads);
  SymbolRefAttr combine = emitter.define(
      {"combine",
       {flat(f32), flat(f32), index},
       {},
       [&](KernelContext &ctx, ValueRange args) { combineBody(s, ctx, args); }},
      s.threads);

  // The launches, at the fused op.
  OpBuilder b(op);
  Location loc = op.getLoc();
  TensorBuilder tb(b, loc);
  Value x2d = tb.collapseTokens(op.getInput());
  Value tokens = tb.dim(x2d, 0);
  Value x = flatBuffer(b, loc, x2d);
  Value router = flatBuffer(b, loc, op.getRouter());
  Value bias = op.getRouterBias() ? op.getRouterBias()
                                  : tb.zeros({b.getIndexAttr(s.experts)}, f32);
  bias = flatBuffer(b, loc, bias);
  Value up = flatBuffer(b, loc, op.getUp());
  Value gate = s.gated ? flatBuffer(b, loc, op.getGate()) : up;
  Value down = flatBuffer(b, loc, op.getDown());

  Value pairs = arith::MulIOp::create(b, loc, tokens, tb.index(s.k));
  // Every expert's segment may waste up to block-m - 1 rows.
  Value rows = arith::AddIOp::create(b, loc, pairs,
                                     tb.index(s.experts * (s.blockM - 1)));
  Value rowBlocks = arith::DivUIOp::create(
      b, loc, arith::AddIOp::create(b, loc, rows, tb.index(s.blockM - 1)),
      tb.index(s.blockM));
  auto ceilDiv = [&](int64_t n, int64_t d) {
    return tb.index((n + d - 1) / d);
  };
  // Host buffers; moe-gpu-device-buffers places them on the device and the
  // buffer deallocation pipeline frees them.
  auto allocate = [&](Type element, Value size) -> Value {
    return memref::AllocOp::create(
        b, loc, MemRefType::get({ShapedType::kDynamic}, element),
        ValueRange{size});
  };
  Value ids = allocate(i32, pairs);
  Value gates = allocate(f32, pairs);
  Value counts = allocate(i32, tb.index(s.experts));
  Value cursor = allocate(i32, tb.index(s.experts));
  Value offsets = allocate(i32, tb.index(s.experts + 1));
  Value sorted = allocate(i32, rows);
  Value blockExpert = allocate(i32, rowBlocks);
  Value inter =
      allocate(f32, arith::MulIOp::create(b, loc, rows, tb.index(s.inter)));
  Value pairOut =
      allocate(f32, arith::MulIOp::create(b, loc, pairs, tb.index(s.hidden)));
  Value out =
      allocate(f32, arith::MulIOp::create(b, loc, tokens, tb.index(s.hidden)));

  Value one = tb.index(1);
  emitter.launch(b, loc, gating, {x, router, bias, ids, gates, tokens}, tokens,
                 one);
  emitter.launch(
      b, loc, align,
      {ids, counts, cursor, offsets, sorted, blockExpert, tokens, rows}, one,
      one);
  emitter.launch(
      b, loc, gemmUp,
      {x, gate, up, sorted, blockExpert, offsets, inter, tokens, rows},
      rowBlocks, ceilDiv(s.inter, s.blockN));
  emitter.launch(
      b, loc, gemmDown,
      {inter, down, sorted, blockExpert, offsets, gates, pairOut, tokens, rows},
      rowBlocks, ceilDiv(s.hidden, s.blockN));
  emitter.launch(b, loc, combine, {pairOut, out, tokens}, tokens, one);

  // Back to a tensor of the op's shape.
  auto outType = MemRefType::get({ShapedType::kDynamic, s.hidden}, f32);
  Value out2d = memref::ExpandShapeOp::create(
      b, loc, outType, out, ArrayRef<ReassociationIndices>{{0, 1}},
      ArrayRef<OpFoldResult>{tokens, b.getIndexAttr(s.hidden)});
  Value result = bufferization::ToTensorOp::create(
      b, loc, RankedTensorType::get({ShapedType::kDynamic, s.hidden}, f32),
      out2d, /*restrict=*/true, /*writable=*/true);
  op.getResult().replaceAllUsesWith(tb.expandTokens(result, op.getInput()));
  op.erase();
}

LogicalResult LowerMoeKernelsPass::initialize(MLIRContext *context) {
  if (threads < 32 || threads > 1024 || !llvm::isPowerOf2_64(threads))
    return emitError(UnknownLoc::get(context))
           << "moe-lower-moe-kernels: threads must be a power of two from 32 "
              "to 1024 (got "
           << int64_t(threads) << ")";
  if (blockM < 1 || blockN < 1 || blockK < 1)
    return emitError(UnknownLoc::get(context))
           << "moe-lower-moe-kernels: block-m, block-n and block-k must be "
              "positive";
  if (mma == MmaKind::tf32 &&
      (blockM % kMmaM != 0 || blockN % kMmaN != 0 || blockK % kMmaK != 0))
    return emitError(UnknownLoc::get(context))
           << "moe-lower-moe-kernels: mma=tf32 needs block-m a multiple of "
           << kMmaM << ", block-n of " << kMmaN << " and block-k of " << kMmaK
           << " (got " << int64_t(blockM) << ", " << int64_t(blockN) << ", "
           << int64_t(blockK) << ")";
  // A gated GEMM block holds an A tile and two B tiles.
  int64_t sharedBytes = 4 * (blockM * blockK + 2 * blockN * blockK);
  if (target == KernelTarget::gpu && sharedBytes > kMaxStaticSharedBytes)
    return emitError(UnknownLoc::get(context))
           << "moe-lower-moe-kernels: tiles need " << sharedBytes
           << " bytes of shared memory per block, more than the "
           << kMaxStaticSharedBytes << " a kernel may declare statically";
  return success();
}

void LowerMoeKernelsPass::runOnOperation() {
  SmallVector<FusedMoeOp> ops;
  getOperation().walk([&](FusedMoeOp op) { ops.push_back(op); });
  for (auto [index, op] : llvm::enumerate(ops))
    lower(op, index);
}
