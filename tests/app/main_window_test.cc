// Drives the main window like a user (keys, slider, playback, open errors) on Qt's offscreen
// platform, and runs the `litseg` executable for its command line.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <QApplication>
#include <QElapsedTimer>
#include <QImage>
#include <QProcess>
#include <QSignalSpy>
#include <QSlider>
#include <QStyle>
#include <QStyleOptionSlider>
#include <QTest>
#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "app/frame_view.h"
#include "app/main_window.h"
#include "common/shared_data.h"
#include "litseg/video/video_source.h"

namespace litseg::app {
namespace {
namespace fs = std::filesystem;

// One QApplication for the whole program. ctest sets QT_QPA_PLATFORM=offscreen; a developer
// running the program by hand gets it too unless they ask for another platform.
class QtEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
    static int argc = 1;
    static char name[] = "app_test";
    static char* argv[] = {name, nullptr};
    app_ = new QApplication(argc, argv);
  }
  void TearDown() override { delete app_; }

 private:
  QApplication* app_ = nullptr;
};
const auto* const kQtEnvironment = ::testing::AddGlobalTestEnvironment(new QtEnvironment);

// Processes events until `condition` holds; false after `timeout_ms`.
bool WaitFor(const std::function<bool()>& condition, int timeout_ms = 10000) {
  QElapsedTimer timer;
  timer.start();
  while (!condition()) {
    if (timer.elapsed() > timeout_ms) return false;
    QTest::qWait(2);
  }
  return true;
}

QImage ToQImage(const cv::Mat& rgb) {
  return QImage(rgb.data, rgb.cols, rgb.rows, static_cast<qsizetype>(rgb.step[0]), QImage::Format_RGB888).copy();
}

// mm:ss.mmm, written independently of the window's formatter.
std::string Clock(double seconds) {
  const long long ms = std::llround(seconds * 1000.0);
  char text[32];
  std::snprintf(text, sizeof(text), "%02lld:%02lld.%03lld", ms / 60000, (ms / 1000) % 60, ms % 1000);
  return text;
}

// Writes `count` PNG frames (WxH) whose colours and printed numbers tell them apart.
void WriteFrames(const fs::path& dir, int count, int width, int height, bool with_text) {
  fs::create_directories(dir);
  for (int i = 0; i < count; ++i) {
    cv::Mat bgr(height, width, CV_8UC3, cv::Scalar(20 + 7 * i, 255 - 8 * i, (i * 37) % 256));
    if (with_text)
      cv::putText(bgr, std::to_string(i), {10, 60}, cv::FONT_HERSHEY_SIMPLEX, 1.5, cv::Scalar(255, 255, 255), 3);
    char name[16];
    std::snprintf(name, sizeof(name), "%05d.png", i);
    cv::imwrite((dir / name).string(), bgr);
  }
}

class MainWindowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::TempDir("app_frames");
    clip_ = dir_ / "clip";
    WriteFrames(clip_, kFrames, 160, 90, /*with_text=*/true);
    window_.SetShowErrorDialogs(false);
    window_.resize(800, 500);
    window_.show();
    ASSERT_TRUE(QTest::qWaitForWindowExposed(&window_));
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Frame k as the video module decodes it (what the window must show).
  QImage Expected(int k) {
    if (!reference_) reference_ = OpenVideoSource(clip_.string());
    return ToQImage(reference_->ReadFrame(k));
  }
  double ExpectedTime(int k) {
    if (!reference_) reference_ = OpenVideoSource(clip_.string());
    return reference_->FrameTime(k);
  }

  void Open(const fs::path& path, int frames) {
    window_.OpenPath(QString::fromStdString(path.string()));
    ASSERT_TRUE(WaitFor([&] { return window_.frame_count() == frames && window_.current_frame() == 0; }));
  }
  void OpenClip() { Open(clip_, kFrames); }
  bool WaitForFrame(int k) { return WaitFor([&] { return window_.current_frame() == k; }); }

  static constexpr int kFrames = 30;
  fs::path dir_, clip_;
  std::unique_ptr<VideoSource> reference_;
  MainWindow window_;
};

TEST_F(MainWindowTest, OpensFolderAndShowsFirstFrame) {
  OpenClip();
  EXPECT_TRUE(window_.position_text().startsWith("frame 0 / 30")) << window_.position_text().toStdString();
  EXPECT_EQ(window_.windowTitle(), QString("litseg — clip"));
  EXPECT_EQ(window_.frame_view()->image(), Expected(0));
  EXPECT_EQ(window_.timeline()->maximum(), kFrames - 1);
  // Status bar: path, resolution, codec, fps.
  const QString status = window_.status_text();
  EXPECT_TRUE(status.contains(QString::fromStdString(clip_.string()))) << status.toStdString();
  EXPECT_TRUE(status.contains("160x90")) << status.toStdString();
  EXPECT_TRUE(status.contains("png")) << status.toStdString();
  EXPECT_TRUE(status.contains("24.000 fps")) << status.toStdString();
}

TEST_F(MainWindowTest, KeysStepAndJump) {
  OpenClip();
  QTest::keyClick(&window_, Qt::Key_Right);
  ASSERT_TRUE(WaitForFrame(1));
  EXPECT_EQ(window_.frame_view()->image(), Expected(1));
  EXPECT_EQ(window_.position_text(), QString::fromStdString("frame 1 / 30   " + Clock(ExpectedTime(1))));
  EXPECT_EQ(window_.timeline()->value(), 1);
  QTest::keyClick(&window_, Qt::Key_End);
  ASSERT_TRUE(WaitForFrame(29));
  EXPECT_EQ(window_.frame_view()->image(), Expected(29));
  EXPECT_EQ(window_.timeline()->value(), 29);
  QTest::keyClick(&window_, Qt::Key_Right);  // stays at the last frame
  QTest::keyClick(&window_, Qt::Key_Left);
  ASSERT_TRUE(WaitForFrame(28));
  QTest::keyClick(&window_, Qt::Key_PageUp);
  ASSERT_TRUE(WaitForFrame(18));
  EXPECT_EQ(window_.frame_view()->image(), Expected(18));
  QTest::keyClick(&window_, Qt::Key_PageDown);
  QTest::keyClick(&window_, Qt::Key_PageDown);  // clamps at the last frame
  ASSERT_TRUE(WaitForFrame(29));
  QTest::keyClick(&window_, Qt::Key_Home);
  ASSERT_TRUE(WaitForFrame(0));
  QTest::keyClick(&window_, Qt::Key_Left);  // stays at the first frame
  QTest::keyClick(&window_, Qt::Key_PageUp);
  QTest::qWait(100);
  EXPECT_EQ(window_.current_frame(), 0);
  EXPECT_EQ(window_.frame_view()->image(), Expected(0));
}

TEST_F(MainWindowTest, TimeLabelShowsMinutes) {
  // 2000 frames at 24 fps: the last one is at 83.29 s.
  const QString spec = "synth:frames=2000,objects=2,seed=3,size=64x48,fps=24";
  window_.OpenPath(spec);
  ASSERT_TRUE(WaitFor([&] { return window_.frame_count() == 2000 && window_.current_frame() == 0; }));
  QTest::keyClick(&window_, Qt::Key_End);
  ASSERT_TRUE(WaitForFrame(1999));
  const double t = OpenVideoSource(spec.toStdString())->FrameTime(1999);
  EXPECT_GT(t, 60.0);
  EXPECT_EQ(window_.position_text(), QString::fromStdString("frame 1999 / 2000   " + Clock(t)));
}

TEST_F(MainWindowTest, SliderBurstShowsOnlyTheLatestFrame) {
  OpenClip();
  QSignalSpy shown(&window_, &MainWindow::frameShown);
  // A burst of slider moves: the last one must end up on screen, and the stale ones in
  // between are coalesced rather than each decoded in turn.
  for (int v = 1; v <= 17; ++v) window_.timeline()->setValue(v);
  ASSERT_TRUE(WaitForFrame(17));
  QTest::qWait(100);
  EXPECT_EQ(window_.current_frame(), 17);
  EXPECT_EQ(window_.frame_view()->image(), Expected(17));
  EXPECT_EQ(window_.timeline()->value(), 17);
  EXPECT_LT(shown.count(), 17);
  EXPECT_EQ(shown.last().at(0).toInt(), 17);
}

TEST_F(MainWindowTest, MouseDragOnTheTimelineShowsThatFrame) {
  OpenClip();
  QSlider* slider = window_.timeline();
  QStyleOptionSlider option;
  option.initFrom(slider);
  option.orientation = slider->orientation();
  option.minimum = slider->minimum();
  option.maximum = slider->maximum();
  option.sliderPosition = slider->value();
  const QRect handle = slider->style()->subControlRect(QStyle::CC_Slider, &option, QStyle::SC_SliderHandle, slider);
  const QPoint start = handle.center();
  const QPoint end(slider->width() * 3 / 4, start.y());
  QTest::mousePress(slider, Qt::LeftButton, Qt::NoModifier, start);
  for (int step = 1; step <= 10; ++step) {
    QTest::mouseMove(slider, start + (end - start) * step / 10);
    QTest::qWait(5);
  }
  QTest::mouseRelease(slider, Qt::LeftButton, Qt::NoModifier, end);
  const int target = slider->value();
  ASSERT_GT(target, 10);  // the drag moved the handle well past the start
  ASSERT_TRUE(WaitForFrame(target));
  EXPECT_EQ(window_.frame_view()->image(), Expected(target));
  EXPECT_EQ(slider->value(), target);
}

TEST_F(MainWindowTest, PaintedPixelsAreTheFrameScaledWithItsAspectRatio) {
  OpenClip();
  window_.timeline()->setValue(7);
  ASSERT_TRUE(WaitForFrame(7));
  // Wide window: bars left and right; tall window: bars above and below.
  for (const QSize size : {QSize(800, 500), QSize(500, 700)}) {
    window_.resize(size);
    QTest::qWait(50);
    FrameView* view = window_.frame_view();
    const QRect rect = view->ImageRect();
    ASSERT_FALSE(rect.isEmpty());
    // 160x90 keeps its 16:9 shape and touches two sides of the view.
    EXPECT_NEAR(static_cast<double>(rect.width()) / rect.height(), 16.0 / 9.0, 0.03);
    EXPECT_TRUE(rect.width() == view->width() || rect.height() == view->height());
    const QImage painted = view->grab().toImage().convertToFormat(QImage::Format_RGB888);
    ASSERT_EQ(painted.size(), view->size());  // offscreen: device pixel ratio 1
    const QImage expected =
        Expected(7).scaled(rect.size(), Qt::IgnoreAspectRatio, Qt::SmoothTransformation).convertToFormat(QImage::Format_RGB888);
    // Mean absolute difference inside the frame; the two smooth scalers differ a little at edges.
    double diff = 0;
    for (int y = 0; y < rect.height(); ++y)
      for (int x = 0; x < rect.width(); ++x) {
        const QRgb a = painted.pixel(rect.x() + x, rect.y() + y), b = expected.pixel(x, y);
        diff += std::abs(qRed(a) - qRed(b)) + std::abs(qGreen(a) - qGreen(b)) + std::abs(qBlue(a) - qBlue(b));
      }
    diff /= 3.0 * rect.width() * rect.height();
    EXPECT_LT(diff, 2.0) << "size " << size.width() << "x" << size.height();
    // Centre of the frame (a flat colour away from the number) is exact.
    const QRgb centre = painted.pixel(rect.x() + rect.width() * 3 / 4, rect.center().y());
    const QRgb source = Expected(7).pixel(120, 45);
    EXPECT_EQ(qRed(centre), qRed(source));
    EXPECT_EQ(qGreen(centre), qGreen(source));
    EXPECT_EQ(qBlue(centre), qBlue(source));
    // Outside the frame: the view's background.
    const QPoint outside = rect.width() < view->width() ? QPoint(1, view->height() / 2) : QPoint(view->width() / 2, 1);
    ASSERT_FALSE(rect.contains(outside));
    EXPECT_EQ(painted.pixel(outside), qRgb(24, 24, 28));
  }
}

TEST_F(MainWindowTest, PlaybackKeepsTheFrameRateAndStopsAtTheEnd) {
  OpenClip();
  QElapsedTimer clock;
  QTest::keyClick(&window_, Qt::Key_Space);
  clock.start();
  EXPECT_TRUE(window_.playing());
  ASSERT_TRUE(WaitFor([&] { return window_.current_frame() >= 5; }, 5000));
  ASSERT_TRUE(WaitFor([&] { return !window_.playing() && window_.current_frame() == 29; }, 10000));
  const double seconds = clock.elapsed() / 1000.0;
  // 29 frame intervals at 24 fps: never faster than real time.
  EXPECT_GE(seconds, 29.0 / 24.0 - 0.02);
  // Space on the last frame plays from the start again; Space again pauses.
  QTest::keyClick(&window_, Qt::Key_Space);
  EXPECT_TRUE(window_.playing());
  ASSERT_TRUE(WaitFor([&] { return window_.current_frame() >= 1 && window_.current_frame() < 29; }, 5000));
  QTest::keyClick(&window_, Qt::Key_Space);
  EXPECT_FALSE(window_.playing());
  const int paused_at = window_.current_frame();
  QTest::qWait(200);
  EXPECT_LE(window_.current_frame(), paused_at + 1);  // at most the frame already in flight
}

TEST_F(MainWindowTest, PlaybackSkipsFramesWhenDecodingIsSlower) {
  // A clip whose nominal rate is far above what this machine decodes: playback must follow
  // the clock, showing the frame due now (skipping the ones in between), not every frame late.
  constexpr int kClipFrames = 96;
  const std::string base = "synth:frames=96,objects=4,seed=5,size=1280x720";
  auto probe = OpenVideoSource(base);
  const auto t0 = std::chrono::steady_clock::now();
  for (int k = 0; k < 6; ++k) probe->ReadFrame(k * 7);
  const double decode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 6;
  const double fps = std::min(1000.0, 8.0 / decode_s);  // eight frames fall due per decode
  const QString spec = QString::fromStdString(base) + QString(",fps=%1").arg(fps, 0, 'f', 3);
  window_.OpenPath(spec);
  ASSERT_TRUE(WaitFor([&] { return window_.frame_count() == kClipFrames && window_.current_frame() == 0; }));
  std::vector<std::pair<double, int>> shown;  // (seconds since play, frame)
  QElapsedTimer clock;
  QObject::connect(&window_, &MainWindow::frameShown, &window_,
                   [&](int index) { shown.emplace_back(clock.nsecsElapsed() / 1e9, index); });
  clock.start();
  window_.SetPlaying(true);
  // Playback stops once the clock passes the last frame, which is then shown.
  ASSERT_TRUE(WaitFor([&] { return !window_.playing() && window_.current_frame() == kClipFrames - 1; }, 30000));
  const double seconds = clock.elapsed() / 1000.0;
  int worst_lag = 0;
  for (const auto& [t, index] : shown)
    if (index != kClipFrames - 1) worst_lag = std::max(worst_lag, static_cast<int>(t * fps) - index);
  std::printf("decode %.1f ms/frame, playing at %.0f fps: %d of %d frames shown in %.3f s, worst lag %d frames\n",
              decode_s * 1000, fps, static_cast<int>(shown.size()), kClipFrames, seconds, worst_lag);
  EXPECT_GE(shown.size(), 3u);  // it advanced ...
  EXPECT_LT(shown.size(), kClipFrames * 3 / 4);  // ... by skipping
  // The lag behind the clock (printed above) depends on how busy the machine is: on 2 cores
  // with other tests running it reached 76 frames, so it is reported, not asserted. Showing
  // every frame in turn (no skipping) fails the frame-count check above instead.
  RecordProperty("worst_lag_frames", worst_lag);
}

TEST_F(MainWindowTest, BadPathReportsErrorAndKeepsVideo) {
  OpenClip();
  QTest::keyClick(&window_, Qt::Key_Right);
  ASSERT_TRUE(WaitForFrame(1));
  const QString status = window_.status_text();
  const QString title = window_.windowTitle();
  QSignalSpy errors(&window_, &MainWindow::errorOccurred);
  window_.OpenPath("/nonexistent/clip.mp4");
  ASSERT_TRUE(WaitFor([&] { return errors.count() == 1; }));
  const QString message = errors.takeFirst().at(0).toString();
  EXPECT_TRUE(message.contains("/nonexistent/clip.mp4")) << message.toStdString();
  // The video module's explanation follows the path.
  EXPECT_GT(message.size(), QString("Cannot open /nonexistent/clip.mp4:\n").size() + 5) << message.toStdString();
  EXPECT_EQ(window_.frame_count(), kFrames);
  EXPECT_EQ(window_.current_frame(), 1);
  EXPECT_EQ(window_.status_text(), status);
  EXPECT_EQ(window_.windowTitle(), title);
  QTest::keyClick(&window_, Qt::Key_Right);
  ASSERT_TRUE(WaitForFrame(2));
  EXPECT_EQ(window_.frame_view()->image(), Expected(2));

  // A folder without frames and a file that is not a video fail the same way.
  const fs::path empty = dir_ / "empty";
  fs::create_directories(empty);
  const fs::path junk = dir_ / "junk.mp4";
  std::FILE* f = std::fopen(junk.c_str(), "wb");
  std::fputs("not a video at all", f);
  std::fclose(f);
  for (const fs::path& bad : {empty, junk}) {
    window_.OpenPath(QString::fromStdString(bad.string()));
    ASSERT_TRUE(WaitFor([&] { return errors.count() == 1; })) << bad;
    errors.clear();
    EXPECT_EQ(window_.frame_count(), kFrames);
  }
  QTest::keyClick(&window_, Qt::Key_Right);
  ASSERT_TRUE(WaitForFrame(3));
  EXPECT_EQ(window_.frame_view()->image(), Expected(3));
}

TEST_F(MainWindowTest, RequestsForTheOldVideoAreDroppedWhenANewOneOpens) {
  OpenClip();
  const fs::path short_clip = dir_ / "short";
  WriteFrames(short_clip, 5, 64, 36, /*with_text=*/false);
  QSignalSpy errors(&window_, &MainWindow::errorOccurred);
  // End asks for frame 29 of the open clip while the 5-frame clip is being opened: that
  // request must not be served from the new clip (it has no frame 29).
  window_.OpenPath(QString::fromStdString(short_clip.string()));
  QTest::keyClick(&window_, Qt::Key_End);
  ASSERT_TRUE(WaitFor([&] { return window_.frame_count() == 5 && window_.current_frame() == 0; }));
  QTest::qWait(100);
  EXPECT_EQ(errors.count(), 0) << (errors.isEmpty() ? "" : errors.first().at(0).toString().toStdString());
  EXPECT_EQ(window_.current_frame(), 0);
  EXPECT_EQ(window_.frame_view()->image().size(), QSize(64, 36));
  EXPECT_EQ(window_.windowTitle(), QString("litseg — short"));
}

TEST_F(MainWindowTest, OpensRealVideoFile) {
  const std::string rel = "data/videos/03_blocks.mp4";
  LITSEG_REQUIRE_SHARED(rel);
  const std::string path = test::SharedPath(rel).string();
  auto reference = OpenVideoSource(path);
  const int frames = reference->info().frame_count;
  window_.OpenPath(QString::fromStdString(path));
  ASSERT_TRUE(WaitFor([&] { return window_.frame_count() == frames && window_.current_frame() == 0; }));
  window_.timeline()->setValue(150);
  ASSERT_TRUE(WaitForFrame(150));
  EXPECT_EQ(window_.frame_view()->image(), ToQImage(reference->ReadFrame(150)));
  EXPECT_TRUE(window_.status_text().contains("h264")) << window_.status_text().toStdString();
}

// --- the executable -------------------------------------------------------------------

struct AppRun {
  int exit_code = -1;
  QString output;
};

AppRun RunApp(const QStringList& arguments) {
  QProcess process;
  QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
  environment.insert("QT_QPA_PLATFORM", "offscreen");
  process.setProcessEnvironment(environment);
  process.setProcessChannelMode(QProcess::MergedChannels);
  process.start(LITSEG_APP_EXECUTABLE, arguments);
  if (!process.waitForFinished(60000)) {
    process.kill();
    process.waitForFinished();
    return {};
  }
  return {process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1,
          QString::fromLocal8Bit(process.readAll())};
}

TEST(AppCommandLine, ScreenshotShowsTheRequestedFrame) {
  const fs::path dir = test::TempDir("app_cli");
  // Flat-coloured frames: the middle of the view is exactly the frame's colour.
  WriteFrames(dir / "frames", 6, 160, 90, /*with_text=*/false);
  const fs::path png = dir / "shot.png";
  const AppRun run = RunApp({"--threads", "1", "--screenshot", QString::fromStdString(png.string()), "--frame", "4",
                          QString::fromStdString((dir / "frames").string())});
  ASSERT_EQ(run.exit_code, 0) << run.output.toStdString();
  const QImage shot(QString::fromStdString(png.string()));
  ASSERT_FALSE(shot.isNull());
  EXPECT_EQ(shot.size(), QSize(1200, 760));
  const cv::Mat frame4 = cv::imread((dir / "frames" / "00004.png").string());  // BGR
  const QRgb centre = shot.pixel(600, 360);
  EXPECT_EQ(qRed(centre), frame4.at<cv::Vec3b>(45, 80)[2]);
  EXPECT_EQ(qGreen(centre), frame4.at<cv::Vec3b>(45, 80)[1]);
  EXPECT_EQ(qBlue(centre), frame4.at<cv::Vec3b>(45, 80)[0]);
  fs::remove_all(dir);
}

TEST(AppCommandLine, RejectsBadArguments) {
  AppRun run = RunApp({"--threads", "many"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_TRUE(run.output.contains("--threads")) << run.output.toStdString();
  run = RunApp({"--screenshot", "/tmp/never.png", "/nonexistent/clip.mp4"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_TRUE(run.output.contains("/nonexistent/clip.mp4")) << run.output.toStdString();
  run = RunApp({"--help"});
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_TRUE(run.output.contains("--threads"));
  EXPECT_FALSE(run.output.contains("--screenshot"));  // a documentation helper, hidden
}

}  // namespace
}  // namespace litseg::app
