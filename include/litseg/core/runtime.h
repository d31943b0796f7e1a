// Process-wide compute settings shared by the GUI and the CLI.
//
// LibTorch starts with a single intra-op thread on this machine, and OpenCV picks its own
// count; ConfigureRuntime sets both once at start-up so every module uses the same number.
// Thread safety: call once from the main thread before any worker starts.
#pragma once

#include <string>

namespace litseg {

struct RuntimeOptions {
  int threads = 0;  // compute threads; 0 = all hardware threads
};

// Applies the options. The compute libraries register their setters (the engine adds
// LibTorch's); the resolved thread count is returned.
int ConfigureRuntime(const RuntimeOptions& options);

// Setter a module registers so ConfigureRuntime reaches a library core does not link
// (e.g. at::set_num_threads). Registration happens through a static initialiser.
using ThreadCountSetter = void (*)(int threads);
void RegisterThreadCountSetter(ThreadCountSetter setter);

// Thread count last applied by ConfigureRuntime (hardware threads before any call).
int ComputeThreads();

// OpenBLAS kernel selection. OpenBLAS picks its kernels from the CPU when it is loaded,
// unless OPENBLAS_CORETYPE forces a family; some environments force the AVX2 ("Haswell")
// kernels globally (this project's build machines do). On an AVX-512 CPU that costs the
// engine about 1.6x in fp32 matrix products and moves it away from the official SAM 2
// reference outputs, which were computed with OpenBLAS's AVX-512 kernels: the encoder then
// drifts by ~6e-5 instead of ~1e-6 and box-prompt logits by up to 1.4e-3 (tolerance 1e-3).
// OpenBLAS reads the variable only when it is loaded (before main), so the only way to
// change kernels is to start the program again.
//
// Call first thing in main(), before any thread starts. When OpenBLAS is the loaded BLAS,
// OPENBLAS_CORETYPE forces an AVX2-or-older kernel family and the CPU (and OS) support
// AVX-512 F/BW/VL/DQ/CD, the process replaces itself (execv of /proc/self/exe, same
// arguments) with OPENBLAS_CORETYPE removed, so OpenBLAS detects the CPU itself. It keeps
// the forced family when LITSEG_BLAS_KERNELS=inherit is set, and in every other case (no
// OpenBLAS, no AVX-512, a family that is not a downgrade, exec failure) it returns and
// nothing changes.
void SelectBlasKernels(char** argv);

// The kernel family of the loaded OpenBLAS ("SkylakeX", "Haswell", ...), or "" when the
// BLAS in this process is not OpenBLAS (e.g. MKL in the official LibTorch builds).
std::string BlasKernelName();

}  // namespace litseg
