/*
 * The stream context (one per camera) and the layer loop. The host owns the
 * loop; for each node it picks the backend kernel (dense or change-based),
 * passes the producer's change list along (cbi_changes), and records stats.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "layer_values.h"
#include "stream_internal.h"


/* Records a failure in the stream's last-error message and returns status. */
#define STREAM_FAIL(s, status, ...) cbi_fail(&(s)->err, (status), __VA_ARGS__)

/* Makes the stream's device current for one call (CUDA); unbind restores
 * the caller's. */
static int bind(const cbinfer_stream_t *s)
{
    return s->be && s->be->bind && s->bctx ? s->be->bind(s->bctx) : -1;
}

static void unbind(const cbinfer_stream_t *s, int saved)
{
    if (s->be && s->be->unbind && s->bctx) s->be->unbind(s->bctx, saved);
}

void cbi_stream_free(cbinfer_stream_t *s)
{
    if (!s) return;
    if (s->be && s->bctx) {
        const int saved = bind(s);
        if (s->layers)
            for (int i = 0; i < s->net->n_nodes; ++i) s->be->layer_destroy(s->bctx, s->layers[i]);
        if (s->values && !s->borrowed_values)
            for (int i = 0; i < s->net->n_values; ++i) s->be->release(s->bctx, s->values[i].data);
        unbind(s, saved);
        s->be->destroy(s->bctx); /* binds itself */
    }
    free(s->shapes);
    free(s->plans);
    free(s->values);
    free(s->chg);
    free(s->layers);
    free(s->thresholds);
    free(s->break_even);
    free(s->policies);
    free(s->stats);
    free(s->h_in);
    free(s->h_out);
    free(s->h_conv_in);
    free(s);
}

void cbinfer_stream_destroy(cbinfer_stream_t *s)
{
    /* A batch's member goes with its batch (cbinfer_batch_destroy). */
    if (s && !s->batch) cbi_stream_free(s);
}

static int64_t node_dense_macs(const cbi_node *n, const cbi_node_plan *p)
{
    if (n->op == CBI_OP_CONV)
        return (int64_t)p->out.h * p->out.w * p->out.c * n->win.kh * n->win.kw *
               cbi_conv_group_cin(n, p->in.c);
    if (n->op == CBI_OP_CONV_TRANSPOSE)
        return (int64_t)p->in.h * p->in.w * p->in.c * n->win.kh * n->win.kw * p->out.c;
    return 0;
}

cbinfer_status cbinfer_backend_describe(cbinfer_backend backend, char *buf, size_t len)
{
    if (!buf || len == 0) return CBINFER_STATUS_NULL_ARGUMENT;
    buf[0] = '\0';
    switch (backend) {
    case CBINFER_BACKEND_CPU: cbi_cpu_describe(buf, len); return CBINFER_STATUS_SUCCESS;
    case CBINFER_BACKEND_CUDA:
#ifdef CBINFER_WITH_CUDA
        snprintf(buf, len, "cuDNN (dense), cuBLAS + Thrust (change-based)");
        return CBINFER_STATUS_SUCCESS;
#else
        return CBINFER_STATUS_BACKEND_UNAVAILABLE;
#endif
    }
    return CBINFER_STATUS_BAD_PARAM;
}

size_t cbi_value_bytes(cbinfer_precision precision)
{
    return precision == CBINFER_PRECISION_FP16 ? 2 : sizeof(float);
}

/* Elements of the largest convolution input (the host copy that
 * cbinfer_stream_conv_input_stats reads into), at least 1. */
static size_t conv_input_max_elems(const cbi_net *net, const cbi_shape *shapes)
{
    size_t most = 1;
    for (int c = 0; c < net->n_conv; ++c) {
        const size_t e = cbi_shape_elems(shapes[net->nodes[net->conv_nodes[c]].inputs[0]]);
        if (e > most) most = e;
    }
    return most;
}

/* Whether policy p runs on every node of [lo, hi) (cbi_policy_check_node):
 * the stream asks before it makes or changes any state, for either backend. */
static cbinfer_status check_policy_nodes(cbinfer_stream_t *s, const cbi_policy *p, int lo, int hi)
{
    for (int i = lo; i < hi; ++i) {
        cbinfer_status st = cbi_policy_check_node(p, &s->net->nodes[i], &s->err);
        if (st != CBINFER_STATUS_SUCCESS) return st;
    }
    return CBINFER_STATUS_SUCCESS;
}

/* The largest graph output: the one staging buffer every output is read through. */
static size_t output_max_elems(const cbi_net *net, const cbi_shape *shapes)
{
    size_t m = 0;
    for (int k = 0; k < net->n_outputs; ++k) {
        const size_t n = cbi_shape_elems(shapes[net->outputs[k]]);
        if (n > m) m = n;
    }
    return m;
}

/* The bytes a stream of this plan holds (cbinfer_stream_memory_bytes): the
 * activations (one tensor per value), the per-layer state of the
 * change-based modes, the weights, the host staging buffers and the
 * backend's scratch for `threads` threads. */
static uint64_t memory_estimate(const cbi_backend *be, const cbi_backend_config *cfg, int threads)
{
    const cbi_net *net = cfg->net;
    const uint64_t elem = cbi_value_bytes(cfg->precision);
    const int change_based = cfg->mode != CBINFER_MODE_DENSE;
    uint64_t bytes = 0;
    for (int v = 0; v < net->n_values; ++v) bytes += cbi_shape_elems(cfg->shapes[v]) * elem;
    for (int i = 0; i < net->n_nodes; ++i) {
        const cbi_node *n = &net->nodes[i];
        const cbi_node_plan *p = &cfg->plans[i];
        const uint64_t in_px = (uint64_t)p->in.h * p->in.w, out_px = (uint64_t)p->out.h * p->out.w;
        if (n->op == CBI_OP_CONV) {
            bytes += ((uint64_t)n->cout * n->win.kh * n->win.kw * cbi_conv_group_cin(n, p->in.c) +
                      n->cout) * elem;
            if (!change_based) continue;
            const cbi_policy pol = cbi_config_policy(cfg, i);
            /* state (reference, accumulator), changed input pixels, Eq. 4
             * map and its indices; Skip-Conv: its residual image and the
             * per-pixel residual norms, and the block map */
            bytes += cbi_policy_state_bytes(&pol, n, p, elem) + in_px * 4 + out_px * 5;
            if (pol.kind == CBI_POLICY_SKIPCONV)
                bytes += in_px * p->in.c * 4 + in_px * 4 + out_px;
        } else if (n->op == CBI_OP_CONV_TRANSPOSE) {
            bytes += ((uint64_t)n->cin * n->win.kh * n->win.kw * p->out.c + p->out.c) * elem;
        } else if (change_based && (n->op == CBI_OP_MAXPOOL || n->op == CBI_OP_AVGPOOL)) {
            bytes += out_px * 5;
        }
    }
    bytes += (cbi_shape_elems(cfg->shapes[net->input]) + output_max_elems(net, cfg->shapes) +
              conv_input_max_elems(net, cfg->shapes)) * sizeof(float);
    return bytes + be->extra_bytes(cfg, threads);
}

/* What the backend of s is created with. */
static cbi_backend_config stream_config(const cbinfer_stream_t *s)
{
    return (cbi_backend_config){
        .net = s->net, .shapes = s->shapes, .plans = s->plans, .mode = s->mode,
        .precision = s->precision,
        .policies = s->mode == CBINFER_MODE_DENSE ? NULL : s->policies,
        .device = s->device, .user_stream = s->cuda_stream,
    };
}

/* The static per-layer figures of stats[i]: state bytes under its policy. */
static void layer_state_stats(cbinfer_stream_t *s, int i)
{
    const cbi_node *n = &s->net->nodes[i];
    s->stats[i].state_bytes =
        n->op == CBI_OP_CONV && s->mode != CBINFER_MODE_DENSE
            ? (int64_t)cbi_policy_state_bytes(&s->policies[i], n, &s->plans[i],
                                              cbi_value_bytes(s->precision))
            : 0;
}

const cbi_backend *cbi_backend_of(cbinfer_backend backend)
{
    switch (backend) {
    case CBINFER_BACKEND_CPU: return cbi_cpu_backend();
#ifdef CBINFER_WITH_CUDA
    case CBINFER_BACKEND_CUDA: return cbi_cuda_backend();
#endif
    default: return NULL;
    }
}

/* Refuses memory a stream may not take: a total above its cap, or (host
 * memory, the CPU backend) more new bytes than the system has available, so
 * that an overcommitting kernel does not let creation succeed and then kill
 * the process at the first frame. */
cbinfer_status cbi_check_memory(uint64_t total, uint64_t new_bytes, size_t cap, int host_memory,
                                const char *what, cbi_err *e)
{
    const double mib = 1024.0 * 1024.0;
    if (cap && total > cap)
        return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "%s needs %.1f MiB, over its cap of "
                        "%.1f MiB", what, total / mib, cap / mib);
    uint64_t avail;
    if (host_memory && cbi_mem_available(&avail) && new_bytes > avail)
        return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY,
                        "%s needs %.1f MiB more, and the system has %.1f MiB available", what,
                        new_bytes / mib, avail / mib);
    return CBINFER_STATUS_SUCCESS;
}

static cbinfer_status check_memory(uint64_t total, uint64_t new_bytes, size_t cap,
                                   int host_memory, cbi_err *e)
{
    return cbi_check_memory(total, new_bytes, cap, host_memory, "the stream", e);
}

/* The tensors, layers and staging of a stream whose backend context exists. */
static cbinfer_status stream_alloc(cbinfer_stream_t *s, void *const *slices)
{
    const cbi_net *net = s->net;
    cbinfer_status st;
    const size_t elem = cbi_value_bytes(s->precision);
    s->borrowed_values = slices != NULL;
    for (int v = 0; v < net->n_values; ++v) {
        s->values[v].shape = s->shapes[v];
        if (slices) {
            s->values[v].data = slices[v];
            continue;
        }
        st = s->be->alloc(s->bctx, cbi_shape_elems(s->shapes[v]) * elem, &s->values[v].data, &s->err);
        if (st != CBINFER_STATUS_SUCCESS) return st;
    }
    for (int i = 0; i < net->n_nodes; ++i) {
        st = s->be->layer_create(s->bctx, i, &s->layers[i], &s->err);
        if (st != CBINFER_STATUS_SUCCESS) return st;
        const cbi_node *n = &net->nodes[i];
        s->stats[i].name = n->name;
        s->stats[i].op = n->op_type;
        s->stats[i].total_px = (int64_t)s->plans[i].out.h * s->plans[i].out.w;
        s->stats[i].dense_macs = node_dense_macs(n, &s->plans[i]);
        layer_state_stats(s, i);
    }
    s->h_in = cbi_malloc_array(cbi_shape_elems(s->shapes[net->input]), sizeof(float));
    s->h_out = cbi_malloc_array(output_max_elems(net, s->shapes), sizeof(float));
    s->h_conv_in = cbi_malloc_array(conv_input_max_elems(net, s->shapes), sizeof(float));
    if (!s->h_in || !s->h_out || !s->h_conv_in)
        return STREAM_FAIL(s, CBINFER_STATUS_OUT_OF_MEMORY, "staging buffers");
    return CBINFER_STATUS_SUCCESS;
}

static cbinfer_status stream_init(cbinfer_stream_t *s, const cbinfer_network_t *network,
                                  cbinfer_backend backend, void *const *slices)
{
    const cbi_net *net = &network->net;
    cbinfer_status st;
    s->net = net;
    s->shapes = cbi_calloc((size_t)net->n_values, sizeof *s->shapes);
    s->plans = cbi_calloc((size_t)net->n_nodes, sizeof *s->plans);
    s->values = cbi_calloc((size_t)net->n_values, sizeof *s->values);
    s->chg = cbi_calloc((size_t)net->n_values, sizeof *s->chg);
    s->layers = cbi_calloc((size_t)net->n_nodes, sizeof *s->layers);
    s->thresholds = cbi_calloc((size_t)net->n_nodes, sizeof *s->thresholds);
    s->break_even = cbi_malloc_array((size_t)net->n_nodes, sizeof *s->break_even);
    s->stats = cbi_calloc((size_t)net->n_nodes, sizeof *s->stats);
    s->policies = cbi_malloc_array((size_t)net->n_nodes, sizeof *s->policies);
    if (!s->shapes || !s->plans || !s->values || !s->chg || !s->layers || !s->thresholds ||
        !s->break_even || !s->stats || !s->policies)
        return STREAM_FAIL(s, CBINFER_STATUS_OUT_OF_MEMORY, "stream tables");
    for (int i = 0; i < net->n_nodes; ++i) {
        s->break_even[i] = 1.f;
        s->policies[i] = cbi_policy_of_mode(s->mode);
    }
    if (s->mode != CBINFER_MODE_DENSE &&
        (st = check_policy_nodes(s, &s->policies[0], 0, net->n_nodes)) != CBINFER_STATUS_SUCCESS)
        return st;

    st = cbi_net_plan(net, s->height, s->width, s->shapes, s->plans, s->err.msg, sizeof s->err.msg);
    if (st != CBINFER_STATUS_SUCCESS) return st;

    s->backend = backend;
    s->be = cbi_backend_of(backend); /* not NULL: check_stream_args saw to it */
    const cbi_backend_config cfg = stream_config(s);
    const uint64_t need = memory_estimate(s->be, &cfg, 0);
    st = check_memory(need, need, s->max_bytes, backend == CBINFER_BACKEND_CPU, &s->err);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    st = s->be->create(&cfg, &s->bctx, &s->err);
    if (st != CBINFER_STATUS_SUCCESS) {
        s->bctx = NULL;
        return st;
    }
    const int saved = bind(s);
    st = stream_alloc(s, slices);
    unbind(s, saved);
    return st;
}

/* The checks of every argument of stream creation but `out`, the backend's
 * presence in this build and the CPU's one precision included. */
cbinfer_status cbi_stream_check_args(const cbinfer_network_t *network, int width, int height,
                                     cbinfer_backend backend, cbinfer_mode mode,
                                     cbinfer_precision precision, cbi_err *e)
{
    if (!network) return cbi_fail(e, CBINFER_STATUS_NULL_ARGUMENT, "network is NULL");
    if (width <= 0 || height <= 0)
        return cbi_fail(e, CBINFER_STATUS_BAD_FRAME_SIZE, "frame size %dx%d", width, height);
    if ((unsigned)backend > CBINFER_BACKEND_CUDA)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "unknown backend %d", (int)backend);
    if ((unsigned)mode > CBINFER_MODE_SIGMADELTA)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "unknown mode %d", (int)mode);
    if ((unsigned)precision > CBINFER_PRECISION_FP16)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "unknown precision %d", (int)precision);
    if (!cbi_backend_of(backend))
        return cbi_fail(e, CBINFER_STATUS_BACKEND_UNAVAILABLE,
                        "cbinfer was built without CUDA (CBINFER_CUDA=OFF or no nvcc)");
    if (backend == CBINFER_BACKEND_CPU && precision != CBINFER_PRECISION_FP32)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM,
                        "the cpu backend runs fp32 only (tf32 and fp16 are cuda precisions)");
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbinfer_stream_memory_bytes(const cbinfer_network_t *network, int width,
                                           int height, cbinfer_backend backend, cbinfer_mode mode,
                                           cbinfer_precision precision, uint64_t *bytes,
                                           char *err, size_t err_len)
{
    cbi_err e = {""};
    cbinfer_status st = bytes ? cbi_stream_check_args(network, width, height, backend, mode,
                                                  precision, &e)
                              : cbi_fail(&e, CBINFER_STATUS_NULL_ARGUMENT, "bytes is NULL");
    const cbi_net *net = st ? NULL : &network->net;
    cbi_shape *shapes = net ? cbi_calloc((size_t)net->n_values, sizeof *shapes) : NULL;
    cbi_node_plan *plans = net ? cbi_calloc((size_t)net->n_nodes, sizeof *plans) : NULL;
    if (!st && (!shapes || !plans))
        st = cbi_fail(&e, CBINFER_STATUS_OUT_OF_MEMORY, "plan tables");
    if (!st) st = cbi_net_plan(net, height, width, shapes, plans, e.msg, sizeof e.msg);
    if (!st) {
        const cbi_backend_config cfg = {
            .net = net, .shapes = shapes, .plans = plans, .mode = mode, .precision = precision,
        };
        *bytes = memory_estimate(cbi_backend_of(backend), &cfg, 0);
    }
    free(shapes);
    free(plans);
    if (st) cbi_err_copy(&e, err, err_len);
    else if (err && err_len) err[0] = '\0';
    return st;
}

void cbinfer_stream_options_init(cbinfer_stream_options *o)
{
    if (o) *o = (cbinfer_stream_options){.struct_size = sizeof *o, .device = CBINFER_DEVICE_CURRENT};
}

/* The caller's options, or the defaults, into *o: the struct's size
 * checked before anything else of it is read, then what a backend accepts.
 * (This is the struct's first version: there is no older size to take.) */
static cbinfer_status take_options(const cbinfer_stream_options *options,
                                   cbinfer_backend backend, cbinfer_stream_options *o, cbi_err *e)
{
    cbinfer_stream_options_init(o);
    if (!options) return CBINFER_STATUS_SUCCESS;
    if (options->struct_size != sizeof *o)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM,
                        "options.struct_size is %zu, this library's is %zu: fill the options "
                        "with cbinfer_stream_options_init() of this cbinfer.h",
                        options->struct_size, sizeof *o);
    *o = *options;
    if (o->device < CBINFER_DEVICE_CURRENT)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "options.device is %d", o->device);
    if (backend == CBINFER_BACKEND_CPU && o->device > 0)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "the cpu backend takes no device "
                                                     "(options.device %d)", o->device);
    if (backend == CBINFER_BACKEND_CPU && o->cuda_stream)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM,
                        "the cpu backend takes no CUDA stream (options.cuda_stream)");
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbi_stream_create_in(const cbinfer_network_t *network, int width, int height,
                                    cbinfer_backend backend, cbinfer_mode mode,
                                    cbinfer_precision precision,
                                    const cbinfer_stream_options *options, void *const *slices,
                                    cbinfer_stream_t **out, cbi_err *e)
{
    *out = NULL;
    cbinfer_stream_options o;
    cbinfer_status st = cbi_stream_check_args(network, width, height, backend, mode, precision, e);
    if (st == CBINFER_STATUS_SUCCESS) st = take_options(options, backend, &o, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    cbinfer_stream_t *s = calloc(1, sizeof *s);
    if (!s) return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "stream context");
    s->width = width;
    s->height = height;
    s->mode = mode;
    s->precision = precision;
    s->max_bytes = o.max_bytes;
    s->device = o.device;
    s->cuda_stream = o.cuda_stream;
    s->threshold_scale = 1.0;
    s->refresh_period = 256;
    s->first = 1;
    st = stream_init(s, network, backend, slices);
    if (st != CBINFER_STATUS_SUCCESS) {
        *e = s->err;
        cbi_stream_free(s);
        return st;
    }
    *out = s;
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbinfer_stream_create_ex(const cbinfer_network_t *network, int width, int height,
                                        cbinfer_backend backend, cbinfer_mode mode,
                                        cbinfer_precision precision,
                                        const cbinfer_stream_options *options,
                                        cbinfer_stream_t **out, char *err, size_t err_len)
{
    if (err && err_len) err[0] = '\0';
    if (!out) {
        cbi_err_copy(&(cbi_err){"out is NULL"}, err, err_len);
        return CBINFER_STATUS_NULL_ARGUMENT;
    }
    cbi_err e;
    const cbinfer_status st = cbi_stream_create_in(network, width, height, backend, mode,
                                                   precision, options, NULL, out, &e);
    if (st != CBINFER_STATUS_SUCCESS) cbi_err_copy(&e, err, err_len);
    return st;
}

cbinfer_status cbinfer_stream_create_limited(const cbinfer_network_t *network, int width,
                                             int height, cbinfer_backend backend,
                                             cbinfer_mode mode, cbinfer_precision precision,
                                             size_t max_bytes, cbinfer_stream_t **out, char *err,
                                             size_t err_len)
{
    cbinfer_stream_options o;
    cbinfer_stream_options_init(&o);
    o.max_bytes = max_bytes;
    return cbinfer_stream_create_ex(network, width, height, backend, mode, precision, &o, out,
                                    err, err_len);
}

cbinfer_status cbinfer_stream_create(const cbinfer_network_t *network, int width, int height,
                                     cbinfer_backend backend, cbinfer_mode mode,
                                     cbinfer_precision precision, cbinfer_stream_t **out,
                                     char *err, size_t err_len)
{
    return cbinfer_stream_create_limited(network, width, height, backend, mode, precision, 0, out,
                                         err, err_len);
}

const char *cbinfer_stream_last_error(const cbinfer_stream_t *s)
{
    return s ? s->err.msg : "stream is NULL";
}

cbinfer_status cbinfer_stream_reset(cbinfer_stream_t *s)
{
    if (!s) return CBINFER_STATUS_NULL_ARGUMENT;
    s->first = 1;
    s->have_output = 0;
    memset(&s->frame, 0, sizeof s->frame);
    return CBINFER_STATUS_SUCCESS;
}

/* ------------------------------------------------------------ tunables ---- */

cbinfer_status cbinfer_param_bounds(cbinfer_param key, double *min, double *max)
{
    if (!min || !max) return CBINFER_STATUS_NULL_ARGUMENT;
    switch (key) {
    case CBINFER_PARAM_COLLECT_STATS:
    case CBINFER_PARAM_REUSE_1X1_INDICES: *min = 0; *max = 1; return CBINFER_STATUS_SUCCESS;
    case CBINFER_PARAM_THRESHOLD_SCALE: *min = 0; *max = 1e30; return CBINFER_STATUS_SUCCESS;
    case CBINFER_PARAM_THREADS: *min = 0; *max = 4096; return CBINFER_STATUS_SUCCESS;
    case CBINFER_PARAM_REFRESH_PERIOD: *min = 0; *max = 1 << 30; return CBINFER_STATUS_SUCCESS;
    case CBINFER_PARAM_DETERMINISTIC: *min = 0; *max = 1; return CBINFER_STATUS_SUCCESS;
    }
    return CBINFER_STATUS_BAD_PARAM;
}

/* Drops the layers of nodes [lo, hi) (before a new thread count or
 * policy) and starts the temporal state again, as after a reset. Until
 * create_missing_layers() succeeds the stream refuses frames. */
static void drop_layers(cbinfer_stream_t *s, int lo, int hi)
{
    s->first = 1;
    s->have_output = 0;
    for (int i = lo; i < hi; ++i) {
        s->be->layer_destroy(s->bctx, s->layers[i]);
        s->layers[i] = NULL;
    }
    s->broken = CBINFER_STATUS_INTERNAL;
}

/* Marks the stream broken by st (every push fails, saying why). */
static cbinfer_status mark_broken(cbinfer_stream_t *s, cbinfer_status st)
{
    s->broken = st;
    cbi_err_copy(&s->err, s->broken_msg, sizeof s->broken_msg);
    return st;
}

/* Creates every layer the stream lacks: those drop_layers() dropped, and any
 * an earlier failure left out (a stateless node has none, and asking again
 * costs nothing). */
static cbinfer_status create_missing_layers(cbinfer_stream_t *s)
{
    for (int i = 0; i < s->net->n_nodes; ++i) {
        if (!s->layers[i]) {
            const cbinfer_status st = s->be->layer_create(s->bctx, i, &s->layers[i], &s->err);
            if (st != CBINFER_STATUS_SUCCESS) return mark_broken(s, st);
        }
        layer_state_stats(s, i);
    }
    s->broken = CBINFER_STATUS_SUCCESS;
    return CBINFER_STATUS_SUCCESS;
}

/* CBINFER_PARAM_THREADS on a backend that has threads: its kernels are
 * created for a thread count, so every layer is made anew. */
static cbinfer_status set_threads(cbinfer_stream_t *s, int threads)
{
    const cbi_backend_config cfg = stream_config(s);
    const uint64_t now = memory_estimate(s->be, &cfg, s->threads);
    const uint64_t then = memory_estimate(s->be, &cfg, threads);
    if (then > now) { /* more scratch: within the cap and the system's memory */
        const cbinfer_status st = check_memory(then, then - now, s->max_bytes, 1, &s->err);
        if (st != CBINFER_STATUS_SUCCESS) return st;
    }
    drop_layers(s, 0, s->net->n_nodes);
    cbinfer_status st = s->be->set_threads(s->bctx, threads, &s->err);
    if (st != CBINFER_STATUS_SUCCESS) return mark_broken(s, st);
    st = create_missing_layers(s);
    if (st == CBINFER_STATUS_SUCCESS) s->threads = threads;
    return st;
}

cbinfer_status cbinfer_stream_set_param(cbinfer_stream_t *s, cbinfer_param key, double value)
{
    double lo, hi;
    if (!s) return CBINFER_STATUS_NULL_ARGUMENT;
    if (cbinfer_param_bounds(key, &lo, &hi) != CBINFER_STATUS_SUCCESS)
        return STREAM_FAIL(s, CBINFER_STATUS_BAD_PARAM, "unknown parameter %d", (int)key);
    if (!(value >= lo && value <= hi))
        return STREAM_FAIL(s, CBINFER_STATUS_BAD_PARAM, "parameter %d: %g outside [%g, %g]",
                           (int)key, value, lo, hi);
    switch (key) {
    case CBINFER_PARAM_COLLECT_STATS: s->collect_stats = value != 0; break;
    case CBINFER_PARAM_THRESHOLD_SCALE: s->threshold_scale = value; break;
    case CBINFER_PARAM_REUSE_1X1_INDICES: s->reuse_1x1 = value != 0; break;
    case CBINFER_PARAM_THREADS:
        if (value != (double)(int)value)
            return STREAM_FAIL(s, CBINFER_STATUS_BAD_PARAM, "threads: %g is not a whole number",
                               value);
        if (s->be->set_threads && ((int)value != s->threads || s->broken != CBINFER_STATUS_SUCCESS))
            return set_threads(s, (int)value);
        s->threads = (int)value;
        break;
    case CBINFER_PARAM_REFRESH_PERIOD:
        if (value != (double)(int)value)
            return STREAM_FAIL(s, CBINFER_STATUS_BAD_PARAM,
                               "refresh period: %g is not a whole number", value);
        s->refresh_period = (int)value;
        break;
    case CBINFER_PARAM_DETERMINISTIC: s->deterministic = value != 0; break;
    }
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbinfer_stream_get_param(const cbinfer_stream_t *s, cbinfer_param key,
                                        double *value)
{
    if (!s || !value) return CBINFER_STATUS_NULL_ARGUMENT;
    switch (key) {
    case CBINFER_PARAM_COLLECT_STATS: *value = s->collect_stats; return CBINFER_STATUS_SUCCESS;
    case CBINFER_PARAM_THRESHOLD_SCALE: *value = s->threshold_scale; return CBINFER_STATUS_SUCCESS;
    case CBINFER_PARAM_REUSE_1X1_INDICES: *value = s->reuse_1x1; return CBINFER_STATUS_SUCCESS;
    case CBINFER_PARAM_THREADS: *value = s->threads; return CBINFER_STATUS_SUCCESS;
    case CBINFER_PARAM_REFRESH_PERIOD: *value = s->refresh_period; return CBINFER_STATUS_SUCCESS;
    case CBINFER_PARAM_DETERMINISTIC: *value = s->deterministic; return CBINFER_STATUS_SUCCESS;
    }
    return CBINFER_STATUS_BAD_PARAM;
}

static int find_conv(const cbi_net *net, const char *name)
{
    for (int i = 0; i < net->n_conv; ++i)
        if (strcmp(net->nodes[net->conv_nodes[i]].name, name) == 0) return net->conv_nodes[i];
    return -1;
}

static cbinfer_status check_threshold(cbinfer_stream_t *s, float t)
{
    if (!isfinite(t) || t < 0.f)
        return STREAM_FAIL(s, CBINFER_STATUS_BAD_PARAM, "threshold %g must be finite and >= 0",
                           (double)t);
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbinfer_stream_set_threshold(cbinfer_stream_t *s, const char *node_name,
                                            float threshold)
{
    if (!s) return CBINFER_STATUS_NULL_ARGUMENT;
    if (!node_name) return STREAM_FAIL(s, CBINFER_STATUS_NULL_ARGUMENT, "node name is NULL");
    cbinfer_status st = check_threshold(s, threshold);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    int id = find_conv(s->net, node_name);
    if (id < 0)
        return STREAM_FAIL(s, CBINFER_STATUS_UNKNOWN_NODE, "no Conv node named '%s'", node_name);
    s->thresholds[id] = threshold;
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbinfer_stream_set_threshold_all(cbinfer_stream_t *s, float threshold)
{
    if (!s) return CBINFER_STATUS_NULL_ARGUMENT;
    cbinfer_status st = check_threshold(s, threshold);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    for (int i = 0; i < s->net->n_conv; ++i) s->thresholds[s->net->conv_nodes[i]] = threshold;
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbinfer_stream_get_threshold(const cbinfer_stream_t *s, const char *node_name,
                                            float *threshold)
{
    if (!s || !node_name || !threshold) return CBINFER_STATUS_NULL_ARGUMENT;
    int id = find_conv(s->net, node_name);
    if (id < 0) return CBINFER_STATUS_UNKNOWN_NODE;
    *threshold = s->thresholds[id];
    return CBINFER_STATUS_SUCCESS;
}

static cbinfer_status check_break_even(cbinfer_stream_t *s, float b)
{
    if (!(b >= 0.f && b <= 1.f))
        return STREAM_FAIL(s, CBINFER_STATUS_BAD_PARAM, "break-even share %g outside [0, 1]",
                           (double)b);
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbinfer_stream_set_break_even(cbinfer_stream_t *s, const char *node_name,
                                             float share)
{
    if (!s) return CBINFER_STATUS_NULL_ARGUMENT;
    if (!node_name) return STREAM_FAIL(s, CBINFER_STATUS_NULL_ARGUMENT, "node name is NULL");
    cbinfer_status st = check_break_even(s, share);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    int id = find_conv(s->net, node_name);
    if (id < 0)
        return STREAM_FAIL(s, CBINFER_STATUS_UNKNOWN_NODE, "no Conv node named '%s'", node_name);
    s->break_even[id] = share;
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbinfer_stream_set_break_even_all(cbinfer_stream_t *s, float share)
{
    if (!s) return CBINFER_STATUS_NULL_ARGUMENT;
    cbinfer_status st = check_break_even(s, share);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    for (int i = 0; i < s->net->n_conv; ++i) s->break_even[s->net->conv_nodes[i]] = share;
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbinfer_stream_get_break_even(const cbinfer_stream_t *s, const char *node_name,
                                             float *share)
{
    if (!s || !node_name || !share) return CBINFER_STATUS_NULL_ARGUMENT;
    int id = find_conv(s->net, node_name);
    if (id < 0) return CBINFER_STATUS_UNKNOWN_NODE;
    *share = s->break_even[id];
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbinfer_stream_set_policy(cbinfer_stream_t *s, const char *node_name,
                                         const char *spec)
{
    if (!s) return CBINFER_STATUS_NULL_ARGUMENT;
    if (!spec) return STREAM_FAIL(s, CBINFER_STATUS_NULL_ARGUMENT, "policy spec is NULL");
    if (s->mode == CBINFER_MODE_DENSE)
        return STREAM_FAIL(s, CBINFER_STATUS_BAD_PARAM,
                           "a dense stream has no change policy (create it in a change-based "
                           "mode)");
    cbi_policy p;
    cbinfer_status st = cbi_policy_parse(spec, &p, &s->err);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    int lo = 0, hi = s->net->n_nodes;
    if (node_name) {
        lo = find_conv(s->net, node_name);
        if (lo < 0)
            return STREAM_FAIL(s, CBINFER_STATUS_UNKNOWN_NODE, "no Conv node named '%s'",
                               node_name);
        hi = lo + 1;
    }
    /* The new state must fit the cap and the system before the old goes. */
    cbi_policy *old = cbi_malloc_array((size_t)s->net->n_nodes, sizeof *old);
    if (!old) return STREAM_FAIL(s, CBINFER_STATUS_OUT_OF_MEMORY, "policy table");
    memcpy(old, s->policies, (size_t)s->net->n_nodes * sizeof *old);
    const cbi_backend_config cfg = stream_config(s);
    const uint64_t now = memory_estimate(s->be, &cfg, s->threads);
    /* A refusal known in advance (grouped convs) leaves the stream as it was. */
    if ((st = check_policy_nodes(s, &p, lo, hi)) != CBINFER_STATUS_SUCCESS) {
        free(old);
        return st;
    }
    for (int i = lo; i < hi; ++i)
        if (s->net->nodes[i].op == CBI_OP_CONV) s->policies[i] = p;
    const uint64_t then = memory_estimate(s->be, &cfg, s->threads);
    if (then > now) {
        st = check_memory(then, then - now, s->max_bytes, s->backend == CBINFER_BACKEND_CPU,
                          &s->err);
        if (st != CBINFER_STATUS_SUCCESS) {
            memcpy(s->policies, old, (size_t)s->net->n_nodes * sizeof *old);
            free(old);
            return st;
        }
    }
    free(old);
    const int saved = bind(s);
    drop_layers(s, lo, hi);
    st = create_missing_layers(s);
    unbind(s, saved);
    return st;
}

cbinfer_status cbinfer_stream_get_policy(const cbinfer_stream_t *s, const char *node_name,
                                         char *buf, size_t len)
{
    if (!s || !node_name || !buf) return CBINFER_STATUS_NULL_ARGUMENT;
    const int id = find_conv(s->net, node_name);
    if (id < 0) return CBINFER_STATUS_UNKNOWN_NODE;
    if (s->mode == CBINFER_MODE_DENSE) return CBINFER_STATUS_BAD_PARAM;
    char spec[64];
    cbi_policy_format(&s->policies[id], spec, sizeof spec);
    if (strlen(spec) >= len) return CBINFER_STATUS_BUFFER_TOO_SMALL;
    memcpy(buf, spec, strlen(spec) + 1);
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbinfer_stream_state_bytes(const cbinfer_stream_t *s, uint64_t *bytes)
{
    if (!s || !bytes) return CBINFER_STATUS_NULL_ARGUMENT;
    uint64_t sum = 0;
    for (int i = 0; i < s->net->n_nodes; ++i) sum += (uint64_t)s->stats[i].state_bytes;
    *bytes = sum;
    return CBINFER_STATUS_SUCCESS;
}

/* Reads a layer file into a scratch copy of table and commits it only when
 * the whole file is valid (all or nothing). */
static cbinfer_status load_layer_values(cbinfer_stream_t *s, const char *path, double max_value,
                                        float *table)
{
    if (!s) return CBINFER_STATUS_NULL_ARGUMENT;
    if (!path) return STREAM_FAIL(s, CBINFER_STATUS_NULL_ARGUMENT, "path is NULL");
    const size_t bytes = (size_t)s->net->n_nodes * sizeof *table;
    float *tmp = cbi_malloc_array((size_t)s->net->n_nodes, sizeof *tmp);
    if (!tmp) return STREAM_FAIL(s, CBINFER_STATUS_OUT_OF_MEMORY, "layer values");
    memcpy(tmp, table, bytes);
    cbinfer_status st = cbi_layer_values_read(s->net, path, max_value, tmp, &s->err);
    if (st == CBINFER_STATUS_SUCCESS) memcpy(table, tmp, bytes);
    free(tmp);
    return st;
}

cbinfer_status cbinfer_stream_load_thresholds(cbinfer_stream_t *s, const char *path)
{
    return load_layer_values(s, path, FLT_MAX, s ? s->thresholds : NULL);
}

cbinfer_status cbinfer_stream_load_break_even(cbinfer_stream_t *s, const char *path)
{
    return load_layer_values(s, path, 1.0, s ? s->break_even : NULL);
}

cbinfer_status cbinfer_stream_save_thresholds(const cbinfer_stream_t *s, const char *path,
                                              const char *header_comment)
{
    if (!s || !path) return CBINFER_STATUS_NULL_ARGUMENT;
    /* The stream is const: the message goes to a local and is dropped, like
     * the other const queries, which report by status only. */
    cbi_err e;
    return cbi_layer_values_write(s->net, path, header_comment, s->thresholds, &e);
}

/* ------------------------------------------------------------ the loop ---- */

static cbi_kernel node_kernel(const cbinfer_stream_t *s, const cbi_node *n)
{
    const int dense = s->mode == CBINFER_MODE_DENSE;
    switch (n->op) {
    case CBI_OP_CONV: return dense ? CBI_K_CONV_DENSE : CBI_K_CONV_CHANGE;
    case CBI_OP_MAXPOOL:
    case CBI_OP_AVGPOOL: return dense ? CBI_K_POOL_DENSE : CBI_K_POOL_CHANGE;
    case CBI_OP_CONV_TRANSPOSE: return CBI_K_CONV_TRANSPOSE;
    case CBI_OP_ACTIVATION: return CBI_K_ACTIVATION;
    case CBI_OP_ADD: return CBI_K_ADD;
    case CBI_OP_CONCAT: return CBI_K_CONCAT;
    case CBI_OP_PAD: return CBI_K_PAD;
    case CBI_OP_RESIZE: return CBI_K_RESIZE;
    case CBI_OP_DEPTH_TO_SPACE: return CBI_K_DEPTH_TO_SPACE;
    case CBI_OP_COUNT: break;
    }
    return CBI_K_COUNT;
}

static int is_change_kernel(cbi_kernel k)
{
    return k == CBI_K_CONV_CHANGE || k == CBI_K_POOL_CHANGE;
}

/* A dense op whose inputs were all left untouched this frame would compute
 * what its output already holds. */
static int inputs_unchanged(const cbinfer_stream_t *s, const cbi_node *n)
{
    for (int i = 0; i < n->n_inputs; ++i) {
        const cbi_changes *c = &s->chg[n->inputs[i]];
        if (c->all || c->count) return 0;
    }
    return 1;
}

int cbi_stream_node_begin(cbinfer_stream_t *s, int i, cbi_op_args *a, cbi_kernel *k)
{
    const cbi_node *n = &s->net->nodes[i];
    cbinfer_layer_stats *ls = &s->stats[i];
    cbi_changes *out_chg = &s->chg[n->output];
    const int64_t frame_index = s->run.frame_index;
    *k = node_kernel(s, n);
    if (*k == CBI_K_COUNT) { /* the loader admits no such node */
        STREAM_FAIL(s, CBINFER_STATUS_INTERNAL, "node %s (%s): no kernel", n->name, n->op_type);
        return -1;
    }

    ls->changed_px = ls->changed_in_px = ls->macs = 0;
    ls->macs_effective = -1; /* a kernel that counts otherwise sets it */
    ls->transmitted_el = ls->overhead_arith = ls->overhead_ldst = 0;
    const cbi_policy *pol = &s->policies[i];
    const int conv_i = n->op == CBI_OP_CONV ? s->run.conv_ordinal++ : -1;
    const int refresh = conv_i >= 0 && s->refresh_period > 0 &&
                        cbi_policy_closed_accumulator(pol, s->plans[i].in.c) && frame_index > 0 &&
                        (frame_index + conv_i) % s->refresh_period == 0;
    ls->ran_dense = s->first || !is_change_kernel(*k);
    memset(ls->step_ms, 0, sizeof ls->step_ms);
    ls->total_ms = 0;

    if (!s->first && !is_change_kernel(*k) && inputs_unchanged(s, n)) {
        *out_chg = (cbi_changes){.all = 0, .count = 0};
        ls->ran_dense = 0;
        ls->macs_effective = 0;
        return 0;
    }

    *a = (cbi_op_args){
        .node = n, .plan = &s->plans[i], .layer = s->layers[i], .n_in = n->n_inputs,
        .out = &s->values[n->output], .out_chg = out_chg, .first = s->first,
        .threshold = (float)(s->thresholds[i] * s->threshold_scale),
        .feed_forward = pol->kind == CBI_POLICY_CBINFER_FF,
        .reuse_indices = s->reuse_1x1, .collect_stats = s->collect_stats,
        .dense_fallback = s->break_even[i] < 1.f, .break_even = s->break_even[i],
        .stats = ls, .policy = pol, .frame_index = frame_index, .refresh = refresh,
        .deterministic = s->deterministic,
    };
    for (int j = 0; j < n->n_inputs; ++j) {
        a->in[j] = &s->values[n->inputs[j]];
        a->in_chg[j] = &s->chg[n->inputs[j]];
    }
    /* ls->ran_dense is preset above; a change-based conv that falls back
     * to its dense path (break-even) sets it. */
    *out_chg = (cbi_changes){.all = 1};
    return 1;
}

void cbi_stream_node_end(cbinfer_stream_t *s, int i)
{
    cbinfer_layer_stats *ls = &s->stats[i];
    cbi_frame_run *r = &s->run;
    if (s->net->nodes[i].op == CBI_OP_CONV) {
        r->changed_px += ls->changed_px;
        r->total_px += ls->total_px;
    }
    if (ls->macs_effective < 0) ls->macs_effective = ls->macs;
    r->macs += ls->macs;
    r->dense_macs += ls->dense_macs;
    r->macs_eff += ls->macs_effective;
    r->ov_arith += ls->overhead_arith;
    r->ov_ldst += ls->overhead_ldst;
}

cbinfer_status cbi_stream_frame_begin(cbinfer_stream_t *s, double t0_ms,
                                      const uint8_t *device_rgb, size_t stride)
{
    if (s->broken != CBINFER_STATUS_SUCCESS)
        return STREAM_FAIL(s, s->broken,
                           "the stream cannot run frames until CBINFER_PARAM_THREADS or "
                           "cbinfer_stream_set_policy succeeds; re-creating its layers "
                           "failed: %s",
                           s->broken_msg);
    s->run = (cbi_frame_run){
        .t0_ms = t0_ms,
        .frame_index = s->first ? 0 : s->frame.frame_index + 1,
        .syncs0 = s->be->host_syncs ? s->be->host_syncs(s->bctx) : 0,
    };
    /* The pushed frame may differ anywhere. */
    s->chg[s->net->input] = (cbi_changes){.all = 1};
    cbi_tensor *in = &s->values[s->net->input];
    if (device_rgb)
        return s->be->upload_rgb8(s->bctx, in, device_rgb, s->width, s->height, stride,
                                  s->net->input_scale, s->net->input_offset, &s->err);
    return s->be->upload(s->bctx, in, s->h_in, &s->err);
}

cbinfer_status cbi_stream_frame_end(cbinfer_stream_t *s, cbinfer_status st)
{
    if (st == CBINFER_STATUS_SUCCESS) st = s->be->synchronize(s->bctx, &s->err);
    if (st != CBINFER_STATUS_SUCCESS) {
        /* Half-updated state cannot be trusted: start over at the next frame. */
        s->first = 1;
        s->have_output = 0;
        return st;
    }
    const cbi_frame_run *r = &s->run;
    s->frame.macs = r->macs;
    s->frame.macs_effective = r->macs_eff;
    s->frame.overhead_arith = r->ov_arith;
    s->frame.overhead_ldst = r->ov_ldst;
    s->frame.dense_macs = r->dense_macs;
    s->frame.changed_share = r->total_px ? (double)r->changed_px / (double)r->total_px : 1.0;
    s->frame.frame_index = r->frame_index;
    s->frame.total_ms = cbi_now_ms() - r->t0_ms;
    s->frame.host_syncs = s->be->host_syncs ? s->be->host_syncs(s->bctx) - r->syncs0 : 0;
    s->first = 0;
    s->have_output = 1;
    return CBINFER_STATUS_SUCCESS;
}

/* Every node of s in order (the input uploaded). */
static cbinfer_status run_network(cbinfer_stream_t *s)
{
    for (int i = 0; i < s->net->n_nodes; ++i) {
        cbi_op_args a;
        cbi_kernel k;
        const int run = cbi_stream_node_begin(s, i, &a, &k);
        if (run < 0) return CBINFER_STATUS_INTERNAL;
        if (!run) continue;
        const double t0 = cbi_now_ms();
        cbinfer_status st = s->be->kernel[k](s->bctx, &a, &s->err);
        if (st != CBINFER_STATUS_SUCCESS) return st;
        if (s->collect_stats) {
            /* Per-layer wall time needs the device to finish the layer. */
            st = s->be->synchronize(s->bctx, &s->err);
            if (st != CBINFER_STATUS_SUCCESS) return st;
            s->stats[i].total_ms = cbi_now_ms() - t0;
        }
        cbi_stream_node_end(s, i);
    }
    return CBINFER_STATUS_SUCCESS;
}

/* Uploads the input (s->h_in, or device_rgb on a backend with
 * upload_rgb8), runs every node, waits for the device; the stream's device
 * is current meanwhile. */
static cbinfer_status process_frame(cbinfer_stream_t *s, double t0_ms, const uint8_t *device_rgb,
                                    size_t stride)
{
    const int saved = bind(s);
    cbinfer_status st = cbi_stream_frame_begin(s, t0_ms, device_rgb, stride);
    if (st == CBINFER_STATUS_SUCCESS) st = run_network(s);
    st = cbi_stream_frame_end(s, st);
    unbind(s, saved);
    return st;
}

static cbinfer_status check_frame_size(cbinfer_stream_t *s, int width, int height)
{
    if (width != s->width || height != s->height)
        return STREAM_FAIL(s, CBINFER_STATUS_BAD_FRAME_SIZE,
                           "frame is %dx%d but the stream was created for %dx%d", width, height,
                           s->width, s->height);
    return CBINFER_STATUS_SUCCESS;
}

/* The checks of an RGB8 frame's arguments. */
static cbinfer_status check_rgb8(cbinfer_stream_t *s, const void *rgb, int width, int height,
                                 size_t stride_bytes)
{
    if (!rgb) return STREAM_FAIL(s, CBINFER_STATUS_NULL_ARGUMENT, "frame pointer is NULL");
    cbinfer_status st = check_frame_size(s, width, height);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    if (s->net->in_c != 3)
        return STREAM_FAIL(s, CBINFER_STATUS_BAD_PARAM,
                           "the network takes %d input channels, not RGB", s->net->in_c);
    if (stride_bytes < (size_t)width * 3)
        return STREAM_FAIL(s, CBINFER_STATUS_BAD_PARAM, "row stride %zu < 3 * width %d",
                           stride_bytes, width);
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbi_stream_stage_rgb8(cbinfer_stream_t *s, const uint8_t *rgb, int width,
                                     int height, size_t stride_bytes)
{
    cbinfer_status st = check_rgb8(s, rgb, width, height, stride_bytes);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    /* NHWC with C = 3 is the RGB8 layout: one scale and offset per value. */
    const float scale = s->net->input_scale, offset = s->net->input_offset;
    for (int y = 0; y < height; ++y) {
        const uint8_t *row = rgb + (size_t)y * stride_bytes;
        float *dst = s->h_in + (size_t)y * width * 3;
        for (int x = 0; x < width * 3; ++x) dst[x] = (float)row[x] * scale + offset;
    }
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbinfer_stream_push_rgb8(cbinfer_stream_t *s, const uint8_t *rgb, int width,
                                        int height, size_t stride_bytes)
{
    if (!s) return CBINFER_STATUS_NULL_ARGUMENT;
    const double t0 = cbi_now_ms();
    const cbinfer_status st = cbi_stream_stage_rgb8(s, rgb, width, height, stride_bytes);
    return st != CBINFER_STATUS_SUCCESS ? st : process_frame(s, t0, NULL, 0);
}

cbinfer_status cbinfer_stream_host_syncs(const cbinfer_stream_t *s, int64_t *count)
{
    if (!s || !count) return CBINFER_STATUS_NULL_ARGUMENT;
    *count = s->be->host_syncs ? s->be->host_syncs(s->bctx) : 0;
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbinfer_stream_push_rgb8_device(cbinfer_stream_t *s, const void *rgb, int width,
                                               int height, size_t stride_bytes)
{
    if (!s) return CBINFER_STATUS_NULL_ARGUMENT;
    if (!s->be->upload_rgb8) /* device memory is host memory */
        return cbinfer_stream_push_rgb8(s, rgb, width, height, stride_bytes);
    const double t0 = cbi_now_ms();
    cbinfer_status st = check_rgb8(s, rgb, width, height, stride_bytes);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    /* Checked before the frame starts: a wrong pointer leaves the state be. */
    const int saved = bind(s);
    st = s->be->check_device_ptr(s->bctx, rgb, 1, "push_rgb8_device: the frame", &s->err);
    unbind(s, saved);
    return st != CBINFER_STATUS_SUCCESS ? st : process_frame(s, t0, rgb, stride_bytes);
}

cbinfer_status cbinfer_stream_push_nchw(cbinfer_stream_t *s, const float *data, int channels,
                                        int height, int width)
{
    if (!s) return CBINFER_STATUS_NULL_ARGUMENT;
    if (!data) return STREAM_FAIL(s, CBINFER_STATUS_NULL_ARGUMENT, "tensor pointer is NULL");
    const double t0 = cbi_now_ms();
    cbinfer_status st = check_frame_size(s, width, height);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    if (channels != s->net->in_c)
        return STREAM_FAIL(s, CBINFER_STATUS_BAD_FRAME_SIZE,
                           "tensor has %d channels, the network takes %d", channels, s->net->in_c);
    const size_t hw = (size_t)height * width;
    for (size_t p = 0; p < hw; ++p)
        for (int c = 0; c < channels; ++c) s->h_in[p * channels + c] = data[c * hw + p];
    return process_frame(s, t0, NULL, 0);
}

cbinfer_status cbinfer_stream_output_dims_at(const cbinfer_stream_t *s, int index, int *channels,
                                             int *height, int *width)
{
    if (!s) return CBINFER_STATUS_NULL_ARGUMENT;
    if (index < 0 || index >= s->net->n_outputs) return CBINFER_STATUS_BAD_PARAM;
    const cbi_shape o = s->shapes[s->net->outputs[index]];
    if (channels) *channels = o.c;
    if (height) *height = o.h;
    if (width) *width = o.w;
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbinfer_stream_output_dims(const cbinfer_stream_t *s, int *channels, int *height,
                                          int *width)
{
    return cbinfer_stream_output_dims_at(s, 0, channels, height, width);
}

/* Output `index` of the last frame into dst: host memory, or with `device`
 * device memory of a backend with download_nchw. */
static cbinfer_status read_output(cbinfer_stream_t *s, int index, void *dst, size_t capacity,
                                  int device)
{
    if (index < 0 || index >= s->net->n_outputs)
        return STREAM_FAIL(s, CBINFER_STATUS_BAD_PARAM, "output %d of a network with %d", index,
                           s->net->n_outputs);
    if (!dst) return STREAM_FAIL(s, CBINFER_STATUS_NULL_ARGUMENT, "output buffer is NULL");
    if (!s->have_output)
        return STREAM_FAIL(s, CBINFER_STATUS_NOT_READY, "no frame processed since creation or reset");
    const int v = s->net->outputs[index];
    const cbi_shape o = s->shapes[v];
    const size_t hw = (size_t)o.h * o.w;
    if (capacity < hw * o.c)
        return STREAM_FAIL(s, CBINFER_STATUS_BUFFER_TOO_SMALL,
                           "output %d needs %zu floats, buffer has %zu", index, hw * o.c, capacity);
    if (device) {
        cbinfer_status st = s->be->check_device_ptr(s->bctx, dst, sizeof(float),
                                                    "read_output_device: the buffer", &s->err);
        if (st == CBINFER_STATUS_SUCCESS)
            st = s->be->download_nchw(s->bctx, dst, &s->values[v], &s->err);
        /* A batch's member queues on the batch's device stream, which its
         * caller cannot order against: the read waits. */
        if (st == CBINFER_STATUS_SUCCESS && s->batch) st = s->be->synchronize(s->bctx, &s->err);
        return st;
    }
    cbinfer_status st = s->be->download(s->bctx, s->h_out, &s->values[v], &s->err);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    float *out = dst;
    for (size_t p = 0; p < hw; ++p)
        for (int c = 0; c < o.c; ++c) out[c * hw + p] = s->h_out[p * o.c + c];
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbinfer_stream_read_output_at(cbinfer_stream_t *s, int index, float *dst,
                                             size_t capacity)
{
    if (!s) return CBINFER_STATUS_NULL_ARGUMENT;
    const int saved = bind(s);
    const cbinfer_status st = read_output(s, index, dst, capacity, 0);
    unbind(s, saved);
    return st;
}

cbinfer_status cbinfer_stream_read_output_device(cbinfer_stream_t *s, int index, void *dst,
                                                 size_t capacity)
{
    if (!s) return CBINFER_STATUS_NULL_ARGUMENT;
    const int saved = bind(s);
    const cbinfer_status st = read_output(s, index, dst, capacity, s->be->download_nchw != NULL);
    unbind(s, saved);
    return st;
}

cbinfer_status cbinfer_stream_read_output(cbinfer_stream_t *s, float *dst, size_t capacity)
{
    return cbinfer_stream_read_output_at(s, 0, dst, capacity);
}

int cbinfer_stream_layer_count(const cbinfer_stream_t *s)
{
    return s ? s->net->n_nodes : 0;
}

cbinfer_status cbinfer_stream_layer_stats(const cbinfer_stream_t *s, int index,
                                          cbinfer_layer_stats *out)
{
    if (!s || !out) return CBINFER_STATUS_NULL_ARGUMENT;
    if (index < 0 || index >= s->net->n_nodes) return CBINFER_STATUS_BAD_PARAM;
    *out = s->stats[index];
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbinfer_stream_frame_stats(const cbinfer_stream_t *s, cbinfer_frame_stats *out)
{
    if (!s || !out) return CBINFER_STATUS_NULL_ARGUMENT;
    if (!s->have_output) return CBINFER_STATUS_NOT_READY;
    *out = s->frame;
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbinfer_stream_conv_input_stats(cbinfer_stream_t *s, int conv_index, double *mean,
                                               double *stddev)
{
    if (!s) return CBINFER_STATUS_NULL_ARGUMENT;
    if (!mean || !stddev)
        return STREAM_FAIL(s, CBINFER_STATUS_NULL_ARGUMENT, "mean or stddev pointer is NULL");
    if (conv_index < 0 || conv_index >= s->net->n_conv)
        return STREAM_FAIL(s, CBINFER_STATUS_BAD_PARAM, "conv index %d outside [0, %d)",
                           conv_index, s->net->n_conv);
    if (!s->have_output)
        return STREAM_FAIL(s, CBINFER_STATUS_NOT_READY, "no frame processed since creation or reset");
    const cbi_tensor *in = &s->values[s->net->nodes[s->net->conv_nodes[conv_index]].inputs[0]];
    const int saved = bind(s);
    cbinfer_status st = s->be->download(s->bctx, s->h_conv_in, in, &s->err);
    unbind(s, saved);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    /* Two passes in double: the tensors are small enough, and a one-pass sum of
     * squares loses the spread of inputs with a large mean. */
    const size_t n = cbi_shape_elems(in->shape);
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += s->h_conv_in[i];
    const double m = n ? sum / (double)n : 0.0;
    double sq = 0;
    for (size_t i = 0; i < n; ++i) {
        const double d = s->h_conv_in[i] - m;
        sq += d * d;
    }
    *mean = m;
    *stddev = n ? sqrt(sq / (double)n) : 0.0;
    return CBINFER_STATUS_SUCCESS;
}
