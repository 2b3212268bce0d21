/*
 * The ONNX loader's constants: initializers, Constant nodes and Identity
 * nodes of constants become named constants (cbi_onnx_collect_constants);
 * their data, raw little-endian bytes or the typed fields, is read as float
 * or int64 arrays, its size checked against the dims.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_loader_internal.h"

const Onnx__TensorProto *cbi_onnx_const_get(const loader *L, const char *name)
{
    int i;
    return name && cbi_onnx_smap_get(&L->const_map, name, &i) ? L->consts[i] : NULL;
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

const char *cbi_onnx_tname(const Onnx__TensorProto *t)
{
    return t->name ? t->name : "";
}

/* Validates location and dims; *count gets the element count. */
static cbinfer_status tensor_check(loader *L, const Onnx__NodeProto *n, const Onnx__TensorProto *t,
                                   size_t *count)
{
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                              "initializer '%s' uses external data, which is not supported",
                              cbi_onnx_tname(t));
    int64_t numel = 1;
    for (size_t i = 0; i < t->n_dims; ++i) {
        int64_t d = t->dims[i];
        if (d < 0 || (d > 0 && numel > INT_MAX / d))
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_MALFORMED,
                                  "initializer '%s' has invalid dims", cbi_onnx_tname(t));
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
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_MALFORMED,
                              "initializer '%s' has no data (%zu values expected)",
                              cbi_onnx_tname(t), need);
    if (bytes % elem != 0)
        return cbi_onnx_nfail(
            L, n, CBINFER_STATUS_MODEL_MALFORMED,
            "initializer '%s': raw_data holds %zu bytes, not whole %zu-byte elements",
            cbi_onnx_tname(t), bytes, elem);
    return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_WEIGHT_MISMATCH,
                          "initializer '%s' holds %zu values but its dims need %zu",
                          cbi_onnx_tname(t), have ? have : bytes / elem, need);
}

/* Any floating-point initializer as a new float array (little-endian raw_data
 * or the typed fields; float16/bfloat16 halves live in int32_data). */
cbinfer_status cbi_onnx_tensor_floats(loader *L, const Onnx__NodeProto *n,
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
        return cbi_onnx_nfail(
            L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
            "initializer '%s' has data type %s; float, float16, bfloat16 or double "
            "expected",
            cbi_onnx_tname(t), dtype_name(type));
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
    if (!f) return cbi_onnx_oom(L);
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
cbinfer_status cbi_onnx_tensor_ints(loader *L, const Onnx__NodeProto *n, const Onnx__TensorProto *t,
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
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                              "initializer '%s' has data type %s; int64 or int32 expected",
                              cbi_onnx_tname(t), dtype_name(type));
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
    if (!v) return cbi_onnx_oom(L);
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
cbinfer_status cbi_onnx_const_scalar(loader *L, const Onnx__NodeProto *n, const char *name,
                                     const char *what, float *v)
{
    const Onnx__TensorProto *t = cbi_onnx_const_get(L, name);
    if (!t)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                              "%s '%s' is not an initializer (computed values are not supported)",
                              what, name);
    float *f;
    size_t cnt;
    cbinfer_status st = cbi_onnx_tensor_floats(L, n, t, &f, &cnt);
    if (st) return st;
    if (cnt != 1) {
        free(f);
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                              "%s '%s' has %zu values; a scalar is expected", what, name, cnt);
    }
    *v = f[0];
    free(f);
    return CBINFER_STATUS_SUCCESS;
}

/* ------------------------------------------------------------------------
 * Named constants
 * ---------------------------------------------------------------------- */
static cbinfer_status add_const(loader *L, const char *name, const Onnx__TensorProto *t)
{
    if (cbi_onnx_smap_get(&L->const_map, name, NULL))
        return cbi_fail(L->e, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                        "constant '%s' is defined twice", name);
    L->consts[L->n_consts] = t;
    if (cbi_onnx_smap_put(&L->const_map, name, L->n_consts)) return cbi_onnx_oom(L);
    L->n_consts++;
    return CBINFER_STATUS_SUCCESS;
}

/* Initializers, Constant nodes, and Identity nodes of constants (exporters
 * emit those for shared weights) all become named constants. */
cbinfer_status cbi_onnx_collect_constants(loader *L)
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
        if (!n->op_type || strcmp(n->op_type, "Constant") != 0 ||
            !cbi_onnx_is_default_domain(n->domain))
            continue;
        cbi_onnx_set_cur(L, n, (int)i);
        const Onnx__AttributeProto *a = cbi_onnx_attr_get(n, "value");
        if (!a || !a->t)
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                                  "only the tensor 'value' form of Constant is supported");
        if (n->n_output != 1 || !*n->output[0])
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                                  "needs exactly one output");
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
            const Onnx__TensorProto *t = cbi_onnx_const_get(L, cbi_onnx_opt_input(n, 0));
            if (!t) continue;
            if ((st = add_const(L, n->output[0], t))) return st;
            L->skip[i] = 1;
            changed = 1;
        }
    }
    return CBINFER_STATUS_SUCCESS;
}
