#include "litseg/core/runtime.h"

#include <dlfcn.h>
#include <strings.h>
#include <unistd.h>

#include <cstdlib>
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

std::string BlasKernelName() {
  // Looked up at run time: core does not link OpenBLAS (LibTorch brings the BLAS).
  using CoreNameFn = char* (*)();
  auto corename = reinterpret_cast<CoreNameFn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (corename == nullptr) return {};
  const char* name = corename();
  return name != nullptr ? std::string(name) : std::string();
}

void SelectBlasKernels(char** argv) {
  if (argv == nullptr || argv[0] == nullptr) return;
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  if (forced == nullptr) return;  // OpenBLAS chose from the CPU already
  const char* policy = std::getenv("LITSEG_BLAS_KERNELS");
  if (policy != nullptr && std::string(policy) == "inherit") return;
  // Families without AVX-512 kernels that OpenBLAS runs on current x86-64 CPUs.
  static const char* const kPreAvx512[] = {"Haswell", "Zen", "Sandybridge", "Nehalem",
                                           "Core2", "Penryn", "Dunnington", "Atom"};
  const std::string kernels = BlasKernelName();
  bool downgrade = false;
  for (const char* family : kPreAvx512)
    downgrade = downgrade || strcasecmp(kernels.c_str(), family) == 0;
  if (!downgrade) return;
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512cd");
  if (!avx512) return;
  const std::string previous = forced;
  // LITSEG_BLAS_KERNELS=inherit in the new process stops a second restart should OpenBLAS
  // pick the same family again; it is the documented opt-out, so nothing else changes.
  if (unsetenv("OPENBLAS_CORETYPE") != 0 || setenv("LITSEG_BLAS_KERNELS", "inherit", 1) != 0) return;
  execv("/proc/self/exe", argv);
  // exec failed: carry on with the kernels already loaded.
  setenv("OPENBLAS_CORETYPE", previous.c_str(), 1);
  if (policy == nullptr) unsetenv("LITSEG_BLAS_KERNELS");
}

}  // namespace litseg
