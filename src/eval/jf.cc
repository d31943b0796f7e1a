#include "litseg/eval/jf.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "litseg/core/error.h"
#include "litseg/core/mask_io.h"
#include "litseg/core/mask_ops.h"

namespace litseg {
namespace fs = std::filesystem;
namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

void RequireSameSize(const Mask& a, const Mask& b, const char* what) {
  if (a.width() != b.width() || a.height() != b.height())
    throw Error(std::string(what) + ": prediction is " + std::to_string(a.width()) + "x" + std::to_string(a.height()) +
                " but the ground truth is " + std::to_string(b.width()) + "x" + std::to_string(b.height()));
}

// skimage.morphology.disk(radius): (x^2 + y^2) <= radius^2 on a (2r+1)^2 grid.
cv::Mat Disk(int radius) {
  cv::Mat kernel(2 * radius + 1, 2 * radius + 1, CV_8UC1);
  for (int y = -radius; y <= radius; ++y)
    for (int x = -radius; x <= radius; ++x)
      kernel.at<uint8_t>(y + radius, x + radius) = (x * x + y * y <= radius * radius) ? 1 : 0;
  return kernel;
}

Mask Outside(const Mask& mask, const Mask* void_pixels) {
  if (!void_pixels) return mask;
  Mask out = mask;
  for (size_t i = 0; i < out.pixel_count(); ++i)
    if (void_pixels->data()[i]) out.data()[i] = 0;
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

std::vector<std::string> PngNames(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file() && entry.path().extension() == ".png") names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

double RegionJ(const Mask& prediction, const Mask& truth, const Mask* void_pixels) {
  RequireSameSize(prediction, truth, "J");
  uint64_t inter = 0, uni = 0;
  for (size_t i = 0; i < truth.pixel_count(); ++i) {
    if (void_pixels && void_pixels->data()[i]) continue;
    const bool p = prediction.data()[i] != 0, g = truth.data()[i] != 0;
    inter += p && g;
    uni += p || g;
  }
  return uni == 0 ? 1.0 : static_cast<double>(inter) / static_cast<double>(uni);
}

Mask BoundaryMap(const Mask& seg) {
  // b = seg ^ east | seg ^ south | seg ^ south-east, with the last row / column compared
  // only along the image edge and the corner cleared (davis2017 _seg2bmap).
  const int h = seg.height(), w = seg.width();
  Mask b(w, h);
  auto at = [&](int x, int y) -> uint8_t { return (x < w && y < h) ? (seg(x, y) ? 1 : 0) : 0; };
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const uint8_t s = at(x, y);
      const uint8_t e = x + 1 < w ? at(x + 1, y) : 0;
      const uint8_t so = y + 1 < h ? at(x, y + 1) : 0;
      const uint8_t se = (x + 1 < w && y + 1 < h) ? at(x + 1, y + 1) : 0;
      uint8_t v;
      if (y == h - 1 && x == w - 1)
        v = 0;
      else if (x == w - 1)
        v = s ^ so;  // last column: seg ^ south
      else if (y == h - 1)
        v = s ^ e;   // last row: seg ^ east
      else
        v = (s ^ e) | (s ^ so) | (s ^ se);
      b(x, y) = v;
    }
  }
  return b;
}

double BoundaryF(const Mask& prediction, const Mask& truth, const Mask* void_pixels, double bound_th) {
  RequireSameSize(prediction, truth, "F");
  const double diagonal = std::hypot(static_cast<double>(truth.height()), static_cast<double>(truth.width()));
  const int bound_pix = static_cast<int>(bound_th >= 1.0 ? bound_th : std::ceil(bound_th * diagonal));
  const Mask fg_boundary = BoundaryMap(Outside(prediction, void_pixels));
  const Mask gt_boundary = BoundaryMap(Outside(truth, void_pixels));
  const cv::Mat kernel = Disk(bound_pix);
  cv::Mat fg_dil, gt_dil;
  cv::dilate(AsMat(fg_boundary), fg_dil, kernel);
  cv::dilate(AsMat(gt_boundary), gt_dil, kernel);
  uint64_t n_fg = 0, n_gt = 0, fg_match = 0, gt_match = 0;
  for (int y = 0; y < truth.height(); ++y) {
    const uint8_t* fd = fg_dil.ptr<uint8_t>(y);
    const uint8_t* gd = gt_dil.ptr<uint8_t>(y);
    for (int x = 0; x < truth.width(); ++x) {
      const bool fb = fg_boundary(x, y), gb = gt_boundary(x, y);
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

JfStatistics ComputeStatistics(const std::vector<double>& values) {
  JfStatistics s;
  s.mean = NanMean(values, 0, values.size());
  // Official: nanmean(values > 0.5): comparisons with NaN are false and count as frames.
  if (values.empty()) {
    s.recall = kNaN;
  } else {
    size_t above = 0;
    for (double v : values) above += v > 0.5;
    s.recall = static_cast<double>(above) / static_cast<double>(values.size());
  }
  // ids = round(linspace(1, n, 5) + 1e-10) - 1; bins [ids[i], ids[i+1]] inclusive.
  // 64-bit indices: the official uint8 cast wraps beyond 255 frames.
  const int bins = 4;
  const double n = static_cast<double>(values.size());
  int64_t ids[bins + 1];
  for (int i = 0; i <= bins; ++i) {
    const double v = (i == bins) ? n : 1.0 + i * ((n - 1.0) / bins);
    ids[i] = static_cast<int64_t>(std::nearbyint(v + 1e-10)) - 1;
  }
  auto bin_mean = [&](int i) {
    const int64_t begin = std::max<int64_t>(0, ids[i]);
    const int64_t end = std::max<int64_t>(begin, ids[i + 1] + 1);
    return NanMean(values, static_cast<size_t>(begin), static_cast<size_t>(end));
  };
  s.decay = values.empty() ? kNaN : bin_mean(0) - bin_mean(bins - 1);
  return s;
}

std::string JfObjectResult::Name() const { return sequence + "_" + std::to_string(object_id); }

std::vector<JfObjectResult> EvaluateSequence(const std::string& sequence, const std::string& gt_dir,
                                             const std::string& pred_dir, const JfParams& params) {
  const std::vector<std::string> names = PngNames(gt_dir);
  if (names.empty()) throw Error("no PNG ground-truth masks in " + gt_dir);
  for (const auto& name : names)
    if (!fs::exists(fs::path(pred_dir) / name))
      throw Error("sequence " + sequence + ": prediction " + (fs::path(pred_dir) / name).string() + " is missing");

  // Objects: the ids of the first ground-truth frame (the official code uses 1..max id of
  // frame 0), or one foreground object.
  const LabelMap first = ReadLabelPng((fs::path(gt_dir) / names.front()).string());
  std::vector<int> ids;
  if (params.foreground) {
    ids.push_back(1);
  } else {
    int max_id = 0;
    for (uint8_t v : first.labels())
      if (v != LabelMap::kVoid) max_id = std::max(max_id, static_cast<int>(v));
    for (int id = 1; id <= max_id; ++id) ids.push_back(id);
  }

  size_t begin = 0, end = names.size();
  if (!params.all_frames) {
    if (names.size() < 3) throw Error("sequence " + sequence + " has fewer than 3 frames: use --all-frames");
    begin = 1;
    end = names.size() - 1;
  }

  std::vector<JfObjectResult> results(ids.size());
  for (size_t o = 0; o < ids.size(); ++o) {
    results[o].sequence = sequence;
    results[o].object_id = ids[o];
  }
  for (size_t i = begin; i < end; ++i) {
    const LabelMap gt = ReadLabelPng((fs::path(gt_dir) / names[i]).string());
    const LabelMap pred = ReadLabelPng((fs::path(pred_dir) / names[i]).string());
    if (gt.width() != pred.width() || gt.height() != pred.height())
      throw Error("sequence " + sequence + ", frame " + names[i] + ": prediction size differs from ground truth");
    const Mask void_pixels = gt.VoidMask();
    for (size_t o = 0; o < ids.size(); ++o) {
      Mask truth = params.foreground ? gt.ForegroundMask() : gt.ObjectMask(static_cast<uint8_t>(ids[o]));
      Mask prediction = params.foreground ? pred.ForegroundMask() : pred.ObjectMask(static_cast<uint8_t>(ids[o]));
      results[o].frames.push_back(names[i]);
      results[o].j.push_back(RegionJ(prediction, truth, &void_pixels));
      results[o].f.push_back(BoundaryF(prediction, truth, &void_pixels, params.bound_th));
    }
  }
  for (auto& r : results) {
    r.j_stats = ComputeStatistics(r.j);
    r.f_stats = ComputeStatistics(r.f);
  }
  return results;
}

JfReport Summarise(std::vector<JfObjectResult> objects) {
  JfReport report;
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
  std::vector<JfObjectResult> objects;
  if (!PngNames(gt_dir).empty()) {
    objects = EvaluateSequence(fs::path(gt_dir).filename().string(), gt_dir, pred_dir, params);
    return Summarise(std::move(objects));
  }
  std::vector<std::string> sequences, missing;
  for (const auto& entry : fs::directory_iterator(gt_dir))
    if (entry.is_directory()) sequences.push_back(entry.path().filename().string());
  std::sort(sequences.begin(), sequences.end());
  if (sequences.empty()) throw Error("no PNG masks and no sequence folders in " + gt_dir);
  for (const auto& s : sequences)
    if (!fs::is_directory(fs::path(pred_dir) / s)) missing.push_back(s);
  if (!missing.empty()) {
    std::string list;
    for (const auto& s : missing) list += (list.empty() ? "" : ", ") + s;
    throw Error("predictions are missing for " + std::to_string(missing.size()) + " sequence(s): " + list);
  }
  for (const auto& s : sequences) {
    auto seq = EvaluateSequence(s, (fs::path(gt_dir) / s).string(), (fs::path(pred_dir) / s).string(), params);
    objects.insert(objects.end(), seq.begin(), seq.end());
  }
  return Summarise(std::move(objects));
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
  nlohmann::json objs = nlohmann::json::array();
  for (const auto& o : objects) {
    objs.push_back({{"name", o.Name()},
                    {"sequence", o.sequence},
                    {"object_id", o.object_id},
                    {"frames", o.frames},
                    {"J_mean", Number(o.j_stats.mean)},
                    {"J_recall", Number(o.j_stats.recall)},
                    {"J_decay", Number(o.j_stats.decay)},
                    {"F_mean", Number(o.f_stats.mean)},
                    {"F_recall", Number(o.f_stats.recall)},
                    {"F_decay", Number(o.f_stats.decay)},
                    {"JF_mean", Number((o.j_stats.mean + o.f_stats.mean) / 2.0)},
                    {"J_per_frame", Numbers(o.j)},
                    {"F_per_frame", Numbers(o.f)}});
  }
  nlohmann::json root{{"JF_mean", Number(jf_mean)},   {"J_mean", Number(j_mean)},   {"J_recall", Number(j_recall)},
                      {"J_decay", Number(j_decay)},   {"F_mean", Number(f_mean)},   {"F_recall", Number(f_recall)},
                      {"F_decay", Number(f_decay)},   {"objects", objs}};
  return root.dump(1);
}

std::string JfReport::ToTable() const {
  std::ostringstream out;
  out << std::fixed << std::setprecision(4);
  out << std::left << std::setw(28) << "sequence" << std::right << std::setw(8) << "J&F" << std::setw(8) << "J"
      << std::setw(8) << "F" << std::setw(8) << "J-rec" << std::setw(8) << "F-rec" << std::setw(8) << "J-dec"
      << std::setw(8) << "F-dec" << std::setw(8) << "frames" << "\n";
  for (const auto& o : objects) {
    out << std::left << std::setw(28) << o.Name() << std::right << std::setw(8)
        << (o.j_stats.mean + o.f_stats.mean) / 2.0 << std::setw(8) << o.j_stats.mean << std::setw(8)
        << o.f_stats.mean << std::setw(8) << o.j_stats.recall << std::setw(8) << o.f_stats.recall << std::setw(8)
        << o.j_stats.decay << std::setw(8) << o.f_stats.decay << std::setw(8) << o.j.size() << "\n";
  }
  out << std::left << std::setw(28) << "overall" << std::right << std::setw(8) << jf_mean << std::setw(8) << j_mean
      << std::setw(8) << f_mean << std::setw(8) << j_recall << std::setw(8) << f_recall << std::setw(8) << j_decay
      << std::setw(8) << f_decay << "\n";
  return out.str();
}

}  // namespace litseg
