/*
 * The backend interface: a table of function pointers plus an opaque context
 * (ggml's shape, without its aborts). The host owns the layer loop
 * (host/stream.c); a backend never walks the network, it runs one node at a
 * time on tensors that live in its own memory.
 *
 * Plain C, so cuda/ can implement it from .cu files under extern "C".
 */
#ifndef CBI_BACKEND_H
#define CBI_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "cbinfer.h"
#include "common.h"
#include "net.h"
#include "policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An activation tensor in backend memory, NHWC, N = 1. Element type is float
 * on the CPU; on CUDA it follows the stream's precision. */
typedef struct cbi_tensor {
    void *data;
    cbi_shape shape;
} cbi_tensor;

/* Which pixels of a tensor were (re)written by the op that produced it during
 * the current frame. A consumer may restrict its work to them: a pixel outside
 * the list holds exactly the value it held after the previous frame. */
typedef struct cbi_changes {
    int all;        /* 1: any pixel may have changed (dense op, first frame) */
    int32_t *idx;   /* backend memory: pixel indices y * w + x, ascending */
    int64_t count;  /* number of indices (host-side; valid when all == 0) */
} cbi_changes;

/* What a backend gets to size its shared scratch memory and per-layer state. */
typedef struct cbi_backend_config {
    const cbi_net *net;
    const cbi_shape *shapes;     /* per value */
    const cbi_node_plan *plans;  /* per node */
    cbinfer_mode mode;
    cbinfer_precision precision;
    /* per node: the change policy of each Conv (the stream's; it may change
     * between layer_destroy and layer_create of a node, never while one
     * exists). NULL for a dense stream. */
    const cbi_policy *policies;
    /* cbinfer_stream_options: the device ordinal and the caller's device
     * stream (NULL: the context makes its own). A CPU context gets 0 and
     * NULL. */
    int device;
    void *user_stream;
} cbi_backend_config;

/* The change policy of node i under cfg: its entry of cfg->policies, or
 * that of cfg->mode for a config without a table (a memory estimate, an op
 * test). */
static inline cbi_policy cbi_config_policy(const cbi_backend_config *cfg, int i)
{
    return cfg->policies ? cfg->policies[i] : cbi_policy_of_mode(cfg->mode);
}

/* One call of one op family on one node. */
typedef struct cbi_op_args {
    const cbi_node *node;
    const cbi_node_plan *plan;
    void *layer;                          /* from layer_create; may be NULL */
    int n_in;
    const cbi_tensor *in[CBI_MAX_INPUTS];
    const cbi_changes *in_chg[CBI_MAX_INPUTS];
    cbi_tensor *out;
    cbi_changes *out_chg;  /* change-based ops fill it; the host sets all=1 otherwise */
    int first;             /* first frame since creation/reset: run dense, initialise state */
    float threshold;       /* effective τ (threshold x scale) */
    int feed_forward;      /* CBINFER_MODE_CBINFER_FF */
    int reuse_indices;     /* conv: reuse in_chg[0] instead of detecting (1x1, stride 1) */
    int collect_stats;     /* time every step into stats->step_ms */
    int dense_fallback;    /* change-based conv: 1 applies break_even; 0 (what a
                            * zero-initialised cbi_op_args gives) never falls back */
    float break_even;      /* when changed output px / total px exceeds it, compute the
                            * whole output dense, set the state to the input everywhere
                            * and out_chg->all = 1 (a share in [0, 1]); the CPU's
                            * predicted fallbacks hand on a list instead (cbinfer.h) */
    cbinfer_layer_stats *stats; /* op fills changed_px, changed_in_px, macs, step_ms; the
                                 * host presets ran_dense, a conv that falls back sets it */
    /* Change-based conv: the layer's policy (the one its state was created
     * for), the stream's frame counter of this frame (0 on the first), and
     * 1 when a closed-memory accumulator is to be recomputed from its
     * reference this frame (CBINFER_PARAM_REFRESH_PERIOD). */
    const cbi_policy *policy;
    int64_t frame_index;
    int refresh;
    int deterministic; /* CBINFER_PARAM_DETERMINISTIC: the delta scatter in a fixed order */
} cbi_op_args;

/* The most streams one batch steps together (cbinfer_batch_create). */
#define CBI_MAX_BATCH 256

/* Op families; every backend implements all of them. */
typedef enum cbi_kernel {
    CBI_K_CONV_DENSE = 0,  /* im2col + GEMM (CPU) / cuDNN (CUDA), fused bias + act */
    CBI_K_CONV_CHANGE,     /* paper Sec. III-A..C: detect, dilate, extract, im2col, GEMM, update */
    CBI_K_CONV_TRANSPOSE,
    CBI_K_ACTIVATION,
    CBI_K_POOL_DENSE,      /* MaxPool / AveragePool */
    CBI_K_POOL_CHANGE,     /* paper Sec. III-E: reuse in_chg[0] */
    CBI_K_ADD,
    CBI_K_CONCAT,
    CBI_K_PAD,
    CBI_K_RESIZE,
    CBI_K_DEPTH_TO_SPACE,
    CBI_K_COUNT
} cbi_kernel;

typedef cbinfer_status (*cbi_kernel_fn)(void *bctx, cbi_op_args *args, cbi_err *err);

typedef struct cbi_backend {
    const char *name;
    /* Creates the backend context (streams, handles, shared scratch sized for
     * cfg). The config pointers stay valid for the context's lifetime. */
    cbinfer_status (*create)(const cbi_backend_config *cfg, void **bctx, cbi_err *err);
    void (*destroy)(void *bctx); /* accepts NULL */

    /* Backend memory. alloc returns zeroed memory. */
    cbinfer_status (*alloc)(void *bctx, size_t bytes, void **ptr, cbi_err *err);
    void (*release)(void *bctx, void *ptr); /* accepts NULL */
    /* Host float32 NHWC <-> backend tensor (converting to the storage type). */
    cbinfer_status (*upload)(void *bctx, cbi_tensor *dst, const float *src, cbi_err *err);
    cbinfer_status (*download)(void *bctx, float *dst, const cbi_tensor *src, cbi_err *err);
    /* Waits for all queued work of the context. */
    cbinfer_status (*synchronize)(void *bctx, cbi_err *err);

    /* Per-node state (weights in backend layout, input state, change map,
     * index list, descriptors). *layer may be set to NULL for stateless ops. */
    cbinfer_status (*layer_create)(void *bctx, int node_id, void **layer, cbi_err *err);
    void (*layer_destroy)(void *bctx, void *layer); /* accepts NULL */

    cbi_kernel_fn kernel[CBI_K_COUNT];

    /* Optional (NULL: the backend has no thread setting). The most threads
     * the context's kernels may use, 0 for every core. Layers created before
     * the call keep the thread count they were created with: the caller
     * re-creates them. */
    cbinfer_status (*set_threads)(void *bctx, int threads, cbi_err *err);

    /* The share of a stream's memory that only the backend knows: the
     * scratch create() allocates for cfg when its kernels run `threads`
     * threads (0: every core), and weight copies beyond the one in the
     * backend's layout. host/stream.c adds the tensors, that weight copy and
     * the per-layer state (cbinfer_stream_memory_bytes). */
    size_t (*extra_bytes)(const cbi_backend_config *cfg, int threads);

    /* Optional (NULL: never waits for a device). How many times the context
     * has waited for its device so far (cbinfer_frame_stats.host_syncs). */
    int64_t (*host_syncs)(const void *bctx);

    /* Optional (NULL: no batched path; host/batch.c refuses the backend).
     * A batch's context is created like a stream's, from the config of its
     * first stream with mode DENSE or CBINFER (no delta products) and no
     * policy table. Its Conv layers hold no state, only what one and
     * `images` images need (CPU: primitives and the recompute GEMM; CUDA:
     * cuDNN descriptors for the N images; the weights are the streams'). */
    cbinfer_status (*batch_layer_create)(void *bctx, int node_id, int images, void **layer,
                                         cbi_err *err);
    /* One Conv node for n streams (batch.c: streams under a delta policy
     * are not among them). args[j] is stream j's, its layer that stream's
     * own (the state); blayer the batch's. Streams on their first frame, or
     * past their break-even share, run dense: all n of them as one
     * convolution of `images` images when n equals it and their tensors are
     * image after image; otherwise each alone. The others run one GEMM over
     * the rows of all of them. Per-stream results, stats and change lists
     * are what kernel[CBI_K_CONV_CHANGE] (kernel[CBI_K_CONV_DENSE] in a
     * dense stream) would give each; step times are shared evenly. */
    cbinfer_status (*conv_batch)(void *bctx, void *blayer, int n, cbi_op_args *const *args,
                                 cbi_err *err);

    /* Optional (NULL: the backend has no devices). bind makes the context's
     * device the calling thread's current one for a call on the stream and
     * returns what unbind needs to restore the caller's. */
    int (*bind)(void *bctx);
    void (*unbind)(void *bctx, int saved);
    /* Optional (NULL: device memory is host memory, and the host paths
     * serve cbinfer_stream_push_rgb8_device / _read_output_device).
     * upload_rgb8: an RGB8 frame in device memory (rows of stride bytes)
     * into the NHWC input tensor, value = byte * scale + offset, queued on
     * the context's stream. download_nchw: a tensor into float32 NCHW device
     * memory at dst, queued on the caller's stream, or, on a stream of the
     * context's own, waited for before it returns. The host checks their
     * pointers first (check_device_ptr). */
    cbinfer_status (*upload_rgb8)(void *bctx, cbi_tensor *dst, const uint8_t *rgb, int width,
                                  int height, size_t stride, float scale, float offset,
                                  cbi_err *err);
    cbinfer_status (*download_nchw)(void *bctx, float *dst, const cbi_tensor *src, cbi_err *err);
    /* With upload_rgb8: BAD_PARAM (the message starting with `what`) unless
     * p is device memory of the context's device, aligned to `align` bytes. */
    cbinfer_status (*check_device_ptr)(void *bctx, const void *p, size_t align, const char *what,
                                       cbi_err *err);
    /* Optional (NULL: no device queue). The context's device stream, for
     * contexts that must queue on it: a batch's members are created on the
     * batch context's (cbinfer_stream_options.cuda_stream), so that their
     * own kernels and conv_batch's are ordered. */
    void *(*device_stream)(void *bctx);
} cbi_backend;

/* The CPU backend (always present), and a line on its kernels. */
const cbi_backend *cbi_cpu_backend(void);
void cbi_cpu_describe(char *buf, size_t len);

#ifdef CBINFER_WITH_CUDA
/* The CUDA backend (cuda/, only when built with CUDA). Its create() fails with
 * BACKEND_UNAVAILABLE when no device is present. */
const cbi_backend *cbi_cuda_backend(void);
/* Number of usable CUDA devices (0 when the driver or a device is missing). */
int cbi_cuda_device_count(void);
#endif

#ifdef __cplusplus
}
#endif

#endif /* CBI_BACKEND_H */
