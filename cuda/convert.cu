/*
 * float <-> half conversion of whole tensors (upload and download of an FP16
 * context: the host side is always float32).
 */
#include "cuda_backend.cuh"

/*
 * f32_to_f16_kernel / f16_to_f32_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per value (the
 *   layout is irrelevant: element by element). Round to nearest even.
 *   Shared memory: none. Alignment: element alignment only.
 */
__global__ void f32_to_f16_kernel(const float *__restrict__ src, __half *__restrict__ dst,
                                  int64_t n)
{
    CU_GRID_STRIDE(i, n) dst[i] = __float2half_rn(src[i]);
}

__global__ void f16_to_f32_kernel(const __half *__restrict__ src, float *__restrict__ dst,
                                  int64_t n)
{
    CU_GRID_STRIDE(i, n) dst[i] = __half2float(src[i]);
}

extern "C" cudaError_t launch_f32_to_f16(const float *src, void *dst, int64_t n,
                                         cudaStream_t stream)
{
    if (n <= 0) return cudaSuccess;
    f32_to_f16_kernel<<<cu_blocks(n), CU_THREADS, 0, stream>>>(src, (__half *)dst, n);
    return cudaGetLastError();
}

extern "C" cudaError_t launch_f16_to_f32(const void *src, float *dst, int64_t n,
                                         cudaStream_t stream)
{
    if (n <= 0) return cudaSuccess;
    f16_to_f32_kernel<<<cu_blocks(n), CU_THREADS, 0, stream>>>((const __half *)src, dst, n);
    return cudaGetLastError();
}
