/*
 * DepthToSpace (CBI_K_DEPTH_TO_SPACE, DCR and CRD / PixelShuffle), the twin
 * of cpu_depth_to_space().
 */
#include "cuda_backend.cuh"

/*
 * depth_to_space_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per output value
 *   (ho x wo x c, NHWC order). Output (y*b + i, x*b + j, ch) reads input
 *   (y, x) channel (i*b + j)*c + ch (DCR: one contiguous run of c per output
 *   pixel) or ch*b*b + i*b + j (CRD). Shared memory: none.
 *   Alignment: element alignment only.
 */
template <typename T>
__global__ void depth_to_space_kernel(const T *__restrict__ x, int cin, int w,
                                      T *__restrict__ y, int c, int ho, int wo, int b, int crd)
{
    CU_GRID_STRIDE(i, (int64_t)ho * wo * c)
    {
        const int64_t p = i / c;
        const int ch = (int)(i - p * c);
        const int oy = (int)(p / wo), ox = (int)(p - (int64_t)oy * wo);
        const int iy = oy / b, ii = oy - iy * b, ix = ox / b, jj = ox - ix * b;
        const int src_ch = crd ? ch * b * b + ii * b + jj : (ii * b + jj) * c + ch;
        y[i] = x[((int64_t)iy * w + ix) * cin + src_ch];
    }
}

extern "C" cudaError_t launch_depth_to_space(cbi_cuda_dtype dt, const void *x, int cin, int w,
                                             void *y, int c, int ho, int wo, int block, int crd,
                                             cudaStream_t stream)
{
    const int64_t total = (int64_t)ho * wo * c;
    if (total <= 0) return cudaSuccess;
    if (dt == CBI_CUDA_F16)
        depth_to_space_kernel<__half><<<cu_blocks(total), CU_THREADS, 0, stream>>>(
            (const __half *)x, cin, w, (__half *)y, c, ho, wo, block, crd);
    else
        depth_to_space_kernel<float><<<cu_blocks(total), CU_THREADS, 0, stream>>>(
            (const float *)x, cin, w, (float *)y, c, ho, wo, block, crd);
    return cudaGetLastError();
}

cbinfer_status cu_depth_to_space(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cu_ctx *ctx = (cu_ctx *)bctx;
    CU_TRY(cu_check_args(a, 1, e));
    const int b = a->node->blocksize;
    const cbi_shape si = a->plan->in, so = a->plan->out;
    if (b < 1 || si.c != so.c * b * b || so.h != si.h * b || so.w != si.w * b)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                        "node %s (DepthToSpace): %dx%dx%d with block %d is not %dx%dx%d",
                        cu_name(a), si.c, si.h, si.w, b, so.c, so.h, so.w);
    cu_step st(ctx, a, CBINFER_STEP_DENSE);
    CU_TRY(st.begin(e));
    CBINFER_CUDA_TRY(launch_depth_to_space(ctx->dt, a->in[0]->data, si.c, si.w, a->out->data,
                                           so.c, so.h, so.w, b, a->node->d2s_crd, ctx->stream),
                     e, cu_name(a));
    CU_TRY(st.end(e));
    a->stats->changed_px = (int64_t)so.h * so.w;
    return CBINFER_STATUS_SUCCESS;
}
