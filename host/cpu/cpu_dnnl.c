/*
 * oneDNN glue of the CPU backend: primitive creation for one convolution
 * (the dense convolution and the change-based matmul over gathered rows),
 * execution on a thread's slot, sgemm, and oneDNN statuses turned into
 * cbinfer statuses with a message that names the node.
 *
 * Primitives are created once per layer, when the stream is created; a frame
 * only sets data handles and executes. Scratchpads are the caller's (oneDNN's
 * user scratchpad mode), one per thread slot, so that any number of streams
 * and threads can run primitives at once.
 */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_backend.h"

cbinfer_status cpu_dnnl_status(dnnl_status_t s, cbi_err *e, const char *node, const char *what)
{
    switch (s) {
    case dnnl_success: return CBINFER_STATUS_SUCCESS;
    case dnnl_out_of_memory:
        return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "node %s: oneDNN %s: out of memory",
                        node, what);
    case dnnl_unimplemented:
        return cbi_fail(e, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                        "node %s: oneDNN %s: no implementation for this configuration", node,
                        what);
    case dnnl_invalid_arguments:
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s: oneDNN %s: invalid arguments", node,
                        what);
    default:
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s: oneDNN %s failed (status %d)", node,
                        what, (int)s);
    }
}

#define DNNL_TRY(call, what)                                                   \
    do {                                                                       \
        dnnl_status_t s_ = (call);                                             \
        if (s_ != dnnl_success) {                                              \
            st = cpu_dnnl_status(s_, e, n->name, (what));                      \
            goto done;                                                         \
        }                                                                      \
    } while (0)

/* Grows the scratchpads of slots [0, n_slots) to at least `bytes` (at layer
 * creation only). */
static cbinfer_status grow_scratchpad(cpu_ctx *ctx, int n_slots, size_t bytes, cbi_err *e,
                                      const char *node)
{
    const dnnl_dims_t dims = {(dnnl_dim_t)bytes};
    dnnl_memory_desc_t md;
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&md, 1, dims, dnnl_u8, dnnl_a);
    if (s != dnnl_success) return cpu_dnnl_status(s, e, node, "scratchpad descriptor");
    for (int i = 0; i < n_slots; ++i) {
        cpu_slot *sl = &ctx->slots[i];
        if (bytes <= sl->scratchpad_bytes) continue;
        void *buf = aligned_alloc(64, (bytes + 63) / 64 * 64);
        if (!buf)
            return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "node %s: scratchpad of %zu bytes",
                            node, bytes);
        dnnl_memory_t mem;
        s = dnnl_memory_create(&mem, &md, ctx->engine, buf);
        if (s != dnnl_success) {
            free(buf);
            return cpu_dnnl_status(s, e, node, "scratchpad memory");
        }
        dnnl_memory_destroy(sl->scratchpad_mem);
        free(sl->scratchpad);
        sl->scratchpad = buf;
        sl->scratchpad_mem = mem;
        sl->scratchpad_bytes = bytes;
    }
    return CBINFER_STATUS_SUCCESS;
}

/* Creates the primitive of pd and grows the scratchpads of the slots that
 * will run it: slot 0 alone for a primitive that runs outside a parallel
 * region with all threads, every slot for one that each thread runs on its
 * own. */
static cbinfer_status make_primitive(cpu_ctx *ctx, dnnl_primitive_desc_t pd, int every_slot,
                                     dnnl_primitive_t *prim, cbi_err *e, const char *node,
                                     const char *what)
{
    const dnnl_memory_desc_t *spm = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    cbinfer_status st = grow_scratchpad(ctx, every_slot ? ctx->n_slots : 1,
                                        spm ? dnnl_memory_desc_get_size(spm) : 0, e, node);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    return cpu_dnnl_status(dnnl_primitive_create(prim, pd), e, node, what);
}

/* Copies user-layout weights into a primitive's layout (one reorder, once). */
static cbinfer_status reorder_weights(cpu_ctx *ctx, const dnnl_memory_desc_t *from_md,
                                      const float *from, const dnnl_memory_desc_t *to_md,
                                      dnnl_memory_t *to, cbi_err *e, const char *node)
{
    dnnl_memory_t src = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t r = NULL;
    dnnl_status_t s = dnnl_memory_create(to, to_md, ctx->engine, DNNL_MEMORY_ALLOCATE);
    if (s == dnnl_success) s = dnnl_memory_create(&src, from_md, ctx->engine, (void *)from);
    if (s == dnnl_success)
        s = dnnl_reorder_primitive_desc_create(&pd, from_md, ctx->engine, to_md, ctx->engine, NULL);
    if (s == dnnl_success) s = dnnl_primitive_create(&r, pd);
    if (s == dnnl_success) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, *to}};
        s = dnnl_primitive_execute(r, ctx->slots[0].stream, 2, args);
    }
    if (s == dnnl_success) s = dnnl_stream_wait(ctx->slots[0].stream);
    dnnl_primitive_destroy(r);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_destroy(src);
    return cpu_dnnl_status(s, e, node, "weight reorder");
}

/* The activations oneDNN fuses as an eltwise post-op; PReLU runs as a pass. */
static int append_activation(dnnl_post_ops_t po, const cbi_activation *act)
{
    switch (act->kind) {
    case CBI_ACT_RELU: return dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_relu, 0.f, 0.f) == dnnl_success;
    case CBI_ACT_LEAKY_RELU:
        return dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_relu, act->alpha, 0.f) == dnnl_success;
    case CBI_ACT_CLIP:
        return dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_clip, act->lo, act->hi) == dnnl_success;
    case CBI_ACT_SIGMOID:
        return dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_logistic, 0.f, 0.f) == dnnl_success;
    case CBI_ACT_NONE: return 1;
    default: return 0;
    }
}

/* The dense convolution of node n over `images` images: a convolution
 * primitive on NHWC tensors (N = images), weights in the layout it picks,
 * bias and, unless keeps_acc or oneDNN lacks it, the activation fused
 * (*act_fused says which). Created for the context's thread count. */
static cbinfer_status dense_create(cpu_ctx *ctx, const cbi_node *n, const cbi_node_plan *p,
                                   int images, int keeps_acc, cpu_dense_prim *d, cbi_err *e)
{
    cbinfer_status st = CBINFER_STATUS_SUCCESS;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    const int kh = n->win.kh, kw = n->win.kw, cin = p->in.c, cout = p->out.c;
    const int groups = cbi_conv_groups(n);
    dnnl_memory_desc_t src_md, w_any, w_user, b_md, dst_md;
    const dnnl_dims_t src_dims = {images, cin, p->in.h, p->in.w};
    /* Grouped: 5-D weights {G, Cout/G, Cin/G, kh, kw}. */
    const dnnl_dims_t w_dims = {cout, cin, kh, kw};
    const dnnl_dims_t wg_dims = {groups, cout / groups, cin / groups, kh, kw};
    const int w_nd = groups > 1 ? 5 : 4;
    const dnnl_dims_t b_dims = {cout};
    const dnnl_dims_t dst_dims = {images, cout, p->out.h, p->out.w};
    const dnnl_dims_t strides = {n->win.sh, n->win.sw};
    const dnnl_dims_t dilates = {n->win.dh - 1, n->win.dw - 1};
    /* The plan's output size is the truth: the trailing padding is what
     * makes oneDNN's output-size formula give it. */
    const dnnl_dim_t ext_h = (dnnl_dim_t)(kh - 1) * n->win.dh + 1;
    const dnnl_dim_t ext_w = (dnnl_dim_t)(kw - 1) * n->win.dw + 1;
    const dnnl_dims_t pad_l = {p->pad_t, p->pad_l};
    const dnnl_dims_t pad_r = {(dnnl_dim_t)(p->out.h - 1) * n->win.sh + ext_h - p->in.h - p->pad_t,
                               (dnnl_dim_t)(p->out.w - 1) * n->win.sw + ext_w - p->in.w - p->pad_l};
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&src_md, 4, src_dims, dnnl_f32, dnnl_nhwc), "descriptor");
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&w_any, w_nd, groups > 1 ? wg_dims : w_dims, dnnl_f32,
                                          dnnl_format_tag_any),
             "descriptor");
    /* host/net.h stores conv weights [Cout][kh][kw][Cin/G]: oneDNN's ohwi,
     * or gohwi with groups (Cout = G x Cout/G, group-major). */
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&w_user, w_nd, groups > 1 ? wg_dims : w_dims, dnnl_f32,
                                          groups > 1 ? dnnl_gohwi : dnnl_ohwi),
             "descriptor");
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&b_md, 1, b_dims, dnnl_f32, dnnl_x), "descriptor");
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&dst_md, 4, dst_dims, dnnl_f32, dnnl_nhwc), "descriptor");
    dnnl_convolution_desc_t cd;
    DNNL_TRY(dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                        dnnl_convolution_direct, &src_md, &w_any,
                                                        &b_md, &dst_md, strides, dilates, pad_l,
                                                        pad_r),
             "convolution descriptor");
    DNNL_TRY(dnnl_primitive_attr_create(&attr), "attributes");
    DNNL_TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "attributes");
    DNNL_TRY(dnnl_post_ops_create(&po), "post-ops");
    d->act_fused = !keeps_acc && append_activation(po, &n->act);
    if (d->act_fused) DNNL_TRY(dnnl_primitive_attr_set_post_ops(attr, po), "post-ops");
    DNNL_TRY(dnnl_primitive_desc_create(&pd, &cd, attr, ctx->engine, NULL), "convolution");
    st = make_primitive(ctx, pd, 0, &d->prim, e, n->name, "convolution");
    if (st != CBINFER_STATUS_SUCCESS) goto done;
    st = reorder_weights(ctx, &w_user, n->weight,
                         dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), &d->w, e,
                         n->name);
    if (st != CBINFER_STATUS_SUCCESS) goto done;
    DNNL_TRY(dnnl_memory_create(&d->b, &b_md, ctx->engine, (void *)n->bias), "bias memory");
    DNNL_TRY(dnnl_memory_create(&d->src, &src_md, ctx->engine, DNNL_MEMORY_NONE), "memory");
    DNNL_TRY(dnnl_memory_create(&d->dst, &dst_md, ctx->engine, DNNL_MEMORY_NONE), "memory");
    d->images = images;
done:
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    dnnl_post_ops_destroy(po);
    return st;
}

static void dense_destroy(cpu_dense_prim *d)
{
    dnnl_primitive_destroy(d->prim);
    dnnl_memory_destroy(d->src);
    dnnl_memory_destroy(d->dst);
    dnnl_memory_destroy(d->w);
    dnnl_memory_destroy(d->b);
    memset(d, 0, sizeof *d);
}

cbinfer_status cpu_conv_prims_create(cpu_ctx *ctx, const cbi_node *n, const cbi_node_plan *p,
                                     const cbi_policy *pol, int images, cpu_conv_prims *c,
                                     cbi_err *e)
{
    const int change_based = pol != NULL;
    const int scatters = pol && cbi_policy_uses_scatter(pol, p->in.c);
    float *w2 = NULL;
    cbinfer_status st = CBINFER_STATUS_SUCCESS;
    dnnl_primitive_desc_t mm_pd = NULL;
    dnnl_primitive_attr_t mm_attr = NULL;
    const int kh = n->win.kh, kw = n->win.kw, cin = p->in.c, cout = p->out.c;
    const int groups = cbi_conv_groups(n);
    const dnnl_dim_t k = (dnnl_dim_t)kh * kw * cin;
    memset(c, 0, sizeof *c);
    /* oneDNN fixes a primitive's thread partition when its descriptor and the
     * primitive are created, from the OpenMP thread count then in force: the
     * dense convolutions get the context's, the matmuls (one per thread) 1.
     * The caller's setting is given back at the end. */
    const int caller_threads = omp_get_max_threads();
    omp_set_num_threads(cpu_threads(ctx));

    /* A kept accumulator is the pre-activation: the dense pass writes it
     * without the activation, which then runs as a pass into the output. */
    const int keeps_acc = pol && cbi_policy_accumulates(pol, p->in.c) &&
                          !cbi_activation_invertible(&n->act, n->cout);
    st = dense_create(ctx, n, p, 1, keeps_acc, &c->dense, e);
    if (st == CBINFER_STATUS_SUCCESS && images > 1)
        st = dense_create(ctx, n, p, images, keeps_acc, &c->dense_n, e);
    if (st != CBINFER_STATUS_SUCCESS) goto done;
    /* thin and grouped: no GEMM (cpu_thin_rows, cpu_group_rows) */
    if (!change_based || groups > 1 || (cout <= CPU_THIN_COUT && !scatters)) goto done;

    /* Delta scatter (EvNet, Sigma-Delta): P[rows][kh*kw*Cout] = D[rows][Cin]
     * * W2, W2 = the weights as Cin x (kh*kw*Cout), [Cin][kh][kw][Cout],
     * laid out here once from [Cout][kh][kw][Cin]; P goes to the slot's
     * product scratch. Otherwise (recompute, Skip-Conv's gather):
     * Y[rows][Cout] = X[rows][K] * W^T into the slot's gemm scratch. */
    const dnnl_dim_t taps = (dnnl_dim_t)kh * kw;
    const dnnl_dim_t mk = scatters ? cin : k, mn = scatters ? taps * cout : cout;
    c->y_cols = (int)mn;
    if (scatters) {
        w2 = cbi_malloc_array((size_t)(mk * mn), sizeof *w2);
        if (!w2) {
            st = cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "node %s: delta weights", n->name);
            goto done;
        }
        for (dnnl_dim_t o = 0; o < cout; ++o)
            for (dnnl_dim_t t = 0; t < taps; ++t)
                for (dnnl_dim_t ci = 0; ci < cin; ++ci)
                    w2[ci * mn + t * cout + o] = n->weight[(o * taps + t) * cin + ci];
    }

    /* Change-based: Y[rows][Cout] = X[rows][K] * W^T, W = the [Cout][K]
     * weights read as K x Cout with strides {1, K}, reordered once into each
     * primitive's own layout. Row counts are fixed: oneDNN's fastest matmul
     * kernels need it, and its matmul with a row count given at execution
     * costs about a millisecond per call here. Full chunks run the
     * CPU_CHUNK_ROWS one, the last chunk pieces of CPU_PIECE_ROWS. Each
     * thread runs them on its own chunk, so they are created for one thread.
     * Bias and activation are fused into the scatter. */
    DNNL_TRY(dnnl_primitive_attr_create(&mm_attr), "attributes");
    DNNL_TRY(dnnl_primitive_attr_set_scratchpad_mode(mm_attr, dnnl_scratchpad_mode_user), "attributes");
    omp_set_num_threads(1);
    c->n_mm = ctx->n_slots;
    for (int v = 0; v < 2; ++v) {
        const dnnl_dim_t rows = v == 0 ? CPU_CHUNK_ROWS : CPU_PIECE_ROWS;
        dnnl_memory_desc_t x_md, w_any, w_plain, y_md;
        const dnnl_dims_t x_dims = {rows, mk}, x_str = {mk, 1};
        const dnnl_dims_t wm_dims = {mk, mn};
        const dnnl_dims_t wm_str = {scatters ? mn : 1, scatters ? 1 : k};
        const dnnl_dims_t y_dims = {rows, mn}, y_str = {mn, 1};
        DNNL_TRY(dnnl_memory_desc_init_by_strides(&x_md, 2, x_dims, dnnl_f32, x_str), "descriptor");
        DNNL_TRY(dnnl_memory_desc_init_by_tag(&w_any, 2, wm_dims, dnnl_f32, dnnl_format_tag_any),
                 "descriptor");
        DNNL_TRY(dnnl_memory_desc_init_by_strides(&w_plain, 2, wm_dims, dnnl_f32, wm_str), "descriptor");
        DNNL_TRY(dnnl_memory_desc_init_by_strides(&y_md, 2, y_dims, dnnl_f32, y_str), "descriptor");
        dnnl_matmul_desc_t md;
        DNNL_TRY(dnnl_matmul_desc_init(&md, &x_md, &w_any, NULL, &y_md), "matmul descriptor");
        DNNL_TRY(dnnl_primitive_desc_create(&mm_pd, &md, mm_attr, ctx->engine, NULL), "matmul");
        st = make_primitive(ctx, mm_pd, 1, &c->mm[v], e, n->name, "matmul");
        if (st == CBINFER_STATUS_SUCCESS)
            st = reorder_weights(ctx, &w_plain, scatters ? w2 : n->weight,
                                 dnnl_primitive_desc_query_md(mm_pd, dnnl_query_weights_md, 0),
                                 &c->mm_w[v], e, n->name);
        dnnl_primitive_desc_destroy(mm_pd);
        mm_pd = NULL;
        if (st != CBINFER_STATUS_SUCCESS) goto done;
        c->mm_x[v] = calloc((size_t)ctx->n_slots, sizeof *c->mm_x[v]);
        c->mm_y[v] = calloc((size_t)ctx->n_slots, sizeof *c->mm_y[v]);
        if (!c->mm_x[v] || !c->mm_y[v]) {
            st = cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "node %s: matmul memory", n->name);
            goto done;
        }
        for (int i = 0; i < ctx->n_slots; ++i) {
            DNNL_TRY(dnnl_memory_create(&c->mm_x[v][i], &x_md, ctx->engine, ctx->slots[i].col),
                     "memory");
            DNNL_TRY(dnnl_memory_create(&c->mm_y[v][i], &y_md, ctx->engine,
                                        scatters ? ctx->slots[i].prod : ctx->slots[i].gemm),
                     "memory");
        }
    }

done:
    free(w2);
    dnnl_primitive_desc_destroy(mm_pd);
    dnnl_primitive_attr_destroy(mm_attr);
    omp_set_num_threads(caller_threads);
    if (st != CBINFER_STATUS_SUCCESS) cpu_conv_prims_destroy(c);
    return st;
}

void cpu_conv_prims_destroy(cpu_conv_prims *c)
{
    dense_destroy(&c->dense);
    dense_destroy(&c->dense_n);
    for (int v = 0; v < 2; ++v) {
        dnnl_primitive_destroy(c->mm[v]);
        dnnl_memory_destroy(c->mm_w[v]);
        for (int i = 0; c->mm_x[v] && i < c->n_mm; ++i) dnnl_memory_destroy(c->mm_x[v][i]);
        for (int i = 0; c->mm_y[v] && i < c->n_mm; ++i) dnnl_memory_destroy(c->mm_y[v][i]);
        free(c->mm_x[v]);
        free(c->mm_y[v]);
    }
    memset(c, 0, sizeof *c);
}

cbinfer_status cpu_dnnl_execute(cpu_ctx *ctx, int slot, dnnl_primitive_t prim, int n_args,
                                dnnl_exec_arg_t *args, cbi_err *e, const char *node)
{
    cpu_slot *sl = &ctx->slots[slot];
    if (sl->scratchpad_mem) args[n_args++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, sl->scratchpad_mem};
    dnnl_status_t s = dnnl_primitive_execute(prim, sl->stream, n_args, args);
    if (s == dnnl_success) s = dnnl_stream_wait(sl->stream);
    return cpu_dnnl_status(s, e, node, "execute");
}

cbinfer_status cpu_sgemm(int threads, int m, int n, int k, const float *a, int lda, const float *b,
                         int ldb, int trans_b, float *c, int ldc, cbi_err *e, const char *node)
{
    const int caller_threads = omp_get_max_threads();
    omp_set_num_threads(threads);
    const dnnl_status_t s =
        dnnl_sgemm('N', trans_b ? 'T' : 'N', m, n, k, 1.f, a, lda, b, ldb, 0.f, c, ldc);
    omp_set_num_threads(caller_threads);
    return cpu_dnnl_status(s, e, node, "sgemm");
}
