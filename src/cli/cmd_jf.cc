// litseg-cli jf: DAVIS J&F of predicted masks against ground truth.
//
//   litseg-cli jf --gt DAVIS/Annotations/480p --pred results/osvos --json jf.json
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
    std::cout << "usage: litseg-cli jf --gt DIR --pred DIR [--all-frames] [--foreground] [--bound-th X] [--json FILE]\n"
                 "  DIR: a sequence folder of PNG masks, or a folder of sequence folders (DAVIS layout);\n"
                 "       every ground-truth sequence needs a prediction folder of the same name.\n"
                 "  --all-frames  score every frame (default: frames 1..n-2, the official semi-supervised protocol)\n"
                 "  --foreground  one object per sequence: any label > 0 (default: each object id, DAVIS-2017)\n"
                 "  --bound-th X  boundary tolerance, fraction of the image diagonal (< 1) or pixels (default 0.008)\n"
                 "  --json FILE   also write per-object statistics and per-frame J and F as JSON\n";
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
    out << report.ToJson() << "\n";
    if (!out) throw Error("cannot write " + json_path);
    std::cout << "wrote " << json_path << "\n";
  }
  return 0;
}

CommandRegistrar jf_command{{"jf", "J&F of predicted masks against ground truth (DAVIS)", RunJf}};

}  // namespace
}  // namespace litseg::cli
