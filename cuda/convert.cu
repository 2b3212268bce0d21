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

/*
 * rgb8_to_tensor_kernel: a device RGB8 frame (rows of stride bytes) into the
 * NHWC input tensor, value = byte * scale + offset (the network's scaling),
 * stored as T. NHWC with C = 3 is the frame's own layout, so value i of the
 * tensor is byte (i / (3w)) * stride + i % (3w).
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per value.
 *   Shared memory: none. Alignment: none needed (bytes in, elements out).
 */
template <typename T>
__global__ void rgb8_to_tensor_kernel(const uint8_t *__restrict__ rgb, T *__restrict__ dst,
                                      int row_values, int64_t stride, int64_t n, float scale,
                                      float offset)
{
    CU_GRID_STRIDE(i, n)
    {
        const int64_t y = i / row_values, x = i % row_values;
        /* Rounded twice, as the host staging computes it (no FMA). */
        cu_st(dst, i, __fadd_rn(__fmul_rn((float)rgb[y * stride + x], scale), offset));
    }
}

extern "C" cudaError_t launch_rgb8_to_tensor(cbi_cuda_dtype dt, const uint8_t *rgb, void *dst,
                                             int width, int height, size_t stride, float scale,
                                             float offset, cudaStream_t stream)
{
    const int64_t n = (int64_t)width * height * 3;
    if (n <= 0) return cudaSuccess;
    if (dt == CBI_CUDA_F16)
        rgb8_to_tensor_kernel<__half><<<cu_blocks(n), CU_THREADS, 0, stream>>>(
            rgb, (__half *)dst, 3 * width, (int64_t)stride, n, scale, offset);
    else
        rgb8_to_tensor_kernel<float><<<cu_blocks(n), CU_THREADS, 0, stream>>>(
            rgb, (float *)dst, 3 * width, (int64_t)stride, n, scale, offset);
    return cudaGetLastError();
}

/*
 * tensor_to_nchw_kernel: an NHWC tensor of T into float32 NCHW (the layout
 * of cbinfer_stream_read_output), for cbinfer_stream_read_output_device.
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per value, indexed
 *   by the NCHW destination (coalesced writes; reads stride by c).
 *   Shared memory: none. Alignment: element alignment only.
 */
template <typename T>
__global__ void tensor_to_nchw_kernel(const T *__restrict__ src, float *__restrict__ dst, int c,
                                      int64_t hw)
{
    CU_GRID_STRIDE(i, (int64_t)c * hw)
    {
        const int64_t ch = i / hw, p = i % hw;
        dst[i] = cu_ld(src, p * c + ch);
    }
}

extern "C" cudaError_t launch_tensor_to_nchw(cbi_cuda_dtype dt, const void *src, float *dst,
                                             int c, int h, int w, cudaStream_t stream)
{
    const int64_t hw = (int64_t)h * w;
    if (hw * c <= 0) return cudaSuccess;
    if (dt == CBI_CUDA_F16)
        tensor_to_nchw_kernel<__half><<<cu_blocks(hw * c), CU_THREADS, 0, stream>>>(
            (const __half *)src, dst, c, hw);
    else
        tensor_to_nchw_kernel<float><<<cu_blocks(hw * c), CU_THREADS, 0, stream>>>(
            (const float *)src, dst, c, hw);
    return cudaGetLastError();
}
