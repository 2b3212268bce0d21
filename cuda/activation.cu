/*
 * Standalone activation (Relu, LeakyRelu, PRelu, Clip): CBI_K_ACTIVATION,
 * the twin of cpu_activation().
 */
#include "cuda_backend.cuh"

/*
 * activation_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per value of the
 *   n_px x c NHWC tensor: y = act(x), channel = index modulo c (PReLU slope).
 *   May run in place (x == y), so no __restrict__. Shared memory: none.
 *   Alignment: element alignment only.
 */
template <typename T>
__global__ void activation_kernel(const T *x, T *y, cbi_cuda_act act, int64_t n_px, int c)
{
    CU_GRID_STRIDE(i, n_px * c) cu_st(y, i, cu_activate(act, (int)(i % c), cu_ld(x, i)));
}

extern "C" cudaError_t launch_activation(cbi_cuda_dtype dt, const void *x, void *y,
                                         const cbi_cuda_act *act, int64_t n_px, int c,
                                         cudaStream_t stream)
{
    if (n_px <= 0 || c <= 0) return cudaSuccess;
    const unsigned blocks = cu_blocks(n_px * c);
    if (dt == CBI_CUDA_F16)
        activation_kernel<__half><<<blocks, CU_THREADS, 0, stream>>>((const __half *)x,
                                                                     (__half *)y, *act, n_px, c);
    else
        activation_kernel<float><<<blocks, CU_THREADS, 0, stream>>>((const float *)x, (float *)y,
                                                                    *act, n_px, c);
    return cudaGetLastError();
}

cbinfer_status cu_activation_op(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cu_ctx *ctx = (cu_ctx *)bctx;
    CU_TRY(cu_check_args(a, 1, e));
    const cbi_shape s = a->plan->out, si = a->in[0]->shape;
    if (s.c != si.c || s.h != si.h || s.w != si.w)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (%s): input/output shapes differ",
                        cu_name(a), a->node->op_type);
    cbi_cuda_act act;
    CU_TRY(cu_act_of(a, &act, e));
    const int64_t px = (int64_t)s.h * s.w;
    cu_step st(ctx, a, CBINFER_STEP_DENSE);
    CU_TRY(st.begin(e));
    CBINFER_CUDA_TRY(launch_activation(ctx->dt, a->in[0]->data, a->out->data, &act, px, s.c,
                                       ctx->stream),
                     e, cu_name(a));
    CU_TRY(st.end(e));
    a->stats->changed_px = px;
    return CBINFER_STATUS_SUCCESS;
}
