// A bounded, thread-safe frame cache over a VideoSource, with read-ahead.
//
// Keeps recently used frames in an LRU list whose total size stays under a limit in MB,
// and decodes the frames after the last requested one on a worker thread, so stepping or
// playing forward rarely waits for the decoder.
//
//   litseg::FrameCache cache(litseg::OpenVideoSource("clip.mp4"), {.limit_mb = 512});
//   cv::Mat rgb = cache.Get(10);   // decoded (or cached) frame 10; frames 11.. are prefetched
//
// Thread safety: all methods may be called from any thread. The source is used by one
// thread at a time (a mutex serialises decoding).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <opencv2/core.hpp>

#include "litseg/video/video_source.h"

namespace litseg {

struct FrameCacheOptions {
  std::size_t limit_mb = 512;  // upper bound of cached pixel data
  int read_ahead = 8;          // frames decoded ahead of the last Get (0 = off)
};

class FrameCache {
 public:
  explicit FrameCache(std::unique_ptr<VideoSource> source, const FrameCacheOptions& options = {});
  ~FrameCache();
  FrameCache(const FrameCache&) = delete;
  FrameCache& operator=(const FrameCache&) = delete;

  const VideoInfo& info() const { return info_; }
  // Frame `index` (RGB CV_8UC3); throws litseg::Error like VideoSource::ReadFrame. The returned
  // Mat shares the cached pixels: treat it as read-only.
  cv::Mat Get(int index);
  double FrameTime(int index) const;
  bool Contains(int index) const;
  std::size_t bytes() const;
  std::size_t frames_cached() const;

  struct Stats {
    uint64_t hits = 0, misses = 0, prefetched = 0, evicted = 0;
  };
  Stats stats() const;

 private:
  cv::Mat Decode(int index);
  void Insert(int index, const cv::Mat& frame);
  void Worker();

  std::unique_ptr<VideoSource> source_;
  VideoInfo info_;
  FrameCacheOptions options_;
  std::mutex source_mutex_;  // serialises the decoder
  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable wake_;
  std::list<std::pair<int, cv::Mat>> lru_;  // most recent first
  std::unordered_map<int, std::list<std::pair<int, cv::Mat>>::iterator> index_;
  std::size_t bytes_ = 0;
  int prefetch_from_ = -1;  // next frame the worker should make sure is cached
  int prefetch_to_ = -1;
  bool stop_ = false;
  Stats stats_;
  std::thread worker_;
};

}  // namespace litseg
