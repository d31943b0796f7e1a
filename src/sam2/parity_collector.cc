// ParityCollector and ParityReport: comparison rules and the JSON report.
#include <cmath>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "litseg/sam2/parity.h"

namespace litseg::sam2 {
namespace {

std::string ShapeText(const torch::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

}  // namespace

ParityTolerances ParityTolerances::Bf16() {
  ParityTolerances t;
  t.image_encoder = 0.1;
  t.predictor_logits = 0.5;
  t.ious = 0.02;
  t.object_scores = 0.1;
  t.video_logits_max = 1.0;
  t.video_logits_mean = 0.05;
  t.video_sign_flip_below = 1.0;
  t.obj_ptr = 0.1;
  t.bf16_memory = 0.25;
  return t;
}

void ParityCollector::Add(ParityRecord record) {
  if (progress_) progress_(record);
  records_.push_back(std::move(record));
}

void ParityCollector::CompareTensor(const std::string& case_name, const std::string& tensor, const torch::Tensor& ours,
                                    const torch::Tensor& ref, double tolerance) {
  ParityRecord r{case_name, tensor, 0.0, 0.0, tolerance, "pass", ""};
  if (!ours.defined()) {
    r.status = "fail";
    r.detail = "not produced";
    r.max_abs_diff = r.mean_abs_diff = std::numeric_limits<double>::infinity();
    Add(std::move(r));
    return;
  }
  torch::Tensor a = ours.detach().to(torch::kCPU, torch::kFloat64);
  torch::Tensor b = ref.detach().to(torch::kCPU, torch::kFloat64);
  if (a.numel() != b.numel()) {
    r.status = "fail";
    r.detail = "shape " + ShapeText(ours) + " vs golden " + ShapeText(ref);
    r.max_abs_diff = r.mean_abs_diff = std::numeric_limits<double>::infinity();
    Add(std::move(r));
    return;
  }
  a = a.reshape(b.sizes());
  torch::Tensor d = (a - b).abs();
  r.max_abs_diff = d.numel() ? d.max().item<double>() : 0.0;
  r.mean_abs_diff = d.numel() ? d.mean().item<double>() : 0.0;
  if (!std::isfinite(r.max_abs_diff) || r.max_abs_diff > tolerance) {
    r.status = "fail";
    r.detail = "max |diff| above tolerance";
  }
  Add(std::move(r));
}

void ParityCollector::CompareLogits(const std::string& case_name, const std::string& tensor, const torch::Tensor& ours,
                                    const torch::Tensor& ref, double max_tol, double mean_tol, double sign_below) {
  ParityRecord r{case_name, tensor, 0.0, 0.0, max_tol, "pass", ""};
  if (!ours.defined() || ours.numel() != ref.numel()) {
    r.status = "fail";
    r.detail = ours.defined() ? "shape " + ShapeText(ours) + " vs golden " + ShapeText(ref) : "not produced";
    r.max_abs_diff = r.mean_abs_diff = std::numeric_limits<double>::infinity();
    Add(std::move(r));
    return;
  }
  torch::Tensor a = ours.detach().to(torch::kCPU, torch::kFloat64).reshape(ref.sizes());
  torch::Tensor b = ref.detach().to(torch::kCPU, torch::kFloat64);
  torch::Tensor d = (a - b).abs();
  r.max_abs_diff = d.max().item<double>();
  r.mean_abs_diff = d.mean().item<double>();
  const int64_t flips = ((a > 0) != (b > 0)).logical_and(b.abs() >= sign_below).sum().item<int64_t>();
  std::ostringstream why;
  if (!std::isfinite(r.max_abs_diff) || r.max_abs_diff > max_tol) why << "max |diff| above " << max_tol << "; ";
  if (r.mean_abs_diff > mean_tol) why << "mean |diff| " << r.mean_abs_diff << " above " << mean_tol << "; ";
  if (flips > 0) why << flips << " sign flips where |ref| >= " << sign_below << "; ";
  if (!why.str().empty()) {
    r.status = "fail";
    r.detail = why.str();
  }
  Add(std::move(r));
}

void ParityCollector::Decision(const std::string& case_name, const std::string& what, bool identical,
                               const std::string& detail) {
  Add(ParityRecord{case_name, "decision:" + what, identical ? 0.0 : 1.0, identical ? 0.0 : 1.0, 0.0,
                   identical ? "pass" : "fail", detail});
}

void ParityCollector::Skip(const std::string& case_name, const std::string& tensor, const std::string& reason) {
  Add(ParityRecord{case_name, tensor, 0.0, 0.0, 0.0, "skipped", reason});
}

void ParityCollector::Fail(const std::string& case_name, const std::string& tensor, const std::string& reason) {
  const double inf = std::numeric_limits<double>::infinity();
  Add(ParityRecord{case_name, tensor, inf, inf, 0.0, "fail", reason});
}

namespace {
int CountStatus(const std::vector<ParityRecord>& records, const char* status) {
  int n = 0;
  for (const auto& r : records) n += r.status == status;
  return n;
}
}  // namespace

int ParityReport::passed() const { return CountStatus(records, "pass"); }
int ParityReport::failed() const { return CountStatus(records, "fail"); }
int ParityReport::skipped() const { return CountStatus(records, "skipped"); }

std::string ParityReport::ToJson() const {
  nlohmann::json cases = nlohmann::json::array();
  for (const auto& r : records) {
    nlohmann::json j{{"case", r.case_name}, {"tensor", r.tensor}, {"tolerance", r.tolerance}, {"status", r.status}};
    // JSON has no infinity: a missing tensor is reported as null.
    j["max_abs_diff"] = std::isfinite(r.max_abs_diff) ? nlohmann::json(r.max_abs_diff) : nlohmann::json();
    j["mean_abs_diff"] = std::isfinite(r.mean_abs_diff) ? nlohmann::json(r.mean_abs_diff) : nlohmann::json();
    if (!r.detail.empty()) j["detail"] = r.detail;
    cases.push_back(std::move(j));
  }
  nlohmann::json root{{"golden", golden_dir},
                      {"device", device},
                      {"cases", cases},
                      {"summary", {{"passed", passed()}, {"failed", failed()}, {"skipped", skipped()}}}};
  return root.dump(1);
}

}  // namespace litseg::sam2
