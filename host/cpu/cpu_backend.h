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

#include <math.h>
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

/* Depthwise convolutions with at most this many taps (kh * kw) take their
 * change-based rows from a per-row table of tap offsets (cpu_group_rows). */
#define CPU_DW_TAPS 64
/* Outputs of one row that a depthwise run computes together (cpu_group_rows). */
#define CPU_DW_RUN 4

/* Below this many pixels a step runs on one thread: a parallel region costs
 * more than it saves. */
#define CPU_PARALLEL_MIN_PX 4096

/* A change-based conv that fell back to dense predicts its fallback for
 * CPU_PREDICT_FRAMES frames (cpu_change_rows), then detects again; each time
 * it falls back again on that frame, the next prediction is twice as long,
 * up to CPU_PREDICT_MAX_FRAMES. */
#define CPU_PREDICT_FRAMES 8
#define CPU_PREDICT_MAX_FRAMES 128

/* One thread's scratch: its chunk of im2col rows and GEMM results, its oneDNN
 * stream and the scratchpad of the primitives it runs. */
typedef struct cpu_slot {
    float *col;            /* CPU_CHUNK_ROWS x max_k */
    float *gemm;           /* CPU_CHUNK_ROWS x max_cout */
    float *prod;           /* change-based: CPU_CHUNK_ROWS x max_tap_cout (delta products) */
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
    size_t max_tap_cout;   /* kh * kw * Cout of the widest conv (delta scatter rows) */
} cpu_ctx;

/* A dense convolution primitive over `images` NHWC images, bias and eltwise
 * fused. */
typedef struct cpu_dense_prim {
    dnnl_primitive_t prim;
    dnnl_memory_t src, dst, w, b; /* src and dst: handles set at each call */
    int act_fused;              /* 0: the activation runs as a pass after the primitive */
    int images;
} cpu_dense_prim;

/* oneDNN state of one convolution (any mode). */
typedef struct cpu_conv_prims {
    cpu_dense_prim dense;       /* one image */
    cpu_dense_prim dense_n;     /* a batch's layer: all of its images at once (host/batch.c) */
    /* Change-based: matmuls of [0] CPU_CHUNK_ROWS and [1] CPU_PIECE_ROWS
     * rows, on one thread. Recompute and Skip-Conv (Cout > CPU_THIN_COUT):
     * rows x K by K x Cout into the slot's gemm scratch. Delta scatter:
     * rows x Cin by Cin x (kh*kw*Cout) into its prod scratch. */
    dnnl_primitive_t mm[2];
    dnnl_memory_t mm_w[2];      /* the weights in each one's own layout */
    dnnl_memory_t *mm_x[2], *mm_y[2]; /* per slot: rows of its col and gemm scratch */
    int n_mm;                   /* slots in mm_x and mm_y */
    int y_cols;                 /* columns of the matmuls' output rows */
} cpu_conv_prims;

/* Per-node state (allocated by layer_create for Conv, Resize, and in
 * change-based streams pools and the pixel-wise ops; NULL for other ops). */
typedef struct cpu_layer {
    float *in_state;   /* Conv, change-based: input state (closed loop) or previous input */
    int32_t *in_idx;   /* Conv: changed input pixels, Eq. 3 [in.h * in.w] */
    uint8_t *out_map;  /* Conv, pools, Resize: output pixels to recompute, Eq. 4
                          [out.h * out.w]; all zero between calls (cleared where set) */
    int32_t *idx;      /* the same: extracted indices of out_map; pixel-wise ops with
                          several inputs: their merged list [out.h * out.w] */
    cpu_conv_prims conv; /* Conv only */
    int predicted;     /* change-based Conv: frames left in which the break-even
                          fallback is predicted (cpu_change_rows); 0: detect */
    int predict_len;   /* frames of the last prediction */
    int probing;       /* 1 on the frame that detects after a prediction ran out */
    int state_fresh;   /* the state is the last frame's input (the first predicted
                          frame, after the fallback set it) */
    int exact;         /* Conv: the output is the convolution of the last input
                          (no change under τ left out since the last dense frame) */
    int state_stale;   /* Conv: in_state was not kept (the layer followed its
                          producer's list at threshold 0, cpu_change_rows) */
    int64_t tested_px; /* Conv: input pixels change detection tested this frame */
    int input_all_changed; /* Conv: no change list can reach its input (the
                          network's input, or no Conv before it through pools and
                          pixel-wise ops only): it never predicts a fallback */
    float *thin_w;     /* Conv with Cout <= CPU_THIN_COUT, change-based: the weights
                          [CPU_THIN_COUT][kh][kw][Cin], rows past Cout zero */
    float *group_w;    /* grouped Conv, change-based: the weights [kh][kw][Cin/group][Cout] */
    /* Delta policies (host/cpu/cpu_delta.c). */
    cbi_policy policy; /* the policy the state was made for */
    float *acc;        /* fp32 pre-activation accumulator [out px][Cout]; NULL when
                          the activation is invertible (then acc = f^-1(out)) */
    float *dimg;       /* Skip-Conv: residual image [in px][Cin], zero between calls */
    float *s1map;      /* Skip-Conv: per input pixel sum_c |r|, zero between calls */
    uint8_t *bmap;     /* Skip-Conv blocks: one flag per b x b output block */
    float w_l1;        /* Skip-Conv Output-Norm: ||W||_1 over all four dims */
    /* Resize (any mode): the taps of each output row and column, and for
     * each input row and column the first and last output coordinate that
     * reads it ([2 * in.h], [2 * in.w]; first > last when none does). */
    cbi_resize_tap *tap_y, *tap_x;
    int32_t *reach_y, *reach_x;
} cpu_layer;

/* The elementwise loops of the kernels get AVX2 and AVX-512 builds next to
 * the baseline one, picked when the library loads (the CPU need not be known
 * at build time). Sanitizer builds keep the baseline one only, so that they
 * check a single code path. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define CPU_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CPU_SIMD_CLONES
#endif

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

/* The output coordinates o along an axis whose window (start o*s - pad, taps
 * at start + k*d for k < kern) can hold input coordinate i >= 0 (pad >= 0):
 * [*lo, *hi], clipped to [0, n_out) (empty when *lo > *hi). With d = 1 every
 * one of them holds it (Eq. 4's support is a box, any stride); with d > 1
 * some fall between taps. Shared by convolutions and pools. */
static inline void cpu_axis_reach(int i, int pad, int kern, int s, int d, int n_out, int *lo,
                                  int *hi)
{
    const int num = i + pad - (kern - 1) * d; /* o*s >= num */
    *lo = num <= 0 ? 0 : (num + s - 1) / s;
    *hi = (i + pad) / s; /* o*s <= i + pad */
    if (*hi > n_out - 1) *hi = n_out - 1;
}

/* Activation of one value of channel ch (fused update and standalone op). */
static inline float cpu_activate(const cbi_activation *act, int ch, float v)
{
    switch (act->kind) {
    case CBI_ACT_RELU: return v > 0.f ? v : 0.f;
    case CBI_ACT_LEAKY_RELU: return v > 0.f ? v : v * act->alpha;
    case CBI_ACT_PRELU: return v > 0.f ? v : v * act->slope[act->n_slope == 1 ? 0 : ch];
    case CBI_ACT_CLIP: return v < act->lo ? act->lo : (v > act->hi ? act->hi : v);
    case CBI_ACT_SIGMOID: return 1.f / (1.f + expf(-v));
    case CBI_ACT_NONE: default: return v;
    }
}

/* oneDNN glue, host/cpu/cpu_dnnl.c. Every failure becomes a status and a
 * message naming the node. */
cbinfer_status cpu_dnnl_status(dnnl_status_t s, cbi_err *e, const char *node, const char *what);
/* pol: the layer's change policy, NULL in a dense stream. images > 1: also
 * the dense convolution of that many images (a batch's layer). */
cbinfer_status cpu_conv_prims_create(cpu_ctx *ctx, const cbi_node *n, const cbi_node_plan *p,
                                     const cbi_policy *pol, int images, cpu_conv_prims *c,
                                     cbi_err *e);
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

/* Geometry of one convolution for one frame size. */
typedef struct cpu_conv_geom {
    int cin, h, w;      /* input */
    int cout, ho, wo;   /* output */
    int kh, kw, sh, sw, dh, dw, pad_t, pad_l;
    int group;          /* channel groups (1: a plain convolution) */
    int k;              /* kh * kw * cin / group: one output's MACs and weights */
} cpu_conv_geom;
cpu_conv_geom cpu_conv_geom_of(const cbi_op_args *a);

/* Steps of cpu_conv.c the delta policies share (cpu_delta.c). */
/* The dense convolution of src into dst (the primitive's fused bias and,
 * where fused, activation), timed as the DENSE step; counts dense MACs. */
cbinfer_status cpu_conv_dense_from(cpu_ctx *ctx, cpu_layer *L, cbi_op_args *a, const float *src,
                                   float *dst, cbi_err *e);
/* Eq. 4 and extraction: the output pixels whose window holds one of the n_in
 * ascending input pixels `changed`, ascending into idx; returns the count. */
int64_t cpu_mark_and_extract(cpu_ctx *ctx, int threads, const cpu_conv_geom *g,
                             const int32_t *changed, int64_t n_in, uint8_t *map, int32_t *idx,
                             const cbi_op_args *a);
/* Runs the dense primitive d (d->images images) on src into dst, and the
 * activation pass over px pixels an image where it is not fused and
 * `activate` (dst is the output, not an accumulator). */
cbinfer_status cpu_dense_run(cpu_ctx *ctx, const cpu_dense_prim *d, const cbi_node *node,
                             const float *src, float *dst, int activate, int64_t px, cbi_err *e);
/* Partial im2col of m output pixels idx from `in` into col (K floats a row). */
void cpu_gather_rows(const cpu_conv_geom *g, const float *in, const int32_t *idx, int m,
                     float *col);
/* Thin layers: Cout dot products per output pixel straight from `in`. */
/* Grouped convolution rows (cpu_conv.c): y[r][Cout] at output pixels idx
 * straight from `in`, over cpu_layer.group_w; no im2col, no GEMM. */
void cpu_group_rows(const cpu_conv_geom *g, const float *in, const float *group_w,
                    const int32_t *idx, int m, float *y);
void cpu_thin_rows(const cpu_conv_geom *g, const float *in, const float *thin_w,
                   const int32_t *idx, int m, float *y);
/* The layer's matmul on m rows of a slot's col scratch (x_cols floats a row)
 * into y (c->y_cols floats a row): one full chunk or pieces. */
cbinfer_status cpu_chunk_gemm(cpu_ctx *ctx, int slot, const cpu_conv_prims *c, int m, int x_cols,
                              float *y, cbi_err *e, const char *node);
/* Rows per chunk for n rows on `threads` threads: CPU_CHUNK_ROWS, or fewer
 * (whole pieces) so that every thread still gets work. */
int64_t cpu_chunk_rows(int64_t n, int threads);
/* Adds the im2col, GEMM and update times summed over `team` threads (their
 * mean) to the layer's steps, when statistics are on. */
void cpu_add_step_times(const cbi_op_args *a, double t_col, double t_gemm, double t_upd, int team);
/* What becomes of m GEMM rows y (Cout each) of the output pixels idx. */
typedef void (*cpu_rows_update)(const cbi_node *node, const float *y, const int32_t *idx, int m,
                                const cpu_layer *L, float *out);
/* CBinfer's fused update: bias, activation and the scatter of the rows. */
void cpu_recompute_update(const cbi_node *node, const float *y, const int32_t *idx, int m,
                          const cpu_layer *L, float *out);
/* Rows of one source: n output pixels idx, gathered from src and updated
 * into out; L is the layer whose state the update may use (the stream's). */
typedef struct cpu_row_src {
    const float *src;
    const int32_t *idx;
    int64_t n;
    float *out;
    const cpu_layer *L;
} cpu_row_src;
/* Output-stationary rows of n_src sources as one list, one chunk per
 * thread: a chunk may span sources (a batch's streams), its im2col rows
 * gathered from each, one GEMM with W's matmul (thin and grouped layers:
 * direct products with W's weights), each run of rows updated into its
 * source. times: the im2col, GEMM and update ms, the mean over the threads
 * (when timed). */
cbinfer_status cpu_rows_run(cpu_ctx *ctx, const cpu_layer *W, const cbi_node *node,
                            const cpu_conv_geom *g, const cpu_row_src *srcs, int n_src,
                            cpu_rows_update update, int timed, double times[3], cbi_err *e);
/* Output-stationary rows, one chunk per thread: partial im2col of the n
 * output pixels idx from src, the GEMM with the layer's W^T matmul (thin
 * layers: direct dot products), then update. Step times are the mean over
 * the threads. */
cbinfer_status cpu_rows_gemm(cpu_ctx *ctx, const cpu_layer *L, cbi_op_args *a,
                             const cpu_conv_geom *g, const float *src, const int32_t *idx,
                             int64_t n, cpu_rows_update update, cbi_err *e);
/* Joins the per-thread parts of a parallel step (part t wrote counts[t]
 * entries at list + t * stride), in order; returns the total. */
int64_t cpu_join_parts(int32_t *list, const int64_t *counts, int parts, int64_t stride);

/* Change detection over the pixels the producer rewrote (chg), one block of
 * them per thread, joined in order into `changed`: Eq. 3 against the state
 * (closed loop, or feed-forward), or with gate != NULL that layer's delta
 * policy gate (cpu_gate_block). Returns the count. */
int64_t cpu_detect_changes(cpu_ctx *ctx, int threads, const cpu_conv_geom *g, const float *x,
                           float *state, const cbi_changes *chg, float tau, int feed_forward,
                           const cpu_layer *gate, int32_t *changed);
/* The delta gate of entries [begin, end) of list (all pixels when NULL),
 * without sending anything: the pixels that will transmit go to changed[]
 * (ascending); returns their count (cpu_delta.c). */
int64_t cpu_gate_block(const cpu_layer *L, const float *x, float *ref, int cin,
                       const int32_t *list, int64_t begin, int64_t end, float theta,
                       int32_t *changed);

/* The recompute steps of cpu_conv_change (the batch runs them per stream
 * around one GEMM, cpu_batch.c). cpu_change_rows: Eq. 3 and 4 against L's
 * state, giving the *n output pixels *idx to recompute from *src (the
 * state; the input where the layer follows its producer's list at
 * threshold 0); or *dense = 1 when the layer runs dense this frame (the
 * first, or past its break-even share), the state then holding the input
 * and out_chg all, or (a predicted fallback, a followed list) out_chg the
 * outputs its producer's list reaches and the state left as it was.
 * cpu_change_done: after the rows ran, the change list and stats. */
cbinfer_status cpu_change_rows(cpu_ctx *ctx, cpu_layer *L, cbi_op_args *a, const int32_t **idx,
                               int64_t *n, int *dense, const float **src, cbi_err *e);
void cpu_change_done(cbi_op_args *a, const int32_t *idx, int64_t n);

/* The backend's layer_destroy (cpu_backend.c), for any layer of the context. */
void cpu_layer_destroy(void *bctx, void *layer);
/* Batches (cpu_batch.c): the backend's batch_layer_create and conv_batch. */
cbinfer_status cpu_batch_layer_create(void *bctx, int node_id, int images, void **layer,
                                      cbi_err *e);
cbinfer_status cpu_conv_batch(void *bctx, void *blayer, int n, cbi_op_args *const *args,
                              cbi_err *e);
/* The weights of L's change-based rows for node n under policy pol: the
 * thin layers' padded rows or the grouped layout (cpu_backend.c); -1 when
 * an allocation fails. */
int cpu_row_weights(const cbi_node *n, const cbi_node_plan *p, const cbi_policy *pol,
                    cpu_layer *L);

/* Kernel of the delta policies, host/cpu/cpu_delta.c (called by
 * cpu_conv_change for EVNET, SKIPCONV and SIGMADELTA layers). */
cbinfer_status cpu_conv_delta(cpu_ctx *ctx, cbi_op_args *a, cbi_err *e);

/* Kernels, host/cpu/cpu_ops.c. */
cbinfer_status cpu_conv_transpose(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cpu_pool_dense(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cpu_pool_change(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cpu_pad(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cpu_depth_to_space(void *bctx, cbi_op_args *a, cbi_err *e);

/* Pixel-wise kernels, host/cpu/cpu_ops_pixel.c: dense, or over their inputs'
 * change lists when the layer has out_map and idx (change-based streams). */
cbinfer_status cpu_activation(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cpu_add(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cpu_concat(void *bctx, cbi_op_args *a, cbi_err *e);
cbinfer_status cpu_resize(void *bctx, cbi_op_args *a, cbi_err *e);
/* The marked pixels of rows [row_lo, row_hi] of a w-wide map, ascending,
 * into idx (y * w + x); clears them, so the map is all zero again. Skips
 * eight unmarked pixels at a time. Returns the count. */
int64_t cpu_map_extract(uint8_t *map, int w, int row_lo, int row_hi, int32_t *idx);
/* Whether n is one of them. */
int cpu_op_propagates(const cbi_node *n);
/* Fills L's Resize tables for node n; -1 when an allocation fails. */
int cpu_resize_tables(const cbi_node *n, const cbi_node_plan *p, cpu_layer *L);

#endif /* CBI_CPU_BACKEND_H */
