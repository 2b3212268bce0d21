/* cbinfer-bench --per-layer: the profiling pass; see bench.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_stats.h"

/* -------------------------------------------------------- profiling pass -- */

typedef struct {
    cbinfer_stream_t *s;
    cbinfer_layer_stats *stats; /* [frame][layer] */
    int *first;                 /* the stream's frame 0, per recorded frame */
    long long n, cap;
} profile_ctx;

static int profile_frame(bench *b, long long k, int timed, void *vctx)
{
    profile_ctx *c = vctx;
    double ms;
    if (bench_push(b, c->s, k, &ms) != 0) return 1;
    if (!timed) return 0;
    if (c->n == c->cap) {
        long long cap = c->cap ? c->cap * 2 : 64;
        cbinfer_layer_stats *t =
            realloc(c->stats, (size_t)cap * ((size_t)b->layer_count + 1) * sizeof *t);
        if (!t) return bench_error("out of memory");
        c->stats = t;
        int *f = realloc(c->first, (size_t)cap * sizeof *f);
        if (!f) return bench_error("out of memory");
        c->first = f;
        c->cap = cap;
    }
    cbinfer_frame_stats fs;
    cbinfer_status st = cbinfer_stream_frame_stats(c->s, &fs);
    if (st != CBINFER_STATUS_SUCCESS) return bench_stream_error(c->s, "frame statistics", st);
    c->first[c->n] = fs.frame_index == 0;
    for (int i = 0; i < b->layer_count; ++i) {
        st = cbinfer_stream_layer_stats(c->s, i, &c->stats[c->n * b->layer_count + i]);
        if (st != CBINFER_STATUS_SUCCESS) return bench_stream_error(c->s, "layer statistics", st);
    }
    c->n++;
    return 0;
}

/* --per-layer: a separate pass over the same frames with statistics on, so
 * the timed run pays for no per-step timing. Profiles the change-based stream
 * (the dense one in dense mode) at the first run's threshold scale, over the
 * timed frames after the stream's frame 0. */
int bench_profile_pass(bench *b, double scale)
{
    profile_ctx c;
    memset(&c, 0, sizeof c);
    c.s = b->cb ? b->cb : b->dense;
    int rc = 1;
    double *t = NULL;
    if (bench_set_param(c.s, CBINFER_PARAM_COLLECT_STATS, 1.0, "--per-layer") != 0) return 1;
    if (b->cb && bench_set_param(b->cb, CBINFER_PARAM_THRESHOLD_SCALE, scale, "threshold scale") != 0)
        goto done;
    if (bench_reset(c.s) != 0 || bench_for_each_frame(b, "profiling pass", profile_frame, &c) != 0) goto done;

    long long later = 0;
    for (long long f = 0; f < c.n; ++f) later += !c.first[f];
    int use_first = later == 0; /* only the dense frame 0 was timed */
    long long m = use_first ? c.n : later;
    b->profile = calloc((size_t)b->layer_count + 1, sizeof *b->profile);
    t = malloc((size_t)(m ? m : 1) * sizeof *t);
    if (!b->profile || !t) {
        bench_error("out of memory");
        goto done;
    }
    b->profile_count = m;
    double all_ms = 0.0;
    for (int i = 0; i < b->layer_count; ++i) {
        cbi_profile_layer *p = &b->profile[i];
        double share = 0.0, macs = 0.0, dense_macs = 0.0;
        long long share_n = 0, j = 0;
        for (long long f = 0; f < c.n; ++f) {
            if (c.first[f] != use_first) continue;
            const cbinfer_layer_stats *ls = &c.stats[f * b->layer_count + i];
            p->name = ls->name;
            p->op = ls->op;
            t[j++] = ls->total_ms;
            p->time_ms_total += ls->total_ms;
            for (int s = 0; s < CBINFER_STEP_COUNT; ++s) p->step_ms[s] += ls->step_ms[s];
            if (ls->total_px > 0) {
                share += (double)ls->changed_px / (double)ls->total_px;
                share_n++;
            }
            macs += (double)ls->macs;
            dense_macs += (double)ls->dense_macs;
        }
        p->time_ms_mean = m ? p->time_ms_total / (double)m : 0.0;
        p->time_ms_median = cbi_median(t, (size_t)j);
        for (int s = 0; s < CBINFER_STEP_COUNT; ++s) p->step_ms[s] = m ? p->step_ms[s] / m : 0.0;
        p->changed_share = share_n ? share / (double)share_n : NAN;
        p->macs_share = dense_macs > 0 ? macs / dense_macs : NAN;
        all_ms += p->time_ms_total;
    }
    for (int i = 0; i < b->layer_count; ++i)
        b->profile[i].percentage = all_ms > 0 ? 100.0 * b->profile[i].time_ms_total / all_ms : 0.0;
    rc = 0;
done:
    free(t);
    free(c.stats);
    free(c.first);
    if (bench_set_param(c.s, CBINFER_PARAM_COLLECT_STATS, b->args.stats ? 1.0 : 0.0, "--per-layer") != 0)
        rc = 1;
    return rc;
}

