/*
 * cbinfer-bench: runs an ONNX model over a video (or raw frames, or one .npy
 * tensor) with cbinfer, in the manner of TensorRT's trtexec: optional
 * warm-up, timed frames, a latency summary (min/mean/median/p90/p95/p99,
 * throughput), a per-layer profile from a separate pass, and JSON/CSV
 * exports. --mode compare runs a dense and a change-based stream on the same
 * frames, interleaved, and reports the speedup measured in the same run and
 * the change-based output's error against the dense output. --sweep repeats
 * the run per threshold scale; --calibrate measures per-layer break-even
 * shares instead of benchmarking.
 *
 * stdout: one line per timed frame, then the summary and the tables.
 * stderr: the configuration, the chosen backend, a progress bar when stderr is
 * a terminal, and errors as one line "cbinfer-bench: <message>".
 * Exit status 0, 1 (runtime error), 2 (usage).
 *
 * Layout: this file runs the passes; bench_run.c has the input, the frame
 * loop and the pushes they share; report.c turns the results (plain
 * structs) into text, JSON and CSV; bench_stats.c has the arithmetic.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, mkdir, readlink, gmtime_r */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_args.h"
#include "bench_stats.h"
#include "cbinfer.h"
#include "cbinfer_git_commit.h" /* CBINFER_GIT_COMMIT, written at every build */
#include "npy.h"
#include "report.h"
#include "video.h"

/* mkdir -p: creates every missing component of dir. */
static int make_dirs(const char *dir)
{
    char path[4096];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof path) return bench_error("--dump-output: bad directory '%s'", dir);
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; ++i) {
        if (path[i] != '/' && path[i] != '\0') continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return bench_error("cannot create directory '%s': %s", path, strerror(errno));
        path[i] = saved;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return bench_error("--dump-output: '%s' is not a directory", dir);
    return 0;
}

static const char *mode_name(int mode)
{
    switch (mode) {
    case CBINFER_MODE_DENSE: return "dense";
    case CBI_BENCH_MODE_COMPARE: return "compare";
    default: return "cbinfer";
    }
}

static const char *precision_name(int p)
{
    return p == CBINFER_PRECISION_TF32 ? "tf32" : p == CBINFER_PRECISION_FP16 ? "fp16" : "fp32";
}

/* Adds the last frame's statistics of stream s to acc[0..layer_count-1]. */
static int layer_acc_add(bench *b, cbinfer_stream_t *s, layer_acc *acc)
{
    for (int i = 0; i < b->layer_count; ++i) {
        cbinfer_layer_stats ls;
        cbinfer_status st = cbinfer_stream_layer_stats(s, i, &ls);
        if (st != CBINFER_STATUS_SUCCESS) return bench_stream_error(s, "layer statistics", st);
        layer_acc *a = &acc[i];
        a->name = ls.name;
        a->op = ls.op;
        if (ls.total_px > 0) {
            a->share_sum += (double)ls.changed_px / (double)ls.total_px;
            a->share_n++;
        }
        a->macs_sum += (double)ls.macs;
        a->dense_macs_sum += (double)ls.dense_macs;
        a->macs_eff_sum += (double)ls.macs_effective;
        a->ov_arith_sum += (double)ls.overhead_arith;
        a->ov_ldst_sum += (double)ls.overhead_ldst;
        a->state_bytes = (double)ls.state_bytes;
        for (int k = 0; k < CBINFER_STEP_COUNT; ++k) a->step_ms_sum[k] += ls.step_ms[k];
        a->total_ms_sum += ls.total_ms;
        a->dense_frames += ls.ran_dense != 0;
        a->n++;
    }
    return 0;
}

/* --stats: the per-layer table of the timed run (old format). */
static void print_layer_acc(const bench *b, const layer_acc *acc, int first_only)
{
    if (b->layer_count <= 0) return;
    printf(first_only ? "per layer, frame 0 only (it runs dense):\n"
                      : "per layer, mean over timed frames after the stream's frame 0:\n");
    int name_w = 5;
    for (int i = 0; i < b->layer_count; ++i) {
        int l = acc[i].name ? (int)strlen(acc[i].name) : 0;
        if (l > name_w) name_w = l;
    }
    if (name_w > 48) name_w = 48;
    printf("  %-*s %-12s %9s %7s %7s %7s", name_w, "layer", "op", "changed%", "MACs%", "execd%",
           "dense");
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
        if (a->dense_macs_sum > 0)
            printf(" %7.2f %7.2f", 100.0 * a->macs_eff_sum / a->dense_macs_sum,
                   100.0 * a->macs_sum / a->dense_macs_sum);
        else
            printf(" %7s %7s", "-", "-");
        printf(" %3d/%-3d", a->dense_frames, a->n);
        if (b->args.stats) {
            for (int s = 0; s < CBINFER_STEP_COUNT; ++s)
                printf(" %13.4f", a->n ? a->step_ms_sum[s] / a->n : 0.0);
            printf(" %13.4f", a->n ? a->total_ms_sum / a->n : 0.0);
        }
        printf("\n");
    }
    if (b->args.stats) printf("  (step columns: mean ms per frame)\n");
}

/* Every output of s after the last frame, one after another into dst. */
static int read_outputs(bench *b, cbinfer_stream_t *s, float *dst)
{
    for (int o = 0; o < b->n_out; ++o) {
        cbinfer_status st = cbinfer_stream_read_output_at(s, o, dst + b->out_off[o],
                                                          b->out_off[o + 1] - b->out_off[o]);
        if (st != CBINFER_STATUS_SUCCESS) return bench_stream_error(s, "reading the output", st);
    }
    return 0;
}

/* ----------------------------------------------------------- timed pass --- */

typedef struct {
    cbi_run_result *run;
    long long cap;
    int dump;           /* --dump-output in this pass */
    int dump_task;      /* --dump-detections in this pass */
    double share_sum;   /* over timed frames after the stream's frame 0 */
    long long share_n;
    double share0_sum;  /* the stream's frame 0 */
    long long share0_n;
    double dense_syncs, cb_syncs; /* host syncs summed over the timed frames */
} timed_ctx;

static int timed_frame(bench *b, long long k, int timed, void *vctx)
{
    timed_ctx *c = vctx;
    double dense_ms = NAN, cb_ms = NAN;
    if (b->dense && bench_push(b, b->dense, k, &dense_ms) != 0) return 1;
    if (b->cb && bench_push(b, b->cb, k, &cb_ms) != 0) return 1;
    if (!timed) return 0;

    cbinfer_stream_t *s = b->cb ? b->cb : b->dense;
    cbinfer_frame_stats fs;
    cbinfer_status st = cbinfer_stream_frame_stats(s, &fs);
    if (st != CBINFER_STATUS_SUCCESS) return bench_stream_error(s, "frame statistics", st);
    *(b->cb ? &c->cb_syncs : &c->dense_syncs) += (double)fs.host_syncs;
    if (b->dense && b->cb) { /* compare mode: the dense stream's too */
        cbinfer_frame_stats ds;
        st = cbinfer_stream_frame_stats(b->dense, &ds);
        if (st != CBINFER_STATUS_SUCCESS) return bench_stream_error(b->dense, "frame statistics", st);
        c->dense_syncs += (double)ds.host_syncs;
    }
    if (layer_acc_add(b, s, fs.frame_index == 0 ? b->acc0 : b->acc) != 0) return 1;
    if (fs.frame_index == 0) {
        c->share0_sum += fs.changed_share;
        c->share0_n++;
    } else {
        c->share_sum += fs.changed_share;
        c->share_n++;
    }

    cbi_frame_rec fr = {k, dense_ms, cb_ms, fs.changed_share, NAN, NAN, NAN, {0, 0, 0},
                        NAN, NAN, NAN};
    float *out = b->cb ? b->out_cb : b->out_dense;
    if (b->dense && b->cb) {
        if (read_outputs(b, b->dense, b->out_dense) != 0 || read_outputs(b, b->cb, b->out_cb) != 0)
            return 1;
        cbi_quality(b->out_dense, b->out_cb, b->out_count, &fr.mse, &fr.psnr_db, &fr.max_abs,
                    &fr.nonfinite);
    } else if ((c->dump || c->dump_task) && read_outputs(b, s, out) != 0) {
        return 1;
    }
    if (bench_task_frame(b, k, c->dump_task, &fr, c->run) != 0) return 1;
    if (c->dump) {
        /* One file per output: frame_%05d.npy, or frame_%05d_o<k>.npy when
         * the network has several. */
        for (int o = 0; o < b->n_out; ++o) {
            char path[4200], err[512];
            if (b->n_out == 1)
                snprintf(path, sizeof path, "%s/frame_%05lld.npy", b->args.dump_dir, k);
            else
                snprintf(path, sizeof path, "%s/frame_%05lld_o%d.npy", b->args.dump_dir, k, o);
            const int64_t shape[4] = {1, b->out_dims[o][0], b->out_dims[o][1], b->out_dims[o][2]};
            if (cbi_npy_write_f32(path, out + b->out_off[o], shape, 4, err, sizeof err) != 0)
                return bench_error("%s", err);
        }
    }

    cbi_run_result *run = c->run;
    if (run->frame_count == c->cap) {
        long long cap = c->cap ? c->cap * 2 : 256;
        cbi_frame_rec *t = realloc(run->frames, (size_t)cap * sizeof *t);
        if (!t) return bench_error("out of memory");
        run->frames = t;
        c->cap = cap;
    }
    run->frames[run->frame_count++] = fr;

    bench_progress_clear(b);
    if (b->dense && b->cb) {
        printf("frame %6lld  changed %7.3f%%  dense %10.3f ms  cbinfer %10.3f ms  PSNR %7.2f dB",
               k, 100.0 * fr.changed_share, dense_ms, cb_ms, fr.psnr_db);
        if (b->args.task == CBI_BENCH_TASK_DETECT)
            printf("  boxes %d/%d  person recall %5.3f  precision %5.3f", b->task.nboxes[1],
                   b->task.nboxes[0], fr.person_recall, fr.person_precision);
        else if (b->args.task == CBI_BENCH_TASK_POSE)
            printf("  poses %d/%d  PCKh %5.3f", b->task.nposes[1], b->task.nposes[0], fr.pck);
        printf("\n");
    } else
        printf("frame %6lld  changed %7.3f%%  %10.3f ms\n", k, 100.0 * fr.changed_share,
               b->cb ? cb_ms : dense_ms);
    return 0;
}

/* Fills run's summary from its frames and the layer sums. */
static int summarise(bench *b, timed_ctx *c)
{
    cbi_run_result *run = c->run;
    long long n = run->frame_count;
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v) return bench_error("out of memory");
    run->has_dense = b->dense != NULL;
    run->has_cbinfer = b->cb != NULL;
    run->has_quality = b->dense && b->cb;
    if (run->has_dense) {
        for (long long k = 0; k < n; ++k) v[k] = run->frames[k].dense_ms;
        cbi_latency_of(v, (size_t)n, &run->dense_ms);
        run->dense_fps = run->dense_ms.mean > 0 ? 1e3 / run->dense_ms.mean : 0.0;
    }
    if (run->has_cbinfer) {
        for (long long k = 0; k < n; ++k) v[k] = run->frames[k].cbinfer_ms;
        cbi_latency_of(v, (size_t)n, &run->cbinfer_ms);
        run->cbinfer_fps = run->cbinfer_ms.mean > 0 ? 1e3 / run->cbinfer_ms.mean : 0.0;
    }
    free(v);
    run->dense_syncs = run->has_dense && n ? c->dense_syncs / (double)n : NAN;
    run->cbinfer_syncs = run->has_cbinfer && n ? c->cb_syncs / (double)n : NAN;
    /* Frame 0 of a stream runs dense and initialises its state: it would make
     * the steady-state share look worse than it is, so it counts only when it
     * is the only timed frame. */
    run->changed_share = c->share_n ? c->share_sum / (double)c->share_n
                         : c->share0_n ? c->share0_sum / (double)c->share0_n
                                       : NAN;
    run->speedup = run->has_dense && run->has_cbinfer && run->cbinfer_ms.mean > 0
                       ? run->dense_ms.mean / run->cbinfer_ms.mean
                       : NAN;
    run->mse = run->psnr_db = run->min_psnr_db = run->max_abs = NAN;
    if (run->has_quality && n > 0) {
        double mse = 0.0, min_psnr = INFINITY, max_abs = 0.0;
        for (long long k = 0; k < n; ++k) {
            const cbi_frame_rec *fr = &run->frames[k];
            mse += fr->mse;
            if (fr->psnr_db < min_psnr) min_psnr = fr->psnr_db;
            if (fr->max_abs > max_abs) max_abs = fr->max_abs;
            run->nonfinite.ref += fr->nonfinite.ref;
            run->nonfinite.x += fr->nonfinite.x;
            run->nonfinite.mismatched += fr->nonfinite.mismatched;
        }
        run->mse = mse / (double)n;
        run->psnr_db = cbi_psnr_of_mse(run->mse);
        run->min_psnr_db = min_psnr;
        run->max_abs = max_abs;
    }

    int after0 = b->layer_count > 0 && b->acc[0].n > 0;
    const layer_acc *acc = after0 ? b->acc : b->acc0;
    run->layers = calloc((size_t)b->layer_count + 1, sizeof *run->layers);
    if (!run->layers) return bench_error("out of memory");
    run->layer_count = b->layer_count;
    for (int i = 0; i < b->layer_count; ++i) {
        const layer_acc *a = &acc[i];
        cbi_layer_rec *l = &run->layers[i];
        l->name = a->name;
        l->op = a->op;
        l->changed_share = a->share_n ? a->share_sum / a->share_n : NAN;
        l->macs = a->n ? a->macs_eff_sum / a->n : NAN;
        l->macs_executed = a->n ? a->macs_sum / a->n : NAN;
        l->dense_macs = a->n ? a->dense_macs_sum / a->n : NAN;
        l->overhead_arith = a->n ? a->ov_arith_sum / a->n : NAN;
        l->overhead_ldst = a->n ? a->ov_ldst_sum / a->n : NAN;
        l->state_bytes = a->state_bytes;
        l->dense_frames = a->dense_frames;
    }
    return 0;
}

static int timed_pass(bench *b, int pass, double scale, cbi_run_result *run)
{
    memset(run, 0, sizeof *run);
    run->threshold_scale = scale;
    bench_task_run_init(b, run);
    if (bench_task_run_alloc(b, run) != 0) return 1;
    if (b->cb && bench_set_param(b->cb, CBINFER_PARAM_THRESHOLD_SCALE, scale, "threshold scale") != 0)
        return 1;
    if (bench_reset(b->dense) != 0 || bench_reset(b->cb) != 0) return 1;
    memset(b->acc, 0, ((size_t)b->layer_count + 1) * sizeof *b->acc);
    memset(b->acc0, 0, ((size_t)b->layer_count + 1) * sizeof *b->acc0);
    timed_ctx c;
    memset(&c, 0, sizeof c);
    c.run = run;
    c.dump = b->args.dump_dir && pass == 0;
    c.dump_task = b->args.dump_detections && pass == 0;
    char label[64];
    if (b->run_count > 1)
        snprintf(label, sizeof label, "pass %d/%d (scale %g)", pass + 1, b->run_count, scale);
    else
        snprintf(label, sizeof label, "timed run");
    if (bench_for_each_frame(b, label, timed_frame, &c) != 0) return 1;
    if (summarise(b, &c) != 0) return 1;
    if (b->args.cameras > 0 && bench_cameras_pass(b, scale, &run->cameras) != 0) return 1;
    cbi_report_print_run(stdout, run);
    if (b->args.stats) {
        int after0 = b->layer_count > 0 && b->acc[0].n > 0;
        print_layer_acc(b, after0 ? b->acc : b->acc0, !after0);
    }
    return 0;
}

/* ----------------------------------------------------------------- setup -- */

static int choose_backend(bench *b)
{
    if (b->args.backend == CBI_BENCH_BACKEND_AUTO) {
        b->args.backend = cbinfer_backend_available(CBINFER_BACKEND_CUDA) == CBINFER_STATUS_SUCCESS
                              ? CBINFER_BACKEND_CUDA
                              : CBINFER_BACKEND_CPU;
        fprintf(stderr, "backend: %s (auto: CUDA %s)\n", bench_backend_name(b->args.backend),
                b->args.backend == CBINFER_BACKEND_CUDA ? "available" : "unavailable");
    } else {
        cbinfer_status st = cbinfer_backend_available((cbinfer_backend)b->args.backend);
        if (st != CBINFER_STATUS_SUCCESS)
            return bench_error("--backend %s: %s", bench_backend_name(b->args.backend),
                         cbinfer_status_string(st));
        fprintf(stderr, "backend: %s\n", bench_backend_name(b->args.backend));
    }
    return 0;
}

/* Creates a stream in mode with every option of the command line applied. */
static int create_stream(bench *b, cbinfer_mode mode, cbinfer_stream_t **out)
{
    const cbi_bench_args *a = &b->args;
    char err[1024] = "";
    cbinfer_status st = cbinfer_stream_create(b->net, b->width, b->height,
                                              (cbinfer_backend)a->backend, mode,
                                              (cbinfer_precision)a->precision, out, err, sizeof err);
    if (st != CBINFER_STATUS_SUCCESS)
        return bench_error("creating a %dx%d %s stream (%s): %s%s%s", b->width, b->height,
                     mode_name(mode), precision_name(a->precision), cbinfer_status_string(st),
                     *err ? ": " : "", err);
    return bench_configure_stream(b, *out, mode);
}

/* "model name" of /proc/cpuinfo, or "unknown CPU". */
static void cpu_model(char *dst, size_t cap)
{
    snprintf(dst, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *p = strchr(line, ':');
        if (!p) continue;
        for (++p; *p == ' ' || *p == '\t'; ++p) {
        }
        snprintf(dst, cap, "%s", p);
        dst[strcspn(dst, "\n")] = '\0';
        break;
    }
    fclose(f);
}

static int write_file(const char *path, const char *what,
                      int (*writer)(FILE *, const cbi_bench_report *), const cbi_bench_report *r)
{
    FILE *f = fopen(path, "w");
    if (!f) return bench_error("%s: cannot write '%s': %s", what, path, strerror(errno));
    int bad = writer(f, r) != 0;
    bad |= fclose(f) != 0;
    if (bad) return bench_error("%s: writing '%s' failed", what, path);
    fprintf(stderr, "%s written to %s\n", what, path);
    return 0;
}

static int run(bench *b)
{
    cbi_bench_args *a = &b->args;
    char err[1024] = "";
    /* The input first: a wrong path is reported before a slow model load. */
    if (bench_source_open(b) != 0) return 1;
    cbinfer_status st = cbinfer_network_load(a->model, &b->net, err, sizeof err);
    if (st != CBINFER_STATUS_SUCCESS)
        return bench_error("loading '%s': %s%s%s", a->model, cbinfer_status_string(st), *err ? ": " : "",
                     err);
    if (choose_backend(b) != 0) return 1;
    if (a->dump_dir && make_dirs(a->dump_dir) != 0) return 1;
    if (a->backend == CBINFER_BACKEND_CPU)
        cpu_model(b->device_name, sizeof b->device_name);
    else
        snprintf(b->device_name, sizeof b->device_name, "CUDA device");
    if (cbinfer_backend_describe(a->backend, b->kernels, sizeof b->kernels) != CBINFER_STATUS_SUCCESS)
        b->kernels[0] = '\0';
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(b->date, sizeof b->date, "%Y-%m-%dT%H:%M:%SZ", &tm);

    int compare = a->mode == CBI_BENCH_MODE_COMPARE;
    if ((a->mode == CBINFER_MODE_DENSE || compare || a->calibrate_path) &&
        create_stream(b, CBINFER_MODE_DENSE, &b->dense) != 0)
        return 1;
    if (a->mode != CBINFER_MODE_DENSE &&
        create_stream(b, compare ? CBINFER_MODE_CBINFER : (cbinfer_mode)a->mode, &b->cb) != 0)
        return 1;
    cbinfer_stream_t *s = b->cb ? b->cb : b->dense;
    b->n_out = cbinfer_network_output_count(b->net);
    if (b->n_out < 1 || b->n_out > BENCH_MAX_OUTPUTS)
        return bench_error("%s: %d outputs (1 to %d are supported)", a->model, b->n_out,
                           BENCH_MAX_OUTPUTS);
    char out_desc[256] = "";
    for (int o = 0; o < b->n_out; ++o) {
        int *d = b->out_dims[o];
        st = cbinfer_stream_output_dims_at(s, o, &d[0], &d[1], &d[2]);
        if (st != CBINFER_STATUS_SUCCESS) return bench_stream_error(s, "output size", st);
        b->out_off[o + 1] = b->out_off[o] + (size_t)d[0] * d[1] * d[2];
        const size_t used = strlen(out_desc);
        snprintf(out_desc + used, sizeof out_desc - used, "%s%dx%dx%d", o ? " + " : "", d[0], d[1],
                 d[2]);
    }
    b->out_count = b->out_off[b->n_out];
    b->out_dense = malloc((b->out_count ? b->out_count : 1) * sizeof *b->out_dense);
    b->out_cb = malloc((b->out_count ? b->out_count : 1) * sizeof *b->out_cb);
    b->layer_count = cbinfer_stream_layer_count(s);
    if (b->layer_count < 0) b->layer_count = 0;
    b->acc = calloc((size_t)b->layer_count + 1, sizeof *b->acc);
    b->acc0 = calloc((size_t)b->layer_count + 1, sizeof *b->acc0);
    if (!b->out_dense || !b->out_cb || !b->acc || !b->acc0) return bench_error("out of memory");
    if (bench_task_open(b) != 0) return 1;

    char start[48] = "";
    if (a->input != CBI_BENCH_INPUT_NPY) snprintf(start, sizeof start, " from frame %d", a->skip);
    fprintf(stderr,
            "model %s, input %s %dx%d%s, mode %s, policy %s, %s, threshold %g, warm-up %d, "
            "output %s\n",
            a->model, strcmp(a->input_path, "-") == 0 ? "stdin" : a->input_path, b->width,
            b->height, start, mode_name(a->mode),
            a->mode == CBINFER_MODE_DENSE ? "-" : a->policy_spec, precision_name(a->precision),
            (double)a->threshold, a->warmup, out_desc);

    if (a->calibrate_path) return bench_calibrate(b);

    b->run_count = a->sweep_count > 0 ? a->sweep_count : 1;
    b->runs = calloc((size_t)b->run_count, sizeof *b->runs);
    if (!b->runs) return bench_error("out of memory");
    for (int i = 0; i < b->run_count; ++i)
        if (timed_pass(b, i, a->sweep_count > 0 ? a->sweep[i] : a->threshold_scale, &b->runs[i]) !=
            0)
            return 1;
    if (a->per_layer && bench_profile_pass(b, b->runs[0].threshold_scale) != 0) return 1;

    cbi_bench_report r;
    memset(&r, 0, sizeof r);
    char version[32];
    unsigned v = cbinfer_version();
    snprintf(version, sizeof version, "%u.%u.%u", v / 10000, v / 100 % 100, v % 100);
    r.version = version;
    r.commit = CBINFER_GIT_COMMIT;
    r.date = b->date;
    r.backend = bench_backend_name(a->backend);
    r.device_name = b->device_name;
    r.cores = a->backend == CBINFER_BACKEND_CPU ? (int)sysconf(_SC_NPROCESSORS_ONLN) : 0;
    r.kernels = b->kernels[0] ? b->kernels : NULL;
    r.threads = a->threads;
    r.model = a->model;
    r.workload = a->workload;
    r.input = a->input_path;
    r.width = b->width;
    r.height = b->height;
    r.skip = a->skip;
    r.frames = b->runs[0].frame_count;
    r.warmup = a->warmup;
    r.mode = mode_name(a->mode);
    r.policy = a->mode == CBINFER_MODE_DENSE ? NULL : a->policy_spec;
    r.precision = precision_name(a->precision);
    /* The float as typed ("0.01"), not its binary expansion (0.009999999776). */
    char thr[32];
    snprintf(thr, sizeof thr, "%.7g", (double)a->threshold);
    r.threshold = strtod(thr, NULL);
    r.thresholds_file = a->thresholds_file;
    r.break_even_file = a->break_even_file;
    r.runs = b->runs;
    r.run_count = b->run_count;
    r.profile = b->profile;
    r.profile_layer_count = b->profile ? b->layer_count : 0;
    r.profile_count = b->profile_count;

    if (b->run_count > 1) {
        printf("sweep (threshold scale, changed %%, cbinfer ms, speedup, PSNR dB):\n");
        for (int i = 0; i < b->run_count; ++i) {
            const cbi_run_result *rr = &b->runs[i];
            printf("  %10g %9.3f %12.3f %9.3f %9.2f\n", rr->threshold_scale,
                   100.0 * rr->changed_share, rr->has_cbinfer ? rr->cbinfer_ms.mean : NAN,
                   rr->speedup, rr->psnr_db);
        }
    }
    cbi_report_print_profile(stdout, &r);
    if (a->warmup == 0 && b->cb)
        printf("note: the first timed frame ran dense (stream initialisation); --warmup 1 "
               "leaves it out of the latency figures\n");
    printf("device: %s %s; kernels: %s; threads: %d%s; cbinfer %s, commit %s, %s\n", r.backend,
           r.device_name, r.kernels ? r.kernels : "?", r.threads, r.threads ? "" : " (every core)",
           r.version, r.commit, r.date);

    if (a->json_path && write_file(a->json_path, "JSON report", cbi_report_write_json, &r) != 0)
        return 1;
    if (a->profile_path &&
        write_file(a->profile_path, "profile", cbi_report_write_profile, &r) != 0)
        return 1;
    if (a->csv_path && write_file(a->csv_path, "CSV", cbi_report_write_csv, &r) != 0) return 1;
    return 0;
}

static void bench_free(bench *b)
{
    cbinfer_stream_destroy(b->dense);
    cbinfer_stream_destroy(b->cb);
    cbinfer_network_free(b->net);
    cbi_video_close(b->video);
    free(b->rgb);
    free(b->npy_data);
    free(b->out_dense);
    free(b->out_cb);
    free(b->acc);
    free(b->acc0);
    for (int i = 0; i < b->run_count && b->runs; ++i) {
        free(b->runs[i].layers);
        free(b->runs[i].frames);
        free(b->runs[i].classes);
        free(b->runs[i].cameras.starts);
    }
    free(b->runs);
    free(b->profile);
}

/* The running executable's path, for --workload's default model directory. */
static const char *exe_path(char *buf, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
    if (n <= 0) return NULL;
    buf[n] = '\0';
    return buf;
}

int main(int argc, char **argv)
{
    static bench b; /* large (path buffers); static keeps it off the stack */
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
        printf("cbinfer-bench %d.%d.%d (library %u.%u.%u, commit %s)\n", CBINFER_VERSION_MAJOR,
               CBINFER_VERSION_MINOR, CBINFER_VERSION_PATCH, v / 10000, v / 100 % 100, v % 100,
               CBINFER_GIT_COMMIT);
        return 0;
    }
    char exe[4096];
    if (cbi_bench_resolve(&b.args, exe_path(exe, sizeof exe), getenv("CBINFER_DATA_DIR"), err,
                          sizeof err) != 0) {
        fprintf(stderr, "cbinfer-bench: %s\n", err);
        return 2;
    }
    b.argc = argc;
    b.argv = argv;
    b.progress = isatty(2);
    /* Line buffered, so a pipe sees each frame as it is done. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rc = run(&b);
    if (b.dump_frames && fclose(b.dump_frames) != 0 && rc == 0)
        rc = bench_error("--dump-frames: closing '%s' failed", b.args.dump_frames);
    if (bench_task_close(&b) != 0 && rc == 0) rc = 1;
    bench_free(&b);
    return rc;
}
