/*
 * Spatial Pad (CBI_K_PAD: constant, edge, reflect; negative pads crop), the
 * twin of cpu_pad(). Channels are never padded. Source coordinates come from
 * cbi_pad_src() (host/net.h), the function the CPU backend uses.
 */
#include "cuda_backend.cuh"

/*
 * pad_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per output value
 *   (ho x wo x c, NHWC order): copies input (cbi_pad_src(oy), cbi_pad_src(ox), ch) or
 *   writes the constant. Shared memory: none. Layout: NHWC (a warp copies
 *   contiguous channel runs). Alignment: element alignment only.
 */
template <typename T>
__global__ void pad_kernel(const T *__restrict__ x, int c, int h, int w, T *__restrict__ y, int ho,
                           int wo, int pad_t, int pad_l, int mode, float value)
{
    CU_GRID_STRIDE(i, (int64_t)ho * wo * c)
    {
        const int64_t p = i / c;
        const int ch = (int)(i - p * c);
        const int oy = (int)(p / wo), ox = (int)(p - (int64_t)oy * wo);
        const int iy = cbi_pad_src(oy, pad_t, h, mode), ix = cbi_pad_src(ox, pad_l, w, mode);
        if (iy < 0 || ix < 0)
            cu_st(y, i, value);
        else
            y[i] = x[((int64_t)iy * w + ix) * c + ch];
    }
}

extern "C" cudaError_t launch_pad(cbi_cuda_dtype dt, const void *x, int c, int h, int w, void *y,
                                  int ho, int wo, int pad_t, int pad_l, int mode, float value,
                                  cudaStream_t stream)
{
    const int64_t total = (int64_t)ho * wo * c;
    if (total <= 0) return cudaSuccess;
    if (dt == CBI_CUDA_F16)
        pad_kernel<__half><<<cu_blocks(total), CU_THREADS, 0, stream>>>(
            (const __half *)x, c, h, w, (__half *)y, ho, wo, pad_t, pad_l, mode, value);
    else
        pad_kernel<float><<<cu_blocks(total), CU_THREADS, 0, stream>>>(
            (const float *)x, c, h, w, (float *)y, ho, wo, pad_t, pad_l, mode, value);
    return cudaGetLastError();
}

cbinfer_status cu_pad(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cu_ctx *ctx = (cu_ctx *)bctx;
    CU_TRY(cu_check_args(a, 1, e));
    const cbi_node *n = a->node;
    const cbi_shape si = a->plan->in, so = a->plan->out;
    if (si.c != so.c || so.h != si.h + n->pad_t + n->pad_b || so.w != si.w + n->pad_l + n->pad_r)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                        "node %s (Pad): %dx%dx%d padded by %d,%d,%d,%d is not %dx%dx%d",
                        cu_name(a), si.c, si.h, si.w, n->pad_t, n->pad_l, n->pad_b, n->pad_r,
                        so.c, so.h, so.w);
    if (n->pad_mode != CBI_PAD_CONSTANT && (si.h < 1 || si.w < 1))
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (Pad): empty input", cu_name(a));
    cu_step st(ctx, a, CBINFER_STEP_DENSE);
    CU_TRY(st.begin(e));
    CBINFER_CUDA_TRY(launch_pad(ctx->dt, a->in[0]->data, si.c, si.h, si.w, a->out->data, so.h,
                                so.w, n->pad_t, n->pad_l, (int)n->pad_mode, n->pad_value,
                                ctx->stream),
                     e, cu_name(a));
    CU_TRY(st.end(e));
    a->stats->changed_px = (int64_t)so.h * so.w;
    return CBINFER_STATUS_SUCCESS;
}
