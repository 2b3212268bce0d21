/* cbinfer-bench --calibrate: per-layer break-even shares; see bench.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_stats.h"

/* ---------------------------------------------------------- calibration --- */

typedef struct {
    cbinfer_stream_t *s;
    int dense;       /* the dense reference pass */
    double *dense_ms; /* [layer] sum of total_ms */
    long long dense_n;
    double *x, *y; /* [layer][point]: changed share, total_ms */
    long long *np; /* points per layer */
    long long cap; /* points per layer the arrays hold */
} calib_ctx;

static int calib_frame(bench *b, long long k, int timed, void *vctx)
{
    calib_ctx *c = vctx;
    double ms;
    (void)timed; /* calibration uses every frame after the stream's first */
    if (bench_push(b, c->s, k, &ms) != 0) return 1;
    cbinfer_frame_stats fs;
    cbinfer_status st = cbinfer_stream_frame_stats(c->s, &fs);
    if (st != CBINFER_STATUS_SUCCESS) return bench_stream_error(c->s, "frame statistics", st);
    if (fs.frame_index == 0) return 0; /* dense initialisation: not a data point */
    for (int i = 0; i < b->layer_count; ++i) {
        cbinfer_layer_stats ls;
        st = cbinfer_stream_layer_stats(c->s, i, &ls);
        if (st != CBINFER_STATUS_SUCCESS) return bench_stream_error(c->s, "layer statistics", st);
        if (c->dense) {
            c->dense_ms[i] += ls.total_ms;
        } else if (ls.total_px > 0 && c->np[i] < c->cap) {
            long long j = i * c->cap + c->np[i]++;
            c->x[j] = (double)ls.changed_px / (double)ls.total_px;
            c->y[j] = ls.total_ms;
        }
    }
    if (c->dense) c->dense_n++;
    return 0;
}

static int is_conv(const bench *b, const char *name)
{
    int n = cbinfer_network_conv_count(b->net);
    for (int i = 0; i < n; ++i) {
        const char *c = cbinfer_network_conv_name(b->net, i);
        if (c && name && strcmp(c, name) == 0) return 1;
    }
    return 0;
}

/* --calibrate: per conv layer, the dense time, and (changed share, time)
 * pairs of the change-based path at threshold scales 0, 0.5, 1, 2 and 4 with
 * the dense fallback off; time = a + b * share by least squares; break-even
 * = (t_dense - a) / b in [0, 1]. */
int bench_calibrate(bench *b)
{
    static const double scales[] = {0.0, 0.5, 1.0, 2.0, 4.0};
    const int n_scales = (int)(sizeof scales / sizeof scales[0]);
    const int L = b->layer_count;
    calib_ctx c;
    memset(&c, 0, sizeof c);
    int rc = 1;
    FILE *f = NULL;
    const char **names = calloc((size_t)L + 1, sizeof *names);
    c.dense_ms = calloc((size_t)L + 1, sizeof *c.dense_ms);
    c.np = calloc((size_t)L + 1, sizeof *c.np);
    if (!names || !c.dense_ms || !c.np) {
        bench_error("out of memory");
        goto done;
    }
    if (bench_set_param(b->dense, CBINFER_PARAM_COLLECT_STATS, 1.0, "--calibrate") != 0 ||
        bench_set_param(b->cb, CBINFER_PARAM_COLLECT_STATS, 1.0, "--calibrate") != 0)
        goto done;
    /* Measure the change-based path itself: no layer may fall back to dense. */
    cbinfer_status st = cbinfer_stream_set_break_even_all(b->cb, 1.0f);
    if (st != CBINFER_STATUS_SUCCESS) {
        bench_stream_error(b->cb, "--calibrate: disabling the dense fallback", st);
        goto done;
    }

    c.s = b->dense;
    c.dense = 1;
    if (bench_reset(b->dense) != 0 || bench_for_each_frame(b, "calibration: dense", calib_frame, &c) != 0)
        goto done;
    if (c.dense_n == 0) {
        bench_error("--calibrate needs at least 2 frames (the first runs dense)");
        goto done;
    }
    c.cap = c.dense_n * n_scales;
    c.x = malloc((size_t)L * (size_t)c.cap * sizeof *c.x + 1);
    c.y = malloc((size_t)L * (size_t)c.cap * sizeof *c.y + 1);
    if (!c.x || !c.y) {
        bench_error("out of memory");
        goto done;
    }
    c.s = b->cb;
    c.dense = 0;
    for (int k = 0; k < n_scales; ++k) {
        char label[64];
        snprintf(label, sizeof label, "calibration: scale %g", scales[k]);
        if (bench_set_param(b->cb, CBINFER_PARAM_THRESHOLD_SCALE, scales[k], "threshold scale") != 0 ||
            bench_reset(b->cb) != 0 || bench_for_each_frame(b, label, calib_frame, &c) != 0)
            goto done;
    }
    for (int i = 0; i < L; ++i) {
        cbinfer_layer_stats ls;
        if (cbinfer_stream_layer_stats(b->cb, i, &ls) == CBINFER_STATUS_SUCCESS) names[i] = ls.name;
    }

    f = fopen(b->args.calibrate_path, "w");
    if (!f) {
        bench_error("--calibrate: cannot write '%s': %s", b->args.calibrate_path, strerror(errno));
        goto done;
    }
    fprintf(f, "# cbinfer layer values v1\n# command:");
    for (int i = 0; i < b->argc; ++i) fprintf(f, " %s", b->argv[i]);
    fprintf(f, "\n# device: %s, %s\n# date: %s\n", bench_backend_name(b->args.backend),
            b->device_name, b->date);
    fprintf(f, "# break-even changed share per conv layer: time = a + b * share fitted over "
               "threshold scales 0, 0.5, 1, 2, 4 x %g\n",
            (double)b->args.threshold);

    printf("break-even calibration (%lld frames per pass after the first):\n", c.dense_n);
    printf("  %-24s %12s %12s %12s %8s %11s %7s\n", "layer", "dense ms", "a ms", "b ms/share",
           "points", "share span", "break-even");
    int any_spread = 0;
    for (int i = 0; i < L; ++i) {
        if (!is_conv(b, names[i])) continue;
        double t_dense = c.dense_ms[i] / (double)c.dense_n, a = 0.0, slope = 0.0;
        const double *x = c.x + (size_t)i * (size_t)c.cap, *y = c.y + (size_t)i * (size_t)c.cap;
        int fit = cbi_fit_line(x, y, (size_t)c.np[i], &a, &slope);
        double be = cbi_break_even(t_dense, a, slope);
        double lo = 1.0, hi = 0.0;
        for (long long j = 0; j < c.np[i]; ++j) {
            if (x[j] < lo) lo = x[j];
            if (x[j] > hi) hi = x[j];
        }
        any_spread |= fit == 0;
        fprintf(f, "%s %.4f\n", names[i], be);
        printf("  %-24s %12.4f %12.4f %12.4f %8lld %5.3f-%5.3f %7.4f%s\n", names[i], t_dense, a,
               slope, c.np[i], c.np[i] ? lo : 0.0, c.np[i] ? hi : 0.0, be,
               fit ? " (no spread in share: 1)" : "");
    }
    if (fclose(f) != 0) {
        f = NULL;
        bench_error("--calibrate: writing '%s' failed", b->args.calibrate_path);
        goto done;
    }
    f = NULL;
    if (!any_spread)
        fprintf(stderr, "cbinfer-bench: warning: no layer's changed share varied; give a "
                        "--threshold > 0 and more frames\n");
    fprintf(stderr, "break-even shares written to %s\n", b->args.calibrate_path);
    rc = 0;
done:
    if (f) fclose(f);
    free(names);
    free(c.dense_ms);
    free(c.np);
    free(c.x);
    free(c.y);
    return rc;
}

