/*
 * Batches: N streams of one network stepped together (many cameras in one
 * process). Each stream is an ordinary stream (host/stream.c) with its own
 * backend context, state, thresholds, policy and statistics; only its
 * activations live in the batch's arrays, image after image, so that a
 * dense convolution can run over all N images at once. The batch has one
 * more backend context of its own, which holds the batched convolutions
 * (backend.h, batch_layer_create and conv_batch).
 *
 * A batched push runs the same per-node steps as a single push
 * (cbi_stream_node_begin/_end), node by node across the streams: a Conv
 * goes to conv_batch for every stream under a recompute policy, every
 * other node (and a Conv under a delta policy) to the stream's own kernel.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream_internal.h"

struct cbinfer_batch {
    const cbi_net *net;
    int n;
    int width, height;
    cbinfer_mode mode;
    const cbi_backend *be;
    void *bctx;            /* the batched convolutions' context */
    int threads;           /* its CBINFER_PARAM_THREADS (0: every core) */
    cbi_shape *shapes;     /* per value (its config's) */
    cbi_node_plan *plans;  /* per node */
    void **blayers;        /* per node: the batch's layer (Conv), else NULL */
    void **arrays;         /* per value: n images of it */
    cbinfer_stream_t **streams;
    cbi_op_args *args;     /* n: this node's, per stream */
    cbi_kernel *kernels;   /* n */
    unsigned char *runs;   /* n: whether the node runs in stream j this frame */
    cbi_op_args **batched; /* n: the args handed to conv_batch */
    cbi_err err;
};

#define BATCH_FAIL(b, status, ...) cbi_fail(&(b)->err, (status), __VA_ARGS__)

void cbinfer_batch_destroy(cbinfer_batch_t *b)
{
    if (!b) return;
    for (int j = 0; b->streams && j < b->n; ++j) cbi_stream_free(b->streams[j]);
    if (b->be && b->bctx) {
        const int saved = b->be->bind ? b->be->bind(b->bctx) : -1;
        for (int i = 0; b->blayers && i < b->net->n_nodes; ++i)
            b->be->layer_destroy(b->bctx, b->blayers[i]);
        for (int v = 0; b->arrays && v < b->net->n_values; ++v)
            b->be->release(b->bctx, b->arrays[v]);
        if (b->be->unbind) b->be->unbind(b->bctx, saved);
        b->be->destroy(b->bctx); /* binds itself */
    }
    free(b->shapes);
    free(b->plans);
    free(b->blayers);
    free(b->arrays);
    free(b->streams);
    free(b->args);
    free(b->kernels);
    free(b->runs);
    free(b->batched);
    free(b);
}

/* Creates (or, after a thread change, re-creates) the batch's layers. */
static cbinfer_status create_batch_layers(cbinfer_batch_t *b)
{
    for (int i = 0; i < b->net->n_nodes; ++i) {
        if (b->blayers[i]) continue;
        const cbinfer_status st = b->be->batch_layer_create(b->bctx, i, b->n, &b->blayers[i], &b->err);
        if (st != CBINFER_STATUS_SUCCESS) return st;
    }
    return CBINFER_STATUS_SUCCESS;
}

/* What creation checks before it allocates anything beyond the tables: the
 * arguments, the backend's batched path, and memory for n streams (one
 * stream's figure n + 1 times: the batch's own primitives and scratch are
 * about one more stream's weights and scratch). */
static cbinfer_status check_batch(cbinfer_batch_t *b, const cbinfer_network_t *network,
                                  int n_streams, cbinfer_backend backend,
                                  cbinfer_precision precision)
{
    if (n_streams < 1 || n_streams > CBI_MAX_BATCH)
        return BATCH_FAIL(b, CBINFER_STATUS_BAD_PARAM, "a batch of %d streams (1 to %d)",
                          n_streams, CBI_MAX_BATCH);
    cbinfer_status st = cbi_stream_check_args(network, b->width, b->height, backend, b->mode,
                                              precision, &b->err);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    b->be = cbi_backend_of(backend);
    if (!b->be->batch_layer_create || !b->be->conv_batch)
        return BATCH_FAIL(b, CBINFER_STATUS_BACKEND_UNAVAILABLE,
                          "the %s backend has no batched path yet; push its streams one by one",
                          b->be->name);
    uint64_t one;
    char msg[sizeof b->err.msg];
    st = cbinfer_stream_memory_bytes(network, b->width, b->height, backend, b->mode, precision,
                                     &one, msg, sizeof msg);
    if (st != CBINFER_STATUS_SUCCESS) return BATCH_FAIL(b, st, "%s", msg);
    const uint64_t need = one * (uint64_t)(n_streams + 1);
    char what[64];
    snprintf(what, sizeof what, "a batch of %d streams", n_streams);
    return cbi_check_memory(need, need, 0, backend == CBINFER_BACKEND_CPU, what, &b->err);
}

static cbinfer_status batch_init(cbinfer_batch_t *b, const cbinfer_network_t *network,
                                 cbinfer_backend backend, cbinfer_precision precision)
{
    const cbi_net *net = b->net;
    const int n = b->n;
    b->shapes = cbi_calloc((size_t)net->n_values, sizeof *b->shapes);
    b->plans = cbi_calloc((size_t)net->n_nodes, sizeof *b->plans);
    b->blayers = cbi_calloc((size_t)net->n_nodes, sizeof *b->blayers);
    b->arrays = cbi_calloc((size_t)net->n_values, sizeof *b->arrays);
    b->streams = cbi_calloc((size_t)n, sizeof *b->streams);
    b->args = cbi_calloc((size_t)n, sizeof *b->args);
    b->kernels = cbi_calloc((size_t)n, sizeof *b->kernels);
    b->runs = cbi_calloc((size_t)n, sizeof *b->runs);
    b->batched = cbi_calloc((size_t)n, sizeof *b->batched);
    void **slices = cbi_calloc((size_t)net->n_values, sizeof *slices);
    if (!b->shapes || !b->plans || !b->blayers || !b->arrays || !b->streams || !b->args ||
        !b->kernels || !b->runs || !b->batched || !slices) {
        free(slices);
        return BATCH_FAIL(b, CBINFER_STATUS_OUT_OF_MEMORY, "batch tables");
    }
    cbinfer_status st = cbi_net_plan(net, b->height, b->width, b->shapes, b->plans, b->err.msg,
                                     sizeof b->err.msg);
    /* The batch's context: recompute (or dense) layers only, so no delta
     * products in its scratch. */
    const cbi_backend_config cfg = {
        .net = net, .shapes = b->shapes, .plans = b->plans,
        .mode = b->mode == CBINFER_MODE_DENSE ? CBINFER_MODE_DENSE : CBINFER_MODE_CBINFER,
        .precision = precision, .device = CBINFER_DEVICE_CURRENT,
    };
    if (st == CBINFER_STATUS_SUCCESS) st = b->be->create(&cfg, &b->bctx, &b->err);
    if (st != CBINFER_STATUS_SUCCESS) b->bctx = NULL;
    /* The members queue on the batch context's device stream (CUDA), so
     * that their kernels and the batched ones are ordered. */
    cbinfer_stream_options members;
    cbinfer_stream_options_init(&members);
    if (b->bctx && b->be->device_stream) members.cuda_stream = b->be->device_stream(b->bctx);
    const size_t elem = cbi_value_bytes(precision);
    for (int v = 0; st == CBINFER_STATUS_SUCCESS && v < net->n_values; ++v)
        st = b->be->alloc(b->bctx, cbi_shape_elems(b->shapes[v]) * elem * n, &b->arrays[v], &b->err);
    for (int j = 0; st == CBINFER_STATUS_SUCCESS && j < n; ++j) {
        for (int v = 0; v < net->n_values; ++v)
            slices[v] = (char *)b->arrays[v] + cbi_shape_elems(b->shapes[v]) * elem * j;
        cbi_err e;
        st = cbi_stream_create_in(network, b->width, b->height, backend, b->mode, precision,
                                  &members, slices, &b->streams[j], &e);
        if (st != CBINFER_STATUS_SUCCESS)
            cbi_fail(&b->err, st, "stream %d: %s", j, e.msg);
        else
            b->streams[j]->batch = b;
    }
    free(slices);
    if (st == CBINFER_STATUS_SUCCESS) st = create_batch_layers(b);
    return st;
}

cbinfer_status cbinfer_batch_create(const cbinfer_network_t *network, int n_streams, int width,
                                    int height, cbinfer_backend backend, cbinfer_mode mode,
                                    cbinfer_precision precision, cbinfer_batch_t **out,
                                    char *err, size_t err_len)
{
    if (err && err_len) err[0] = '\0';
    if (!out) {
        cbi_err_copy(&(cbi_err){"out is NULL"}, err, err_len);
        return CBINFER_STATUS_NULL_ARGUMENT;
    }
    *out = NULL;
    cbinfer_batch_t *b = calloc(1, sizeof *b);
    if (!b) {
        cbi_err_copy(&(cbi_err){"batch context"}, err, err_len);
        return CBINFER_STATUS_OUT_OF_MEMORY;
    }
    b->width = width;
    b->height = height;
    b->mode = mode;
    cbinfer_status st = check_batch(b, network, n_streams, backend, precision);
    if (st == CBINFER_STATUS_SUCCESS) {
        b->net = &network->net;
        b->n = n_streams;
        st = batch_init(b, network, backend, precision);
    }
    if (st != CBINFER_STATUS_SUCCESS) {
        cbi_err_copy(&b->err, err, err_len);
        cbinfer_batch_destroy(b);
        return st;
    }
    *out = b;
    return CBINFER_STATUS_SUCCESS;
}

int cbinfer_batch_size(const cbinfer_batch_t *b)
{
    return b ? b->n : 0;
}

cbinfer_stream_t *cbinfer_batch_stream(cbinfer_batch_t *b, int index)
{
    return b && index >= 0 && index < b->n ? b->streams[index] : NULL;
}

const char *cbinfer_batch_last_error(const cbinfer_batch_t *b)
{
    return b ? b->err.msg : "batch is NULL";
}

cbinfer_status cbinfer_batch_set_param(cbinfer_batch_t *b, cbinfer_param key, double value)
{
    if (!b) return CBINFER_STATUS_NULL_ARGUMENT;
    double lo, hi;
    if (cbinfer_param_bounds(key, &lo, &hi) != CBINFER_STATUS_SUCCESS)
        return BATCH_FAIL(b, CBINFER_STATUS_BAD_PARAM, "unknown parameter %d", (int)key);
    cbinfer_status st;
    for (int j = 0; j < b->n; ++j) {
        st = cbinfer_stream_set_param(b->streams[j], key, value);
        if (st != CBINFER_STATUS_SUCCESS)
            return BATCH_FAIL(b, st, "stream %d: %s", j, cbinfer_stream_last_error(b->streams[j]));
    }
    if (key != CBINFER_PARAM_THREADS || !b->be->set_threads) return CBINFER_STATUS_SUCCESS;
    if ((int)value == b->threads && create_batch_layers(b) == CBINFER_STATUS_SUCCESS)
        return CBINFER_STATUS_SUCCESS; /* unchanged (and whole): nothing to re-create */
    /* The batch's layers hold primitives made for its thread count. */
    for (int i = 0; i < b->net->n_nodes; ++i) {
        b->be->layer_destroy(b->bctx, b->blayers[i]);
        b->blayers[i] = NULL;
    }
    st = b->be->set_threads(b->bctx, (int)value, &b->err);
    if (st == CBINFER_STATUS_SUCCESS) st = create_batch_layers(b);
    if (st == CBINFER_STATUS_SUCCESS) b->threads = (int)value;
    return st;
}

/* Node i of every stream whose frame it is part of: a Conv of the
 * recompute policies (and any Conv of a dense batch) in one conv_batch
 * call, everything else stream by stream. */
static cbinfer_status run_node(cbinfer_batch_t *b, int i)
{
    int n_batched = 0, timed = 0;
    for (int j = 0; j < b->n; ++j) {
        cbinfer_stream_t *s = b->streams[j];
        const int run = cbi_stream_node_begin(s, i, &b->args[j], &b->kernels[j]);
        if (run < 0) return BATCH_FAIL(b, CBINFER_STATUS_INTERNAL, "stream %d: %s", j,
                                       cbinfer_stream_last_error(s));
        b->runs[j] = (unsigned char)run;
        if (!b->runs[j]) continue;
        timed |= s->collect_stats;
        const cbi_policy *pol = b->args[j].policy;
        if (b->blayers[i] && (b->kernels[j] == CBI_K_CONV_DENSE ||
                              (b->kernels[j] == CBI_K_CONV_CHANGE && !cbi_policy_is_delta(pol))))
            b->batched[n_batched++] = &b->args[j];
    }
    double t0 = cbi_now_ms();
    cbinfer_status st = CBINFER_STATUS_SUCCESS;
    if (n_batched) st = b->be->conv_batch(b->bctx, b->blayers[i], n_batched, b->batched, &b->err);
    if (st == CBINFER_STATUS_SUCCESS && timed) st = b->be->synchronize(b->bctx, &b->err);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    const double share = n_batched ? (cbi_now_ms() - t0) / n_batched : 0;
    for (int j = 0, r = 0; j < b->n; ++j) {
        if (!b->runs[j]) continue;
        cbinfer_stream_t *s = b->streams[j];
        if (r < n_batched && b->batched[r] == &b->args[j]) {
            ++r;
            s->stats[i].total_ms = s->collect_stats ? share : 0;
        } else {
            t0 = cbi_now_ms();
            st = s->be->kernel[b->kernels[j]](s->bctx, &b->args[j], &s->err);
            if (st == CBINFER_STATUS_SUCCESS && s->collect_stats)
                st = s->be->synchronize(s->bctx, &s->err);
            if (st != CBINFER_STATUS_SUCCESS)
                return BATCH_FAIL(b, st, "stream %d: %s", j, s->err.msg);
            if (s->collect_stats) s->stats[i].total_ms = cbi_now_ms() - t0;
        }
        cbi_stream_node_end(s, i);
    }
    return CBINFER_STATUS_SUCCESS;
}

static cbinfer_status push_frames(cbinfer_batch_t *b, const uint8_t *const *frames, int width,
                                  int height, size_t stride_bytes)
{
    const double t0 = cbi_now_ms();
    /* A failed thread change (cbinfer_batch_set_param) left layers out:
     * without them the step would run stream by stream, so they come first. */
    cbinfer_status st = create_batch_layers(b);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    /* Every frame is checked and staged before any state moves. */
    for (int j = 0; j < b->n; ++j) {
        cbinfer_stream_t *s = b->streams[j];
        if (s->broken != CBINFER_STATUS_SUCCESS)
            return BATCH_FAIL(b, s->broken, "stream %d cannot run frames until its threads or "
                              "policy are set again: %s", j, s->broken_msg);
        st = cbi_stream_stage_rgb8(s, frames[j], width, height, stride_bytes);
        if (st != CBINFER_STATUS_SUCCESS)
            return BATCH_FAIL(b, st, "stream %d: %s", j, s->err.msg);
    }
    for (int j = 0; j < b->n; ++j) {
        st = cbi_stream_frame_begin(b->streams[j], t0, NULL, 0);
        if (st != CBINFER_STATUS_SUCCESS) {
            BATCH_FAIL(b, st, "stream %d: %s", j, b->streams[j]->err.msg);
            break;
        }
    }
    for (int i = 0; st == CBINFER_STATUS_SUCCESS && i < b->net->n_nodes; ++i) st = run_node(b, i);
    if (st == CBINFER_STATUS_SUCCESS) st = b->be->synchronize(b->bctx, &b->err);
    /* Each stream closes its frame; after a failure, each starts over. */
    for (int j = 0; j < b->n; ++j) {
        const cbinfer_status sj = cbi_stream_frame_end(b->streams[j], st);
        if (st == CBINFER_STATUS_SUCCESS && sj != CBINFER_STATUS_SUCCESS) {
            st = BATCH_FAIL(b, sj, "stream %d: %s", j, b->streams[j]->err.msg);
            for (int k = 0; k < j; ++k) cbi_stream_frame_end(b->streams[k], sj);
        }
    }
    return st;
}

cbinfer_status cbinfer_batch_push_rgb8(cbinfer_batch_t *b, const uint8_t *const *frames,
                                       int width, int height, size_t stride_bytes)
{
    if (!b) return CBINFER_STATUS_NULL_ARGUMENT;
    if (!frames) return BATCH_FAIL(b, CBINFER_STATUS_NULL_ARGUMENT, "frames is NULL");
    /* The batch's device current for the step (CUDA), the caller's after. */
    const int saved = b->be->bind ? b->be->bind(b->bctx) : -1;
    const cbinfer_status st = push_frames(b, frames, width, height, stride_bytes);
    if (b->be->unbind) b->be->unbind(b->bctx, saved);
    return st;
}
