// Embedding, final norm and head without decoder layers: found by the
// fuzzer (the layout took the first of no layers); refused as not routed.
moe.scope @base.ckpt path "base" format huggingface
func.func @mix(%ids: tensor<?x?xi64> {moe.name = "input_ids"}) -> tensor<?x?x32xf32> attributes {moe.architecture = "LlamaForCausalLM", moe.scope = @base.ckpt} {
  %table = moe.param @base.ckpt::"model.embed_tokens.weight" : tensor<32x8xf32>
  %norm = moe.param @base.ckpt::"model.norm.weight" : tensor<8xf32>
  %head = moe.param @base.ckpt::"lm_head.weight" : tensor<32x8xf32>
  %h = moe.embedding %table[%ids] : tensor<32x8xf32>, tensor<?x?xi64> -> tensor<?x?x8xf32>
  %n = moe.rms_norm %h, %norm epsilon 9.9999999999999995E-7 : tensor<?x?x8xf32>, tensor<8xf32> -> tensor<?x?x8xf32>
  %logits = moe.linear %n, %head : (tensor<?x?x8xf32>, tensor<32x8xf32>) -> tensor<?x?x32xf32>
  return %logits : tensor<?x?x32xf32>
}
