// Trainable adapters of live interactive training (module lit): the SAM 2.1 weights stay
// frozen and one of two small adapters learns from the user's corrections.
//
// * DecoderLora: W = W0 + (alpha / r) * B * A on the q, k and v projections of every
//   attention of the mask decoder's two-way transformer (both blocks' self-attention,
//   token->image and image->token cross-attention, and the final token->image attention).
//   A starts Kaiming-uniform, B at zero, so a fresh adapter changes nothing. Dropout acts on
//   the adapter's input (the base projection sees the undropped input), in training only.
//   At the real decoder width (256, sam2.1_hiera_l) this is 35,328 trainable numbers.
// * MemoryAdapter: a residual bottleneck on the memory-conditioned image features,
//   x + conv2(relu(conv1(x))) with 1x1 convolutions d -> d/2 -> d (256 -> 128 -> 256:
//   65,920 numbers). conv2 starts at zero, so a fresh adapter is the identity too.
//
//   litseg::lit::DecoderLora lora(decoder, {});          // attaches to the decoder's attentions
//   lora.SetTraining(true);                                // dropout on
//   ... decoder->PredictMasks(...) now includes the low-rank deltas ...
//   torch::optim::AdamW opt(lora.Parameters(), torch::optim::AdamWOptions(1e-4));
//   lora.Detach();                                         // the decoder is the base model again
//
// Adapters are not registered in the decoder's modules: the decoder's parameters and state
// dict never change. The adapter owns its tensors and names them for saving (NamedTensors).
//
// Thread-safety: an adapter is not thread-safe. While a DecoderLora is attached, the decoder
// it is attached to must not be used by another thread (the lit trainer keeps a private copy
// of the decoder for this reason).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "litseg/sam2/mask_decoder.h"
#include "litseg/sam2/safetensors.h"

namespace litseg::lit {

enum class AdapterKind { kDecoderLora, kMemoryAdapter };

// "decoder_lora" / "memory_adapter" (the names used in files and on the command line).
std::string AdapterKindName(AdapterKind kind);
// Throws litseg::Error on an unknown name.
AdapterKind ParseAdapterKind(const std::string& name);

// Defaults: the method's (rank 4, alpha 4, dropout 0.1 on q, k and v).
struct LoraConfig {
  int rank = 4;
  double alpha = 4.0;
  double dropout = 0.1;  // probability of zeroing an input element of the adapter (training only)
  bool adapt_q = true;
  bool adapt_k = true;
  bool adapt_v = true;
};

struct MemoryAdapterConfig {
  int hidden_channels = 0;  // 0 = half the feature width (128 at 256)
};

// Everything an adapter needs to build itself; serialised into adapter files.
struct AdapterConfig {
  AdapterKind kind = AdapterKind::kDecoderLora;
  LoraConfig lora;
  MemoryAdapterConfig memory;
  uint64_t seed = 0;  // initialisation and dropout masks
};

// JSON text of a config and back (throws litseg::Error on malformed text).
std::string AdapterConfigToJson(const AdapterConfig& config);
AdapterConfig AdapterConfigFromJson(const std::string& json_text);

// The random stream of the dropout masks (SplitMix64, one 64-bit draw per four elements):
// seeded per adapter, independent of the global RNG, of the device and of the thread count.
// Draw k of a call is a function of (state, k) alone, so a mask can be computed in parallel
// and computed again in the backward pass instead of being stored: Apply fuses the mask into
// the one pass over the input (drawing a 1M-element mask and multiplying cost ~1.5 ms per
// projection, eight image-sized projections per step; torch's bernoulli_ cost several ms).
struct DropoutStream {
  uint64_t state = 0;
  // Inverted-dropout multipliers for n elements: 0 with probability p (quantised to
  // 1/65536), else 1 / (1 - p). Advances the stream by n elements.
  torch::Tensor KeepMask(int64_t n, double p);
  // x * KeepMask(x.numel(), p).view(x.sizes()), differentiable in x, the same numbers; on the
  // CPU without materialising the mask. Advances the stream by x.numel() elements.
  torch::Tensor Apply(const torch::Tensor& x, double p);
};

// One low-rank delta on one projection: Delta(x) = scale * dropout(x) A^T B^T.
class LoraProjection : public sam2::ProjectionAdapter {
 public:
  // A [rank, in], B [out, rank]; `stream` draws the dropout masks (shared per adapter).
  LoraProjection(int64_t in_features, int64_t out_features, const LoraConfig& config,
                 std::shared_ptr<DropoutStream> stream);
  torch::Tensor Delta(const torch::Tensor& x) override;

  // A Kaiming-uniform (bound 1/sqrt(in), the nn.Linear default), B zero.
  void Reset(at::Generator& init_generator);
  void SetTraining(bool training) { training_ = training; }

  torch::Tensor a, b;
  double scale;
  double dropout;

 private:
  bool training_ = false;
  std::shared_ptr<DropoutStream> stream_;
};

// The common interface of both adapter kinds, as the trainer uses them.
class Adapter {
 public:
  virtual ~Adapter();
  virtual AdapterKind kind() const = 0;
  const AdapterConfig& config() const { return config_; }

  // The features the decoder receives: identity for LoRA, the bottleneck for the memory adapter.
  virtual torch::Tensor AdaptFeatures(const torch::Tensor& image_embed) = 0;
  // Installs / removes the adapter's hooks in `decoder` (LoRA), no-op for the memory adapter.
  virtual void Attach(sam2::MaskDecoder& decoder) = 0;
  virtual void Detach() = 0;

  // Trainable tensors (requires_grad), in a fixed order.
  virtual std::vector<torch::Tensor> Parameters() const = 0;
  // Trainable tensors with stable names, for files.
  virtual std::vector<std::pair<std::string, torch::Tensor>> NamedTensors() const = 0;
  int64_t ParameterCount() const;

  // Dropout on (training) or off (inference).
  virtual void SetTraining(bool training) = 0;
  // Back to the freshly initialised state (from config().seed): the adapted model equals the base.
  virtual void Reset() = 0;

  // Copies values from `tensors` (names as NamedTensors); throws litseg::Error naming a
  // missing tensor or a shape mismatch and leaves the adapter unchanged in that case.
  void LoadTensors(const sam2::TensorMap& tensors, const std::string& prefix = "");
  // Copies the values of another adapter of the same kind and shapes.
  void CopyFrom(const Adapter& other);

 protected:
  explicit Adapter(AdapterConfig config) : config_(std::move(config)) {}
  AdapterConfig config_;
};

class DecoderLora : public Adapter {
 public:
  // Builds one LoraProjection per adapted projection of decoder's attentions and attaches
  // them. Throws litseg::Error on rank < 1, alpha <= 0, dropout outside [0, 1) or no projection selected.
  DecoderLora(sam2::MaskDecoder& decoder, const AdapterConfig& config);
  ~DecoderLora() override;

  AdapterKind kind() const override { return AdapterKind::kDecoderLora; }
  torch::Tensor AdaptFeatures(const torch::Tensor& image_embed) override { return image_embed; }
  void Attach(sam2::MaskDecoder& decoder) override;
  void Detach() override;
  std::vector<torch::Tensor> Parameters() const override;
  std::vector<std::pair<std::string, torch::Tensor>> NamedTensors() const override;
  void SetTraining(bool training) override;
  void Reset() override;

  // "transformer.layers.0.self_attn.q_proj" -> its projection adapter.
  const std::vector<std::pair<std::string, std::shared_ptr<LoraProjection>>>& projections() const {
    return projections_;
  }

 private:
  struct Slot {
    sam2::Attention attention;
    sam2::Projection which;
    std::shared_ptr<LoraProjection> lora;
  };
  std::vector<std::pair<std::string, std::shared_ptr<LoraProjection>>> projections_;
  std::vector<Slot> slots_;
  bool attached_ = false;
  std::shared_ptr<DropoutStream> dropout_stream_;
};

class MemoryAdapter : public Adapter {
 public:
  // channels = the decoder width (d_model). Throws litseg::Error on non-positive sizes.
  MemoryAdapter(int64_t channels, const AdapterConfig& config);

  AdapterKind kind() const override { return AdapterKind::kMemoryAdapter; }
  torch::Tensor AdaptFeatures(const torch::Tensor& image_embed) override;
  void Attach(sam2::MaskDecoder&) override {}
  void Detach() override {}
  std::vector<torch::Tensor> Parameters() const override;
  std::vector<std::pair<std::string, torch::Tensor>> NamedTensors() const override;
  void SetTraining(bool) override {}
  void Reset() override;

  int64_t channels;
  int64_t hidden;
  // 1x1 convolutions as matrices: w1 [hidden, C], b1 [hidden], w2 [C, hidden], b2 [C].
  torch::Tensor w1, b1, w2, b2;
};

// Builds the adapter `config.kind` for a decoder of width decoder->transformer_dim (LoRA
// attaches to `decoder`).
std::unique_ptr<Adapter> MakeAdapter(sam2::MaskDecoder& decoder, const AdapterConfig& config);

}  // namespace litseg::lit
