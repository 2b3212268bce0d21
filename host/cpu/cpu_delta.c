/*
 * The delta policies of a convolution on the CPU (../shared/docs/VARIANTS.md
 * §5.4): Event Neural Networks and Sigma-Delta by an input-stationary delta
 * scatter, Skip-Convolutions by an output-stationary gather of residuals.
 *
 * Every layer keeps a reference v (cpu_layer.in_state: what the layer has
 * integrated) and a pre-activation accumulator a (cpu_layer.acc, or the
 * output itself through f^-1 when the activation is invertible):
 *
 *   EvNet (closed memory), Sigma-Delta:  a = W*v + b at every frame ([EV]
 *     Eq. 5), since a only ever takes W*Δ for the Δ that v took.
 *   Skip-Conv, EvNet nomem (open memory): v follows the input; residuals a
 *     gate drops are lost (a != W*v + b by design).
 *
 * Delta scatter (EvNet, Sigma-Delta), per frame:
 *   1. the gate over the candidate pixels (the producer's changes) picks
 *      the pixels that transmit (cpu_gate_block, one block per thread);
 *   2. Eq. 4 marks their footprint O, the outputs they reach;
 *   3. per chunk of transmitting pixels: their deltas D (rows of Cin, zero
 *      where an element is not sent) and the reference update, the GEMM
 *      P = D * W2 with W2 = Cin x (kh*kw*Cout), and the col2im scatter-add
 *      of P into a, in waves of one chunk per thread; within a wave each
 *      thread adds into its own band of output rows, in pixel order, so no
 *      two threads meet on an output and the sums are bit-reproducible;
 *   4. out = f(a) over O, and O goes on to the next layer.
 * Skip-Conv, per frame: residuals r = x - x_prev over the candidates into a
 * residual image, the gate per output pixel on the L1 of r over its window
 * (times ||W||_1 for Output-Norm), b x b blocks, then for each open output
 * a += (W*r)(o) by im2col of r and the GEMM ([SC] Eq. 3); the residual image
 * is cleared again.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "cpu_backend.h"

/* Below this many rows a step runs on one thread. */
#define DELTA_PARALLEL_MIN 4096

/* Sigma-Delta's quantizer, round half up: Q(v, s) = s * floor(v / s + 1/2);
 * s = 0 is the identity. */
static inline float sd_quantize(float v, float s)
{
    if (!(s > 0.f)) return v;
    const float k = v / s;
    /* A grid finer than the float spacing of v (or an overflowing k) is the
     * identity; k rounding to 0 gives 0, also for an infinite step. */
    if (!(fabsf(k) < 0x1p23f)) return v;
    const float q = floorf(k + 0.5f);
    return q == 0.f ? 0.f : q * s;
}

/* One pixel's gate (EvNet, Sigma-Delta). Returns the elements it
 * transmits. With delta != NULL the transmission is made: delta gets Δ (0
 * for elements not sent) and the reference moves by it (to x, or to Q(x)
 * for Sigma-Delta); open memory takes x everywhere. Without, nothing moves,
 * except that an open-memory pixel that sends nothing takes x at once. A
 * non-finite distance is always sent, as in CBinfer's detection. */
static int gate_pixel(const cbi_policy *p, const float *x, float *ref, int cin, float h,
                      float *delta)
{
    int sent = 0;
    if (p->kind == CBI_POLICY_SIGMADELTA) {
        for (int c = 0; c < cin; ++c) {
            const float q = sd_quantize(x[c], h), d = q - ref[c];
            const int fire = !(d == 0.f);
            sent += fire;
            if (delta) {
                delta[c] = fire ? d : 0.f;
                if (fire) ref[c] = q;
            }
        }
        return sent;
    }
    const int g = p->chunk == 0 ? cin : p->chunk;
    for (int c0 = 0; c0 < cin; c0 += g) {
        const int c1 = c0 + g < cin ? c0 + g : cin;
        int fire = 0;
        if (p->chunk == 0) { /* pixel: max |d| > h (Eq. 3) */
            for (int c = c0; c < c1; ++c) fire |= !(fabsf(x[c] - ref[c]) <= h);
        } else if (g == 1) { /* element: |d| > h (Eq. 6) */
            fire = !(fabsf(x[c0] - ref[c0]) <= h);
        } else { /* chunk: mean |d| > h ([EV-S] Table C) */
            float sum = 0.f;
            for (int c = c0; c < c1; ++c) sum += fabsf(x[c] - ref[c]);
            fire = !(sum <= h * (float)(c1 - c0));
        }
        if (fire) sent += c1 - c0;
        if (!delta) continue;
        for (int c = c0; c < c1; ++c) {
            delta[c] = fire ? x[c] - ref[c] : 0.f;
            if (fire || p->open_memory) ref[c] = x[c];
        }
    }
    if (!delta && !sent && p->open_memory) memcpy(ref, x, (size_t)cin * sizeof *ref);
    return sent;
}

int64_t cpu_gate_block(const cpu_layer *L, const float *x, float *ref, int cin,
                       const int32_t *list, int64_t begin, int64_t end, float theta,
                       int32_t *changed)
{
    int64_t n = 0;
    const cbi_policy *p = &L->policy;
    for (int64_t i = begin; i < end; ++i) {
        const int32_t px = list ? list[i] : (int32_t)i;
        const float *xp = x + (size_t)px * cin;
        float *rp = ref + (size_t)px * cin;
        if (p->kind != CBI_POLICY_SKIPCONV) {
            if (gate_pixel(p, xp, rp, cin, theta, NULL)) changed[n++] = px;
            continue;
        }
        /* Skip-Conv: the residual r = x - x_prev into the residual image,
         * its L1 into s1map (infinite when not finite: the gate opens), and
         * the reference follows the input (open memory, [SC] Eq. 2). */
        float *r = L->dimg + (size_t)px * cin, s1 = 0.f;
        for (int c = 0; c < cin; ++c) {
            r[c] = xp[c] - rp[c];
            s1 += fabsf(r[c]);
        }
        if (s1 == 0.f) continue;
        L->s1map[px] = isfinite(s1) ? s1 : INFINITY;
        memcpy(rp, xp, (size_t)cin * sizeof *rp);
        changed[n++] = px;
    }
    return n;
}

/* Kernel taps through which input coordinate i reaches a valid output along
 * one axis (stride s, dilation d, pad, n_out outputs). */
static int valid_taps(int i, int pad, int k, int d, int s, int n_out)
{
    int n = 0;
    for (int t = 0; t < k; ++t) {
        const int o = i + pad - t * d;
        n += o >= 0 && o % s == 0 && o / s < n_out;
    }
    return n;
}

/* f^-1 of an invertible activation (cbi_activation_invertible). */
static inline float act_inverse(const cbi_activation *act, int ch, float y)
{
    switch (act->kind) {
    case CBI_ACT_LEAKY_RELU: return y > 0.f ? y : y / act->alpha;
    case CBI_ACT_PRELU: return y > 0.f ? y : y / act->slope[act->n_slope == 1 ? 0 : ch];
    default: return y;
    }
}

/* out = f(src) over the pixels idx (src NULL: in place), or with inverse
 * out = f^-1(out), on entries [i0, i1) of idx (idx NULL: pixels [i0, i1)).
 * One loop per activation kind, so that each vectorises. */
CPU_SIMD_CLONES
static void act_rows(const cbi_node *node, const float *src, const int32_t *idx, int64_t i0,
                     int64_t i1, float *out, int inverse)
{
    const int cout = node->cout;
    const cbi_activation *act = &node->act;
    const float alpha = act->alpha;
    for (int64_t i = i0; i < i1; ++i) {
        const size_t off = (size_t)(idx ? idx[i] : i) * cout;
        float *o = out + off; /* a may be o itself (in place) */
        const float *a = src ? src + off : o;
        if (act->kind == CBI_ACT_NONE) {
            if (src) memcpy(o, a, (size_t)cout * sizeof *o);
        } else if (act->kind == CBI_ACT_RELU && !inverse) {
            for (int c = 0; c < cout; ++c) o[c] = a[c] > 0.f ? a[c] : 0.f;
        } else if (act->kind == CBI_ACT_LEAKY_RELU && !inverse) {
            for (int c = 0; c < cout; ++c) o[c] = a[c] > 0.f ? a[c] : a[c] * alpha;
        } else if (act->kind == CBI_ACT_LEAKY_RELU) {
            /* A division, not a multiplication by the reciprocal (one
             * rounding more): f^-1(f(v)) stays closest to v. */
            for (int c = 0; c < cout; ++c) o[c] = o[c] > 0.f ? o[c] : o[c] / alpha;
        } else {
            for (int c = 0; c < cout; ++c)
                o[c] = inverse ? act_inverse(act, c, o[c]) : cpu_activate(act, c, a[c]);
        }
    }
}

static void act_pixels(const cbi_node *node, const float *src, const int32_t *idx, int64_t n,
                       float *out, int inverse, int threads)
{
    if (threads < 2 || n * node->cout < DELTA_PARALLEL_MIN) {
        act_rows(node, src, idx, 0, n, out, inverse);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        const int64_t per = (n + nt - 1) / nt, i0 = t * per, i1 = i0 + per < n ? i0 + per : n;
        if (i0 < i1) act_rows(node, src, idx, i0, i1, out, inverse);
    }
}

/* Col2im scatter-add of m rows of P (kh*kw*Cout each, [ky][kx][Cout]) of the
 * input pixels px into the accumulator, for the outputs of rows [oy_lo,
 * oy_hi) only: tap (ky, kx) of input (iy, ix) goes to the output whose
 * window puts that tap on it. */
CPU_SIMD_CLONES
static void scatter_add_rows(const cpu_conv_geom *g, const float *restrict p, const int32_t *px,
                             int m, int oy_lo, int oy_hi, float *restrict acc)
{
    const size_t cout = (size_t)g->cout, tc = (size_t)g->kh * g->kw * cout;
    if (g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1) {
        /* Stride and dilation 1: tap (ky, kx) lands on output (iy + pad_t -
         * ky, ix + pad_l - kx), so one filter row is a run of outputs. */
        const int kh = g->kh, kw = g->kw, wo = g->wo, pad_t = g->pad_t, pad_l = g->pad_l;
        for (int r = 0; r < m; ++r) {
            const int iy = px[r] / g->w, ix = px[r] % g->w;
            const float *restrict row = p + (size_t)r * tc;
            int kx0 = ix + pad_l - (wo - 1); /* taps whose output column is inside */
            if (kx0 < 0) kx0 = 0;
            const int kx1 = ix + pad_l + 1 < kw ? ix + pad_l + 1 : kw;
            for (int ky = 0; ky < kh; ++ky) {
                const int oy = iy + pad_t - ky;
                if (oy < oy_lo || oy >= oy_hi) continue;
                float *restrict o = acc + ((size_t)oy * wo + (ix + pad_l)) * cout;
                const float *restrict q = row + (size_t)ky * kw * cout;
                for (int kx = kx0; kx < kx1; ++kx) {
                    float *restrict ok = o - (size_t)kx * cout;
                    const float *restrict qk = q + (size_t)kx * cout;
                    for (size_t c = 0; c < cout; ++c) ok[c] += qk[c];
                }
            }
        }
        return;
    }
    for (int r = 0; r < m; ++r) {
        const int iy = px[r] / g->w, ix = px[r] % g->w;
        const float *row = p + (size_t)r * tc;
        for (int ky = 0; ky < g->kh; ++ky) {
            const int ty = iy + g->pad_t - ky * g->dh;
            if (ty < 0 || ty % g->sh || ty / g->sh < oy_lo || ty / g->sh >= oy_hi) continue;
            for (int kx = 0; kx < g->kw; ++kx) {
                const int tx = ix + g->pad_l - kx * g->dw;
                if (tx < 0 || tx % g->sw || tx / g->sw >= g->wo) continue;
                float *restrict o = acc + ((size_t)(ty / g->sh) * g->wo + tx / g->sw) * cout;
                const float *restrict q = row + ((size_t)ky * g->kw + kx) * cout;
                for (size_t c = 0; c < cout; ++c) o[c] += q[c];
            }
        }
    }
}

/* Skip-Conv's update of m open outputs idx from their rows y of W*r:
 * a += y, out = f(a) ([SC] Eq. 3); without an accumulator tensor a is
 * f^-1(out), in place. */
CPU_SIMD_CLONES
static void accumulate_rows(const cbi_node *node, const float *restrict y, const int32_t *idx,
                            int m, const cpu_layer *L, float *out)
{
    const int cout = node->cout;
    float *a = L->acc ? L->acc : out;
    if (!L->acc) act_rows(node, NULL, idx, 0, m, out, 1);
    for (int r = 0; r < m; ++r, y += cout) {
        float *ar = a + (size_t)idx[r] * cout;
        for (int c = 0; c < cout; ++c) ar[c] += y[c];
    }
    act_rows(node, L->acc, idx, 0, m, out, 0);
}

/* The reference of a dense frame: the input, or Q(input) for Sigma-Delta. */
static void set_reference(const cpu_layer *L, const float *x, size_t n, float s, int threads)
{
    if (L->policy.kind != CBI_POLICY_SIGMADELTA) {
        memcpy(L->in_state, x, n * sizeof *x);
        return;
    }
#pragma omp parallel for num_threads(threads) schedule(static) if (n >= DELTA_PARALLEL_MIN)
    for (size_t i = 0; i < n; ++i) L->in_state[i] = sd_quantize(x[i], s);
}

/* A dense frame of a delta layer: a = W*v + b from the reference, and
 * out = f(a). Every output may have changed. */
static cbinfer_status dense_from_reference(cpu_ctx *ctx, cpu_layer *L, cbi_op_args *a,
                                           cbi_err *e)
{
    const cpu_conv_geom g = cpu_conv_geom_of(a);
    cbinfer_status st =
        cpu_conv_dense_from(ctx, L, a, L->in_state, L->acc ? L->acc : a->out->data, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    if (L->acc)
        act_pixels(a->node, L->acc, NULL, (int64_t)g.ho * g.wo, a->out->data, 0,
                   cpu_threads(ctx));
    a->out_chg->all = 1;
    a->stats->ran_dense = 1;
    return CBINFER_STATUS_SUCCESS;
}

/* The transmission of one pixel px (gate_pixel with its deltas into delta):
 * adds the elements sent and the papers' MACs, returns the pixel's valid
 * taps. */
static int64_t send_pixel(const cpu_layer *L, const cpu_conv_geom *g, const float *x, int32_t px,
                          float theta, float *delta, int64_t *sent_el, int64_t *macs_eff)
{
    const size_t off = (size_t)px * g->cin;
    const int sent = gate_pixel(&L->policy, x + off, L->in_state + off, g->cin, theta, delta);
    const int64_t taps = (int64_t)valid_taps(px / g->w, g->pad_t, g->kh, g->dh, g->sh, g->ho) *
                         valid_taps(px % g->w, g->pad_l, g->kw, g->dw, g->sw, g->wo);
    *sent_el += sent;
    *macs_eff += sent * taps * g->cout;
    return taps;
}

/* The transmissions of the n_in pixels of L->in_idx without their deltas
 * (they move the reference; recompute and refresh need nothing else), one
 * block of pixels per thread. */
static void send_all(cpu_ctx *ctx, cpu_layer *L, cbi_op_args *a, const cpu_conv_geom *g,
                     int64_t n_in)
{
    const float *x = a->in[0]->data;
    const int threads = cpu_threads(ctx);
    int64_t sent_el = 0, macs_eff = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sent_el, macs_eff) \
    if (n_in * g->cin >= DELTA_PARALLEL_MIN)
    {
        float *scratch = ctx->slots[omp_get_thread_num()].col;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n_in; ++i)
            send_pixel(L, g, x, L->in_idx[i], a->threshold, scratch, &sent_el, &macs_eff);
    }
    a->stats->transmitted_el = sent_el;
    a->stats->macs_effective = macs_eff;
    cbi_count_overhead(a->stats, 0, sent_el, 0);
}

/* Step 3 of the delta scatter for the n_in transmitting pixels (ascending),
 * in waves of one chunk per thread: each thread makes its chunk's deltas
 * (moving the reference) and runs its GEMM; after a barrier every thread
 * scatters the whole wave's products into its own band of output rows. An
 * output's sums thus come in pixel order and tap order whatever the thread
 * count, with no two threads on one output (no atomics, bit-reproducible). */
static cbinfer_status scatter_deltas(cpu_ctx *ctx, cpu_layer *L, cbi_op_args *a,
                                     const cpu_conv_geom *g, int64_t n_in, cbi_err *e)
{
    const float *x = a->in[0]->data;
    float *acc = L->acc ? L->acc : a->out->data;
    const int threads = cpu_threads(ctx);
    const int64_t chunk = cpu_chunk_rows(n_in, threads);
    const int64_t n_chunks = (n_in + chunk - 1) / chunk;
    const int team = n_chunks < threads ? (int)(n_chunks > 0 ? n_chunks : 1) : threads;
    const int timed = a->collect_stats;
    int64_t sent_el = 0, macs_eff = 0, acc_updates = 0;
    double t_col = 0, t_gemm = 0, t_upd = 0;
    cbinfer_status st = CBINFER_STATUS_SUCCESS;
    /* One region for all waves; a wave is one chunk per thread of the team
     * that actually runs (it may be smaller than asked: a caller's own
     * parallel region, OMP_THREAD_LIMIT). Per wave: deltas and GEMM, a
     * barrier, the scatter, a barrier (the next wave overwrites prod). The
     * status is written only before the first barrier and read only between
     * the two, so every thread leaves the loop at the same wave. */
#pragma omp parallel num_threads(team) reduction(+ : sent_el, macs_eff, acc_updates, t_col, t_gemm, t_upd)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        cpu_slot *sl = &ctx->slots[t];
        int ok = 1;
        for (int64_t w0 = 0; ok && w0 < n_in; w0 += nt * chunk) {
            const int64_t w1 = w0 + nt * chunk < n_in ? w0 + nt * chunk : n_in;
            const int64_t r0 = w0 + t * chunk;
            const int m = r0 < w1 ? (int)(w1 - r0 < chunk ? w1 - r0 : chunk) : 0;
            const int32_t *px = L->in_idx + r0;
            const double s0 = timed ? cbi_now_ms() : 0;
            for (int r = 0; r < m; ++r) {
                const int64_t taps =
                    send_pixel(L, g, x, px[r], a->threshold, sl->col + (size_t)r * g->cin, &sent_el,
                               &macs_eff);
                acc_updates += taps * g->cout;
            }
            const double s1 = timed ? cbi_now_ms() : 0;
            cbi_err chunk_err;
            const cbinfer_status cs =
                m ? cpu_chunk_gemm(ctx, t, &L->conv, m, g->cin, sl->prod, &chunk_err,
                                   a->node->name)
                  : CBINFER_STATUS_SUCCESS;
            if (cs != CBINFER_STATUS_SUCCESS) {
#pragma omp critical(cpu_delta_error)
                if (st == CBINFER_STATUS_SUCCESS) {
                    st = cs;
                    *e = chunk_err;
                }
            }
            const double s2 = timed ? cbi_now_ms() : 0;
#pragma omp barrier
            ok = st == CBINFER_STATUS_SUCCESS;
            if (ok) {
                /* Output rows the wave reaches, one band per thread. */
                const int iy0 = L->in_idx[w0] / g->w, iy1 = L->in_idx[w1 - 1] / g->w;
                const int lo = (iy0 + g->pad_t - (g->kh - 1) * g->dh) / g->sh;
                const int hi = (iy1 + g->pad_t) / g->sh + 1;
                const int oy0 = lo > 0 ? lo : 0, oy1 = hi < g->ho ? hi : g->ho;
                const int band = (oy1 - oy0 + nt - 1) / nt;
                const int b0 = oy0 + t * band, b1 = b0 + band < oy1 ? b0 + band : oy1;
                for (int c = 0; c < nt && b0 < b1; ++c) {
                    const int64_t c0 = w0 + c * chunk;
                    if (c0 >= w1) break;
                    const int mc = (int)(w1 - c0 < chunk ? w1 - c0 : chunk);
                    scatter_add_rows(g, ctx->slots[c].prod, L->in_idx + c0, mc, b0, b1, acc);
                }
            }
            const double s3 = timed ? cbi_now_ms() : 0;
#pragma omp barrier
            t_col += s1 - s0;
            t_gemm += s2 - s1;
            t_upd += s3 - s2;
        }
    }
    cpu_add_step_times(a, t_col, t_gemm, t_upd, team);
    a->stats->transmitted_el = sent_el;
    a->stats->macs_effective = macs_eff;
    a->stats->macs = n_in * g->k * g->cout;
    cbi_count_overhead(a->stats, 0, sent_el, acc_updates);
    return st;
}

/* Skip-Conv's gate on the outputs T reached by a residual (idx, n of them):
 * the L1 of r over each one's window, times ||W||_1 for Output-Norm, must
 * exceed ε ([SC] Eq. 5, 7; strictly, VARIANTS.md §10 item 7); then b x b
 * blocks. Leaves the open outputs, ascending, in idx and returns their
 * count. s1map is read here and cleared by the caller. */
static int64_t skip_gate(cpu_layer *L, const cpu_conv_geom *g, int32_t *idx, int64_t n,
                         float eps, int threads)
{
    const float scale = L->policy.output_norm ? L->w_l1 : 1.f;
    uint8_t *open = L->out_map; /* all zero after extraction */
#pragma omp parallel for num_threads(threads) schedule(static) if (n >= DELTA_PARALLEL_MIN)
    for (int64_t i = 0; i < n; ++i) {
        const int oy = idx[i] / g->wo, ox = idx[i] % g->wo;
        float norm = 0.f;
        for (int ky = 0; ky < g->kh; ++ky) {
            const int iy = oy * g->sh - g->pad_t + ky * g->dh;
            if (iy < 0 || iy >= g->h) continue;
            for (int kx = 0; kx < g->kw; ++kx) {
                const int ix = ox * g->sw - g->pad_l + kx * g->dw;
                if (ix >= 0 && ix < g->w) norm += L->s1map[(size_t)iy * g->w + ix];
            }
        }
        open[idx[i]] = !(norm * scale <= eps);
    }
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) {
        if (open[idx[i]]) idx[kept++] = idx[i];
        open[idx[i]] = 0;
    }
    const int b = L->policy.block;
    if (b <= 1) return kept;
    /* Structured gates: an aligned block is computed whole when any of its
     * outputs is open (max-pool by b, nearest upsample by b). */
    const int nbx = (g->wo + b - 1) / b;
    for (int64_t i = 0; i < kept; ++i) L->bmap[(idx[i] / g->wo / b) * nbx + idx[i] % g->wo / b] = 1;
    int64_t m = 0;
    for (int oy = 0; oy < g->ho; ++oy) {
        const uint8_t *row = L->bmap + (size_t)(oy / b) * nbx;
        for (int bx = 0; bx < nbx; ++bx) {
            if (!row[bx]) continue;
            const int x1 = (bx + 1) * b < g->wo ? (bx + 1) * b : g->wo;
            for (int ox = bx * b; ox < x1; ++ox) idx[m++] = oy * g->wo + ox;
        }
    }
    memset(L->bmap, 0, cbi_block_map_bytes(g->ho, g->wo, b));
    return m;
}

/* Skip-Conv: a += W*r at the open outputs, by im2col of the residual image
 * (or the thin dot products) and the GEMM; no two rows share an output. */
static cbinfer_status skip_update(cpu_ctx *ctx, cpu_layer *L, cbi_op_args *a,
                                  const cpu_conv_geom *g, int64_t n, cbi_err *e)
{
    const cbinfer_status st = cpu_rows_gemm(ctx, L, a, g, L->dimg, L->idx, n, accumulate_rows, e);
    a->stats->macs = a->stats->macs_effective = n * g->k * g->cout;
    cbi_count_overhead(a->stats, 0, 0, n * g->cout);
    return st;
}

/* Skip-Conv: the residual image and norms go back to zero at the n pixels
 * that hold a residual. */
static void skip_clear(cpu_layer *L, int cin, int64_t n)
{
    for (int64_t i = 0; i < n; ++i) {
        const int32_t px = L->in_idx[i];
        memset(L->dimg + (size_t)px * cin, 0, (size_t)cin * sizeof *L->dimg);
        L->s1map[px] = 0.f;
    }
}

/* Whether a distance of the n_in listed pixels is not finite: the input or
 * the reference there (Skip-Conv: the residual image). */
static int has_nonfinite(const cpu_layer *L, const float *x, int cin, int64_t n_in)
{
    const int skip = L->policy.kind == CBI_POLICY_SKIPCONV;
    int bad = 0;
    for (int64_t i = 0; i < n_in && !bad; ++i) {
        const size_t off = (size_t)L->in_idx[i] * cin;
        const float *p = skip ? L->dimg + off : x + off, *q = L->in_state + off;
        float sum = 0.f; /* 0 * (inf or NaN) is NaN: one test for the pixel */
        for (int c = 0; c < cin; ++c) sum += 0.f * p[c] + (skip ? 0.f : 0.f * q[c]);
        bad = !(sum == 0.f);
    }
    return bad;
}

cbinfer_status cpu_conv_delta(cpu_ctx *ctx, cbi_op_args *a, cbi_err *e)
{
    cpu_layer *L = a->layer;
    const cpu_conv_geom g = cpu_conv_geom_of(a);
    const cbi_policy *pol = &L->policy;
    const float *x = a->in[0]->data;
    const cbi_changes *in_chg = a->in_chg[0];
    const int64_t npx_in = (int64_t)g.h * g.w, npx_out = (int64_t)g.ho * g.wo;
    const size_t n_in_el = (size_t)npx_in * g.cin;
    const int threads = cpu_threads(ctx);
    const int skip = pol->kind == CBI_POLICY_SKIPCONV;
    const int scatter = cbi_policy_uses_scatter(pol, g.cin);
    if (!L->in_state || !L->conv.dense.prim || (skip && !L->dimg) ||
        (scatter && !L->conv.mm[0]) || (!scatter && !L->conv.mm[0] && !L->thin_w))
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (Conv): no delta-policy state",
                        a->node->name);

    /* First frame, and Skip-Conv's re-flush every R frames ([SC] Table 4,
     * VARIANTS.md §10 item 4): dense from the input (Q(input) for ΣΔ). */
    if (a->first || (skip && pol->reset > 0 && a->frame_index % pol->reset == 0)) {
        set_reference(L, x, n_in_el, a->threshold, threads);
        a->stats->changed_in_px = npx_in;
        return dense_from_reference(ctx, L, a, e);
    }

    double t0 = cbi_now_ms();
    const int64_t n_in = cpu_detect_changes(ctx, threads, &g, x, L->in_state, in_chg,
                                            a->threshold, 0, L, L->in_idx);
    cpu_step_time(a, CBINFER_STEP_CHANGE_DETECT, t0, cbi_now_ms());
    const int64_t tested = (in_chg->all ? npx_in : in_chg->count) * g.cin;
    a->stats->changed_in_px = n_in;
    cbi_count_overhead(a->stats, tested, 0, 0);

    /* A non-finite delta would stay in the accumulator (NaN + anything is
     * NaN, where dense recovers at the next finite input): such a frame is
     * computed dense from the reference instead, which takes the deltas
     * (Skip-Conv: a re-flush from the input). */
    const int nonfinite = (skip || scatter) && has_nonfinite(L, x, g.cin, n_in);
    if (nonfinite && skip) {
        skip_clear(L, g.cin, n_in);
        set_reference(L, x, n_in_el, a->threshold, threads);
        return dense_from_reference(ctx, L, a, e);
    }

    if (scatter && (a->refresh || nonfinite)) {
        /* Send this frame's deltas into the reference, then recompute a from
         * it densely: the same a, without the rounding the updates gathered. */
        send_all(ctx, L, a, &g, n_in);
        return dense_from_reference(ctx, L, a, e);
    }

    int64_t n = cpu_mark_and_extract(ctx, threads, &g, L->in_idx, n_in, L->out_map, L->idx, a);
    if (skip) {
        t0 = cbi_now_ms();
        n = skip_gate(L, &g, L->idx, n, a->threshold, threads);
        cpu_step_time(a, CBINFER_STEP_EXTRACT, t0, cbi_now_ms());
        a->stats->transmitted_el = n_in * g.cin;
        cbi_count_overhead(a->stats, 0, n_in * g.cin, 0);
    }

    /* Worst case: past the break-even share of outputs the dense path is
     * cheaper; the reference takes the input everywhere (a free full
     * transmission for EvNet, a reset for Skip-Conv). */
    if (a->dense_fallback && (double)n > (double)a->break_even * (double)npx_out) {
        if (skip) skip_clear(L, g.cin, n_in);
        set_reference(L, x, n_in_el, a->threshold, threads);
        return dense_from_reference(ctx, L, a, e);
    }

    cbinfer_status st;
    if (skip) {
        st = skip_update(ctx, L, a, &g, n, e);
        skip_clear(L, g.cin, n_in);
    } else if (!scatter) {
        /* Closed memory: the outputs the transmissions reach, recomputed in
         * full from the moved reference, are what the deltas would give
         * (VARIANTS.md §4.4); no accumulator is kept. */
        t0 = cbi_now_ms();
        send_all(ctx, L, a, &g, n_in);
        cpu_step_time(a, CBINFER_STEP_CHANGE_DETECT, t0, cbi_now_ms());
        st = cpu_rows_gemm(ctx, L, a, &g, L->in_state, L->idx, n, cpu_recompute_update, e);
        a->stats->macs = n * g.k * g.cout;
    } else {
        if (!L->acc) { /* the output holds f(a): back to a where the deltas land */
            t0 = cbi_now_ms();
            act_pixels(a->node, NULL, L->idx, n, a->out->data, 1, threads);
            cpu_step_time(a, CBINFER_STEP_UPDATE, t0, cbi_now_ms());
        }
        st = scatter_deltas(ctx, L, a, &g, n_in, e);
        if (st == CBINFER_STATUS_SUCCESS) {
            t0 = cbi_now_ms();
            act_pixels(a->node, L->acc, L->idx, n, a->out->data, 0, threads);
            cpu_step_time(a, CBINFER_STEP_UPDATE, t0, cbi_now_ms());
        }
    }
    if (st != CBINFER_STATUS_SUCCESS) return st;
    a->out_chg->all = 0;
    a->out_chg->idx = L->idx;
    a->out_chg->count = n;
    a->stats->changed_px = n;
    return CBINFER_STATUS_SUCCESS;
}
