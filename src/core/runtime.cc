#include "litseg/core/runtime.h"

#include <mutex>
#include <thread>
#include <vector>

#include <opencv2/core.hpp>

namespace litseg {
namespace {

std::vector<ThreadCountSetter>& Setters() {
  static std::vector<ThreadCountSetter> setters;
  return setters;
}

int& AppliedThreads() {
  static int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return threads;
}

}  // namespace

void RegisterThreadCountSetter(ThreadCountSetter setter) { Setters().push_back(setter); }

int ConfigureRuntime(const RuntimeOptions& options) {
  int threads = options.threads;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cv::setNumThreads(threads);
  for (ThreadCountSetter setter : Setters()) setter(threads);
  AppliedThreads() = threads;
  return threads;
}

int ComputeThreads() { return AppliedThreads(); }

}  // namespace litseg
