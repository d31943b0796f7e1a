// litseg: the desktop application.
//
//   litseg [--threads N] [VIDEO_OR_FRAME_FOLDER]
//   litseg --screenshot FILE [--frame K] PATH   (renders the window offscreen to a PNG and exits)
#include <algorithm>
#include <cstdio>

#include <QApplication>
#include <QCommandLineParser>
#include <QTimer>

#include "app/main_window.h"
#include "litseg/core/runtime.h"

int main(int argc, char** argv) {
  litseg::SelectBlasKernels(argv);  // may restart the process once (see runtime.h)
  QApplication app(argc, argv);
  QApplication::setApplicationName("litseg");
  QApplication::setApplicationVersion("0.1.0");

  QCommandLineParser parser;
  parser.setApplicationDescription("Video mask annotation with SAM 2.1 and live interactive training");
  parser.addHelpOption();
  parser.addVersionOption();
  QCommandLineOption threads("threads", "Compute threads (default: all cores).", "N", "0");
  QCommandLineOption screenshot("screenshot", "Render the window with PATH open to FILE and exit.", "FILE");
  QCommandLineOption frame("frame", "Frame shown for --screenshot.", "K", "0");
  // Documentation helpers, not user features.
  screenshot.setFlags(QCommandLineOption::HiddenFromHelp);
  frame.setFlags(QCommandLineOption::HiddenFromHelp);
  parser.addOptions({threads, screenshot, frame});
  parser.addPositionalArgument("path", "Video file or frame folder to open.");
  parser.process(app);

  litseg::RuntimeOptions runtime;
  bool threads_ok = false;
  runtime.threads = parser.value(threads).toInt(&threads_ok);
  if (!threads_ok || runtime.threads < 0) {
    std::fprintf(stderr, "litseg: --threads needs a whole number >= 0 (0 = all cores), got '%s'\n",
                 qPrintable(parser.value(threads)));
    return 2;
  }
  litseg::ConfigureRuntime(runtime);

  litseg::app::MainWindow window;
  window.resize(1200, 760);
  const QStringList paths = parser.positionalArguments();

  if (parser.isSet(screenshot)) {
    if (paths.isEmpty()) {
      std::fprintf(stderr, "litseg: --screenshot needs a video or frame folder to open\n");
      return 2;
    }
    const QString file = parser.value(screenshot);
    const int target = parser.value(frame).toInt();
    window.SetShowErrorDialogs(false);
    QObject::connect(&window, &litseg::app::MainWindow::errorOccurred, [&](const QString& message) {
      qCritical("%s", qPrintable(message));
      app.exit(1);
    });
    QObject::connect(&window, &litseg::app::MainWindow::videoOpened, [&] { window.ShowFrame(target); });
    QObject::connect(&window, &litseg::app::MainWindow::frameShown, [&](int index) {
      if (index != std::clamp(target, 0, window.frame_count() - 1)) return;
      window.show();
      QTimer::singleShot(100, [&] { app.exit(window.grab().save(file) ? 0 : 1); });
    });
    window.OpenPath(paths.front());
    return app.exec();
  }

  window.show();
  if (!paths.isEmpty()) window.OpenPath(paths.front());
  return app.exec();
}
