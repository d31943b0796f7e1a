// Frame-accurate video decoding with FFmpeg.
//
// Opening a file demuxes it once to build the presentation-timestamp table: frame k is the
// k-th smallest pts of the video stream's packets, which also handles variable frame rates.
// ReadFrame(k) continues decoding when k lies shortly ahead of the decoder, and otherwise
// seeks to the latest keyframe whose pts is <= pts(k) and decodes forward to exactly pts(k);
// if a seek lands after the target (open GOPs, demuxers that index by dts), it retries from
// the keyframe before. So frame k is always the pixels of frame k of a sequential decode.
#include "video/sources.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <vector>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
}

#include <opencv2/core.hpp>

#include "litseg/core/error.h"

namespace litseg::internal {
namespace {

std::string AvError(int code) {
  char buffer[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, buffer, sizeof(buffer));
  return buffer;
}

struct FormatDeleter {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsDeleter {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};

class FfmpegSource : public VideoSource {
 public:
  explicit FfmpegSource(const std::string& path) {
    info_.path = path;
    info_.kind = "ffmpeg";
    if (!std::filesystem::exists(path)) throw Error("video file not found: " + path);
    if (std::filesystem::is_directory(path)) throw Error(path + " is a folder, not a video file");
    OpenContainer();
    BuildFrameTable();
    OpenDecoder();
  }

  const VideoInfo& info() const override { return info_; }

  double FrameTime(int index) const override {
    CheckIndex(index);
    return (pts_[index] - pts_[0]) * av_q2d(time_base_);
  }

  cv::Mat ReadFrame(int index) override {
    CheckIndex(index);
    const int64_t target = pts_[index];
    // Continue forward when the target is close ahead (no seek needed).
    // (close ahead, or no keyframe in between, where a seek could not start any later).
    const bool continue_forward =
        decoded_index_ >= 0 && index > decoded_index_ &&
        (index - decoded_index_ <= 16 || KeyframeBefore(target) <= pts_[decoded_index_]);
    if (!continue_forward) {
      if (index == decoded_index_ && !last_rgb_.empty()) return last_rgb_.clone();
      SeekBefore(target, 0);
    }
    for (int attempt = 0;; ++attempt) {
      const DecodeResult result = DecodeUntil(target);
      if (result == DecodeResult::kFound) break;
      if (result == DecodeResult::kOvershot && attempt < 8) {
        SeekBefore(target, attempt + 1);  // the keyframe before the previous choice
        continue;
      }
      decoded_index_ = -1;
      throw Error("cannot decode frame " + std::to_string(index) + " of " + info_.path +
                  (info_.truncated ? ": " + info_.warning : ": the file is damaged here"));
    }
    decoded_index_ = index;
    return last_rgb_.clone();
  }

 private:
  enum class DecodeResult { kFound, kOvershot, kEnd };

  void CheckIndex(int index) const {
    if (index < 0 || index >= info_.frame_count)
      throw Error("frame " + std::to_string(index) + " is out of range (the video has " +
                  std::to_string(info_.frame_count) + " frames)");
  }

  void OpenContainer() {
    AVFormatContext* raw = nullptr;
    int rc = avformat_open_input(&raw, info_.path.c_str(), nullptr, nullptr);
    if (rc < 0) throw Error("cannot open " + info_.path + " as a video: " + AvError(rc));
    format_.reset(raw);
    rc = avformat_find_stream_info(format_.get(), nullptr);
    if (rc < 0) throw Error("cannot read stream information of " + info_.path + ": " + AvError(rc));
    stream_index_ = av_find_best_stream(format_.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    if (stream_index_ < 0) throw Error(info_.path + " has no video stream");
    stream_ = format_->streams[stream_index_];
    time_base_ = stream_->time_base;
    const AVCodecDescriptor* descriptor = avcodec_descriptor_get(stream_->codecpar->codec_id);
    info_.codec = descriptor ? descriptor->name : "unknown";
    // Rotation: the display matrix gives the counter-clockwise angle to apply.
    if (const uint8_t* matrix = av_stream_get_side_data(stream_, AV_PKT_DATA_DISPLAYMATRIX, nullptr)) {
      const double ccw = av_display_rotation_get(reinterpret_cast<const int32_t*>(matrix));
      if (!std::isnan(ccw)) {
        int cw = static_cast<int>(std::lround(-ccw)) % 360;
        if (cw < 0) cw += 360;
        info_.rotation_degrees = (cw + 45) / 90 * 90 % 360;
      }
    }
  }

  void BuildFrameTable() {
    std::unique_ptr<AVPacket, PacketDeleter> packet(av_packet_alloc());
    int64_t fallback_pts = 0;
    for (;;) {
      const int rc = av_read_frame(format_.get(), packet.get());
      if (rc == AVERROR_EOF) break;
      if (rc < 0) {
        info_.truncated = true;
        info_.warning = "reading stops after " + std::to_string(pts_.size()) + " frames: " + AvError(rc);
        break;
      }
      if (packet->stream_index == stream_index_) {
        if (packet->flags & AV_PKT_FLAG_CORRUPT) {
          info_.truncated = true;
          info_.warning = "the data of frame " + std::to_string(pts_.size()) + " is damaged or cut off";
          av_packet_unref(packet.get());
          break;
        }
        int64_t pts = packet->pts != AV_NOPTS_VALUE ? packet->pts : packet->dts;
        if (pts == AV_NOPTS_VALUE) pts = fallback_pts;
        fallback_pts = pts + std::max<int64_t>(1, packet->duration);
        pts_.push_back(pts);
        if (packet->flags & AV_PKT_FLAG_KEY) keyframe_pts_.push_back(pts);
      }
      av_packet_unref(packet.get());
    }
    if (pts_.empty()) throw Error(info_.path + " contains no video frames");
    std::sort(pts_.begin(), pts_.end());
    pts_.erase(std::unique(pts_.begin(), pts_.end()), pts_.end());
    std::sort(keyframe_pts_.begin(), keyframe_pts_.end());
    if (keyframe_pts_.empty()) keyframe_pts_.push_back(pts_.front());
    info_.frame_count = static_cast<int>(pts_.size());
    const AVRational rate = stream_->avg_frame_rate.num ? stream_->avg_frame_rate : stream_->r_frame_rate;
    info_.fps = rate.num ? av_q2d(rate) : 0.0;
    if (info_.fps <= 0.0 && pts_.size() > 1)
      info_.fps = (pts_.size() - 1) / ((pts_.back() - pts_.front()) * av_q2d(time_base_));
  }

  void OpenDecoder() {
    const AVCodec* codec = avcodec_find_decoder(stream_->codecpar->codec_id);
    if (!codec) throw Error("unsupported codec '" + info_.codec + "' in " + info_.path + ": no decoder available");
    codec_.reset(avcodec_alloc_context3(codec));
    avcodec_parameters_to_context(codec_.get(), stream_->codecpar);
    codec_->thread_count = 4;  // frame threading does not change the decoded pixels
    const int rc = avcodec_open2(codec_.get(), codec, nullptr);
    if (rc < 0) throw Error("cannot open the " + info_.codec + " decoder for " + info_.path + ": " + AvError(rc));
    frame_.reset(av_frame_alloc());
    packet_.reset(av_packet_alloc());
    const int w = codec_->width, h = codec_->height;
    if (w <= 0 || h <= 0) throw Error(info_.path + ": the video stream has no frame size");
    const bool swap = info_.rotation_degrees == 90 || info_.rotation_degrees == 270;
    info_.width = swap ? h : w;
    info_.height = swap ? w : h;
    // Seek back to the start for the first read.
    SeekBefore(pts_.front(), 0);
  }

  int64_t KeyframeBefore(int64_t target) const {
    auto it = std::upper_bound(keyframe_pts_.begin(), keyframe_pts_.end(), target);
    return it == keyframe_pts_.begin() ? keyframe_pts_.front() : *(it - 1);
  }

  void SeekBefore(int64_t target, int keyframes_back) {
    auto it = std::upper_bound(keyframe_pts_.begin(), keyframe_pts_.end(), target);
    int64_t position = it - keyframe_pts_.begin() - 1 - keyframes_back;
    const int64_t seek_pts = position < 0 ? std::numeric_limits<int64_t>::min() : keyframe_pts_[position];
    int rc = position < 0 ? av_seek_frame(format_.get(), stream_index_, pts_.front(), AVSEEK_FLAG_BACKWARD)
                          : av_seek_frame(format_.get(), stream_index_, seek_pts, AVSEEK_FLAG_BACKWARD);
    if (rc < 0) rc = avformat_seek_file(format_.get(), stream_index_, INT64_MIN, seek_pts, seek_pts, 0);
    if (rc < 0) throw Error("cannot seek in " + info_.path + ": " + AvError(rc));
    avcodec_flush_buffers(codec_.get());
    draining_ = false;
    decoded_index_ = -1;
    last_rgb_.release();
  }

  // Receives frames until one has pts == target (converted into last_rgb_).
  DecodeResult DecodeUntil(int64_t target) {
    for (;;) {
      const int rc = avcodec_receive_frame(codec_.get(), frame_.get());
      if (rc == 0) {
        int64_t pts = frame_->best_effort_timestamp;
        if (pts == AV_NOPTS_VALUE) pts = frame_->pts;
        if (pts == target) {
          last_rgb_ = ToRgb(frame_.get());
          av_frame_unref(frame_.get());
          return DecodeResult::kFound;
        }
        av_frame_unref(frame_.get());
        if (pts > target) return DecodeResult::kOvershot;
        continue;
      }
      if (rc == AVERROR_EOF) return DecodeResult::kEnd;
      if (rc != AVERROR(EAGAIN)) return DecodeResult::kEnd;
      if (draining_) return DecodeResult::kEnd;
      // Feed the next packet of our stream.
      for (;;) {
        const int read = av_read_frame(format_.get(), packet_.get());
        if (read < 0) {
          avcodec_send_packet(codec_.get(), nullptr);  // drain the decoder
          draining_ = true;
          break;
        }
        if (packet_->stream_index != stream_index_) {
          av_packet_unref(packet_.get());
          continue;
        }
        const int sent = avcodec_send_packet(codec_.get(), packet_.get());
        av_packet_unref(packet_.get());
        if (sent < 0 && sent != AVERROR(EAGAIN) && sent != AVERROR_INVALIDDATA) return DecodeResult::kEnd;
        break;
      }
    }
  }

  cv::Mat ToRgb(const AVFrame* frame) {
    const int w = frame->width, h = frame->height;
    sws_.reset(sws_getCachedContext(sws_.release(), w, h, static_cast<AVPixelFormat>(frame->format), w, h,
                                    AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr,
                                    nullptr, nullptr));
    if (!sws_) throw Error("cannot convert pixel format of " + info_.path);
    cv::Mat rgb(h, w, CV_8UC3);
    uint8_t* dst[4] = {rgb.data, nullptr, nullptr, nullptr};
    int dst_stride[4] = {static_cast<int>(rgb.step[0]), 0, 0, 0};
    sws_scale(sws_.get(), frame->data, frame->linesize, 0, h, dst, dst_stride);
    switch (info_.rotation_degrees) {
      case 90: cv::rotate(rgb, rgb, cv::ROTATE_90_CLOCKWISE); break;
      case 180: cv::rotate(rgb, rgb, cv::ROTATE_180); break;
      case 270: cv::rotate(rgb, rgb, cv::ROTATE_90_COUNTERCLOCKWISE); break;
      default: break;
    }
    return rgb;
  }

  VideoInfo info_;
  std::unique_ptr<AVFormatContext, FormatDeleter> format_;
  std::unique_ptr<AVCodecContext, CodecDeleter> codec_;
  std::unique_ptr<AVFrame, FrameDeleter> frame_;
  std::unique_ptr<AVPacket, PacketDeleter> packet_;
  std::unique_ptr<SwsContext, SwsDeleter> sws_;
  AVStream* stream_ = nullptr;
  int stream_index_ = -1;
  AVRational time_base_{1, 1};
  std::vector<int64_t> pts_;           // sorted presentation timestamps: frame index -> pts
  std::vector<int64_t> keyframe_pts_;  // sorted pts of keyframes
  int decoded_index_ = -1;             // index of last_rgb_, -1 after a seek
  bool draining_ = false;
  cv::Mat last_rgb_;
};

}  // namespace

std::unique_ptr<VideoSource> OpenFfmpegSource(const std::string& path) {
  av_log_set_level(AV_LOG_FATAL);  // problems surface as litseg::Error messages
  return std::make_unique<FfmpegSource>(path);
}

}  // namespace litseg::internal
