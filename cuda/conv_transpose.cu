/*
 * ConvTranspose (CBI_K_CONV_TRANSPOSE), dense: the twin of
 * cpu_conv_transpose(), NHWC, weights [cin][kh][kw][cout].
 *
 * GEMM + col2im, as the CPU: Y[rows][kh*kw*cout] = X[rows][cin] .
 * W[cin][kh*kw*cout] (cuBLAS, float result), then every output value gathers
 * its taps from Y. The gather (one thread per output value, no atomics) adds
 * the taps in the CPU's order (ascending input pixel), starting from the
 * bias, and applies the activation last, so each output is written once.
 *
 * The output is produced in bands of output rows whose input rows' GEMM rows
 * fit the context's scratch (ctx->d_y); for the test and sample sizes this is
 * a single band. Input rows shared by two bands are multiplied twice.
 */
#include "cuda_backend.cuh"

/*
 * convt_gather_kernel
 *   Grid/block: 1-D grid-stride, 256 threads, one thread per output value of
 *   the band [oy0, oy1) x wo x cout (NHWC order).
 *   Output (oy, ox, o) = bias[o] + sum over taps (ky, kx) with
 *   iy*sh + ky*dh - pad_t = oy and ix*sw + kx*dw - pad_l = ox of
 *   ycol[(iy - iy_lo) * w + ix][(ky*kw + kx)*cout + o], ky and kx descending
 *   (= input pixels ascending, the CPU's summation order); then act.
 *   Shared memory: none. Layout: NHWC output, row-major ycol: consecutive
 *   threads (consecutive o) read consecutive floats of one GEMM row.
 *   Alignment: element alignment only.
 */
template <typename T>
__global__ void convt_gather_kernel(cbi_cuda_conv_geom g, const float *__restrict__ ycol,
                                    int iy_lo, int oy0, int oy1, const float *__restrict__ bias,
                                    cbi_cuda_act act, T *__restrict__ out)
{
    CU_GRID_STRIDE(i, (int64_t)(oy1 - oy0) * g.wo * g.cout)
    {
        const int64_t p = i / g.cout;
        const int o = (int)(i - p * g.cout);
        const int oy = oy0 + (int)(p / g.wo), ox = (int)(p % g.wo);
        float v = bias[o];
        for (int ky = g.kh - 1; ky >= 0; --ky) {
            const int ty = oy + g.pad_t - ky * g.dh;
            if (ty < 0 || ty % g.sh) continue;
            const int iy = ty / g.sh;
            if (iy >= g.h) continue;
            for (int kx = g.kw - 1; kx >= 0; --kx) {
                const int tx = ox + g.pad_l - kx * g.dw;
                if (tx < 0 || tx % g.sw) continue;
                const int ix = tx / g.sw;
                if (ix >= g.w) continue;
                v += ycol[((int64_t)(iy - iy_lo) * g.w + ix) * g.ncol + (ky * g.kw + kx) * g.cout +
                          o];
            }
        }
        cu_st(out, ((int64_t)oy * g.wo + ox) * g.cout + o, cu_activate(act, o, v));
    }
}

extern "C" cudaError_t launch_convt_gather(cbi_cuda_dtype dt, const cbi_cuda_conv_geom *g,
                                           const float *ycol, int iy_lo, int oy0, int oy1,
                                           const float *bias, const cbi_cuda_act *act, void *out,
                                           cudaStream_t stream)
{
    const int64_t total = (int64_t)(oy1 - oy0) * g->wo * g->cout;
    if (total <= 0) return cudaSuccess;
    if (dt == CBI_CUDA_F16)
        convt_gather_kernel<__half><<<cu_blocks(total), CU_THREADS, 0, stream>>>(
            *g, ycol, iy_lo, oy0, oy1, bias, *act, (__half *)out);
    else
        convt_gather_kernel<float><<<cu_blocks(total), CU_THREADS, 0, stream>>>(
            *g, ycol, iy_lo, oy0, oy1, bias, *act, (float *)out);
    return cudaGetLastError();
}

/* Input rows [*lo, *hi] that output rows [oy0, oy1) read (empty: *lo > *hi):
 * iy = (oy + pad_t - ky*dh) / sh for ky in [0, kh). */
static void convt_rows(const cbi_cuda_conv_geom *g, int oy0, int oy1, int *lo, int *hi)
{
    const int a = oy0 + g->pad_t - (g->kh - 1) * g->dh; /* smallest numerator */
    const int b = oy1 - 1 + g->pad_t;                   /* largest numerator */
    *lo = a <= 0 ? 0 : (a + g->sh - 1) / g->sh;
    *hi = b < 0 ? -1 : b / g->sh;
    if (*hi > g->h - 1) *hi = g->h - 1;
}

cbinfer_status cu_conv_transpose(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cu_ctx *ctx = (cu_ctx *)bctx;
    CU_TRY(cu_check_args(a, 1, e));
    const cbi_node *n = a->node;
    const cbi_node_plan *p = a->plan;
    const cu_layer *L = (const cu_layer *)a->layer;
    const char *where = cu_name(a);
    if (!L || !L->d_w || !L->d_bias || p->in.c != n->cin || p->out.c != n->cout ||
        n->win.kh < 1 || n->win.kw < 1)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                        "node %s (ConvTranspose): no device weights or shape mismatch", where);
    const cbi_cuda_conv_geom g = cu_conv_geom(a);
    cbi_cuda_act act;
    CU_TRY(cu_act_of(a, &act, e));

    /* Input rows whose GEMM rows fit the scratch at once. */
    const int64_t cap_rows = (int64_t)(ctx->y_floats / ((size_t)g.w * g.ncol));
    const size_t elem = ctx->elem_bytes;
    cu_step s(ctx, a, CBINFER_STEP_DENSE);
    CU_TRY(s.begin(e));
    for (int oy0 = 0; oy0 < g.ho;) {
        int oy1 = oy0 + 1, lo, hi;
        convt_rows(&g, oy0, oy1, &lo, &hi);
        if (hi - lo + 1 > cap_rows)
            return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                            "node %s (ConvTranspose): scratch holds %lld input rows, need %d",
                            where, (long long)cap_rows, hi - lo + 1);
        while (oy1 < g.ho) {
            int lo2, hi2;
            convt_rows(&g, oy0, oy1 + 1, &lo2, &hi2);
            if (hi2 - lo2 + 1 > cap_rows) break;
            ++oy1;
            lo = lo2;
            hi = hi2;
        }
        if (hi >= lo) {
            /* Column-major: Y^T (ncol x rows) = W^T (ncol x cin, ld ncol) *
             * X^T (cin x rows, ld cin), i.e. row-major Y = X . W. */
            const int rows = (hi - lo + 1) * g.w;
            const char *x = (const char *)a->in[0]->data + (size_t)lo * g.w * g.cin * elem;
            CBINFER_CUBLAS_TRY(launch_gemm(ctx->cublas, ctx->precision, CUBLAS_OP_N, g.ncol, rows,
                                           g.cin, L->d_w, g.ncol, x, g.cin, ctx->d_y, g.ncol),
                               e, where);
        }
        CBINFER_CUDA_TRY(launch_convt_gather(ctx->dt, &g, ctx->d_y, lo, oy0, oy1, L->d_bias, &act,
                                             a->out->data, ctx->stream),
                         e, where);
        oy0 = oy1;
    }
    CU_TRY(s.end(e));
    a->stats->macs = (int64_t)g.h * g.w * g.cin * g.ncol;
    a->stats->changed_px = (int64_t)g.ho * g.wo;
    return CBINFER_STATUS_SUCCESS;
}
