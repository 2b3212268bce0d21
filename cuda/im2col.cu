/*
 * Partial im2col (paper Sec. III-A c, matrix generation): only the rows of
 * the changed output pixels are built.
 */
#include "cuda_backend.cuh"

/*
 * im2col_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per element of the
 *   m x k matrix (k = kh * kw * cin), in row-major order: element (r, j) with
 *   j = (ky * kw + kx) * cin + c, the row order of the weights
 *   [Cout][kh][kw][Cin], so the GEMM needs no reordering.
 *   Shared memory: none.
 *   Layout: NHWC. Each tap of a row is one contiguous run of cin values of
 *   one input pixel, so consecutive threads read consecutive addresses of the
 *   source and write consecutive addresses of the matrix (coalesced on both
 *   sides). Taps in the padding are zero.
 *   Rows: output pixel idx[r], or base + r when idx is NULL (dense fallback).
 *   Alignment: element alignment only.
 */
template <typename T>
__global__ void im2col_kernel(cbi_cuda_conv_geom g, const T *__restrict__ src,
                              const int32_t *__restrict__ idx, int64_t base, int m,
                              T *__restrict__ col)
{
    const int64_t total = (int64_t)m * g.k;
    CU_GRID_STRIDE(i, total)
    {
        const int64_t r = i / g.k;
        const int j = (int)(i - r * g.k);
        const int tap = j / g.cin, c = j - tap * g.cin;
        const int ky = tap / g.kw, kx = tap - ky * g.kw;
        const int64_t px = idx ? (int64_t)idx[r] : base + r;
        const int oy = (int)(px / g.wo), ox = (int)(px - (int64_t)oy * g.wo);
        const int iy = oy * g.sh - g.pad_t + ky * g.dh;
        const int ix = ox * g.sw - g.pad_l + kx * g.dw;
        T v;
        if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w)
            cu_st(&v, 0, 0.f);
        else
            v = src[((int64_t)iy * g.w + ix) * g.cin + c];
        col[i] = v;
    }
}

extern "C" cudaError_t launch_im2col(cbi_cuda_dtype dt, const cbi_cuda_conv_geom *g,
                                     const void *src, const int32_t *idx, int64_t base, int m,
                                     void *col, cudaStream_t stream)
{
    if (m <= 0) return cudaSuccess;
    const unsigned blocks = cu_blocks((int64_t)m * g->k);
    if (dt == CBI_CUDA_F16)
        im2col_kernel<__half><<<blocks, CU_THREADS, 0, stream>>>(
            *g, (const __half *)src, idx, base, m, (__half *)col);
    else
        im2col_kernel<float><<<blocks, CU_THREADS, 0, stream>>>(*g, (const float *)src, idx,
                                                                base, m, (float *)col);
    return cudaGetLastError();
}
