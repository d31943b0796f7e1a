// Axial 2-D rotary position encoding (RoPE) and the RoPE attention layer of SAM 2 memory
// attention (sam2/modeling/position_encoding.py: compute_axial_cis / apply_rotary_enc,
// sam2/modeling/sam/transformer.py: RoPEAttention).
//
//   litseg::sam2::RopeTable table = litseg::sam2::ComputeAxialRope(/*head_dim=*/256, 64, 64);
//   torch::Tensor q_rot = litseg::sam2::ApplyRope(q, table);  // q [..., 4096, 256]
//
//   litseg::sam2::RoPEAttentionOptions options;  // sizes of one memory-attention layer
//   options.embedding_dim = 256; options.kv_in_dim = 64; options.rope_k_repeat = true;
//   litseg::sam2::RoPEAttention cross(options);
//   torch::Tensor out = cross->forward(queries, keys, values, /*num_k_exclude_rope=*/64);
//
// The reference rotates complex numbers (torch.view_as_complex on adjacent channel pairs).
// LibTorch 1.13's complex support is thin, so the same maths is written with real
// arithmetic on a (cos, sin) table: for each pair (x[2j], x[2j+1]) and angle a,
//   out[2j] = x[2j] cos a - x[2j+1] sin a,   out[2j+1] = x[2j] sin a + x[2j+1] cos a.
// The table of token t (row-major position x = t % end_x, y = t / end_x) holds head_dim/4
// x-angles followed by head_dim/4 y-angles, angle_i = position / theta^(4 i / head_dim),
// computed in float32 exactly as the reference does.
//
// Thread-safety: ComputeAxialRope and ApplyRope are pure functions. RoPEAttention::forward
// only reads the parameters and locks its table cache, so one module may serve several
// threads.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include <torch/torch.h>

#include "litseg/sam2/attention.h"

namespace litseg::sam2 {

// cos and sin of every (token, channel pair) angle: both [end_x * end_y, head_dim / 2], float32.
struct RopeTable {
  torch::Tensor cos;
  torch::Tensor sin;

  int64_t tokens() const { return cos.size(0); }
  int64_t head_dim() const { return 2 * cos.size(1); }
};

// compute_axial_cis(dim=head_dim, end_x, end_y, theta) as a real (cos, sin) table on the CPU.
// head_dim must be a positive multiple of 4.
RopeTable ComputeAxialRope(int64_t head_dim, int64_t end_x, int64_t end_y, double theta = 10000.0);

// Rotates x [..., L, head_dim] (float32) by the table. L must be a multiple r of the table's
// tokens: the table is then repeated r times along the tokens, as apply_rotary_enc does for
// keys with repeat_freqs_k (one copy per memory frame). L == 0 returns x unchanged.
// The table may live on another device than x; it is moved when needed.
torch::Tensor ApplyRope(const torch::Tensor& x, const RopeTable& table);

struct RoPEAttentionOptions {
  int64_t embedding_dim = 256;
  int64_t num_heads = 1;
  int64_t downsample_rate = 1;
  int64_t kv_in_dim = 0;  // 0: same as embedding_dim
  double rope_theta = 10000.0;
  // Repeat the query table over the keys (cross-attention to several memory frames).
  bool rope_k_repeat = false;
  // [end_x, end_y] of the default table (the image embedding grid).
  std::array<int64_t, 2> feat_sizes = {64, 64};
  AttentionOptions attention;
};

// Attention with q/k/v/out projections (keys q_proj, k_proj, v_proj, out_proj), heads and
// rotary encoding of queries and keys. Inputs are batch first: q [B, Lq, embedding_dim],
// k and v [B, Lk, kv_in_dim].
struct RoPEAttentionImpl : torch::nn::Module {
  explicit RoPEAttentionImpl(const RoPEAttentionOptions& options);

  // The last num_k_exclude_rope keys (object-pointer tokens) are not rotated. Without
  // rope_k_repeat the rotated keys must be as many as the queries; with it a multiple.
  // Lq must equal feat_sizes[0] * feat_sizes[1] or be a square number (the reference then
  // assumes a sqrt(Lq) x sqrt(Lq) grid). Throws litseg::Error on inconsistent shapes.
  torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        int64_t num_k_exclude_rope = 0);

  // The table used for Lq queries (cached per size and device).
  RopeTable TableFor(int64_t num_queries, const torch::Device& device);

  RoPEAttentionOptions options;
  int64_t internal_dim = 0;
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};

 private:
  std::mutex mutex_;
  std::map<std::tuple<int64_t, int, int>, RopeTable> tables_;  // (Lq, device type, index)
};
TORCH_MODULE(RoPEAttention);

}  // namespace litseg::sam2
