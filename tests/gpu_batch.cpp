// Batches on the CUDA backend: N streams stepped together (one GEMM per chunk
// over every camera's changed rows, one cuDNN call over N dense images) give
// each stream what pushing its frames to it alone gives. At threshold 0
// within float re-association (1e-4); at a threshold above 0 a rounding
// difference next to it may flip a pixel's update, so within a few
// thresholds. Every test skips with a reason when no CUDA device can be used.
#include <gtest/gtest.h>

#include "test_util.h"

TEST(GpuBatch, ZeroThresholdEqualsIndependentVgg7)
{
    SKIP_WITHOUT_CUDA();
    // With a reset, a break-even share it passes, and cbinfer-ff.
    expect_batch_equals_independent("vgg7-noise1", 96, 72, CBINFER_MODE_CBINFER,
                                    {{0.f, 1.f, nullptr}, {0.f, 0.3f, nullptr},
                                     {0.f, 1.f, "cbinfer-ff"}},
                                    5, 1e-4f, 1, 3, CBINFER_BACKEND_CUDA);
}

TEST(GpuBatch, ThresholdsEqualIndependentNanoDet)
{
    SKIP_WITHOUT_CUDA();
    expect_batch_equals_independent("nanodet", 128, 96, CBINFER_MODE_CBINFER,
                                    {{0.f, 1.f, nullptr}, {0.02f, 1.f, nullptr},
                                     {0.05f, 0.3f, nullptr}, {0.02f, 1.f, nullptr}},
                                    4, 0.25f, -1, -1, CBINFER_BACKEND_CUDA);
}

TEST(GpuBatch, DeltaPolicyStreamsRunAlongside)
{
    SKIP_WITHOUT_CUDA();
    // A delta-policy stream runs stream by stream inside the step; first in
    // the batch, so that the others are not the batch's whole image run.
    expect_batch_equals_independent("vgg7-noise1", 64, 48, CBINFER_MODE_CBINFER,
                                    {{0.f, 1.f, "evnet"}, {0.f, 1.f, nullptr}, {0.f, 1.f, nullptr}},
                                    4, 1e-4f, -1, -1, CBINFER_BACKEND_CUDA);
}

TEST(GpuBatch, DenseEqualsIndependent)
{
    SKIP_WITHOUT_CUDA();
    expect_batch_equals_independent("nanodet", 128, 96, CBINFER_MODE_DENSE,
                                    {{0.f, 1.f, nullptr}, {0.f, 1.f, nullptr}, {0.f, 1.f, nullptr}},
                                    3, 1e-4f, -1, -1, CBINFER_BACKEND_CUDA);
}
