#include <array>
#include <cstdio>
#include <fstream>
#include <memory>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/shared_data.h"

namespace {
namespace fs = std::filesystem;

struct Result {
  int status = -1;
  std::string output;
};

Result RunCli(const std::string& args) {
  Result r;
  const std::string command = std::string(LITSEG_CLI_PATH) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buffer{};
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) r.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(Cli, HelpAndUnknownCommand) {
  Result help = RunCli("help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.output.find("jf"), std::string::npos);
  EXPECT_NE(help.output.find("synth"), std::string::npos);
  EXPECT_NE(help.output.find("bench decode"), std::string::npos);
  EXPECT_EQ(RunCli("no-such-command").status, 2);
  EXPECT_EQ(RunCli("jf --gt").status, 2);  // option without value: a clear error, not a crash
}

TEST(Cli, SynthThenJfOfGroundTruthAgainstItselfIsPerfect) {
  const auto dir = litseg::test::TempDir("cli_synth");
  Result synth = RunCli("synth --out " + (dir / "clip").string() + " --frames 8 --objects 2 --seed 5 --size 96x64 --mp4");
  ASSERT_EQ(synth.status, 0) << synth.output;
  EXPECT_TRUE(fs::exists(dir / "clip" / "JPEGImages" / "00007.jpg"));
  EXPECT_TRUE(fs::exists(dir / "clip" / "Annotations" / "00007.png"));
  EXPECT_TRUE(fs::exists(dir / "clip" / "video.mp4"));
  const std::string ann = (dir / "clip" / "Annotations").string();
  Result jf = RunCli("jf --gt " + ann + " --pred " + ann + " --json " + (dir / "jf.json").string());
  ASSERT_EQ(jf.status, 0) << jf.output;
  std::ifstream in(dir / "jf.json");
  const nlohmann::json result = nlohmann::json::parse(in);
  EXPECT_DOUBLE_EQ(result.at("JF_mean").get<double>(), 1.0);
  Result bench = RunCli("bench decode " + (dir / "clip" / "video.mp4").string() + " --seeks 5");
  EXPECT_EQ(bench.status, 0) << bench.output;
  EXPECT_NE(bench.output.find("sequential"), std::string::npos);
  fs::remove_all(dir);
}

// The official OSVOS figures through the CLI are checked by tests/eval/jf_cli_check.cc.

}  // namespace
