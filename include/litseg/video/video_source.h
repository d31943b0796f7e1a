// One interface over every kind of video litseg reads.
//
// Sources: video files through FFmpeg, folders of numbered JPEG/PNG frames (DAVIS and
// SA-V layouts), and the deterministic synthetic generator. Frames are addressed by a
// 0-based index in presentation order; ReadFrame(k) returns exactly the pixels of frame k
// of a sequential decode, whatever was read before (frame-accurate random access).
//
// Video files: any codec and container this FFmpeg decodes (H.264, H.265, VP9, AV1, MJPEG,
// MPEG-2/4, ... in MP4/MOV, Matroska/WebM, AVI, MPEG-TS/PS, raw streams), any pixel format
// (converted to RGB), rotation metadata applied, variable frame rates timed per frame.
// Opening reads the file's packets once (and, for files without usable timestamps such as
// raw .h264 streams, decodes it once); reading in order never seeks. See ffmpeg_source.cc.
//
//   auto source = litseg::OpenVideoSource("clip.mp4");
//   const litseg::VideoInfo& info = source->info();
//   cv::Mat rgb = source->ReadFrame(42);   // CV_8UC3, RGB order, info.height x info.width
//
// Thread safety: a VideoSource is not thread-safe; use one per thread, or go through
// FrameCache (frame_cache.h), which serialises access and reads ahead on a worker.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <opencv2/core.hpp>

namespace litseg {

struct VideoInfo {
  std::string path;         // file or folder the source was opened from
  std::string kind;         // "ffmpeg", "frames", "synthetic"
  std::string codec;        // e.g. "h264", "jpeg", "png", "synthetic"
  int width = 0;            // display width, after rotation metadata is applied
  int height = 0;           // display height, after rotation
  int frame_count = 0;      // number of decodable frames
  double fps = 0.0;         // average frame rate (nominal for frame folders)
  int rotation_degrees = 0; // clockwise rotation applied from the container metadata
  // The file ends early or has damaged data. frame_count then counts only the frames that
  // decode (every index below it reads, pixel-identical to the same frame of the complete
  // file), and `warning` says where and why the clip stops.
  bool truncated = false;
  std::string warning;
};

// What a source did to serve its reads (for benchmarks and tests; zero for sources that
// do not decode a stream).
struct DecodeStats {
  int64_t seeks = 0;           // container seeks (a sequential read never seeks)
  int64_t frames_decoded = 0;  // frames the decoder produced, including ones passed over
};

class VideoSource {
 public:
  virtual ~VideoSource() = default;

  virtual const VideoInfo& info() const = 0;

  // Frame `index` (0 <= index < frame_count) as RGB CV_8UC3 of height x width.
  // Throws litseg::Error with a clear message (out of range, decode failure).
  virtual cv::Mat ReadFrame(int index) = 0;

  // Presentation time of frame `index` in seconds from the first frame.
  virtual double FrameTime(int index) const = 0;

  virtual DecodeStats decode_stats() const { return {}; }
};

struct VideoOpenOptions {
  // Frame folders: accept a folder whose numbering has gaps (frames are then indexed in
  // sorted order) instead of rejecting it.
  bool allow_gaps = false;
  // Frame folders carry no timing: the nominal rate used for FrameTime and playback.
  double folder_fps = 24.0;
};

// Opens a video file (any container/codec Debian's FFmpeg decodes), a frame folder, or a
// synthetic clip given as "synth:frames=N,objects=K,seed=S,size=WxH" (synthetic.h).
// Throws litseg::Error naming the problem: missing path, unsupported codec, no frames,
// a numbering gap.
std::unique_ptr<VideoSource> OpenVideoSource(const std::string& path,
                                             const VideoOpenOptions& options = {});

}  // namespace litseg
