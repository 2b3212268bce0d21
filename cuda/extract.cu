/*
 * Change-index extraction (paper Sec. III-A b): condense the change map into
 * the ascending list of marked output pixels and their number, then clear the
 * map where it was set.
 *
 * As in the paper: thrust::copy_if over a counting iterator with the map as
 * stencil. What thrust would otherwise do behind the caller's back is pinned
 * down here:
 *   - stream: the policy is thrust::cuda::par(alloc).on(ctx->stream); every
 *     launch, copy and wait of copy_if goes to that stream (nothing runs on
 *     the default stream);
 *   - memory: its scratch (CUB's tile state and the device count) comes from
 *     cu_scratch_alloc, which hands out ctx->d_sel_tmp, sized by layer_create
 *     (cu_extract_scratch_bytes); nothing is cudaMalloc'ed or cudaFree'd per
 *     frame (cudaFree would wait for the whole device);
 *   - errors: copy_if throws (thrust::system_error, std::bad_alloc); every
 *     exception is caught here and becomes a cbinfer status naming the node;
 *   - synchronisation: copy_if returns the end of the output, so the host
 *     learns the count from it; to do so copy_if waits for the stream and
 *     reads the device count back itself. That wait is the layer's one host
 *     synchronisation (counted in host_syncs); callers rely on the stream
 *     being drained when cu_extract_indices returns.
 */
#include <exception>
#include <new>

#include <thrust/copy.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/system/cuda/error.h>
#include <thrust/system/cuda/execution_policy.h>
#include <thrust/system_error.h>

#include <cub/device/device_select.cuh>

#include "cuda_backend.cuh"

namespace cbi_extract {

/* The stencil predicate: a marked output pixel. */
struct is_marked {
    __host__ __device__ bool operator()(uint8_t flag) const { return flag != 0; }
};

/*
 * Allocator of thrust's temporary storage (value_type char: sizes in bytes)
 * over a buffer preallocated at layer creation: a bump allocator, 256-byte
 * aligned, that starts over once every block has been returned. Asked for more
 * than the buffer holds it throws std::bad_alloc (caught by the caller), it
 * never allocates. Returning a block does not free device memory, so a block
 * released while a kernel may still use it (an exception path) is safe: every
 * later user is ordered after that kernel on the same stream.
 */
class cu_scratch_alloc {
public:
    typedef char value_type;

    cu_scratch_alloc(void *base, size_t bytes) : base_((char *)base), cap_(base ? bytes : 0) {}

    char *allocate(std::size_t n)
    {
        const size_t at = (used_ + 255) & ~(size_t)255;
        if (at > cap_ || n > cap_ - at) {
            refused_ = n;
            throw std::bad_alloc();
        }
        used_ = at + n;
        ++live_;
        return base_ + at;
    }

    void deallocate(char *, std::size_t) noexcept
    {
        if (live_ > 0 && --live_ == 0) used_ = 0;
    }

    size_t refused() const { return refused_; } /* bytes of a refused request, else 0 */
    size_t capacity() const { return cap_; }

private:
    char *base_;
    size_t cap_;
    size_t used_ = 0;
    size_t refused_ = 0;
    int live_ = 0;
};

} // namespace cbi_extract

/*
 * Extraction: thrust::copy_if(counting_iterator(0), counting_iterator(n_px),
 * stencil map, idx, is_marked), dispatched by thrust to CUB's DeviceSelect
 * (select with a stencil, 64-bit offsets): an init kernel for the tile states,
 * then one block per tile of map (tile size, block size and items per thread
 * from CUB's tuning for the device; a decoupled look-back scan of the tiles'
 * flag counts gives each tile its output offset), so the selected indices
 * come out in ascending order. Shared memory: CUB's, per block. Layout: the map
 * is one byte per output pixel (row-major y * w + x, the NHWC pixel order);
 * idx holds int32 pixel indices. Alignment: none required.
 */
cbinfer_status cu_extract_indices(cu_ctx *ctx, const uint8_t *map, int64_t n_px, int32_t *idx,
                                  int64_t *n_out, const char *where, cbi_err *e)
{
    *n_out = 0;
    if (n_px < 0 || n_px > 0x7fffffff)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s: %lld pixels to extract from",
                        where, (long long)n_px);
    /* copy_if does not wait for an empty range; the caller's contract (the
     * stream is drained) holds all the same. */
    if (n_px == 0) return cu_sync(ctx, where, e);

    cbi_extract::cu_scratch_alloc alloc(ctx->d_sel_tmp, ctx->sel_tmp_bytes);
    const thrust::counting_iterator<int32_t> first(0), last((int32_t)n_px);
    int32_t *end = idx;
    try {
        end = thrust::copy_if(thrust::cuda::par(alloc).on(ctx->stream), first, last, map, idx,
                              cbi_extract::is_marked());
    } catch (const std::bad_alloc &) {
        if (alloc.refused())
            return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY,
                            "node %s: thrust::copy_if asked for %zu bytes of scratch, %zu "
                            "preallocated",
                            where, alloc.refused(), alloc.capacity());
        return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY,
                        "node %s: thrust::copy_if: allocation failed", where);
    } catch (const thrust::system_error &x) {
        const bool oom = x.code().category() == thrust::cuda_category() &&
                         x.code().value() == (int)cudaErrorMemoryAllocation;
        return cbi_fail(e, oom ? CBINFER_STATUS_OUT_OF_MEMORY : CBINFER_STATUS_BACKEND_ERROR,
                        "node %s: thrust::copy_if failed: %s", where, x.what());
    } catch (const std::exception &x) {
        return cbi_fail(e, CBINFER_STATUS_BACKEND_ERROR, "node %s: thrust::copy_if failed: %s",
                        where, x.what());
    } catch (...) {
        return cbi_fail(e, CBINFER_STATUS_BACKEND_ERROR,
                        "node %s: thrust::copy_if failed: unknown exception", where);
    }
    /* copy_if waited for the stream (cudaStreamSynchronize) and then read its
     * 8-byte device count back (a copy on the drained stream and a second,
     * immediate cudaStreamSynchronize): one host wait for queued work. */
    ctx->host_syncs++;
    ctx->upload_pending = 0; /* the upload event was queued before: complete */
    const int64_t n = (int64_t)(end - idx);
    if (n < 0 || n > n_px)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s: extracted %lld of %lld pixels",
                        where, (long long)n, (long long)n_px);
    *n_out = n;
    return CBINFER_STATUS_SUCCESS;
}

/*
 * Scratch for cu_extract_indices over up to n_px pixels. CUB's query with
 * the types copy_if dispatches with (counting iterator, byte stencil, int32
 * output, the predicate, 64-bit offsets) gives the select's tile state; copy_if
 * adds its 8-byte device count, each part aligned to 256 bytes, plus 255 bytes
 * of alignment slack (at most need + 767 in all). On top, generous slack
 * (twice that, plus 64 KiB) keeps a different tuning of another CCCL release
 * from failing at run time; the bump allocator turns any shortfall into an
 * OUT_OF_MEMORY that names the node rather than a hidden cudaMalloc. A size
 * query only: nothing is launched or allocated.
 */
cbinfer_status cu_extract_scratch_bytes(int64_t n_px, size_t *bytes, const char *where,
                                        cbi_err *e)
{
    *bytes = 0;
    if (n_px < 0 || n_px > 0x7fffffff)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s: %lld pixels to extract from",
                        where, (long long)n_px);
    size_t need = 0;
    const thrust::counting_iterator<int32_t> first(0);
    CBINFER_CUDA_TRY(cub::DeviceSelect::FlaggedIf(NULL, need, first, (const uint8_t *)NULL,
                                                  (int32_t *)NULL, (int64_t *)NULL, n_px,
                                                  cbi_extract::is_marked()),
                     e, where);
    *bytes = 2 * (need + 767) + ((size_t)64 << 10);
    return CBINFER_STATUS_SUCCESS;
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
