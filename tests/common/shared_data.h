// Locating ../shared reference data from tests.
//
// Tests that read the read-only reference material (real DAVIS sequences, SAM 2 goldens,
// sample videos) call LITSEG_REQUIRE_SHARED("data/videos/01_dog.mp4"): when the file is
// absent (a user's clone has no ../shared) the test is skipped with the reason, and
// ctest reports it as skipped rather than passed.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include <unistd.h>

#include <gtest/gtest.h>

namespace litseg::test {

// Root of the reference folder: $LITSEG_SHARED_DIR (set by ctest), else ../shared
// relative to the source tree.
inline std::filesystem::path SharedDir() {
  if (const char* env = std::getenv("LITSEG_SHARED_DIR"); env && *env) return env;
  if (const char* src = std::getenv("LITSEG_SOURCE_DIR"); src && *src)
    return std::filesystem::path(src) / ".." / "shared";
  return std::filesystem::path("..") / "shared";
}

inline std::filesystem::path SharedPath(const std::string& relative) {
  return SharedDir() / relative;
}

// A fresh, empty temporary folder for one test; removed by the caller or left for debugging.
inline std::filesystem::path TempDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("litseg_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace litseg::test

#define LITSEG_REQUIRE_SHARED(relative)                                                 \
  do {                                                                                  \
    const auto litseg_required_path_ = ::litseg::test::SharedPath(relative);           \
    if (!std::filesystem::exists(litseg_required_path_))                               \
      GTEST_SKIP() << "reference data not available: " << litseg_required_path_.string() \
                   << " (tests that read ../shared need the shared folder beside the clone)"; \
  } while (0)
