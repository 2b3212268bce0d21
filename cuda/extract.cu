/*
 * Change-index extraction (paper Sec. III-A b): condense the change map into
 * the ascending list of marked output pixels and their number, then clear the
 * map where it was set.
 *
 * The paper uses thrust::copy_if with a counting iterator. This is the same
 * stream compaction (thrust::copy_if is implemented on it) called through
 * cub::DeviceSelect::Flagged directly, for three reasons that thrust::copy_if
 * cannot meet: its scratch comes from cudaMalloc/cudaFree on every call (and
 * cudaFree waits for the whole device), it synchronises the stream and reads
 * the count into pageable memory itself, and it reports errors by throwing.
 * Here the scratch is preallocated (layer_create asks for its size), the
 * count stays on the device, and the caller reads it back with one pinned
 * copy (conv_change.cu, pool.cu), so the stream is waited on exactly once.
 */
#include <cub/device/device_select.cuh>
#include <thrust/iterator/counting_iterator.h>

#include "cuda_backend.cuh"

/*
 * cub::DeviceSelect::Flagged over (pixel index i, flag map[i]): a decoupled
 * look-back scan over tiles of the map; the selected indices come out in
 * ascending order, the count in *d_count. CUB picks grid, block and shared
 * memory. Layout: the map is one byte per output pixel (row-major y * w + x,
 * the NHWC pixel order). Alignment: none required.
 */
extern "C" cudaError_t launch_extract_indices(const uint8_t *map, int64_t n_px, int32_t *idx,
                                              int32_t *d_count, void *tmp, size_t *tmp_bytes,
                                              cudaStream_t stream)
{
    if (n_px < 0 || n_px > 0x7fffffff) return cudaErrorInvalidValue;
    thrust::counting_iterator<int32_t> first(0);
    return cub::DeviceSelect::Flagged(tmp, *tmp_bytes, first, map, idx, d_count, (int)n_px,
                                      stream);
}

/*
 * clear_map_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per extracted index:
 *   map[idx[i]] = 0. Work is proportional to the changes, not to the frame
 *   (the map is all zero again for the next frame). Shared memory: none.
 *   Layout: one byte per output pixel, row-major (the NHWC pixel order).
 *   Alignment: none required (byte stores).
 */
__global__ void clear_map_kernel(uint8_t *__restrict__ map, const int32_t *__restrict__ idx,
                                 int64_t n)
{
    CU_GRID_STRIDE(i, n) map[idx[i]] = 0;
}

extern "C" cudaError_t launch_clear_map(uint8_t *map, const int32_t *idx, int64_t n,
                                        cudaStream_t stream)
{
    if (n <= 0) return cudaSuccess;
    clear_map_kernel<<<cu_blocks(n), CU_THREADS, 0, stream>>>(map, idx, n);
    return cudaGetLastError();
}
