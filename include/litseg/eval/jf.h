// Region similarity J and boundary accuracy F, as the DAVIS-2017 benchmark defines them
// (davis2017-evaluation: db_eval_iou, f_measure, _seg2bmap, db_statistics).
//
//   litseg::JfParams params;                       // bound_th 0.008, frames 1..n-2
//   litseg::JfReport report = litseg::EvaluateFolders("gt/", "pred/", params);
//   std::printf("J&F %.4f\n", report.jf_mean);
//
// Differences from the official script, on purpose: the decay bins are computed in 64-bit
// integers (the official code casts them to uint8, which wraps and gives wrong decay beyond
// 255 frames); everything else reproduces its numbers.
// Thread safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "litseg/core/mask.h"

namespace litseg {

struct JfParams {
  // Boundary tolerance: a fraction of the image diagonal when < 1 (ceil(bound_th * diag)
  // pixels), else a pixel count.
  double bound_th = 0.008;
  // Score every frame; by default the first and last are skipped, as in the official
  // semi-supervised protocol.
  bool all_frames = false;
  // Treat any label > 0 (except void 255) as one object instead of evaluating each id.
  bool foreground = false;
};

// J: |pred ∩ gt| / |pred ∪ gt| outside void pixels; 1 when the union is empty.
double RegionJ(const Mask& prediction, const Mask& truth, const Mask* void_pixels = nullptr);
// F: boundary precision/recall F-measure with the disk tolerance.
double BoundaryF(const Mask& prediction, const Mask& truth, const Mask* void_pixels = nullptr,
                 double bound_th = 0.008);
// The boundary pixels of a mask (DAVIS _seg2bmap at the mask's own size).
Mask BoundaryMap(const Mask& mask);

struct JfStatistics {
  double mean = 0.0;    // NaN-ignoring mean
  double recall = 0.0;  // fraction of frames with value > 0.5
  double decay = 0.0;   // mean of the first quarter minus mean of the last quarter
};
JfStatistics ComputeStatistics(const std::vector<double>& per_frame);

struct JfObjectResult {
  std::string sequence;
  int object_id = 1;
  std::vector<std::string> frames;  // names of the scored frames
  std::vector<double> j, f;         // per scored frame
  JfStatistics j_stats, f_stats;
  std::string Name() const;  // "<sequence>_<object_id>" as in the official per-object table
};

struct JfReport {
  std::vector<JfObjectResult> objects;
  double j_mean = 0.0, j_recall = 0.0, j_decay = 0.0;
  double f_mean = 0.0, f_recall = 0.0, f_decay = 0.0;
  double jf_mean = 0.0;
  std::string ToJson() const;
  std::string ToTable() const;
};

// Evaluates one sequence: PNG label maps with matching file names in both folders.
std::vector<JfObjectResult> EvaluateSequence(const std::string& sequence, const std::string& gt_dir,
                                             const std::string& pred_dir, const JfParams& params);
// A sequence folder (PNG files directly inside) or a folder of sequence folders; sequences
// present in the ground truth but missing from the predictions are an error.
JfReport EvaluateFolders(const std::string& gt_dir, const std::string& pred_dir, const JfParams& params);
// Aggregates per-object results the way the official evaluation does.
JfReport Summarise(std::vector<JfObjectResult> objects);

}  // namespace litseg
