#include "litseg/video/synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "litseg/core/error.h"
#include "litseg/core/mask_io.h"
#include "litseg/video/video_writer.h"

namespace litseg {
namespace {

constexpr double kPi = 3.14159265358979323846;

// SplitMix64: a portable, seedable generator (identical output everywhere).
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double Uniform(double lo = 0.0, double hi = 1.0) { return lo + (hi - lo) * ((Next() >> 11) * 0x1.0p-53); }
  int Int(int lo, int hi) { return lo + static_cast<int>(Next() % static_cast<uint64_t>(hi - lo + 1)); }

 private:
  uint64_t state_;
};

// Per-pixel noise that depends only on (x, y, t, seed).
inline uint32_t Hash(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return static_cast<uint32_t>(x);
}

// Folds a drifting colour value back into [0, 255] (a triangle wave), so drift keeps
// changing the appearance instead of saturating.
inline double Reflect(double value) {
  const double m = std::fmod(std::fabs(value), 510.0);
  return m > 255.0 ? 510.0 - m : m;
}

}  // namespace

struct SyntheticClip::Object {
  int id = 1;
  std::vector<cv::Point2d> outline;  // unit-scale outline in object coordinates
  double radius = 40;
  double cx = 0, cy = 0, ax = 0, ay = 0, wx = 0, wy = 0, px = 0, py = 0;  // Lissajous path
  double angle0 = 0, spin = 0;                                           // rotation (rad, rad/frame)
  double scale_amp = 0, scale_freq = 0, scale_phase = 0;
  cv::Vec3d color_a, color_b;
  double stripe_freq = 0.2, checker = 0.0;
  double drift = 0.0;        // colour drift per frame
  int split_frame = -1;      // fragments separate from this frame on
  double split_speed = 0.0;  // pixels per frame

  cv::Point2d Center(int t) const { return {cx + ax * std::sin(wx * t + px), cy + ay * std::sin(wy * t + py)}; }
  double Angle(int t) const { return angle0 + spin * t; }
  double Scale(int t) const { return radius * (1.0 + scale_amp * std::sin(scale_freq * t + scale_phase)); }
};

SyntheticClip::SyntheticClip(const SynthParams& p) : params_(p) {
  if (p.width < 16 || p.height < 16 || p.width > 8192 || p.height > 8192)
    throw Error("synthetic clip size must be between 16x16 and 8192x8192");
  if (p.frames < 1) throw Error("a synthetic clip needs at least one frame");
  if (p.objects < 0 || p.objects > 254) throw Error("a synthetic clip has 0..254 objects");
  Random rng(p.seed * 0x2545F4914F6CDD1Dull + 17);

  // Background: smooth colour field (sum of waves) with blurred grain, computed once.
  background_.create(p.height, p.width, CV_32FC3);
  const double f1 = rng.Uniform(0.004, 0.012), f2 = rng.Uniform(0.004, 0.012), ph = rng.Uniform(0, 2 * kPi);
  const cv::Vec3d base(rng.Uniform(60, 190), rng.Uniform(60, 190), rng.Uniform(60, 190));
  cv::Mat grain(p.height, p.width, CV_32FC1);
  for (int y = 0; y < p.height; ++y)
    for (int x = 0; x < p.width; ++x)
      grain.at<float>(y, x) = static_cast<float>(Hash(p.seed ^ (uint64_t(y) << 32 | uint32_t(x))) % 256) - 127.5f;
  cv::GaussianBlur(grain, grain, cv::Size(0, 0), 2.5);
  for (int y = 0; y < p.height; ++y) {
    for (int x = 0; x < p.width; ++x) {
      const double wave = 35.0 * std::sin(f1 * x + ph) * std::cos(f2 * y - ph) + 20.0 * std::sin(0.02 * (x + y));
      const double g = 1.6 * grain.at<float>(y, x);
      cv::Vec3f& px = background_.at<cv::Vec3f>(y, x);
      for (int c = 0; c < 3; ++c) px[c] = static_cast<float>(std::clamp(base[c] + wave * (c == 1 ? -0.6 : 1.0) + g, 0.0, 255.0));
    }
  }

  const double size = std::min(p.width, p.height);
  std::vector<int> depth(p.objects);
  for (int i = 0; i < p.objects; ++i) depth[i] = i;
  for (int i = p.objects - 1; i > 0; --i) std::swap(depth[i], depth[rng.Int(0, i)]);  // random depth order
  for (int i = 0; i < p.objects; ++i) {
    auto o = std::make_shared<Object>();
    o->id = i + 1;
    const int shape = i % 3;  // 0 ellipse, 1 polygon, 2 blob
    const int n = 96;
    if (shape == 0) {
      const double aspect = rng.Uniform(0.5, 1.0);
      for (int k = 0; k < n; ++k) o->outline.emplace_back(std::cos(2 * kPi * k / n), aspect * std::sin(2 * kPi * k / n));
    } else if (shape == 1) {
      const int corners = rng.Int(3, 7);
      const double phase = rng.Uniform(0, 2 * kPi);
      for (int k = 0; k < corners; ++k) {
        const double a = phase + 2 * kPi * k / corners, r = rng.Uniform(0.7, 1.0);
        o->outline.emplace_back(r * std::cos(a), r * std::sin(a));
      }
    } else {
      double amp[3], phs[3];
      for (int k = 0; k < 3; ++k) {
        amp[k] = rng.Uniform(0.05, 0.22);
        phs[k] = rng.Uniform(0, 2 * kPi);
      }
      for (int k = 0; k < n; ++k) {
        const double a = 2 * kPi * k / n;
        const double r = 1.0 + amp[0] * std::sin(2 * a + phs[0]) + amp[1] * std::sin(3 * a + phs[1]) +
                         amp[2] * std::sin(5 * a + phs[2]);
        o->outline.emplace_back(r * std::cos(a), r * std::sin(a));
      }
    }
    o->radius = size * rng.Uniform(0.09, 0.18);
    o->cx = rng.Uniform(0.3, 0.7) * p.width;
    o->cy = rng.Uniform(0.3, 0.7) * p.height;
    // Every third object (starting with the second) swings far enough to leave the frame.
    const bool wanders = (i % 3) == 1;
    o->ax = wanders ? 0.5 * p.width + 1.6 * o->radius : rng.Uniform(0.1, 0.3) * p.width;
    o->ay = rng.Uniform(0.05, 0.25) * p.height;
    o->wx = 2 * kPi / rng.Uniform(60, 140);
    o->wy = 2 * kPi / rng.Uniform(50, 130);
    o->px = rng.Uniform(0, 2 * kPi);
    o->py = rng.Uniform(0, 2 * kPi);
    o->angle0 = rng.Uniform(0, 2 * kPi);
    o->spin = rng.Uniform(-0.03, 0.03);
    o->scale_amp = rng.Uniform(0.1, 0.3);
    o->scale_freq = 2 * kPi / rng.Uniform(40, 120);
    o->scale_phase = rng.Uniform(0, 2 * kPi);
    o->color_a = cv::Vec3d(rng.Uniform(0, 255), rng.Uniform(0, 255), rng.Uniform(0, 255));
    o->color_b = cv::Vec3d(rng.Uniform(0, 255), rng.Uniform(0, 255), rng.Uniform(0, 255));
    o->stripe_freq = rng.Uniform(0.1, 0.35);
    o->checker = rng.Uniform(0.0, 1.0);
    o->drift = p.appearance_drift ? rng.Uniform(0.4, 1.0) : 0.0;
    if (p.split && i == 0) {
      o->split_frame = std::max(1, p.frames / 3);
      o->split_speed = std::max(0.5, size / 200.0);
    }
    objects_.push_back(o);
  }
  // Paint order = depth order (back to front).
  std::vector<std::shared_ptr<const Object>> ordered(p.objects);
  for (int i = 0; i < p.objects; ++i) ordered[i] = objects_[depth[i]];
  objects_ = ordered;
}

cv::Mat SyntheticClip::ObjectMask(const Object& o, int t) const {
  const int w = params_.width, h = params_.height;
  const cv::Point2d c = o.Center(t);
  const double angle = o.Angle(t), s = o.Scale(t);
  const double ca = std::cos(angle), sa = std::sin(angle);
  // Fragments: the outline cut by the object's local x = 0 line; the halves drift apart.
  std::vector<std::pair<std::vector<cv::Point2d>, double>> parts;  // (outline, offset along local x)
  if (o.split_frame >= 0 && t >= o.split_frame) {
    const double gap = (t - o.split_frame + 1) * o.split_speed / s;
    std::vector<cv::Point2d> left, right;
    for (const auto& q : o.outline) (q.x < 0 ? left : right).push_back(q);
    if (!left.empty()) parts.emplace_back(left, -gap);
    if (!right.empty()) parts.emplace_back(right, gap);
  } else {
    parts.emplace_back(o.outline, 0.0);
  }
  cv::Mat mask = cv::Mat::zeros(h, w, CV_8UC1);
  for (const auto& [outline, offset] : parts) {
    std::vector<cv::Point> pts;
    for (const auto& q : outline) {
      const double lx = (q.x + offset) * s, ly = q.y * s;
      pts.emplace_back(static_cast<int>(std::lround(c.x + ca * lx - sa * ly)),
                       static_cast<int>(std::lround(c.y + sa * lx + ca * ly)));
    }
    if (pts.size() >= 3) cv::fillPoly(mask, std::vector<std::vector<cv::Point>>{pts}, cv::Scalar(1), cv::LINE_8);
  }
  return mask;
}

cv::Mat SyntheticClip::AmodalMask(int t, int id) const {
  if (t < 0 || t >= params_.frames)
    throw Error("synthetic frame " + std::to_string(t) + " is out of range (" + std::to_string(params_.frames) + " frames)");
  for (const auto& object : objects_)
    if (object->id == id) return ObjectMask(*object, t);
  throw Error("synthetic clip has no object " + std::to_string(id));
}

std::vector<int> SyntheticClip::DepthOrder() const {
  std::vector<int> ids;
  for (const auto& object : objects_) ids.push_back(object->id);
  return ids;
}

SynthFrame SyntheticClip::Render(int t) const {
  if (t < 0 || t >= params_.frames)
    throw Error("synthetic frame " + std::to_string(t) + " is out of range (" + std::to_string(params_.frames) + " frames)");
  const int w = params_.width, h = params_.height;
  cv::Mat frame;
  // Slow global illumination change.
  const double light = 1.0 + 0.06 * std::sin(2 * kPi * t / 97.0);
  background_.convertTo(frame, CV_32FC3, light);
  SynthFrame out;
  out.labels = LabelMap(w, h);

  for (const auto& object : objects_) {
    const Object& o = *object;
    const cv::Point2d c = o.Center(t);
    const double angle = o.Angle(t);
    const double ca = std::cos(angle), sa = std::sin(angle);
    const cv::Mat mask = ObjectMask(o, t);
    const cv::Vec3d drift_shift = o.drift * t * cv::Vec3d(0.8, -0.5, 0.3);
    for (int y = 0; y < h; ++y) {
      const uint8_t* m = mask.ptr<uint8_t>(y);
      cv::Vec3f* px = frame.ptr<cv::Vec3f>(y);
      uint8_t* lab = out.labels.data() + static_cast<size_t>(y) * w;
      for (int x = 0; x < w; ++x) {
        if (!m[x]) continue;
        // Texture in object coordinates, so it moves and turns with the object.
        const double dx = x - c.x, dy = y - c.y;
        const double u = (ca * dx + sa * dy), v = (-sa * dx + ca * dy);
        const double stripes = 0.5 + 0.5 * std::sin(o.stripe_freq * u);
        const double check = ((static_cast<int>(std::floor(u / 9.0)) + static_cast<int>(std::floor(v / 9.0))) & 1) ? 1.0 : 0.0;
        const double mixv = (1.0 - o.checker) * stripes + o.checker * check;
        for (int ch = 0; ch < 3; ++ch) {
          const double value = o.color_a[ch] * mixv + o.color_b[ch] * (1.0 - mixv) + drift_shift[ch];
          px[x][ch] = static_cast<float>(Reflect(value));
        }
        lab[x] = static_cast<uint8_t>(o.id);
      }
    }
  }
  // Sensor noise, deterministic per (seed, frame, pixel).
  out.rgb.create(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y) {
    const cv::Vec3f* src = frame.ptr<cv::Vec3f>(y);
    cv::Vec3b* dst = out.rgb.ptr<cv::Vec3b>(y);
    for (int x = 0; x < w; ++x) {
      const uint32_t noise = Hash(params_.seed * 0x9E3779B97F4A7C15ull ^ (uint64_t(t) << 40) ^ (uint64_t(y) << 20) ^ uint64_t(x));
      for (int ch = 0; ch < 3; ++ch) {
        const int n = static_cast<int>((noise >> (8 * ch)) & 7) - 3;
        dst[x][ch] = cv::saturate_cast<uint8_t>(src[x][ch] + n);
      }
    }
  }
  return out;
}

SynthParams ParseSynthSpec(const std::string& spec) {
  SynthParams p;
  std::string body = spec;
  if (body.rfind("synth:", 0) == 0) body = body.substr(6);
  std::stringstream stream(body);
  std::string item;
  while (std::getline(stream, item, ',')) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    if (eq == std::string::npos) throw Error("synthetic spec item '" + item + "' needs key=value");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    try {
      if (key == "frames") p.frames = std::stoi(value);
      else if (key == "objects") p.objects = std::stoi(value);
      else if (key == "seed") p.seed = std::stoull(value);
      else if (key == "fps") p.fps = std::stod(value);
      else if (key == "drift") p.appearance_drift = value != "0";
      else if (key == "split") p.split = value != "0";
      else if (key == "size") {
        const auto x = value.find('x');
        if (x == std::string::npos) throw Error("size must be WxH");
        p.width = std::stoi(value.substr(0, x));
        p.height = std::stoi(value.substr(x + 1));
      } else {
        throw Error("unknown synthetic spec key '" + key + "'");
      }
    } catch (const std::logic_error&) {
      throw Error("synthetic spec: bad value for '" + key + "': " + value);
    }
  }
  return p;
}

namespace {

class SyntheticSource : public VideoSource {
 public:
  explicit SyntheticSource(const SynthParams& params) : clip_(params) {
    info_.path = "synth:frames=" + std::to_string(params.frames) + ",objects=" + std::to_string(params.objects) +
                 ",seed=" + std::to_string(params.seed) + ",size=" + std::to_string(params.width) + "x" +
                 std::to_string(params.height);
    info_.kind = "synthetic";
    info_.codec = "synthetic";
    info_.width = params.width;
    info_.height = params.height;
    info_.frame_count = params.frames;
    info_.fps = params.fps;
  }
  const VideoInfo& info() const override { return info_; }
  cv::Mat ReadFrame(int index) override { return clip_.Render(index).rgb; }
  double FrameTime(int index) const override { return index / info_.fps; }

 private:
  SyntheticClip clip_;
  VideoInfo info_;
};

}  // namespace

std::unique_ptr<VideoSource> MakeSyntheticSource(const SynthParams& params) {
  return std::make_unique<SyntheticSource>(params);
}

void WriteSyntheticClip(const SynthParams& params, const std::string& dir, const SynthWriteOptions& options) {
  namespace fs = std::filesystem;
  SyntheticClip clip(params);
  if (options.mp4 && (params.width % 2 || params.height % 2))
    throw Error("an H.264 MP4 (4:2:0) needs an even frame size, got " + std::to_string(params.width) + "x" +
                std::to_string(params.height));
  const fs::path images = fs::path(dir) / "JPEGImages", annotations = fs::path(dir) / "Annotations";
  fs::create_directories(images);
  fs::create_directories(annotations);
  std::unique_ptr<Mp4Writer> writer;
  if (options.mp4) writer = std::make_unique<Mp4Writer>((fs::path(dir) / "video.mp4").string(), params.width, params.height, params.fps);
  for (int t = 0; t < params.frames; ++t) {
    SynthFrame f = clip.Render(t);
    char name[32];
    std::snprintf(name, sizeof(name), "%05d", t);
    cv::Mat bgr;
    cv::cvtColor(f.rgb, bgr, cv::COLOR_RGB2BGR);
    if (!cv::imwrite((images / (std::string(name) + ".jpg")).string(), bgr, {cv::IMWRITE_JPEG_QUALITY, options.jpeg_quality}))
      throw Error("cannot write frames into " + images.string());
    WritePalettePng((annotations / (std::string(name) + ".png")).string(), f.labels);
    if (writer) writer->Write(f.rgb);
    if (options.progress) options.progress(t + 1, params.frames);
  }
  if (writer) writer->Finish();
}

}  // namespace litseg
