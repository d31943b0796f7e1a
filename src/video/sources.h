// Constructors of the concrete VideoSource kinds (internal; use OpenVideoSource).
#pragma once

#include <memory>
#include <string>

#include "litseg/video/video_source.h"

namespace litseg::internal {

std::unique_ptr<VideoSource> OpenFfmpegSource(const std::string& path);
std::unique_ptr<VideoSource> OpenFrameFolderSource(const std::string& dir, const VideoOpenOptions& options);

}  // namespace litseg::internal
