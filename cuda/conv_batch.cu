/*
 * Batched convolution on CUDA (host/batch.c steps N streams of one network
 * together; the CPU's counterpart is host/cpu/cpu_batch.c).
 *
 *   - Each stream detects its changes against its own state and extracts
 *     its indices (cu_change_rows: one host wait per stream, as alone).
 *   - The changed output pixels of all streams then form one list of rows,
 *     each run of rows tagged with its stream. Per chunk of ctx->chunk_px
 *     rows, which may hold rows of several cameras: one partial im2col per
 *     stream segment into the shared column buffer at the segment's row
 *     offset, ONE cuBLAS GEMM over the whole chunk, and one fused update per
 *     segment into that stream's output. N cameras with a few changed
 *     pixels each fill whole chunks instead of N partial GEMMs.
 *   - Streams that run dense this frame run as one cuDNN convolution over
 *     all N images when every stream does (a dense batch, the first frame
 *     of all) and their tensors lie image after image (the batch's arrays);
 *     each alone otherwise.
 *
 * Every stream of a batch queues on the batch context's CUDA stream
 * (host/batch.c creates them on it), so the per-stream kernels and the
 * batched ones are ordered without events. The weights are stream 0's: all
 * streams hold the same network's. The batch layer holds only cuDNN
 * descriptors and algorithms, for N images and for one, found on the
 * batch's context, whose workspace grows for them at creation (nothing is
 * allocated while a frame runs).
 *
 * Host waits: each stream's extraction waits once, as alone, but counts on
 * the batch's context, not in the stream's host_syncs.
 */
#include <stdlib.h>

#include "cuda_backend.cuh"

/* Descriptors for `images` images of node_id in *L; a shape cuDNN does not
 * take for that many (or an algorithm search that fails) leaves use_cudnn 0
 * and the im2col path, never a failed batch. */
static void setup_images(cu_ctx *ctx, int node_id, int images, cu_layer *L)
{
    cbi_err ignored = {{0}};
    if (cu_cudnn_setup(ctx, node_id, images, L, &ignored) != CBINFER_STATUS_SUCCESS) {
        cu_cudnn_teardown(L);
        (void)cudaGetLastError();
    }
}

cbinfer_status cu_batch_layer_create(void *bctx, int node_id, int images, void **out, cbi_err *e)
{
    cu_ctx *ctx = (cu_ctx *)bctx;
    *out = NULL;
    const cbi_node *n = &ctx->cfg.net->nodes[node_id];
    if (n->op != CBI_OP_CONV) return CBINFER_STATUS_SUCCESS;
    if (images < 1)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s: a batch of %d images", n->name,
                        images);
    const cbi_node_plan *p = &ctx->cfg.plans[node_id];
    if (ctx->cfg.mode != CBINFER_MODE_DENSE) {
        /* The streams' extractions run on this context: its scratch. */
        size_t tmp = 0;
        CU_TRY(cu_extract_scratch_bytes((int64_t)p->out.h * p->out.w, &tmp, n->name, e));
        CU_TRY(cu_grow(&ctx->d_sel_tmp, &ctx->sel_tmp_bytes, tmp, n->name, e));
    }
    cu_layer *L = (cu_layer *)calloc(1, sizeof *L);
    cu_layer *one = images > 1 ? (cu_layer *)calloc(1, sizeof *one) : NULL;
    if (!L || (images > 1 && !one)) {
        free(L);
        free(one);
        return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "batch layer of node %s", n->name);
    }
    setup_images(ctx, node_id, images, L);
    if (one) setup_images(ctx, node_id, 1, one);
    L->one = one;
    *out = L;
    return CBINFER_STATUS_SUCCESS;
}

/* Whether tensor t of args[0..n) lies image after image. */
static int image_after_image(cbi_op_args *const *args, int n, int input, size_t elem_bytes)
{
    const cbi_tensor *t0 = input ? args[0]->in[0] : args[0]->out;
    const size_t bytes = (size_t)t0->shape.h * t0->shape.w * t0->shape.c * elem_bytes;
    for (int j = 1; j < n; ++j) {
        const cbi_tensor *t = input ? args[j]->in[0] : args[j]->out;
        if ((const char *)t->data != (const char *)t0->data + j * bytes) return 0;
    }
    return 1;
}

/* The stream that times a shared step: the first of args with stats on
 * (NULL: none asked). */
static cbi_op_args *timer_of(cbi_op_args *const *args, int n)
{
    for (int j = 0; j < n; ++j)
        if (args[j]->collect_stats && args[j]->stats) return args[j];
    return NULL;
}

/* The step times `t` gathered since `before`, shared evenly among the
 * streams of args that collect stats. */
static void share_step_times(cbi_op_args *const *args, int n, cbi_op_args *t,
                             const double *before)
{
    if (!t) return;
    int takers = 0;
    for (int j = 0; j < n; ++j) takers += args[j]->collect_stats && args[j]->stats;
    for (int s = 0; s < CBINFER_STEP_COUNT; ++s) {
        const double share = (t->stats->step_ms[s] - before[s]) / takers;
        t->stats->step_ms[s] = before[s];
        for (int j = 0; j < n; ++j)
            if (args[j]->collect_stats && args[j]->stats) args[j]->stats->step_ms[s] += share;
    }
}

static void snapshot(const cbi_op_args *t, double *before)
{
    for (int s = 0; s < CBINFER_STEP_COUNT; ++s) before[s] = t ? t->stats->step_ms[s] : 0.0;
}

/* The dense frames of args[0..n): one cuDNN convolution over n images with
 * D's descriptors (D->images == n, their tensors image after image) and
 * stream 0's weights; or, with no such D, the im2col path stream by stream
 * on this context. */
static cbinfer_status dense_run(cu_ctx *ctx, cu_layer *D, int n, cbi_op_args *const *args,
                                cbi_err *e)
{
    cbi_op_args *a0 = args[0];
    const cbi_cuda_conv_geom g = cu_conv_geom(a0);
    const int64_t npx = (int64_t)g.ho * g.wo;
    for (int j = 0; j < n; ++j) {
        args[j]->stats->changed_px = npx;
        args[j]->stats->macs = npx * g.k * g.cout;
    }
    if (!D || !D->use_cudnn || D->images != n) {
        /* Each stream times its own steps. */
        for (int j = 0; j < n; ++j)
            CU_TRY(cu_conv_rows(ctx, args[j], args[j]->in[0]->data, NULL, npx, CU_ROWS_OUTPUT,
                                NULL, e));
        return CBINFER_STATUS_SUCCESS;
    }
    cbi_op_args *t = timer_of(args, n);
    double before[CBINFER_STEP_COUNT];
    snapshot(t, before);
    CU_TRY(cu_conv_cudnn(ctx, a0, D, (const cu_layer *)a0->layer, t ? t : a0, e));
    share_step_times(args, n, t, before);
    return CBINFER_STATUS_SUCCESS;
}

/* One stream's rows to recompute. */
typedef struct cu_rows_src {
    cbi_op_args *a;
    const int32_t *idx;
    int64_t n, n_in;
} cu_rows_src;

/* The rows of every source through one GEMM per chunk (group 1), or the
 * grouped products (group > 1), then each source's update; the shared
 * steps are timed on `at`. */
static cbinfer_status rows_all(cu_ctx *ctx, const cu_rows_src *src, int n_src, cbi_op_args *at,
                               cbi_err *e)
{
    cbi_op_args *a0 = src[0].a;
    const cu_layer *W = (const cu_layer *)a0->layer;
    const cbi_cuda_conv_geom g = cu_conv_geom(a0);
    const char *where = cu_name(a0);
    if ((size_t)g.k > ctx->max_k || (size_t)g.cout * ctx->chunk_px > ctx->y_floats)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s: scratch sized for k %zu, layer has %d",
                        where, ctx->max_k, g.k);
    const int64_t chunk = (int64_t)ctx->chunk_px;
    /* A chunk's segments: source, first row in the source, rows, row in the
     * chunk. A source gives at most one segment per chunk. */
    struct seg {
        int s;
        int64_t r0;
        int m, pos;
    } segs[CBI_MAX_BATCH];
    int s = 0;
    int64_t off = 0;
    while (s < n_src) {
        int m = 0, n_seg = 0;
        while (m < chunk && s < n_src) {
            const int64_t left = src[s].n - off;
            const int take = (int)(left < chunk - m ? left : chunk - m);
            if (take > 0) {
                segs[n_seg++] = (struct seg){s, off, take, m};
                m += take;
                off += take;
            }
            if (off == src[s].n) {
                ++s;
                off = 0;
            }
        }
        if (m == 0) break;
        if (g.group > 1) {
            cu_step st(ctx, at, CBINFER_STEP_GEMM);
            CU_TRY(st.begin(e));
            for (int i = 0; i < n_seg; ++i) {
                const cu_rows_src *r = &src[segs[i].s];
                const cu_layer *L = (const cu_layer *)r->a->layer;
                CBINFER_CUDA_TRY(launch_group_rows(ctx->dt, &g, L->d_state, W->d_w,
                                                   r->idx + segs[i].r0, segs[i].r0, segs[i].m,
                                                   ctx->d_y + (size_t)segs[i].pos * g.cout,
                                                   ctx->stream),
                                 e, where);
            }
            CU_TRY(st.end(e));
        } else {
            {
                cu_step st(ctx, at, CBINFER_STEP_IM2COL);
                CU_TRY(st.begin(e));
                for (int i = 0; i < n_seg; ++i) {
                    const cu_rows_src *r = &src[segs[i].s];
                    const cu_layer *L = (const cu_layer *)r->a->layer;
                    void *col = (char *)ctx->d_col + (size_t)segs[i].pos * g.k * ctx->elem_bytes;
                    CBINFER_CUDA_TRY(launch_im2col(ctx->dt, &g, L->d_state, r->idx + segs[i].r0,
                                                   segs[i].r0, segs[i].m, col, ctx->stream),
                                     e, where);
                }
                CU_TRY(st.end(e));
            }
            /* As cu_conv_rows: Y^T (cout x m) = op_T(W^T) * X^T, all cameras' rows. */
            cu_step st(ctx, at, CBINFER_STEP_GEMM);
            CU_TRY(st.begin(e));
            CBINFER_CUBLAS_TRY(launch_gemm(ctx->cublas, ctx->precision, CUBLAS_OP_T, g.cout, m,
                                           g.k, W->d_w, g.k, ctx->d_col, g.k, ctx->d_y, g.cout),
                               e, where);
            CU_TRY(st.end(e));
        }
        cu_step st(ctx, at, CBINFER_STEP_UPDATE);
        CU_TRY(st.begin(e));
        for (int i = 0; i < n_seg; ++i) {
            const cu_rows_src *r = &src[segs[i].s];
            cbi_cuda_act act;
            CU_TRY(cu_act_of(r->a, &act, e));
            CBINFER_CUDA_TRY(launch_update(ctx->dt, ctx->d_y + (size_t)segs[i].pos * g.cout,
                                           W->d_bias, &act, r->idx + segs[i].r0, segs[i].r0,
                                           segs[i].m, g.cout, r->a->out->data, ctx->stream),
                             e, where);
        }
        CU_TRY(st.end(e));
    }
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cu_conv_batch(void *bctx, void *blayer, int n, cbi_op_args *const *args,
                             cbi_err *e)
{
    cu_ctx *ctx = (cu_ctx *)bctx;
    cu_layer *B = (cu_layer *)blayer;
    if (!ctx || !B || n < 1 || n > CBI_MAX_BATCH)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "batched Conv: no batch layer for %d streams",
                        n);
    const int change_based = ctx->cfg.mode != CBINFER_MODE_DENSE;
    for (int j = 0; j < n; ++j) {
        CU_TRY(cu_check_args(args[j], 1, e));
        const cu_layer *L = (const cu_layer *)args[j]->layer;
        if (!L || !L->d_w || !L->d_bias)
            return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s, stream %d: no weights",
                            cu_name(args[j]), j);
        if (change_based && (!L->d_state || !L->d_map || !L->d_idx || !args[j]->out_chg ||
                             !args[j]->in_chg[0]))
            return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                            "node %s, stream %d: no change-based conv state", cu_name(args[j]), j);
    }
    /* Each stream's rows against its own state, or its dense frame. */
    cbi_op_args *dense[CBI_MAX_BATCH];
    cu_rows_src rows[CBI_MAX_BATCH];
    int n_dense = 0, n_rows = 0;
    for (int j = 0; j < n; ++j) {
        int d = 1;
        cu_rows_src r = {args[j], NULL, 0, 0};
        if (change_based) CU_TRY(cu_change_rows(ctx, args[j], &r.idx, &r.n, &r.n_in, &d, e));
        if (d)
            dense[n_dense++] = args[j];
        else
            rows[n_rows++] = r;
    }
    /* All of the batch's images at once (delta-policy streams are not among
     * args, so n may be short of it), else one by one. */
    if (n_dense == n && n == B->images && image_after_image(args, n, 1, ctx->elem_bytes) &&
        image_after_image(args, n, 0, ctx->elem_bytes)) {
        CU_TRY(dense_run(ctx, B, n, args, e));
    } else {
        cu_layer *one = B->images == 1 ? B : B->one;
        for (int j = 0; j < n_dense; ++j) CU_TRY(dense_run(ctx, one, 1, &dense[j], e));
    }
    if (n_rows == 0) return CBINFER_STATUS_SUCCESS;
    cbi_op_args *ra[CBI_MAX_BATCH];
    for (int r = 0; r < n_rows; ++r) ra[r] = rows[r].a;
    cbi_op_args *t = timer_of(ra, n_rows);
    double before[CBINFER_STEP_COUNT];
    snapshot(t, before);
    CU_TRY(rows_all(ctx, rows, n_rows, t ? t : ra[0], e));
    for (int r = 0; r < n_rows; ++r)
        cu_change_done(rows[r].a, rows[r].idx, rows[r].n, rows[r].n_in);
    share_step_times(ra, n_rows, t, before);
    return CBINFER_STATUS_SUCCESS;
}
