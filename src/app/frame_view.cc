#include "app/frame_view.h"

#include <QPainter>

namespace litseg::app {

FrameView::FrameView(QWidget* parent) : QWidget(parent) {
  setMinimumSize(160, 90);
  setAttribute(Qt::WA_OpaquePaintEvent);
}

void FrameView::SetImage(const QImage& image) {
  image_ = image;
  update();
}

QRect FrameView::ImageRect() const {
  if (image_.isNull()) return {};
  QSize scaled = image_.size().scaled(size(), Qt::KeepAspectRatio);
  return QRect(QPoint((width() - scaled.width()) / 2, (height() - scaled.height()) / 2), scaled);
}

void FrameView::paintEvent(QPaintEvent*) {
  QPainter painter(this);
  painter.fillRect(rect(), QColor(24, 24, 28));
  if (image_.isNull()) {
    painter.setPen(QColor(160, 160, 170));
    painter.drawText(rect(), Qt::AlignCenter, tr("Open a video or a frame folder (Ctrl+O)"));
    return;
  }
  painter.setRenderHint(QPainter::SmoothPixmapTransform);
  painter.drawImage(ImageRect(), image_);
}

}  // namespace litseg::app
