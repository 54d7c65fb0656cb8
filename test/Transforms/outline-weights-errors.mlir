// RUN: moe-opt %s --moe-outline-weights -verify-diagnostics

moe.scope @s path "m" format safetensors
func.func private @f.weights() -> ()

// expected-error@+1 {{cannot outline its weights: the symbol 'f.weights' exists}}
func.func @f(%x: tensor<?x8xf32>) -> tensor<?x4xf32> {
  %w = moe.param @s::"w" : tensor<4x8xf32>
  %y = moe.linear %x, %w : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}
