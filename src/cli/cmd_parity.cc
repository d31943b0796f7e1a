// litseg-cli parity: compares the engine with the official implementation's golden outputs.
#include <cstdio>
#include <fstream>
#include <iostream>

#include "cli/args.h"
#include "cli/command.h"
#include "litseg/core/runtime.h"
#include "litseg/core/error.h"
#include "litseg/sam2/parity.h"

namespace litseg::cli {
namespace {

int RunParityCommand(const std::vector<std::string>& argv) {
  ArgParser args(argv);
  if (args.Flag("--help")) {
    std::cout << "usage: litseg-cli parity --golden DIR [--json FILE] [--device auto|cpu|cuda] [--bf16]\n"
                 "                         [--weights FILE] [--config FILE] [--quiet]\n"
                 "  DIR has the layout of ../shared/sam2/micro/golden (manifest.json + *.safetensors);\n"
                 "  the weights and config default to DIR/../weights.safetensors and DIR/../config.json.\n"
                 "  Exit status 1 if any comparison fails. Cases that cannot run are reported as skipped.\n";
    return 0;
  }
  sam2::ParityOptions options;
  options.golden_dir = args.Required("--golden");
  options.weights = args.String("--weights", "");
  options.config = args.String("--config", "");
  options.device = args.String("--device", "cpu");
  options.bf16 = args.Flag("--bf16");
  const bool quiet = args.Flag("--quiet");
  const std::string json_path = args.String("--json", "");
  args.Finish();

  std::printf("%-28s %-52s %12s %10s  %s\n", "case", "tensor", "max|diff|", "tolerance", "status");
  const sam2::ParityReport report = sam2::RunParity(options, [&](const sam2::ParityRecord& r) {
    if (quiet && r.status == "pass") return;
    std::printf("%-28s %-52s %12.3g %10.1g  %s%s%s\n", r.case_name.c_str(), r.tensor.c_str(), r.max_abs_diff,
                r.tolerance, r.status.c_str(), r.detail.empty() ? "" : "  ", r.detail.c_str());
  });
  const std::string blas = BlasKernelName();
  std::printf("\nparity %s on %s%s: %d passed, %d failed, %d skipped\n", report.golden_dir.c_str(),
              report.device.c_str(), blas.empty() ? "" : (", OpenBLAS " + blas + " kernels").c_str(),
              report.passed(), report.failed(), report.skipped());
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << report.ToJson() << "\n";
    if (!out) throw Error("cannot write " + json_path);
  }
  return report.failed() > 0 ? 1 : 0;
}

CommandRegistrar parity_command{
    {"parity", "compare the engine with golden outputs of the official SAM 2 (exit 1 on failure)", RunParityCommand}};

}  // namespace
}  // namespace litseg::cli
