// Tests of checkpoint loading: the real micro weights (.pt zip and .safetensors), the large
// fill reference files, hand-built pickles (forbidden globals, shared storages, the legacy
// format), malformed files and LoadStateDict's strict validation.
#include "litseg/sam2/checkpoint.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/shared_data.h"
#include "litseg/core/error.h"
#include "litseg/sam2/safetensors.h"

namespace {

using litseg::Error;
using litseg::sam2::CheckpointFormat;
using litseg::sam2::DetectCheckpointFormat;
using litseg::sam2::LoadCheckpoint;
using litseg::sam2::LoadOptions;
using litseg::sam2::LoadReport;
using litseg::sam2::LoadStateDict;
using litseg::sam2::ReadSafetensors;
using litseg::sam2::SaveSafetensors;
using litseg::sam2::TensorMap;
using litseg::test::SharedPath;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------
// Helpers

std::string ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteBytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

template <typename T>
std::string LittleEndian(T value) {
  std::string bytes(sizeof(T), '\0');
  std::memcpy(bytes.data(), &value, sizeof(T));
  return bytes;
}

// Raw bytes of a tensor (contiguous copy), for bit-exact comparisons.
std::string TensorBytes(const torch::Tensor& tensor) {
  torch::Tensor c = tensor.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
}

// Expects `fn` to throw litseg::Error whose message contains every string of `needles`.
void ExpectError(const std::function<void()>& fn, const std::vector<std::string>& needles,
                 const std::string& context = "") {
  try {
    fn();
    ADD_FAILURE() << "no litseg::Error thrown " << context;
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const auto& needle : needles)
      EXPECT_NE(message.find(needle), std::string::npos)
          << "message lacks '" << needle << "': " << message << " " << context;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type (" << e.what() << ") " << context;
  }
}

// Emits protocol-2 pickle opcodes, as Python's pickle does for torch.save.
class PickleWriter {
 public:
  PickleWriter& Proto() { return Op(0x80).Byte(2); }
  PickleWriter& Stop() { return Op('.'); }
  PickleWriter& Mark() { return Op('('); }
  PickleWriter& None() { return Op('N'); }
  PickleWriter& False() { return Op(0x89); }
  PickleWriter& True() { return Op(0x88); }
  PickleWriter& EmptyDict() { return Op('}'); }
  PickleWriter& EmptyTuple() { return Op(')'); }
  PickleWriter& EmptyList() { return Op(']'); }
  PickleWriter& Tuple() { return Op('t'); }
  PickleWriter& Reduce() { return Op('R'); }
  PickleWriter& Build() { return Op('b'); }
  PickleWriter& PersId() { return Op('Q'); }
  PickleWriter& SetItem() { return Op('s'); }
  PickleWriter& SetItems() { return Op('u'); }
  PickleWriter& Appends() { return Op('e'); }
  PickleWriter& Put(uint8_t index) { return Op('q').Byte(index); }
  PickleWriter& Get(uint8_t index) { return Op('h').Byte(index); }
  PickleWriter& Str(const std::string& s) {
    Op('X');
    bytes_ += LittleEndian<uint32_t>(static_cast<uint32_t>(s.size())) + s;
    return *this;
  }
  PickleWriter& ShortStr(const std::string& s) {
    Op(0x8c).Byte(static_cast<uint8_t>(s.size()));
    bytes_ += s;
    return *this;
  }
  PickleWriter& Int(int64_t v) {
    if (v >= 0 && v < 256) return Op('K').Byte(static_cast<uint8_t>(v));
    if (v >= 0 && v < 65536) {
      Op('M');
      bytes_ += LittleEndian<uint16_t>(static_cast<uint16_t>(v));
      return *this;
    }
    if (v >= INT32_MIN && v <= INT32_MAX) {
      Op('J');
      bytes_ += LittleEndian<int32_t>(static_cast<int32_t>(v));
      return *this;
    }
    Op(0x8a).Byte(8);
    bytes_ += LittleEndian<int64_t>(v);
    return *this;
  }
  PickleWriter& Long1(const std::string& little_endian_bytes) {
    Op(0x8a).Byte(static_cast<uint8_t>(little_endian_bytes.size()));
    bytes_ += little_endian_bytes;
    return *this;
  }
  PickleWriter& Global(const std::string& module, const std::string& name) {
    Op('c');
    bytes_ += module + "\n" + name + "\n";
    return *this;
  }
  PickleWriter& StackGlobal(const std::string& module, const std::string& name) {
    ShortStr(module).ShortStr(name);
    return Op(0x93);
  }
  PickleWriter& IntTuple(const std::vector<int64_t>& values) {
    Mark();
    for (int64_t v : values) Int(v);
    return Tuple();
  }
  PickleWriter& Raw(const std::string& raw) {
    bytes_ += raw;
    return *this;
  }
  // A zip-format persistent id ('storage', torch.<type>, key, 'cpu', numel) when `legacy`
  // is false; the legacy 6-field form with an optional view (view_key, offset, size).
  PickleWriter& StorageRef(const std::string& type, const std::string& key, int64_t numel,
                           bool legacy = false, const std::vector<int64_t>& view = {}) {
    Mark().Str("storage").Global("torch", type).Str(key).Str("cpu").Int(numel);
    if (legacy) {
      if (view.empty()) {
        None();
      } else {
        Mark().Str(key + "_view").Int(view[0]).Int(view[1]).Tuple();
      }
    }
    return Tuple().PersId();
  }
  // torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())
  PickleWriter& Tensor(const std::string& type, const std::string& key, int64_t numel,
                       int64_t offset, const std::vector<int64_t>& size,
                       const std::vector<int64_t>& stride, bool legacy = false,
                       const std::vector<int64_t>& view = {}) {
    Global("torch._utils", "_rebuild_tensor_v2");
    Mark().StorageRef(type, key, numel, legacy, view).Int(offset).IntTuple(size).IntTuple(stride);
    False().Global("collections", "OrderedDict").EmptyTuple().Reduce();
    return Tuple().Reduce();
  }
  const std::string& bytes() const { return bytes_; }

 private:
  PickleWriter& Op(unsigned char op) { return Byte(op); }
  PickleWriter& Byte(uint8_t b) {
    bytes_.push_back(static_cast<char>(b));
    return *this;
  }
  std::string bytes_;
};

// A torch.save-style zip (archive/data.pkl, archive/data/<key>, archive/version) written
// with LibTorch's own PyTorchStreamWriter.
void WriteTorchZip(const fs::path& path, const std::string& pickle,
                   const std::vector<std::pair<std::string, std::string>>& records) {
  caffe2::serialize::PyTorchStreamWriter writer(path.string());
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  for (const auto& [name, data] : records) writer.writeRecord(name, data.data(), data.size());
  writer.writeEndOfFile();
}

uint32_t Crc32(const std::string& data) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char byte : data) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

// A minimal "stored" (uncompressed) zip archive, to produce zips that are not checkpoints.
std::string StoredZip(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string local, central;
  for (const auto& [name, data] : files) {
    const uint32_t offset = static_cast<uint32_t>(local.size());
    const uint32_t crc = Crc32(data);
    const auto size = static_cast<uint32_t>(data.size());
    local += std::string("PK\x03\x04", 4) + LittleEndian<uint16_t>(20) + LittleEndian<uint16_t>(0) +
             LittleEndian<uint16_t>(0) + LittleEndian<uint32_t>(0) + LittleEndian<uint32_t>(crc) +
             LittleEndian<uint32_t>(size) + LittleEndian<uint32_t>(size) +
             LittleEndian<uint16_t>(static_cast<uint16_t>(name.size())) +
             LittleEndian<uint16_t>(0) + name + data;
    central +=
        std::string("PK\x01\x02", 4) + LittleEndian<uint16_t>(20) + LittleEndian<uint16_t>(20) +
        LittleEndian<uint16_t>(0) + LittleEndian<uint16_t>(0) + LittleEndian<uint32_t>(0) +
        LittleEndian<uint32_t>(crc) + LittleEndian<uint32_t>(size) + LittleEndian<uint32_t>(size) +
        LittleEndian<uint16_t>(static_cast<uint16_t>(name.size())) + LittleEndian<uint16_t>(0) +
        LittleEndian<uint16_t>(0) + LittleEndian<uint16_t>(0) + LittleEndian<uint16_t>(0) +
        LittleEndian<uint32_t>(0) + LittleEndian<uint32_t>(offset) + name;
  }
  const auto count = static_cast<uint16_t>(files.size());
  return local + central + std::string("PK\x05\x06", 4) + LittleEndian<uint16_t>(0) +
         LittleEndian<uint16_t>(0) + LittleEndian<uint16_t>(count) + LittleEndian<uint16_t>(count) +
         LittleEndian<uint32_t>(static_cast<uint32_t>(central.size())) +
         LittleEndian<uint32_t>(static_cast<uint32_t>(local.size())) + LittleEndian<uint16_t>(0);
}

template <typename T>
std::string ArrayBytes(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = litseg::test::TempDir(std::string("ckpt_") + info->name());
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// ---------------------------------------------------------------------------------------
// Real files

TEST_F(CheckpointTest, MicroPtAndSafetensorsAreBitIdentical) {
  LITSEG_REQUIRE_SHARED("sam2/micro/weights.pt");
  const fs::path pt = SharedPath("sam2/micro/weights.pt");
  const fs::path st = SharedPath("sam2/micro/weights.safetensors");
  EXPECT_EQ(DetectCheckpointFormat(pt), CheckpointFormat::kTorchZip);
  EXPECT_EQ(DetectCheckpointFormat(st), CheckpointFormat::kSafetensors);

  const TensorMap from_pt = LoadCheckpoint(pt);
  const litseg::sam2::SafetensorsFile from_st = ReadSafetensors(st);
  EXPECT_EQ(from_st.metadata.at("format"), "pt");
  ASSERT_EQ(from_pt.size(), from_st.tensors.size());
  ASSERT_GT(from_pt.size(), 300u);
  for (const auto& [name, tensor] : from_pt) {
    const torch::Tensor* other = from_st.tensors.Find(name);
    ASSERT_NE(other, nullptr) << name;
    EXPECT_EQ(tensor.scalar_type(), other->scalar_type()) << name;
    EXPECT_EQ(tensor.sizes(), other->sizes()) << name;
    EXPECT_EQ(TensorBytes(tensor), TensorBytes(*other)) << name;
  }

  // Parameter count from the micro configuration (the state dict also holds one buffer,
  // the prompt encoder's random-Fourier matrix).
  std::ifstream config_file(SharedPath("sam2/micro/config.json"));
  const auto config = nlohmann::json::parse(config_file);
  const int64_t parameter_count = config.at("weights").at("parameter_count").get<int64_t>();
  EXPECT_EQ(parameter_count, 1718866);
  const std::string buffer = "sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix";
  EXPECT_EQ(from_pt.ElementCount() - from_pt.At(buffer).numel(), parameter_count);
  EXPECT_EQ(from_pt.At("image_encoder.trunk.patch_embed.proj.weight").sizes(),
            (std::vector<int64_t>{16, 3, 7, 7}));
}

TEST_F(CheckpointTest, FormatIsRecognisedByContentNotExtension) {
  LITSEG_REQUIRE_SHARED("sam2/micro/weights.pt");
  fs::copy_file(SharedPath("sam2/micro/weights.pt"), dir_ / "weights.safetensors");
  fs::copy_file(SharedPath("sam2/micro/weights.safetensors"), dir_ / "weights.pt");
  const TensorMap a = LoadCheckpoint(dir_ / "weights.safetensors");
  const TensorMap b = LoadCheckpoint(dir_ / "weights.pt");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, tensor] : a) EXPECT_TRUE(torch::equal(tensor, b.At(name))) << name;
}

TEST_F(CheckpointTest, LargeFillSafetensorsMatchTheirSummary) {
  LITSEG_REQUIRE_SHARED("sam2/large_fill/summary.json");
  std::ifstream summary_file(SharedPath("sam2/large_fill/summary.json"));
  const auto summary = nlohmann::json::parse(summary_file);

  // The 1024x1024 input frame: its normalised statistics are recorded in the summary.
  const auto inputs = ReadSafetensors(SharedPath("sam2/large_fill/inputs.safetensors"));
  const torch::Tensor& frame = inputs.tensors.At("frame0_resized_1024_u8");
  ASSERT_EQ(frame.scalar_type(), torch::kUInt8);
  ASSERT_EQ(frame.sizes(), (std::vector<int64_t>{1024, 1024, 3}));
  const torch::Tensor mean = torch::tensor({0.485f, 0.456f, 0.406f});
  const torch::Tensor std = torch::tensor({0.229f, 0.224f, 0.225f});
  const torch::Tensor x = (frame.to(torch::kFloat32) / 255.0f - mean) / std;
  const auto& input_stats = summary.at("input").at("input_stats");
  EXPECT_NEAR(x.min().item<double>(), input_stats.at("min").get<double>(), 1e-6);
  EXPECT_NEAR(x.max().item<double>(), input_stats.at("max").get<double>(), 1e-6);
  EXPECT_NEAR(x.to(torch::kFloat64).mean().item<double>(), input_stats.at("mean").get<double>(),
              1e-5);

  for (const std::string model : {"t", "l"}) {
    const auto file =
        ReadSafetensors(SharedPath("sam2/large_fill/sam2.1_hiera_" + model + ".safetensors"));
    EXPECT_EQ(file.metadata.at("config"), "sam2.1_hiera_" + model + ".yaml");
    for (const auto& [name, info] : summary.at("models").at(model).at("tensors").items()) {
      const auto shape = info.at("shape").get<std::vector<int64_t>>();
      const int64_t channels = shape[1];
      const torch::Tensor& chan_mean = file.tensors.At(name + ".chan_mean");
      ASSERT_EQ(chan_mean.sizes(), (std::vector<int64_t>{channels})) << name;
      EXPECT_EQ(file.tensors.At(name + ".chan_std").sizes(), (std::vector<int64_t>{channels}));
      const int64_t step = info.at("subsample_step").get<int64_t>();
      EXPECT_EQ(file.tensors.At(name + ".sub").sizes(),
                (std::vector<int64_t>{1, channels, (shape[2] + step - 1) / step,
                                      (shape[3] + step - 1) / step}))
          << name;
      const auto rows = info.at("crop_rows").get<std::vector<int64_t>>();
      const auto cols = info.at("crop_cols").get<std::vector<int64_t>>();
      EXPECT_EQ(file.tensors.At(name + ".crop").sizes(),
                (std::vector<int64_t>{1, channels, rows[1] - rows[0], cols[1] - cols[0]}))
          << name;
      // Every channel has H*W values, so the mean of the channel means is the tensor mean.
      const double expected_mean = info.at("mean").get<double>();
      EXPECT_NEAR(chan_mean.to(torch::kFloat64).mean().item<double>(), expected_mean,
                  1e-5 * std::max(1.0, std::abs(expected_mean)))
          << model << " " << name;
      const torch::Tensor sub = file.tensors.At(name + ".sub");
      EXPECT_GE(sub.min().item<double>(), info.at("min").get<double>()) << name;
      EXPECT_LE(sub.max().item<double>(), info.at("max").get<double>()) << name;
    }
    // The fill's first patch-embedding values, bit for bit, from fill_check_*.json.
    std::ifstream check_file(SharedPath("sam2/large_fill/fill_check_" + model + ".json"));
    const auto check = nlohmann::json::parse(check_file);
    const torch::Tensor weight = file.tensors.At("patch_embed_weight_check").contiguous();
    bool found = false;
    for (const auto& entry : check.at("keys")) {
      if (entry.at("key") != "image_encoder.trunk.patch_embed.proj.weight") continue;
      found = true;
      const auto bits = entry.at("first4_f32_bits").get<std::vector<std::string>>();
      for (int i = 0; i < 4; ++i) {
        uint32_t actual;
        std::memcpy(&actual, weight.data_ptr<float>() + i, 4);
        EXPECT_EQ(actual, std::stoul(bits[i], nullptr, 16)) << model << " element " << i;
      }
    }
    EXPECT_TRUE(found);
  }
}

// ---------------------------------------------------------------------------------------
// Hand-built torch.save zips

// {"model": OrderedDict(...)} with tensors that share storages, as torch.save writes them.
std::string SharedStoragePickle(bool wrap_in_model) {
  PickleWriter p;
  p.Proto().EmptyDict();
  if (wrap_in_model) p.Str("model").Global("collections", "OrderedDict").EmptyTuple().Reduce();
  p.Mark();
  // a: [3, 4] over storage 0; b: its transpose; c: every second element from offset 2.
  p.Str("a").Tensor("FloatStorage", "0", 12, 0, {3, 4}, {4, 1});
  p.Str("b").Tensor("FloatStorage", "0", 12, 0, {4, 3}, {1, 4});
  p.Str("c").Tensor("FloatStorage", "0", 12, 2, {5}, {2});
  p.Str("h").Tensor("HalfStorage", "1", 3, 0, {3}, {1});
  p.Str("i").Tensor("LongStorage", "2", 2, 0, {2, 1}, {1, 1});
  // A parameter (torch._utils._rebuild_parameter(tensor, requires_grad, hooks)).
  p.Str("p").Global("torch._utils", "_rebuild_parameter").Mark();
  p.Tensor("BFloat16Storage", "3", 2, 0, {2}, {1});
  p.True().Global("collections", "OrderedDict").EmptyTuple().Reduce().Tuple().Reduce();
  p.Str("empty").Tensor("FloatStorage", "4", 0, 0, {0, 3}, {3, 1});
  p.SetItems();
  if (wrap_in_model) {
    // state_dict._metadata, restored by BUILD.
    p.EmptyDict().Str("_metadata").Global("collections", "OrderedDict").EmptyTuple().Reduce();
    p.Str("").EmptyDict().Str("version").Int(1).SetItem().SetItem().SetItem().Build();
    p.SetItem();
  }
  p.Stop();
  return p.bytes();
}

std::vector<std::pair<std::string, std::string>> SharedStorageRecords() {
  std::vector<float> floats(12);
  for (int i = 0; i < 12; ++i) floats[i] = static_cast<float>(i) + 0.5f;
  const std::vector<uint16_t> halves = {0x3c00, 0xc000, 0x3800};  // 1, -2, 0.5
  const std::vector<int64_t> longs = {-7, int64_t{1} << 40};
  const std::vector<uint16_t> bf16 = {0x3f80, 0x4040};  // 1, 3
  return {{"data/0", ArrayBytes(floats)},
          {"data/1", ArrayBytes(halves)},
          {"data/2", ArrayBytes(longs)},
          {"data/3", ArrayBytes(bf16)},
          {"data/4", ""}};
}

void ExpectSharedStorageTensors(const TensorMap& tensors) {
  ASSERT_EQ(tensors.Names(), (std::vector<std::string>{"a", "b", "c", "h", "i", "p", "empty"}));
  const torch::Tensor expected = torch::arange(12, torch::kFloat32).add(0.5f).reshape({3, 4});
  EXPECT_TRUE(torch::equal(tensors.At("a"), expected));
  EXPECT_TRUE(torch::equal(tensors.At("b"), expected.t()));
  EXPECT_TRUE(torch::equal(tensors.At("c"), torch::tensor({2.5f, 4.5f, 6.5f, 8.5f, 10.5f})));
  // Views keep sharing their storage, as in Python.
  EXPECT_EQ(tensors.At("a").data_ptr(), tensors.At("b").data_ptr());
  EXPECT_EQ(tensors.At("h").scalar_type(), torch::kFloat16);
  EXPECT_TRUE(
      torch::equal(tensors.At("h").to(torch::kFloat32), torch::tensor({1.0f, -2.0f, 0.5f})));
  EXPECT_EQ(tensors.At("i").scalar_type(), torch::kInt64);
  EXPECT_EQ(tensors.At("i")[1][0].item<int64_t>(), int64_t{1} << 40);
  EXPECT_EQ(tensors.At("i")[0][0].item<int64_t>(), -7);
  EXPECT_EQ(tensors.At("p").scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(tensors.At("p").to(torch::kFloat32), torch::tensor({1.0f, 3.0f})));
  EXPECT_EQ(tensors.At("empty").sizes(), (std::vector<int64_t>{0, 3}));
}

TEST_F(CheckpointTest, ZipWithSharedStoragesAndViews) {
  WriteTorchZip(dir_ / "shared.pt", SharedStoragePickle(true), SharedStorageRecords());
  ExpectSharedStorageTensors(LoadCheckpoint(dir_ / "shared.pt"));
}

TEST_F(CheckpointTest, BareStateDictIsAccepted) {
  WriteTorchZip(dir_ / "bare.pt", SharedStoragePickle(false), SharedStorageRecords());
  ExpectSharedStorageTensors(LoadCheckpoint(dir_ / "bare.pt"));
}

TEST_F(CheckpointTest, BigEndianZipIsByteSwapped) {
  auto records = SharedStorageRecords();
  for (auto& [name, data] : records) {
    const std::size_t size = name == "data/0" ? 4 : name == "data/2" ? 8 : 2;
    for (std::size_t i = 0; i + size <= data.size(); i += size)
      std::reverse(data.begin() + i, data.begin() + i + size);
  }
  records.emplace_back("byteorder", "big");
  WriteTorchZip(dir_ / "big.pt", SharedStoragePickle(true), records);
  ExpectSharedStorageTensors(LoadCheckpoint(dir_ / "big.pt"));
}

TEST_F(CheckpointTest, CheckpointWithoutStateDictNamesItsKeys) {
  PickleWriter p;
  p.Proto().EmptyDict().Mark().Str("epoch").Int(3).Str("weights").Tensor("FloatStorage", "0", 1, 0,
                                                                         {1}, {1});
  p.SetItems().Stop();
  WriteTorchZip(dir_ / "other.pt", p.bytes(), {{"data/0", ArrayBytes(std::vector<float>{1.0f})}});
  ExpectError([&] { LoadCheckpoint(dir_ / "other.pt"); },
              {"no 'model' entry", "'epoch'", "'weights'"});

  PickleWriter list;
  list.Proto().EmptyList().Stop();
  WriteTorchZip(dir_ / "list.pt", list.bytes(), {});
  ExpectError([&] { LoadCheckpoint(dir_ / "list.pt"); }, {"a list", "not a dict of tensors"});
}

TEST_F(CheckpointTest, ForbiddenGlobalsAreRefusedWithoutRunningThem) {
  const fs::path marker = dir_ / "pwned";
  const std::string command = "touch " + marker.string();
  const std::vector<std::pair<std::string, std::string>> globals = {
      {"os", "system"},
      {"posix", "system"},
      {"builtins", "eval"},
      {"builtins", "exec"},
      {"subprocess", "call"},
      {"torch", "load"},
      {"torch._utils", "_rebuild_device_tensor_from_numpy"},
      {"numpy.core.multiarray", "scalar"},
  };
  int index = 0;
  for (const auto& [module, name] : globals) {
    for (bool stack_global : {false, true}) {
      PickleWriter p;
      p.Proto().EmptyDict().Str("model");
      if (stack_global) {
        p.StackGlobal(module, name);
      } else {
        p.Global(module, name);
      }
      p.Mark().Str(command).Tuple().Reduce().SetItem().Stop();
      const fs::path path = dir_ / ("evil" + std::to_string(index++) + ".pt");
      WriteTorchZip(path, p.bytes(), {});
      ExpectError([&] { LoadCheckpoint(path); }, {"'" + module + "." + name + "'", "not allowed"},
                  module + "." + name);
    }
  }
  EXPECT_FALSE(fs::exists(marker));

  // Forbidden opcodes: class instantiation and the extension registry.
  const std::vector<std::pair<std::string, std::string>> opcodes = {
      {std::string("\x81", 1), "NEWOBJ"},
      {"i", "INST"},
      {std::string("\x82\x01", 2), "EXT"},
      {"o", "OBJ"},
      {std::string("\xff", 1), "unknown pickle opcode 0xff"}};
  for (const auto& [raw, label] : opcodes) {
    PickleWriter p;
    p.Proto().EmptyDict().Raw(raw).Stop();
    const fs::path path = dir_ / ("opcode" + std::to_string(index++) + ".pt");
    WriteTorchZip(path, p.bytes(), {});
    ExpectError([&] { LoadCheckpoint(path); }, {label}, label);
  }

  // An allowed name used in a forbidden way: calling a storage type.
  PickleWriter call_storage;
  call_storage.Proto().Global("torch", "FloatStorage").EmptyTuple().Reduce().Stop();
  WriteTorchZip(dir_ / "storage_call.pt", call_storage.bytes(), {});
  ExpectError([&] { LoadCheckpoint(dir_ / "storage_call.pt"); },
              {"torch.FloatStorage", "cannot be called"});

  // A whole pickled nn.Module (legacy 'module' persistent id).
  PickleWriter module_pid;
  module_pid.Proto().Mark().Str("module").None().None().None().Tuple().PersId().Stop();
  WriteTorchZip(dir_ / "module.pt", module_pid.bytes(), {});
  ExpectError([&] { LoadCheckpoint(dir_ / "module.pt"); }, {"nn.Module", "state_dict"});
}

TEST_F(CheckpointTest, InconsistentStoragesAreRejected) {
  const auto twelve_floats = ArrayBytes(std::vector<float>(12, 1.0f));
  {  // a view reaching past the end of its storage
    PickleWriter p;
    p.Proto()
        .EmptyDict()
        .Str("x")
        .Tensor("FloatStorage", "0", 12, 0, {4, 4}, {4, 1})
        .SetItem()
        .Stop();
    WriteTorchZip(dir_ / "oob.pt", p.bytes(), {{"data/0", twelve_floats}});
    ExpectError([&] { LoadCheckpoint(dir_ / "oob.pt"); }, {"reaches element 15", "12 elements"});
  }
  {  // a storage offset past the end
    PickleWriter p;
    p.Proto().EmptyDict().Str("x").Tensor("FloatStorage", "0", 12, 11, {2}, {1}).SetItem().Stop();
    WriteTorchZip(dir_ / "offset.pt", p.bytes(), {{"data/0", twelve_floats}});
    ExpectError([&] { LoadCheckpoint(dir_ / "offset.pt"); }, {"reaches element 12"});
  }
  {  // record size differs from the pickle's numel
    PickleWriter p;
    p.Proto().EmptyDict().Str("x").Tensor("FloatStorage", "0", 10, 0, {10}, {1}).SetItem().Stop();
    WriteTorchZip(dir_ / "size.pt", p.bytes(), {{"data/0", twelve_floats}});
    ExpectError([&] { LoadCheckpoint(dir_ / "size.pt"); }, {"data/0", "48 bytes", "40 bytes"});
  }
  {  // a missing data record
    PickleWriter p;
    p.Proto().EmptyDict().Str("x").Tensor("FloatStorage", "7", 12, 0, {12}, {1}).SetItem().Stop();
    WriteTorchZip(dir_ / "missing.pt", p.bytes(), {{"data/0", twelve_floats}});
    ExpectError([&] { LoadCheckpoint(dir_ / "missing.pt"); }, {"data/7", "missing"});
  }
  {  // a storage claiming more elements than the file could hold
    PickleWriter p;
    p.Proto()
        .EmptyDict()
        .Str("x")
        .Tensor("FloatStorage", "0", int64_t{1} << 40, 0, {1}, {1})
        .SetItem()
        .Stop();
    WriteTorchZip(dir_ / "huge.pt", p.bytes(), {{"data/0", twelve_floats}});
    ExpectError([&] { LoadCheckpoint(dir_ / "huge.pt"); }, {"more than the file can hold"});
  }
  {  // a non-tensor value inside the state dict
    PickleWriter p;
    p.Proto().EmptyDict().Str("model").EmptyDict().Str("x").Int(5).SetItem().SetItem().Stop();
    WriteTorchZip(dir_ / "int.pt", p.bytes(), {});
    ExpectError([&] { LoadCheckpoint(dir_ / "int.pt"); }, {"'x'", "integer 5", "not a tensor"});
  }
  {  // garbage pickle
    WriteTorchZip(dir_ / "garbage.pt", std::string("\x80\x02}q\x00(X\xff\xff\xff\x7f", 11), {});
    ExpectError([&] { LoadCheckpoint(dir_ / "garbage.pt"); }, {"truncated"});
  }
  {  // a list that contains itself (would be a reference cycle)
    PickleWriter p;
    p.Proto().EmptyList().Put(0).Get(0).Raw("a").Stop();
    WriteTorchZip(dir_ / "cycle.pt", p.bytes(), {});
    ExpectError([&] { LoadCheckpoint(dir_ / "cycle.pt"); }, {"APPEND"});
  }
  {  // nesting deep enough to overflow a recursive destructor
    PickleWriter p;
    p.Proto();
    for (int i = 0; i < 200000; ++i) p.EmptyList();
    for (int i = 0; i < 199999; ++i) p.Raw("a");
    p.Stop();
    WriteTorchZip(dir_ / "deep.pt", p.bytes(), {});
    ExpectError([&] { LoadCheckpoint(dir_ / "deep.pt"); }, {"nested too deeply"});
  }
}

TEST_F(CheckpointTest, TruncatedMicroZipIsRejected) {
  LITSEG_REQUIRE_SHARED("sam2/micro/weights.pt");
  const std::string bytes = ReadBytes(SharedPath("sam2/micro/weights.pt"));
  ASSERT_GT(bytes.size(), 100000u);
  for (std::size_t cut :
       {std::size_t{1}, std::size_t{4}, std::size_t{30}, std::size_t{1000}, std::size_t{50300},
        bytes.size() / 3, bytes.size() / 2, bytes.size() - 30000, bytes.size() - 100,
        bytes.size() - 22, bytes.size() - 1}) {
    const fs::path path = dir_ / "cut.pt";
    WriteBytes(path, bytes.substr(0, cut));
    ExpectError([&] { LoadCheckpoint(path); }, {"cut.pt"}, "cut at " + std::to_string(cut));
  }
  // Empty file.
  WriteBytes(dir_ / "empty.pt", "");
  ExpectError([&] { LoadCheckpoint(dir_ / "empty.pt"); }, {"empty"});
}

TEST_F(CheckpointTest, ForeignFilesAreRejected) {
  // A JPEG (SOI + JFIF APP0 header + junk), a PNG signature, text.
  WriteBytes(dir_ / "photo.pt", std::string("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01", 13) +
                                    std::string(2000, '\x55'));
  ExpectError([&] { LoadCheckpoint(dir_ / "photo.pt"); }, {"JPEG", "not a checkpoint"});
  WriteBytes(dir_ / "image.pt", std::string("\x89PNG\r\n\x1a\n", 8) + std::string(100, '\0'));
  ExpectError([&] { LoadCheckpoint(dir_ / "image.pt"); }, {"PNG"});
  WriteBytes(dir_ / "notes.pt", "just some text, not weights\n");
  ExpectError([&] { LoadCheckpoint(dir_ / "notes.pt"); }, {"not a checkpoint", "6a 75 73 74"});

  // Zips that are not torch.save checkpoints.
  WriteBytes(dir_ / "flat.pt", StoredZip({{"hello.txt", "hello"}}));
  ExpectError([&] { LoadCheckpoint(dir_ / "flat.pt"); },
              {"zip archive", "not a readable PyTorch checkpoint"});
  WriteBytes(dir_ / "folder.pt", StoredZip({{"docs/readme.txt", "hi"}, {"docs/data.pkl", "x"}}));
  ExpectError([&] { LoadCheckpoint(dir_ / "folder.pt"); }, {"zip archive"});
  {
    caffe2::serialize::PyTorchStreamWriter writer((dir_ / "nodata.pt").string());
    writer.writeRecord("other.txt", "abc", 3);
    writer.writeEndOfFile();
  }
  ExpectError([&] { LoadCheckpoint(dir_ / "nodata.pt"); }, {"without data.pkl"});

  // A Python pickle that is not a torch.save stream.
  PickleWriter p;
  p.Proto().EmptyDict().Stop();
  WriteBytes(dir_ / "plain.pkl", p.bytes());
  ExpectError([&] { LoadCheckpoint(dir_ / "plain.pkl"); }, {"wrong magic number"});
  ExpectError([&] { LoadCheckpoint(dir_ / "does_not_exist.pt"); }, {"does_not_exist.pt"});
}

// ---------------------------------------------------------------------------------------
// Legacy (non-zip) torch.save stream

std::string LegacyHeader() {
  PickleWriter magic;
  magic.Proto().Long1(std::string("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10)).Stop();
  PickleWriter version;
  version.Proto().Int(1001).Stop();
  PickleWriter sys_info;
  sys_info.Proto().EmptyDict().Mark().Str("protocol_version").Int(1001).Str("little_endian").True();
  sys_info.Str("type_sizes")
      .EmptyDict()
      .Mark()
      .Str("short")
      .Int(2)
      .Str("int")
      .Int(4)
      .Str("long")
      .Int(8);
  sys_info.SetItems().SetItems().Stop();
  return magic.bytes() + version.bytes() + sys_info.bytes();
}

std::string LegacyStorage(const std::string& data, int64_t count) {
  return LittleEndian<int64_t>(count) + data;
}

// {"model": {"w": [2, 3] of storage A, "wt": its transpose, "tail": a legacy view of A,
//  "n": int64 storage B}}, storage keys listed in the order "B", "A".
std::string LegacyFile() {
  PickleWriter main;
  main.Proto().EmptyDict().Str("model").EmptyDict().Mark();
  main.Str("w").Tensor("FloatStorage", "A", 6, 0, {2, 3}, {3, 1}, /*legacy=*/true);
  main.Str("wt").Tensor("FloatStorage", "A", 6, 0, {3, 2}, {1, 3}, true);
  main.Str("tail").Tensor("FloatStorage", "A", 6, 1, {2}, {1}, true, /*view=*/{3, 3});
  main.Str("n").Tensor("LongStorage", "B", 2, 0, {2}, {1}, true);
  main.SetItems().SetItem().Stop();
  PickleWriter keys;
  keys.Proto().EmptyList().Mark().Str("B").Str("A").Appends().Stop();
  return LegacyHeader() + main.bytes() + keys.bytes() +
         LegacyStorage(ArrayBytes(std::vector<int64_t>{42, -1}), 2) +
         LegacyStorage(ArrayBytes(std::vector<float>{1, 2, 3, 4, 5, 6}), 6);
}

TEST_F(CheckpointTest, LegacyFormatIsLoaded) {
  WriteBytes(dir_ / "legacy.pth", LegacyFile());
  EXPECT_EQ(DetectCheckpointFormat(dir_ / "legacy.pth"), CheckpointFormat::kTorchLegacy);
  const TensorMap tensors = LoadCheckpoint(dir_ / "legacy.pth");
  ASSERT_EQ(tensors.Names(), (std::vector<std::string>{"w", "wt", "tail", "n"}));
  const torch::Tensor w = torch::tensor({1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f}).reshape({2, 3});
  EXPECT_TRUE(torch::equal(tensors.At("w"), w));
  EXPECT_TRUE(torch::equal(tensors.At("wt"), w.t()));
  // The view starts at element 3 of A; the tensor at offset 1 within the view.
  EXPECT_TRUE(torch::equal(tensors.At("tail"), torch::tensor({5.0f, 6.0f})));
  EXPECT_TRUE(torch::equal(tensors.At("n"), torch::tensor({int64_t{42}, int64_t{-1}})));
}

TEST_F(CheckpointTest, BrokenLegacyFilesAreRejected) {
  const std::string good = LegacyFile();
  for (std::size_t cut = 1; cut < good.size(); cut += 7) {
    WriteBytes(dir_ / "cut.pth", good.substr(0, cut));
    ExpectError([&] { LoadCheckpoint(dir_ / "cut.pth"); }, {"cut.pth"},
                "cut at " + std::to_string(cut));
  }
  WriteBytes(dir_ / "cut.pth", good.substr(0, good.size() - 1));
  ExpectError([&] { LoadCheckpoint(dir_ / "cut.pth"); }, {"ends early"});

  // The element count before a storage disagrees with the pickle.
  std::string wrong_count = good;
  const std::size_t a_start = good.size() - (8 + 6 * 4);
  wrong_count.replace(a_start, 8, LittleEndian<int64_t>(5));
  WriteBytes(dir_ / "count.pth", wrong_count);
  ExpectError([&] { LoadCheckpoint(dir_ / "count.pth"); }, {"storage 'A'", "5 elements"});

  // A storage whose data is never written (its key is absent from the key list).
  PickleWriter main;
  main.Proto()
      .EmptyDict()
      .Str("x")
      .Tensor("FloatStorage", "A", 1, 0, {1}, {1}, true)
      .SetItem()
      .Stop();
  PickleWriter keys;
  keys.Proto().EmptyList().Stop();
  WriteBytes(dir_ / "nodata.pth",
             LegacyHeader() + main.bytes() + keys.bytes() + std::string(12, '\0'));
  ExpectError([&] { LoadCheckpoint(dir_ / "nodata.pth"); }, {"storage 'A'", "missing"});
}

// ---------------------------------------------------------------------------------------
// Safetensors

TensorMap AllDtypeTensors() {
  torch::manual_seed(3);
  TensorMap tensors;
  tensors.Insert("f32", torch::randn({3, 5}));
  tensors.Insert("f32_transposed", torch::randn({4, 6}).t());  // not contiguous
  tensors.Insert("f16", torch::randn({7}).to(torch::kFloat16));
  tensors.Insert("bf16", torch::randn({2, 2, 2}).to(torch::kBFloat16));
  tensors.Insert("f64", torch::randn({3}, torch::kFloat64));
  tensors.Insert("i64", torch::randint(-1000000, 1000000, {4}, torch::kInt64));
  tensors.Insert("i32", torch::randint(-1000, 1000, {2, 3}, torch::kInt32));
  tensors.Insert("i16", torch::randint(-1000, 1000, {3}, torch::kInt16));
  tensors.Insert("i8", torch::randint(-100, 100, {5}, torch::kInt8));
  tensors.Insert("u8", torch::randint(0, 255, {6}, torch::kUInt8));
  tensors.Insert("bool", torch::randint(0, 2, {5}, torch::kInt64).to(torch::kBool));
  tensors.Insert("scalar", torch::tensor(2.5f).reshape({}));
  tensors.Insert("empty", torch::zeros({0, 3}));
  return tensors;
}

TEST_F(CheckpointTest, SafetensorsRoundTripIsExact) {
  const TensorMap tensors = AllDtypeTensors();
  const std::map<std::string, std::string> metadata = {{"rank", "8"}, {"note", "ünïcode ok"}};
  const fs::path path = dir_ / "all.safetensors";
  SaveSafetensors(path, tensors, metadata);
  EXPECT_FALSE(fs::exists(path.string() + ".tmp-" + std::to_string(::getpid())));

  const std::string bytes = ReadBytes(path);
  uint64_t header_size;
  std::memcpy(&header_size, bytes.data(), 8);
  EXPECT_EQ(header_size % 8, 0u);
  const auto header = nlohmann::json::parse(bytes.substr(8, header_size));
  EXPECT_EQ(header.at("f32_transposed").at("shape"), nlohmann::json::array({6, 4}));
  EXPECT_EQ(header.at("bf16").at("dtype"), "BF16");

  const auto file = ReadSafetensors(path);
  EXPECT_EQ(file.metadata, metadata);
  ASSERT_EQ(file.tensors.Names(), tensors.Names());
  for (const auto& [name, tensor] : tensors) {
    const torch::Tensor& loaded = file.tensors.At(name);
    EXPECT_EQ(loaded.scalar_type(), tensor.scalar_type()) << name;
    EXPECT_EQ(loaded.sizes(), tensor.sizes()) << name;
    EXPECT_EQ(TensorBytes(loaded), TensorBytes(tensor)) << name;
  }
  // And through the generic loader.
  EXPECT_EQ(LoadCheckpoint(path).size(), tensors.size());
}

TEST_F(CheckpointTest, TruncatedSafetensorsAreRejected) {
  TensorMap tensors;
  tensors.Insert("a", torch::randn({3, 4}));
  tensors.Insert("b", torch::arange(5, torch::kInt64));
  const fs::path path = dir_ / "small.safetensors";
  SaveSafetensors(path, tensors, {{"k", "v"}});
  const std::string bytes = ReadBytes(path);
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    WriteBytes(dir_ / "cut.safetensors", bytes.substr(0, cut));
    ExpectError([&] { ReadSafetensors(dir_ / "cut.safetensors"); }, {"cut.safetensors"},
                "cut at " + std::to_string(cut));
    ExpectError([&] { LoadCheckpoint(dir_ / "cut.safetensors"); }, {"cut.safetensors"},
                "cut at " + std::to_string(cut));
  }
  ExpectError([&] { ReadSafetensors(dir_ / "cut.safetensors"); }, {"truncated"});
}

TEST_F(CheckpointTest, MalformedSafetensorsHeadersAreRejected) {
  const auto file_with = [&](const std::string& header, std::size_t data_size) {
    const fs::path path = dir_ / "bad.safetensors";
    WriteBytes(path, LittleEndian<uint64_t>(header.size()) + header + std::string(data_size, '\0'));
    return path;
  };
  const auto expect = [&](const std::string& header, std::size_t data_size,
                          const std::vector<std::string>& needles) {
    const fs::path path = file_with(header, data_size);
    ExpectError([&] { ReadSafetensors(path); }, needles, header);
  };
  expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, {"not valid JSON"});
  expect("[1,2,3]", 0, {"not a JSON object"});
  expect("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
         {"F8_E4M3", "not supported"});
  expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, {"invalid shape"});
  expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
         {"ends at byte 8", "truncated"});
  expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, {"needs 12"});
  expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8,
         {"end before they begin"});
  expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, {"contiguous"});
  expect(
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
      12, {"contiguous"});
  expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16,
         {"trailing bytes"});
  expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, {"data_offsets"});
  expect("{\"__metadata__\":{\"n\":3}}", 0, {"metadata entry 'n'"});
  expect("{\"a\":{\"dtype\":\"U8\",\"shape\":[4611686018427387904,8],\"data_offsets\":[0,8]}}", 8,
         {"overflows"});
  {  // header length larger than the file / absurdly large
    const fs::path path = dir_ / "len.safetensors";
    WriteBytes(path, LittleEndian<uint64_t>(1000) + "{}");
    ExpectError([&] { ReadSafetensors(path); }, {"exceeds the file size"});
    WriteBytes(path, LittleEndian<uint64_t>(uint64_t{1} << 60) + "{}");
    ExpectError([&] { ReadSafetensors(path); }, {"implausible"});
  }
  // An empty header is a valid, empty file.
  EXPECT_TRUE(ReadSafetensors(file_with("{}      ", 0)).tensors.empty());
}

TEST_F(CheckpointTest, TruncatedMicroSafetensorsAreRejected) {
  LITSEG_REQUIRE_SHARED("sam2/micro/weights.safetensors");
  const std::string bytes = ReadBytes(SharedPath("sam2/micro/weights.safetensors"));
  for (std::size_t cut :
       {std::size_t{7}, std::size_t{100}, std::size_t{43776}, bytes.size() / 2, bytes.size() - 1}) {
    WriteBytes(dir_ / "cut.safetensors", bytes.substr(0, cut));
    ExpectError([&] { LoadCheckpoint(dir_ / "cut.safetensors"); }, {"cut.safetensors"},
                "cut at " + std::to_string(cut));
  }
}

// ---------------------------------------------------------------------------------------
// LoadStateDict

struct TinyNetImpl : torch::nn::Module {
  TinyNetImpl() {
    linear = register_module("linear", torch::nn::Linear(4, 3));
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 5, 3)));
    running = register_buffer("running", torch::zeros({5}));
    steps = register_buffer("steps", torch::zeros({1}, torch::kInt64));
  }
  torch::nn::Linear linear{nullptr};
  torch::nn::Conv2d conv{nullptr};
  torch::Tensor running, steps;
};
TORCH_MODULE(TinyNet);

// A complete state dict for TinyNet with fresh values.
TensorMap TinyNetTensors(uint64_t seed) {
  torch::manual_seed(seed);
  TensorMap tensors;
  tensors.Insert("linear.weight", torch::randn({3, 4}));
  tensors.Insert("linear.bias", torch::randn({3}));
  tensors.Insert("conv.weight", torch::randn({5, 2, 3, 3}));
  tensors.Insert("conv.bias", torch::randn({5}));
  tensors.Insert("running", torch::randn({5}));
  tensors.Insert("steps", torch::tensor({int64_t{17}}));
  return tensors;
}

// The module's current values, copied.
TensorMap Snapshot(torch::nn::Module& module) {
  TensorMap tensors;
  for (const auto& item : module.named_parameters())
    tensors.Insert(item.key(), item.value().detach().clone());
  for (const auto& item : module.named_buffers()) tensors.Insert(item.key(), item.value().clone());
  return tensors;
}

void ExpectModuleEquals(torch::nn::Module& module, const TensorMap& expected) {
  const TensorMap actual = Snapshot(module);
  ASSERT_EQ(actual.size(), expected.size());
  for (const auto& [name, tensor] : expected)
    EXPECT_TRUE(torch::equal(actual.At(name), tensor.to(actual.At(name).scalar_type()))) << name;
}

TEST(LoadStateDictTest, LoadsEveryParameterAndBuffer) {
  TinyNet net;
  const TensorMap tensors = TinyNetTensors(1);
  const LoadReport report = LoadStateDict(*net, tensors);
  EXPECT_EQ(report.loaded_tensors, 6);
  EXPECT_EQ(report.loaded_elements, 12 + 3 + 90 + 5 + 5 + 1);
  EXPECT_TRUE(report.missing.empty() && report.unexpected.empty() && report.converted.empty());
  ExpectModuleEquals(*net, tensors);
  EXPECT_TRUE(net->linear->weight.requires_grad());  // still a trainable parameter
  // The module computes with the loaded values.
  const torch::Tensor x = torch::randn({2, 4});
  EXPECT_TRUE(
      torch::allclose(net->linear->forward(x),
                      torch::addmm(tensors.At("linear.bias"), x, tensors.At("linear.weight").t())));
  EXPECT_NE(report.Summary().find("loaded 6 tensors"), std::string::npos);
}

TEST(LoadStateDictTest, ConvertsHalfAndBFloat16ToTheParameterDtype) {
  TinyNet net;
  TensorMap tensors = TinyNetTensors(2);
  tensors.Set("linear.weight", tensors.At("linear.weight").to(torch::kFloat16));
  tensors.Set("conv.weight", tensors.At("conv.weight").to(torch::kBFloat16));
  const LoadReport report = LoadStateDict(*net, tensors);
  EXPECT_EQ(report.converted, (std::vector<std::string>{"linear.weight", "conv.weight"}));
  EXPECT_EQ(net->linear->weight.scalar_type(), torch::kFloat32);
  ExpectModuleEquals(*net, tensors);
}

TEST(LoadStateDictTest, ProblemsAreReportedAndNothingIsCopied) {
  TinyNet net;
  const TensorMap before = Snapshot(*net);
  {
    TensorMap tensors;
    for (const auto& [name, tensor] : TinyNetTensors(3))
      if (name != "conv.bias") tensors.Insert(name, tensor);
    ExpectError([&] { LoadStateDict(*net, tensors); }, {"1 missing (conv.bias)"});
  }
  {
    TensorMap tensors = TinyNetTensors(3);
    tensors.Set("linear.weight", torch::randn({4, 3}));
    ExpectError([&] { LoadStateDict(*net, tensors); },
                {"1 with a wrong shape", "linear.weight: checkpoint [4, 3] vs model [3, 4]"});
  }
  {
    TensorMap tensors = TinyNetTensors(3);
    tensors.Insert("extra.weight", torch::randn({2}));
    ExpectError([&] { LoadStateDict(*net, tensors); }, {"1 unexpected (extra.weight)"});
    ExpectModuleEquals(*net, before);
    LoadOptions options;
    options.allow_unexpected = true;
    const LoadReport report = LoadStateDict(*net, tensors, options);
    EXPECT_EQ(report.unexpected, (std::vector<std::string>{"extra.weight"}));
    EXPECT_EQ(report.loaded_tensors, 6);
  }
  {
    TinyNet fresh;
    const TensorMap fresh_before = Snapshot(*fresh);
    TensorMap tensors = TinyNetTensors(4);
    tensors.Set("steps", torch::tensor({2.0f}));  // float into an int64 buffer
    ExpectError([&] { LoadStateDict(*fresh, tensors); },
                {"incompatible dtype", "steps: checkpoint Float vs model Long"});
    tensors.Set("steps", torch::tensor({int64_t{2}}));
    tensors.Set("running", torch::tensor({1, 2, 3, 4, 5}, torch::kInt32));  // int into float
    ExpectError([&] { LoadStateDict(*fresh, tensors); },
                {"running: checkpoint Int vs model Float"});
    ExpectModuleEquals(*fresh, fresh_before);
  }
  {  // many problems: counts, and only the first few names
    TensorMap tensors;
    for (int i = 0; i < 9; ++i) tensors.Insert("junk" + std::to_string(i), torch::zeros({1}));
    LoadOptions options;
    options.max_listed = 2;
    ExpectError([&] { LoadStateDict(*net, tensors, options); },
                {"6 missing (linear.weight, linear.bias, ... 4 more)",
                 "9 unexpected (junk0, junk1, ... 7 more)"});
  }
  {  // allow_missing keeps the current values of what is absent
    TinyNet partial;
    const TensorMap partial_before = Snapshot(*partial);
    TensorMap tensors;
    tensors.Insert("linear.bias", torch::ones({3}));
    LoadOptions options;
    options.allow_missing = true;
    const LoadReport report = LoadStateDict(*partial, tensors, options);
    EXPECT_EQ(report.missing.size(), 5u);
    EXPECT_EQ(report.loaded_tensors, 1);
    EXPECT_TRUE(torch::equal(partial->linear->bias, torch::ones({3})));
    EXPECT_TRUE(torch::equal(partial->linear->weight, partial_before.At("linear.weight")));
  }
}

TEST(LoadStateDictTest, SavedModuleLoadsIntoAnotherInstance) {
  TinyNet source;
  TinyNet target;
  const fs::path dir = litseg::test::TempDir("ckpt_module_roundtrip");
  const TensorMap state = Snapshot(*source);
  SaveSafetensors(dir / "tiny.safetensors", state, {{"format", "pt"}});
  LoadStateDict(*target, LoadCheckpoint(dir / "tiny.safetensors"));
  ExpectModuleEquals(*target, state);
  fs::remove_all(dir);
}

}  // namespace
