// Batches on the CUDA backend: N streams stepped together (one GEMM per chunk
// over every camera's changed rows, one cuDNN call over N dense images) give
// each stream what pushing its frames to it alone gives, within float
// re-association. Every test skips with a reason when no CUDA device can be
// used.
#include <gtest/gtest.h>

#include "test_util.h"

TEST(GpuBatch, ChangeBasedEqualsIndependentVgg7)
{
    SKIP_WITHOUT_CUDA();
    // Threshold 0, a tuned-size threshold, and a break-even share it passes.
    expect_batch_equals_independent("vgg7-noise1", 96, 72, CBINFER_MODE_CBINFER,
                                    {{0.f, 1.f, nullptr}, {0.02f, 1.f, nullptr},
                                     {0.02f, 0.3f, "cbinfer-ff"}},
                                    5, 1e-4f, 1, 3, CBINFER_BACKEND_CUDA);
}

TEST(GpuBatch, ChangeBasedEqualsIndependentNanoDet)
{
    SKIP_WITHOUT_CUDA();
    expect_batch_equals_independent("nanodet", 128, 96, CBINFER_MODE_CBINFER,
                                    {{0.f, 1.f, nullptr}, {0.02f, 1.f, nullptr},
                                     {0.05f, 0.3f, nullptr}, {0.02f, 1.f, nullptr}},
                                    4, 1e-4f, -1, -1, CBINFER_BACKEND_CUDA);
}

TEST(GpuBatch, DelegatedPolicyStreamsRunAlongside)
{
    SKIP_WITHOUT_CUDA();
    // A delta-policy stream runs stream by stream inside the step.
    expect_batch_equals_independent("vgg7-noise1", 64, 48, CBINFER_MODE_CBINFER,
                                    {{0.02f, 1.f, nullptr}, {0.02f, 1.f, "evnet"}}, 4, 1e-4f, -1,
                                    -1, CBINFER_BACKEND_CUDA);
}

TEST(GpuBatch, DenseEqualsIndependent)
{
    SKIP_WITHOUT_CUDA();
    expect_batch_equals_independent("nanodet", 128, 96, CBINFER_MODE_DENSE,
                                    {{0.f, 1.f, nullptr}, {0.f, 1.f, nullptr}, {0.f, 1.f, nullptr}},
                                    3, 1e-4f, -1, -1, CBINFER_BACKEND_CUDA);
}
