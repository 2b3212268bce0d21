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
 */
#define _POSIX_C_SOURCE 200809L /* fstat, fileno */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"
#include "net.h"
#include "onnx.pb-c.h"

/* Upper bound on kernel sizes, strides, dilations and pads: far above any real
 * CNN, low enough that no shape arithmetic in cbi_net_plan() can overflow. */
#define MAX_WINDOW 65536
/* Upper bound on Resize output sizes given as `sizes`. */
#define MAX_RESIZE_PX (1 << 24)

/* ------------------------------------------------------------------------
 * String -> int hash map (open addressing). Keys are borrowed: they point
 * into the unpacked protobuf or into the network, both of which outlive it.
 * ---------------------------------------------------------------------- */
typedef struct smap {
    const char **keys;
    int *vals;
    size_t cap; /* power of two, or 0 while empty */
    size_t n;
} smap;

static size_t smap_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; ++s) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h;
}

static size_t smap_slot(const smap *m, const char *k)
{
    size_t mask = m->cap - 1, i = smap_hash(k) & mask;
    while (m->keys[i] && strcmp(m->keys[i], k) != 0) i = (i + 1) & mask;
    return i;
}

static int smap_get(const smap *m, const char *k, int *v)
{
    if (!m->cap || !k) return 0;
    size_t i = smap_slot(m, k);
    if (!m->keys[i]) return 0;
    if (v) *v = m->vals[i];
    return 1;
}

/* Inserts or overwrites; -1 when out of memory. */
static int smap_put(smap *m, const char *k, int v)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        smap g = {cbi_calloc(cap, sizeof *g.keys), cbi_calloc(cap, sizeof *g.vals), cap, 0};
        if (!g.keys || !g.vals) {
            free(g.keys);
            free(g.vals);
            return -1;
        }
        for (size_t i = 0; i < m->cap; ++i) {
            if (!m->keys[i]) continue;
            size_t j = smap_slot(&g, m->keys[i]);
            g.keys[j] = m->keys[i];
            g.vals[j] = m->vals[i];
            g.n++;
        }
        free(m->keys);
        free(m->vals);
        *m = g;
    }
    size_t i = smap_slot(m, k);
    if (!m->keys[i]) {
        m->keys[i] = k;
        m->n++;
    }
    m->vals[i] = v;
    return 0;
}

static void smap_free(smap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------------
 * Loader state
 * ---------------------------------------------------------------------- */

/* What the passes after lowering still need to know about an IR node. */
typedef struct node_extra {
    int is_bn;      /* BatchNormalization placeholder, folded later */
    double *scale;  /* gamma / sqrt(var + eps), per channel */
    double *shift;  /* beta - mean * scale, per channel */
    int dead;       /* folded or fused away */
} node_extra;

typedef struct loader {
    const Onnx__GraphProto *g;
    int64_t opset; /* default-domain opset */
    cbi_err *e;
    cbi_net *net;
    int cap_nodes, cap_values;
    node_extra *extra; /* parallel to net->nodes */

    const Onnx__TensorProto **consts; /* initializers and Constant outputs */
    int n_consts;
    smap const_map;   /* tensor name -> index in consts */
    smap value_map;   /* tensor name -> value id (activations; aliases too) */
    smap producer;    /* tensor name -> ONNX node index */
    smap node_names;  /* IR node names in use */
    const char *input_name;
    const Onnx__ValueInfoProto *input_vi;

    unsigned char *skip; /* per ONNX node: a Constant, or Identity of one */
    unsigned char *live; /* per ONNX node: reaches the graph output */
    int *order;          /* live-or-not ONNX node indices, topological */
    int n_order;

    const char *cur;     /* display name of the node being lowered */
    char cur_buf[256];
} loader;

static const char *node_op(const Onnx__NodeProto *n)
{
    return n->op_type ? n->op_type : "";
}

/* The ONNX name, or "<OpType>_<index>" when the file leaves it empty. */
static const char *node_base_name(const Onnx__NodeProto *n, int idx, char *buf, size_t size)
{
    if (n->name && *n->name) return n->name;
    snprintf(buf, size, "%s_%d", node_op(n), idx);
    return buf;
}

static void set_cur(loader *L, const Onnx__NodeProto *n, int idx)
{
    L->cur = node_base_name(n, idx, L->cur_buf, sizeof L->cur_buf);
}

/* A failure attributed to the node being lowered. */
static cbinfer_status nfail(loader *L, const Onnx__NodeProto *n, cbinfer_status st,
                            const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static cbinfer_status nfail(loader *L, const Onnx__NodeProto *n, cbinfer_status st,
                            const char *fmt, ...)
{
    char detail[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return cbi_fail(L->e, st, "node '%s' (%s): %s", L->cur ? L->cur : "?", node_op(n), detail);
}

static cbinfer_status oom(loader *L)
{
    return cbi_fail(L->e, CBINFER_STATUS_OUT_OF_MEMORY, "out of memory while loading the model");
}

static int is_default_domain(const char *d)
{
    return !d || !*d || strcmp(d, "ai.onnx") == 0;
}

/* Input k of n, or NULL when absent or left empty (an omitted optional). */
static const char *opt_input(const Onnx__NodeProto *n, size_t k)
{
    return k < n->n_input && n->input[k] && *n->input[k] ? n->input[k] : NULL;
}

static const Onnx__TensorProto *const_get(const loader *L, const char *name)
{
    int i;
    return name && smap_get(&L->const_map, name, &i) ? L->consts[i] : NULL;
}

/* ------------------------------------------------------------------------
 * Attributes
 * ---------------------------------------------------------------------- */
static const Onnx__AttributeProto *attr_get(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; ++i)
        if (n->attribute[i]->name && strcmp(n->attribute[i]->name, name) == 0)
            return n->attribute[i];
    return NULL;
}

static const char *attr_type_name(Onnx__AttributeProto__AttributeType t)
{
    switch (t) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: return "FLOAT";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: return "INT";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: return "STRING";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: return "TENSOR";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH: return "GRAPH";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS: return "FLOATS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS: return "INTS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS: return "STRINGS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS: return "TENSORS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS: return "GRAPHS";
    default: return "another type";
    }
}

/* The type an attribute holds: its type field, or, in files that leave it
 * unset (before IR version 2), the one value field that is filled. */
static Onnx__AttributeProto__AttributeType attr_type_of(const Onnx__AttributeProto *a)
{
    if (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED) return a->type;
    if (a->has_f) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    if (a->has_i) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    if (a->has_s) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    if (a->t) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    if (a->g) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
    if (a->n_floats) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
    if (a->n_ints) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    if (a->n_strings) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS;
    return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED;
}

/* Every attribute the loader reads goes through here: one of the wrong type
 * (strides given as FLOATS, say) is refused, never read as absent. An empty
 * list without a type is taken as an empty list of the expected type. */
static cbinfer_status attr_typed(loader *L, const Onnx__NodeProto *n, const char *name,
                                 Onnx__AttributeProto__AttributeType want,
                                 const Onnx__AttributeProto **out)
{
    const Onnx__AttributeProto *a = attr_get(n, name);
    *out = a;
    if (!a) return CBINFER_STATUS_SUCCESS;
    const Onnx__AttributeProto__AttributeType t = attr_type_of(a);
    if (t == want || t == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED) return CBINFER_STATUS_SUCCESS;
    return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR, "attribute '%s' is %s, %s expected",
                 name, attr_type_name(t), attr_type_name(want));
}

static cbinfer_status attr_int(loader *L, const Onnx__NodeProto *n, const char *name,
                               int64_t def, int64_t *v)
{
    const Onnx__AttributeProto *a;
    cbinfer_status st = attr_typed(L, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, &a);
    *v = def;
    if (st || !a) return st;
    /* A typed attribute without its value holds the proto3 default, 0
     * (writers through onnx.proto3 leave such values out; the ONNX checker
     * accepts them). */
    *v = a->has_i ? a->i : 0;
    return CBINFER_STATUS_SUCCESS;
}

static cbinfer_status attr_float(loader *L, const Onnx__NodeProto *n, const char *name,
                                 float def, float *v)
{
    const Onnx__AttributeProto *a;
    cbinfer_status st = attr_typed(L, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT, &a);
    *v = def;
    if (st || !a) return st;
    *v = a->has_f ? a->f : 0.f; /* the proto3 default, as attr_int */
    return CBINFER_STATUS_SUCCESS;
}

/* An INTS attribute of exactly len values; out is left as is when absent (an
 * empty list counts as absent). */
static cbinfer_status attr_ints(loader *L, const Onnx__NodeProto *n, const char *name,
                                size_t len, int64_t *out, int *found)
{
    const Onnx__AttributeProto *a;
    cbinfer_status st = attr_typed(L, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS, &a);
    if (found) *found = 0;
    if (st || !a || a->n_ints == 0) return st;
    if (a->n_ints != len)
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                     "attribute '%s' has %zu values, %zu expected (2-D spatial ops only)", name,
                     a->n_ints, len);
    memcpy(out, a->ints, len * sizeof *out);
    if (found) *found = 1;
    return CBINFER_STATUS_SUCCESS;
}

/* A STRING attribute that must be one of choices; *out is its index, or def
 * when the attribute is absent. */
static cbinfer_status attr_enum(loader *L, const Onnx__NodeProto *n, const char *name,
                                const char *const *choices, int n_choices, int def, int *out)
{
    const Onnx__AttributeProto *a;
    cbinfer_status st = attr_typed(L, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING, &a);
    *out = def;
    if (st || !a) return st;
    for (int k = 0; k < n_choices; ++k) {
        if (strlen(choices[k]) == a->s.len && memcmp(choices[k], a->s.data, a->s.len) == 0) {
            *out = k;
            return CBINFER_STATUS_SUCCESS;
        }
    }
    char list[256] = "";
    size_t used = 0;
    for (int k = 0; k < n_choices && used < sizeof list; ++k)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "",
                                 choices[k]);
    int shown = a->s.len > 64 ? 64 : (int)a->s.len;
    return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                 "%s = '%.*s' is not supported (supported: %s)", name, shown,
                 a->s.data ? (const char *)a->s.data : "", list);
}

/* ------------------------------------------------------------------------
 * Initializers
 * ---------------------------------------------------------------------- */
static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | ((uint64_t)le32(p + 4) << 32);
}

static float f32_from_bits(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static double f64_from_bits(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0) {
        /* Zero or subnormal: man * 2^-24, exact in float. */
        float v = ldexpf((float)man, -24);
        return sign ? -v : v;
    }
    if (exp == 31) return f32_from_bits(sign | 0x7f800000u | (man << 13));
    return f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
}

static const char *dtype_name(int t)
{
    static const char *const names[] = {"undefined", "float", "uint8", "int8", "uint16",
                                        "int16", "int32", "int64", "string", "bool",
                                        "float16", "double", "uint32", "uint64", "complex64",
                                        "complex128", "bfloat16"};
    return t >= 0 && t < (int)(sizeof names / sizeof names[0]) ? names[t] : "unknown";
}

static const char *tname(const Onnx__TensorProto *t)
{
    return t->name ? t->name : "";
}

/* Validates location and dims; *count gets the element count. */
static cbinfer_status tensor_check(loader *L, const Onnx__NodeProto *n, const Onnx__TensorProto *t,
                                   size_t *count)
{
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                     "initializer '%s' uses external data, which is not supported", tname(t));
    int64_t numel = 1;
    for (size_t i = 0; i < t->n_dims; ++i) {
        int64_t d = t->dims[i];
        if (d < 0 || (d > 0 && numel > INT_MAX / d))
            return nfail(L, n, CBINFER_STATUS_MODEL_MALFORMED,
                         "initializer '%s' has invalid dims", tname(t));
        numel *= d;
    }
    *count = (size_t)numel;
    return CBINFER_STATUS_SUCCESS;
}

/* Data present but disagreeing with the dims is a weight-size error; no data
 * at all, or a byte count that is not whole elements, is a corrupt file. */
static cbinfer_status data_size_fail(loader *L, const Onnx__NodeProto *n,
                                     const Onnx__TensorProto *t, size_t have, size_t bytes,
                                     size_t elem, size_t need)
{
    if (have == 0 && bytes == 0)
        return nfail(L, n, CBINFER_STATUS_MODEL_MALFORMED,
                     "initializer '%s' has no data (%zu values expected)", tname(t), need);
    if (bytes % elem != 0)
        return nfail(L, n, CBINFER_STATUS_MODEL_MALFORMED,
                     "initializer '%s': raw_data holds %zu bytes, not whole %zu-byte elements",
                     tname(t), bytes, elem);
    return nfail(L, n, CBINFER_STATUS_MODEL_WEIGHT_MISMATCH,
                 "initializer '%s' holds %zu values but its dims need %zu", tname(t),
                 have ? have : bytes / elem, need);
}

/* Any floating-point initializer as a new float array (little-endian raw_data
 * or the typed fields; float16/bfloat16 halves live in int32_data). */
static cbinfer_status tensor_floats(loader *L, const Onnx__NodeProto *n,
                                    const Onnx__TensorProto *t, float **out, size_t *count)
{
    *out = NULL;
    size_t cnt, elem, have;
    cbinfer_status st = tensor_check(L, n, t, &cnt);
    if (st) return st;
    int type = t->has_data_type ? t->data_type : 0;
    switch (type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: elem = 4; have = t->n_float_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: elem = 2; have = t->n_int32_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: elem = 8; have = t->n_double_data; break;
    default:
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                     "initializer '%s' has data type %s; float, float16, bfloat16 or double "
                     "expected",
                     tname(t), dtype_name(type));
    }
    const uint8_t *raw = NULL;
    if (t->has_raw_data && (t->raw_data.len > 0 || have == 0)) {
        if (t->raw_data.len != cnt * elem)
            return data_size_fail(L, n, t, 0, t->raw_data.len, elem, cnt);
        raw = t->raw_data.data;
    } else if (have != cnt) {
        return data_size_fail(L, n, t, have, 0, elem, cnt);
    }
    float *f = cbi_malloc_array(cnt, sizeof *f);
    if (!f) return oom(L);
    for (size_t i = 0; i < cnt; ++i) {
        switch (type) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
            f[i] = raw ? f32_from_bits(le32(raw + 4 * i)) : t->float_data[i];
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
            f[i] = half_to_float(raw ? le16(raw + 2 * i) : (uint16_t)t->int32_data[i]);
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16:
            f[i] = f32_from_bits((uint32_t)(raw ? le16(raw + 2 * i) : (uint16_t)t->int32_data[i])
                                 << 16);
            break;
        default:
            f[i] = (float)(raw ? f64_from_bits(le64(raw + 8 * i)) : t->double_data[i]);
            break;
        }
    }
    *out = f;
    *count = cnt;
    return CBINFER_STATUS_SUCCESS;
}

/* An int64 or int32 initializer (pads, sizes) as a new int64 array. */
static cbinfer_status tensor_ints(loader *L, const Onnx__NodeProto *n, const Onnx__TensorProto *t,
                                  int64_t **out, size_t *count)
{
    *out = NULL;
    size_t cnt, elem, have;
    cbinfer_status st = tensor_check(L, n, t, &cnt);
    if (st) return st;
    int type = t->has_data_type ? t->data_type : 0;
    switch (type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: elem = 8; have = t->n_int64_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: elem = 4; have = t->n_int32_data; break;
    default:
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                     "initializer '%s' has data type %s; int64 or int32 expected", tname(t),
                     dtype_name(type));
    }
    const uint8_t *raw = NULL;
    if (t->has_raw_data && (t->raw_data.len > 0 || have == 0)) {
        if (t->raw_data.len != cnt * elem)
            return data_size_fail(L, n, t, 0, t->raw_data.len, elem, cnt);
        raw = t->raw_data.data;
    } else if (have != cnt) {
        return data_size_fail(L, n, t, have, 0, elem, cnt);
    }
    int64_t *v = cbi_malloc_array(cnt, sizeof *v);
    if (!v) return oom(L);
    for (size_t i = 0; i < cnt; ++i) {
        if (type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
            v[i] = raw ? (int64_t)le64(raw + 8 * i) : t->int64_data[i];
        else
            v[i] = raw ? (int32_t)le32(raw + 4 * i) : t->int32_data[i];
    }
    *out = v;
    *count = cnt;
    return CBINFER_STATUS_SUCCESS;
}

/* A one-element float initializer (Clip bounds, Pad value). */
static cbinfer_status const_scalar(loader *L, const Onnx__NodeProto *n, const char *name,
                                   const char *what, float *v)
{
    const Onnx__TensorProto *t = const_get(L, name);
    if (!t)
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                     "%s '%s' is not an initializer (computed values are not supported)", what,
                     name);
    float *f;
    size_t cnt;
    cbinfer_status st = tensor_floats(L, n, t, &f, &cnt);
    if (st) return st;
    if (cnt != 1) {
        free(f);
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                     "%s '%s' has %zu values; a scalar is expected", what, name, cnt);
    }
    *v = f[0];
    free(f);
    return CBINFER_STATUS_SUCCESS;
}

/* ------------------------------------------------------------------------
 * IR construction
 * ---------------------------------------------------------------------- */

/* Value id of activation input k. */
static cbinfer_status act_input(loader *L, const Onnx__NodeProto *n, size_t k, int *id)
{
    const char *name = opt_input(n, k);
    if (!name)
        return nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH, "input %zu is missing", k);
    if (smap_get(&L->value_map, name, id)) return CBINFER_STATUS_SUCCESS;
    if (const_get(L, name))
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                     "input %zu ('%s') is an initializer where an activation is expected", k,
                     name);
    /* Live producers were lowered first, so this is an auxiliary output
     * (pooling indices, dropout mask, batch statistics). */
    return nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                 "input %zu ('%s') is an auxiliary output of another node, which is not supported",
                 k, name);
}

static char *unique_name(loader *L, const char *base)
{
    if (!smap_get(&L->node_names, base, NULL)) return cbi_strdup(base);
    size_t len = strlen(base) + 16;
    char *s = malloc(len);
    if (!s) return NULL;
    for (int k = 2;; ++k) {
        snprintf(s, len, "%s_%d", base, k);
        if (!smap_get(&L->node_names, s, NULL)) return s;
    }
}

/* Appends an IR node for the node being lowered. It is owned by the network
 * from here on, so a later failure frees whatever was attached to it. */
static cbinfer_status node_new(loader *L, cbi_op op, const char *op_type, int channels_in,
                               cbi_node **out)
{
    cbi_net *net = L->net;
    assert(net->n_nodes < L->cap_nodes);
    cbi_node *nd = &net->nodes[net->n_nodes];
    memset(nd, 0, sizeof *nd);
    nd->name = unique_name(L, L->cur);
    if (!nd->name) return oom(L);
    net->n_nodes++;
    if (smap_put(&L->node_names, nd->name, net->n_nodes - 1)) return oom(L);
    L->cur = nd->name;
    nd->op_type = op_type;
    nd->op = op;
    nd->output = -1;
    nd->cin = channels_in;
    nd->cout = channels_in;
    nd->win.kh = nd->win.kw = 1;
    nd->win.sh = nd->win.sw = 1;
    nd->win.dh = nd->win.dw = 1;
    *out = nd;
    return CBINFER_STATUS_SUCCESS;
}

static cbinfer_status new_value(loader *L, const char *name, int channels, int *id)
{
    cbi_net *net = L->net;
    assert(net->n_values < L->cap_values);
    cbi_value *v = &net->values[net->n_values];
    v->name = cbi_strdup(name);
    if (!v->name) return oom(L);
    v->c = channels;
    *id = net->n_values++;
    if (smap_put(&L->value_map, v->name, *id)) return oom(L);
    return CBINFER_STATUS_SUCCESS;
}

/* Creates the node's output value (its first ONNX output). */
static cbinfer_status node_output(loader *L, const Onnx__NodeProto *n, cbi_node *nd, int channels)
{
    const char *name = n->n_output ? n->output[0] : NULL;
    if (!name || !*name)
        return nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH, "the node has no output");
    nd->cout = channels;
    return new_value(L, name, channels, &nd->output);
}

/* ------------------------------------------------------------------------
 * Lowering, one function per op family
 * ---------------------------------------------------------------------- */
enum { WIN_CONV, WIN_CONV_T, WIN_MAXPOOL, WIN_AVGPOOL };

static const char *const k_auto_pad[] = {"NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"};

static cbinfer_status check_range(loader *L, const Onnx__NodeProto *n, const char *name,
                                  const int64_t *v, int count, int64_t lo)
{
    for (int i = 0; i < count; ++i)
        if (v[i] < lo || v[i] > MAX_WINDOW)
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                         "%s value %lld is not supported (range %lld..%d)", name,
                         (long long)v[i], (long long)lo, MAX_WINDOW);
    return CBINFER_STATUS_SUCCESS;
}

/* Sliding-window attributes of Conv, ConvTranspose and the pools. */
static cbinfer_status read_window(loader *L, const Onnx__NodeProto *n, int kind, cbi_window *w)
{
    int64_t k[2] = {1, 1}, s[2] = {1, 1}, d[2] = {1, 1}, p[4] = {0, 0, 0, 0}, op[2] = {0, 0};
    int64_t ceil_mode = 0, include_pad = 0;
    int found, ap;
    cbinfer_status st;
    if ((st = attr_ints(L, n, "strides", 2, s, NULL)) ||
        (st = attr_ints(L, n, "dilations", 2, d, NULL)) ||
        (st = attr_ints(L, n, "pads", 4, p, NULL)) ||
        (st = attr_enum(L, n, "auto_pad", k_auto_pad, 4, 0, &ap)) ||
        (st = check_range(L, n, "strides", s, 2, 1)) ||
        (st = check_range(L, n, "dilations", d, 2, 1)))
        return st;
    for (int i = 0; i < 4; ++i)
        if (p[i] < 0)
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                         "negative pads are not supported");
    if ((st = check_range(L, n, "pads", p, 4, 0))) return st;
    if (kind == WIN_CONV_T) {
        if (attr_get(n, "output_shape"))
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                         "output_shape is not supported (give pads and output_padding)");
        if ((st = attr_ints(L, n, "output_padding", 2, op, NULL))) return st;
        for (int i = 0; i < 2; ++i)
            if (op[i] < 0 || op[i] >= s[i])
                return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                             "output_padding %lld must be in 0..stride-1", (long long)op[i]);
    }
    if ((kind == WIN_CONV_T || kind == WIN_AVGPOOL) && (d[0] != 1 || d[1] != 1))
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                     "dilations other than 1 are not supported for this op");
    if (kind == WIN_MAXPOOL || kind == WIN_AVGPOOL) {
        if ((st = attr_ints(L, n, "kernel_shape", 2, k, &found))) return st;
        if (!found)
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                         "kernel_shape is missing");
        if ((st = check_range(L, n, "kernel_shape", k, 2, 1)) ||
            (st = attr_int(L, n, "ceil_mode", 0, &ceil_mode)))
            return st;
        if (kind == WIN_AVGPOOL &&
            (st = attr_int(L, n, "count_include_pad", 0, &include_pad)))
            return st;
        if ((ceil_mode != 0 && ceil_mode != 1) || (include_pad != 0 && include_pad != 1))
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                         "ceil_mode and count_include_pad must be 0 or 1");
        /* Each explicit pad must be smaller than the window, or a window
         * could lie wholly in the padding: ONNX Runtime refuses such pools
         * ("Pad should be smaller than kernel"); this checks the dilated
         * extent, so it is never stricter. auto_pad ignores the pads. */
        for (int i = 0; i < 4 && ap == CBI_AUTO_PAD_NOTSET; ++i) {
            const int64_t extent = (k[i % 2] - 1) * d[i % 2] + 1;
            if (p[i] >= extent)
                return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                             "pads %lld,%lld,%lld,%lld must each be smaller than the window "
                             "%lldx%lld",
                             (long long)p[0], (long long)p[1], (long long)p[2], (long long)p[3],
                             (long long)((k[0] - 1) * d[0] + 1), (long long)((k[1] - 1) * d[1] + 1));
        }
    }
    memset(w, 0, sizeof *w);
    w->kh = (int)k[0];
    w->kw = (int)k[1];
    w->sh = (int)s[0];
    w->sw = (int)s[1];
    w->dh = (int)d[0];
    w->dw = (int)d[1];
    w->auto_pad = (cbi_auto_pad)ap;
    /* ONNX forbids pads together with auto_pad; the auto pads win. */
    if (w->auto_pad == CBI_AUTO_PAD_NOTSET) {
        w->pad_t = (int)p[0];
        w->pad_l = (int)p[1];
        w->pad_b = (int)p[2];
        w->pad_r = (int)p[3];
    }
    w->ceil_mode = (int)ceil_mode;
    w->count_include_pad = (int)include_pad;
    w->out_pad_h = (int)op[0];
    w->out_pad_w = (int)op[1];
    return CBINFER_STATUS_SUCCESS;
}

/* ONNX [outer][inner][kh][kw] -> [outer][kh][kw][inner]: Conv (outer = Cout,
 * inner = Cin) and ConvTranspose (outer = Cin, inner = Cout) alike. */
static void reorder_weights(const float *src, float *dst, int outer, int inner, int kh, int kw)
{
    for (int o = 0; o < outer; ++o)
        for (int i = 0; i < inner; ++i)
            for (int y = 0; y < kh; ++y)
                for (int x = 0; x < kw; ++x)
                    dst[(((size_t)o * kh + y) * kw + x) * inner + i] =
                        src[(((size_t)o * inner + i) * kh + y) * kw + x];
}

static cbinfer_status lower_conv(loader *L, const Onnx__NodeProto *n, const char *op)
{
    int transpose = strcmp(op, "ConvTranspose") == 0;
    cbinfer_status st;
    int x;
    if ((st = act_input(L, n, 0, &x))) return st;
    const char *wname = opt_input(n, 1);
    if (!wname)
        return nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH, "weight input W is missing");
    const Onnx__TensorProto *wt = const_get(L, wname);
    if (!wt)
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                     "weight '%s' is not an initializer (computed weights are not supported)",
                     wname);
    int64_t group;
    if ((st = attr_int(L, n, "group", 1, &group))) return st;
    if (group < 1 || group > INT_MAX || (transpose && group != 1))
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                     "group = %lld is not supported (%s)", (long long)group,
                     transpose ? "ConvTranspose: only 1" : "at least 1");
    if (wt->n_dims != 4)
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                     "weight '%s' has %zu dims; only 2-D convolutions (4-D weights) are "
                     "supported",
                     wname, wt->n_dims);
    for (int i = 0; i < 4; ++i)
        if (wt->dims[i] <= 0 || wt->dims[i] > INT_MAX)
            return nfail(L, n, CBINFER_STATUS_MODEL_WEIGHT_MISMATCH,
                         "weight '%s' has an empty or oversized dim", wname);
    int d0 = (int)wt->dims[0], d1 = (int)wt->dims[1];
    int kh = (int)wt->dims[2], kw = (int)wt->dims[3];
    /* Grouped: W is [Cout][Cin / group][kh][kw]. */
    int64_t cin64 = transpose ? d0 : (int64_t)d1 * group;
    int cout = transpose ? d1 : d0;
    int cin_x = L->net->values[x].c;
    if (cin64 != cin_x)
        return nfail(L, n, CBINFER_STATUS_MODEL_WEIGHT_MISMATCH,
                     "weight '%s' [%d,%d,%d,%d] (group %lld) expects %lld input channels but "
                     "input '%s' has %d",
                     wname, d0, d1, kh, kw, (long long)group, (long long)cin64,
                     L->net->values[x].name, cin_x);
    int cin = (int)cin64;
    if (cout % group)
        return nfail(L, n, CBINFER_STATUS_MODEL_WEIGHT_MISMATCH,
                     "%d output channels do not split into %lld groups", cout, (long long)group);
    int64_t ks[2];
    int found;
    if ((st = attr_ints(L, n, "kernel_shape", 2, ks, &found))) return st;
    if (found && (ks[0] != kh || ks[1] != kw))
        return nfail(L, n, CBINFER_STATUS_MODEL_WEIGHT_MISMATCH,
                     "kernel_shape %lldx%lld disagrees with weight '%s' (%dx%d)",
                     (long long)ks[0], (long long)ks[1], wname, kh, kw);
    if (kh > MAX_WINDOW || kw > MAX_WINDOW)
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR, "kernel %dx%d is too large",
                     kh, kw);
    cbi_window win;
    if ((st = read_window(L, n, transpose ? WIN_CONV_T : WIN_CONV, &win))) return st;
    win.kh = kh;
    win.kw = kw;
    const char *bname = opt_input(n, 2);
    const Onnx__TensorProto *bt = bname ? const_get(L, bname) : NULL;
    if (bname && !bt)
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                     "bias '%s' is not an initializer", bname);

    cbi_node *nd;
    if ((st = node_new(L, transpose ? CBI_OP_CONV_TRANSPOSE : CBI_OP_CONV, op, cin, &nd)))
        return st;
    nd->inputs[0] = x;
    nd->n_inputs = 1;
    nd->win = win;
    nd->group = (int)group;
    float *w;
    size_t cnt;
    if ((st = tensor_floats(L, n, wt, &w, &cnt))) return st;
    nd->weight = cbi_malloc_array(cnt, sizeof *nd->weight);
    if (!nd->weight) {
        free(w);
        return oom(L);
    }
    reorder_weights(w, nd->weight, d0, d1, kh, kw);
    free(w);
    if (bt) {
        if ((st = tensor_floats(L, n, bt, &nd->bias, &cnt))) return st;
        if (cnt != (size_t)cout)
            return nfail(L, n, CBINFER_STATUS_MODEL_WEIGHT_MISMATCH,
                         "bias '%s' has %zu values for %d output channels", bname, cnt, cout);
    } else {
        nd->bias = cbi_calloc((size_t)cout, sizeof *nd->bias);
        if (!nd->bias) return oom(L);
    }
    return node_output(L, n, nd, cout);
}

static cbinfer_status lower_pool(loader *L, const Onnx__NodeProto *n, const char *op)
{
    int avg = strcmp(op, "AveragePool") == 0;
    cbinfer_status st;
    int x;
    cbi_window win;
    if ((st = act_input(L, n, 0, &x)) ||
        (st = read_window(L, n, avg ? WIN_AVGPOOL : WIN_MAXPOOL, &win)))
        return st;
    /* storage_order only orders the Indices output, which is unsupported. */
    int c = L->net->values[x].c;
    cbi_node *nd;
    if ((st = node_new(L, avg ? CBI_OP_AVGPOOL : CBI_OP_MAXPOOL, op, c, &nd))) return st;
    nd->inputs[0] = x;
    nd->n_inputs = 1;
    nd->win = win;
    return node_output(L, n, nd, c);
}

/* PRelu's slope broadcasts against NCHW from the right; only a scalar or one
 * value per channel ([C,1,1], [1,C,1,1], ...) is supported. */
static cbinfer_status check_slope(loader *L, const Onnx__NodeProto *n, const Onnx__TensorProto *t,
                                  size_t cnt, int c)
{
    if (cnt == 1) return CBINFER_STATUS_SUCCESS;
    if (cnt != (size_t)c)
        return nfail(L, n, CBINFER_STATUS_MODEL_WEIGHT_MISMATCH,
                     "slope '%s' has %zu values; 1 or %d (one per channel) expected", tname(t),
                     cnt, c);
    if (t->n_dims > 4)
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                     "slope '%s' has %zu dims", tname(t), t->n_dims);
    for (size_t j = 0; j < t->n_dims; ++j) {
        size_t axis = 4 - t->n_dims + j;
        if (axis != 1 && t->dims[j] != 1)
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                         "slope '%s' broadcasts along a non-channel axis; only per-channel "
                         "slopes ([C,1,1]) are supported",
                         tname(t));
    }
    return CBINFER_STATUS_SUCCESS;
}

static cbinfer_status lower_act(loader *L, const Onnx__NodeProto *n, const char *op)
{
    cbinfer_status st;
    int x;
    if ((st = act_input(L, n, 0, &x))) return st;
    int c = L->net->values[x].c;
    cbi_activation act;
    memset(&act, 0, sizeof act);
    const Onnx__TensorProto *slope = NULL;
    if (strcmp(op, "Relu") == 0) {
        act.kind = CBI_ACT_RELU;
    } else if (strcmp(op, "Sigmoid") == 0) {
        act.kind = CBI_ACT_SIGMOID;
    } else if (strcmp(op, "LeakyRelu") == 0) {
        act.kind = CBI_ACT_LEAKY_RELU;
        if ((st = attr_float(L, n, "alpha", 0.01f, &act.alpha))) return st;
    } else if (strcmp(op, "PRelu") == 0) {
        act.kind = CBI_ACT_PRELU;
        const char *sname = opt_input(n, 1);
        if (!sname)
            return nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH, "slope input is missing");
        slope = const_get(L, sname);
        if (!slope)
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                         "slope '%s' is not an initializer", sname);
    } else {
        act.kind = CBI_ACT_CLIP;
        /* Opset < 11 has min/max attributes, later ones optional inputs. */
        if ((st = attr_float(L, n, "min", -INFINITY, &act.lo)) ||
            (st = attr_float(L, n, "max", INFINITY, &act.hi)))
            return st;
        const char *lo = opt_input(n, 1), *hi = opt_input(n, 2);
        if ((lo && (st = const_scalar(L, n, lo, "min", &act.lo))) ||
            (hi && (st = const_scalar(L, n, hi, "max", &act.hi))))
            return st;
        if (isnan(act.lo) || isnan(act.hi))
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR, "min or max is NaN");
        /* ONNX: with min > max every value becomes max. min = max says the
         * same to every kernel, which clamps to [min, max]. */
        if (act.lo > act.hi) act.lo = act.hi;
    }
    cbi_node *nd;
    if ((st = node_new(L, CBI_OP_ACTIVATION, op, c, &nd))) return st;
    nd->inputs[0] = x;
    nd->n_inputs = 1;
    nd->act = act;
    if (slope) {
        float *s;
        size_t cnt;
        if ((st = tensor_floats(L, n, slope, &s, &cnt))) return st;
        nd->act.slope = s;
        nd->act.n_slope = (int)cnt;
        if ((st = check_slope(L, n, slope, cnt, c))) return st;
    }
    return node_output(L, n, nd, c);
}

static cbinfer_status lower_add(loader *L, const Onnx__NodeProto *n, const char *op)
{
    cbinfer_status st;
    if (n->n_input != 2)
        return nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH, "Add needs 2 inputs, has %zu",
                     n->n_input);
    int a, b;
    for (size_t k = 0; k < 2; ++k)
        if (const_get(L, opt_input(n, k)))
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                         "operand '%s' is an initializer; only the sum of two activations of "
                         "equal shape is supported",
                         n->input[k]);
    if ((st = act_input(L, n, 0, &a)) || (st = act_input(L, n, 1, &b))) return st;
    int ca = L->net->values[a].c, cb = L->net->values[b].c;
    if (ca != cb)
        return nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                     "inputs have %d and %d channels", ca, cb);
    cbi_node *nd;
    if ((st = node_new(L, CBI_OP_ADD, op, ca, &nd))) return st;
    nd->inputs[0] = a;
    nd->inputs[1] = b;
    nd->n_inputs = 2;
    return node_output(L, n, nd, ca);
}

static cbinfer_status lower_concat(loader *L, const Onnx__NodeProto *n, const char *op)
{
    cbinfer_status st;
    const Onnx__AttributeProto *a = attr_get(n, "axis");
    int64_t axis;
    if (!a) return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR, "axis is missing");
    if ((st = attr_int(L, n, "axis", 1, &axis))) return st;
    if (axis != 1 && axis != -3)
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                     "axis = %lld is not supported (channels only: 1 or -3)", (long long)axis);
    if (n->n_input == 0 || n->n_input > CBI_MAX_INPUTS)
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                     "%zu inputs; 1 to %d are supported", n->n_input, CBI_MAX_INPUTS);
    int ids[CBI_MAX_INPUTS];
    int64_t c = 0;
    for (size_t k = 0; k < n->n_input; ++k) {
        if ((st = act_input(L, n, k, &ids[k]))) return st;
        c += L->net->values[ids[k]].c;
    }
    if (c > INT_MAX)
        return nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH, "too many output channels");
    cbi_node *nd;
    if ((st = node_new(L, CBI_OP_CONCAT, op, L->net->values[ids[0]].c, &nd))) return st;
    memcpy(nd->inputs, ids, n->n_input * sizeof ids[0]);
    nd->n_inputs = (int)n->n_input;
    return node_output(L, n, nd, (int)c);
}

static cbinfer_status lower_pad(loader *L, const Onnx__NodeProto *n, const char *op)
{
    static const char *const modes[] = {"constant", "edge", "reflect"};
    cbinfer_status st;
    int x, mode;
    int64_t pads[8];
    float value = 0.f;
    if ((st = act_input(L, n, 0, &x)) || (st = attr_enum(L, n, "mode", modes, 3, 0, &mode)))
        return st;
    if (attr_get(n, "pads")) { /* opset < 11 */
        int found;
        if ((st = attr_ints(L, n, "pads", 8, pads, &found)) ||
            (st = attr_float(L, n, "value", 0.f, &value)))
            return st;
        if (!found) return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR, "pads is empty");
    } else {
        const char *pname = opt_input(n, 1), *vname = opt_input(n, 2);
        if (!pname) return nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH, "pads are missing");
        if (opt_input(n, 3))
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                         "the axes input is not supported");
        const Onnx__TensorProto *pt = const_get(L, pname);
        if (!pt)
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                         "pads '%s' is not an initializer (computed pads are not supported)",
                         pname);
        int64_t *p;
        size_t cnt;
        if ((st = tensor_ints(L, n, pt, &p, &cnt))) return st;
        if (cnt != 8) {
            free(p);
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                         "pads '%s' has %zu values; 8 (a 4-D input) expected", pname, cnt);
        }
        memcpy(pads, p, sizeof pads);
        free(p);
        if (vname && (st = const_scalar(L, n, vname, "constant_value", &value))) return st;
    }
    for (int i = 0; i < 8; ++i)
        if (pads[i] < 0)
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                         "negative pads (cropping) are not supported");
    /* ONNX order: [n_begin, c_begin, h_begin, w_begin, n_end, c_end, h_end, w_end]. */
    if (pads[0] || pads[1] || pads[4] || pads[5])
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                     "only H and W may be padded (N/C pads %lld,%lld,%lld,%lld)",
                     (long long)pads[0], (long long)pads[1], (long long)pads[4],
                     (long long)pads[5]);
    int64_t hw[4] = {pads[2], pads[3], pads[6], pads[7]};
    if ((st = check_range(L, n, "pads", hw, 4, 0))) return st;
    int c = L->net->values[x].c;
    cbi_node *nd;
    if ((st = node_new(L, CBI_OP_PAD, op, c, &nd))) return st;
    nd->inputs[0] = x;
    nd->n_inputs = 1;
    nd->pad_t = (int)hw[0];
    nd->pad_l = (int)hw[1];
    nd->pad_b = (int)hw[2];
    nd->pad_r = (int)hw[3];
    nd->pad_mode = (cbi_pad_mode)mode;
    nd->pad_value = value;
    return node_output(L, n, nd, c);
}

static cbinfer_status lower_resize(loader *L, const Onnx__NodeProto *n, const char *op)
{
    static const char *const modes[] = {"nearest", "linear"};
    static const char *const coords[] = {"half_pixel", "asymmetric", "align_corners",
                                         "pytorch_half_pixel", "tf_half_pixel_for_nn"};
    static const char *const rounds[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                         "ceil"};
    static const char *const stretch[] = {"stretch"};
    int upsample = strcmp(op, "Upsample") == 0;
    int old = upsample || L->opset < 11;
    cbinfer_status st;
    int x, mode, coord, round, policy;
    int64_t antialias;
    if ((st = act_input(L, n, 0, &x)) || (st = attr_enum(L, n, "mode", modes, 2, 0, &mode)) ||
        (st = attr_int(L, n, "antialias", 0, &antialias)) ||
        (st = attr_enum(L, n, "keep_aspect_ratio_policy", stretch, 1, 0, &policy)))
        return st;
    if (antialias != 0 || attr_get(n, "axes"))
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                     "antialias and axes are not supported");
    if (old) {
        /* Upsample and Resize-10 index the source by floor(dst / scale). */
        coord = CBI_RESIZE_ASYMMETRIC;
        round = CBI_RESIZE_FLOOR;
    } else if ((st = attr_enum(L, n, "coordinate_transformation_mode", coords, 5,
                               CBI_RESIZE_HALF_PIXEL, &coord)) ||
               (st = attr_enum(L, n, "nearest_mode", rounds, 4, CBI_RESIZE_ROUND_PREFER_FLOOR,
                               &round))) {
        return st;
    }

    int64_t exclude;
    if ((st = attr_int(L, n, "exclude_outside", 0, &exclude))) return st;
    if (mode == 1 && (exclude != 0 || coord == CBI_RESIZE_TF_HALF_PIXEL_FOR_NN))
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                     "linear Resize with %s is not supported",
                     exclude != 0 ? "exclude_outside" : "tf_half_pixel_for_nn");

    float scales[4] = {1, 1, 1, 1};
    int64_t sizes[4] = {0, 0, 0, 0};
    int has_scales = 0, has_sizes = 0;
    const Onnx__AttributeProto *sa = NULL;
    if (upsample &&
        (st = attr_typed(L, n, "scales", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS, &sa)))
        return st;
    if (sa && sa->n_floats) { /* Upsample-7 */
        if (sa->n_floats != 4)
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                         "scales has %zu values; 4 (NCHW) expected", sa->n_floats);
        memcpy(scales, sa->floats, sizeof scales);
        has_scales = 1;
    }
    const char *sname = old ? opt_input(n, 1) : opt_input(n, 2);
    const char *zname = old ? NULL : opt_input(n, 3);
    if (sname && !has_scales) {
        const Onnx__TensorProto *t = const_get(L, sname);
        if (!t)
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                         "scales '%s' is not an initializer (computed scales are not supported)",
                         sname);
        float *f;
        size_t cnt;
        if ((st = tensor_floats(L, n, t, &f, &cnt))) return st;
        if (cnt != 0 && cnt != 4) {
            free(f);
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                         "scales '%s' has %zu values; 4 (NCHW) expected", sname, cnt);
        }
        if (cnt) memcpy(scales, f, sizeof scales);
        has_scales = cnt != 0;
        free(f);
    }
    if (zname) {
        const Onnx__TensorProto *t = const_get(L, zname);
        if (!t)
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                         "sizes '%s' is not an initializer (computed sizes are not supported)",
                         zname);
        int64_t *v;
        size_t cnt;
        if ((st = tensor_ints(L, n, t, &v, &cnt))) return st;
        if (cnt != 0 && cnt != 4) {
            free(v);
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                         "sizes '%s' has %zu values; 4 (NCHW) expected", zname, cnt);
        }
        if (cnt) memcpy(sizes, v, sizeof sizes);
        has_sizes = cnt != 0;
        free(v);
    }
    if (has_scales == has_sizes)
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                     "exactly one of constant scales or sizes must be given");
    int c = L->net->values[x].c;
    if (has_scales) {
        if (scales[0] != 1.f || scales[1] != 1.f)
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                         "N and C scales must be 1 (got %g, %g)", scales[0], scales[1]);
        for (int i = 2; i < 4; ++i)
            if (!(scales[i] > 0.f && scales[i] <= MAX_WINDOW))
                return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                             "scale %g is not supported", scales[i]);
    } else {
        if (sizes[0] != 1 || sizes[1] != c)
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                         "sizes must keep N = 1 and C = %d (got %lld, %lld)", c,
                         (long long)sizes[0], (long long)sizes[1]);
        for (int i = 2; i < 4; ++i)
            if (sizes[i] < 1 || sizes[i] > MAX_RESIZE_PX)
                return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                             "size %lld is not supported", (long long)sizes[i]);
    }
    cbi_node *nd;
    if ((st = node_new(L, CBI_OP_RESIZE, op, c, &nd))) return st;
    nd->inputs[0] = x;
    nd->n_inputs = 1;
    nd->scale_h = has_scales ? scales[2] : 0.f;
    nd->scale_w = has_scales ? scales[3] : 0.f;
    nd->size_h = has_sizes ? (int)sizes[2] : 0;
    nd->size_w = has_sizes ? (int)sizes[3] : 0;
    nd->coord = (cbi_resize_coord)coord;
    nd->round = (cbi_resize_round)round;
    nd->linear = mode == 1;
    return node_output(L, n, nd, c);
}

static cbinfer_status lower_d2s(loader *L, const Onnx__NodeProto *n, const char *op)
{
    static const char *const modes[] = {"DCR", "CRD"};
    cbinfer_status st;
    int x, mode;
    int64_t b;
    if ((st = act_input(L, n, 0, &x)) || (st = attr_int(L, n, "blocksize", 0, &b)) ||
        (st = attr_enum(L, n, "mode", modes, 2, 0, &mode)))
        return st;
    if (b < 1 || b > 4096)
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                     "blocksize %lld is missing or not supported", (long long)b);
    int c = L->net->values[x].c;
    if (c % (b * b) != 0)
        return nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                     "%d channels are not divisible by blocksize^2 = %lld", c,
                     (long long)(b * b));
    cbi_node *nd;
    if ((st = node_new(L, CBI_OP_DEPTH_TO_SPACE, op, c, &nd))) return st;
    nd->inputs[0] = x;
    nd->n_inputs = 1;
    nd->blocksize = (int)b;
    nd->d2s_crd = mode;
    return node_output(L, n, nd, (int)(c / (b * b)));
}

/* A placeholder node carrying the per-channel affine map; fold_and_fuse()
 * merges it into the convolution before it. */
static cbinfer_status lower_bn(loader *L, const Onnx__NodeProto *n, const char *op)
{
    static const char *const what[] = {"scale", "B", "mean", "var"};
    cbinfer_status st;
    int x;
    int64_t spatial, training;
    float eps;
    if ((st = act_input(L, n, 0, &x)) || (st = attr_float(L, n, "epsilon", 1e-5f, &eps)) ||
        (st = attr_int(L, n, "spatial", 1, &spatial)) ||
        (st = attr_int(L, n, "training_mode", 0, &training)))
        return st;
    if (spatial != 1 || training != 0)
        return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                     "only spatial = 1, training_mode = 0 are supported");
    const Onnx__TensorProto *t[4];
    for (int k = 0; k < 4; ++k) {
        const char *name = opt_input(n, (size_t)k + 1);
        if (!name)
            return nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH, "input %s is missing",
                         what[k]);
        if (!(t[k] = const_get(L, name)))
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                         "%s '%s' is not an initializer", what[k], name);
    }
    int c = L->net->values[x].c;
    cbi_node *nd;
    if ((st = node_new(L, CBI_OP_COUNT, op, c, &nd))) return st;
    nd->inputs[0] = x;
    nd->n_inputs = 1;
    node_extra *ex = &L->extra[L->net->n_nodes - 1];
    ex->is_bn = 1;
    ex->scale = cbi_malloc_array((size_t)c, sizeof *ex->scale);
    ex->shift = cbi_malloc_array((size_t)c, sizeof *ex->shift);
    if (!ex->scale || !ex->shift) return oom(L);

    float *p[4] = {NULL, NULL, NULL, NULL};
    for (int k = 0; k < 4 && !st; ++k) {
        size_t cnt;
        st = tensor_floats(L, n, t[k], &p[k], &cnt);
        if (!st && cnt != (size_t)c)
            st = nfail(L, n, CBINFER_STATUS_MODEL_WEIGHT_MISMATCH,
                       "%s '%s' has %zu values for %d channels", what[k], tname(t[k]), cnt, c);
    }
    for (int i = 0; i < c && !st; ++i) {
        double var = (double)p[3][i] + eps;
        if (!(var > 0.0))
            st = nfail(L, n, CBINFER_STATUS_MODEL_WEIGHT_MISMATCH,
                       "var + epsilon is not positive at channel %d", i);
        else {
            ex->scale[i] = p[0][i] / sqrt(var);
            ex->shift[i] = p[1][i] - p[2][i] * ex->scale[i];
        }
    }
    for (int k = 0; k < 4; ++k) free(p[k]);
    if (st) return st;
    return node_output(L, n, nd, c);
}

/* Identity and Dropout (inference): the output is another name of the input. */
static cbinfer_status lower_passthrough(loader *L, const Onnx__NodeProto *n, const char *op)
{
    cbinfer_status st;
    int x;
    if ((st = act_input(L, n, 0, &x))) return st;
    const char *out = n->n_output ? n->output[0] : NULL;
    if (!out || !*out)
        return nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH, "the node has no output");
    if (smap_put(&L->value_map, out, x)) return oom(L);
    return CBINFER_STATUS_SUCCESS;
}

typedef cbinfer_status (*lower_fn)(loader *L, const Onnx__NodeProto *n, const char *op);

static const struct {
    const char *op;
    lower_fn fn;
} k_ops[] = {
    {"Conv", lower_conv},
    {"ConvTranspose", lower_conv},
    {"Relu", lower_act},
    {"LeakyRelu", lower_act},
    {"PRelu", lower_act},
    {"Clip", lower_act},
    {"Sigmoid", lower_act},
    {"MaxPool", lower_pool},
    {"AveragePool", lower_pool},
    {"Add", lower_add},
    {"Concat", lower_concat},
    {"Pad", lower_pad},
    {"Resize", lower_resize},
    {"Upsample", lower_resize},
    {"DepthToSpace", lower_d2s},
    {"BatchNormalization", lower_bn},
    {"Identity", lower_passthrough},
    {"Dropout", lower_passthrough},
};

/* ------------------------------------------------------------------------
 * Graph passes
 * ---------------------------------------------------------------------- */
static cbinfer_status add_const(loader *L, const char *name, const Onnx__TensorProto *t)
{
    if (smap_get(&L->const_map, name, NULL))
        return cbi_fail(L->e, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                        "constant '%s' is defined twice", name);
    L->consts[L->n_consts] = t;
    if (smap_put(&L->const_map, name, L->n_consts)) return oom(L);
    L->n_consts++;
    return CBINFER_STATUS_SUCCESS;
}

/* Initializers, Constant nodes, and Identity nodes of constants (exporters
 * emit those for shared weights) all become named constants. */
static cbinfer_status collect_constants(loader *L)
{
    const Onnx__GraphProto *g = L->g;
    cbinfer_status st;
    for (size_t i = 0; i < g->n_initializer; ++i) {
        const Onnx__TensorProto *t = g->initializer[i];
        if (!t->name || !*t->name)
            return cbi_fail(L->e, CBINFER_STATUS_MODEL_MALFORMED,
                            "initializer %zu has no name", i);
        if ((st = add_const(L, t->name, t))) return st;
    }
    for (size_t i = 0; i < g->n_node; ++i) {
        const Onnx__NodeProto *n = g->node[i];
        if (!n->op_type || strcmp(n->op_type, "Constant") != 0 || !is_default_domain(n->domain))
            continue;
        set_cur(L, n, (int)i);
        const Onnx__AttributeProto *a = attr_get(n, "value");
        if (!a || !a->t)
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                         "only the tensor 'value' form of Constant is supported");
        if (n->n_output != 1 || !*n->output[0])
            return nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH, "needs exactly one output");
        if ((st = add_const(L, n->output[0], a->t))) return st;
        L->skip[i] = 1;
    }
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t i = 0; i < g->n_node; ++i) {
            const Onnx__NodeProto *n = g->node[i];
            if (L->skip[i] || !n->op_type || strcmp(n->op_type, "Identity") != 0 ||
                n->n_output != 1 || !*n->output[0])
                continue;
            const Onnx__TensorProto *t = const_get(L, opt_input(n, 0));
            if (!t) continue;
            if ((st = add_const(L, n->output[0], t))) return st;
            L->skip[i] = 1;
            changed = 1;
        }
    }
    return CBINFER_STATUS_SUCCESS;
}

/* The single non-initializer graph input: NCHW, N = 1 (or symbolic), C
 * fixed, H and W fixed or symbolic. */
static cbinfer_status find_input(loader *L)
{
    const Onnx__GraphProto *g = L->g;
    cbi_net *net = L->net;
    for (size_t i = 0; i < g->n_input; ++i) {
        const Onnx__ValueInfoProto *vi = g->input[i];
        if (!vi->name || !*vi->name)
            return cbi_fail(L->e, CBINFER_STATUS_MODEL_MALFORMED, "graph input %zu has no name",
                            i);
        if (const_get(L, vi->name)) continue;
        if (L->input_vi)
            return cbi_fail(L->e, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                            "the graph has more than one input ('%s', '%s'); exactly one is "
                            "supported",
                            L->input_name, vi->name);
        L->input_vi = vi;
        L->input_name = vi->name;
    }
    if (!L->input_vi)
        return cbi_fail(L->e, CBINFER_STATUS_MODEL_INVALID_GRAPH, "the graph has no input");
    const char *name = L->input_name;
    const Onnx__TypeProto *tp = L->input_vi->type;
    const Onnx__TensorShapeProto *sh =
        tp && tp->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && tp->tensor_type
            ? tp->tensor_type->shape
            : NULL;
    if (!sh)
        return cbi_fail(L->e, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                        "graph input '%s' is not a tensor with a shape", name);
    if (sh->n_dim != 4)
        return cbi_fail(L->e, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                        "graph input '%s' has %zu dims; NCHW expected", name, sh->n_dim);
    int64_t d[4];
    for (int i = 0; i < 4; ++i) {
        const Onnx__TensorShapeProto__Dimension *dim = sh->dim[i];
        d[i] = dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                   ? dim->dim_value
                   : -1;
        if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
            (d[i] <= 0 || d[i] > INT_MAX))
            return cbi_fail(L->e, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                            "graph input '%s' has invalid dim %d = %lld", name, i,
                            (long long)d[i]);
    }
    if (d[0] > 1)
        return cbi_fail(L->e, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                        "graph input '%s' has batch size %lld; 1 expected", name,
                        (long long)d[0]);
    if (d[1] < 0)
        return cbi_fail(L->e, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                        "graph input '%s' has a symbolic channel count", name);
    net->in_c = (int)d[1];
    net->in_h = (int)d[2];
    net->in_w = (int)d[3];
    cbinfer_status st = new_value(L, name, net->in_c, &net->input);
    return st;
}

/* Producer map, dangling-input and cycle checks, and the topological order
 * (the file's own order when it already is one). */
static cbinfer_status sort_nodes(loader *L)
{
    const Onnx__GraphProto *g = L->g;
    int nn = (int)g->n_node;
    cbinfer_status st = CBINFER_STATUS_SUCCESS;
    for (int i = 0; i < nn; ++i) {
        const Onnx__NodeProto *n = g->node[i];
        if (L->skip[i]) continue;
        set_cur(L, n, i);
        for (size_t k = 0; k < n->n_output; ++k) {
            const char *o = n->output[k];
            if (!*o) continue;
            if (const_get(L, o) || strcmp(o, L->input_name) == 0)
                return nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                             "output '%s' is also an initializer or the graph input", o);
            if (smap_get(&L->producer, o, NULL))
                return nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                             "output '%s' is produced by another node too", o);
            if (smap_put(&L->producer, o, i)) return oom(L);
        }
    }

    int *indeg = cbi_calloc((size_t)nn, sizeof *indeg);
    int *off = cbi_calloc((size_t)nn + 1, sizeof *off);
    int *succ = NULL, *fill = NULL;
    if (!indeg || !off) goto out_of_memory;
    int sorted = 1;
    size_t n_edges = 0;
    for (int i = 0; i < nn; ++i) {
        const Onnx__NodeProto *n = g->node[i];
        if (L->skip[i]) continue;
        for (size_t k = 0; k < n->n_input; ++k) {
            const char *in = n->input[k];
            int j;
            if (!*in || const_get(L, in) || strcmp(in, L->input_name) == 0) continue;
            if (!smap_get(&L->producer, in, &j)) {
                set_cur(L, n, i);
                st = nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                           "input '%s' is not produced by any node and is neither an "
                           "initializer nor the graph input",
                           in);
                goto done;
            }
            if (j >= i) sorted = 0;
            off[j + 1]++;
            indeg[i]++;
            n_edges++;
        }
    }
    L->order = cbi_malloc_array((size_t)nn, sizeof *L->order);
    if (!L->order) goto out_of_memory;
    L->n_order = 0;
    if (sorted) {
        for (int i = 0; i < nn; ++i)
            if (!L->skip[i]) L->order[L->n_order++] = i;
        goto done;
    }

    /* Kahn's algorithm over a CSR successor list. */
    for (int i = 0; i < nn; ++i) off[i + 1] += off[i];
    succ = cbi_malloc_array(n_edges, sizeof *succ);
    fill = cbi_malloc_array((size_t)nn, sizeof *fill);
    if (!succ || !fill) goto out_of_memory;
    memcpy(fill, off, (size_t)nn * sizeof *fill);
    for (int i = 0; i < nn; ++i) {
        const Onnx__NodeProto *n = g->node[i];
        if (L->skip[i]) continue;
        for (size_t k = 0; k < n->n_input; ++k) {
            int j;
            const char *in = n->input[k];
            if (*in && !const_get(L, in) && strcmp(in, L->input_name) != 0 &&
                smap_get(&L->producer, in, &j))
                succ[fill[j]++] = i;
        }
    }
    int n_live = 0;
    for (int i = 0; i < nn; ++i)
        if (!L->skip[i]) {
            n_live++;
            if (indeg[i] == 0) L->order[L->n_order++] = i;
        }
    for (int head = 0; head < L->n_order; ++head) {
        int j = L->order[head];
        for (int e = off[j]; e < off[j + 1]; ++e)
            if (--indeg[succ[e]] == 0) L->order[L->n_order++] = succ[e];
    }
    if (L->n_order != n_live) {
        for (int i = 0; i < nn; ++i)
            if (!L->skip[i] && indeg[i] > 0) {
                set_cur(L, g->node[i], i);
                st = nfail(L, g->node[i], CBINFER_STATUS_MODEL_INVALID_GRAPH,
                           "the graph has a cycle through this node");
                break;
            }
    }
    goto done;

out_of_memory:
    st = oom(L);
done:
    free(indeg);
    free(off);
    free(succ);
    free(fill);
    return st;
}

/* Marks the nodes the graph output depends on; the others never run. */
/* Marks the nodes every graph output depends on. */
static cbinfer_status mark_live(loader *L)
{
    const Onnx__GraphProto *g = L->g;
    L->live = cbi_calloc(g->n_node, 1);
    if (!L->live) return oom(L);
    for (size_t k = 0; k < g->n_output; ++k) {
        int p;
        if (!smap_get(&L->producer, g->output[k]->name, &p))
            return cbi_fail(L->e, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                            "graph output '%s' is not computed by any node", g->output[k]->name);
        L->live[p] = 1;
    }
    for (int k = L->n_order - 1; k >= 0; --k) {
        int i = L->order[k];
        const Onnx__NodeProto *n = g->node[i];
        if (!L->live[i]) continue;
        for (size_t j = 0; j < n->n_input; ++j) {
            int q;
            if (*n->input[j] && smap_get(&L->producer, n->input[j], &q)) L->live[q] = 1;
        }
    }
    return CBINFER_STATUS_SUCCESS;
}

static cbinfer_status lower_nodes(loader *L)
{
    const Onnx__GraphProto *g = L->g;
    for (int k = 0; k < L->n_order; ++k) {
        int i = L->order[k];
        const Onnx__NodeProto *n = g->node[i];
        if (!L->live[i]) continue;
        set_cur(L, n, i);
        if (!n->op_type || !*n->op_type)
            return nfail(L, n, CBINFER_STATUS_MODEL_MALFORMED, "the node has no op_type");
        if (!is_default_domain(n->domain))
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_OP,
                         "op '%s' of domain '%s' is not supported", n->op_type, n->domain);
        size_t j = 0;
        while (j < sizeof k_ops / sizeof k_ops[0] && strcmp(k_ops[j].op, n->op_type) != 0) ++j;
        if (j == sizeof k_ops / sizeof k_ops[0])
            return nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_OP, "op '%s' is not supported",
                         n->op_type);
        cbinfer_status st = k_ops[j].fn(L, n, k_ops[j].op);
        if (st) return st;
    }
    L->cur = NULL;
    return CBINFER_STATUS_SUCCESS;
}

/* w' = w * s, b' = b * s + shift, with s = gamma / sqrt(var + eps) and
 * shift = beta - mean * s, i.e. b' = (b - mean) * s + beta. */
static void fold_bn(cbi_node *conv, const node_extra *bn)
{
    int kk = conv->win.kh * conv->win.kw;
    if (conv->op == CBI_OP_CONV) {
        size_t row = (size_t)kk * cbi_conv_group_cin(conv, conv->cin); /* [Cout][kh][kw][Cin/g] */
        for (int o = 0; o < conv->cout; ++o)
            for (size_t j = 0; j < row; ++j)
                conv->weight[o * row + j] = (float)(conv->weight[o * row + j] * bn->scale[o]);
    } else {
        size_t rows = (size_t)conv->cin * kk;
        for (size_t r = 0; r < rows; ++r)
            for (int o = 0; o < conv->cout; ++o)
                conv->weight[r * conv->cout + o] =
                    (float)(conv->weight[r * conv->cout + o] * bn->scale[o]);
    }
    for (int o = 0; o < conv->cout; ++o)
        conv->bias[o] = (float)(conv->bias[o] * bn->scale[o] + bn->shift[o]);
}

/* Folds every BatchNormalization into its convolution, then fuses every
 * activation into the convolution it alone consumes. */
static cbinfer_status fold_and_fuse(loader *L)
{
    cbi_net *net = L->net;
    int *prod = cbi_malloc_array((size_t)net->n_values, sizeof *prod);
    int *uses = cbi_calloc((size_t)net->n_values, sizeof *uses);
    cbinfer_status st = CBINFER_STATUS_SUCCESS;
    if (!prod || !uses) {
        st = oom(L);
        goto done;
    }
    for (int v = 0; v < net->n_values; ++v) prod[v] = -1;
    for (int i = 0; i < net->n_nodes; ++i) {
        prod[net->nodes[i].output] = i;
        for (int k = 0; k < net->nodes[i].n_inputs; ++k) uses[net->nodes[i].inputs[k]]++;
    }
    for (int k = 0; k < net->n_outputs; ++k) uses[net->outputs[k]]++;

    for (int pass = 0; pass < 2; ++pass) {
        for (int i = 0; i < net->n_nodes; ++i) {
            cbi_node *nd = &net->nodes[i];
            int is_bn = L->extra[i].is_bn;
            if (pass == 0 ? !is_bn : nd->op != CBI_OP_ACTIVATION) continue;
            int v = nd->inputs[0], p = prod[v];
            cbi_node *conv = p >= 0 ? &net->nodes[p] : NULL;
            int ok = conv && (conv->op == CBI_OP_CONV || conv->op == CBI_OP_CONV_TRANSPOSE) &&
                     conv->act.kind == CBI_ACT_NONE && uses[v] == 1;
            if (!ok) {
                if (!is_bn) continue;
                st = cbi_fail(L->e, CBINFER_STATUS_MODEL_UNSUPPORTED_OP,
                              "node '%s' (BatchNormalization): cannot be folded: its input is "
                              "not the output of a Conv or ConvTranspose used by it alone "
                              "(standalone BatchNormalization is not supported)",
                              nd->name);
                goto done;
            }
            if (is_bn) {
                fold_bn(conv, &L->extra[i]);
                free(L->extra[i].scale);
                free(L->extra[i].shift);
                L->extra[i].scale = L->extra[i].shift = NULL;
            } else {
                conv->act = nd->act;
                nd->act.slope = NULL; /* now owned by conv */
            }
            conv->output = nd->output;
            prod[nd->output] = p;
            L->extra[i].dead = 1;
        }
    }
done:
    free(prod);
    free(uses);
    return st;
}

/* Drops folded nodes and the values nothing uses any more; lists the Convs. */
static cbinfer_status compact(loader *L)
{
    cbi_net *net = L->net;
    int *vmap = cbi_malloc_array((size_t)net->n_values, sizeof *vmap);
    if (!vmap) return oom(L);
    for (int v = 0; v < net->n_values; ++v) vmap[v] = -1;
    vmap[net->input] = 0;
    for (int k = 0; k < net->n_outputs; ++k) vmap[net->outputs[k]] = 0;
    for (int i = 0; i < net->n_nodes; ++i) {
        if (L->extra[i].dead) continue;
        vmap[net->nodes[i].output] = 0;
        for (int k = 0; k < net->nodes[i].n_inputs; ++k) vmap[net->nodes[i].inputs[k]] = 0;
    }
    int nv = 0;
    for (int v = 0; v < net->n_values; ++v) {
        if (vmap[v] < 0) {
            free(net->values[v].name);
            continue;
        }
        vmap[v] = nv;
        net->values[nv++] = net->values[v];
    }
    memset(net->values + nv, 0, (size_t)(net->n_values - nv) * sizeof *net->values);
    net->n_values = nv;
    net->input = vmap[net->input];
    for (int k = 0; k < net->n_outputs; ++k) net->outputs[k] = vmap[net->outputs[k]];

    int nn = 0;
    for (int i = 0; i < net->n_nodes; ++i) {
        cbi_node *nd = &net->nodes[i];
        if (L->extra[i].dead) {
            free(nd->name);
            free(nd->weight);
            free(nd->bias);
            free((void *)nd->act.slope);
            continue;
        }
        nd->output = vmap[nd->output];
        for (int k = 0; k < nd->n_inputs; ++k) nd->inputs[k] = vmap[nd->inputs[k]];
        net->nodes[nn++] = *nd;
    }
    memset(net->nodes + nn, 0, (size_t)(net->n_nodes - nn) * sizeof *net->nodes);
    net->n_nodes = nn;
    free(vmap);

    return cbi_net_index_convs(net) ? oom(L) : CBINFER_STATUS_SUCCESS;
}

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
        st = oom(L);
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
    smap_free(&L->const_map);
    smap_free(&L->value_map);
    smap_free(&L->producer);
    smap_free(&L->node_names);
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
        if (is_default_domain(m->opset_import[i]->domain) && m->opset_import[i]->has_version)
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
        st = oom(&L);
        goto done;
    }
    if ((st = read_metadata(&L, m)) || (st = collect_constants(&L)) || (st = find_input(&L)) ||
        (st = sort_nodes(&L)) || (st = mark_live(&L)) || (st = lower_nodes(&L)))
        goto done;
    for (int k = 0; k < net->n_outputs; ++k) {
        const char *out_name = g->output[k]->name;
        if (!smap_get(&L.value_map, out_name, &net->outputs[k])) {
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
    if ((st = fold_and_fuse(&L)) || (st = compact(&L)) || (st = check_fixed_size(&L)))
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
