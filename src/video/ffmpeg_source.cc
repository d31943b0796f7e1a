// Frame-accurate video decoding with FFmpeg.
//
// Frame table. Opening a file demuxes it once. Normally frame k is the k-th smallest
// presentation timestamp (pts) among the video stream's packets, which also handles
// variable frame rates. Some files carry no usable pts (raw .h264/.hevc streams, AVI or
// MPEG-PS with B-frames: packets without pts, or pts that repeat) while the codec may
// reorder frames; for those the source decodes the stream once at open ("tagged" mode):
// every packet is stamped with its decode-order number, the decoder hands the stamp back
// on the frame made from that packet, and the output order gives each frame its index.
// Frames are then matched by stamp instead of pts, so everything below works the same.
//
// Random access. ReadFrame(k) continues decoding when k lies ahead of the decoder with no
// keyframe in between (or only a few frames ahead); otherwise it seeks to the latest
// keyframe at or before frame k (keyframe = packet flagged as such by the demuxer and, in
// tagged mode, one that closes its group of pictures) and decodes forward to exactly frame
// k. Demuxers differ in how they seek (by pts, by dts as MPEG-TS does, by byte position),
// so every seek is checked on the first packet read and retried another way when it landed
// after the keyframe; if a target still does not come out, the seek goes one keyframe
// further back. So frame k is always the pixels of frame k of a sequential decode.
//
// While decoding forward to a target, packets of frames before the target are decoded
// with skip_frame = AVDISCARD_NONREF: frames no other frame refers to cannot change any
// later picture, so skipping them changes no output pixels but saves a third of the work
// on typical H.264 (most B-frames are not references). Should the target not come out
// that way, the source turns skipping off for good and decodes again.
//
// Truncated files. The demux pass stops at the first packet that is cut off or damaged.
// Frames are kept only up to the last one that is certainly complete and in place (no
// missing frame can come before it), so every index below frame_count decodes and is the
// same picture as in the intact file; info().truncated and info().warning tell the
// caller. ReadFrame past frame_count is an out-of-range Error. (Damage in the middle of a
// file that the demuxer does not notice surfaces as an Error from ReadFrame naming the frame.)
#include "video/sources.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <unordered_map>
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

// The display matrix of a stream, wherever this FFmpeg version keeps it.
const int32_t* DisplayMatrix(const AVStream* stream) {
#if LIBAVCODEC_VERSION_INT >= AV_VERSION_INT(60, 30, 100)  // FFmpeg 6.1: side data moved to codecpar
  const AVPacketSideData* side = av_packet_side_data_get(stream->codecpar->coded_side_data,
                                                         stream->codecpar->nb_coded_side_data,
                                                         AV_PKT_DATA_DISPLAYMATRIX);
  return side && side->size >= 9 * 4 ? reinterpret_cast<const int32_t*>(side->data) : nullptr;
#else
  size_t size = 0;
  const uint8_t* data = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, &size);
  return data && size >= 9 * 4 ? reinterpret_cast<const int32_t*>(data) : nullptr;
#endif
}

constexpr int64_t kUnknown = std::numeric_limits<int64_t>::min();

class FfmpegSource : public VideoSource {
 public:
  explicit FfmpegSource(const std::string& path) {
    info_.path = path;
    info_.kind = "ffmpeg";
    if (!std::filesystem::exists(path)) throw Error("video file not found: " + path);
    if (std::filesystem::is_directory(path)) throw Error(path + " is a folder, not a video file");
    OpenContainer();
    DemuxPass();
    OpenDecoder();
    if (tagged_) DecodePass();
    FinishTables();
    SeekBefore(keys_.front(), 0);  // stand before frame 0 for the first read
    stats_ = {};                   // opening is not reading
    at_start_ = true;
  }

  const VideoInfo& info() const override { return info_; }
  DecodeStats decode_stats() const override { return stats_; }

  double FrameTime(int index) const override {
    CheckIndex(index);
    if (tagged_) return info_.fps > 0 ? index / info_.fps : 0.0;
    return (keys_[index] - keys_[0]) * av_q2d(time_base_);
  }

  cv::Mat ReadFrame(int index) override {
    CheckIndex(index);
    if (index == decoded_index_ && !last_rgb_.empty()) return last_rgb_.clone();
    const int64_t target = keys_[index];
    // Continue forward when that cannot be slower than a seek: no keyframe between the
    // decoder's position and the target (a seek would restart at or before the current
    // position), or the target only a few frames ahead. Right after opening, the decoder
    // stands before frame 0.
    const bool positioned = decoded_index_ >= 0 || at_start_;
    const int64_t position = decoded_index_ >= 0 ? keys_[decoded_index_] : keys_.front();
    const bool continue_forward = positioned && index > decoded_index_ &&
                                  (index - decoded_index_ <= 16 || KeyframeBefore(target) <= position);
    at_start_ = false;
    if (continue_forward) {
      StartSkipping(target);  // frames passed over are not shown
    } else {
      SeekBefore(target, 0);
    }
    bool sought = !continue_forward;
    int keyframes_back = 0;
    for (;;) {
      const DecodeResult result = DecodeUntil(target);
      if (result == DecodeResult::kFound) break;
      if (!sought) {  // going on from the current position failed: start over from a keyframe
        sought = true;
        SeekBefore(target, 0);
        continue;
      }
      if (skipping_) {
        // The target did not come out while non-reference frames were skipped: never skip
        // again in this file, and retry from the same keyframe.
        skip_nonref_ = false;
        SeekBefore(target, keyframes_back);
        continue;
      }
      if (result == DecodeResult::kOvershot && keyframes_back < 8) {
        SeekBefore(target, ++keyframes_back);  // the keyframe before the previous choice
        continue;
      }
      decoded_index_ = -1;
      last_rgb_.release();
      throw Error("cannot decode frame " + std::to_string(index) + " of " + info_.path +
                  (info_.truncated ? ": " + info_.warning : ": the file is damaged there"));
    }
    decoded_index_ = index;
    return last_rgb_.clone();
  }

 private:
  enum class DecodeResult { kFound, kOvershot, kEnd };
  // Where a packet sits. `key` orders frames for seeking: the pts, or in tagged mode the
  // frame index.
  struct SeekPoint {
    int64_t key = kUnknown, dts = AV_NOPTS_VALUE, pos = -1;
  };
  struct PacketRecord {
    int64_t pts, dts, pos, duration;
    bool keyframe, discard;
  };

  void CheckIndex(int index) const {
    if (index < 0 || index >= info_.frame_count)
      throw Error("frame " + std::to_string(index) + " is out of range (the video has " +
                  std::to_string(info_.frame_count) + " frames)");
  }

  void OpenContainer() {
    AVFormatContext* raw = nullptr;
    int rc = avformat_open_input(&raw, info_.path.c_str(), nullptr, nullptr);
    if (rc < 0)
      throw Error("cannot open " + info_.path + " as a video (" + AvError(rc) +
                  "): not a video format FFmpeg knows, or the file is damaged or cut short");
    format_.reset(raw);
    rc = avformat_find_stream_info(format_.get(), nullptr);
    if (rc < 0) throw Error("cannot read stream information of " + info_.path + ": " + AvError(rc));
    stream_index_ = av_find_best_stream(format_.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    if (stream_index_ < 0) throw Error(info_.path + " has no video stream");
    stream_ = format_->streams[stream_index_];
    time_base_ = stream_->time_base;
    const AVCodecDescriptor* descriptor = avcodec_descriptor_get(stream_->codecpar->codec_id);
    info_.codec = descriptor ? descriptor->name : "unknown";
    may_reorder_ = !descriptor || (descriptor->props & AV_CODEC_PROP_REORDER);
    // Rotation: the display matrix gives the counter-clockwise angle a player applies.
    if (const int32_t* matrix = DisplayMatrix(stream_)) {
      const double ccw = av_display_rotation_get(matrix);
      if (!std::isnan(ccw)) {
        int cw = static_cast<int>(std::lround(-ccw)) % 360;
        if (cw < 0) cw += 360;
        info_.rotation_degrees = (cw + 45) / 90 * 90 % 360;
      }
    }
    const AVRational rate = stream_->avg_frame_rate.num ? stream_->avg_frame_rate : stream_->r_frame_rate;
    info_.fps = rate.num && rate.den ? av_q2d(rate) : 0.0;
  }

  // Reads every packet once: the pts table, keyframes, truncation, and whether pts can be used.
  void DemuxPass() {
    std::unique_ptr<AVPacket, PacketDeleter> packet(av_packet_alloc());
    for (;;) {
      const int rc = av_read_frame(format_.get(), packet.get());
      if (rc == AVERROR_EOF) break;
      if (rc < 0) {
        info_.truncated = true;
        info_.warning = "reading the file fails after " + std::to_string(records_.size()) + " video packets (" +
                        AvError(rc) + ")";
        break;
      }
      if (packet->stream_index == stream_index_) {
        if (packet->flags & AV_PKT_FLAG_CORRUPT) {
          info_.truncated = true;
          info_.warning = "video packet " + std::to_string(records_.size() + 1) + " is damaged or cut off";
          av_packet_unref(packet.get());
          break;
        }
        // Packets outside the container's edit list are decoded but never shown.
        records_.push_back({packet->pts, packet->dts, packet->pos, packet->duration,
                            (packet->flags & AV_PKT_FLAG_KEY) != 0, (packet->flags & AV_PKT_FLAG_DISCARD) != 0});
      }
      av_packet_unref(packet.get());
    }
    const int64_t packets = static_cast<int64_t>(records_.size());
    if (!info_.truncated && stream_->nb_frames > 0 && packets < stream_->nb_frames) {
      info_.truncated = true;
      info_.warning = "the file ends after " + std::to_string(packets) + " of its " +
                      std::to_string(stream_->nb_frames) + " video packets";
    }
    if (records_.empty())
      throw Error(info_.path + " contains no readable video frames" +
                  (info_.truncated ? " (" + info_.warning + ")" : std::string()));
    start_ = {kUnknown, records_.front().dts, records_.front().pos};

    bool missing_pts = false, missing_dts = false;
    for (const PacketRecord& r : records_) {
      if (r.discard) continue;
      missing_pts |= r.pts == AV_NOPTS_VALUE;
      missing_dts |= r.dts == AV_NOPTS_VALUE;
    }
    // Without pts, dts (or counting) stands in; that is exact only when frames are shown
    // in decode order.
    int64_t fallback_pts = 0;
    for (const PacketRecord& r : records_) {
      if (r.discard) continue;
      int64_t pts = r.pts != AV_NOPTS_VALUE ? r.pts : r.dts;
      if (pts == AV_NOPTS_VALUE) pts = fallback_pts;
      fallback_pts = pts + std::max<int64_t>(1, r.duration);
      keys_.push_back(pts);
      if (r.keyframe) keyframes_.push_back({pts, r.dts, r.pos});
    }
    std::sort(keys_.begin(), keys_.end());
    const bool repeated = std::adjacent_find(keys_.begin(), keys_.end()) != keys_.end();
    tagged_ = repeated || (missing_pts && (may_reorder_ || missing_dts));
    if (tagged_) {
      keys_.clear();
      keyframes_.clear();
      for (size_t tag = 0; tag < records_.size(); ++tag) {
        if (records_[tag].pos >= 0) tag_of_pos_.emplace(records_[tag].pos, static_cast<int64_t>(tag));
        if (records_[tag].dts != AV_NOPTS_VALUE) tag_of_dts_.emplace(records_[tag].dts, static_cast<int64_t>(tag));
      }
      return;  // DecodePass builds the tables
    }
    if (info_.truncated && !missing_dts) {
      // A packet that did not arrive comes after the last one in decode order, so its
      // dts, and therefore its pts, exceeds the last dts read. Frames with pts <= that dts
      // thus have no missing frame before them: they keep the indices of the intact file.
      const int64_t last_dts = records_.back().dts;
      const size_t keep = std::upper_bound(keys_.begin(), keys_.end(), last_dts) - keys_.begin();
      if (keep > 0 && keep < keys_.size()) keys_.resize(keep);
    }
    start_.key = keys_.front();
  }

  // Tagged mode: decodes the whole stream once, stamping packets with their decode-order
  // number; the order frames come out in is their presentation order.
  void DecodePass() {
    presentation_of_tag_.assign(records_.size(), -1);
    if (!SeekTo(start_)) throw Error("cannot return to the start of " + info_.path + " after reading it");
    std::vector<int64_t> tag_of_frame;
    int errors = 0;
    bool draining = false;
    for (;;) {
      const int rc = avcodec_receive_frame(codec_.get(), frame_.get());
      if (rc == 0) {
        const int64_t tag = frame_->pts;
        if (tag >= 0 && tag < static_cast<int64_t>(records_.size()) && presentation_of_tag_[tag] < 0 &&
            !records_[tag].discard) {
          presentation_of_tag_[tag] = static_cast<int64_t>(tag_of_frame.size());
          tag_of_frame.push_back(tag);
        }
        av_frame_unref(frame_.get());
        continue;
      }
      if (rc == AVERROR_EOF || draining) break;
      if (rc != AVERROR(EAGAIN)) {
        if (++errors > 64) break;
        continue;
      }
      if (!FeedPacket()) {
        avcodec_send_packet(codec_.get(), nullptr);
        draining = true;
      }
    }
    // Drain until the decoder reports the end.
    while (draining) {
      const int rc = avcodec_receive_frame(codec_.get(), frame_.get());
      if (rc != 0) break;
      const int64_t tag = frame_->pts;
      if (tag >= 0 && tag < static_cast<int64_t>(records_.size()) && presentation_of_tag_[tag] < 0 &&
          !records_[tag].discard) {
        presentation_of_tag_[tag] = static_cast<int64_t>(tag_of_frame.size());
        tag_of_frame.push_back(tag);
      }
      av_frame_unref(frame_.get());
    }
    if (tag_of_frame.empty()) throw Error(info_.path + " contains no decodable video frames");
    int64_t frames = static_cast<int64_t>(tag_of_frame.size());
    if (info_.truncated) {
      // A missing packet's decode number is >= records_.size(); it is shown at most
      // `reorder` places before its decode position, so frames before that are safe.
      int64_t reorder = codec_->has_b_frames;
      for (int64_t p = 0; p < frames; ++p) reorder = std::max(reorder, tag_of_frame[p] - p);
      frames = std::clamp<int64_t>(static_cast<int64_t>(records_.size()) - reorder, 1, frames);
      for (int64_t p = frames; p < static_cast<int64_t>(tag_of_frame.size()); ++p)
        presentation_of_tag_[tag_of_frame[p]] = -1;
    }
    for (int64_t p = 0; p < frames; ++p) keys_.push_back(p);
    // A keyframe is a seek point only when it closes its group of pictures: every packet
    // before it is shown before it and every packet after it is shown after it (so decoding
    // from it yields exactly the frames from it on).
    const size_t n = records_.size();
    std::vector<int64_t> max_before(n + 1, -1), min_after(n + 1, std::numeric_limits<int64_t>::max());
    for (size_t t = 0; t < n; ++t) max_before[t + 1] = std::max(max_before[t], presentation_of_tag_[t]);
    for (size_t t = n; t-- > 0;)
      min_after[t] = presentation_of_tag_[t] >= 0 ? std::min(min_after[t + 1], presentation_of_tag_[t]) : min_after[t + 1];
    for (size_t t = 0; t < n; ++t) {
      const int64_t p = presentation_of_tag_[t];
      if (records_[t].keyframe && p >= 0 && max_before[t] < p && min_after[t + 1] > p)
        keyframes_.push_back({p, records_[t].dts, records_[t].pos});
    }
    start_.key = 0;
  }

  void FinishTables() {
    std::sort(keyframes_.begin(), keyframes_.end(),
              [](const SeekPoint& a, const SeekPoint& b) { return a.key < b.key; });
    // A stream that does not open with a keyframe: its first frames decode from the start.
    if (keyframes_.empty() || keyframes_.front().key > keys_.front()) keyframes_.insert(keyframes_.begin(), start_);
    keyframes_.front().key = std::min(keyframes_.front().key, keys_.front());
    for (const SeekPoint& key : keyframes_) keyframe_keys_.push_back(key.key);
    info_.frame_count = static_cast<int>(keys_.size());
    if (info_.truncated)
      info_.warning = "the video is cut short or damaged; decoding stops at frame " + std::to_string(info_.frame_count) +
                      " (" + info_.warning + ")";
    if ((info_.fps <= 0.0 || info_.fps > 1000.0) && !tagged_ && keys_.size() > 1)
      info_.fps = (keys_.size() - 1) / ((keys_.back() - keys_.front()) * av_q2d(time_base_));
    if (info_.fps <= 0.0 || info_.fps > 1000.0) info_.fps = 25.0;  // no timing in the file at all
  }

  void OpenDecoder() {
    const AVCodec* codec = avcodec_find_decoder(stream_->codecpar->codec_id);
    if (!codec) {
      std::string name = info_.codec;
      if (stream_->codecpar->codec_tag) {
        char tag[AV_FOURCC_MAX_STRING_SIZE] = {0};
        av_fourcc_make_string(tag, stream_->codecpar->codec_tag);
        name += ", fourcc " + std::string(tag);
      }
      throw Error("unsupported codec (" + name + ") in " + info_.path + ": this FFmpeg has no decoder for it");
    }
    codec_.reset(avcodec_alloc_context3(codec));
    int rc = avcodec_parameters_to_context(codec_.get(), stream_->codecpar);
    if (rc < 0) throw Error("cannot set up the " + info_.codec + " decoder for " + info_.path + ": " + AvError(rc));
    codec_->pkt_timebase = time_base_;
    codec_->thread_count = 4;  // frame threading does not change the decoded pixels
    rc = avcodec_open2(codec_.get(), codec, nullptr);
    if (rc < 0) throw Error("cannot open the " + info_.codec + " decoder for " + info_.path + ": " + AvError(rc));
    frame_.reset(av_frame_alloc());
    packet_.reset(av_packet_alloc());
    pending_.reset(av_packet_alloc());
    coded_width_ = codec_->width;
    coded_height_ = codec_->height;
    if (coded_width_ <= 0 || coded_height_ <= 0) throw Error(info_.path + ": the video stream has no frame size");
    const bool swap = info_.rotation_degrees == 90 || info_.rotation_degrees == 270;
    info_.width = swap ? coded_height_ : coded_width_;
    info_.height = swap ? coded_width_ : coded_height_;
  }

  int64_t KeyframeBefore(int64_t target) const {
    auto it = std::upper_bound(keyframe_keys_.begin(), keyframe_keys_.end(), target);
    return it == keyframe_keys_.begin() ? keyframe_keys_.front() : *(it - 1);
  }

  void StartSkipping(int64_t target) {
    skipping_ = skip_nonref_;
    skip_before_ = target;
  }

  void SeekBefore(int64_t target, int keyframes_back) {
    auto it = std::upper_bound(keyframe_keys_.begin(), keyframe_keys_.end(), target);
    const int64_t position = (it - keyframe_keys_.begin()) - 1 - keyframes_back;
    avcodec_flush_buffers(codec_.get());
    ++stats_.seeks;
    draining_ = false;
    decoded_index_ = -1;
    last_rgb_.release();
    StartSkipping(target);
    if (position >= 0 && SeekTo(keyframes_[position])) return;
    if (SeekTo(start_)) return;
    throw Error("cannot seek in " + info_.path + ": the demuxer does not return to the keyframe before frame " +
                std::to_string(std::lower_bound(keys_.begin(), keys_.end(), target) - keys_.begin()));
  }

  // Positions the demuxer at or shortly before `point`, trying the ways demuxers differ in:
  // by pts (indexed containers: MP4, Matroska), by dts (demuxers that index by decode
  // time, e.g. MPEG-TS), by byte position. Each try is checked on the first packet read
  // (kept in pending_ to be decoded first): landing after the keyframe would lose it.
  bool SeekTo(const SeekPoint& point) {
    const bool byte_seek = point.pos >= 0 && !(format_->iformat->flags & AVFMT_NO_BYTE_SEEK);
    for (int method = 0; method < 4; ++method) {
      int rc = -1;
      if (method == 0 && !tagged_ && point.key != kUnknown)
        rc = av_seek_frame(format_.get(), stream_index_, point.key, AVSEEK_FLAG_BACKWARD);
      if (method == 1 && point.dts != AV_NOPTS_VALUE)
        rc = av_seek_frame(format_.get(), stream_index_, point.dts, AVSEEK_FLAG_BACKWARD);
      if (method == 2 && byte_seek)
        rc = av_seek_frame(format_.get(), stream_index_, point.pos, AVSEEK_FLAG_BYTE | AVSEEK_FLAG_BACKWARD);
      if (method == 3 && !tagged_ && point.key != kUnknown)
        rc = avformat_seek_file(format_.get(), stream_index_, INT64_MIN, point.key, point.key, 0);
      if (rc < 0) continue;
      next_tag_ = -1;  // after a seek only the packet's position or dts can tell its tag
      if (ReadPending() && AtOrBefore(pending_.get(), point) && (!tagged_ || TagOf(pending_.get()) >= 0)) return true;
    }
    has_pending_ = false;
    return false;
  }

  // Reads the next packet of our stream into pending_; false at the end of the file.
  bool ReadPending() {
    has_pending_ = false;
    for (;;) {
      av_packet_unref(pending_.get());
      if (av_read_frame(format_.get(), pending_.get()) < 0) return false;
      if (pending_->stream_index == stream_index_) return has_pending_ = true;
    }
  }

  static bool AtOrBefore(const AVPacket* packet, const SeekPoint& point) {
    if (packet->pos >= 0 && point.pos >= 0) return packet->pos <= point.pos;
    if (packet->dts != AV_NOPTS_VALUE && point.dts != AV_NOPTS_VALUE) return packet->dts <= point.dts;
    return packet->pts != AV_NOPTS_VALUE && point.key != kUnknown && packet->pts <= point.key;
  }

  // Tagged mode: the decode-order number of a packet read after a seek, or -1.
  int64_t TagOf(const AVPacket* packet) const {
    if (packet->pos >= 0) {
      auto it = tag_of_pos_.find(packet->pos);
      if (it != tag_of_pos_.end()) return it->second;
    }
    if (packet->dts != AV_NOPTS_VALUE) {
      auto it = tag_of_dts_.find(packet->dts);
      if (it != tag_of_dts_.end()) return it->second;
    }
    return next_tag_;
  }

  // Sends the next packet of our stream to the decoder; false at the end of the stream.
  bool FeedPacket() {
    for (;;) {
      if (has_pending_) {
        av_packet_move_ref(packet_.get(), pending_.get());
        has_pending_ = false;
      } else {
        if (av_read_frame(format_.get(), packet_.get()) < 0) return false;
        if (packet_->stream_index != stream_index_) {
          av_packet_unref(packet_.get());
          continue;
        }
      }
      int64_t key = packet_->pts;
      if (tagged_) {
        // Stamp the packet; the decoder returns the stamp as the pts of its frame.
        const int64_t tag = TagOf(packet_.get());
        if (tag < 0 || tag >= static_cast<int64_t>(records_.size())) {  // past the frames read at open
          av_packet_unref(packet_.get());
          return false;
        }
        next_tag_ = tag + 1;
        packet_->pts = tag;
        key = presentation_of_tag_.empty() ? kUnknown : presentation_of_tag_[tag];
        if (key < 0) key = kUnknown;
      }
      // Frames before the target are only needed as references (see the file comment).
      const bool before_target = skipping_ && key != kUnknown && key != AV_NOPTS_VALUE && key < skip_before_;
      codec_->skip_frame = before_target ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
      const int sent = avcodec_send_packet(codec_.get(), packet_.get());
      av_packet_unref(packet_.get());
      if (sent < 0 && sent != AVERROR(EAGAIN)) ++send_errors_;
      return true;
    }
  }

  // The key of a decoded frame: its pts, or in tagged mode its index; kUnknown if none.
  int64_t FrameKey(const AVFrame* frame) const {
    if (tagged_) {
      const int64_t tag = frame->pts;
      if (tag < 0 || tag >= static_cast<int64_t>(presentation_of_tag_.size())) return kUnknown;
      return presentation_of_tag_[tag] >= 0 ? presentation_of_tag_[tag] : kUnknown;
    }
    const int64_t pts = frame->best_effort_timestamp != AV_NOPTS_VALUE ? frame->best_effort_timestamp : frame->pts;
    return pts == AV_NOPTS_VALUE ? kUnknown : pts;
  }

  // Receives frames until the one with key == target (converted into last_rgb_).
  DecodeResult DecodeUntil(int64_t target) {
    int errors = 0;
    send_errors_ = 0;
    for (;;) {
      const int rc = avcodec_receive_frame(codec_.get(), frame_.get());
      if (rc == 0) {
        ++stats_.frames_decoded;
        const int64_t key = FrameKey(frame_.get());
        if (key == target) {
          last_rgb_ = ToRgb(frame_.get());
          av_frame_unref(frame_.get());
          skipping_ = false;
          return DecodeResult::kFound;
        }
        av_frame_unref(frame_.get());
        if (key != kUnknown && key > target) return DecodeResult::kOvershot;
        continue;
      }
      if (rc == AVERROR_EOF) return DecodeResult::kEnd;
      if (rc != AVERROR(EAGAIN)) {
        // A damaged packet (reported here with frame threading): the decoder carries on
        // with the next one. Give up only when nothing decodes any more.
        if (++errors > 64) return DecodeResult::kEnd;
        continue;
      }
      if (draining_ || send_errors_ > 64) return DecodeResult::kEnd;
      if (!FeedPacket()) {
        avcodec_send_packet(codec_.get(), nullptr);  // drain the decoder
        draining_ = true;
      }
    }
  }

  cv::Mat ToRgb(const AVFrame* frame) {
    // Scale to the stream's declared size should a frame differ (mid-stream size change),
    // so every frame has info().width x info().height.
    sws_.reset(sws_getCachedContext(sws_.release(), frame->width, frame->height,
                                    static_cast<AVPixelFormat>(frame->format), coded_width_, coded_height_,
                                    AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr, nullptr, nullptr));
    if (!sws_) throw Error("cannot convert the pixel format of " + info_.path + " to RGB");
    cv::Mat rgb(coded_height_, coded_width_, CV_8UC3);
    uint8_t* dst[4] = {rgb.data, nullptr, nullptr, nullptr};
    int dst_stride[4] = {static_cast<int>(rgb.step[0]), 0, 0, 0};
    sws_scale(sws_.get(), frame->data, frame->linesize, 0, frame->height, dst, dst_stride);
    switch (info_.rotation_degrees) {
      case 90: cv::rotate(rgb, rgb, cv::ROTATE_90_CLOCKWISE); break;
      case 180: cv::rotate(rgb, rgb, cv::ROTATE_180); break;
      case 270: cv::rotate(rgb, rgb, cv::ROTATE_90_COUNTERCLOCKWISE); break;
      default: break;
    }
    return rgb;
  }

  VideoInfo info_;
  DecodeStats stats_;
  std::unique_ptr<AVFormatContext, FormatDeleter> format_;
  std::unique_ptr<AVCodecContext, CodecDeleter> codec_;
  std::unique_ptr<AVFrame, FrameDeleter> frame_;
  std::unique_ptr<AVPacket, PacketDeleter> packet_;
  std::unique_ptr<AVPacket, PacketDeleter> pending_;  // read while checking a seek, decoded next
  bool has_pending_ = false;
  std::unique_ptr<SwsContext, SwsDeleter> sws_;
  AVStream* stream_ = nullptr;
  int stream_index_ = -1;
  AVRational time_base_{1, 1};
  bool may_reorder_ = true;                 // the codec can show frames out of decode order
  int coded_width_ = 0, coded_height_ = 0;  // before rotation

  std::vector<PacketRecord> records_;  // every video packet read at open, in decode order
  std::vector<int64_t> keys_;          // frame index -> key (sorted pts, or the index itself when tagged)
  SeekPoint start_;                    // the stream's first packet
  std::vector<SeekPoint> keyframes_;   // seek points, sorted by key
  std::vector<int64_t> keyframe_keys_;  // keyframes_[i].key, for binary search

  // Tagged mode (no usable pts): packets are identified by decode-order number ("tag").
  bool tagged_ = false;
  std::unordered_map<int64_t, int64_t> tag_of_pos_, tag_of_dts_;
  std::vector<int64_t> presentation_of_tag_;  // tag -> frame index, -1 when never shown
  int64_t next_tag_ = -1;                     // tag of the packet after the last one fed

  int decoded_index_ = -1;             // index of last_rgb_, -1 after a seek
  bool at_start_ = false;              // freshly opened: the decoder stands before frame 0
  bool draining_ = false;
  int send_errors_ = 0;
  bool skip_nonref_ = true;            // cleared if skipping ever loses a target frame
  bool skipping_ = false;              // heading for a target: skip non-reference frames before it
  int64_t skip_before_ = 0;
  cv::Mat last_rgb_;
};

}  // namespace

std::unique_ptr<VideoSource> OpenFfmpegSource(const std::string& path) {
  av_log_set_level(AV_LOG_FATAL);  // problems surface as litseg::Error messages
  return std::make_unique<FfmpegSource>(path);
}

}  // namespace litseg::internal
