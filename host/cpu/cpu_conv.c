/*
 * CPU convolution: the dense baseline (a oneDNN convolution primitive) and
 * the change-based convolution of CBinfer (paper Sec. III-A to III-C), each
 * step a separate, timed function.
 *
 * Layout: activations NHWC, weights [Cout][kh][kw][Cin] (host/net.h). One
 * im2col row per changed output pixel holds kh*kw runs of Cin values, so the
 * GEMM is  Y[n][Cout] = X[n][K] * W[Cout][K]^T  with K = kh*kw*Cin, and a row
 * of Y is one output pixel's channels, contiguous in the output.
 *
 * Threads: detection splits the pixels it tests into one block per thread,
 * Eq. 4 marking and extraction the output rows into one band per thread;
 * gather, GEMM and scatter run as one unit per chunk of CPU_CHUNK_ROWS changed
 * pixels (fewer when there are not enough for every thread), so a chunk's
 * im2col rows stay in the core that gathered them.
 * Past the layer's break-even share of changed output pixels the
 * change-based path falls back to the dense one (worst case: camera motion),
 * and predicts that for the next frames (cpu_change_rows).
 */
#include <assert.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "cpu_backend.h"

/* Sixteen (eight) floats as one value (GCC/Clang vector extension):
 * cpu_v16 is one AVX-512 register in the x86-64-v4 clones, cpu_v8 one AVX
 * register from x86-64-v3 on; narrower ones otherwise.
 * Macros rather than functions: a function taking or returning one would
 * have a different ABI in each clone. */
typedef float cpu_v16 __attribute__((vector_size(64)));
typedef float cpu_v8 __attribute__((vector_size(32)));
#define CPU_LOAD_V16(dst, p) memcpy(&(dst), (p), sizeof(cpu_v16))

cpu_conv_geom cpu_conv_geom_of(const cbi_op_args *a)
{
    const cbi_node *n = a->node;
    const cbi_node_plan *p = a->plan;
    cpu_conv_geom g = {
        .cin = p->in.c, .h = p->in.h, .w = p->in.w,
        .cout = p->out.c, .ho = p->out.h, .wo = p->out.w,
        .kh = n->win.kh, .kw = n->win.kw, .sh = n->win.sh, .sw = n->win.sw,
        .dh = n->win.dh, .dw = n->win.dw, .pad_t = p->pad_t, .pad_l = p->pad_l,
        .group = cbi_conv_groups(n),
    };
    g.k = g.kh * g.kw * (g.cin / g.group);
    return g;
}

/* A 1x1, stride-1, unpadded convolution spreads no change (Sec. III-E). */
static int conv_is_pointwise(const cpu_conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pad_t == 0 &&
           g->pad_l == 0 && g->ho == g->h && g->wo == g->w;
}

/* Bias and activation of rows of Cout values, from y into rows of out (the
 * scatter: row r goes to out pixel idx[r]). One loop per activation kind, so
 * each vectorises. */
CPU_SIMD_CLONES
static void bias_act_rows(const cbi_node *node, const float *restrict y, const int32_t *idx,
                          int64_t rows, float *restrict out)
{
    const int cout = node->cout;
    const float *restrict b = node->bias;
    const cbi_activation *act = &node->act;
    const float alpha = act->alpha;
    for (int64_t r = 0; r < rows; ++r, y += cout) {
        float *restrict o = out + (size_t)idx[r] * cout;
        switch (act->kind) {
        case CBI_ACT_NONE:
            for (int c = 0; c < cout; ++c) o[c] = y[c] + b[c];
            break;
        case CBI_ACT_RELU:
            for (int c = 0; c < cout; ++c) {
                const float v = y[c] + b[c];
                o[c] = v > 0.f ? v : 0.f;
            }
            break;
        case CBI_ACT_LEAKY_RELU:
            for (int c = 0; c < cout; ++c) {
                const float v = y[c] + b[c];
                o[c] = v > 0.f ? v : v * alpha;
            }
            break;
        case CBI_ACT_CLIP: /* ReLU6 */
            for (int c = 0; c < cout; ++c) {
                const float v = y[c] + b[c];
                o[c] = v < act->lo ? act->lo : (v > act->hi ? act->hi : v);
            }
            break;
        default:
            for (int c = 0; c < cout; ++c) o[c] = cpu_activate(act, c, y[c] + b[c]);
        }
    }
}

/* PReLU after a dense primitive that could not fuse it: in place, no bias. */
static void activate_rows(const cbi_node *node, float *y, int64_t rows, int threads)
{
#pragma omp parallel for num_threads(threads) schedule(static) if (rows >= CPU_PARALLEL_MIN_PX)
    for (int64_t r = 0; r < rows; ++r) {
        float *o = y + (size_t)r * node->cout;
        for (int c = 0; c < node->cout; ++c) o[c] = cpu_activate(&node->act, c, o[c]);
    }
}

cbinfer_status cpu_conv_dense(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cpu_layer *L = a->layer;
    if (!bctx || !L || !L->conv.dense.prim)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (Conv): no convolution primitive",
                        a->node->name);
    return cpu_conv_dense_from(bctx, L, a, a->in[0]->data, a->out->data, e);
}

cbinfer_status cpu_dense_run(cpu_ctx *ctx, const cpu_dense_prim *d, const cbi_node *node,
                             const float *src, float *dst, int activate, int64_t px, cbi_err *e)
{
    dnnl_memory_set_data_handle(d->src, (void *)src);
    dnnl_memory_set_data_handle(d->dst, dst);
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, d->src}, {DNNL_ARG_WEIGHTS, d->w},
                               {DNNL_ARG_BIAS, d->b}, {DNNL_ARG_DST, d->dst}};
    /* oneDNN fixed the primitive's thread count when it was created; the
     * caller's OpenMP setting is set to the same for the call (for anything
     * that asks at execution) and given back. */
    const int threads = cpu_threads(ctx);
    const int caller_threads = omp_get_max_threads();
    omp_set_num_threads(threads);
    cbinfer_status st = cpu_dnnl_execute(ctx, 0, d->prim, 4, args, e, node->name);
    omp_set_num_threads(caller_threads);
    if (st == CBINFER_STATUS_SUCCESS && !d->act_fused && activate)
        activate_rows(node, dst, px * d->images, threads);
    return st;
}

cbinfer_status cpu_conv_dense_from(cpu_ctx *ctx, cpu_layer *L, cbi_op_args *a, const float *src,
                                   float *dst, cbi_err *e)
{
    const cpu_conv_geom g = cpu_conv_geom_of(a);
    const int64_t npx = (int64_t)g.ho * g.wo;
    const double t0 = cbi_now_ms();
    const cbinfer_status st =
        cpu_dense_run(ctx, &L->conv.dense, a->node, src, dst, dst == a->out->data, npx, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    cpu_step_time(a, CBINFER_STEP_DENSE, t0, cbi_now_ms());
    a->stats->changed_px = npx;
    a->stats->macs = npx * g.k * g.cout;
    return CBINFER_STATUS_SUCCESS;
}

/* Eq. 3 for a few channels (a network's input), c a constant where
 * inlined: branch-free, since whether a pixel changed is close to random
 * where noise meets τ. Every pixel's index is written and counted when it
 * changed; the state takes the input where it changed (feed-forward:
 * everywhere). */
static inline __attribute__((always_inline)) int64_t
detect_few(const float *x, float *state, const size_t c, const int32_t *list, int64_t begin,
           int64_t end, float tau, int feed_forward, int32_t *changed)
{
    int64_t n = 0;
    if (!list) {
        /* All pixels, so blocks of them are contiguous: one flat compare of
         * the block's values (it vectorises), then one flag per pixel, then
         * the state copies of the pixels that changed. */
        enum { BLOCK = 256 };
        uint8_t hit[BLOCK * 4];
        for (int64_t b = begin; b < end; b += BLOCK) {
            const int64_t m = end - b < BLOCK ? end - b : BLOCK;
            const float *restrict xb = x + (size_t)b * c;
            float *restrict sb = state + (size_t)b * c;
            for (size_t i = 0; i < (size_t)m * c; ++i) hit[i] = !(fabsf(xb[i] - sb[i]) <= tau);
            const int64_t n0 = n;
            for (int64_t i = 0; i < m; ++i) {
                uint8_t h = 0;
                for (size_t ch = 0; ch < c; ++ch) h |= hit[(size_t)i * c + ch];
                changed[n] = (int32_t)(b + i);
                n += h;
            }
            if (feed_forward) {
                memcpy(sb, xb, (size_t)m * c * sizeof *sb);
                continue;
            }
            for (int64_t j = n0; j < n; ++j)
                for (size_t ch = 0; ch < c; ++ch)
                    sb[(size_t)(changed[j] - b) * c + ch] = xb[(size_t)(changed[j] - b) * c + ch];
        }
        return n;
    }
    for (int64_t i = begin; i < end; ++i) {
        const int32_t px = list[i];
        const float *xp = x + (size_t)px * c;
        float *sp = state + (size_t)px * c;
        int hit = 0;
        for (size_t ch = 0; ch < c; ++ch) hit |= !(fabsf(xp[ch] - sp[ch]) <= tau);
        changed[n] = px;
        n += hit;
        const int take = hit | feed_forward;
        for (size_t ch = 0; ch < c; ++ch) sp[ch] = take ? xp[ch] : sp[ch];
    }
    return n;
}

/* Eq. 3 over entries [begin, end) of the pixels to test (list, or all pixels
 * when list is NULL): a pixel changed if any channel differs from the state by
 * more than τ. A difference that is not finite (a NaN or an Inf on either
 * side) is a change too, so that a non-finite value never freezes in the
 * state: the state follows the input, and the output matches dense. Closed
 * loop (Sec. III-C): the state takes the new value only where a change was
 * detected, so the stored output stays the convolution of the state.
 * Feed-forward: the state follows the input. Writes the changed pixels to
 * changed[] in ascending order and returns their count. */
CPU_SIMD_CLONES
static int64_t detect_block(const cpu_layer *gate, const float *x, float *state, size_t c,
                            const int32_t *list, int64_t begin, int64_t end, float tau,
                            int feed_forward, int32_t *changed)
{
    if (gate) return cpu_gate_block(gate, x, state, (int)c, list, begin, end, tau, changed);
    switch (c) { /* the channel count as a constant: an unrolled pixel */
    case 1: return detect_few(x, state, 1, list, begin, end, tau, feed_forward, changed);
    case 3: return detect_few(x, state, 3, list, begin, end, tau, feed_forward, changed);
    case 2: return detect_few(x, state, 2, list, begin, end, tau, feed_forward, changed);
    case 4: return detect_few(x, state, 4, list, begin, end, tau, feed_forward, changed);
    default: break;
    }
    int64_t n = 0;
    for (int64_t i = begin; i < end; ++i) {
        const int32_t px = list ? list[i] : (int32_t)i;
        const float *xp = x + (size_t)px * c;
        float *sp = state + (size_t)px * c;
        int hit = 0;
        for (size_t ch = 0; ch < c; ++ch) {
            const float d = xp[ch] - sp[ch];
            hit |= !(fabsf(d) <= tau);
        }
        if (hit) changed[n++] = px;
        if (hit || feed_forward) memcpy(sp, xp, c * sizeof *sp);
    }
    return n;
}

/* Joins the results of a parallel step: part t wrote counts[t] entries at
 * list + t * stride; they are moved down to follow each other, in part order
 * (so an ascending list stays ascending). Returns the total. */
int64_t cpu_join_parts(int32_t *list, const int64_t *counts, int parts, int64_t stride)
{
    int64_t n = counts[0];
    for (int t = 1; t < parts; ++t) {
        if (counts[t] == 0) continue; /* also every part past the end of the list */
        memmove(list + n, list + t * stride, (size_t)counts[t] * sizeof *list);
        n += counts[t];
    }
    return n;
}

int64_t cpu_detect_changes(cpu_ctx *ctx, int threads, const cpu_conv_geom *g, const float *x,
                           float *state, const cbi_changes *chg, float tau, int feed_forward,
                           const cpu_layer *gate, int32_t *changed)
{
    const int64_t npx = chg->all ? (int64_t)g->h * g->w : chg->count;
    const int32_t *list = chg->all ? NULL : chg->idx;
    const size_t c = (size_t)g->cin;
    if (threads < 2 || npx < CPU_PARALLEL_MIN_PX)
        return detect_block(gate, x, state, c, list, 0, npx, tau, feed_forward, changed);

    /* The team may be smaller than asked (a caller's own parallel region,
     * OMP_THREAD_LIMIT): the blocks follow the team that runs. */
    int team = 1;
    int64_t block = npx;
#pragma omp parallel num_threads(threads)
    {
#pragma omp single
        {
            team = omp_get_num_threads();
            block = (npx + team - 1) / team;
        }
        const int t = omp_get_thread_num();
        const int64_t b = t * block, end = b + block < npx ? b + block : npx;
        ctx->counts[t] = b < end ? detect_block(gate, x, state, c, list, b, end, tau,
                                                feed_forward, changed + b)
                                 : 0;
    }
    return cpu_join_parts(changed, ctx->counts, team, block);
}

/* Eq. 4: mark every output pixel whose receptive field holds a changed input
 * pixel, in output rows [oy_lo, oy_hi) only. Output (oy, ox) reads input row
 * oy*sh - pad_t + ky*dh, so input row iy reaches output rows
 * (iy + pad_t - ky*dh) / sh where that divides. */
static void dilate_changes(const cpu_conv_geom *g, const int32_t *changed, int64_t n, int oy_lo,
                           int oy_hi, uint8_t *map)
{
    if (g->dh == 1 && g->dw == 1) {
        /* Dilation 1, any stride: the support is a box, one run per output
         * row. */
        for (int64_t i = 0; i < n; ++i) {
            const int iy = changed[i] / g->w, ix = changed[i] % g->w;
            int ylo, yhi, xlo, xhi;
            cpu_axis_reach(iy, g->pad_t, g->kh, g->sh, 1, g->ho, &ylo, &yhi);
            cpu_axis_reach(ix, g->pad_l, g->kw, g->sw, 1, g->wo, &xlo, &xhi);
            if (ylo < oy_lo) ylo = oy_lo;
            if (yhi > oy_hi - 1) yhi = oy_hi - 1;
            for (int oy = ylo; oy <= yhi && xlo <= xhi; ++oy)
                memset(map + (size_t)oy * g->wo + xlo, 1, (size_t)(xhi - xlo + 1));
        }
        return;
    }
    for (int64_t i = 0; i < n; ++i) {
        const int iy = changed[i] / g->w, ix = changed[i] % g->w;
        for (int ky = 0; ky < g->kh; ++ky) {
            const int ty = iy + g->pad_t - ky * g->dh;
            if (ty < 0 || ty % g->sh) continue;
            const int oy = ty / g->sh;
            if (oy < oy_lo || oy >= oy_hi) continue;
            for (int kx = 0; kx < g->kw; ++kx) {
                const int tx = ix + g->pad_l - kx * g->dw;
                if (tx < 0 || tx % g->sw) continue;
                const int ox = tx / g->sw;
                if (ox < g->wo) map[(size_t)oy * g->wo + ox] = 1;
            }
        }
    }
}

/* Change-index extraction: the marked pixels of [p0, p1) in ascending order.
 * The map is cleared where it was set, so it is all zero again for the next
 * frame; the scan skips eight unmarked pixels at a time. */
static int64_t extract_indices(uint8_t *map, int64_t p0, int64_t p1, int32_t *idx)
{
    int64_t n = 0, p = p0;
    for (; p + 8 <= p1; p += 8) {
        uint64_t word;
        memcpy(&word, map + p, sizeof word);
        if (!word) continue;
        for (int j = 0; j < 8; ++j)
            if (map[p + j]) {
                idx[n++] = (int32_t)(p + j);
                map[p + j] = 0;
            }
    }
    for (; p < p1; ++p)
        if (map[p]) {
            idx[n++] = (int32_t)p;
            map[p] = 0;
        }
    return n;
}

/* First entry of the ascending list at or after pixel px. */
static int64_t lower_bound_px(const int32_t *list, int64_t n, int64_t px)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (list[mid] < px)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Eq. 4 and the extraction, one band of output rows per thread: a band is
 * marked only from the changed input rows that reach it, then extracted, and
 * the bands' index lists are joined in order. Returns the number of output
 * pixels to recompute; idx gets them in ascending order. */
int64_t cpu_mark_and_extract(cpu_ctx *ctx, int threads, const cpu_conv_geom *g,
                             const int32_t *changed, int64_t n_in, uint8_t *map, int32_t *idx,
                             const cbi_op_args *a)
{
    if (threads < 2 || n_in * g->kh * g->kw < CPU_PARALLEL_MIN_PX) {
        const double t0 = cbi_now_ms();
        dilate_changes(g, changed, n_in, 0, g->ho, map);
        const double t1 = cbi_now_ms();
        const int64_t n = extract_indices(map, 0, (int64_t)g->ho * g->wo, idx);
        cpu_step_time(a, CBINFER_STEP_DILATE, t0, t1);
        cpu_step_time(a, CBINFER_STEP_EXTRACT, t1, cbi_now_ms());
        return n;
    }
    int team = 1, band = g->ho;
    double t_dil = 0, t_ext = 0;
#pragma omp parallel num_threads(threads) reduction(+ : t_dil, t_ext)
    {
#pragma omp single
        {
            team = omp_get_num_threads();
            band = (g->ho + team - 1) / team;
        }
        const int t = omp_get_thread_num();
        const int oy_lo = t * band < g->ho ? t * band : g->ho;
        const int oy_hi = oy_lo + band < g->ho ? oy_lo + band : g->ho;
        /* Input rows that reach output rows [oy_lo, oy_hi). */
        const int64_t iy_lo = (int64_t)oy_lo * g->sh - g->pad_t;
        const int64_t iy_hi = (int64_t)(oy_hi - 1) * g->sh - g->pad_t + (int64_t)(g->kh - 1) * g->dh;
        const double t0 = cbi_now_ms();
        int64_t cnt = 0;
        if (oy_lo < oy_hi) {
            const int64_t i0 = lower_bound_px(changed, n_in, (iy_lo > 0 ? iy_lo : 0) * g->w);
            const int64_t i1 = lower_bound_px(changed, n_in, (iy_hi + 1 < g->h ? iy_hi + 1 : g->h) * g->w);
            if (i0 < i1) dilate_changes(g, changed + i0, i1 - i0, oy_lo, oy_hi, map);
        }
        const double t1 = cbi_now_ms();
        if (oy_lo < oy_hi)
            cnt = extract_indices(map, (int64_t)oy_lo * g->wo, (int64_t)oy_hi * g->wo,
                                  idx + (int64_t)oy_lo * g->wo);
        ctx->counts[t] = cnt;
        t_dil += t1 - t0;
        t_ext += cbi_now_ms() - t1;
    }
    const int64_t n = cpu_join_parts(idx, ctx->counts, team, (int64_t)band * g->wo);
    if (a->collect_stats && a->stats) {
        a->stats->step_ms[CBINFER_STEP_DILATE] += t_dil / team;
        a->stats->step_ms[CBINFER_STEP_EXTRACT] += t_ext / team;
    }
    return n;
}

/* Partial im2col: one row of K floats per changed output pixel, from the
 * state; taps in the padding are zero. A filter row that lies inside the
 * input with dilation 1 is one contiguous run of kw * Cin floats (NHWC). */
void cpu_gather_rows(const cpu_conv_geom *g, const float *in, const int32_t *idx, int m,
                     float *col)
{
    const size_t cin = (size_t)g->cin, run = (size_t)g->kw * cin;
    for (int r = 0; r < m; ++r) {
        float *row = col + (size_t)r * g->k;
        const int oy = idx[r] / g->wo, ox = idx[r] % g->wo;
        const int ix0 = ox * g->sw - g->pad_l;
        const int row_inside = g->dw == 1 && ix0 >= 0 && ix0 + g->kw <= g->w;
        for (int ky = 0; ky < g->kh; ++ky, row += run) {
            const int iy = oy * g->sh - g->pad_t + ky * g->dh;
            if (iy < 0 || iy >= g->h) {
                memset(row, 0, run * sizeof *row);
                continue;
            }
            const float *src = in + (size_t)iy * g->w * cin;
            if (row_inside) {
                memcpy(row, src + (size_t)ix0 * cin, run * sizeof *row);
                continue;
            }
            for (int kx = 0; kx < g->kw; ++kx) {
                const int ix = ix0 + kx * g->dw;
                if (ix < 0 || ix >= g->w)
                    memset(row + kx * cin, 0, cin * sizeof *row);
                else
                    memcpy(row + kx * cin, src + (size_t)ix * cin, cin * sizeof *row);
            }
        }
    }
}

/* Thin layers (Cout <= CPU_THIN_COUT, e.g. a network's RGB output): the GEMM
 * would be K x Cout with Cout far below one vector, and writing the im2col
 * row would cost more than the arithmetic. Each changed pixel's Cout dot
 * products are taken straight from the state instead, over the weights
 * padded to CPU_THIN_COUT rows (cpu_layer.thin_w) so the loop over outputs has
 * a fixed length and its partial sums stay in vector registers. A filter row
 * inside the input (dilation 1) is one run of kw * Cin floats in the input
 * and in every output's weights. */
CPU_SIMD_CLONES
void cpu_thin_rows(const cpu_conv_geom *g, const float *restrict in,
                   const float *restrict thin_w, const int32_t *idx, int m, float *restrict y)
{
    _Static_assert(CPU_THIN_COUT == 4, "thin_rows keeps four accumulators");
    const size_t cin = (size_t)g->cin, k = (size_t)g->k;
    for (int r = 0; r < m; ++r) {
        cpu_v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        float acc[CPU_THIN_COUT] = {0};
        const int oy = idx[r] / g->wo, ox = idx[r] % g->wo;
        const int ix0 = ox * g->sw - g->pad_l;
        const int row_inside = g->dw == 1 && ix0 >= 0 && ix0 + g->kw <= g->w;
        for (int ky = 0; ky < g->kh; ++ky) {
            const int iy = oy * g->sh - g->pad_t + ky * g->dh;
            if (iy < 0 || iy >= g->h) continue;
            for (int kx = 0; kx < g->kw; kx += row_inside ? g->kw : 1) {
                const int ix = ix0 + kx * g->dw;
                if (ix < 0 || ix >= g->w) continue;
                const size_t len = row_inside ? (size_t)g->kw * cin : cin;
                const float *xp = in + ((size_t)iy * g->w + ix) * cin;
                const float *w0 = thin_w + ((size_t)ky * g->kw + kx) * cin;
                const float *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
                size_t c = 0;
                for (; c + 16 <= len; c += 16) {
                    cpu_v16 v, q0, q1, q2, q3;
                    CPU_LOAD_V16(v, xp + c);
                    CPU_LOAD_V16(q0, w0 + c);
                    CPU_LOAD_V16(q1, w1 + c);
                    CPU_LOAD_V16(q2, w2 + c);
                    CPU_LOAD_V16(q3, w3 + c);
                    a0 += v * q0;
                    a1 += v * q1;
                    a2 += v * q2;
                    a3 += v * q3;
                }
                for (; c < len; ++c) {
                    acc[0] += xp[c] * w0[c];
                    acc[1] += xp[c] * w1[c];
                    acc[2] += xp[c] * w2[c];
                    acc[3] += xp[c] * w3[c];
                }
            }
        }
        for (int l = 0; l < 16; ++l) {
            acc[0] += a0[l];
            acc[1] += a1[l];
            acc[2] += a2[l];
            acc[3] += a3[l];
        }
        for (int o = 0; o < g->cout; ++o) y[(size_t)r * g->cout + o] = acc[o];
    }
}

/* Grouped convolutions: the product is block-diagonal (output channel o
 * reads the cg = Cin/group input channels of its group only), so an im2col
 * row of all Cin channels and one GEMM would multiply zeros. Each row
 * accumulates its kh*kw taps straight from the input instead, over the
 * weights laid out [kh][kw][cg][Cout] so that the loop over output channels
 * runs contiguously; depthwise (cg = 1, one output per group) reads the
 * input pixel's channels contiguously too and vectorises. */
CPU_SIMD_CLONES
void cpu_group_rows(const cpu_conv_geom *g, const float *restrict in,
                    const float *restrict group_w, const int32_t *idx, int m, float *restrict y)
{
    const int cout = g->cout, cg = g->cin / g->group, mg = g->cout / g->group;
    if (cg == 1 && mg == 1 && g->kh * g->kw <= CPU_DW_TAPS) {
        /* Depthwise: the offsets of the taps inside the input once per row;
         * then each block of channels sums them in registers, stored once. */
        ptrdiff_t xo[CPU_DW_TAPS], wo[CPU_DW_TAPS];
        for (int r = 0; r < m; ++r) {
            float *restrict yr = y + (size_t)r * cout;
            const int iy0 = idx[r] / g->wo * g->sh - g->pad_t;
            const int ix0 = idx[r] % g->wo * g->sw - g->pad_l;
            int nt = 0;
            for (int ky = 0; ky < g->kh; ++ky) {
                const int iy = iy0 + ky * g->dh;
                if (iy < 0 || iy >= g->h) continue;
                for (int kx = 0; kx < g->kw; ++kx) {
                    const int ix = ix0 + kx * g->dw;
                    if (ix < 0 || ix >= g->w) continue;
                    xo[nt] = ((ptrdiff_t)iy * g->w + ix) * cout;
                    wo[nt++] = ((ptrdiff_t)ky * g->kw + kx) * cout;
                }
            }
            int o = 0;
            int run = nt == g->kh * g->kw && r + CPU_DW_RUN <= m &&
                      idx[r] % g->wo + CPU_DW_RUN <= g->wo &&
                      ix0 + (CPU_DW_RUN - 1) * g->sw + (g->kw - 1) * g->dw < g->w;
            for (int j = 1; run && j < CPU_DW_RUN; ++j) run = idx[r + j] == idx[r] + j;
            if (run) {
                /* A run of outputs along one row, every tap inside: each
                 * weight vector loaded once serves the whole run. */
                const ptrdiff_t step = (ptrdiff_t)g->sw * cout;
                for (; o + 16 <= cout; o += 16) {
                    cpu_v16 acc[CPU_DW_RUN] = {{0}};
                    for (int t = 0; t < nt; ++t) {
                        const float *xp = in + xo[t] + o;
                        cpu_v16 q;
                        CPU_LOAD_V16(q, group_w + wo[t] + o);
                        for (int j = 0; j < CPU_DW_RUN; ++j) {
                            cpu_v16 v;
                            CPU_LOAD_V16(v, xp + j * step);
                            acc[j] += v * q;
                        }
                    }
                    for (int j = 0; j < CPU_DW_RUN; ++j)
                        memcpy(yr + (size_t)j * cout + o, &acc[j], sizeof acc[j]);
                }
                for (; o + 8 <= cout; o += 8) {
                    cpu_v8 acc[CPU_DW_RUN] = {{0}};
                    for (int t = 0; t < nt; ++t) {
                        const float *xp = in + xo[t] + o;
                        cpu_v8 q;
                        memcpy(&q, group_w + wo[t] + o, sizeof q);
                        for (int j = 0; j < CPU_DW_RUN; ++j) {
                            cpu_v8 v;
                            memcpy(&v, xp + j * step, sizeof v);
                            acc[j] += v * q;
                        }
                    }
                    for (int j = 0; j < CPU_DW_RUN; ++j)
                        memcpy(yr + (size_t)j * cout + o, &acc[j], sizeof acc[j]);
                }
                for (; o < cout; ++o)
                    for (int j = 0; j < CPU_DW_RUN; ++j) {
                        float a = 0.f;
                        for (int t = 0; t < nt; ++t)
                            a += in[xo[t] + j * step + o] * group_w[wo[t] + o];
                        yr[(size_t)j * cout + o] = a;
                    }
                r += CPU_DW_RUN - 1;
                continue;
            }
            for (; o + 32 <= cout; o += 32) {
                cpu_v16 a0 = {0}, a1 = {0};
                for (int t = 0; t < nt; ++t) {
                    const float *xp = in + xo[t] + o, *wp = group_w + wo[t] + o;
                    cpu_v16 v0, v1, q0, q1;
                    CPU_LOAD_V16(v0, xp);
                    CPU_LOAD_V16(v1, xp + 16);
                    CPU_LOAD_V16(q0, wp);
                    CPU_LOAD_V16(q1, wp + 16);
                    a0 += v0 * q0;
                    a1 += v1 * q1;
                }
                memcpy(yr + o, &a0, sizeof a0);
                memcpy(yr + o + 16, &a1, sizeof a1);
            }
            for (; o + 8 <= cout; o += 8) {
                float acc[8] = {0};
                for (int t = 0; t < nt; ++t)
                    for (int j = 0; j < 8; ++j)
                        acc[j] += in[xo[t] + o + j] * group_w[wo[t] + o + j];
                memcpy(yr + o, acc, sizeof acc);
            }
            for (; o < cout; ++o) {
                float acc = 0.f;
                for (int t = 0; t < nt; ++t) acc += in[xo[t] + o] * group_w[wo[t] + o];
                yr[o] = acc;
            }
        }
        return;
    }
    for (int r = 0; r < m; ++r) {
        float *restrict yr = y + (size_t)r * cout;
        memset(yr, 0, (size_t)cout * sizeof *yr);
        const int oy = idx[r] / g->wo, ox = idx[r] % g->wo;
        for (int ky = 0; ky < g->kh; ++ky) {
            const int iy = oy * g->sh - g->pad_t + ky * g->dh;
            if (iy < 0 || iy >= g->h) continue;
            for (int kx = 0; kx < g->kw; ++kx) {
                const int ix = ox * g->sw - g->pad_l + kx * g->dw;
                if (ix < 0 || ix >= g->w) continue;
                const float *restrict xp = in + ((size_t)iy * g->w + ix) * g->cin;
                const float *restrict wt = group_w + ((size_t)ky * g->kw + kx) * cg * cout;
                for (int ci = 0; ci < cg; ++ci) {
                    const float *restrict wc = wt + (size_t)ci * cout;
                    if (cg == 1 && mg == 1) {
                        for (int o = 0; o < cout; ++o) yr[o] += wc[o] * xp[o];
                    } else {
                        for (int gi = 0; gi < g->group; ++gi) {
                            const float v = xp[gi * cg + ci];
                            for (int j = 0; j < mg; ++j) yr[gi * mg + j] += wc[gi * mg + j] * v;
                        }
                    }
                }
            }
        }
    }
}

/* The layer's matmul on one slot, from its col scratch (x_cols floats a
 * row) into y (c->y_cols a row), with the fixed-size matmuls of the layer
 * (cpu_conv_prims): a chunk of at least CPU_CHUNK_ROWS - CPU_PIECE_ROWS rows
 * runs as one full chunk, a smaller one as pieces of CPU_PIECE_ROWS. Rows
 * past m hold older rows (or the zeros the slot started with); their
 * results are never used. */
static cbinfer_status chunk_gemm(cpu_ctx *ctx, int slot, const cpu_conv_prims *c, int m,
                                 int x_cols, float *y, cbi_err *e, const char *node)
{
    if (m > CPU_CHUNK_ROWS - CPU_PIECE_ROWS) {
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, c->mm_x[0][slot]},
                                   {DNNL_ARG_WEIGHTS, c->mm_w[0]},
                                   {DNNL_ARG_DST, c->mm_y[0][slot]}};
        return cpu_dnnl_execute(ctx, slot, c->mm[0], 3, args, e, node);
    }
    const cpu_slot *sl = &ctx->slots[slot];
    for (int r = 0; r < m; r += CPU_PIECE_ROWS) {
        dnnl_memory_set_data_handle(c->mm_x[1][slot], sl->col + (size_t)r * x_cols);
        dnnl_memory_set_data_handle(c->mm_y[1][slot], y + (size_t)r * c->y_cols);
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, c->mm_x[1][slot]},
                                   {DNNL_ARG_WEIGHTS, c->mm_w[1]},
                                   {DNNL_ARG_DST, c->mm_y[1][slot]}};
        cbinfer_status st = cpu_dnnl_execute(ctx, slot, c->mm[1], 3, args, e, node);
        if (st != CBINFER_STATUS_SUCCESS) return st;
    }
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cpu_chunk_gemm(cpu_ctx *ctx, int slot, const cpu_conv_prims *c, int m, int x_cols,
                              float *y, cbi_err *e, const char *node)
{
    /* The matmuls were created for one thread, and oneDNN asks OpenMP again
     * when it executes: this thread's setting (its own ICV inside a parallel
     * region) says 1 for the call. Otherwise a team capped below the setting
     * (OMP_THREAD_LIMIT) leaves part of the product unwritten. */
    const int caller_threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const cbinfer_status st = chunk_gemm(ctx, slot, c, m, x_cols, y, e, node);
    omp_set_num_threads(caller_threads);
    return st;
}

int64_t cpu_chunk_rows(int64_t n, int threads)
{
    if (n >= (int64_t)threads * CPU_CHUNK_ROWS) return CPU_CHUNK_ROWS;
    int64_t chunk = (n + threads - 1) / threads;
    chunk = (chunk + CPU_PIECE_ROWS - 1) / CPU_PIECE_ROWS * CPU_PIECE_ROWS;
    return chunk < CPU_PIECE_ROWS ? CPU_PIECE_ROWS : chunk;
}

void cpu_add_step_times(const cbi_op_args *a, double t_col, double t_gemm, double t_upd, int team)
{
    if (!a->collect_stats || !a->stats) return;
    a->stats->step_ms[CBINFER_STEP_IM2COL] += t_col / team;
    a->stats->step_ms[CBINFER_STEP_GEMM] += t_gemm / team;
    a->stats->step_ms[CBINFER_STEP_UPDATE] += t_upd / team;
}

/* The first source of srcs[0..n_src) whose rows reach past row r0 of
 * their concatenation, and r0's offset in it (*off). */
static int row_source(const cpu_row_src *srcs, int n_src, int64_t r0, int64_t *off)
{
    int s = 0;
    while (s < n_src - 1 && r0 >= srcs[s].n) r0 -= srcs[s++].n;
    *off = r0;
    return s;
}

cbinfer_status cpu_rows_run(cpu_ctx *ctx, const cpu_layer *W, const cbi_node *node,
                            const cpu_conv_geom *g, const cpu_row_src *srcs, int n_src,
                            cpu_rows_update update, int timed, double times[3], cbi_err *e)
{
    int64_t n = 0;
    for (int s = 0; s < n_src; ++s) n += srcs[s].n;
    const int threads = cpu_threads(ctx);
    const int64_t chunk = cpu_chunk_rows(n, threads);
    const int64_t n_chunks = (n + chunk - 1) / chunk;
    const int team = n_chunks < threads ? (int)(n_chunks > 0 ? n_chunks : 1) : threads;
    const int grouped = g->group > 1;
    const int thin = !grouped && g->cout <= CPU_THIN_COUT;
    double t_col = 0, t_gemm = 0, t_upd = 0;
    cbinfer_status st = CBINFER_STATUS_SUCCESS;
#pragma omp parallel for num_threads(team) schedule(dynamic, 1) reduction(+ : t_col, t_gemm, t_upd)
    for (int64_t ch = 0; ch < n_chunks; ++ch) {
        const int slot = omp_get_thread_num();
        cpu_slot *sl = &ctx->slots[slot];
        const int64_t r0 = ch * chunk;
        const int m = (int)(n - r0 < chunk ? n - r0 : chunk);
        int64_t off0;
        const int s0 = row_source(srcs, n_src, r0, &off0);
        cbi_err chunk_err;
        const double c0 = timed ? cbi_now_ms() : 0;
        cbinfer_status cs = CBINFER_STATUS_SUCCESS;
        /* Rows [0, m) of the chunk, one run per source it spans: im2col
         * rows (or, thin and grouped, the products themselves). */
        for (int s = s0, r = 0; r < m; ++s) {
            const int64_t off = s == s0 ? off0 : 0;
            const int len = (int)(srcs[s].n - off < m - r ? srcs[s].n - off : m - r);
            const int32_t *idx = srcs[s].idx + off;
            if (grouped)
                cpu_group_rows(g, srcs[s].src, W->group_w, idx, len, sl->gemm + (size_t)r * g->cout);
            else if (thin)
                cpu_thin_rows(g, srcs[s].src, W->thin_w, idx, len, sl->gemm + (size_t)r * g->cout);
            else
                cpu_gather_rows(g, srcs[s].src, idx, len, sl->col + (size_t)r * g->k);
            r += len;
        }
        const double c1 = timed ? cbi_now_ms() : 0;
        if (!thin && !grouped)
            cs = cpu_chunk_gemm(ctx, slot, &W->conv, m, g->k, sl->gemm, &chunk_err, node->name);
        const double c2 = timed ? cbi_now_ms() : 0;
        if (cs == CBINFER_STATUS_SUCCESS) {
            for (int s = s0, r = 0; r < m; ++s) {
                const int64_t off = s == s0 ? off0 : 0;
                const int len = (int)(srcs[s].n - off < m - r ? srcs[s].n - off : m - r);
                update(node, sl->gemm + (size_t)r * g->cout, srcs[s].idx + off, len, srcs[s].L,
                       srcs[s].out);
                r += len;
            }
        } else {
#pragma omp critical(cpu_conv_error)
            if (st == CBINFER_STATUS_SUCCESS) {
                st = cs;
                *e = chunk_err;
            }
        }
        const double c3 = timed ? cbi_now_ms() : 0;
        /* Thin and grouped rows are their own GEMM. */
        t_col += (thin || grouped) ? 0 : c1 - c0;
        t_gemm += (thin || grouped) ? c1 - c0 : c2 - c1;
        t_upd += c3 - c2;
    }
    times[0] = t_col / team;
    times[1] = t_gemm / team;
    times[2] = t_upd / team;
    return st;
}

cbinfer_status cpu_rows_gemm(cpu_ctx *ctx, const cpu_layer *L, cbi_op_args *a,
                             const cpu_conv_geom *g, const float *src, const int32_t *idx,
                             int64_t n, cpu_rows_update update, cbi_err *e)
{
    const cpu_row_src one = {.src = src, .idx = idx, .n = n, .out = a->out->data, .L = L};
    double t[3];
    const cbinfer_status st =
        cpu_rows_run(ctx, L, a->node, g, &one, 1, update, a->collect_stats, t, e);
    if (st == CBINFER_STATUS_SUCCESS) cpu_add_step_times(a, t[0], t[1], t[2], 1);
    return st;
}

void cpu_recompute_update(const cbi_node *node, const float *y, const int32_t *idx, int m,
                          const cpu_layer *L, float *out)
{
    (void)L;
    bias_act_rows(node, y, idx, m, out);
}

/* A predicted fallback (cpu_change_rows): the layer fell back on a recent
 * frame, so it computes dense without detecting. Its input differs from the
 * last frame's only at the pixels its producer rewrote (all of them when
 * that one fell back), so the outputs those reach through Eq. 4 are the
 * ones handed on. Under the break-even share the prediction ends: right
 * after the fallback, whose state is still the last input, the layer
 * detects as on any frame (returns 0); later (the state is not kept while
 * the layer predicts) the state takes the input and the layer recomputes
 * those outputs (*idx, *n). When the prediction runs out, the state takes
 * the input, and the layer detects from the next frame on. Returns 1 when
 * the frame is settled. */
static int predicted_fallback(cpu_ctx *ctx, int threads, cpu_layer *L, cbi_op_args *a,
                              const cpu_conv_geom *g, const int32_t **idx, int64_t *n, int *dense)
{
    const float *x = a->in[0]->data;
    const cbi_changes *in_chg = a->in_chg[0];
    const int64_t npx_in = (int64_t)g->h * g->w, npx_out = (int64_t)g->ho * g->wo;
    if (in_chg->all) {
        *n = npx_out;
    } else {
        *n = cpu_mark_and_extract(ctx, threads, g, in_chg->idx, in_chg->count, L->out_map, L->idx,
                                  a);
        *idx = L->idx;
    }
    const int under = !a->dense_fallback || (double)*n <= (double)a->break_even * (double)npx_out;
    const int fresh = L->state_fresh;
    L->state_fresh = 0;
    if (under && fresh) {
        L->predicted = 0;
        return 0;
    }
    a->stats->changed_in_px = in_chg->all ? npx_in : in_chg->count;
    L->tested_px = 0;
    L->exact = 1; /* dense from the input, or the listed rows from a state that took it */
    if (under || --L->predicted == 0) {
        const double t0 = cbi_now_ms();
        memcpy(L->in_state, x, (size_t)npx_in * g->cin * sizeof *x);
        cpu_step_time(a, CBINFER_STEP_EXTRACT, t0, cbi_now_ms());
        L->probing = !under;
        L->predicted = 0;
        if (under && !in_chg->all) return 1;
    }
    a->out_chg->all = in_chg->all;
    a->out_chg->idx = L->idx;
    a->out_chg->count = *n;
    a->stats->ran_dense = 1;
    *dense = 1;
    return 1;
}

/* Threshold 0 behind a change list (cpu_change_rows), from an output that is
 * the convolution of the last input (L->exact): every input pixel the
 * producer rewrote counts as changed, untested, and the layer recomputes
 * the outputs they reach (Eq. 4) from its input, whose other pixels are as
 * on the last frame. So the output stays exact, and the state is not kept
 * (state_stale): the detection's reads and writes of it, which cost about
 * what a depthwise conv does, are skipped. Past the break-even share it
 * runs dense and hands on the same outputs. */
static void follow_list(cpu_ctx *ctx, int threads, cpu_layer *L, cbi_op_args *a,
                        const cpu_conv_geom *g, const int32_t **idx, int64_t *n, int *dense)
{
    const cbi_changes *in_chg = a->in_chg[0];
    *n = cpu_mark_and_extract(ctx, threads, g, in_chg->idx, in_chg->count, L->out_map, L->idx, a);
    *idx = L->idx;
    a->stats->changed_in_px = in_chg->count;
    L->tested_px = 0;
    L->state_stale = 1;
    L->predicted = L->probing = L->state_fresh = 0;
    if (a->dense_fallback && (double)*n > (double)a->break_even * (double)g->ho * g->wo) {
        a->out_chg->all = 0;
        a->out_chg->idx = L->idx;
        a->out_chg->count = *n;
        a->stats->ran_dense = 1;
        *dense = 1;
    }
}

cbinfer_status cpu_change_rows(cpu_ctx *ctx, cpu_layer *L, cbi_op_args *a, const int32_t **idx,
                               int64_t *n, int *dense, const float **src, cbi_err *e)
{
    const cpu_conv_geom g = cpu_conv_geom_of(a);
    const float *x = a->in[0]->data;
    const cbi_changes *in_chg = a->in_chg[0];
    const int64_t npx_in = (int64_t)g.h * g.w, npx_out = (int64_t)g.ho * g.wo;
    if (!L || !L->in_state || !L->in_idx)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (Conv): no change-based state",
                        a->node->name);
    const int threads = cpu_threads(ctx);
    *dense = 0;
    *idx = NULL;
    *n = 0;
    *src = L->in_state;
    L->tested_px = in_chg->all ? npx_in : in_chg->count;

    if (a->first || (L->state_stale && in_chg->all)) {
        /* First frame, or a state not kept meeting an input changed
         * everywhere: dense, and the state starts as the input. */
        memcpy(L->in_state, x, (size_t)npx_in * g.cin * sizeof *x);
        a->out_chg->all = 1;
        a->stats->changed_in_px = npx_in;
        if (!a->first) a->stats->ran_dense = 1;
        L->tested_px = 0;
        L->predicted = L->probing = L->state_fresh = L->state_stale = 0;
        L->exact = 1;
        *dense = 1;
        return CBINFER_STATUS_SUCCESS;
    }
    if (!in_chg->all && (L->state_stale || (a->threshold == 0.f && L->exact))) {
        follow_list(ctx, threads, L, a, &g, idx, n, dense);
        *src = x;
        if (a->threshold != 0.f) {
            /* Above 0 again: this frame follows still, and the state takes
             * the input, to detect from the next. */
            const double t0 = cbi_now_ms();
            memcpy(L->in_state, x, (size_t)npx_in * g.cin * sizeof *x);
            cpu_step_time(a, CBINFER_STEP_EXTRACT, t0, cbi_now_ms());
            L->state_stale = 0;
        }
        return CBINFER_STATUS_SUCCESS;
    }

    if (L->predicted > 0 && predicted_fallback(ctx, threads, L, a, &g, idx, n, dense))
        return CBINFER_STATUS_SUCCESS;
    double t0 = cbi_now_ms();
    if (a->reuse_indices && !in_chg->all && conv_is_pointwise(&g)) {
        /* Sec. III-E case 2: a pointwise conv spreads no change, so the
         * producer's indices are this layer's. The state still follows them
         * so that detection can resume at any frame. */
        for (int64_t i = 0; i < in_chg->count; ++i) {
            const size_t off = (size_t)in_chg->idx[i] * g.cin;
            memcpy(L->in_state + off, x + off, (size_t)g.cin * sizeof *x);
        }
        *idx = in_chg->idx;
        *n = in_chg->count;
        a->stats->changed_in_px = *n;
        L->tested_px = 0;
        cpu_step_time(a, CBINFER_STEP_EXTRACT, t0, cbi_now_ms());
    } else {
        int64_t n_in = cpu_detect_changes(ctx, threads, &g, x, L->in_state, in_chg, a->threshold,
                                          a->feed_forward, NULL, L->in_idx);
        cpu_step_time(a, CBINFER_STEP_CHANGE_DETECT, t0, cbi_now_ms());
        *n = cpu_mark_and_extract(ctx, threads, &g, L->in_idx, n_in, L->out_map, L->idx, a);
        *idx = L->idx;
        a->stats->changed_in_px = n_in;
        /* Changes under τ stay out of the state and the output (an empty
         * list leaves nothing out, as on CUDA, which skips its detection). */
        if (a->threshold != 0.f && (in_chg->all || in_chg->count > 0)) L->exact = 0;
    }

    /* Worst case (camera motion, scene cut): past the break-even share the
     * dense path is cheaper. The state takes the input everywhere, so the
     * output computed from the input is the convolution of the state and the
     * closed loop continues from there. The map was cleared by extraction. */
    if (a->dense_fallback && (double)*n > (double)a->break_even * (double)npx_out) {
        memcpy(L->in_state, x, (size_t)npx_in * g.cin * sizeof *x);
        a->out_chg->all = 1;
        a->stats->ran_dense = 1;
        L->exact = 1;
        /* A layer whose input can come with a change list predicts the same
         * for the next frames; longer each time a prediction that ran out is
         * right again. */
        int len = CPU_PREDICT_FRAMES;
        if (L->probing) len = 2 * L->predict_len < CPU_PREDICT_MAX_FRAMES
                                  ? 2 * L->predict_len : CPU_PREDICT_MAX_FRAMES;
        L->predicted = L->predict_len = L->input_all_changed ? 0 : len;
        L->state_fresh = L->predicted > 0;
        *dense = 1;
    } else {
        L->predicted = 0;
    }
    L->probing = 0;
    return CBINFER_STATUS_SUCCESS;
}

void cpu_change_done(cbi_op_args *a, const int32_t *idx, int64_t n)
{
    const cpu_conv_geom g = cpu_conv_geom_of(a);
    a->out_chg->all = 0;
    a->out_chg->idx = (int32_t *)idx;
    a->out_chg->count = n;
    a->stats->changed_px = n;
    a->stats->macs = n * g.k * g.cout;
    /* Every tested element is a gate evaluation, every channel of a changed
     * pixel a transmission; there is no accumulator. */
    const int64_t tested = ((const cpu_layer *)a->layer)->tested_px * g.cin;
    a->stats->transmitted_el = a->stats->changed_in_px * g.cin;
    cbi_count_overhead(a->stats, tested, a->stats->transmitted_el, 0);
}

cbinfer_status cpu_conv_change(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cpu_ctx *ctx = bctx;
    cpu_layer *L = a->layer;
    if (ctx && L && a->policy && cbi_policy_is_delta(a->policy))
        return cpu_conv_delta(ctx, a, e);
    if (!ctx || !L || (!L->conv.mm[0] && !L->thin_w && !L->group_w))
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (Conv): no change-based state",
                        a->node->name);
    const int32_t *idx;
    int64_t n;
    int dense;
    const float *src;
    cbinfer_status st = cpu_change_rows(ctx, L, a, &idx, &n, &dense, &src, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    if (dense) return cpu_conv_dense(bctx, a, e);

    /* Gather (partial im2col from the state: in the closed loop the stored
     * output must be the convolution of the state; feed-forward, the state
     * equals the input after detection), GEMM, and the fused bias +
     * activation + scatter. */
    const cpu_conv_geom g = cpu_conv_geom_of(a);
    st = cpu_rows_gemm(ctx, L, a, &g, src, idx, n, cpu_recompute_update, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    cpu_change_done(a, idx, n);
    return CBINFER_STATUS_SUCCESS;
}
