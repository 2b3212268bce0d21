/*
 * The ONNX loader's lowering, one function per op family, and the op table:
 * Conv and ConvTranspose (weights reordered for NHWC im2col), the pools, the
 * activations, Add, Concat, BatchNormalization (a placeholder that
 * cbi_onnx_fold_and_fuse folds away), Identity and Dropout. Pad,
 * Resize/Upsample and DepthToSpace are lowered in onnx_ops_resize.c.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_loader_internal.h"

/* ------------------------------------------------------------------------
 * Lowering, one function per op family
 * ---------------------------------------------------------------------- */
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
    if ((st = cbi_onnx_act_input(L, n, 0, &x))) return st;
    const char *wname = cbi_onnx_opt_input(n, 1);
    if (!wname)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                              "weight input W is missing");
    const Onnx__TensorProto *wt = cbi_onnx_const_get(L, wname);
    if (!wt)
        return cbi_onnx_nfail(
            L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
            "weight '%s' is not an initializer (computed weights are not supported)", wname);
    int64_t group;
    if ((st = cbi_onnx_attr_int(L, n, "group", 1, &group))) return st;
    if (group < 1 || group > INT_MAX || (transpose && group != 1))
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                              "group = %lld is not supported (%s)", (long long)group,
                              transpose ? "ConvTranspose: only 1" : "at least 1");
    if (wt->n_dims != 4)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                              "weight '%s' has %zu dims; only 2-D convolutions (4-D weights) are "
                              "supported",
                              wname, wt->n_dims);
    for (int i = 0; i < 4; ++i)
        if (wt->dims[i] <= 0 || wt->dims[i] > INT_MAX)
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_WEIGHT_MISMATCH,
                                  "weight '%s' has an empty or oversized dim", wname);
    int d0 = (int)wt->dims[0], d1 = (int)wt->dims[1];
    int kh = (int)wt->dims[2], kw = (int)wt->dims[3];
    /* Grouped: W is [Cout][Cin / group][kh][kw]. */
    int64_t cin64 = transpose ? d0 : (int64_t)d1 * group;
    int cout = transpose ? d1 : d0;
    int cin_x = L->net->values[x].c;
    if (cin64 != cin_x)
        return cbi_onnx_nfail(
            L, n, CBINFER_STATUS_MODEL_WEIGHT_MISMATCH,
            "weight '%s' [%d,%d,%d,%d] (group %lld) expects %lld input channels but "
            "input '%s' has %d",
            wname, d0, d1, kh, kw, (long long)group, (long long)cin64, L->net->values[x].name,
            cin_x);
    int cin = (int)cin64;
    if (cout % group)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_WEIGHT_MISMATCH,
                              "%d output channels do not split into %lld groups", cout,
                              (long long)group);
    int64_t ks[2];
    int found;
    if ((st = cbi_onnx_attr_ints(L, n, "kernel_shape", 2, ks, &found))) return st;
    if (found && (ks[0] != kh || ks[1] != kw))
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_WEIGHT_MISMATCH,
                              "kernel_shape %lldx%lld disagrees with weight '%s' (%dx%d)",
                              (long long)ks[0], (long long)ks[1], wname, kh, kw);
    if (kh > MAX_WINDOW || kw > MAX_WINDOW)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                              "kernel %dx%d is too large", kh, kw);
    cbi_window win;
    if ((st = cbi_onnx_read_window(L, n, transpose ? WIN_CONV_T : WIN_CONV, &win))) return st;
    win.kh = kh;
    win.kw = kw;
    const char *bname = cbi_onnx_opt_input(n, 2);
    const Onnx__TensorProto *bt = bname ? cbi_onnx_const_get(L, bname) : NULL;
    if (bname && !bt)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                              "bias '%s' is not an initializer", bname);

    cbi_node *nd;
    if ((st = cbi_onnx_node_new(L, transpose ? CBI_OP_CONV_TRANSPOSE : CBI_OP_CONV, op, cin, &nd)))
        return st;
    nd->inputs[0] = x;
    nd->n_inputs = 1;
    nd->win = win;
    nd->group = (int)group;
    float *w;
    size_t cnt;
    if ((st = cbi_onnx_tensor_floats(L, n, wt, &w, &cnt))) return st;
    nd->weight = cbi_malloc_array(cnt, sizeof *nd->weight);
    if (!nd->weight) {
        free(w);
        return cbi_onnx_oom(L);
    }
    reorder_weights(w, nd->weight, d0, d1, kh, kw);
    free(w);
    if (bt) {
        if ((st = cbi_onnx_tensor_floats(L, n, bt, &nd->bias, &cnt))) return st;
        if (cnt != (size_t)cout)
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_WEIGHT_MISMATCH,
                                  "bias '%s' has %zu values for %d output channels", bname, cnt,
                                  cout);
    } else {
        nd->bias = cbi_calloc((size_t)cout, sizeof *nd->bias);
        if (!nd->bias) return cbi_onnx_oom(L);
    }
    return cbi_onnx_node_output(L, n, nd, cout);
}

static cbinfer_status lower_pool(loader *L, const Onnx__NodeProto *n, const char *op)
{
    int avg = strcmp(op, "AveragePool") == 0;
    cbinfer_status st;
    int x;
    cbi_window win;
    if ((st = cbi_onnx_act_input(L, n, 0, &x)) ||
        (st = cbi_onnx_read_window(L, n, avg ? WIN_AVGPOOL : WIN_MAXPOOL, &win)))
        return st;
    /* storage_order only orders the Indices output, which is unsupported. */
    int c = L->net->values[x].c;
    cbi_node *nd;
    if ((st = cbi_onnx_node_new(L, avg ? CBI_OP_AVGPOOL : CBI_OP_MAXPOOL, op, c, &nd))) return st;
    nd->inputs[0] = x;
    nd->n_inputs = 1;
    nd->win = win;
    return cbi_onnx_node_output(L, n, nd, c);
}

/* PRelu's slope broadcasts against NCHW from the right; only a scalar or one
 * value per channel ([C,1,1], [1,C,1,1], ...) is supported. */
static cbinfer_status check_slope(loader *L, const Onnx__NodeProto *n, const Onnx__TensorProto *t,
                                  size_t cnt, int c)
{
    if (cnt == 1) return CBINFER_STATUS_SUCCESS;
    if (cnt != (size_t)c)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_WEIGHT_MISMATCH,
                              "slope '%s' has %zu values; 1 or %d (one per channel) expected",
                              cbi_onnx_tname(t), cnt, c);
    if (t->n_dims > 4)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                              "slope '%s' has %zu dims", cbi_onnx_tname(t), t->n_dims);
    for (size_t j = 0; j < t->n_dims; ++j) {
        size_t axis = 4 - t->n_dims + j;
        if (axis != 1 && t->dims[j] != 1)
            return cbi_onnx_nfail(
                L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                "slope '%s' broadcasts along a non-channel axis; only per-channel "
                "slopes ([C,1,1]) are supported",
                cbi_onnx_tname(t));
    }
    return CBINFER_STATUS_SUCCESS;
}

static cbinfer_status lower_act(loader *L, const Onnx__NodeProto *n, const char *op)
{
    cbinfer_status st;
    int x;
    if ((st = cbi_onnx_act_input(L, n, 0, &x))) return st;
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
        if ((st = cbi_onnx_attr_float(L, n, "alpha", 0.01f, &act.alpha))) return st;
    } else if (strcmp(op, "PRelu") == 0) {
        act.kind = CBI_ACT_PRELU;
        const char *sname = cbi_onnx_opt_input(n, 1);
        if (!sname)
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                                  "slope input is missing");
        slope = cbi_onnx_const_get(L, sname);
        if (!slope)
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                                  "slope '%s' is not an initializer", sname);
    } else {
        act.kind = CBI_ACT_CLIP;
        /* Opset < 11 has min/max attributes, later ones optional inputs. */
        if ((st = cbi_onnx_attr_float(L, n, "min", -INFINITY, &act.lo)) ||
            (st = cbi_onnx_attr_float(L, n, "max", INFINITY, &act.hi)))
            return st;
        const char *lo = cbi_onnx_opt_input(n, 1), *hi = cbi_onnx_opt_input(n, 2);
        if ((lo && (st = cbi_onnx_const_scalar(L, n, lo, "min", &act.lo))) ||
            (hi && (st = cbi_onnx_const_scalar(L, n, hi, "max", &act.hi))))
            return st;
        if (isnan(act.lo) || isnan(act.hi))
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR, "min or max is NaN");
        /* ONNX: with min > max every value becomes max. min = max says the
         * same to every kernel, which clamps to [min, max]. */
        if (act.lo > act.hi) act.lo = act.hi;
    }
    cbi_node *nd;
    if ((st = cbi_onnx_node_new(L, CBI_OP_ACTIVATION, op, c, &nd))) return st;
    nd->inputs[0] = x;
    nd->n_inputs = 1;
    nd->act = act;
    if (slope) {
        float *s;
        size_t cnt;
        if ((st = cbi_onnx_tensor_floats(L, n, slope, &s, &cnt))) return st;
        nd->act.slope = s;
        nd->act.n_slope = (int)cnt;
        if ((st = check_slope(L, n, slope, cnt, c))) return st;
    }
    return cbi_onnx_node_output(L, n, nd, c);
}

static cbinfer_status lower_add(loader *L, const Onnx__NodeProto *n, const char *op)
{
    cbinfer_status st;
    if (n->n_input != 2)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                              "Add needs 2 inputs, has %zu", n->n_input);
    int a, b;
    for (size_t k = 0; k < 2; ++k)
        if (cbi_onnx_const_get(L, cbi_onnx_opt_input(n, k)))
            return cbi_onnx_nfail(
                L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                "operand '%s' is an initializer; only the sum of two activations of "
                "equal shape is supported",
                n->input[k]);
    if ((st = cbi_onnx_act_input(L, n, 0, &a)) || (st = cbi_onnx_act_input(L, n, 1, &b))) return st;
    int ca = L->net->values[a].c, cb = L->net->values[b].c;
    if (ca != cb)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                              "inputs have %d and %d channels", ca, cb);
    cbi_node *nd;
    if ((st = cbi_onnx_node_new(L, CBI_OP_ADD, op, ca, &nd))) return st;
    nd->inputs[0] = a;
    nd->inputs[1] = b;
    nd->n_inputs = 2;
    return cbi_onnx_node_output(L, n, nd, ca);
}

static cbinfer_status lower_concat(loader *L, const Onnx__NodeProto *n, const char *op)
{
    cbinfer_status st;
    const Onnx__AttributeProto *a = cbi_onnx_attr_get(n, "axis");
    int64_t axis;
    if (!a) return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR, "axis is missing");
    if ((st = cbi_onnx_attr_int(L, n, "axis", 1, &axis))) return st;
    if (axis != 1 && axis != -3)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                              "axis = %lld is not supported (channels only: 1 or -3)",
                              (long long)axis);
    if (n->n_input == 0 || n->n_input > CBI_MAX_INPUTS)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                              "%zu inputs; 1 to %d are supported", n->n_input, CBI_MAX_INPUTS);
    int ids[CBI_MAX_INPUTS];
    int64_t c = 0;
    for (size_t k = 0; k < n->n_input; ++k) {
        if ((st = cbi_onnx_act_input(L, n, k, &ids[k]))) return st;
        c += L->net->values[ids[k]].c;
    }
    if (c > INT_MAX)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH, "too many output channels");
    cbi_node *nd;
    if ((st = cbi_onnx_node_new(L, CBI_OP_CONCAT, op, L->net->values[ids[0]].c, &nd))) return st;
    memcpy(nd->inputs, ids, n->n_input * sizeof ids[0]);
    nd->n_inputs = (int)n->n_input;
    return cbi_onnx_node_output(L, n, nd, (int)c);
}

/* A placeholder node carrying the per-channel affine map;
 * cbi_onnx_fold_and_fuse() merges it into the convolution before it. */
static cbinfer_status lower_bn(loader *L, const Onnx__NodeProto *n, const char *op)
{
    static const char *const what[] = {"scale", "B", "mean", "var"};
    cbinfer_status st;
    int x;
    int64_t spatial, training;
    float eps;
    if ((st = cbi_onnx_act_input(L, n, 0, &x)) ||
        (st = cbi_onnx_attr_float(L, n, "epsilon", 1e-5f, &eps)) ||
        (st = cbi_onnx_attr_int(L, n, "spatial", 1, &spatial)) ||
        (st = cbi_onnx_attr_int(L, n, "training_mode", 0, &training)))
        return st;
    if (spatial != 1 || training != 0)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                              "only spatial = 1, training_mode = 0 are supported");
    const Onnx__TensorProto *t[4];
    for (int k = 0; k < 4; ++k) {
        const char *name = cbi_onnx_opt_input(n, (size_t)k + 1);
        if (!name)
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH, "input %s is missing",
                                  what[k]);
        if (!(t[k] = cbi_onnx_const_get(L, name)))
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                                  "%s '%s' is not an initializer", what[k], name);
    }
    int c = L->net->values[x].c;
    cbi_node *nd;
    if ((st = cbi_onnx_node_new(L, CBI_OP_COUNT, op, c, &nd))) return st;
    nd->inputs[0] = x;
    nd->n_inputs = 1;
    node_extra *ex = &L->extra[L->net->n_nodes - 1];
    ex->is_bn = 1;
    ex->scale = cbi_malloc_array((size_t)c, sizeof *ex->scale);
    ex->shift = cbi_malloc_array((size_t)c, sizeof *ex->shift);
    if (!ex->scale || !ex->shift) return cbi_onnx_oom(L);

    float *p[4] = {NULL, NULL, NULL, NULL};
    for (int k = 0; k < 4 && !st; ++k) {
        size_t cnt;
        st = cbi_onnx_tensor_floats(L, n, t[k], &p[k], &cnt);
        if (!st && cnt != (size_t)c)
            st = cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_WEIGHT_MISMATCH,
                                "%s '%s' has %zu values for %d channels", what[k],
                                cbi_onnx_tname(t[k]), cnt, c);
    }
    for (int i = 0; i < c && !st; ++i) {
        double var = (double)p[3][i] + eps;
        if (!(var > 0.0))
            st = cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_WEIGHT_MISMATCH,
                                "var + epsilon is not positive at channel %d", i);
        else {
            ex->scale[i] = p[0][i] / sqrt(var);
            ex->shift[i] = p[1][i] - p[2][i] * ex->scale[i];
        }
    }
    for (int k = 0; k < 4; ++k) free(p[k]);
    if (st) return st;
    return cbi_onnx_node_output(L, n, nd, c);
}

/* Identity and Dropout (inference): the output is another name of the input. */
static cbinfer_status lower_passthrough(loader *L, const Onnx__NodeProto *n, const char *op)
{
    cbinfer_status st;
    int x;
    if ((st = cbi_onnx_act_input(L, n, 0, &x))) return st;
    const char *out = n->n_output ? n->output[0] : NULL;
    if (!out || !*out)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH, "the node has no output");
    if (cbi_onnx_smap_put(&L->value_map, out, x)) return cbi_onnx_oom(L);
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
    {"Pad", cbi_onnx_lower_pad},
    {"Resize", cbi_onnx_lower_resize},
    {"Upsample", cbi_onnx_lower_resize},
    {"DepthToSpace", cbi_onnx_lower_d2s},
    {"BatchNormalization", lower_bn},
    {"Identity", lower_passthrough},
    {"Dropout", lower_passthrough},
};

cbinfer_status cbi_onnx_lower_nodes(loader *L)
{
    const Onnx__GraphProto *g = L->g;
    for (int k = 0; k < L->n_order; ++k) {
        int i = L->order[k];
        const Onnx__NodeProto *n = g->node[i];
        if (!L->live[i]) continue;
        cbi_onnx_set_cur(L, n, i);
        if (!n->op_type || !*n->op_type)
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_MALFORMED, "the node has no op_type");
        if (!cbi_onnx_is_default_domain(n->domain))
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_OP,
                                  "op '%s' of domain '%s' is not supported", n->op_type, n->domain);
        size_t j = 0;
        while (j < sizeof k_ops / sizeof k_ops[0] && strcmp(k_ops[j].op, n->op_type) != 0) ++j;
        if (j == sizeof k_ops / sizeof k_ops[0])
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_OP,
                                  "op '%s' is not supported", n->op_type);
        cbinfer_status st = k_ops[j].fn(L, n, k_ops[j].op);
        if (st) return st;
    }
    L->cur = NULL;
    return CBINFER_STATUS_SUCCESS;
}
