/*
 * The CPU backend table: host memory, float32 NHWC tensors, OpenBLAS GEMMs.
 * Kernels live in cpu_conv.c and cpu_ops.c.
 */
#include <stdlib.h>
#include <string.h>

#include "cpu_backend.h"

/* Scratch budget for one im2col chunk; rows beyond it are processed in more
 * chunks. 32 MiB keeps a chunk in the last-level cache's neighbourhood while
 * giving sgemm enough rows to run at full speed. */
#define CPU_SCRATCH_BYTES ((size_t)32 << 20)
#define CPU_MIN_CHUNK_PX 64

static cbinfer_status cpu_create(const cbi_backend_config *cfg, void **out, cbi_err *e)
{
    if (cfg->precision != CBINFER_PRECISION_FP32)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM,
                        "the cpu backend runs fp32 only (tf32 and fp16 are cuda precisions)");
    cpu_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "cpu backend context");
    ctx->cfg = *cfg;

    /* Size the shared scratch for the largest layer. */
    size_t max_px = 1, max_k = 1, max_cols = 1;
    const cbi_net *net = cfg->net;
    for (int i = 0; i < net->n_nodes; ++i) {
        const cbi_node *n = &net->nodes[i];
        const cbi_node_plan *p = &cfg->plans[i];
        size_t k, cols, px;
        if (n->op == CBI_OP_CONV) {
            k = (size_t)n->win.kh * n->win.kw * p->in.c;
            cols = (size_t)p->out.c;
            px = (size_t)p->out.h * p->out.w;
        } else if (n->op == CBI_OP_CONV_TRANSPOSE) {
            k = (size_t)p->in.c;
            cols = (size_t)n->win.kh * n->win.kw * p->out.c;
            px = (size_t)p->in.h * p->in.w;
        } else {
            continue;
        }
        if (k > max_k) max_k = k;
        if (cols > max_cols) max_cols = cols;
        if (px > max_px) max_px = px;
    }
    size_t chunk = CPU_SCRATCH_BYTES / (sizeof(float) * (max_k > max_cols ? max_k : max_cols));
    if (chunk < CPU_MIN_CHUNK_PX) chunk = CPU_MIN_CHUNK_PX;
    if (chunk > max_px) chunk = max_px;
    ctx->chunk_px = chunk;
    ctx->max_k = max_k;
    ctx->max_cout = max_cols;
    ctx->col = cbi_malloc_array(chunk * max_k, sizeof(float));
    ctx->gemm = cbi_malloc_array(chunk * max_cols, sizeof(float));
    if (!ctx->col || !ctx->gemm) {
        free(ctx->col);
        free(ctx->gemm);
        free(ctx);
        return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "cpu scratch of %zu + %zu floats",
                        chunk * max_k, chunk * max_cols);
    }
    *out = ctx;
    return CBINFER_STATUS_SUCCESS;
}

static void cpu_destroy(void *bctx)
{
    cpu_ctx *ctx = bctx;
    if (!ctx) return;
    free(ctx->col);
    free(ctx->gemm);
    free(ctx);
}

static cbinfer_status cpu_alloc(void *bctx, size_t bytes, void **ptr, cbi_err *e)
{
    *ptr = calloc(1, bytes ? bytes : 1);
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

static void cpu_layer_destroy(void *bctx, void *layer)
{
    cpu_layer *L = layer;
    if (!L) return;
    free(L->in_state);
    free(L->in_idx);
    free(L->out_map);
    free(L->idx);
    free(L);
}

static cbinfer_status cpu_layer_create(void *bctx, int node_id, void **out, cbi_err *e)
{
    cpu_ctx *ctx = bctx;
    const cbi_node *n = &ctx->cfg.net->nodes[node_id];
    const cbi_node_plan *p = &ctx->cfg.plans[node_id];
    const int change_based = ctx->cfg.mode != CBINFER_MODE_DENSE;
    *out = NULL;
    if (!change_based || (n->op != CBI_OP_CONV && n->op != CBI_OP_MAXPOOL && n->op != CBI_OP_AVGPOOL))
        return CBINFER_STATUS_SUCCESS;

    cpu_layer *L = calloc(1, sizeof *L);
    const size_t in_px = (size_t)p->in.h * p->in.w, out_px = (size_t)p->out.h * p->out.w;
    int ok = L != NULL;
    if (ok) {
        L->out_map = cbi_calloc(out_px, 1);
        L->idx = cbi_malloc_array(out_px, sizeof(int32_t));
        ok = L->out_map && L->idx;
    }
    if (ok && n->op == CBI_OP_CONV) {
        L->in_state = cbi_calloc(in_px * p->in.c, sizeof(float));
        L->in_idx = cbi_malloc_array(in_px, sizeof(int32_t));
        ok = L->in_state && L->in_idx;
    }
    if (!ok) {
        cpu_layer_destroy(bctx, L);
        return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "state of node %s", n->name);
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
    .layer_create = cpu_layer_create,
    .layer_destroy = cpu_layer_destroy,
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

const cbi_backend *cbi_cpu_backend(void)
{
    return &cpu_backend;
}
