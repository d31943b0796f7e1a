#include "litseg/sam2/two_way_transformer.h"

#include <sstream>

#include "litseg/core/error.h"
#include "litseg/sam2/attention.h"

namespace litseg::sam2 {
namespace {

const char* ProjectionName(Projection which) {
  switch (which) {
    case Projection::kQ: return "q";
    case Projection::kK: return "k";
    case Projection::kV: return "v";
  }
  return "?";
}

void CheckTokens(const torch::Tensor& x, int64_t dim, const char* what) {
  if (!x.defined() || x.dim() != 3 || x.size(2) != dim) {
    std::ostringstream msg;
    msg << "attention: " << what << " must be [B, N, " << dim << "], got ";
    if (x.defined()) msg << x.sizes(); else msg << "nothing";
    throw Error(msg.str());
  }
}

// [B, N, C] -> [B, heads, N, C / heads]
torch::Tensor SeparateHeads(const torch::Tensor& x, int64_t heads) {
  return x.reshape({x.size(0), x.size(1), heads, x.size(2) / heads}).transpose(1, 2);
}

// [B, heads, N, c] -> [B, N, heads * c]
torch::Tensor RecombineHeads(const torch::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), x.size(1) * x.size(3)});
}

torch::nn::LayerNorm MakeLayerNorm(int64_t dim, double eps) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(eps));
}

}  // namespace

ProjectionAdapter::~ProjectionAdapter() = default;

AttentionImpl::AttentionImpl(int64_t embedding, int64_t heads, int64_t downsample_rate, int64_t kv_dim)
    : embedding_dim(embedding), kv_in_dim(kv_dim > 0 ? kv_dim : embedding), num_heads(heads) {
  if (embedding < 1 || heads < 1 || downsample_rate < 1 || embedding % downsample_rate != 0)
    throw Error("attention: embedding_dim " + std::to_string(embedding) + " cannot be downsampled by " +
                std::to_string(downsample_rate) + " with " + std::to_string(heads) + " heads");
  internal_dim = embedding / downsample_rate;
  if (internal_dim % heads != 0)
    throw Error("attention: " + std::to_string(heads) + " heads do not divide the internal dimension " +
                std::to_string(internal_dim));
  q_proj = register_module("q_proj", torch::nn::Linear(embedding_dim, internal_dim));
  k_proj = register_module("k_proj", torch::nn::Linear(kv_in_dim, internal_dim));
  v_proj = register_module("v_proj", torch::nn::Linear(kv_in_dim, internal_dim));
  out_proj = register_module("out_proj", torch::nn::Linear(internal_dim, embedding_dim));
}

void AttentionImpl::SetAdapter(Projection which, std::shared_ptr<ProjectionAdapter> adapter) {
  adapters_[static_cast<int>(which)] = std::move(adapter);
}

void AttentionImpl::ClearAdapters() {
  for (auto& adapter : adapters_) adapter.reset();
}

torch::nn::Linear& AttentionImpl::projection(Projection which) {
  switch (which) {
    case Projection::kQ: return q_proj;
    case Projection::kK: return k_proj;
    case Projection::kV: return v_proj;
  }
  return q_proj;
}

torch::Tensor AttentionImpl::Project(Projection which, const torch::Tensor& x) {
  torch::Tensor out = projection(which)->forward(x);
  const auto& adapter = adapters_[static_cast<int>(which)];
  if (!adapter) return out;
  const torch::Tensor delta = adapter->Delta(x);
  if (!delta.defined() || delta.sizes() != out.sizes()) {
    std::ostringstream msg;
    msg << "attention: the " << ProjectionName(which) << " adapter returned ";
    if (delta.defined()) msg << delta.sizes(); else msg << "nothing";
    msg << " for a projection of shape " << out.sizes();
    throw Error(msg.str());
  }
  return out + delta;
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  CheckTokens(q, embedding_dim, "queries");
  CheckTokens(k, kv_in_dim, "keys");
  CheckTokens(v, kv_in_dim, "values");
  if (k.size(0) != q.size(0) || v.size(0) != q.size(0) || k.size(1) != v.size(1))
    throw Error("attention: queries, keys and values disagree in batch size or key count");
  const torch::Tensor qh = SeparateHeads(Project(Projection::kQ, q), num_heads);
  const torch::Tensor kh = SeparateHeads(Project(Projection::kK, k), num_heads);
  const torch::Tensor vh = SeparateHeads(Project(Projection::kV, v), num_heads);
  return out_proj->forward(RecombineHeads(ScaledDotProductAttention(qh, kh, vh)));
}

TwoWayAttentionBlockImpl::TwoWayAttentionBlockImpl(int64_t dim, int64_t heads, int64_t mlp_dim,
                                                   int64_t downsample_rate, bool skip_pe, double eps)
    : skip_first_layer_pe(skip_pe) {
  // Registration order = the official state-dict order.
  self_attn = register_module("self_attn", Attention(dim, heads));
  norm1 = register_module("norm1", MakeLayerNorm(dim, eps));
  cross_attn_token_to_image = register_module("cross_attn_token_to_image", Attention(dim, heads, downsample_rate));
  norm2 = register_module("norm2", MakeLayerNorm(dim, eps));
  mlp = register_module("mlp", Mlp(dim, mlp_dim, dim, 2, MlpActivation::kReLU));
  norm3 = register_module("norm3", MakeLayerNorm(dim, eps));
  norm4 = register_module("norm4", MakeLayerNorm(dim, eps));
  cross_attn_image_to_token = register_module("cross_attn_image_to_token", Attention(dim, heads, downsample_rate));
}

std::pair<torch::Tensor, torch::Tensor> TwoWayAttentionBlockImpl::forward(const torch::Tensor& queries_in,
                                                                          const torch::Tensor& keys_in,
                                                                          const torch::Tensor& query_pe,
                                                                          const torch::Tensor& key_pe) {
  torch::Tensor queries = queries_in, keys = keys_in;
  // Self-attention of the tokens. The first block replaces the tokens by the attention
  // output (no residual, no positional encoding), as in the reference.
  if (skip_first_layer_pe) {
    queries = self_attn->forward(queries, queries, queries);
  } else {
    const torch::Tensor q = queries + query_pe;
    queries = queries + self_attn->forward(q, q, queries);
  }
  queries = norm1->forward(queries);

  // keys + key_pe is the same in both cross-attentions (keys change only at the end).
  const torch::Tensor keys_with_pe = keys + key_pe;

  // Tokens attend to the image.
  {
    const torch::Tensor q = queries + query_pe;
    queries = norm2->forward(queries + cross_attn_token_to_image->forward(q, keys_with_pe, keys));
  }

  queries = norm3->forward(queries + mlp->forward(queries));

  // The image attends to the tokens.
  {
    const torch::Tensor q = queries + query_pe;
    keys = norm4->forward(keys + cross_attn_image_to_token->forward(keys_with_pe, q, queries));
  }
  return {queries, keys};
}

TwoWayTransformerImpl::TwoWayTransformerImpl(const MaskDecoderConfig& config, int64_t dim) : embedding_dim(dim) {
  if (config.transformer_depth < 1) throw Error("two-way transformer: depth must be at least 1");
  layers = register_module("layers", torch::nn::ModuleList());
  for (int i = 0; i < config.transformer_depth; ++i) {
    TwoWayAttentionBlock block(dim, config.transformer_num_heads, config.transformer_mlp_dim,
                               config.attention_downsample_rate, /*skip_first_layer_pe=*/i == 0,
                               config.transformer_layer_norm_eps);
    layers->push_back(block);
    blocks.push_back(block);
  }
  final_attn_token_to_image = register_module(
      "final_attn_token_to_image", Attention(dim, config.transformer_num_heads, config.attention_downsample_rate));
  norm_final_attn = register_module("norm_final_attn", MakeLayerNorm(dim, config.transformer_layer_norm_eps));
}

std::pair<torch::Tensor, torch::Tensor> TwoWayTransformerImpl::forward(const torch::Tensor& image_embedding,
                                                                       const torch::Tensor& image_pe,
                                                                       const torch::Tensor& point_embedding) {
  if (image_embedding.dim() != 4 || image_embedding.size(1) != embedding_dim ||
      image_pe.sizes() != image_embedding.sizes()) {
    std::ostringstream msg;
    msg << "two-way transformer: expected image embedding and PE of shape [B, " << embedding_dim
        << ", H, W], got " << image_embedding.sizes() << " and " << image_pe.sizes();
    throw Error(msg.str());
  }
  CheckTokens(point_embedding, embedding_dim, "prompt tokens");
  if (point_embedding.size(0) != image_embedding.size(0))
    throw Error("two-way transformer: " + std::to_string(point_embedding.size(0)) + " prompt sets for " +
                std::to_string(image_embedding.size(0)) + " image embeddings");
  // [B, C, H, W] -> [B, HW, C]
  // [B, C, H, W] -> [B, HW, C], made contiguous once: the blocks' outputs are contiguous, and
  // adding a contiguous tensor to a transposed one is several times slower than a copy.
  const torch::Tensor image_tokens = image_embedding.flatten(2).permute({0, 2, 1}).contiguous();
  const torch::Tensor image_pos = image_pe.flatten(2).permute({0, 2, 1}).contiguous();

  torch::Tensor queries = point_embedding, keys = image_tokens;
  for (auto& block : blocks) std::tie(queries, keys) = block->forward(queries, keys, point_embedding, image_pos);

  const torch::Tensor q = queries + point_embedding;
  const torch::Tensor k = keys + image_pos;
  queries = norm_final_attn->forward(queries + final_attn_token_to_image->forward(q, k, keys));
  return {queries, keys};
}

std::vector<std::pair<std::string, Attention>> TwoWayTransformerImpl::NamedAttentions() const {
  std::vector<std::pair<std::string, Attention>> out;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const std::string prefix = "layers." + std::to_string(i) + ".";
    out.emplace_back(prefix + "self_attn", blocks[i]->self_attn);
    out.emplace_back(prefix + "cross_attn_token_to_image", blocks[i]->cross_attn_token_to_image);
    out.emplace_back(prefix + "cross_attn_image_to_token", blocks[i]->cross_attn_image_to_token);
  }
  out.emplace_back("final_attn_token_to_image", final_attn_token_to_image);
  return out;
}

}  // namespace litseg::sam2
