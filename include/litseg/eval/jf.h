// Region similarity J and boundary accuracy F, as the DAVIS-2017 benchmark defines them
// (davis2017-evaluation: db_eval_iou, f_measure, _seg2bmap, db_statistics, and the
// semi-supervised protocol of evaluation.py).
//
//   litseg::JfParams params;                       // bound_th 0.008, frames 1..n-2
//   litseg::JfReport report = litseg::EvaluateFolders("gt/", "pred/", params);
//   std::printf("J&F %.4f\n", report.jf_mean);
//
//   litseg::JfFrame one = litseg::EvaluateFrame(prediction, truth);  // in-memory masks
//
// What this reproduces exactly: per-frame J and F (boundary map with the shifted-neighbour
// rule, tolerance ceil(bound_th * image diagonal) pixels, skimage's disk, OpenCV dilation,
// the empty-mask special cases), mean and recall, the objects of a sequence (ids 1..max id
// of the first ground-truth frame), and the global figures (means over objects).
// Where it differs from the official script, on purpose:
//  * decay: the official code casts the bin indices to uint8, so beyond 256 scored frames
//    they wrap (257 frames: the last bin is an empty slice and decay is NaN; longer: bins
//    land anywhere). Here the same bins are computed in 64-bit integers: identical results
//    up to 256 frames, correct bins for any length.
//  * void (255 in the ground truth) is excluded from J and F, as the metric functions'
//    void_pixels argument intends. (The official evaluation.py sets 255 to background
//    before it builds its void mask, so its void mask is always empty; DAVIS-2016/2017
//    train/val annotations contain no void pixels, so the numbers agree on them.)
//  * a sequence missing a prediction, or with object ids the ground truth does not have,
//    is a litseg::Error naming it (the official script prints a line and exits); an
//    object the prediction never mentions is scored as an empty mask (the official script
//    refuses such a prediction as well).
// Thread safety: free functions are pure; a JfSequenceScorer must not be shared between
// threads while frames are being added.
#pragma once

#include <string>
#include <vector>

#include "litseg/core/mask.h"

namespace litseg {

struct JfParams {
  // Boundary tolerance: a fraction of the image diagonal when < 1 (ceil(bound_th * diag)
  // pixels), else a radius in pixels.
  double bound_th = 0.008;
  // Score every frame; by default the first and last are skipped, as the official
  // semi-supervised protocol does (the first frame is the given annotation).
  bool all_frames = false;
  // One object per sequence: any ground-truth label 1..254 (255 stays void) against any
  // predicted label > 0. Off: each object id is scored on its own, as DAVIS-2017 does.
  bool foreground = false;
};

// J and F of one object in one frame.
struct JfFrame {
  double j = 0.0;
  double f = 0.0;
};

// J: |pred ∩ gt| / |pred ∪ gt| outside void pixels; 1 when that union is empty.
double RegionJ(const Mask& prediction, const Mask& truth, const Mask* void_pixels = nullptr);
// F: harmonic mean of boundary precision and recall, a boundary pixel counting as matched
// when the other mask's boundary lies within the disk tolerance. Both boundaries empty:
// 1; exactly one empty: 0.
double BoundaryF(const Mask& prediction, const Mask& truth, const Mask* void_pixels = nullptr,
                 double bound_th = 0.008);
JfFrame EvaluateFrame(const Mask& prediction, const Mask& truth, const Mask* void_pixels = nullptr,
                      double bound_th = 0.008);
// The boundary pixels of a mask (DAVIS _seg2bmap at the mask's own size): a pixel is on
// the boundary when it differs from its east, south or south-east neighbour; the last row
// compares east only, the last column south only, the bottom-right pixel never is.
Mask BoundaryMap(const Mask& mask);
// The dilation radius F uses for a width x height image (may be fractional when
// bound_th >= 1 is fractional; skimage's disk() is then reproduced as such).
double BoundaryRadius(int width, int height, double bound_th);

struct JfStatistics {
  double mean = 0.0;    // mean, ignoring NaN
  double recall = 0.0;  // fraction of frames with value > 0.5 (NaN frames count as misses)
  double decay = 0.0;   // mean of the first quarter of the frames minus mean of the last
};
// NaN statistics for an empty list.
JfStatistics ComputeStatistics(const std::vector<double>& per_frame);
// The inclusive frame ranges decay compares: round(linspace(1, n, 5) + 1e-10) - 1, bins
// [ids[i], ids[i+1]] (adjacent bins share an end frame), in 64-bit arithmetic.
std::vector<long long> DecayBinEdges(size_t frame_count);

// One object of one sequence.
struct JfObjectResult {
  std::string sequence;
  int object_id = 1;
  bool foreground = false;          // scored in foreground mode (one object per sequence)
  std::vector<std::string> frames;  // names of the scored frames
  std::vector<double> j, f;         // per scored frame
  JfStatistics j_stats, f_stats;
  // "<sequence>_<id>" as in the official per-object table; "<sequence>" in foreground mode.
  std::string Name() const;
  double JfMean() const { return (j_stats.mean + f_stats.mean) / 2.0; }
};

struct JfReport {
  JfParams params;
  std::vector<JfObjectResult> objects;
  // Means over objects of the per-object statistics, as the official global table.
  double j_mean = 0.0, j_recall = 0.0, j_decay = 0.0;
  double f_mean = 0.0, f_recall = 0.0, f_decay = 0.0;
  double jf_mean = 0.0;  // (j_mean + f_mean) / 2
  std::string ToJson() const;
  std::string ToTable() const;
};

// Scores a sequence frame by frame, for masks already in memory (the folder functions below
// use it too). Object ids come from the first ground-truth frame of the sequence, which
// is given to the constructor whether or not it is scored.
class JfSequenceScorer {
 public:
  JfSequenceScorer(std::string sequence, const LabelMap& first_truth, const JfParams& params);
  // Throws litseg::Error when sizes differ, or when (per-object mode) the prediction holds
  // an id the ground truth's first frame does not have.
  void AddFrame(const std::string& frame_name, const LabelMap& truth, const LabelMap& prediction);
  // The per-object results with their statistics.
  std::vector<JfObjectResult> Results() const;
  const std::vector<int>& object_ids() const { return object_ids_; }

 private:
  std::string sequence_;
  JfParams params_;
  std::vector<int> object_ids_;
  std::vector<JfObjectResult> results_;
};

// Evaluates one sequence: PNG label maps with matching file names in both folders (read with
// ReadLabelPng). Every ground-truth frame that is scored needs a prediction of the same name.
std::vector<JfObjectResult> EvaluateSequence(const std::string& sequence, const std::string& gt_dir,
                                             const std::string& pred_dir, const JfParams& params);
// gt_dir is a sequence folder (PNG files directly inside) or a folder of sequence folders.
// For a single sequence pred_dir may be the sequence folder or its parent. Every ground-truth
// sequence needs a prediction folder (the error lists the missing ones); prediction folders
// without ground truth are ignored.
JfReport EvaluateFolders(const std::string& gt_dir, const std::string& pred_dir, const JfParams& params);
// Aggregates per-object results the way the official evaluation does.
JfReport Summarise(std::vector<JfObjectResult> objects, const JfParams& params = {});

}  // namespace litseg
