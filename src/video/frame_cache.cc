#include "litseg/video/frame_cache.h"

#include <algorithm>

#include "litseg/core/error.h"

namespace litseg {

FrameCache::FrameCache(std::unique_ptr<VideoSource> source, const FrameCacheOptions& options)
    : source_(std::move(source)), options_(options) {
  if (!source_) throw Error("FrameCache needs a video source");
  info_ = source_->info();
  // The read-ahead window must fit in half the budget, or prefetched frames would evict
  // each other and the worker would decode forever.
  const std::size_t frame_bytes = static_cast<std::size_t>(info_.width) * info_.height * 3;
  const std::size_t fit = frame_bytes ? options_.limit_mb * 1024 * 1024 / (2 * frame_bytes) : 0;
  options_.read_ahead = static_cast<int>(std::min<std::size_t>(options_.read_ahead, fit));
  if (options_.read_ahead > 0) worker_ = std::thread(&FrameCache::Worker, this);
}

FrameCache::~FrameCache() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

double FrameCache::FrameTime(int index) const { return source_->FrameTime(index); }

cv::Mat FrameCache::Decode(int index) {
  std::lock_guard<std::mutex> lock(source_mutex_);
  return source_->ReadFrame(index);
}

void FrameCache::Insert(int index, const cv::Mat& frame) {
  // Caller holds mutex_.
  if (index_.count(index)) return;
  const std::size_t size = frame.total() * frame.elemSize();
  const std::size_t limit = options_.limit_mb * 1024 * 1024;
  if (size > limit) return;  // a single frame larger than the budget is never cached
  lru_.emplace_front(index, frame);
  index_[index] = lru_.begin();
  bytes_ += size;
  while (bytes_ > limit && !lru_.empty()) {
    const auto& victim = lru_.back();
    bytes_ -= victim.second.total() * victim.second.elemSize();
    index_.erase(victim.first);
    lru_.pop_back();
    ++stats_.evicted;
  }
}

cv::Mat FrameCache::Get(int index) {
  if (index < 0 || index >= info_.frame_count)
    throw Error("frame " + std::to_string(index) + " is out of range (the video has " +
                std::to_string(info_.frame_count) + " frames)");
  {
    std::lock_guard<std::mutex> lock(mutex_);
    prefetch_from_ = index + 1;
    prefetch_to_ = std::min(info_.frame_count - 1, index + options_.read_ahead);
    auto it = index_.find(index);
    if (it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      ++stats_.hits;
      wake_.notify_all();
      return it->second->second;
    }
    ++stats_.misses;
  }
  cv::Mat frame = Decode(index);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Insert(index, frame);
  }
  wake_.notify_all();
  return frame;
}

void FrameCache::Worker() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] {
      if (stop_) return true;
      for (int i = prefetch_from_; i >= 0 && i <= prefetch_to_; ++i)
        if (!index_.count(i)) return true;
      return false;
    });
    if (stop_) return;
    int next = -1;
    for (int i = prefetch_from_; i >= 0 && i <= prefetch_to_; ++i)
      if (!index_.count(i)) {
        next = i;
        break;
      }
    if (next < 0) continue;
    lock.unlock();
    cv::Mat frame;
    try {
      frame = Decode(next);
    } catch (const Error&) {
      lock.lock();
      prefetch_to_ = next - 1;  // unreadable tail (truncated file): stop prefetching there
      continue;
    }
    lock.lock();
    Insert(next, frame);
    ++stats_.prefetched;
  }
}

bool FrameCache::Contains(int index) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return index_.count(index) != 0;
}

std::size_t FrameCache::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

std::size_t FrameCache::frames_cached() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lru_.size();
}

FrameCache::Stats FrameCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace litseg
