/*
 * Dense convolution baseline (CBI_K_CONV_DENSE) with cuDNN.
 *
 * Layout: activations NHWC (CUDNN_TENSOR_NHWC) and weights [Cout][kh][kw][Cin],
 * which is exactly cuDNN's NHWC filter layout, so the network's tensors are
 * used as they are. The algorithm is chosen once per layer in layer_create
 * with cudnnFindConvolutionForwardAlgorithm; its workspace is one buffer of
 * the context, grown to the largest layer's need at creation time.
 *
 * Precision per context:
 *   FP32: float data, float compute, CUDNN_FMA_MATH (no TF32), and only the
 *         GEMM-like algorithms (implicit GEMM, precomputed implicit GEMM, GEMM,
 *         direct), whose error is that of a direct float summation; FFT and
 *         Winograd trade accuracy for speed and are left out.
 *   TF32: float data, float compute, CUDNN_TENSOR_OP_MATH (TF32 tensor cores,
 *         no conversion to half).
 *   FP16: half data, float compute (pseudo-half), CUDNN_TENSOR_OP_MATH.
 * For TF32/FP16 the math type of the chosen result is applied (it may be
 * CUDNN_DEFAULT_MATH for algorithms without tensor-core kernels).
 *
 * Bias + activation: fused through cudnnConvolutionBiasActivationForward for
 * ReLU (and for no activation when the algorithm is IMPLICIT_PRECOMP_GEMM,
 * the only one cuDNN allows with IDENTITY), in FP32/TF32 (float bias).
 * Otherwise, or if cuDNN rejects the configuration at run time (NOT_SUPPORTED
 * or BAD_PARAM, before launching anything), the convolution
 * is followed by launch_bias_act. Layers cuDNN cannot express (asymmetric
 * pads that change the output size, negative pads, configurations for which
 * no algorithm runs within the workspace limit) run the im2col + GEMM path
 * over all output pixels instead, the same path as the change-based GEMM.
 */
#include <stdlib.h>

#include "cuda_backend.cuh"

/* Largest workspace a layer's algorithm may ask for. */
#define CU_WS_LIMIT_BYTES ((size_t)512 << 20)

/* NOT_SUPPORTED, or one of its cuDNN 9 refinements (3001..3999). */
static int cu_cudnn_unsupported(cudnnStatus_t rc)
{
#if CUDNN_MAJOR >= 9
    return (int)rc >= 3000 && (int)rc < 4000;
#else
    return rc == CUDNN_STATUS_NOT_SUPPORTED;
#endif
}

/* BAD_PARAM, or one of its cuDNN 9 refinements (2001..2999). */
static int cu_cudnn_bad_param(cudnnStatus_t rc)
{
#if CUDNN_MAJOR >= 9
    return (int)rc >= 2000 && (int)rc < 3000;
#else
    return rc == CUDNN_STATUS_BAD_PARAM;
#endif
}

int cu_cudnn_rejected(cudnnStatus_t rc)
{
    return cu_cudnn_unsupported(rc) || cu_cudnn_bad_param(rc);
}

static int cu_strict_fp32_algo(cudnnConvolutionFwdAlgo_t algo)
{
    return algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM ||
           algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
           algo == CUDNN_CONVOLUTION_FWD_ALGO_GEMM || algo == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
}

void cu_cudnn_teardown(cu_layer *L)
{
    if (L->x_desc) cudnnDestroyTensorDescriptor(L->x_desc);
    if (L->y_desc) cudnnDestroyTensorDescriptor(L->y_desc);
    if (L->b_desc) cudnnDestroyTensorDescriptor(L->b_desc);
    if (L->w_desc) cudnnDestroyFilterDescriptor(L->w_desc);
    if (L->conv_desc) cudnnDestroyConvolutionDescriptor(L->conv_desc);
    if (L->act_desc) cudnnDestroyActivationDescriptor(L->act_desc);
    L->x_desc = L->y_desc = L->b_desc = NULL;
    L->w_desc = NULL;
    L->conv_desc = NULL;
    L->act_desc = NULL;
    L->use_cudnn = L->fused = 0;
}

cbinfer_status cu_cudnn_setup(cu_ctx *ctx, int node_id, int images, cu_layer *L, cbi_err *e)
{
    const cbi_node *n = &ctx->cfg.net->nodes[node_id];
    const cbi_node_plan *p = &ctx->cfg.plans[node_id];
    const char *where = n->name ? n->name : "?";
    const int sh = n->win.sh > 0 ? n->win.sh : 1, sw = n->win.sw > 0 ? n->win.sw : 1;
    const int dh = n->win.dh > 0 ? n->win.dh : 1, dw = n->win.dw > 0 ? n->win.dw : 1;
    const cudnnDataType_t dtype = ctx->dt == CBI_CUDA_F16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
    L->use_cudnn = 0;
    L->fused = 0;
    L->images = images;
    if (p->pad_t < 0 || p->pad_l < 0) return CBINFER_STATUS_SUCCESS; /* im2col path */

    CBINFER_CUDNN_TRY(cudnnCreateTensorDescriptor(&L->x_desc), e, where);
    CBINFER_CUDNN_TRY(cudnnCreateTensorDescriptor(&L->y_desc), e, where);
    CBINFER_CUDNN_TRY(cudnnCreateFilterDescriptor(&L->w_desc), e, where);
    CBINFER_CUDNN_TRY(cudnnCreateConvolutionDescriptor(&L->conv_desc), e, where);
    CBINFER_CUDNN_TRY(cudnnSetTensor4dDescriptor(L->x_desc, CUDNN_TENSOR_NHWC, dtype, images,
                                                 p->in.c, p->in.h, p->in.w),
                      e, where);
    CBINFER_CUDNN_TRY(cudnnSetTensor4dDescriptor(L->y_desc, CUDNN_TENSOR_NHWC, dtype, images,
                                                 p->out.c, p->out.h, p->out.w),
                      e, where);
    /* Grouped: the filter holds Cin/group channels and the descriptor the
     * group count ([Cout][kh][kw][Cin/group] is cuDNN's grouped NHWC filter). */
    CBINFER_CUDNN_TRY(cudnnSetFilter4dDescriptor(L->w_desc, dtype, CUDNN_TENSOR_NHWC, p->out.c,
                                                 cbi_conv_group_cin(n, p->in.c), n->win.kh,
                                                 n->win.kw),
                      e, where);
    /* Top/left pads on both sides: when the bottom/right pads differ, the
     * output size check below decides whether cuDNN computes the same rows. */
    CBINFER_CUDNN_TRY(cudnnSetConvolution2dDescriptor(L->conv_desc, p->pad_t, p->pad_l, sh, sw, dh,
                                                      dw, CUDNN_CROSS_CORRELATION,
                                                      CUDNN_DATA_FLOAT),
                      e, where);
    const cudnnMathType_t math =
        ctx->precision == CBINFER_PRECISION_FP32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
    CBINFER_CUDNN_TRY(cudnnSetConvolutionMathType(L->conv_desc, math), e, where);
    CBINFER_CUDNN_TRY(cudnnSetConvolutionGroupCount(L->conv_desc, cbi_conv_groups(n)), e, where);

    int on = 0, oc = 0, oh = 0, ow = 0;
    CBINFER_CUDNN_TRY(cudnnGetConvolution2dForwardOutputDim(L->conv_desc, L->x_desc, L->w_desc,
                                                            &on, &oc, &oh, &ow),
                      e, where);
    if (on != images || oc != p->out.c || oh != p->out.h || ow != p->out.w) {
        /* Asymmetric pads that change the output size: im2col path. */
        cu_cudnn_teardown(L);
        return CBINFER_STATUS_SUCCESS;
    }

    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int returned = 0;
    cudnnStatus_t rc = cudnnFindConvolutionForwardAlgorithm(ctx->cudnn, L->x_desc, L->w_desc,
                                                            L->conv_desc, L->y_desc,
                                                            CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                            &returned, perf);
    if (cu_cudnn_unsupported(rc) || cu_cudnn_bad_param(rc)) {
        cu_cudnn_teardown(L); /* not a cuDNN configuration: im2col path */
        return CBINFER_STATUS_SUCCESS;
    }
    if (rc != CUDNN_STATUS_SUCCESS)
        return cu_fail_cudnn(e, rc, "cudnnFindConvolutionForwardAlgorithm", where);
    int pick = -1;
    for (int i = 0; i < returned && pick < 0; ++i) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > CU_WS_LIMIT_BYTES)
            continue;
        if (ctx->precision == CBINFER_PRECISION_FP32 &&
            (!cu_strict_fp32_algo(perf[i].algo) || perf[i].mathType == CUDNN_TENSOR_OP_MATH ||
             perf[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))
            continue;
        pick = i;
    }
    if (pick < 0) {
        cu_cudnn_teardown(L); /* no algorithm ran within the limits: im2col path */
        return CBINFER_STATUS_SUCCESS;
    }
    L->algo = perf[pick].algo;
    if (ctx->precision != CBINFER_PRECISION_FP32)
        CBINFER_CUDNN_TRY(cudnnSetConvolutionMathType(L->conv_desc, perf[pick].mathType), e,
                          where);
    size_t ws = 0;
    rc = cudnnGetConvolutionForwardWorkspaceSize(ctx->cudnn, L->x_desc, L->w_desc, L->conv_desc,
                                                 L->y_desc, L->algo, &ws);
    if (cu_cudnn_unsupported(rc)) {
        cu_cudnn_teardown(L); /* this shape is not for cuDNN: im2col path */
        return CBINFER_STATUS_SUCCESS;
    }
    if (rc != CUDNN_STATUS_SUCCESS)
        return cu_fail_cudnn(e, rc, "cudnnGetConvolutionForwardWorkspaceSize", where);
    CU_TRY(cu_grow(&ctx->d_ws, &ctx->ws_bytes, ws, where, e));

    const int relu = n->act.kind == CBI_ACT_RELU;
    const int identity =
        n->act.kind == CBI_ACT_NONE && L->algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
    if ((relu || identity) && ctx->dt == CBI_CUDA_F32) {
        CBINFER_CUDNN_TRY(cudnnCreateTensorDescriptor(&L->b_desc), e, where);
        CBINFER_CUDNN_TRY(cudnnSetTensor4dDescriptor(L->b_desc, CUDNN_TENSOR_NCHW,
                                                     CUDNN_DATA_FLOAT, 1, p->out.c, 1, 1),
                          e, where);
        CBINFER_CUDNN_TRY(cudnnCreateActivationDescriptor(&L->act_desc), e, where);
        CBINFER_CUDNN_TRY(cudnnSetActivationDescriptor(L->act_desc,
                                                       relu ? CUDNN_ACTIVATION_RELU
                                                            : CUDNN_ACTIVATION_IDENTITY,
                                                       CUDNN_NOT_PROPAGATE_NAN, 0.0),
                          e, where);
        L->fused = 1;
    }
    L->use_cudnn = 1;
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cu_conv_cudnn(cu_ctx *ctx, const cbi_op_args *a, cu_layer *D, const cu_layer *W,
                             const cbi_op_args *timer, cbi_err *e)
{
    const cbi_cuda_conv_geom g = cu_conv_geom(a);
    const char *where = cu_name(a);
    const float one = 1.f, zero = 0.f;
    const void *x = a->in[0]->data;
    void *y = a->out->data;
    {
        cu_step s(ctx, timer, CBINFER_STEP_DENSE);
        CU_TRY(s.begin(e));
        if (D->fused) {
            cudnnStatus_t rc = cudnnConvolutionBiasActivationForward(
                ctx->cudnn, &one, D->x_desc, x, D->w_desc, W->d_w, D->conv_desc, D->algo,
                ctx->d_ws, ctx->ws_bytes, &zero, D->y_desc, y, D->b_desc, W->d_bias, D->act_desc,
                D->y_desc, y);
            if (cu_cudnn_rejected(rc)) {
                /* This configuration is rejected before anything is launched:
                 * from now on convolution, then launch_bias_act. */
                D->fused = 0;
            } else if (rc != CUDNN_STATUS_SUCCESS) {
                return cu_fail_cudnn(e, rc, "cudnnConvolutionBiasActivationForward", where);
            }
        }
        if (!D->fused)
            CBINFER_CUDNN_TRY(cudnnConvolutionForward(ctx->cudnn, &one, D->x_desc, x, D->w_desc,
                                                      W->d_w, D->conv_desc, D->algo, ctx->d_ws,
                                                      ctx->ws_bytes, &zero, D->y_desc, y),
                              e, where);
        CU_TRY(s.end(e));
    }
    if (!D->fused) {
        cbi_cuda_act act;
        CU_TRY(cu_act_of(a, &act, e));
        cu_step s(ctx, timer, CBINFER_STEP_UPDATE);
        CU_TRY(s.begin(e));
        CBINFER_CUDA_TRY(launch_bias_act(ctx->dt, y, W->d_bias, &act,
                                         (int64_t)g.ho * g.wo * D->images, g.cout, ctx->stream),
                         e, where);
        CU_TRY(s.end(e));
    }
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cu_conv_dense(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cu_ctx *ctx = (cu_ctx *)bctx;
    CU_TRY(cu_check_args(a, 1, e));
    cu_layer *L = (cu_layer *)a->layer;
    if (!L || !L->d_w || !L->d_bias)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s: Conv without device weights",
                        cu_name(a));
    const cbi_cuda_conv_geom g = cu_conv_geom(a);
    const int64_t npx = (int64_t)g.ho * g.wo;
    if (L->use_cudnn)
        CU_TRY(cu_conv_cudnn(ctx, a, L, L, a, e));
    else
        CU_TRY(cu_conv_rows(ctx, a, a->in[0]->data, NULL, npx, CU_ROWS_OUTPUT, NULL, e));
    a->stats->changed_px = npx;
    a->stats->macs = npx * g.k * g.cout;
    return CBINFER_STATUS_SUCCESS;
}
