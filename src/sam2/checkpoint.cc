#include "litseg/sam2/checkpoint.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <new>
#include <sstream>
#include <system_error>
#include <unordered_set>

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include "litseg/core/error.h"
#include "sam2/unpickler.h"

namespace litseg::sam2 {

namespace {

using detail::PickleValue;

std::string Quoted(const std::filesystem::path& path) {
  return "'" + path.string() + "'";
}

uint64_t FileSize(const std::filesystem::path& path) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) throw Error("cannot read checkpoint " + Quoted(path) + ": " + ec.message());
  return size;
}

// c10::Error messages can span many lines (source locations, backtraces): keep the first.
std::string FirstLine(const char* message) {
  std::string text(message);
  const auto newline = text.find('\n');
  if (newline != std::string::npos) text.resize(newline);
  return text;
}

// The 10-byte little-endian magic number torch.save's legacy format starts with
// (0x1950a86a20f9469cfc6c).
const std::string kLegacyMagic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);
constexpr int64_t kLegacyProtocolVersion = 1001;

// Reverses the bytes of every element (big-endian checkpoints).
void SwapBytes(torch::Tensor& flat) {
  const int64_t size = flat.element_size();
  if (size == 1 || flat.numel() == 0) return;
  auto* bytes = static_cast<unsigned char*>(flat.data_ptr());
  for (int64_t i = 0; i < flat.numel(); ++i) std::reverse(bytes + i * size, bytes + (i + 1) * size);
}

bool StorageBytes(const detail::StorageRequest& request, uint64_t* bytes) {
  return !__builtin_mul_overflow(static_cast<uint64_t>(request.numel),
                                 static_cast<uint64_t>(c10::elementSize(request.dtype)), bytes);
}

const PickleValue* DictGet(const PickleValue& dict, const std::string& key) {
  for (const auto& [k, v] : dict.dict->entries) {
    if (k.IsString() && k.text == key) return &v;
  }
  return nullptr;
}

TensorMap ToTensorMap(const PickleValue& dict, const std::string& where) {
  TensorMap tensors;
  for (const auto& [key, value] : dict.dict->entries) {
    if (!key.IsString())
      throw Error(where + " has a key that is " + key.Describe() + ", not a name");
    if (value.kind != PickleValue::Kind::kTensor)
      throw Error(where + ": entry '" + key.text + "' is " + value.Describe() + ", not a tensor");
    tensors.Insert(key.text, value.tensor);
  }
  return tensors;
}

// {"model": state_dict, ...} -> state_dict; a bare state dict is returned as it is.
TensorMap ExtractStateDict(const PickleValue& root, const std::filesystem::path& path) {
  const std::string where = "checkpoint " + Quoted(path);
  if (root.kind != PickleValue::Kind::kDict)
    throw Error(where + " holds " + root.Describe() + ", not a dict of tensors");
  if (const PickleValue* model = DictGet(root, "model")) {
    if (model->kind != PickleValue::Kind::kDict)
      throw Error(where + ": its 'model' entry is " + model->Describe() + ", not a state dict");
    return ToTensorMap(*model, where + " (entry 'model')");
  }
  const auto& entries = root.dict->entries;
  const bool all_tensors =
      !entries.empty() && std::all_of(entries.begin(), entries.end(), [](const auto& entry) {
        return entry.first.IsString() && entry.second.kind == PickleValue::Kind::kTensor;
      });
  if (all_tensors) return ToTensorMap(root, where);
  std::string keys;
  for (std::size_t i = 0; i < entries.size() && i < 10; ++i) {
    keys += (i ? ", " : "") + (entries[i].first.IsString() ? "'" + entries[i].first.text + "'"
                                                           : entries[i].first.Describe());
  }
  throw Error(where + " has no 'model' entry and is not a state dict (a dict of tensors); " +
              (entries.empty() ? std::string("it is empty") : "its keys are: " + keys));
}

TensorMap LoadZip(const std::filesystem::path& path) {
  const std::string where = "checkpoint " + Quoted(path);
  const uint64_t file_size = FileSize(path);
  try {
    std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
    try {
      reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path.string());
    } catch (const c10::Error& e) {
      throw Error(where +
                  " is a zip archive but not a readable PyTorch checkpoint (truncated, "
                  "corrupt or a different kind of zip): " +
                  FirstLine(e.what_without_backtrace()));
    }
    if (!reader->hasRecord("data.pkl"))
      throw Error(where + " is a zip archive without data.pkl: not a torch.save checkpoint");
    if (reader->hasRecord("constants.pkl"))
      throw Error(where +
                  " is a TorchScript archive (torch.jit.save), not a torch.save "
                  "checkpoint of a state dict");

    bool big_endian = false;
    if (reader->hasRecord("byteorder")) {
      auto [order_data, order_size] = reader->getRecord("byteorder");
      const std::string order(static_cast<const char*>(order_data.get()), order_size);
      if (order == "big") {
        big_endian = true;
      } else if (order != "little") {
        throw Error(where + " declares an unknown byte order '" + order + "'");
      }
    }

    detail::StorageLoader load_storage = [&](const detail::StorageRequest& request) {
      const std::string record = "data/" + request.key;
      uint64_t expected = 0;
      if (!StorageBytes(request, &expected) || expected > file_size)
        throw Error(where + ": storage '" + request.key + "' claims " +
                    std::to_string(request.numel) + " elements, more than the file can hold");
      if (!reader->hasRecord(record))
        throw Error(where + ": the tensor data record '" + record + "' is missing");
      auto [data, size] = reader->getRecord(record);
      if (size != expected)
        throw Error(where + ": tensor data record '" + record + "' has " + std::to_string(size) +
                    " bytes, but the pickle describes " + std::to_string(request.numel) + " x " +
                    c10::toString(request.dtype) + " = " + std::to_string(expected) + " bytes");
      const auto options = torch::TensorOptions().dtype(request.dtype);
      if (size == 0) return torch::empty({0}, options);
      // Keep the record's buffer alive as the tensor's memory: no copy.
      auto holder = std::make_shared<at::DataPtr>(std::move(data));
      torch::Tensor flat = torch::from_blob(
          holder->get(), {request.numel}, [holder](void*) {}, options);
      if (big_endian) SwapBytes(flat);
      return flat;
    };

    auto [pickle_data, pickle_size] = reader->getRecord("data.pkl");
    detail::MemoryByteSource source(pickle_data.get(), pickle_size, "data.pkl of " + where);
    const PickleValue root = detail::Unpickle(source, load_storage);
    return ExtractStateDict(root, path);
  } catch (const c10::Error& e) {
    throw Error(where + " could not be read (truncated or corrupt?): " +
                FirstLine(e.what_without_backtrace()));
  }
}

TensorMap LoadLegacy(const std::filesystem::path& path) {
  const std::string where = "legacy checkpoint " + Quoted(path);
  const uint64_t file_size = FileSize(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open " + where);
  detail::StreamByteSource source(in, file_size, where);

  const PickleValue magic = detail::Unpickle(source, {});
  if (magic.kind != PickleValue::Kind::kBigInt || magic.text != kLegacyMagic)
    throw Error(where + " is a Python pickle but not a torch.save file (wrong magic number)");
  const PickleValue version = detail::Unpickle(source, {});
  if (version.kind != PickleValue::Kind::kInt || version.integer != kLegacyProtocolVersion)
    throw Error(where + " has an unsupported serialization protocol (" + version.Describe() + ")");
  const PickleValue sys_info = detail::Unpickle(source, {});
  bool little_endian = true;
  if (sys_info.kind == PickleValue::Kind::kDict) {
    const PickleValue* flag = DictGet(sys_info, "little_endian");
    if (flag != nullptr && flag->kind == PickleValue::Kind::kBool) little_endian = flag->boolean;
  }

  // Storages are allocated while the main pickle is read and filled afterwards; their total
  // size may not exceed what is left of the file, so a small hostile file cannot request
  // a huge allocation.
  std::map<std::string, torch::Tensor> storages;
  uint64_t requested_bytes = 0;
  detail::StorageLoader load_storage = [&](const detail::StorageRequest& request) {
    uint64_t bytes = 0;
    if (!StorageBytes(request, &bytes) ||
        __builtin_add_overflow(requested_bytes, bytes, &requested_bytes) ||
        requested_bytes > source.Remaining())
      throw Error(where + ": its storages need more bytes than the file holds (truncated?)");
    torch::Tensor flat = torch::empty({request.numel}, torch::TensorOptions().dtype(request.dtype));
    storages.emplace(request.key, flat);
    return flat;
  };
  const PickleValue root = detail::Unpickle(source, load_storage);

  const PickleValue keys = detail::Unpickle(source, {});
  if (keys.kind != PickleValue::Kind::kList)
    throw Error(where + ": the storage key list is " + keys.Describe());
  std::unordered_set<std::string> filled;
  for (const PickleValue& key : keys.items->values) {
    if (!key.IsString()) throw Error(where + ": a storage key is " + key.Describe());
    auto it = storages.find(key.text);
    if (it == storages.end())
      throw Error(where + ": data for storage '" + key.text + "', which no tensor uses");
    if (!filled.insert(key.text).second)
      throw Error(where + ": storage '" + key.text + "' is listed twice");
    torch::Tensor& flat = it->second;
    unsigned char count_bytes[8];
    source.Read(count_bytes, 8);
    uint64_t count = 0;
    for (int i = 0; i < 8; ++i) {
      const int shift = little_endian ? 8 * i : 8 * (7 - i);
      count |= static_cast<uint64_t>(count_bytes[i]) << shift;
    }
    if (count != static_cast<uint64_t>(flat.numel()))
      throw Error(where + ": storage '" + key.text + "' has " + std::to_string(count) +
                  " elements in the file but " + std::to_string(flat.numel()) +
                  " in its description (corrupt file?)");
    source.Read(flat.data_ptr(), static_cast<std::size_t>(flat.numel() * flat.element_size()));
    if (!little_endian) SwapBytes(flat);
  }
  for (const auto& [key, flat] : storages) {
    if (filled.count(key) == 0)
      throw Error(where + ": the data of storage '" + key + "' is missing (truncated file?)");
  }
  return ExtractStateDict(root, path);
}

std::string Hex(const unsigned char* bytes, std::size_t count) {
  std::string text;
  char buffer[4];
  for (std::size_t i = 0; i < count; ++i) {
    std::snprintf(buffer, sizeof(buffer), "%s%02x", i ? " " : "", bytes[i]);
    text += buffer;
  }
  return text;
}

std::string ListNames(const std::vector<std::string>& names, int max_listed) {
  std::string text;
  const std::size_t shown = std::min<std::size_t>(names.size(), std::max(max_listed, 0));
  for (std::size_t i = 0; i < shown; ++i) text += (i ? ", " : "") + names[i];
  if (names.size() > shown)
    text += (shown ? ", ... " : "") + std::to_string(names.size() - shown) + " more";
  return text;
}

std::string ShapeText(const torch::Tensor& tensor) {
  return c10::str(tensor.sizes());
}

}  // namespace

CheckpointFormat DetectCheckpointFormat(const std::filesystem::path& path) {
  const std::string where = Quoted(path);
  const uint64_t file_size = FileSize(path);
  if (file_size == 0) throw Error("checkpoint " + where + " is empty");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open checkpoint " + where);
  unsigned char head[512] = {};
  const auto head_size = static_cast<std::size_t>(std::min<uint64_t>(file_size, sizeof(head)));
  in.read(reinterpret_cast<char*>(head), static_cast<std::streamsize>(head_size));
  if (!in) throw Error("cannot read checkpoint " + where);

  if (head_size >= 4 && head[0] == 'P' && head[1] == 'K' &&
      ((head[2] == 3 && head[3] == 4) || (head[2] == 5 && head[3] == 6)))
    return CheckpointFormat::kTorchZip;
  if (head_size >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5)
    return CheckpointFormat::kTorchLegacy;
  if (head_size >= 9) {
    uint64_t header_size = 0;
    for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | head[i];
    if (head[8] == '{' && header_size <= file_size - 8) return CheckpointFormat::kSafetensors;
  }
  if (path.extension() == ".safetensors") return CheckpointFormat::kSafetensors;  // reader explains

  std::string looks_like;
  if (head_size >= 3 && head[0] == 0xff && head[1] == 0xd8 && head[2] == 0xff) {
    looks_like = " (it looks like a JPEG image)";
  } else if (head_size >= 4 && std::memcmp(head, "\x89PNG", 4) == 0) {
    looks_like = " (it looks like a PNG image)";
  } else if (head_size >= 2 && head[0] == 0x1f && head[1] == 0x8b) {
    looks_like = " (it looks like a gzip file; unpack it first)";
  } else if (head_size >= 262 && std::memcmp(head + 257, "ustar", 5) == 0) {
    looks_like = " (a tar archive: the pre-0.4 PyTorch format is not supported)";
  }
  throw Error(where + " is not a checkpoint litseg can read" + looks_like +
              ": expected a torch.save .pt file or a .safetensors file; it starts with bytes " +
              Hex(head, std::min<std::size_t>(head_size, 8)));
}

TensorMap LoadCheckpoint(const std::filesystem::path& path) {
  try {
    switch (DetectCheckpointFormat(path)) {
      case CheckpointFormat::kTorchZip: return LoadZip(path);
      case CheckpointFormat::kTorchLegacy: return LoadLegacy(path);
      case CheckpointFormat::kSafetensors: return ReadSafetensors(path).tensors;
    }
  } catch (const std::bad_alloc&) {
    throw Error("not enough memory to load checkpoint " + Quoted(path));
  } catch (const c10::Error& e) {
    throw Error("checkpoint " + Quoted(path) +
                " could not be loaded: " + FirstLine(e.what_without_backtrace()));
  }
  throw Error("unknown checkpoint format");
}

std::string LoadReport::Summary() const {
  std::ostringstream text;
  text << "loaded " << loaded_tensors << " tensors (" << loaded_elements << " values); "
       << missing.size() << " missing, " << unexpected.size() << " unexpected, "
       << shape_mismatch.size() << " with a wrong shape, " << dtype_mismatch.size()
       << " with an incompatible dtype, " << converted.size() << " converted";
  return text.str();
}

LoadReport LoadStateDict(torch::nn::Module& module, const TensorMap& tensors,
                         const LoadOptions& options) {
  std::vector<std::pair<std::string, torch::Tensor>> targets;
  for (const auto& item : module.named_parameters(/*recurse=*/true))
    targets.emplace_back(item.key(), item.value());
  for (const auto& item : module.named_buffers(/*recurse=*/true))
    targets.emplace_back(item.key(), item.value());

  LoadReport report;
  std::unordered_set<std::string> expected;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // destination, source
  for (const auto& [name, destination] : targets) {
    expected.insert(name);
    const torch::Tensor* source = tensors.Find(name);
    if (source == nullptr || !source->defined()) {
      report.missing.push_back(name);
      continue;
    }
    if (!source->sizes().equals(destination.sizes())) {
      report.shape_mismatch.push_back(name + ": checkpoint " + ShapeText(*source) + " vs model " +
                                      ShapeText(destination));
      continue;
    }
    if (source->scalar_type() != destination.scalar_type()) {
      if (c10::isFloatingType(source->scalar_type()) &&
          c10::isFloatingType(destination.scalar_type())) {
        report.converted.push_back(name);
      } else {
        report.dtype_mismatch.push_back(name + ": checkpoint " +
                                        c10::toString(source->scalar_type()) + " vs model " +
                                        c10::toString(destination.scalar_type()));
        continue;
      }
    }
    copies.emplace_back(destination, *source);
  }
  for (const auto& [name, tensor] : tensors) {
    if (expected.count(name) == 0) report.unexpected.push_back(name);
  }

  std::vector<std::string> problems;
  const auto add_problem = [&](const std::vector<std::string>& names, const std::string& what) {
    if (!names.empty())
      problems.push_back(std::to_string(names.size()) + " " + what + " (" +
                         ListNames(names, options.max_listed) + ")");
  };
  if (!options.allow_missing) add_problem(report.missing, "missing");
  add_problem(report.shape_mismatch, "with a wrong shape");
  add_problem(report.dtype_mismatch, "with an incompatible dtype");
  if (!options.allow_unexpected) add_problem(report.unexpected, "unexpected");
  if (!problems.empty()) {
    std::string message = "the checkpoint does not match the model (" +
                          std::to_string(tensors.size()) + " tensors in the file, " +
                          std::to_string(targets.size()) + " in the model): ";
    for (std::size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
    throw Error(message);
  }

  torch::NoGradGuard no_grad;
  for (auto& [destination, source] : copies) {
    destination.copy_(source);
    report.loaded_tensors += 1;
    report.loaded_elements += destination.numel();
  }
  return report;
}

}  // namespace litseg::sam2
