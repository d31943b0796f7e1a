#include "litseg/eval/jf.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "litseg/core/error.h"
#include "litseg/core/mask_io.h"
#include "litseg/core/mask_ops.h"

namespace litseg {
namespace fs = std::filesystem;
namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string SizeText(int width, int height) { return std::to_string(width) + "x" + std::to_string(height); }

void RequireSameSize(const Mask& prediction, const Mask& truth, const Mask* void_pixels, const char* what) {
  if (prediction.width() != truth.width() || prediction.height() != truth.height())
    throw Error(std::string(what) + ": the prediction is " + SizeText(prediction.width(), prediction.height()) +
                " but the ground truth is " + SizeText(truth.width(), truth.height()));
  if (void_pixels && (void_pixels->width() != truth.width() || void_pixels->height() != truth.height()))
    throw Error(std::string(what) + ": the void mask is " + SizeText(void_pixels->width(), void_pixels->height()) +
                " but the ground truth is " + SizeText(truth.width(), truth.height()));
}

// skimage.morphology.disk(radius): the points of np.arange(-r, r + 1) x np.arange(-r, r + 1)
// with x^2 + y^2 <= r^2. For a fractional radius the grid has ceil(2r + 1) points per side
// at half-integer offsets, and cv::dilate anchors it at its centre cell, as cv2 does.
cv::Mat DiskKernel(double radius) {
  const int side = static_cast<int>(std::ceil(2.0 * radius + 1.0));
  cv::Mat kernel(side, side, CV_8UC1);
  for (int row = 0; row < side; ++row) {
    const double y = -radius + row;
    for (int col = 0; col < side; ++col) {
      const double x = -radius + col;
      kernel.at<uint8_t>(row, col) = (x * x + y * y <= radius * radius) ? 1 : 0;
    }
  }
  return kernel;
}

// mask with the void pixels cleared (f_measure multiplies by logical_not(void)).
Mask WithoutVoid(const Mask& mask, const Mask* void_pixels) {
  if (!void_pixels) return mask;
  Mask out = mask;
  const uint8_t* v = void_pixels->data();
  uint8_t* o = out.data();
  for (size_t i = 0; i < out.pixel_count(); ++i)
    if (v[i]) o[i] = 0;
  return out;
}

double NanMean(const std::vector<double>& values, size_t begin, size_t end) {
  double sum = 0.0;
  size_t n = 0;
  for (size_t i = begin; i < end && i < values.size(); ++i) {
    if (std::isnan(values[i])) continue;
    sum += values[i];
    ++n;
  }
  return n ? sum / static_cast<double>(n) : kNaN;
}

bool IsPng(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png";
}

std::vector<std::string> PngNames(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.is_regular_file() && IsPng(entry.path())) names.push_back(entry.path().filename().string());
  if (ec) throw Error("cannot list " + dir.string() + ": " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> SubfolderNames(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && !name.empty() && name[0] != '.') names.push_back(name);
  }
  if (ec) throw Error("cannot list " + dir.string() + ": " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

double RegionJ(const Mask& prediction, const Mask& truth, const Mask* void_pixels) {
  RequireSameSize(prediction, truth, void_pixels, "J");
  const uint8_t* p = prediction.data();
  const uint8_t* g = truth.data();
  const uint8_t* v = void_pixels ? void_pixels->data() : nullptr;
  uint64_t intersection = 0, union_area = 0;
  for (size_t i = 0; i < truth.pixel_count(); ++i) {
    if (v && v[i]) continue;
    const bool in_p = p[i] != 0, in_g = g[i] != 0;
    intersection += in_p && in_g;
    union_area += in_p || in_g;
  }
  return union_area == 0 ? 1.0 : static_cast<double>(intersection) / static_cast<double>(union_area);
}

Mask BoundaryMap(const Mask& seg) {
  const int h = seg.height(), w = seg.width();
  Mask b(w, h);
  if (seg.empty()) return b;
  auto at = [&](int x, int y) -> uint8_t { return seg(x, y) ? 1 : 0; };
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const uint8_t s = at(x, y);
      const bool last_col = x == w - 1, last_row = y == h - 1;
      uint8_t v;
      if (last_row && last_col)
        v = 0;
      else if (last_col)
        v = s ^ at(x, y + 1);
      else if (last_row)
        v = s ^ at(x + 1, y);
      else
        v = (s ^ at(x + 1, y)) | (s ^ at(x, y + 1)) | (s ^ at(x + 1, y + 1));
      b(x, y) = v;
    }
  }
  return b;
}

double BoundaryRadius(int width, int height, double bound_th) {
  if (!(bound_th >= 0.0) || !std::isfinite(bound_th))
    throw Error("boundary threshold must be a non-negative number, got " + std::to_string(bound_th));
  if (bound_th >= 1.0) return bound_th;
  // np.linalg.norm(shape): sqrt of the (exact) integer sum of squares.
  const double h = height, w = width;
  return std::ceil(bound_th * std::sqrt(h * h + w * w));
}

double BoundaryF(const Mask& prediction, const Mask& truth, const Mask* void_pixels, double bound_th) {
  RequireSameSize(prediction, truth, void_pixels, "F");
  const double radius = BoundaryRadius(truth.width(), truth.height(), bound_th);
  const Mask fg_boundary = BoundaryMap(WithoutVoid(prediction, void_pixels));
  const Mask gt_boundary = BoundaryMap(WithoutVoid(truth, void_pixels));
  if (truth.empty()) return 1.0;  // no boundary pixels at all

  const cv::Mat kernel = DiskKernel(radius);
  cv::Mat fg_dilated, gt_dilated;
  cv::dilate(AsMat(fg_boundary), fg_dilated, kernel);
  cv::dilate(AsMat(gt_boundary), gt_dilated, kernel);

  uint64_t n_fg = 0, n_gt = 0, fg_match = 0, gt_match = 0;
  for (int y = 0; y < truth.height(); ++y) {
    const uint8_t* fd = fg_dilated.ptr<uint8_t>(y);
    const uint8_t* gd = gt_dilated.ptr<uint8_t>(y);
    for (int x = 0; x < truth.width(); ++x) {
      const bool fb = fg_boundary(x, y) != 0, gb = gt_boundary(x, y) != 0;
      n_fg += fb;
      n_gt += gb;
      fg_match += fb && gd[x];
      gt_match += gb && fd[x];
    }
  }
  double precision, recall;
  if (n_fg == 0 && n_gt > 0) {
    precision = 1.0;
    recall = 0.0;
  } else if (n_fg > 0 && n_gt == 0) {
    precision = 0.0;
    recall = 1.0;
  } else if (n_fg == 0 && n_gt == 0) {
    precision = 1.0;
    recall = 1.0;
  } else {
    precision = static_cast<double>(fg_match) / static_cast<double>(n_fg);
    recall = static_cast<double>(gt_match) / static_cast<double>(n_gt);
  }
  return precision + recall == 0.0 ? 0.0 : 2.0 * precision * recall / (precision + recall);
}

JfFrame EvaluateFrame(const Mask& prediction, const Mask& truth, const Mask* void_pixels, double bound_th) {
  return JfFrame{RegionJ(prediction, truth, void_pixels), BoundaryF(prediction, truth, void_pixels, bound_th)};
}

std::vector<long long> DecayBinEdges(size_t frame_count) {
  // np.linspace(1, n, 5): start + i * step with step = (n - 1) / 4, the last point exactly n;
  // np.round is round-half-even, which std::nearbyint is in the default rounding mode.
  const int bins = 4;
  const double n = static_cast<double>(frame_count);
  const double step = (n - 1.0) / bins;
  std::vector<long long> ids(bins + 1);
  for (int i = 0; i <= bins; ++i) {
    const double point = (i == bins) ? n : i * step + 1.0;
    ids[i] = static_cast<long long>(std::nearbyint(point + 1e-10)) - 1;
  }
  return ids;
}

JfStatistics ComputeStatistics(const std::vector<double>& values) {
  JfStatistics s;
  if (values.empty()) {
    s.mean = s.recall = s.decay = kNaN;
    return s;
  }
  s.mean = NanMean(values, 0, values.size());
  // Official: nanmean(values > 0.5) over a boolean array: NaN frames count as misses.
  size_t above = 0;
  for (double v : values) above += v > 0.5;
  s.recall = static_cast<double>(above) / static_cast<double>(values.size());

  const std::vector<long long> ids = DecayBinEdges(values.size());
  auto bin_mean = [&](size_t i) {
    const long long begin = std::max<long long>(0, ids[i]);
    const long long end = std::max<long long>(begin, ids[i + 1] + 1);  // inclusive upper edge
    return NanMean(values, static_cast<size_t>(begin), static_cast<size_t>(end));
  };
  s.decay = bin_mean(0) - bin_mean(ids.size() - 2);
  return s;
}

std::string JfObjectResult::Name() const {
  return foreground ? sequence : sequence + "_" + std::to_string(object_id);
}

JfSequenceScorer::JfSequenceScorer(std::string sequence, const LabelMap& first_truth, const JfParams& params)
    : sequence_(std::move(sequence)), params_(params) {
  BoundaryRadius(first_truth.width(), first_truth.height(), params.bound_th);  // validates bound_th
  if (params_.foreground) {
    object_ids_.push_back(1);
  } else {
    // evaluation.py: objects 1..max id of the first annotation (void excluded), whether or
    // not every id in between is present.
    int max_id = 0;
    for (uint8_t v : first_truth.labels())
      if (v != LabelMap::kVoid) max_id = std::max(max_id, static_cast<int>(v));
    if (max_id == 0)
      throw Error("sequence " + sequence_ +
                  ": the first ground-truth frame has no object; use foreground mode (--foreground) "
                  "to score it as one object");
    for (int id = 1; id <= max_id; ++id) object_ids_.push_back(id);
  }
  for (int id : object_ids_) {
    JfObjectResult r;
    r.sequence = sequence_;
    r.object_id = id;
    r.foreground = params_.foreground;
    results_.push_back(std::move(r));
  }
}

void JfSequenceScorer::AddFrame(const std::string& frame_name, const LabelMap& truth, const LabelMap& prediction) {
  if (truth.width() != prediction.width() || truth.height() != prediction.height())
    throw Error("sequence " + sequence_ + ", frame " + frame_name + ": the prediction is " +
                SizeText(prediction.width(), prediction.height()) + " but the ground truth is " +
                SizeText(truth.width(), truth.height()));
  const Mask void_pixels = truth.VoidMask();
  if (params_.foreground) {
    Mask truth_fg = truth.ForegroundMask();
    Mask prediction_fg(prediction.width(), prediction.height());
    for (size_t i = 0; i < prediction.labels().size(); ++i) prediction_fg.data()[i] = prediction.labels()[i] != 0;
    const JfFrame scores = EvaluateFrame(prediction_fg, truth_fg, &void_pixels, params_.bound_th);
    results_[0].frames.push_back(frame_name);
    results_[0].j.push_back(scores.j);
    results_[0].f.push_back(scores.f);
    return;
  }
  const int max_id = object_ids_.empty() ? 0 : object_ids_.back();
  for (uint8_t v : prediction.labels())
    if (v > max_id)
      throw Error("sequence " + sequence_ + ", frame " + frame_name + ": the prediction has object id " +
                  std::to_string(v) + " but the first ground-truth frame has only ids 1.." + std::to_string(max_id) +
                  " (use foreground mode to score any label as one object)");
  for (size_t o = 0; o < object_ids_.size(); ++o) {
    const uint8_t id = static_cast<uint8_t>(object_ids_[o]);
    const JfFrame scores = EvaluateFrame(prediction.ObjectMask(id), truth.ObjectMask(id), &void_pixels, params_.bound_th);
    results_[o].frames.push_back(frame_name);
    results_[o].j.push_back(scores.j);
    results_[o].f.push_back(scores.f);
  }
}

std::vector<JfObjectResult> JfSequenceScorer::Results() const {
  std::vector<JfObjectResult> out = results_;
  for (auto& r : out) {
    r.j_stats = ComputeStatistics(r.j);
    r.f_stats = ComputeStatistics(r.f);
  }
  return out;
}

std::vector<JfObjectResult> EvaluateSequence(const std::string& sequence, const std::string& gt_dir,
                                             const std::string& pred_dir, const JfParams& params) {
  if (!fs::is_directory(gt_dir)) throw Error("ground-truth folder not found: " + gt_dir);
  if (!fs::is_directory(pred_dir)) throw Error("prediction folder not found: " + pred_dir);
  const std::vector<std::string> names = PngNames(gt_dir);
  if (names.empty()) throw Error("no PNG ground-truth masks in " + gt_dir);

  size_t begin = 0, end = names.size();
  if (!params.all_frames) {
    if (names.size() < 3)
      throw Error("sequence " + sequence + " has " + std::to_string(names.size()) +
                  " ground-truth frame(s): skipping the first and last leaves none to score (use --all-frames)");
    begin = 1;
    end = names.size() - 1;
  }
  std::vector<std::string> missing;
  for (size_t i = begin; i < end; ++i)
    if (!fs::is_regular_file(fs::path(pred_dir) / names[i])) missing.push_back(names[i]);
  if (!missing.empty()) {
    const size_t count = missing.size();
    if (count > 5) {
      missing.resize(5);
      missing.push_back("... (" + std::to_string(count) + " in all)");
    }
    throw Error("sequence " + sequence + ": predictions missing in " + pred_dir + " for frame(s) " + JoinNames(missing));
  }

  JfSequenceScorer scorer(sequence, ReadLabelPng((fs::path(gt_dir) / names.front()).string()), params);
  for (size_t i = begin; i < end; ++i)
    scorer.AddFrame(names[i], ReadLabelPng((fs::path(gt_dir) / names[i]).string()),
                    ReadLabelPng((fs::path(pred_dir) / names[i]).string()));
  return scorer.Results();
}

JfReport Summarise(std::vector<JfObjectResult> objects, const JfParams& params) {
  JfReport report;
  report.params = params;
  report.objects = std::move(objects);
  std::vector<double> jm, jr, jd, fm, fr, fd;
  for (const auto& o : report.objects) {
    jm.push_back(o.j_stats.mean);
    jr.push_back(o.j_stats.recall);
    jd.push_back(o.j_stats.decay);
    fm.push_back(o.f_stats.mean);
    fr.push_back(o.f_stats.recall);
    fd.push_back(o.f_stats.decay);
  }
  auto mean = [](const std::vector<double>& v) { return NanMean(v, 0, v.size()); };
  report.j_mean = mean(jm);
  report.j_recall = mean(jr);
  report.j_decay = mean(jd);
  report.f_mean = mean(fm);
  report.f_recall = mean(fr);
  report.f_decay = mean(fd);
  report.jf_mean = (report.j_mean + report.f_mean) / 2.0;
  return report;
}

JfReport EvaluateFolders(const std::string& gt_dir, const std::string& pred_dir, const JfParams& params) {
  if (!fs::is_directory(gt_dir)) throw Error("ground-truth folder not found: " + gt_dir);
  if (!fs::is_directory(pred_dir)) throw Error("prediction folder not found: " + pred_dir);

  if (!PngNames(gt_dir).empty()) {
    // A single sequence; the prediction may be its folder or the folder of sequences.
    const fs::path gt_path = fs::path(gt_dir).lexically_normal();
    std::string sequence = (gt_path.has_filename() ? gt_path : gt_path.parent_path()).filename().string();
    fs::path pred_path = pred_dir;
    if (PngNames(pred_path).empty() && fs::is_directory(pred_path / sequence)) pred_path /= sequence;
    return Summarise(EvaluateSequence(sequence, gt_dir, pred_path.string(), params), params);
  }

  const std::vector<std::string> sequences = SubfolderNames(gt_dir);
  if (sequences.empty()) throw Error("no PNG masks and no sequence folders in " + gt_dir);
  std::vector<std::string> missing;
  for (const auto& s : sequences)
    if (!fs::is_directory(fs::path(pred_dir) / s)) missing.push_back(s);
  if (!missing.empty())
    throw Error("predictions are missing for " + std::to_string(missing.size()) + " of " +
                std::to_string(sequences.size()) + " sequence(s) in " + pred_dir + ": " + JoinNames(missing));
  std::vector<JfObjectResult> objects;
  for (const auto& s : sequences) {
    auto seq = EvaluateSequence(s, (fs::path(gt_dir) / s).string(), (fs::path(pred_dir) / s).string(), params);
    objects.insert(objects.end(), std::make_move_iterator(seq.begin()), std::make_move_iterator(seq.end()));
  }
  return Summarise(std::move(objects), params);
}

namespace {
nlohmann::json Number(double v) { return std::isnan(v) ? nlohmann::json() : nlohmann::json(v); }
nlohmann::json Numbers(const std::vector<double>& values) {
  nlohmann::json out = nlohmann::json::array();
  for (double v : values) out.push_back(Number(v));
  return out;
}
}  // namespace

std::string JfReport::ToJson() const {
  // "sequences" is keyed like the official per-object table ("<seq>_<id>", or "<seq>" in
  // foreground mode); NaN (nothing scored) is written as null.
  nlohmann::json sequences = nlohmann::json::object();
  for (const auto& o : objects) {
    sequences[o.Name()] = {{"sequence", o.sequence},
                           {"object_id", o.object_id},
                           {"frames_scored", o.j.size()},
                           {"frames", o.frames},
                           {"JF_mean", Number(o.JfMean())},
                           {"J_mean", Number(o.j_stats.mean)},
                           {"J_recall", Number(o.j_stats.recall)},
                           {"J_decay", Number(o.j_stats.decay)},
                           {"F_mean", Number(o.f_stats.mean)},
                           {"F_recall", Number(o.f_stats.recall)},
                           {"F_decay", Number(o.f_stats.decay)},
                           {"J_per_frame", Numbers(o.j)},
                           {"F_per_frame", Numbers(o.f)}};
  }
  nlohmann::json root{{"params",
                       {{"bound_th", params.bound_th}, {"all_frames", params.all_frames}, {"foreground", params.foreground}}},
                      {"objects", objects.size()},
                      {"JF_mean", Number(jf_mean)},
                      {"J_mean", Number(j_mean)},
                      {"J_recall", Number(j_recall)},
                      {"J_decay", Number(j_decay)},
                      {"F_mean", Number(f_mean)},
                      {"F_recall", Number(f_recall)},
                      {"F_decay", Number(f_decay)},
                      {"sequences", sequences}};
  return root.dump(1);
}

std::string JfReport::ToTable() const {
  size_t name_width = 8;
  for (const auto& o : objects) name_width = std::max(name_width, o.Name().size() + 2);
  std::ostringstream out;
  out << std::fixed << std::setprecision(4);
  auto row = [&](const std::string& name, double jf, double jm, double jr, double jd, double fm, double fr, double fd) {
    out << std::left << std::setw(static_cast<int>(name_width)) << name << std::right;
    for (double v : {jf, jm, jr, jd, fm, fr, fd}) out << std::setw(9) << v;
  };
  out << std::left << std::setw(static_cast<int>(name_width)) << "sequence" << std::right;
  for (const char* h : {"J&F", "J-mean", "J-recall", "J-decay", "F-mean", "F-recall", "F-decay"}) out << std::setw(9) << h;
  out << std::setw(8) << "frames" << "\n";
  for (const auto& o : objects) {
    row(o.Name(), o.JfMean(), o.j_stats.mean, o.j_stats.recall, o.j_stats.decay, o.f_stats.mean, o.f_stats.recall,
        o.f_stats.decay);
    out << std::setw(8) << o.j.size() << "\n";
  }
  row("global", jf_mean, j_mean, j_recall, j_decay, f_mean, f_recall, f_decay);
  out << "\n";
  return out.str();
}

}  // namespace litseg
