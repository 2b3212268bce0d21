/*
 * Private to the ONNX loader (onnx_*.c): the loader's state and the helpers
 * its files share. The loader reads an unpacked ModelProto into the network
 * IR of net.h in passes, one file per concern:
 *   onnx_loader.c      entry points, file reading, nesting check, metadata,
 *                      the order of the passes (load_model);
 *   onnx_attrs.c       failures naming the node, node inputs, typed
 *                      attributes, sliding-window attributes;
 *   onnx_tensors.c     initializers and Constant nodes as named constants,
 *                      their data as float or int64 arrays;
 *   onnx_graph.c       the string map, IR nodes and values, the graph input,
 *                      topological order, liveness, BatchNormalization
 *                      folding, activation fusion, compaction;
 *   onnx_ops.c         the op table and the lowering of Conv, ConvTranspose,
 *                      the pools, activations, Add, Concat,
 *                      BatchNormalization, Identity and Dropout;
 *   onnx_ops_resize.c  the lowering of Pad, Resize/Upsample, DepthToSpace.
 * Every function that can fail returns a status and leaves its message in
 * L->e; cbi_onnx_nfail() names the node and op being lowered (L->cur).
 */
#ifndef CBI_ONNX_LOADER_INTERNAL_H
#define CBI_ONNX_LOADER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "net.h"
#include "onnx.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

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

/* 1 and *v (if v is not NULL) set when k is present; 0 when absent or k is
 * NULL. */
int cbi_onnx_smap_get(const smap *m, const char *k, int *v);
/* Inserts or overwrites; -1 when out of memory. k must outlive the map. */
int cbi_onnx_smap_put(smap *m, const char *k, int v);
/* Frees the map and leaves it empty. */
void cbi_onnx_smap_free(smap *m);

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

/* ---- onnx_attrs.c: nodes and attributes ---- */

/* Names the node being lowered, for cbi_onnx_nfail and cbi_onnx_node_new:
 * its ONNX name, or "<OpType>_<idx>" when the file leaves it empty. */
void cbi_onnx_set_cur(loader *L, const Onnx__NodeProto *n, int idx);
/* A failure attributed to the node being lowered: returns st with the message
 * "node '<name>' (<op>): <fmt...>" in L->e. */
cbinfer_status cbi_onnx_nfail(loader *L, const Onnx__NodeProto *n, cbinfer_status st,
                              const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* CBINFER_STATUS_OUT_OF_MEMORY with its message. */
cbinfer_status cbi_onnx_oom(loader *L);
/* 1 for the default ONNX domain ("", "ai.onnx" or NULL). */
int cbi_onnx_is_default_domain(const char *d);
/* Input k of n, or NULL when absent or left empty (an omitted optional). */
const char *cbi_onnx_opt_input(const Onnx__NodeProto *n, size_t k);

/* The attribute called name, or NULL; its type unchecked. */
const Onnx__AttributeProto *cbi_onnx_attr_get(const Onnx__NodeProto *n, const char *name);
/* *out = the attribute called name (NULL when absent); refuses one whose type
 * is not want (MODEL_UNSUPPORTED_ATTR). */
cbinfer_status cbi_onnx_attr_typed(loader *L, const Onnx__NodeProto *n, const char *name,
                                   Onnx__AttributeProto__AttributeType want,
                                   const Onnx__AttributeProto **out);
/* An INT / FLOAT attribute, or def when absent. */
cbinfer_status cbi_onnx_attr_int(loader *L, const Onnx__NodeProto *n, const char *name,
                                 int64_t def, int64_t *v);
cbinfer_status cbi_onnx_attr_float(loader *L, const Onnx__NodeProto *n, const char *name,
                                   float def, float *v);
/* An INTS attribute of exactly len values into out; out is left as is and
 * *found (if not NULL) is 0 when absent or empty. */
cbinfer_status cbi_onnx_attr_ints(loader *L, const Onnx__NodeProto *n, const char *name,
                                  size_t len, int64_t *out, int *found);
/* A STRING attribute that must be one of choices; *out is its index, or def
 * when absent. */
cbinfer_status cbi_onnx_attr_enum(loader *L, const Onnx__NodeProto *n, const char *name,
                                  const char *const *choices, int n_choices, int def, int *out);
/* Refuses any of v[0..count) outside lo..MAX_WINDOW (MODEL_UNSUPPORTED_ATTR). */
cbinfer_status cbi_onnx_check_range(loader *L, const Onnx__NodeProto *n, const char *name,
                                    const int64_t *v, int count, int64_t lo);

/* Which op cbi_onnx_read_window reads the attributes of. */
enum { WIN_CONV, WIN_CONV_T, WIN_MAXPOOL, WIN_AVGPOOL };
/* The sliding-window attributes of Conv, ConvTranspose and the pools (kind:
 * WIN_*), validated. For the convolutions w->kh, w->kw are left at 1: the
 * caller takes them from the weight. */
cbinfer_status cbi_onnx_read_window(loader *L, const Onnx__NodeProto *n, int kind,
                                    cbi_window *w);

/* ---- onnx_tensors.c: initializers and constants ---- */

/* The named constant (initializer, Constant output, or Identity of one), or
 * NULL; name may be NULL. */
const Onnx__TensorProto *cbi_onnx_const_get(const loader *L, const char *name);
/* The tensor's name, "" when it has none. */
const char *cbi_onnx_tname(const Onnx__TensorProto *t);
/* A floating-point tensor (float, float16, bfloat16, double) as a new float
 * array of *count values; the caller frees *out. */
cbinfer_status cbi_onnx_tensor_floats(loader *L, const Onnx__NodeProto *n,
                                      const Onnx__TensorProto *t, float **out, size_t *count);
/* An int64 or int32 tensor as a new int64 array; the caller frees *out. */
cbinfer_status cbi_onnx_tensor_ints(loader *L, const Onnx__NodeProto *n,
                                    const Onnx__TensorProto *t, int64_t **out, size_t *count);
/* The one value of the constant called name; what names it in messages. */
cbinfer_status cbi_onnx_const_scalar(loader *L, const Onnx__NodeProto *n, const char *name,
                                     const char *what, float *v);
/* Fills L->consts and L->const_map from the initializers, Constant nodes and
 * Identity nodes of constants, and marks those nodes in L->skip. */
cbinfer_status cbi_onnx_collect_constants(loader *L);

/* ---- onnx_graph.c: the IR and the graph passes ---- */

/* *id = the value id of activation input k of n. */
cbinfer_status cbi_onnx_act_input(loader *L, const Onnx__NodeProto *n, size_t k, int *id);
/* Appends an IR node named after L->cur (made unique), owned by the network
 * from then on. */
cbinfer_status cbi_onnx_node_new(loader *L, cbi_op op, const char *op_type, int channels_in,
                                 cbi_node **out);
/* Sets nd->cout and creates nd's output value, named after n's first output. */
cbinfer_status cbi_onnx_node_output(loader *L, const Onnx__NodeProto *n, cbi_node *nd,
                                    int channels);
/* The passes before lowering, in this order after cbi_onnx_collect_constants:
 * the graph input (net->input and its size), the topological order L->order,
 * and L->live (the nodes the graph outputs depend on). */
cbinfer_status cbi_onnx_find_input(loader *L);
cbinfer_status cbi_onnx_sort_nodes(loader *L);
cbinfer_status cbi_onnx_mark_live(loader *L);
/* The passes after lowering, once net->outputs is set: fold every
 * BatchNormalization and fuse activations into their convolutions, then drop
 * the folded nodes and unused values and index the convs. */
cbinfer_status cbi_onnx_fold_and_fuse(loader *L);
cbinfer_status cbi_onnx_compact(loader *L);

/* ---- onnx_ops.c, onnx_ops_resize.c: lowering ---- */

/* Lowers every live node, in L->order, through the op table. */
cbinfer_status cbi_onnx_lower_nodes(loader *L);
/* The op table's entries that live in onnx_ops_resize.c; op is the ONNX
 * op_type. */
cbinfer_status cbi_onnx_lower_pad(loader *L, const Onnx__NodeProto *n, const char *op);
cbinfer_status cbi_onnx_lower_resize(loader *L, const Onnx__NodeProto *n, const char *op);
cbinfer_status cbi_onnx_lower_d2s(loader *L, const Onnx__NodeProto *n, const char *op);

#ifdef __cplusplus
}
#endif

#endif /* CBI_ONNX_LOADER_INTERNAL_H */
