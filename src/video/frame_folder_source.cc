// VideoSource over a folder of numbered JPEG/PNG frames (DAVIS: 00000.jpg, SA-V: 00000.jpg;
// any common prefix such as frame_0001.png works too). Frames are ordered by their number,
// not by name, so 9.jpg comes before 10.jpg.
#include <algorithm>
#include <cctype>
#include <filesystem>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "litseg/core/error.h"
#include "video/sources.h"

namespace litseg::internal {
namespace {
namespace fs = std::filesystem;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

class FrameFolderSource : public VideoSource {
 public:
  FrameFolderSource(const std::string& dir, const VideoOpenOptions& options) {
    info_.path = dir;
    info_.kind = "frames";
    info_.fps = options.folder_fps;
    std::vector<std::pair<long long, fs::path>> numbered;
    std::string extension;
    std::string prefix;  // text before the number ("" for DAVIS/SA-V, e.g. "frame_" elsewhere)
    std::string first_name;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      const std::string ext = Lower(entry.path().extension().string());
      if (ext != ".jpg" && ext != ".jpeg" && ext != ".png") continue;
      const std::string name = entry.path().filename().string();
      const std::string stem = entry.path().stem().string();
      const size_t digits_at = stem.find_last_not_of("0123456789") + 1;  // npos + 1 == 0
      const std::string digits = stem.substr(digits_at);
      if (digits.empty() || digits.size() > 15)
        throw Error("frame folder " + dir + " has an image whose name does not end in a frame number: " + name);
      if (first_name.empty()) {
        first_name = name;
        prefix = stem.substr(0, digits_at);
        extension = ext;
      } else if (stem.compare(0, digits_at, prefix) != 0 || digits_at != prefix.size()) {
        throw Error("frame folder " + dir + " mixes differently named images (" + first_name + ", " + name +
                    "); expected numbered frames such as 00000.jpg");
      }
      numbered.emplace_back(std::stoll(digits), entry.path());
    }
    if (numbered.empty()) throw Error("frame folder " + dir + " contains no .jpg/.jpeg/.png frames");
    std::sort(numbered.begin(), numbered.end());
    for (size_t i = 1; i < numbered.size(); ++i) {
      if (numbered[i].first == numbered[i - 1].first)
        throw Error("frame folder " + dir + " has two files numbered " + std::to_string(numbered[i].first));
      if (!options.allow_gaps && numbered[i].first != numbered[i - 1].first + 1)
        throw Error("frame folder " + dir + " has a gap: after " + numbered[i - 1].second.filename().string() +
                    " comes " + numbered[i].second.filename().string());
    }
    for (auto& [number, path] : numbered) files_.push_back(path.string());
    info_.codec = extension == ".png" ? "png" : "jpeg";
    info_.frame_count = static_cast<int>(files_.size());
    const cv::Mat first = Load(0);
    info_.width = first.cols;
    info_.height = first.rows;
  }

  const VideoInfo& info() const override { return info_; }

  double FrameTime(int index) const override {
    CheckIndex(index);
    return info_.fps > 0 ? index / info_.fps : 0.0;
  }

  cv::Mat ReadFrame(int index) override {
    CheckIndex(index);
    cv::Mat rgb = Load(index);
    if (rgb.cols != info_.width || rgb.rows != info_.height)
      throw Error("frame " + files_[index] + " is " + std::to_string(rgb.cols) + "x" + std::to_string(rgb.rows) +
                  " but the first frame is " + std::to_string(info_.width) + "x" + std::to_string(info_.height));
    return rgb;
  }

 private:
  void CheckIndex(int index) const {
    if (index < 0 || index >= info_.frame_count)
      throw Error("frame " + std::to_string(index) + " is out of range (the folder has " +
                  std::to_string(info_.frame_count) + " frames)");
  }

  cv::Mat Load(int index) const {
    cv::Mat bgr = cv::imread(files_[index], cv::IMREAD_COLOR);
    if (bgr.empty()) throw Error("cannot decode frame image " + files_[index] + " (missing, truncated or corrupt)");
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    return rgb;
  }

  VideoInfo info_;
  std::vector<std::string> files_;
};

}  // namespace

std::unique_ptr<VideoSource> OpenFrameFolderSource(const std::string& dir, const VideoOpenOptions& options) {
  return std::make_unique<FrameFolderSource>(dir, options);
}

}  // namespace litseg::internal
