// A routed-experts layer that reads its weights from a checkpoint (never
// opened by the lowerings): what a mix looks like before moe-outline-weights.
moe.scope @w path "/nowhere/w.safetensors" format safetensors
func.func @layer(%ids: tensor<?x?xi64>) -> tensor<?x?x16xf32> attributes {moe.scope = @w} {
  %table = moe.param @w::"table" : tensor<32x16xf32>
  %router = moe.param @w::"router" : tensor<4x16xf32>
  %gate = moe.param @w::"gate" : tensor<4x24x16xf32>
  %up = moe.param @w::"up" : tensor<4x24x16xf32>
  %down = moe.param @w::"down" : tensor<4x16x24xf32>
  %x = moe.embedding %table[%ids] : tensor<32x16xf32>, tensor<?x?xi64> -> tensor<?x?x16xf32>
  %y = moe.fused_moe %x router %router gate %gate up %up down %down k 2 scoring softmax activation silu {renormalize} : (tensor<?x?x16xf32>, tensor<4x16xf32>, tensor<4x24x16xf32>, tensor<4x24x16xf32>, tensor<4x16x24xf32>) -> tensor<?x?x16xf32>
  return %y : tensor<?x?x16xf32>
}
