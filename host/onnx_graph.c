/*
 * The ONNX loader's graph: the string map, the IR's nodes and values, and the
 * passes over the whole graph: the graph input, the topological order,
 * liveness, and after lowering BatchNormalization folding, activation fusion
 * and compaction.
 */
#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_loader_internal.h"

/* ------------------------------------------------------------------------
 * String -> int hash map (open addressing). Keys are borrowed: they point
 * into the unpacked protobuf or into the network, both of which outlive it.
 * ---------------------------------------------------------------------- */
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

int cbi_onnx_smap_get(const smap *m, const char *k, int *v)
{
    if (!m->cap || !k) return 0;
    size_t i = smap_slot(m, k);
    if (!m->keys[i]) return 0;
    if (v) *v = m->vals[i];
    return 1;
}

/* Inserts or overwrites; -1 when out of memory. */
int cbi_onnx_smap_put(smap *m, const char *k, int v)
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

void cbi_onnx_smap_free(smap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------------
 * IR construction
 * ---------------------------------------------------------------------- */

/* Value id of activation input k. */
cbinfer_status cbi_onnx_act_input(loader *L, const Onnx__NodeProto *n, size_t k, int *id)
{
    const char *name = cbi_onnx_opt_input(n, k);
    if (!name)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH, "input %zu is missing", k);
    if (cbi_onnx_smap_get(&L->value_map, name, id)) return CBINFER_STATUS_SUCCESS;
    if (cbi_onnx_const_get(L, name))
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                              "input %zu ('%s') is an initializer where an activation is expected",
                              k, name);
    /* Live producers were lowered first, so this is an auxiliary output
     * (pooling indices, dropout mask, batch statistics). */
    return cbi_onnx_nfail(
        L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH,
        "input %zu ('%s') is an auxiliary output of another node, which is not supported", k, name);
}

static char *unique_name(loader *L, const char *base)
{
    if (!cbi_onnx_smap_get(&L->node_names, base, NULL)) return cbi_strdup(base);
    size_t len = strlen(base) + 16;
    char *s = malloc(len);
    if (!s) return NULL;
    for (int k = 2;; ++k) {
        snprintf(s, len, "%s_%d", base, k);
        if (!cbi_onnx_smap_get(&L->node_names, s, NULL)) return s;
    }
}

/* Appends an IR node for the node being lowered. It is owned by the network
 * from here on, so a later failure frees whatever was attached to it. */
cbinfer_status cbi_onnx_node_new(loader *L, cbi_op op, const char *op_type, int channels_in,
                                 cbi_node **out)
{
    cbi_net *net = L->net;
    assert(net->n_nodes < L->cap_nodes);
    cbi_node *nd = &net->nodes[net->n_nodes];
    memset(nd, 0, sizeof *nd);
    nd->name = unique_name(L, L->cur);
    if (!nd->name) return cbi_onnx_oom(L);
    net->n_nodes++;
    if (cbi_onnx_smap_put(&L->node_names, nd->name, net->n_nodes - 1)) return cbi_onnx_oom(L);
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
    if (!v->name) return cbi_onnx_oom(L);
    v->c = channels;
    *id = net->n_values++;
    if (cbi_onnx_smap_put(&L->value_map, v->name, *id)) return cbi_onnx_oom(L);
    return CBINFER_STATUS_SUCCESS;
}

/* Creates the node's output value (its first ONNX output). */
cbinfer_status cbi_onnx_node_output(loader *L, const Onnx__NodeProto *n, cbi_node *nd, int channels)
{
    const char *name = n->n_output ? n->output[0] : NULL;
    if (!name || !*name)
        return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH, "the node has no output");
    nd->cout = channels;
    return new_value(L, name, channels, &nd->output);
}

/* ------------------------------------------------------------------------
 * Graph passes
 * ---------------------------------------------------------------------- */
/* The single non-initializer graph input: NCHW, N = 1 (or symbolic), C
 * fixed, H and W fixed or symbolic. */
cbinfer_status cbi_onnx_find_input(loader *L)
{
    const Onnx__GraphProto *g = L->g;
    cbi_net *net = L->net;
    for (size_t i = 0; i < g->n_input; ++i) {
        const Onnx__ValueInfoProto *vi = g->input[i];
        if (!vi->name || !*vi->name)
            return cbi_fail(L->e, CBINFER_STATUS_MODEL_MALFORMED, "graph input %zu has no name",
                            i);
        if (cbi_onnx_const_get(L, vi->name)) continue;
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
cbinfer_status cbi_onnx_sort_nodes(loader *L)
{
    const Onnx__GraphProto *g = L->g;
    int nn = (int)g->n_node;
    cbinfer_status st = CBINFER_STATUS_SUCCESS;
    for (int i = 0; i < nn; ++i) {
        const Onnx__NodeProto *n = g->node[i];
        if (L->skip[i]) continue;
        cbi_onnx_set_cur(L, n, i);
        for (size_t k = 0; k < n->n_output; ++k) {
            const char *o = n->output[k];
            if (!*o) continue;
            if (cbi_onnx_const_get(L, o) || strcmp(o, L->input_name) == 0)
                return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                                      "output '%s' is also an initializer or the graph input", o);
            if (cbi_onnx_smap_get(&L->producer, o, NULL))
                return cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH,
                                      "output '%s' is produced by another node too", o);
            if (cbi_onnx_smap_put(&L->producer, o, i)) return cbi_onnx_oom(L);
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
            if (!*in || cbi_onnx_const_get(L, in) || strcmp(in, L->input_name) == 0) continue;
            if (!cbi_onnx_smap_get(&L->producer, in, &j)) {
                cbi_onnx_set_cur(L, n, i);
                st = cbi_onnx_nfail(L, n, CBINFER_STATUS_MODEL_INVALID_GRAPH,
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
            if (*in && !cbi_onnx_const_get(L, in) && strcmp(in, L->input_name) != 0 &&
                cbi_onnx_smap_get(&L->producer, in, &j))
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
                cbi_onnx_set_cur(L, g->node[i], i);
                st = cbi_onnx_nfail(L, g->node[i], CBINFER_STATUS_MODEL_INVALID_GRAPH,
                                    "the graph has a cycle through this node");
                break;
            }
    }
    goto done;

out_of_memory:
    st = cbi_onnx_oom(L);
done:
    free(indeg);
    free(off);
    free(succ);
    free(fill);
    return st;
}

/* Marks the nodes every graph output depends on; the others never run. */
cbinfer_status cbi_onnx_mark_live(loader *L)
{
    const Onnx__GraphProto *g = L->g;
    L->live = cbi_calloc(g->n_node, 1);
    if (!L->live) return cbi_onnx_oom(L);
    for (size_t k = 0; k < g->n_output; ++k) {
        int p;
        if (!cbi_onnx_smap_get(&L->producer, g->output[k]->name, &p))
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
            if (*n->input[j] && cbi_onnx_smap_get(&L->producer, n->input[j], &q)) L->live[q] = 1;
        }
    }
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
cbinfer_status cbi_onnx_fold_and_fuse(loader *L)
{
    cbi_net *net = L->net;
    int *prod = cbi_malloc_array((size_t)net->n_values, sizeof *prod);
    int *uses = cbi_calloc((size_t)net->n_values, sizeof *uses);
    cbinfer_status st = CBINFER_STATUS_SUCCESS;
    if (!prod || !uses) {
        st = cbi_onnx_oom(L);
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
cbinfer_status cbi_onnx_compact(loader *L)
{
    cbi_net *net = L->net;
    int *vmap = cbi_malloc_array((size_t)net->n_values, sizeof *vmap);
    if (!vmap) return cbi_onnx_oom(L);
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

    return cbi_net_index_convs(net) ? cbi_onnx_oom(L) : CBINFER_STATUS_SUCCESS;
}
