// Process-wide compute settings shared by the GUI and the CLI.
//
// LibTorch starts with a single intra-op thread on this machine, and OpenCV picks its own
// count; ConfigureRuntime sets both once at start-up so every module uses the same number.
// Thread safety: call once from the main thread before any worker starts.
#pragma once

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

}  // namespace litseg
