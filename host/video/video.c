/*
 * Video input for bench/ and tests/: FFmpeg decode (libavformat/libavcodec)
 * or raw rgb24 frames, converted or resized to tightly packed RGB8 with
 * swscale. Built without FFmpeg (CBINFER_VIDEO=OFF; CBINFER_WITH_VIDEO
 * undefined), only raw frames at their own size are read, and the rest says
 * so. Errors go to the caller's buffer; nothing here prints (FFmpeg's own
 * logging is left as the program configured it, since it is process-global).
 *
 * Decoded video is read at its frame rate: when timestamps leave a gap (AVI
 * files mark a repeated frame with an empty chunk, which the demuxer drops;
 * tree.avi holds 68 coded frames for 444 frame times), the previous frame is
 * repeated, so frame k is the picture shown at time k / fps and a static
 * stretch counts as the frames it lasts. Decoded frames are never dropped.
 */
#include "video.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef CBINFER_WITH_VIDEO
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/mem.h>
#include <libswscale/swscale.h>
#endif

/* Largest accepted frame side. It keeps width * height * 3 far from int and
 * size_t overflow, which swscale and av_image_alloc rely on. */
#define CBI_VIDEO_MAX_SIDE 16384

/* Row alignment of internal buffers: swscale's SIMD paths want 16 or more and
 * warn (through FFmpeg's logger) when a plane is not aligned. */
#define CBI_VIDEO_ALIGN 32

typedef enum { CBI_VIDEO_FFMPEG, CBI_VIDEO_RAW } cbi_video_kind;

struct cbi_video {
    cbi_video_kind kind;
    int out_w, out_h;

    /* Raw rgb24. */
    FILE *fp;
    int own_fp; /* 0 for stdin, which is not ours to close */
    int in_w, in_h;

    char path[256]; /* for messages */

#ifdef CBINFER_WITH_VIDEO
    uint8_t *raw_data[4]; /* aligned copy of one raw input frame, when resizing */
    int raw_linesize[4];

    /* Conversion to RGB24 at out_w x out_h into an aligned buffer, which is
     * then copied into the caller's tightly packed one. */
    struct SwsContext *sws;
    uint8_t *conv_data[4];
    int conv_linesize[4];

    /* FFmpeg. */
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame; /* decoded, not yet shown (when `pending`) */
    AVFrame *held;  /* the picture of the current frame time, repeated over gaps */
    int stream_index;
    int flushing;    /* the end of the file was reached and the decoder told */
    int decoder_eof; /* the decoder has returned every frame */
    int pending, have_held, held_converted;
    AVRational time_base;  /* of the stream's timestamps */
    AVRational frame_time; /* 1 / frame rate; 0/1 when unknown (no gap filling) */
    int64_t base_ts;       /* timestamp of the first frame: frame time 0 */
    int64_t pending_slot;  /* frame time of `frame` */
    int64_t next_slot;     /* frame time of the next frame read */
    int64_t end_slot;      /* the stream's end in frame times; -1 when unknown */
#endif
};

static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || err_len == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

static int valid_side(int v) { return v > 0 && v <= CBI_VIDEO_MAX_SIDE; }

/* Output size: (0, 0) keeps the input size; otherwise both must be valid. */
static int resolve_out_size(int in_w, int in_h, int out_w, int out_h, int *w, int *h, char *err,
                            size_t err_len)
{
    if (out_w == 0 && out_h == 0) {
        *w = in_w;
        *h = in_h;
        return 0;
    }
    if (!valid_side(out_w) || !valid_side(out_h)) {
        set_err(err, err_len, "bad output size %dx%d (each side 1..%d, or 0x0 for the input size)",
                out_w, out_h, CBI_VIDEO_MAX_SIDE);
        return -1;
    }
    *w = out_w;
    *h = out_h;
    return 0;
}

void cbi_video_size(const cbi_video *v, int *width, int *height)
{
    if (width) *width = v ? v->out_w : 0;
    if (height) *height = v ? v->out_h : 0;
}

void cbi_video_close(cbi_video *v)
{
    if (!v) return;
#ifdef CBINFER_WITH_VIDEO
    sws_freeContext(v->sws);
    av_freep(&v->conv_data[0]);
    av_frame_free(&v->frame);
    av_frame_free(&v->held);
    av_packet_free(&v->pkt);
    avcodec_free_context(&v->dec);
    avformat_close_input(&v->fmt);
    av_freep(&v->raw_data[0]);
#endif
    if (v->fp && v->own_fp) fclose(v->fp);
    free(v);
}

/* ------------------------------------------------------------- FFmpeg ---- */
#ifdef CBINFER_WITH_VIDEO

static const char *av_err_text(int code, char *buf, size_t len)
{
    if (av_strerror(code, buf, len) < 0) snprintf(buf, len, "error %d", code);
    return buf;
}

static int alloc_conv_buffer(cbi_video *v, char *err, size_t err_len)
{
    if (av_image_alloc(v->conv_data, v->conv_linesize, v->out_w, v->out_h, AV_PIX_FMT_RGB24,
                       CBI_VIDEO_ALIGN) < 0) {
        set_err(err, err_len, "out of memory for a %dx%d frame", v->out_w, v->out_h);
        return -1;
    }
    return 0;
}

/* Copies the aligned conversion buffer into the caller's packed one. */
static void copy_out(const cbi_video *v, uint8_t *rgb)
{
    const size_t row = (size_t)v->out_w * 3;
    for (int y = 0; y < v->out_h; ++y)
        memcpy(rgb + (size_t)y * row, v->conv_data[0] + (size_t)y * v->conv_linesize[0], row);
}


/* Decodes the next frame into v->frame. Returns 1 for a frame, 0 when the
 * decoder is drained, -1 on error. EAGAIN from the decoder only means it wants
 * more input; at the end of the file it gets a NULL packet (the flush) and then
 * hands out its buffered frames until it returns EOF. A corrupt packet
 * (AVERROR_INVALIDDATA) is skipped as FFmpeg's own tools do: the decoder
 * conceals it, and the frame time it leaves empty repeats the last picture. */
static int ff_decode_next(cbi_video *v, char *err, size_t err_len)
{
    char msg[AV_ERROR_MAX_STRING_SIZE];
    if (v->decoder_eof) return 0;
    for (;;) {
        int ret = avcodec_receive_frame(v->dec, v->frame);
        if (ret == 0) return 1;
        if (ret == AVERROR_EOF) {
            v->decoder_eof = 1;
            return 0;
        }
        if (ret == AVERROR_INVALIDDATA) continue;
        if (ret != AVERROR(EAGAIN)) {
            set_err(err, err_len, "decoding '%s' failed: %s", v->path,
                    av_err_text(ret, msg, sizeof msg));
            return -1;
        }
        if (v->flushing) {
            /* A drained decoder must answer EOF, never EAGAIN; treat it as the
             * end rather than spin. */
            v->decoder_eof = 1;
            return 0;
        }

        ret = av_read_frame(v->fmt, v->pkt);
        if (ret == AVERROR_EOF) {
            v->flushing = 1;
            ret = avcodec_send_packet(v->dec, NULL);
            if (ret < 0 && ret != AVERROR_EOF) {
                set_err(err, err_len, "flushing the decoder of '%s' failed: %s", v->path,
                        av_err_text(ret, msg, sizeof msg));
                return -1;
            }
            continue;
        }
        if (ret < 0) {
            set_err(err, err_len, "reading '%s' failed: %s", v->path,
                    av_err_text(ret, msg, sizeof msg));
            return -1;
        }
        if (v->pkt->stream_index != v->stream_index) {
            av_packet_unref(v->pkt);
            continue;
        }
        /* receive_frame said EAGAIN, so the decoder accepts this packet: the
         * API guarantees send does not also answer EAGAIN in that state, and
         * an EAGAIN here is reported rather than the packet silently lost. */
        ret = avcodec_send_packet(v->dec, v->pkt);
        av_packet_unref(v->pkt);
        if (ret < 0 && ret != AVERROR_INVALIDDATA) {
            set_err(err, err_len, "decoding '%s' failed: %s", v->path,
                    av_err_text(ret, msg, sizeof msg));
            return -1;
        }
    }
}

/* Converts v->held to RGB24 at the output size into the conversion buffer.
 * The frame's size and format can change mid-stream, so the context is looked
 * up per frame (cached). */
static int ff_convert(cbi_video *v, char *err, size_t err_len)
{
    const AVFrame *f = v->held;
    if (!valid_side(f->width) || !valid_side(f->height) || f->format < 0) {
        set_err(err, err_len, "'%s': decoder returned a bad frame (%dx%d, format %d)", v->path,
                f->width, f->height, f->format);
        return -1;
    }
    v->sws = sws_getCachedContext(v->sws, f->width, f->height, (enum AVPixelFormat)f->format,
                                  v->out_w, v->out_h, AV_PIX_FMT_RGB24, SWS_BILINEAR, NULL, NULL,
                                  NULL);
    if (!v->sws) {
        set_err(err, err_len, "'%s': cannot convert %s %dx%d to rgb24 %dx%d", v->path,
                av_get_pix_fmt_name((enum AVPixelFormat)f->format), f->width, f->height,
                v->out_w, v->out_h);
        return -1;
    }
    int rows = sws_scale(v->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height,
                         v->conv_data, v->conv_linesize);
    if (rows != v->out_h) {
        set_err(err, err_len, "'%s': conversion to rgb24 failed", v->path);
        return -1;
    }
    return 0;
}

/* Frame time of a decoded frame, counted from the first one. Without a
 * timestamp or a frame rate it is simply the next frame time. */
static int64_t ff_slot(cbi_video *v, const AVFrame *f)
{
    int64_t ts = f->best_effort_timestamp;
    if (ts == AV_NOPTS_VALUE || v->frame_time.num <= 0) return v->next_slot;
    if (v->base_ts == AV_NOPTS_VALUE) v->base_ts = ts;
    return av_rescale_q_rnd(ts - v->base_ts, v->time_base, v->frame_time, AV_ROUND_NEAR_INF);
}

/* End of the stream in frame times, from the container's duration, unless
 * that is only a bitrate estimate. Lets a trailing repeated frame count. */
static void ff_set_end_slot(cbi_video *v)
{
    const AVStream *st = v->fmt->streams[v->stream_index];
    v->end_slot = -1;
    if (v->frame_time.num <= 0 || v->base_ts == AV_NOPTS_VALUE || st->duration == AV_NOPTS_VALUE ||
        v->fmt->duration_estimation_method == AVFMT_DURATION_FROM_BITRATE)
        return;
    int64_t start = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    v->end_slot = av_rescale_q_rnd(start + st->duration - v->base_ts, v->time_base, v->frame_time,
                                   AV_ROUND_NEAR_INF);
}

/* Advances to the next frame time and, if rgb is not NULL, writes its picture.
 * A decoded frame due at or before that time becomes the held picture;
 * otherwise (a gap, or the stream's tail) the held one is shown again.
 * Returns 1, 0 at the end, -1 on error. */
static int ff_next(cbi_video *v, uint8_t *rgb, char *err, size_t err_len)
{
    if (!v->pending && !v->decoder_eof) {
        int r = ff_decode_next(v, err, err_len);
        if (r < 0) return -1;
        if (r == 1) {
            v->pending = 1;
            v->pending_slot = ff_slot(v, v->frame);
        } else {
            ff_set_end_slot(v);
        }
    }
    if (v->pending && (!v->have_held || v->pending_slot <= v->next_slot)) {
        av_frame_unref(v->held);
        av_frame_move_ref(v->held, v->frame);
        v->pending = 0;
        v->have_held = 1;
        v->held_converted = 0;
    } else if (!v->pending && (!v->have_held || v->next_slot >= v->end_slot)) {
        return 0;
    }
    ++v->next_slot;
    if (!rgb) return 1;
    if (!v->held_converted) {
        if (ff_convert(v, err, err_len) != 0) return -1;
        v->held_converted = 1;
    }
    copy_out(v, rgb);
    return 1;
}

static int ff_open(cbi_video *v, const char *path, int out_w, int out_h, char *err,
                   size_t err_len)
{
    char msg[AV_ERROR_MAX_STRING_SIZE];
    int ret = avformat_open_input(&v->fmt, path, NULL, NULL);
    if (ret < 0) {
        set_err(err, err_len, "cannot open '%s': %s", path, av_err_text(ret, msg, sizeof msg));
        return -1;
    }
    ret = avformat_find_stream_info(v->fmt, NULL);
    if (ret < 0) {
        set_err(err, err_len, "cannot read stream information of '%s': %s", path,
                av_err_text(ret, msg, sizeof msg));
        return -1;
    }
    const AVCodec *codec = NULL;
    ret = av_find_best_stream(v->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (ret == AVERROR_STREAM_NOT_FOUND) {
        set_err(err, err_len, "no video stream in '%s'", path);
        return -1;
    }
    if (ret == AVERROR_DECODER_NOT_FOUND || (ret >= 0 && !codec)) {
        /* The best stream exists but this FFmpeg has no decoder for it; name
         * the codec of the first video stream, which is the one picked. */
        const char *name = "unknown";
        char tag[AV_FOURCC_MAX_STRING_SIZE] = "none";
        for (unsigned i = 0; i < v->fmt->nb_streams; ++i) {
            const AVCodecParameters *p = v->fmt->streams[i]->codecpar;
            if (p->codec_type == AVMEDIA_TYPE_VIDEO) {
                name = avcodec_get_name(p->codec_id);
                if (p->codec_tag) av_fourcc_make_string(tag, p->codec_tag);
                break;
            }
        }
        set_err(err, err_len,
                "unsupported codec '%s' (fourcc %s) in '%s': no decoder in this FFmpeg", name, tag,
                path);
        return -1;
    }
    if (ret < 0) {
        set_err(err, err_len, "cannot select a video stream in '%s': %s", path,
                av_err_text(ret, msg, sizeof msg));
        return -1;
    }
    v->stream_index = ret;
    AVStream *st = v->fmt->streams[ret];
    const AVCodecParameters *par = st->codecpar;
    v->time_base = st->time_base;
    AVRational rate = av_guess_frame_rate(v->fmt, st, NULL);
    v->frame_time = rate.num > 0 && rate.den > 0 ? av_inv_q(rate) : (AVRational){0, 1};
    if (!valid_side(par->width) || !valid_side(par->height)) {
        set_err(err, err_len, "bad frame size %dx%d in '%s'", par->width, par->height, path);
        return -1;
    }
    if (resolve_out_size(par->width, par->height, out_w, out_h, &v->out_w, &v->out_h, err,
                         err_len) != 0)
        return -1;

    v->dec = avcodec_alloc_context3(codec);
    v->pkt = av_packet_alloc();
    v->frame = av_frame_alloc();
    v->held = av_frame_alloc();
    if (!v->dec || !v->pkt || !v->frame || !v->held) {
        set_err(err, err_len, "out of memory opening '%s'", path);
        return -1;
    }
    ret = avcodec_parameters_to_context(v->dec, par);
    if (ret >= 0) ret = avcodec_open2(v->dec, codec, NULL);
    if (ret < 0) {
        set_err(err, err_len, "cannot open the %s decoder for '%s': %s", codec->name, path,
                av_err_text(ret, msg, sizeof msg));
        return -1;
    }
    return alloc_conv_buffer(v, err, err_len);
}

#else /* no FFmpeg */

static int ff_open(cbi_video *v, const char *path, int out_w, int out_h, char *err,
                   size_t err_len)
{
    set_err(err, err_len,
            "cannot decode '%s': built without FFmpeg (CBINFER_VIDEO=OFF); give raw rgb24 frames "
            "instead", path);
    return -1;
}

static int ff_next(cbi_video *v, uint8_t *rgb, char *err, size_t err_len)
{
    set_err(err, err_len, "built without FFmpeg");
    return -1;
}

#endif /* CBINFER_WITH_VIDEO */

/* ---------------------------------------------------------------- raw ---- */

/* Reads one raw frame into rows of the given stride. Returns 1, 0 at a clean
 * end (no byte of a new frame), -1 on a short frame or a read error. */
static int raw_read_rows(cbi_video *v, uint8_t *dst, size_t stride, char *err, size_t err_len)
{
    const size_t row = (size_t)v->in_w * 3;
    const size_t frame = row * (size_t)v->in_h;
    size_t got = 0;
    for (int y = 0; y < v->in_h; ++y) {
        size_t n = fread(dst + (size_t)y * stride, 1, row, v->fp);
        got += n;
        if (n != row) break;
    }
    if (got == frame) return 1;
    if (ferror(v->fp)) {
        set_err(err, err_len, "reading '%s' failed: %s", v->path, strerror(errno));
        return -1;
    }
    if (got == 0) return 0;
    set_err(err, err_len, "truncated frame in '%s': %zu of %zu bytes (%dx%d rgb24)", v->path, got,
            frame, v->in_w, v->in_h);
    return -1;
}

static int raw_open(cbi_video *v, const char *path, int in_w, int in_h, int out_w, int out_h,
                    char *err, size_t err_len)
{
    if (!valid_side(in_w) || !valid_side(in_h)) {
        set_err(err, err_len, "bad raw frame size %dx%d (each side 1..%d)", in_w, in_h,
                CBI_VIDEO_MAX_SIDE);
        return -1;
    }
    if (resolve_out_size(in_w, in_h, out_w, out_h, &v->out_w, &v->out_h, err, err_len) != 0)
        return -1;
    v->in_w = in_w;
    v->in_h = in_h;
    if (strcmp(path, "-") == 0) {
        v->fp = stdin;
        v->own_fp = 0;
    } else {
        v->fp = fopen(path, "rb");
        if (!v->fp) {
            set_err(err, err_len, "cannot open '%s': %s", path, strerror(errno));
            return -1;
        }
        v->own_fp = 1;
    }
    /* Same size: frames are read straight into the caller's buffer. Resizing
     * reads into an aligned buffer that swscale takes as its source. */
    if (v->out_w == in_w && v->out_h == in_h) return 0;
#ifndef CBINFER_WITH_VIDEO
    set_err(err, err_len, "resizing %dx%d frames to %dx%d needs FFmpeg (built with CBINFER_VIDEO=OFF)",
            in_w, in_h, v->out_w, v->out_h);
    return -1;
#else
    if (av_image_alloc(v->raw_data, v->raw_linesize, in_w, in_h, AV_PIX_FMT_RGB24,
                       CBI_VIDEO_ALIGN) < 0) {
        set_err(err, err_len, "out of memory for a %dx%d frame", in_w, in_h);
        return -1;
    }
    /* swscale's filters read a few bytes past the row end (with zero weights);
     * defined padding keeps that deterministic and valgrind-clean. */
    memset(v->raw_data[0], 0, (size_t)v->raw_linesize[0] * (size_t)in_h);
    v->sws = sws_getContext(in_w, in_h, AV_PIX_FMT_RGB24, v->out_w, v->out_h, AV_PIX_FMT_RGB24,
                            SWS_BILINEAR, NULL, NULL, NULL);
    if (!v->sws) {
        set_err(err, err_len, "cannot resize %dx%d to %dx%d", in_w, in_h, v->out_w, v->out_h);
        return -1;
    }
    return alloc_conv_buffer(v, err, err_len);
#endif
}

static int raw_read(cbi_video *v, uint8_t *rgb, char *err, size_t err_len)
{
#ifndef CBINFER_WITH_VIDEO
    return raw_read_rows(v, rgb, (size_t)v->in_w * 3, err, err_len);
#else
    if (!v->sws) return raw_read_rows(v, rgb, (size_t)v->in_w * 3, err, err_len);
    int r = raw_read_rows(v, v->raw_data[0], (size_t)v->raw_linesize[0], err, err_len);
    if (r != 1) return r;
    int rows = sws_scale(v->sws, (const uint8_t *const *)v->raw_data, v->raw_linesize, 0, v->in_h,
                         v->conv_data, v->conv_linesize);
    if (rows != v->out_h) {
        set_err(err, err_len, "'%s': resizing failed", v->path);
        return -1;
    }
    copy_out(v, rgb);
    return 1;
#endif
}

/* ------------------------------------------------------------- common ---- */

/* Drops the first `skip` frames. FFmpeg frames are decoded but not converted
 * (a held one is converted later if it repeats into the first frame read);
 * raw frames are read into a scratch frame (stdin cannot seek). Running out
 * first is an error, so a wrong start frame does not look like an empty video. */
static int skip_frames(cbi_video *v, int skip, char *err, size_t err_len)
{
    if (skip == 0) return 0;
    uint8_t *scratch = NULL;
    size_t stride = 0;
    if (v->kind == CBI_VIDEO_RAW) {
        stride = (size_t)v->in_w * 3;
        scratch = malloc(stride * (size_t)v->in_h);
        if (!scratch) {
            set_err(err, err_len, "out of memory skipping frames");
            return -1;
        }
    }
    int r = 1, done = 0;
    while (done < skip) {
        if (v->kind == CBI_VIDEO_FFMPEG) {
            r = ff_next(v, NULL, err, err_len);
        } else {
            r = raw_read_rows(v, scratch, stride, err, err_len);
        }
        if (r != 1) break;
        ++done;
    }
    free(scratch);
    if (r == 0)
        set_err(err, err_len, "cannot skip %d frames: '%s' has only %d", skip, v->path, done);
    return r == 1 ? 0 : -1;
}

static cbi_video *video_alloc(cbi_video_kind kind, const char *path)
{
    cbi_video *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->kind = kind;
#ifdef CBINFER_WITH_VIDEO
    v->stream_index = -1;
    v->base_ts = AV_NOPTS_VALUE;
    v->end_slot = -1;
#endif
    snprintf(v->path, sizeof v->path, "%s", strcmp(path, "-") == 0 ? "stdin" : path);
    return v;
}

int cbi_video_open(const char *path, int out_w, int out_h, int skip, cbi_video **out, char *err,
                   size_t err_len)
{
    if (out) *out = NULL;
    if (!path || !out) {
        set_err(err, err_len, "cbi_video_open: NULL argument");
        return -1;
    }
    if (skip < 0) {
        set_err(err, err_len, "bad skip %d (must be >= 0)", skip);
        return -1;
    }
    cbi_video *v = video_alloc(CBI_VIDEO_FFMPEG, path);
    if (!v) {
        set_err(err, err_len, "out of memory");
        return -1;
    }
    if (ff_open(v, path, out_w, out_h, err, err_len) != 0 ||
        skip_frames(v, skip, err, err_len) != 0) {
        cbi_video_close(v);
        return -1;
    }
    *out = v;
    return 0;
}

int cbi_video_open_raw(const char *path, int in_w, int in_h, int out_w, int out_h, int skip,
                       cbi_video **out, char *err, size_t err_len)
{
    if (out) *out = NULL;
    if (!path || !out) {
        set_err(err, err_len, "cbi_video_open_raw: NULL argument");
        return -1;
    }
    if (skip < 0) {
        set_err(err, err_len, "bad skip %d (must be >= 0)", skip);
        return -1;
    }
    cbi_video *v = video_alloc(CBI_VIDEO_RAW, path);
    if (!v) {
        set_err(err, err_len, "out of memory");
        return -1;
    }
    if (raw_open(v, path, in_w, in_h, out_w, out_h, err, err_len) != 0 ||
        skip_frames(v, skip, err, err_len) != 0) {
        cbi_video_close(v);
        return -1;
    }
    *out = v;
    return 0;
}

int cbi_video_read(cbi_video *v, uint8_t *rgb, char *err, size_t err_len)
{
    if (!v || !rgb) {
        set_err(err, err_len, "cbi_video_read: NULL argument");
        return -1;
    }
    if (v->kind == CBI_VIDEO_RAW) return raw_read(v, rgb, err, err_len);
    return ff_next(v, rgb, err, err_len);
}
