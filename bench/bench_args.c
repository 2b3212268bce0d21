/*
 * Command line of cbinfer-bench. Strict on purpose: a benchmark that quietly
 * reads "--frames 1O" as 1 or ignores a misspelt flag reports numbers for a
 * run nobody asked for.
 */
#include "bench_args.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbinfer.h"

/* Same bound as host/video/video.c, so a size accepted here is never rejected
 * there for being too large. */
#define CBI_BENCH_MAX_SIDE 16384

static int fail(char *err, size_t n, const char *fmt, ...)
{
    if (err && n > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, n, fmt, ap);
        va_end(ap);
    }
    return 2;
}

/* Whole-string integer in [min, max]. Distinguishes "not a number" from "out
 * of range" so the message says which. */
static int parse_int(const char *flag, const char *s, long long min, long long max,
                     long long *out, char *err, size_t n)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    /* strtoll skips leading blanks; a value with them is a quoting mistake. */
    if (*s == '\0' || *s == ' ' || *s == '\t' || end == s || *end != '\0')
        return fail(err, n, "%s needs an integer, got '%s'", flag, s);
    if (errno == ERANGE || v < min || v > max) {
        if (v < 0 && min >= 0) return fail(err, n, "%s must not be negative, got '%s'", flag, s);
        if (v < min && max == LLONG_MAX)
            return fail(err, n, "%s must be at least %lld, got '%s'", flag, min, s);
        return fail(err, n, "%s must be in %lld..%lld, got '%s'", flag, min, max, s);
    }
    *out = v;
    return 0;
}

/* "WxH" with both sides in 1..CBI_BENCH_MAX_SIDE. `end` (may be NULL) gets the
 * first character after H; without it the size must be the whole string. */
static int parse_size(const char *flag, const char *s, int *w, int *h, const char **end,
                      char *err, size_t n)
{
    const char *p = s;
    long long side[2] = {0, 0};
    for (int i = 0; i < 2; ++i) {
        if (*p < '0' || *p > '9') goto malformed;
        long long v = 0;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (*p - '0');
            if (v > CBI_BENCH_MAX_SIDE) v = CBI_BENCH_MAX_SIDE + 1; /* saturate, no overflow */
            ++p;
        }
        side[i] = v;
        if (i == 0) {
            if (*p != 'x' && *p != 'X') goto malformed;
            ++p;
        }
    }
    if (end)
        *end = p;
    else if (*p != '\0')
        goto malformed;
    if (side[0] < 1 || side[1] < 1 || side[0] > CBI_BENCH_MAX_SIDE || side[1] > CBI_BENCH_MAX_SIDE)
        return fail(err, n, "%s: size '%s' out of range (each side 1..%d)", flag, s,
                    CBI_BENCH_MAX_SIDE);
    *w = (int)side[0];
    *h = (int)side[1];
    return 0;
malformed:
    return fail(err, n, "%s: malformed size '%s' (expected WxH, e.g. 384x288)", flag, s);
}

static int set_input(cbi_bench_args *a, cbi_bench_input kind, const char *flag, const char *path,
                     char *err, size_t n)
{
    if (a->input != CBI_BENCH_INPUT_NONE)
        return fail(err, n, "%s: give exactly one input (--video, --raw or --input-npy)", flag);
    if (*path == '\0') return fail(err, n, "%s: empty path", flag);
    a->input = kind;
    a->input_path = path;
    return 0;
}

/* --workload: a model of <build>/models with the input it is meant for.
 * Sizes are W x H: 384x288 is the README's main job; 490x368 is OpenPose's
 * 368-pixel-high net input for a 4:3 video and 1040x776 the CBinfer paper's
 * scene-labeling frame. */
static const struct workload {
    const char *name, *video;
    int w, h;
    int task; /* the --task it implies */
} workloads[] = {
    {"vgg7-noise1", "vtest.avi", 384, 288, CBI_BENCH_TASK_NONE},
    {"realesr-x2", "vtest.avi", 384, 288, CBI_BENCH_TASK_NONE},
    {"scene-labeling-synthetic", "vtest.avi", 1040, 776, CBI_BENCH_TASK_NONE},
    {"openpose-synthetic", "vtest.avi", 490, 368, CBI_BENCH_TASK_NONE},
    {"nanodet", "vtest.avi", 384, 288, CBI_BENCH_TASK_DETECT}, /* multiples of 32 */
    {"posenet", "vtest.avi", 385, 289, CBI_BENCH_TASK_POSE},   /* 16k + 1 */
};

const char *cbi_bench_workload_names(void)
{
    return "vgg7-noise1, realesr-x2, scene-labeling-synthetic, openpose-synthetic, nanodet, "
           "posenet";
}

static const struct workload *find_workload(const char *name)
{
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; ++i)
        if (strcmp(workloads[i].name, name) == 0) return &workloads[i];
    return NULL;
}

/* A finite, non-negative number as a whole string. */
static int parse_scale(const char *flag, const char *s, const char *end_chars, double *out,
                       const char **end_out, char *err, size_t n)
{
    char *end = NULL;
    double v = strtod(s, &end);
    int bad_end = end_chars ? (*end != '\0' && !strchr(end_chars, *end)) : *end != '\0';
    if (*s == '\0' || *s == ' ' || *s == '\t' || end == s || bad_end)
        return fail(err, n, "%s needs a number, got '%s'", flag, s);
    if (!isfinite(v) || fabs(v) > FLT_MAX)
        return fail(err, n, "%s must be finite, got '%s'", flag, s);
    if (v < 0.0) return fail(err, n, "%s must not be negative, got '%s'", flag, s);
    *out = v == 0.0 ? 0.0 : v;
    if (end_out) *end_out = end;
    return 0;
}

/* "S1,S2,...": at least one value, no empty items. */
static int parse_sweep(const char *s, cbi_bench_args *a, char *err, size_t n)
{
    a->sweep_count = 0;
    const char *p = s;
    for (;;) {
        if (*p == '\0' || *p == ',')
            return fail(err, n, "--sweep: empty item in '%s' (expected S1,S2,...)", s);
        if (a->sweep_count == CBI_BENCH_MAX_SWEEP)
            return fail(err, n, "--sweep: more than %d scales", CBI_BENCH_MAX_SWEEP);
        double v = 0.0;
        const char *end = NULL;
        /* Messages name the item, so "0.5,x" says which one is wrong. */
        char item[64];
        size_t len = strcspn(p, ",");
        if (len >= sizeof item) return fail(err, n, "--sweep: item too long in '%s'", s);
        memcpy(item, p, len);
        item[len] = '\0';
        if (parse_scale("--sweep", item, NULL, &v, &end, err, n) != 0) return 2;
        a->sweep[a->sweep_count++] = v;
        p += len;
        if (*p == '\0') return 0;
        ++p; /* ',' */
    }
}

static int path_join(char *dst, size_t cap, const char *a, const char *b, const char *c)
{
    int len = snprintf(dst, cap, "%s%s%s", a, b, c);
    return len < 0 || (size_t)len >= cap ? -1 : 0;
}

int cbi_bench_resolve(cbi_bench_args *a, const char *exe_path, const char *data_dir, char *err,
                      size_t n)
{
    if (err && n > 0) err[0] = '\0';
    if (!a->workload) return 0;
    const struct workload *w = find_workload(a->workload);
    if (!w) return fail(err, n, "unknown workload '%s'", a->workload);
    if (!a->model) {
        char dir[CBI_BENCH_PATH_MAX];
        if (a->model_dir) {
            if (path_join(dir, sizeof dir, a->model_dir, "", "") != 0)
                return fail(err, n, "--model-dir: path too long");
        } else {
            /* <build>/bench/cbinfer-bench -> <build>/models */
            if (!exe_path || path_join(dir, sizeof dir, exe_path, "", "") != 0)
                return fail(err, n, "--workload %s: cannot locate the model directory; give "
                            "--model-dir or --model", w->name);
            for (int up = 0; up < 2; ++up) {
                char *slash = strrchr(dir, '/');
                if (!slash)
                    return fail(err, n, "--workload %s: cannot locate the model directory; "
                                "give --model-dir or --model", w->name);
                *slash = '\0';
            }
            if (strlen(dir) + sizeof "/models" > sizeof dir)
                return fail(err, n, "--workload: path too long");
            strcat(dir, "/models");
        }
        if (path_join(a->model_buf, sizeof a->model_buf, dir, "/", w->name) != 0 ||
            strlen(a->model_buf) + sizeof ".onnx" > sizeof a->model_buf)
            return fail(err, n, "--workload: model path too long");
        strcat(a->model_buf, ".onnx");
        a->model = a->model_buf;
    }
    if (a->input == CBI_BENCH_INPUT_NONE) {
        if (!data_dir || !*data_dir)
            return fail(err, n, "--workload %s: no input given and CBINFER_DATA_DIR is not set; "
                        "give --video", w->name);
        if (path_join(a->video_buf, sizeof a->video_buf, data_dir, "/data/video/", w->video) != 0)
            return fail(err, n, "--workload: video path too long");
        a->input = CBI_BENCH_INPUT_VIDEO;
        a->input_path = a->video_buf;
    }
    if (!a->resize_given && a->input != CBI_BENCH_INPUT_NPY) {
        a->resize_w = w->w;
        a->resize_h = w->h;
    }
    if (!a->task_given) a->task = w->task;
    return 0;
}

const char *cbi_bench_usage(void)
{
    return "usage: cbinfer-bench --model PATH INPUT [options]\n"
           "\n"
           "Runs an ONNX model over a video with cbinfer and reports, per frame, the\n"
           "share of recomputed pixels and the time, then a summary.\n"
           "\n"
           "input, exactly one of:\n"
           "  --video PATH          a video file (anything FFmpeg decodes)\n"
           "  --raw WxH:PATH        raw rgb24 frames of W x H; PATH '-' reads stdin\n"
           "  --input-npy PATH      one float32 NCHW tensor (N = 1), fed as is, run once\n"
           "\n"
           "options:\n"
           "  --model PATH          the ONNX model (required)\n"
           "  --resize WxH          resize frames before the network (bilinear)\n"
           "  --skip N              first frame to process (default 0)\n"
           "  --frames N            frames to process (default: all)\n"
           "  --backend cpu|cuda    default: cuda when available, else cpu\n"
           "  --mode dense|cbinfer|cbinfer-ff|compare   default: cbinfer; compare runs a\n"
           "                        dense and a change-based stream on the same frames,\n"
           "                        interleaved, and reports speedup and quality;\n"
           "                        cbinfer-ff is --mode cbinfer --policy cbinfer-ff\n"
           "  --policy cbinfer|cbinfer-ff|evnet|skipconv|sigmadelta   the change policy of\n"
           "                        every conv (default cbinfer); the threshold is tau, h,\n"
           "                        eps or the step s\n"
           "  --granularity element|pixel|chunk:G   evnet: what fires together (default\n"
           "                        element)\n"
           "  --compute auto|scatter|recompute   evnet, sigmadelta: delta scatter, or\n"
           "                        recompute from the reference (closed memory; same\n"
           "                        outputs); auto (default) scatters convs of >= 16 inputs\n"
           "  --gate input|output   skipconv: Input-Norm or Output-Norm gate (default input)\n"
           "  --block B             skipconv: B x B output blocks (default 1)\n"
           "  --reset R             skipconv: dense re-flush every R frames (default 0: never)\n"
           "  --precision fp32|tf32|fp16   default: fp32 (CPU: fp32 only)\n"
           "  --threshold T         change threshold of every change-detecting layer, in\n"
           "                        the units of that layer's input (default 0: exact)\n"
           "  --threshold-scale S   multiplies every threshold (default 1)\n"
           "  --thresholds FILE     per-layer thresholds, lines \"node value\" ('#' comments),\n"
           "                        applied after --threshold\n"
           "  --break-even FILE     per-layer break-even changed shares, same format\n"
           "  --sweep S1,S2,...     one pass per threshold scale (throughput against error)\n"
           "  --warmup N            frames pushed before timing starts (default 0; the\n"
           "                        stream's first frame always runs dense)\n"
           "  --per-layer           per-layer profile from a separate pass over the same\n"
           "                        frames with statistics on (the timed run stays clean)\n"
           "  --json FILE           full report, schema cbinfer-bench/1\n"
           "  --export-profile FILE per-layer profile in trtexec's shape (implies --per-layer)\n"
           "  --csv FILE            per-frame records\n"
           "  --workload NAME       a model of the model directory with its default input\n"
           "                        and size: vgg7-noise1, realesr-x2,\n"
           "                        scene-labeling-synthetic, openpose-synthetic,\n"
           "                        nanodet, posenet\n"
           "                        (video $CBINFER_DATA_DIR/data/video/vtest.avi);\n"
           "                        --model, --video, --resize override\n"
           "  --model-dir DIR       default: <build>/models, next to the bench's folder\n"
           "  --calibrate FILE      measure per-layer break-even shares on the given frames\n"
           "                        and write them to FILE (no timed run)\n"
           "  --dump-output DIR     write the output of frame k to DIR/frame_%05d.npy\n"
           "                        (several outputs: DIR/frame_%05d_o<k>.npy)\n"
           "                        (change-based output in compare mode; first pass only)\n"
           "  --task none|detect|pose   decode the outputs as NanoDet boxes or PoseNet\n"
           "                        poses (default: the workload's, nanodet and posenet;\n"
           "                        else none); compare mode reports the change-based\n"
           "                        boxes' recall and precision against dense (IoU >= 0.5)\n"
           "                        or the keypoints' PCKh@0.5\n"
           "  --dump-detections FILE   JSON lines {\"frame\": k, \"detections\": [[x0, y0,\n"
           "                        x1, y1, score, class], ...]} (pose: \"poses\": [{\"score\",\n"
           "                        \"keypoints\": [[x, y, score] x 17]}]) in input pixels, per\n"
           "                        timed frame of the first pass; compare mode adds the\n"
           "                        dense stream's as \"dense\"\n"
           "  --stats               per-layer table (changed share, time per step) from\n"
           "                        the timed run itself\n"
           "  --reuse-1x1           1x1 convs reuse the producer's change indices\n"
           "  --threads N           CPU threads of each stream (default 0: every core)\n"
           "  --cameras N           also N cameras in one process: N streams on the input\n"
           "                        from N start frames spread over it, --frames each\n"
           "                        (default: an N-th of the input), stepped together;\n"
           "                        times a dense batch, N change-based streams pushed one\n"
           "                        by one and a change-based batch (by mode), in\n"
           "                        camera-frames per second\n"
           "  --dump-frames FILE    write the rgb24 frames fed to the network (after\n"
           "                        --resize, warm-up included, first pass) to FILE, as\n"
           "                        --raw WxH:FILE reads them (tools/ort_bench.mjs too)\n"
           "  --help, --version\n"
           "\n"
           "exit status: 0 success, 1 runtime error, 2 usage error\n";
}

/* The policy spec of --policy and its options (and --mode cbinfer-ff); an
 * option of another policy is a usage error, never ignored. */
static int compose_policy(cbi_bench_args *a, char *err, size_t n)
{
    if (a->mode == CBINFER_MODE_CBINFER_FF) {
        if (a->policy && strcmp(a->policy, "cbinfer-ff") != 0)
            return fail(err, n, "--mode cbinfer-ff is --policy cbinfer-ff; not with --policy %s",
                        a->policy);
        a->policy = "cbinfer-ff";
        a->mode = CBINFER_MODE_CBINFER;
    }
    const char *kind = a->policy ? a->policy : "cbinfer";
    const int evnet = strcmp(kind, "evnet") == 0, skip = strcmp(kind, "skipconv") == 0;
    if (a->granularity && !evnet)
        return fail(err, n, "--granularity applies to --policy evnet, not %s", kind);
    const int sd = strcmp(kind, "sigmadelta") == 0;
    if (a->compute && !evnet && !sd)
        return fail(err, n, "--compute applies to --policy evnet or sigmadelta, not %s", kind);
    const char *skip_flag = a->gate         ? "--gate"
                            : a->block >= 0 ? "--block"
                            : a->reset >= 0 ? "--reset"
                                            : NULL;
    if (skip_flag && !skip)
        return fail(err, n, "%s applies to --policy skipconv, not %s", skip_flag, kind);
    if (a->mode == CBINFER_MODE_DENSE && a->policy)
        return fail(err, n, "--policy sets the change-based stream; --mode dense has none");
    size_t len = (size_t)snprintf(a->policy_spec, sizeof a->policy_spec, "%s", kind);
    if (evnet && a->granularity) {
        const char *g = a->granularity;
        if (strncmp(g, "chunk:", 6) == 0)
            snprintf(a->policy_spec + len, sizeof a->policy_spec - len, ":chunk=%s", g + 6);
        else
            snprintf(a->policy_spec + len, sizeof a->policy_spec - len, ":%s", g);
    }
    const int explicit_compute = a->compute && strcmp(a->compute, "auto") != 0;
    if (explicit_compute) {
        len = strlen(a->policy_spec);
        snprintf(a->policy_spec + len, sizeof a->policy_spec - len, "%s%s",
                 strchr(a->policy_spec, ':') ? "," : ":", a->compute);
    }
    if (skip)
        snprintf(a->policy_spec + len, sizeof a->policy_spec - len, ":%s,block=%d,reset=%d",
                 a->gate ? a->gate : "input", a->block >= 0 ? a->block : 1,
                 a->reset >= 0 ? a->reset : 0);
    return 0;
}

int cbi_bench_parse_args(int argc, char **argv, cbi_bench_args *out, char *err, size_t n)
{
    if (err && n > 0) err[0] = '\0';
    if (!out) return fail(err, n, "internal: no output struct");
    memset(out, 0, sizeof *out);
    out->frames = -1;
    out->backend = CBI_BENCH_BACKEND_AUTO;
    out->mode = CBINFER_MODE_CBINFER;
    out->block = out->reset = -1;
    out->precision = CBINFER_PRECISION_FP32;
    out->threshold_scale = 1.0;
    int skip_given = 0, frames_given = 0, resize_given = 0, warmup_given = 0;

    for (int i = 1; i < argc; ++i) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
            return fail(err, n, "unexpected argument '%s' (see --help)", arg);

        /* Split "--flag=value"; the flag name is compared without the value. */
        char flag[64];
        const char *eq = strchr(arg, '=');
        size_t flag_len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (flag_len >= sizeof flag) return fail(err, n, "unknown flag '%s' (see --help)", arg);
        memcpy(flag, arg, flag_len);
        flag[flag_len] = '\0';

        if (strcmp(flag, "--help") == 0 || strcmp(flag, "--version") == 0 ||
            strcmp(flag, "--stats") == 0 || strcmp(flag, "--reuse-1x1") == 0 ||
            strcmp(flag, "--per-layer") == 0) {
            if (eq) return fail(err, n, "%s takes no value", flag);
            if (flag[2] == 'h') {
                out->help = 1;
                return 0;
            }
            if (flag[2] == 'v') {
                out->version = 1;
                return 0;
            }
            if (flag[2] == 'r')
                out->reuse_1x1 = 1;
            else if (flag[2] == 'p')
                out->per_layer = 1;
            else
                out->stats = 1;
            continue;
        }

        static const char *const with_value[] = {
            "--model", "--video", "--raw", "--input-npy", "--resize", "--skip", "--frames",
            "--backend", "--mode", "--threshold", "--dump-output", "--warmup", "--precision",
            "--threshold-scale", "--thresholds", "--break-even", "--sweep", "--json",
            "--export-profile", "--csv", "--workload", "--model-dir", "--calibrate",
            "--threads", "--dump-frames", "--policy", "--granularity", "--gate", "--block",
            "--reset", "--compute", "--task", "--dump-detections", "--cameras"};
        int known = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; ++k)
            known |= strcmp(flag, with_value[k]) == 0;
        if (!known) return fail(err, n, "unknown flag '%s' (see --help)", flag);

        const char *val;
        if (eq) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc) return fail(err, n, "%s needs a value", flag);
            val = argv[++i];
        }

        int rc = 0;
        long long num = 0;
        if (strcmp(flag, "--model") == 0) {
            if (*val == '\0') return fail(err, n, "--model: empty path");
            out->model = val;
        } else if (strcmp(flag, "--video") == 0) {
            rc = set_input(out, CBI_BENCH_INPUT_VIDEO, flag, val, err, n);
        } else if (strcmp(flag, "--input-npy") == 0) {
            rc = set_input(out, CBI_BENCH_INPUT_NPY, flag, val, err, n);
        } else if (strcmp(flag, "--raw") == 0) {
            /* The size ends at the first ':'; the rest is the path, which may
             * itself contain ':'. */
            const char *after = NULL;
            int w = 0, h = 0;
            rc = parse_size(flag, val, &w, &h, &after, err, n);
            if (rc == 0 && *after != ':')
                rc = fail(err, n, "--raw: expected WxH:PATH (e.g. 640x480:frames.rgb), got '%s'",
                          val);
            if (rc == 0) rc = set_input(out, CBI_BENCH_INPUT_RAW, flag, after + 1, err, n);
            if (rc == 0) {
                out->raw_w = w;
                out->raw_h = h;
            }
        } else if (strcmp(flag, "--resize") == 0) {
            rc = parse_size(flag, val, &out->resize_w, &out->resize_h, NULL, err, n);
            resize_given = 1;
        } else if (strcmp(flag, "--skip") == 0) {
            rc = parse_int(flag, val, 0, INT_MAX, &num, err, n);
            out->skip = (int)num;
            skip_given = 1;
        } else if (strcmp(flag, "--frames") == 0) {
            rc = parse_int(flag, val, 1, LLONG_MAX, &num, err, n);
            out->frames = num;
            frames_given = 1;
        } else if (strcmp(flag, "--backend") == 0) {
            if (strcmp(val, "cpu") == 0)
                out->backend = CBINFER_BACKEND_CPU;
            else if (strcmp(val, "cuda") == 0)
                out->backend = CBINFER_BACKEND_CUDA;
            else
                rc = fail(err, n, "--backend must be cpu or cuda, got '%s'", val);
        } else if (strcmp(flag, "--mode") == 0) {
            if (strcmp(val, "dense") == 0)
                out->mode = CBINFER_MODE_DENSE;
            else if (strcmp(val, "cbinfer") == 0)
                out->mode = CBINFER_MODE_CBINFER;
            else if (strcmp(val, "cbinfer-ff") == 0)
                out->mode = CBINFER_MODE_CBINFER_FF; /* folded into the policy below */
            else if (strcmp(val, "compare") == 0)
                out->mode = CBI_BENCH_MODE_COMPARE;
            else
                rc = fail(err, n, "--mode must be dense, cbinfer, cbinfer-ff or compare, got '%s'",
                          val);
        } else if (strcmp(flag, "--threshold") == 0) {
            /* strtod, then a range check: an underflow to 0 is harmless, an
             * overflow of float is not. */
            char *end = NULL;
            double t = strtod(val, &end);
            if (*val == '\0' || *val == ' ' || *val == '\t' || end == val || *end != '\0')
                rc = fail(err, n, "--threshold needs a number, got '%s'", val);
            else if (!isfinite(t) || fabs(t) > FLT_MAX)
                rc = fail(err, n, "--threshold must be finite, got '%s'", val);
            else if (t < 0.0)
                rc = fail(err, n, "--threshold must not be negative, got '%s'", val);
            else
                out->threshold = t == 0.0 ? 0.0f : (float)t; /* "-0" becomes +0 */
        } else if (strcmp(flag, "--threads") == 0) {
            rc = parse_int(flag, val, 0, 4096, &num, err, n);
            out->threads = (int)num;
        } else if (strcmp(flag, "--cameras") == 0) {
            rc = parse_int(flag, val, 1, 256, &num, err, n);
            out->cameras = (int)num;
        } else if (strcmp(flag, "--dump-frames") == 0) {
            if (*val == '\0') return fail(err, n, "--dump-frames: empty path");
            out->dump_frames = val;
        } else if (strcmp(flag, "--task") == 0) {
            if (strcmp(val, "none") == 0)
                out->task = CBI_BENCH_TASK_NONE;
            else if (strcmp(val, "detect") == 0)
                out->task = CBI_BENCH_TASK_DETECT;
            else if (strcmp(val, "pose") == 0)
                out->task = CBI_BENCH_TASK_POSE;
            else
                rc = fail(err, n, "--task must be none, detect or pose, got '%s'", val);
            out->task_given = 1;
        } else if (strcmp(flag, "--dump-detections") == 0) {
            if (*val == '\0') return fail(err, n, "--dump-detections: empty path");
            out->dump_detections = val;
        } else if (strcmp(flag, "--dump-output") == 0) {
            if (*val == '\0') return fail(err, n, "--dump-output: empty path");
            out->dump_dir = val;
        } else if (strcmp(flag, "--warmup") == 0) {
            rc = parse_int(flag, val, 0, INT_MAX, &num, err, n);
            out->warmup = (int)num;
            warmup_given = 1;
        } else if (strcmp(flag, "--precision") == 0) {
            if (strcmp(val, "fp32") == 0)
                out->precision = CBINFER_PRECISION_FP32;
            else if (strcmp(val, "tf32") == 0)
                out->precision = CBINFER_PRECISION_TF32;
            else if (strcmp(val, "fp16") == 0)
                out->precision = CBINFER_PRECISION_FP16;
            else
                rc = fail(err, n, "--precision must be fp32, tf32 or fp16, got '%s'", val);
        } else if (strcmp(flag, "--threshold-scale") == 0) {
            rc = parse_scale(flag, val, NULL, &out->threshold_scale, NULL, err, n);
            out->threshold_scale_given = 1;
        } else if (strcmp(flag, "--policy") == 0) {
            static const char *const kinds[] = {"cbinfer", "cbinfer-ff", "evnet", "skipconv",
                                                "sigmadelta"};
            out->policy = NULL;
            for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; ++k)
                if (strcmp(val, kinds[k]) == 0) out->policy = kinds[k];
            if (!out->policy)
                rc = fail(err, n, "--policy must be cbinfer, cbinfer-ff, evnet, skipconv or "
                                  "sigmadelta, got '%s'", val);
        } else if (strcmp(flag, "--granularity") == 0) {
            int g;
            char tail;
            if (strcmp(val, "element") == 0 || strcmp(val, "pixel") == 0 ||
                (sscanf(val, "chunk:%d%c", &g, &tail) == 1 && g >= 1 && g <= 65536))
                out->granularity = val;
            else
                rc = fail(err, n, "--granularity must be element, pixel or chunk:G (G in "
                                  "1..65536), got '%s'", val);
        } else if (strcmp(flag, "--compute") == 0) {
            if (strcmp(val, "auto") == 0 || strcmp(val, "scatter") == 0 ||
                strcmp(val, "recompute") == 0)
                out->compute = val;
            else
                rc = fail(err, n, "--compute must be auto, scatter or recompute, got '%s'", val);
        } else if (strcmp(flag, "--gate") == 0) {
            if (strcmp(val, "input") == 0 || strcmp(val, "output") == 0)
                out->gate = val;
            else
                rc = fail(err, n, "--gate must be input or output, got '%s'", val);
        } else if (strcmp(flag, "--block") == 0 || strcmp(flag, "--reset") == 0) {
            const int is_block = flag[2] == 'b';
            char *end;
            errno = 0;
            long v = strtol(val, &end, 10);
            if (end == val || *end || errno || v < (is_block ? 1 : 0) || v > 65536)
                rc = fail(err, n, "%s needs a whole number in %d..65536, got '%s'", flag,
                          is_block ? 1 : 0, val);
            else if (is_block)
                out->block = (int)v;
            else
                out->reset = (int)v;
        } else if (strcmp(flag, "--sweep") == 0) {
            rc = parse_sweep(val, out, err, n);
        } else if (strcmp(flag, "--workload") == 0) {
            const struct workload *w = find_workload(val);
            if (!w)
                rc = fail(err, n, "unknown workload '%s' (one of: %s)", val,
                          cbi_bench_workload_names());
            else
                out->workload = w->name;
        } else {
            /* The remaining flags all take a path. */
            static const struct {
                const char *flag;
                size_t offset;
            } paths[] = {
                {"--thresholds", offsetof(cbi_bench_args, thresholds_file)},
                {"--break-even", offsetof(cbi_bench_args, break_even_file)},
                {"--json", offsetof(cbi_bench_args, json_path)},
                {"--export-profile", offsetof(cbi_bench_args, profile_path)},
                {"--csv", offsetof(cbi_bench_args, csv_path)},
                {"--model-dir", offsetof(cbi_bench_args, model_dir)},
                {"--calibrate", offsetof(cbi_bench_args, calibrate_path)},
            };
            for (size_t k = 0; k < sizeof paths / sizeof paths[0]; ++k) {
                if (strcmp(flag, paths[k].flag) != 0) continue;
                if (*val == '\0') return fail(err, n, "%s: empty path", flag);
                *(const char **)((char *)out + paths[k].offset) = val;
            }
        }
        if (rc != 0) return rc;
    }

    out->resize_given = resize_given;
    const int rc_policy = compose_policy(out, err, n);
    if (rc_policy != 0) return rc_policy;
    /* With --workload, cbi_bench_resolve() supplies the model and the input. */
    if (!out->model && !out->workload)
        return fail(err, n, "--model is required (see --help)");
    if (out->input == CBI_BENCH_INPUT_NONE && !out->workload)
        return fail(err, n, "an input is required: --video, --raw or --input-npy");
    if (out->profile_path) out->per_layer = 1;
    if (out->sweep_count > 0 && out->threshold_scale_given)
        return fail(err, n, "--sweep and --threshold-scale exclude each other");
    if (out->calibrate_path) {
        if (out->mode == CBINFER_MODE_DENSE)
            return fail(err, n, "--calibrate measures change-based layers; not with --mode dense");
        static const char *const timed_only[] = {"--sweep", "--json", "--csv", "--export-profile",
                                                 "--per-layer", "--dump-detections"};
        const int given[] = {out->sweep_count > 0, out->json_path != NULL, out->csv_path != NULL,
                             out->profile_path != NULL, out->per_layer,
                             out->dump_detections != NULL};
        for (int k = 0; k < 6; ++k)
            if (given[k])
                return fail(err, n, "--calibrate runs no timed benchmark; %s does not apply",
                            timed_only[k]);
    }
    if (out->input == CBI_BENCH_INPUT_RAW && strcmp(out->input_path, "-") == 0 &&
        (out->sweep_count > 1 || out->per_layer || out->profile_path || out->calibrate_path))
        return fail(err, n, "--raw WxH:- reads stdin, which can be read only once; --sweep, "
                            "--per-layer, --export-profile and --calibrate read the frames again "
                            "and need a file");
    if (out->cameras > 0) {
        if (out->input == CBI_BENCH_INPUT_NPY)
            return fail(err, n, "--cameras needs a video or raw frames, not --input-npy");
        if (out->input == CBI_BENCH_INPUT_RAW && strcmp(out->input_path, "-") == 0)
            return fail(err, n, "--cameras reads the frames again; it needs a file, not stdin");
        if (out->calibrate_path) return fail(err, n, "--cameras does not apply to --calibrate");
    }
    if (out->input == CBI_BENCH_INPUT_NPY) {
        /* One tensor, fed as is: frame selection and resizing have nothing to act on. */
        if (resize_given) return fail(err, n, "--resize does not apply to --input-npy");
        if (skip_given) return fail(err, n, "--skip does not apply to --input-npy");
        if (frames_given) return fail(err, n, "--frames does not apply to --input-npy");
        if (warmup_given) return fail(err, n, "--warmup does not apply to --input-npy");
        if (out->dump_frames)
            return fail(err, n, "--dump-frames writes rgb24 frames; --input-npy has none");
    }
    return 0;
}
