// Named tensors (TensorMap) and the .safetensors file format, read and written without Python.
//
// A .safetensors file is an 8-byte little-endian header length N, N bytes of UTF-8 JSON
// (name -> {"dtype", "shape", "data_offsets": [begin, end]}, plus an optional
// "__metadata__" object of strings) and then the raw little-endian, row-major tensor data.
// The reader treats the file as untrusted: the header length, every dtype, shape and
// offset are checked (inside the file, consistent with dtype x shape, contiguous without
// holes or overlaps) before a byte of tensor data is read, and a truncated or malformed
// file throws litseg::Error naming the problem.
//
// Usage:
//   litseg::sam2::SafetensorsFile file = litseg::sam2::ReadSafetensors("weights.safetensors");
//   const torch::Tensor& w = file.tensors.At("image_encoder.trunk.pos_embed");
//   litseg::sam2::SaveSafetensors("adapter.safetensors", file.tensors, {{"rank", "8"}});
//
// Thread safety: the functions are reentrant; a TensorMap is a plain value (no internal
// locking), safe to read from several threads when nobody modifies it.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace litseg::sam2 {

// Tensors by name, in insertion order (file order for checkpoints, so diagnostics and
// saved files are deterministic), with O(1) lookup. Names are unique.
class TensorMap {
 public:
  using Entry = std::pair<std::string, torch::Tensor>;
  using const_iterator = std::vector<Entry>::const_iterator;

  // Adds a tensor; throws litseg::Error when the name is already present.
  void Insert(std::string name, torch::Tensor tensor);
  // Adds or replaces.
  void Set(const std::string& name, torch::Tensor tensor);

  bool Contains(const std::string& name) const { return index_.count(name) != 0; }
  // nullptr when absent.
  const torch::Tensor* Find(const std::string& name) const;
  // Throws litseg::Error naming the missing tensor.
  const torch::Tensor& At(const std::string& name) const;

  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const_iterator begin() const { return entries_.begin(); }
  const_iterator end() const { return entries_.end(); }
  const std::vector<Entry>& entries() const { return entries_; }
  std::vector<std::string> Names() const;

  // Total number of elements over all tensors.
  int64_t ElementCount() const;

 private:
  std::vector<Entry> entries_;
  std::unordered_map<std::string, std::size_t> index_;
};

struct SafetensorsFile {
  TensorMap tensors;                            // in header order (JSON object order of the file)
  std::map<std::string, std::string> metadata;  // "__metadata__", empty when absent
};

// Reads every tensor of a .safetensors file into CPU tensors that own their memory.
// Supported dtypes: BOOL, U8, I8, I16, I32, I64, F16, BF16, F32, F64 (others are refused
// with an error naming the dtype).
SafetensorsFile ReadSafetensors(const std::filesystem::path& path);

// Writes `tensors` (any device, any layout; copied to contiguous CPU) with optional string
// metadata. Tensors are stored in the map's order. The file is written to a temporary
// sibling and renamed, so an interrupted save never leaves a half-written file behind.
void SaveSafetensors(const std::filesystem::path& path, const TensorMap& tensors,
                     const std::map<std::string, std::string>& metadata = {});

// The safetensors dtype name ("F32", ...) of a torch dtype; throws for unsupported dtypes.
std::string SafetensorsDtypeName(torch::ScalarType dtype);

}  // namespace litseg::sam2
