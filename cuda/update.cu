/*
 * Output update (paper Sec. III-A d): bias and activation fused into the
 * scatter of the GEMM rows into the stored output, and the same bias +
 * activation in place after a cuDNN convolution that could not fuse them.
 * Same arithmetic as host/cpu/cpu_conv.c: act(y + bias) in float, one
 * rounding to the storage type at the store.
 */
#include "cuda_backend.cuh"

/*
 * update_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per value of the
 *   m x cout GEMM result: out[idx[r]][o] = act(y[r][o] + bias[o]) (pixel
 *   base + r when idx is NULL).
 *   Shared memory: none.
 *   Layout: NHWC output, row-major float y: a GEMM row is one pixel's cout
 *   contiguous channels, so reads and writes are coalesced per row.
 *   Alignment: element alignment only.
 */
template <typename T>
__global__ void update_kernel(const float *__restrict__ y, const float *__restrict__ bias,
                              cbi_cuda_act act, const int32_t *__restrict__ idx, int64_t base,
                              int m, int cout, T *__restrict__ out)
{
    CU_GRID_STRIDE(i, (int64_t)m * cout)
    {
        const int64_t r = i / cout;
        const int o = (int)(i - r * cout);
        const int64_t px = idx ? (int64_t)idx[r] : base + r;
        cu_st(out, px * cout + o, cu_activate(act, o, y[i] + bias[o]));
    }
}

extern "C" cudaError_t launch_update(cbi_cuda_dtype dt, const float *y, const float *bias,
                                     const cbi_cuda_act *act, const int32_t *idx, int64_t base,
                                     int m, int cout, void *out, cudaStream_t stream)
{
    if (m <= 0 || cout <= 0) return cudaSuccess;
    const unsigned blocks = cu_blocks((int64_t)m * cout);
    if (dt == CBI_CUDA_F16)
        update_kernel<__half><<<blocks, CU_THREADS, 0, stream>>>(y, bias, *act, idx, base, m, cout,
                                                                 (__half *)out);
    else
        update_kernel<float><<<blocks, CU_THREADS, 0, stream>>>(y, bias, *act, idx, base, m, cout,
                                                                (float *)out);
    return cudaGetLastError();
}

/*
 * acc_update_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per value of the
 *   m x cout GEMM result, as update_kernel: the pre-activation a of output
 *   value (p, o) is y + bias (a dense frame) or the accumulator + y (an
 *   update); the accumulator takes a and the output act(a). Without an
 *   accumulator tensor the output holds act(a) and a is act^-1 of it (float
 *   storage only, so T is float). Rows name distinct pixels: no two threads
 *   write one value. Shared memory: none. Alignment: element alignment only.
 */
template <typename T>
__global__ void acc_update_kernel(const float *__restrict__ y, const float *__restrict__ bias,
                                  cbi_cuda_act act, const int32_t *__restrict__ idx, int64_t base,
                                  int m, int cout, float *__restrict__ acc, T *__restrict__ out)
{
    CU_GRID_STRIDE(i, (int64_t)m * cout)
    {
        const int64_t r = i / cout;
        const int o = (int)(i - r * cout);
        const int64_t off = (idx ? (int64_t)idx[r] : base + r) * cout + o;
        float a;
        if (bias) a = y[i] + bias[o];
        else a = (acc ? acc[off] : cu_act_inverse(act, o, cu_ld(out, off))) + y[i];
        if (acc) acc[off] = a;
        cu_st(out, off, cu_activate(act, o, a));
    }
}

extern "C" cudaError_t launch_acc_update(cbi_cuda_dtype dt, const float *y, const float *bias,
                                         const cbi_cuda_act *act, const int32_t *idx,
                                         int64_t base, int m, int cout, float *acc, void *out,
                                         cudaStream_t stream)
{
    if (m <= 0 || cout <= 0) return cudaSuccess;
    const unsigned blocks = cu_blocks((int64_t)m * cout);
    if (dt == CBI_CUDA_F16) {
        if (!acc) return cudaErrorInvalidValue; /* f^-1 of a half output: not supported */
        acc_update_kernel<__half><<<blocks, CU_THREADS, 0, stream>>>(y, bias, *act, idx, base, m,
                                                                     cout, acc, (__half *)out);
    } else {
        acc_update_kernel<float><<<blocks, CU_THREADS, 0, stream>>>(y, bias, *act, idx, base, m,
                                                                    cout, acc, (float *)out);
    }
    return cudaGetLastError();
}

/*
 * bias_act_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per value of the
 *   n_px x cout NHWC output, in place: out = act(out + bias[channel]), the
 *   channel being the index modulo cout. Shared memory: none.
 *   Alignment: element alignment only.
 */
template <typename T>
__global__ void bias_act_kernel(T *__restrict__ out, const float *__restrict__ bias,
                                cbi_cuda_act act, int64_t n_px, int cout)
{
    CU_GRID_STRIDE(i, n_px * cout)
    {
        const int o = (int)(i % cout);
        cu_st(out, i, cu_activate(act, o, cu_ld(out, i) + bias[o]));
    }
}

extern "C" cudaError_t launch_bias_act(cbi_cuda_dtype dt, void *out, const float *bias,
                                       const cbi_cuda_act *act, int64_t n_px, int cout,
                                       cudaStream_t stream)
{
    if (n_px <= 0 || cout <= 0) return cudaSuccess;
    const unsigned blocks = cu_blocks(n_px * cout);
    if (dt == CBI_CUDA_F16)
        bias_act_kernel<__half><<<blocks, CU_THREADS, 0, stream>>>((__half *)out, bias, *act,
                                                                   n_px, cout);
    else
        bias_act_kernel<float><<<blocks, CU_THREADS, 0, stream>>>((float *)out, bias, *act, n_px,
                                                                  cout);
    return cudaGetLastError();
}
