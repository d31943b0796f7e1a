// Drives the main window like a user (keys, slider, open errors) on Qt's offscreen platform.
#include <functional>

#include <QApplication>
#include <QElapsedTimer>
#include <QSignalSpy>
#include <QSlider>
#include <QTest>
#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "app/frame_view.h"
#include "app/main_window.h"
#include "common/shared_data.h"
#include "litseg/video/synthetic.h"

namespace litseg::app {
namespace {
namespace fs = std::filesystem;

// One QApplication for the whole program, on the offscreen platform.
class QtEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    qputenv("QT_QPA_PLATFORM", "offscreen");
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

bool WaitFor(const std::function<bool()>& condition, int timeout_ms = 10000) {
  QElapsedTimer timer;
  timer.start();
  while (!condition()) {
    if (timer.elapsed() > timeout_ms) return false;
    QTest::qWait(5);
  }
  return true;
}

class MainWindowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::TempDir("app_frames");
    // A small frame folder whose frames are easy to tell apart.
    for (int i = 0; i < 30; ++i) {
      cv::Mat bgr(90, 160, CV_8UC3, cv::Scalar(20 + 7 * i, 255 - 8 * i, (i * 37) % 256));
      cv::putText(bgr, std::to_string(i), {10, 60}, cv::FONT_HERSHEY_SIMPLEX, 1.5, cv::Scalar(255, 255, 255), 3);
      char name[16];
      std::snprintf(name, sizeof(name), "%05d.png", i);
      cv::imwrite((dir_ / name).string(), bgr);
    }
    window_.SetShowErrorDialogs(false);
    window_.resize(800, 500);
    window_.show();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Decoded frame k of the folder as the window should show it.
  QImage Expected(int k) const {
    char name[16];
    std::snprintf(name, sizeof(name), "%05d.png", k);
    cv::Mat rgb;
    cv::cvtColor(cv::imread((dir_ / name).string()), rgb, cv::COLOR_BGR2RGB);
    return QImage(rgb.data, rgb.cols, rgb.rows, static_cast<qsizetype>(rgb.step[0]), QImage::Format_RGB888).copy();
  }

  void OpenAndWait() {
    window_.OpenPath(QString::fromStdString(dir_.string()));
    ASSERT_TRUE(WaitFor([&] { return window_.current_frame() == 0; }));
  }

  fs::path dir_;
  MainWindow window_;
};

TEST_F(MainWindowTest, OpensFolderAndShowsFirstFrame) {
  OpenAndWait();
  EXPECT_EQ(window_.frame_count(), 30);
  EXPECT_TRUE(window_.position_text().startsWith("frame 0 / 30")) << window_.position_text().toStdString();
  EXPECT_TRUE(window_.windowTitle().contains(QString::fromStdString(dir_.filename().string())));
  EXPECT_EQ(window_.frame_view()->image(), Expected(0));
}

TEST_F(MainWindowTest, KeysStepAndJump) {
  OpenAndWait();
  QTest::keyClick(&window_, Qt::Key_Right);
  ASSERT_TRUE(WaitFor([&] { return window_.current_frame() == 1; }));
  EXPECT_EQ(window_.frame_view()->image(), Expected(1));
  EXPECT_TRUE(window_.position_text().startsWith("frame 1 / 30"));
  QTest::keyClick(&window_, Qt::Key_End);
  ASSERT_TRUE(WaitFor([&] { return window_.current_frame() == 29; }));
  EXPECT_EQ(window_.frame_view()->image(), Expected(29));
  QTest::keyClick(&window_, Qt::Key_Left);
  ASSERT_TRUE(WaitFor([&] { return window_.current_frame() == 28; }));
  QTest::keyClick(&window_, Qt::Key_PageUp);
  ASSERT_TRUE(WaitFor([&] { return window_.current_frame() == 18; }));
  QTest::keyClick(&window_, Qt::Key_Home);
  ASSERT_TRUE(WaitFor([&] { return window_.current_frame() == 0; }));
  QTest::keyClick(&window_, Qt::Key_Left);  // stays at the first frame
  QTest::qWait(50);
  EXPECT_EQ(window_.current_frame(), 0);
}

TEST_F(MainWindowTest, SliderDragShowsThatFrame) {
  OpenAndWait();
  // A burst of slider moves: only the last one must end up on screen.
  for (int v = 1; v <= 17; ++v) window_.timeline()->setValue(v);
  ASSERT_TRUE(WaitFor([&] { return window_.current_frame() == 17; }));
  QTest::qWait(100);
  EXPECT_EQ(window_.current_frame(), 17);
  EXPECT_EQ(window_.frame_view()->image(), Expected(17));
  EXPECT_EQ(window_.timeline()->value(), 17);
}

TEST_F(MainWindowTest, PlaybackAdvancesAndStopsAtTheEnd) {
  OpenAndWait();
  QTest::keyClick(&window_, Qt::Key_Space);
  EXPECT_TRUE(window_.playing());
  ASSERT_TRUE(WaitFor([&] { return window_.current_frame() >= 5; }, 5000));
  ASSERT_TRUE(WaitFor([&] { return !window_.playing(); }, 10000));  // 30 frames at 24 fps
  EXPECT_EQ(window_.current_frame(), 29);
}

TEST_F(MainWindowTest, BadPathReportsErrorAndKeepsVideo) {
  OpenAndWait();
  QTest::keyClick(&window_, Qt::Key_Right);
  ASSERT_TRUE(WaitFor([&] { return window_.current_frame() == 1; }));
  QSignalSpy errors(&window_, &MainWindow::errorOccurred);
  window_.OpenPath("/nonexistent/clip.mp4");
  ASSERT_TRUE(WaitFor([&] { return errors.count() == 1; }));
  EXPECT_TRUE(errors.takeFirst().at(0).toString().contains("clip.mp4"));
  EXPECT_EQ(window_.frame_count(), 30);
  QTest::keyClick(&window_, Qt::Key_Right);
  ASSERT_TRUE(WaitFor([&] { return window_.current_frame() == 2; }));
  EXPECT_EQ(window_.frame_view()->image(), Expected(2));
}

TEST_F(MainWindowTest, OpensRealVideoFile) {
  const std::string rel = "data/videos/03_blocks.mp4";
  LITSEG_REQUIRE_SHARED(rel);
  window_.OpenPath(QString::fromStdString(test::SharedPath(rel).string()));
  ASSERT_TRUE(WaitFor([&] { return window_.frame_count() == 292 && window_.current_frame() == 0; }));
  window_.timeline()->setValue(150);
  ASSERT_TRUE(WaitFor([&] { return window_.current_frame() == 150; }));
  EXPECT_EQ(window_.frame_view()->image().width(), 1280);
}

}  // namespace
}  // namespace litseg::app
