// Encodes RGB frames into a video file through FFmpeg (libavcodec/libavformat).
//
// By default H.264 (libx264 when this FFmpeg has it, else the best H.264 encoder it has),
// yuv420p, in the container the file name implies (.mp4 when it implies none). Other
// encoders ("libx265", "libvpx-vp9", "libaom-av1", "mjpeg", "ffv1", ...) can be chosen,
// e.g. to produce test clips in every codec litseg must decode.
//
//   litseg::Mp4Writer writer("out.mp4", 640, 360, 24.0);
//   writer.Write(rgb);   // CV_8UC3 RGB, width x height
//   writer.Finish();     // also done by the destructor
//
//   // Variable frame rate and rotation metadata:
//   litseg::Mp4WriterOptions o;  o.timescale = 1000;  o.rotation_degrees = 90;
//   litseg::Mp4Writer vfr("vfr.mp4", 320, 240, 25.0, o);
//   vfr.WriteAt(rgb, 0.120);   // presentation time in seconds (strictly increasing)
//
// Thread safety: one writer per thread.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <opencv2/core.hpp>

namespace litseg {

struct Mp4WriterOptions {
  std::string encoder;             // FFmpeg encoder name; empty = H.264 (libx264 if present)
  int crf = 18;                    // quality (lower is better) for libx264/libx265
  std::string preset = "medium";   // libx264/libx265 preset
  int gop_size = 48;               // frames between keyframes
  // Clockwise rotation a player should apply (0, 90, 180, 270), stored as the stream's
  // display matrix. Frames are written as given (not rotated).
  int rotation_degrees = 0;
  // Time base of the stream, in ticks per second; 0 = one tick per frame at `fps`. Use a
  // finer one (e.g. 1000) for WriteAt with irregular times.
  int timescale = 0;
  std::map<std::string, std::string> codec_options;  // extra encoder options (avcodec_open2)
};

class Mp4Writer {
 public:
  Mp4Writer(const std::string& path, int width, int height, double fps, const Mp4WriterOptions& options = {});
  ~Mp4Writer();
  Mp4Writer(const Mp4Writer&) = delete;
  Mp4Writer& operator=(const Mp4Writer&) = delete;

  // Appends a frame one frame interval (1/fps) after the previous one.
  void Write(const cv::Mat& rgb);
  // Appends a frame shown at `seconds` (must increase from frame to frame).
  void WriteAt(const cv::Mat& rgb, double seconds);
  void Finish();
  // Name of the encoder in use (e.g. "libx264").
  std::string encoder_name() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace litseg
