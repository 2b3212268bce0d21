/*
 * The stream context, shared by host/stream.c (one stream, one frame at a
 * time) and host/batch.c (N streams of one network stepped together). Both
 * run the same per-node steps, so that a batched push and N single pushes
 * do the same thing to each stream. Private to host/.
 */
#ifndef CBI_STREAM_INTERNAL_H
#define CBI_STREAM_INTERNAL_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The running totals of the frame being processed. */
typedef struct cbi_frame_run {
    double t0_ms;           /* when the push began */
    int64_t frame_index;    /* 0 on a first frame */
    int64_t syncs0;         /* the backend's host syncs before the frame */
    int64_t changed_px, total_px, macs, dense_macs, macs_eff, ov_arith, ov_ldst;
    int conv_ordinal;       /* Conv nodes begun so far */
} cbi_frame_run;

struct cbinfer_stream {
    const cbi_net *net;
    int width, height;
    cbinfer_mode mode;
    cbinfer_precision precision;
    cbinfer_backend backend;
    const cbi_backend *be;
    void *bctx;
    cbi_shape *shapes;       /* per value */
    cbi_node_plan *plans;    /* per node */
    cbi_tensor *values;      /* per value, backend memory */
    cbi_changes *chg;        /* per value, this frame */
    void **layers;           /* per node, backend state */
    float *thresholds;       /* per node (used by Conv nodes) */
    float *break_even;       /* per node: dense fallback share (Conv nodes, default 1) */
    cbi_policy *policies;    /* per node: change policy (Conv nodes) */
    int refresh_period;      /* CBINFER_PARAM_REFRESH_PERIOD */
    int deterministic;       /* CBINFER_PARAM_DETERMINISTIC */
    cbinfer_layer_stats *stats; /* per node */
    cbinfer_frame_stats frame;
    double threshold_scale;
    int collect_stats;
    int reuse_1x1;
    int threads;             /* CBINFER_PARAM_THREADS */
    size_t max_bytes;        /* cbinfer_stream_create_limited's cap, 0 for none */
    int device;              /* cbinfer_stream_options */
    void *cuda_stream;
    float *h_in;             /* NHWC staging of the network input */
    float *h_out;            /* NHWC staging of the network output */
    float *h_conv_in;        /* host copy of one conv input (cbinfer_stream_conv_input_stats) */
    int first;               /* next frame initialises all state */
    int have_output;
    cbinfer_status broken;   /* not SUCCESS: layers could not be re-created (THREADS or a
                              * policy); every push fails */
    char broken_msg[512];    /* why */
    cbi_frame_run run;       /* the frame being processed */
    /* A member of a batch (host/batch.c): its value tensors are slices of
     * the batch's arrays, and only the batch destroys it. NULL otherwise. */
    const cbinfer_batch_t *batch;
    int borrowed_values;     /* values[].data are the creator's (cbi_stream_create_in) */
    cbi_err err;
};


/* Elements of a tensor of shape s. */
static inline size_t cbi_shape_elems(cbi_shape s)
{
    return (size_t)s.c * s.h * s.w;
}

/* Creates a stream as cbinfer_stream_create_ex does (options NULL: the
 * defaults). With `slices` (per value, backend memory of the value's size
 * that the caller owns and keeps until the stream is gone) its tensors live
 * there; NULL: it allocates its own. */
cbinfer_status cbi_stream_create_in(const cbinfer_network_t *network, int width, int height,
                                    cbinfer_backend backend, cbinfer_mode mode,
                                    cbinfer_precision precision,
                                    const cbinfer_stream_options *options, void *const *slices,
                                    cbinfer_stream_t **out, cbi_err *e);
/* The checks of stream creation's arguments but `out`: the backend's
 * presence in this build and the CPU's one precision included. */
cbinfer_status cbi_stream_check_args(const cbinfer_network_t *network, int width, int height,
                                     cbinfer_backend backend, cbinfer_mode mode,
                                     cbinfer_precision precision, cbi_err *e);
/* OUT_OF_MEMORY (with what, "the stream" or "a batch of 4 streams", in the
 * message) when total bytes pass cap (0: none), or when new_bytes more of
 * host memory (host_memory) pass what the system has available. */
cbinfer_status cbi_check_memory(uint64_t total, uint64_t new_bytes, size_t cap, int host_memory,
                                const char *what, cbi_err *e);
/* Destroys s, a batch's member included. */
void cbi_stream_free(cbinfer_stream_t *s);
/* The backend table of a backend built in, NULL otherwise. */
const cbi_backend *cbi_backend_of(cbinfer_backend backend);
/* The bytes of one stored activation value at a precision. */
size_t cbi_value_bytes(cbinfer_precision precision);

/* One frame, in steps (cbinfer_stream_push_* runs them in order):
 *   cbi_stream_stage_rgb8      the frame into the input staging (checks it)
 *   cbi_stream_frame_begin     uploads it, starts the totals
 *   for every node i in order:
 *     cbi_stream_node_begin    0: the node is skipped (its inputs did not
 *                              change); 1: run kernel *k on *a, then;
 *                              -1: no kernel for the node (INTERNAL, in
 *                              the stream's message)
 *     cbi_stream_node_end      adds the node's stats to the totals
 *   cbi_stream_frame_end       waits for the device, closes the frame's stats;
 *                              given a failure, restarts the temporal state
 * Each returns the stream's status and message on failure. */
cbinfer_status cbi_stream_stage_rgb8(cbinfer_stream_t *s, const uint8_t *rgb, int width,
                                     int height, size_t stride_bytes);
/* device_rgb: the frame in device memory (cbinfer_stream_push_rgb8_device,
 * a backend with upload_rgb8) instead of the staging; NULL for the staging. */
cbinfer_status cbi_stream_frame_begin(cbinfer_stream_t *s, double t0_ms,
                                      const uint8_t *device_rgb, size_t stride);
int cbi_stream_node_begin(cbinfer_stream_t *s, int i, cbi_op_args *a, cbi_kernel *k);
void cbi_stream_node_end(cbinfer_stream_t *s, int i);
cbinfer_status cbi_stream_frame_end(cbinfer_stream_t *s, cbinfer_status st);

#ifdef __cplusplus
}
#endif

#endif /* CBI_STREAM_INTERNAL_H */
