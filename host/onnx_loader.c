/*
 * The ONNX loader: parses a model with protobuf-c (the parser is generated at
 * build time from the system's onnx.proto), validates it and lowers it to the
 * network IR of net.h:
 *   - nodes in topological order, nodes that do not reach the output dropped;
 *   - weights folded into their nodes and reordered for NHWC im2col;
 *   - BatchNormalization folded into the Conv/ConvTranspose that feeds it;
 *   - Relu/LeakyRelu/PRelu/Clip fused into the Conv/ConvTranspose that feeds
 *     it alone; Identity and Dropout removed.
 * Every failure returns a status and a message naming the node and op at
 * fault; every path frees what it allocated.
 *
 * This file holds the entry points, the file reading, the nesting check
 * before unpacking, the metadata and the order of the passes (load_model);
 * the passes themselves are in onnx_attrs.c, onnx_tensors.c, onnx_graph.c,
 * onnx_ops.c and onnx_ops_resize.c (see onnx_loader_internal.h).
 */
#define _POSIX_C_SOURCE 200809L /* fstat, fileno */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "onnx_loader_internal.h"

/* ------------------------------------------------------------------------
 * Loading: metadata, the fixed-size check, the order of the passes
 * ---------------------------------------------------------------------- */
/* A decimal number, parsed by hand because strtod follows the embedding
 * application's locale ("0,5" in some) and the model's metadata does not. */
static int parse_decimal(const char *s, double *out)
{
    double m = 0.0;
    int exp10 = 0, digits = 0, neg = 0;
    if (*s == '+' || *s == '-') neg = *s++ == '-';
    for (; *s >= '0' && *s <= '9'; ++s, ++digits) m = m * 10.0 + (*s - '0');
    if (*s == '.')
        for (++s; *s >= '0' && *s <= '9'; ++s, ++digits, --exp10) m = m * 10.0 + (*s - '0');
    if (!digits) return 0;
    if (*s == 'e' || *s == 'E') {
        int eneg = 0, e = 0, edigits = 0;
        ++s;
        if (*s == '+' || *s == '-') eneg = *s++ == '-';
        for (; *s >= '0' && *s <= '9'; ++s, ++edigits)
            if (e < 10000) e = e * 10 + (*s - '0');
        if (!edigits) return 0;
        exp10 += eneg ? -e : e;
    }
    if (*s) return 0;
    double v = exp10 < 0 ? m / pow(10.0, -exp10) : m * pow(10.0, exp10);
    if (!isfinite(v)) return 0;
    *out = neg ? -v : v;
    return 1;
}

static cbinfer_status read_metadata(loader *L, const Onnx__ModelProto *m)
{
    cbi_net *net = L->net;
    net->input_scale = 1.0f / 255.0f;
    net->input_offset = 0.0f;
    for (size_t i = 0; i < m->n_metadata_props; ++i) {
        const Onnx__StringStringEntryProto *p = m->metadata_props[i];
        float *dst = NULL;
        if (!p->key) continue;
        if (strcmp(p->key, "cbinfer.input_scale") == 0) dst = &net->input_scale;
        if (strcmp(p->key, "cbinfer.input_offset") == 0) dst = &net->input_offset;
        if (!dst) continue;
        double v;
        if (!p->value || !parse_decimal(p->value, &v) || fabs(v) > 3.0e38)
            return cbi_fail(L->e, CBINFER_STATUS_MODEL_MALFORMED,
                            "metadata %s = '%s' is not a decimal number", p->key,
                            p->value ? p->value : "");
        *dst = (float)v;
    }
    return CBINFER_STATUS_SUCCESS;
}

/* A fixed-size network is planned once here, so that a model that cannot run
 * at its own size is rejected at load rather than at stream creation. */
static cbinfer_status check_fixed_size(loader *L)
{
    cbi_net *net = L->net;
    if (net->in_h <= 0 || net->in_w <= 0) return CBINFER_STATUS_SUCCESS;
    cbi_shape *shapes = cbi_malloc_array((size_t)net->n_values, sizeof *shapes);
    cbi_node_plan *plans = cbi_malloc_array((size_t)net->n_nodes, sizeof *plans);
    cbinfer_status st;
    char why[sizeof L->e->msg];
    if (!shapes || !plans) {
        st = cbi_onnx_oom(L);
    } else {
        st = cbi_net_plan(net, net->in_h, net->in_w, shapes, plans, why, sizeof why);
        if (st == CBINFER_STATUS_BAD_FRAME_SIZE)
            st = cbi_fail(L->e, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                          "the network cannot run at its own input size: %s", why);
        else if (st)
            st = cbi_fail(L->e, st, "%s", why);
    }
    free(shapes);
    free(plans);
    return st;
}

static void loader_free(loader *L)
{
    for (int i = 0; i < L->cap_nodes && L->extra; ++i) {
        free(L->extra[i].scale);
        free(L->extra[i].shift);
    }
    free(L->extra);
    free(L->consts);
    cbi_onnx_smap_free(&L->const_map);
    cbi_onnx_smap_free(&L->value_map);
    cbi_onnx_smap_free(&L->producer);
    cbi_onnx_smap_free(&L->node_names);
    free(L->skip);
    free(L->live);
    free(L->order);
}

static cbinfer_status load_model(const Onnx__ModelProto *m, cbi_net *net, cbi_err *e)
{
    loader L;
    memset(&L, 0, sizeof L);
    L.e = e;
    L.net = net;
    L.opset = -1;
    for (size_t i = 0; i < m->n_opset_import; ++i)
        if (cbi_onnx_is_default_domain(m->opset_import[i]->domain) &&
            m->opset_import[i]->has_version)
            L.opset = m->opset_import[i]->version;
    if (!m->graph)
        return cbi_fail(e, CBINFER_STATUS_MODEL_MALFORMED, "the model has no graph");
    if (L.opset < 0)
        return cbi_fail(e, CBINFER_STATUS_MODEL_MALFORMED,
                        "the model imports no opset of the default ONNX domain");
    const Onnx__GraphProto *g = L.g = m->graph;
    if (g->n_node > (size_t)INT_MAX / 2 || g->n_initializer > (size_t)INT_MAX / 2)
        return cbi_fail(e, CBINFER_STATUS_MODEL_MALFORMED, "the graph is too large");
    if (g->n_output < 1 || g->n_output > CBI_MAX_OUTPUTS)
        return cbi_fail(e, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                        "the graph has %zu outputs; 1 to %d are supported", g->n_output,
                        CBI_MAX_OUTPUTS);
    for (size_t k = 0; k < g->n_output; ++k) {
        const char *name = g->output[k]->name;
        if (!name || !*name)
            return cbi_fail(e, CBINFER_STATUS_MODEL_MALFORMED, "graph output %zu has no name", k);
        for (size_t j = 0; j < k; ++j)
            if (strcmp(g->output[j]->name, name) == 0)
                return cbi_fail(e, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                                "graph output '%s' is listed twice", name);
    }

    cbinfer_status st;
    L.cap_nodes = (int)g->n_node;
    L.cap_values = (int)g->n_node + 1;
    L.extra = cbi_calloc(g->n_node, sizeof *L.extra);
    L.consts = cbi_calloc(g->n_initializer + g->n_node, sizeof *L.consts);
    L.skip = cbi_calloc(g->n_node, 1);
    net->nodes = cbi_calloc(g->n_node, sizeof *net->nodes);
    net->values = cbi_calloc(g->n_node + 1, sizeof *net->values);
    net->outputs = cbi_calloc(g->n_output, sizeof *net->outputs);
    net->n_outputs = (int)g->n_output;
    if (!L.extra || !L.consts || !L.skip || !net->nodes || !net->values || !net->outputs) {
        st = cbi_onnx_oom(&L);
        goto done;
    }
    if ((st = read_metadata(&L, m)) || (st = cbi_onnx_collect_constants(&L)) ||
        (st = cbi_onnx_find_input(&L)) || (st = cbi_onnx_sort_nodes(&L)) ||
        (st = cbi_onnx_mark_live(&L)) || (st = cbi_onnx_lower_nodes(&L)))
        goto done;
    for (int k = 0; k < net->n_outputs; ++k) {
        const char *out_name = g->output[k]->name;
        if (!cbi_onnx_smap_get(&L.value_map, out_name, &net->outputs[k])) {
            st = cbi_fail(e, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                          "graph output '%s' is not an activation", out_name);
            goto done;
        }
        if (net->outputs[k] == net->input) {
            st = cbi_fail(e, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                          "graph output '%s' is the graph input; there is nothing to compute",
                          out_name);
            goto done;
        }
        for (int j = 0; j < k; ++j)
            if (net->outputs[j] == net->outputs[k]) {
                st = cbi_fail(e, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                              "graph outputs '%s' and '%s' are the same tensor",
                              g->output[j]->name, out_name);
                goto done;
            }
    }
    if ((st = cbi_onnx_fold_and_fuse(&L)) || (st = cbi_onnx_compact(&L)) ||
        (st = check_fixed_size(&L)))
        goto done;
done:
    loader_free(&L);
    return st;
}

/* ------------------------------------------------------------------------
 * Public entry points
 * ---------------------------------------------------------------------- */
/* Nested messages deeper than this are refused before unpacking: protobuf-c
 * unpacks nested messages by recursion with no limit of its own, so a small
 * file of a few thousand nested messages would overflow the stack. Real
 * models nest under 10 deep (model, graph, value info, type, tensor type,
 * shape, dimension; or a subgraph of an attribute). */
#define ONNX_MAX_NESTING 100

/* One base-128 varint at *p (before end); 0 if it runs past end or over 10
 * bytes. */
static int wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 70 && *p < end; shift += 7) {
        const uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return 0;
}

/* The deepest nesting of message fields in the wire bytes [p, end) of a
 * message of type desc, counting this one as depth; the scan stops past
 * ONNX_MAX_NESTING, so its own recursion is bounded. Bytes it cannot read are
 * left to protobuf-c, which refuses them. */
static int wire_depth(const ProtobufCMessageDescriptor *desc, const uint8_t *p, const uint8_t *end,
                      int depth)
{
    int deepest = depth;
    if (depth > ONNX_MAX_NESTING) return depth;
    while (p < end) {
        uint64_t tag, v;
        if (!wire_varint(&p, end, &tag)) return deepest;
        switch (tag & 7) {
        case 0: /* varint */
            if (!wire_varint(&p, end, &v)) return deepest;
            break;
        case 1: /* 64 bits */
            if (end - p < 8) return deepest;
            p += 8;
            break;
        case 5: /* 32 bits */
            if (end - p < 4) return deepest;
            p += 4;
            break;
        case 2: { /* length-delimited: bytes, string, packed, or a message */
            if (!wire_varint(&p, end, &v) || v > (uint64_t)(end - p)) return deepest;
            const ProtobufCFieldDescriptor *f =
                tag >> 3 <= UINT32_MAX
                    ? protobuf_c_message_descriptor_get_field(desc, (unsigned)(tag >> 3))
                    : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                const int d = wire_depth(f->descriptor, p, p + v, depth + 1);
                if (d > deepest) deepest = d;
                if (deepest > ONNX_MAX_NESTING) return deepest;
            }
            p += v;
            break;
        }
        default: /* groups (3, 4) and reserved types: protobuf-c refuses them */
            return deepest;
        }
    }
    return deepest;
}

static cbinfer_status load_buffer(const void *data, size_t size, cbinfer_network_t **out,
                                  cbi_err *e)
{
    const uint8_t *bytes = data;
    if (wire_depth(&onnx__model_proto__descriptor, bytes, bytes + size, 0) > ONNX_MAX_NESTING)
        return cbi_fail(e, CBINFER_STATUS_MODEL_MALFORMED,
                        "messages nested more than %d deep: not an ONNX model this loader reads",
                        ONNX_MAX_NESTING);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, data);
    if (!m)
        return cbi_fail(e, CBINFER_STATUS_MODEL_MALFORMED,
                        "not a valid ONNX protobuf (corrupt or truncated, %zu bytes)", size);
    cbinfer_network_t *nw = calloc(1, sizeof *nw);
    cbinfer_status st;
    if (!nw) {
        st = cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "out of memory while loading the model");
    } else {
        st = load_model(m, &nw->net, e);
        if (st) {
            cbi_net_clear(&nw->net);
            free(nw);
        } else {
            *out = nw;
        }
    }
    onnx__model_proto__free_unpacked(m, NULL);
    return st;
}

static void finish(const cbi_err *e, cbinfer_status st, char *err, size_t err_len)
{
    if (st)
        cbi_err_copy(e, err, err_len);
    else if (err && err_len)
        err[0] = '\0';
}

cbinfer_status cbinfer_network_load_memory(const void *data, size_t size_bytes,
                                           cbinfer_network_t **out, char *err, size_t err_len)
{
    cbi_err e;
    cbinfer_status st;
    e.msg[0] = '\0';
    if (out) *out = NULL;
    if (!data || !out)
        st = cbi_fail(&e, CBINFER_STATUS_NULL_ARGUMENT,
                      "cbinfer_network_load_memory: data and out must not be NULL");
    else
        st = load_buffer(data, size_bytes, out, &e);
    finish(&e, st, err, err_len);
    return st;
}

static const char *errno_text(int err)
{
    switch (err) {
    case ENOENT: return "no such file";
    case EACCES: return "permission denied";
    case EISDIR: return "is a directory";
    case ENOMEM: return "out of memory";
    default: return "I/O error";
    }
}

/* Reads a whole file of at most max_bytes: a larger regular file is refused
 * before reading, anything else (a pipe, a device) once it passes the cap.
 * Statuses MODEL_IO and OUT_OF_MEMORY, with the message. */
static cbinfer_status read_file(const char *path, size_t max_bytes, uint8_t **buf, size_t *len,
                                cbi_err *e)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return cbi_fail(e, CBINFER_STATUS_MODEL_IO, "cannot read model file '%s': %s", path,
                        errno_text(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size > max_bytes) {
        fclose(f);
        return cbi_fail(e, CBINFER_STATUS_MODEL_IO,
                        "model file '%s' has %lld bytes, over the cap of %zu", path,
                        (long long)sb.st_size, max_bytes);
    }
    size_t cap = 0, used = 0;
    uint8_t *b = NULL;
    cbinfer_status st = CBINFER_STATUS_SUCCESS;
    for (;;) {
        if (used == cap) {
            size_t ncap = cap ? cap * 2 : (size_t)1 << 16;
            if (ncap > max_bytes + 1) ncap = max_bytes + 1; /* one byte tells "too long" */
            uint8_t *nb = ncap > cap ? realloc(b, ncap) : NULL;
            if (!nb) {
                st = cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "out of memory reading '%s'",
                              path);
                break;
            }
            b = nb;
            cap = ncap;
        }
        const size_t got = fread(b + used, 1, cap - used, f);
        used += got;
        if (used > max_bytes) {
            st = cbi_fail(e, CBINFER_STATUS_MODEL_IO,
                          "model file '%s' has more than the cap of %zu bytes", path, max_bytes);
            break;
        }
        if (got == 0) {
            if (ferror(f))
                st = cbi_fail(e, CBINFER_STATUS_MODEL_IO, "cannot read model file '%s': %s",
                              path, errno_text(errno ? errno : EIO));
            break;
        }
    }
    fclose(f);
    if (st != CBINFER_STATUS_SUCCESS) {
        free(b);
        return st;
    }
    *buf = b;
    *len = used;
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbinfer_network_load_limited(const char *path, size_t max_bytes,
                                            cbinfer_network_t **out, char *err, size_t err_len)
{
    cbi_err e;
    cbinfer_status st;
    e.msg[0] = '\0';
    if (out) *out = NULL;
    if (!path || !out) {
        st = cbi_fail(&e, CBINFER_STATUS_NULL_ARGUMENT,
                      "cbinfer_network_load: path and out must not be NULL");
    } else if (max_bytes > CBINFER_MODEL_MAX_BYTES) {
        st = cbi_fail(&e, CBINFER_STATUS_BAD_PARAM,
                      "cbinfer_network_load_limited: a cap of %zu bytes is over "
                      "CBINFER_MODEL_MAX_BYTES (%zu)", max_bytes, CBINFER_MODEL_MAX_BYTES);
    } else {
        uint8_t *buf;
        size_t len;
        st = read_file(path, max_bytes, &buf, &len, &e);
        if (st == CBINFER_STATUS_SUCCESS) {
            st = load_buffer(buf, len, out, &e);
            free(buf);
        }
    }
    finish(&e, st, err, err_len);
    return st;
}

cbinfer_status cbinfer_network_load(const char *path, cbinfer_network_t **out, char *err,
                                    size_t err_len)
{
    return cbinfer_network_load_limited(path, CBINFER_MODEL_MAX_BYTES, out, err, err_len);
}
