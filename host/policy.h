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
} cbi_policy;

/* The policy a stream mode gives every conv (DENSE: CBINFER, unused). */
cbi_policy cbi_policy_of_mode(cbinfer_mode mode);

/* Parses a spec ("evnet:chunk=8,nomem", "skipconv:output,block=4,reset=8",
 * "sigmadelta", "cbinfer", "cbinfer-ff"). BAD_PARAM with a message naming the
 * offending word. */
cbinfer_status cbi_policy_parse(const char *spec, cbi_policy *out, cbi_err *e);

/* The canonical spec of a policy (parses back to it), into buf. */
void cbi_policy_format(const cbi_policy *p, char *buf, size_t len);

/* Delta kinds that scatter the changed inputs' deltas (input-stationary). */
static inline int cbi_policy_scatters(const cbi_policy *p)
{
    return p->kind == CBI_POLICY_EVNET || p->kind == CBI_POLICY_SIGMADELTA;
}

/* Kinds that keep a pre-activation accumulator (everything but CBinfer's). */
static inline int cbi_policy_accumulates(const cbi_policy *p)
{
    return p->kind == CBI_POLICY_EVNET || p->kind == CBI_POLICY_SKIPCONV ||
           p->kind == CBI_POLICY_SIGMADELTA;
}

/* Whether the accumulator of a node equals W*ref + b at every frame (closed
 * memory), so a dense recompute from the reference changes nothing but the
 * float rounding (the refresh of CBINFER_PARAM_REFRESH_PERIOD). */
static inline int cbi_policy_closed_accumulator(const cbi_policy *p)
{
    return (p->kind == CBI_POLICY_EVNET && !p->open_memory) || p->kind == CBI_POLICY_SIGMADELTA;
}

/* Whether f has an inverse on its whole range (identity, LeakyReLU with
 * alpha > 0, PReLU with every slope > 0): then the accumulator is
 * f^-1(output) and needs no tensor of its own (VARIANTS.md §5.3). */
int cbi_activation_invertible(const cbi_activation *act, int channels);

/* Bytes of a conv layer's temporal state under a policy: the reference
 * (input state) and, where it is not elided, the fp32 accumulator. */
size_t cbi_policy_state_bytes(const cbi_policy *p, const cbi_node *n, const cbi_node_plan *plan,
                              size_t value_bytes);

#ifdef __cplusplus
}
#endif

#endif /* CBI_POLICY_H */
