/*
 * The CUDA backend's plain-C prototypes: one launcher per kernel (launch_<op>,
 * implemented in cuda/<op>.cu), the GEMM calls, and a few hooks on a backend
 * context for tests and tools. The only header of cuda/ that C or C++ code
 * outside cuda/ may include; no Thrust, CUB or cuDNN types appear here.
 *
 * Conventions of every launcher:
 *   - tensors are NHWC with N = 1 (a pixel's channels contiguous), element type
 *     float or half as `dt` says; index lists are int32 pixel indices y * w + x;
 *   - work is queued on `stream` and nothing synchronises;
 *   - n == 0 launches nothing; the return value is cudaGetLastError() after
 *     the launch (cudaSuccess when nothing was launched).
 */
#ifndef CBI_CUDA_KERNELS_H
#define CBI_CUDA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Storage type of activations and weights (CBINFER_PRECISION_FP16: half). */
typedef enum cbi_cuda_dtype { CBI_CUDA_F32 = 0, CBI_CUDA_F16 = 1 } cbi_cuda_dtype;

/* An activation as kernels see it (cbi_activation with the PReLU slopes in
 * device memory). kind is a cbi_act_kind. */
typedef struct cbi_cuda_act {
    int kind;
    float alpha, lo, hi;
    const float *slope; /* device, n_slope floats */
    int n_slope;
} cbi_cuda_act;

/* Conv and ConvTranspose geometry (input cin x h x w -> output cout x ho x
 * wo; strides and dilations >= 1). */
typedef struct cbi_cuda_conv_geom {
    int cin, h, w;
    int cout, ho, wo;
    int kh, kw, sh, sw, dh, dw, pad_t, pad_l;
    int group; /* Conv channel groups (1: plain) */
    int k;    /* kh * kw * cin / group: one im2col row (Conv, group 1), one output's MACs */
    int ncol; /* kh * kw * cout, one GEMM row (ConvTranspose) */
} cbi_cuda_conv_geom;

/* ---- change_detect.cu ---------------------------------------------------- */

/* Eq. 3 fused with the closed-loop state update and Eq. 4: tests n pixels
 * (list[i], or i when list is NULL) of x against state; a pixel whose channels
 * differ by more than tau is counted into *d_n_changed, copied into the state
 * and its filter support is marked in map (out.h x out.w bytes).
 * Feed-forward (ff = 1) copies every tested pixel into the state. */
cudaError_t launch_change_detect(cbi_cuda_dtype dt, const cbi_cuda_conv_geom *g, const void *x,
                                 void *state, const int32_t *list, int64_t n, float tau, int ff,
                                 uint8_t *map, int32_t *d_n_changed, cudaStream_t stream);

/* state[idx[i]] = x[idx[i]] (all c channels) for i < n: the state follows a
 * reused index list (Sec. III-E case 2). */
cudaError_t launch_copy_pixels(cbi_cuda_dtype dt, const void *x, void *state, const int32_t *idx,
                               int64_t n, int c, cudaStream_t stream);

/* ---- extract.cu ---------------------------------------------------------- */

/* The extraction itself (thrust::copy_if, which waits for the stream) is
 * cu_extract_indices() in cuda_backend.cuh: it is no asynchronous launcher. */

/* map[idx[i]] = 0 for i < n: clears the change map where it was set. */
cudaError_t launch_clear_map(uint8_t *map, const int32_t *idx, int64_t n, cudaStream_t stream);

/* ---- im2col.cu ----------------------------------------------------------- */

/* Partial im2col: row r < m of col (g->k values) gathers the receptive field
 * of output pixel idx[r] (or base + r when idx is NULL) from src; taps in the
 * padding are zero. */
cudaError_t launch_im2col(cbi_cuda_dtype dt, const cbi_cuda_conv_geom *g, const void *src,
                          const int32_t *idx, int64_t base, int m, void *col, cudaStream_t stream);

/* Grouped convolution rows (group > 1, no im2col, no GEMM): y[r][cout]
 * (fp32) of output pixel idx[r] (or base + r) from src, over the weights
 * w [Cout][kh][kw][Cin/group]; output channel o reads its group's inputs. */
cudaError_t launch_group_rows(cbi_cuda_dtype dt, const cbi_cuda_conv_geom *g, const void *src,
                              const void *w, const int32_t *idx, int64_t base, int m, float *y,
                              cudaStream_t stream);

/* ---- gemm.cu ------------------------------------------------------------- */

/* Column-major C(m x n, ldc) = op_a(A) * B(k x n, ldb) with op_a(A) m x k,
 * float output and fp32 accumulation. precision (cbinfer_precision): FP32
 * cublasSgemm (the handle's math mode keeps TF32 off), TF32 cublasGemmEx with
 * CUBLAS_COMPUTE_32F_FAST_TF32, FP16 cublasGemmEx with half A and B. */
cublasStatus_t launch_gemm(cublasHandle_t handle, int precision, cublasOperation_t op_a, int m,
                           int n, int k, const void *a, int lda, const void *b, int ldb, float *c,
                           int ldc);

/* ---- update.cu ----------------------------------------------------------- */

/* Output update: out[idx[r]][o] = act(y[r][o] + bias[o]) for r < m, o < cout
 * (idx NULL: pixel base + r). y is float (the GEMM result). */
cudaError_t launch_update(cbi_cuda_dtype dt, const float *y, const float *bias,
                          const cbi_cuda_act *act, const int32_t *idx, int64_t base, int m,
                          int cout, void *out, cudaStream_t stream);

/* The accumulator form of launch_update for r < m, o < cout, at pixel p =
 * idx[r] (base + r when idx is NULL): with bias, a = y[r][o] + bias[o];
 * without, a = acc[p][o] + y[r][o]. acc (float) takes a, out takes act(a).
 * acc NULL stands for f^-1(out), read and written through out (float
 * storage and an invertible act only). */
cudaError_t launch_acc_update(cbi_cuda_dtype dt, const float *y, const float *bias,
                              const cbi_cuda_act *act, const int32_t *idx, int64_t base, int m,
                              int cout, float *acc, void *out, cudaStream_t stream);

/* In place: out[p][o] = act(out[p][o] + bias[o]) for n_px pixels (after a
 * cuDNN convolution that could not fuse them). */
cudaError_t launch_bias_act(cbi_cuda_dtype dt, void *out, const float *bias,
                            const cbi_cuda_act *act, int64_t n_px, int cout,
                            cudaStream_t stream);

/* ---- activation.cu ------------------------------------------------------- */

/* y = act(x) elementwise over n_px pixels of c channels; may run in place. */
cudaError_t launch_activation(cbi_cuda_dtype dt, const void *x, void *y, const cbi_cuda_act *act,
                              int64_t n_px, int c, cudaStream_t stream);

/* ---- convert.cu ---------------------------------------------------------- */

cudaError_t launch_f32_to_f16(const float *src, void *dst, int64_t n, cudaStream_t stream);
cudaError_t launch_f16_to_f32(const void *src, float *dst, int64_t n, cudaStream_t stream);
/* A device RGB8 frame into the NHWC input (byte * scale + offset). */
cudaError_t launch_rgb8_to_tensor(cbi_cuda_dtype dt, const uint8_t *rgb, void *dst, int width,
                                  int height, size_t stride, float scale, float offset,
                                  cudaStream_t stream);
/* An NHWC tensor (c x h x w) into float32 NCHW at dst. */
cudaError_t launch_tensor_to_nchw(cbi_cuda_dtype dt, const void *src, float *dst, int c, int h,
                                  int w, cudaStream_t stream);

/* ---- pool.cu ------------------------------------------------------------- */

/* Every output pixel of a MaxPool / AveragePool. */
cudaError_t launch_pool_dense(cbi_cuda_dtype dt, const cbi_pool_geom *g, const void *x,
                              void *y, cudaStream_t stream);

/* Marks in map (ho x wo bytes) every output pixel whose window holds one of
 * the n input pixels of list (Sec. III-E: the producer's change indices). */
cudaError_t launch_pool_mark(const cbi_pool_geom *g, const int32_t *list, int64_t n,
                             uint8_t *map, cudaStream_t stream);

/* The n output pixels listed in idx, each computed once. */
cudaError_t launch_pool_at(cbi_cuda_dtype dt, const cbi_pool_geom *g, const void *x,
                           void *y, const int32_t *idx, int64_t n, cudaStream_t stream);

/* ---- conv_transpose.cu --------------------------------------------------- */

/* col2im of one band of output rows [oy0, oy1): every output value of the
 * band is bias + the taps of the GEMM rows ycol (input rows iy_lo.., each
 * g->ncol floats per input pixel), then the activation. */
cudaError_t launch_convt_gather(cbi_cuda_dtype dt, const cbi_cuda_conv_geom *g, const float *ycol,
                                int iy_lo, int oy0, int oy1, const float *bias,
                                const cbi_cuda_act *act, void *out, cudaStream_t stream);

/* ---- add.cu, concat.cu, pad.cu, resize.cu, depth_to_space.cu --------------- */

cudaError_t launch_add(cbi_cuda_dtype dt, const void *x0, const void *x1, void *y, int64_t n,
                       cudaStream_t stream);

/* y[p][off + ch] = x[p][ch] for ch < cx, over n_px pixels (y has cy channels). */
cudaError_t launch_concat_slice(cbi_cuda_dtype dt, const void *x, int cx, void *y, int cy, int off,
                                int64_t n_px, cudaStream_t stream);

/* Spatial pad; mode is a cbi_pad_mode. Output ho x wo, input h x w. */
cudaError_t launch_pad(cbi_cuda_dtype dt, const void *x, int c, int h, int w, void *y, int ho,
                       int wo, int pad_t, int pad_l, int mode, float value, cudaStream_t stream);

/* Linear resize through per-axis tap tables (tap_y[ho], tap_x[wo]). */
cudaError_t launch_resize_linear(cbi_cuda_dtype dt, const void *x, int c, int w, void *y, int ho,
                                 int wo, const cbi_resize_tap *tap_y, const cbi_resize_tap *tap_x,
                                 cudaStream_t stream);
/* Nearest resize through per-axis source tables (src_y[ho], src_x[wo]). */
cudaError_t launch_resize(cbi_cuda_dtype dt, const void *x, int c, int w, void *y, int ho, int wo,
                          const int32_t *src_y, const int32_t *src_x, cudaStream_t stream);

cudaError_t launch_depth_to_space(cbi_cuda_dtype dt, const void *x, int cin, int w, void *y,
                                  int c, int ho, int wo, int block, int crd, cudaStream_t stream);

/* ---- hooks on a backend context (cuda_backend.cu) ------------------------ */

/* Host synchronisations the context has made since it was created: count
 * read-backs of change-based layers, synchronize(), downloads, and the extra
 * waits of per-step timing. */
int64_t cbi_cuda_host_syncs(const void *bctx);

/* Copies bytes between host and backend memory in the context's stream order
 * and waits for it (to_device: host src -> device dst, else device src -> host
 * dst). For tests that hand index lists to change-based ops. */
cbinfer_status cbi_cuda_copy(void *bctx, void *dst, const void *src, size_t bytes, int to_device,
                             cbi_err *e);

#ifdef __cplusplus
}
#endif

#endif /* CBI_CUDA_KERNELS_H */
