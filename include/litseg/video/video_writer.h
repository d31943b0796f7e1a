// Encodes RGB frames into an H.264 MP4 through FFmpeg (libavcodec/libavformat).
//
//   litseg::Mp4Writer writer("out.mp4", 640, 360, 24.0);
//   writer.Write(rgb);   // CV_8UC3 RGB, width x height
//   writer.Finish();     // also done by the destructor
//
// Thread safety: one writer per thread.
#pragma once

#include <memory>
#include <string>

#include <opencv2/core.hpp>

namespace litseg {

struct Mp4WriterOptions {
  int crf = 18;                    // quality (lower is better), libx264's constant rate factor
  std::string preset = "medium";
};

class Mp4Writer {
 public:
  Mp4Writer(const std::string& path, int width, int height, double fps, const Mp4WriterOptions& options = {});
  ~Mp4Writer();
  Mp4Writer(const Mp4Writer&) = delete;
  Mp4Writer& operator=(const Mp4Writer&) = delete;

  void Write(const cv::Mat& rgb);
  void Finish();
  // Name of the encoder in use (e.g. "libx264").
  std::string encoder_name() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace litseg
