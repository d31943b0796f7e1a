// Decodes frames for the GUI on a worker thread.
//
// The loader lives in its own QThread and owns the FrameCache. The GUI calls Open() and
// Request(); results come back as signals on the GUI thread. Requests are coalesced: when
// the user drags the slider faster than frames decode, only the latest requested frame is
// decoded, never a queue of stale ones.
//
// Thread safety: Open()/Request() may be called from any thread; signals are emitted from
// the worker thread (connect with the default AutoConnection to receive them queued).
#pragma once

#include <atomic>
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

  // Opens a video file, frame folder or synth: spec; emits opened() or openFailed().
  void Open(const QString& path);
  // Asks for frame `index`; emits frameReady() (or frameFailed()) unless a newer request
  // supersedes it first.
  void Request(int index);
  bool busy() const { return pending_.load() >= 0; }

 Q_SIGNALS:
  void opened(const QString& path, const litseg::VideoInfo& info);
  void openFailed(const QString& path, const QString& message);
  void frameReady(int index, const QImage& image, double time_seconds);
  void frameFailed(int index, const QString& message);

 private:
  void DoOpen(const QString& path);
  void DoDecode();

  QThread thread_;
  QObject* worker_context_ = nullptr;  // lives in thread_; decoding runs in its event loop
  std::unique_ptr<FrameCache> cache_;  // touched only on the worker thread
  std::atomic<int> pending_{-1};       // latest requested frame, -1 = none
  std::atomic<int> generation_{0};     // bumps on Open so stale requests are dropped
};

}  // namespace litseg::app

Q_DECLARE_METATYPE(litseg::VideoInfo)
