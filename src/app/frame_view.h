// Shows one video frame scaled to the widget, aspect ratio kept, centred (letterboxed).
// Masks will be overlaid here later. GUI thread only.
#pragma once

#include <QImage>
#include <QWidget>

namespace litseg::app {

class FrameView : public QWidget {
  Q_OBJECT

 public:
  explicit FrameView(QWidget* parent = nullptr);
  void SetImage(const QImage& image);
  const QImage& image() const { return image_; }
  // Where the frame is drawn inside the widget (for mapping clicks to frame pixels).
  QRect ImageRect() const;
  QSize sizeHint() const override { return {960, 540}; }

 protected:
  void paintEvent(QPaintEvent* event) override;

 private:
  QImage image_;
};

}  // namespace litseg::app
