/*
 * The network IR: shape planning for one frame size (ONNX shape semantics),
 * teardown, and the public accessors of a loaded network.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "net.h"

void cbi_net_clear(cbi_net *net)
{
    if (!net) return;
    for (int i = 0; i < net->n_nodes; ++i) {
        cbi_node *nd = &net->nodes[i];
        free(nd->name);
        free(nd->weight);
        free(nd->bias);
        free((void *)nd->act.slope);
    }
    free(net->nodes);
    for (int v = 0; v < net->n_values; ++v) free(net->values[v].name);
    free(net->values);
    free(net->conv_nodes);
    free(net->outputs);
    memset(net, 0, sizeof *net);
}

int cbi_net_index_convs(cbi_net *net)
{
    int n = 0;
    for (int i = 0; i < net->n_nodes; ++i) n += net->nodes[i].op == CBI_OP_CONV;
    net->conv_nodes = cbi_malloc_array((size_t)n, sizeof *net->conv_nodes);
    if (n && !net->conv_nodes) return -1;
    net->n_conv = 0;
    for (int i = 0; i < net->n_nodes; ++i)
        if (net->nodes[i].op == CBI_OP_CONV) net->conv_nodes[net->n_conv++] = i;
    return 0;
}

/* One spatial axis of Conv or a pool: resolves the pads (auto_pad applied)
 * and returns the output size, <= 0 when the window does not fit. */
static int64_t window_axis(const cbi_window *w, int64_t in, int k, int s, int d, int pad0,
                           int pad1, int *pb, int *pe)
{
    int64_t dk = (int64_t)(k - 1) * d + 1;
    switch (w->auto_pad) {
    case CBI_AUTO_PAD_VALID: *pb = *pe = 0; break;
    case CBI_AUTO_PAD_SAME_UPPER:
    case CBI_AUTO_PAD_SAME_LOWER: {
        int64_t out = (in + s - 1) / s;
        int64_t total = (out - 1) * s + dk - in;
        if (total < 0) total = 0;
        int64_t small = total / 2, big = total - small;
        /* The odd pixel goes to the end for SAME_UPPER, the start for LOWER. */
        *pb = (int)(w->auto_pad == CBI_AUTO_PAD_SAME_UPPER ? small : big);
        *pe = (int)(w->auto_pad == CBI_AUTO_PAD_SAME_UPPER ? big : small);
        break;
    }
    default: *pb = pad0; *pe = pad1; break;
    }
    int64_t span = in + *pb + *pe - dk;
    if (span < 0) return 0;
    if (w->ceil_mode && w->auto_pad == CBI_AUTO_PAD_NOTSET) {
        int64_t out = (span + s - 1) / s + 1;
        /* As PyTorch and ONNX Runtime: a last window starting inside the end
         * padding is dropped. */
        if ((out - 1) * s >= in + *pb) out--;
        return out;
    }
    return span / s + 1;
}

/* One spatial axis of ConvTranspose:
 * out = (in - 1) * s - pad_b - pad_e + (k - 1) * d + 1 + out_pad. */
static int64_t transpose_axis(const cbi_window *w, int64_t in, int k, int s, int d, int pad0,
                              int pad1, int out_pad, int *pb, int *pe)
{
    int64_t full = (in - 1) * s + (int64_t)(k - 1) * d + 1 + out_pad;
    switch (w->auto_pad) {
    case CBI_AUTO_PAD_VALID: *pb = *pe = 0; break;
    case CBI_AUTO_PAD_SAME_UPPER:
    case CBI_AUTO_PAD_SAME_LOWER: {
        /* Target in * s; ONNX splits the total with the odd pixel at the end
         * for SAME_UPPER and at the start for SAME_LOWER. */
        int64_t total = full - in * s;
        if (total < 0) total = 0;
        int64_t small = total / 2, big = total - small;
        *pb = (int)(w->auto_pad == CBI_AUTO_PAD_SAME_UPPER ? small : big);
        *pe = (int)(w->auto_pad == CBI_AUTO_PAD_SAME_UPPER ? big : small);
        break;
    }
    default: *pb = pad0; *pe = pad1; break;
    }
    return full - *pb - *pe;
}

static cbinfer_status empty_output(cbi_err *e, const cbi_node *nd, cbi_shape in, int64_t oh,
                                   int64_t ow, int height, int width)
{
    return cbi_fail(e, CBINFER_STATUS_BAD_FRAME_SIZE,
                    "node '%s' (%s): output HxW would be %lldx%lld for its %dx%d input "
                    "(frame WxH %dx%d is too small or too large)",
                    nd->name, nd->op_type, (long long)oh, (long long)ow, in.h, in.w, width,
                    height);
}

/* Whether a C x H x W tensor stays within CBI_MAX_TENSOR_ELEMS (checked
 * without overflowing: each factor is at most INT_MAX). */
static int tensor_fits(int64_t c, int64_t h, int64_t w)
{
    if (c <= 0 || h <= 0 || w <= 0) return 0;
    if (h > CBI_MAX_TENSOR_ELEMS / w) return 0;
    return c <= CBI_MAX_TENSOR_ELEMS / (h * w);
}

static cbinfer_status too_large(cbi_err *e, const char *what, int64_t c, int64_t h, int64_t w,
                                int height, int width)
{
    return cbi_fail(e, CBINFER_STATUS_BAD_FRAME_SIZE,
                    "%s: CxHxW %lldx%lldx%lld is more than %lld elements (the kernels' index "
                    "range) at frame WxH %dx%d",
                    what, (long long)c, (long long)h, (long long)w,
                    (long long)CBI_MAX_TENSOR_ELEMS, width, height);
}

static cbinfer_status plan_node(const cbi_node *nd, cbi_shape *shapes, cbi_node_plan *pl,
                                int height, int width, cbi_err *e)
{
    cbi_shape in = shapes[nd->inputs[0]];
    const cbi_window *w = &nd->win;
    int64_t oh = in.h, ow = in.w;
    int64_t oc = in.c;
    memset(pl, 0, sizeof *pl);
    pl->in = in;
    switch (nd->op) {
    case CBI_OP_CONV:
    case CBI_OP_MAXPOOL:
    case CBI_OP_AVGPOOL:
        oh = window_axis(w, in.h, w->kh, w->sh, w->dh, w->pad_t, w->pad_b, &pl->pad_t, &pl->pad_b);
        ow = window_axis(w, in.w, w->kw, w->sw, w->dw, w->pad_l, w->pad_r, &pl->pad_l, &pl->pad_r);
        if (nd->op == CBI_OP_CONV) oc = nd->cout;
        break;
    case CBI_OP_CONV_TRANSPOSE:
        oh = transpose_axis(w, in.h, w->kh, w->sh, w->dh, w->pad_t, w->pad_b, w->out_pad_h,
                            &pl->pad_t, &pl->pad_b);
        ow = transpose_axis(w, in.w, w->kw, w->sw, w->dw, w->pad_l, w->pad_r, w->out_pad_w,
                            &pl->pad_l, &pl->pad_r);
        oc = nd->cout;
        break;
    case CBI_OP_ACTIVATION: break;
    case CBI_OP_ADD:
    case CBI_OP_CONCAT:
        oc = 0;
        for (int k = 0; k < nd->n_inputs; ++k) {
            cbi_shape s = shapes[nd->inputs[k]];
            int same = s.h == in.h && s.w == in.w && (nd->op == CBI_OP_CONCAT || s.c == in.c);
            if (!same)
                return cbi_fail(e, CBINFER_STATUS_BAD_FRAME_SIZE,
                                "node '%s' (%s): inputs have shapes %dx%dx%d and %dx%dx%d "
                                "(CxHxW) at frame WxH %dx%d",
                                nd->name, nd->op_type, in.c, in.h, in.w, s.c, s.h, s.w, width,
                                height);
            oc += s.c;
        }
        if (nd->op == CBI_OP_ADD) oc = in.c;
        break;
    case CBI_OP_PAD:
        if (nd->pad_mode == CBI_PAD_REFLECT &&
            (nd->pad_t >= in.h || nd->pad_b >= in.h || nd->pad_l >= in.w || nd->pad_r >= in.w))
            return cbi_fail(e, CBINFER_STATUS_BAD_FRAME_SIZE,
                            "node '%s' (%s): reflect pads %d,%d,%d,%d (t,l,b,r) need an input "
                            "larger than HxW %dx%d (frame WxH %dx%d)",
                            nd->name, nd->op_type, nd->pad_t, nd->pad_l, nd->pad_b, nd->pad_r,
                            in.h, in.w, width, height);
        oh = (int64_t)in.h + nd->pad_t + nd->pad_b;
        ow = (int64_t)in.w + nd->pad_l + nd->pad_r;
        pl->pad_t = nd->pad_t;
        pl->pad_l = nd->pad_l;
        pl->pad_b = nd->pad_b;
        pl->pad_r = nd->pad_r;
        break;
    case CBI_OP_RESIZE:
        /* ONNX: output = floor(input * scale) unless sizes are given. */
        oh = nd->size_h > 0 ? nd->size_h : (int64_t)floor((double)in.h * nd->scale_h);
        ow = nd->size_w > 0 ? nd->size_w : (int64_t)floor((double)in.w * nd->scale_w);
        break;
    case CBI_OP_DEPTH_TO_SPACE:
        oh = (int64_t)in.h * nd->blocksize;
        ow = (int64_t)in.w * nd->blocksize;
        oc = in.c / (nd->blocksize * nd->blocksize);
        break;
    default:
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node '%s': unknown op %d", nd->name,
                        (int)nd->op);
    }
    if (oh <= 0 || ow <= 0 || oh > INT_MAX || ow > INT_MAX)
        return empty_output(e, nd, in, oh, ow, height, width);
    if (oc <= 0)
        return cbi_fail(e, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                        "node '%s' (%s): the output has no channels (input %d channels)",
                        nd->name, nd->op_type, in.c);
    if (!tensor_fits(oc, oh, ow)) {
        char what[160];
        snprintf(what, sizeof what, "node '%s' (%s) output", nd->name, nd->op_type);
        return too_large(e, what, oc, oh, ow, height, width);
    }
    /* The im2col row (Conv) and the GEMM row (ConvTranspose) index with int. */
    const int64_t row = nd->op == CBI_OP_CONV             ? (int64_t)w->kh * w->kw * in.c
                        : nd->op == CBI_OP_CONV_TRANSPOSE ? (int64_t)w->kh * w->kw * oc
                                                          : 0;
    if (row > CBI_MAX_TENSOR_ELEMS)
        return cbi_fail(e, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                        "node '%s' (%s): a %dx%d kernel over %lld channels makes GEMM rows of "
                        "%lld values, more than %lld",
                        nd->name, nd->op_type, w->kh, w->kw,
                        (long long)(nd->op == CBI_OP_CONV ? in.c : oc), (long long)row,
                        (long long)CBI_MAX_TENSOR_ELEMS);
    pl->out.c = (int)oc;
    pl->out.h = (int)oh;
    pl->out.w = (int)ow;
    shapes[nd->output] = pl->out;
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbi_net_plan(const cbi_net *net, int height, int width, cbi_shape *shapes,
                            cbi_node_plan *plans, char *err, size_t err_len)
{
    cbi_err e;
    cbinfer_status st = CBINFER_STATUS_SUCCESS;
    e.msg[0] = '\0';
    if (!net || !shapes || (!plans && net->n_nodes > 0)) {
        st = cbi_fail(&e, CBINFER_STATUS_NULL_ARGUMENT, "cbi_net_plan: NULL argument");
    } else if (height <= 0 || width <= 0) {
        st = cbi_fail(&e, CBINFER_STATUS_BAD_FRAME_SIZE, "frame size WxH %dx%d is not positive",
                      width, height);
    } else if ((net->in_h > 0 && net->in_h != height) || (net->in_w > 0 && net->in_w != width)) {
        st = cbi_fail(&e, CBINFER_STATUS_BAD_FRAME_SIZE,
                      "the network input is fixed at %dx%d (WxH); the frame is %dx%d",
                      net->in_w > 0 ? net->in_w : width, net->in_h > 0 ? net->in_h : height,
                      width, height);
    } else {
        memset(shapes, 0, (size_t)net->n_values * sizeof *shapes);
        if (!tensor_fits(net->in_c, height, width))
            st = too_large(&e, "the network input", net->in_c, height, width, height, width);
        shapes[net->input].c = net->in_c;
        shapes[net->input].h = height;
        shapes[net->input].w = width;
        for (int i = 0; i < net->n_nodes && !st; ++i)
            st = plan_node(&net->nodes[i], shapes, &plans[i], height, width, &e);
    }
    if (st) cbi_err_copy(&e, err, err_len);
    return st;
}

/* ------------------------------------------------------------------------
 * Public accessors
 * ---------------------------------------------------------------------- */
void cbinfer_network_free(cbinfer_network_t *net)
{
    if (!net) return;
    cbi_net_clear(&net->net);
    free(net);
}

int cbinfer_network_output_count(const cbinfer_network_t *net)
{
    return net ? net->net.n_outputs : 0;
}

const char *cbinfer_network_output_name(const cbinfer_network_t *net, int index)
{
    if (!net || index < 0 || index >= net->net.n_outputs) return NULL;
    return net->net.values[net->net.outputs[index]].name;
}

cbinfer_status cbinfer_network_input_dims(const cbinfer_network_t *net, int *channels,
                                          int *height, int *width)
{
    if (!net) return CBINFER_STATUS_NULL_ARGUMENT;
    if (channels) *channels = net->net.in_c;
    if (height) *height = net->net.in_h;
    if (width) *width = net->net.in_w;
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbinfer_network_input_scaling(const cbinfer_network_t *net, float *scale,
                                             float *offset)
{
    if (!net) return CBINFER_STATUS_NULL_ARGUMENT;
    if (scale) *scale = net->net.input_scale;
    if (offset) *offset = net->net.input_offset;
    return CBINFER_STATUS_SUCCESS;
}

int cbinfer_network_conv_count(const cbinfer_network_t *net)
{
    return net ? net->net.n_conv : 0;
}

const char *cbinfer_network_conv_name(const cbinfer_network_t *net, int index)
{
    if (!net || index < 0 || index >= net->net.n_conv) return NULL;
    return net->net.nodes[net->net.conv_nodes[index]].name;
}

int cbinfer_network_conv_reaches(const cbinfer_network_t *net, int conv, int ancestor)
{
    if (!net) return -1;
    const cbi_net *g = &net->net;
    if (conv < 0 || conv >= g->n_conv || ancestor < 0 || ancestor >= g->n_conv) return -1;
    const int from = g->conv_nodes[ancestor], to = g->conv_nodes[conv];
    if (to <= from) return 0;
    /* Flood the ancestor's output forward through the (topologically
     * ordered) nodes between the two, on demand: the network keeps no table
     * of all pairs, which would grow with the square of the conv count. */
    unsigned char *reached = cbi_calloc((size_t)g->n_values, 1);
    if (!reached) return -1;
    reached[g->nodes[from].output] = 1;
    for (int k = from + 1; k < to; ++k) {
        const cbi_node *nd = &g->nodes[k];
        for (int q = 0; q < nd->n_inputs; ++q) reached[nd->output] |= reached[nd->inputs[q]];
    }
    const int r = reached[g->nodes[to].inputs[0]];
    free(reached);
    return r;
}

static int at_least_1(int v)
{
    return v > 0 ? v : 1;
}

cbinfer_status cbi_pool_geom_of(const cbi_node *node, const cbi_node_plan *plan,
                                cbi_pool_geom *g, cbi_err *e)
{
    const cbi_window *w = &node->win;
    if (node->op != CBI_OP_MAXPOOL && node->op != CBI_OP_AVGPOOL)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (%s): not a pool", node->name,
                        node->op_type);
    if (w->kh < 1 || w->kw < 1 || plan->in.c != plan->out.c)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (%s): bad pool geometry",
                        node->name, node->op_type);
    g->c = plan->in.c;
    g->h = plan->in.h;
    g->w = plan->in.w;
    g->ho = plan->out.h;
    g->wo = plan->out.w;
    g->kh = w->kh;
    g->kw = w->kw;
    g->sh = at_least_1(w->sh);
    g->sw = at_least_1(w->sw);
    g->dh = at_least_1(w->dh);
    g->dw = at_least_1(w->dw);
    g->pad_t = plan->pad_t;
    g->pad_l = plan->pad_l;
    g->pad_b = plan->pad_b;
    g->pad_r = plan->pad_r;
    g->is_max = node->op == CBI_OP_MAXPOOL;
    g->include_pad = w->count_include_pad;
    return CBINFER_STATUS_SUCCESS;
}

/* The input coordinate of output index o along an axis (ONNX
 * coordinate_transformation_mode). Scale is out/in when sizes were given,
 * the node's otherwise. As in ONNX's reference, the resized length that
 * align_corners and pytorch_half_pixel divide by is in * scale before any
 * rounding (the output holds floor of it). */
static double resize_coord(const cbi_node *n, const cbi_node_plan *p, int axis, int o)
{
    const int n_in = axis ? p->in.w : p->in.h, n_out = axis ? p->out.w : p->out.h;
    const int sizes = n->size_h > 0 || n->size_w > 0;
    const double scale = sizes ? (double)n_out / n_in : (double)(axis ? n->scale_w : n->scale_h);
    const double len_out = sizes ? (double)n_out : n_in * scale;
    double xo;
    switch (n->coord) {
    case CBI_RESIZE_ASYMMETRIC: xo = o / scale; break;
    case CBI_RESIZE_ALIGN_CORNERS:
        xo = len_out > 1 ? (double)o * (n_in - 1) / (len_out - 1) : 0.0;
        break;
    case CBI_RESIZE_PYTORCH_HALF_PIXEL: xo = len_out > 1 ? (o + 0.5) / scale - 0.5 : 0.0; break;
    case CBI_RESIZE_TF_HALF_PIXEL_FOR_NN: xo = (o + 0.5) / scale; break;
    case CBI_RESIZE_HALF_PIXEL: default: xo = (o + 0.5) / scale - 0.5; break;
    }
    return xo;
}

cbi_resize_tap cbi_resize_linear_tap(const cbi_node *n, const cbi_node_plan *p, int axis, int o)
{
    const int n_in = axis ? p->in.w : p->in.h;
    double x = resize_coord(n, p, axis, o);
    if (x < 0) x = 0;
    if (x > n_in - 1) x = n_in - 1;
    cbi_resize_tap t;
    t.i0 = (int)floor(x);
    t.i1 = t.i0 + 1 < n_in ? t.i0 + 1 : n_in - 1;
    t.f = (float)(x - t.i0);
    return t;
}

int cbi_resize_src(const cbi_node *n, const cbi_node_plan *p, int axis, int o)
{
    const int n_in = axis ? p->in.w : p->in.h;
    const double xo = resize_coord(n, p, axis, o);
    const cbi_resize_round mode = n->round;
    double r;
    switch (mode) {
    case CBI_RESIZE_ROUND_PREFER_CEIL:
        r = xo - floor(xo) == 0.5 ? ceil(xo) : round(xo);
        break;
    case CBI_RESIZE_FLOOR: r = floor(xo); break;
    case CBI_RESIZE_CEIL: r = ceil(xo); break;
    case CBI_RESIZE_ROUND_PREFER_FLOOR: default:
        r = xo - floor(xo) == 0.5 ? floor(xo) : round(xo);
        break;
    }
    if (r < 0) return 0;
    if (r > n_in - 1) return n_in - 1;
    return (int)r;
}
