#include "sam2/unpickler.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <unordered_map>

#include <torch/torch.h>

#include "litseg/core/error.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the pickle reader decodes little-endian integers by memcpy");

namespace litseg::sam2::detail {

namespace {

// Pickle opcodes (Python's Lib/pickle.py names).
enum Opcode : unsigned char {
  kMark = '(',
  kStop = '.',
  kPop = '0',
  kPopMark = '1',
  kDup = '2',
  kFloat = 'F',
  kInt = 'I',
  kBinInt = 'J',
  kBinInt1 = 'K',
  kLong = 'L',
  kBinInt2 = 'M',
  kNone = 'N',
  kPersId = 'P',
  kBinPersId = 'Q',
  kReduce = 'R',
  kString = 'S',
  kBinString = 'T',
  kShortBinString = 'U',
  kUnicode = 'V',
  kBinUnicode = 'X',
  kAppend = 'a',
  kBuild = 'b',
  kGlobal = 'c',
  kDict = 'd',
  kEmptyDict = '}',
  kAppends = 'e',
  kGet = 'g',
  kBinGet = 'h',
  kInst = 'i',
  kLongBinGet = 'j',
  kList = 'l',
  kEmptyList = ']',
  kObj = 'o',
  kPut = 'p',
  kBinPut = 'q',
  kLongBinPut = 'r',
  kSetItem = 's',
  kTuple = 't',
  kEmptyTuple = ')',
  kSetItems = 'u',
  kBinFloat = 'G',
  kProto = 0x80,
  kNewObj = 0x81,
  kExt1 = 0x82,
  kExt2 = 0x83,
  kExt4 = 0x84,
  kTuple1 = 0x85,
  kTuple2 = 0x86,
  kTuple3 = 0x87,
  kNewTrue = 0x88,
  kNewFalse = 0x89,
  kLong1 = 0x8a,
  kLong4 = 0x8b,
  kBinBytes = 'B',
  kShortBinBytes = 'C',
  kShortBinUnicode = 0x8c,
  kBinUnicode8 = 0x8d,
  kBinBytes8 = 0x8e,
  kEmptySet = 0x8f,
  kAddItems = 0x90,
  kFrozenSet = 0x91,
  kNewObjEx = 0x92,
  kStackGlobal = 0x93,
  kMemoize = 0x94,
  kFrame = 0x95,
  kByteArray8 = 0x96,
  kNextBuffer = 0x97,
  kReadOnlyBuffer = 0x98,
};

// Names of opcodes this reader refuses, so the error says what the file tried to do.
const char* RefusedOpcodeName(unsigned char op) {
  switch (op) {
    case kFloat: return "FLOAT";
    case kInt: return "INT";
    case kLong: return "LONG";
    case kPersId: return "PERSID";
    case kString: return "STRING";
    case kUnicode: return "UNICODE";
    case kGet: return "GET";
    case kInst: return "INST (instantiate a class)";
    case kObj: return "OBJ (instantiate a class)";
    case kPut: return "PUT";
    case kNewObj: return "NEWOBJ (instantiate a class)";
    case kNewObjEx: return "NEWOBJ_EX (instantiate a class)";
    case kExt1:
    case kExt2:
    case kExt4: return "EXT (extension registry)";
    case kEmptySet: return "EMPTY_SET";
    case kAddItems: return "ADDITEMS";
    case kFrozenSet: return "FROZENSET";
    case kByteArray8: return "BYTEARRAY8";
    case kNextBuffer: return "NEXT_BUFFER";
    case kReadOnlyBuffer: return "READONLY_BUFFER";
    default: return nullptr;
  }
}

// Deep enough for torch.save's dict -> dict -> tensor(args tuple -> tuple) structures and
// optimizer states; shallow enough that recursive destruction cannot exhaust the stack.
constexpr int kMaxNestingDepth = 100;
// Longest module/name line of a GLOBAL opcode.
constexpr std::size_t kMaxGlobalNameLength = 256;
// Most dimensions of a rebuilt tensor.
constexpr std::size_t kMaxTensorDims = 64;

struct StorageType {
  const char* global;
  torch::ScalarType dtype;
};
constexpr StorageType kStorageTypes[] = {
    {"torch.FloatStorage", torch::kFloat32},     {"torch.HalfStorage", torch::kFloat16},
    {"torch.BFloat16Storage", torch::kBFloat16}, {"torch.DoubleStorage", torch::kFloat64},
    {"torch.LongStorage", torch::kInt64},        {"torch.IntStorage", torch::kInt32},
    {"torch.ShortStorage", torch::kInt16},       {"torch.CharStorage", torch::kInt8},
    {"torch.ByteStorage", torch::kUInt8},        {"torch.BoolStorage", torch::kBool},
};

bool StorageDtype(const std::string& global, torch::ScalarType* dtype) {
  for (const auto& type : kStorageTypes) {
    if (global == type.global) {
      *dtype = type.dtype;
      return true;
    }
  }
  return false;
}

// The functions torch.save's pickles call to rebuild tensors and state dicts.
constexpr const char* kAllowedCallables[] = {
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor",  // pre-1.0 legacy files
    "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
    "collections.OrderedDict",
};

bool IsAllowedGlobal(const std::string& name) {
  torch::ScalarType ignored;
  if (StorageDtype(name, &ignored)) return true;
  return std::find_if(std::begin(kAllowedCallables), std::end(kAllowedCallables),
                      [&](const char* allowed) { return name == allowed; }) !=
         std::end(kAllowedCallables);
}

int DepthOf(const PickleValue& value) {
  switch (value.kind) {
    case PickleValue::Kind::kTuple:
    case PickleValue::Kind::kList: return value.items->depth;
    case PickleValue::Kind::kDict: return value.dict->depth;
    default: return 0;
  }
}

class Unpickler {
 public:
  Unpickler(ByteSource& source, const StorageLoader& load_storage)
      : source_(source), load_storage_(load_storage) {}

  PickleValue Run() {
    for (;;) {
      const uint64_t opcode_position = source_.Position();
      const unsigned char op = ReadU8();
      switch (op) {
        case kProto: {
          const unsigned char protocol = ReadU8();
          if (protocol > 5) Fail("unsupported pickle protocol " + std::to_string(protocol));
          break;
        }
        case kFrame:
          ReadLE<uint64_t>();  // frame length: a read-ahead hint, irrelevant here
          break;
        case kStop: {
          if (stack_.empty()) Fail("STOP with an empty stack");
          PickleValue result = std::move(stack_.back());
          stack_.pop_back();
          return result;
        }
        case kMark: marks_.push_back(stack_.size()); break;
        case kPop:
          // Python: pops the top item, or the open MARK when nothing is above it.
          if (stack_.size() > StackFloor()) {
            stack_.pop_back();
          } else if (!marks_.empty()) {
            marks_.pop_back();
          } else {
            Fail("POP with an empty stack");
          }
          break;
        case kPopMark: PopToMark(); break;
        case kDup: Push(Top()); break;
        case kNone: Push(PickleValue{}); break;
        case kNewTrue:
        case kNewFalse: {
          PickleValue value;
          value.kind = PickleValue::Kind::kBool;
          value.boolean = op == kNewTrue;
          Push(std::move(value));
          break;
        }
        case kBinInt: PushInt(ReadLE<int32_t>()); break;
        case kBinInt1: PushInt(ReadU8()); break;
        case kBinInt2: PushInt(ReadLE<uint16_t>()); break;
        case kLong1: PushLong(ReadU8()); break;
        case kLong4: {
          const int32_t length = ReadLE<int32_t>();
          if (length < 0) Fail("negative LONG4 length");
          PushLong(static_cast<uint64_t>(length));
          break;
        }
        case kBinFloat: {
          unsigned char bytes[8];
          Read(bytes, 8);
          uint64_t bits = 0;
          for (unsigned char byte : bytes) bits = (bits << 8) | byte;  // big-endian
          PickleValue value;
          value.kind = PickleValue::Kind::kFloat;
          std::memcpy(&value.real, &bits, sizeof(double));
          Push(std::move(value));
          break;
        }
        case kBinUnicode: PushText(PickleValue::Kind::kString, ReadLE<uint32_t>()); break;
        case kShortBinUnicode: PushText(PickleValue::Kind::kString, ReadU8()); break;
        case kBinUnicode8: PushText(PickleValue::Kind::kString, ReadLE<uint64_t>()); break;
        case kBinString: {
          const int32_t length = ReadLE<int32_t>();
          if (length < 0) Fail("negative BINSTRING length");
          PushText(PickleValue::Kind::kString, static_cast<uint64_t>(length));
          break;
        }
        case kShortBinString: PushText(PickleValue::Kind::kString, ReadU8()); break;
        case kBinBytes: PushText(PickleValue::Kind::kBytes, ReadLE<uint32_t>()); break;
        case kShortBinBytes: PushText(PickleValue::Kind::kBytes, ReadU8()); break;
        case kBinBytes8: PushText(PickleValue::Kind::kBytes, ReadLE<uint64_t>()); break;
        case kEmptyTuple: Push(MakeSequence(PickleValue::Kind::kTuple, {})); break;
        case kTuple: Push(MakeSequence(PickleValue::Kind::kTuple, PopToMark())); break;
        case kTuple1:
        case kTuple2:
        case kTuple3: {
          const std::size_t count = op - kTuple1 + 1;
          if (stack_.size() < count + StackFloor()) Fail("TUPLE with too few items on the stack");
          std::vector<PickleValue> items(std::make_move_iterator(stack_.end() - count),
                                         std::make_move_iterator(stack_.end()));
          stack_.resize(stack_.size() - count);
          Push(MakeSequence(PickleValue::Kind::kTuple, std::move(items)));
          break;
        }
        case kEmptyList: Push(MakeSequence(PickleValue::Kind::kList, {}, /*sealed=*/false)); break;
        case kList:
          Push(MakeSequence(PickleValue::Kind::kList, PopToMark(), /*sealed=*/false));
          break;
        case kAppend: {
          PickleValue item = Pop();
          AppendTo(Top(), {std::move(item)});
          break;
        }
        case kAppends: {
          std::vector<PickleValue> items = PopToMark();
          AppendTo(Top(), std::move(items));
          break;
        }
        case kEmptyDict: Push(MakeDict({})); break;
        case kDict: Push(MakeDict(PopToMark())); break;
        case kSetItem: {
          PickleValue value = Pop();
          PickleValue key = Pop();
          std::vector<PickleValue> pair;
          pair.push_back(std::move(key));
          pair.push_back(std::move(value));
          SetItems(Top(), std::move(pair));
          break;
        }
        case kSetItems: {
          std::vector<PickleValue> items = PopToMark();
          SetItems(Top(), std::move(items));
          break;
        }
        case kBinGet: Push(MemoGet(ReadU8())); break;
        case kLongBinGet: Push(MemoGet(ReadLE<uint32_t>())); break;
        case kBinPut: memo_[ReadU8()] = Top(); break;
        case kLongBinPut: memo_[ReadLE<uint32_t>()] = Top(); break;
        case kMemoize: {
          const auto index = static_cast<uint32_t>(memo_.size());
          memo_[index] = Top();
          break;
        }
        case kGlobal: {
          std::string module = ReadLine();
          std::string name = ReadLine();
          Push(MakeGlobal(module, name));
          break;
        }
        case kStackGlobal: {
          PickleValue name = Pop();
          PickleValue module = Pop();
          if (!name.IsString() || !module.IsString())
            Fail("STACK_GLOBAL needs two strings, got " + module.Describe() + " and " +
                 name.Describe());
          Push(MakeGlobal(module.text, name.text));
          break;
        }
        case kReduce: {
          PickleValue args = Pop();
          PickleValue callable = Pop();
          Push(Reduce(callable, args));
          break;
        }
        case kBuild: {
          PickleValue state = Pop();
          Build(Top(), std::move(state));
          break;
        }
        case kBinPersId: {
          PickleValue id = Pop();
          Push(PersistentLoad(id));
          break;
        }
        default: {
          const char* refused = RefusedOpcodeName(op);
          char hex[8];
          std::snprintf(hex, sizeof(hex), "0x%02x", op);
          if (refused != nullptr) {
            Fail(std::string("pickle opcode ") + refused + " (" + hex +
                     ") is not allowed in a checkpoint",
                 opcode_position);
          }
          Fail(std::string("unknown pickle opcode ") + hex + " (corrupt or not a checkpoint)",
               opcode_position);
        }
      }
    }
  }

 private:
  [[noreturn]] void Fail(const std::string& message) const { Fail(message, source_.Position()); }
  [[noreturn]] void Fail(const std::string& message, uint64_t position) const {
    throw Error(source_.Name() + ": " + message + " (at pickle byte " + std::to_string(position) +
                ")");
  }

  void Read(void* destination, std::size_t count) { source_.Read(destination, count); }
  unsigned char ReadU8() {
    unsigned char byte;
    Read(&byte, 1);
    return byte;
  }
  template <typename T>
  T ReadLE() {
    T value;
    Read(&value, sizeof(T));
    return value;
  }

  std::string ReadLine() {
    std::string line;
    for (;;) {
      const char c = static_cast<char>(ReadU8());
      if (c == '\n') return line;
      if (line.size() >= kMaxGlobalNameLength) Fail("GLOBAL name too long");
      line.push_back(c);
    }
  }

  std::size_t StackFloor() const { return marks_.empty() ? 0 : marks_.back(); }

  void Push(PickleValue value) { stack_.push_back(std::move(value)); }
  PickleValue Pop() {
    if (stack_.size() <= StackFloor()) Fail("pickle stack underflow");
    PickleValue value = std::move(stack_.back());
    stack_.pop_back();
    return value;
  }
  PickleValue& Top() {
    if (stack_.size() <= StackFloor()) Fail("pickle stack underflow");
    return stack_.back();
  }
  std::vector<PickleValue> PopToMark() {
    if (marks_.empty()) Fail("missing MARK");
    const std::size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<PickleValue> items(std::make_move_iterator(stack_.begin() + mark),
                                   std::make_move_iterator(stack_.end()));
    stack_.resize(mark);
    return items;
  }

  void PushInt(int64_t integer) {
    PickleValue value;
    value.kind = PickleValue::Kind::kInt;
    value.integer = integer;
    Push(std::move(value));
  }

  // LONG1/LONG4: little-endian two's complement of `length` bytes.
  void PushLong(uint64_t length) {
    if (length > source_.Remaining()) Fail("LONG runs past the end of the data (truncated?)");
    std::string bytes(length, '\0');
    Read(bytes.data(), length);
    // Drop redundant sign-extension bytes so small values decode as int64.
    while (bytes.size() > 1) {
      const auto last = static_cast<unsigned char>(bytes.back());
      const auto next = static_cast<unsigned char>(bytes[bytes.size() - 2]);
      if ((last == 0x00 && !(next & 0x80)) || (last == 0xff && (next & 0x80))) {
        bytes.pop_back();
      } else {
        break;
      }
    }
    if (bytes.size() > 8) {
      PickleValue value;
      value.kind = PickleValue::Kind::kBigInt;
      value.text = std::move(bytes);
      Push(std::move(value));
      return;
    }
    uint64_t bits = 0;
    for (std::size_t i = 0; i < bytes.size(); ++i)
      bits |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
    if (!bytes.empty() && (static_cast<unsigned char>(bytes.back()) & 0x80)) {
      for (std::size_t i = bytes.size(); i < 8; ++i) bits |= uint64_t{0xff} << (8 * i);
    }
    int64_t integer;
    std::memcpy(&integer, &bits, sizeof(integer));
    PushInt(integer);
  }

  void PushText(PickleValue::Kind kind, uint64_t length) {
    if (length > source_.Remaining())
      Fail("a string of " + std::to_string(length) +
           " bytes runs past the end of the data (truncated?)");
    PickleValue value;
    value.kind = kind;
    value.text.resize(length);
    Read(value.text.data(), length);
    Push(std::move(value));
  }

  // Marks a value as owned by a container: from now on it is immutable.
  static void Seal(const PickleValue& value) {
    if (value.items) value.items->sealed = true;
    if (value.dict) value.dict->sealed = true;
  }

  // Updates a container's depth for a new child; fails beyond kMaxNestingDepth.
  int ChildDepth(const PickleValue& child) {
    const int depth = DepthOf(child) + 1;
    if (depth > kMaxNestingDepth) Fail("objects are nested too deeply");
    return depth;
  }

  PickleValue MakeSequence(PickleValue::Kind kind, std::vector<PickleValue> items,
                           bool sealed = true) {
    PickleValue value;
    value.kind = kind;
    value.items = std::make_shared<PickleList>();
    for (const auto& item : items) {
      Seal(item);
      value.items->depth = std::max(value.items->depth, ChildDepth(item));
    }
    value.items->values = std::move(items);
    value.items->sealed = sealed;
    return value;
  }

  PickleValue MakeDict(std::vector<PickleValue> flat) {
    PickleValue value;
    value.kind = PickleValue::Kind::kDict;
    value.dict = std::make_shared<PickleDict>();
    SetItems(value, std::move(flat));
    return value;
  }

  void AppendTo(PickleValue& target, std::vector<PickleValue> items) {
    if (target.kind != PickleValue::Kind::kList)
      Fail("APPEND to " + target.Describe() + ", which is not a list");
    for (auto& item : items) {
      Seal(item);
      if (target.items->sealed) Fail("APPEND to a list that is already part of another object");
      target.items->depth = std::max(target.items->depth, ChildDepth(item));
      target.items->values.push_back(std::move(item));
    }
  }

  void SetItems(PickleValue& target, std::vector<PickleValue> flat) {
    if (target.kind != PickleValue::Kind::kDict)
      Fail("SETITEM on " + target.Describe() + ", which is not a dict");
    if (flat.size() % 2 != 0) Fail("SETITEMS with an odd number of items");
    for (std::size_t i = 0; i < flat.size(); i += 2) {
      Seal(flat[i]);
      Seal(flat[i + 1]);
      if (target.dict->sealed) Fail("SETITEM on a dict that is already part of another object");
      target.dict->depth =
          std::max({target.dict->depth, ChildDepth(flat[i]), ChildDepth(flat[i + 1])});
      // Python dict semantics: a repeated key replaces the value in place.
      auto& dict = *target.dict;
      std::string key;
      if (HashKey(flat[i], &key)) {
        auto [it, inserted] = dict.index.emplace(key, dict.entries.size());
        if (!inserted) {
          dict.entries[it->second].second = std::move(flat[i + 1]);
          continue;
        }
      }
      dict.entries.emplace_back(std::move(flat[i]), std::move(flat[i + 1]));
    }
  }

  // A canonical text for keys Python would compare by value (True == 1 as in Python);
  // false for other keys, which are then never merged.
  static bool HashKey(const PickleValue& key, std::string* text) {
    switch (key.kind) {
      case PickleValue::Kind::kString: *text = "s" + key.text; return true;
      case PickleValue::Kind::kBytes: *text = "b" + key.text; return true;
      case PickleValue::Kind::kInt: *text = "i" + std::to_string(key.integer); return true;
      case PickleValue::Kind::kBool: *text = key.boolean ? "i1" : "i0"; return true;
      case PickleValue::Kind::kNone: *text = "n"; return true;
      default: return false;
    }
  }

  PickleValue MemoGet(uint32_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end())
      Fail("reference to memo entry " + std::to_string(index) + " before it was stored");
    return it->second;
  }

  PickleValue MakeGlobal(const std::string& module, const std::string& name) {
    const std::string full = module + "." + name;
    if (!IsAllowedGlobal(full))
      Fail("refers to the Python global '" + full +
           "', which is not allowed: litseg only loads tensors and dicts from checkpoints and "
           "refuses files that would run other code when unpickled");
    PickleValue value;
    value.kind = PickleValue::Kind::kGlobal;
    value.text = full;
    return value;
  }

  const std::vector<PickleValue>& TupleItems(const PickleValue& value, const std::string& what) {
    if (value.kind != PickleValue::Kind::kTuple)
      Fail(what + " must be a tuple, got " + value.Describe());
    return value.items->values;
  }

  int64_t IntOf(const PickleValue& value, const std::string& what) {
    if (value.kind != PickleValue::Kind::kInt)
      Fail(what + " must be an integer, got " + value.Describe());
    return value.integer;
  }

  std::vector<int64_t> IntTuple(const PickleValue& value, const std::string& what) {
    const auto& items = TupleItems(value, what);
    if (items.size() > kMaxTensorDims) Fail(what + " has too many dimensions");
    std::vector<int64_t> result;
    for (const auto& item : items) {
      const int64_t number = IntOf(item, what + " entry");
      if (number < 0) Fail(what + " has a negative entry " + std::to_string(number));
      result.push_back(number);
    }
    return result;
  }

  // torch._utils._rebuild_tensor(_v2): a strided view of a storage, bounds-checked.
  PickleValue RebuildTensor(const std::vector<PickleValue>& args) {
    if (args[0].kind != PickleValue::Kind::kStorage)
      Fail("_rebuild_tensor expects a storage, got " + args[0].Describe());
    const torch::Tensor& storage = args[0].tensor;
    const int64_t offset = IntOf(args[1], "tensor storage offset");
    const std::vector<int64_t> sizes = IntTuple(args[2], "tensor size");
    const std::vector<int64_t> strides = IntTuple(args[3], "tensor stride");
    if (offset < 0) Fail("negative tensor storage offset");
    if (sizes.size() != strides.size()) Fail("tensor size and stride differ in length");
    bool empty = false;
    int64_t numel = 1;
    int64_t last = offset;  // largest element index touched
    for (std::size_t d = 0; d < sizes.size(); ++d) {
      if (sizes[d] == 0) empty = true;
      if (__builtin_mul_overflow(numel, sizes[d], &numel)) Fail("tensor size overflows");
    }
    if (!empty) {
      for (std::size_t d = 0; d < sizes.size(); ++d) {
        int64_t span;
        if (__builtin_mul_overflow(sizes[d] - 1, strides[d], &span) ||
            __builtin_add_overflow(last, span, &last))
          Fail("tensor extent overflows");
      }
      if (last >= storage.numel())
        Fail("a tensor of size " + c10::str(c10::IntArrayRef(sizes)) + ", stride " +
             c10::str(c10::IntArrayRef(strides)) + " at offset " + std::to_string(offset) +
             " reaches element " + std::to_string(last) + " of a storage with only " +
             std::to_string(storage.numel()) + " elements");
    } else if (offset > storage.numel()) {
      Fail("tensor storage offset beyond its storage");
    }
    PickleValue value;
    value.kind = PickleValue::Kind::kTensor;
    value.tensor = storage.as_strided(sizes, strides, storage.storage_offset() + offset);
    return value;
  }

  PickleValue Reduce(const PickleValue& callable, const PickleValue& args_value) {
    if (callable.kind != PickleValue::Kind::kGlobal)
      Fail("REDUCE on " + callable.Describe() + ", which is not an allowed callable");
    const auto& args = TupleItems(args_value, "REDUCE arguments");
    const std::string& name = callable.text;
    if (name == "torch._utils._rebuild_tensor_v2") {
      // (storage, offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (args.size() < 6 || args.size() > 7)
        Fail("_rebuild_tensor_v2 with " + std::to_string(args.size()) + " arguments");
      return RebuildTensor(args);
    }
    if (name == "torch._utils._rebuild_tensor") {
      if (args.size() != 4)
        Fail("_rebuild_tensor with " + std::to_string(args.size()) + " arguments");
      return RebuildTensor(args);
    }
    if (name == "torch._utils._rebuild_parameter" ||
        name == "torch._utils._rebuild_parameter_with_state") {
      // (data, requires_grad, backward_hooks[, state]): the parameter is just its data here.
      if (args.empty() || args[0].kind != PickleValue::Kind::kTensor)
        Fail(name + " expects a tensor as first argument");
      if (args.size() != (name == "torch._utils._rebuild_parameter" ? 3u : 4u))
        Fail(name + " with " + std::to_string(args.size()) + " arguments");
      return args[0];
    }
    if (name == "collections.OrderedDict") {
      if (!args.empty()) Fail("collections.OrderedDict is only accepted without arguments");
      return MakeDict({});
    }
    Fail("'" + name + "' cannot be called (it may only name a storage type)");
  }

  // BUILD sets attributes from a state; torch.save uses it for a state dict's _metadata,
  // which litseg does not need.
  void Build(PickleValue& target, PickleValue state) {
    if (target.kind != PickleValue::Kind::kDict)
      Fail("BUILD on " + target.Describe() + " is not allowed (only on OrderedDict)");
    if (target.dict->sealed) Fail("BUILD on a dict that is already part of another object");
    if (state.kind != PickleValue::Kind::kDict && state.kind != PickleValue::Kind::kTuple &&
        state.kind != PickleValue::Kind::kNone)
      Fail("BUILD with a state that is " + state.Describe());
    Seal(state);
  }

  // ('storage', <storage type>, key, location, numel[, view_metadata])
  PickleValue PersistentLoad(const PickleValue& id) {
    const auto& fields = TupleItems(id, "a persistent id");
    if (fields.empty() || !fields[0].IsString()) Fail("a persistent id must start with a string");
    if (fields[0].text == "module")
      Fail(
          "the file stores a pickled nn.Module class (torch.save(model)); only state dicts "
          "(torch.save(model.state_dict())) can be loaded");
    if (fields[0].text != "storage") Fail("unknown persistent id type '" + fields[0].text + "'");
    if (!load_storage_) Fail("a storage reference where none is expected");
    if (fields.size() != 5 && fields.size() != 6)
      Fail("a storage reference with " + std::to_string(fields.size()) + " fields");
    if (fields[1].kind != PickleValue::Kind::kGlobal)
      Fail("storage type must be a global, got " + fields[1].Describe());
    StorageRequest request;
    if (!StorageDtype(fields[1].text, &request.dtype))
      Fail("'" + fields[1].text + "' is not a supported storage type");
    if (!fields[2].IsString() || !fields[3].IsString())
      Fail("storage key and location must be strings");
    request.key = fields[2].text;
    request.location = fields[3].text;
    request.numel = IntOf(fields[4], "storage size");
    if (request.numel < 0) Fail("negative storage size");

    auto cached = storages_.find(request.key);
    torch::Tensor storage;
    if (cached != storages_.end()) {
      storage = cached->second;
      if (storage.scalar_type() != request.dtype || storage.numel() != request.numel)
        Fail("storage '" + request.key + "' is referenced with different types or sizes");
    } else {
      storage = load_storage_(request);
      if (!storage.defined() || storage.dim() != 1 || storage.scalar_type() != request.dtype ||
          storage.numel() != request.numel)
        Fail("storage '" + request.key + "' could not be loaded as " +
             std::to_string(request.numel) + " elements of " + c10::toString(request.dtype));
      storages_.emplace(request.key, storage);
    }

    // Legacy format: an optional view (view_key, offset, size) of the root storage, in
    // elements.
    if (fields.size() == 6 && fields[5].kind != PickleValue::Kind::kNone) {
      const auto& view = TupleItems(fields[5], "storage view metadata");
      if (view.size() != 3) Fail("storage view metadata must have 3 fields");
      const int64_t view_offset = IntOf(view[1], "storage view offset");
      const int64_t view_size = IntOf(view[2], "storage view size");
      if (view_offset < 0 || view_size < 0 || view_offset > storage.numel() ||
          view_size > storage.numel() - view_offset)
        Fail("storage view outside its storage");
      storage = storage.narrow(0, view_offset, view_size);
    }
    PickleValue value;
    value.kind = PickleValue::Kind::kStorage;
    value.tensor = storage;
    return value;
  }

  ByteSource& source_;
  const StorageLoader& load_storage_;
  std::vector<PickleValue> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<uint32_t, PickleValue> memo_;
  std::map<std::string, torch::Tensor> storages_;
};

}  // namespace

std::string PickleValue::Describe() const {
  switch (kind) {
    case Kind::kNone: return "None";
    case Kind::kBool: return boolean ? "True" : "False";
    case Kind::kInt: return "the integer " + std::to_string(integer);
    case Kind::kBigInt: return "a large integer";
    case Kind::kFloat: return "a float";
    case Kind::kString: return "the string '" + text.substr(0, 64) + "'";
    case Kind::kBytes: return "a bytes object";
    case Kind::kTuple: return "a tuple of " + std::to_string(items->values.size());
    case Kind::kList: return "a list of " + std::to_string(items->values.size());
    case Kind::kDict: return "a dict of " + std::to_string(dict->entries.size());
    case Kind::kGlobal: return "the global " + text;
    case Kind::kStorage: return "a storage";
    case Kind::kTensor: return "a tensor";
  }
  return "an unknown value";
}

MemoryByteSource::MemoryByteSource(const void* data, std::size_t size, std::string name)
    : data_(static_cast<const unsigned char*>(data)), size_(size), name_(std::move(name)) {}

void MemoryByteSource::Read(void* destination, std::size_t count) {
  if (count > size_ - position_)
    throw Error(name_ + ": the pickle data ends early (truncated or corrupt file)");
  std::memcpy(destination, data_ + position_, count);
  position_ += count;
}

StreamByteSource::StreamByteSource(std::istream& in, uint64_t size, std::string name)
    : in_(in), size_(size), name_(std::move(name)) {}

void StreamByteSource::Read(void* destination, std::size_t count) {
  if (count > size_ - position_)
    throw Error(name_ + ": the file ends early (truncated or corrupt file)");
  in_.read(static_cast<char*>(destination), static_cast<std::streamsize>(count));
  if (!in_) throw Error(name_ + ": reading failed (truncated or unreadable file)");
  position_ += count;
}

PickleValue Unpickle(ByteSource& source, const StorageLoader& load_storage) {
  Unpickler unpickler(source, load_storage);
  return unpickler.Run();
}

}  // namespace litseg::sam2::detail
