#include "litseg/video/video_source.h"

#include <filesystem>

#include "litseg/core/error.h"
#include "litseg/video/synthetic.h"
#include "video/sources.h"

namespace litseg {

std::unique_ptr<VideoSource> OpenVideoSource(const std::string& path, const VideoOpenOptions& options) {
  if (path.rfind("synth:", 0) == 0) return MakeSyntheticSource(ParseSynthSpec(path));
  if (path.empty()) throw Error("no video path given");
  if (!std::filesystem::exists(path)) throw Error("no such file or folder: " + path);
  if (std::filesystem::is_directory(path)) return internal::OpenFrameFolderSource(path, options);
  return internal::OpenFfmpegSource(path);
}

}  // namespace litseg
