/*
 * Change policies of a convolution layer (../shared/docs/VARIANTS.md §5):
 * CBinfer's recompute (closed loop or feed-forward) and the delta schemes of
 * Event Neural Networks, Skip-Convolutions and Sigma-Delta. One per conv
 * node; the layer's threshold table value θ is τ, h, ε or the step s by kind.
 * Private to the library.
 */
#ifndef CBI_POLICY_H
#define CBI_POLICY_H

#include <stddef.h>

#include "cbinfer.h"
#include "common.h"
#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cbi_policy_kind {
    CBI_POLICY_CBINFER = 0,   /* recompute the dilated outputs from the closed-loop state */
    CBI_POLICY_CBINFER_FF,    /* the same from the previous input (feed-forward) */
    CBI_POLICY_EVNET,         /* delta neurons: transmit d = x - v where |d| > h */
    CBI_POLICY_SKIPCONV,      /* residual frames, norm gate per output pixel, open memory */
    CBI_POLICY_SIGMADELTA     /* quantized deltas on the grid s*Z */
} cbi_policy_kind;

/* How a closed-memory delta policy computes (VARIANTS.md §5.2: for closed
 * memory the choice changes the cost, not the result). */
typedef enum cbi_policy_compute {
    CBI_COMPUTE_AUTO = 0,  /* by layer: see cbi_policy_uses_scatter */
    CBI_COMPUTE_SCATTER,   /* deltas x weights, scatter-added into the accumulator */
    CBI_COMPUTE_RECOMPUTE  /* CBinfer's recompute of the reached outputs from the reference */
} cbi_policy_compute;

/* AUTO scatters the deltas of convolutions with at least this many input
 * channels and recomputes the others. The delta GEMM's rows are Cin long
 * and every product is scatter-added, so with few input channels there is
 * little arithmetic per added value: on vgg7-noise1 (README) the scatter
 * wins from Cin = 32 on and loses at the RGB input (Cin = 3). */
#define CBI_SCATTER_MIN_CIN 16

typedef struct cbi_policy {
    cbi_policy_kind kind;
    /* EVNET: channels that fire together. 1: element (Eq. 6, singular);
     * 0: pixel (all channels when max |d| > h, CBinfer's Eq. 3); G > 1:
     * chunks of G channels that fire when the mean of |d| exceeds h. */
    int chunk;
    int open_memory;  /* EVNET ",nomem": the reference follows the input (Fig. 8 ablation) */
    int output_norm;  /* SKIPCONV: Output-Norm gate (Eq. 7) rather than Input-Norm (Eq. 5) */
    int block;        /* SKIPCONV: b x b output blocks (>= 1) */
    int reset;        /* SKIPCONV: dense re-flush every `reset` frames; 0 never */
    cbi_policy_compute compute; /* EVNET (closed memory), SIGMADELTA: the kernel */
} cbi_policy;

/* The policy a stream mode gives every conv (DENSE: CBINFER, unused). */
cbi_policy cbi_policy_of_mode(cbinfer_mode mode);

/* Parses a spec ("evnet:chunk=8,nomem", "skipconv:output,block=4,reset=8",
 * "sigmadelta", "cbinfer", "cbinfer-ff"). BAD_PARAM with a message naming the
 * offending word. */
cbinfer_status cbi_policy_parse(const char *spec, cbi_policy *out, cbi_err *e);

/* The canonical spec of a policy (parses back to it), into buf. */
void cbi_policy_format(const cbi_policy *p, char *buf, size_t len);

/* The delta policies (everything but CBinfer's two). */
static inline int cbi_policy_is_delta(const cbi_policy *p)
{
    return p->kind == CBI_POLICY_EVNET || p->kind == CBI_POLICY_SKIPCONV ||
           p->kind == CBI_POLICY_SIGMADELTA;
}

/* Whether a conv with cin input channels runs p by the delta scatter
 * (input-stationary) into an accumulator. EvNet without memory always does
 * (its accumulator is not W*v + b); closed EvNet and Sigma-Delta by
 * p->compute, AUTO by CBI_SCATTER_MIN_CIN. */
static inline int cbi_policy_uses_scatter(const cbi_policy *p, int cin)
{
    if (p->kind != CBI_POLICY_EVNET && p->kind != CBI_POLICY_SIGMADELTA) return 0;
    if (p->kind == CBI_POLICY_EVNET && p->open_memory) return 1;
    return p->compute == CBI_COMPUTE_SCATTER ||
           (p->compute == CBI_COMPUTE_AUTO && cin >= CBI_SCATTER_MIN_CIN);
}

/* Whether such a conv keeps a pre-activation accumulator: Skip-Conv, and
 * the delta scatter. */
static inline int cbi_policy_accumulates(const cbi_policy *p, int cin)
{
    return p->kind == CBI_POLICY_SKIPCONV || cbi_policy_uses_scatter(p, cin);
}

/* Whether the accumulator of a node equals W*ref + b at every frame (closed
 * memory), so a dense recompute from the reference changes nothing but the
 * float rounding (the refresh of CBINFER_PARAM_REFRESH_PERIOD). */
static inline int cbi_policy_closed_accumulator(const cbi_policy *p, int cin)
{
    return cbi_policy_uses_scatter(p, cin) && !(p->kind == CBI_POLICY_EVNET && p->open_memory);
}

/* Whether f has an inverse on its whole range (identity, LeakyReLU with
 * alpha > 0, PReLU with every slope > 0): then the accumulator is
 * f^-1(output) and needs no tensor of its own (VARIANTS.md §5.3). */
int cbi_activation_invertible(const cbi_activation *act, int channels);

/* Whether a conv node under p keeps its fp32 accumulator as a tensor of its
 * own: it accumulates, and either f has no inverse or the output is stored
 * in fewer than 4 bytes a value (fp16 on CUDA: f^-1 of a rounded output
 * would add a rounding per frame), value_bytes being the storage size. */
int cbi_policy_keeps_accumulator(const cbi_policy *p, const cbi_node *n, int cin,
                                 size_t value_bytes);

/* Skip-Conv's block gates: one byte per aligned block x block tile of a
 * ho x wo output. */
static inline size_t cbi_block_map_bytes(int ho, int wo, int block)
{
    const size_t b = block > 1 ? (size_t)block : 1;
    return ((size_t)ho + b - 1) / b * (((size_t)wo + b - 1) / b);
}

/* ||W||_1 of a conv node's weights over all four dims, cin input channels
 * ([SC] Eq. 7, the Output-Norm gate's factor). */
float cbi_conv_weight_l1(const cbi_node *n, int cin);

/* Whether a policy runs on a node (the stream asks before creating or
 * changing any state, for both backends):
 * the delta policies and Skip-Conv do not take grouped convolutions yet
 * (MODEL_UNSUPPORTED_ATTR, naming the node and the policy). */
cbinfer_status cbi_policy_check_node(const cbi_policy *p, const cbi_node *n, cbi_err *e);

/* Bytes of a conv layer's temporal state under a policy: the reference
 * (input state) and, where it is not elided, the fp32 accumulator. */
size_t cbi_policy_state_bytes(const cbi_policy *p, const cbi_node *n, const cbi_node_plan *plan,
                              size_t value_bytes);

/* Overhead operations by the EvNet supplement's rules (Sec. E), added to a
 * layer's stats: per gate evaluation (an input element tested) 3 arithmetic
 * and 4 loads and stores, per transmission 1 and 2, per accumulator element
 * updated 1 and 2. */
static inline void cbi_count_overhead(cbinfer_layer_stats *s, int64_t evaluated, int64_t sent,
                                      int64_t acc_updates)
{
    s->overhead_arith += 3 * evaluated + sent + acc_updates;
    s->overhead_ldst += 4 * evaluated + 2 * sent + 2 * acc_updates;
}

#ifdef __cplusplus
}
#endif

#endif /* CBI_POLICY_H */
