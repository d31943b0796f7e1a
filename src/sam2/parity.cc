// RunParity: replays a golden folder's manifest against the engine.
#include <fstream>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "litseg/core/error.h"
#include "litseg/sam2/image_predictor.h"
#include "litseg/sam2/parity.h"
#include "litseg/sam2/precision.h"
#include "litseg/sam2/safetensors.h"
#include "litseg/sam2/sam2_model.h"
#include "parity_internal.h"

namespace litseg::sam2 {
namespace {
namespace fs = std::filesystem;
using Json = nlohmann::json;

Json ReadJson(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read " + path.string());
  try {
    return Json::parse(in);
  } catch (const Json::exception& e) {
    throw Error(path.string() + " is not valid JSON: " + e.what());
  }
}

double ToleranceFor(const std::string& tensor, const ParityTolerances& tol) {
  if (tensor.find("iou") != std::string::npos) return tol.ious;
  if (tensor.find("prompt_labels") != std::string::npos) return 0.0;
  return tol.predictor_logits;
}

std::vector<PromptPoint> ParsePoints(const Json& coords, const Json& labels) {
  std::vector<PromptPoint> points;
  for (size_t i = 0; i < coords.size(); ++i)
    points.push_back({coords[i][0].get<float>(), coords[i][1].get<float>(), labels[i].get<int>()});
  return points;
}

PromptBox ParseBox(const Json& box) {
  return {box[0].get<float>(), box[1].get<float>(), box[2].get<float>(), box[3].get<float>()};
}

// "<low-res logits, see p4_point_plus_mask.mask_input>" -> "p4_point_plus_mask.mask_input"
std::string ReferencedTensor(const std::string& text) {
  const auto see = text.find("see ");
  if (see == std::string::npos) throw Error("cannot resolve argument '" + text + "'");
  std::string name = text.substr(see + 4);
  if (!name.empty() && name.back() == '>') name.pop_back();
  return name;
}

void RunImageEncoderCase(ImagePredictor& predictor, const TensorMap& inputs, const TensorMap& golden,
                         const ParityTolerances& tol, ParityCollector& out) {
  std::map<std::string, torch::Tensor> produced;
  predictor.SetImage(inputs.At("image_u8"),
                     [&](const std::string& name, const torch::Tensor& value) { produced[name] = value.detach(); });
  const ImageFeatures& f = predictor.features();
  for (size_t i = 0; i < f.backbone_fpn.size(); ++i) {
    produced["forward_image.backbone_fpn" + std::to_string(i)] = f.backbone_fpn[i];
    produced["forward_image.vision_pos_enc" + std::to_string(i)] = f.vision_pos_enc[i];
  }
  for (const auto& [name, ref] : golden) {
    auto it = produced.find(name);
    if (it == produced.end()) {
      out.Fail("image_encoder", name, "the port does not produce this tensor");
      continue;
    }
    out.CompareTensor("image_encoder", name, it->second, ref, tol.image_encoder);
  }
}

void RunImagePredictorCases(ImagePredictor& predictor, const Json& manifest, const TensorMap& golden,
                            const ParityTolerances& tol, ParityCollector& out) {
  if (const torch::Tensor* dense_pe = golden.Find("dense_pe"))
    out.CompareTensor("image_predictor", "dense_pe", predictor.model()->sam_prompt_encoder->GetDensePe(), *dense_pe,
                      tol.predictor_logits);
  for (const auto& call : manifest.at("image_predictor_calls")) {
    const std::string tag = call.at("tag");
    const Json& args = call.at("args");
    const bool multimask = args.value("multimask_output", true);
    std::vector<ImagePrompt> prompts;
    try {
      // Batched calls have a list of boxes (or of point lists); single calls one box / one list.
      const bool batched_boxes = args.contains("box") && args["box"][0].is_array();
      const bool batched_points = args.contains("point_coords") && args["point_coords"][0][0].is_array();
      const size_t batch = batched_boxes ? args["box"].size() : batched_points ? args["point_coords"].size() : 1;
      for (size_t b = 0; b < batch; ++b) {
        ImagePrompt p;
        p.multimask = multimask;
        if (args.contains("point_coords")) {
          const Json& coords = batched_points ? args["point_coords"][b] : args["point_coords"];
          const Json& labels = batched_points ? args["point_labels"][b] : args["point_labels"];
          p.points = ParsePoints(coords, labels);
        }
        if (args.contains("box")) p.box = ParseBox(batched_boxes ? args["box"][b] : args["box"]);
        if (args.contains("mask_input")) {
          const torch::Tensor& m = golden.At(ReferencedTensor(args["mask_input"].get<std::string>()));
          p.mask_input = batch > 1 ? m[static_cast<int64_t>(b)] : m;
        }
        prompts.push_back(std::move(p));
      }
    } catch (const std::exception& e) {
      out.Fail(tag, "arguments", std::string("cannot replay the call: ") + e.what());
      continue;
    }
    const std::vector<ImagePrediction> results = predictor.PredictBatch(prompts);
    auto stack = [&](auto field) {
      std::vector<torch::Tensor> parts;
      for (const auto& r : results) parts.push_back(field(r));
      return results.size() == 1 ? parts.front() : torch::stack(parts);
    };
    const MaskDecoderOutput& dec = results.front().decoder;
    std::map<std::string, torch::Tensor> produced{
        {"masks", stack([](const ImagePrediction& r) { return r.masks; })},
        {"iou_predictions", stack([](const ImagePrediction& r) { return r.iou; })},
        {"low_res_masks", stack([](const ImagePrediction& r) { return r.low_res_masks; })},
        {"object_score_logits", dec.object_score_logits},
        {"decoder_all_masks", dec.raw.masks},
        {"decoder_all_ious", dec.raw.iou_pred},
        {"decoder_mask_tokens_out", dec.raw.mask_tokens_out},
    };
    {
      std::vector<torch::Tensor> coords, labels, sparse, dense;
      for (const auto& r : results) {
        coords.push_back(r.point_prompt.coords);
        labels.push_back(r.point_prompt.labels);
        sparse.push_back(r.embeddings.sparse);
        dense.push_back(r.embeddings.dense);
      }
      produced["prompt_coords"] = torch::cat(coords);
      produced["prompt_labels"] = torch::cat(labels);
      produced["sparse_embeddings"] = torch::cat(sparse);
      produced["dense_embeddings"] = torch::cat(dense);
    }
    for (const auto& [name, ref] : golden) {
      if (name.rfind(tag + ".", 0) != 0) continue;
      const std::string field = name.substr(tag.size() + 1);
      if (field == "mask_input") continue;  // an input of this call, replayed above
      auto it = produced.find(field);
      if (it == produced.end()) {
        out.Fail(tag, name, "the port does not produce this tensor");
        continue;
      }
      out.CompareTensor(tag, name, it->second, ref, ToleranceFor(field, tol));
    }
    // Discrete decisions.
    if (multimask) {
      const torch::Tensor& ref_iou = golden.At(tag + ".iou_predictions");
      const torch::Tensor ours = produced["iou_predictions"].reshape(ref_iou.sizes()).cpu();
      const bool same = torch::equal(ours.argmax(-1), ref_iou.argmax(-1));
      out.Decision(tag, "multimask_argmax", same, same ? "" : "best multimask token differs");
    }
    const Json& fallback = call.value("dynamic_fallback_to_multimask", Json());
    if (!fallback.is_null()) {
      bool same = dec.used_multimask_fallback.defined() &&
                  dec.used_multimask_fallback.numel() == static_cast<int64_t>(fallback.size());
      for (size_t b = 0; same && b < fallback.size(); ++b)
        same = dec.used_multimask_fallback[static_cast<int64_t>(b)].item<bool>() == fallback[b].get<bool>();
      out.Decision(tag, "stability_fallback", same, same ? "" : "dynamic multimask fallback differs");
    }
  }
}

}  // namespace

ParityReport RunParity(const ParityOptions& options, const ParityProgressFn& progress) {
  const fs::path golden_dir = options.golden_dir;
  const fs::path manifest_path = golden_dir / "manifest.json";
  if (!fs::exists(manifest_path)) throw Error("not a golden folder (no manifest.json): " + golden_dir.string());
  const Json manifest = ReadJson(manifest_path);

  fs::path config_path = options.config.empty() ? golden_dir.parent_path() / "config.json" : options.config;
  if (config_path.empty() || !fs::exists(config_path))
    throw Error("no model config for the golden set: pass --config (looked for " + config_path.string() + ")");
  Sam2Config config;
  {
    const Json config_json = ReadJson(config_path);
    if (config_json.contains("hydra_config"))
      config = ConfigFromOfficialModelJson(config_json["hydra_config"].dump(), config_path.string());
    else
      config = LoadConfig(config_path.string());
  }
  if (manifest.contains("image_size_S") && manifest["image_size_S"].get<int>() != config.image_size)
    throw Error("manifest image size " + std::to_string(manifest["image_size_S"].get<int>()) +
                " differs from the config's " + std::to_string(config.image_size));
  fs::path weights = options.weights;
  if (weights.empty()) {
    weights = golden_dir.parent_path() / "weights.safetensors";
    if (!fs::exists(weights)) weights = golden_dir.parent_path() / "weights.pt";
  }

  ParityReport report;
  report.golden_dir = golden_dir.string();
  const torch::Device device = ResolveDevice(options.device);
  report.device = device.str() + (options.bf16 ? " (bf16 autocast)" : " (fp32)");
  const ParityTolerances tol = options.bf16 ? ParityTolerances::Bf16() : ParityTolerances();
  ParityCollector out(progress);

  Sam2Model model = LoadSam2Model(config, weights, options.device);
  PrecisionScope precision(options.bf16 ? Precision::kBFloat16 : Precision::kFloat32, device);
  ImagePredictor predictor(model);
  const TensorMap inputs = ReadSafetensors(golden_dir / "inputs.safetensors").tensors;

  if (fs::exists(golden_dir / "image_encoder.safetensors"))
    RunImageEncoderCase(predictor, inputs, ReadSafetensors(golden_dir / "image_encoder.safetensors").tensors, tol, out);
  else
    out.Skip("image_encoder", "*", "the golden folder has no image_encoder.safetensors");

  if (manifest.contains("image_predictor_calls") && fs::exists(golden_dir / "image_predictor.safetensors")) {
    if (!predictor.has_image()) predictor.SetImage(inputs.At("image_u8"));
    RunImagePredictorCases(predictor, manifest, ReadSafetensors(golden_dir / "image_predictor.safetensors").tensors,
                           tol, out);
  }

  // Video-predictor cases: replayed on the tracker (parity_video.cc).
  RunVideoParityCases(model, manifest, golden_dir, inputs, tol, out);
  report.records = out.TakeRecords();
  return report;
}

}  // namespace litseg::sam2
