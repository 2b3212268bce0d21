/*
 * The CPU backend's non-convolution kernels: ConvTranspose, standalone
 * activations, pooling (dense and change-based, paper Sec. III-E), Add,
 * Concat, Pad, Resize (nearest) and DepthToSpace.
 *
 * Every tensor is float32 NHWC with N = 1 (a pixel's channels contiguous);
 * geometry comes from args->plan (resolved shapes and window pads). No kernel
 * allocates: the only scratch is the context's shared GEMM buffer.
 */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <string.h>


#include "cpu_backend.h"

/* ------------------------------------------------------------- helpers --- */

static double ops_t0(const cbi_op_args *a)
{
    return a->collect_stats ? cbi_now_ms() : 0.0;
}

static void ops_done(const cbi_op_args *a, cbinfer_step step, double t0_ms, int64_t out_px)
{
    if (a->stats) a->stats->changed_px = out_px;
    if (a->collect_stats) cpu_step_time(a, step, t0_ms, cbi_now_ms());
}

static const char *ops_name(const cbi_op_args *a)
{
    return a->node && a->node->name ? a->node->name : "?";
}

/* Checks the pointers every kernel needs and that the first n inputs exist. */
static cbinfer_status ops_check(const cbi_op_args *a, int n_in_min, cbi_err *e)
{
    if (!a || !a->node || !a->plan || !a->out || !a->out->data)
        return cbi_fail(e, CBINFER_STATUS_NULL_ARGUMENT, "node %s: missing op arguments",
                        a && a->node && a->node->name ? a->node->name : "?");
    if (a->n_in < n_in_min)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (%s): %d inputs, need %d",
                        ops_name(a), a->node->op_type, a->n_in, n_in_min);
    for (int i = 0; i < a->n_in; i++)
        if (!a->in[i] || !a->in[i]->data)
            return cbi_fail(e, CBINFER_STATUS_NULL_ARGUMENT, "node %s: input %d missing",
                            ops_name(a), i);
    return CBINFER_STATUS_SUCCESS;
}

static int64_t ops_px(cbi_shape s)
{
    return (int64_t)s.h * s.w;
}

static int64_t ops_numel(cbi_shape s)
{
    return (int64_t)s.c * s.h * s.w;
}

static int ops_same_shape(cbi_shape x, cbi_shape y)
{
    return x.c == y.c && x.h == y.h && x.w == y.w;
}

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

/* ----------------------------------------------------------- Activation --- */

/* Standalone Relu / LeakyRelu / PRelu / Clip, elementwise over NHWC (channel
 * = index % c); may run in place. */
cbinfer_status cpu_activation(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cbinfer_status st = ops_check(a, 1, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    const cbi_shape s = a->plan->out;
    if (!ops_same_shape(s, a->in[0]->shape))
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (%s): input/output shapes differ",
                        ops_name(a), a->node->op_type);
    const double t0 = ops_t0(a);
    const float *x = a->in[0]->data;
    float *y = a->out->data;
    const int64_t px = ops_px(s);
    for (int64_t q = 0; q < px; q++)
        for (int c = 0; c < s.c; c++)
            y[q * s.c + c] = cpu_activate(&a->node->act, c, x[q * s.c + c]);
    ops_done(a, CBINFER_STEP_DENSE, t0, px);
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

/* One output pixel (oy, ox), all channels. The single place a pooled value is
 * computed, so the dense and change-based paths agree bit for bit. MaxPool
 * ignores padding (-inf); AveragePool divides by the taps inside the padded
 * input (count_include_pad; taps past it from ceil_mode never count) or by the
 * taps inside the input. */
static void ops_pool_pixel(const cbi_pool_geom *g, const float *x, float *y, int oy, int ox)
{
    const int c = g->c;
    float *dst = y + ((size_t)oy * g->wo + ox) * c;
    const int y0 = oy * g->sh - g->pad_t, x0 = ox * g->sw - g->pad_l;
    int n_in = 0, n_pad = 0;
    for (int ch = 0; ch < c; ch++) dst[ch] = g->is_max ? -INFINITY : 0.f;
    for (int ky = 0; ky < g->kh; ky++) {
        const int iy = y0 + ky * g->dh;
        const int row_in = iy >= 0 && iy < g->h;
        const int row_pad = iy >= -g->pad_t && iy < g->h + g->pad_b;
        for (int kx = 0; kx < g->kw; kx++) {
            const int ix = x0 + kx * g->dw;
            if (row_pad && ix >= -g->pad_l && ix < g->w + g->pad_r) n_pad++;
            if (!row_in || ix < 0 || ix >= g->w) continue;
            n_in++;
            const float *src = x + ((size_t)iy * g->w + ix) * c;
            if (g->is_max) {
                for (int ch = 0; ch < c; ch++) dst[ch] = src[ch] > dst[ch] ? src[ch] : dst[ch];
            } else {
                for (int ch = 0; ch < c; ch++) dst[ch] += src[ch];
            }
        }
    }
    if (!g->is_max) {
        const int div = g->include_pad ? n_pad : n_in;
        if (div > 0)
            for (int ch = 0; ch < c; ch++) dst[ch] /= (float)div;
    }
}

static void ops_pool_all(const cbi_pool_geom *g, const float *x, float *y)
{
    for (int oy = 0; oy < g->ho; oy++)
        for (int ox = 0; ox < g->wo; ox++) ops_pool_pixel(g, x, y, oy, ox);
}

/* MaxPool / AveragePool over the whole frame, NHWC, ONNX semantics (ceil_mode
 * is in plan->out, dilations, count_include_pad). */
cbinfer_status cpu_pool_dense(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cbi_pool_geom g;
    cbinfer_status st = ops_pool_geom(a, &g, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    const double t0 = ops_t0(a);
    ops_pool_all(&g, a->in[0]->data, a->out->data);
    if (a->stats) a->stats->changed_in_px = ops_pool_in_px(&g);
    ops_done(a, CBINFER_STEP_POOL, t0, ops_pool_out_px(&g));
    return CBINFER_STATUS_SUCCESS;
}

/* First output row/column whose window can contain input coordinate i
 * (window start o*s - pad, taps at start + k*d for k < kern). */
static int ops_pool_first(int i, int pad, int kern, int s, int d)
{
    const int num = i + pad - (kern - 1) * d; /* o*s >= num */
    if (num <= 0) return 0;
    return (num + s - 1) / s;
}

/*
 * Change-based pooling, paper Sec. III-E case (2): no change detection of its
 * own; the producer's index list in_chg[0] (input pixels rewritten this
 * frame, ascending) drives the update. Output rows are walked in order; for
 * each, the changed input pixels of the rows its windows cover form one
 * contiguous run of the ascending list (two monotone cursors). Each such pixel
 * marks the output columns whose windows hold it in layer->out_map; the marked
 * span is then extracted in ascending order into layer->idx and cleared again,
 * so out_map is all zero between calls and each affected output pixel is
 * computed exactly once (ANCHORS point 7, unlike CBinfer's once per change).
 * Work scales with the number of changes plus the output height, never with
 * the frame area. NHWC.
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
        ops_pool_all(&g, x, y);
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
    int64_t n_out = 0, lo = 0, hi = 0;
    /* The first output row any change can reach. */
    int oy = n_chg > 0 ? ops_pool_first(cin[0] / g.w, g.pad_t, g.kh, g.sh, g.dh) : g.ho;
    for (; oy < g.ho; oy++) {
        const int y0 = oy * g.sh - g.pad_t;
        const int y_last = y0 + (g.kh - 1) * g.dh;
        const int64_t first_px = (int64_t)(y0 > 0 ? y0 : 0) * g.w;
        const int64_t end_px = (int64_t)(y_last + 1 < g.h ? y_last + 1 : g.h) * g.w;
        while (lo < n_chg && cin[lo] < first_px) lo++;
        if (lo >= n_chg) break; /* windows only move down: nothing left to reach */
        if (hi < lo) hi = lo;
        while (hi < n_chg && cin[hi] < end_px) hi++;
        int span_lo = g.wo, span_hi = -1;
        uint8_t *row = map + (size_t)oy * g.wo;
        for (int64_t k = lo; k < hi; k++) {
            const int iy = cin[k] / g.w, ix = cin[k] % g.w;
            if ((iy - y0) % g.dh != 0) continue; /* between dilated taps */
            for (int ox = ops_pool_first(ix, g.pad_l, g.kw, g.sw, g.dw); ox < g.wo; ox++) {
                const int rel = ix - (ox * g.sw - g.pad_l);
                if (rel < 0) break;
                if (rel % g.dw != 0) continue;
                assert(rel <= (g.kw - 1) * g.dw);
                row[ox] = 1;
                if (ox < span_lo) span_lo = ox;
                if (ox > span_hi) span_hi = ox;
            }
        }
        for (int ox = span_lo; ox <= span_hi; ox++) {
            if (!row[ox]) continue;
            row[ox] = 0;
            layer->idx[n_out++] = oy * g.wo + ox;
        }
    }
    assert(n_out <= ops_pool_out_px(&g));

    for (int64_t k = 0; k < n_out; k++)
        ops_pool_pixel(&g, x, y, layer->idx[k] / g.wo, layer->idx[k] % g.wo);

    a->out_chg->all = 0;
    a->out_chg->idx = layer->idx;
    a->out_chg->count = n_out;
    if (a->stats) a->stats->changed_in_px = n_chg;
    ops_done(a, CBINFER_STEP_POOL, t0, n_out);
    return CBINFER_STATUS_SUCCESS;
}

/* ------------------------------------------------------------------ Add --- */

/* Elementwise sum of two equally shaped NHWC tensors (residual connections). */
cbinfer_status cpu_add(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cbinfer_status st = ops_check(a, 2, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    const cbi_shape s = a->plan->out;
    if (!ops_same_shape(a->in[0]->shape, s) || !ops_same_shape(a->in[1]->shape, s))
        return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                        "node %s (Add): shapes %dx%dx%d + %dx%dx%d -> %dx%dx%d differ", ops_name(a),
                        a->in[0]->shape.c, a->in[0]->shape.h, a->in[0]->shape.w,
                        a->in[1]->shape.c, a->in[1]->shape.h, a->in[1]->shape.w, s.c, s.h, s.w);
    const double t0 = ops_t0(a);
    const float *x0 = a->in[0]->data, *x1 = a->in[1]->data;
    float *y = a->out->data;
    const int64_t ne = ops_numel(s);
    for (int64_t i = 0; i < ne; i++) y[i] = x0[i] + x1[i];
    ops_done(a, CBINFER_STEP_DENSE, t0, ops_px(s));
    return CBINFER_STATUS_SUCCESS;
}

/* --------------------------------------------------------------- Concat --- */

/* Channel concatenation, NHWC: per pixel, each input's channel run in order. */
cbinfer_status cpu_concat(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cbinfer_status st = ops_check(a, 1, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    const cbi_shape s = a->plan->out;
    int c_sum = 0;
    for (int i = 0; i < a->n_in; i++) {
        const cbi_shape si = a->in[i]->shape;
        if (si.h != s.h || si.w != s.w)
            return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                            "node %s (Concat): input %d is %dx%d, output %dx%d", ops_name(a), i,
                            si.h, si.w, s.h, s.w);
        c_sum += si.c;
    }
    if (c_sum != s.c)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                        "node %s (Concat): input channels sum to %d, output has %d", ops_name(a),
                        c_sum, s.c);
    const double t0 = ops_t0(a);
    float *y = a->out->data;
    const int64_t px = ops_px(s);
    int off = 0;
    for (int i = 0; i < a->n_in; i++) {
        const int ci = a->in[i]->shape.c;
        const float *x = a->in[i]->data;
        for (int64_t q = 0; q < px; q++)
            memcpy(y + q * s.c + off, x + q * ci, (size_t)ci * sizeof(float));
        off += ci;
    }
    ops_done(a, CBINFER_STEP_DENSE, t0, px);
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

/* --------------------------------------------------------------- Resize --- */

/* Linear Resize, NHWC: each output value blends the four input values of its
 * row and column taps (cbi_resize_linear_tap), first along x, then along y. */
static void resize_linear(const cbi_node *n, const cbi_node_plan *p, const float *x, float *y)
{
    const cbi_shape si = p->in, so = p->out;
    const int c = so.c;
    for (int oy = 0; oy < so.h; oy++) {
        const cbi_resize_tap ty = cbi_resize_linear_tap(n, p, 0, oy);
        const float *r0 = x + (size_t)ty.i0 * si.w * c, *r1 = x + (size_t)ty.i1 * si.w * c;
        float *yr = y + (size_t)oy * so.w * c;
        for (int ox = 0; ox < so.w; ox++) {
            const cbi_resize_tap tx = cbi_resize_linear_tap(n, p, 1, ox);
            const float *a0 = r0 + (size_t)tx.i0 * c, *a1 = r0 + (size_t)tx.i1 * c;
            const float *b0 = r1 + (size_t)tx.i0 * c, *b1 = r1 + (size_t)tx.i1 * c;
            float *o = yr + (size_t)ox * c;
            for (int ch = 0; ch < c; ch++) {
                const float top = a0[ch] + tx.f * (a1[ch] - a0[ch]);
                const float bot = b0[ch] + tx.f * (b1[ch] - b0[ch]);
                o[ch] = top + ty.f * (bot - top);
            }
        }
    }
}

/* Resize, NHWC. Nearest: every output pixel copies one input pixel's channel
 * run. Scale is out/in when sizes were given, the node's otherwise. */
cbinfer_status cpu_resize(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cbinfer_status st = ops_check(a, 1, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    const cbi_node *n = a->node;
    const cbi_shape si = a->plan->in, so = a->plan->out;
    if (si.c != so.c || si.h < 1 || si.w < 1)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                        "node %s (Resize): bad geometry %dx%dx%d -> %dx%dx%d", ops_name(a), si.c,
                        si.h, si.w, so.c, so.h, so.w);
    const double t0 = ops_t0(a);
    const float *x = a->in[0]->data;
    float *y = a->out->data;
    if (n->linear) {
        resize_linear(n, a->plan, x, y);
        ops_done(a, CBINFER_STEP_DENSE, t0, ops_px(so));
        return CBINFER_STATUS_SUCCESS;
    }
    const int c = so.c;
    const size_t run = (size_t)c * sizeof(float);
    for (int oy = 0; oy < so.h; oy++) {
        const int iy = cbi_resize_src(n, a->plan, 0, oy);
        const float *xr = x + (size_t)iy * si.w * c;
        float *yr = y + (size_t)oy * so.w * c;
        for (int ox = 0; ox < so.w; ox++) {
            const int ix = cbi_resize_src(n, a->plan, 1, ox);
            memcpy(yr + (size_t)ox * c, xr + (size_t)ix * c, run);
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
