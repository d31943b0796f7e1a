// Decodes frames for the GUI on a worker thread.
//
// The loader owns a QThread and, on it, the FrameCache of the open video. The GUI calls
// Open() and Request(); results come back as signals delivered on the GUI thread. Requests
// are coalesced: when the user drags the slider faster than frames decode, only the latest
// requested frame is decoded, never a queue of stale ones.
//
//   FrameLoader loader;
//   connect(&loader, &FrameLoader::frameReady, view, [](int k, const QImage& rgb, double t) {...});
//   loader.Open("clip.mp4");       // -> opened(path, info) or openFailed(path, message)
//   loader.Request(10);            // -> frameReady(10, image, time) or frameFailed(10, message)
//
// A failed Open() leaves the previous video open. Requests made while a new video is being
// opened refer to the old one and are dropped once the new one replaces it.
//
// Thread safety: construct, Open() and Request() on the GUI thread. Signals are emitted from
// the worker thread (opened() from the GUI thread); receivers living on the GUI thread get
// them queued, in the order they were emitted.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include <QImage>
#include <QObject>
#include <QString>
#include <QThread>

#include "litseg/video/frame_cache.h"
#include "litseg/video/video_source.h"

namespace litseg::app {

class FrameLoader : public QObject {
  Q_OBJECT

 public:
  FrameLoader();
  ~FrameLoader() override;

  // Opens a video file, a frame folder or a synth: spec; emits opened() or openFailed().
  void Open(const QString& path);
  // Asks for frame `index` of the video last reported by opened(); emits frameReady() (or
  // frameFailed()) unless a newer request supersedes it first.
  void Request(int index);
  // A request is waiting or being decoded.
  bool busy() const { return pending_.load() >= 0 || decoding_.load(); }

 Q_SIGNALS:
  void opened(const QString& path, const litseg::VideoInfo& info);
  void openFailed(const QString& path, const QString& message);
  void frameReady(int index, const QImage& image, double time_seconds);
  void frameFailed(int index, const QString& message);

 private:
  void DoOpen(const QString& path, int token);
  void DoDecode();

  QThread thread_;
  QObject* worker_context_ = nullptr;  // lives in thread_; decoding runs in its event loop
  // Worker thread only: the open video and the token of the Open() call that opened it.
  std::unique_ptr<FrameCache> cache_;
  int cache_token_ = 0;
  int last_token_ = 0;                 // GUI thread: token of the latest Open() call
  std::atomic<int> shown_token_{0};    // token of the video the GUI was told about last
  // Latest request as (token << 32 | index); -1 = none waiting.
  std::atomic<int64_t> pending_{-1};
  std::atomic<bool> decoding_{false};
};

}  // namespace litseg::app

Q_DECLARE_METATYPE(litseg::VideoInfo)
