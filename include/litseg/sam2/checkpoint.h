// Loading SAM 2.1 checkpoints into LibTorch modules, without Python.
//
// Accepted files (recognised by content, not by name):
//   * torch.save zip archives (PyTorch >= 1.6, e.g. the official sam2.1_hiera_*.pt, which
//     hold {"model": state_dict}),
//   * the legacy torch.save stream (PyTorch < 1.6: magic number, protocol and system-info
//     pickles, the main pickle, the storage key list, then the raw storages),
//   * .safetensors files.
// For .pt files the "model" entry is used; a bare state dict (a dict of tensors) is also
// accepted. The pickles are decoded by a restricted reader that only rebuilds tensors and
// dicts: a file naming any other Python global (os.system, builtins.eval, ...) or using any
// other pickle opcode is refused with a litseg::Error, because a checkpoint is untrusted
// input. Truncated, foreign (a random zip, a JPEG) or inconsistent files also throw
// litseg::Error naming the problem.
//
// LoadStateDict() copies the tensors into a module after strictly validating them against
// its named_parameters() and named_buffers(): nothing is copied unless every expected key is
// present with the right shape and a compatible dtype, so a bad file can never leave a model
// half-loaded or silently random.
//
// Usage:
//   litseg::sam2::TensorMap weights = litseg::sam2::LoadCheckpoint("sam2.1_hiera_tiny.pt");
//   litseg::sam2::LoadReport report = litseg::sam2::LoadStateDict(*model, weights);
//
// Thread safety: the functions are reentrant. LoadStateDict writes the module's tensors;
// do not run the module concurrently.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "litseg/sam2/safetensors.h"

namespace litseg::sam2 {

enum class CheckpointFormat {
  kTorchZip,     // torch.save, PyTorch >= 1.6
  kTorchLegacy,  // torch.save(_use_new_zipfile_serialization=False) / PyTorch < 1.6
  kSafetensors,
};

// Recognises a checkpoint from its first bytes; throws litseg::Error for anything else
// (the message says what the file looks like, e.g. a JPEG image).
CheckpointFormat DetectCheckpointFormat(const std::filesystem::path& path);

// Loads every tensor of the state dict: CPU tensors, in file order. Tensors from .pt files
// that shared a storage in Python share it here too (views); they are not copied.
TensorMap LoadCheckpoint(const std::filesystem::path& path);

struct LoadOptions {
  // Checkpoint tensors the module does not have are an error unless allowed (then they are
  // only listed in LoadReport::unexpected).
  bool allow_unexpected = false;
  // Module tensors absent from the checkpoint are an error unless allowed (then they keep
  // their current values and are listed in LoadReport::missing). For partial checkpoints
  // such as adapters.
  bool allow_missing = false;
  // How many names of each kind of problem an error message lists.
  int max_listed = 5;
};

struct LoadReport {
  std::vector<std::string> missing;         // expected by the module, absent in the file
  std::vector<std::string> unexpected;      // in the file, unknown to the module
  std::vector<std::string> shape_mismatch;  // "name: checkpoint [a, b] vs model [c, d]"
  std::vector<std::string> dtype_mismatch;  // "name: checkpoint Long vs model Float"
  std::vector<std::string> converted;       // copied with a dtype conversion (e.g. bf16 -> f32)
  int64_t loaded_tensors = 0;
  int64_t loaded_elements = 0;

  // A one-line summary ("loaded 383 tensors (1718930 values); 0 missing, ...").
  std::string Summary() const;
};

// Copies `tensors` into the module's parameters and buffers (matched by their dotted names
// as returned by named_parameters()/named_buffers()) under NoGradGuard. Floating-point
// tensors (F16, BF16, F32, F64) are converted to the parameter's dtype; other dtypes must
// match exactly. Throws litseg::Error, before modifying anything, when a tensor is missing,
// has the wrong shape or an incompatible dtype, or is unexpected (see LoadOptions); the
// message gives the counts and the first few names of each problem.
LoadReport LoadStateDict(torch::nn::Module& module, const TensorMap& tensors,
                         const LoadOptions& options = {});

}  // namespace litseg::sam2
