#include "litseg/sam2/rope.h"

#include <cmath>
#include <sstream>

#include "litseg/core/error.h"

namespace litseg::sam2 {
namespace {

std::string ShapeText(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

}  // namespace

RopeTable ComputeAxialRope(int64_t head_dim, int64_t end_x, int64_t end_y, double theta) {
  if (head_dim <= 0 || head_dim % 4 != 0)
    throw Error("RoPE: the head dimension must be a positive multiple of 4, got " + std::to_string(head_dim));
  if (end_x <= 0 || end_y <= 0)
    throw Error("RoPE: empty feature grid " + std::to_string(end_x) + "x" + std::to_string(end_y));
  torch::NoGradGuard no_grad;
  // 1 / theta^(arange(0, dim, 4)[:dim/4] / dim), every step in float32 like the reference.
  const torch::Tensor exponents =
      torch::arange(0, head_dim, 4, torch::kLong).narrow(0, 0, head_dim / 4).to(torch::kFloat32) / head_dim;
  const torch::Tensor freqs = torch::reciprocal(torch::pow(theta, exponents));
  // Token t sits at column t % end_x, row t / end_x (exact small integers in float32).
  const torch::Tensor t = torch::arange(end_x * end_y, torch::kLong);
  const torch::Tensor t_x = torch::remainder(t, end_x).to(torch::kFloat32);
  const torch::Tensor t_y = torch::div(t, end_x, /*rounding_mode=*/"floor").to(torch::kFloat32);
  const torch::Tensor angles =
      torch::cat({t_x.unsqueeze(1) * freqs.unsqueeze(0), t_y.unsqueeze(1) * freqs.unsqueeze(0)}, 1);
  return RopeTable{angles.cos().contiguous(), angles.sin().contiguous()};
}

torch::Tensor ApplyRope(const torch::Tensor& x, const RopeTable& table) {
  if (!table.cos.defined() || table.cos.dim() != 2 || !table.sin.defined() || table.sin.sizes() != table.cos.sizes())
    throw Error("RoPE: invalid table");
  if (x.dim() < 2) throw Error("RoPE: expected a [..., tokens, channels] tensor, got " + ShapeText(x));
  const int64_t length = x.size(-2), dim = x.size(-1);
  if (length == 0) return x;
  const int64_t tokens = table.tokens(), pairs = table.cos.size(1);
  if (dim != 2 * pairs)
    throw Error("RoPE: the table is for head dimension " + std::to_string(2 * pairs) + ", the input has " +
                std::to_string(dim) + " channels");
  if (length % tokens != 0)
    throw Error("RoPE: " + std::to_string(length) + " tokens are not a whole number of copies of the " +
                std::to_string(tokens) + "-token table");
  const int64_t repeats = length / tokens;
  // float32 like the reference (which upcasts half/bfloat16 inputs); double stays double.
  const auto compute = x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  const torch::Tensor cos = table.cos.to(x.device(), compute);
  const torch::Tensor sin = table.sin.to(x.device(), compute);
  // [..., r * N, D] -> [*, r, N, D/2, (re, im)]; the table broadcasts over the batch and r.
  const torch::Tensor xf = x.to(compute).reshape({-1, repeats, tokens, pairs, 2});
  const torch::Tensor re = xf.select(-1, 0);
  const torch::Tensor im = xf.select(-1, 1);
  const torch::Tensor out_re = re * cos - im * sin;
  const torch::Tensor out_im = re * sin + im * cos;
  return torch::stack({out_re, out_im}, -1).view(x.sizes()).to(x.scalar_type());
}

RoPEAttentionImpl::RoPEAttentionImpl(const RoPEAttentionOptions& opts) : options(opts) {
  if (options.kv_in_dim <= 0) options.kv_in_dim = options.embedding_dim;
  if (options.embedding_dim <= 0 || options.num_heads <= 0 || options.downsample_rate <= 0)
    throw Error("RoPEAttention: embedding_dim, num_heads and downsample_rate must be positive");
  internal_dim = options.embedding_dim / options.downsample_rate;
  if (internal_dim % options.num_heads != 0)
    throw Error("RoPEAttention: num_heads (" + std::to_string(options.num_heads) + ") must divide the internal dim (" +
                std::to_string(internal_dim) + ")");
  const int64_t head_dim = internal_dim / options.num_heads;
  if (head_dim % 4 != 0)
    throw Error("RoPEAttention: the head dimension must be a multiple of 4 for 2-D RoPE, got " +
                std::to_string(head_dim));
  q_proj = register_module("q_proj", torch::nn::Linear(options.embedding_dim, internal_dim));
  k_proj = register_module("k_proj", torch::nn::Linear(options.kv_in_dim, internal_dim));
  v_proj = register_module("v_proj", torch::nn::Linear(options.kv_in_dim, internal_dim));
  out_proj = register_module("out_proj", torch::nn::Linear(internal_dim, options.embedding_dim));
}

RopeTable RoPEAttentionImpl::TableFor(int64_t num_queries, const torch::Device& device) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto key = std::make_tuple(num_queries, static_cast<int>(device.type()), static_cast<int>(device.index()));
  auto it = tables_.find(key);
  if (it != tables_.end()) return it->second;
  const int64_t head_dim = internal_dim / options.num_heads;
  int64_t end_x = options.feat_sizes[0], end_y = options.feat_sizes[1];
  if (end_x * end_y != num_queries) {
    // Like the reference: any other query count is taken as a square grid.
    const auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(num_queries))));
    if (side * side != num_queries)
      throw Error("RoPEAttention: " + std::to_string(num_queries) + " queries are neither the " +
                  std::to_string(options.feat_sizes[0]) + "x" + std::to_string(options.feat_sizes[1]) +
                  " feature grid nor a square grid");
    end_x = end_y = side;
  }
  RopeTable table = ComputeAxialRope(head_dim, end_x, end_y, options.rope_theta);
  table.cos = table.cos.to(device);
  table.sin = table.sin.to(device);
  return tables_.emplace(key, table).first->second;
}

torch::Tensor RoPEAttentionImpl::forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                         int64_t num_k_exclude_rope) {
  if (q.dim() != 3 || k.dim() != 3 || v.dim() != 3 || k.size(0) != q.size(0) || v.size(0) != q.size(0) ||
      k.size(1) != v.size(1) || q.size(2) != options.embedding_dim || k.size(2) != options.kv_in_dim ||
      v.size(2) != options.kv_in_dim)
    throw Error("RoPEAttention: expected q [B, Lq, " + std::to_string(options.embedding_dim) + "] and k, v [B, Lk, " +
                std::to_string(options.kv_in_dim) + "], got q " + ShapeText(q) + ", k " + ShapeText(k) + ", v " +
                ShapeText(v));
  const int64_t batch = q.size(0), num_q = q.size(1), num_k = k.size(1);
  if (num_q == 0) throw Error("RoPEAttention: no queries");
  if (num_k_exclude_rope < 0 || num_k_exclude_rope > num_k)
    throw Error("RoPEAttention: cannot exclude " + std::to_string(num_k_exclude_rope) + " of " +
                std::to_string(num_k) + " keys from RoPE");
  const int64_t num_k_rope = num_k - num_k_exclude_rope;
  if (!options.rope_k_repeat && num_k != num_q)
    throw Error("RoPEAttention: " + std::to_string(num_k) + " keys for " + std::to_string(num_q) +
                " queries need rope_k_repeat");
  if (num_k_rope % num_q != 0)
    throw Error("RoPEAttention: " + std::to_string(num_k_rope) + " rotated keys are not a whole number of " +
                std::to_string(num_q) + "-token frames");

  const int64_t heads = options.num_heads, head_dim = internal_dim / heads;
  // [B, L, heads * c] -> [B, heads, L, c]
  auto separate = [&](const torch::Tensor& x, int64_t length) {
    return x.view({batch, length, heads, head_dim}).transpose(1, 2);
  };
  torch::Tensor qh = separate(q_proj(q), num_q);
  torch::Tensor kh = separate(k_proj(k), num_k);
  const torch::Tensor vh = separate(v_proj(v), num_k);

  const RopeTable table = TableFor(num_q, q.device());
  qh = ApplyRope(qh, table);
  if (num_k_rope > 0) {
    torch::Tensor rotated = ApplyRope(kh.narrow(2, 0, num_k_rope), table);
    kh = num_k_exclude_rope > 0 ? torch::cat({rotated, kh.narrow(2, num_k_rope, num_k_exclude_rope)}, 2) : rotated;
  }

  torch::Tensor out = ScaledDotProductAttention(qh, kh, vh, options.attention);
  out = out.transpose(1, 2).reshape({batch, num_q, internal_dim});
  return out_proj(out);
}

}  // namespace litseg::sam2
