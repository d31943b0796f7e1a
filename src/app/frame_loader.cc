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
  thread_.quit();
  thread_.wait();
  cache_.reset();
}

void FrameLoader::Open(const QString& path) {
  ++generation_;
  pending_ = -1;
  QMetaObject::invokeMethod(worker_context_, [this, path] { DoOpen(path); }, Qt::QueuedConnection);
}

void FrameLoader::Request(int index) {
  // Only the first request of a burst posts work; later ones just replace the index.
  if (pending_.exchange(index) < 0)
    QMetaObject::invokeMethod(worker_context_, [this] { DoDecode(); }, Qt::QueuedConnection);
}

void FrameLoader::DoOpen(const QString& path) {
  try {
    auto source = OpenVideoSource(path.toStdString());
    auto cache = std::make_unique<FrameCache>(std::move(source));
    const VideoInfo info = cache->info();
    cache_ = std::move(cache);  // the previous video is replaced only once the new one opened
    Q_EMIT opened(path, info);
  } catch (const std::exception& e) {
    Q_EMIT openFailed(path, QString::fromStdString(e.what()));
  }
}

void FrameLoader::DoDecode() {
  const int index = pending_.exchange(-1);
  if (index < 0 || !cache_) return;
  try {
    const cv::Mat rgb = cache_->Get(index);
    const double time = cache_->FrameTime(index);
    QImage image(rgb.data, rgb.cols, rgb.rows, static_cast<qsizetype>(rgb.step[0]), QImage::Format_RGB888);
    Q_EMIT frameReady(index, image.copy(), time);  // deep copy: the cache may evict rgb
  } catch (const std::exception& e) {
    Q_EMIT frameFailed(index, QString::fromStdString(e.what()));
  }
}

}  // namespace litseg::app
