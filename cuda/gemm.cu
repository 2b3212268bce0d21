/*
 * The GEMM of the change-based convolution and of ConvTranspose, with cuBLAS
 * on the context's handle (bound to its stream). Output always float, with
 * fp32 accumulation, so bias and activation are applied before any rounding
 * to the storage type.
 *
 *   FP32: cublasSgemm; the handle's math mode is CUBLAS_DEFAULT_MATH, which
 *         never uses TF32 (that takes CUBLAS_TF32_TENSOR_OP_MATH or a
 *         TF32 compute type).
 *   TF32: cublasGemmEx, float A/B/C, CUBLAS_COMPUTE_32F_FAST_TF32.
 *   FP16: cublasGemmEx, half A/B, float C, CUBLAS_COMPUTE_32F.
 *
 * Every type and compute type used here exists since CUDA 11.0.
 */
#include "cuda_backend.cuh"

extern "C" cublasStatus_t launch_gemm(cublasHandle_t handle, int precision,
                                      cublasOperation_t op_a, int m, int n, int k, const void *a,
                                      int lda, const void *b, int ldb, float *c, int ldc)
{
    if (m <= 0 || n <= 0) return CUBLAS_STATUS_SUCCESS;
    const float one = 1.f, zero = 0.f;
    switch (precision) {
    case CBINFER_PRECISION_FP32:
        return cublasSgemm(handle, op_a, CUBLAS_OP_N, m, n, k, &one, (const float *)a, lda,
                           (const float *)b, ldb, &zero, c, ldc);
    case CBINFER_PRECISION_TF32:
        return cublasGemmEx(handle, op_a, CUBLAS_OP_N, m, n, k, &one, a, CUDA_R_32F, lda, b,
                            CUDA_R_32F, ldb, &zero, c, CUDA_R_32F, ldc,
                            CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT);
    case CBINFER_PRECISION_FP16:
        return cublasGemmEx(handle, op_a, CUBLAS_OP_N, m, n, k, &one, a, CUDA_R_16F, lda, b,
                            CUDA_R_16F, ldb, &zero, c, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT);
    default: return CUBLAS_STATUS_INVALID_VALUE;
    }
}
