#include "app/frame_loader.h"

#include <QMetaObject>

#include "litseg/core/error.h"

namespace litseg::app {

FrameLoader::FrameLoader() {
  qRegisterMetaType<litseg::VideoInfo>("litseg::VideoInfo");
  worker_context_ = new QObject;
  worker_context_->moveToThread(&thread_);
  connect(&thread_, &QThread::finished, worker_context_, &QObject::deleteLater);
  thread_.setObjectName("litseg-frame-loader");
  thread_.start();
}

FrameLoader::~FrameLoader() {
  // Work still queued for the worker is discarded; a decode in progress finishes first.
  thread_.quit();
  thread_.wait();
  cache_.reset();
}

void FrameLoader::Open(const QString& path) {
  const int token = ++last_token_;
  QMetaObject::invokeMethod(worker_context_, [this, path, token] { DoOpen(path, token); }, Qt::QueuedConnection);
}

void FrameLoader::Request(int index) {
  if (index < 0) return;
  const int64_t request = (static_cast<int64_t>(shown_token_.load()) << 32) | static_cast<uint32_t>(index);
  // Only the first request of a burst posts work; later ones just replace the waiting one.
  if (pending_.exchange(request) < 0)
    QMetaObject::invokeMethod(worker_context_, [this] { DoDecode(); }, Qt::QueuedConnection);
}

void FrameLoader::DoOpen(const QString& path, int token) {
  try {
    auto cache = std::make_unique<FrameCache>(OpenVideoSource(path.toStdString()));
    const VideoInfo info = cache->info();
    cache_ = std::move(cache);  // the previous video is replaced only once the new one opened
    cache_token_ = token;
    // Hop to the GUI thread so that requests made after opened() carry the new token. The
    // hop is posted after any frameReady() of the old video, so receivers see them first.
    QMetaObject::invokeMethod(
        this,
        [this, path, info, token] {
          shown_token_ = token;
          Q_EMIT opened(path, info);
        },
        Qt::QueuedConnection);
  } catch (const std::exception& e) {
    Q_EMIT openFailed(path, QString::fromStdString(e.what()));
  }
}

void FrameLoader::DoDecode() {
  decoding_ = true;
  const int64_t request = pending_.exchange(-1);
  const int token = static_cast<int>(request >> 32);
  const int index = static_cast<int>(request & 0xffffffff);
  // A request against a video that has since been replaced is dropped.
  if (request < 0 || !cache_ || token != cache_token_) {
    decoding_ = false;
    return;
  }
  try {
    const cv::Mat rgb = cache_->Get(index);
    const double time = cache_->FrameTime(index);
    const QImage view(rgb.data, rgb.cols, rgb.rows, static_cast<qsizetype>(rgb.step[0]), QImage::Format_RGB888);
    QImage image = view.copy();  // deep copy: the cache may evict rgb's pixels
    decoding_ = false;
    Q_EMIT frameReady(index, image, time);
  } catch (const std::exception& e) {
    decoding_ = false;
    Q_EMIT frameFailed(index, QString::fromStdString(e.what()));
  }
}

}  // namespace litseg::app
