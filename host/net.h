/*
 * The network IR: what the ONNX loader produces and every backend consumes.
 * Private to the library. Immutable once cbi_net_finish() has run, so a
 * network can be shared by any number of streams and threads.
 *
 * Layout conventions (all tensors N = 1):
 *   - Activations are NHWC (a pixel's channels are contiguous): change
 *     detection reads one pixel's channels together and the partial im2col
 *     copies kh*kw contiguous runs of Cin values per changed pixel.
 *   - Conv weights are stored as [Cout][kh][kw][Cin / group], the row order
 *     of the NHWC im2col matrix, so one GEMM row of weights is one output
 *     channel; with groups, output channel o reads the input channels of
 *     group o / (Cout / group) only.
 *   - ConvTranspose weights are stored as [Cin][kh][kw][Cout].
 */
#ifndef CBI_NET_H
#define CBI_NET_H

#include <stddef.h>
#include <stdint.h>

#include "cbinfer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cbi_op {
    CBI_OP_CONV = 0,
    CBI_OP_CONV_TRANSPOSE,
    CBI_OP_ACTIVATION, /* standalone Relu, LeakyRelu, PRelu, Clip, Sigmoid */
    CBI_OP_MAXPOOL,
    CBI_OP_AVGPOOL,
    CBI_OP_ADD,
    CBI_OP_CONCAT,     /* channel axis only */
    CBI_OP_PAD,
    CBI_OP_RESIZE,     /* nearest or linear */
    CBI_OP_DEPTH_TO_SPACE,
    CBI_OP_COUNT
} cbi_op;

typedef enum cbi_act_kind {
    CBI_ACT_NONE = 0,
    CBI_ACT_RELU,
    CBI_ACT_LEAKY_RELU, /* alpha */
    CBI_ACT_PRELU,      /* slope[channel], or slope[0] broadcast if n_slope == 1 */
    CBI_ACT_CLIP,       /* [lo, hi] */
    CBI_ACT_SIGMOID     /* 1 / (1 + e^-x) */
} cbi_act_kind;

typedef struct cbi_activation {
    cbi_act_kind kind;
    float alpha;        /* LeakyRelu */
    float lo, hi;       /* Clip */
    const float *slope; /* PReLU, owned by the network */
    int n_slope;
} cbi_activation;

typedef enum cbi_auto_pad {
    CBI_AUTO_PAD_NOTSET = 0, /* explicit pads */
    CBI_AUTO_PAD_VALID,
    CBI_AUTO_PAD_SAME_UPPER,
    CBI_AUTO_PAD_SAME_LOWER
} cbi_auto_pad;

/* Sliding-window geometry shared by Conv, ConvTranspose and the pools. */
typedef struct cbi_window {
    int kh, kw;
    int sh, sw;                  /* strides */
    int dh, dw;                  /* dilations */
    int pad_t, pad_l, pad_b, pad_r; /* explicit pads (NOTSET) */
    cbi_auto_pad auto_pad;
    int ceil_mode;               /* pools */
    int count_include_pad;       /* AveragePool */
    int out_pad_h, out_pad_w;    /* ConvTranspose output_padding */
} cbi_window;

typedef enum cbi_pad_mode { CBI_PAD_CONSTANT = 0, CBI_PAD_EDGE, CBI_PAD_REFLECT } cbi_pad_mode;

/* Callable from host C and from CUDA device code alike, so that every backend
 * shares one definition of an op's index arithmetic. */
#if defined(__CUDACC__)
#define CBI_HOST_DEVICE __host__ __device__
#else
#define CBI_HOST_DEVICE
#endif

/* Pad: the source coordinate of padded coordinate o (o - pad) in an axis of
 * n pixels for edge and reflect; -1 for constant padding outside the input.
 * Reflect mirrors without repeating the edge (numpy/ONNX 'reflect'),
 * periodically for pads larger than the input. */
static inline CBI_HOST_DEVICE int cbi_pad_src(int o, int pad, int n, int mode)
{
    int i = o - pad;
    if (i >= 0 && i < n) return i;
    switch (mode) {
    case CBI_PAD_EDGE: return i < 0 ? 0 : n - 1;
    case CBI_PAD_REFLECT: {
        if (n == 1) return 0;
        const int period = 2 * (n - 1);
        i %= period;
        if (i < 0) i += period;
        return i < n ? i : period - i;
    }
    default: return -1;
    }
}

typedef enum cbi_resize_coord {
    CBI_RESIZE_HALF_PIXEL = 0,
    CBI_RESIZE_ASYMMETRIC,
    CBI_RESIZE_ALIGN_CORNERS,
    CBI_RESIZE_PYTORCH_HALF_PIXEL,
    CBI_RESIZE_TF_HALF_PIXEL_FOR_NN
} cbi_resize_coord;

typedef enum cbi_resize_round {
    CBI_RESIZE_ROUND_PREFER_FLOOR = 0,
    CBI_RESIZE_ROUND_PREFER_CEIL,
    CBI_RESIZE_FLOOR,
    CBI_RESIZE_CEIL
} cbi_resize_round;

#define CBI_MAX_INPUTS 16
#define CBI_MAX_OUTPUTS 64 /* graph outputs */

typedef struct cbi_node {
    char *name;          /* ONNX node name (made unique: "<op>_<index>" if empty) */
    const char *op_type; /* ONNX op type of the main op, static string */
    cbi_op op;
    int n_inputs;
    int inputs[CBI_MAX_INPUTS]; /* value ids (activations only; weights are folded in) */
    int output;                 /* value id */

    /* Conv / ConvTranspose. */
    int cin, cout;
    int group;           /* Conv: channel groups (ONNX group; 0 or 1: one) */
    cbi_window win;      /* also the pools' window */
    float *weight;       /* Conv [cout][kh][kw][cin]; ConvTranspose [cin][kh][kw][cout] */
    float *bias;         /* [cout], never NULL for Conv/ConvTranspose (zeros if absent) */
    cbi_activation act;  /* fused activation (Conv, ConvTranspose) or the op (ACTIVATION) */

    /* Pad: pads in pixels (channel pads must be 0). */
    int pad_t, pad_l, pad_b, pad_r;
    cbi_pad_mode pad_mode;
    float pad_value;

    /* Resize: output = floor(input * scale) unless size_h/size_w > 0 (sizes given). */
    float scale_h, scale_w;
    int size_h, size_w;
    cbi_resize_coord coord;
    cbi_resize_round round; /* nearest */
    int linear;             /* 1: mode linear (bilinear), 0: nearest */

    /* DepthToSpace. */
    int blocksize;
    int d2s_crd; /* 1: CRD (PixelShuffle), 0: DCR */
} cbi_node;

/* An activation tensor. Spatial size may be symbolic (-1) until a stream
 * fixes the frame size; channels are always known after loading. */
typedef struct cbi_value {
    char *name;
    int c;
} cbi_value;

typedef struct cbi_net {
    cbi_node *nodes; /* topological order */
    int n_nodes;
    cbi_value *values;
    int n_values;
    int input;       /* value id of the graph input */
    int *outputs;    /* value ids of the graph outputs, in the graph's order */
    int n_outputs;   /* >= 1 */
    int in_c, in_h, in_w; /* in_h/in_w = -1 when symbolic */
    float input_scale;    /* network input = pixel * scale + offset */
    float input_offset;
    int *conv_nodes;      /* node ids of the Conv nodes, execution order */
    int n_conv;
} cbi_net;

struct cbinfer_network {
    cbi_net net;
};

/* A Conv's channel groups (at least 1) and the input channels each output
 * channel reads. */
static inline int cbi_conv_groups(const cbi_node *n)
{
    return n->group > 1 ? n->group : 1;
}
static inline int cbi_conv_group_cin(const cbi_node *n, int cin)
{
    return cin / cbi_conv_groups(n);
}

/* The most elements one tensor (and one GEMM row) may hold: 2^30, so that
 * the backends' 32-bit element and pixel indices keep room to step past an
 * end, and sizes in bytes stay far from overflowing. Planning refuses larger
 * tensors (BAD_FRAME_SIZE) and longer GEMM rows (MODEL_UNSUPPORTED_ATTR). */
#define CBI_MAX_TENSOR_ELEMS ((int64_t)1 << 30)

/* Resolved per-node geometry for one frame size (computed by a stream). */
typedef struct cbi_shape {
    int c, h, w;
} cbi_shape;

typedef struct cbi_node_plan {
    cbi_shape in;   /* first input */
    cbi_shape out;
    int pad_t, pad_l, pad_b, pad_r; /* resolved window pads (auto_pad applied) */
} cbi_node_plan;

/* A MaxPool/AveragePool window resolved for one frame size: input c x h x w
 * -> output c x ho x wo, strides and dilations >= 1, the plan's pads. Plain
 * data, passed by value to CUDA kernels too, so that every backend reads the
 * same geometry. */
typedef struct cbi_pool_geom {
    int c, h, w, ho, wo;
    int kh, kw, sh, sw, dh, dw;
    int pad_t, pad_l, pad_b, pad_r;
    int is_max, include_pad;
} cbi_pool_geom;

struct cbi_err; /* common.h */

/* Fills *g from a pool node and its plan. Returns INTERNAL (e names the node)
 * when the node is not a pool or its window or channels do not fit. */
cbinfer_status cbi_pool_geom_of(const cbi_node *node, const cbi_node_plan *plan,
                                cbi_pool_geom *g, struct cbi_err *e);

/* Infers every value's shape and every node's resolved pads for an input of
 * height x width. shapes has net->n_values entries, plans net->n_nodes.
 * Returns BAD_FRAME_SIZE (with a message naming the node) if any layer would
 * produce an empty output, or if a fixed-size network gets another size. */
cbinfer_status cbi_net_plan(const cbi_net *net, int height, int width, cbi_shape *shapes,
                            cbi_node_plan *plans, char *err, size_t err_len);

/* Nearest Resize: the source index along one axis (0: rows, 1: columns) of
 * output coordinate o, per ONNX: coordinate transform, nearest_mode rounding,
 * clamp. The scale is out/in when the node gives sizes, its own otherwise.
 * Shared by every backend so that they agree exactly. */
int cbi_resize_src(const cbi_node *n, const cbi_node_plan *p, int axis, int o);

/* One output coordinate of a linear Resize along an axis: the two input taps
 * and the weight of the second, out = (1 - f) * in[i0] + f * in[i1]. The
 * source coordinate is clamped to [0, n - 1] first (ONNX's edge rule), so
 * f = 0 and i0 = i1 at and beyond the borders. Shared by every backend. */
typedef struct cbi_resize_tap {
    int i0, i1;
    float f;
} cbi_resize_tap;
cbi_resize_tap cbi_resize_linear_tap(const cbi_node *n, const cbi_node_plan *p, int axis, int o);

/* Fills conv_nodes and n_conv from the nodes (topological
 * order). Returns 0, or -1 when an allocation fails. */
int cbi_net_index_convs(cbi_net *net);

/* Frees everything the network owns (not the struct itself). */
void cbi_net_clear(cbi_net *net);

#ifdef __cplusplus
}
#endif

#endif /* CBI_NET_H */
