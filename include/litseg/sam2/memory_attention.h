// SAM 2.1 memory attention (sam2/modeling/memory_attention.py): conditions the current
// frame's lowest-resolution features on the memory bank (spatial memories of earlier frames
// and object-pointer tokens).
//
//   litseg::sam2::MemoryAttention attention(config.memory_attention);
//   // ... load the "memory_attention.*" weights (names below that prefix) ...
//   torch::NoGradGuard no_grad;
//   torch::Tensor fused = attention->forward(curr, memory, curr_pos, memory_pos, num_obj_ptr_tokens);
//   // curr, curr_pos [HW, B, d_model]; memory, memory_pos [M, B, mem_dim] -> fused [HW, B, d_model]
//
// memory = the spatial memories of n frames (n * HW tokens, upcast to float32) followed by
// the num_obj_ptr_tokens object-pointer tokens: those are excluded from RoPE, and the
// spatial keys get the query RoPE table repeated once per frame (rope_k_repeat).
// Every layer: x += self_attn(norm1(x)); x += cross_attn_image(norm2(x), memory + memory_pos,
// memory); x += linear2(relu(linear1(norm3(x)))); then a final LayerNorm. Dropout is an
// identity (the modules are used for inference; dropout only matters when training them).
//
// Parameter names equal the official keys below "memory_attention.": layers.N.{self_attn,
// cross_attn_image}.{q,k,v,out}_proj, layers.N.linear{1,2}, layers.N.norm{1,2,3}, norm.
//
// Thread-safety: forward() only reads the parameters (and locks the RoPE table caches).
#pragma once

#include <cstdint>

#include <torch/torch.h>

#include "litseg/sam2/config.h"
#include "litseg/sam2/rope.h"

namespace litseg::sam2 {

struct MemoryAttentionLayerImpl : torch::nn::Module {
  explicit MemoryAttentionLayerImpl(const MemoryAttentionConfig& config);

  // Batch first: tgt, query_pos [B, HW, d_model]; cross_keys (memory, plus its position
  // encoding when pos_enc_at_cross_attn_keys) and cross_values (memory) [B, M, kv_in_dim].
  // query_pos may be undefined unless pos_enc_at_attn or pos_enc_at_cross_attn_queries.
  torch::Tensor forward(const torch::Tensor& tgt, const torch::Tensor& query_pos, const torch::Tensor& cross_keys,
                        const torch::Tensor& cross_values, int64_t num_k_exclude_rope = 0);

  MemoryAttentionConfig config;
  RoPEAttention self_attn{nullptr};
  RoPEAttention cross_attn_image{nullptr};
  torch::nn::Linear linear1{nullptr}, linear2{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
};
TORCH_MODULE(MemoryAttentionLayer);

struct MemoryAttentionImpl : torch::nn::Module {
  explicit MemoryAttentionImpl(const MemoryAttentionConfig& config);

  // Sequence first like the reference: curr, curr_pos [HW, B, d_model]; memory, memory_pos
  // [M, B, kv_in_dim] (memory_pos may be undefined = no key position encoding). The last
  // num_obj_ptr_tokens memory tokens are object pointers. Returns [HW, B, d_model].
  // Throws litseg::Error on inconsistent shapes.
  torch::Tensor forward(const torch::Tensor& curr, const torch::Tensor& memory, const torch::Tensor& curr_pos,
                        const torch::Tensor& memory_pos, int64_t num_obj_ptr_tokens = 0);

  MemoryAttentionConfig config;
  torch::nn::ModuleList layers;
  torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(MemoryAttention);

}  // namespace litseg::sam2
