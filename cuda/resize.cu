/*
 * Resize (CBI_K_RESIZE), nearest and linear, the twin of cpu_resize().
 *
 * The source row of every output row and the source column of every output
 * column depend only on the geometry, so layer_create computes them once on
 * the host with cbi_resize_src() (nearest) or cbi_resize_linear_tap()
 * (linear), the functions the CPU backend uses: nearest only copies and
 * agrees exactly; linear blends as the CPU does, in fp32.
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

/* Copies a host table of rows + cols entries of `size` bytes (the rows'
 * entries first) into two new device arrays; waits for the copy, so that the
 * caller may free the table (one host sync, at creation time). */
static cbinfer_status upload_tables(cu_ctx *ctx, const void *tab, size_t size, int rows, int cols,
                                    void **d_rows, void **d_cols, const char *node, cbi_err *e)
{
    cudaError_t rc = cudaMalloc(d_rows, (size_t)rows * size);
    if (rc == cudaSuccess) rc = cudaMalloc(d_cols, (size_t)cols * size);
    if (rc == cudaSuccess)
        rc = cudaMemcpyAsync(*d_rows, tab, (size_t)rows * size, cudaMemcpyHostToDevice,
                             ctx->stream);
    if (rc == cudaSuccess)
        rc = cudaMemcpyAsync(*d_cols, (const char *)tab + (size_t)rows * size,
                             (size_t)cols * size, cudaMemcpyHostToDevice, ctx->stream);
    if (rc == cudaSuccess) rc = cudaStreamSynchronize(ctx->stream);
    if (rc != cudaSuccess) return cu_fail_cuda(e, rc, "resize tables", node);
    ctx->host_syncs++;
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cu_resize_setup(cu_ctx *ctx, int node_id, cu_layer *L, cbi_err *e)
{
    const cbi_node *n = &ctx->cfg.net->nodes[node_id];
    const cbi_node_plan *p = &ctx->cfg.plans[node_id];
    const cbi_shape si = p->in, so = p->out;
    CU_TRY(resize_check(n, si, so, e));
    const size_t size = n->linear ? sizeof(cbi_resize_tap) : sizeof(int32_t);
    void *tab = malloc(((size_t)so.h + so.w) * size);
    if (!tab) return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "node %s: resize tables", n->name);
    cbinfer_status st;
    if (n->linear) {
        cbi_resize_tap *t = (cbi_resize_tap *)tab;
        for (int oy = 0; oy < so.h; ++oy) t[oy] = cbi_resize_linear_tap(n, p, 0, oy);
        for (int ox = 0; ox < so.w; ++ox) t[so.h + ox] = cbi_resize_linear_tap(n, p, 1, ox);
        st = upload_tables(ctx, tab, size, so.h, so.w, (void **)&L->d_tap_y, (void **)&L->d_tap_x,
                           n->name, e);
    } else {
        int32_t *t = (int32_t *)tab;
        for (int oy = 0; oy < so.h; ++oy) t[oy] = cbi_resize_src(n, p, 0, oy);
        for (int ox = 0; ox < so.w; ++ox) t[so.h + ox] = cbi_resize_src(n, p, 1, ox);
        st = upload_tables(ctx, tab, size, so.h, so.w, (void **)&L->d_src_y, (void **)&L->d_src_x,
                           n->name, e);
    }
    free(tab);
    return st;
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

/*
 * resize_linear_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per output value
 *   (ho x wo x c, NHWC order): the blend of the four values at the row and
 *   column taps, along x first, then y, in fp32 (cpu_resize's order).
 *   Shared memory: none. Layout: NHWC. Alignment: element alignment only.
 */
template <typename T>
__global__ void resize_linear_kernel(const T *__restrict__ x, int c, int w, T *__restrict__ y,
                                     int ho, int wo, const cbi_resize_tap *__restrict__ tap_y,
                                     const cbi_resize_tap *__restrict__ tap_x)
{
    CU_GRID_STRIDE(i, (int64_t)ho * wo * c)
    {
        const int64_t p = i / c;
        const int ch = (int)(i - p * c);
        const int oy = (int)(p / wo), ox = (int)(p - (int64_t)oy * wo);
        const cbi_resize_tap ty = tap_y[oy], tx = tap_x[ox];
        const int64_t r0 = (int64_t)ty.i0 * w, r1 = (int64_t)ty.i1 * w;
        const float a0 = cu_ld(x, (r0 + tx.i0) * c + ch), a1 = cu_ld(x, (r0 + tx.i1) * c + ch);
        const float b0 = cu_ld(x, (r1 + tx.i0) * c + ch), b1 = cu_ld(x, (r1 + tx.i1) * c + ch);
        const float top = a0 + tx.f * (a1 - a0), bot = b0 + tx.f * (b1 - b0);
        cu_st(y, i, top + ty.f * (bot - top));
    }
}

extern "C" cudaError_t launch_resize_linear(cbi_cuda_dtype dt, const void *x, int c, int w, void *y,
                                            int ho, int wo, const cbi_resize_tap *tap_y,
                                            const cbi_resize_tap *tap_x, cudaStream_t stream)
{
    const int64_t total = (int64_t)ho * wo * c;
    if (total <= 0) return cudaSuccess;
    if (dt == CBI_CUDA_F16)
        resize_linear_kernel<__half><<<cu_blocks(total), CU_THREADS, 0, stream>>>(
            (const __half *)x, c, w, (__half *)y, ho, wo, tap_y, tap_x);
    else
        resize_linear_kernel<float><<<cu_blocks(total), CU_THREADS, 0, stream>>>(
            (const float *)x, c, w, (float *)y, ho, wo, tap_y, tap_x);
    return cudaGetLastError();
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
    const int linear = a->node->linear;
    if (!L || (linear ? !L->d_tap_y || !L->d_tap_x : !L->d_src_y || !L->d_src_x))
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (Resize): no source tables",
                        cu_name(a));
    cu_step st(ctx, a, CBINFER_STEP_DENSE);
    CU_TRY(st.begin(e));
    const cudaError_t rc =
        linear ? launch_resize_linear(ctx->dt, a->in[0]->data, si.c, si.w, a->out->data, so.h,
                                      so.w, L->d_tap_y, L->d_tap_x, ctx->stream)
               : launch_resize(ctx->dt, a->in[0]->data, si.c, si.w, a->out->data, so.h, so.w,
                               L->d_src_y, L->d_src_x, ctx->stream);
    CBINFER_CUDA_TRY(rc, e, cu_name(a));
    CU_TRY(st.end(e));
    a->stats->changed_px = (int64_t)so.h * so.w;
    return CBINFER_STATUS_SUCCESS;
}
