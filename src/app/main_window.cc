#include "app/main_window.h"

#include <QAction>
#include <QApplication>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QKeyEvent>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QPushButton>
#include <QSlider>
#include <QStatusBar>
#include <QVBoxLayout>

#include "app/frame_view.h"

namespace litseg::app {
namespace {

QString FormatTime(double seconds) {
  const long long ms = static_cast<long long>(seconds * 1000.0 + 0.5);
  return QString("%1:%2.%3")
      .arg(ms / 60000, 2, 10, QChar('0'))
      .arg((ms / 1000) % 60, 2, 10, QChar('0'))
      .arg(ms % 1000, 3, 10, QChar('0'));
}

}  // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
  BuildUi();
  connect(&loader_, &FrameLoader::opened, this, &MainWindow::OnOpened);
  connect(&loader_, &FrameLoader::openFailed, this, &MainWindow::OnOpenFailed);
  connect(&loader_, &FrameLoader::frameReady, this, &MainWindow::OnFrameReady);
  connect(&loader_, &FrameLoader::frameFailed, this,
          [this](int index, const QString& message) { ReportError(tr("Frame %1: %2").arg(index).arg(message)); });
  connect(&playback_timer_, &QTimer::timeout, this, &MainWindow::OnPlaybackTick);
  setWindowTitle("litseg");
}

void MainWindow::BuildUi() {
  view_ = new FrameView(this);
  slider_ = new QSlider(Qt::Horizontal, this);
  slider_->setEnabled(false);
  slider_->setFocusPolicy(Qt::NoFocus);  // arrow keys belong to the window's frame stepping
  play_button_ = new QPushButton(tr("Play"), this);
  play_button_->setEnabled(false);
  play_button_->setFocusPolicy(Qt::NoFocus);
  position_label_ = new QLabel(this);
  position_label_->setMinimumWidth(220);
  // A permanent label, not showMessage(): temporary messages vanish when menus show tips.
  status_label_ = new QLabel(this);
  status_label_->setContentsMargins(4, 0, 0, 0);
  statusBar()->addWidget(status_label_, 1);

  auto* controls = new QHBoxLayout;
  controls->addWidget(play_button_);
  controls->addWidget(slider_, 1);
  controls->addWidget(position_label_);
  auto* layout = new QVBoxLayout;
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addWidget(view_, 1);
  layout->addLayout(controls);
  auto* central = new QWidget(this);
  central->setLayout(layout);
  setCentralWidget(central);

  QMenu* file = menuBar()->addMenu(tr("&File"));
  QAction* open = file->addAction(tr("&Open..."));
  open->setShortcut(QKeySequence::Open);
  connect(open, &QAction::triggered, this, [this] {
    const QString path = QFileDialog::getOpenFileName(
        this, tr("Open video"), QString(),
        tr("Videos and frames (*.mp4 *.mov *.mkv *.avi *.webm *.m4v *.jpg *.jpeg *.png);;All files (*)"));
    if (path.isEmpty()) return;
    // Picking one image of a frame folder opens the folder.
    const QFileInfo info(path);
    const QString suffix = info.suffix().toLower();
    OpenPath(suffix == "jpg" || suffix == "jpeg" || suffix == "png" ? info.absolutePath() : path);
  });
  QAction* open_folder = file->addAction(tr("Open &Frame Folder..."));
  connect(open_folder, &QAction::triggered, this, [this] {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Open frame folder"));
    if (!dir.isEmpty()) OpenPath(dir);
  });
  file->addSeparator();
  QAction* quit = file->addAction(tr("&Quit"));
  quit->setShortcut(QKeySequence::Quit);
  connect(quit, &QAction::triggered, this, &QWidget::close);

  connect(slider_, &QSlider::valueChanged, this, [this](int value) {
    if (value != requested_frame_) ShowFrame(value);
  });
  connect(play_button_, &QPushButton::clicked, this, [this] { SetPlaying(!playing_); });
  UpdatePositionLabel();
  status_label_->setText(tr("No video open"));
}

void MainWindow::OpenPath(const QString& path) {
  SetPlaying(false);
  status_label_->setText(tr("Opening %1...").arg(path));
  loader_.Open(path);
}

void MainWindow::OnOpened(const QString& path, const litseg::VideoInfo& info) {
  path_ = path;
  info_ = info;
  current_frame_ = -1;
  requested_frame_ = -1;
  setWindowTitle(QString("litseg — %1").arg(QFileInfo(path).fileName().isEmpty() ? path : QFileInfo(path).fileName()));
  slider_->blockSignals(true);
  slider_->setRange(0, std::max(0, info.frame_count - 1));
  slider_->setValue(0);
  slider_->blockSignals(false);
  slider_->setEnabled(info.frame_count > 0);
  play_button_->setEnabled(info.frame_count > 1);
  status_label_->setText(QString("%1   %2x%3   %4   %5 fps   %6 frames%7")
                               .arg(path)
                               .arg(info.width)
                               .arg(info.height)
                               .arg(QString::fromStdString(info.codec))
                               .arg(info.fps, 0, 'f', 3)
                               .arg(info.frame_count)
                               .arg(info.truncated ? "   (" + QString::fromStdString(info.warning) + ")" : QString()));
  status_of_open_video_ = status_label_->text();
  ShowFrame(0);
  Q_EMIT videoOpened(path);  // listeners may ask for another frame; the request supersedes frame 0
}

void MainWindow::OnOpenFailed(const QString& path, const QString& message) {
  status_label_->setText(status_of_open_video_);
  ReportError(tr("Cannot open %1:\n%2").arg(path, message));
}

void MainWindow::ReportError(const QString& message) {
  Q_EMIT errorOccurred(message);
  if (show_error_dialogs_) QMessageBox::warning(this, tr("litseg"), message);
}

void MainWindow::ShowFrame(int index) {
  if (info_.frame_count <= 0) return;
  index = std::clamp(index, 0, info_.frame_count - 1);
  requested_frame_ = index;
  loader_.Request(index);
}

void MainWindow::OnFrameReady(int index, const QImage& image, double time_seconds) {
  current_frame_ = index;
  current_time_ = time_seconds;
  view_->SetImage(image);
  slider_->blockSignals(true);
  if (!slider_->isSliderDown()) slider_->setValue(index);
  slider_->blockSignals(false);
  UpdatePositionLabel();
  Q_EMIT frameShown(index);
}

QString MainWindow::position_text() const { return position_label_->text(); }
QString MainWindow::status_text() const { return status_label_->text(); }

void MainWindow::UpdatePositionLabel() {
  if (info_.frame_count <= 0 || current_frame_ < 0) {
    position_label_->setText(tr("frame – / –"));
    return;
  }
  position_label_->setText(
      tr("frame %1 / %2   %3").arg(current_frame_).arg(info_.frame_count).arg(FormatTime(current_time_)));
}

void MainWindow::SetPlaying(bool playing) {
  if (playing && (info_.frame_count <= 1 || requested_frame_ < 0)) playing = false;
  playing_ = playing;
  play_button_->setText(playing ? tr("Pause") : tr("Play"));
  if (!playing) {
    playback_timer_.stop();
    return;
  }
  // Playing from the last frame starts over.
  if (requested_frame_ >= info_.frame_count - 1) ShowFrame(0);
  playback_start_frame_ = requested_frame_;
  playback_clock_.start();
  // Poll at twice the frame rate; each tick asks for the frame due by the wall clock.
  const double fps = info_.fps > 0 ? info_.fps : 24.0;
  playback_timer_.start(std::max(5, static_cast<int>(1000.0 / fps / 2)));
}

void MainWindow::OnPlaybackTick() {
  const double fps = info_.fps > 0 ? info_.fps : 24.0;
  // The frame due now; when decoding is slower than real time, frames are skipped.
  const int due = playback_start_frame_ + static_cast<int>(playback_clock_.elapsed() * fps / 1000.0);
  if (due >= info_.frame_count) {
    ShowFrame(info_.frame_count - 1);
    SetPlaying(false);
    return;
  }
  if (due != requested_frame_ && !loader_.busy()) ShowFrame(due);
}

void MainWindow::keyPressEvent(QKeyEvent* event) {
  const int base = requested_frame_ >= 0 ? requested_frame_ : 0;
  switch (event->key()) {
    case Qt::Key_Space: SetPlaying(!playing_); break;
    case Qt::Key_Right: SetPlaying(false); ShowFrame(base + 1); break;
    case Qt::Key_Left: SetPlaying(false); ShowFrame(base - 1); break;
    case Qt::Key_PageDown: SetPlaying(false); ShowFrame(base + 10); break;
    case Qt::Key_PageUp: SetPlaying(false); ShowFrame(base - 10); break;
    case Qt::Key_Home: SetPlaying(false); ShowFrame(0); break;
    case Qt::Key_End: SetPlaying(false); ShowFrame(info_.frame_count - 1); break;
    default: QMainWindow::keyPressEvent(event); return;
  }
  event->accept();
}

}  // namespace litseg::app
