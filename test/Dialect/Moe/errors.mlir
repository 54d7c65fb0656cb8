// RUN: moe-opt %s -split-input-file -verify-diagnostics

// expected-error @+1 {{'moe.layer' must be a non-negative integer attribute}}
func.func @layer_attr() attributes {moe.layer = -1 : i64} { return }

// -----

// expected-error @+1 {{'moe.scope' must be a flat symbol reference}}
func.func @scope_attr() attributes {moe.scope = "base"} { return }

// -----

// expected-error @+1 {{'moe.architecture' must be a string attribute}}
func.func @architecture_attr() attributes {moe.architecture = 3 : i64} { return }

// -----

// expected-error @+1 {{unknown moe dialect attribute 'moe.colour'}}
func.func @unknown_attr() attributes {moe.colour = "red"} { return }

// -----

// expected-error @+1 {{'moe.name' of argument #0 must be a string attribute}}
func.func @name_arg(%ids: tensor<?x?xi64> {moe.name = 3 : i64}) { return }

// -----

// expected-error @+1 {{'moe.weight' of argument #1 must be a non-negative integer attribute}}
func.func @weight_arg(%ids: tensor<?x?xi64>, %w: tensor<4xf32> {moe.weight = -1 : i64}) { return }

// -----

// expected-error @+1 {{unknown moe dialect argument attribute 'moe.colour'}}
func.func @unknown_arg(%ids: tensor<?x?xi64> {moe.colour}) { return }

// -----

// expected-error @+1 {{rope scaling factor must be positive, got 0}}
func.func @rope_factor() attributes {r = #moe.rope_scaling<kind = linear, factor = 0.0>} { return }

// -----

// expected-error @+1 {{rope scaling 'yarn' needs a positive original_max_position}}
func.func @rope_original() attributes {r = #moe.rope_scaling<kind = yarn, factor = 2.0>} { return }

// -----

// expected-error @+1 {{llama3 rope scaling needs 0 < low_freq_factor < high_freq_factor, got 4.000000e+00 and 1.000000e+00}}
func.func @rope_llama3() attributes {r = #moe.rope_scaling<kind = llama3, factor = 8.0, low_freq_factor = 4.0, high_freq_factor = 1.0, original_max_position = 8192>} { return }

// -----

// expected-error @+1 {{yarn rope scaling needs beta_fast > beta_slow > 0}}
func.func @rope_yarn() attributes {r = #moe.rope_scaling<kind = yarn, factor = 4.0, original_max_position = 4096, beta_fast = 1.0, beta_slow = 2.0>} { return }

// -----

// expected-error @+1 {{rope scaling attention_factor must not be negative}}
func.func @rope_attention_factor() attributes {r = #moe.rope_scaling<kind = yarn, factor = 4.0, original_max_position = 4096, attention_factor = -1.0>} { return }

// -----

// expected-error @+1 {{'moe.scope' op needs a non-empty checkpoint path}}
moe.scope @base path "" format huggingface

// -----

moe.scope @base path "m" format huggingface
func.func @empty_key() -> tensor<2xf32> {
  // expected-error @+1 {{'moe.param' op needs a non-empty tensor key}}
  %w = moe.param @base::"" : tensor<2xf32>
  return %w : tensor<2xf32>
}

// -----

moe.scope @base path "m" format huggingface
func.func @negative_index() -> tensor<2xf32> {
  // expected-error @+1 {{'moe.param' op index must be non-negative, got -1}}
  %w = moe.param @base::"w"[-1] : tensor<2xf32>
  return %w : tensor<2xf32>
}

// -----

func.func @undefined_scope() -> tensor<2xf32> {
  // expected-error @+1 {{'moe.param' op refers to an undefined scope @nowhere}}
  %w = moe.param @nowhere::"w" : tensor<2xf32>
  return %w : tensor<2xf32>
}

// -----

func.func @not_a_scope() -> tensor<2xf32> {
  // expected-error @+1 {{'moe.param' op refers to @not_a_scope, which is not a moe.scope}}
  %w = moe.param @not_a_scope::"w" : tensor<2xf32>
  return %w : tensor<2xf32>
}

// -----

func.func @dynamic_param() {
  // expected-error @+1 {{'moe.param' op result #0 must be statically shaped tensor of floating-point values}}
  %w = "moe.param"() <{scope = @base, key = "w"}> : () -> tensor<?xf32>
  return
}

// -----

func.func @empty_stack() {
  // expected-error @+1 {{'moe.stack' op needs at least one input}}
  %s = "moe.stack"() : () -> tensor<0xf32>
  return
}

// -----

func.func @mixed_stack(%a: tensor<2xf32>, %b: tensor<3xf32>) {
  // expected-error @+1 {{'moe.stack' op expects every input to have the type 'tensor<2xf32>' of input #0, but input #1 has 'tensor<3xf32>'}}
  %s = moe.stack %a, %b : tensor<2xf32>, tensor<3xf32> -> tensor<2x2xf32>
  return
}

// -----

func.func @stack_result(%a: tensor<2xf32>, %b: tensor<2xf32>) {
  // expected-error @+1 {{'moe.stack' op expects the result type 'tensor<2x2xf32>', got 'tensor<3x2xf32>'}}
  %s = moe.stack %a, %b : tensor<2xf32>, tensor<2xf32> -> tensor<3x2xf32>
  return
}

// -----

func.func @average_result(%a: tensor<2xf32>, %b: tensor<2xf32>) {
  // expected-error @+1 {{'moe.average' op expects the result type 'tensor<2xf32>', got 'tensor<3xf32>'}}
  %s = moe.average %a, %b : tensor<2xf32>, tensor<2xf32> -> tensor<3xf32>
  return
}

// -----

func.func @negative_std() {
  // expected-error @+1 {{'moe.random_normal' op std must be non-negative, got -1}}
  %r = moe.random_normal seed 1 mean 0.0 std -1.0 : tensor<2xf32>
  return
}

// -----

func.func @empty_range() {
  // expected-error @+1 {{'moe.random_uniform' op needs low < high, got [1.000000e+00, 1.000000e+00)}}
  %r = moe.random_uniform seed 1 low 1.0 high 1.0 : tensor<2xf32>
  return
}

// -----

func.func @prototypes_rank(%t: tensor<8xf32>) {
  // expected-error @+1 {{'moe.embedding_prototypes' op expects 'table' of rank 2, got rank 1}}
  %r = moe.embedding_prototypes %t token_ids [array<i64: 1>] : tensor<8xf32> -> tensor<1x8xf32>
  return
}

// -----

func.func @prototypes_none(%t: tensor<8x4xf32>) {
  // expected-error @+1 {{'moe.embedding_prototypes' op needs a token-id list for at least one expert}}
  %r = moe.embedding_prototypes %t token_ids [] : tensor<8x4xf32> -> tensor<0x4xf32>
  return
}

// -----

func.func @prototypes_empty(%t: tensor<8x4xf32>) {
  // expected-error @+1 {{'moe.embedding_prototypes' op has no token ids for expert 1}}
  %r = moe.embedding_prototypes %t token_ids [array<i64: 1>, array<i64>] : tensor<8x4xf32> -> tensor<2x4xf32>
  return
}

// -----

func.func @prototypes_vocab(%t: tensor<8x4xf32>) {
  // expected-error @+1 {{'moe.embedding_prototypes' op token id 8 of expert 0 is outside the vocabulary of 8 tokens}}
  %r = moe.embedding_prototypes %t token_ids [array<i64: 8>] : tensor<8x4xf32> -> tensor<1x4xf32>
  return
}

// -----

func.func @prototypes_shape(%t: tensor<8x4xf32>) {
  // expected-error @+1 {{'moe.embedding_prototypes' op expects 'result' of shape [2, 4], got [1, 4]}}
  %r = moe.embedding_prototypes %t token_ids [array<i64: 1>, array<i64: 2>] : tensor<8x4xf32> -> tensor<1x4xf32>
  return
}

// -----

func.func @embedding_element(%t: tensor<8x4xf32>, %ids: tensor<?xi64>) {
  // expected-error @+1 {{'moe.embedding' op expects the result element type of the table, 'f32'}}
  %h = moe.embedding %t[%ids] : tensor<8x4xf32>, tensor<?xi64> -> tensor<?x4xf16>
  return
}

// -----

func.func @embedding_shape(%t: tensor<8x4xf32>, %ids: tensor<?x?xi64>) {
  // expected-error @+1 {{'moe.embedding' op expects 'result' of shape [?, ?, 4], got [?, 4]}}
  %h = moe.embedding %t[%ids] : tensor<8x4xf32>, tensor<?x?xi64> -> tensor<?x4xf32>
  return
}

// -----

func.func @norm_epsilon(%x: tensor<?x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{'moe.rms_norm' op epsilon must be non-negative, got -1}}
  %y = moe.rms_norm %x, %w epsilon -1.0 : tensor<?x4xf32>, tensor<4xf32> -> tensor<?x4xf32>
  return
}

// -----

func.func @norm_weight(%x: tensor<?x4xf32>, %w: tensor<5xf32>) {
  // expected-error @+1 {{'moe.rms_norm' op dimension 0 of 'weight' is 5 but the input feature size is 4}}
  %y = moe.rms_norm %x, %w epsilon 1.0e-6 : tensor<?x4xf32>, tensor<5xf32> -> tensor<?x4xf32>
  return
}

// -----

func.func @norm_bias_rank(%x: tensor<?x4xf32>, %w: tensor<4xf32>, %b: tensor<1x4xf32>) {
  // expected-error @+1 {{'moe.layer_norm' op expects 'bias' of rank 1, got rank 2}}
  %y = moe.layer_norm %x, %w bias %b epsilon 1.0e-5 : (tensor<?x4xf32>, tensor<4xf32>, tensor<1x4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @norm_result(%x: tensor<?x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{'moe.layer_norm' op expects the result type 'tensor<?x4xf32>', got 'tensor<2x4xf32>'}}
  %y = moe.layer_norm %x, %w epsilon 1.0e-5 : (tensor<?x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @norm_element(%x: tensor<?x4xf32>, %w: tensor<4xf16>) {
  // expected-error @+1 {{'moe.rms_norm' op expects all floating-point operands to have the element type 'f32', got 'f16'}}
  %y = moe.rms_norm %x, %w epsilon 1.0e-6 : tensor<?x4xf32>, tensor<4xf16> -> tensor<?x4xf32>
  return
}

// -----

func.func @input_rank(%x: tensor<f32>, %w: tensor<4x1xf32>) {
  // expected-error @+1 {{'moe.linear' op expects 'input' of rank at least 1, got rank 0}}
  %y = moe.linear %x, %w : (tensor<f32>, tensor<4x1xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @linear_weight_rank(%x: tensor<?x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{'moe.linear' op expects 'weight' of rank 2, got rank 1}}
  %y = moe.linear %x, %w : (tensor<?x4xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @linear_features(%x: tensor<?x4xf32>, %w: tensor<8x5xf32>) {
  // expected-error @+1 {{'moe.linear' op dimension 1 of 'weight' is 5 but the input feature size is 4}}
  %y = moe.linear %x, %w : (tensor<?x4xf32>, tensor<8x5xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @linear_bias(%x: tensor<?x4xf32>, %w: tensor<8x4xf32>, %b: tensor<4xf32>) {
  // expected-error @+1 {{'moe.linear' op dimension 0 of 'bias' is 4 but the output features of 'weight' is 8}}
  %y = moe.linear %x, %w bias %b : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<4xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @linear_result(%x: tensor<?x4xf32>, %w: tensor<8x4xf32>) {
  // expected-error @+1 {{'moe.linear' op expects 'result' of shape [?, 8], got [?, 4]}}
  %y = moe.linear %x, %w : (tensor<?x4xf32>, tensor<8x4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @linear_result_element(%x: tensor<?x4xf32>, %w: tensor<8x4xf32>) {
  // expected-error @+1 {{'moe.linear' op expects the result element type 'f32', got 'bf16'}}
  %y = moe.linear %x, %w : (tensor<?x4xf32>, tensor<8x4xf32>) -> tensor<?x8xbf16>
  return
}

// -----

func.func @lora_a(%x: tensor<?x4xf32>, %w: tensor<8x4xf32>, %a: tensor<2x5xf32>, %b: tensor<8x2xf32>) {
  // expected-error @+1 {{'moe.lora_linear' op dimension 1 of 'lora_a' is 5 but the input features of 'weight' is 4}}
  %y = moe.lora_linear %x, %w lora(%a, %b) scale 1.0 : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<2x5xf32>, tensor<8x2xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @lora_b_out(%x: tensor<?x4xf32>, %w: tensor<8x4xf32>, %a: tensor<2x4xf32>, %b: tensor<7x2xf32>) {
  // expected-error @+1 {{'moe.lora_linear' op dimension 0 of 'lora_b' is 7 but the output features of 'weight' is 8}}
  %y = moe.lora_linear %x, %w lora(%a, %b) scale 1.0 : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<2x4xf32>, tensor<7x2xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @lora_rank(%x: tensor<?x4xf32>, %w: tensor<8x4xf32>, %a: tensor<2x4xf32>, %b: tensor<8x3xf32>) {
  // expected-error @+1 {{'moe.lora_linear' op dimension 1 of 'lora_b' is 3 but the rank of 'lora_a' is 2}}
  %y = moe.lora_linear %x, %w lora(%a, %b) scale 1.0 : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<2x4xf32>, tensor<8x3xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @lora_a_rank(%x: tensor<?x4xf32>, %w: tensor<8x4xf32>, %a: tensor<4xf32>, %b: tensor<8x3xf32>) {
  // expected-error @+1 {{'moe.lora_linear' op expects 'lora_a' of rank 2, got rank 1}}
  %y = moe.lora_linear %x, %w lora(%a, %b) scale 1.0 : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<4xf32>, tensor<8x3xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @gqa_heads(%q: tensor<?x?x12xf32>, %k: tensor<?x?x8xf32>) {
  // expected-error @+1 {{'moe.attention' op needs num_heads (3) to be a multiple of num_kv_heads (2)}}
  %o = moe.attention %q, %k, %k heads 3 kv_heads 2 head_dim 4 rope_theta 10000.0 : (tensor<?x?x12xf32>, tensor<?x?x8xf32>, tensor<?x?x8xf32>) -> tensor<?x?x12xf32>
  return
}

// -----

func.func @attention_rank(%q: tensor<?x16xf32>, %k: tensor<?x?x8xf32>) {
  // expected-error @+1 {{'moe.attention' op expects 'query' of rank 3, got rank 2}}
  %o = moe.attention %q, %k, %k heads 4 kv_heads 2 head_dim 4 rope_theta 10000.0 : (tensor<?x16xf32>, tensor<?x?x8xf32>, tensor<?x?x8xf32>) -> tensor<?x16xf32>
  return
}

// -----

func.func @attention_query(%q: tensor<?x?x12xf32>, %k: tensor<?x?x8xf32>) {
  // expected-error @+1 {{'moe.attention' op dimension 2 of 'query' is 12 but num_heads * head_dim is 16}}
  %o = moe.attention %q, %k, %k heads 4 kv_heads 2 head_dim 4 rope_theta 10000.0 : (tensor<?x?x12xf32>, tensor<?x?x8xf32>, tensor<?x?x8xf32>) -> tensor<?x?x12xf32>
  return
}

// -----

func.func @attention_key(%q: tensor<?x?x16xf32>, %k: tensor<?x?x4xf32>, %v: tensor<?x?x8xf32>) {
  // expected-error @+1 {{'moe.attention' op dimension 2 of 'key' is 4 but num_kv_heads * head_dim is 8}}
  %o = moe.attention %q, %k, %v heads 4 kv_heads 2 head_dim 4 rope_theta 10000.0 : (tensor<?x?x16xf32>, tensor<?x?x4xf32>, tensor<?x?x8xf32>) -> tensor<?x?x16xf32>
  return
}

// -----

func.func @attention_length(%q: tensor<1x5x16xf32>, %k: tensor<1x6x8xf32>) {
  // expected-error @+1 {{'moe.attention' op dimension 1 of 'key' is 6 but the query length is 5}}
  %o = moe.attention %q, %k, %k heads 4 kv_heads 2 head_dim 4 rope_theta 10000.0 : (tensor<1x5x16xf32>, tensor<1x6x8xf32>, tensor<1x6x8xf32>) -> tensor<1x5x16xf32>
  return
}

// -----

func.func @attention_batch(%q: tensor<2x5x16xf32>, %k: tensor<1x5x8xf32>) {
  // expected-error @+1 {{'moe.attention' op dimension 0 of 'key' is 1 but the query batch is 2}}
  %o = moe.attention %q, %k, %k heads 4 kv_heads 2 head_dim 4 rope_theta 10000.0 : (tensor<2x5x16xf32>, tensor<1x5x8xf32>, tensor<1x5x8xf32>) -> tensor<2x5x16xf32>
  return
}

// -----

func.func @attention_odd(%q: tensor<?x?x12xf32>, %k: tensor<?x?x6xf32>) {
  // expected-error @+1 {{'moe.attention' op needs an even head_dim for the rotary embedding, got 3}}
  %o = moe.attention %q, %k, %k heads 4 kv_heads 2 head_dim 3 rope_theta 10000.0 : (tensor<?x?x12xf32>, tensor<?x?x6xf32>, tensor<?x?x6xf32>) -> tensor<?x?x12xf32>
  return
}

// -----

func.func @attention_theta(%q: tensor<?x?x16xf32>, %k: tensor<?x?x8xf32>) {
  // expected-error @+1 {{'moe.attention' op rope_theta must be non-negative}}
  %o = moe.attention %q, %k, %k heads 4 kv_heads 2 head_dim 4 rope_theta -1.0 : (tensor<?x?x16xf32>, tensor<?x?x8xf32>, tensor<?x?x8xf32>) -> tensor<?x?x16xf32>
  return
}

// -----

func.func @attention_scaling(%q: tensor<?x?x16xf32>, %k: tensor<?x?x8xf32>) {
  // expected-error @+1 {{'moe.attention' op has rope_scaling but no rotary embedding (rope_theta = 0)}}
  %o = moe.attention %q, %k, %k heads 4 kv_heads 2 head_dim 4 rope_theta 0.0 {rope_scaling = #moe.rope_scaling<kind = linear, factor = 2.0>} : (tensor<?x?x16xf32>, tensor<?x?x8xf32>, tensor<?x?x8xf32>) -> tensor<?x?x16xf32>
  return
}

// -----

func.func @attention_scale(%q: tensor<?x?x16xf32>, %k: tensor<?x?x8xf32>) {
  // expected-error @+1 {{'moe.attention' op scale must be positive}}
  %o = moe.attention %q, %k, %k heads 4 kv_heads 2 head_dim 4 rope_theta 1.0e4 {scale = 0.0 : f64} : (tensor<?x?x16xf32>, tensor<?x?x8xf32>, tensor<?x?x8xf32>) -> tensor<?x?x16xf32>
  return
}

// -----

func.func @attention_window(%q: tensor<?x?x16xf32>, %k: tensor<?x?x8xf32>) {
  // expected-error @+1 {{'moe.attention' op sliding_window must be positive, got 0}}
  %o = moe.attention %q, %k, %k heads 4 kv_heads 2 head_dim 4 rope_theta 1.0e4 {sliding_window = 0 : i64} : (tensor<?x?x16xf32>, tensor<?x?x8xf32>, tensor<?x?x8xf32>) -> tensor<?x?x16xf32>
  return
}

// -----

func.func @attention_result(%q: tensor<?x?x16xf32>, %k: tensor<?x?x8xf32>) {
  // expected-error @+1 {{'moe.attention' op expects the result type 'tensor<?x?x16xf32>', got 'tensor<?x?x8xf32>'}}
  %o = moe.attention %q, %k, %k heads 4 kv_heads 2 head_dim 4 rope_theta 1.0e4 : (tensor<?x?x16xf32>, tensor<?x?x8xf32>, tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

func.func @attention_heads(%q: tensor<?x?x16xf32>, %k: tensor<?x?x8xf32>) {
  // expected-error @+1 {{'moe.attention' op attribute 'num_heads' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %o = moe.attention %q, %k, %k heads 0 kv_heads 2 head_dim 4 rope_theta 1.0e4 : (tensor<?x?x16xf32>, tensor<?x?x8xf32>, tensor<?x?x8xf32>) -> tensor<?x?x16xf32>
  return
}

// -----

func.func @ffn_hidden(%x: tensor<?x4xf32>, %u: tensor<8x5xf32>, %d: tensor<4x8xf32>) {
  // expected-error @+1 {{'moe.ffn' op dimension 1 of 'up' is 5 but the input hidden size is 4}}
  %y = moe.ffn %x up %u down %d activation relu : (tensor<?x4xf32>, tensor<8x5xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @ffn_down_hidden(%x: tensor<?x4xf32>, %u: tensor<8x4xf32>, %d: tensor<5x8xf32>) {
  // expected-error @+1 {{'moe.ffn' op dimension 0 of 'down' is 5 but the input hidden size is 4}}
  %y = moe.ffn %x up %u down %d activation relu : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<5x8xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @ffn_intermediate(%x: tensor<?x4xf32>, %u: tensor<8x4xf32>, %d: tensor<4x6xf32>) {
  // expected-error @+1 {{'moe.ffn' op dimension 1 of 'down' is 6 but the intermediate size of 'up' is 8}}
  %y = moe.ffn %x up %u down %d activation relu : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @ffn_gate(%x: tensor<?x4xf32>, %g: tensor<6x4xf32>, %u: tensor<8x4xf32>, %d: tensor<4x8xf32>) {
  // expected-error @+1 {{'moe.ffn' op expects 'gate' to have the shape of 'up' [8, 4], got [6, 4]}}
  %y = moe.ffn %x gate %g up %u down %d activation silu : (tensor<?x4xf32>, tensor<6x4xf32>, tensor<8x4xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @ffn_gate_bias(%x: tensor<?x4xf32>, %u: tensor<8x4xf32>, %d: tensor<4x8xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{'moe.ffn' op has a 'gate_bias' but no 'gate' projection}}
  %y = moe.ffn %x up %u down %d gate_bias %b activation relu : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<4x8xf32>, tensor<8xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @ffn_down_bias(%x: tensor<?x4xf32>, %u: tensor<8x4xf32>, %d: tensor<4x8xf32>, %b: tensor<8xf32>) {
  // expected-error @+1 {{'moe.ffn' op dimension 0 of 'down_bias' is 8 but the hidden size is 4}}
  %y = moe.ffn %x up %u down %d down_bias %b activation relu : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<4x8xf32>, tensor<8xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @ffn_up_bias(%x: tensor<?x4xf32>, %u: tensor<8x4xf32>, %d: tensor<4x8xf32>, %b: tensor<4xf32>) {
  // expected-error @+1 {{'moe.ffn' op dimension 0 of 'up_bias' is 4 but the intermediate size is 8}}
  %y = moe.ffn %x up %u down %d up_bias %b activation relu : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @ffn_result(%x: tensor<?x4xf32>, %u: tensor<8x4xf32>, %d: tensor<4x8xf32>) {
  // expected-error @+1 {{'moe.ffn' op expects the result type 'tensor<?x4xf32>', got 'tensor<?x8xf32>'}}
  %y = moe.ffn %x up %u down %d activation relu : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<4x8xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @ffn_activation(%x: tensor<?x4xf32>, %u: tensor<8x4xf32>, %d: tensor<4x8xf32>) {
  // expected-error @+1 {{expected string or keyword containing one of the following enum values for attribute 'activation' [silu, gelu, gelu_tanh, relu, identity]}}
  %y = moe.ffn %x up %u down %d activation swish : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @router_experts(%x: tensor<?x4xf32>, %w: tensor<3x4xf32>) {
  // expected-error @+1 {{'moe.router' op expects 'result' of shape [?, 3], got [?, 4]}}
  %l = moe.router %x, %w : (tensor<?x4xf32>, tensor<3x4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @k_too_large(%l: tensor<?x4xf32>) {
  // expected-error @+1 {{'moe.topk_gating' op k = 5 exceeds the number of experts (4)}}
  %w, %i = moe.topk_gating %l k 5 scoring softmax : tensor<?x4xf32> -> tensor<?x5xf32>, tensor<?x5xi64>
  return
}

// -----

func.func @negative_noise(%l: tensor<?x4xf32>) {
  // expected-error @+1 {{'moe.topk_gating' op noise_std must be non-negative}}
  %w, %i = moe.topk_gating %l k 2 scoring softmax {noise_std = -0.5 : f64} : tensor<?x4xf32> -> tensor<?x2xf32>, tensor<?x2xi64>
  return
}

// -----

func.func @gating_shape(%l: tensor<?x4xf32>) {
  // expected-error @+1 {{'moe.topk_gating' op expects 'indices' of shape [?, 2], got [?, 3]}}
  %w, %i = moe.topk_gating %l k 2 scoring softmax : tensor<?x4xf32> -> tensor<?x2xf32>, tensor<?x3xi64>
  return
}

// -----

func.func @gating_k(%l: tensor<?x4xf32>) {
  // expected-error @+1 {{'moe.topk_gating' op attribute 'k' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %w, %i = moe.topk_gating %l k 0 scoring softmax : tensor<?x4xf32> -> tensor<?x0xf32>, tensor<?x0xi64>
  return
}

// -----

func.func @uniform_shape(%x: tensor<?x4xf32>) {
  // expected-error @+1 {{'moe.uniform_gating' op expects 'weights' of shape [?, 3], got [?, 4]}}
  %w, %i = moe.uniform_gating %x experts 3 : tensor<?x4xf32> -> tensor<?x4xf32>, tensor<?x3xi64>
  return
}

// -----

func.func @experts_count(%x: tensor<?x4xf32>, %w: tensor<?x3xf32>, %i: tensor<?x3xi64>, %u: tensor<2x8x4xf32>, %d: tensor<2x4x8xf32>) {
  // expected-error @+1 {{'moe.experts' op routes each token to 3 experts but only 2 exist}}
  %y = moe.experts %x routed(%w, %i) up %u down %d activation relu : (tensor<?x4xf32>, tensor<?x3xf32>, tensor<?x3xi64>, tensor<2x8x4xf32>, tensor<2x4x8xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @experts_stack_rank(%x: tensor<?x4xf32>, %w: tensor<?x1xf32>, %i: tensor<?x1xi64>, %u: tensor<8x4xf32>, %d: tensor<2x4x8xf32>) {
  // expected-error @+1 {{'moe.experts' op expects 'up' of rank 3, got rank 2}}
  %y = moe.experts %x routed(%w, %i) up %u down %d activation relu : (tensor<?x4xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<8x4xf32>, tensor<2x4x8xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @experts_down_count(%x: tensor<?x4xf32>, %w: tensor<?x1xf32>, %i: tensor<?x1xi64>, %u: tensor<2x8x4xf32>, %d: tensor<3x4x8xf32>) {
  // expected-error @+1 {{'moe.experts' op dimension 0 of 'down' is 3 but the expert count of 'up' is 2}}
  %y = moe.experts %x routed(%w, %i) up %u down %d activation relu : (tensor<?x4xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<2x8x4xf32>, tensor<3x4x8xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @experts_routing_rank(%x: tensor<?x4xf32>, %w: tensor<1xf32>, %i: tensor<?x1xi64>, %u: tensor<2x8x4xf32>, %d: tensor<2x4x8xf32>) {
  // expected-error @+1 {{'moe.experts' op expects 'weights' of rank 2, got rank 1}}
  %y = moe.experts %x routed(%w, %i) up %u down %d activation relu : (tensor<?x4xf32>, tensor<1xf32>, tensor<?x1xi64>, tensor<2x8x4xf32>, tensor<2x4x8xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @experts_half_shared(%x: tensor<?x4xf32>, %w: tensor<?x1xf32>, %i: tensor<?x1xi64>, %u: tensor<2x8x4xf32>, %d: tensor<2x4x8xf32>, %su: tensor<6x4xf32>) {
  // expected-error @+1 {{'moe.experts' op needs both 'shared_up' and 'shared_down' for a shared expert}}
  %y = moe.experts %x routed(%w, %i) up %u down %d shared_up %su activation relu : (tensor<?x4xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<2x8x4xf32>, tensor<2x4x8xf32>, tensor<6x4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @experts_gate_without_shared(%x: tensor<?x4xf32>, %w: tensor<?x1xf32>, %i: tensor<?x1xi64>, %u: tensor<2x8x4xf32>, %d: tensor<2x4x8xf32>, %g: tensor<1x4xf32>) {
  // expected-error @+1 {{'moe.experts' op has a shared expert gate or gate projection but no shared expert ('shared_up' and 'shared_down')}}
  %y = moe.experts %x routed(%w, %i) up %u down %d shared_expert_gate %g activation relu : (tensor<?x4xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<2x8x4xf32>, tensor<2x4x8xf32>, tensor<1x4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @experts_shared_gate_rows(%x: tensor<?x4xf32>, %w: tensor<?x1xf32>, %i: tensor<?x1xi64>, %u: tensor<2x8x4xf32>, %d: tensor<2x4x8xf32>, %su: tensor<6x4xf32>, %sd: tensor<4x6xf32>, %g: tensor<2x4xf32>) {
  // expected-error @+1 {{'moe.experts' op dimension 0 of 'shared_expert_gate' is 2 but a single gate row is 1}}
  %y = moe.experts %x routed(%w, %i) up %u down %d shared_up %su shared_down %sd shared_expert_gate %g activation relu : (tensor<?x4xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<2x8x4xf32>, tensor<2x4x8xf32>, tensor<6x4xf32>, tensor<4x6xf32>, tensor<2x4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @experts_shared_intermediate(%x: tensor<?x4xf32>, %w: tensor<?x1xf32>, %i: tensor<?x1xi64>, %u: tensor<2x8x4xf32>, %d: tensor<2x4x8xf32>, %su: tensor<6x4xf32>, %sd: tensor<4x5xf32>) {
  // expected-error @+1 {{'moe.experts' op dimension 1 of 'shared_down' is 5 but the intermediate size of 'shared_up' is 6}}
  %y = moe.experts %x routed(%w, %i) up %u down %d shared_up %su shared_down %sd activation relu : (tensor<?x4xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<2x8x4xf32>, tensor<2x4x8xf32>, tensor<6x4xf32>, tensor<4x5xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @experts_result(%x: tensor<?x4xf32>, %w: tensor<?x1xf32>, %i: tensor<?x1xi64>, %u: tensor<2x8x4xf32>, %d: tensor<2x4x8xf32>) {
  // expected-error @+1 {{'moe.experts' op expects the result type 'tensor<?x4xf32>', got 'tensor<?x8xf32>'}}
  %y = moe.experts %x routed(%w, %i) up %u down %d activation relu : (tensor<?x4xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<2x8x4xf32>, tensor<2x4x8xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @routed_linear_bias(%x: tensor<?x4xf32>, %w: tensor<?x1xf32>, %i: tensor<?x1xi64>, %s: tensor<2x8x4xf32>, %b: tensor<2x4xf32>) {
  // expected-error @+1 {{'moe.routed_linear' op dimension 1 of 'bias' is 4 but the output features of 'weight' is 8}}
  %y = moe.routed_linear %x routed(%w, %i), %s bias %b : (tensor<?x4xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<2x8x4xf32>, tensor<2x4xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @routed_linear_bias_experts(%x: tensor<?x4xf32>, %w: tensor<?x1xf32>, %i: tensor<?x1xi64>, %s: tensor<2x8x4xf32>, %b: tensor<3x8xf32>) {
  // expected-error @+1 {{'moe.routed_linear' op dimension 0 of 'bias' is 3 but the expert count of 'weight' is 2}}
  %y = moe.routed_linear %x routed(%w, %i), %s bias %b : (tensor<?x4xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<2x8x4xf32>, tensor<3x8xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @routed_linear_result(%x: tensor<?x4xf32>, %w: tensor<?x1xf32>, %i: tensor<?x1xi64>, %s: tensor<2x8x4xf32>) {
  // expected-error @+1 {{'moe.routed_linear' op expects 'result' of shape [?, 8], got [?, 4]}}
  %y = moe.routed_linear %x routed(%w, %i), %s : (tensor<?x4xf32>, tensor<?x1xf32>, tensor<?x1xi64>, tensor<2x8x4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @mol_counts(%x: tensor<?x4xf32>, %w: tensor<8x4xf32>, %r: tensor<2x4xf32>, %a: tensor<2x4xf32>, %b: tensor<8x2xf32>) {
  // expected-error @+1 {{'moe.mixture_of_lora' op has 2 'lora_a' but 1 'lora_b' tensors}}
  %y = moe.mixture_of_lora %x, %w router %r lora_a(%a, %a) lora_b(%b) scales [1.0, 1.0] normalization softmax : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<8x2xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @mol_none(%x: tensor<?x4xf32>, %w: tensor<8x4xf32>, %r: tensor<0x4xf32>) {
  // expected-error @+1 {{'moe.mixture_of_lora' op needs at least one adapter}}
  %y = moe.mixture_of_lora %x, %w router %r lora_a() lora_b() scales [] normalization softmax : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<0x4xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @mol_scales(%x: tensor<?x4xf32>, %w: tensor<8x4xf32>, %r: tensor<1x4xf32>, %a: tensor<2x4xf32>, %b: tensor<8x2xf32>) {
  // expected-error @+1 {{'moe.mixture_of_lora' op has 2 scales for 1 adapters}}
  %y = moe.mixture_of_lora %x, %w router %r lora_a(%a) lora_b(%b) scales [1.0, 2.0] normalization softmax : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<1x4xf32>, tensor<2x4xf32>, tensor<8x2xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @mol_router(%x: tensor<?x4xf32>, %w: tensor<8x4xf32>, %r: tensor<2x4xf32>, %a: tensor<2x4xf32>, %b: tensor<8x2xf32>) {
  // expected-error @+1 {{'moe.mixture_of_lora' op dimension 0 of 'router' is 2 but the adapter count is 1}}
  %y = moe.mixture_of_lora %x, %w router %r lora_a(%a) lora_b(%b) scales [1.0] normalization softmax : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<8x2xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @mol_adapter(%x: tensor<?x4xf32>, %w: tensor<8x4xf32>, %r: tensor<2x4xf32>, %a: tensor<2x4xf32>, %b: tensor<8x2xf32>, %b1: tensor<8x3xf32>) {
  // expected-error @+1 {{'moe.mixture_of_lora' op dimension 1 of 'lora_b #1' is 3 but the rank of 'lora_a #1' is 2}}
  %y = moe.mixture_of_lora %x, %w router %r lora_a(%a, %a) lora_b(%b, %b1) scales [1.0, 1.0] normalization softmax : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<8x2xf32>, tensor<8x3xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @mol_top_k(%x: tensor<?x4xf32>, %w: tensor<8x4xf32>, %r: tensor<1x4xf32>, %a: tensor<2x4xf32>, %b: tensor<8x2xf32>) {
  // expected-error @+1 {{'moe.mixture_of_lora' op top_k = 2 must be between 0 (all adapters) and the adapter count 1}}
  %y = moe.mixture_of_lora %x, %w router %r lora_a(%a) lora_b(%b) scales [1.0] normalization sigmoid {top_k = 2 : i64} : (tensor<?x4xf32>, tensor<8x4xf32>, tensor<1x4xf32>, tensor<2x4xf32>, tensor<8x2xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @fused_router(%x: tensor<?x4xf32>, %r: tensor<3x4xf32>, %u: tensor<2x8x4xf32>, %d: tensor<2x4x8xf32>) {
  // expected-error @+1 {{'moe.fused_moe' op dimension 0 of 'router' is 3 but the expert count of 'up' is 2}}
  %y = moe.fused_moe %x router %r up %u down %d k 1 scoring softmax activation relu : (tensor<?x4xf32>, tensor<3x4xf32>, tensor<2x8x4xf32>, tensor<2x4x8xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @fused_router_bias(%x: tensor<?x4xf32>, %b: tensor<2xf32>, %u: tensor<2x8x4xf32>, %d: tensor<2x4x8xf32>) {
  // expected-error @+1 {{'moe.fused_moe' op has a 'router_bias' but no 'router'}}
  %y = moe.fused_moe %x router_bias %b up %u down %d k 2 scoring softmax activation relu : (tensor<?x4xf32>, tensor<2xf32>, tensor<2x8x4xf32>, tensor<2x4x8xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @fused_gateless_k(%x: tensor<?x4xf32>, %u: tensor<2x8x4xf32>, %d: tensor<2x4x8xf32>) {
  // expected-error @+1 {{'moe.fused_moe' op without a router runs every expert, so k (1) must equal the expert count (2)}}
  %y = moe.fused_moe %x up %u down %d k 1 scoring softmax activation relu : (tensor<?x4xf32>, tensor<2x8x4xf32>, tensor<2x4x8xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @fused_k(%x: tensor<?x4xf32>, %r: tensor<2x4xf32>, %u: tensor<2x8x4xf32>, %d: tensor<2x4x8xf32>) {
  // expected-error @+1 {{'moe.fused_moe' op k = 3 exceeds the number of experts (2)}}
  %y = moe.fused_moe %x router %r up %u down %d k 3 scoring softmax activation relu : (tensor<?x4xf32>, tensor<2x4xf32>, tensor<2x8x4xf32>, tensor<2x4x8xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @fused_noise(%x: tensor<?x4xf32>, %r: tensor<2x4xf32>, %u: tensor<2x8x4xf32>, %d: tensor<2x4x8xf32>) {
  // expected-error @+1 {{'moe.fused_moe' op noise_std must be non-negative}}
  %y = moe.fused_moe %x router %r up %u down %d k 1 scoring softmax activation relu {noise_std = -1.0 : f64} : (tensor<?x4xf32>, tensor<2x4xf32>, tensor<2x8x4xf32>, tensor<2x4x8xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @fused_result(%x: tensor<?x4xf32>, %r: tensor<2x4xf32>, %u: tensor<2x8x4xf32>, %d: tensor<2x4x8xf32>) {
  // expected-error @+1 {{'moe.fused_moe' op expects the result type 'tensor<?x4xf32>', got 'tensor<4xf32>'}}
  %y = moe.fused_moe %x router %r up %u down %d k 1 scoring softmax activation relu : (tensor<?x4xf32>, tensor<2x4xf32>, tensor<2x8x4xf32>, tensor<2x4x8xf32>) -> tensor<4xf32>
  return
}

// -----

// expected-error @+1 {{'moe.gpu_kernel' must be a symbol reference on a function declaration}}
func.func private @launched() attributes {moe.gpu_kernel = "k"}

// -----

// expected-error @+1 {{'moe.gpu_kernel' must be a symbol reference on a function declaration}}
func.func @defined() attributes {moe.gpu_kernel = @kernels::@k} { return }
