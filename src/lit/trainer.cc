#include "litseg/lit/trainer.h"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <regex>
#include <sstream>

#include "litseg/core/error.h"
#include "litseg/sam2/preprocess.h"

namespace litseg::lit {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// The tracker's no-object score (sam2_base.py NO_OBJ_SCORE).
constexpr double kNoObjectScore = -1024.0;

void CheckInputs(const DecoderInputs& in, int64_t d) {
  auto bad = [&](const char* what) {
    throw Error(std::string("decoder inputs: ") + what + " is missing or has the wrong shape");
  };
  if (!in.image_embed.defined() || in.image_embed.dim() != 4 || in.image_embed.size(1) != d) bad("image_embed");
  if (!in.sparse.defined() || in.sparse.dim() != 3 || in.sparse.size(2) != d) bad("sparse");
  if (!in.dense.defined() || in.dense.dim() != 4) bad("dense");
  if (!in.image_pe.defined() || in.image_pe.dim() != 4) bad("image_pe");
}

DecoderInputs Detached(const DecoderInputs& in) {
  DecoderInputs out;
  out.image_embed = in.image_embed.detach();
  for (const auto& t : in.high_res_features) out.high_res_features.push_back(t.detach());
  out.sparse = in.sparse.detach();
  out.dense = in.dense.detach();
  out.image_pe = in.image_pe.detach();
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
DecoderInputs MakeTrackingInputs(sam2::Sam2Model& model, const torch::Tensor& pix_feat_with_mem,
                                 const std::vector<torch::Tensor>& high_res_features) {
  if (!model) throw Error("MakeTrackingInputs needs a model");
  torch::NoGradGuard no_grad;
  const torch::Device device = pix_feat_with_mem.device();
  DecoderInputs in;
  in.image_embed = pix_feat_with_mem.detach();
  for (const auto& t : high_res_features) in.high_res_features.push_back(t.detach());
  // _forward_sam_heads without point inputs: one point at (0, 0) with label -1; the prompt
  // encoder appends a second padding point (no boxes); no mask -> no_mask_embed.
  const torch::Tensor coords = torch::zeros({1, 1, 2}, torch::dtype(torch::kFloat32).device(device));
  const torch::Tensor labels = -torch::ones({1, 1}, torch::dtype(torch::kInt32).device(device));
  const sam2::PromptEmbeddings e = model->sam_prompt_encoder->forward(coords, labels, {}, {});
  in.sparse = e.sparse;
  in.dense = e.dense;
  in.image_pe = model->sam_prompt_encoder->GetDensePe();
  CheckInputs(in, model->config.d_model());
  return in;
}

DecoderInputs ComputeNoMemoryInputs(sam2::Sam2Model& model, const torch::Tensor& rgb) {
  if (!model) throw Error("ComputeNoMemoryInputs needs a model");
  torch::NoGradGuard no_grad;
  const torch::Device device = model->parameters().front().device();
  const sam2::ImageFeatures f = model->ForwardImage(sam2::PreprocessImage(rgb.to(device), model->config.image_size));
  torch::Tensor embed = f.vision_features;
  if (model->config.directly_add_no_mem_embed) embed = embed + model->no_mem_embed.view({1, -1, 1, 1});
  std::vector<torch::Tensor> high_res;
  if (model->config.use_high_res_features_in_sam) high_res = {f.backbone_fpn[0], f.backbone_fpn[1]};
  return MakeTrackingInputs(model, embed, high_res);
}

DecoderInputs StackInputs(const std::vector<DecoderInputs>& inputs) {
  if (inputs.empty()) throw Error("no inputs to stack");
  if (inputs.size() == 1) return inputs.front();
  DecoderInputs out;
  std::vector<torch::Tensor> embeds, sparse, dense;
  std::vector<std::vector<torch::Tensor>> high(inputs.front().high_res_features.size());
  for (const auto& in : inputs) {
    if (in.high_res_features.size() != high.size()) throw Error("inputs disagree on high-resolution features");
    embeds.push_back(in.image_embed);
    sparse.push_back(in.sparse);
    dense.push_back(in.dense);
    for (size_t i = 0; i < high.size(); ++i) high[i].push_back(in.high_res_features[i]);
  }
  out.image_embed = torch::cat(embeds, 0);
  out.sparse = torch::cat(sparse, 0);
  out.dense = torch::cat(dense, 0);
  for (auto& level : high) out.high_res_features.push_back(torch::cat(level, 0));
  out.image_pe = inputs.front().image_pe;
  return out;
}

// ---------------------------------------------------------------------------------------------
ScheduleOptions ParseSchedule(const std::string& name) {
  ScheduleOptions s;
  if (name == "paper") {
    s.kind = ScheduleKind::kPaper;
    return s;
  }
  static const std::regex pattern(R"((\d+)/(\d+)(?:x(\d+))?)");
  std::smatch m;
  if (!std::regex_match(name, m, pattern))
    throw Error("unknown schedule '" + name + "' (expected K/K, K/1 such as 1/1, 3/3, 5/1, optionally xN, or paper)");
  const int k = std::stoi(m[1].str());
  const int batch = std::stoi(m[2].str());
  if (k < 1 || k > 64) throw Error("schedule '" + name + "': replay size must be 1..64");
  if (batch != k && batch != 1) throw Error("schedule '" + name + "': batch must be K (joint) or 1 (one after another)");
  s.replay = k;
  s.joint = batch == k;
  if (m[3].matched) {
    s.steps_per_correction = std::stoi(m[3].str());
    if (s.steps_per_correction < 1 || s.steps_per_correction > 10000)
      throw Error("schedule '" + name + "': steps per correction must be 1..10000");
  }
  return s;
}

std::string ScheduleName(const ScheduleOptions& s) {
  if (s.kind == ScheduleKind::kPaper) return "paper";
  std::string name = std::to_string(s.replay) + "/" + std::to_string(s.joint ? s.replay : 1);
  if (s.steps_per_correction != 1) name += "x" + std::to_string(s.steps_per_correction);
  return name;
}

// ---------------------------------------------------------------------------------------------
OnlineTrainer::OnlineTrainer(sam2::Sam2Model model, TrainerOptions options)
    : OnlineTrainer(model ? model->config : sam2::Sam2Config{},
                    model ? model->sam_mask_decoder : throw Error("the online trainer needs a model"),
                    std::move(options)) {}

OnlineTrainer::OnlineTrainer(const sam2::Sam2Config& config, const sam2::MaskDecoder& source_decoder,
                             TrainerOptions options)
    : config_(config), options_(std::move(options)) {
  if (!source_decoder) throw Error("the online trainer needs a mask decoder");
  const ScheduleOptions& s = options_.schedule;
  if (s.steps_per_correction < 1 || s.replay < 1) throw Error("schedule: steps and replay size must be at least 1");
  if (s.kind == ScheduleKind::kPaper &&
      (s.paper_max_adapters < 1 || s.paper_new_epochs < 1 || s.paper_finetune_epochs < 0 || s.paper_buffer_capacity < 1))
    throw Error("paper schedule: invalid epochs, adapter count or buffer size");
  if (!(options_.learning_rate > 0.0)) throw Error("learning rate must be positive");
  if (options_.weight_decay < 0.0) throw Error("weight decay must not be negative");

  image_size_ = config_.image_size;
  // A private, frozen copy of the decoder: adapters attach to it, never to the model's.
  decoder_ = sam2::MaskDecoder(config_);
  {
    torch::NoGradGuard no_grad;
    const auto source = source_decoder->named_parameters(/*recurse=*/true);
    for (auto& p : decoder_->named_parameters(true)) p.value().copy_(source[p.key()]);
    const auto source_buffers = source_decoder->named_buffers(true);
    for (auto& b : decoder_->named_buffers(true)) b.value().copy_(source_buffers[b.key()]);
  }
  const torch::Tensor like = source_decoder->parameters().front();
  decoder_->to(like.device(), like.scalar_type());
  for (auto& p : decoder_->parameters()) p.set_requires_grad(false);
  decoder_->eval();

  if (s.kind == ScheduleKind::kSteps) NewSlot();
}

OnlineTrainer::~OnlineTrainer() {
  for (auto& slot : slots_) slot.adapter->Detach();
}

OnlineTrainer::Slot& OnlineTrainer::NewSlot() {
  AdapterConfig config = options_.adapter;
  // Each adapter of a multi-adapter schedule starts from its own seed.
  config.seed = options_.adapter.seed + 1000 * slots_.size();
  Slot slot;
  slot.adapter = MakeAdapter(decoder_, config);
  slot.adapter->Detach();
  slots_.push_back(std::move(slot));
  ResetOptimizer(slots_.back(), options_.learning_rate);
  return slots_.back();
}

void OnlineTrainer::ResetOptimizer(Slot& slot, double lr) {
  slot.optimizer = std::make_unique<torch::optim::AdamW>(
      slot.adapter->Parameters(), torch::optim::AdamWOptions(lr).weight_decay(options_.weight_decay));
}

Adapter& OnlineTrainer::adapter(int index) {
  if (index < 0 || index >= adapter_count()) throw Error("no adapter " + std::to_string(index));
  return *slots_[index].adapter;
}

int64_t OnlineTrainer::AdapterParameterCount() const {
  if (!slots_.empty()) return slots_.front().adapter->ParameterCount();
  // Paper schedule before its first adapter: count a temporary one.
  auto probe = MakeAdapter(const_cast<sam2::MaskDecoder&>(decoder_), options_.adapter);
  probe->Detach();
  return probe->ParameterCount();
}

// Runs the decoder with `adapter` attached (nullptr: the base model) and returns the gated
// single-mask logits [B, 1, 4h, 4w] (with autograd when training).

Prediction OnlineTrainer::Run(Adapter* adapter, const DecoderInputs& in, bool training) {
  CheckInputs(in, decoder_->transformer_dim);
  struct AttachGuard {
    Adapter* adapter;
    AttachGuard(Adapter* a, sam2::MaskDecoder& d, bool training) : adapter(a) {
      if (adapter) {
        adapter->Attach(d);
        adapter->SetTraining(training);
      }
    }
    ~AttachGuard() {
      if (adapter) {
        adapter->SetTraining(false);
        adapter->Detach();
      }
    }
  } guard(adapter, decoder_, training);

  const torch::Tensor features = adapter ? adapter->AdaptFeatures(in.image_embed) : in.image_embed;
  sam2::MaskDecoderRawOutput raw = decoder_->PredictMasks(features, in.image_pe, in.sparse, in.dense,
                                                          /*repeat_image=*/false, in.high_res_features);
  Prediction p;
  torch::Tensor logits = raw.masks.narrow(1, 0, 1);
  p.object_score = raw.object_score_logits.view({-1});
  if (options_.gate_no_object && config_.pred_obj_scores) {
    // _forward_sam_heads: a hard choice between the mask and "no object".
    const torch::Tensor present = raw.object_score_logits.gt(0).view({-1, 1, 1, 1});
    logits = torch::where(present, logits, torch::full_like(logits, kNoObjectScore));
  }
  p.low_res_logits = logits;
  p.iou = raw.iou_pred.select(1, 0);
  return p;
}

Prediction OnlineTrainer::PredictBase(const DecoderInputs& inputs) {
  torch::NoGradGuard no_grad;
  return Run(nullptr, inputs, false);
}

Prediction OnlineTrainer::PredictWith(int adapter_index, const DecoderInputs& inputs) {
  torch::NoGradGuard no_grad;
  if (adapter_index < 0) return PredictBase(inputs);
  Prediction p = Run(&adapter(adapter_index), inputs, false);
  p.adapter_index = adapter_index;
  return p;
}

Prediction OnlineTrainer::Predict(const DecoderInputs& inputs) {
  if (slots_.empty()) return PredictBase(inputs);
  if (slots_.size() == 1) return PredictWith(0, inputs);
  // Several adapters (paper): the one the decoder itself trusts most proposes.
  Prediction best;
  for (int i = 0; i < adapter_count(); ++i) {
    Prediction p = PredictWith(i, inputs);
    if (best.adapter_index < 0 || p.iou.item<double>() > best.iou.item<double>()) best = std::move(p);
  }
  return best;
}

LossTerms OnlineTrainer::Evaluate(int adapter_index, const DecoderInputs& inputs, const torch::Tensor& target) {
  torch::NoGradGuard no_grad;
  const Prediction p = adapter_index < 0 ? PredictBase(inputs) : PredictWith(adapter_index, inputs);
  return SegmentationLoss(UpsampleLogits(p.low_res_logits, image_size_), target, options_.loss, p.object_score);
}

LossTerms OnlineTrainer::ComputeLoss(int adapter_index, const std::vector<DecoderInputs>& inputs,
                                     const std::vector<torch::Tensor>& targets, bool training) {
  if (inputs.empty() || inputs.size() != targets.size()) throw Error("a training step needs one target per input");
  Adapter* a = adapter_index < 0 ? nullptr : &adapter(adapter_index);
  const DecoderInputs batch = StackInputs(inputs);
  const torch::Tensor target = targets.size() == 1 ? targets.front() : torch::cat(targets, 0);
  const Prediction p = Run(a, batch, training);
  return SegmentationLoss(UpsampleLogits(p.low_res_logits, image_size_), target.to(p.low_res_logits.scalar_type()),
                          options_.loss, p.object_score);
}

double OnlineTrainer::Step(int adapter_index, const std::vector<DecoderInputs>& inputs,
                           const std::vector<torch::Tensor>& targets) {
  adapter(adapter_index);  // validates the index
  Slot& slot = slots_[adapter_index];
  const LossTerms loss = ComputeLoss(adapter_index, inputs, targets, /*training=*/true);
  slot.optimizer->zero_grad();
  loss.total.backward();
  slot.optimizer->step();
  return loss.total.item<double>();
}

TrainReport OnlineTrainer::Train(const DecoderInputs& inputs, const Mask& corrected, int frame, int object) {
  return Train(inputs, PrepareTarget(corrected, image_size_), frame, object);
}

TrainReport OnlineTrainer::Train(const DecoderInputs& inputs, const torch::Tensor& target, int frame, int object) {
  CheckInputs(inputs, decoder_->transformer_dim);
  if (inputs.image_embed.size(0) != 1) throw Error("a correction is one frame (batch 1)");
  if (!target.defined() || target.dim() != 4 || target.size(0) != 1 || target.size(1) != 1 ||
      target.size(2) != image_size_ || target.size(3) != image_size_)
    throw Error("a correction target must be [1, 1, " + std::to_string(image_size_) + ", " +
                std::to_string(image_size_) + "] (see PrepareTarget)");
  const auto start = Clock::now();
  Sample sample{Detached(inputs), target.detach().to(inputs.image_embed.device(), inputs.image_embed.scalar_type()),
                frame};
  TrainReport report;
  report.frame = frame;
  report.object = object;
  if (options_.schedule.kind == ScheduleKind::kPaper)
    TrainPaper(sample, report);
  else
    TrainSteps(sample, report);
  trained_ = true;
  report.total_ms = MsSince(start);
  history_.push_back(report);
  return report;
}

void OnlineTrainer::TrainSteps(const Sample& sample, TrainReport& report) {
  const ScheduleOptions& s = options_.schedule;
  Slot& slot = slots_.front();
  report.adapter_index = 0;
  {
    torch::NoGradGuard no_grad;
    const Prediction before = PredictWith(0, sample.inputs);
    const torch::Tensor up = UpsampleLogits(before.low_res_logits, image_size_);
    report.loss_before = SegmentationLoss(up, sample.target, options_.loss, before.object_score).total.item<double>();
    report.iou_before = MaskIoU(up, sample.target).item<double>();
    report.object_score_before = before.object_score.item<double>();
  }
  replay_.push_back(sample);
  while (static_cast<int>(replay_.size()) > s.replay) replay_.pop_front();

  const auto train_start = Clock::now();
  for (int round = 0; round < s.steps_per_correction; ++round) {
    if (s.joint) {
      std::vector<DecoderInputs> in;
      std::vector<torch::Tensor> targets;
      for (const auto& r : replay_) {
        in.push_back(r.inputs);
        targets.push_back(r.target);
      }
      report.step_losses.push_back(Step(0, in, targets));
      ++report.steps;
    } else {
      // Oldest first, so the newest correction has the last word.
      for (const auto& r : replay_) {
        report.step_losses.push_back(Step(0, {r.inputs}, {r.target}));
        ++report.steps;
      }
    }
  }
  report.train_ms = MsSince(train_start);
  ++slot.corrections;
  {
    torch::NoGradGuard no_grad;
    const Prediction after = PredictWith(0, sample.inputs);
    const torch::Tensor up = UpsampleLogits(after.low_res_logits, image_size_);
    report.loss_after = SegmentationLoss(up, sample.target, options_.loss, after.object_score).total.item<double>();
    report.iou_after = MaskIoU(up, sample.target).item<double>();
  }
}

void OnlineTrainer::TrainPaper(const Sample& sample, TrainReport& report) {
  const ScheduleOptions& s = options_.schedule;
  // Which adapter fits this correction best (IoU of its prediction at image size)?
  auto iou_of = [&](int index, const Sample& x) {
    torch::NoGradGuard no_grad;
    const Prediction p = PredictWith(index, x.inputs);
    return MaskIoU(UpsampleLogits(p.low_res_logits, image_size_), x.target).item<double>();
  };
  int best = -1;
  double best_iou = -1.0;
  for (int i = 0; i < adapter_count(); ++i) {
    const double iou = iou_of(i, sample);
    if (iou > best_iou) {
      best_iou = iou;
      best = i;
    }
  }
  const bool create = best < 0 || (best_iou <= s.paper_new_adapter_iou && adapter_count() < s.paper_max_adapters);
  int index = best;
  int epochs = s.paper_finetune_epochs;
  std::vector<const Sample*> batch{&sample};
  if (create) {
    NewSlot();
    index = adapter_count() - 1;
    epochs = s.paper_new_epochs;
    ResetOptimizer(slots_[index], s.paper_new_lr);
  } else {
    ResetOptimizer(slots_[index], s.paper_finetune_lr);
    // Replay the buffered corrections this adapter reproduces best.
    std::vector<std::pair<double, const Sample*>> ranked;
    for (const auto& b : slots_[index].buffer) ranked.emplace_back(iou_of(index, b), &b);
    std::stable_sort(ranked.begin(), ranked.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
    for (size_t i = 0; i < ranked.size() && static_cast<int>(i) < s.paper_replay_best; ++i)
      batch.push_back(ranked[i].second);
  }
  report.adapter_index = index;
  report.new_adapter = create;
  {
    torch::NoGradGuard no_grad;
    const Prediction before = PredictWith(index, sample.inputs);
    const torch::Tensor up = UpsampleLogits(before.low_res_logits, image_size_);
    report.loss_before = SegmentationLoss(up, sample.target, options_.loss, before.object_score).total.item<double>();
    report.iou_before = MaskIoU(up, sample.target).item<double>();
    report.object_score_before = before.object_score.item<double>();
  }
  std::vector<DecoderInputs> in;
  std::vector<torch::Tensor> targets;
  for (const Sample* b : batch) {
    in.push_back(b->inputs);
    targets.push_back(b->target);
  }
  const auto train_start = Clock::now();
  for (int e = 0; e < epochs; ++e) {
    report.step_losses.push_back(Step(index, in, targets));
    ++report.steps;
  }
  report.train_ms = MsSince(train_start);
  Slot& slot = slots_[index];
  slot.buffer.push_back(sample);
  if (static_cast<int>(slot.buffer.size()) > s.paper_buffer_capacity) slot.buffer.erase(slot.buffer.begin());
  ++slot.corrections;
  {
    torch::NoGradGuard no_grad;
    const Prediction after = PredictWith(index, sample.inputs);
    const torch::Tensor up = UpsampleLogits(after.low_res_logits, image_size_);
    report.loss_after = SegmentationLoss(up, sample.target, options_.loss, after.object_score).total.item<double>();
    report.iou_after = MaskIoU(up, sample.target).item<double>();
  }
}

void OnlineTrainer::Reset() {
  for (auto& slot : slots_) slot.adapter->Detach();
  slots_.clear();
  replay_.clear();
  history_.clear();
  trained_ = false;
  if (options_.schedule.kind == ScheduleKind::kSteps) NewSlot();
}

}  // namespace litseg::lit
