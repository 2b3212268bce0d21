/*
 * The run helpers of cbinfer-bench's passes (bench.h): errors, the input
 * (video, raw frames or one .npy tensor, reopened for every pass), the
 * frame loop with its progress bar, and pushes with their wall time. The
 * timed run (cbinfer_bench.c), the profiling pass (profile_pass.c) and the
 * break-even calibration (calibrate.c) all call into this file, which calls
 * none of them back.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "npy.h"

int bench_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cbinfer-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

/* A failed call on a stream: the status text plus the stream's detail. */
int bench_stream_error(const cbinfer_stream_t *s, const char *what, cbinfer_status st)
{
    const char *detail = s ? cbinfer_stream_last_error(s) : "";
    return bench_error("%s: %s%s%s", what, cbinfer_status_string(st), *detail ? ": " : "", detail);
}

double bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

const char *bench_backend_name(int backend)
{
    return backend == CBINFER_BACKEND_CUDA ? "cuda" : "cpu";
}

/* ------------------------------------------------------------ progress ---- */

void bench_progress_clear(bench *b)
{
    if (!b->progress_shown) return;
    fputs("\r\033[K", stderr);
    b->progress_shown = 0;
}

void bench_progress_draw(bench *b, const char *label, long long done, long long total)
{
    if (!b->progress) return;
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    int fill = total > 0 ? (int)(WIDTH * (done < total ? done : total) / total) : 0;
    for (int i = 0; i < WIDTH; ++i) bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    if (total > 0)
        fprintf(stderr, "\r\033[K%s [%s] %lld/%lld", label, bar, done, total);
    else
        fprintf(stderr, "\r\033[K%s %lld frames", label, done);
    fflush(stderr);
    b->progress_shown = 1;
}

/* --------------------------------------------------------------- input ---- */

int bench_video_open(const bench *b, int skip, cbi_video **out)
{
    const cbi_bench_args *a = &b->args;
    char err[512];
    const int r =
        a->input == CBI_BENCH_INPUT_VIDEO
            ? cbi_video_open(a->input_path, a->resize_w, a->resize_h, skip, out, err, sizeof err)
            : cbi_video_open_raw(a->input_path, a->raw_w, a->raw_h, a->resize_w, a->resize_h,
                                 skip, out, err, sizeof err);
    return r == 0 ? 0 : bench_error("%s", err);
}

/* Opens (or reopens, for another pass) the input at --skip. The first call
 * sets the frame size; stdin can be read only once. */
int bench_source_open(bench *b)
{
    char err[512];
    const cbi_bench_args *a = &b->args;
    int first = b->input_opens++ == 0;
    if (b->dump_frames && b->dumped_frames > 0) {
        /* Frames are dumped from the first pass only. */
        if (fclose(b->dump_frames) != 0) {
            b->dump_frames = NULL;
            return bench_error("--dump-frames: closing '%s' failed", a->dump_frames);
        }
        b->dump_frames = NULL;
    }
    if (first && a->dump_frames && a->input != CBI_BENCH_INPUT_NPY) {
        b->dump_frames = fopen(a->dump_frames, "wb");
        if (!b->dump_frames)
            return bench_error("--dump-frames: cannot write '%s'", a->dump_frames);
    }
    if (a->input == CBI_BENCH_INPUT_NPY) {
        if (!first) return 0;
        int64_t shape[CBI_NPY_MAX_DIMS];
        int ndim = 0;
        if (cbi_npy_read_f32(a->input_path, &b->npy_data, shape, &ndim, err, sizeof err) != 0)
            return bench_error("--input-npy: %s", err);
        if (ndim != 4 || shape[0] != 1 || shape[1] < 1 || shape[2] < 1 || shape[3] < 1 ||
            shape[1] > 1 << 16 || shape[2] > 1 << 16 || shape[3] > 1 << 16)
            return bench_error("--input-npy: '%s' must hold one NCHW tensor of shape (1, C, H, W)",
                         a->input_path);
        b->in_c = (int)shape[1];
        b->height = (int)shape[2];
        b->width = (int)shape[3];
        return 0;
    }
    /* The input is open and no frame has been read since: the pass starts
     * there. This is what lets stdin (--raw WxH:-) serve the first pass. */
    if (b->video && b->read_since_open == 0) return 0;
    if (!first && a->input == CBI_BENCH_INPUT_RAW && strcmp(a->input_path, "-") == 0)
        return bench_error("stdin can be read only once; --sweep, --per-layer and --calibrate need "
                     "a file");
    cbi_video_close(b->video);
    b->video = NULL;
    if (bench_video_open(b, a->skip, &b->video) != 0) return 1;
    b->read_since_open = 0;
    if (first) {
        cbi_video_size(b->video, &b->width, &b->height);
        b->rgb = malloc((size_t)b->width * (size_t)b->height * 3);
        if (!b->rgb) return bench_error("out of memory for a %dx%d frame", b->width, b->height);
    }
    return 0;
}

/* Reads frame k of the pass: 1 read, 0 end of input, -1 error (reported). */
static int source_next(bench *b, long long k)
{
    if (b->args.input == CBI_BENCH_INPUT_NPY) return k == 0;
    char err[512];
    int r = cbi_video_read(b->video, b->rgb, err, sizeof err);
    if (r < 0) {
        bench_error("frame %lld: %s", k, err);
        return -1;
    }
    const size_t bytes = (size_t)b->width * b->height * 3;
    if (r > 0) b->read_since_open++;
    if (r > 0 && b->dump_frames) {
        if (fwrite(b->rgb, 1, bytes, b->dump_frames) != bytes) {
            bench_error("--dump-frames: write failed at frame %lld", k);
            return -1;
        }
        b->dumped_frames++;
    }
    return r;
}

/* Frames one pass reads: warm-up plus --frames; -1 = the whole input. */
static long long pass_length(const bench *b)
{
    if (b->args.input == CBI_BENCH_INPUT_NPY) return 1;
    return b->args.frames < 0 ? -1 : b->args.frames + b->args.warmup;
}

/* Pushes the current frame into s; ms gets the wall time of the call. */
int bench_push(bench *b, cbinfer_stream_t *s, long long k, double *ms)
{
    double t0 = bench_now_ms();
    cbinfer_status st =
        b->args.input == CBI_BENCH_INPUT_NPY
            ? cbinfer_stream_push_nchw(s, b->npy_data, b->in_c, b->height, b->width)
            : cbinfer_stream_push_rgb8(s, b->rgb, b->width, b->height, (size_t)b->width * 3);
    *ms = bench_now_ms() - t0;
    if (st != CBINFER_STATUS_SUCCESS) {
        char what[64];
        snprintf(what, sizeof what, "frame %lld", k);
        return bench_stream_error(s, what, st);
    }
    return 0;
}

int bench_push_rgb(cbinfer_stream_t *s, const uint8_t *rgb, int width, int height, long long k,
                   double *ms)
{
    const double t0 = bench_now_ms();
    const cbinfer_status st = cbinfer_stream_push_rgb8(s, rgb, width, height, (size_t)width * 3);
    *ms += bench_now_ms() - t0;
    if (st == CBINFER_STATUS_SUCCESS) return 0;
    char what[64];
    snprintf(what, sizeof what, "frame %lld", k);
    return bench_stream_error(s, what, st);
}

/* Calls fn for every frame of one pass, after reopening the input. */
int bench_for_each_frame(bench *b, const char *label, bench_frame_fn fn, void *ctx)
{
    if (bench_source_open(b) != 0) return 1;
    long long total = pass_length(b);
    long long k = 0;
    for (; total < 0 || k < total; ++k) {
        int r = source_next(b, k);
        if (r < 0) return 1;
        if (r == 0) break;
        if (fn(b, k, k >= b->args.warmup, ctx) != 0) {
            bench_progress_clear(b);
            return 1;
        }
        bench_progress_draw(b, label, k + 1, total);
    }
    bench_progress_clear(b);
    if (k <= b->args.warmup)
        return bench_error("no frames to time in '%s' (after --skip %d and --warmup %d)",
                     b->args.input_path, b->args.skip, b->args.warmup);
    return 0;
}

/* ------------------------------------------------------------ streams ---- */

int bench_set_param(cbinfer_stream_t *s, cbinfer_param key, double v, const char *what)
{
    cbinfer_status st = cbinfer_stream_set_param(s, key, v);
    return st == CBINFER_STATUS_SUCCESS ? 0 : bench_stream_error(s, what, st);
}

int bench_reset(cbinfer_stream_t *s)
{
    cbinfer_status st = s ? cbinfer_stream_reset(s) : CBINFER_STATUS_SUCCESS;
    return st == CBINFER_STATUS_SUCCESS ? 0 : bench_stream_error(s, "reset", st);
}

int bench_configure_stream(bench *b, cbinfer_stream_t *s, cbinfer_mode mode)
{
    const cbi_bench_args *a = &b->args;
    cbinfer_status st = cbinfer_stream_set_threshold_all(s, a->threshold);
    if (st != CBINFER_STATUS_SUCCESS) return bench_stream_error(s, "--threshold", st);
    if (mode != CBINFER_MODE_DENSE && strcmp(a->policy_spec, "cbinfer") != 0) {
        st = cbinfer_stream_set_policy(s, NULL, a->policy_spec);
        if (st != CBINFER_STATUS_SUCCESS) return bench_stream_error(s, "--policy", st);
    }
    if (mode != CBINFER_MODE_DENSE && a->thresholds_file) {
        st = cbinfer_stream_load_thresholds(s, a->thresholds_file);
        if (st != CBINFER_STATUS_SUCCESS) return bench_stream_error(s, "--thresholds", st);
    }
    if (mode != CBINFER_MODE_DENSE && a->break_even_file) {
        st = cbinfer_stream_load_break_even(s, a->break_even_file);
        if (st != CBINFER_STATUS_SUCCESS) return bench_stream_error(s, "--break-even", st);
    }
    if (a->reuse_1x1 && bench_set_param(s, CBINFER_PARAM_REUSE_1X1_INDICES, 1.0, "--reuse-1x1") != 0)
        return 1;
    if (a->stats && bench_set_param(s, CBINFER_PARAM_COLLECT_STATS, 1.0, "--stats") != 0) return 1;
    if (bench_set_param(s, CBINFER_PARAM_THREADS, a->threads, "--threads") != 0) return 1;
    if (bench_set_param(s, CBINFER_PARAM_THRESHOLD_SCALE, a->threshold_scale, "--threshold-scale") != 0)
        return 1;
    return 0;
}
