// RUN: moe-opt %s -split-input-file --moe-approximate-math | FileCheck %s

// f32: polynomials, the NVVM square root, floor and abs as arithmetic; no
// math op is left for libdevice.
// CHECK-LABEL: func.func @f32
// CHECK-NOT: math.
// CHECK: arith.fptosi %{{.*}} : f32 to i32
// CHECK: llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"(%arg0) : (f32) -> f32
// rsqrt is 1 / sqrt.
// CHECK: %[[ROOT:.*]] = llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"(%arg0) : (f32) -> f32
// CHECK: arith.divf %{{.*}}, %[[ROOT]] : f32
// CHECK: arith.maximumf %arg0, %{{.*}} : f32
// CHECK-NOT: math.
// CHECK: return
func.func @f32(%x: f32, %y: f32) -> (f32, f32, f32, f32, f32, f32, f32) {
  %e = math.exp %x : f32
  %s = math.sqrt %x : f32
  %r = math.rsqrt %x : f32
  %p = math.powf %x, %y : f32
  %fl = math.floor %x : f32
  %a = math.absf %x : f32
  %t = math.tanh %x : f32
  return %e, %s, %r, %p, %fl, %a, %t : f32, f32, f32, f32, f32, f32, f32
}

// -----

// f64: transcendental functions in f32, the square root and floor exact.
// CHECK-LABEL: func.func @f64
// CHECK: %[[BIG:.*]] = arith.constant 0x4330000000000000 : f64
// CHECK-NOT: math.
// CHECK: %[[NARROW:.*]] = arith.truncf %arg0 : f64 to f32
// CHECK: %[[LOG:.*]] = arith.extf %{{.*}} : f32 to f64
// CHECK: %[[ROOT:.*]] = llvm.call_intrinsic "llvm.nvvm.sqrt.rn.d"(%arg0) : (f64) -> f64
// CHECK: arith.fptosi %arg0 : f64 to i64
// CHECK: %[[ABS:.*]] = arith.maximumf %arg0
// CHECK: arith.cmpf oge, %[[ABS]], %[[BIG]] : f64
// CHECK-NOT: math.
// CHECK: return %[[LOG]], %[[ROOT]], %{{.*}} : f64, f64, f64
func.func @f64(%x: f64) -> (f64, f64, f64) {
  %l = math.log %x : f64
  %s = math.sqrt %x : f64
  %fl = math.floor %x : f64
  return %l, %s, %fl : f64, f64, f64
}

// -----

// Other element types are left alone.
// CHECK-LABEL: func.func @f16
// CHECK: math.sqrt %arg0 : f16
func.func @f16(%x: f16) -> f16 {
  %s = math.sqrt %x : f16
  return %s : f16
}
