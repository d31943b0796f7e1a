#include "litseg/sam2/config.h"

#include <fstream>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/shared_data.h"
#include "litseg/core/error.h"
#include "litseg/sam2/hiera.h"
#include "litseg/sam2/image_encoder.h"

namespace litseg::sam2 {
namespace {

using nlohmann::json;

const char* const kNames[] = {"sam2.1_hiera_t", "sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l", "micro"};

json ReadJson(const std::filesystem::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}

// "a.b.c" paths of every non-object value (lists count as one value).
void CollectKeys(const json& object, const std::string& prefix, std::set<std::string>& out) {
  for (const auto& item : object.items()) {
    const std::string path = prefix + item.key();
    if (item.value().is_object()) {
      CollectKeys(item.value(), path + ".", out);
    } else {
      out.insert(path);
    }
  }
}

std::string ErrorOf(const std::string& text) {
  try {
    ParseConfigJson(text, "test.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Sam2Config, EveryBuiltInConfigLoadsAndRoundTrips) {
  for (const char* name : kNames) {
    SCOPED_TRACE(name);
    const Sam2Config config = LoadNamedConfig(name);
    EXPECT_EQ(config.name, name);
    const std::string text = ConfigToJson(config);
    const Sam2Config again = ParseConfigJson(text, "round trip");
    EXPECT_EQ(ConfigToJson(again), text);
  }
}

TEST(Sam2Config, BuiltInFilesSpellOutEveryKey) {
  // A file that relies on defaults would silently change when a default changes.
  const json defaults = json::parse(ConfigToJson(Sam2Config{}));
  for (const char* name : kNames) {
    SCOPED_TRACE(name);
    const json file = ReadJson(std::filesystem::path(LITSEG_TEST_SOURCE_DIR) / "models/configs" /
                               (std::string(name) + ".json"));
    std::set<std::string> expected, present;
    CollectKeys(defaults, "", expected);
    CollectKeys(file, "", present);
    EXPECT_EQ(present, expected);
  }
}

TEST(Sam2Config, LargeDefaultsEqualTheLargeFile) {
  EXPECT_EQ(ConfigToJson(LoadNamedConfig("sam2.1_hiera_l")), ConfigToJson(Sam2Config{}));
}

TEST(Sam2Config, RejectsUnknownKeysNamingThem) {
  EXPECT_NE(ErrorOf(R"({"image_sise": 1024})").find("image_sise"), std::string::npos);
  const std::string nested = ErrorOf(R"({"image_encoder": {"trunk": {"embed_dims": 96}}})");
  EXPECT_NE(nested.find("image_encoder.trunk.embed_dims"), std::string::npos) << nested;
  EXPECT_NE(nested.find("test.json"), std::string::npos) << nested;
}

TEST(Sam2Config, RejectsWrongTypesAndBadJson) {
  EXPECT_NE(ErrorOf(R"({"image_size": "big"})").find("image_size"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"image_size": 10.5})").find("integer"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"image_encoder": {"trunk": {"stages": [1, "x"]}}})").find("stages"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"memory_attention": {"feat_sizes": [64]}})").find("feat_sizes"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"image_size": )").find("not valid JSON"), std::string::npos);
  EXPECT_NE(ErrorOf(R"([1, 2])").find("object"), std::string::npos);
}

TEST(Sam2Config, RejectsInconsistentSizes) {
  // One stage fewer in window_spec than in stages.
  EXPECT_NE(ErrorOf(R"({"image_encoder": {"trunk": {"window_spec": [8, 4, 16]}}})").find("window_spec"),
            std::string::npos);
  // Neck channels that do not match the trunk's stage widths.
  EXPECT_NE(ErrorOf(R"({"image_encoder": {"neck": {"backbone_channel_list": [768, 384, 192, 96]}}})")
                .find("backbone_channel_list"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"image_encoder": {"trunk": {"global_att_blocks": [48]}}})").find("global_att_blocks"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"image_size": 1000})").find("image_size"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"memory_attention": {"kv_in_dim": 32}})").find("kv_in_dim"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"image_encoder": {"neck": {"fuse_type": "max"}}})").find("fuse_type"), std::string::npos);
}

TEST(Sam2Config, UnknownNameListsWhereItLooked) {
  try {
    LoadNamedConfig("sam2.1_hiera_xl");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sam2.1_hiera_xl"), std::string::npos);
  }
  EXPECT_THROW(LoadNamedConfig("/nonexistent/dir/config.json"), Error);
}

// The block table of every official configuration, as recorded from the Python model.
TEST(Sam2Config, HieraLayoutMatchesOfficialBlockTables) {
  LITSEG_REQUIRE_SHARED("sam2/keys/sam2.1_hiera_t.json");
  for (const std::string model : {"t", "s", "b+", "l"}) {
    SCOPED_TRACE(model);
    const json keys = ReadJson(test::SharedPath("sam2/keys/sam2.1_hiera_" + model + ".json"));
    const json& hiera = keys.at("hiera");
    const Sam2Config config = LoadNamedConfig("sam2.1_hiera_" + model);
    const HieraConfig& trunk = config.image_encoder.trunk;
    const HieraLayout layout = ComputeHieraLayout(trunk);
    EXPECT_EQ(layout.stage_ends, hiera.at("stage_ends").get<std::vector<int>>());
    EXPECT_EQ(layout.q_pool_blocks, hiera.at("q_pool_blocks").get<std::vector<int>>());
    EXPECT_EQ(trunk.global_att_blocks, hiera.at("global_att_blocks").get<std::vector<int>>());
    EXPECT_EQ(trunk.window_spec, hiera.at("window_spec").get<std::vector<int>>());
    EXPECT_EQ(std::vector<int>(trunk.window_pos_embed_bkg_spatial_size.begin(),
                               trunk.window_pos_embed_bkg_spatial_size.end()),
              hiera.at("window_pos_embed_bkg_spatial_size").get<std::vector<int>>());
    EXPECT_EQ(layout.channel_list, hiera.at("channel_list").get<std::vector<int>>());
    EXPECT_EQ(config.image_encoder.neck.backbone_channel_list, hiera.at("channel_list").get<std::vector<int>>());
    const json& blocks = hiera.at("blocks");
    ASSERT_EQ(layout.blocks.size(), blocks.size());
    for (size_t i = 0; i < blocks.size(); ++i) {
      SCOPED_TRACE("block " + std::to_string(i));
      const json& ref = blocks[i];
      const HieraBlockSpec& b = layout.blocks[i];
      EXPECT_EQ(b.dim, ref.at("dim").get<int>());
      EXPECT_EQ(b.dim_out, ref.at("dim_out").get<int>());
      EXPECT_EQ(b.num_heads, ref.at("num_heads").get<int>());
      EXPECT_EQ(b.window_size, ref.at("window_size").get<int>());
      EXPECT_EQ(b.q_pool, !ref.at("q_stride").is_null());
      EXPECT_EQ(b.window_size == 0, ref.at("global_attention").get<bool>());
      EXPECT_EQ(b.mlp_hidden, ref.at("mlp_hidden").get<int>());
    }
  }
}

// The micro configuration against the flat hyper-parameter list of its generator.
TEST(Sam2Config, MicroMatchesItsReferenceDescription) {
  LITSEG_REQUIRE_SHARED("sam2/micro/config.json");
  const json flat = ReadJson(test::SharedPath("sam2/micro/config.json")).at("flat");
  const Sam2Config c = LoadNamedConfig("micro");
  EXPECT_EQ(c.image_size, flat.at("image_size").get<int>());
  EXPECT_EQ(c.backbone_stride, flat.at("backbone_stride").get<int>());
  EXPECT_EQ(c.image_encoder.scalp, flat.at("image_encoder.scalp").get<int>());
  const HieraConfig& t = c.image_encoder.trunk;
  EXPECT_EQ(t.embed_dim, flat.at("trunk.embed_dim").get<int>());
  EXPECT_EQ(t.num_heads, flat.at("trunk.num_heads").get<int>());
  EXPECT_EQ(t.stages, flat.at("trunk.stages").get<std::vector<int>>());
  EXPECT_EQ(t.global_att_blocks, flat.at("trunk.global_att_blocks").get<std::vector<int>>());
  EXPECT_EQ(t.window_spec, flat.at("trunk.window_spec").get<std::vector<int>>());
  EXPECT_EQ(t.q_pool, flat.at("trunk.q_pool").get<int>());
  EXPECT_EQ(t.dim_mul, flat.at("trunk.dim_mul").get<double>());
  EXPECT_EQ(t.mlp_ratio, flat.at("trunk.mlp_ratio").get<double>());
  const FpnNeckConfig& n = c.image_encoder.neck;
  EXPECT_EQ(n.d_model, flat.at("neck.d_model").get<int>());
  EXPECT_EQ(n.backbone_channel_list, flat.at("neck.backbone_channel_list").get<std::vector<int>>());
  EXPECT_EQ(n.fpn_top_down_levels, flat.at("neck.fpn_top_down_levels").get<std::vector<int>>());
  EXPECT_EQ(n.fpn_interp_model, flat.at("neck.fpn_interp_model").get<std::string>());
  EXPECT_EQ(c.memory_attention.d_model, flat.at("memory_attention.d_model").get<int>());
  EXPECT_EQ(c.memory_attention.num_layers, flat.at("memory_attention.num_layers").get<int>());
  EXPECT_EQ(c.memory_attention.dim_feedforward, flat.at("memory_attention.layer.dim_feedforward").get<int>());
  EXPECT_EQ(c.memory_attention.kv_in_dim, flat.at("memory_attention.cross_attn").at("kv_in_dim").get<int>());
  EXPECT_EQ(c.memory_encoder.out_dim, flat.at("memory_encoder.out_dim").get<int>());
  EXPECT_EQ(c.memory_encoder.in_dim, flat.at("memory_encoder.in_dim").get<int>());
  EXPECT_EQ(c.memory_encoder.position_encoding_num_pos_feats,
            flat.at("memory_encoder.position_encoding.num_pos_feats").get<int>());
  EXPECT_EQ(c.memory_encoder.mask_downsampler_embed_dim,
            flat.at("memory_encoder.mask_downsampler").at("embed_dim").get<int>());
  EXPECT_EQ(c.mem_dim(), flat.at("mem_dim").get<int>());
}

// The image encoder built from each configuration has exactly the official parameter names
// and shapes below "image_encoder.".
TEST(Sam2Config, ImageEncoderParametersMatchOfficialKeys) {
  LITSEG_REQUIRE_SHARED("sam2/keys/sam2.1_hiera_t.json");
  for (const std::string model : {"t", "s", "b+", "l"}) {
    SCOPED_TRACE(model);
    const json keys = ReadJson(test::SharedPath("sam2/keys/sam2.1_hiera_" + model + ".json")).at("keys");
    std::map<std::string, std::vector<int64_t>> expected;
    const std::string prefix = "image_encoder.";
    for (const json& k : keys) {
      const std::string key = k.at("key");
      if (key.rfind(prefix, 0) == 0) expected[key.substr(prefix.size())] = k.at("shape").get<std::vector<int64_t>>();
    }
    ImageEncoder encoder(LoadNamedConfig("sam2.1_hiera_" + model).image_encoder);
    std::map<std::string, std::vector<int64_t>> actual;
    for (const auto& p : encoder->named_parameters()) actual[p.key()] = p.value().sizes().vec();
    for (const auto& b : encoder->named_buffers()) actual[b.key()] = b.value().sizes().vec();
    EXPECT_EQ(actual.size(), expected.size());
    for (const auto& [key, shape] : expected) {
      auto it = actual.find(key);
      if (it == actual.end()) {
        ADD_FAILURE() << "missing " << key;
        continue;
      }
      EXPECT_EQ(it->second, shape) << key;
    }
    for (const auto& [key, shape] : actual) EXPECT_TRUE(expected.count(key)) << "unexpected " << key;
  }
}

}  // namespace
}  // namespace litseg::sam2
