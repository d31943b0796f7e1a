// Scaled dot-product attention shared by every SAM 2 attention layer (Hiera blocks, the
// two-way transformer, memory attention).
//
//   torch::Tensor out = litseg::sam2::ScaledDotProductAttention(q, k, v);
//   // q [B, heads, Lq, D], k [B, heads, Lk, D], v [B, heads, Lk, Dv] -> [B, heads, Lq, Dv]
//
// softmax(q k^T / sqrt(D)) v, like torch.nn.functional.scaled_dot_product_attention without
// mask or dropout. Any number of leading batch dimensions is accepted (at least one).
// On LibTorch >= 2.0 it calls at::scaled_dot_product_attention (fused kernels). On 1.13 it
// computes the math in blocks of queries so that the score matrix of one block stays small
// (a global Hiera block or a memory-attention layer would otherwise materialise hundreds of
// megabytes of scores); inference writes into reused buffers, autograd uses plain ops.
//
// Thread-safety: a pure function; safe to call from several threads.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace litseg::sam2 {

struct AttentionOptions {
  // Upper bound of the score elements (float32) held at once by the 1.13 code path.
  // 256K elements = 1 MB keeps a block of scores in the CPU's L2 cache.
  int64_t max_score_elements = 256 * 1024;
};

torch::Tensor ScaledDotProductAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                        const AttentionOptions& options = {});

// The blocked math path, also on LibTorch 2.x (tests compare it with the fused kernel).
torch::Tensor ScaledDotProductAttentionMath(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                            const AttentionOptions& options = {});

// Same result written into `out` ([B, heads, Lq, Dv], allocated by the caller). q, k, v and
// out may be strided views (unit stride in the last dimension), e.g. heads interleaved per
// token as produced by a qkv projection: on LibTorch 1.13 no copy is made at all.
void ScaledDotProductAttentionInto(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                   torch::Tensor& out, const AttentionOptions& options = {});

}  // namespace litseg::sam2
