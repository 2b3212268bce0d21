/*
 * Concat along channels (CBI_K_CONCAT), the twin of cpu_concat(): per pixel,
 * each input's channel run in order. One launch per input.
 */
#include "cuda_backend.cuh"

/*
 * concat_slice_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per value of one
 *   input (n_px x cx): y[p][off + ch] = x[p][ch].
 *   Shared memory: none. Layout: NHWC, so an input's channels land in one
 *   contiguous run of each output pixel. Alignment: element alignment only.
 */
template <typename T>
__global__ void concat_slice_kernel(const T *__restrict__ x, int cx, T *__restrict__ y, int cy,
                                    int off, int64_t n_px)
{
    CU_GRID_STRIDE(i, n_px * cx)
    {
        const int64_t p = i / cx;
        const int ch = (int)(i - p * cx);
        y[p * cy + off + ch] = x[i];
    }
}

extern "C" cudaError_t launch_concat_slice(cbi_cuda_dtype dt, const void *x, int cx, void *y,
                                           int cy, int off, int64_t n_px, cudaStream_t stream)
{
    if (n_px <= 0 || cx <= 0) return cudaSuccess;
    const unsigned blocks = cu_blocks(n_px * cx);
    if (dt == CBI_CUDA_F16)
        concat_slice_kernel<__half><<<blocks, CU_THREADS, 0, stream>>>(
            (const __half *)x, cx, (__half *)y, cy, off, n_px);
    else
        concat_slice_kernel<float><<<blocks, CU_THREADS, 0, stream>>>((const float *)x, cx,
                                                                      (float *)y, cy, off, n_px);
    return cudaGetLastError();
}

cbinfer_status cu_concat(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cu_ctx *ctx = (cu_ctx *)bctx;
    CU_TRY(cu_check_args(a, 1, e));
    const cbi_shape s = a->plan->out;
    int c_sum = 0;
    for (int i = 0; i < a->n_in; ++i) {
        const cbi_shape si = a->in[i]->shape;
        if (si.h != s.h || si.w != s.w)
            return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                            "node %s (Concat): input %d is %dx%d, output %dx%d", cu_name(a), i,
                            si.h, si.w, s.h, s.w);
        c_sum += si.c;
    }
    if (c_sum != s.c)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                        "node %s (Concat): input channels sum to %d, output has %d", cu_name(a),
                        c_sum, s.c);
    const int64_t px = (int64_t)s.h * s.w;
    cu_step st(ctx, a, CBINFER_STEP_DENSE);
    CU_TRY(st.begin(e));
    int off = 0;
    for (int i = 0; i < a->n_in; ++i) {
        CBINFER_CUDA_TRY(launch_concat_slice(ctx->dt, a->in[i]->data, a->in[i]->shape.c,
                                             a->out->data, s.c, off, px, ctx->stream),
                         e, cu_name(a));
        off += a->in[i]->shape.c;
    }
    CU_TRY(st.end(e));
    a->stats->changed_px = px;
    return CBINFER_STATUS_SUCCESS;
}
