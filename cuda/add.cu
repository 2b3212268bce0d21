/*
 * Add (CBI_K_ADD): elementwise sum of two equally shaped tensors (residual
 * connections), the twin of cpu_add(); the sum is formed in float.
 */
#include "cuda_backend.cuh"

/*
 * add_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per value (the
 *   layout is irrelevant: both inputs share it). Shared memory: none.
 *   Alignment: element alignment only.
 */
template <typename T>
__global__ void add_kernel(const T *x0, const T *x1, T *y, int64_t n)
{
    CU_GRID_STRIDE(i, n) cu_st(y, i, cu_ld(x0, i) + cu_ld(x1, i));
}

extern "C" cudaError_t launch_add(cbi_cuda_dtype dt, const void *x0, const void *x1, void *y,
                                  int64_t n, cudaStream_t stream)
{
    if (n <= 0) return cudaSuccess;
    if (dt == CBI_CUDA_F16)
        add_kernel<__half><<<cu_blocks(n), CU_THREADS, 0, stream>>>(
            (const __half *)x0, (const __half *)x1, (__half *)y, n);
    else
        add_kernel<float><<<cu_blocks(n), CU_THREADS, 0, stream>>>(
            (const float *)x0, (const float *)x1, (float *)y, n);
    return cudaGetLastError();
}

static int same_shape(cbi_shape a, cbi_shape b)
{
    return a.c == b.c && a.h == b.h && a.w == b.w;
}

cbinfer_status cu_add(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cu_ctx *ctx = (cu_ctx *)bctx;
    CU_TRY(cu_check_args(a, 2, e));
    const cbi_shape s = a->plan->out;
    if (!same_shape(a->in[0]->shape, s) || !same_shape(a->in[1]->shape, s))
        return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                        "node %s (Add): shapes %dx%dx%d + %dx%dx%d -> %dx%dx%d differ", cu_name(a),
                        a->in[0]->shape.c, a->in[0]->shape.h, a->in[0]->shape.w,
                        a->in[1]->shape.c, a->in[1]->shape.h, a->in[1]->shape.w, s.c, s.h, s.w);
    cu_step st(ctx, a, CBINFER_STEP_DENSE);
    CU_TRY(st.begin(e));
    CBINFER_CUDA_TRY(launch_add(ctx->dt, a->in[0]->data, a->in[1]->data, a->out->data,
                                (int64_t)s.c * s.h * s.w, ctx->stream),
                     e, cu_name(a));
    CU_TRY(st.end(e));
    a->stats->changed_px = (int64_t)s.h * s.w;
    return CBINFER_STATUS_SUCCESS;
}
