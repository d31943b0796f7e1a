// A restricted reader for the pickle streams written by torch.save (internal to sam2).
//
// Python's pickle can call any importable function while loading, so a .pt file is a
// program. This reader never executes anything: it understands only the opcodes that
// torch.save emits for tensors and (ordered) dicts, and resolves only the handful of
// globals needed to rebuild tensors. Any other opcode or global makes it throw
// litseg::Error naming it. Tensors are rebuilt as views of their storage, so tensors that
// share a storage (views, tied weights) keep sharing it.
//
// Usage (see checkpoint.cc):
//   MemoryByteSource source(data, size, "data.pkl of weights.pt");
//   PickleValue root = Unpickle(source, [&](const StorageRequest& r) { return ...; });
//
// Thread safety: a call uses only its arguments; no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <istream>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace litseg::sam2::detail {

struct PickleValue;

// Containers are mutable only until they are placed inside another object ("sealed");
// after that their nesting depth is fixed. This keeps a hostile pickle from building
// reference cycles or nesting so deep that destroying it would overflow the stack.
struct PickleList {
  std::vector<PickleValue> values;
  bool sealed = false;
  int depth = 1;
};
struct PickleDict {
  std::vector<std::pair<PickleValue, PickleValue>> entries;
  std::unordered_map<std::string, std::size_t> index;  // hashable key -> entry
  bool sealed = false;
  int depth = 1;
};

// A decoded pickle object. Lists and dicts are shared (pickle memo references point to the
// same object), tuples are immutable.
struct PickleValue {
  enum class Kind {
    kNone,
    kBool,
    kInt,     // fits in int64
    kBigInt,  // LONG1/LONG4 wider than 64 bits: little-endian two's complement bytes in `text`
    kFloat,
    kString,  // unicode (UTF-8) or a Python 2 byte string
    kBytes,
    kTuple,
    kList,
    kDict,
    kGlobal,   // an allowed global, "module.name" in `text`
    kStorage,  // a typed storage: a flat 1-D tensor in `tensor`
    kTensor,
  };
  Kind kind = Kind::kNone;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0.0;
  std::string text;
  std::shared_ptr<PickleList> items;  // tuple and list elements
  std::shared_ptr<PickleDict> dict;   // dict entries in insertion order
  torch::Tensor tensor;               // storage or tensor

  bool IsString() const { return kind == Kind::kString; }
  // "a dict", "the global os.system", ... for error messages.
  std::string Describe() const;
};

// Where pickle bytes come from. Read() throws litseg::Error when the source ends early.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual void Read(void* destination, std::size_t count) = 0;
  // Bytes consumed so far.
  virtual uint64_t Position() const = 0;
  // Bytes left; used to refuse lengths larger than what remains.
  virtual uint64_t Remaining() const = 0;
  // Names the source in error messages ("data.pkl in 'x.pt'").
  virtual const std::string& Name() const = 0;
};

class MemoryByteSource final : public ByteSource {
 public:
  MemoryByteSource(const void* data, std::size_t size, std::string name);
  void Read(void* destination, std::size_t count) override;
  uint64_t Position() const override { return position_; }
  uint64_t Remaining() const override { return size_ - position_; }
  const std::string& Name() const override { return name_; }

 private:
  const unsigned char* data_;
  std::size_t size_;
  std::size_t position_ = 0;
  std::string name_;
};

// Reads from an istream of known total size (the legacy format's pickles are followed by
// raw storage bytes, which the caller then reads from the same stream).
class StreamByteSource final : public ByteSource {
 public:
  StreamByteSource(std::istream& in, uint64_t size, std::string name);
  void Read(void* destination, std::size_t count) override;
  uint64_t Position() const override { return position_; }
  uint64_t Remaining() const override { return size_ - position_; }
  const std::string& Name() const override { return name_; }

 private:
  std::istream& in_;
  uint64_t size_;
  uint64_t position_ = 0;
  std::string name_;
};

// A storage named by a persistent id ('storage', <type>, key, location, numel[, view]).
struct StorageRequest {
  std::string key;
  torch::ScalarType dtype;
  int64_t numel = 0;
  std::string location;  // "cpu", "cuda:0", ... (everything is loaded to the CPU)
};
// Returns a flat 1-D CPU tensor of `dtype` with exactly `numel` elements. Called once per
// distinct key per Unpickle call (results are cached by key).
using StorageLoader = std::function<torch::Tensor(const StorageRequest&)>;

// Decodes one pickle (up to and including STOP) from `source`. `load_storage` may be empty
// when the pickle must not reference storages (the legacy format's header pickles).
PickleValue Unpickle(ByteSource& source, const StorageLoader& load_storage);

}  // namespace litseg::sam2::detail
