// The compute function of a two-layer Llama mix (base, math and code
// experts, noisy top-2 router), weights outlined into arguments, as moe-run
// prepares it; made with moe-outline-weights from a fixture mix.
module {
  func.func @mix(%arg0: tensor<?x?xi64>, %arg1: tensor<128x32xf32>, %arg2: tensor<32xf32>, %arg3: tensor<32x32xf32>, %arg4: tensor<16x32xf32>, %arg5: tensor<16x32xf32>, %arg6: tensor<32x32xf32>, %arg7: tensor<32xf32>, %arg8: tensor<32xf32>, %arg9: tensor<32x32xf32>, %arg10: tensor<16x32xf32>, %arg11: tensor<16x32xf32>, %arg12: tensor<32x32xf32>, %arg13: tensor<32xf32>, %arg14: tensor<32xf32>, %arg15: tensor<128x32xf32>, %arg16: tensor<3x64x32xf32>, %arg17: tensor<3x64x32xf32>, %arg18: tensor<3x32x64xf32>, %arg19: tensor<3x32xf32>, %arg20: tensor<3x64x32xf32>, %arg21: tensor<3x64x32xf32>, %arg22: tensor<3x32x64xf32>, %arg23: tensor<3x32xf32>) -> tensor<?x?x128xf32> {
    %0 = moe.embedding %arg1[%arg0] : tensor<128x32xf32>, tensor<?x?xi64> -> tensor<?x?x32xf32>
    %1 = moe.rms_norm %0, %arg2 epsilon 1.000000e-05 {moe.layer = 0 : i64} : tensor<?x?x32xf32>, tensor<32xf32> -> tensor<?x?x32xf32>
    %2 = moe.linear %1, %arg3 {moe.layer = 0 : i64} : (tensor<?x?x32xf32>, tensor<32x32xf32>) -> tensor<?x?x32xf32>
    %3 = moe.linear %1, %arg4 {moe.layer = 0 : i64} : (tensor<?x?x32xf32>, tensor<16x32xf32>) -> tensor<?x?x16xf32>
    %4 = moe.linear %1, %arg5 {moe.layer = 0 : i64} : (tensor<?x?x32xf32>, tensor<16x32xf32>) -> tensor<?x?x16xf32>
    %5 = moe.attention %2, %3, %4 heads 4 kv_heads 2 head_dim 8 rope_theta 1.000000e+04 {moe.layer = 0 : i64} : (tensor<?x?x32xf32>, tensor<?x?x16xf32>, tensor<?x?x16xf32>) -> tensor<?x?x32xf32>
    %6 = moe.linear %5, %arg6 {moe.layer = 0 : i64} : (tensor<?x?x32xf32>, tensor<32x32xf32>) -> tensor<?x?x32xf32>
    %7 = arith.addf %0, %6 {moe.layer = 0 : i64} : tensor<?x?x32xf32>
    %8 = moe.rms_norm %7, %arg7 epsilon 1.000000e-05 {moe.layer = 0 : i64} : tensor<?x?x32xf32>, tensor<32xf32> -> tensor<?x?x32xf32>
    %9 = moe.router %8, %arg19 {moe.layer = 0 : i64} : (tensor<?x?x32xf32>, tensor<3x32xf32>) -> tensor<?x?x3xf32>
    %weights, %indices = moe.topk_gating %9 k 2 scoring softmax {moe.layer = 0 : i64, renormalize} : tensor<?x?x3xf32> -> tensor<?x?x2xf32>, tensor<?x?x2xi64>
    %10 = moe.experts %8 routed(%weights, %indices) gate %arg16 up %arg17 down %arg18 activation silu {moe.layer = 0 : i64} : (tensor<?x?x32xf32>, tensor<?x?x2xf32>, tensor<?x?x2xi64>, tensor<3x64x32xf32>, tensor<3x64x32xf32>, tensor<3x32x64xf32>) -> tensor<?x?x32xf32>
    %11 = arith.addf %7, %10 {moe.layer = 0 : i64} : tensor<?x?x32xf32>
    %12 = moe.rms_norm %11, %arg8 epsilon 1.000000e-05 {moe.layer = 1 : i64} : tensor<?x?x32xf32>, tensor<32xf32> -> tensor<?x?x32xf32>
    %13 = moe.linear %12, %arg9 {moe.layer = 1 : i64} : (tensor<?x?x32xf32>, tensor<32x32xf32>) -> tensor<?x?x32xf32>
    %14 = moe.linear %12, %arg10 {moe.layer = 1 : i64} : (tensor<?x?x32xf32>, tensor<16x32xf32>) -> tensor<?x?x16xf32>
    %15 = moe.linear %12, %arg11 {moe.layer = 1 : i64} : (tensor<?x?x32xf32>, tensor<16x32xf32>) -> tensor<?x?x16xf32>
    %16 = moe.attention %13, %14, %15 heads 4 kv_heads 2 head_dim 8 rope_theta 1.000000e+04 {moe.layer = 1 : i64} : (tensor<?x?x32xf32>, tensor<?x?x16xf32>, tensor<?x?x16xf32>) -> tensor<?x?x32xf32>
    %17 = moe.linear %16, %arg12 {moe.layer = 1 : i64} : (tensor<?x?x32xf32>, tensor<32x32xf32>) -> tensor<?x?x32xf32>
    %18 = arith.addf %11, %17 {moe.layer = 1 : i64} : tensor<?x?x32xf32>
    %19 = moe.rms_norm %18, %arg13 epsilon 1.000000e-05 {moe.layer = 1 : i64} : tensor<?x?x32xf32>, tensor<32xf32> -> tensor<?x?x32xf32>
    %20 = moe.router %19, %arg23 {moe.layer = 1 : i64} : (tensor<?x?x32xf32>, tensor<3x32xf32>) -> tensor<?x?x3xf32>
    %weights_0, %indices_1 = moe.topk_gating %20 k 2 scoring softmax {moe.layer = 1 : i64, renormalize} : tensor<?x?x3xf32> -> tensor<?x?x2xf32>, tensor<?x?x2xi64>
    %21 = moe.experts %19 routed(%weights_0, %indices_1) gate %arg20 up %arg21 down %arg22 activation silu {moe.layer = 1 : i64} : (tensor<?x?x32xf32>, tensor<?x?x2xf32>, tensor<?x?x2xi64>, tensor<3x64x32xf32>, tensor<3x64x32xf32>, tensor<3x32x64xf32>) -> tensor<?x?x32xf32>
    %22 = arith.addf %18, %21 {moe.layer = 1 : i64} : tensor<?x?x32xf32>
    %23 = moe.rms_norm %22, %arg14 epsilon 1.000000e-05 : tensor<?x?x32xf32>, tensor<32xf32> -> tensor<?x?x32xf32>
    %24 = moe.linear %23, %arg15 : (tensor<?x?x32xf32>, tensor<128x32xf32>) -> tensor<?x?x128xf32>
    return %24 : tensor<?x?x128xf32>
  }
}
