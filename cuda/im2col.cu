/*
 * Partial im2col (paper Sec. III-A c, matrix generation): only the rows of
 * the changed output pixels are built. Grouped convolutions skip the matrix:
 * group_rows_kernel computes their rows directly.
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

/*
 * group_rows_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per output value
 *   (m rows x cout, row-major): y[r][o] = sum over the kh x kw taps and the
 *   cg = cin / group input channels of o's group of w[o][ky][kx][ci] *
 *   src[pixel][(o / (cout / group)) * cg + ci], in fp32. The product of a
 *   grouped convolution is block-diagonal, so an im2col row of all cin
 *   channels and a GEMM would multiply zeros.
 *   Shared memory: none. Layout: NHWC; consecutive threads take consecutive
 *   output channels, which (depthwise) read consecutive input channels.
 *   Rows: output pixel idx[r], or base + r when idx is NULL.
 *   Alignment: element alignment only.
 */
template <typename T>
__global__ void group_rows_kernel(cbi_cuda_conv_geom g, const T *__restrict__ src,
                                  const T *__restrict__ w, const int32_t *__restrict__ idx,
                                  int64_t base, int m, float *__restrict__ y)
{
    const int cg = g.cin / g.group, mg = g.cout / g.group;
    CU_GRID_STRIDE(i, (int64_t)m * g.cout)
    {
        const int64_t r = i / g.cout;
        const int o = (int)(i - r * g.cout);
        const int64_t px = idx ? (int64_t)idx[r] : base + r;
        const int oy = (int)(px / g.wo), ox = (int)(px - (int64_t)oy * g.wo);
        const int c0 = (o / mg) * cg;
        const T *wo = w + (int64_t)o * g.k;
        float acc = 0.f;
        for (int ky = 0; ky < g.kh; ++ky) {
            const int iy = oy * g.sh - g.pad_t + ky * g.dh;
            if (iy < 0 || iy >= g.h) continue;
            for (int kx = 0; kx < g.kw; ++kx) {
                const int ix = ox * g.sw - g.pad_l + kx * g.dw;
                if (ix < 0 || ix >= g.w) continue;
                const int64_t xo = ((int64_t)iy * g.w + ix) * g.cin + c0;
                const int64_t wk = (int64_t)(ky * g.kw + kx) * cg;
                for (int ci = 0; ci < cg; ++ci) acc += cu_ld(wo, wk + ci) * cu_ld(src, xo + ci);
            }
        }
        y[i] = acc;
    }
}

extern "C" cudaError_t launch_group_rows(cbi_cuda_dtype dt, const cbi_cuda_conv_geom *g,
                                         const void *src, const void *w, const int32_t *idx,
                                         int64_t base, int m, float *y, cudaStream_t stream)
{
    if (m <= 0) return cudaSuccess;
    const unsigned blocks = cu_blocks((int64_t)m * g->cout);
    if (dt == CBI_CUDA_F16)
        group_rows_kernel<__half><<<blocks, CU_THREADS, 0, stream>>>(
            *g, (const __half *)src, (const __half *)w, idx, base, m, y);
    else
        group_rows_kernel<float><<<blocks, CU_THREADS, 0, stream>>>(
            *g, (const float *)src, (const float *)w, idx, base, m, y);
    return cudaGetLastError();
}
