/*
 * The CPU backend: every op, dense and change-based, on float32 NHWC tensors
 * in host memory. Convolutions and GEMMs run on oneDNN (JIT kernels picked at
 * run time for the CPU at hand: AVX2, AVX-512, ...): the dense convolution is
 * a oneDNN convolution primitive, the change-based GEMM over the gathered
 * rows a oneDNN matmul primitive, both created once per layer. Threads come
 * from OpenMP, the runtime oneDNN is built on here (Debian's libdnnl).
 * Private to host/cpu/.
 */
#ifndef CBI_CPU_BACKEND_H
#define CBI_CPU_BACKEND_H

#include <stdint.h>

#include <oneapi/dnnl/dnnl.h>

#include "backend.h"

/* Rows (changed output pixels) of one gather + GEMM + scatter chunk of the
 * change-based convolution: one chunk is one thread's unit of work, and its
 * im2col rows stay in that core's cache until the GEMM reads them. */
#define CPU_CHUNK_ROWS 128
/* The last, partial chunk of a layer runs in pieces of this many rows (a
 * second matmul primitive), so that it wastes at most this many rows of
 * arithmetic rather than a whole chunk: on a small feature map one chunk can
 * exceed the layer's dense work. */
#define CPU_PIECE_ROWS 16

/* Change-based convolutions with at most this many output channels take
 * their dot products straight from the state (host/cpu/cpu_conv.c). */
#define CPU_THIN_COUT 4

/* One thread's scratch: its chunk of im2col rows and GEMM results, its oneDNN
 * stream and the scratchpad of the primitives it runs. */
typedef struct cpu_slot {
    float *col;            /* CPU_CHUNK_ROWS x max_k */
    float *gemm;           /* CPU_CHUNK_ROWS x max_cout */
    dnnl_stream_t stream;
    void *scratchpad;      /* scratchpad_bytes */
    size_t scratchpad_bytes; /* the most any primitive this slot runs asked for */
    dnnl_memory_t scratchpad_mem; /* NULL until a primitive needs one */
} cpu_slot;

/* The backend context: the config, the oneDNN engine and one slot per thread. */
typedef struct cpu_ctx {
    cbi_backend_config cfg;
    dnnl_engine_t engine;
    int n_slots;           /* threads the context runs: CBINFER_PARAM_THREADS, or
                              the cores available when it is 0 */
    cpu_slot *slots;
    int64_t *counts;       /* n_slots: per-thread counts of a parallel detection */
    /* Scratch of ConvTranspose: input rows of chunk_px x (kh * kw * cout). */
    float *gemm;
    size_t chunk_px;
    size_t max_k;
    size_t max_cout;
} cpu_ctx;

/* oneDNN state of one convolution (any mode). */
typedef struct cpu_conv_prims {
    dnnl_primitive_t dense;     /* convolution, NHWC in and out, bias and eltwise fused */
    dnnl_memory_t dense_src, dense_dst, dense_w, dense_b; /* handles set at each call */
    int dense_act_fused;        /* 0: the activation runs as a pass after the primitive */
    /* Change-based, Cout > CPU_THIN_COUT: matmuls of [0] CPU_CHUNK_ROWS and
     * [1] CPU_PIECE_ROWS rows x K by K x Cout, on one thread. */
    dnnl_primitive_t mm[2];
    dnnl_memory_t mm_w[2];      /* the weights in each one's own layout */
    dnnl_memory_t *mm_x[2], *mm_y[2]; /* per slot: rows of its col and gemm scratch */
    int n_mm;                   /* slots in mm_x and mm_y */
} cpu_conv_prims;

/* Per-node state (allocated by layer_create for Conv and pools; NULL for
 * other ops). */
typedef struct cpu_layer {
    float *in_state;   /* Conv, change-based: input state (closed loop) or previous input */
    int32_t *in_idx;   /* Conv: changed input pixels, Eq. 3 [in.h * in.w] */
    uint8_t *out_map;  /* Conv and pools: output pixels to recompute, Eq. 4 [out.h * out.w];
                          all zero between calls (cleared where it was set) */
    int32_t *idx;      /* Conv and pools: extracted indices of out_map [out.h * out.w] */
    cpu_conv_prims conv; /* Conv only */
    float *thin_w;     /* Conv with Cout <= CPU_THIN_COUT, change-based: the weights
                          [CPU_THIN_COUT][kh][kw][Cin], rows past Cout zero */
} cpu_layer;

/* Threads the context's kernels use: one per slot. */
static inline int cpu_threads(const cpu_ctx *ctx)
{
    return ctx && ctx->n_slots > 0 ? ctx->n_slots : 1;
}

/* Elapsed time of one step into stats (only when args->collect_stats). */
static inline void cpu_step_time(const cbi_op_args *a, cbinfer_step step, double t0_ms,
                                 double t1_ms)
{
    if (a->collect_stats && a->stats) a->stats->step_ms[step] += t1_ms - t0_ms;
}

/* Activation of one value of channel ch (fused update and standalone op). */
static inline float cpu_activate(const cbi_activation *act, int ch, float v)
{
    switch (act->kind) {
    case CBI_ACT_RELU: return v > 0.f ? v : 0.f;
    case CBI_ACT_LEAKY_RELU: return v > 0.f ? v : v * act->alpha;
    case CBI_ACT_PRELU: return v > 0.f ? v : v * act->slope[act->n_slope == 1 ? 0 : ch];
    case CBI_ACT_CLIP: return v < act->lo ? act->lo : (v > act->hi ? act->hi : v);
    case CBI_ACT_NONE: default: return v;
    }
}

/* oneDNN glue, host/cpu/cpu_dnnl.c. Every failure becomes a status and a
 * message naming the node. */
cbinfer_status cpu_dnnl_status(dnnl_status_t s, cbi_err *e, const char *node, const char *what);
cbinfer_status cpu_conv_prims_create(cpu_ctx *ctx, const cbi_node *n, const cbi_node_plan *p,
                                     int change_based, cpu_conv_prims *c, cbi_err *e);
void cpu_conv_prims_destroy(cpu_conv_prims *c);
/* Runs prim with args on a slot's stream and scratchpad, and waits for it.
 * args must have room for one more entry (the scratchpad). The primitive runs
 * with the thread count it was created with (cpu_conv_prims_create); inside a
 * parallel region, on the calling thread. */
cbinfer_status cpu_dnnl_execute(cpu_ctx *ctx, int slot, dnnl_primitive_t prim, int n_args,
                                dnnl_exec_arg_t *args, cbi_err *e, const char *node);
/* Row-major C[m][n] = A[m][k] * B (k x n, or n x k when trans_b), via oneDNN's
 * sgemm on `threads` OpenMP threads. */
cbinfer_status cpu_sgemm(int threads, int m, int n, int k, const float *a, int lda, const float *b,
                         int ldb, int trans_b, float *c, int ldc, cbi_err *e, const char *node);

/* Kernels, host/cpu/cpu_conv.c. */
cbinfer_status cpu_conv_dense(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cpu_conv_change(void *bctx, cbi_op_args *a, cbi_err *e);

/* Kernels, host/cpu/cpu_ops.c. */
cbinfer_status cpu_conv_transpose(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cpu_activation(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cpu_pool_dense(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cpu_pool_change(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cpu_add(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cpu_concat(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cpu_pad(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cpu_resize(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cpu_depth_to_space(void *bctx, cbi_op_args *a, cbi_err *e);

#endif /* CBI_CPU_BACKEND_H */
