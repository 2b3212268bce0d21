/*
 * Change detection (paper Eq. 3) fused with the closed-loop input-state
 * update (Sec. III-C) and the marking of the filter support (Eq. 4), and the
 * state copy of a reused index list.
 */
#include "cuda_backend.cuh"

/*
 * change_detect_kernel
 *   Grid/block: 1-D, 256 threads, one thread per tested input pixel: pixel
 *   list[i] (the producer's changed pixels; only those can differ) or pixel i
 *   when list is NULL. No grid-stride loop: every lane of a warp reaches the
 *   ballot that counts the changed pixels (one atomicAdd per warp).
 *   Shared memory: none.
 *   Layout: NHWC, so a thread reads its pixel's cin channels as one
 *   contiguous run of x and of the state, compares in float (Eq. 3: any
 *   channel with |x - state| > tau, or not finite) and, if changed (closed loop) or always
 *   (feed-forward), copies the run into the state.
 *   Eq. 4: a changed pixel marks every output whose window reads it
 *   (cu_footprint).
 *   Alignment: element alignment only.
 */
template <typename T>
__global__ void change_detect_kernel(cbi_cuda_conv_geom g, const T *__restrict__ x,
                                     T *__restrict__ state, const int32_t *__restrict__ list,
                                     int64_t n, float tau, int ff, uint8_t *__restrict__ map,
                                     int32_t *__restrict__ n_changed)
{
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    bool hit = false;
    if (i < n) {
        const int32_t px = list ? list[i] : (int32_t)i;
        const int64_t off = (int64_t)px * g.cin;
        for (int c = 0; c < g.cin; ++c) {
            const float d = cu_ld(x, off + c) - cu_ld(state, off + c);
            hit |= !(fabsf(d) <= tau); /* NaN (a NaN or Inf on either side) is a change */
        }
        if (hit || ff)
            for (int c = 0; c < g.cin; ++c) state[off + c] = x[off + c];
        if (hit) cu_footprint(g, px, map);
    }
    const unsigned votes = __ballot_sync(0xffffffffu, hit);
    if ((threadIdx.x & 31) == 0 && votes) atomicAdd(n_changed, __popc(votes));
}

extern "C" cudaError_t launch_change_detect(cbi_cuda_dtype dt, const cbi_cuda_conv_geom *g,
                                            const void *x, void *state, const int32_t *list,
                                            int64_t n, float tau, int ff, uint8_t *map,
                                            int32_t *d_n_changed, cudaStream_t stream)
{
    if (n <= 0) return cudaSuccess;
    const int64_t blocks = (n + CU_THREADS - 1) / CU_THREADS;
    if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
    if (dt == CBI_CUDA_F16)
        change_detect_kernel<__half><<<(unsigned)blocks, CU_THREADS, 0, stream>>>(
            *g, (const __half *)x, (__half *)state, list, n, tau, ff, map, d_n_changed);
    else
        change_detect_kernel<float><<<(unsigned)blocks, CU_THREADS, 0, stream>>>(
            *g, (const float *)x, (float *)state, list, n, tau, ff, map, d_n_changed);
    return cudaGetLastError();
}

/*
 * copy_pixels_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per value of the
 *   n x c listed pixel runs: state[idx[r]][ch] = x[idx[r]][ch].
 *   Shared memory: none. Layout: NHWC (consecutive threads copy one pixel's
 *   contiguous channels). Alignment: element alignment only.
 */
template <typename T>
__global__ void copy_pixels_kernel(const T *__restrict__ x, T *__restrict__ state,
                                   const int32_t *__restrict__ idx, int64_t n, int c)
{
    CU_GRID_STRIDE(i, n * c)
    {
        const int64_t r = i / c, ch = i - r * c;
        const int64_t off = (int64_t)idx[r] * c + ch;
        state[off] = x[off];
    }
}

extern "C" cudaError_t launch_copy_pixels(cbi_cuda_dtype dt, const void *x, void *state,
                                          const int32_t *idx, int64_t n, int c,
                                          cudaStream_t stream)
{
    if (n <= 0 || c <= 0) return cudaSuccess;
    const unsigned blocks = cu_blocks(n * c);
    if (dt == CBI_CUDA_F16)
        copy_pixels_kernel<__half><<<blocks, CU_THREADS, 0, stream>>>(
            (const __half *)x, (__half *)state, idx, n, c);
    else
        copy_pixels_kernel<float><<<blocks, CU_THREADS, 0, stream>>>(
            (const float *)x, (float *)state, idx, n, c);
    return cudaGetLastError();
}
