// OnlineTrainer::Save / Load: adapters as safetensors files.
//
// Tensors: "adapters.<i>.<name>" for each adapter i (names as Adapter::NamedTensors, e.g.
// "adapters.0.transformer.layers.0.self_attn.q_proj.lora_A"). Metadata (all strings):
//   format "litseg-lit-adapter", format_version "1", adapter_config (JSON), adapter_count,
//   decoder_width, image_size, schedule, trainer (JSON: lr, weight decay, loss weights),
//   corrections (JSON array: corrections learned per adapter), history (JSON array of
//   training records).
#include <nlohmann/json.hpp>

#include "litseg/core/error.h"
#include "litseg/lit/trainer.h"
#include "litseg/sam2/safetensors.h"

namespace litseg::lit {
namespace {

using Json = nlohmann::json;
constexpr const char* kFormat = "litseg-lit-adapter";

Json HistoryJson(const std::vector<TrainReport>& history) {
  Json out = Json::array();
  for (const auto& r : history) {
    out.push_back({{"frame", r.frame},
                   {"object", r.object},
                   {"adapter", r.adapter_index},
                   {"new_adapter", r.new_adapter},
                   {"steps", r.steps},
                   {"loss_before", r.loss_before},
                   {"loss_after", r.loss_after},
                   {"iou_before", r.iou_before},
                   {"iou_after", r.iou_after},
                   {"object_score_before", r.object_score_before},
                   {"train_ms", r.train_ms}});
  }
  return out;
}

std::vector<TrainReport> HistoryFromJson(const Json& j) {
  std::vector<TrainReport> out;
  for (const auto& e : j) {
    TrainReport r;
    r.frame = e.at("frame").get<int>();
    r.object = e.at("object").get<int>();
    r.adapter_index = e.at("adapter").get<int>();
    r.new_adapter = e.at("new_adapter").get<bool>();
    r.steps = e.at("steps").get<int>();
    r.loss_before = e.at("loss_before").get<double>();
    r.loss_after = e.at("loss_after").get<double>();
    r.iou_before = e.at("iou_before").get<double>();
    r.iou_after = e.at("iou_after").get<double>();
    r.object_score_before = e.value("object_score_before", 0.0);  // absent in older files
    r.train_ms = e.at("train_ms").get<double>();
    out.push_back(r);
  }
  return out;
}

const std::string& Meta(const std::map<std::string, std::string>& meta, const std::string& key,
                        const std::string& file) {
  auto it = meta.find(key);
  if (it == meta.end()) throw Error(file + " is not a litseg adapter file (no '" + key + "' in its metadata)");
  return it->second;
}

}  // namespace

void OnlineTrainer::Save(const std::filesystem::path& path) const {
  sam2::TensorMap tensors;
  Json corrections = Json::array();
  for (size_t i = 0; i < slots_.size(); ++i) {
    for (const auto& [name, tensor] : slots_[i].adapter->NamedTensors())
      tensors.Insert("adapters." + std::to_string(i) + "." + name, tensor.detach().to(torch::kCPU, torch::kFloat32));
    corrections.push_back(slots_[i].corrections);
  }
  const Json trainer = {{"learning_rate", options_.learning_rate},
                        {"weight_decay", options_.weight_decay},
                        {"focal_weight", options_.loss.focal},
                        {"dice_weight", options_.loss.dice},
                        {"focal_alpha", options_.loss.focal_alpha},
                        {"focal_gamma", options_.loss.focal_gamma},
                        {"gate_no_object", options_.gate_no_object}};
  const std::map<std::string, std::string> metadata = {
      {"format", kFormat},
      {"format_version", "1"},
      {"adapter_config", AdapterConfigToJson(options_.adapter)},
      {"adapter_count", std::to_string(slots_.size())},
      {"decoder_width", std::to_string(decoder_->transformer_dim)},
      {"image_size", std::to_string(image_size_)},
      {"schedule", ScheduleName(options_.schedule)},
      {"trainer", trainer.dump()},
      {"corrections", corrections.dump()},
      {"history", HistoryJson(history_).dump()},
  };
  sam2::SaveSafetensors(path, tensors, metadata);
}

void OnlineTrainer::Load(const std::filesystem::path& path) {
  const std::string file = path.string();
  const sam2::SafetensorsFile f = sam2::ReadSafetensors(path);
  if (Meta(f.metadata, "format", file) != kFormat) throw Error(file + " is not a litseg adapter file");
  if (Meta(f.metadata, "format_version", file) != "1")
    throw Error(file + ": unsupported adapter file version " + f.metadata.at("format_version"));
  const int width = std::stoi(Meta(f.metadata, "decoder_width", file));
  if (width != decoder_->transformer_dim)
    throw Error(file + " holds an adapter for a decoder of width " + std::to_string(width) + ", this model's is " +
                std::to_string(decoder_->transformer_dim));
  const int count = std::stoi(Meta(f.metadata, "adapter_count", file));
  if (count < 0 || count > 64) throw Error(file + ": implausible adapter count");
  AdapterConfig config = AdapterConfigFromJson(Meta(f.metadata, "adapter_config", file));
  std::vector<TrainReport> history;
  Json corrections;
  try {
    history = HistoryFromJson(Json::parse(Meta(f.metadata, "history", file)));
    corrections = Json::parse(Meta(f.metadata, "corrections", file));
  } catch (const Json::exception& e) {
    throw Error(file + ": damaged adapter metadata (" + e.what() + ")");
  }

  // Build the new adapters aside; the trainer only changes once everything loaded.
  TrainerOptions new_options = options_;
  new_options.adapter = config;
  std::vector<Slot> loaded;
  for (int i = 0; i < count; ++i) {
    AdapterConfig c = config;
    c.seed = config.seed + 1000 * i;
    Slot slot;
    slot.adapter = MakeAdapter(decoder_, c);
    slot.adapter->Detach();
    slot.adapter->LoadTensors(f.tensors, "adapters." + std::to_string(i) + ".");
    if (corrections.is_array() && i < static_cast<int>(corrections.size())) slot.corrections = corrections[i].get<int>();
    loaded.push_back(std::move(slot));
  }
  if (options_.schedule.kind == ScheduleKind::kSteps && count != 1)
    throw Error(file + " holds " + std::to_string(count) + " adapters; this schedule uses exactly one (use the paper schedule)");

  for (auto& slot : slots_) slot.adapter->Detach();
  options_ = new_options;
  slots_ = std::move(loaded);
  for (auto& slot : slots_) ResetOptimizer(slot, options_.learning_rate);
  replay_.clear();
  history_ = std::move(history);
  trained_ = !history_.empty();
}

}  // namespace litseg::lit
