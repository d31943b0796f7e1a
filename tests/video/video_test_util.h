// Helpers shared by the video tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "litseg/core/error.h"
#include "litseg/video/synthetic.h"
#include "litseg/video/video_source.h"
#include "litseg/video/video_writer.h"

namespace litseg::test {

// FNV-1a over the pixel bytes (row by row, so padding is ignored).
inline uint64_t HashFrame(const cv::Mat& m) {
  uint64_t h = 1469598103934665603ull;
  const size_t row_bytes = static_cast<size_t>(m.cols) * m.elemSize();
  for (int y = 0; y < m.rows; ++y) {
    const uint8_t* row = m.ptr<uint8_t>(y);
    for (size_t i = 0; i < row_bytes; ++i) h = (h ^ row[i]) * 1099511628211ull;
  }
  return h;
}

inline bool SameMat(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

// Mean absolute difference per channel value.
inline double MeanAbsDiff(const cv::Mat& a, const cv::Mat& b) {
  return cv::norm(a, b, cv::NORM_L1) / (static_cast<double>(a.total()) * a.channels());
}

// Hashes of frames [0, count) read in order.
inline std::vector<uint64_t> SequentialHashes(VideoSource& source, int count) {
  std::vector<uint64_t> hashes;
  for (int k = 0; k < count; ++k) hashes.push_back(HashFrame(source.ReadFrame(k)));
  return hashes;
}

// Reads `reads` frames (every frame when reads < 0) in a shuffled order and returns how
// many differ from `hashes`; reports the first few through ADD_FAILURE.
inline int RandomOrderMismatches(VideoSource& source, const std::vector<uint64_t>& hashes, int reads, unsigned seed) {
  std::vector<int> order(hashes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::shuffle(order.begin(), order.end(), std::mt19937(seed));
  if (reads >= 0 && reads < static_cast<int>(order.size())) order.resize(reads);
  int mismatches = 0;
  for (int k : order) {
    if (HashFrame(source.ReadFrame(k)) != hashes[k]) {
      if (++mismatches <= 5) ADD_FAILURE() << source.info().path << ": frame " << k << " differs after a seek";
    }
  }
  return mismatches;
}

inline SynthParams SmallClip(int frames = 30, uint64_t seed = 5) {
  SynthParams p;
  p.width = 128;
  p.height = 96;
  p.frames = frames;
  p.objects = 3;
  p.seed = seed;
  p.fps = 25.0;
  return p;
}

// Encodes a synthetic clip; returns false (and the reason) when this FFmpeg lacks the encoder.
inline bool EncodeClip(const SynthParams& p, const std::string& path, const Mp4WriterOptions& options,
                       std::string* why = nullptr) {
  try {
    SyntheticClip clip(p);
    Mp4Writer writer(path, p.width, p.height, p.fps, options);
    for (int k = 0; k < p.frames; ++k) writer.Write(clip.Render(k).rgb);
    writer.Finish();
    return true;
  } catch (const Error& e) {
    if (why) *why = e.what();
    if (std::string(e.what()).find("no encoder") != std::string::npos) return false;
    throw;
  }
}

inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace litseg::test
