/*
 * The CPU backend: the plain, deterministic reference for every op, dense and
 * change-based. Tensors are float32 NHWC in host memory; GEMMs go to OpenBLAS.
 * Private to host/cpu/.
 */
#ifndef CBI_CPU_BACKEND_H
#define CBI_CPU_BACKEND_H

#include <stdint.h>

#include "backend.h"

/* The backend context: the config plus shared scratch memory. */
typedef struct cpu_ctx {
    cbi_backend_config cfg;
    float *col;          /* im2col rows, chunk_px x max_k */
    float *gemm;         /* GEMM result rows, chunk_px x max_cout (Conv); ConvTranspose uses
                            chunk_px x (kh * kw * cout) input rows at a time */
    size_t chunk_px;     /* output pixels per im2col/GEMM chunk */
    size_t max_k;
    size_t max_cout;
} cpu_ctx;

/* Per-node state (allocated by layer_create for Conv and pools; NULL for
 * other ops). */
typedef struct cpu_layer {
    float *in_state;   /* Conv, change-based: input state (closed loop) or previous input */
    int32_t *in_idx;   /* Conv: changed input pixels, Eq. 3 [in.h * in.w] */
    uint8_t *out_map;  /* Conv and pools: output pixels to recompute, Eq. 4 [out.h * out.w];
                          all zero between calls (cleared where it was set) */
    int32_t *idx;      /* Conv and pools: extracted indices of out_map [out.h * out.w] */
} cpu_layer;

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
