/*
 * MaxPool / AveragePool, dense (CBI_K_POOL_DENSE) and change-based
 * (CBI_K_POOL_CHANGE, paper Sec. III-E case 2): the twins of cpu_pool_dense()
 * and cpu_pool_change(), with the same per-value arithmetic (max ignores the
 * padding; average sums the taps in window order and divides by the taps
 * inside the padded input with count_include_pad, else inside the input), so
 * fp32 results agree bit for bit.
 *
 * Change-based pooling runs no detection of its own: the producer's change
 * list marks the affected outputs in the layer's map (one thread per changed
 * input pixel), the map is condensed into an index list (extract.cu:
 * thrust::copy_if returns the count, its wait is the layer's only sync), and
 * each affected output is computed exactly once (ANCHORS point 7: CBinfer
 * recomputed it once per changed input).
 */
#include <math.h>

#include "cuda_backend.cuh"

/* One value (output pixel oy, ox, channel ch) of a pool: ops_pool_pixel(). */
template <typename T>
__device__ __forceinline__ float pool_value(const cbi_pool_geom &g, const T *__restrict__ x,
                                            int oy, int ox, int ch)
{
    const int y0 = oy * g.sh - g.pad_t, x0 = ox * g.sw - g.pad_l;
    int n_in = 0, n_pad = 0;
    float acc = g.is_max ? -INFINITY : 0.f;
    for (int ky = 0; ky < g.kh; ++ky) {
        const int iy = y0 + ky * g.dh;
        const bool row_in = iy >= 0 && iy < g.h;
        const bool row_pad = iy >= -g.pad_t && iy < g.h + g.pad_b;
        for (int kx = 0; kx < g.kw; ++kx) {
            const int ix = x0 + kx * g.dw;
            if (row_pad && ix >= -g.pad_l && ix < g.w + g.pad_r) n_pad++;
            if (!row_in || ix < 0 || ix >= g.w) continue;
            n_in++;
            const float v = cu_ld(x, ((int64_t)iy * g.w + ix) * g.c + ch);
            if (g.is_max)
                acc = v > acc ? v : acc;
            else
                acc += v;
        }
    }
    if (!g.is_max) {
        const int div = g.include_pad ? n_pad : n_in;
        if (div > 0) acc /= (float)div;
    }
    return acc;
}

/*
 * pool_dense_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per output value
 *   (ho x wo x c, NHWC order). Shared memory: none (windows overlap little for
 *   the usual 2x2/3x3 pools; the reads of a warp are coalesced along c).
 *   Layout: NHWC, channel = index modulo c. Alignment: element only.
 */
template <typename T>
__global__ void pool_dense_kernel(cbi_pool_geom g, const T *__restrict__ x,
                                  T *__restrict__ y)
{
    CU_GRID_STRIDE(i, (int64_t)g.ho * g.wo * g.c)
    {
        const int64_t p = i / g.c;
        const int ch = (int)(i - p * g.c);
        const int oy = (int)(p / g.wo), ox = (int)(p - (int64_t)oy * g.wo);
        cu_st(y, i, pool_value(g, x, oy, ox, ch));
    }
}

/*
 * pool_at_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per value of the n
 *   listed output pixels (n x c): output idx[r], channel i modulo c.
 *   Shared memory: none. Layout: NHWC. Alignment: element only.
 */
template <typename T>
__global__ void pool_at_kernel(cbi_pool_geom g, const T *__restrict__ x, T *__restrict__ y,
                               const int32_t *__restrict__ idx, int64_t n)
{
    CU_GRID_STRIDE(i, n * g.c)
    {
        const int64_t r = i / g.c;
        const int ch = (int)(i - r * g.c);
        const int px = idx[r];
        const int oy = px / g.wo, ox = px - oy * g.wo;
        cu_st(y, (int64_t)px * g.c + ch, pool_value(g, x, oy, ox, ch));
    }
}

/*
 * pool_mark_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per changed input
 *   pixel list[i] = (iy, ix): marks every output (oy, ox) whose window holds
 *   it, i.e. oy*sh - pad_t + ky*dh = iy for some ky < kh (likewise in x), by
 *   writing 1 into map[oy * wo + ox] (concurrent writers all store 1).
 *   Shared memory: none. Layout: pixel indices y * w + x of the NHWC input;
 *   one map byte per output pixel. Alignment: none required.
 */
__global__ void pool_mark_kernel(cbi_pool_geom g, const int32_t *__restrict__ list,
                                 int64_t n, uint8_t *__restrict__ map)
{
    CU_GRID_STRIDE(i, n)
    {
        const int px = list[i];
        const int iy = px / g.w, ix = px - iy * g.w;
        for (int ky = 0; ky < g.kh; ++ky) {
            const int ty = iy + g.pad_t - ky * g.dh;
            if (ty < 0 || ty % g.sh) continue;
            const int oy = ty / g.sh;
            if (oy >= g.ho) continue;
            for (int kx = 0; kx < g.kw; ++kx) {
                const int tx = ix + g.pad_l - kx * g.dw;
                if (tx < 0 || tx % g.sw) continue;
                const int ox = tx / g.sw;
                if (ox < g.wo) map[(int64_t)oy * g.wo + ox] = 1;
            }
        }
    }
}

extern "C" cudaError_t launch_pool_dense(cbi_cuda_dtype dt, const cbi_pool_geom *g,
                                         const void *x, void *y, cudaStream_t stream)
{
    const int64_t total = (int64_t)g->ho * g->wo * g->c;
    if (total <= 0) return cudaSuccess;
    if (dt == CBI_CUDA_F16)
        pool_dense_kernel<__half><<<cu_blocks(total), CU_THREADS, 0, stream>>>(
            *g, (const __half *)x, (__half *)y);
    else
        pool_dense_kernel<float><<<cu_blocks(total), CU_THREADS, 0, stream>>>(
            *g, (const float *)x, (float *)y);
    return cudaGetLastError();
}

extern "C" cudaError_t launch_pool_mark(const cbi_pool_geom *g, const int32_t *list,
                                        int64_t n, uint8_t *map, cudaStream_t stream)
{
    if (n <= 0) return cudaSuccess;
    pool_mark_kernel<<<cu_blocks(n), CU_THREADS, 0, stream>>>(*g, list, n, map);
    return cudaGetLastError();
}

extern "C" cudaError_t launch_pool_at(cbi_cuda_dtype dt, const cbi_pool_geom *g,
                                      const void *x, void *y, const int32_t *idx, int64_t n,
                                      cudaStream_t stream)
{
    if (n <= 0 || g->c <= 0) return cudaSuccess;
    const unsigned blocks = cu_blocks(n * g->c);
    if (dt == CBI_CUDA_F16)
        pool_at_kernel<__half><<<blocks, CU_THREADS, 0, stream>>>(*g, (const __half *)x,
                                                                  (__half *)y, idx, n);
    else
        pool_at_kernel<float><<<blocks, CU_THREADS, 0, stream>>>(*g, (const float *)x,
                                                                 (float *)y, idx, n);
    return cudaGetLastError();
}

/* ------------------------------------------------------------ entries ---- */

/* The op's checks and its geometry (cbi_pool_geom_of, shared with the CPU). */
static cbinfer_status pool_geom(const cbi_op_args *a, cbi_pool_geom *g, cbi_err *e)
{
    CU_TRY(cu_check_args(a, 1, e));
    return cbi_pool_geom_of(a->node, a->plan, g, e);
}

static cbinfer_status pool_all(cu_ctx *ctx, cbi_op_args *a, const cbi_pool_geom *g,
                               cbi_err *e)
{
    cu_step s(ctx, a, CBINFER_STEP_POOL);
    CU_TRY(s.begin(e));
    CBINFER_CUDA_TRY(launch_pool_dense(ctx->dt, g, a->in[0]->data, a->out->data, ctx->stream), e,
                     cu_name(a));
    CU_TRY(s.end(e));
    a->stats->changed_in_px = (int64_t)g->h * g->w;
    a->stats->changed_px = (int64_t)g->ho * g->wo;
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cu_pool_dense(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cbi_pool_geom g;
    CU_TRY(pool_geom(a, &g, e));
    return pool_all((cu_ctx *)bctx, a, &g, e);
}

cbinfer_status cu_pool_change(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cu_ctx *ctx = (cu_ctx *)bctx;
    cbi_pool_geom g;
    CU_TRY(pool_geom(a, &g, e));
    cu_layer *L = (cu_layer *)a->layer;
    const cbi_changes *chg = a->in_chg[0];
    const char *where = cu_name(a);
    if (!L || !L->d_map || !L->d_idx || !a->out_chg)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (%s): no change-based pool state",
                        where, a->node->op_type);
    const int64_t out_px = (int64_t)g.ho * g.wo;

    if (a->first || !chg || chg->all) {
        if (a->first)
            CBINFER_CUDA_TRY(cudaMemsetAsync(L->d_map, 0, (size_t)out_px, ctx->stream), e, where);
        CU_TRY(pool_all(ctx, a, &g, e));
        a->out_chg->all = 1;
        a->out_chg->idx = L->d_idx;
        a->out_chg->count = out_px;
        return CBINFER_STATUS_SUCCESS;
    }
    if (chg->count > 0 && !chg->idx)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (%s): change list without indices",
                        where, a->node->op_type);

    int64_t n_out = 0;
    if (chg->count > 0) {
        cu_step s(ctx, a, CBINFER_STEP_POOL);
        CU_TRY(s.begin(e));
        CBINFER_CUDA_TRY(launch_pool_mark(&g, chg->idx, chg->count, L->d_map, ctx->stream), e,
                         where);
        CU_TRY(cu_extract_indices(ctx, L->d_map, out_px, L->d_idx, &n_out, where, e));
        if (n_out < 0 || n_out > out_px)
            return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s: read back %lld of %lld outputs",
                            where, (long long)n_out, (long long)out_px);
        CBINFER_CUDA_TRY(launch_clear_map(L->d_map, L->d_idx, n_out, ctx->stream), e, where);
        CBINFER_CUDA_TRY(launch_pool_at(ctx->dt, &g, a->in[0]->data, a->out->data, L->d_idx,
                                        n_out, ctx->stream),
                         e, where);
        CU_TRY(s.end(e));
    }
    a->out_chg->all = 0;
    a->out_chg->idx = L->d_idx;
    a->out_chg->count = n_out;
    a->stats->changed_in_px = chg->count;
    a->stats->changed_px = n_out;
    return CBINFER_STATUS_SUCCESS;
}
