#include "litseg/sam2/memory_attention.h"

#include <sstream>
#include <string>

#include "litseg/core/error.h"

namespace litseg::sam2 {
namespace {

// Score block of the LibTorch 1.13 attention path: 8M float32 = 32 MB. The default block
// (sized for Hiera windows) would give 9-row matrix products against ~28,700 memory keys at
// full size, which re-read all keys and values hundreds of times (measured 2.3x slower);
// ~290-row blocks keep the products compute-bound.
constexpr int64_t kMemoryAttentionScoreElements = 8 * 1024 * 1024;

RoPEAttentionOptions AttentionOptionsFor(const MemoryAttentionConfig& config, bool cross) {
  RoPEAttentionOptions o;
  o.attention.max_score_elements = kMemoryAttentionScoreElements;
  o.embedding_dim = config.d_model;
  o.num_heads = config.num_heads;
  o.downsample_rate = config.downsample_rate;
  o.rope_theta = config.rope_theta;
  o.feat_sizes = {config.feat_sizes[0], config.feat_sizes[1]};
  // Self-attention: keys = queries, no repetition; cross-attention reads the memory.
  o.kv_in_dim = cross ? config.kv_in_dim : config.d_model;
  o.rope_k_repeat = cross && config.rope_k_repeat;
  return o;
}

torch::nn::LayerNorm MakeNorm(const MemoryAttentionConfig& config) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({config.d_model}).eps(config.layer_norm_eps));
}

std::string ShapeText(const torch::Tensor& t) {
  if (!t.defined()) return "(none)";
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

}  // namespace

MemoryAttentionLayerImpl::MemoryAttentionLayerImpl(const MemoryAttentionConfig& cfg) : config(cfg) {
  if (config.d_model <= 0 || config.dim_feedforward <= 0 || config.kv_in_dim <= 0)
    throw Error("memory attention: d_model, dim_feedforward and kv_in_dim must be positive");
  self_attn = register_module("self_attn", RoPEAttention(AttentionOptionsFor(config, /*cross=*/false)));
  cross_attn_image = register_module("cross_attn_image", RoPEAttention(AttentionOptionsFor(config, /*cross=*/true)));
  linear1 = register_module("linear1", torch::nn::Linear(config.d_model, config.dim_feedforward));
  linear2 = register_module("linear2", torch::nn::Linear(config.dim_feedforward, config.d_model));
  norm1 = register_module("norm1", MakeNorm(config));
  norm2 = register_module("norm2", MakeNorm(config));
  norm3 = register_module("norm3", MakeNorm(config));
}

torch::Tensor MemoryAttentionLayerImpl::forward(const torch::Tensor& tgt, const torch::Tensor& query_pos,
                                                const torch::Tensor& cross_keys, const torch::Tensor& cross_values,
                                                int64_t num_k_exclude_rope) {
  if ((config.pos_enc_at_attn || config.pos_enc_at_cross_attn_queries) && !query_pos.defined())
    throw Error("memory attention: this configuration adds the query position encoding, but none was given");
  torch::Tensor x = tgt;
  // Self-attention (pre-norm).
  torch::Tensor normed = norm1(x);
  const torch::Tensor self_qk = config.pos_enc_at_attn ? normed + query_pos : normed;
  x = x + self_attn(self_qk, self_qk, normed);
  // Cross-attention to the memory.
  normed = norm2(x);
  const torch::Tensor cross_q = config.pos_enc_at_cross_attn_queries ? normed + query_pos : normed;
  x = x + cross_attn_image(cross_q, cross_keys, cross_values, num_k_exclude_rope);
  // Feed-forward (ReLU in every SAM 2.1 configuration).
  normed = norm3(x);
  return x + linear2(torch::relu(linear1(normed)));
}

MemoryAttentionImpl::MemoryAttentionImpl(const MemoryAttentionConfig& cfg) : config(cfg) {
  if (config.num_layers < 0) throw Error("memory attention: negative number of layers");
  layers = register_module("layers", torch::nn::ModuleList());
  for (int i = 0; i < config.num_layers; ++i) layers->push_back(MemoryAttentionLayer(config));
  norm = register_module("norm", MakeNorm(config));
}

torch::Tensor MemoryAttentionImpl::forward(const torch::Tensor& curr, const torch::Tensor& memory,
                                           const torch::Tensor& curr_pos, const torch::Tensor& memory_pos,
                                           int64_t num_obj_ptr_tokens) {
  const bool shapes_ok = curr.defined() && memory.defined() && curr.dim() == 3 && memory.dim() == 3 &&
                         curr.size(1) == memory.size(1) && curr.size(2) == config.d_model &&
                         memory.size(2) == config.kv_in_dim &&
                         (!curr_pos.defined() || curr_pos.sizes() == curr.sizes()) &&
                         (!memory_pos.defined() || memory_pos.sizes() == memory.sizes());
  if (!shapes_ok)
    throw Error("memory attention: expected curr [HW, B, " + std::to_string(config.d_model) + "] and memory [M, B, " +
                std::to_string(config.kv_in_dim) + "] with matching position encodings, got curr " + ShapeText(curr) +
                ", curr_pos " + ShapeText(curr_pos) + ", memory " + ShapeText(memory) + ", memory_pos " +
                ShapeText(memory_pos));
  if (num_obj_ptr_tokens < 0 || num_obj_ptr_tokens > memory.size(0))
    throw Error("memory attention: " + std::to_string(num_obj_ptr_tokens) + " object-pointer tokens in a memory of " +
                std::to_string(memory.size(0)) + " tokens");

  torch::Tensor output = curr;
  if (config.pos_enc_at_input && curr_pos.defined()) output = output + 0.1 * curr_pos;

  // The layers work batch first. Memories are stored in bfloat16 by the tracker: compute in
  // the dtype of the current features.
  output = output.transpose(0, 1);
  const torch::Tensor query_pos = curr_pos.defined() ? curr_pos.transpose(0, 1) : curr_pos;
  const torch::Tensor values = memory.to(curr.scalar_type()).transpose(0, 1);
  // memory + pos is the same for every layer: computed once.
  const torch::Tensor keys = config.pos_enc_at_cross_attn_keys && memory_pos.defined()
                                 ? values + memory_pos.to(curr.scalar_type()).transpose(0, 1)
                                 : values;
  for (const auto& layer : *layers)
    output = layer->as<MemoryAttentionLayerImpl>()->forward(output, query_pos, keys, values, num_obj_ptr_tokens);
  return norm(output).transpose(0, 1).contiguous();
}

}  // namespace litseg::sam2
