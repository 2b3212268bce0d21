/*
 * cbinfer-tune: per-layer threshold selection (paper Sec. III-F) on top of the
 * public API. All thresholds start at 0; the convolutions are tuned one after
 * the other in execution order, each raised geometrically until the loss of
 * the change-based output against the dense output grows by more than that
 * layer's budget (tune_search.c). Evaluation follows Sec. IV-A: sequences of
 * warm-up frames followed by one (--evaluate: more) evaluated frames, never
 * the first frame.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_args.h"
#include "bench_stats.h"
#include "cbinfer.h"
#include "task_loss.h"
#include "tune_search.h"
#include "video.h"

#define MAX_VIDEOS 16
#define MAX_CONVS 256
#define TUNE_MAX_OUTPUTS 64 /* the loader's limit on graph outputs */
#define MSG 512

static const char usage_text[] =
    "usage: cbinfer-tune (--model PATH | --workload NAME [--model-dir DIR]) [options]\n"
    "\n"
    "Selects one change-detection threshold per convolution (CBinfer paper\n"
    "Sec. III-F): all thresholds start at 0; the convolutions are tuned in\n"
    "execution order, each threshold raised by --growth from its initial value\n"
    "until the loss against the dense output grows by more than the layer's\n"
    "budget; the last threshold within it is kept.\n"
    "Re-converging branches (Add, Concat) are tuned independently: while a\n"
    "conv is tuned, only the convs whose changes reach it hold their tuned\n"
    "thresholds; the other paths are held at 0.\n"
    "\n"
    "data:\n"
    "  --video PATH[@A:B]    frames A..B inclusive (default all); repeatable;\n"
    "                        default with --workload: its video\n"
    "  --resize WxH          frame size (default with --workload: its size)\n"
    "  --backend cpu|cuda    default cpu\n"
    "  --warmup N            warm-up frames at the start of each sequence (default 5)\n"
    "  --evaluate E          frames evaluated after the warm-up (default 1, as the\n"
    "                        paper); more frames see how the error builds up\n"
    "  --sequences K         sequences of N+E frames, spread evenly (default 8)\n"
    "search:\n"
    "  --metric mse|psnr|maxabs|detect|pose  loss: mean MSE over the evaluated\n"
    "                        frames and every output of the network, one after\n"
    "                        another (default); maxabs: mean of the per-frame\n"
    "                        largest absolute error; psnr: a target, see --budget;\n"
    "                        detect (NanoDet heads), pose (PoseNet's 4 outputs):\n"
    "                        the error in what the decoder reads (sigmoid scores;\n"
    "                        box distances, offsets and displacements weighted by\n"
    "                        the dense score), mean per cell\n"
    "  --budget B            loss each layer may add (required); with --metric psnr\n"
    "                        the PSNR in dB (peak 1) to keep: its MSE, 10^(-B/10),\n"
    "                        is split over the convolutions and searched on MSE;\n"
    "                        with detect or pose the task loss to reach, split\n"
    "                        the same way; with mse or maxabs, 0 holds every\n"
    "                        convolution at 0\n"
    "  --budget-weights W1,W2,...  one per convolution, multiplies B (e.g. 4,1,1,...);\n"
    "                        with psnr the shares of the split; a convolution\n"
    "                        with 0 is held at 0 (it follows its producer's\n"
    "                        changes without detecting, e.g. depthwise convs)\n"
    "  --init T              initial threshold (default 1e-3)\n"
    "  --stats-init          scale each layer's initial threshold by its input's\n"
    "                        standard deviation relative to the first layer's\n"
    "  --growth F            threshold factor per step, > 1 (default 1.1)\n"
    "  --max-steps N         evaluations per layer at most (default 200)\n"
    "  --refine N            then up to N cost-aware steps: each multiplies the one\n"
    "                        threshold by --growth (longer where that saves\n"
    "                        nothing) that saves the most executed MACs per loss\n"
    "                        added, while the loss stays within the sum of the\n"
    "                        layers' budgets (default 0: none)\n"
    "  --search-budget B     with --refine: the search's budget (as --budget; default\n"
    "                        --budget), so that the refinement spends the rest\n"
    "  --start FILE          no search: start from the thresholds of FILE, then\n"
    "                        --refine and --out as after a search (alone: the\n"
    "                        scaling curve of FILE on these frames and metric;\n"
    "                        --budget is needed only with --refine)\n"
    "output:\n"
    "  --out FILE            thresholds file (cbinfer_stream_load_thresholds format)\n"
    "  --policy SPEC         the change policy tuned (cbinfer_stream_set_policy, e.g.\n"
    "                        evnet:chunk=8, skipconv:output, sigmadelta; default cbinfer):\n"
    "                        its per-layer value (tau, h, eps, step s) is what is tuned\n"
    "\n"
    "Progress goes to stderr, the scaling curve of the result to stdout.\n";

typedef struct video_range {
    const char *path;
    char path_buf[CBI_BENCH_PATH_MAX];
    long a, b; /* b = -1: to the end */
    long count; /* frames in the range */
} video_range;

typedef struct tune {
    cbinfer_stream_t *cb;
    int w, h, warmup, n_eval, n_seq; /* a sequence: warmup frames, then n_eval evaluated */
    uint8_t **seq;         /* n_seq sequences of warmup + n_eval packed RGB8 frames */
    float **dense;         /* per sequence, the n_eval cached dense outputs */
    float *out;
    size_t out_elems;      /* every output of the network, one after another */
    int n_out;
    size_t out_off[TUNE_MAX_OUTPUTS + 1]; /* where output k starts */
    int out_dims[TUNE_MAX_OUTPUTS][3];     /* channels, height, width of output k */
    int task_out[TUNE_MAX_OUTPUTS];        /* detect: all heads in order; pose: the 4 by role */
    float pose_stride;
    cbi_tune_metric metric;
    const cbinfer_network_t *net;
    int n_conv;
    double *applied;       /* thresholds set on cb, per conv */
    double *budget;        /* per conv: the search's */
    double *total_budget;  /* per conv: --budget's, whose sum --refine keeps to */
    double last_share;     /* mean changed share of the evaluated frames */
    double last_macs;      /* their executed MACs over their dense MACs */
    double last_mse;
    int failed;
    char err[MSG];
} tune;

static void die(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "cbinfer-tune: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    exit(1);
}

static void usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "cbinfer-tune: %s%s%s (see --help)\n", msg, arg ? " " : "", arg ? arg : "");
    exit(2);
}

static double parse_num(const char *flag, const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v)) usage_error("bad number for", flag);
    return v;
}

static long parse_int(const char *flag, const char *s, long min)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < min) usage_error("bad integer for", flag);
    return v;
}

/* PATH[@A:B] */
static void parse_video(const char *s, video_range *v)
{
    const char *at = strrchr(s, '@');
    size_t len = at ? (size_t)(at - s) : strlen(s);
    if (len == 0 || len >= sizeof v->path_buf) usage_error("bad --video", s);
    memcpy(v->path_buf, s, len);
    v->path_buf[len] = '\0';
    v->path = v->path_buf;
    v->a = 0;
    v->b = -1;
    if (at) {
        char *end;
        v->a = strtol(at + 1, &end, 10);
        if (end == at + 1 || *end != ':' || v->a < 0) usage_error("bad frame range in --video", s);
        const char *bs = end + 1;
        v->b = strtol(bs, &end, 10);
        if (end == bs || *end || v->b < v->a) usage_error("bad frame range in --video", s);
    }
}

static void check(cbinfer_status st, cbinfer_stream_t *s, const char *what)
{
    if (st != CBINFER_STATUS_SUCCESS)
        die("%s: %s", what, s ? cbinfer_stream_last_error(s) : cbinfer_status_string(st));
}

/* Every output of s after its last frame, one after another into dst. */
static cbinfer_status read_outputs(const tune *t, cbinfer_stream_t *s, float *dst)
{
    cbinfer_status st = CBINFER_STATUS_SUCCESS;
    for (int o = 0; o < t->n_out && st == CBINFER_STATUS_SUCCESS; ++o)
        st = cbinfer_stream_read_output_at(s, o, dst + t->out_off[o],
                                           t->out_off[o + 1] - t->out_off[o]);
    return st;
}

/* The task loss (detect, pose) of the outputs x against the dense ref. */
static double task_loss(const tune *t, const float *ref, const float *x)
{
    cbinfer_tensor_view r[TUNE_MAX_OUTPUTS], c[TUNE_MAX_OUTPUTS];
    const int n = t->metric == CBI_TUNE_POSE ? 4 : t->n_out;
    for (int i = 0; i < n; ++i) {
        const int o = t->task_out[i];
        r[i] = (cbinfer_tensor_view){ref + t->out_off[o], t->out_dims[o][0], t->out_dims[o][1],
                                     t->out_dims[o][2]};
        c[i] = r[i];
        c[i].data = x + t->out_off[o];
    }
    return t->metric == CBI_TUNE_POSE ? cbi_pose_loss(r, c, t->pose_stride)
                                      : cbi_detect_loss(r, c, n, CBINFER_COCO_CLASSES);
}

/* One evaluation of the current thresholds: per sequence, reset, push the
 * warm-up frames and the evaluated ones, compare each of these with its cached
 * dense output. Returns the loss the search compares (the task loss, maxabs,
 * else the MSE),
 * averaged over the evaluated frames; NaN on a library error. */
static double evaluate(tune *t)
{
    double mse_sum = 0, maxabs_sum = 0, task_sum = 0, share_sum = 0, macs = 0, dense_macs = 0;
    const size_t frame_bytes = (size_t)t->w * t->h * 3;
    for (int k = 0; k < t->n_seq; ++k) {
        cbinfer_status st = cbinfer_stream_reset(t->cb);
        for (int f = 0; f < t->warmup + t->n_eval && st == CBINFER_STATUS_SUCCESS; ++f) {
            st = cbinfer_stream_push_rgb8(t->cb, t->seq[k] + (size_t)f * frame_bytes, t->w, t->h,
                                          (size_t)t->w * 3);
            if (f < t->warmup || st != CBINFER_STATUS_SUCCESS) continue;
            cbinfer_frame_stats fs;
            st = read_outputs(t, t->cb, t->out);
            if (st == CBINFER_STATUS_SUCCESS) st = cbinfer_stream_frame_stats(t->cb, &fs);
            if (st != CBINFER_STATUS_SUCCESS) break;
            double mse, psnr, maxabs;
            /* A non-finite value where dense has none (or the reverse) makes
             * the loss infinite, never zero. */
            const float *ref = t->dense[k] + (size_t)(f - t->warmup) * t->out_elems;
            cbi_quality(ref, t->out, t->out_elems, &mse, &psnr, &maxabs, NULL);
            mse_sum += mse;
            maxabs_sum += maxabs;
            if (t->metric == CBI_TUNE_DETECT || t->metric == CBI_TUNE_POSE)
                task_sum += task_loss(t, ref, t->out);
            share_sum += fs.changed_share;
            macs += (double)fs.macs;
            dense_macs += (double)fs.dense_macs;
        }
        if (st != CBINFER_STATUS_SUCCESS) {
            snprintf(t->err, sizeof t->err, "%s", cbinfer_stream_last_error(t->cb));
            t->failed = 1;
            return NAN;
        }
    }
    const double n = (double)t->n_seq * t->n_eval;
    t->last_mse = mse_sum / n;
    t->last_share = share_sum / n;
    t->last_macs = dense_macs > 0 ? macs / dense_macs : 0;
    if (t->metric == CBI_TUNE_DETECT || t->metric == CBI_TUNE_POSE) return task_sum / n;
    return t->metric == CBI_TUNE_MAXABS ? maxabs_sum / n : t->last_mse;
}

/* Sets the thresholds that differ from the stream's; 0, or -1 on a library
 * error (t->err). */
static int apply_thresholds(tune *t, const double *tau)
{
    for (int i = 0; i < t->n_conv; ++i) {
        if (tau[i] == t->applied[i]) continue;
        if (cbinfer_stream_set_threshold(t->cb, cbinfer_network_conv_name(t->net, i),
                                         (float)tau[i]) != CBINFER_STATUS_SUCCESS) {
            snprintf(t->err, sizeof t->err, "%s", cbinfer_stream_last_error(t->cb));
            t->failed = 1;
            return -1;
        }
        t->applied[i] = tau[i];
    }
    return 0;
}

/* cbi_tune_config_fn: applies the thresholds and evaluates. */
static double eval_config(void *ctx, int layer, const double *tau)
{
    tune *t = ctx;
    if (apply_thresholds(t, tau) != 0) return NAN;
    const double loss = evaluate(t);
    if (t->failed) return loss;
    if (layer < 0) {
        int held = 0;
        for (int i = 0; i < t->n_conv; ++i) held += tau[i] > 0;
        fprintf(stderr, "%-16s %3d convs > 0    loss %-12.6g share %.4f\n", "(base)", held, loss,
                t->last_share);
    } else {
        fprintf(stderr, "%-16s tau %-12.6g loss %-12.6g share %.4f\n",
                cbinfer_network_conv_name(t->net, layer), tau[layer], loss, t->last_share);
    }
    return loss;
}

/* --metric pose: PoseNet's 4 outputs and the stride of their grid. */
static void find_pose_outputs(tune *t, const cbinfer_network_t *net, const char *model)
{
    if (cbi_pose_outputs(net, t->task_out) != 0)
        die("--metric pose: %s has not PoseNet's 4 outputs%s", model, "");
    const int gw = t->out_dims[t->task_out[0]][2];
    int s = 1;
    while (s < 1024 && (t->w + s - 1) / s != gw) s *= 2;
    if ((t->w + s - 1) / s != gw) die("--metric pose: %s: no power-of-two stride of the input%s",
                                      model, "");
    t->pose_stride = (float)s;
}

/* cbi_tune_cost_fn of --refine: the loss, and the executed share of the
 * dense MACs as the cost. */
static double eval_cost(void *ctx, const double *tau, double *cost)
{
    tune *t = ctx;
    if (apply_thresholds(t, tau) != 0) return NAN;
    const double loss = evaluate(t);
    *cost = t->last_macs;
    return loss;
}

static void refine_step(void *ctx, int layer, double tau, double loss, double cost)
{
    tune *t = ctx;
    fprintf(stderr, "(refine) %-16s -> tau %-12.6g loss %-12.6g MACs %.4f of dense\n",
            cbinfer_network_conv_name(t->net, layer), tau, loss, cost);
}

/* --refine: up to steps cost-aware steps from res[].tau, within the sum of
 * the layers' budgets; res[].tau gets the result, macs[] the executed MACs
 * share before and after. Returns the steps taken. */
static int refine_result(tune *t, cbi_tune_result *res, const double *init, int steps,
                         double growth, double macs[2])
{
    double *tau = malloc((size_t)t->n_conv * sizeof *tau), total = 0, loss, cost;
    if (!tau) die("%s%s", "out of memory", "");
    for (int i = 0; i < t->n_conv; ++i) {
        tau[i] = res[i].tau;
        total += t->total_budget[i];
    }
    const double l0 = eval_cost(t, tau, &macs[0]);
    if (t->failed) die("evaluation: %s%s", t->err, "");
    fprintf(stderr, "cbinfer-tune: refining from loss %.6g, MACs %.4f of dense, within %.6g\n",
            l0, macs[0], total);
    int evals;
    if (l0 > total)
        fprintf(stderr, "cbinfer-tune: warning: the start's loss is above the total, so no "
                        "step can be taken\n");
    const int taken = cbi_tune_refine(eval_cost, t, t->n_conv, tau, l0, macs[0], init,
                                      t->total_budget, total, growth, steps, &loss, &cost, &evals,
                                      refine_step);
    if (taken < 0) die("refinement failed: %s%s", t->failed ? t->err : "bad parameters", "");
    fprintf(stderr, "cbinfer-tune: %d refinement steps (%d evaluations): loss %.6g, MACs %.4f "
                    "of dense\n", taken, evals, loss, cost);
    macs[1] = cost;
    for (int i = 0; i < t->n_conv; ++i) res[i].tau = tau[i];
    free(tau);
    return taken;
}


static void layer_done(void *ctx, int layer, const cbi_tune_result *r)
{
    tune *t = ctx;
    fprintf(stderr, "%-16s -> tau %.6g (%d evaluations, loss %.6g over base %.6g, budget %.6g)\n",
            cbinfer_network_conv_name(t->net, layer), r->tau, r->evals, r->loss, r->base,
            t->budget[layer]);
}

/* Frames in [a, b] (b = -1: to the end) of a video, by decoding it. */
static long count_frames(const video_range *v, int w, int h)
{
    char err[MSG];
    cbi_video *vid;
    if (cbi_video_open(v->path, w, h, (int)v->a, &vid, err, sizeof err) != 0)
        die("%s: %s", v->path, err);
    uint8_t *buf = malloc((size_t)w * h * 3);
    if (!buf) die("%s%s", "out of memory", "");
    long n = 0;
    int r = 1;
    while ((v->b < 0 || v->a + n <= v->b) && (r = cbi_video_read(vid, buf, err, sizeof err)) == 1)
        ++n;
    if (r < 0) die("%s: %s", v->path, err);
    free(buf);
    cbi_video_close(vid);
    return n;
}

int main(int argc, char **argv)
{
    cbi_bench_args ba;
    memset(&ba, 0, sizeof ba);
    video_range videos[MAX_VIDEOS];
    int n_videos = 0, backend = CBINFER_BACKEND_CPU, warmup = 5, n_eval = 1, n_seq = 8;
    int max_steps = 200, refine = 0, have_search_budget = 0;
    double search_budget_arg = 0;
    int stats_init = 0, have_budget = 0, n_weights = 0;
    double init = 1e-3, growth = 1.1, budget = 0, weights[MAX_CONVS];
    const char *out_path = NULL, *weights_arg = NULL, *policy = NULL, *start_path = NULL;
    cbi_tune_metric metric = CBI_TUNE_MSE;

    for (int i = 1; i < argc; ++i) {
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (!strcmp(f, "--stats-init")) {
            stats_init = 1;
            continue;
        }
        if (i + 1 >= argc) usage_error("missing value for", f);
        const char *v = argv[++i];
        if (!strcmp(f, "--model")) ba.model = v;
        else if (!strcmp(f, "--workload")) ba.workload = v;
        else if (!strcmp(f, "--model-dir")) ba.model_dir = v;
        else if (!strcmp(f, "--video")) {
            if (n_videos == MAX_VIDEOS) usage_error("too many --video", NULL);
            parse_video(v, &videos[n_videos++]);
        } else if (!strcmp(f, "--resize")) {
            if (sscanf(v, "%dx%d", &ba.resize_w, &ba.resize_h) != 2 || ba.resize_w <= 0 ||
                ba.resize_h <= 0)
                usage_error("bad --resize", v);
            ba.resize_given = 1;
        } else if (!strcmp(f, "--backend")) {
            if (!strcmp(v, "cpu")) backend = CBINFER_BACKEND_CPU;
            else if (!strcmp(v, "cuda")) backend = CBINFER_BACKEND_CUDA;
            else usage_error("bad --backend", v);
        } else if (!strcmp(f, "--metric")) {
            if (!strcmp(v, "mse")) metric = CBI_TUNE_MSE;
            else if (!strcmp(v, "psnr")) metric = CBI_TUNE_PSNR;
            else if (!strcmp(v, "maxabs")) metric = CBI_TUNE_MAXABS;
            else if (!strcmp(v, "detect")) metric = CBI_TUNE_DETECT;
            else if (!strcmp(v, "pose")) metric = CBI_TUNE_POSE;
            else usage_error("bad --metric", v);
        } else if (!strcmp(f, "--init")) init = parse_num(f, v);
        else if (!strcmp(f, "--growth")) growth = parse_num(f, v);
        else if (!strcmp(f, "--budget")) {
            budget = parse_num(f, v);
            have_budget = 1;
        } else if (!strcmp(f, "--budget-weights")) {
            weights_arg = v;
            n_weights = cbi_tune_parse_weights(v, weights, MAX_CONVS);
            if (n_weights < 0) usage_error("bad --budget-weights", v);
        } else if (!strcmp(f, "--max-steps")) max_steps = (int)parse_int(f, v, 1);
        else if (!strcmp(f, "--warmup")) warmup = (int)parse_int(f, v, 0);
        else if (!strcmp(f, "--evaluate")) n_eval = (int)parse_int(f, v, 1);
        else if (!strcmp(f, "--sequences")) n_seq = (int)parse_int(f, v, 1);
        else if (!strcmp(f, "--out")) out_path = v;
        else if (!strcmp(f, "--start")) start_path = v;
        else if (!strcmp(f, "--refine")) refine = (int)parse_int(f, v, 0);
        else if (!strcmp(f, "--search-budget")) {
            search_budget_arg = parse_num(f, v);
            have_search_budget = 1;
        }
        else if (!strcmp(f, "--policy")) policy = v;
        else usage_error("unknown flag", f);
    }
    if (!ba.model && !ba.workload) usage_error("--model or --workload is required", NULL);
    if (have_search_budget && (!refine || start_path || search_budget_arg < 0))
        usage_error("--search-budget B >= 0 goes with --refine and a search (no --start)", NULL);
    if (start_path && !refine && !have_budget) budget = 0;
    else if (!have_budget || budget < 0) usage_error("--budget B >= 0 is required", NULL);
    if (!(init > 0)) usage_error("--init must be > 0", NULL);
    if (!(growth > 1)) usage_error("--growth must be > 1", NULL);
    if (n_videos) ba.input = CBI_BENCH_INPUT_VIDEO;
    char msg[MSG];
    if (cbi_bench_resolve(&ba, argv[0], getenv("CBINFER_DATA_DIR"), msg, sizeof msg) != 0)
        usage_error(msg, NULL);
    if (!n_videos) {
        if (!ba.input_path) usage_error("--video is required without --workload", NULL);
        parse_video(ba.input_path, &videos[n_videos++]);
        videos[0].a = 0;
        videos[0].b = -1;
    }

    struct timespec ts0, ts1;
    clock_gettime(CLOCK_MONOTONIC, &ts0);

    cbinfer_network_t *net;
    if (cbinfer_network_load(ba.model, &net, msg, sizeof msg) != CBINFER_STATUS_SUCCESS)
        die("%s: %s", ba.model, msg);
    const int n_conv = cbinfer_network_conv_count(net);
    if (n_conv < 1 || n_conv > MAX_CONVS) die("%s: %s", ba.model, "no (or too many) convolutions");
    if (weights_arg && n_weights != n_conv) {
        snprintf(msg, sizeof msg, "--budget-weights has %d values, the network has %d convolutions",
                 n_weights, n_conv);
        usage_error(msg, NULL);
    }
    double *layer_budget = malloc((size_t)n_conv * sizeof *layer_budget);
    double *search_budget = malloc((size_t)n_conv * sizeof *search_budget);
    if (!layer_budget || !search_budget) die("%s%s", "out of memory", "");
    if (cbi_tune_budgets(metric, budget, weights_arg ? weights : NULL, n_conv, layer_budget) != 0 ||
        cbi_tune_budgets(metric, have_search_budget ? search_budget_arg : budget,
                         weights_arg ? weights : NULL, n_conv, search_budget) != 0)
        usage_error("--budget-weights must not all be 0 with --metric psnr, detect or pose",
                    NULL);

    /* Frame size: --resize, else the first video's own size. */
    int w = ba.resize_w, h = ba.resize_h;
    if (!w) {
        cbi_video *vid;
        if (cbi_video_open(videos[0].path, 0, 0, 0, &vid, msg, sizeof msg) != 0)
            die("%s: %s", videos[0].path, msg);
        cbi_video_size(vid, &w, &h);
        cbi_video_close(vid);
    }

    /* Sequence starts: candidate starts are all positions in a range with
     * room for warmup + n_eval frames; K of them are taken evenly spaced. */
    if (warmup > 100000 || n_eval > 100000) usage_error("--warmup/--evaluate too large", NULL);
    const int L = warmup + n_eval;
    long cand = 0;
    for (int v = 0; v < n_videos; ++v) {
        videos[v].count = count_frames(&videos[v], w, h);
        if (videos[v].b >= 0 && videos[v].count < videos[v].b - videos[v].a + 1)
            fprintf(stderr, "cbinfer-tune: warning: %s has only %ld frames from %ld\n",
                    videos[v].path, videos[v].count, videos[v].a);
        if (videos[v].count >= L) cand += videos[v].count - L + 1;
    }
    if (cand < 1) die("%s%s", "no video range holds warmup + evaluate frames", "");
    if (n_seq > cand) n_seq = (int)cand;

    tune t;
    memset(&t, 0, sizeof t);
    t.budget = search_budget;
    t.total_budget = layer_budget;
    t.w = w;
    t.h = h;
    t.warmup = warmup;
    t.n_eval = n_eval;
    t.n_seq = n_seq;
    t.metric = metric;
    const size_t frame_bytes = (size_t)w * h * 3;
    t.seq = calloc((size_t)n_seq, sizeof *t.seq);
    t.dense = calloc((size_t)n_seq, sizeof *t.dense);
    long *seq_video = calloc((size_t)n_seq, sizeof *seq_video);
    long *seq_start = calloc((size_t)n_seq, sizeof *seq_start);
    if (!t.seq || !t.dense || !seq_video || !seq_start) die("%s%s", "out of memory", "");
    for (int k = 0; k < n_seq; ++k) {
        long c = (long)(((double)k + 0.5) * (double)cand / n_seq);
        int v = 0;
        while (videos[v].count < L || c > videos[v].count - L) {
            if (videos[v].count >= L) c -= videos[v].count - L + 1;
            ++v;
        }
        seq_video[k] = v;
        seq_start[k] = c;
        t.seq[k] = malloc(frame_bytes * (size_t)L);
        if (!t.seq[k]) die("%s%s", "out of memory", "");
    }
    /* Decode each range once, copying the frames the sequences need. */
    uint8_t *buf = malloc(frame_bytes);
    if (!buf) die("%s%s", "out of memory", "");
    for (int v = 0; v < n_videos; ++v) {
        int needed = 0;
        for (int k = 0; k < n_seq; ++k) needed |= seq_video[k] == v;
        if (!needed) continue;
        cbi_video *vid;
        if (cbi_video_open(videos[v].path, w, h, (int)videos[v].a, &vid, msg, sizeof msg) != 0)
            die("%s: %s", videos[v].path, msg);
        for (long f = 0; f < videos[v].count; ++f) {
            if (cbi_video_read(vid, buf, msg, sizeof msg) != 1) die("%s: %s", videos[v].path, msg);
            for (int k = 0; k < n_seq; ++k)
                if (seq_video[k] == v && f >= seq_start[k] && f < seq_start[k] + L)
                    memcpy(t.seq[k] + (size_t)(f - seq_start[k]) * frame_bytes, buf, frame_bytes);
        }
        cbi_video_close(vid);
    }
    free(buf);

    /* Dense reference of every evaluated frame, computed once; with
     * --stats-init also each conv input's spread on those frames. */
    cbinfer_stream_t *dense;
    if (cbinfer_stream_create(net, w, h, backend, CBINFER_MODE_DENSE, CBINFER_PRECISION_FP32,
                              &dense, msg, sizeof msg) != CBINFER_STATUS_SUCCESS)
        die("dense stream: %s%s", msg, "");
    if (cbinfer_stream_create(net, w, h, backend, CBINFER_MODE_CBINFER, CBINFER_PRECISION_FP32,
                              &t.cb, msg, sizeof msg) != CBINFER_STATUS_SUCCESS)
        die("change-based stream: %s%s", msg, "");
    if (policy) check(cbinfer_stream_set_policy(t.cb, NULL, policy), t.cb, "--policy");
    /* The loss covers every output (a detector's heads), as the bench's. */
    t.n_out = cbinfer_network_output_count(net);
    if (t.n_out < 1 || t.n_out > TUNE_MAX_OUTPUTS)
        die("%s: %s", ba.model, "not 1 to 64 outputs");
    for (int o = 0; o < t.n_out; ++o) {
        int oc, oh, ow;
        check(cbinfer_stream_output_dims_at(dense, o, &oc, &oh, &ow), dense, "output dims");
        t.out_off[o + 1] = t.out_off[o] + (size_t)oc * oh * ow;
        t.out_dims[o][0] = oc;
        t.out_dims[o][1] = oh;
        t.out_dims[o][2] = ow;
        t.task_out[o] = o;
    }
    if (metric == CBI_TUNE_POSE) find_pose_outputs(&t, net, ba.model);
    t.out_elems = t.out_off[t.n_out];
    t.out = malloc(t.out_elems * sizeof *t.out);
    double *spread = calloc((size_t)n_conv, sizeof *spread);
    if (!t.out || !spread) die("%s%s", "out of memory", "");
    for (int k = 0; k < n_seq; ++k) {
        t.dense[k] = malloc((size_t)n_eval * t.out_elems * sizeof **t.dense);
        if (!t.dense[k]) die("%s%s", "out of memory", "");
        /* A dense output depends on its frame alone. */
        for (int e = 0; e < n_eval; ++e) {
            check(cbinfer_stream_push_rgb8(dense, t.seq[k] + (size_t)(warmup + e) * frame_bytes,
                                           w, h, (size_t)w * 3), dense, "dense frame");
            check(read_outputs(&t, dense, t.dense[k] + (size_t)e * t.out_elems), dense,
                  "dense output");
            for (int c = 0; stats_init && c < n_conv; ++c) {
                double mean, sd;
                check(cbinfer_stream_conv_input_stats(dense, c, &mean, &sd), dense, "input stats");
                spread[c] += sd / ((double)n_seq * n_eval);
            }
        }
    }
    cbinfer_stream_destroy(dense);
    /* The task losses read the outputs as the decoders do: outputs of another
     * layout give NaN. */
    if ((metric == CBI_TUNE_DETECT || metric == CBI_TUNE_POSE) &&
        isnan(task_loss(&t, t.dense[0], t.dense[0])))
        die("--metric %s: %s", metric == CBI_TUNE_DETECT ? "detect" : "pose",
            metric == CBI_TUNE_DETECT ? "the outputs are not NanoDet heads (80 class logits, "
                                        "then 4 sides of bins)"
                                      : "the outputs are not PoseNet's (17, 34, 32, 32 channels "
                                        "on one grid)");

    fprintf(stderr, "cbinfer-tune: %s, %d convolutions, %dx%d, %d sequences of %d frames (%d "
                    "evaluated)\n", ba.model, n_conv, w, h, n_seq, L, n_eval);
    /* Sec. III-F, branches independently: tune_search.c holds every conv
     * that does not reach the one under tuning at 0. */
    check(cbinfer_stream_set_threshold_all(t.cb, 0.f), t.cb, "thresholds");
    t.net = net;
    t.n_conv = n_conv;
    unsigned char *reaches = malloc((size_t)n_conv * n_conv);
    double *layer_init = malloc((size_t)n_conv * sizeof *layer_init);
    t.applied = calloc((size_t)n_conv, sizeof *t.applied);
    cbi_tune_result *res = calloc((size_t)n_conv, sizeof *res);
    if (!reaches || !layer_init || !t.applied || !res) die("%s%s", "out of memory", "");
    int branches = 0;
    for (int i = 0; i < n_conv; ++i) {
        for (int j = 0; j < n_conv; ++j) {
            unsigned char *r = &reaches[(size_t)i * n_conv + j];
            const int reach = cbinfer_network_conv_reaches(net, i, j);
            if (reach < 0) die("%s%s", "out of memory while walking the graph", "");
            *r = (unsigned char)reach;
            branches |= j < i && !*r;
        }
        layer_init[i] = init;
        if (stats_init && spread[0] > 0 && spread[i] > 0)
            layer_init[i] = init * spread[i] / spread[0];
    }
    if (branches)
        fprintf(stderr, "cbinfer-tune: parallel branches: each conv is tuned with the convs "
                        "that do not reach it held at 0\n");
    int refine_taken = 0;
    double refine_macs[2] = {0, 0};
    if (start_path) {
        check(cbinfer_stream_load_thresholds(t.cb, start_path), t.cb, start_path);
        for (int i = 0; i < n_conv; ++i) {
            float v;
            check(cbinfer_stream_get_threshold(t.cb, cbinfer_network_conv_name(net, i), &v),
                  t.cb, start_path);
            res[i].tau = v;
            t.applied[i] = v;
        }
    } else if (cbi_tune_network(eval_config, &t, n_conv, reaches, layer_init, t.budget, growth,
                                max_steps, res, layer_done) != 0) {
        die("search failed: %s%s", t.failed ? t.err : "bad search parameters", "");
    }
    if (refine > 0) refine_taken = refine_result(&t, res, layer_init, refine, growth, refine_macs);
    for (int i = 0; i < n_conv; ++i)
        check(cbinfer_stream_set_threshold(t.cb, cbinfer_network_conv_name(net, i),
                                           (float)res[i].tau), t.cb, "threshold");

    /* Joint scaling curve of the result. */
    static const double scales[] = {0.25, 0.5, 0.75, 1, 1.25, 1.5, 2};
    double final_loss = NAN, final_mse = 0, final_share = 0;
    printf("%-6s %-12s %-10s %-13s %s\n", "scale", "loss", "psnr_db", "changed_share",
           "macs_share");
    for (size_t i = 0; i < sizeof scales / sizeof scales[0]; ++i) {
        check(cbinfer_stream_set_param(t.cb, CBINFER_PARAM_THRESHOLD_SCALE, scales[i]), t.cb,
              "scale");
        const double loss = evaluate(&t);
        if (t.failed) die("evaluation: %s%s", t.err, "");
        printf("%-6.2f %-12.6g %-10.3f %-13.4f %.4f\n", scales[i], loss,
               cbi_psnr_of_mse(t.last_mse), t.last_share, t.last_macs);
        if (scales[i] == 1) {
            final_loss = loss;
            final_mse = t.last_mse;
            final_share = t.last_share;
        }
    }
    check(cbinfer_stream_set_param(t.cb, CBINFER_PARAM_THRESHOLD_SCALE, 1), t.cb, "scale");

    clock_gettime(CLOCK_MONOTONIC, &ts1);
    const double secs = (double)(ts1.tv_sec - ts0.tv_sec) + 1e-9 * (double)(ts1.tv_nsec - ts0.tv_nsec);
    fprintf(stderr, "cbinfer-tune: final loss %.6g (PSNR %.3f dB, changed share %.4f) in %.1f s\n",
            final_loss, cbi_psnr_of_mse(final_mse), final_share, secs);

    if (out_path) {
        /* The header records how the thresholds were made. */
        size_t cap = 4096;
        for (int i = 0; i < argc; ++i) cap += strlen(argv[i]) + 1;
        for (int v = 0; v < n_videos; ++v) cap += strlen(videos[v].path) + 64;
        char *hdr = malloc(cap);
        if (!hdr) die("%s%s", "out of memory", "");
        size_t n = (size_t)snprintf(hdr, cap, "cbinfer-tune:");
        for (int i = 0; i < argc; ++i) n += (size_t)snprintf(hdr + n, cap - n, " %s", argv[i]);
        n += (size_t)snprintf(hdr + n, cap - n, "\nmodel: %s\ndata (%dx%d):", ba.model, w, h);
        for (int v = 0; v < n_videos; ++v)
            n += (size_t)snprintf(hdr + n, cap - n, " %s@%ld:%ld", videos[v].path, videos[v].a,
                                  videos[v].a + videos[v].count - 1);
        static const char *const metric_names[] = {"mse", "psnr", "maxabs", "detect", "pose"};
        n += (size_t)snprintf(hdr + n, cap - n,
                              "\nmetric %s, budget %g%s, weights %s, init %g%s, growth %g, "
                              "max-steps %d\nwarmup %d, evaluate %d, sequences %d\nfinal loss %.6g (PSNR %.3f "
                              "dB, changed share %.4f)",
                              metric_names[metric], budget,
                              metric == CBI_TUNE_PSNR    ? " dB to keep"
                              : metric == CBI_TUNE_MSE ||
                                      metric == CBI_TUNE_MAXABS ? " per layer"
                                                                : " in all",
                              weights_arg ? weights_arg : "(even)",
                              init, stats_init ? " (stats-scaled)" : "", growth, max_steps,
                              warmup, n_eval, n_seq, final_loss, cbi_psnr_of_mse(final_mse), final_share);
        if (refine > 0 && start_path)
            n += (size_t)snprintf(hdr + n, cap - n,
                                  "\nrefine %d: %d steps, MACs %.4f -> %.4f of dense, from %s",
                                  refine, refine_taken, refine_macs[0], refine_macs[1], start_path);
        else if (refine > 0)
            n += (size_t)snprintf(hdr + n, cap - n,
                                  "\nrefine %d: %d steps, MACs %.4f -> %.4f of dense, from a "
                                  "search at budget %g", refine, refine_taken, refine_macs[0],
                                  refine_macs[1], have_search_budget ? search_budget_arg : budget);
        time_t now = time(NULL);
        char date[64];
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
        snprintf(hdr + n, cap - n, "\ndate %s", date);
        check(cbinfer_stream_save_thresholds(t.cb, out_path, hdr), NULL, out_path);
        free(hdr);
        fprintf(stderr, "cbinfer-tune: wrote %s\n", out_path);
    }

    for (int k = 0; k < n_seq; ++k) {
        free(t.seq[k]);
        free(t.dense[k]);
    }
    free(t.seq);
    free(t.dense);
    free(t.out);
    free(spread);
    free(reaches);
    free(layer_init);
    free(t.budget);
    free(t.total_budget);
    free(t.applied);
    free(res);
    free(seq_video);
    free(seq_start);
    cbinfer_stream_destroy(t.cb);
    cbinfer_network_free(net);
    return 0;
}
