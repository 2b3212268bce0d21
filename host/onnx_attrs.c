/*
 * The ONNX loader's node and attribute helpers: failures that name the node
 * being lowered, node inputs, attributes read by type (one of the wrong type
 * is refused, never read as absent), and the sliding-window attributes of
 * Conv, ConvTranspose and the pools.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "onnx_loader_internal.h"

/* ------------------------------------------------------------------------
 * Nodes
 * ---------------------------------------------------------------------- */
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

void cbi_onnx_set_cur(loader *L, const Onnx__NodeProto *n, int idx)
{
    L->cur = node_base_name(n, idx, L->cur_buf, sizeof L->cur_buf);
}

/* A failure attributed to the node being lowered. */
cbinfer_status cbi_onnx_nfail(loader *L, const Onnx__NodeProto *n, cbinfer_status st,
                              const char *fmt, ...)
{
    char detail[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return cbi_fail(L->e, st, "node '%s' (%s): %s", L->cur ? L->cur : "?", node_op(n), detail);
}

cbinfer_status cbi_onnx_oom(loader *L)
{
    return cbi_fail(L->e, CBINFER_STATUS_OUT_OF_MEMORY, "out of memory while loading the model");
}

int cbi_onnx_is_default_domain(const char *d)
{
    return !d || !*d || strcmp(d, "ai.onnx") == 0;
}

/* Input k of n, or NULL when absent or left empty (an omitted optional). */
const char *cbi_onnx_opt_input(const Onnx__NodeProto *n, size_t k)
{
    return k < n->n_input && n->input[k] && *n->input[k] ? n->input[k] : NULL;
}

/* ------------------------------------------------------------------------
 * Attributes
 * ---------------------------------------------------------------------- */
const Onnx__AttributeProto *cbi_onnx_attr_get(const Onnx__NodeProto *n, const char *name)
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
cbinfer_status cbi_onnx_attr_typed(loader *L, const Onnx__NodeProto *n, const char *name,
                                   Onnx__AttributeProto__AttributeType want,
                                   const Onnx__AttributeProto **out)
{
    const Onnx__AttributeProto *a = cbi_onnx_attr_get(n, name);
    *out = a;
    if (!a) return CBINFER_STATUS_SUCCESS;
    const Onnx__AttributeProto__AttributeType t = attr_type_of(a);
    if (t == want || t == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED) return CBINFER_STATUS_SUCCESS;
    return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                          "attribute '%s' is %s, %s expected", name, attr_type_name(t),
                          attr_type_name(want));
}

cbinfer_status cbi_onnx_attr_int(loader *L, const Onnx__NodeProto *n, const char *name, int64_t def,
                                 int64_t *v)
{
    const Onnx__AttributeProto *a;
    cbinfer_status st =
        cbi_onnx_attr_typed(L, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, &a);
    *v = def;
    if (st || !a) return st;
    /* A typed attribute without its value holds the proto3 default, 0
     * (writers through onnx.proto3 leave such values out; the ONNX checker
     * accepts them). */
    *v = a->has_i ? a->i : 0;
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbi_onnx_attr_float(loader *L, const Onnx__NodeProto *n, const char *name, float def,
                                   float *v)
{
    const Onnx__AttributeProto *a;
    cbinfer_status st =
        cbi_onnx_attr_typed(L, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT, &a);
    *v = def;
    if (st || !a) return st;
    *v = a->has_f ? a->f : 0.f; /* the proto3 default, as cbi_onnx_attr_int */
    return CBINFER_STATUS_SUCCESS;
}

/* An INTS attribute of exactly len values; out is left as is when absent (an
 * empty list counts as absent). */
cbinfer_status cbi_onnx_attr_ints(loader *L, const Onnx__NodeProto *n, const char *name, size_t len,
                                  int64_t *out, int *found)
{
    const Onnx__AttributeProto *a;
    cbinfer_status st =
        cbi_onnx_attr_typed(L, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS, &a);
    if (found) *found = 0;
    if (st || !a || a->n_ints == 0) return st;
    if (a->n_ints != len)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                              "attribute '%s' has %zu values, %zu expected (2-D spatial ops only)",
                              name, a->n_ints, len);
    memcpy(out, a->ints, len * sizeof *out);
    if (found) *found = 1;
    return CBINFER_STATUS_SUCCESS;
}

/* A STRING attribute that must be one of choices; *out is its index, or def
 * when the attribute is absent. */
cbinfer_status cbi_onnx_attr_enum(loader *L, const Onnx__NodeProto *n, const char *name,
                                  const char *const *choices, int n_choices, int def, int *out)
{
    const Onnx__AttributeProto *a;
    cbinfer_status st =
        cbi_onnx_attr_typed(L, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING, &a);
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
    return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                          "%s = '%.*s' is not supported (supported: %s)", name, shown,
                          a->s.data ? (const char *)a->s.data : "", list);
}

/* ------------------------------------------------------------------------
 * Sliding windows
 * ---------------------------------------------------------------------- */
static const char *const k_auto_pad[] = {"NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"};

cbinfer_status cbi_onnx_check_range(loader *L, const Onnx__NodeProto *n, const char *name,
                                    const int64_t *v, int count, int64_t lo)
{
    for (int i = 0; i < count; ++i)
        if (v[i] < lo || v[i] > MAX_WINDOW)
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                                  "%s value %lld is not supported (range %lld..%d)", name,
                                  (long long)v[i], (long long)lo, MAX_WINDOW);
    return CBINFER_STATUS_SUCCESS;
}

/* Sliding-window attributes of Conv, ConvTranspose and the pools. */
cbinfer_status cbi_onnx_read_window(loader *L, const Onnx__NodeProto *n, int kind, cbi_window *w)
{
    int64_t k[2] = {1, 1}, s[2] = {1, 1}, d[2] = {1, 1}, p[4] = {0, 0, 0, 0}, op[2] = {0, 0};
    int64_t ceil_mode = 0, include_pad = 0;
    int found, ap;
    cbinfer_status st;
    if ((st = cbi_onnx_attr_ints(L, n, "strides", 2, s, NULL)) ||
        (st = cbi_onnx_attr_ints(L, n, "dilations", 2, d, NULL)) ||
        (st = cbi_onnx_attr_ints(L, n, "pads", 4, p, NULL)) ||
        (st = cbi_onnx_attr_enum(L, n, "auto_pad", k_auto_pad, 4, 0, &ap)) ||
        (st = cbi_onnx_check_range(L, n, "strides", s, 2, 1)) ||
        (st = cbi_onnx_check_range(L, n, "dilations", d, 2, 1)))
        return st;
    for (int i = 0; i < 4; ++i)
        if (p[i] < 0)
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                                  "negative pads are not supported");
    if ((st = cbi_onnx_check_range(L, n, "pads", p, 4, 0))) return st;
    if (kind == WIN_CONV_T) {
        if (cbi_onnx_attr_get(n, "output_shape"))
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                                  "output_shape is not supported (give pads and output_padding)");
        if ((st = cbi_onnx_attr_ints(L, n, "output_padding", 2, op, NULL))) return st;
        for (int i = 0; i < 2; ++i)
            if (op[i] < 0 || op[i] >= s[i])
                return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                                      "output_padding %lld must be in 0..stride-1",
                                      (long long)op[i]);
    }
    if ((kind == WIN_CONV_T || kind == WIN_AVGPOOL) && (d[0] != 1 || d[1] != 1))
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                              "dilations other than 1 are not supported for this op");
    if (kind == WIN_MAXPOOL || kind == WIN_AVGPOOL) {
        if ((st = cbi_onnx_attr_ints(L, n, "kernel_shape", 2, k, &found))) return st;
        if (!found)
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                                  "kernel_shape is missing");
        if ((st = cbi_onnx_check_range(L, n, "kernel_shape", k, 2, 1)) ||
            (st = cbi_onnx_attr_int(L, n, "ceil_mode", 0, &ceil_mode)))
            return st;
        if (kind == WIN_AVGPOOL &&
            (st = cbi_onnx_attr_int(L, n, "count_include_pad", 0, &include_pad)))
            return st;
        if ((ceil_mode != 0 && ceil_mode != 1) || (include_pad != 0 && include_pad != 1))
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                                  "ceil_mode and count_include_pad must be 0 or 1");
        /* Each explicit pad must be smaller than the window, or a window
         * could lie wholly in the padding: ONNX Runtime refuses such pools
         * ("Pad should be smaller than kernel"); this checks the dilated
         * extent, so it is never stricter. auto_pad ignores the pads. */
        for (int i = 0; i < 4 && ap == CBI_AUTO_PAD_NOTSET; ++i) {
            const int64_t extent = (k[i % 2] - 1) * d[i % 2] + 1;
            if (p[i] >= extent)
                return cbi_onnx_nfail(
                    L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
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
