// litseg-cli jf: DAVIS J&F of predicted masks against ground truth.
#include <fstream>
#include <iostream>

#include "cli/args.h"
#include "cli/command.h"
#include "litseg/core/error.h"
#include "litseg/eval/jf.h"

namespace litseg::cli {
namespace {

int RunJf(const std::vector<std::string>& argv) {
  ArgParser args(argv);
  if (args.Flag("--help")) {
    std::cout << "usage: litseg-cli jf --gt DIR --pred DIR [--all-frames] [--foreground] [--json FILE]\n"
                 "  DIR: a sequence folder of PNG masks, or a folder of sequence folders (DAVIS layout).\n"
                 "  By default frames 1..n-2 are scored (official semi-supervised protocol).\n";
    return 0;
  }
  JfParams params;
  const std::string gt = args.Required("--gt");
  const std::string pred = args.Required("--pred");
  params.all_frames = args.Flag("--all-frames");
  params.foreground = args.Flag("--foreground");
  params.bound_th = args.Double("--bound-th", params.bound_th);
  const std::string json_path = args.String("--json", "");
  args.Finish();

  const JfReport report = EvaluateFolders(gt, pred, params);
  std::cout << report.ToTable();
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    if (!out) throw Error("cannot write " + json_path);
    out << report.ToJson() << "\n";
  }
  return 0;
}

CommandRegistrar jf_command{{"jf", "J&F of predicted masks against ground truth (DAVIS)", RunJf}};

}  // namespace
}  // namespace litseg::cli
