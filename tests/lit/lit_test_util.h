// Shared helpers of the lit tests: the micro SAM 2.1 model of ../shared/sam2/micro and real
// DAVIS-2016 frames with their human masks.
#pragma once

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "common/shared_data.h"
#include "litseg/core/error.h"
#include "litseg/core/mask_io.h"
#include "litseg/lit/trainer.h"
#include "litseg/sam2/config.h"
#include "litseg/sam2/sam2_model.h"

namespace litseg::lit::test {

inline constexpr const char* kMicroDir = "sam2/micro";
inline constexpr const char* kDavisDir = "data/vos/davis2016/DAVIS";

inline sam2::Sam2Config MicroConfig() {
  std::ifstream in(litseg::test::SharedPath(std::string(kMicroDir) + "/config.json"));
  std::stringstream text;
  text << in.rdbuf();
  const auto json = nlohmann::json::parse(text.str());
  return sam2::ConfigFromOfficialModelJson(json.at("hydra_config").dump(), "micro config.json");
}

// A freshly loaded micro model (weights from ../shared; callers may modify it).
inline sam2::Sam2Model LoadMicroModel() {
  return sam2::LoadSam2Model(MicroConfig(), litseg::test::SharedPath(std::string(kMicroDir) + "/weights.safetensors"),
                             "cpu");
}

inline std::string DavisFrameName(int index) {
  char name[16];
  std::snprintf(name, sizeof(name), "%05d", index);
  return name;
}

// uint8 [H, W, 3] RGB of a DAVIS frame.
inline torch::Tensor ReadDavisFrame(const std::string& sequence, int index) {
  const auto path = litseg::test::SharedPath(std::string(kDavisDir) + "/JPEGImages/480p/" + sequence + "/" +
                                             DavisFrameName(index) + ".jpg");
  cv::Mat bgr = cv::imread(path.string(), cv::IMREAD_COLOR);
  if (bgr.empty()) throw Error("cannot read " + path.string());
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8).clone();
}

inline Mask ReadDavisMask(const std::string& sequence, int index) {
  const auto path = litseg::test::SharedPath(std::string(kDavisDir) + "/Annotations/480p/" + sequence + "/" +
                                             DavisFrameName(index) + ".png");
  return ReadBinaryPng(path.string());
}

// Decoder inputs of DAVIS frames with no memory, computed once per (sequence, frame) and
// model instance used by the caller (the micro weights are the same in every instance).
inline const DecoderInputs& DavisInputs(sam2::Sam2Model& model, const std::string& sequence, int index) {
  static std::map<std::pair<std::string, int>, DecoderInputs> cache;
  auto key = std::make_pair(sequence, index);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, ComputeNoMemoryInputs(model, ReadDavisFrame(sequence, index))).first;
  return it->second;
}

inline bool BitEqual(const torch::Tensor& a, const torch::Tensor& b) {
  return a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type() && torch::equal(a, b);
}

}  // namespace litseg::lit::test
