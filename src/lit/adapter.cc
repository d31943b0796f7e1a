#include "litseg/lit/adapter.h"

#include <cmath>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include "litseg/core/error.h"

namespace litseg::lit {
namespace {

using Json = nlohmann::json;

const char* ProjectionSuffix(sam2::Projection which) {
  switch (which) {
    case sam2::Projection::kQ: return "q_proj";
    case sam2::Projection::kK: return "k_proj";
    case sam2::Projection::kV: return "v_proj";
  }
  return "?";
}

// Uniform(-bound, bound) drawn on the CPU from `generator` (so the values do not depend on
// the device or on the global RNG), then moved to `like`'s device.
torch::Tensor UniformLike(at::IntArrayRef shape, double bound, at::Generator& generator, const torch::Tensor& like) {
  torch::Tensor t = torch::empty(shape, torch::dtype(torch::kFloat32));
  t.uniform_(-bound, bound, generator);
  return t.to(like.device(), like.scalar_type());
}

}  // namespace

std::string AdapterKindName(AdapterKind kind) {
  return kind == AdapterKind::kDecoderLora ? "decoder_lora" : "memory_adapter";
}

AdapterKind ParseAdapterKind(const std::string& name) {
  if (name == "decoder_lora" || name == "lora") return AdapterKind::kDecoderLora;
  if (name == "memory_adapter" || name == "memory") return AdapterKind::kMemoryAdapter;
  throw Error("unknown adapter kind '" + name + "' (expected decoder_lora or memory_adapter)");
}

std::string AdapterConfigToJson(const AdapterConfig& c) {
  Json j;
  j["kind"] = AdapterKindName(c.kind);
  j["lora"] = {{"rank", c.lora.rank},        {"alpha", c.lora.alpha},     {"dropout", c.lora.dropout},
               {"adapt_q", c.lora.adapt_q},  {"adapt_k", c.lora.adapt_k}, {"adapt_v", c.lora.adapt_v}};
  j["memory"] = {{"hidden_channels", c.memory.hidden_channels}};
  j["seed"] = c.seed;
  return j.dump();
}

AdapterConfig AdapterConfigFromJson(const std::string& text) {
  AdapterConfig c;
  try {
    const Json j = Json::parse(text);
    c.kind = ParseAdapterKind(j.at("kind").get<std::string>());
    const Json& l = j.at("lora");
    c.lora.rank = l.at("rank").get<int>();
    c.lora.alpha = l.at("alpha").get<double>();
    c.lora.dropout = l.at("dropout").get<double>();
    c.lora.adapt_q = l.at("adapt_q").get<bool>();
    c.lora.adapt_k = l.at("adapt_k").get<bool>();
    c.lora.adapt_v = l.at("adapt_v").get<bool>();
    c.memory.hidden_channels = j.at("memory").at("hidden_channels").get<int>();
    c.seed = j.at("seed").get<uint64_t>();
  } catch (const Json::exception& e) {
    throw Error(std::string("adapter config is not valid: ") + e.what());
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

// Draw `group` of a stream at `state`: 64 random bits for elements 4 group .. 4 group + 3.
inline uint64_t DropoutDraw(uint64_t state, int64_t group) {
  uint64_t z = state + static_cast<uint64_t>(group + 1) * kGolden;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint32_t DropThreshold(double p) { return static_cast<uint32_t>(std::lround(p * 65536.0)); }

// out[i] = 0 where element i of the stream at `state` falls below the threshold, else
// x[i] * keep. The same keep factor as KeepMask's float multipliers, so the same products.
template <typename T>
void ApplyDropout(const T* x, T* out, int64_t n, uint64_t state, uint32_t threshold, T keep) {
  at::parallel_for(0, (n + 3) / 4, 2048, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) {
      uint64_t z = DropoutDraw(state, g);
      const int64_t last = std::min(n, 4 * g + 4);
      for (int64_t i = 4 * g; i < last; ++i, z >>= 16)
        out[i] = static_cast<uint32_t>(z & 0xFFFF) < threshold ? T(0) : x[i] * keep;
    }
  });
}

torch::Tensor ApplyDropoutTo(const torch::Tensor& x, uint64_t state, double p) {
  const torch::Tensor in = x.contiguous();
  torch::Tensor out = torch::empty_like(in);
  const uint32_t threshold = DropThreshold(p);
  const float keep = static_cast<float>(1.0 / (1.0 - p));
  if (in.scalar_type() == torch::kFloat64)
    ApplyDropout(in.data_ptr<double>(), out.data_ptr<double>(), in.numel(), state, threshold,
                 static_cast<double>(keep));
  else
    ApplyDropout(in.data_ptr<float>(), out.data_ptr<float>(), in.numel(), state, threshold, keep);
  return out;
}

// Dropout as an autograd function whose backward recomputes the mask from the stream state.
struct StreamDropoutFunction : public torch::autograd::Function<StreamDropoutFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, double p,
                               int64_t state) {
    ctx->saved_data["p"] = p;
    ctx->saved_data["state"] = state;
    return ApplyDropoutTo(x, static_cast<uint64_t>(state), p);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const double p = ctx->saved_data["p"].toDouble();
    const uint64_t state = static_cast<uint64_t>(ctx->saved_data["state"].toInt());
    return {ApplyDropoutTo(grad_outputs[0], state, p), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor DropoutStream::KeepMask(int64_t n, double p) {
  torch::Tensor mask = torch::empty({n}, torch::dtype(torch::kFloat32));
  float* out = mask.data_ptr<float>();
  const uint32_t threshold = DropThreshold(p);
  const float keep = static_cast<float>(1.0 / (1.0 - p));
  for (int64_t g = 0; g < (n + 3) / 4; ++g) {
    uint64_t z = DropoutDraw(state, g);
    for (int64_t k = 4 * g; k < std::min(n, 4 * g + 4); ++k, z >>= 16)
      out[k] = static_cast<uint32_t>(z & 0xFFFF) < threshold ? 0.f : keep;
  }
  state += static_cast<uint64_t>((n + 3) / 4) * kGolden;
  return mask;
}

torch::Tensor DropoutStream::Apply(const torch::Tensor& x, double p) {
  const bool fused = x.device().is_cpu() && (x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kFloat64);
  if (!fused) return x * KeepMask(x.numel(), p).view(x.sizes()).to(x.device(), x.scalar_type());
  const uint64_t at = state;
  state += static_cast<uint64_t>((x.numel() + 3) / 4) * kGolden;
  return StreamDropoutFunction::apply(x, p, static_cast<int64_t>(at));
}

LoraProjection::LoraProjection(int64_t in_features, int64_t out_features, const LoraConfig& config,
                               std::shared_ptr<DropoutStream> stream)
    : scale(config.alpha / config.rank), dropout(config.dropout), stream_(std::move(stream)) {
  a = torch::zeros({config.rank, in_features});
  b = torch::zeros({out_features, config.rank});
}

void LoraProjection::Reset(at::Generator& init_generator) {
  torch::NoGradGuard no_grad;
  // kaiming_uniform_(a=sqrt(5)) as nn.Linear and the LoRA reference use: bound = 1/sqrt(fan_in).
  const double bound = 1.0 / std::sqrt(static_cast<double>(a.size(1)));
  a.copy_(UniformLike(a.sizes(), bound, init_generator, a));
  b.zero_();
}

torch::Tensor LoraProjection::Delta(const torch::Tensor& x) {
  torch::Tensor input = x;
  if (training_ && dropout > 0.0) {
    // Inverted dropout with masks from the adapter's own stream (reproducible whatever else
    // uses the global RNG); drawn on the CPU so the masks do not depend on the device.
    input = stream_->Apply(x, dropout);
  }
  // The scale goes on the rank-r intermediate: a pass over [N, r] instead of [N, out].
  return torch::matmul(torch::matmul(input, a.t()) * scale, b.t());
}

// ---------------------------------------------------------------------------------------------
Adapter::~Adapter() = default;

int64_t Adapter::ParameterCount() const {
  int64_t n = 0;
  for (const auto& p : Parameters()) n += p.numel();
  return n;
}

void Adapter::LoadTensors(const sam2::TensorMap& tensors, const std::string& prefix) {
  const auto named = NamedTensors();
  // Validate everything first: a failed load leaves the adapter untouched.
  for (const auto& [name, tensor] : named) {
    const torch::Tensor* source = tensors.Find(prefix + name);
    if (!source) throw Error("adapter file has no tensor '" + prefix + name + "'");
    if (source->sizes() != tensor.sizes()) {
      std::ostringstream msg;
      msg << "adapter tensor '" << prefix << name << "' has shape " << source->sizes() << ", expected "
          << tensor.sizes() << " (was it saved for another model or rank?)";
      throw Error(msg.str());
    }
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : named) {
    torch::Tensor t = tensor;
    t.copy_(tensors.At(prefix + name).to(t.device(), t.scalar_type()));
  }
}

void Adapter::CopyFrom(const Adapter& other) {
  if (other.kind() != kind()) throw Error("cannot copy an adapter of another kind");
  sam2::TensorMap map;
  for (const auto& [name, tensor] : other.NamedTensors()) map.Insert(name, tensor.detach());
  LoadTensors(map);
}

// ---------------------------------------------------------------------------------------------
DecoderLora::DecoderLora(sam2::MaskDecoder& decoder, const AdapterConfig& config) : Adapter(config) {
  const LoraConfig& c = config.lora;
  if (c.rank < 1) throw Error("LoRA rank must be at least 1");
  if (!(c.alpha > 0.0)) throw Error("LoRA alpha must be positive");
  if (!(c.dropout >= 0.0 && c.dropout < 1.0)) throw Error("LoRA dropout must be in [0, 1)");
  if (!c.adapt_q && !c.adapt_k && !c.adapt_v) throw Error("LoRA must adapt at least one of q, k, v");
  if (!decoder) throw Error("LoRA needs a mask decoder");

  dropout_stream_ = std::make_shared<DropoutStream>();
  const torch::Tensor like = decoder->parameters().front();
  for (auto& [path, attention] : decoder->NamedAttentions()) {
    for (sam2::Projection which : {sam2::Projection::kQ, sam2::Projection::kK, sam2::Projection::kV}) {
      if ((which == sam2::Projection::kQ && !c.adapt_q) || (which == sam2::Projection::kK && !c.adapt_k) ||
          (which == sam2::Projection::kV && !c.adapt_v))
        continue;
      torch::nn::Linear& base = attention->projection(which);
      auto lora = std::make_shared<LoraProjection>(base->options.in_features(), base->options.out_features(), c,
                                                   dropout_stream_);
      lora->a = lora->a.to(like.device(), like.scalar_type());
      lora->b = lora->b.to(like.device(), like.scalar_type());
      projections_.emplace_back(path + "." + ProjectionSuffix(which), lora);
      slots_.push_back({attention, which, lora});
    }
  }
  Reset();
  for (auto& [name, lora] : projections_) {
    lora->a.set_requires_grad(true);
    lora->b.set_requires_grad(true);
  }
  Attach(decoder);
}

DecoderLora::~DecoderLora() { Detach(); }

void DecoderLora::Attach(sam2::MaskDecoder& decoder) {
  // Resolved by state-dict path, so an adapter also attaches to another decoder of the same
  // architecture (e.g. a private copy of the model's decoder).
  auto attentions = decoder->NamedAttentions();
  std::vector<Slot> resolved;
  for (size_t i = 0; i < projections_.size(); ++i) {
    const std::string& name = projections_[i].first;
    const std::string attention_path = name.substr(0, name.rfind('.'));
    sam2::Attention* target = nullptr;
    for (auto& [path, attention] : attentions)
      if (path == attention_path) target = &attention;
    if (!target) throw Error("LoRA adapter does not fit this decoder (no attention '" + attention_path + "')");
    torch::nn::Linear& base = (*target)->projection(slots_[i].which);
    if (base->options.in_features() != projections_[i].second->a.size(1) ||
        base->options.out_features() != projections_[i].second->b.size(0))
      throw Error("LoRA adapter does not fit this decoder (projection '" + name + "' has another size)");
    resolved.push_back({*target, slots_[i].which, slots_[i].lora});
  }
  Detach();
  slots_ = std::move(resolved);
  for (auto& slot : slots_) slot.attention->SetAdapter(slot.which, slot.lora);
  attached_ = true;
}

void DecoderLora::Detach() {
  if (!attached_) return;
  for (auto& slot : slots_) {
    if (slot.attention->adapter(slot.which).get() == slot.lora.get()) slot.attention->SetAdapter(slot.which, nullptr);
  }
  attached_ = false;
}

std::vector<torch::Tensor> DecoderLora::Parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& [name, lora] : projections_) {
    out.push_back(lora->a);
    out.push_back(lora->b);
  }
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> DecoderLora::NamedTensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [name, lora] : projections_) {
    out.emplace_back(name + ".lora_A", lora->a);
    out.emplace_back(name + ".lora_B", lora->b);
  }
  return out;
}

void DecoderLora::SetTraining(bool training) {
  for (auto& [name, lora] : projections_) lora->SetTraining(training);
}

void DecoderLora::Reset() {
  // One initialisation stream per adapter, in projection order: the same seed always gives
  // the same A matrices.
  at::Generator init = at::make_generator<at::CPUGeneratorImpl>(config_.seed);
  for (auto& [name, lora] : projections_) lora->Reset(init);
  // Restart the dropout stream too, so a reset adapter trains exactly like a new one.
  dropout_stream_->state = config_.seed * 0x2545F4914F6CDD1Dull + 1;
}

// ---------------------------------------------------------------------------------------------
MemoryAdapter::MemoryAdapter(int64_t channels_in, const AdapterConfig& config)
    : Adapter(config), channels(channels_in) {
  hidden = config.memory.hidden_channels > 0 ? config.memory.hidden_channels : channels / 2;
  if (channels < 1 || hidden < 1) throw Error("memory adapter needs positive channel counts");
  w1 = torch::zeros({hidden, channels, 1, 1});
  b1 = torch::zeros({hidden});
  w2 = torch::zeros({channels, hidden, 1, 1});
  b2 = torch::zeros({channels});
  Reset();
  for (torch::Tensor* t : {&w1, &b1, &w2, &b2}) t->set_requires_grad(true);
}

torch::Tensor MemoryAdapter::AdaptFeatures(const torch::Tensor& x) {
  if (x.dim() != 4 || x.size(1) != channels)
    throw Error("memory adapter expects features [B, " + std::to_string(channels) + ", H, W]");
  const torch::Tensor h = torch::relu(torch::conv2d(x, w1, b1));
  return x + torch::conv2d(h, w2, b2);
}

std::vector<torch::Tensor> MemoryAdapter::Parameters() const { return {w1, b1, w2, b2}; }

std::vector<std::pair<std::string, torch::Tensor>> MemoryAdapter::NamedTensors() const {
  return {{"memory_adapter.conv1.weight", w1},
          {"memory_adapter.conv1.bias", b1},
          {"memory_adapter.conv2.weight", w2},
          {"memory_adapter.conv2.bias", b2}};
}

void MemoryAdapter::Reset() {
  torch::NoGradGuard no_grad;
  at::Generator init = at::make_generator<at::CPUGeneratorImpl>(config_.seed);
  // conv1 as nn.Conv2d initialises itself (bound 1/sqrt(fan_in) for weight and bias); conv2
  // at zero so that a fresh adapter is the identity.
  const double bound = 1.0 / std::sqrt(static_cast<double>(channels));
  w1.copy_(UniformLike(w1.sizes(), bound, init, w1));
  b1.copy_(UniformLike(b1.sizes(), bound, init, b1));
  w2.zero_();
  b2.zero_();
}

std::unique_ptr<Adapter> MakeAdapter(sam2::MaskDecoder& decoder, const AdapterConfig& config) {
  if (config.kind == AdapterKind::kDecoderLora) return std::make_unique<DecoderLora>(decoder, config);
  auto adapter = std::make_unique<MemoryAdapter>(decoder->transformer_dim, config);
  const torch::Tensor like = decoder->parameters().front();
  if (like.device() != adapter->w1.device() || like.scalar_type() != adapter->w1.scalar_type()) {
    for (torch::Tensor* t : {&adapter->w1, &adapter->b1, &adapter->w2, &adapter->b2})
      *t = t->detach().to(like.device(), like.scalar_type()).set_requires_grad(true);
  }
  return adapter;
}

}  // namespace litseg::lit
