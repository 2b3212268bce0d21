/*
 * Change-based convolution (CBI_K_CONV_CHANGE), paper Sec. III-A to III-C, as
 * a sequence of kernels on the context's stream:
 *
 *   1. change detection fused with the closed-loop state update and the
 *      filter-support marking (Eq. 3 and 4, change_detect.cu), over the
 *      producer's changed pixels only (cbi_changes);
 *   2. change-index extraction (extract.cu: thrust::copy_if, which waits for
 *      the stream and returns the count): the host needs the number of
 *      changed output pixels to size the GEMM and to hand it to the next
 *      layer (cbi_changes.count). The changed-input count (a statistic) rides
 *      on the same wait through a pinned copy queued before it. This is the
 *      layer's only sync;
 *   3. per chunk of changed output pixels: partial im2col (im2col.cu), GEMM
 *      (gemm.cu, cuBLAS), fused bias + activation + scatter (update.cu);
 *      the change map is cleared where it was set.
 *
 * Dense fallback (a->dense_fallback, a->break_even): when the changed share
 * of the output passes the break-even share, the state is set to the input
 * and the dense path (conv_dense.cu) runs.
 *
 * Shortcuts without any sync: an input list with no pixel (nothing can have
 * changed) and a reused index list (1x1, stride 1: Sec. III-E case 2), whose
 * count the host already has.
 *
 * The im2col reads the input state, not the input: in the closed loop the
 * stored output must be the convolution of the state; feed-forward, the
 * state equals the input after detection (as host/cpu/cpu_conv.c).
 */
#include "cuda_backend.cuh"

cbinfer_status cu_conv_rows(cu_ctx *ctx, cbi_op_args *a, const void *src, const int32_t *idx,
                            int64_t n, cu_rows_update upd, float *acc, cbi_err *e)
{
    const cu_layer *L = (const cu_layer *)a->layer;
    const cbi_cuda_conv_geom g = cu_conv_geom(a);
    const char *where = cu_name(a);
    if ((size_t)g.k > ctx->max_k || (size_t)g.cout * ctx->chunk_px > ctx->y_floats)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s: scratch sized for k %zu, layer has %d",
                        where, ctx->max_k, g.k);
    cbi_cuda_act act;
    CU_TRY(cu_act_of(a, &act, e));
    const int64_t chunk = (int64_t)ctx->chunk_px;
    for (int64_t r0 = 0; r0 < n; r0 += chunk) {
        const int m = (int)(n - r0 < chunk ? n - r0 : chunk);
        const int32_t *rows = idx ? idx + r0 : NULL;
        if (g.group > 1) {
            /* Block-diagonal product: each row straight from the state. */
            cu_step s(ctx, a, CBINFER_STEP_GEMM);
            CU_TRY(s.begin(e));
            CBINFER_CUDA_TRY(launch_group_rows(ctx->dt, &g, src, L->d_w, rows, r0, m, ctx->d_y,
                                               ctx->stream),
                             e, where);
            CU_TRY(s.end(e));
        } else {
            {
                cu_step s(ctx, a, CBINFER_STEP_IM2COL);
                CU_TRY(s.begin(e));
                CBINFER_CUDA_TRY(launch_im2col(ctx->dt, &g, src, rows, r0, m, ctx->d_col,
                                               ctx->stream),
                                 e, where);
                CU_TRY(s.end(e));
            }
            /* Row-major Y[m][cout] = X[m][k] * W[cout][k]^T. Read column-major,
             * the row-major Y is Y^T (cout x m, ldc cout), W is W^T (k x cout,
             * lda k) and X is X^T (k x m, ldb k), so Y^T = op_T(W^T) * X^T. */
            cu_step s(ctx, a, CBINFER_STEP_GEMM);
            CU_TRY(s.begin(e));
            CBINFER_CUBLAS_TRY(launch_gemm(ctx->cublas, ctx->precision, CUBLAS_OP_T, g.cout, m, g.k,
                                           L->d_w, g.k, ctx->d_col, g.k, ctx->d_y, g.cout),
                               e, where);
            CU_TRY(s.end(e));
        }
        {
            cu_step s(ctx, a, CBINFER_STEP_UPDATE);
            CU_TRY(s.begin(e));
            const cudaError_t rc =
                upd == CU_ROWS_OUTPUT
                    ? launch_update(ctx->dt, ctx->d_y, L->d_bias, &act, rows, r0, m, g.cout,
                                    a->out->data, ctx->stream)
                    : launch_acc_update(ctx->dt, ctx->d_y,
                                        upd == CU_ROWS_SET_ACC ? L->d_bias : NULL, &act, rows,
                                        r0, m, g.cout, acc, a->out->data, ctx->stream);
            if (rc != cudaSuccess) return cu_fail_cuda(e, rc, "launch_update", where);
            CU_TRY(s.end(e));
        }
    }
    return CBINFER_STATUS_SUCCESS;
}

int cu_is_pointwise(const cbi_cuda_conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pad_t == 0 &&
           g->pad_l == 0 && g->ho == g->h && g->wo == g->w;
}

cbinfer_status cu_change_rows(cu_ctx *ctx, cbi_op_args *a, const int32_t **rows, int64_t *n_rows,
                              int64_t *n_changed_in, int *dense, cbi_err *e)
{
    cu_layer *L = (cu_layer *)a->layer;
    const char *where = cu_name(a);
    const cbi_changes *in_chg = a->in_chg[0];
    const cbi_cuda_conv_geom g = cu_conv_geom(a);
    const int64_t npx_in = (int64_t)g.h * g.w, npx_out = (int64_t)g.ho * g.wo;
    *dense = 0;
    *rows = NULL;
    *n_rows = *n_changed_in = 0;

    /* Threshold 0 behind a change list, from an exact output, the CPU
     * follows the list (cpu_conv.c, follow_list), and so does its first
     * frame above 0 again: every listed pixel counts as changed. Here a tau
     * below 0 passes them all through detection, and the state takes them.
     * An input changed everywhere right after runs dense, as on the CPU. */
    const int follow = !in_chg->all && (L->followed || (a->threshold == 0.f && L->exact));
    if (a->first || (L->followed && in_chg->all)) {
        /* First frame: dense, the state starts as the input, the map clean. */
        CBINFER_CUDA_TRY(cudaMemcpyAsync(L->d_state, a->in[0]->data,
                                         (size_t)npx_in * g.cin * ctx->elem_bytes,
                                         cudaMemcpyDeviceToDevice, ctx->stream),
                         e, where);
        CBINFER_CUDA_TRY(cudaMemsetAsync(L->d_map, 0, (size_t)npx_out, ctx->stream), e, where);
        a->out_chg->all = 1;
        a->stats->changed_in_px = npx_in;
        if (!a->first) a->stats->ran_dense = 1;
        L->exact = 1;
        L->followed = 0;
        *dense = 1;
        return CBINFER_STATUS_SUCCESS;
    }
    L->followed = follow && a->threshold == 0.f;
    if (!in_chg->all && in_chg->count > 0 && !in_chg->idx)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s: change list without indices",
                        where);

    const int32_t *idx = L->d_idx;
    int64_t n = 0, n_in = 0;
    if (a->reuse_indices && !in_chg->all && cu_is_pointwise(&g)) {
        /* Sec. III-E case 2: the producer's indices are this layer's (when
         * following too: Eq. 4 of a pointwise conv is the list itself); the
         * state follows them so detection can resume at any frame. */
        cu_step s(ctx, a, CBINFER_STEP_EXTRACT);
        CU_TRY(s.begin(e));
        CBINFER_CUDA_TRY(launch_copy_pixels(ctx->dt, a->in[0]->data, L->d_state, in_chg->idx,
                                            in_chg->count, g.cin, ctx->stream),
                         e, where);
        CU_TRY(s.end(e));
        idx = in_chg->idx;
        n = n_in = in_chg->count;
    } else if (in_chg->all || in_chg->count > 0) {
        const int64_t n_test = in_chg->all ? npx_in : in_chg->count;
        const float tau = follow ? -1.f : a->threshold;
        if (!follow && a->threshold != 0.f) L->exact = 0;
        {
            cu_step s(ctx, a, CBINFER_STEP_CHANGE_DETECT);
            CU_TRY(s.begin(e));
            CBINFER_CUDA_TRY(cudaMemsetAsync(ctx->d_counts, 0, sizeof(int32_t), ctx->stream), e,
                             where);
            CBINFER_CUDA_TRY(launch_change_detect(ctx->dt, &g, a->in[0]->data, L->d_state,
                                                  in_chg->all ? NULL : in_chg->idx, n_test,
                                                  tau, a->feed_forward, L->d_map,
                                                  ctx->d_counts, ctx->stream),
                             e, where);
            CU_TRY(s.end(e));
        }
        {
            cu_step s(ctx, a, CBINFER_STEP_EXTRACT);
            CU_TRY(s.begin(e));
            /* The changed-input count goes to pinned memory on the stream
             * first; the extraction returns only after the stream has
             * drained (copy_if waits for it to read its count), so the copy
             * is complete and h_counts[0] valid with no wait of its own. */
            CBINFER_CUDA_TRY(cudaMemcpyAsync(ctx->h_counts, ctx->d_counts, sizeof(int32_t),
                                             cudaMemcpyDeviceToHost, ctx->stream),
                             e, where);
            CU_TRY(cu_extract_indices(ctx, L->d_map, npx_out, L->d_idx, &n, where, e));
            n_in = ctx->h_counts[0];
            if (n < 0 || n > npx_out || n_in < 0 || n_in > n_test)
                return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                                "node %s: read back %lld changed of %lld outputs", where,
                                (long long)n, (long long)npx_out);
            CBINFER_CUDA_TRY(launch_clear_map(L->d_map, L->d_idx, n, ctx->stream), e, where);
            CU_TRY(s.end(e));
        }
    }
    /* Otherwise the producer rewrote no pixel: nothing can have changed. */

    if (a->dense_fallback && (double)n > (double)a->break_even * (double)npx_out) {
        /* Worst case (camera motion, scene cut): past the break-even share
         * the dense path is cheaper. The count is already on the host and the
         * map already cleared; the state takes the input everywhere, so the
         * dense output is the convolution of the state (closed loop). */
        CBINFER_CUDA_TRY(cudaMemcpyAsync(L->d_state, a->in[0]->data,
                                         (size_t)npx_in * g.cin * ctx->elem_bytes,
                                         cudaMemcpyDeviceToDevice, ctx->stream),
                         e, where);
        /* Following, the outputs the list reaches are handed on, as on
         * the CPU. */
        a->out_chg->all = !follow;
        a->out_chg->idx = follow ? L->d_idx : NULL;
        a->out_chg->count = follow ? n : 0;
        a->stats->changed_in_px = n_in;
        a->stats->ran_dense = 1;
        L->exact = 1;
        *dense = 1;
        return CBINFER_STATUS_SUCCESS;
    }
    *rows = idx;
    *n_rows = n;
    *n_changed_in = n_in;
    return CBINFER_STATUS_SUCCESS;
}

void cu_change_done(cbi_op_args *a, const int32_t *rows, int64_t n, int64_t n_changed_in)
{
    const cbi_cuda_conv_geom g = cu_conv_geom(a);
    a->out_chg->all = 0;
    a->out_chg->idx = (int32_t *)rows;
    a->out_chg->count = n;
    a->stats->changed_in_px = n_changed_in;
    a->stats->changed_px = n;
    a->stats->macs = n * g.k * g.cout;
}

cbinfer_status cu_conv_change(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cu_ctx *ctx = (cu_ctx *)bctx;
    CU_TRY(cu_check_args(a, 1, e));
    cu_layer *L = (cu_layer *)a->layer;
    if (!L || !L->d_state || !L->d_map || !L->d_idx || !a->out_chg || !a->in_chg[0])
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s: no change-based conv state",
                        cu_name(a));
    if (a->policy && cbi_policy_is_delta(a->policy)) return cu_conv_delta(ctx, a, e);
    const int32_t *rows = NULL;
    int64_t n = 0, n_in = 0;
    int dense = 0;
    CU_TRY(cu_change_rows(ctx, a, &rows, &n, &n_in, &dense, e));
    if (dense) return cu_conv_dense(bctx, a, e);
    CU_TRY(cu_conv_rows(ctx, a, L->d_state, rows, n, CU_ROWS_OUTPUT, NULL, e));
    cu_change_done(a, rows, n, n_in);
    return CBINFER_STATUS_SUCCESS;
}
