/*
 * Batched convolution on the CPU (host/batch.c steps N streams of one
 * network together). Each stream detects its own changes against its own
 * state (Eq. 3 and 4, cpu_change_rows); then the changed output pixels of
 * all streams form one list of rows, each tagged with its stream (a
 * cpu_row_src per stream), and run as one chunked GEMM (cpu_rows_run): a
 * chunk of CPU_CHUNK_ROWS rows may hold rows of several cameras, so N
 * streams with a few changed pixels each fill whole chunks instead of N
 * partial ones. Streams that run dense this frame run as one convolution
 * over all images when every stream of the batch does (dense streams, the
 * first frame of all), each on its own otherwise.
 *
 * The batch's layer (cpu_batch_layer_create) holds no state: the dense
 * primitives of one and of N images and the recompute matmuls, all of
 * the batch's context, so that their scratchpads are that context's.
 */
#include <stdlib.h>
#include <string.h>

#include "cpu_backend.h"

cbinfer_status cpu_batch_layer_create(void *bctx, int node_id, int images, void **out, cbi_err *e)
{
    cpu_ctx *ctx = bctx;
    const cbi_node *n = &ctx->cfg.net->nodes[node_id];
    const cbi_node_plan *p = &ctx->cfg.plans[node_id];
    *out = NULL;
    if (n->op != CBI_OP_CONV) return CBINFER_STATUS_SUCCESS;
    if (images < 1)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s: a batch of %d images", n->name,
                        images);
    const int change_based = ctx->cfg.mode != CBINFER_MODE_DENSE;
    /* The batch's context runs recompute layers only (host/batch.c). */
    const cbi_policy recompute = cbi_policy_of_mode(CBINFER_MODE_CBINFER);
    cpu_layer *L = calloc(1, sizeof *L);
    if (!L || (change_based && cpu_row_weights(n, p, &recompute, L) != 0)) {
        cpu_layer_destroy(bctx, L);
        return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "batch weights of node %s", n->name);
    }
    const cbinfer_status st =
        cpu_conv_prims_create(ctx, n, p, change_based ? &recompute : NULL, images, &L->conv, e);
    if (st != CBINFER_STATUS_SUCCESS) {
        cpu_layer_destroy(bctx, L);
        return st;
    }
    *out = L;
    return CBINFER_STATUS_SUCCESS;
}

/* Whether tensor t of args[0..n) lies image after image (a batch's values,
 * host/batch.c): then one primitive over n images reads and writes them. */
static int image_after_image(cbi_op_args *const *args, int n, int input)
{
    const cbi_tensor *t0 = input ? args[0]->in[0] : args[0]->out;
    const size_t bytes = (size_t)t0->shape.h * t0->shape.w * t0->shape.c * sizeof(float);
    for (int j = 1; j < n; ++j) {
        const cbi_tensor *t = input ? args[j]->in[0] : args[j]->out;
        if ((const char *)t->data != (const char *)t0->data + j * bytes) return 0;
    }
    return 1;
}

/* The dense frames of the streams flagged in dense[] (the batch layer's
 * primitives): one convolution of all images when all n are and their
 * tensors allow it, else one per stream. Stats as cpu_conv_dense's. */
static cbinfer_status dense_streams(cpu_ctx *ctx, cpu_layer *W, int n, cbi_op_args *const *args,
                                    const unsigned char *dense, int n_dense, cbi_err *e)
{
    const cpu_dense_prim *all = n == 1 ? &W->conv.dense : &W->conv.dense_n;
    if (n_dense == n && all->prim && all->images == n && image_after_image(args, n, 1) &&
        image_after_image(args, n, 0)) {
        const cpu_conv_geom g = cpu_conv_geom_of(args[0]);
        const int64_t npx = (int64_t)g.ho * g.wo;
        const double t0 = cbi_now_ms();
        const cbinfer_status st = cpu_dense_run(ctx, all, args[0]->node, args[0]->in[0]->data,
                                                args[0]->out->data, 1, npx, e);
        if (st != CBINFER_STATUS_SUCCESS) return st;
        const double share = (cbi_now_ms() - t0) / n;
        for (int j = 0; j < n; ++j) {
            cpu_step_time(args[j], CBINFER_STEP_DENSE, 0, share);
            args[j]->stats->changed_px = npx;
            args[j]->stats->macs = npx * g.k * g.cout;
        }
        return CBINFER_STATUS_SUCCESS;
    }
    for (int j = 0; j < n; ++j) {
        if (!dense[j]) continue;
        const cbinfer_status st =
            cpu_conv_dense_from(ctx, W, args[j], args[j]->in[0]->data, args[j]->out->data, e);
        if (st != CBINFER_STATUS_SUCCESS) return st;
    }
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cpu_conv_batch(void *bctx, void *blayer, int n, cbi_op_args *const *args,
                              cbi_err *e)
{
    cpu_ctx *ctx = bctx;
    cpu_layer *W = blayer;
    if (!ctx || !W || !W->conv.dense.prim || n < 1 || n > CBI_MAX_BATCH)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "batched Conv: no primitives for %d streams",
                        n);
    const cbi_node *node = args[0]->node;
    const int change_based = ctx->cfg.mode != CBINFER_MODE_DENSE;
    if (change_based && !W->conv.mm[0] && !W->thin_w && !W->group_w)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (Conv): no batched GEMM", node->name);

    /* Each stream's rows against its own state (or its dense frame). */
    unsigned char dense[CBI_MAX_BATCH];
    cpu_row_src rows[CBI_MAX_BATCH];
    int n_dense = 0, n_rows = 0, timed = 0;
    for (int j = 0; j < n; ++j) {
        cbi_op_args *a = args[j];
        timed |= a->collect_stats;
        int d = 1;
        const int32_t *idx = NULL;
        const float *src = NULL;
        int64_t m = 0;
        if (change_based) {
            const cbinfer_status st = cpu_change_rows(ctx, a->layer, a, &idx, &m, &d, &src, e);
            if (st != CBINFER_STATUS_SUCCESS) return st;
        }
        dense[j] = (unsigned char)d;
        n_dense += d;
        if (!d)
            rows[n_rows++] = (cpu_row_src){.src = src, .idx = idx, .n = m, .out = a->out->data,
                                           .L = a->layer};
    }
    cbinfer_status st = n_dense ? dense_streams(ctx, W, n, args, dense, n_dense, e)
                                : CBINFER_STATUS_SUCCESS;
    if (st != CBINFER_STATUS_SUCCESS || n_rows == 0) return st;

    /* One GEMM over the rows of every stream, tagged by stream. */
    const cpu_conv_geom g = cpu_conv_geom_of(args[0]);
    double t[3];
    st = cpu_rows_run(ctx, W, node, &g, rows, n_rows, cpu_recompute_update, timed, t, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    for (int j = 0, r = 0; j < n; ++j) {
        if (dense[j]) continue;
        cpu_add_step_times(args[j], t[0], t[1], t[2], n_rows);
        cpu_change_done(args[j], rows[r].idx, rows[r].n);
        ++r;
    }
    return CBINFER_STATUS_SUCCESS;
}
