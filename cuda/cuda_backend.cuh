/*
 * Internals of the CUDA backend shared by the .cu files of cuda/: the backend
 * context (one CUDA stream, one cuBLAS and one cuDNN handle, shared scratch),
 * per-layer state, error forwarding macros, step timing, and small device
 * helpers. C++ only; C code sees cuda_kernels.h and host/backend.h.
 */
#ifndef CBI_CUDA_BACKEND_CUH
#define CBI_CUDA_BACKEND_CUH

#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "cuda_kernels.h"

/* ------------------------------------------------------------ context ---- */

typedef struct cu_ctx {
    cbi_backend_config cfg;
    int device;
    int precision;       /* cbinfer_precision */
    cbi_cuda_dtype dt;   /* storage type of activations and weights */
    size_t elem_bytes;   /* 4 or 2 */
    cudaStream_t stream; /* every operation of the context runs here */
    int own_stream;      /* 1: created (and destroyed) here; 0: the caller's */
    cublasHandle_t cublas;
    cudnnHandle_t cudnn;

    /* Shared scratch, sized in create() for the largest layer. */
    void *d_col;         /* partial im2col rows: chunk_px x max_k elements (dt) */
    float *d_y;          /* GEMM results, y_floats floats */
    size_t chunk_px;     /* output pixels per im2col/GEMM chunk */
    size_t max_k;
    size_t y_floats;
    void *d_ws;          /* cuDNN workspace, grown by layer_create to the max over layers */
    size_t ws_bytes;
    void *d_sel_tmp;     /* thrust::copy_if scratch of index extraction, grown by
                            layer_create (cu_extract_scratch_bytes) */
    size_t sel_tmp_bytes;
    int32_t *d_counts;   /* [0] changed input pixels of a change detection ([1] unused:
                            extraction returns its count on the host) */
    int32_t *h_counts;   /* pinned copy of d_counts, read after the extraction's wait */
    unsigned long long *d_dstat; /* delta policies' gate counters (CU_DSTAT_*) */
    unsigned long long *h_dstat; /* pinned copy, read after the extraction's wait */
    float *h_stage;      /* pinned staging of upload/download, stage_floats */
    float *d_stage;      /* fp16 only: float tensor on the device for conversion */
    size_t stage_floats;

    cudaEvent_t ev_upload;  /* h_stage may be rewritten once this has completed */
    int upload_pending;
    cudaEvent_t ev_start, ev_stop; /* per-step timing (collect_stats only) */

    int64_t host_syncs;
} cu_ctx;

/* Per-node state: weights in device layout, change-based state, cuDNN
 * descriptors, resize tables. NULL for nodes that need none. */
typedef struct cu_layer {
    void *d_w;          /* Conv [cout][kh][kw][cin], ConvTranspose [cin][kh][kw][cout] (dt) */
    float *d_bias;      /* [cout] */
    float *d_slope;     /* PReLU slopes, n_slope floats */

    void *d_state;      /* Conv, change-based: input state (dt) */
    uint8_t *d_map;     /* Conv and pools, change-based: output pixels to recompute; all
                           zero between calls */
    int32_t *d_idx;     /* Conv and pools, change-based: extracted indices */
    int exact;          /* Conv, change-based: no change under τ left out since the
                           last dense frame (the CPU's cpu_layer.exact) */
    int followed;       /* Conv, change-based: the last frame followed its producer's
                           list at threshold 0 (cu_change_rows) */

    int use_cudnn;      /* Conv: cuDNN dense path set up (else im2col + GEMM) */
    int fused;          /* Conv: bias + activation through cudnnConvolutionBiasActivationForward */
    cudnnTensorDescriptor_t x_desc, y_desc, b_desc;
    cudnnFilterDescriptor_t w_desc;
    cudnnConvolutionDescriptor_t conv_desc;
    cudnnActivationDescriptor_t act_desc;
    cudnnConvolutionFwdAlgo_t algo;

    int32_t *d_src_y, *d_src_x; /* nearest Resize: source row / column of each output row / column */
    cbi_resize_tap *d_tap_y, *d_tap_x; /* linear Resize: taps of each output row / column */

    /* Conv under a delta policy (conv_delta.cu); d_state is the reference v. */
    cbi_policy policy;
    void *d_w2;         /* delta scatter: weights [cin][kh][kw][cout] (dt) */
    float *d_acc;       /* fp32 pre-activation accumulator; NULL: f^-1(output) (fp32 storage) */
    uint8_t *d_in_map;  /* delta scatter: transmitting input pixels; all zero between calls */
    int32_t *d_in_idx;  /* their indices */
    int32_t *d_row_of;  /* deterministic gather: delta row of each input pixel, -1 when none */
    void *d_dimg;       /* Skip-Conv: residual image (dt), zero between calls */
    float *d_s1;        /* Skip-Conv: L1 of each pixel's residual, zero between calls */
    uint8_t *d_bmap;    /* Skip-Conv: b x b block gates, zero between calls */
    float w_l1;         /* Skip-Conv Output-Norm: ||W||_1 */

    /* Conv: the images its cuDNN descriptors take (1; a batch's layer,
     * conv_batch.cu: the batch's), and for a batch's layer `one`, those of a
     * single image on the batch's context. */
    int images;
    struct cu_layer *one;
} cu_layer;

/* The counters of a delta policy's gate (cu_ctx.d_dstat). */
enum {
    CU_DSTAT_PIXELS = 0, /* transmitting pixels (Skip-Conv: pixels with a residual) */
    CU_DSTAT_ELEMENTS,   /* elements sent */
    CU_DSTAT_MACS,       /* the papers' MACs: sent x valid taps x Cout */
    CU_DSTAT_ACC,        /* accumulator values the scatter updates: taps x Cout */
    CU_DSTAT_NONFINITE,  /* transmitting pixels with a value that is not finite */
    CU_DSTAT_COUNT
};

/* --------------------------------------------------- error forwarding ---- */

cbinfer_status cu_fail_cuda(cbi_err *e, cudaError_t rc, const char *call, const char *where);
cbinfer_status cu_fail_cublas(cbi_err *e, cublasStatus_t rc, const char *call, const char *where);
cbinfer_status cu_fail_cudnn(cbi_err *e, cudnnStatus_t rc, const char *call, const char *where);

/* Each runs one native call; on failure it returns from the enclosing
 * function with BACKEND_ERROR (OUT_OF_MEMORY for allocation failures) and a
 * message naming the call and `where` (the node, or the backend step). */
#define CBINFER_CUDA_TRY(call, e, where)                                                     \
    do {                                                                                     \
        cudaError_t cbi_rc_ = (call);                                                        \
        if (cbi_rc_ != cudaSuccess) return cu_fail_cuda((e), cbi_rc_, #call, (where));       \
    } while (0)
#define CBINFER_CUBLAS_TRY(call, e, where)                                                   \
    do {                                                                                     \
        cublasStatus_t cbi_rc_ = (call);                                                     \
        if (cbi_rc_ != CUBLAS_STATUS_SUCCESS) return cu_fail_cublas((e), cbi_rc_, #call, (where)); \
    } while (0)
#define CBINFER_CUDNN_TRY(call, e, where)                                                    \
    do {                                                                                     \
        cudnnStatus_t cbi_rc_ = (call);                                                      \
        if (cbi_rc_ != CUDNN_STATUS_SUCCESS) return cu_fail_cudnn((e), cbi_rc_, #call, (where)); \
    } while (0)
/* Forwards a cbinfer_status from a helper. */
#define CU_TRY(expr)                                                                         \
    do {                                                                                     \
        cbinfer_status cbi_st_ = (expr);                                                     \
        if (cbi_st_ != CBINFER_STATUS_SUCCESS) return cbi_st_;                               \
    } while (0)

/* ------------------------------------------------------------ helpers ---- */

static inline const char *cu_name(const cbi_op_args *a)
{
    return a && a->node && a->node->name ? a->node->name : "?";
}

/* Checks what every kernel entry needs: node, plan, output and n inputs with
 * data. */
cbinfer_status cu_check_args(const cbi_op_args *a, int n_in_min, cbi_err *e);

/* The node's activation with its PReLU slopes on the device (from layer);
 * INTERNAL when a PReLU has no device slopes. */
cbinfer_status cu_act_of(const cbi_op_args *a, cbi_cuda_act *act, cbi_err *e);

/* Bytes of one activation or weight value at a precision (half for FP16). */
static inline size_t cu_elem_bytes(cbinfer_precision precision)
{
    return precision == CBINFER_PRECISION_FP16 ? sizeof(__half) : sizeof(float);
}

/* Waits for the context's stream and counts it. */
cbinfer_status cu_sync(cu_ctx *ctx, const char *where, cbi_err *e);

/* n floats of the network into a new device buffer of the storage type, and
 * a zeroed device buffer of bytes (cuda_backend.cu; creation time only). */
cbinfer_status cu_upload_weights(cu_ctx *ctx, const float *w, size_t n, void **d,
                                 const char *where, cbi_err *e);
cbinfer_status cu_zeroed(cu_ctx *ctx, size_t bytes, void **d, const char *where, cbi_err *e);

/* Grows a device scratch buffer (creation time only: frees and reallocates). */
cbinfer_status cu_grow(void **ptr, size_t *have_bytes, size_t need_bytes, const char *what,
                       cbi_err *e);

/*
 * One timed step of one layer: an NVTX range "<layer>/<step>" always, and,
 * only when args->collect_stats, CUDA events around the step whose elapsed
 * time is added to stats->step_ms[step] at end() (which waits for the stop
 * event: timing is the only extra synchronisation). The range is closed by
 * end() or, on an early error return, by the destructor.
 */
class cu_step {
public:
    cu_step(cu_ctx *ctx, const cbi_op_args *a, cbinfer_step step);
    ~cu_step();
    cbinfer_status begin(cbi_err *e);
    cbinfer_status end(cbi_err *e);

private:
    cu_ctx *ctx_;
    const cbi_op_args *a_;
    cbinfer_step step_;
    bool open_ = false;
};

/* Blocks of 256 threads for n work items in a grid-stride loop (capped, so
 * any n fits a 1-D grid). */
static inline unsigned cu_blocks(int64_t n)
{
    const int64_t cap = (int64_t)1 << 20;
    int64_t b = (n + 255) / 256;
    if (b < 1) b = 1;
    return (unsigned)(b < cap ? b : cap);
}
#define CU_THREADS 256

/* ----------------------------------------------------- device helpers ---- */

#ifdef __CUDACC__
__device__ __forceinline__ float cu_ld(const float *p, int64_t i) { return p[i]; }
__device__ __forceinline__ float cu_ld(const __half *p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ void cu_st(float *p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void cu_st(__half *p, int64_t i, float v) { p[i] = __float2half_rn(v); }

/* Same arithmetic as cpu_activate() (host/cpu/cpu_backend.h). */
__device__ __forceinline__ float cu_activate(const cbi_cuda_act &a, int ch, float v)
{
    switch (a.kind) {
    case CBI_ACT_RELU: return v > 0.f ? v : 0.f;
    case CBI_ACT_LEAKY_RELU: return v > 0.f ? v : v * a.alpha;
    case CBI_ACT_PRELU: return v > 0.f ? v : v * a.slope[a.n_slope == 1 ? 0 : ch];
    case CBI_ACT_CLIP: return v < a.lo ? a.lo : (v > a.hi ? a.hi : v);
    case CBI_ACT_SIGMOID: return 1.f / (1.f + expf(-v));
    default: return v;
    }
}

/* f^-1 of an invertible activation (cbi_activation_invertible), as the CPU's
 * act_inverse (host/cpu/cpu_delta.c): a division, not a multiplication by
 * the reciprocal. */
__device__ __forceinline__ float cu_act_inverse(const cbi_cuda_act &a, int ch, float y)
{
    switch (a.kind) {
    case CBI_ACT_LEAKY_RELU: return y > 0.f ? y : y / a.alpha;
    case CBI_ACT_PRELU: return y > 0.f ? y : y / a.slope[a.n_slope == 1 ? 0 : ch];
    default: return y;
    }
}

/* Eq. 4: the outputs input pixel px reaches (output (oy, ox) reads input
 * oy*sh - pad_t + ky*dh, likewise in x), marked in map (concurrent writes
 * all store 1) when map is not NULL; returns their number (the pixel's
 * valid taps). */
__device__ __forceinline__ int cu_footprint(const cbi_cuda_conv_geom &g, int32_t px,
                                            uint8_t *map)
{
    const int iy = px / g.w, ix = px % g.w;
    int taps = 0;
    for (int ky = 0; ky < g.kh; ++ky) {
        const int ty = iy + g.pad_t - ky * g.dh;
        if (ty < 0 || ty % g.sh || ty / g.sh >= g.ho) continue;
        for (int kx = 0; kx < g.kw; ++kx) {
            const int tx = ix + g.pad_l - kx * g.dw;
            if (tx < 0 || tx % g.sw || tx / g.sw >= g.wo) continue;
            ++taps;
            if (map) map[(int64_t)(ty / g.sh) * g.wo + tx / g.sw] = 1;
        }
    }
    return taps;
}

#define CU_GRID_STRIDE(i, n)                                                                 \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);               \
         i += (int64_t)gridDim.x * blockDim.x)
#endif

/* ------------------------------------------------------ kernel entries ---- */

cbinfer_status cu_conv_dense(void *bctx, cbi_op_args *a, cbi_err *e);
/* A change-based Conv of the recompute policies in two halves, for one
 * stream alone (cu_conv_change) or for a batch's (conv_batch.cu):
 * cu_change_rows detects and extracts; *dense = 1 when the frame is to run
 * dense (the first, or past break-even: state and out_chg already set, the
 * caller runs the dense convolution); else *rows, *n_rows are the output
 * pixels to recompute from L->d_state, and after that cu_change_done closes
 * the layer's change list and stats. */
cbinfer_status cu_change_rows(cu_ctx *ctx, cbi_op_args *a, const int32_t **rows, int64_t *n_rows,
                              int64_t *n_changed_in, int *dense, cbi_err *e);
void cu_change_done(cbi_op_args *a, const int32_t *rows, int64_t n, int64_t n_changed_in);
/* 1x1, stride 1, unpadded, same size: a pointwise convolution. */
int cu_is_pointwise(const cbi_cuda_conv_geom *g);
/* Batches (conv_batch.cu): a Conv's cuDNN set-up for `images` images, and
 * one Conv node for n streams (cbi_backend.conv_batch). */
cbinfer_status cu_batch_layer_create(void *bctx, int node_id, int images, void **layer,
                                     cbi_err *e);
cbinfer_status cu_conv_batch(void *bctx, void *blayer, int n, cbi_op_args *const *args,
                             cbi_err *e);
cbinfer_status cu_conv_change(void *bctx, cbi_op_args *a, cbi_err *e);
/* A change-based Conv under a delta policy (conv_delta.cu), from cu_conv_change. */
cbinfer_status cu_conv_delta(cu_ctx *ctx, cbi_op_args *a, cbi_err *e);
/* Its state at layer creation: W2, accumulator, maps, Skip-Conv buffers
 * (conv_delta.cu); the bytes it adds beyond cbi_policy_state_bytes and the
 * lists host/stream.c counts (cu_delta_extra_bytes). */
cbinfer_status cu_delta_setup(cu_ctx *ctx, int node_id, cu_layer *L, cbi_err *e);
void cu_delta_teardown(cu_layer *L);
size_t cu_delta_extra_bytes(const cbi_backend_config *cfg, int node_id);
cbinfer_status cu_conv_transpose(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cu_activation_op(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cu_pool_dense(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cu_pool_change(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cu_add(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cu_concat(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cu_pad(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cu_resize(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cu_depth_to_space(void *bctx, cbi_op_args *a, cbi_err *e);

/* Layer setup and teardown per op family (called by layer_create/destroy):
 * cuDNN descriptors and algorithm of a Conv (conv_dense.cu), resize tables
 * (resize.cu). */
cbinfer_status cu_cudnn_setup(cu_ctx *ctx, int node_id, int images, cu_layer *L, cbi_err *e);
void cu_cudnn_teardown(cu_layer *L);
/* cuDNN convolution of a whole frame (D->images images from a's input
 * onwards, image after image) with D's descriptors and W's weights, bias and
 * activation fused or in a second kernel; steps timed on `timer`. A fused
 * call cuDNN rejects turns D's fusion off for good. */
cbinfer_status cu_conv_cudnn(cu_ctx *ctx, const cbi_op_args *a, cu_layer *D, const cu_layer *W,
                             const cbi_op_args *timer, cbi_err *e);
/* A cuDNN status that rejects a configuration before anything ran
 * (NOT_SUPPORTED, BAD_PARAM and their cuDNN 9 refinements). */
int cu_cudnn_rejected(cudnnStatus_t rc);
cbinfer_status cu_resize_setup(cu_ctx *ctx, int node_id, cu_layer *L, cbi_err *e);

/* What the rows of the GEMM y = W * im2col(src) do at their output pixels. */
typedef enum cu_rows_update {
    CU_ROWS_OUTPUT = 0, /* out = f(y + bias) (CBinfer's update, launch_update) */
    CU_ROWS_SET_ACC,    /* a = y + bias, out = f(a): a dense frame of an accumulator */
    CU_ROWS_ADD_ACC     /* a += y, out = f(a): Skip-Conv's residual rows */
} cu_rows_update;

/* im2col + GEMM + update over n output pixels (idx, or all pixels from 0 when
 * idx is NULL), reading the input from src (conv_change.cu). The
 * accumulator a is acc, or f^-1(out) in place when acc is NULL. */
cbinfer_status cu_conv_rows(cu_ctx *ctx, cbi_op_args *a, const void *src, const int32_t *idx,
                            int64_t n, cu_rows_update upd, float *acc, cbi_err *e);

/* Change-index extraction (extract.cu): the indices of the nonzero bytes of
 * map[0..n_px) in ascending order into idx, their number into *n_out (host),
 * through thrust::copy_if on ctx->stream with ctx->d_sel_tmp as its scratch.
 * Returns once the stream has drained (one host wait, counted in host_syncs):
 * everything queued before the call is complete. Thrust's exceptions become
 * BACKEND_ERROR / OUT_OF_MEMORY naming `where`. */
cbinfer_status cu_extract_indices(cu_ctx *ctx, const uint8_t *map, int64_t n_px, int32_t *idx,
                                  int64_t *n_out, const char *where, cbi_err *e);

/* Bytes of ctx->d_sel_tmp that cu_extract_indices needs for up to n_px pixels
 * (with slack); layer_create grows the scratch to the maximum over layers. */
cbinfer_status cu_extract_scratch_bytes(int64_t n_px, size_t *bytes, const char *where,
                                        cbi_err *e);

/* Geometry of a Conv or ConvTranspose call (cbi_cuda_conv_geom). */
cbi_cuda_conv_geom cu_conv_geom(const cbi_op_args *a);

#endif /* CBI_CUDA_BACKEND_CUH */
