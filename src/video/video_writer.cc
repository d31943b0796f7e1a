#include "litseg/video/video_writer.h"

#include <cmath>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
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
}  // namespace

struct Mp4Writer::State {
  std::string path;
  AVFormatContext* format = nullptr;
  AVCodecContext* codec = nullptr;
  AVStream* stream = nullptr;
  AVFrame* frame = nullptr;
  AVPacket* packet = nullptr;
  SwsContext* sws = nullptr;
  int64_t next_pts = 0;
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
    if (rc < 0 && !(flush && rc == AVERROR_EOF)) throw Error("H.264 encoding failed for " + path + ": " + AvError(rc));
    for (;;) {
      rc = avcodec_receive_packet(codec, packet);
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
      if (rc < 0) throw Error("H.264 encoding failed for " + path + ": " + AvError(rc));
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
  if (width % 2 || height % 2) throw Error("H.264 (yuv420p) needs an even frame size, got " + std::to_string(width) + "x" + std::to_string(height));
  int rc = avformat_alloc_output_context2(&s.format, nullptr, "mp4", path.c_str());
  if (rc < 0 || !s.format) throw Error("cannot create " + path + ": " + AvError(rc));
  const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
  if (!codec) codec = avcodec_find_encoder(AV_CODEC_ID_H264);
  if (!codec) throw Error("this FFmpeg build has no H.264 encoder");
  s.stream = avformat_new_stream(s.format, nullptr);
  s.codec = avcodec_alloc_context3(codec);
  const AVRational rate = av_d2q(fps, 100000);
  s.codec->width = width;
  s.codec->height = height;
  s.codec->pix_fmt = AV_PIX_FMT_YUV420P;
  s.codec->time_base = av_inv_q(rate);
  s.codec->framerate = rate;
  s.codec->gop_size = 48;
  if (s.format->oformat->flags & AVFMT_GLOBALHEADER) s.codec->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  if (std::string(codec->name) == "libx264") {
    av_opt_set(s.codec->priv_data, "preset", options.preset.c_str(), 0);
    av_opt_set(s.codec->priv_data, "crf", std::to_string(options.crf).c_str(), 0);
  }
  rc = avcodec_open2(s.codec, codec, nullptr);
  if (rc < 0) throw Error("cannot open the H.264 encoder: " + AvError(rc));
  avcodec_parameters_from_context(s.stream->codecpar, s.codec);
  s.stream->time_base = s.codec->time_base;
  rc = avio_open(&s.format->pb, path.c_str(), AVIO_FLAG_WRITE);
  if (rc < 0) throw Error("cannot write " + path + ": " + AvError(rc));
  rc = avformat_write_header(s.format, nullptr);
  if (rc < 0) throw Error("cannot write " + path + ": " + AvError(rc));
  s.frame = av_frame_alloc();
  s.frame->format = AV_PIX_FMT_YUV420P;
  s.frame->width = width;
  s.frame->height = height;
  if (av_frame_get_buffer(s.frame, 0) < 0) throw Error("out of memory encoding " + path);
  s.packet = av_packet_alloc();
  s.sws = sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, AV_PIX_FMT_YUV420P, SWS_BICUBIC, nullptr,
                         nullptr, nullptr);
}

Mp4Writer::~Mp4Writer() {
  try {
    Finish();
  } catch (const Error&) {
    // Destructors must not throw; Finish() reports errors to callers that call it.
  }
}

void Mp4Writer::Write(const cv::Mat& rgb) {
  State& s = *state_;
  if (s.finished) throw Error("Mp4Writer: Write after Finish");
  if (rgb.type() != CV_8UC3 || rgb.cols != s.codec->width || rgb.rows != s.codec->height)
    throw Error("Mp4Writer: frames must be RGB CV_8UC3 of the size given at construction");
  av_frame_make_writable(s.frame);
  const uint8_t* src[1] = {rgb.data};
  const int src_stride[1] = {static_cast<int>(rgb.step[0])};
  sws_scale(s.sws, src, src_stride, 0, rgb.rows, s.frame->data, s.frame->linesize);
  s.frame->pts = s.next_pts++;
  s.Drain(false);
}

void Mp4Writer::Finish() {
  State& s = *state_;
  if (s.finished) return;
  s.finished = true;
  s.Drain(true);
  const int rc = av_write_trailer(s.format);
  if (rc < 0) throw Error("cannot finish " + s.path + ": " + AvError(rc));
}

std::string Mp4Writer::encoder_name() const { return state_->codec->codec->name; }

}  // namespace litseg
