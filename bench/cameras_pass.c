/*
 * cbinfer-bench --cameras N: many cameras in one process. The N cameras are
 * the input from N start frames spread evenly over it (camera j from
 * j * (L - T) / (N - 1), L the input's frames after --skip, T the frames each
 * camera gets), decoded once into memory so that every side gets the same
 * frames. Then, step by step (one frame of every camera), by mode:
 *   dense        a dense batch (one convolution over N images per layer);
 *   change-based N streams pushed one after another (independent), and a
 *                batch of N (one GEMM per layer over every camera's rows);
 * compare mode runs all three. Throughput is camera-frames per second over
 * the steps after --warmup; the batch's outputs are checked against the
 * independent streams' at every timed step.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* Frames in memory beyond which the pass asks for fewer --frames. */
#define CAMERAS_MAX_BYTES ((size_t)2 << 30)

typedef struct cameras {
    int n;
    long long steps;   /* frames per camera, warm-up included */
    long long *starts; /* n */
    size_t frame_bytes;
    uint8_t *rgb;      /* camera j's frame t at (j * steps + t) * frame_bytes */
    const uint8_t **ptrs; /* n: this step's frames */
    cbinfer_batch_t *dense, *batch;
    cbinfer_stream_t **alone; /* n independent change-based streams, or NULL */
} cameras;

static void cameras_free(cameras *c)
{
    cbinfer_batch_destroy(c->dense);
    cbinfer_batch_destroy(c->batch);
    for (int j = 0; c->alone && j < c->n; ++j) cbinfer_stream_destroy(c->alone[j]);
    free(c->alone);
    free(c->starts);
    free(c->rgb);
    free(c->ptrs);
}

/* Frames of the input after --skip (one decode of it). */
static int count_frames(bench *b, long long *count)
{
    cbi_video *v;
    if (bench_video_open(b, b->args.skip, &v) != 0) return 1;
    char err[512];
    int r;
    *count = 0;
    while ((r = cbi_video_read(v, b->rgb, err, sizeof err)) > 0) ++*count;
    cbi_video_close(v);
    return r < 0 ? bench_error("--cameras: %s", err) : 0;
}

/* The start frames and the frames themselves: one decode from --skip to the
 * last camera's last frame, each frame copied to the cameras it belongs to. */
static int load_frames(bench *b, cameras *c)
{
    const cbi_bench_args *a = &b->args;
    long long total;
    if (count_frames(b, &total) != 0) return 1;
    c->steps = a->frames > 0 ? a->frames + a->warmup : total / c->n;
    if (c->steps <= a->warmup || c->steps > total)
        return bench_error("--cameras %d: the input has %lld frames after --skip %d, and each "
                           "camera needs %lld (--warmup %d and --frames)",
                           c->n, total, a->skip, c->steps > a->warmup ? c->steps : a->warmup + 1,
                           a->warmup);
    c->frame_bytes = (size_t)b->width * b->height * 3;
    const size_t bytes = c->frame_bytes * (size_t)c->steps * (size_t)c->n;
    if (bytes > CAMERAS_MAX_BYTES)
        return bench_error("--cameras %d: %lld frames each take %.1f GiB in memory; ask for "
                           "fewer --frames",
                           c->n, c->steps, bytes / 1073741824.0);
    c->starts = calloc((size_t)c->n, sizeof *c->starts);
    c->rgb = malloc(bytes);
    c->ptrs = calloc((size_t)c->n, sizeof *c->ptrs);
    if (!c->starts || !c->rgb || !c->ptrs) return bench_error("out of memory for the cameras");
    for (int j = 0; j < c->n; ++j)
        c->starts[j] = c->n > 1 ? (long long)j * (total - c->steps) / (c->n - 1) : 0;
    cbi_video *v;
    if (bench_video_open(b, a->skip, &v) != 0) return 1;
    char err[512];
    const long long end = c->starts[c->n - 1] + c->steps;
    for (long long i = 0; i < end; ++i) {
        const int r = cbi_video_read(v, b->rgb, err, sizeof err);
        if (r <= 0) {
            cbi_video_close(v);
            return bench_error("--cameras: frame %lld: %s", i, r < 0 ? err : "end of input");
        }
        for (int j = 0; j < c->n; ++j)
            if (i >= c->starts[j] && i < c->starts[j] + c->steps)
                memcpy(c->rgb + ((size_t)j * c->steps + (size_t)(i - c->starts[j])) * c->frame_bytes,
                       b->rgb, c->frame_bytes);
        bench_progress_draw(b, "cameras: decoding", i + 1, end);
    }
    bench_progress_clear(b);
    cbi_video_close(v);
    return 0;
}

static int make_batch(bench *b, cameras *c, cbinfer_mode mode, double scale, cbinfer_batch_t **out)
{
    const cbi_bench_args *a = &b->args;
    char err[1024] = "";
    const cbinfer_status st =
        cbinfer_batch_create(b->net, c->n, b->width, b->height, (cbinfer_backend)a->backend, mode,
                             (cbinfer_precision)a->precision, out, err, sizeof err);
    if (st != CBINFER_STATUS_SUCCESS)
        return bench_error("--cameras: a batch of %d %dx%d streams: %s%s%s", c->n, b->width,
                           b->height, cbinfer_status_string(st), *err ? ": " : "", err);
    for (int j = 0; j < c->n; ++j) {
        cbinfer_stream_t *s = cbinfer_batch_stream(*out, j);
        if (bench_configure_stream(b, s, mode) != 0 ||
            bench_set_param(s, CBINFER_PARAM_THRESHOLD_SCALE, scale, "threshold scale") != 0)
            return 1;
    }
    /* The batch's own convolutions take --threads too. */
    if (cbinfer_batch_set_param(*out, CBINFER_PARAM_THREADS, a->threads) != CBINFER_STATUS_SUCCESS)
        return bench_error("--cameras: --threads: %s", cbinfer_batch_last_error(*out));
    return 0;
}

static int make_streams(bench *b, cameras *c, cbinfer_mode mode, double scale)
{
    const cbi_bench_args *a = &b->args;
    c->alone = calloc((size_t)c->n, sizeof *c->alone);
    if (!c->alone) return bench_error("out of memory");
    for (int j = 0; j < c->n; ++j) {
        char err[1024] = "";
        const cbinfer_status st =
            cbinfer_stream_create(b->net, b->width, b->height, (cbinfer_backend)a->backend, mode,
                                  (cbinfer_precision)a->precision, &c->alone[j], err, sizeof err);
        if (st != CBINFER_STATUS_SUCCESS)
            return bench_error("--cameras: stream %d: %s%s%s", j, cbinfer_status_string(st),
                               *err ? ": " : "", err);
        if (bench_configure_stream(b, c->alone[j], mode) != 0 ||
            bench_set_param(c->alone[j], CBINFER_PARAM_THRESHOLD_SCALE, scale, "threshold scale") != 0)
            return 1;
    }
    return 0;
}

static int push_batch(const bench *b, const cameras *c, cbinfer_batch_t *batch, long long t,
                      double *ms)
{
    const double t0 = bench_now_ms();
    const cbinfer_status st = cbinfer_batch_push_rgb8(batch, c->ptrs, b->width, b->height,
                                                      (size_t)b->width * 3);
    *ms += bench_now_ms() - t0;
    return st == CBINFER_STATUS_SUCCESS
               ? 0
               : bench_error("--cameras: step %lld: %s: %s", t, cbinfer_status_string(st),
                             cbinfer_batch_last_error(batch));
}

/* Every output of stream x against the same of stream y: the largest
 * difference into *max_abs (a value that is not finite on one side only
 * makes it infinite). */
static int compare_outputs(bench *b, cbinfer_stream_t *x, cbinfer_stream_t *y, double *max_abs)
{
    for (int o = 0; o < b->n_out; ++o) {
        const size_t len = b->out_off[o + 1] - b->out_off[o];
        cbinfer_status st = cbinfer_stream_read_output_at(x, o, b->out_cb, len);
        if (st == CBINFER_STATUS_SUCCESS) st = cbinfer_stream_read_output_at(y, o, b->out_dense, len);
        if (st != CBINFER_STATUS_SUCCESS) return bench_stream_error(x, "--cameras: output", st);
        for (size_t i = 0; i < len; ++i) {
            const float p = b->out_cb[i], q = b->out_dense[i];
            if (isnan(p) && isnan(q)) continue;
            const double d = fabs((double)p - (double)q);
            if (!(d <= *max_abs)) *max_abs = isnan(d) ? INFINITY : d;
        }
    }
    return 0;
}

int bench_cameras_pass(bench *b, double scale, cbi_cameras_rec *out)
{
    const cbi_bench_args *a = &b->args;
    cameras c;
    memset(&c, 0, sizeof c);
    c.n = a->cameras;
    *out = (cbi_cameras_rec){.n = c.n, .dense_fps = NAN, .independent_fps = NAN,
                             .batched_fps = NAN, .batched_vs_independent_max_abs = NAN};
    const int compare = a->mode == CBI_BENCH_MODE_COMPARE;
    const int dense = compare || a->mode == CBINFER_MODE_DENSE;
    const int change = a->mode != CBINFER_MODE_DENSE;
    const cbinfer_mode cb_mode = compare ? CBINFER_MODE_CBINFER : (cbinfer_mode)a->mode;
    int rc = load_frames(b, &c);
    if (rc == 0 && dense) rc = make_batch(b, &c, CBINFER_MODE_DENSE, scale, &c.dense);
    if (rc == 0 && change) rc = make_batch(b, &c, cb_mode, scale, &c.batch);
    if (rc == 0 && change) rc = make_streams(b, &c, cb_mode, scale);
    double dense_ms = 0, alone_ms = 0, batch_ms = 0, max_abs = 0;
    char label[64];
    snprintf(label, sizeof label, "cameras: %d streams", c.n);
    for (long long t = 0; rc == 0 && t < c.steps; ++t) {
        const int timed = t >= a->warmup;
        double ms = 0;
        for (int j = 0; j < c.n; ++j)
            c.ptrs[j] = c.rgb + ((size_t)j * c.steps + (size_t)t) * c.frame_bytes;
        if (c.dense) rc = push_batch(b, &c, c.dense, t, &ms);
        if (timed) dense_ms += ms;
        if (rc == 0 && change) {
            ms = 0;
            for (int j = 0; j < c.n && rc == 0; ++j)
                rc = bench_push_rgb(c.alone[j], c.ptrs[j], b->width, b->height, t, &ms);
            if (timed) alone_ms += ms;
            ms = 0;
            if (rc == 0) rc = push_batch(b, &c, c.batch, t, &ms);
            if (timed) batch_ms += ms;
            for (int j = 0; j < c.n && rc == 0 && timed; ++j)
                rc = compare_outputs(b, cbinfer_batch_stream(c.batch, j), c.alone[j], &max_abs);
        }
        bench_progress_draw(b, label, t + 1, c.steps);
    }
    bench_progress_clear(b);
    if (rc == 0) {
        const double frames = (double)c.n * (double)(c.steps - a->warmup);
        out->steps = c.steps - a->warmup;
        if (dense) out->dense_fps = frames / (dense_ms * 1e-3);
        if (change) {
            out->independent_fps = frames / (alone_ms * 1e-3);
            out->batched_fps = frames / (batch_ms * 1e-3);
            out->batched_vs_independent_max_abs = max_abs;
        }
        /* The report keeps the start frames; the rest goes. */
        out->starts = c.starts;
        c.starts = NULL;
    }
    cameras_free(&c);
    return rc;
}
