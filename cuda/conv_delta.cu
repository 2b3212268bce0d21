/*
 * The delta policies of a convolution on CUDA (../shared/docs/VARIANTS.md
 * §5.4), the twin of host/cpu/cpu_delta.c: Event Neural Networks and
 * Sigma-Delta by an input-stationary delta scatter (or, for closed memory,
 * CBinfer's recompute of the reached outputs from the moved reference),
 * Skip-Convolutions by an output-stationary gather of residuals. Same state
 * and equations as the CPU; L->d_state is the reference v, L->d_acc the
 * fp32 accumulator a (NULL where f is invertible and the output is float:
 * then a = f^-1(output)).
 *
 * Delta scatter, per frame, on the context's stream:
 *   1. the gate over the producer's changed pixels (delta_decide_kernel):
 *      which pixels transmit, their footprint (Eq. 4) in the output map,
 *      and the counts the statistics need, without moving the reference;
 *   2. two extractions (thrust::copy_if, each one host wait): the
 *      transmitting pixels, then the outputs they reach;
 *   3. per chunk of transmitting pixels: their delta rows D (m x Cin, zero
 *      where an element is not sent) with the reference update
 *      (delta_apply_kernel), the cuBLAS GEMM P = D * W2 (W2 = Cin x
 *      kh*kw*Cout), and the col2im scatter-add of P into a;
 *   4. out = f(a) at the reached outputs, which go on to the next layer.
 *
 * Scatter-add: by float atomics (delta_scatter_kernel), because the
 * transmitting pixels of a frame come in blobs whose footprints overlap, so
 * no ordering of the rows that is cheap to build on the device keeps two
 * rows off one output; an atomicAdd to global memory is one instruction
 * per product, the same count as the CPU's adds. Its order, and so the last
 * bit of a sum, may change between runs. CBINFER_PARAM_DETERMINISTIC = 1
 * gathers instead (delta_gather_kernel): each reached output sums its taps
 * in a fixed order from the rows of the chunk, found through the row map
 * d_row_of, with no two threads on one value: bit-reproducible, at the cost
 * of one pass over the reached outputs per chunk.
 *
 * Closed memory by recompute: the gate moves the reference as it decides,
 * one extraction gives the reached outputs, and they are recomputed in full
 * from the reference (cu_conv_rows), with no accumulator.
 *
 * Skip-Conv: residuals r = x - x_prev into the residual image and their L1
 * per pixel (skip_residual_kernel), one extraction of the reached outputs,
 * the norm gate per output (times ||W||_1 for Output-Norm) and b x b blocks
 * into the map, a second extraction of the open outputs, then a += W*r at
 * them by im2col of the residual image and the GEMM; the residuals are
 * cleared again.
 *
 * Dense frames (the first, Skip-Conv's re-flush every R frames, the
 * break-even fallback, the refresh of CBINFER_PARAM_REFRESH_PERIOD, a
 * non-finite delta): a = W*v + b from the reference over every pixel.
 */
#include <math.h>
#include <stdlib.h>

#include "cuda_backend.cuh"

/* ----------------------------------------------------- device helpers ---- */

/* Sigma-Delta's quantizer, as sd_quantize() on the CPU (the product
 * rounded on its own, never fused into a later subtraction), then rounded
 * to the storage type T: the reference holds exactly what the gate compares
 * against, so an unchanged input sends nothing at fp16 either. */
template <typename T> __device__ __forceinline__ float cu_sd_quantize(float v, float s)
{
    if (!(s > 0.f)) return v;
    const float k = v / s;
    if (!(fabsf(k) < 0x1p23f)) return v;
    const float q = floorf(k + 0.5f);
    if (q == 0.f) return 0.f;
    T t;
    cu_st(&t, 0, __fmul_rn(q, s));
    return cu_ld(&t, 0);
}

/* One pixel's gate (EvNet, Sigma-Delta), as gate_pixel() on the CPU: the
 * elements it transmits. move: the reference takes what is sent (x, or
 * Q(x) for Sigma-Delta); open memory takes x everywhere, and an
 * open-memory pixel that sends nothing takes x at once in any case. */
template <typename T>
__device__ int cu_gate_pixel(const cbi_policy &p, const T *x, T *ref, int64_t off, int cin,
                             float h, bool move)
{
    int sent = 0;
    if (p.kind == CBI_POLICY_SIGMADELTA) {
        for (int c = 0; c < cin; ++c) {
            const float q = cu_sd_quantize<T>(cu_ld(x, off + c), h), d = q - cu_ld(ref, off + c);
            const bool fire = !(d == 0.f);
            sent += fire;
            if (move && fire) cu_st(ref, off + c, q);
        }
        return sent;
    }
    const int gsz = p.chunk == 0 ? cin : p.chunk;
    for (int c0 = 0; c0 < cin; c0 += gsz) {
        const int c1 = c0 + gsz < cin ? c0 + gsz : cin;
        bool fire = false;
        if (p.chunk == 0) { /* pixel: max |d| > h */
            for (int c = c0; c < c1; ++c)
                fire |= !(fabsf(cu_ld(x, off + c) - cu_ld(ref, off + c)) <= h);
        } else if (gsz == 1) { /* element */
            fire = !(fabsf(cu_ld(x, off + c0) - cu_ld(ref, off + c0)) <= h);
        } else { /* chunk: mean |d| > h */
            float sum = 0.f;
            for (int c = c0; c < c1; ++c) sum += fabsf(cu_ld(x, off + c) - cu_ld(ref, off + c));
            fire = !(sum <= h * (float)(c1 - c0));
        }
        if (fire) sent += c1 - c0;
        if (move && (fire || p.open_memory))
            for (int c = c0; c < c1; ++c) ref[off + c] = x[off + c];
    }
    if (!move && !sent && p.open_memory)
        for (int c = 0; c < cin; ++c) ref[off + c] = x[off + c];
    return sent;
}

/* ------------------------------------------------------------ kernels ---- */

/*
 * delta_decide_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per candidate pixel
 *   (list[i], or i when list is NULL). Runs the pixel's gate; a pixel that
 *   transmits sets in_map[px] (when in_map is not NULL), marks its footprint
 *   in out_map (concurrent writes all store 1) and adds to the counters:
 *   pixels, elements sent, the papers' MACs (sent x taps x Cout), the
 *   accumulator values it will update (taps x Cout), and whether an input
 *   or reference value of it is not finite.
 *   Shared memory: none. Layout: NHWC (a pixel's channels are contiguous).
 */
template <typename T>
__global__ void delta_decide_kernel(cbi_cuda_conv_geom g, cbi_policy p, const T *__restrict__ x,
                                    T *__restrict__ ref, const int32_t *__restrict__ list,
                                    int64_t n, float h, int move, uint8_t *__restrict__ in_map,
                                    uint8_t *__restrict__ out_map, unsigned long long *stat)
{
    CU_GRID_STRIDE(i, n)
    {
        const int32_t px = list ? list[i] : (int32_t)i;
        const int64_t off = (int64_t)px * g.cin;
        const int sent = cu_gate_pixel(p, x, ref, off, g.cin, h, move != 0);
        if (!sent) continue;
        bool bad = false;
        for (int c = 0; c < g.cin; ++c)
            bad |= !isfinite(cu_ld(x, off + c)) || !isfinite(cu_ld(ref, off + c));
        const int taps = cu_footprint(g, px, out_map);
        if (in_map) in_map[px] = 1;
        atomicAdd(&stat[CU_DSTAT_PIXELS], 1ull);
        atomicAdd(&stat[CU_DSTAT_ELEMENTS], (unsigned long long)sent);
        atomicAdd(&stat[CU_DSTAT_MACS], (unsigned long long)sent * taps * g.cout);
        atomicAdd(&stat[CU_DSTAT_ACC], (unsigned long long)taps * g.cout);
        if (bad) atomicAdd(&stat[CU_DSTAT_NONFINITE], 1ull);
    }
}

/*
 * delta_apply_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per (row, group) of
 *   the m transmitting pixels rows[]: a group is one element (pixel and
 *   element granularity, Sigma-Delta) or one chunk of G channels. Writes the
 *   group's deltas into row r of D (m x cin, zero where the group does not
 *   fire; D NULL: no deltas) and moves the reference as the CPU's
 *   gate_pixel does. A listed pixel at pixel granularity fires whole (it is
 *   listed because it does).
 *   Shared memory: none. Layout: NHWC input and reference, row-major D.
 */
template <typename T>
__global__ void delta_apply_kernel(cbi_policy p, const T *__restrict__ x, T *__restrict__ ref,
                                   const int32_t *__restrict__ rows, int m, int cin, float h,
                                   T *__restrict__ D)
{
    const int gs = p.kind == CBI_POLICY_EVNET && p.chunk > 1 ? p.chunk : 1;
    const int ng = (cin + gs - 1) / gs;
    CU_GRID_STRIDE(i, (int64_t)m * ng)
    {
        const int64_t r = i / ng;
        const int c0 = (int)(i - r * ng) * gs, c1 = c0 + gs < cin ? c0 + gs : cin;
        const int64_t off = (int64_t)rows[r] * cin;
        if (p.kind == CBI_POLICY_SIGMADELTA) {
            const float q = cu_sd_quantize<T>(cu_ld(x, off + c0), h), d = q - cu_ld(ref, off + c0);
            const bool fire = !(d == 0.f);
            if (D) cu_st(D, r * cin + c0, fire ? d : 0.f);
            if (fire) cu_st(ref, off + c0, q);
            continue;
        }
        bool fire = true;
        if (p.chunk == 1) {
            fire = !(fabsf(cu_ld(x, off + c0) - cu_ld(ref, off + c0)) <= h);
        } else if (p.chunk > 1) {
            float sum = 0.f;
            for (int c = c0; c < c1; ++c) sum += fabsf(cu_ld(x, off + c) - cu_ld(ref, off + c));
            fire = !(sum <= h * (float)(c1 - c0));
        }
        for (int c = c0; c < c1; ++c) {
            const float xv = cu_ld(x, off + c);
            if (D) cu_st(D, r * cin + c, fire ? xv - cu_ld(ref, off + c) : 0.f);
            if (fire || p.open_memory) ref[off + c] = x[off + c];
        }
    }
}

/*
 * delta_scatter_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per value of the
 *   m x (kh*kw*Cout) products P ([ky][kx][Cout] per row): tap (ky, kx) of
 *   input pixel rows[r] lands on the output whose window puts that tap on
 *   it, by atomicAdd into acc (float, NHWC). Consecutive threads take
 *   consecutive channels of one tap: coalesced reads of P and adds.
 */
__global__ void delta_scatter_kernel(cbi_cuda_conv_geom g, const float *__restrict__ P,
                                     const int32_t *__restrict__ rows, int m, float *acc)
{
    const int64_t tc = (int64_t)g.kh * g.kw * g.cout;
    CU_GRID_STRIDE(i, (int64_t)m * tc)
    {
        const int64_t r = i / tc, rem = i - r * tc;
        const int tap = (int)(rem / g.cout), c = (int)(rem - (int64_t)tap * g.cout);
        const int ky = tap / g.kw, kx = tap - ky * g.kw;
        const int iy = rows[r] / g.w, ix = rows[r] % g.w;
        const int ty = iy + g.pad_t - ky * g.dh, tx = ix + g.pad_l - kx * g.dw;
        if (ty < 0 || ty % g.sh || ty / g.sh >= g.ho) continue;
        if (tx < 0 || tx % g.sw || tx / g.sw >= g.wo) continue;
        atomicAdd(&acc[((int64_t)(ty / g.sh) * g.wo + tx / g.sw) * g.cout + c], P[i]);
    }
}

/*
 * delta_gather_kernel (CBINFER_PARAM_DETERMINISTIC)
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per value of the n
 *   reached outputs idx[]: adds into acc, in tap order, the products of
 *   the taps whose input pixel has a row in [r0, r0 + m) of this chunk
 *   (row_of: the row of each input pixel, -1 for none). One thread per
 *   value: no two threads meet, the order is fixed.
 */
__global__ void delta_gather_kernel(cbi_cuda_conv_geom g, const float *__restrict__ P,
                                    const int32_t *__restrict__ row_of, int64_t r0, int m,
                                    const int32_t *__restrict__ idx, int64_t n,
                                    float *__restrict__ acc)
{
    const int64_t tc = (int64_t)g.kh * g.kw * g.cout;
    CU_GRID_STRIDE(i, n * g.cout)
    {
        const int64_t j = i / g.cout;
        const int c = (int)(i - j * g.cout);
        const int o = idx[j], oy = o / g.wo, ox = o % g.wo;
        /* Each product into the running value, in tap order (= the input
         * pixels' order): the additions of the CPU's scatter. */
        const int64_t at = (int64_t)o * g.cout + c;
        float v = acc[at];
        for (int ky = 0; ky < g.kh; ++ky) {
            const int iy = oy * g.sh - g.pad_t + ky * g.dh;
            if (iy < 0 || iy >= g.h) continue;
            for (int kx = 0; kx < g.kw; ++kx) {
                const int ix = ox * g.sw - g.pad_l + kx * g.dw;
                if (ix < 0 || ix >= g.w) continue;
                const int64_t r = row_of[(int64_t)iy * g.w + ix];
                if (r < r0 || r >= r0 + m) continue;
                v += P[(r - r0) * tc + (int64_t)(ky * g.kw + kx) * g.cout + c];
            }
        }
        acc[at] = v;
    }
}

/* row_of[rows[r]] = set ? r : -1 for r < n. */
__global__ void delta_row_of_kernel(const int32_t *__restrict__ rows, int64_t n, int set,
                                    int32_t *__restrict__ row_of)
{
    CU_GRID_STRIDE(r, n) row_of[rows[r]] = set ? (int32_t)r : -1;
}

/*
 * delta_act_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per value of the n
 *   outputs idx[]: out = f(acc), or without an accumulator tensor, in place
 *   on the (float) output, out = f^-1(out) (inverse) or f(out).
 */
template <typename T>
__global__ void delta_act_kernel(const float *__restrict__ acc, cbi_cuda_act act,
                                 const int32_t *__restrict__ idx, int64_t n, int cout,
                                 int inverse, T *out)
{
    CU_GRID_STRIDE(i, n * cout)
    {
        const int64_t j = i / cout;
        const int o = (int)(i - j * cout);
        const int64_t off = (int64_t)idx[j] * cout + o;
        if (acc) {
            cu_st(out, off, cu_activate(act, o, acc[off]));
        } else {
            const float v = cu_ld(out, off);
            cu_st(out, off, inverse ? cu_act_inverse(act, o, v) : cu_activate(act, o, v));
        }
    }
}

/* ref = Q(x, s) over n values (Sigma-Delta's reference of a dense frame). */
template <typename T>
__global__ void quantize_kernel(const T *__restrict__ x, T *__restrict__ ref, int64_t n, float s)
{
    CU_GRID_STRIDE(i, n) cu_st(ref, i, cu_sd_quantize<T>(cu_ld(x, i), s));
}

/*
 * skip_residual_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per candidate pixel
 *   (list[i], or i): r = x - ref into the residual image, its L1 into s1map
 *   (infinite when not finite), the reference takes x (open memory), and a
 *   pixel with a residual marks its footprint and is counted (and flagged
 *   when a residual value is not finite).
 */
template <typename T>
__global__ void skip_residual_kernel(cbi_cuda_conv_geom g, const T *__restrict__ x,
                                     T *__restrict__ ref, const int32_t *__restrict__ list,
                                     int64_t n, T *__restrict__ dimg, float *__restrict__ s1map,
                                     uint8_t *__restrict__ out_map, unsigned long long *stat)
{
    CU_GRID_STRIDE(i, n)
    {
        const int32_t px = list ? list[i] : (int32_t)i;
        const int64_t off = (int64_t)px * g.cin;
        float s1 = 0.f;
        bool bad = false;
        for (int c = 0; c < g.cin; ++c) {
            const float r = cu_ld(x, off + c) - cu_ld(ref, off + c);
            cu_st(dimg, off + c, r);
            s1 += fabsf(r);
            bad |= !isfinite(r);
        }
        if (s1 == 0.f) continue;
        s1map[px] = isfinite(s1) ? s1 : INFINITY;
        for (int c = 0; c < g.cin; ++c) ref[off + c] = x[off + c];
        cu_footprint(g, px, out_map);
        atomicAdd(&stat[CU_DSTAT_PIXELS], 1ull);
        if (bad) atomicAdd(&stat[CU_DSTAT_NONFINITE], 1ull);
    }
}

/*
 * skip_norm_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per reached output
 *   idx[i]: the L1 of the residuals over its window (s1map, in tap order)
 *   times scale must exceed eps ([SC] Eq. 5, 7); an open output sets its
 *   byte of open_map, or with blocks (block > 1) its block's byte of bmap.
 */
__global__ void skip_norm_kernel(cbi_cuda_conv_geom g, const float *__restrict__ s1map,
                                 const int32_t *__restrict__ idx, int64_t n, float scale,
                                 float eps, int block, int nbx, uint8_t *__restrict__ open_map,
                                 uint8_t *__restrict__ bmap)
{
    CU_GRID_STRIDE(i, n)
    {
        const int o = idx[i], oy = o / g.wo, ox = o % g.wo;
        float norm = 0.f;
        for (int ky = 0; ky < g.kh; ++ky) {
            const int iy = oy * g.sh - g.pad_t + ky * g.dh;
            if (iy < 0 || iy >= g.h) continue;
            for (int kx = 0; kx < g.kw; ++kx) {
                const int ix = ox * g.sw - g.pad_l + kx * g.dw;
                if (ix >= 0 && ix < g.w) norm += s1map[(int64_t)iy * g.w + ix];
            }
        }
        if (norm * scale <= eps) continue;
        if (block > 1) bmap[(int64_t)(oy / block) * nbx + ox / block] = 1;
        else open_map[o] = 1;
    }
}

/* Every output of an open block is open: open_map[o] = 1 where bmap says. */
__global__ void skip_blocks_kernel(int ho, int wo, int block, int nbx,
                                   const uint8_t *__restrict__ bmap, uint8_t *__restrict__ open_map)
{
    CU_GRID_STRIDE(i, (int64_t)ho * wo)
    {
        const int oy = (int)(i / wo), ox = (int)(i - (int64_t)oy * wo);
        if (bmap[(int64_t)(oy / block) * nbx + ox / block]) open_map[i] = 1;
    }
}

/* The residual image and norms back to zero at the n listed pixels. */
template <typename T>
__global__ void skip_clear_kernel(const int32_t *__restrict__ list, int64_t n, int cin,
                                  T *__restrict__ dimg, float *__restrict__ s1map)
{
    CU_GRID_STRIDE(i, n * cin)
    {
        const int64_t j = i / cin;
        const int c = (int)(i - j * cin);
        const int64_t px = list[j];
        cu_st(dimg, px * cin + c, 0.f);
        if (c == 0) s1map[px] = 0.f;
    }
}

/* ------------------------------------------------------- orchestration ---- */

namespace {

/* cudaGetLastError() after launches, as a status naming the node. */
cbinfer_status cu_launched(const cbi_op_args *a, cbi_err *e)
{
    CBINFER_CUDA_TRY(cudaGetLastError(), e, cu_name(a));
    return CBINFER_STATUS_SUCCESS;
}

/* The reference of a dense frame: the input, or Q(input) for Sigma-Delta. */
template <typename T>
cbinfer_status set_reference(cu_ctx *ctx, cu_layer *L, const cbi_op_args *a,
                             const cbi_cuda_conv_geom &g, cbi_err *e)
{
    const int64_t n = (int64_t)g.h * g.w * g.cin;
    if (L->policy.kind != CBI_POLICY_SIGMADELTA) {
        CBINFER_CUDA_TRY(cudaMemcpyAsync(L->d_state, a->in[0]->data, (size_t)n * sizeof(T),
                                         cudaMemcpyDeviceToDevice, ctx->stream),
                         e, cu_name(a));
        return CBINFER_STATUS_SUCCESS;
    }
    quantize_kernel<T><<<cu_blocks(n), CU_THREADS, 0, ctx->stream>>>(
        (const T *)a->in[0]->data, (T *)L->d_state, n, a->threshold);
    return cu_launched(a, e);
}

/* A dense frame of a delta layer: a = W*v + b from the reference over every
 * output, out = f(a); every output may have changed. */
cbinfer_status dense_from_reference(cu_ctx *ctx, cu_layer *L, cbi_op_args *a,
                                    const cbi_cuda_conv_geom &g, cbi_err *e)
{
    const int acc = cbi_policy_accumulates(&L->policy, g.cin);
    const int64_t npx = (int64_t)g.ho * g.wo;
    CU_TRY(cu_conv_rows(ctx, a, L->d_state, NULL, npx, acc ? CU_ROWS_SET_ACC : CU_ROWS_OUTPUT,
                        L->d_acc, e));
    a->out_chg->all = 1;
    a->stats->ran_dense = 1;
    a->stats->changed_px = npx;
    a->stats->macs = npx * g.k * g.cout;
    return CBINFER_STATUS_SUCCESS;
}

/* Every map and scratch image of the layer as a call leaves it (a frame
 * that failed half way may not have): at the first frame after creation or
 * a reset. */
template <typename T>
cbinfer_status clean_maps(cu_ctx *ctx, cu_layer *L, const cbi_op_args *a,
                          const cbi_cuda_conv_geom &g, cbi_err *e)
{
    const size_t in_px = (size_t)g.h * g.w, out_px = (size_t)g.ho * g.wo;
    const char *where = cu_name(a);
    CBINFER_CUDA_TRY(cudaMemsetAsync(L->d_map, 0, out_px, ctx->stream), e, where);
    if (L->d_in_map)
        CBINFER_CUDA_TRY(cudaMemsetAsync(L->d_in_map, 0, in_px, ctx->stream), e, where);
    if (L->d_row_of)
        CBINFER_CUDA_TRY(cudaMemsetAsync(L->d_row_of, 0xff, in_px * sizeof(int32_t),
                                         ctx->stream),
                         e, where);
    if (L->d_dimg) {
        CBINFER_CUDA_TRY(cudaMemsetAsync(L->d_dimg, 0, in_px * g.cin * sizeof(T), ctx->stream),
                         e, where);
        CBINFER_CUDA_TRY(cudaMemsetAsync(L->d_s1, 0, in_px * sizeof(float), ctx->stream), e,
                         where);
        CBINFER_CUDA_TRY(cudaMemsetAsync(L->d_bmap, 0,
                                         cbi_block_map_bytes(g.ho, g.wo, L->policy.block),
                                         ctx->stream),
                         e, where);
    }
    return CBINFER_STATUS_SUCCESS;
}

/* Skip-Conv: residuals and norms back to zero at the n candidates (list,
 * or every pixel when list is NULL). */
template <typename T>
cbinfer_status skip_clear(cu_ctx *ctx, cu_layer *L, const cbi_op_args *a, const int32_t *list,
                          int64_t n, int cin, cbi_err *e)
{
    if (!list) {
        CBINFER_CUDA_TRY(cudaMemsetAsync(L->d_dimg, 0, (size_t)n * cin * sizeof(T), ctx->stream),
                         e, cu_name(a));
        CBINFER_CUDA_TRY(cudaMemsetAsync(L->d_s1, 0, (size_t)n * sizeof(float), ctx->stream), e,
                         cu_name(a));
        return CBINFER_STATUS_SUCCESS;
    }
    if (n <= 0) return CBINFER_STATUS_SUCCESS;
    skip_clear_kernel<T><<<cu_blocks(n * cin), CU_THREADS, 0, ctx->stream>>>(
        list, n, cin, (T *)L->d_dimg, L->d_s1);
    return cu_launched(a, e);
}

/* The transmissions' statistics (EvNet, Sigma-Delta), from the counters
 * read back (valid after the host wait that follows their copy), on the
 * frames where the CPU counts them: those that transmit. */
void send_stats(cbi_op_args *a, const unsigned long long *st)
{
    a->stats->transmitted_el = (int64_t)st[CU_DSTAT_ELEMENTS];
    a->stats->macs_effective = (int64_t)st[CU_DSTAT_MACS];
    cbi_count_overhead(a->stats, 0, a->stats->transmitted_el, 0);
}

/* The extraction of a map's marked pixels into idx, the map cleared again
 * where it was set: one host wait. */
cbinfer_status extract(cu_ctx *ctx, const cbi_op_args *a, uint8_t *map, int64_t n_px,
                       int32_t *idx, int64_t *n, cbi_err *e)
{
    cu_step s(ctx, a, CBINFER_STEP_EXTRACT);
    CU_TRY(s.begin(e));
    CU_TRY(cu_extract_indices(ctx, map, n_px, idx, n, cu_name(a), e));
    if (*n < 0 || *n > n_px)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s: read back %lld of %lld pixels",
                        cu_name(a), (long long)*n, (long long)n_px);
    CBINFER_CUDA_TRY(launch_clear_map(map, idx, *n, ctx->stream), e, cu_name(a));
    return s.end(e);
}

/* Steps 3 and 4 of the delta scatter: the n_in transmitting pixels
 * L->d_in_idx into the accumulator, chunk by chunk, then out = f(a) at the
 * n reached outputs L->d_idx. */
template <typename T>
cbinfer_status scatter_deltas(cu_ctx *ctx, cu_layer *L, cbi_op_args *a,
                              const cbi_cuda_conv_geom &g, int64_t n_in, int64_t n, cbi_err *e)
{
    const char *where = cu_name(a);
    cbi_cuda_act act;
    CU_TRY(cu_act_of(a, &act, e));
    /* Without an accumulator tensor (float storage) a is f^-1(output). */
    float *acc = L->d_acc ? L->d_acc : (float *)a->out->data;
    T *out = (T *)a->out->data;
    const int64_t tc = (int64_t)g.kh * g.kw * g.cout;
    /* P rows fit the GEMM scratch, D rows (Cin <= k values) the im2col one. */
    int64_t chunk = (int64_t)(ctx->y_floats / (size_t)tc);
    if (chunk > (int64_t)ctx->chunk_px) chunk = (int64_t)ctx->chunk_px;
    if (chunk < 1 || (size_t)g.cin > ctx->max_k)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s: GEMM scratch of %zu floats for "
                        "rows of %lld", where, ctx->y_floats, (long long)tc);
    if (!L->d_acc) {
        cu_step s(ctx, a, CBINFER_STEP_UPDATE);
        CU_TRY(s.begin(e));
        delta_act_kernel<T><<<cu_blocks(n * g.cout), CU_THREADS, 0, ctx->stream>>>(
            NULL, act, L->d_idx, n, g.cout, 1, out);
        CU_TRY(cu_launched(a, e));
        CU_TRY(s.end(e));
    }
    if (a->deterministic) {
        delta_row_of_kernel<<<cu_blocks(n_in), CU_THREADS, 0, ctx->stream>>>(L->d_in_idx, n_in, 1,
                                                                             L->d_row_of);
        CU_TRY(cu_launched(a, e));
    }
    for (int64_t r0 = 0; r0 < n_in; r0 += chunk) {
        const int m = (int)(n_in - r0 < chunk ? n_in - r0 : chunk);
        const int32_t *rows = L->d_in_idx + r0;
        {
            cu_step s(ctx, a, CBINFER_STEP_IM2COL);
            CU_TRY(s.begin(e));
            delta_apply_kernel<T><<<cu_blocks((int64_t)m * g.cin), CU_THREADS, 0, ctx->stream>>>(
                L->policy, (const T *)a->in[0]->data, (T *)L->d_state, rows, m, g.cin,
                a->threshold, (T *)ctx->d_col);
            CU_TRY(cu_launched(a, e));
            CU_TRY(s.end(e));
        }
        {
            /* Row-major P[m][tc] = D[m][cin] * W2[cin][tc]; read column-major,
             * P^T (tc x m) = W2^T (tc x cin, lda tc) * D^T (cin x m, ldb cin). */
            cu_step s(ctx, a, CBINFER_STEP_GEMM);
            CU_TRY(s.begin(e));
            CBINFER_CUBLAS_TRY(launch_gemm(ctx->cublas, ctx->precision, CUBLAS_OP_N, (int)tc, m,
                                           g.cin, L->d_w2, (int)tc, ctx->d_col, g.cin, ctx->d_y,
                                           (int)tc),
                               e, where);
            CU_TRY(s.end(e));
        }
        {
            cu_step s(ctx, a, CBINFER_STEP_UPDATE);
            CU_TRY(s.begin(e));
            if (a->deterministic)
                delta_gather_kernel<<<cu_blocks(n * g.cout), CU_THREADS, 0, ctx->stream>>>(
                    g, ctx->d_y, L->d_row_of, r0, m, L->d_idx, n, acc);
            else
                delta_scatter_kernel<<<cu_blocks((int64_t)m * tc), CU_THREADS, 0, ctx->stream>>>(
                    g, ctx->d_y, rows, m, acc);
            CU_TRY(cu_launched(a, e));
            CU_TRY(s.end(e));
        }
    }
    cu_step s(ctx, a, CBINFER_STEP_UPDATE);
    CU_TRY(s.begin(e));
    if (a->deterministic)
        delta_row_of_kernel<<<cu_blocks(n_in), CU_THREADS, 0, ctx->stream>>>(L->d_in_idx, n_in, 0,
                                                                             L->d_row_of);
    delta_act_kernel<T><<<cu_blocks(n * g.cout), CU_THREADS, 0, ctx->stream>>>(
        L->d_acc, act, L->d_idx, n, g.cout, 0, out);
    CU_TRY(cu_launched(a, e));
    CU_TRY(s.end(e));
    a->stats->macs = n_in * g.k * g.cout;
    cbi_count_overhead(a->stats, 0, 0, (int64_t)ctx->h_dstat[CU_DSTAT_ACC]);
    return CBINFER_STATUS_SUCCESS;
}

template <typename T> cbinfer_status conv_delta(cu_ctx *ctx, cbi_op_args *a, cbi_err *e)
{
    cu_layer *L = (cu_layer *)a->layer;
    const char *where = cu_name(a);
    const cbi_cuda_conv_geom g = cu_conv_geom(a);
    const cbi_policy *pol = &L->policy;
    const cbi_changes *in_chg = a->in_chg[0];
    const int64_t npx_in = (int64_t)g.h * g.w, npx_out = (int64_t)g.ho * g.wo;
    const int skip = pol->kind == CBI_POLICY_SKIPCONV;
    const int scatter = cbi_policy_uses_scatter(pol, g.cin);
    if (!cbi_policy_is_delta(pol) || (skip && (!L->d_dimg || !L->d_s1 || !L->d_bmap)) ||
        (scatter && (!L->d_w2 || !L->d_in_map || !L->d_in_idx || !L->d_row_of)) ||
        (cbi_policy_accumulates(pol, g.cin) && !L->d_acc && ctx->dt != CBI_CUDA_F32))
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (Conv): no delta-policy state",
                        where);

    /* First frame, and Skip-Conv's re-flush every R frames: dense from the
     * input (Q(input) for Sigma-Delta). */
    if (a->first || (skip && pol->reset > 0 && a->frame_index % pol->reset == 0)) {
        if (a->first) CU_TRY(clean_maps<T>(ctx, L, a, g, e));
        CU_TRY(set_reference<T>(ctx, L, a, g, e));
        a->stats->changed_in_px = npx_in;
        return dense_from_reference(ctx, L, a, g, e);
    }
    if (!in_chg->all && in_chg->count > 0 && !in_chg->idx)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s: change list without indices",
                        where);
    const int32_t *list = in_chg->all ? NULL : in_chg->idx;
    const int64_t n_test = in_chg->all ? npx_in : in_chg->count;
    const int refresh = scatter && a->refresh;
    cbi_count_overhead(a->stats, n_test * g.cin, 0, 0);
    a->out_chg->all = 0;
    a->out_chg->idx = L->d_idx;
    a->out_chg->count = 0;
    a->stats->changed_in_px = a->stats->changed_px = a->stats->macs = 0;
    if (n_test == 0 && !refresh) return CBINFER_STATUS_SUCCESS; /* nothing can have changed */

    /* 1. The gate. The scatter decides without moving the reference (the
     * deltas are made per chunk); recompute and refresh move it at once. */
    const T *x = (const T *)a->in[0]->data;
    T *ref = (T *)L->d_state;
    CBINFER_CUDA_TRY(cudaMemsetAsync(ctx->d_dstat, 0, CU_DSTAT_COUNT * sizeof *ctx->d_dstat,
                                     ctx->stream),
                     e, where);
    {
        cu_step s(ctx, a, CBINFER_STEP_CHANGE_DETECT);
        CU_TRY(s.begin(e));
        if (skip)
            skip_residual_kernel<T><<<cu_blocks(n_test), CU_THREADS, 0, ctx->stream>>>(
                g, x, ref, list, n_test, (T *)L->d_dimg, L->d_s1, L->d_map, ctx->d_dstat);
        else
            delta_decide_kernel<T><<<cu_blocks(n_test), CU_THREADS, 0, ctx->stream>>>(
                g, *pol, x, ref, list, n_test, a->threshold, !scatter || refresh,
                scatter && !refresh ? L->d_in_map : NULL, L->d_map, ctx->d_dstat);
        CU_TRY(cu_launched(a, e));
        CU_TRY(s.end(e));
    }
    /* The counters reach pinned memory by the next host wait. */
    CBINFER_CUDA_TRY(cudaMemcpyAsync(ctx->h_dstat, ctx->d_dstat,
                                     CU_DSTAT_COUNT * sizeof *ctx->h_dstat,
                                     cudaMemcpyDeviceToHost, ctx->stream),
                     e, where);
    const unsigned long long *st = ctx->h_dstat;

    if (refresh) {
        /* The reference has taken this frame's transmissions: a from it,
         * densely, with none of the rounding the updates gathered. */
        CBINFER_CUDA_TRY(cudaMemsetAsync(L->d_map, 0, (size_t)npx_out, ctx->stream), e, where);
        CU_TRY(cu_sync(ctx, where, e));
        a->stats->changed_in_px = (int64_t)st[CU_DSTAT_PIXELS];
        send_stats(a, st);
        return dense_from_reference(ctx, L, a, g, e);
    }

    int64_t n_in = 0, n = 0;
    if (scatter) {
        CU_TRY(extract(ctx, a, L->d_in_map, npx_in, L->d_in_idx, &n_in, e));
        a->stats->changed_in_px = n_in;
        if (n_in != (int64_t)st[CU_DSTAT_PIXELS])
            return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                            "node %s: %lld transmitting pixels extracted, %llu counted", where,
                            (long long)n_in, st[CU_DSTAT_PIXELS]);
        if (st[CU_DSTAT_NONFINITE]) {
            /* A non-finite delta would stay in the accumulator: the deltas
             * go into the reference, and a is recomputed from it. */
            delta_apply_kernel<T><<<cu_blocks(n_in * g.cin), CU_THREADS, 0, ctx->stream>>>(
                *pol, x, ref, L->d_in_idx, (int)n_in, g.cin, a->threshold, NULL);
            CU_TRY(cu_launched(a, e));
            CBINFER_CUDA_TRY(cudaMemsetAsync(L->d_map, 0, (size_t)npx_out, ctx->stream), e,
                             where);
            send_stats(a, st);
            return dense_from_reference(ctx, L, a, g, e);
        }
    }
    CU_TRY(extract(ctx, a, L->d_map, npx_out, L->d_idx, &n, e));
    if (!scatter) a->stats->changed_in_px = (int64_t)st[CU_DSTAT_PIXELS];

    if (skip) {
        if (st[CU_DSTAT_NONFINITE]) { /* a re-flush from the input */
            CU_TRY(skip_clear<T>(ctx, L, a, list, n_test, g.cin, e));
            CU_TRY(set_reference<T>(ctx, L, a, g, e));
            return dense_from_reference(ctx, L, a, g, e);
        }
        /* The norm gate on the reached outputs, b x b blocks, and the open
         * outputs' list. */
        const int b = pol->block > 1 ? pol->block : 1, nbx = (g.wo + b - 1) / b;
        {
            cu_step s(ctx, a, CBINFER_STEP_CHANGE_DETECT);
            CU_TRY(s.begin(e));
            if (n > 0)
                skip_norm_kernel<<<cu_blocks(n), CU_THREADS, 0, ctx->stream>>>(
                    g, L->d_s1, L->d_idx, n, pol->output_norm ? L->w_l1 : 1.f, a->threshold, b,
                    nbx, L->d_map, L->d_bmap);
            if (b > 1 && n > 0) {
                skip_blocks_kernel<<<cu_blocks(npx_out), CU_THREADS, 0, ctx->stream>>>(
                    g.ho, g.wo, b, nbx, L->d_bmap, L->d_map);
                CBINFER_CUDA_TRY(cudaMemsetAsync(L->d_bmap, 0, cbi_block_map_bytes(g.ho, g.wo, b),
                                                 ctx->stream),
                                 e, where);
            }
            CU_TRY(cu_launched(a, e));
            CU_TRY(s.end(e));
        }
        if (n > 0) CU_TRY(extract(ctx, a, L->d_map, npx_out, L->d_idx, &n, e));
        a->stats->transmitted_el = a->stats->changed_in_px * g.cin;
        cbi_count_overhead(a->stats, 0, a->stats->transmitted_el, 0);
    }

    /* Worst case: past the break-even share the dense path is cheaper; the
     * reference takes the input everywhere. */
    if (a->dense_fallback && (double)n > (double)a->break_even * (double)npx_out) {
        if (skip) CU_TRY(skip_clear<T>(ctx, L, a, list, n_test, g.cin, e));
        CU_TRY(set_reference<T>(ctx, L, a, g, e));
        return dense_from_reference(ctx, L, a, g, e);
    }

    if (skip) {
        CU_TRY(cu_conv_rows(ctx, a, L->d_dimg, L->d_idx, n, CU_ROWS_ADD_ACC, L->d_acc, e));
        CU_TRY(skip_clear<T>(ctx, L, a, list, n_test, g.cin, e));
        a->stats->macs = a->stats->macs_effective = n * g.k * g.cout;
        cbi_count_overhead(a->stats, 0, 0, n * g.cout);
    } else if (!scatter) {
        /* Closed memory: the reached outputs recomputed from the moved
         * reference are what the deltas would give (VARIANTS.md §4.4). */
        CU_TRY(cu_conv_rows(ctx, a, L->d_state, L->d_idx, n, CU_ROWS_OUTPUT, NULL, e));
        a->stats->macs = n * g.k * g.cout;
        send_stats(a, st);
    } else {
        CU_TRY(scatter_deltas<T>(ctx, L, a, g, n_in, n, e));
        send_stats(a, st);
    }
    a->out_chg->count = n;
    a->stats->changed_px = n;
    return CBINFER_STATUS_SUCCESS;
}

} // namespace

cbinfer_status cu_conv_delta(cu_ctx *ctx, cbi_op_args *a, cbi_err *e)
{
    return ctx->dt == CBI_CUDA_F16 ? conv_delta<__half>(ctx, a, e) : conv_delta<float>(ctx, a, e);
}

/* ---------------------------------------------------------- layer state ---- */

cbinfer_status cu_delta_setup(cu_ctx *ctx, int node_id, cu_layer *L, cbi_err *e)
{
    const cbi_node *n = &ctx->cfg.net->nodes[node_id];
    const cbi_node_plan *p = &ctx->cfg.plans[node_id];
    const char *where = n->name ? n->name : "?";
    L->policy = cbi_config_policy(&ctx->cfg, node_id);
    if (!cbi_policy_is_delta(&L->policy)) return CBINFER_STATUS_SUCCESS;
    const int cin = p->in.c, cout = p->out.c;
    const size_t in_px = (size_t)p->in.h * p->in.w, out_px = (size_t)p->out.h * p->out.w;
    const size_t taps = (size_t)n->win.kh * n->win.kw, nw = (size_t)cin * taps * cout;
    if (cbi_policy_keeps_accumulator(&L->policy, n, cin, ctx->elem_bytes))
        CU_TRY(cu_zeroed(ctx, out_px * cout * sizeof(float), (void **)&L->d_acc, where, e));
    if (cbi_policy_uses_scatter(&L->policy, cin)) {
        /* W2 = [cin][kh][kw][cout] from the network's [cout][kh][kw][cin]. */
        float *w2 = (float *)malloc(nw * sizeof *w2);
        if (!w2) return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "%s: delta weights", where);
        for (int o = 0; o < cout; ++o)
            for (size_t t = 0; t < taps; ++t)
                for (int c = 0; c < cin; ++c)
                    w2[((size_t)c * taps + t) * cout + o] = n->weight[((size_t)o * taps + t) * cin + c];
        const cbinfer_status st = cu_upload_weights(ctx, w2, nw, &L->d_w2, where, e);
        free(w2);
        CU_TRY(st);
        CU_TRY(cu_zeroed(ctx, in_px, (void **)&L->d_in_map, where, e));
        CU_TRY(cu_zeroed(ctx, in_px * sizeof(int32_t), (void **)&L->d_in_idx, where, e));
        CBINFER_CUDA_TRY(cudaMalloc((void **)&L->d_row_of, in_px * sizeof(int32_t)), e, where);
        CBINFER_CUDA_TRY(cudaMemsetAsync(L->d_row_of, 0xff, in_px * sizeof(int32_t), ctx->stream),
                         e, where); /* -1 everywhere */
        size_t tmp = 0;
        CU_TRY(cu_extract_scratch_bytes((int64_t)in_px, &tmp, where, e));
        CU_TRY(cu_grow(&ctx->d_sel_tmp, &ctx->sel_tmp_bytes, tmp, where, e));
    }
    if (L->policy.kind == CBI_POLICY_SKIPCONV) {
        CU_TRY(cu_zeroed(ctx, in_px * cin * ctx->elem_bytes, &L->d_dimg, where, e));
        CU_TRY(cu_zeroed(ctx, in_px * sizeof(float), (void **)&L->d_s1, where, e));
        CU_TRY(cu_zeroed(ctx, cbi_block_map_bytes(p->out.h, p->out.w, L->policy.block),
                         (void **)&L->d_bmap, where, e));
        L->w_l1 = cbi_conv_weight_l1(n, cin);
    }
    return CBINFER_STATUS_SUCCESS;
}

void cu_delta_teardown(cu_layer *L)
{
    cudaFree(L->d_w2);
    cudaFree(L->d_acc);
    cudaFree(L->d_in_map);
    cudaFree(L->d_in_idx);
    cudaFree(L->d_row_of);
    cudaFree(L->d_dimg);
    cudaFree(L->d_s1);
    cudaFree(L->d_bmap);
}

size_t cu_delta_extra_bytes(const cbi_backend_config *cfg, int node_id)
{
    const cbi_node *n = &cfg->net->nodes[node_id];
    if (n->op != CBI_OP_CONV || cfg->mode == CBINFER_MODE_DENSE) return 0;
    const cbi_policy pol = cbi_config_policy(cfg, node_id);
    const cbi_node_plan *p = &cfg->plans[node_id];
    if (!cbi_policy_uses_scatter(&pol, p->in.c)) return 0;
    const size_t elem = cu_elem_bytes(cfg->precision);
    const size_t in_px = (size_t)p->in.h * p->in.w;
    /* W2, the transmit map and the row map (the pixel list is in the
     * stream's count) */
    return (size_t)p->in.c * n->win.kh * n->win.kw * p->out.c * elem + in_px * 5;
}
