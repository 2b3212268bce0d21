/*
 * The CPU backend table: host memory, float32 NHWC tensors, oneDNN kernels,
 * one scratch slot per thread. Kernels live in cpu_conv.c, cpu_delta.c,
 * cpu_ops.c and cpu_ops_pixel.c, the oneDNN glue in cpu_dnnl.c.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_backend.h"

/* Scratch budget of ConvTranspose: input rows per chunk of its GEMM. */
#define CPU_SCRATCH_BYTES ((size_t)32 << 20)
#define CPU_MIN_CHUNK_PX 64

/* The scratch sizes of a context, for its largest layers: im2col columns
 * (max_k) and output channels (max_cout) of a convolution, and the input
 * pixels (chunk) and columns (ct_cols) of one ConvTranspose GEMM chunk. */
static void scratch_plan(const cbi_backend_config *cfg, size_t *max_k, size_t *max_cout,
                         size_t *max_tap_cout, size_t *chunk, size_t *ct_cols)
{
    size_t max_px = 1;
    *max_k = *max_cout = *ct_cols = 1;
    *max_tap_cout = 0; /* dense streams have no delta products */
    const cbi_net *net = cfg->net;
    for (int i = 0; i < net->n_nodes; ++i) {
        const cbi_node *n = &net->nodes[i];
        const cbi_node_plan *p = &cfg->plans[i];
        if (n->op == CBI_OP_CONV) {
            const size_t k = (size_t)n->win.kh * n->win.kw * p->in.c;
            if (k > *max_k) *max_k = k;
            if ((size_t)p->out.c > *max_cout) *max_cout = (size_t)p->out.c;
            /* Any conv of a change-based stream may be given a delta policy
             * later (cbinfer_stream_set_policy): the slots are sized for it. */
            const size_t tc = (size_t)n->win.kh * n->win.kw * p->out.c;
            if (cfg->mode != CBINFER_MODE_DENSE && tc > *max_tap_cout) *max_tap_cout = tc;
        } else if (n->op == CBI_OP_CONV_TRANSPOSE) {
            const size_t cols = (size_t)n->win.kh * n->win.kw * p->out.c;
            const size_t px = (size_t)p->in.h * p->in.w;
            if (cols > *ct_cols) *ct_cols = cols;
            if (px > max_px) max_px = px;
        }
    }
    *chunk = CPU_SCRATCH_BYTES / (sizeof(float) * *ct_cols);
    if (*chunk < CPU_MIN_CHUNK_PX) *chunk = CPU_MIN_CHUNK_PX;
    if (*chunk > max_px) *chunk = max_px;
}

/* The change state of node n's layer in a change-based stream, beyond a
 * conv's own: an out_map (convs, pools, Resize's marks) and an idx list
 * (those, and the merged list of a pixel-wise op with several inputs; one
 * input passes its list on). */
static void change_buffers(const cbi_node *n, int *map, int *list)
{
    const int is_pool = n->op == CBI_OP_MAXPOOL || n->op == CBI_OP_AVGPOOL;
    *map = n->op == CBI_OP_CONV || is_pool || n->op == CBI_OP_RESIZE;
    *list = *map || (cpu_op_propagates(n) && n->n_inputs > 1);
}

static int thread_count(int threads)
{
    const int procs = omp_get_num_procs() > 0 ? omp_get_num_procs() : 1;
    return threads > 0 ? threads : procs;
}

/* What create() and slots_create() allocate for `threads`, and the weights
 * of the change-based convolutions beyond the dense primitive's copy: the
 * two matmuls' (cpu_dnnl.c), or the padded thin rows. */
static size_t cpu_extra_bytes(const cbi_backend_config *cfg, int threads)
{
    size_t max_k, max_cout, max_tap_cout, chunk, ct_cols, weights = 0, tables = 0;
    scratch_plan(cfg, &max_k, &max_cout, &max_tap_cout, &chunk, &ct_cols);
    const int change_based = cfg->mode != CBINFER_MODE_DENSE;
    for (int i = 0; i < cfg->net->n_nodes; ++i) {
        const cbi_node *n = &cfg->net->nodes[i];
        const cbi_node_plan *p = &cfg->plans[i];
        /* Resize's taps and reach; the change map and list of a pixel-wise
         * op (host/stream.c counts those of convs and pools). */
        if (n->op == CBI_OP_RESIZE)
            tables += (size_t)(p->out.h + p->out.w) * sizeof(cbi_resize_tap) +
                      2 * (size_t)(p->in.h + p->in.w) * sizeof(int32_t);
        if (change_based && cpu_op_propagates(n)) {
            int map, list;
            change_buffers(n, &map, &list);
            tables += (size_t)p->out.h * p->out.w * ((size_t)map + (list ? sizeof(int32_t) : 0));
        }
        if (!change_based || n->op != CBI_OP_CONV) continue;
        const cbi_policy pol = cbi_config_policy(cfg, i);
        const size_t k = (size_t)n->win.kh * n->win.kw * cbi_conv_group_cin(n, cfg->plans[i].in.c);
        /* two matmuls' copies (W^T, or W2 for the delta scatter: the same
         * count), the padded thin rows, or the grouped layout's one copy */
        const int thin = n->cout <= CPU_THIN_COUT && !cbi_policy_uses_scatter(&pol, cfg->plans[i].in.c);
        weights += cbi_conv_groups(n) > 1 ? k * (size_t)n->cout
                   : thin                 ? CPU_THIN_COUT * k
                                          : 2 * k * (size_t)n->cout;
    }
    return tables + sizeof(float) *
           (weights + chunk * ct_cols +
            (size_t)thread_count(threads) * CPU_CHUNK_ROWS * (max_k + max_cout + max_tap_cout));
}

static void slots_destroy(cpu_ctx *ctx)
{
    for (int i = 0; ctx->slots && i < ctx->n_slots; ++i) {
        cpu_slot *sl = &ctx->slots[i];
        free(sl->col);
        free(sl->gemm);
        free(sl->prod);
        dnnl_memory_destroy(sl->scratchpad_mem);
        free(sl->scratchpad);
        dnnl_stream_destroy(sl->stream);
    }
    free(ctx->slots);
    free(ctx->counts);
    ctx->slots = NULL;
    ctx->counts = NULL;
    ctx->n_slots = 0;
}

/* One slot per thread the context runs: `threads`, or every core available
 * to the process when it is 0. All or nothing: on failure the context keeps
 * the slots it had. Layers hold pointers into the slots, so they are
 * created after this and destroyed before it runs again. */
static cbinfer_status slots_create(cpu_ctx *ctx, int threads, cbi_err *e)
{
    const int n = thread_count(threads);
    cpu_ctx fresh = *ctx; /* the sizes and the engine; new slots */
    fresh.slots = cbi_calloc((size_t)n, sizeof *fresh.slots);
    fresh.counts = cbi_calloc((size_t)n, sizeof *fresh.counts);
    fresh.n_slots = fresh.slots ? n : 0;
    cbinfer_status st = CBINFER_STATUS_SUCCESS;
    if (!fresh.slots || !fresh.counts)
        st = cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "cpu scratch of %d threads", n);
    for (int i = 0; st == CBINFER_STATUS_SUCCESS && i < n; ++i) {
        cpu_slot *sl = &fresh.slots[i];
        /* Calloc: rows past a partial chunk are computed and thrown away
         * (cpu_conv.c), so they must hold numbers from the start. */
        sl->col = cbi_calloc((size_t)CPU_CHUNK_ROWS * ctx->max_k, sizeof(float));
        sl->gemm = cbi_calloc((size_t)CPU_CHUNK_ROWS * ctx->max_cout, sizeof(float));
        sl->prod = ctx->max_tap_cout
                       ? cbi_calloc((size_t)CPU_CHUNK_ROWS * ctx->max_tap_cout, sizeof(float))
                       : NULL;
        if (!sl->col || !sl->gemm || (ctx->max_tap_cout && !sl->prod)) {
            st = cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY,
                          "cpu scratch of %d threads of %zu floats", n,
                          (size_t)CPU_CHUNK_ROWS * (ctx->max_k + ctx->max_cout + ctx->max_tap_cout));
            break;
        }
        const dnnl_status_t s = dnnl_stream_create(&sl->stream, ctx->engine, dnnl_stream_default_flags);
        if (s != dnnl_success) st = cpu_dnnl_status(s, e, "(backend)", "stream creation");
    }
    if (st != CBINFER_STATUS_SUCCESS) {
        slots_destroy(&fresh);
        return st;
    }
    slots_destroy(ctx);
    ctx->slots = fresh.slots;
    ctx->counts = fresh.counts;
    ctx->n_slots = n;
    return CBINFER_STATUS_SUCCESS;
}

static void cpu_destroy(void *bctx)
{
    cpu_ctx *ctx = bctx;
    if (!ctx) return;
    slots_destroy(ctx);
    dnnl_engine_destroy(ctx->engine);
    free(ctx->gemm);
    free(ctx);
}

static cbinfer_status cpu_create(const cbi_backend_config *cfg, void **out, cbi_err *e)
{
    if (cfg->precision != CBINFER_PRECISION_FP32)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM,
                        "the cpu backend runs fp32 only (tf32 and fp16 are cuda precisions)");
    cpu_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "cpu backend context");
    ctx->cfg = *cfg;

    size_t max_ct_cols;
    scratch_plan(cfg, &ctx->max_k, &ctx->max_cout, &ctx->max_tap_cout, &ctx->chunk_px,
                 &max_ct_cols);
    const size_t chunk = ctx->chunk_px;
    ctx->gemm = cbi_malloc_array(chunk * max_ct_cols, sizeof(float));
    if (!ctx->gemm) {
        cpu_destroy(ctx);
        return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "cpu scratch of %zu floats",
                        chunk * max_ct_cols);
    }
    const dnnl_status_t s = dnnl_engine_create(&ctx->engine, dnnl_cpu, 0);
    if (s != dnnl_success) {
        cpu_destroy(ctx);
        return cpu_dnnl_status(s, e, "(backend)", "engine creation");
    }
    const cbinfer_status st = slots_create(ctx, 0, e);
    if (st != CBINFER_STATUS_SUCCESS) {
        cpu_destroy(ctx);
        return st;
    }
    *out = ctx;
    return CBINFER_STATUS_SUCCESS;
}

static cbinfer_status cpu_alloc(void *bctx, size_t bytes, void **ptr, cbi_err *e)
{
    *ptr = cbi_calloc(1, bytes);
    if (!*ptr) return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "%zu bytes", bytes);
    return CBINFER_STATUS_SUCCESS;
}

static void cpu_release(void *bctx, void *ptr)
{
    free(ptr);
}

static size_t tensor_floats(const cbi_tensor *t)
{
    return (size_t)t->shape.c * t->shape.h * t->shape.w;
}

static cbinfer_status cpu_upload(void *bctx, cbi_tensor *dst, const float *src, cbi_err *e)
{
    memcpy(dst->data, src, tensor_floats(dst) * sizeof(float));
    return CBINFER_STATUS_SUCCESS;
}

static cbinfer_status cpu_download(void *bctx, float *dst, const cbi_tensor *src, cbi_err *e)
{
    memcpy(dst, src->data, tensor_floats(src) * sizeof(float));
    return CBINFER_STATUS_SUCCESS;
}

static cbinfer_status cpu_synchronize(void *bctx, cbi_err *e)
{
    return CBINFER_STATUS_SUCCESS;
}

static cbinfer_status cpu_set_threads(void *bctx, int threads, cbi_err *e)
{
    if (threads < 0) return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "threads %d < 0", threads);
    return slots_create(bctx, threads, e);
}

void cpu_layer_destroy(void *bctx, void *layer)
{
    cpu_layer *L = layer;
    if (!L) return;
    free(L->in_state);
    free(L->in_idx);
    free(L->out_map);
    free(L->idx);
    free(L->thin_w);
    free(L->group_w);
    free(L->acc);
    free(L->dimg);
    free(L->s1map);
    free(L->bmap);
    free(L->tap_y);
    free(L->tap_x);
    free(L->reach_y);
    free(L->reach_x);
    cpu_conv_prims_destroy(&L->conv);
    free(L);
}

int cpu_row_weights(const cbi_node *n, const cbi_node_plan *p, const cbi_policy *pol,
                    cpu_layer *L)
{
    if (cbi_conv_groups(n) > 1) {
        /* [Cout][kh][kw][cg] -> [kh][kw][cg][Cout] (cpu_group_rows) */
        const size_t taps_cg = (size_t)n->win.kh * n->win.kw * cbi_conv_group_cin(n, p->in.c);
        L->group_w = cbi_malloc_array(taps_cg * n->cout, sizeof(float));
        if (!L->group_w) return -1;
        for (size_t o = 0; o < (size_t)n->cout; ++o)
            for (size_t t = 0; t < taps_cg; ++t)
                L->group_w[t * n->cout + o] = n->weight[o * taps_cg + t];
    } else if (n->cout <= CPU_THIN_COUT && !cbi_policy_uses_scatter(pol, p->in.c)) {
        const size_t k = (size_t)n->win.kh * n->win.kw * p->in.c;
        L->thin_w = cbi_calloc(CPU_THIN_COUT * k, sizeof(float));
        if (!L->thin_w) return -1;
        memcpy(L->thin_w, n->weight, (size_t)n->cout * k * sizeof(float));
    }
    return 0;
}

/* Whether value v reaches a change-based stream as changed everywhere on
 * every frame: no change list can reach it from a Conv (which makes one by
 * detecting). Pools and the pixel-wise ops hand on a list only when all of
 * their inputs have one; other ops, the network's input and constants
 * never. One pass over the nodes in their (topological) order; -1 when out
 * of memory. */
static int always_all_changed(const cbi_net *net, int v)
{
    unsigned char *all = malloc((size_t)net->n_values);
    if (!all) return -1;
    memset(all, 1, (size_t)net->n_values);
    for (int i = 0; i < net->n_nodes; ++i) {
        const cbi_node *p = &net->nodes[i];
        int a = 1;
        if (p->op == CBI_OP_CONV) {
            a = 0;
        } else if (p->op == CBI_OP_MAXPOOL || p->op == CBI_OP_AVGPOOL || cpu_op_propagates(p)) {
            a = 0;
            for (int j = 0; j < p->n_inputs; ++j)
                a |= p->inputs[j] < 0 || p->inputs[j] >= net->n_values || all[p->inputs[j]];
        }
        if (p->output >= 0 && p->output < net->n_values) all[p->output] = (unsigned char)a;
    }
    const int r = v < 0 || v >= net->n_values || all[v];
    free(all);
    return r;
}

static cbinfer_status cpu_layer_create(void *bctx, int node_id, void **out, cbi_err *e)
{
    cpu_ctx *ctx = bctx;
    const cbi_node *n = &ctx->cfg.net->nodes[node_id];
    const cbi_node_plan *p = &ctx->cfg.plans[node_id];
    const int change_based = ctx->cfg.mode != CBINFER_MODE_DENSE;
    const cbi_policy node_policy = cbi_config_policy(&ctx->cfg, node_id);
    const cbi_policy *pol = change_based ? &node_policy : NULL;
    *out = NULL;
    const int is_pool = n->op == CBI_OP_MAXPOOL || n->op == CBI_OP_AVGPOOL;
    if (n->op != CBI_OP_CONV && n->op != CBI_OP_RESIZE &&
        !(change_based && (is_pool || cpu_op_propagates(n))))
        return CBINFER_STATUS_SUCCESS;

    cpu_layer *L = calloc(1, sizeof *L);
    const size_t in_px = (size_t)p->in.h * p->in.w, out_px = (size_t)p->out.h * p->out.w;
    int ok = L != NULL;
    int needs_map, needs_list;
    change_buffers(n, &needs_map, &needs_list);
    if (ok && change_based && needs_map) {
        L->out_map = cbi_calloc(out_px, 1);
        ok = L->out_map != NULL;
    }
    if (ok && change_based && needs_list) {
        L->idx = cbi_malloc_array(out_px, sizeof(int32_t));
        ok = L->idx != NULL;
    }
    if (ok && n->op == CBI_OP_RESIZE) ok = cpu_resize_tables(n, p, L) == 0;
    if (ok && change_based && n->op == CBI_OP_CONV) {
        L->in_state = cbi_calloc(in_px * p->in.c, sizeof(float));
        L->in_idx = cbi_malloc_array(in_px, sizeof(int32_t));
        ok = L->in_state && L->in_idx;
        L->policy = *pol;
        const int all_changed = ok ? always_all_changed(ctx->cfg.net, n->inputs[0]) : 1;
        ok = ok && all_changed >= 0;
        L->input_all_changed = all_changed > 0;
        if (ok && cbi_policy_keeps_accumulator(pol, n, p->in.c, sizeof(float))) {
            L->acc = cbi_calloc(out_px * p->out.c, sizeof(float));
            ok = L->acc != NULL;
        }
        if (ok && pol->kind == CBI_POLICY_SKIPCONV) {
            L->dimg = cbi_calloc(in_px * p->in.c, sizeof(float));
            L->s1map = cbi_calloc(in_px, sizeof(float));
            L->bmap = cbi_calloc(cbi_block_map_bytes(p->out.h, p->out.w, pol->block), 1);
            ok = L->dimg && L->s1map && L->bmap;
            L->w_l1 = cbi_conv_weight_l1(n, p->in.c);
        }
        if (ok) ok = cpu_row_weights(n, p, pol, L) == 0;
    }
    if (!ok) {
        cpu_layer_destroy(bctx, L);
        return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "state of node %s", n->name);
    }
    if (n->op == CBI_OP_CONV) {
        cbinfer_status st = cpu_conv_prims_create(ctx, n, p, pol, 1, &L->conv, e);
        if (st != CBINFER_STATUS_SUCCESS) {
            cpu_layer_destroy(bctx, L);
            return st;
        }
    }
    *out = L;
    return CBINFER_STATUS_SUCCESS;
}

static const cbi_backend cpu_backend = {
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .upload = cpu_upload,
    .download = cpu_download,
    .synchronize = cpu_synchronize,
    .set_threads = cpu_set_threads,
    .extra_bytes = cpu_extra_bytes,
    .layer_create = cpu_layer_create,
    .layer_destroy = cpu_layer_destroy,
    .batch_layer_create = cpu_batch_layer_create,
    .conv_batch = cpu_conv_batch,
    .kernel = {
        [CBI_K_CONV_DENSE] = cpu_conv_dense,
        [CBI_K_CONV_CHANGE] = cpu_conv_change,
        [CBI_K_CONV_TRANSPOSE] = cpu_conv_transpose,
        [CBI_K_ACTIVATION] = cpu_activation,
        [CBI_K_POOL_DENSE] = cpu_pool_dense,
        [CBI_K_POOL_CHANGE] = cpu_pool_change,
        [CBI_K_ADD] = cpu_add,
        [CBI_K_CONCAT] = cpu_concat,
        [CBI_K_PAD] = cpu_pad,
        [CBI_K_RESIZE] = cpu_resize,
        [CBI_K_DEPTH_TO_SPACE] = cpu_depth_to_space,
    },
};

void cbi_cpu_describe(char *buf, size_t len)
{
    const dnnl_version_t *v = dnnl_version();
    const char *isa;
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: isa = "sse41"; break;
    case dnnl_cpu_isa_avx: isa = "avx"; break;
    case dnnl_cpu_isa_avx2: isa = "avx2"; break;
    case dnnl_cpu_isa_avx512_mic: isa = "avx512_mic"; break;
    case dnnl_cpu_isa_avx512_mic_4ops: isa = "avx512_mic_4ops"; break;
    case dnnl_cpu_isa_avx512_core: isa = "avx512_core"; break;
    case dnnl_cpu_isa_avx512_core_vnni: isa = "avx512_core_vnni"; break;
    case dnnl_cpu_isa_avx512_core_bf16: isa = "avx512_core_bf16"; break;
    case dnnl_cpu_isa_avx512_core_amx: isa = "avx512_core_amx"; break;
    case dnnl_cpu_isa_avx2_vnni: isa = "avx2_vnni"; break;
    default: isa = "other"; break;
    }
    snprintf(buf, len, "oneDNN %d.%d.%d (%s), isa %s", v->major, v->minor, v->patch,
             v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "threads", isa);
}

const cbi_backend *cbi_cpu_backend(void)
{
    return &cpu_backend;
}
