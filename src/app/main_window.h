// The main window: a frame view, a timeline, playback and frame stepping.
//
// Keys: Space play/pause, Left/Right one frame, PageUp/PageDown 10 frames, Home/End first/
// last frame, Ctrl+O open, Ctrl+Q quit. Decoding happens on FrameLoader's worker thread.
// GUI thread only.
#pragma once

#include <QElapsedTimer>
#include <QMainWindow>
#include <QTimer>

#include "app/frame_loader.h"

class QLabel;
class QPushButton;
class QSlider;

namespace litseg::app {

class FrameView;

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  explicit MainWindow(QWidget* parent = nullptr);

  // Opens a video; on failure the current video stays open and errorOccurred() is emitted.
  void OpenPath(const QString& path);
  void ShowFrame(int index);
  void SetPlaying(bool playing);
  bool playing() const { return playing_; }
  // Error dialogs are modal; tests turn them off and watch errorOccurred() instead.
  void SetShowErrorDialogs(bool show) { show_error_dialogs_ = show; }

  int current_frame() const { return current_frame_; }
  int frame_count() const { return info_.frame_count; }
  const VideoInfo& video_info() const { return info_; }
  FrameView* frame_view() const { return view_; }
  QSlider* timeline() const { return slider_; }
  QString position_text() const;  // "frame k / N   mm:ss.mmm"
  QString status_text() const;    // path, resolution, codec, fps, frame count

 Q_SIGNALS:
  void videoOpened(const QString& path);
  void frameShown(int index);
  void errorOccurred(const QString& message);

 protected:
  void keyPressEvent(QKeyEvent* event) override;

 private:
  void BuildUi();
  void OnOpened(const QString& path, const litseg::VideoInfo& info);
  void OnOpenFailed(const QString& path, const QString& message);
  void OnFrameReady(int index, const QImage& image, double time_seconds);
  void OnPlaybackTick();
  void ReportError(const QString& message);
  void UpdatePositionLabel();

  FrameLoader loader_;
  FrameView* view_ = nullptr;
  QSlider* slider_ = nullptr;
  QPushButton* play_button_ = nullptr;
  QLabel* position_label_ = nullptr;
  QLabel* status_label_ = nullptr;
  QString status_of_open_video_ = tr("No video open");
  QTimer playback_timer_;
  QElapsedTimer playback_clock_;
  int playback_start_frame_ = 0;
  bool playing_ = false;
  bool show_error_dialogs_ = true;
  VideoInfo info_;
  QString path_;
  int current_frame_ = -1;   // frame on screen
  int requested_frame_ = -1; // latest frame asked for
  double current_time_ = 0.0;
};

}  // namespace litseg::app
