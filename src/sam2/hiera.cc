#include "litseg/sam2/hiera.h"

#include <algorithm>
#include <sstream>

#include "litseg/core/error.h"
#include "litseg/sam2/attention.h"
#include "litseg/sam2/precision.h"

namespace litseg::sam2 {
namespace {

namespace F = torch::nn::functional;

// x [..., in] -> [..., out] as one addmm (at::linear on >2-D input adds the bias in a
// second pass over the output).
torch::Tensor ApplyLinear(const torch::Tensor& x, const torch::nn::Linear& linear) {
  const torch::Tensor& w = linear->weight;
  std::vector<int64_t> out_shape(x.sizes().begin(), x.sizes().end());
  out_shape.back() = w.size(0);
  const torch::Tensor flat = x.reshape({-1, x.size(-1)});
  if (InReducedPrecision() && x.scalar_type() == torch::kFloat32) {
    // bf16 path: bf16 operands, float32 accumulation inside oneDNN, float32 result.
    // (oneDNN's bf16 mm is ~2x faster than bf16 addmm here; the bias is added in float32.)
    const torch::Tensor y = at::mm(flat.to(torch::kBFloat16).contiguous(), w.to(torch::kBFloat16).t());
    return y.to(torch::kFloat32).add_(linear->bias).view(out_shape);
  }
  return at::addmm(linear->bias, flat, w.t()).view(out_shape);
}

// Max pooling with kernel = stride (floor mode) inside each window: [N, wh, ww, C] (any
// strides, unit channel stride) -> contiguous [N, wh/sh, ww/sw, C]. Inside aligned windows
// this equals nn.MaxPool2d(q_stride) on the whole map. Elementwise maxima of strided
// slices avoid a reduction over non-adjacent dimensions.
torch::Tensor PoolWindows(const torch::Tensor& x, const std::array<int, 2>& stride) {
  const int64_t sh = stride[0], sw = stride[1];
  const int64_t qh = x.size(1) / sh, qw = x.size(2) / sw;
  torch::Tensor result;
  for (int64_t dy = 0; dy < sh; ++dy) {
    for (int64_t dx = 0; dx < sw; ++dx) {
      const torch::Tensor s = x.slice(1, dy, dy + (qh - 1) * sh + 1, sh).slice(2, dx, dx + (qw - 1) * sw + 1, sw);
      if (!result.defined()) {
        result = s.contiguous();
      } else {
        at::maximum_out(result, result, s);
      }
    }
  }
  return result;
}

}  // namespace

HieraLayout ComputeHieraLayout(const HieraConfig& c) {
  HieraLayout layout;
  int depth = 0;
  for (int s : c.stages) {
    depth += s;
    layout.stage_ends.push_back(depth - 1);
  }
  for (int s = 0; s < c.q_pool && s + 1 < static_cast<int>(c.stages.size()); ++s)
    layout.q_pool_blocks.push_back(layout.stage_ends[s] + 1);

  auto contains = [](const std::vector<int>& list, int value) {
    return std::find(list.begin(), list.end(), value) != list.end();
  };
  int embed_dim = c.embed_dim, num_heads = c.num_heads, cur_stage = 1;
  for (int i = 0; i < depth; ++i) {
    HieraBlockSpec block;
    int dim_out = embed_dim;
    // The window size lags by one block: the first block of a stage (the q-pool block)
    // still uses the previous stage's window, before cur_stage advances below.
    int window = c.window_spec[cur_stage - 1];
    if (contains(c.global_att_blocks, i)) window = 0;
    if (contains(layout.stage_ends, i - 1)) {
      dim_out = static_cast<int>(embed_dim * c.dim_mul);
      num_heads = static_cast<int>(num_heads * c.head_mul);
      ++cur_stage;
    }
    block.dim = embed_dim;
    block.dim_out = dim_out;
    block.num_heads = num_heads;
    block.window_size = window;
    block.q_pool = contains(layout.q_pool_blocks, i);
    block.mlp_hidden = static_cast<int>(dim_out * c.mlp_ratio);
    layout.blocks.push_back(block);
    embed_dim = dim_out;
  }
  for (auto it = layout.stage_ends.rbegin(); it != layout.stage_ends.rend(); ++it)
    layout.channel_list.push_back(layout.blocks[*it].dim_out);
  return layout;
}

PatchEmbedImpl::PatchEmbedImpl(const HieraConfig& c) {
  proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, c.embed_dim, c.patch_kernel_size)
                                                       .stride(c.patch_stride)
                                                       .padding(c.patch_padding)));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& image) { return proj->forward(image); }

MultiScaleAttentionImpl::MultiScaleAttentionImpl(int dim, int dim_out, int heads) : num_heads(heads) {
  qkv = register_module("qkv", torch::nn::Linear(dim, dim_out * 3));
  proj = register_module("proj", torch::nn::Linear(dim_out, dim_out));
}

HieraMlpImpl::HieraMlpImpl(int dim, int hidden, int dim_out) {
  fc1 = torch::nn::Linear(dim, hidden);
  fc2 = torch::nn::Linear(hidden, dim_out);
  layers = register_module("layers", torch::nn::ModuleList(fc1, fc2));
}

torch::Tensor HieraMlpImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = ApplyLinear(x, fc1);
  h = torch::GradMode::is_enabled() ? torch::gelu(h) : at::gelu_(h);
  return ApplyLinear(h, fc2);
}

MultiScaleBlockImpl::MultiScaleBlockImpl(const HieraBlockSpec& s, const HieraConfig& c)
    : spec(s), q_stride(c.q_stride), eps(c.layer_norm_eps) {
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({s.dim}).eps(eps)));
  attn = register_module("attn", MultiScaleAttention(s.dim, s.dim_out, s.num_heads));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({s.dim_out}).eps(eps)));
  mlp = register_module("mlp", HieraMlp(s.dim_out, s.mlp_hidden, s.dim_out));
  if (s.dim != s.dim_out) proj = register_module("proj", torch::nn::Linear(s.dim, s.dim_out));
}

WindowedTokens WindowedTokens::FromSpatial(const torch::Tensor& bhwc, int64_t wh, int64_t ww) {
  WindowedTokens w;
  w.batch = bhwc.size(0);
  w.height = bhwc.size(1);
  w.width = bhwc.size(2);
  w.window_h = wh;
  w.window_w = ww;
  const int64_t c = bhwc.size(3), nh = w.windows_h(), nw = w.windows_w();
  torch::Tensor x = bhwc;
  if (w.padded()) {
    x = torch::zeros({w.batch, nh * wh, nw * ww, c}, bhwc.options());
    x.narrow(1, 0, w.height).narrow(2, 0, w.width).copy_(bhwc);
  }
  w.data = x.view({w.batch, nh, wh, nw, ww, c}).permute({0, 1, 3, 2, 4, 5}).reshape({w.batch * nh * nw, wh * ww, c});
  return w;
}

torch::Tensor WindowedTokens::ToSpatial() const {
  const int64_t nh = windows_h(), nw = windows_w(), c = data.size(-1);
  torch::Tensor full = data.view({batch, nh, nw, window_h, window_w, c})
                           .permute({0, 1, 3, 2, 4, 5})
                           .reshape({batch, nh * window_h, nw * window_w, c});
  if (padded()) full = full.narrow(1, 0, height).narrow(2, 0, width).contiguous();
  return full;
}

WindowedTokens WindowedTokens::Rewindow(int64_t wh, int64_t ww) const {
  if (wh == window_h && ww == window_w) return *this;
  return FromSpatial(ToSpatial(), wh, ww);
}

void WindowedTokens::ZeroPadding() {
  const int64_t nh = windows_h(), nw = windows_w();
  const torch::Tensor view = data.view({batch, nh, nw, window_h, window_w, data.size(-1)});
  const int64_t real_rows = height - (nh - 1) * window_h, real_cols = width - (nw - 1) * window_w;
  if (real_rows < window_h) view.select(1, nh - 1).narrow(2, real_rows, window_h - real_rows).zero_();
  if (real_cols < window_w) view.select(2, nw - 1).narrow(3, real_cols, window_w - real_cols).zero_();
}

torch::Tensor MultiScaleBlockImpl::forward(const torch::Tensor& x) {
  return Forward(WindowedTokens::FromSpatial(x.contiguous(), x.size(1), x.size(2))).ToSpatial();
}

// hieradet.MultiScaleBlock, evaluated window by window. Every operation but the attention
// acts on single tokens, so running them in window order is exact; the reference's zero
// padding of the normalised input is reproduced by zeroing the padding tokens after norm1.
WindowedTokens MultiScaleBlockImpl::Forward(const WindowedTokens& input) {
  const int64_t wh = spec.window_size > 0 ? spec.window_size : input.height;
  const int64_t ww = spec.window_size > 0 ? spec.window_size : input.width;
  WindowedTokens x = input.Rewindow(wh, ww);
  const int64_t windows = x.data.size(0), tokens = wh * ww;
  const int64_t c = spec.dim_out, heads = spec.num_heads, hd = c / heads;

  WindowedTokens normed = x;
  normed.data = at::layer_norm(x.data, {spec.dim}, norm1->weight, norm1->bias, eps);
  if (normed.padded()) normed.ZeroPadding();

  // Output geometry: pooled windows for q-pool blocks (the reference un-partitions with
  // window_size // q_stride and pads the pooled map to a multiple of it).
  WindowedTokens out;
  out.batch = x.batch;
  out.height = spec.q_pool ? x.height / q_stride[0] : x.height;
  out.width = spec.q_pool ? x.width / q_stride[1] : x.width;
  out.window_h = spec.q_pool ? wh / q_stride[0] : wh;
  out.window_w = spec.q_pool ? ww / q_stride[1] : ww;
  if (out.window_h < 1 || out.window_w < 1 || out.windows_h() != x.windows_h() ||
      out.windows_w() != x.windows_w()) {
    std::ostringstream msg;
    msg << "Hiera block: window size " << spec.window_size << " does not fit query pooling by " << q_stride[0]
        << "x" << q_stride[1] << " on a " << x.height << "x" << x.width << " map";
    throw Error(msg.str());
  }
  const int64_t out_tokens = out.window_h * out.window_w;

  // Shortcut: the input, or its projection pooled like the queries.
  torch::Tensor shortcut = x.data;
  if (spec.dim != spec.dim_out) {
    shortcut = ApplyLinear(normed.data, proj);
    // bf16 path: the residual stream stays float32 (LayerNorm needs float32 input here).
    if (shortcut.scalar_type() != x.data.scalar_type()) shortcut = shortcut.to(x.data.scalar_type());
    if (spec.q_pool)
      shortcut = PoolWindows(shortcut.view({windows, wh, ww, c}), q_stride).view({windows, out_tokens, c});
  } else if (spec.q_pool) {
    throw Error("Hiera block: query pooling without a dimension change is not supported");
  }

  // Attention. q/k/v stay interleaved in the projection output ([windows, tokens, 3, heads,
  // hd]); the attention reads them as strided matrices and writes heads interleaved.
  const torch::Tensor qkv = ApplyLinear(normed.data, attn->qkv).view({windows, tokens, 3, c});
  torch::Tensor q = qkv.select(2, 0);
  if (spec.q_pool) q = PoolWindows(q.view({windows, wh, ww, c}), q_stride).view({windows, out_tokens, c});
  auto split_heads = [&](const torch::Tensor& t) {  // [N, L, C] -> [N, heads, L, hd] view
    return t.view({t.size(0), t.size(1), heads, hd}).transpose(1, 2);
  };
  torch::Tensor attended = torch::empty({windows, out_tokens, c}, x.data.options());
  torch::Tensor attended_heads = split_heads(attended);
  ScaledDotProductAttentionInto(split_heads(q), split_heads(qkv.select(2, 1)), split_heads(qkv.select(2, 2)),
                                attended_heads);

  const bool grad = torch::GradMode::is_enabled();
  torch::Tensor h = ApplyLinear(attended, attn->proj);
  // bf16 path: a reduced-precision product plus the float32 residual promotes to float32.
  h = grad || h.scalar_type() != shortcut.scalar_type() ? h + shortcut : h.add_(shortcut);
  out.data = h;
  // With padding, leave window order before the MLP (the bulk of the work) so that it runs
  // on real tokens only; the next block partitions again.
  if (out.padded()) out = WindowedTokens::FromSpatial(out.ToSpatial(), out.height, out.width);
  torch::Tensor m = mlp->forward(at::layer_norm(out.data, {spec.dim_out}, norm2->weight, norm2->bias, eps));
  out.data = grad || m.scalar_type() != out.data.scalar_type() ? m + out.data : m.add_(out.data);
  return out;
}

HieraImpl::HieraImpl(const HieraConfig& c) : config(c), layout(ComputeHieraLayout(c)) {
  if (c.window_spec.empty()) throw Error("Hiera: window_spec must not be empty");
  patch_embed = register_module("patch_embed", PatchEmbed(c));
  pos_embed = register_parameter(
      "pos_embed",
      torch::zeros({1, c.embed_dim, c.window_pos_embed_bkg_spatial_size[0], c.window_pos_embed_bkg_spatial_size[1]}));
  pos_embed_window =
      register_parameter("pos_embed_window", torch::zeros({1, c.embed_dim, c.window_spec[0], c.window_spec[0]}));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (const HieraBlockSpec& spec : layout.blocks) blocks->push_back(MultiScaleBlock(spec, c));
}

torch::Tensor HieraImpl::PositionEmbedding(int64_t h, int64_t w) {
  const int64_t win_h = pos_embed_window.size(2), win_w = pos_embed_window.size(3);
  if (h % win_h != 0 || w % win_w != 0) {
    std::ostringstream msg;
    msg << "Hiera: the " << h << "x" << w << " patch grid is not a multiple of the " << win_h << "x" << win_w
        << " window position embedding (image size must be a multiple of " << win_h * config.patch_stride << ")";
    throw Error(msg.str());
  }
  torch::Tensor pos = F::interpolate(
      pos_embed, F::InterpolateFuncOptions().size(std::vector<int64_t>{h, w}).mode(torch::kBicubic).align_corners(false));
  pos = pos + pos_embed_window.repeat({1, 1, h / win_h, w / win_w});
  return pos.permute({0, 2, 3, 1});
}

std::vector<torch::Tensor> HieraImpl::forward(const torch::Tensor& image, const TraceFn& trace) {
  if (image.dim() != 4 || image.size(1) != 3) {
    std::ostringstream msg;
    msg << "Hiera: expected an image batch [B, 3, H, W], got " << image.sizes();
    throw Error(msg.str());
  }
  const torch::Tensor embedded = patch_embed->forward(image).permute({0, 2, 3, 1});  // BHWC view
  if (trace) trace("trunk.patch_embed", embedded);
  torch::Tensor pos;
  if (torch::GradMode::is_enabled()) {
    pos = PositionEmbedding(embedded.size(1), embedded.size(2));
  } else {
    const std::array<int64_t, 6> key = {embedded.size(1),
                                        embedded.size(2),
                                        static_cast<int64_t>(pos_embed._version()),
                                        static_cast<int64_t>(pos_embed_window._version()),
                                        reinterpret_cast<int64_t>(pos_embed.data_ptr()),
                                        reinterpret_cast<int64_t>(pos_embed_window.data_ptr())};
    std::lock_guard<std::mutex> lock(pos_cache_mutex_);
    if (!pos_cache_.defined() || key != pos_cache_key_ || pos_cache_.device() != embedded.device()) {
      pos_cache_ = PositionEmbedding(key[0], key[1]);
      pos_cache_key_ = key;
    }
    pos = pos_cache_;
  }
  if (trace) trace("trunk.pos_embed", pos);
  const torch::Tensor x = (embedded + pos).contiguous();
  WindowedTokens tokens = WindowedTokens::FromSpatial(x, x.size(1), x.size(2));

  std::vector<torch::Tensor> outputs;
  size_t stage = 0;
  for (size_t i = 0; i < blocks->size(); ++i) {
    tokens = blocks[i]->as<MultiScaleBlock>()->Forward(tokens);
    const bool stage_end = stage < layout.stage_ends.size() && static_cast<int>(i) == layout.stage_ends[stage];
    if (!trace && !stage_end) continue;
    const torch::Tensor spatial = tokens.ToSpatial();
    if (trace) trace("trunk.block" + std::to_string(i), spatial);
    if (stage_end) {
      outputs.push_back(spatial.permute({0, 3, 1, 2}));
      if (trace) trace("trunk.out" + std::to_string(stage), outputs.back());
      ++stage;
    }
  }
  return outputs;
}

}  // namespace litseg::sam2
