// The online trainer of live interactive training: learns an adapter (decoder LoRA or memory
// adapter) from the user's corrections while the user works.
//
// Training input of a correction is what the tracker fed the SAM head on that frame: the
// memory-conditioned image features, the high-resolution features and the prompt it used
// (on a tracked frame: no clicks, i.e. the padding point and the no-mask dense embedding) -
// the adapter learns to produce the corrected mask from memory alone. The target is the
// corrected mask resized to the model's image size; the loss is 20 x focal + 1 x dice on the
// decoder's single-mask logits (token 0) upsampled to the image size, after the decoder's
// no-object gating (logits -> -1024 where the object score is <= 0, as the tracker does),
// plus 1 x BCE of the object score (LossWeights::object_score, see loss.h for why).
// Optimiser: AdamW (lr 1e-4, weight decay 0).
//
// Schedules (ScheduleOptions; ParseSchedule names them):
//   "1/1"   one gradient step per correction (the default of our design)
//   "K/K"   a replay buffer of the last K corrections trained jointly (batch K), e.g. 3/3, 5/5
//   "K/1"   the last K corrections one after another (batch 1), e.g. 3/1, 5/1
//   steps_per_correction N repeats any of these N times.
//   "paper" the method's reference code: a new adapter trains 100 epochs on its correction at
//           lr 1e-4; an existing one fine-tunes 20 epochs at lr 5e-5 with replay of its 5 best
//           buffered corrections; up to 3 adapters, a new one when the best adapter's IoU on
//           the correction is <= 0.4; the adapter with the highest predicted IoU proposes.
//
//   litseg::lit::OnlineTrainer trainer(model, {});
//   litseg::lit::DecoderInputs in = litseg::lit::MakeTrackingInputs(model, pix_feat_with_mem, high_res);
//   litseg::lit::TrainReport r = trainer.Train(in, corrected_mask, /*frame=*/12);
//   litseg::lit::Prediction p = trainer.Predict(in_of_next_frame);   // adapted mask logits
//   trainer.Save("bear.lora.safetensors");
//
// The trainer keeps a private copy of the model's mask decoder (frozen: requires_grad off),
// so attaching adapters never changes what the tracker's decoder computes.
// Determinism: initialisation and dropout use the adapter's own seeded generators; on the
// CPU with one thread the same inputs give bit-identical adapters.
// Thread-safety: not thread-safe; use one trainer from one thread at a time. The model is
// only read (at construction, and its prompt encoder by MakeTrackingInputs).
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "litseg/core/mask.h"
#include "litseg/lit/adapter.h"
#include "litseg/lit/loss.h"
#include "litseg/sam2/sam2_model.h"

namespace litseg::lit {

// What the SAM head receives on one frame for one object (batch 1).
struct DecoderInputs {
  torch::Tensor image_embed;                      // [1, d, h, w] memory-conditioned (pix_feat_with_mem)
  std::vector<torch::Tensor> high_res_features;   // {[1, d/8, 4h, 4w], [1, d/4, 2h, 2w]} (empty without)
  torch::Tensor sparse;                           // [1, N, d] prompt tokens
  torch::Tensor dense;                            // [1, d, h, w] dense prompt embedding
  torch::Tensor image_pe;                         // [1, d, h, w] position encoding of the grid
};

// Inputs of a tracked frame (no clicks): the padding point and the no-mask dense embedding,
// exactly as SAM2Base._forward_sam_heads builds them without point or mask inputs.
DecoderInputs MakeTrackingInputs(sam2::Sam2Model& model, const torch::Tensor& pix_feat_with_mem,
                                 const std::vector<torch::Tensor>& high_res_features);
// The inputs of a frame without memory (the tracker's first frame): image features +
// no_mem_embed. rgb: uint8 [H, W, 3], any size (PreprocessImage).
DecoderInputs ComputeNoMemoryInputs(sam2::Sam2Model& model, const torch::Tensor& rgb);

struct Prediction {
  torch::Tensor low_res_logits;  // [B, 1, 4h, 4w] single-mask logits after no-object gating
  torch::Tensor iou;             // [B] predicted IoU of that mask
  torch::Tensor object_score;    // [B] object score logits
  int adapter_index = -1;        // which adapter produced it (-1: the base model)
};

enum class ScheduleKind { kSteps, kPaper };

struct ScheduleOptions {
  ScheduleKind kind = ScheduleKind::kSteps;
  // kSteps:
  int steps_per_correction = 1;  // rounds per correction
  int replay = 1;                // K: the new correction and the K-1 before it
  bool joint = true;             // true: one batch of K per round; false: K steps of batch 1
  // kPaper (the method's reference code):
  int paper_new_epochs = 100;
  double paper_new_lr = 1e-4;
  int paper_finetune_epochs = 20;
  double paper_finetune_lr = 5e-5;
  int paper_replay_best = 5;
  int paper_max_adapters = 3;
  double paper_new_adapter_iou = 0.4;  // a new adapter when the best adapter's IoU is <= this
  int paper_buffer_capacity = 8;       // corrections kept per adapter (oldest dropped)
};

// "1/1", "3/3", "5/5", "3/1", "5/1" (K/batch), optionally "xN" appended for N steps per
// correction ("3/3x2"), or "paper". Throws litseg::Error on anything else.
ScheduleOptions ParseSchedule(const std::string& name);
std::string ScheduleName(const ScheduleOptions& schedule);

struct TrainerOptions {
  AdapterConfig adapter;
  ScheduleOptions schedule;
  double learning_rate = 1e-4;
  double weight_decay = 0.0;
  LossWeights loss;
  bool gate_no_object = true;  // apply the tracker's no-object gating to the trained logits
};

// One training call, as recorded in the adapter's history.
struct TrainReport {
  int frame = -1;
  int object = -1;
  int adapter_index = 0;
  bool new_adapter = false;
  int steps = 0;               // optimiser steps taken
  double loss_before = 0.0;    // loss of the correction before / after training (inference mode)
  double loss_after = 0.0;
  double iou_before = 0.0;     // IoU of the adapted prediction with the correction, at image size
  double iou_after = 0.0;
  // The adapted decoder's object-score logit on the correction before training. At <= 0 the
  // tracker's gating replaces the mask by "no object", so the mask loss has no gradient there
  // (only LossWeights::object_score, off by default, can then move the adapter).
  double object_score_before = 0.0;
  double train_ms = 0.0;       // the optimiser steps (forward + backward + update)
  double total_ms = 0.0;       // including the before/after evaluations
  std::vector<double> step_losses;  // training loss of each step (dropout on)
};

class OnlineTrainer {
 public:
  // Copies the model's mask decoder; the model is not modified. Throws litseg::Error on
  // invalid options.
  OnlineTrainer(sam2::Sam2Model model, TrainerOptions options = {});
  // From a decoder alone (e.g. benchmarks without an image encoder); copies its weights.
  OnlineTrainer(const sam2::Sam2Config& config, const sam2::MaskDecoder& decoder, TrainerOptions options = {});
  ~OnlineTrainer();
  OnlineTrainer(const OnlineTrainer&) = delete;
  OnlineTrainer& operator=(const OnlineTrainer&) = delete;

  // The frozen decoder without any adapter.
  Prediction PredictBase(const DecoderInputs& inputs);
  // The adapted prediction (inference mode: no dropout). With several adapters (paper), the
  // one with the highest predicted IoU. Equals the base before any training.
  Prediction Predict(const DecoderInputs& inputs);
  Prediction PredictWith(int adapter_index, const DecoderInputs& inputs);

  // Learns from one correction (target [1, 1, S, S] from PrepareTarget, or a Mask of any size).
  TrainReport Train(const DecoderInputs& inputs, const torch::Tensor& target, int frame = -1, int object = -1);
  TrainReport Train(const DecoderInputs& inputs, const Mask& corrected, int frame = -1, int object = -1);

  // One optimiser step of adapter `adapter_index` on a batch (inputs and targets of equal
  // count, trained jointly). Returns the training loss. For benchmarks and tests.
  double Step(int adapter_index, const std::vector<DecoderInputs>& inputs, const std::vector<torch::Tensor>& targets);
  // The loss of adapter `adapter_index` (-1: base) on a batch, with autograd (gradients
  // reach the adapter's tensors); training = dropout on. What Step minimises.
  LossTerms ComputeLoss(int adapter_index, const std::vector<DecoderInputs>& inputs,
                        const std::vector<torch::Tensor>& targets, bool training);
  // The loss of adapter `adapter_index` (-1: base) on one sample, inference mode, no gradient.
  LossTerms Evaluate(int adapter_index, const DecoderInputs& inputs, const torch::Tensor& target);

  // All adapters back to fresh (the base model), optimiser state, buffers and history cleared.
  void Reset();

  // Safetensors with the adapter config, trainer options and history in the metadata.
  void Save(const std::filesystem::path& path) const;
  // Replaces the adapters by a file's (its adapter config wins: kind, rank, ...); keeps this
  // trainer's schedule. Throws litseg::Error on a file that is not an adapter of a decoder of
  // this width; the trainer is unchanged then.
  void Load(const std::filesystem::path& path);

  int adapter_count() const { return static_cast<int>(slots_.size()); }
  Adapter& adapter(int index);
  // Whether any training happened since construction, Reset or Load of an untrained file.
  bool trained() const { return trained_; }
  const std::vector<TrainReport>& history() const { return history_; }
  const TrainerOptions& options() const { return options_; }
  sam2::MaskDecoder& decoder() { return decoder_; }
  int image_size() const { return image_size_; }
  // Trainable numbers of one adapter.
  int64_t AdapterParameterCount() const;

 private:
  struct Sample {
    DecoderInputs inputs;
    torch::Tensor target;
    int frame = -1;
  };
  struct Slot {
    std::unique_ptr<Adapter> adapter;
    std::unique_ptr<torch::optim::AdamW> optimizer;
    std::vector<Sample> buffer;  // paper: the corrections this adapter learned from
    int corrections = 0;
  };

  Slot& NewSlot();
  void ResetOptimizer(Slot& slot, double lr);
  Prediction Run(Adapter* adapter, const DecoderInputs& batch, bool training);
  void TrainSteps(const Sample& sample, TrainReport& report);
  void TrainPaper(const Sample& sample, TrainReport& report);

  sam2::Sam2Config config_;
  TrainerOptions options_;
  sam2::MaskDecoder decoder_{nullptr};
  int image_size_ = 0;
  std::vector<Slot> slots_;
  std::deque<Sample> replay_;  // kSteps: the last K corrections
  std::vector<TrainReport> history_;
  bool trained_ = false;
};

// Concatenates single-frame inputs into one batch (image_pe stays [1, ...]).
DecoderInputs StackInputs(const std::vector<DecoderInputs>& inputs);

}  // namespace litseg::lit
