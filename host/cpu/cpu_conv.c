/*
 * CPU convolution: the dense baseline (im2col + OpenBLAS sgemm) and the
 * change-based convolution of CBinfer (paper Sec. III-A to III-C), each step a
 * separate, timed function.
 *
 * Layout: activations NHWC, weights [Cout][kh][kw][Cin] (host/net.h). One
 * im2col row per output pixel holds kh*kw contiguous runs of Cin values, so
 * the GEMM is  Y[n][Cout] = X[n][K] * W[Cout][K]^T  with K = kh*kw*Cin, and
 * a row of Y is one output pixel's channels, contiguous in the output.
 * Past the layer's break-even share of changed output pixels the
 * change-based path falls back to the dense one (worst case: camera motion).
 * Rows are processed in chunks of ctx->chunk_px pixels so scratch stays small.
 */
#include <assert.h>
#include <cblas.h>
#include <string.h>

#include "cpu_backend.h"

typedef struct conv_geom {
    int cin, h, w;      /* input */
    int cout, ho, wo;   /* output */
    int kh, kw, sh, sw, dh, dw, pad_t, pad_l;
    int k;              /* kh * kw * cin */
} conv_geom;

static conv_geom conv_geom_of(const cbi_op_args *a)
{
    const cbi_node *n = a->node;
    const cbi_node_plan *p = a->plan;
    conv_geom g = {
        .cin = p->in.c, .h = p->in.h, .w = p->in.w,
        .cout = p->out.c, .ho = p->out.h, .wo = p->out.w,
        .kh = n->win.kh, .kw = n->win.kw, .sh = n->win.sh, .sw = n->win.sw,
        .dh = n->win.dh, .dw = n->win.dw, .pad_t = p->pad_t, .pad_l = p->pad_l,
    };
    g.k = g.kh * g.kw * g.cin;
    return g;
}

/* A 1x1, stride-1, unpadded convolution: its NHWC input already is the im2col
 * matrix. */
static int conv_is_pointwise(const conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pad_t == 0 &&
           g->pad_l == 0 && g->ho == g->h && g->wo == g->w;
}

/* im2col of one output pixel into one row of K floats; taps in the padding
 * are zero. */
static void im2col_row(const conv_geom *g, const float *in, int32_t px, float *row)
{
    const int oy = px / g->wo, ox = px % g->wo;
    const size_t run = (size_t)g->cin;
    for (int ky = 0; ky < g->kh; ++ky) {
        const int iy = oy * g->sh - g->pad_t + ky * g->dh;
        for (int kx = 0; kx < g->kw; ++kx, row += run) {
            const int ix = ox * g->sw - g->pad_l + kx * g->dw;
            if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                memset(row, 0, run * sizeof *row);
            else
                memcpy(row, in + ((size_t)iy * g->w + ix) * run, run * sizeof *row);
        }
    }
}

/* Y[n][Cout] = X[n][K] * W[Cout][K]^T */
static void conv_gemm(const conv_geom *g, const float *x, int n, const float *weight, float *y)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, g->cout, g->k, 1.f, x, g->k, weight,
                g->k, 0.f, y, g->cout);
}

static void bias_act_rows(const cbi_node *node, float *y, size_t rows)
{
    const int cout = node->cout;
    for (size_t r = 0; r < rows; ++r, y += cout)
        for (int o = 0; o < cout; ++o) y[o] = cpu_activate(&node->act, o, y[o] + node->bias[o]);
}

cbinfer_status cpu_conv_dense(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cpu_ctx *ctx = bctx;
    const conv_geom g = conv_geom_of(a);
    const float *in = a->in[0]->data;
    float *out = a->out->data;
    const size_t npx = (size_t)g.ho * g.wo;
    const int pointwise = conv_is_pointwise(&g);
    double t_col = 0, t_gemm = 0, t_upd = 0;

    for (size_t p0 = 0; p0 < npx; p0 += ctx->chunk_px) {
        const int n = (int)(npx - p0 < ctx->chunk_px ? npx - p0 : ctx->chunk_px);
        double t0 = cbi_now_ms();
        const float *x = in + p0 * (size_t)g.cin;
        if (!pointwise) {
            for (int r = 0; r < n; ++r)
                im2col_row(&g, in, (int32_t)(p0 + r), ctx->col + (size_t)r * g.k);
            x = ctx->col;
        }
        double t1 = cbi_now_ms();
        /* Output rows of consecutive pixels are contiguous: GEMM straight into them. */
        conv_gemm(&g, x, n, a->node->weight, out + p0 * (size_t)g.cout);
        double t2 = cbi_now_ms();
        bias_act_rows(a->node, out + p0 * (size_t)g.cout, (size_t)n);
        double t3 = cbi_now_ms();
        t_col += t1 - t0;
        t_gemm += t2 - t1;
        t_upd += t3 - t2;
    }
    if (a->collect_stats && a->stats) {
        a->stats->step_ms[CBINFER_STEP_IM2COL] += t_col;
        a->stats->step_ms[CBINFER_STEP_GEMM] += t_gemm;
        a->stats->step_ms[CBINFER_STEP_UPDATE] += t_upd;
    }
    a->stats->changed_px = (int64_t)npx;
    a->stats->macs = (int64_t)npx * g.k * g.cout;
    (void)e;
    return CBINFER_STATUS_SUCCESS;
}

/* Eq. 3: a pixel changed if any channel differs from the state by more than
 * τ. Only pixels the producer rewrote this frame can differ (cbi_changes), so
 * only those are tested. Closed loop (Sec. III-C): the state takes the new
 * value only where a change was detected, so the stored output stays the
 * convolution of the state. Feed-forward: the state follows the input. */
static int64_t detect_changes(const conv_geom *g, const float *x, float *state,
                              const cbi_changes *chg, float tau, int feed_forward,
                              int32_t *changed)
{
    const int64_t npx = chg->all ? (int64_t)g->h * g->w : chg->count;
    const size_t c = (size_t)g->cin;
    int64_t n = 0;
    for (int64_t i = 0; i < npx; ++i) {
        const int32_t px = chg->all ? (int32_t)i : chg->idx[i];
        const float *xp = x + (size_t)px * c;
        float *sp = state + (size_t)px * c;
        int hit = 0;
        for (size_t ch = 0; ch < c; ++ch) {
            float d = xp[ch] - sp[ch];
            hit |= (d > tau) | (-d > tau);
        }
        if (hit) changed[n++] = px;
        if (hit || feed_forward) memcpy(sp, xp, c * sizeof *sp);
    }
    return n;
}

/* Eq. 4: mark every output pixel whose receptive field holds a changed input
 * pixel. Output (oy, ox) reads input row oy*sh - pad_t + ky*dh, so input row
 * iy reaches output rows (iy + pad_t - ky*dh) / sh where that divides. */
static void dilate_changes(const conv_geom *g, const int32_t *changed, int64_t n, uint8_t *map)
{
    for (int64_t i = 0; i < n; ++i) {
        const int iy = changed[i] / g->w, ix = changed[i] % g->w;
        for (int ky = 0; ky < g->kh; ++ky) {
            const int ty = iy + g->pad_t - ky * g->dh;
            if (ty < 0 || ty % g->sh) continue;
            const int oy = ty / g->sh;
            if (oy >= g->ho) continue;
            for (int kx = 0; kx < g->kw; ++kx) {
                const int tx = ix + g->pad_l - kx * g->dw;
                if (tx < 0 || tx % g->sw) continue;
                const int ox = tx / g->sw;
                if (ox < g->wo) map[(size_t)oy * g->wo + ox] = 1;
            }
        }
    }
}

/* Change-index extraction: the marked pixels in ascending order. The map is
 * cleared where it was set, so it is all zero again for the next frame; the
 * scan skips eight unmarked pixels at a time. */
static int64_t extract_indices(uint8_t *map, int64_t npx, int32_t *idx)
{
    int64_t n = 0, p = 0;
    for (; p + 8 <= npx; p += 8) {
        uint64_t word;
        memcpy(&word, map + p, sizeof word);
        if (!word) continue;
        for (int j = 0; j < 8; ++j)
            if (map[p + j]) {
                idx[n++] = (int32_t)(p + j);
                map[p + j] = 0;
            }
    }
    for (; p < npx; ++p)
        if (map[p]) {
            idx[n++] = (int32_t)p;
            map[p] = 0;
        }
    return n;
}

/* Output update: bias and activation fused into the scatter of the new rows
 * into the stored output. */
static void update_output(const cbi_node *node, const float *y, const int32_t *idx, int n,
                          float *out)
{
    const int cout = node->cout;
    for (int r = 0; r < n; ++r, y += cout) {
        float *o = out + (size_t)idx[r] * cout;
        for (int ch = 0; ch < cout; ++ch)
            o[ch] = cpu_activate(&node->act, ch, y[ch] + node->bias[ch]);
    }
}

cbinfer_status cpu_conv_change(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cpu_ctx *ctx = bctx;
    cpu_layer *L = a->layer;
    const conv_geom g = conv_geom_of(a);
    const float *x = a->in[0]->data;
    const cbi_changes *in_chg = a->in_chg[0];
    const int64_t npx_in = (int64_t)g.h * g.w, npx_out = (int64_t)g.ho * g.wo;
    assert(L && L->in_state);

    if (a->first) {
        /* First frame: dense, and the state starts as the input. */
        memcpy(L->in_state, x, (size_t)npx_in * g.cin * sizeof *x);
        a->out_chg->all = 1;
        a->stats->changed_in_px = npx_in;
        return cpu_conv_dense(bctx, a, e);
    }

    double t0 = cbi_now_ms();
    const int32_t *idx;
    int64_t n;
    if (a->reuse_indices && !in_chg->all && conv_is_pointwise(&g)) {
        /* Sec. III-E case 2: a pointwise conv spreads no change, so the
         * producer's indices are this layer's. The state still follows them
         * so that detection can resume at any frame. */
        for (int64_t i = 0; i < in_chg->count; ++i) {
            const size_t off = (size_t)in_chg->idx[i] * g.cin;
            memcpy(L->in_state + off, x + off, (size_t)g.cin * sizeof *x);
        }
        idx = in_chg->idx;
        n = in_chg->count;
        a->stats->changed_in_px = n;
        cpu_step_time(a, CBINFER_STEP_EXTRACT, t0, cbi_now_ms());
    } else {
        int64_t n_in = detect_changes(&g, x, L->in_state, in_chg, a->threshold, a->feed_forward,
                                      L->in_idx);
        double t1 = cbi_now_ms();
        dilate_changes(&g, L->in_idx, n_in, L->out_map);
        double t2 = cbi_now_ms();
        n = extract_indices(L->out_map, npx_out, L->idx);
        double t3 = cbi_now_ms();
        cpu_step_time(a, CBINFER_STEP_CHANGE_DETECT, t0, t1);
        cpu_step_time(a, CBINFER_STEP_DILATE, t1, t2);
        cpu_step_time(a, CBINFER_STEP_EXTRACT, t2, t3);
        idx = L->idx;
        a->stats->changed_in_px = n_in;
    }

    /* Worst case (camera motion, scene cut): past the break-even share the
     * dense path is cheaper. The state takes the input everywhere, so the
     * output computed from the input is the convolution of the state and the
     * closed loop continues from there. The map was cleared by extraction. */
    if (a->dense_fallback && (double)n > (double)a->break_even * (double)npx_out) {
        memcpy(L->in_state, x, (size_t)npx_in * g.cin * sizeof *x);
        a->out_chg->all = 1;
        a->stats->ran_dense = 1;
        return cpu_conv_dense(bctx, a, e);
    }

    /* Partial im2col over the changed output pixels, from the state: in the
     * closed loop it is what the stored output must be the convolution of;
     * feed-forward, the state equals the input after detection. */
    const float *src = L->in_state;
    float *out = a->out->data;
    double t_col = 0, t_gemm = 0, t_upd = 0;
    for (int64_t r0 = 0; r0 < n; r0 += (int64_t)ctx->chunk_px) {
        const int m = (int)(n - r0 < (int64_t)ctx->chunk_px ? n - r0 : (int64_t)ctx->chunk_px);
        double s0 = cbi_now_ms();
        for (int r = 0; r < m; ++r) im2col_row(&g, src, idx[r0 + r], ctx->col + (size_t)r * g.k);
        double s1 = cbi_now_ms();
        conv_gemm(&g, ctx->col, m, a->node->weight, ctx->gemm);
        double s2 = cbi_now_ms();
        update_output(a->node, ctx->gemm, idx + r0, m, out);
        double s3 = cbi_now_ms();
        t_col += s1 - s0;
        t_gemm += s2 - s1;
        t_upd += s3 - s2;
    }
    if (a->collect_stats) {
        a->stats->step_ms[CBINFER_STEP_IM2COL] += t_col;
        a->stats->step_ms[CBINFER_STEP_GEMM] += t_gemm;
        a->stats->step_ms[CBINFER_STEP_UPDATE] += t_upd;
    }
    a->out_chg->all = 0;
    a->out_chg->idx = (int32_t *)idx;
    a->out_chg->count = n;
    a->stats->changed_px = n;
    a->stats->macs = n * g.k * g.cout;
    return CBINFER_STATUS_SUCCESS;
}
