moe.scope @base path "base" format huggingface
func.func @f(%x: tensor<?x4xf32>, %w: tensor<8x4xf32>, %a: tensor<2x5xf32>, %b: tensor<8x2xf32>) -> tensor<?x8xf32> attributes {moe.scope = @base} {
  %y = moe.lora_linear %x, %w lora(%a, %b) scale 1.0 : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<2x5xf32>, tensor<8x2xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}
