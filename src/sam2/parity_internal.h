// Internal pieces of RunParity shared between parity.cc and parity_video.cc.
#pragma once

#include <filesystem>

#include <nlohmann/json.hpp>

#include "litseg/sam2/parity.h"
#include "litseg/sam2/safetensors.h"
#include "litseg/sam2/sam2_model.h"

namespace litseg::sam2 {

// Replays every SAM2VideoPredictor call of the manifest's "video" section (scenarios in
// order, each on a fresh tracker) and compares every tensor of video.safetensors and every
// discrete decision. Reports a failure (never a skip) for anything it cannot reproduce.
void RunVideoParityCases(Sam2Model model, const nlohmann::json& manifest, const std::filesystem::path& golden_dir,
                         const TensorMap& inputs, const ParityTolerances& tolerances, ParityCollector& out);

}  // namespace litseg::sam2
