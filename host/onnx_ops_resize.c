/*
 * The ONNX loader's lowering of the ops that change H and W without a window
 * or weights: Pad, Resize (and Upsample, its older form) and DepthToSpace.
 * Their pads, scales and sizes must be constants.
 */
#include <stdlib.h>
#include <string.h>

#include "onnx_loader_internal.h"

cbinfer_status cbi_onnx_lower_pad(loader *L, const Onnx__NodeProto *n, const char *op)
{
    static const char *const modes[] = {"constant", "edge", "reflect"};
    cbinfer_status st;
    int x, mode;
    int64_t pads[8];
    float value = 0.f;
    if ((st = cbi_onnx_act_input(L, n, 0, &x)) ||
        (st = cbi_onnx_attr_enum(L, n, "mode", modes, 3, 0, &mode)))
        return st;
    if (cbi_onnx_attr_get(n, "pads")) { /* opset < 11 */
        int found;
        if ((st = cbi_onnx_attr_ints(L, n, "pads", 8, pads, &found)) ||
            (st = cbi_onnx_attr_float(L, n, "value", 0.f, &value)))
            return st;
        if (!found)
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR, "pads is empty");
    } else {
        const char *pname = cbi_onnx_opt_input(n, 1), *vname = cbi_onnx_opt_input(n, 2);
        if (!pname)
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH, "pads are missing");
        if (cbi_onnx_opt_input(n, 3))
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                                  "the axes input is not supported");
        const Onnx__TensorProto *pt = cbi_onnx_const_get(L, pname);
        if (!pt)
            return cbi_onnx_nfail(
                L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                "pads '%s' is not an initializer (computed pads are not supported)", pname);
        int64_t *p;
        size_t cnt;
        if ((st = cbi_onnx_tensor_ints(L, n, pt, &p, &cnt))) return st;
        if (cnt != 8) {
            free(p);
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                                  "pads '%s' has %zu values; 8 (a 4-D input) expected", pname, cnt);
        }
        memcpy(pads, p, sizeof pads);
        free(p);
        if (vname && (st = cbi_onnx_const_scalar(L, n, vname, "constant_value", &value))) return st;
    }
    for (int i = 0; i < 8; ++i)
        if (pads[i] < 0)
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                                  "negative pads (cropping) are not supported");
    /* ONNX order: [n_begin, c_begin, h_begin, w_begin, n_end, c_end, h_end, w_end]. */
    if (pads[0] || pads[1] || pads[4] || pads[5])
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                              "only H and W may be padded (N/C pads %lld,%lld,%lld,%lld)",
                              (long long)pads[0], (long long)pads[1], (long long)pads[4],
                              (long long)pads[5]);
    int64_t hw[4] = {pads[2], pads[3], pads[6], pads[7]};
    if ((st = cbi_onnx_check_range(L, n, "pads", hw, 4, 0))) return st;
    int c = L->net->values[x].c;
    cbi_node *nd;
    if ((st = cbi_onnx_node_new(L, CBI_OP_PAD, op, c, &nd))) return st;
    nd->inputs[0] = x;
    nd->n_inputs = 1;
    nd->pad_t = (int)hw[0];
    nd->pad_l = (int)hw[1];
    nd->pad_b = (int)hw[2];
    nd->pad_r = (int)hw[3];
    nd->pad_mode = (cbi_pad_mode)mode;
    nd->pad_value = value;
    return cbi_onnx_node_output(L, n, nd, c);
}

cbinfer_status cbi_onnx_lower_resize(loader *L, const Onnx__NodeProto *n, const char *op)
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
    if ((st = cbi_onnx_act_input(L, n, 0, &x)) ||
        (st = cbi_onnx_attr_enum(L, n, "mode", modes, 2, 0, &mode)) ||
        (st = cbi_onnx_attr_int(L, n, "antialias", 0, &antialias)) ||
        (st = cbi_onnx_attr_enum(L, n, "keep_aspect_ratio_policy", stretch, 1, 0, &policy)))
        return st;
    if (antialias != 0 || cbi_onnx_attr_get(n, "axes"))
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                              "antialias and axes are not supported");
    if (old) {
        /* Upsample and Resize-10 index the source by floor(dst / scale). */
        coord = CBI_RESIZE_ASYMMETRIC;
        round = CBI_RESIZE_FLOOR;
    } else if ((st = cbi_onnx_attr_enum(L, n, "coordinate_transformation_mode", coords, 5,
                                        CBI_RESIZE_HALF_PIXEL, &coord)) ||
               (st = cbi_onnx_attr_enum(L, n, "nearest_mode", rounds, 4,
                                        CBI_RESIZE_ROUND_PREFER_FLOOR, &round))) {
        return st;
    }

    int64_t exclude;
    if ((st = cbi_onnx_attr_int(L, n, "exclude_outside", 0, &exclude))) return st;
    if (mode == 1 && (exclude != 0 || coord == CBI_RESIZE_TF_HALF_PIXEL_FOR_NN))
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                              "linear Resize with %s is not supported",
                              exclude != 0 ? "exclude_outside" : "tf_half_pixel_for_nn");

    float scales[4] = {1, 1, 1, 1};
    int64_t sizes[4] = {0, 0, 0, 0};
    int has_scales = 0, has_sizes = 0;
    const Onnx__AttributeProto *sa = NULL;
    if (upsample && (st = cbi_onnx_attr_typed(L, n, "scales",
                                              ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS, &sa)))
        return st;
    if (sa && sa->n_floats) { /* Upsample-7 */
        if (sa->n_floats != 4)
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                                  "scales has %zu values; 4 (NCHW) expected", sa->n_floats);
        memcpy(scales, sa->floats, sizeof scales);
        has_scales = 1;
    }
    const char *sname = old ? cbi_onnx_opt_input(n, 1) : cbi_onnx_opt_input(n, 2);
    const char *zname = old ? NULL : cbi_onnx_opt_input(n, 3);
    if (sname && !has_scales) {
        const Onnx__TensorProto *t = cbi_onnx_const_get(L, sname);
        if (!t)
            return cbi_onnx_nfail(
                L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                "scales '%s' is not an initializer (computed scales are not supported)", sname);
        float *f;
        size_t cnt;
        if ((st = cbi_onnx_tensor_floats(L, n, t, &f, &cnt))) return st;
        if (cnt != 0 && cnt != 4) {
            free(f);
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                                  "scales '%s' has %zu values; 4 (NCHW) expected", sname, cnt);
        }
        if (cnt) memcpy(scales, f, sizeof scales);
        has_scales = cnt != 0;
        free(f);
    }
    if (zname) {
        const Onnx__TensorProto *t = cbi_onnx_const_get(L, zname);
        if (!t)
            return cbi_onnx_nfail(
                L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                "sizes '%s' is not an initializer (computed sizes are not supported)", zname);
        int64_t *v;
        size_t cnt;
        if ((st = cbi_onnx_tensor_ints(L, n, t, &v, &cnt))) return st;
        if (cnt != 0 && cnt != 4) {
            free(v);
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                                  "sizes '%s' has %zu values; 4 (NCHW) expected", zname, cnt);
        }
        if (cnt) memcpy(sizes, v, sizeof sizes);
        has_sizes = cnt != 0;
        free(v);
    }
    if (has_scales == has_sizes)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                              "exactly one of constant scales or sizes must be given");
    int c = L->net->values[x].c;
    if (has_scales) {
        if (scales[0] != 1.f || scales[1] != 1.f)
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                                  "N and C scales must be 1 (got %g, %g)", scales[0], scales[1]);
        for (int i = 2; i < 4; ++i)
            if (!(scales[i] > 0.f && scales[i] <= MAX_WINDOW))
                return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                                      "scale %g is not supported", scales[i]);
    } else {
        if (sizes[0] != 1 || sizes[1] != c)
            return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                                  "sizes must keep N = 1 and C = %d (got %lld, %lld)", c,
                                  (long long)sizes[0], (long long)sizes[1]);
        for (int i = 2; i < 4; ++i)
            if (sizes[i] < 1 || sizes[i] > MAX_RESIZE_PX)
                return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                                      "size %lld is not supported", (long long)sizes[i]);
    }
    cbi_node *nd;
    if ((st = cbi_onnx_node_new(L, CBI_OP_RESIZE, op, c, &nd))) return st;
    nd->inputs[0] = x;
    nd->n_inputs = 1;
    nd->scale_h = has_scales ? scales[2] : 0.f;
    nd->scale_w = has_scales ? scales[3] : 0.f;
    nd->size_h = has_sizes ? (int)sizes[2] : 0;
    nd->size_w = has_sizes ? (int)sizes[3] : 0;
    nd->coord = (cbi_resize_coord)coord;
    nd->round = (cbi_resize_round)round;
    nd->linear = mode == 1;
    return cbi_onnx_node_output(L, n, nd, c);
}

cbinfer_status cbi_onnx_lower_d2s(loader *L, const Onnx__NodeProto *n, const char *op)
{
    static const char *const modes[] = {"DCR", "CRD"};
    cbinfer_status st;
    int x, mode;
    int64_t b;
    if ((st = cbi_onnx_act_input(L, n, 0, &x)) ||
        (st = cbi_onnx_attr_int(L, n, "blocksize", 0, &b)) ||
        (st = cbi_onnx_attr_enum(L, n, "mode", modes, 2, 0, &mode)))
        return st;
    if (b < 1 || b > 4096)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                              "blocksize %lld is missing or not supported", (long long)b);
    int c = L->net->values[x].c;
    if (c % (b * b) != 0)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                              "%d channels are not divisible by blocksize^2 = %lld", c,
                              (long long)(b * b));
    cbi_node *nd;
    if ((st = cbi_onnx_node_new(L, CBI_OP_DEPTH_TO_SPACE, op, c, &nd))) return st;
    nd->inputs[0] = x;
    nd->n_inputs = 1;
    nd->blocksize = (int)b;
    nd->d2s_crd = mode;
    return cbi_onnx_node_output(L, n, nd, (int)(c / (b * b)));
}
