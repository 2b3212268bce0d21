/*
 * Nearest-neighbour Resize (CBI_K_RESIZE), the twin of cpu_resize().
 *
 * The source row of every output row and the source column of every output
 * column depend only on the geometry, so layer_create computes them once on
 * the host with cbi_resize_src(), the function the CPU backend uses, and the
 * kernel only copies: the results agree exactly.
 */
#include <stdlib.h>

#include "cuda_backend.cuh"

static cbinfer_status resize_check(const cbi_node *n, cbi_shape si, cbi_shape so, cbi_err *e)
{
    if (si.c != so.c || si.h < 1 || si.w < 1 || so.h < 1 || so.w < 1)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                        "node %s (Resize): bad geometry %dx%dx%d -> %dx%dx%d", n->name, si.c,
                        si.h, si.w, so.c, so.h, so.w);
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cu_resize_setup(cu_ctx *ctx, int node_id, cu_layer *L, cbi_err *e)
{
    const cbi_node *n = &ctx->cfg.net->nodes[node_id];
    const cbi_node_plan *p = &ctx->cfg.plans[node_id];
    const cbi_shape si = p->in, so = p->out;
    CU_TRY(resize_check(n, si, so, e));
    int32_t *tab = (int32_t *)malloc(((size_t)so.h + so.w) * sizeof(int32_t));
    if (!tab) return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "node %s: resize tables", n->name);
    for (int oy = 0; oy < so.h; ++oy)
        tab[oy] = cbi_resize_src(n, p, 0, oy);
    for (int ox = 0; ox < so.w; ++ox)
        tab[so.h + ox] = cbi_resize_src(n, p, 1, ox);
    cudaError_t rc = cudaMalloc((void **)&L->d_src_y, (size_t)so.h * sizeof(int32_t));
    if (rc == cudaSuccess) rc = cudaMalloc((void **)&L->d_src_x, (size_t)so.w * sizeof(int32_t));
    if (rc == cudaSuccess)
        rc = cudaMemcpyAsync(L->d_src_y, tab, (size_t)so.h * sizeof(int32_t),
                             cudaMemcpyHostToDevice, ctx->stream);
    if (rc == cudaSuccess)
        rc = cudaMemcpyAsync(L->d_src_x, tab + so.h, (size_t)so.w * sizeof(int32_t),
                             cudaMemcpyHostToDevice, ctx->stream);
    if (rc == cudaSuccess) rc = cudaStreamSynchronize(ctx->stream); /* before freeing tab */
    free(tab);
    if (rc != cudaSuccess) return cu_fail_cuda(e, rc, "resize tables", n->name);
    ctx->host_syncs++;
    return CBINFER_STATUS_SUCCESS;
}

/*
 * resize_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per output value
 *   (ho x wo x c, NHWC order): y[oy][ox][ch] = x[src_y[oy]][src_x[ox]][ch].
 *   Shared memory: none. Layout: NHWC (a warp copies contiguous channel runs).
 *   Alignment: element alignment only.
 */
template <typename T>
__global__ void resize_kernel(const T *__restrict__ x, int c, int w, T *__restrict__ y, int ho,
                              int wo, const int32_t *__restrict__ src_y,
                              const int32_t *__restrict__ src_x)
{
    CU_GRID_STRIDE(i, (int64_t)ho * wo * c)
    {
        const int64_t p = i / c;
        const int ch = (int)(i - p * c);
        const int oy = (int)(p / wo), ox = (int)(p - (int64_t)oy * wo);
        y[i] = x[((int64_t)src_y[oy] * w + src_x[ox]) * c + ch];
    }
}

extern "C" cudaError_t launch_resize(cbi_cuda_dtype dt, const void *x, int c, int w, void *y,
                                     int ho, int wo, const int32_t *src_y, const int32_t *src_x,
                                     cudaStream_t stream)
{
    const int64_t total = (int64_t)ho * wo * c;
    if (total <= 0) return cudaSuccess;
    if (dt == CBI_CUDA_F16)
        resize_kernel<__half><<<cu_blocks(total), CU_THREADS, 0, stream>>>(
            (const __half *)x, c, w, (__half *)y, ho, wo, src_y, src_x);
    else
        resize_kernel<float><<<cu_blocks(total), CU_THREADS, 0, stream>>>(
            (const float *)x, c, w, (float *)y, ho, wo, src_y, src_x);
    return cudaGetLastError();
}

cbinfer_status cu_resize(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cu_ctx *ctx = (cu_ctx *)bctx;
    CU_TRY(cu_check_args(a, 1, e));
    const cu_layer *L = (const cu_layer *)a->layer;
    const cbi_shape si = a->plan->in, so = a->plan->out;
    CU_TRY(resize_check(a->node, si, so, e));
    if (!L || !L->d_src_y || !L->d_src_x)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (Resize): no source tables",
                        cu_name(a));
    cu_step st(ctx, a, CBINFER_STEP_DENSE);
    CU_TRY(st.begin(e));
    CBINFER_CUDA_TRY(launch_resize(ctx->dt, a->in[0]->data, si.c, si.w, a->out->data, so.h, so.w,
                                   L->d_src_y, L->d_src_x, ctx->stream),
                     e, cu_name(a));
    CU_TRY(st.end(e));
    a->stats->changed_px = (int64_t)so.h * so.w;
    return CBINFER_STATUS_SUCCESS;
}
