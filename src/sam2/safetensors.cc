#include "litseg/sam2/safetensors.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <system_error>

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "litseg/core/error.h"

// The on-disk format is little-endian; this reader and writer copy bytes as they are.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors I/O assumes a little-endian host");

namespace litseg::sam2 {

// ---------------------------------------------------------------------------------------
// TensorMap

void TensorMap::Insert(std::string name, torch::Tensor tensor) {
  if (index_.count(name) != 0) throw Error("duplicate tensor name '" + name + "'");
  index_.emplace(name, entries_.size());
  entries_.emplace_back(std::move(name), std::move(tensor));
}

void TensorMap::Set(const std::string& name, torch::Tensor tensor) {
  auto it = index_.find(name);
  if (it == index_.end()) {
    Insert(name, std::move(tensor));
  } else {
    entries_[it->second].second = std::move(tensor);
  }
}

const torch::Tensor* TensorMap::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

const torch::Tensor& TensorMap::At(const std::string& name) const {
  const torch::Tensor* tensor = Find(name);
  if (tensor == nullptr) throw Error("no tensor named '" + name + "'");
  return *tensor;
}

std::vector<std::string> TensorMap::Names() const {
  std::vector<std::string> names;
  names.reserve(entries_.size());
  for (const auto& entry : entries_) names.push_back(entry.first);
  return names;
}

int64_t TensorMap::ElementCount() const {
  int64_t count = 0;
  for (const auto& entry : entries_) count += entry.second.numel();
  return count;
}

// ---------------------------------------------------------------------------------------
// dtypes

namespace {

struct DtypeName {
  const char* name;
  torch::ScalarType type;
};

// The safetensors dtypes LibTorch 1.13 can represent (U16/U32/U64 and the F8 variants
// need newer LibTorch; they are refused by name).
constexpr DtypeName kDtypes[] = {
    {"BOOL", torch::kBool},   {"U8", torch::kUInt8},      {"I8", torch::kInt8},
    {"I16", torch::kInt16},   {"I32", torch::kInt32},     {"I64", torch::kInt64},
    {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16}, {"F32", torch::kFloat32},
    {"F64", torch::kFloat64},
};

bool DtypeFromName(const std::string& name, torch::ScalarType* type) {
  for (const auto& d : kDtypes) {
    if (name == d.name) {
      *type = d.type;
      return true;
    }
  }
  return false;
}

// The largest header the reference implementation accepts (100 MB); a larger length is a
// corrupt or hostile file, and refusing it avoids a huge allocation.
constexpr uint64_t kMaxHeaderBytes = 100u * 1000u * 1000u;

std::string Describe(const std::filesystem::path& path) {
  return "'" + path.string() + "'";
}

uint64_t ReadLittleEndianU64(const unsigned char* bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

struct HeaderEntry {
  std::string name;
  torch::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

// Byte size of dtype x shape with overflow checks; false on overflow.
bool ByteSize(torch::ScalarType dtype, const std::vector<int64_t>& shape, uint64_t* bytes) {
  uint64_t total = c10::elementSize(dtype);
  for (int64_t dim : shape) {
    if (__builtin_mul_overflow(total, static_cast<uint64_t>(dim), &total)) return false;
  }
  *bytes = total;
  return true;
}

std::vector<HeaderEntry> ParseHeader(const std::string& text, uint64_t data_size,
                                     const std::filesystem::path& path,
                                     std::map<std::string, std::string>* metadata) {
  const std::string where = "safetensors file " + Describe(path);
  nlohmann::ordered_json header;
  try {
    header = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": the header is not valid JSON (" + e.what() + ")");
  }
  if (!header.is_object()) throw Error(where + ": the header is not a JSON object");

  std::vector<HeaderEntry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) throw Error(where + ": \"__metadata__\" is not an object");
      for (const auto& [key, item] : value.items()) {
        if (!item.is_string())
          throw Error(where + ": metadata entry '" + key + "' is not a string");
        (*metadata)[key] = item.get<std::string>();
      }
      continue;
    }
    const std::string what = where + ": tensor '" + name + "'";
    if (!value.is_object()) throw Error(what + " is not described by a JSON object");
    if (!value.contains("dtype") || !value["dtype"].is_string())
      throw Error(what + " has no \"dtype\" string");
    if (!value.contains("shape") || !value["shape"].is_array())
      throw Error(what + " has no \"shape\" array");
    if (!value.contains("data_offsets") || !value["data_offsets"].is_array() ||
        value["data_offsets"].size() != 2)
      throw Error(what + " has no \"data_offsets\" pair");

    HeaderEntry entry;
    entry.name = name;
    const std::string dtype = value["dtype"].get<std::string>();
    if (!DtypeFromName(dtype, &entry.dtype))
      throw Error(what + " has dtype \"" + dtype +
                  "\", which is not supported (supported: BOOL, U8, I8, I16, I32, I64, F16, "
                  "BF16, F32, F64)");
    for (const auto& dim : value["shape"]) {
      if (!dim.is_number_unsigned() ||
          dim.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw Error(what + " has an invalid shape entry " + dim.dump());
      entry.shape.push_back(static_cast<int64_t>(dim.get<uint64_t>()));
    }
    for (const auto& offset : value["data_offsets"]) {
      if (!offset.is_number_unsigned())
        throw Error(what + " has an invalid data offset " + offset.dump());
    }
    entry.begin = value["data_offsets"][0].get<uint64_t>();
    entry.end = value["data_offsets"][1].get<uint64_t>();
    if (entry.end < entry.begin) throw Error(what + " has data_offsets that end before they begin");
    uint64_t bytes = 0;
    if (!ByteSize(entry.dtype, entry.shape, &bytes))
      throw Error(what + " has a shape whose size overflows");
    if (entry.end - entry.begin != bytes)
      throw Error(what + " occupies " + std::to_string(entry.end - entry.begin) +
                  " bytes but dtype " + dtype + " x shape needs " + std::to_string(bytes));
    if (entry.end > data_size)
      throw Error(what + " ends at byte " + std::to_string(entry.end) +
                  " of the data section, but the file holds only " + std::to_string(data_size) +
                  " data bytes (truncated file?)");
    entries.push_back(std::move(entry));
  }

  // The data section must be covered exactly: no overlaps (two tensors aliasing bytes)
  // and no holes (hidden payload), like the reference implementation.
  std::vector<const HeaderEntry*> by_offset;
  for (const auto& entry : entries) by_offset.push_back(&entry);
  std::stable_sort(by_offset.begin(), by_offset.end(),
                   [](const HeaderEntry* a, const HeaderEntry* b) {
                     return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
                   });
  uint64_t expected_begin = 0;
  for (const HeaderEntry* entry : by_offset) {
    if (entry->begin != expected_begin)
      throw Error(where + ": tensor '" + entry->name + "' starts at data byte " +
                  std::to_string(entry->begin) + " but the previous tensor ends at " +
                  std::to_string(expected_begin) +
                  " (data_offsets must be contiguous, without gaps or overlaps)");
    expected_begin = entry->end;
  }
  if (expected_begin != data_size)
    throw Error(where + ": the tensors cover " + std::to_string(expected_begin) +
                " data bytes but the file has " + std::to_string(data_size) +
                " (trailing bytes after the last tensor)");
  return entries;
}

}  // namespace

std::string SafetensorsDtypeName(torch::ScalarType dtype) {
  for (const auto& d : kDtypes) {
    if (d.type == dtype) return d.name;
  }
  throw Error(std::string("tensors of dtype ") + c10::toString(dtype) +
              " cannot be stored in a safetensors file by litseg");
}

SafetensorsFile ReadSafetensors(const std::filesystem::path& path) {
  const std::string where = "safetensors file " + Describe(path);
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) throw Error("cannot read " + where + ": " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open " + where);
  if (file_size < 8)
    throw Error(where + " is too short (" + std::to_string(file_size) +
                " bytes) to hold a header (truncated or not a safetensors file)");

  unsigned char length_bytes[8];
  in.read(reinterpret_cast<char*>(length_bytes), 8);
  if (!in) throw Error("cannot read the header length of " + where);
  const uint64_t header_size = ReadLittleEndianU64(length_bytes);
  if (header_size > kMaxHeaderBytes)
    throw Error(where + ": header length " + std::to_string(header_size) +
                " bytes is implausible (corrupt or not a safetensors file)");
  if (header_size > file_size - 8)
    throw Error(where + ": header length " + std::to_string(header_size) +
                " exceeds the file size " + std::to_string(file_size) + " (truncated file?)");
  if (header_size < 2)
    throw Error(where + ": header length " + std::to_string(header_size) + " is too small");

  std::string header_text(header_size, '\0');
  in.read(header_text.data(), static_cast<std::streamsize>(header_size));
  if (!in) throw Error("cannot read the header of " + where);

  SafetensorsFile file;
  const uint64_t data_start = 8 + header_size;
  const std::vector<HeaderEntry> entries =
      ParseHeader(header_text, file_size - data_start, path, &file.metadata);

  for (const auto& entry : entries) {
    torch::Tensor tensor = torch::empty(entry.shape, torch::TensorOptions().dtype(entry.dtype));
    const uint64_t bytes = entry.end - entry.begin;
    if (bytes > 0) {
      in.seekg(static_cast<std::streamoff>(data_start + entry.begin));
      in.read(static_cast<char*>(tensor.data_ptr()), static_cast<std::streamsize>(bytes));
      if (!in)
        throw Error(where + ": could not read the data of tensor '" + entry.name +
                    "' (file truncated while reading?)");
    }
    file.tensors.Insert(entry.name, std::move(tensor));
  }
  return file;
}

void SaveSafetensors(const std::filesystem::path& path, const TensorMap& tensors,
                     const std::map<std::string, std::string>& metadata) {
  const std::string where = "safetensors file " + Describe(path);
  std::vector<torch::Tensor> data;
  data.reserve(tensors.size());
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty() || name == "__metadata__")
      throw Error("cannot save a tensor named '" + name + "' in " + where);
    if (!tensor.defined()) throw Error("cannot save undefined tensor '" + name + "'");
    torch::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(cpu.numel()) * cpu.element_size();
    nlohmann::ordered_json entry;
    entry["dtype"] = SafetensorsDtypeName(cpu.scalar_type());
    entry["shape"] = cpu.sizes().vec();
    entry["data_offsets"] = {offset, offset + bytes};
    header[name] = std::move(entry);
    offset += bytes;
    data.push_back(std::move(cpu));
  }

  std::string header_text;
  try {
    header_text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw Error("cannot write " + where + ": a name or metadata string is not valid UTF-8 (" +
                e.what() + ")");
  }
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  header_text.append((8 - header_text.size() % 8) % 8, ' ');

  const std::filesystem::path temp =
      path.string() + ".tmp-" + std::to_string(static_cast<long>(::getpid()));
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error("cannot create " + Describe(temp) + " to write " + where);
    unsigned char length_bytes[8];
    uint64_t length = header_text.size();
    for (int i = 0; i < 8; ++i) length_bytes[i] = static_cast<unsigned char>(length >> (8 * i));
    out.write(reinterpret_cast<const char*>(length_bytes), 8);
    out.write(header_text.data(), static_cast<std::streamsize>(header_text.size()));
    for (const auto& tensor : data) {
      out.write(static_cast<const char*>(tensor.data_ptr()),
                static_cast<std::streamsize>(tensor.numel() * tensor.element_size()));
    }
    out.flush();
    if (!out) {
      out.close();
      std::error_code ignored;
      std::filesystem::remove(temp, ignored);
      throw Error("writing " + where + " failed (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    throw Error("cannot move the new " + where + " into place: " + ec.message());
  }
}

}  // namespace litseg::sam2
