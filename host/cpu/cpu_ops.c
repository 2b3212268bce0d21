/*
 * The CPU backend's non-convolution kernels: ConvTranspose, pooling (dense
 * and change-based, paper Sec. III-E), Pad and DepthToSpace. The pixel-wise
 * ops (Activation, Add, Concat, Resize) are in cpu_ops_pixel.c.
 *
 * Every tensor is float32 NHWC with N = 1 (a pixel's channels contiguous);
 * geometry comes from args->plan (resolved shapes and window pads). No kernel
 * allocates: the only scratch is the context's shared GEMM buffer.
 */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cpu_ops_common.h"

/* -------------------------------------------------------- ConvTranspose --- */

/*
 * ConvTranspose, NHWC, weights [cin][kh][kw][cout] (dense op, no paper
 * section: the upsampling layers of the super-resolution models).
 *
 * Y[rows][kh*kw*cout] = X[rows][cin] . W[cin][kh*kw*cout] with oneDNN sgemm, then
 * col2im: row (iy, ix), tap (ky, kx) adds its cout values to output pixel
 * (iy*sh + ky*dh - pad_t, ix*sw + kx*dw - pad_l) when inside the output
 * (top/left pads crop; bottom/right pads and output_padding are already in
 * plan->out). The output starts at the bias; the fused activation runs last.
 *
 * Scratch: ctx->gemm holds chunk_px input rows of the GEMM result, so the
 * context must size it to at least
 *     chunk_px * max over ConvTranspose nodes of (kh * kw * cout)  floats
 * (host/cpu/cpu_backend.c).
 */
cbinfer_status cpu_conv_transpose(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cbinfer_status st = ops_check(a, 1, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    const cpu_ctx *ctx = bctx;
    const cbi_node *n = a->node;
    const cbi_node_plan *p = a->plan;
    const cbi_window *w = &n->win;
    const int cin = p->in.c, cout = p->out.c;
    const int kh = w->kh, kw = w->kw;
    const int dh = w->dh > 0 ? w->dh : 1, dw = w->dw > 0 ? w->dw : 1;
    const int sh = w->sh > 0 ? w->sh : 1, sw = w->sw > 0 ? w->sw : 1;
    if (!n->weight || !n->bias || cin != n->cin || cout != n->cout || kh < 1 || kw < 1)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                        "node %s (ConvTranspose): weights/shape mismatch (cin %d/%d, cout %d/%d)",
                        ops_name(a), cin, n->cin, cout, n->cout);
    if (!ctx || !ctx->gemm || ctx->chunk_px == 0)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                        "node %s (ConvTranspose): no GEMM scratch (needs chunk_px * %d floats)",
                        ops_name(a), kh * kw * cout);
    const double t0 = ops_t0(a);

    const int in_h = p->in.h, in_w = p->in.w, out_h = p->out.h, out_w = p->out.w;
    const int ncol = kh * kw * cout;
    const int64_t in_px = (int64_t)in_h * in_w, out_px = (int64_t)out_h * out_w;
    const float *x = a->in[0]->data;
    float *y = a->out->data;

    for (int64_t q = 0; q < out_px; q++) memcpy(y + q * cout, n->bias, (size_t)cout * sizeof(float));

    const int64_t chunk = (int64_t)ctx->chunk_px;
    for (int64_t r0 = 0; r0 < in_px; r0 += chunk) {
        const int rows = (int)(in_px - r0 < chunk ? in_px - r0 : chunk);
        st = cpu_sgemm(cpu_threads(ctx), rows, ncol, cin, x + r0 * cin, cin, n->weight, ncol, 0,
                                      ctx->gemm, ncol, e, ops_name(a));
        if (st != CBINFER_STATUS_SUCCESS) return st;
        for (int r = 0; r < rows; r++) {
            const int iy = (int)((r0 + r) / in_w), ix = (int)((r0 + r) % in_w);
            const float *yr = ctx->gemm + (size_t)r * ncol;
            for (int ky = 0; ky < kh; ky++) {
                const int oy = iy * sh + ky * dh - p->pad_t;
                if (oy < 0 || oy >= out_h) continue;
                for (int kx = 0; kx < kw; kx++) {
                    const int ox = ix * sw + kx * dw - p->pad_l;
                    if (ox < 0 || ox >= out_w) continue;
                    float *dst = y + ((size_t)oy * out_w + ox) * cout;
                    const float *src = yr + (size_t)(ky * kw + kx) * cout;
                    for (int c = 0; c < cout; c++) dst[c] += src[c];
                }
            }
        }
    }

    if (n->act.kind != CBI_ACT_NONE)
        for (int64_t q = 0; q < out_px; q++)
            for (int c = 0; c < cout; c++) y[q * cout + c] = cpu_activate(&n->act, c, y[q * cout + c]);

    if (a->stats) a->stats->macs = in_px * cin * ncol;
    ops_done(a, CBINFER_STEP_DENSE, t0, out_px);
    return CBINFER_STATUS_SUCCESS;
}

/* -------------------------------------------------------------- Pooling --- */

/* The op's checks and its geometry (cbi_pool_geom_of, shared with CUDA). */
static cbinfer_status ops_pool_geom(const cbi_op_args *a, cbi_pool_geom *g, cbi_err *e)
{
    cbinfer_status st = ops_check(a, 1, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    return cbi_pool_geom_of(a->node, a->plan, g, e);
}

static int64_t ops_pool_in_px(const cbi_pool_geom *g)
{
    return (int64_t)g->h * g->w;
}

static int64_t ops_pool_out_px(const cbi_pool_geom *g)
{
    return (int64_t)g->ho * g->wo;
}

/* The taps k in [0, kern) of a window starting at i0 (stride d) that land in
 * [lo, hi): *k0 to *k1 - 1 (empty when *k0 >= *k1). */
static void ops_tap_range(int i0, int kern, int d, int lo, int hi, int *k0, int *k1)
{
    *k0 = i0 >= lo ? 0 : (lo - i0 + d - 1) / d;
    *k1 = i0 + (kern - 1) * d < hi ? kern : (hi - 1 - i0 >= 0 ? (hi - 1 - i0) / d + 1 : 0);
    if (*k0 > kern) *k0 = kern;
}

/* One output pixel (oy, ox), all channels. The single place a pooled value is
 * computed, so the dense and change-based paths agree bit for bit. MaxPool
 * ignores padding (-inf); AveragePool divides by the taps inside the padded
 * input (count_include_pad; taps past it from ceil_mode never count) or by the
 * taps inside the input. */
static inline void ops_pool_pixel(const cbi_pool_geom *g, const float *restrict x,
                                  float *restrict y, int oy, int ox)
{
    const int c = g->c;
    float *restrict dst = y + ((size_t)oy * g->wo + ox) * c;
    const int y0 = oy * g->sh - g->pad_t, x0 = ox * g->sw - g->pad_l;
    int ky0, ky1, kx0, kx1;
    ops_tap_range(y0, g->kh, g->dh, 0, g->h, &ky0, &ky1);
    ops_tap_range(x0, g->kw, g->dw, 0, g->w, &kx0, &kx1);
    for (int ch = 0; ch < c; ch++) dst[ch] = g->is_max ? -INFINITY : 0.f;
    for (int ky = ky0; ky < ky1; ky++) {
        const float *row = x + (size_t)(y0 + ky * g->dh) * g->w * c;
        for (int kx = kx0; kx < kx1; kx++) {
            const float *restrict src = row + (size_t)(x0 + kx * g->dw) * c;
            if (g->is_max) {
                for (int ch = 0; ch < c; ch++) dst[ch] = src[ch] > dst[ch] ? src[ch] : dst[ch];
            } else {
                for (int ch = 0; ch < c; ch++) dst[ch] += src[ch];
            }
        }
    }
    if (g->is_max) return;
    int div = (ky1 > ky0 ? ky1 - ky0 : 0) * (kx1 > kx0 ? kx1 - kx0 : 0);
    if (g->include_pad) {
        int py0, py1, px0, px1;
        ops_tap_range(y0, g->kh, g->dh, -g->pad_t, g->h + g->pad_b, &py0, &py1);
        ops_tap_range(x0, g->kw, g->dw, -g->pad_l, g->w + g->pad_r, &px0, &px1);
        div = (py1 > py0 ? py1 - py0 : 0) * (px1 > px0 ? px1 - px0 : 0);
    }
    if (div > 0)
        for (int ch = 0; ch < c; ch++) dst[ch] /= (float)div;
}

/* Output pixels idx[k0..k1) of a pool (k itself when idx is NULL). */
typedef struct pool_job {
    const cbi_pool_geom *g;
    const float *x;
    float *y;
    const int32_t *idx;
} pool_job;

static CPU_SIMD_CLONES void pool_block(const void *p, int64_t k0, int64_t k1)
{
    const pool_job *j = p;
    const int wo = j->g->wo;
    for (int64_t k = k0; k < k1; k++) {
        const int64_t q = OPS_PIXEL(j->idx, k);
        ops_pool_pixel(j->g, j->x, j->y, (int)(q / wo), (int)(q % wo));
    }
}

static void ops_pool_pixels(const cbi_pool_geom *g, const float *x, float *y, const int32_t *idx,
                            int64_t n, int threads)
{
    const pool_job j = {g, x, y, idx};
    ops_run_blocks(pool_block, &j, n, (int64_t)g->c * g->kh * g->kw, threads);
}

/* MaxPool / AveragePool over the whole frame, NHWC, ONNX semantics (ceil_mode
 * is in plan->out, dilations, count_include_pad). */
cbinfer_status cpu_pool_dense(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cbi_pool_geom g;
    cbinfer_status st = ops_pool_geom(a, &g, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    const double t0 = ops_t0(a);
    ops_pool_pixels(&g, a->in[0]->data, a->out->data, NULL, ops_pool_out_px(&g), ops_threads(bctx));
    if (a->stats) a->stats->changed_in_px = ops_pool_in_px(&g);
    ops_done(a, CBINFER_STEP_POOL, t0, ops_pool_out_px(&g));
    return CBINFER_STATUS_SUCCESS;
}

/* Whether the window of output coordinate o has a tap on input i. */
static int ops_pool_holds(int i, int pad, int s, int d, int o)
{
    return (i + pad - o * s) % d == 0;
}

/*
 * Change-based pooling, paper Sec. III-E case (2): no change detection of its
 * own; the producer's index list in_chg[0] (input pixels rewritten this
 * frame, ascending) drives the update. Each changed input pixel marks the
 * rectangle of output pixels whose windows hold it in layer->out_map (with
 * dilation, only those with a tap on it); the rows between the first and the
 * last mark are then read out in ascending order into layer->idx and cleared
 * (cpu_map_extract), so out_map is all zero between calls and each affected
 * output pixel is computed exactly once (ANCHORS point 7, unlike CBinfer's
 * once per change). NHWC.
 */
cbinfer_status cpu_pool_change(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cbi_pool_geom g;
    cbinfer_status st = ops_pool_geom(a, &g, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    cpu_layer *layer = a->layer;
    const cbi_changes *chg = a->in_chg[0];
    if (!layer || !layer->out_map || !layer->idx || !a->out_chg)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (%s): no change-based pool state",
                        ops_name(a), a->node->op_type);
    const double t0 = ops_t0(a);
    const float *x = a->in[0]->data;
    float *y = a->out->data;

    if (a->first || !chg || chg->all) {
        if (a->first) memset(layer->out_map, 0, (size_t)ops_pool_out_px(&g));
        ops_pool_pixels(&g, x, y, NULL, ops_pool_out_px(&g), ops_threads(bctx));
        a->out_chg->all = 1;
        a->out_chg->idx = layer->idx;
        a->out_chg->count = ops_pool_out_px(&g);
        if (a->stats) a->stats->changed_in_px = ops_pool_in_px(&g);
        ops_done(a, CBINFER_STEP_POOL, t0, ops_pool_out_px(&g));
        return CBINFER_STATUS_SUCCESS;
    }
    if (chg->count > 0 && !chg->idx)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (%s): change list without indices",
                        ops_name(a), a->node->op_type);

    const int32_t *cin = chg->idx;
    const int64_t n_chg = chg->count;
    uint8_t *map = layer->out_map;
    int row_lo = g.ho, row_hi = -1;
    for (int64_t k = 0; k < n_chg; k++) {
        const int iy = cin[k] / g.w, ix = cin[k] % g.w;
        int y0, y1, x0, x1;
        cpu_axis_reach(iy, g.pad_t, g.kh, g.sh, g.dh, g.ho, &y0, &y1);
        cpu_axis_reach(ix, g.pad_l, g.kw, g.sw, g.dw, g.wo, &x0, &x1);
        if (y0 > y1 || x0 > x1) continue;
        for (int oy = y0; oy <= y1; oy++) {
            uint8_t *row = map + (size_t)oy * g.wo;
            if (g.dh == 1 && g.dw == 1) {
                memset(row + x0, 1, (size_t)(x1 - x0 + 1));
                continue;
            }
            if (!ops_pool_holds(iy, g.pad_t, g.sh, g.dh, oy)) continue;
            for (int ox = x0; ox <= x1; ox++)
                if (ops_pool_holds(ix, g.pad_l, g.sw, g.dw, ox)) row[ox] = 1;
        }
        if (y0 < row_lo) row_lo = y0;
        if (y1 > row_hi) row_hi = y1;
    }
    const int64_t n_out = cpu_map_extract(map, g.wo, row_lo, row_hi, layer->idx);
    assert(n_out <= ops_pool_out_px(&g));

    ops_pool_pixels(&g, x, y, layer->idx, n_out, ops_threads(bctx));

    a->out_chg->all = 0;
    a->out_chg->idx = layer->idx;
    a->out_chg->count = n_out;
    if (a->stats) a->stats->changed_in_px = n_chg;
    ops_done(a, CBINFER_STEP_POOL, t0, n_out);
    return CBINFER_STATUS_SUCCESS;
}

/* ------------------------------------------------------------------ Pad --- */

/* Spatial Pad (constant / edge / reflect), NHWC; channels are never padded.
 * Negative pads crop. */
cbinfer_status cpu_pad(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cbinfer_status st = ops_check(a, 1, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    const cbi_node *n = a->node;
    const cbi_shape si = a->plan->in, so = a->plan->out;
    if (si.c != so.c || so.h != si.h + n->pad_t + n->pad_b || so.w != si.w + n->pad_l + n->pad_r)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                        "node %s (Pad): %dx%dx%d padded by %d,%d,%d,%d is not %dx%dx%d",
                        ops_name(a), si.c, si.h, si.w, n->pad_t, n->pad_l, n->pad_b, n->pad_r, so.c,
                        so.h, so.w);
    if ((n->pad_mode != CBI_PAD_CONSTANT) && (si.h < 1 || si.w < 1))
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (Pad): empty input", ops_name(a));
    const double t0 = ops_t0(a);
    const float *x = a->in[0]->data;
    float *y = a->out->data;
    const int c = so.c;
    const size_t run = (size_t)c * sizeof(float);
    /* Output columns that copy the input row straight through. */
    const int ox_lo = n->pad_l > 0 ? n->pad_l : 0;
    const int ox_hi = (si.w + n->pad_l < so.w ? si.w + n->pad_l : so.w); /* exclusive */
    for (int oy = 0; oy < so.h; oy++) {
        float *yr = y + (size_t)oy * so.w * c;
        const int iy = cbi_pad_src(oy, n->pad_t, si.h, n->pad_mode);
        if (iy < 0) {
            for (int64_t i = 0; i < (int64_t)so.w * c; i++) yr[i] = n->pad_value;
            continue;
        }
        const float *xr = x + (size_t)iy * si.w * c;
        for (int ox = 0; ox < so.w; ox++) {
            if (ox == ox_lo && ox_hi > ox_lo) {
                memcpy(yr + (size_t)ox * c, xr + (size_t)(ox - n->pad_l) * c,
                       run * (size_t)(ox_hi - ox_lo));
                ox = ox_hi - 1;
                continue;
            }
            const int ix = cbi_pad_src(ox, n->pad_l, si.w, n->pad_mode);
            if (ix < 0) {
                for (int ch = 0; ch < c; ch++) yr[(size_t)ox * c + ch] = n->pad_value;
            } else {
                memcpy(yr + (size_t)ox * c, xr + (size_t)ix * c, run);
            }
        }
    }
    ops_done(a, CBINFER_STEP_DENSE, t0, ops_px(so));
    return CBINFER_STATUS_SUCCESS;
}

/* --------------------------------------------------------- DepthToSpace --- */

/* DepthToSpace, NHWC. Output pixel (y*b + i, x*b + j), channel c reads input
 * pixel (y, x), channel (i*b + j)*C + c (DCR: a contiguous run of C) or
 * c*b*b + i*b + j (CRD, PixelShuffle: stride b*b). */
cbinfer_status cpu_depth_to_space(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cbinfer_status st = ops_check(a, 1, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    const int b = a->node->blocksize;
    const cbi_shape si = a->plan->in, so = a->plan->out;
    if (b < 1 || si.c != so.c * b * b || so.h != si.h * b || so.w != si.w * b)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                        "node %s (DepthToSpace): %dx%dx%d with block %d is not %dx%dx%d",
                        ops_name(a), si.c, si.h, si.w, b, so.c, so.h, so.w);
    const double t0 = ops_t0(a);
    const float *x = a->in[0]->data;
    float *y = a->out->data;
    const int C = so.c;
    for (int oy = 0; oy < so.h; oy++) {
        const int iy = oy / b, i = oy % b;
        for (int ox = 0; ox < so.w; ox++) {
            const int ix = ox / b, j = ox % b;
            const float *src = x + ((size_t)iy * si.w + ix) * si.c;
            float *dst = y + ((size_t)oy * so.w + ox) * C;
            if (a->node->d2s_crd) {
                for (int ch = 0; ch < C; ch++) dst[ch] = src[ch * b * b + i * b + j];
            } else {
                memcpy(dst, src + (size_t)(i * b + j) * C, (size_t)C * sizeof(float));
            }
        }
    }
    ops_done(a, CBINFER_STEP_DENSE, t0, ops_px(so));
    return CBINFER_STATUS_SUCCESS;
}
