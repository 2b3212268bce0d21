/*
 * cbinfer-bench: runs an ONNX model over a video (or raw frames, or one .npy
 * tensor) with cbinfer and reports, per frame, the share of recomputed conv
 * output pixels and the time of the push call, then a summary and per-layer
 * changed shares (and step times with --stats).
 *
 * stdout: one line per frame, then the summary and the per-layer table.
 * stderr: the configuration and the chosen backend, and errors as one line
 * "cbinfer-bench: <message>". Exit status 0, 1 (runtime error), 2 (usage).
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, mkdir */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "bench_args.h"
#include "cbinfer.h"
#include "npy.h"
#include "video.h"

/* Per-layer sums over the frames that count (see layer_acc_frame). */
typedef struct {
    const char *name, *op; /* owned by the network */
    double share_sum;      /* changed_px / total_px */
    int share_n;
    double step_ms_sum[CBINFER_STEP_COUNT];
    double total_ms_sum;
    int dense_frames; /* frames in which the layer ran its dense path */
    int n;
} layer_acc;

typedef struct {
    cbi_bench_args args;
    cbinfer_network_t *net;
    cbinfer_stream_t *stream;
    cbi_video *video;
    uint8_t *rgb;
    float *npy_data;
    float *out;
    size_t out_count;
    int out_c, out_h, out_w;
    int width, height;
    double *frame_ms;     /* per processed frame */
    double *frame_share;  /* cbinfer_frame_stats.changed_share */
    long long frames_cap, frames_done;
    layer_acc *layers;    /* frames 1.. (after the dense initialisation) */
    layer_acc *layers0;   /* frame 0, shown only when it is the only frame */
    int layer_count;
} bench;

static int error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cbinfer-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

/* A failed call on the stream: the status text plus the stream's detail. */
static int stream_error(const bench *b, const char *what, cbinfer_status st)
{
    const char *detail = b->stream ? cbinfer_stream_last_error(b->stream) : "";
    return error("%s: %s%s%s", what, cbinfer_status_string(st), *detail ? ": " : "", detail);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* mkdir -p: creates every missing component of dir. */
static int make_dirs(const char *dir)
{
    char path[4096];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof path) return error("--dump-output: bad directory '%s'", dir);
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; ++i) {
        if (path[i] != '/' && path[i] != '\0') continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return error("cannot create directory '%s': %s", path, strerror(errno));
        path[i] = saved;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return error("--dump-output: '%s' is not a directory", dir);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, long long n)
{
    if (n <= 0) return 0.0;
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) return 0.0;
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

static double mean(const double *v, long long n)
{
    double s = 0.0;
    for (long long i = 0; i < n; ++i) s += v[i];
    return n > 0 ? s / (double)n : 0.0;
}

static const char *backend_name(int backend)
{
    return backend == CBINFER_BACKEND_CUDA ? "cuda" : "cpu";
}

static const char *mode_name(int mode)
{
    return mode == CBINFER_MODE_DENSE ? "dense" : mode == CBINFER_MODE_CBINFER_FF ? "cbinfer-ff"
                                                                                  : "cbinfer";
}

/* Adds the last frame's layer statistics into acc. */
static int layer_acc_frame(bench *b, layer_acc *acc)
{
    for (int i = 0; i < b->layer_count; ++i) {
        cbinfer_layer_stats ls;
        cbinfer_status st = cbinfer_stream_layer_stats(b->stream, i, &ls);
        if (st != CBINFER_STATUS_SUCCESS) return stream_error(b, "layer statistics", st);
        layer_acc *a = &acc[i];
        a->name = ls.name;
        a->op = ls.op;
        if (ls.total_px > 0) {
            a->share_sum += (double)ls.changed_px / (double)ls.total_px;
            a->share_n++;
        }
        for (int s = 0; s < CBINFER_STEP_COUNT; ++s) a->step_ms_sum[s] += ls.step_ms[s];
        a->total_ms_sum += ls.total_ms;
        a->dense_frames += ls.ran_dense != 0;
        a->n++;
    }
    return 0;
}

static int record_frame(bench *b, double ms, double share)
{
    if (b->frames_done == b->frames_cap) {
        long long cap = b->frames_cap ? b->frames_cap * 2 : 256;
        double *t = realloc(b->frame_ms, (size_t)cap * sizeof *t);
        if (!t) return error("out of memory");
        b->frame_ms = t;
        double *s = realloc(b->frame_share, (size_t)cap * sizeof *s);
        if (!s) return error("out of memory");
        b->frame_share = s;
        b->frames_cap = cap;
    }
    b->frame_ms[b->frames_done] = ms;
    b->frame_share[b->frames_done] = share;
    b->frames_done++;
    return 0;
}

/* Statistics, optional dump and the per-frame line of the frame just pushed. */
static int after_push(bench *b, long long k, double ms)
{
    cbinfer_frame_stats fs;
    cbinfer_status st = cbinfer_stream_frame_stats(b->stream, &fs);
    if (st != CBINFER_STATUS_SUCCESS) return stream_error(b, "frame statistics", st);
    if (record_frame(b, ms, fs.changed_share) != 0) return 1;
    if (layer_acc_frame(b, k == 0 ? b->layers0 : b->layers) != 0) return 1;

    if (b->args.dump_dir) {
        st = cbinfer_stream_read_output(b->stream, b->out, b->out_count);
        if (st != CBINFER_STATUS_SUCCESS) return stream_error(b, "reading the output", st);
        char path[4200], err[512];
        snprintf(path, sizeof path, "%s/frame_%05lld.npy", b->args.dump_dir, k);
        const int64_t shape[4] = {1, b->out_c, b->out_h, b->out_w};
        if (cbi_npy_write_f32(path, b->out, shape, 4, err, sizeof err) != 0)
            return error("%s", err);
    }
    printf("frame %6lld  changed %7.3f%%  %10.3f ms\n", k, 100.0 * fs.changed_share, ms);
    return 0;
}

static int push_rgb_frames(bench *b)
{
    char err[512];
    for (long long k = 0; b->args.frames < 0 || k < b->args.frames; ++k) {
        int r = cbi_video_read(b->video, b->rgb, err, sizeof err);
        if (r < 0) return error("frame %lld: %s", k, err);
        if (r == 0) break;
        double t0 = now_ms();
        cbinfer_status st =
            cbinfer_stream_push_rgb8(b->stream, b->rgb, b->width, b->height, (size_t)b->width * 3);
        double ms = now_ms() - t0;
        if (st != CBINFER_STATUS_SUCCESS) {
            snprintf(err, sizeof err, "frame %lld", k);
            return stream_error(b, err, st);
        }
        if (after_push(b, k, ms) != 0) return 1;
    }
    if (b->frames_done == 0)
        return error("no frames to process in '%s'%s", b->args.input_path,
                     b->args.skip ? " after --skip" : "");
    return 0;
}

static void print_summary(const bench *b)
{
    long long n = b->frames_done;
    double m = mean(b->frame_ms, n);
    printf("summary: %lld frames, mean %.3f ms, median %.3f ms, %.2f fps, mean changed %.3f%%\n", n,
           m, median(b->frame_ms, n), m > 0 ? 1e3 / m : 0.0, 100.0 * mean(b->frame_share, n));
    if (n > 1) {
        /* Frame 0 runs dense and initialises the state: show the steady state
         * apart so it does not skew the change-based numbers. */
        double ms = mean(b->frame_ms + 1, n - 1);
        printf("steady state (frames 1..%lld): mean %.3f ms, median %.3f ms, %.2f fps, "
               "mean changed %.3f%%\n",
               n - 1, ms, median(b->frame_ms + 1, n - 1), ms > 0 ? 1e3 / ms : 0.0,
               100.0 * mean(b->frame_share + 1, n - 1));
    }
}

static void print_layers(const bench *b)
{
    if (b->layer_count <= 0) return;
    const layer_acc *acc = b->frames_done > 1 ? b->layers : b->layers0;
    if (b->frames_done > 1)
        printf("per layer, mean over frames 1..%lld:\n", b->frames_done - 1);
    else
        printf("per layer, frame 0 only (it runs dense):\n");

    int name_w = 5;
    for (int i = 0; i < b->layer_count; ++i) {
        int l = acc[i].name ? (int)strlen(acc[i].name) : 0;
        if (l > name_w) name_w = l;
    }
    if (name_w > 48) name_w = 48;
    printf("  %-*s %-12s %9s %7s", name_w, "layer", "op", "changed%", "dense");
    if (b->args.stats) {
        for (int s = 0; s < CBINFER_STEP_COUNT; ++s)
            printf(" %13s", cbinfer_step_name((cbinfer_step)s));
        printf(" %13s", "total");
    }
    printf("\n");
    for (int i = 0; i < b->layer_count; ++i) {
        const layer_acc *a = &acc[i];
        printf("  %-*.*s %-12s ", name_w, name_w, a->name ? a->name : "?", a->op ? a->op : "?");
        if (a->share_n > 0)
            printf("%9.3f", 100.0 * a->share_sum / a->share_n);
        else
            printf("%9s", "-");
        printf(" %3d/%-3d", a->dense_frames, a->n);
        if (b->args.stats) {
            /* Mean time of each step per frame, in ms. */
            for (int s = 0; s < CBINFER_STEP_COUNT; ++s)
                printf(" %13.4f", a->n ? a->step_ms_sum[s] / a->n : 0.0);
            printf(" %13.4f", a->n ? a->total_ms_sum / a->n : 0.0);
        }
        printf("\n");
    }
    if (b->args.stats) printf("  (step columns: mean ms per frame)\n");
}

/* Opens the input and sets the frame size the stream is created for. */
static int open_input(bench *b)
{
    char err[512];
    const cbi_bench_args *a = &b->args;
    if (a->input == CBI_BENCH_INPUT_NPY) {
        int64_t shape[CBI_NPY_MAX_DIMS];
        int ndim = 0;
        if (cbi_npy_read_f32(a->input_path, &b->npy_data, shape, &ndim, err, sizeof err) != 0)
            return error("--input-npy: %s", err);
        if (ndim != 4 || shape[0] != 1 || shape[1] < 1 || shape[2] < 1 || shape[3] < 1 ||
            shape[1] > 1 << 16 || shape[2] > 1 << 16 || shape[3] > 1 << 16)
            return error("--input-npy: '%s' must hold one NCHW tensor of shape (1, C, H, W)",
                         a->input_path);
        b->out_c = (int)shape[1]; /* input channels until the output is known */
        b->height = (int)shape[2];
        b->width = (int)shape[3];
        return 0;
    }
    int r = a->input == CBI_BENCH_INPUT_VIDEO
                ? cbi_video_open(a->input_path, a->resize_w, a->resize_h, a->skip, &b->video, err,
                                 sizeof err)
                : cbi_video_open_raw(a->input_path, a->raw_w, a->raw_h, a->resize_w, a->resize_h,
                                     a->skip, &b->video, err, sizeof err);
    if (r != 0) return error("%s", err);
    cbi_video_size(b->video, &b->width, &b->height);
    b->rgb = malloc((size_t)b->width * (size_t)b->height * 3);
    if (!b->rgb) return error("out of memory for a %dx%d frame", b->width, b->height);
    return 0;
}

static int choose_backend(bench *b)
{
    if (b->args.backend == CBI_BENCH_BACKEND_AUTO) {
        b->args.backend = cbinfer_backend_available(CBINFER_BACKEND_CUDA) == CBINFER_STATUS_SUCCESS
                              ? CBINFER_BACKEND_CUDA
                              : CBINFER_BACKEND_CPU;
        fprintf(stderr, "backend: %s (auto: CUDA %s)\n", backend_name(b->args.backend),
                b->args.backend == CBINFER_BACKEND_CUDA ? "available" : "unavailable");
    } else {
        cbinfer_status st = cbinfer_backend_available((cbinfer_backend)b->args.backend);
        if (st != CBINFER_STATUS_SUCCESS)
            return error("--backend %s: %s", backend_name(b->args.backend),
                         cbinfer_status_string(st));
        fprintf(stderr, "backend: %s\n", backend_name(b->args.backend));
    }
    return 0;
}

static int run(bench *b)
{
    const cbi_bench_args *a = &b->args;
    char err[1024] = "";
    /* The input first: a wrong path is reported before a slow model load. */
    if (open_input(b) != 0) return 1;
    cbinfer_status st = cbinfer_network_load(a->model, &b->net, err, sizeof err);
    if (st != CBINFER_STATUS_SUCCESS)
        return error("loading '%s': %s%s%s", a->model, cbinfer_status_string(st), *err ? ": " : "",
                     err);
    if (choose_backend(b) != 0) return 1;
    if (a->dump_dir && make_dirs(a->dump_dir) != 0) return 1;

    err[0] = '\0';
    st = cbinfer_stream_create(b->net, b->width, b->height, (cbinfer_backend)a->backend,
                               (cbinfer_mode)a->mode, CBINFER_PRECISION_FP32, &b->stream, err,
                               sizeof err);
    if (st != CBINFER_STATUS_SUCCESS)
        return error("creating a %dx%d stream: %s%s%s", b->width, b->height,
                     cbinfer_status_string(st), *err ? ": " : "", err);
    st = cbinfer_stream_set_threshold_all(b->stream, a->threshold);
    if (st != CBINFER_STATUS_SUCCESS) return stream_error(b, "--threshold", st);
    if (a->reuse_1x1) {
        st = cbinfer_stream_set_param(b->stream, CBINFER_PARAM_REUSE_1X1_INDICES, 1.0);
        if (st != CBINFER_STATUS_SUCCESS) return stream_error(b, "--reuse-1x1", st);
    }
    if (a->stats) {
        st = cbinfer_stream_set_param(b->stream, CBINFER_PARAM_COLLECT_STATS, 1.0);
        if (st != CBINFER_STATUS_SUCCESS) return stream_error(b, "--stats", st);
    }

    int in_c = b->out_c;
    st = cbinfer_stream_output_dims(b->stream, &b->out_c, &b->out_h, &b->out_w);
    if (st != CBINFER_STATUS_SUCCESS) return stream_error(b, "output size", st);
    if (a->dump_dir) {
        b->out_count = (size_t)b->out_c * (size_t)b->out_h * (size_t)b->out_w;
        b->out = malloc((b->out_count ? b->out_count : 1) * sizeof *b->out);
        if (!b->out) return error("out of memory for the output");
    }
    b->layer_count = cbinfer_stream_layer_count(b->stream);
    if (b->layer_count < 0) b->layer_count = 0;
    b->layers = calloc((size_t)b->layer_count + 1, sizeof *b->layers);
    b->layers0 = calloc((size_t)b->layer_count + 1, sizeof *b->layers0);
    if (!b->layers || !b->layers0) return error("out of memory");

    char start[48] = "";
    if (a->input != CBI_BENCH_INPUT_NPY) snprintf(start, sizeof start, " from frame %d", a->skip);
    fprintf(stderr, "model %s, input %s %dx%d%s, mode %s, threshold %g, output %dx%dx%d\n",
            a->model, strcmp(a->input_path, "-") == 0 ? "stdin" : a->input_path, b->width,
            b->height, start, mode_name(a->mode), (double)a->threshold, b->out_c, b->out_h,
            b->out_w);

    if (a->input == CBI_BENCH_INPUT_NPY) {
        double t0 = now_ms();
        st = cbinfer_stream_push_nchw(b->stream, b->npy_data, in_c, b->height, b->width);
        double ms = now_ms() - t0;
        if (st != CBINFER_STATUS_SUCCESS) return stream_error(b, "--input-npy", st);
        if (after_push(b, 0, ms) != 0) return 1;
    } else if (push_rgb_frames(b) != 0) {
        return 1;
    }
    print_summary(b);
    print_layers(b);
    return 0;
}

static void bench_free(bench *b)
{
    cbinfer_stream_destroy(b->stream);
    cbinfer_network_free(b->net);
    cbi_video_close(b->video);
    free(b->rgb);
    free(b->npy_data);
    free(b->out);
    free(b->frame_ms);
    free(b->frame_share);
    free(b->layers);
    free(b->layers0);
}

int main(int argc, char **argv)
{
    bench b;
    memset(&b, 0, sizeof b);
    char err[512];
    if (cbi_bench_parse_args(argc, argv, &b.args, err, sizeof err) != 0) {
        fprintf(stderr, "cbinfer-bench: %s\n", err);
        return 2;
    }
    if (b.args.help) {
        fputs(cbi_bench_usage(), stdout);
        return 0;
    }
    if (b.args.version) {
        unsigned v = cbinfer_version();
        printf("cbinfer-bench %d.%d.%d (library %u.%u.%u)\n", CBINFER_VERSION_MAJOR,
               CBINFER_VERSION_MINOR, CBINFER_VERSION_PATCH, v / 10000, v / 100 % 100, v % 100);
        return 0;
    }
    /* Line buffered, so a pipe sees each frame as it is done. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rc = run(&b);
    bench_free(&b);
    return rc;
}
