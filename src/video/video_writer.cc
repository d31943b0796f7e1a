#include "litseg/video/video_writer.h"

#include <algorithm>
#include <cmath>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include "litseg/core/error.h"

namespace litseg {
namespace {

std::string AvError(int code) {
  char buffer[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, buffer, sizeof(buffer));
  return buffer;
}

// 4:2:0 for every codec that offers it (what players expect), else the encoder's first format.
AVPixelFormat ChoosePixelFormat(const AVCodec* codec) {
  const AVPixelFormat* formats = nullptr;
#if LIBAVCODEC_VERSION_INT >= AV_VERSION_INT(61, 13, 100)  // FFmpeg 7.1 deprecates AVCodec.pix_fmts
  const void* config = nullptr;
  int count = 0;
  if (avcodec_get_supported_config(nullptr, codec, AV_CODEC_CONFIG_PIX_FORMAT, 0, &config, &count) >= 0)
    formats = static_cast<const AVPixelFormat*>(config);
#else
  formats = codec->pix_fmts;
#endif
  if (!formats) return AV_PIX_FMT_YUV420P;
  // MJPEG wants full-range ("J") formats; limited range needs non-standard compliance.
  const bool jpeg = codec->id == AV_CODEC_ID_MJPEG;
  for (AVPixelFormat wanted : {jpeg ? AV_PIX_FMT_YUVJ420P : AV_PIX_FMT_YUV420P, AV_PIX_FMT_YUV420P, AV_PIX_FMT_YUVJ420P})
    for (const AVPixelFormat* f = formats; *f != AV_PIX_FMT_NONE; ++f)
      if (*f == wanted) return wanted;
  return formats[0];
}

void SetRotation(AVStream* stream, int clockwise_degrees) {
  uint8_t* data = nullptr;
#if LIBAVCODEC_VERSION_INT >= AV_VERSION_INT(60, 30, 100)  // FFmpeg 6.1: side data lives in codecpar
  AVPacketSideData* side = av_packet_side_data_new(&stream->codecpar->coded_side_data,
                                                   &stream->codecpar->nb_coded_side_data,
                                                   AV_PKT_DATA_DISPLAYMATRIX, 9 * sizeof(int32_t), 0);
  if (side) data = side->data;
#else
  data = av_stream_new_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, 9 * sizeof(int32_t));
#endif
  if (!data) throw Error("out of memory writing rotation metadata");
  // av_display_rotation_get() of the result is -clockwise_degrees, which is what FFmpeg's
  // own players read as "turn clockwise by clockwise_degrees" (checked against ffmpeg's
  // autorotation; the get/set pair is not symmetric in sign).
  av_display_rotation_set(reinterpret_cast<int32_t*>(data), static_cast<double>(clockwise_degrees));
}

}  // namespace

struct Mp4Writer::State {
  std::string path;
  AVFormatContext* format = nullptr;
  AVCodecContext* codec = nullptr;
  AVStream* stream = nullptr;
  AVFrame* frame = nullptr;
  AVPacket* packet = nullptr;
  SwsContext* sws = nullptr;
  int64_t ticks_per_frame = 1;
  int64_t last_pts = AV_NOPTS_VALUE;
  bool header_written = false;
  bool finished = false;

  ~State() {
    sws_freeContext(sws);
    av_packet_free(&packet);
    av_frame_free(&frame);
    avcodec_free_context(&codec);
    if (format) {
      if (format->pb) avio_closep(&format->pb);
      avformat_free_context(format);
    }
  }

  void Drain(bool flush) {
    int rc = avcodec_send_frame(codec, flush ? nullptr : frame);
    if (rc < 0 && !(flush && rc == AVERROR_EOF)) throw Error("video encoding failed for " + path + ": " + AvError(rc));
    for (;;) {
      rc = avcodec_receive_packet(codec, packet);
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
      if (rc < 0) throw Error("video encoding failed for " + path + ": " + AvError(rc));
      // Without a duration, MP4's edit list would end at the last frame's start and hide it.
      if (packet->duration <= 0) packet->duration = ticks_per_frame;
      av_packet_rescale_ts(packet, codec->time_base, stream->time_base);
      packet->stream_index = stream->index;
      rc = av_interleaved_write_frame(format, packet);
      if (rc < 0) throw Error("cannot write " + path + ": " + AvError(rc));
    }
  }
};

Mp4Writer::Mp4Writer(const std::string& path, int width, int height, double fps, const Mp4WriterOptions& options)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.path = path;
  if (width <= 0 || height <= 0) throw Error("video size must be positive");
  if (!(fps > 0.0)) throw Error("video frame rate must be positive");
  const int rotation = ((options.rotation_degrees % 360) + 360) % 360;
  if (rotation % 90) throw Error("rotation must be a multiple of 90 degrees");

  // Encoder chatter (x264's statistics) would bury the CLI's output; errors surface as Error.
  if (av_log_get_level() > AV_LOG_ERROR) av_log_set_level(AV_LOG_ERROR);
  const AVCodec* codec = nullptr;
  if (options.encoder.empty()) {
    codec = avcodec_find_encoder_by_name("libx264");
    if (!codec) codec = avcodec_find_encoder(AV_CODEC_ID_H264);
    if (!codec) throw Error("this FFmpeg build has no H.264 encoder");
  } else {
    codec = avcodec_find_encoder_by_name(options.encoder.c_str());
    if (!codec) throw Error("this FFmpeg build has no encoder named '" + options.encoder + "'");
  }
  const AVPixelFormat pix_fmt = ChoosePixelFormat(codec);
  if ((pix_fmt == AV_PIX_FMT_YUV420P || pix_fmt == AV_PIX_FMT_YUVJ420P) && (width % 2 || height % 2))
    throw Error("4:2:0 video needs an even frame size, got " + std::to_string(width) + "x" + std::to_string(height));

  int rc = avformat_alloc_output_context2(&s.format, nullptr, nullptr, path.c_str());
  if (rc < 0 || !s.format) rc = avformat_alloc_output_context2(&s.format, nullptr, "mp4", path.c_str());
  if (rc < 0 || !s.format) throw Error("cannot create " + path + ": " + AvError(rc));

  s.stream = avformat_new_stream(s.format, nullptr);
  s.codec = avcodec_alloc_context3(codec);
  if (!s.stream || !s.codec) throw Error("out of memory creating " + path);
  const AVRational rate = av_d2q(fps, 100000);
  s.codec->width = width;
  s.codec->height = height;
  s.codec->pix_fmt = pix_fmt;
  if (pix_fmt == AV_PIX_FMT_YUVJ420P) s.codec->color_range = AVCOL_RANGE_JPEG;
  s.codec->time_base = options.timescale > 0 ? AVRational{1, options.timescale} : av_inv_q(rate);
  s.codec->framerate = rate;
  s.codec->gop_size = options.gop_size;
  s.ticks_per_frame = std::max<int64_t>(1, std::llround(1.0 / (fps * av_q2d(s.codec->time_base))));
  if (s.format->oformat->flags & AVFMT_GLOBALHEADER) s.codec->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  const std::string name = codec->name;
  if (name == "libx264" || name == "libx265") {
    av_opt_set(s.codec->priv_data, "preset", options.preset.c_str(), 0);
    av_opt_set(s.codec->priv_data, "crf", std::to_string(options.crf).c_str(), 0);
  }
  if (name == "libx265") av_opt_set(s.codec->priv_data, "x265-params", "log-level=error", 0);
  AVDictionary* extra = nullptr;
  for (const auto& [key, value] : options.codec_options) av_dict_set(&extra, key.c_str(), value.c_str(), 0);
  rc = avcodec_open2(s.codec, codec, &extra);
  av_dict_free(&extra);
  if (rc < 0) throw Error("cannot open the " + name + " encoder: " + AvError(rc));
  avcodec_parameters_from_context(s.stream->codecpar, s.codec);
  s.stream->time_base = s.codec->time_base;
  if (rotation) SetRotation(s.stream, rotation);
  if (!(s.format->oformat->flags & AVFMT_NOFILE)) {
    rc = avio_open(&s.format->pb, path.c_str(), AVIO_FLAG_WRITE);
    if (rc < 0) throw Error("cannot write " + path + ": " + AvError(rc));
  }
  rc = avformat_write_header(s.format, nullptr);
  if (rc < 0) throw Error("cannot write " + path + " (" + name + " in " + s.format->oformat->name + "): " + AvError(rc));
  s.header_written = true;
  s.frame = av_frame_alloc();
  s.frame->format = pix_fmt;
  s.frame->width = width;
  s.frame->height = height;
  if (av_frame_get_buffer(s.frame, 0) < 0) throw Error("out of memory encoding " + path);
  s.packet = av_packet_alloc();
  s.sws = sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, pix_fmt, SWS_BICUBIC, nullptr, nullptr,
                         nullptr);
  if (!s.sws) throw Error("cannot convert RGB to the encoder's pixel format for " + path);
}

Mp4Writer::~Mp4Writer() {
  try {
    Finish();
  } catch (const Error&) {
    // Destructors must not throw; Finish() reports errors to callers that call it.
  }
}

void Mp4Writer::Write(const cv::Mat& rgb) {
  const State& s = *state_;
  const int64_t pts = s.last_pts == AV_NOPTS_VALUE ? 0 : s.last_pts + s.ticks_per_frame;
  WriteAt(rgb, pts * av_q2d(s.codec->time_base));
}

void Mp4Writer::WriteAt(const cv::Mat& rgb, double seconds) {
  State& s = *state_;
  if (s.finished) throw Error("Mp4Writer: Write after Finish");
  if (rgb.type() != CV_8UC3 || rgb.cols != s.codec->width || rgb.rows != s.codec->height)
    throw Error("Mp4Writer: frames must be RGB CV_8UC3 of the size given at construction");
  const int64_t pts = std::llround(seconds / av_q2d(s.codec->time_base));
  if (s.last_pts != AV_NOPTS_VALUE && pts <= s.last_pts)
    throw Error("Mp4Writer: frame times must increase by at least one tick of the time base");
  const int rc = av_frame_make_writable(s.frame);
  if (rc < 0) throw Error("out of memory encoding " + s.path);
  cv::Mat contiguous = rgb.isContinuous() ? rgb : rgb.clone();
  const uint8_t* src[1] = {contiguous.data};
  const int src_stride[1] = {static_cast<int>(contiguous.step[0])};
  sws_scale(s.sws, src, src_stride, 0, contiguous.rows, s.frame->data, s.frame->linesize);
  s.frame->pts = pts;
  s.last_pts = pts;
  s.Drain(false);
}

void Mp4Writer::Finish() {
  State& s = *state_;
  if (s.finished || !s.header_written) return;
  s.finished = true;
  s.Drain(true);
  const int rc = av_write_trailer(s.format);
  if (rc < 0) throw Error("cannot finish " + s.path + ": " + AvError(rc));
}

std::string Mp4Writer::encoder_name() const { return state_->codec->codec->name; }

}  // namespace litseg
