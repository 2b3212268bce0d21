// Batches (cbinfer_batch_*): N streams stepped together give each stream what
// pushing its frames to it alone gives, dense and change-based, with per-
// stream thresholds, break-even shares, policies and resets; threshold 0
// equals dense; the statuses of the batch calls.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "test_util.h"

namespace {
constexpr int kX = 300, kY = 250; // pedestrians walk here
} // namespace

// The recompute streams' rows share one GEMM; each stream's outputs, MACs
// and changed shares are its own (threshold 0, a tuned-size threshold, and
// one with a break-even share it passes on some layers).
TEST(Batch, ChangeBasedEqualsIndependentNanoDet)
{
    expect_batch_equals_independent("nanodet", 128, 96, CBINFER_MODE_CBINFER,
                                    {{0.f, 1.f, nullptr}, {0.02f, 1.f, nullptr},
                                     {0.05f, 0.3f, nullptr}},
                                    5, 1e-5f);
}

// Depthwise convolutions (rows straight from the state) and ReLU6; streams
// whose layers fall back and then predict their fallbacks (b = 0: from the
// second frame on; feed-forward at b = 0.3).
TEST(Batch, ChangeBasedEqualsIndependentPoseNet)
{
    expect_batch_equals_independent("posenet", 129, 97, CBINFER_MODE_CBINFER,
                                    {{0.01f, 1.f, nullptr}, {0.f, 1.f, "cbinfer-ff"},
                                     {0.01f, 0.f, nullptr}, {0.f, 0.3f, "cbinfer-ff"}},
                                    5, 1e-5f);
}

// A delta policy on one stream (it runs on its own within the step), a
// reset stream (its first frame while the others run change-based), and a
// thin output layer (Cout = 3: direct products).
TEST(Batch, MixedPoliciesAndResetEqualIndependent)
{
    expect_batch_equals_independent("vgg7-noise1", 64, 48, CBINFER_MODE_CBINFER,
                                    {{0.01f, 1.f, nullptr}, {0.01f, 1.f, "evnet"},
                                     {0.f, 1.f, nullptr}},
                                    5, 1e-5f, 2, 3);
}

// Dense streams: one convolution over N images per layer. oneDNN may block
// a batch differently from one image: float re-association only.
TEST(Batch, DenseEqualsIndependent)
{
    expect_batch_equals_independent("nanodet", 128, 96, CBINFER_MODE_DENSE,
                                    {{0, 1, nullptr}, {0, 1, nullptr}, {0, 1, nullptr},
                                     {0, 1, nullptr}},
                                    2, 1e-4f);
}

// Threshold 0 in a batch equals dense on every output, every frame.
TEST(Batch, ZeroThresholdEqualsDense)
{
    NetPtr net = load("nanodet");
    ASSERT_TRUE(net);
    const int w = 128, h = 96, n = 2, frames = 4;
    auto cams = camera_frames(n, frames, w, h);
    BatchPtr batch = make_batch(net.get(), n, w, h, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(batch);
    ASSERT_EQ(cbinfer_batch_set_param(batch.get(), CBINFER_PARAM_THREADS, 1),
              CBINFER_STATUS_SUCCESS);
    for (int j = 0; j < n; ++j)
        ASSERT_EQ(cbinfer_stream_set_threshold_all(cbinfer_batch_stream(batch.get(), j), 0.f),
                  CBINFER_STATUS_SUCCESS);
    std::vector<std::vector<std::vector<float>>> want(n);
    for (int j = 0; j < n; ++j) {
        StreamPtr d = make_stream(net.get(), w, h, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
        ASSERT_TRUE(d);
        for (int f = 0; f < frames; ++f) {
            push(d.get(), cams[j][f], w, h);
            for (auto &o : outputs_of(d.get(), net.get())) want[j].push_back(o);
        }
    }
    const size_t outs = (size_t)cbinfer_network_output_count(net.get());
    for (int f = 0; f < frames; ++f) {
        std::vector<const uint8_t *> ptrs;
        for (int j = 0; j < n; ++j) ptrs.push_back(cams[j][f].data());
        push_batch(batch.get(), ptrs, w, h);
        for (int j = 0; j < n; ++j) {
            auto got = outputs_of(cbinfer_batch_stream(batch.get(), j), net.get());
            for (size_t k = 0; k < outs; ++k)
                EXPECT_LE(cbi_test_max_abs_diff(got[k], want[j][f * outs + k]), 1e-4f)
                    << "stream " << j << " frame " << f << " output " << k;
        }
    }
}

TEST(Batch, Statuses)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    const int w = 32, h = 24;
    cbinfer_batch_t *b = nullptr;
    char err[256];
    const auto cpu = CBINFER_BACKEND_CPU;
    const auto cb = CBINFER_MODE_CBINFER;
    const auto fp32 = CBINFER_PRECISION_FP32;
    EXPECT_EQ(cbinfer_batch_create(net.get(), 2, w, h, cpu, cb, fp32, nullptr, err, sizeof err),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_batch_create(nullptr, 2, w, h, cpu, cb, fp32, &b, err, sizeof err),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(b, nullptr);
    EXPECT_EQ(cbinfer_batch_create(net.get(), 0, w, h, cpu, cb, fp32, &b, err, sizeof err),
              CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(std::string(err).find("0 streams"), std::string::npos) << err;
    EXPECT_EQ(cbinfer_batch_create(net.get(), 257, w, h, cpu, cb, fp32, &b, err, sizeof err),
              CBINFER_STATUS_BAD_PARAM);
    EXPECT_EQ(cbinfer_batch_create(net.get(), 2, 0, h, cpu, cb, fp32, &b, err, sizeof err),
              CBINFER_STATUS_BAD_FRAME_SIZE);
    EXPECT_EQ(cbinfer_batch_create(net.get(), 2, w, h, cpu, cb, CBINFER_PRECISION_FP16, &b, err,
                                   sizeof err),
              CBINFER_STATUS_BAD_PARAM);
    // CUDA without a device (or not compiled in): refused, never a crash.
    // (With a device, gpu_batch.cpp takes over.)
    if (!cbi_test_has_cuda_device()) {
        EXPECT_EQ(cbinfer_batch_create(net.get(), 2, w, h, CBINFER_BACKEND_CUDA, cb, fp32, &b,
                                       err, sizeof err),
                  CBINFER_STATUS_BACKEND_UNAVAILABLE);
        EXPECT_EQ(b, nullptr);
        EXPECT_GT(std::string(err).size(), 0u);
    }
    cbinfer_batch_destroy(nullptr);
    EXPECT_EQ(cbinfer_batch_size(nullptr), 0);
    EXPECT_EQ(cbinfer_batch_stream(nullptr, 0), nullptr);
    EXPECT_EQ(cbinfer_batch_push_rgb8(nullptr, nullptr, w, h, w * 3), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_batch_set_param(nullptr, CBINFER_PARAM_THREADS, 1),
              CBINFER_STATUS_NULL_ARGUMENT);

    BatchPtr batch = make_batch(net.get(), 2, w, h, cb);
    ASSERT_TRUE(batch);
    EXPECT_EQ(cbinfer_batch_stream(batch.get(), -1), nullptr);
    EXPECT_EQ(cbinfer_batch_stream(batch.get(), 2), nullptr);
    cbinfer_stream_t *s0 = cbinfer_batch_stream(batch.get(), 0);
    ASSERT_NE(s0, nullptr);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 1, kX, kY, w, h);
    std::vector<uint8_t> small((size_t)(w - 2) * h * 3, 0);
    EXPECT_EQ(cbinfer_batch_push_rgb8(batch.get(), nullptr, w, h, w * 3),
              CBINFER_STATUS_NULL_ARGUMENT);
    const uint8_t *one_null[2] = {frames[0].data(), nullptr};
    EXPECT_EQ(cbinfer_batch_push_rgb8(batch.get(), one_null, w, h, w * 3),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_NE(std::string(cbinfer_batch_last_error(batch.get())).find("stream 1"),
              std::string::npos)
        << cbinfer_batch_last_error(batch.get());
    const uint8_t *ok[2] = {frames[0].data(), frames[0].data()};
    EXPECT_EQ(cbinfer_batch_push_rgb8(batch.get(), ok, w - 2, h, w * 3),
              CBINFER_STATUS_BAD_FRAME_SIZE);
    EXPECT_EQ(cbinfer_batch_push_rgb8(batch.get(), ok, w, h, w * 3 - 1), CBINFER_STATUS_BAD_PARAM);
    // A refused push moved no state: no stream has an output yet.
    cbinfer_frame_stats fs;
    EXPECT_EQ(cbinfer_stream_frame_stats(s0, &fs), CBINFER_STATUS_NOT_READY);
    EXPECT_EQ(cbinfer_batch_set_param(batch.get(), (cbinfer_param)999, 1), CBINFER_STATUS_BAD_PARAM);
    EXPECT_EQ(cbinfer_batch_set_param(batch.get(), CBINFER_PARAM_THREADS, -1),
              CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(std::string(cbinfer_batch_last_error(batch.get())).find("stream 0"),
              std::string::npos);
    // A member goes with its batch: destroying it alone does nothing.
    cbinfer_stream_destroy(s0);
    EXPECT_EQ(cbinfer_batch_push_rgb8(batch.get(), ok, w, h, w * 3), CBINFER_STATUS_SUCCESS)
        << cbinfer_batch_last_error(batch.get());
    EXPECT_EQ(cbinfer_stream_frame_stats(s0, &fs), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(fs.frame_index, 0);
    // Each member can also be pushed on its own.
    push(s0, frames[0], w, h);
    ASSERT_EQ(cbinfer_stream_frame_stats(s0, &fs), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(fs.frame_index, 1);
    ASSERT_EQ(cbinfer_stream_frame_stats(cbinfer_batch_stream(batch.get(), 1), &fs),
              CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(fs.frame_index, 0);
}
