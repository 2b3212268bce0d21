/*
 * The CUDA backend table: context (one non-blocking CUDA stream, one cuBLAS
 * and one cuDNN handle bound to it, shared scratch sized for the largest
 * layer), device memory, pinned-staged upload/download with float <-> half
 * conversion, per-layer state, error forwarding and step timing.
 *
 * Every buffer is allocated in create() or layer_create(); kernels never
 * allocate (thrust::copy_if of index extraction included: its scratch is
 * preallocated). All work runs on the context's stream; the host waits only
 * where a change-based layer learns its change count (inside the extraction's
 * thrust::copy_if, once per change-based Conv / pool layer), in synchronize(),
 * in download(), and, when statistics are collected, after each timed step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nvtx3/nvToolsExt.h>

#include "cuda_backend.cuh"

/* Partial im2col scratch: rows beyond it are processed in more chunks. */
#define CU_COL_BYTES ((size_t)128 << 20)
/* ConvTranspose GEMM scratch target (bands of output rows beyond it). */
#define CU_CONVT_BYTES ((size_t)128 << 20)
#define CU_MIN_CHUNK_PX 256

/* ------------------------------------------------------------- errors ---- */

static cbinfer_status cu_status_of(cudaError_t rc)
{
    return rc == cudaErrorMemoryAllocation ? CBINFER_STATUS_OUT_OF_MEMORY
                                           : CBINFER_STATUS_BACKEND_ERROR;
}

cbinfer_status cu_fail_cuda(cbi_err *e, cudaError_t rc, const char *call, const char *where)
{
    return cbi_fail(e, cu_status_of(rc), "%s: %s failed: %s (%s)", where, call,
                    cudaGetErrorName(rc), cudaGetErrorString(rc));
}

static const char *cu_cublas_string(cublasStatus_t rc)
{
    switch (rc) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "unknown cuBLAS status";
    }
}

cbinfer_status cu_fail_cublas(cbi_err *e, cublasStatus_t rc, const char *call, const char *where)
{
    return cbi_fail(e,
                    rc == CUBLAS_STATUS_ALLOC_FAILED ? CBINFER_STATUS_OUT_OF_MEMORY
                                                     : CBINFER_STATUS_BACKEND_ERROR,
                    "%s: %s failed: %s (%d)", where, call, cu_cublas_string(rc), (int)rc);
}

static int cu_cudnn_oom(cudnnStatus_t rc)
{
#if CUDNN_MAJOR >= 9
    return rc == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
           rc == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED;
#else
    return rc == CUDNN_STATUS_ALLOC_FAILED;
#endif
}

cbinfer_status cu_fail_cudnn(cbi_err *e, cudnnStatus_t rc, const char *call, const char *where)
{
    return cbi_fail(e, cu_cudnn_oom(rc) ? CBINFER_STATUS_OUT_OF_MEMORY : CBINFER_STATUS_BACKEND_ERROR,
                    "%s: %s failed: %s (%d)", where, call, cudnnGetErrorString(rc), (int)rc);
}

/* ------------------------------------------------------------ helpers ---- */

cbinfer_status cu_check_args(const cbi_op_args *a, int n_in_min, cbi_err *e)
{
    if (!a || !a->node || !a->plan || !a->out || !a->out->data || !a->stats)
        return cbi_fail(e, CBINFER_STATUS_NULL_ARGUMENT, "node %s: missing op arguments",
                        cu_name(a));
    if (a->n_in < n_in_min)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (%s): %d inputs, need %d",
                        cu_name(a), a->node->op_type, a->n_in, n_in_min);
    for (int i = 0; i < a->n_in; ++i)
        if (!a->in[i] || !a->in[i]->data)
            return cbi_fail(e, CBINFER_STATUS_NULL_ARGUMENT, "node %s: input %d missing",
                            cu_name(a), i);
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cu_act_of(const cbi_op_args *a, cbi_cuda_act *act, cbi_err *e)
{
    const cbi_activation *h = &a->node->act;
    const cu_layer *L = (const cu_layer *)a->layer;
    act->kind = (int)h->kind;
    act->alpha = h->alpha;
    act->lo = h->lo;
    act->hi = h->hi;
    act->slope = NULL;
    act->n_slope = h->n_slope;
    if (h->kind == CBI_ACT_PRELU) {
        if (!L || !L->d_slope || h->n_slope < 1)
            return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s: PReLU without device slopes",
                            cu_name(a));
        act->slope = L->d_slope;
    }
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cu_sync(cu_ctx *ctx, const char *where, cbi_err *e)
{
    CBINFER_CUDA_TRY(cudaStreamSynchronize(ctx->stream), e, where);
    ctx->host_syncs++;
    ctx->upload_pending = 0;
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cu_grow(void **ptr, size_t *have_bytes, size_t need_bytes, const char *what,
                       cbi_err *e)
{
    if (need_bytes <= *have_bytes && *ptr) return CBINFER_STATUS_SUCCESS;
    if (need_bytes < 256) need_bytes = 256;
    /* Creation time only: cudaFree waits for the device, nothing is queued. */
    CBINFER_CUDA_TRY(cudaFree(*ptr), e, what);
    *ptr = NULL;
    *have_bytes = 0;
    CBINFER_CUDA_TRY(cudaMalloc(ptr, need_bytes), e, what);
    *have_bytes = need_bytes;
    return CBINFER_STATUS_SUCCESS;
}

static int cu_pos(int v)
{
    return v > 0 ? v : 1;
}

cbi_cuda_conv_geom cu_conv_geom(const cbi_op_args *a)
{
    const cbi_node *n = a->node;
    const cbi_node_plan *p = a->plan;
    cbi_cuda_conv_geom g;
    g.cin = p->in.c;
    g.h = p->in.h;
    g.w = p->in.w;
    g.cout = p->out.c;
    g.ho = p->out.h;
    g.wo = p->out.w;
    g.kh = n->win.kh;
    g.kw = n->win.kw;
    g.sh = cu_pos(n->win.sh);
    g.sw = cu_pos(n->win.sw);
    g.dh = cu_pos(n->win.dh);
    g.dw = cu_pos(n->win.dw);
    g.pad_t = p->pad_t;
    g.pad_l = p->pad_l;
    g.group = cbi_conv_groups(n);
    g.k = g.kh * g.kw * (g.cin / g.group);
    g.ncol = g.kh * g.kw * g.cout;
    return g;
}

/* --------------------------------------------------------- step timer ---- */

cu_step::cu_step(cu_ctx *ctx, const cbi_op_args *a, cbinfer_step step)
    : ctx_(ctx), a_(a), step_(step)
{
}

cu_step::~cu_step()
{
    if (open_) nvtxRangePop();
}

cbinfer_status cu_step::begin(cbi_err *e)
{
    char name[192];
    const char *step_name = cbinfer_step_name(step_);
    snprintf(name, sizeof name, "%s/%s", cu_name(a_), step_name ? step_name : "?");
    nvtxRangePushA(name);
    open_ = true;
    if (a_->collect_stats && a_->stats)
        CBINFER_CUDA_TRY(cudaEventRecord(ctx_->ev_start, ctx_->stream), e, cu_name(a_));
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cu_step::end(cbi_err *e)
{
    if (a_->collect_stats && a_->stats) {
        float ms = 0.f;
        CBINFER_CUDA_TRY(cudaEventRecord(ctx_->ev_stop, ctx_->stream), e, cu_name(a_));
        CBINFER_CUDA_TRY(cudaEventSynchronize(ctx_->ev_stop), e, cu_name(a_));
        ctx_->host_syncs++;
        ctx_->upload_pending = 0;
        CBINFER_CUDA_TRY(cudaEventElapsedTime(&ms, ctx_->ev_start, ctx_->ev_stop), e,
                         cu_name(a_));
        a_->stats->step_ms[step_] += (double)ms;
    }
    if (open_) {
        nvtxRangePop();
        open_ = false;
    }
    return CBINFER_STATUS_SUCCESS;
}

/* ------------------------------------------------------------ context ---- */

extern "C" int cbi_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* not sticky; leave no error behind */
        return 0;
    }
    return n > 0 ? n : 0;
}

static size_t shape_elems(cbi_shape s)
{
    return (size_t)s.c * (size_t)s.h * (size_t)s.w;
}

/* The context's device as the thread's current one; returns the device to
 * restore, or -1 when it already was current. */
static int cu_bind(void *bctx)
{
    const cu_ctx *ctx = (const cu_ctx *)bctx;
    int cur = -1;
    if (cudaGetDevice(&cur) != cudaSuccess) {
        (void)cudaGetLastError(); /* the next call on the device reports it */
        return -1;
    }
    if (cur == ctx->device) return -1;
    if (cudaSetDevice(ctx->device) != cudaSuccess) (void)cudaGetLastError();
    return cur;
}

static void cu_unbind(void *bctx, int saved)
{
    (void)bctx;
    if (saved >= 0 && cudaSetDevice(saved) != cudaSuccess) (void)cudaGetLastError();
}

static void cu_destroy(void *bctx)
{
    cu_ctx *ctx = (cu_ctx *)bctx;
    if (!ctx) return;
    const int saved = cu_bind(ctx);
    if (ctx->stream) (void)cudaStreamSynchronize(ctx->stream);
    cudaFree(ctx->d_col);
    cudaFree(ctx->d_y);
    cudaFree(ctx->d_ws);
    cudaFree(ctx->d_sel_tmp);
    cudaFree(ctx->d_counts);
    cudaFree(ctx->d_stage);
    cudaFreeHost(ctx->h_counts);
    cudaFree(ctx->d_dstat);
    cudaFreeHost(ctx->h_dstat);
    cudaFreeHost(ctx->h_stage);
    if (ctx->ev_upload) cudaEventDestroy(ctx->ev_upload);
    if (ctx->ev_start) cudaEventDestroy(ctx->ev_start);
    if (ctx->ev_stop) cudaEventDestroy(ctx->ev_stop);
    if (ctx->cudnn) cudnnDestroy(ctx->cudnn);
    if (ctx->cublas) cublasDestroy(ctx->cublas);
    if (ctx->stream && ctx->own_stream) cudaStreamDestroy(ctx->stream);
    (void)cudaGetLastError(); /* teardown errors have nowhere to go */
    cu_unbind(ctx, saved);
    free(ctx);
}

/* Sizes of the shared scratch, for the largest layers. */
typedef struct cu_scratch {
    size_t chunk_px, max_k, y_floats, stage_floats;
} cu_scratch;

static cu_scratch cu_scratch_plan(const cbi_backend_config *cfg)
{
    const cbi_net *net = cfg->net;
    const size_t elem_bytes = cu_elem_bytes(cfg->precision);
    size_t max_k = 1, max_cout = 1, max_px = 1, convt_floats = 0, stage = 1, delta_floats = 0;
    for (int i = 0; i < net->n_nodes; ++i) {
        const cbi_node *n = &net->nodes[i];
        const cbi_node_plan *p = &cfg->plans[i];
        if (n->op == CBI_OP_CONV) {
            const size_t k = (size_t)n->win.kh * n->win.kw * p->in.c;
            const size_t px = (size_t)p->out.h * p->out.w;
            if (k > max_k) max_k = k;
            if ((size_t)p->out.c > max_cout) max_cout = (size_t)p->out.c;
            if (px > max_px) max_px = px;
            /* The delta scatter's products: kh*kw*cout floats a row, at
             * least CU_MIN_CHUNK_PX rows a chunk (conv_delta.cu). */
            const cbi_policy pol = cbi_config_policy(cfg, i);
            const size_t tc = (size_t)n->win.kh * n->win.kw * p->out.c;
            if (cfg->mode != CBINFER_MODE_DENSE && cbi_policy_uses_scatter(&pol, p->in.c) &&
                CU_MIN_CHUNK_PX * tc > delta_floats)
                delta_floats = CU_MIN_CHUNK_PX * tc;
        } else if (n->op == CBI_OP_CONV_TRANSPOSE) {
            /* A band of output rows needs at most (kh-1)*dh/sh + 1 input rows. */
            const size_t ncol = (size_t)n->win.kh * n->win.kw * p->out.c;
            const size_t min_rows =
                (size_t)((n->win.kh - 1) * cu_pos(n->win.dh) / cu_pos(n->win.sh) + 1);
            const size_t all = (size_t)p->in.h * p->in.w * ncol;
            size_t want = CU_CONVT_BYTES / sizeof(float);
            if (want < min_rows * p->in.w * ncol) want = min_rows * p->in.w * ncol;
            if (want > all) want = all;
            if (want > convt_floats) convt_floats = want;
        }
    }
    for (int v = 0; v < net->n_values; ++v)
        if (shape_elems(cfg->shapes[v]) > stage) stage = shape_elems(cfg->shapes[v]);
    size_t chunk = CU_COL_BYTES / (elem_bytes * max_k);
    if (chunk < CU_MIN_CHUNK_PX) chunk = CU_MIN_CHUNK_PX;
    if (chunk > max_px) chunk = max_px;
    cu_scratch sc;
    sc.chunk_px = chunk;
    sc.max_k = max_k;
    sc.y_floats = chunk * max_cout > convt_floats ? chunk * max_cout : convt_floats;
    if (delta_floats > sc.y_floats) sc.y_floats = delta_floats;
    sc.stage_floats = stage;
    return sc;
}

/* What cu_create_in() allocates (device and pinned host memory together). */
static size_t cu_extra_bytes(const cbi_backend_config *cfg, int threads)
{
    const cu_scratch sc = cu_scratch_plan(cfg);
    const size_t stage = cfg->precision == CBINFER_PRECISION_FP16 ? 2 : 1;
    size_t delta = 0;
    for (int i = 0; i < cfg->net->n_nodes; ++i) delta += cu_delta_extra_bytes(cfg, i);
    return sc.chunk_px * sc.max_k * cu_elem_bytes(cfg->precision) +
           (sc.y_floats + stage * sc.stage_floats) * sizeof(float) + delta;
}

static cbinfer_status cu_create_in(cu_ctx *ctx, cbi_err *e)
{
    const char *w = "cuda backend create";
    if (ctx->cfg.user_stream) {
        ctx->stream = (cudaStream_t)ctx->cfg.user_stream;
    } else {
        CBINFER_CUDA_TRY(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking), e, w);
        ctx->own_stream = 1;
    }
    CBINFER_CUBLAS_TRY(cublasCreate(&ctx->cublas), e, w);
    CBINFER_CUBLAS_TRY(cublasSetStream(ctx->cublas, ctx->stream), e, w);
    /* FP32 stays strict: TF32 only through the compute type of cublasGemmEx. */
    CBINFER_CUBLAS_TRY(cublasSetMathMode(ctx->cublas, CUBLAS_DEFAULT_MATH), e, w);
    CBINFER_CUDNN_TRY(cudnnCreate(&ctx->cudnn), e, w);
    CBINFER_CUDNN_TRY(cudnnSetStream(ctx->cudnn, ctx->stream), e, w);
    CBINFER_CUDA_TRY(cudaEventCreateWithFlags(&ctx->ev_upload, cudaEventDisableTiming), e, w);
    CBINFER_CUDA_TRY(cudaEventCreate(&ctx->ev_start), e, w);
    CBINFER_CUDA_TRY(cudaEventCreate(&ctx->ev_stop), e, w);

    const cu_scratch sc = cu_scratch_plan(&ctx->cfg);
    ctx->chunk_px = sc.chunk_px;
    ctx->max_k = sc.max_k;
    ctx->y_floats = sc.y_floats;
    ctx->stage_floats = sc.stage_floats;
    CBINFER_CUDA_TRY(cudaMalloc(&ctx->d_col, ctx->chunk_px * ctx->max_k * ctx->elem_bytes), e,
                     "im2col scratch");
    CBINFER_CUDA_TRY(cudaMalloc((void **)&ctx->d_y, ctx->y_floats * sizeof(float)), e,
                     "GEMM scratch");
    CBINFER_CUDA_TRY(cudaMalloc((void **)&ctx->d_counts, 2 * sizeof(int32_t)), e, "counts");
    CBINFER_CUDA_TRY(cudaMallocHost((void **)&ctx->h_counts, 2 * sizeof(int32_t)), e,
                     "pinned counts");
    CBINFER_CUDA_TRY(cudaMalloc((void **)&ctx->d_dstat, CU_DSTAT_COUNT * sizeof *ctx->d_dstat),
                     e, "delta counters");
    CBINFER_CUDA_TRY(cudaMallocHost((void **)&ctx->h_dstat, CU_DSTAT_COUNT * sizeof *ctx->h_dstat),
                     e, "pinned delta counters");
    CBINFER_CUDA_TRY(cudaMallocHost((void **)&ctx->h_stage, ctx->stage_floats * sizeof(float)),
                     e, "pinned staging");
    if (ctx->dt == CBI_CUDA_F16)
        CBINFER_CUDA_TRY(cudaMalloc((void **)&ctx->d_stage, ctx->stage_floats * sizeof(float)),
                         e, "conversion staging");
    CBINFER_CUDA_TRY(cudaMemsetAsync(ctx->d_counts, 0, 2 * sizeof(int32_t), ctx->stream), e, w);
    return CBINFER_STATUS_SUCCESS;
}

static cbinfer_status cu_create(const cbi_backend_config *cfg, void **out, cbi_err *e)
{
    *out = NULL;
    if ((unsigned)cfg->precision > CBINFER_PRECISION_FP16)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "cuda backend: unknown precision %d",
                        (int)cfg->precision);
    int n_dev = 0;
    cudaError_t rc = cudaGetDeviceCount(&n_dev);
    if (rc != cudaSuccess || n_dev < 1) {
        (void)cudaGetLastError();
        return cbi_fail(e, CBINFER_STATUS_BACKEND_UNAVAILABLE, "no CUDA device: %s",
                        rc != cudaSuccess ? cudaGetErrorString(rc)
                                          : "cudaGetDeviceCount found none");
    }
    int device = cfg->device, saved = -1;
    if (device == CBINFER_DEVICE_CURRENT) CBINFER_CUDA_TRY(cudaGetDevice(&device), e, "create");
    if (device < 0 || device >= n_dev)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "CUDA device %d: this machine has %d (0 to %d)",
                        device, n_dev, n_dev - 1);
    /* Created on its device; the caller's current device comes back after. */
    CBINFER_CUDA_TRY(cudaGetDevice(&saved), e, "create");
    CBINFER_CUDA_TRY(cudaSetDevice(device), e, "create (cudaSetDevice)");
    cbinfer_status st = CBINFER_STATUS_SUCCESS;
#if CUDART_VERSION >= 12080
    if (cfg->user_stream) {
        int on = -1;
        const cudaError_t rc = cudaStreamGetDevice((cudaStream_t)cfg->user_stream, &on);
        if (rc != cudaSuccess)
            st = cu_fail_cuda(e, rc, "cudaStreamGetDevice", "options.cuda_stream");
        else if (on != device)
            st = cbi_fail(e, CBINFER_STATUS_BAD_PARAM,
                          "options.cuda_stream is on device %d, the stream's device is %d", on,
                          device);
    }
#endif
    cu_ctx *ctx = st == CBINFER_STATUS_SUCCESS ? (cu_ctx *)calloc(1, sizeof *ctx) : NULL;
    if (!ctx) {
        (void)cudaSetDevice(saved);
        return st != CBINFER_STATUS_SUCCESS
                   ? st
                   : cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "cuda backend context");
    }
    ctx->cfg = *cfg;
    ctx->cfg.device = device;
    ctx->device = device;
    ctx->precision = (int)cfg->precision;
    ctx->dt = cfg->precision == CBINFER_PRECISION_FP16 ? CBI_CUDA_F16 : CBI_CUDA_F32;
    ctx->elem_bytes = cu_elem_bytes(cfg->precision);
    st = cu_create_in(ctx, e);
    if (st != CBINFER_STATUS_SUCCESS) cu_destroy(ctx);
    else *out = ctx;
    (void)cudaSetDevice(saved);
    return st;
}

/* ------------------------------------------------------------- memory ---- */

static cbinfer_status cu_alloc(void *bctx, size_t bytes, void **ptr, cbi_err *e)
{
    cu_ctx *ctx = (cu_ctx *)bctx;
    *ptr = NULL;
    CBINFER_CUDA_TRY(cudaMalloc(ptr, bytes ? bytes : 1), e, "alloc");
    /* Zeroed in stream order: every later use of the buffer is on this stream. */
    cudaError_t rc = cudaMemsetAsync(*ptr, 0, bytes, ctx->stream);
    if (rc != cudaSuccess) {
        cudaFree(*ptr);
        *ptr = NULL;
        return cu_fail_cuda(e, rc, "cudaMemsetAsync", "alloc");
    }
    return CBINFER_STATUS_SUCCESS;
}

static void cu_release(void *bctx, void *ptr)
{
    (void)bctx;
    if (ptr) cudaFree(ptr);
}

static cbinfer_status cu_upload(void *bctx, cbi_tensor *dst, const float *src, cbi_err *e)
{
    cu_ctx *ctx = (cu_ctx *)bctx;
    const size_t n = shape_elems(dst->shape);
    if (n > ctx->stage_floats)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "upload of %zu values, staging holds %zu", n,
                        ctx->stage_floats);
    if (ctx->upload_pending) {
        /* The previous upload's copy may still read the pinned staging. The
         * host loop synchronises every frame, so this does not block there. */
        CBINFER_CUDA_TRY(cudaEventSynchronize(ctx->ev_upload), e, "upload");
        ctx->host_syncs++;
        ctx->upload_pending = 0;
    }
    memcpy(ctx->h_stage, src, n * sizeof(float));
    if (ctx->dt == CBI_CUDA_F32) {
        CBINFER_CUDA_TRY(cudaMemcpyAsync(dst->data, ctx->h_stage, n * sizeof(float),
                                         cudaMemcpyHostToDevice, ctx->stream),
                         e, "upload");
    } else {
        CBINFER_CUDA_TRY(cudaMemcpyAsync(ctx->d_stage, ctx->h_stage, n * sizeof(float),
                                         cudaMemcpyHostToDevice, ctx->stream),
                         e, "upload");
        CBINFER_CUDA_TRY(launch_f32_to_f16(ctx->d_stage, dst->data, (int64_t)n, ctx->stream), e,
                         "upload");
    }
    CBINFER_CUDA_TRY(cudaEventRecord(ctx->ev_upload, ctx->stream), e, "upload");
    ctx->upload_pending = 1;
    return CBINFER_STATUS_SUCCESS;
}

static cbinfer_status cu_download(void *bctx, float *dst, const cbi_tensor *src, cbi_err *e)
{
    cu_ctx *ctx = (cu_ctx *)bctx;
    const size_t n = shape_elems(src->shape);
    if (n > ctx->stage_floats)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "download of %zu values, staging holds %zu",
                        n, ctx->stage_floats);
    const void *from = src->data;
    if (ctx->dt == CBI_CUDA_F16) {
        CBINFER_CUDA_TRY(launch_f16_to_f32(src->data, ctx->d_stage, (int64_t)n, ctx->stream), e,
                         "download");
        from = ctx->d_stage;
    }
    CBINFER_CUDA_TRY(cudaMemcpyAsync(ctx->h_stage, from, n * sizeof(float),
                                     cudaMemcpyDeviceToHost, ctx->stream),
                     e, "download");
    CU_TRY(cu_sync(ctx, "download", e));
    memcpy(dst, ctx->h_stage, n * sizeof(float));
    return CBINFER_STATUS_SUCCESS;
}

static cbinfer_status cu_check_device_ptr(void *bctx, const void *p, size_t align,
                                          const char *what, cbi_err *e)
{
    const cu_ctx *ctx = (const cu_ctx *)bctx;
    cudaPointerAttributes at;
    const cudaError_t rc = cudaPointerGetAttributes(&at, p);
    if (rc != cudaSuccess) {
        (void)cudaGetLastError(); /* not left for the next launch to report */
        return cu_fail_cuda(e, rc, "cudaPointerGetAttributes", what);
    }
    if (at.type != cudaMemoryTypeDevice && at.type != cudaMemoryTypeManaged)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "%s is not device memory (cudaMalloc'ed)",
                        what);
    if (at.type == cudaMemoryTypeDevice && at.device != ctx->device)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "%s is on device %d, the stream on %d", what,
                        at.device, ctx->device);
    if (align > 1 && (uintptr_t)p % align != 0)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "%s is not aligned to %zu bytes", what,
                        align);
    return CBINFER_STATUS_SUCCESS;
}

static cbinfer_status cu_upload_rgb8(void *bctx, cbi_tensor *dst, const uint8_t *rgb, int width,
                                     int height, size_t stride, float scale, float offset,
                                     cbi_err *e)
{
    cu_ctx *ctx = (cu_ctx *)bctx;
    CBINFER_CUDA_TRY(launch_rgb8_to_tensor(ctx->dt, rgb, dst->data, width, height, stride, scale,
                                           offset, ctx->stream),
                     e, "push_rgb8_device");
    return CBINFER_STATUS_SUCCESS;
}

static cbinfer_status cu_download_nchw(void *bctx, float *dst, const cbi_tensor *src, cbi_err *e)
{
    cu_ctx *ctx = (cu_ctx *)bctx;
    CBINFER_CUDA_TRY(launch_tensor_to_nchw(ctx->dt, src->data, dst, src->shape.c, src->shape.h,
                                           src->shape.w, ctx->stream),
                     e, "read_output_device");
    return ctx->own_stream ? cu_sync(ctx, "read_output_device", e) : CBINFER_STATUS_SUCCESS;
}

static void *cu_device_stream(void *bctx)
{
    return bctx ? (void *)((cu_ctx *)bctx)->stream : NULL;
}

static cbinfer_status cu_synchronize(void *bctx, cbi_err *e)
{
    return cu_sync((cu_ctx *)bctx, "synchronize", e);
}

/* ------------------------------------------------------------- layers ---- */

/* n floats of the network into a new device buffer of the storage type. */
cbinfer_status cu_upload_weights(cu_ctx *ctx, const float *w, size_t n, void **d,
                                 const char *where, cbi_err *e)
{
    CBINFER_CUDA_TRY(cudaMalloc(d, (n ? n : 1) * ctx->elem_bytes), e, where);
    if (n == 0) return CBINFER_STATUS_SUCCESS;
    if (ctx->dt == CBI_CUDA_F32) {
        CBINFER_CUDA_TRY(cudaMemcpyAsync(*d, w, n * sizeof(float), cudaMemcpyHostToDevice,
                                         ctx->stream),
                         e, where);
        return cu_sync(ctx, where, e); /* w is pageable: done before returning */
    }
    __half *h = (__half *)malloc(n * sizeof(__half));
    if (!h) return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "%s: half weights", where);
    for (size_t i = 0; i < n; ++i) h[i] = __float2half_rn(w[i]);
    cudaError_t rc =
        cudaMemcpyAsync(*d, h, n * sizeof(__half), cudaMemcpyHostToDevice, ctx->stream);
    if (rc == cudaSuccess) rc = cudaStreamSynchronize(ctx->stream);
    free(h);
    if (rc != cudaSuccess) return cu_fail_cuda(e, rc, "cudaMemcpyAsync (half weights)", where);
    ctx->host_syncs++;
    return CBINFER_STATUS_SUCCESS;
}

/* n floats into a new float device buffer. */
static cbinfer_status cu_upload_floats(cu_ctx *ctx, const float *src, size_t n, float **d,
                                       const char *where, cbi_err *e)
{
    CBINFER_CUDA_TRY(cudaMalloc((void **)d, (n ? n : 1) * sizeof(float)), e, where);
    if (n == 0) return CBINFER_STATUS_SUCCESS;
    CBINFER_CUDA_TRY(cudaMemcpyAsync(*d, src, n * sizeof(float), cudaMemcpyHostToDevice,
                                     ctx->stream),
                     e, where);
    return cu_sync(ctx, where, e);
}

/* Zeroed device buffer of bytes. */
cbinfer_status cu_zeroed(cu_ctx *ctx, size_t bytes, void **d, const char *where, cbi_err *e)
{
    CBINFER_CUDA_TRY(cudaMalloc(d, bytes ? bytes : 1), e, where);
    CBINFER_CUDA_TRY(cudaMemsetAsync(*d, 0, bytes ? bytes : 1, ctx->stream), e, where);
    return CBINFER_STATUS_SUCCESS;
}

static void cu_layer_destroy(void *bctx, void *layer)
{
    cu_layer *L = (cu_layer *)layer;
    if (!L) return;
    cu_layer_destroy(bctx, L->one);
    cu_cudnn_teardown(L);
    cu_delta_teardown(L);
    cudaFree(L->d_w);
    cudaFree(L->d_bias);
    cudaFree(L->d_slope);
    cudaFree(L->d_state);
    cudaFree(L->d_map);
    cudaFree(L->d_idx);
    cudaFree(L->d_src_y);
    cudaFree(L->d_src_x);
    cudaFree(L->d_tap_y);
    cudaFree(L->d_tap_x);
    (void)cudaGetLastError();
    free(L);
}

/* Change map, index list and extraction scratch for out_px output pixels. */
static cbinfer_status cu_change_state(cu_ctx *ctx, cu_layer *L, size_t out_px, const char *where,
                                      cbi_err *e)
{
    CU_TRY(cu_zeroed(ctx, out_px, (void **)&L->d_map, where, e));
    CU_TRY(cu_zeroed(ctx, out_px * sizeof(int32_t), (void **)&L->d_idx, where, e));
    size_t tmp = 0;
    CU_TRY(cu_extract_scratch_bytes((int64_t)out_px, &tmp, where, e));
    return cu_grow(&ctx->d_sel_tmp, &ctx->sel_tmp_bytes, tmp, where, e);
}

static cbinfer_status cu_layer_create_in(cu_ctx *ctx, int node_id, cu_layer *L, int *needed,
                                         cbi_err *e)
{
    const cbi_node *n = &ctx->cfg.net->nodes[node_id];
    const cbi_node_plan *p = &ctx->cfg.plans[node_id];
    const int change_based = ctx->cfg.mode != CBINFER_MODE_DENSE;
    const char *where = n->name ? n->name : "?";
    const size_t in_px = (size_t)p->in.h * p->in.w, out_px = (size_t)p->out.h * p->out.w;
    const int has_prelu = n->act.kind == CBI_ACT_PRELU;
    *needed = 1;

    if (has_prelu) {
        if (!n->act.slope || n->act.n_slope < 1)
            return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s: PReLU without slopes", where);
        CU_TRY(cu_upload_floats(ctx, n->act.slope, (size_t)n->act.n_slope, &L->d_slope, where,
                                e));
    }
    switch (n->op) {
    case CBI_OP_CONV:
        if (!n->weight || !n->bias)
            return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s: Conv without weights", where);
        CU_TRY(cu_upload_weights(ctx, n->weight,
                                 (size_t)p->out.c * n->win.kh * n->win.kw *
                                     cbi_conv_group_cin(n, p->in.c),
                                 &L->d_w, where, e));
        CU_TRY(cu_upload_floats(ctx, n->bias, (size_t)p->out.c, &L->d_bias, where, e));
        CU_TRY(cu_cudnn_setup(ctx, node_id, 1, L, e));
        if (change_based) {
            CU_TRY(cu_zeroed(ctx, in_px * p->in.c * ctx->elem_bytes, &L->d_state, where, e));
            CU_TRY(cu_change_state(ctx, L, out_px, where, e));
            CU_TRY(cu_delta_setup(ctx, node_id, L, e));
        }
        break;
    case CBI_OP_CONV_TRANSPOSE:
        if (!n->weight || !n->bias)
            return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s: ConvTranspose without weights",
                            where);
        CU_TRY(cu_upload_weights(ctx, n->weight,
                                 (size_t)p->in.c * n->win.kh * n->win.kw * p->out.c, &L->d_w,
                                 where, e));
        CU_TRY(cu_upload_floats(ctx, n->bias, (size_t)p->out.c, &L->d_bias, where, e));
        break;
    case CBI_OP_MAXPOOL:
    case CBI_OP_AVGPOOL:
        if (change_based) CU_TRY(cu_change_state(ctx, L, out_px, where, e));
        else *needed = 0;
        break;
    case CBI_OP_RESIZE: CU_TRY(cu_resize_setup(ctx, node_id, L, e)); break;
    default: *needed = has_prelu; break;
    }
    return cu_sync(ctx, where, e);
}

static cbinfer_status cu_layer_create(void *bctx, int node_id, void **out, cbi_err *e)
{
    cu_ctx *ctx = (cu_ctx *)bctx;
    *out = NULL;
    if (node_id < 0 || node_id >= ctx->cfg.net->n_nodes)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "layer_create: node %d of %d", node_id,
                        ctx->cfg.net->n_nodes);
    cu_layer *L = (cu_layer *)calloc(1, sizeof *L);
    if (!L)
        return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "state of node %s",
                        ctx->cfg.net->nodes[node_id].name);
    int needed = 0;
    cbinfer_status st = cu_layer_create_in(ctx, node_id, L, &needed, e);
    if (st != CBINFER_STATUS_SUCCESS || !needed) {
        cu_layer_destroy(bctx, L);
        return st;
    }
    *out = L;
    return CBINFER_STATUS_SUCCESS;
}

/* -------------------------------------------------------------- hooks ---- */

extern "C" int64_t cbi_cuda_host_syncs(const void *bctx)
{
    return bctx ? ((const cu_ctx *)bctx)->host_syncs : 0;
}

extern "C" cbinfer_status cbi_cuda_copy(void *bctx, void *dst, const void *src, size_t bytes,
                                        int to_device, cbi_err *e)
{
    cu_ctx *ctx = (cu_ctx *)bctx;
    if (!ctx || (!dst && bytes) || (!src && bytes))
        return cbi_fail(e, CBINFER_STATUS_NULL_ARGUMENT, "cbi_cuda_copy: NULL argument");
    if (bytes == 0) return CBINFER_STATUS_SUCCESS;
    CBINFER_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes,
                                     to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost,
                                     ctx->stream),
                     e, "cbi_cuda_copy");
    return cu_sync(ctx, "cbi_cuda_copy", e);
}

/* -------------------------------------------------------------- table ---- */

static const cbi_backend cu_backend = {
    "cuda",
    cu_create,
    cu_destroy,
    cu_alloc,
    cu_release,
    cu_upload,
    cu_download,
    cu_synchronize,
    cu_layer_create,
    cu_layer_destroy,
    {
        cu_conv_dense,     /* CBI_K_CONV_DENSE */
        cu_conv_change,    /* CBI_K_CONV_CHANGE */
        cu_conv_transpose, /* CBI_K_CONV_TRANSPOSE */
        cu_activation_op,  /* CBI_K_ACTIVATION */
        cu_pool_dense,     /* CBI_K_POOL_DENSE */
        cu_pool_change,    /* CBI_K_POOL_CHANGE */
        cu_add,            /* CBI_K_ADD */
        cu_concat,         /* CBI_K_CONCAT */
        cu_pad,            /* CBI_K_PAD */
        cu_resize,         /* CBI_K_RESIZE */
        cu_depth_to_space, /* CBI_K_DEPTH_TO_SPACE */
    },
    NULL, /* set_threads: CBINFER_PARAM_THREADS is a CPU setting */
    cu_extra_bytes,
    cbi_cuda_host_syncs,
    cu_batch_layer_create,
    cu_conv_batch,
    cu_bind,
    cu_unbind,
    cu_upload_rgb8,
    cu_download_nchw,
    cu_check_device_ptr,
    cu_device_stream,
};

static_assert(CBI_K_CONV_DENSE == 0 && CBI_K_CONV_CHANGE == 1 && CBI_K_CONV_TRANSPOSE == 2 &&
                  CBI_K_ACTIVATION == 3 && CBI_K_POOL_DENSE == 4 && CBI_K_POOL_CHANGE == 5 &&
                  CBI_K_ADD == 6 && CBI_K_CONCAT == 7 && CBI_K_PAD == 8 && CBI_K_RESIZE == 9 &&
                  CBI_K_DEPTH_TO_SPACE == 10 && CBI_K_COUNT == 11,
              "the kernel table above lists cbi_kernel in order");

extern "C" const cbi_backend *cbi_cuda_backend(void)
{
    return &cu_backend;
}
