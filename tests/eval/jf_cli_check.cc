// `litseg-cli jf` end to end: the official OSVOS figures through the command line and its
// JSON, and the messages a user gets for bad folders.
#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/shared_data.h"
#include "litseg/core/mask.h"
#include "litseg/core/mask_io.h"

namespace litseg {
namespace {
namespace fs = std::filesystem;

struct CliRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

CliRun RunCli(const std::string& args) {
  CliRun run;
  const std::string command = Quote(LITSEG_CLI_PATH) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return run;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) run.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

TEST(JfCli, ReproducesTheOfficialOsvosFiguresThroughJson) {
  const std::string gt_rel = "data/vos/davis2016/DAVIS/Annotations/480p";
  const std::string pred_rel = "data/vos/davis2017-evaluation-osvos-results/results/semi-supervised/osvos";
  const std::string ref_rel = "data/vos/osvos_official_jf.json";
  LITSEG_REQUIRE_SHARED(ref_rel);
  LITSEG_REQUIRE_SHARED(gt_rel);
  LITSEG_REQUIRE_SHARED(pred_rel);
  const auto dir = test::TempDir("jf_cli");
  const fs::path json_path = dir / "jf.json";
  const CliRun run = RunCli("jf --gt " + Quote(test::SharedPath(gt_rel).string()) + " --pred " +
                         Quote(test::SharedPath(pred_rel).string()) + " --foreground --json " + Quote(json_path.string()));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("global"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("blackswan"), std::string::npos) << run.output;

  std::ifstream ref_in(test::SharedPath(ref_rel)), ours_in(json_path);
  ASSERT_TRUE(ours_in) << "no JSON written";
  const nlohmann::json ref = nlohmann::json::parse(ref_in), ours = nlohmann::json::parse(ours_in);
  EXPECT_EQ(ours.at("params").at("foreground").get<bool>(), true);
  ASSERT_EQ(ours.at("sequences").size(), ref.at("sequences").size());
  double worst_mean = 0.0, worst_frame = 0.0;
  for (const auto& [name, r] : ref.at("sequences").items()) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(ours.at("sequences").contains(name));
    const auto& o = ours["sequences"][name];
    ASSERT_EQ(o.at("frames_scored"), r.at("frames_scored"));
    for (const char* key : {"J_mean", "F_mean", "JF_mean"}) {
      const double d = std::abs(o.at(key).get<double>() - r.at(key).get<double>());
      EXPECT_LE(d, 1e-4) << key;
      worst_mean = std::max(worst_mean, d);
    }
    for (const char* key : {"J_per_frame", "F_per_frame"}) {
      ASSERT_EQ(o.at(key).size(), r.at(key).size());
      for (size_t i = 0; i < r.at(key).size(); ++i) {
        const double d = std::abs(o[key][i].get<double>() - r[key][i].get<double>());
        EXPECT_LE(d, 1e-3) << key << " " << i;
        worst_frame = std::max(worst_frame, d);
      }
    }
  }
  std::printf("CLI: max |ours - official|: means %.3g, per-frame %.3g\n", worst_mean, worst_frame);
  fs::remove_all(dir);
}

TEST(JfCli, ReportsMissingSequencesAndBadArguments) {
  const auto dir = test::TempDir("jf_cli_errors");
  for (const char* seq : {"alpha", "beta"}) {
    fs::create_directories(dir / "gt" / seq);
    for (int f = 0; f < 3; ++f) {
      LabelMap labels(8, 8);
      labels(2, 2) = 1;
      WritePalettePng((dir / "gt" / seq / ("0000" + std::to_string(f) + ".png")).string(), labels);
    }
  }
  fs::create_directories(dir / "pred" / "alpha");
  const std::string gt = Quote((dir / "gt").string()), pred = Quote((dir / "pred").string());
  CliRun run = RunCli("jf --gt " + gt + " --pred " + pred);
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("beta"), std::string::npos) << run.output;

  run = RunCli("jf --gt " + gt);
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("--pred"), std::string::npos) << run.output;
  run = RunCli("jf --gt " + gt + " --pred " + pred + " --no-such-flag");
  EXPECT_NE(run.exit_code, 0) << run.output;
  run = RunCli("jf --help");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("--all-frames"), std::string::npos) << run.output;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace litseg
