// The public API end to end on the CPU backend: real models, real frames.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "cbinfer.h"
#include "test_util.h"

namespace {

// A crop of vtest.avi where pedestrians walk through the frame.
constexpr int kCropX = 300, kCropY = 250, kCropW = 96, kCropH = 80, kFrames = 20;

// max_share: the mean changed share at τ = 0 stays below it (compression
// noise spreads further through deeper networks).
void expect_change_based_equals_dense(const std::string &model, double max_share = 0.95)
{
    NetPtr net = load(model);
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, kFrames, kCropX, kCropY, kCropW, kCropH);
    StreamPtr dense = make_stream(net.get(), kCropW, kCropH, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
    StreamPtr cb = make_stream(net.get(), kCropW, kCropH, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(dense && cb);
    double share_sum = 0;
    for (int f = 0; f < kFrames; ++f) {
        push(dense.get(), frames[f], kCropW, kCropH);
        push(cb.get(), frames[f], kCropW, kCropH);
        float d = cbi_test_max_abs_diff(output_of(dense.get()), output_of(cb.get()));
        EXPECT_LE(d, 1e-4f) << model << " frame " << f;
        cbinfer_frame_stats fs;
        ASSERT_EQ(cbinfer_stream_frame_stats(cb.get(), &fs), CBINFER_STATUS_SUCCESS);
        if (f == 0) {
            EXPECT_DOUBLE_EQ(fs.changed_share, 1.0);
        } else {
            share_sum += fs.changed_share;
            EXPECT_LE(fs.macs, fs.dense_macs);
        }
    }
    // A static camera: even at τ = 0 not everything is recomputed.
    EXPECT_LT(share_sum / (kFrames - 1), max_share) << model;
}

} // namespace

TEST(Stream, ZeroThresholdEqualsDenseVgg7)
{
    expect_change_based_equals_dense("vgg7-noise1");
}

TEST(Stream, ZeroThresholdEqualsDenseSceneLabeling)
{
    expect_change_based_equals_dense("scene-labeling-synthetic");
}

// Real-ESRGAN: a stride-2 4x4 convolution, so Eq. 4 also runs its general
// (strided) marking, in parallel row bands on a multi-core machine.
TEST(Stream, ZeroThresholdEqualsDenseRealEsrgan)
{
    expect_change_based_equals_dense("realesr-x2", 0.99);
}

TEST(Stream, ZeroThresholdEqualsDenseWithReusedPointwiseIndices)
{
    NetPtr net = load("scene-labeling-synthetic");
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 6, kCropX, kCropY, kCropW, kCropH);
    StreamPtr dense = make_stream(net.get(), kCropW, kCropH, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
    StreamPtr cb = make_stream(net.get(), kCropW, kCropH, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    ASSERT_EQ(cbinfer_stream_set_param(cb.get(), CBINFER_PARAM_REUSE_1X1_INDICES, 1),
              CBINFER_STATUS_SUCCESS);
    for (auto &fr : frames) {
        push(dense.get(), fr, kCropW, kCropH);
        push(cb.get(), fr, kCropW, kCropH);
        EXPECT_LE(cbi_test_max_abs_diff(output_of(dense.get()), output_of(cb.get())), 1e-4f);
    }
}

// Closed loop against feed-forward (paper Sec. III-C): a slow brightness ramp
// on a real textured crop. Every frame-to-frame step (0.004) is below τ (0.01),
// the total (0.16) is 16 τ. Feed-forward never sees a change and keeps the
// stale first output; the closed loop updates its state whenever the state
// falls τ behind, so its error stays bounded.
TEST(Stream, ClosedLoopBoundsDriftFeedForwardDoesNot)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    const int w = 48, h = 40, steps = 40;
    const float step = 0.004f, tau = 0.01f;
    auto tex = cbi_test_read_frames("vtest.avi", 0, 1, kCropX, kCropY, w, h)[0];
    StreamPtr dense = make_stream(net.get(), w, h, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
    StreamPtr closed = make_stream(net.get(), w, h, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    StreamPtr ff = make_stream(net.get(), w, h, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER_FF);
    ASSERT_EQ(cbinfer_stream_set_threshold_all(closed.get(), tau), CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(cbinfer_stream_set_threshold_all(ff.get(), tau), CBINFER_STATUS_SUCCESS);
    std::vector<float> frame((size_t)3 * h * w);
    float closed_err = 0.f, ff_err = 0.f;
    for (int t = 0; t < steps; ++t) {
        // Darkened texture so that the brightened frames stay inside [0, 1].
        for (int c = 0; c < 3; ++c)
            for (int p = 0; p < h * w; ++p)
                frame[(size_t)c * h * w + p] = 0.6f * tex[(size_t)p * 3 + c] / 255.f + t * step;
        for (auto *s : {dense.get(), closed.get(), ff.get()})
            ASSERT_EQ(cbinfer_stream_push_nchw(s, frame.data(), 3, h, w), CBINFER_STATUS_SUCCESS);
        std::vector<float> ref = output_of(dense.get());
        closed_err = std::fmax(closed_err, cbi_test_max_abs_diff(ref, output_of(closed.get())));
        ff_err = cbi_test_max_abs_diff(ref, output_of(ff.get()));
    }
    // Stated bound: the closed loop stays within 0.05 (5 τ) of dense at every
    // frame; feed-forward ends more than 0.1 away.
    EXPECT_LT(closed_err, 0.05f);
    EXPECT_GT(ff_err, 0.1f);
}

TEST(Stream, UnchangedFrameDoesNoConvWork)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    auto fr = cbi_test_read_frames("vtest.avi", 3, 1, kCropX, kCropY, kCropW, kCropH)[0];
    StreamPtr cb = make_stream(net.get(), kCropW, kCropH, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    push(cb.get(), fr, kCropW, kCropH);
    std::vector<float> first = output_of(cb.get());
    push(cb.get(), fr, kCropW, kCropH);
    cbinfer_frame_stats fs;
    ASSERT_EQ(cbinfer_stream_frame_stats(cb.get(), &fs), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(fs.macs, 0);
    EXPECT_EQ(fs.changed_share, 0.0);
    EXPECT_EQ(output_of(cb.get()), first);
}

TEST(Stream, ResetRunsDenseAgain)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 3, kCropX, kCropY, 40, 40);
    StreamPtr cb = make_stream(net.get(), 40, 40, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    ASSERT_EQ(cbinfer_stream_set_threshold_all(cb.get(), 0.05f), CBINFER_STATUS_SUCCESS);
    push(cb.get(), frames[0], 40, 40);
    push(cb.get(), frames[1], 40, 40);
    ASSERT_EQ(cbinfer_stream_reset(cb.get()), CBINFER_STATUS_SUCCESS);
    std::vector<float> tmp(3 * 40 * 40);
    EXPECT_EQ(cbinfer_stream_read_output(cb.get(), tmp.data(), tmp.size()), CBINFER_STATUS_NOT_READY);
    push(cb.get(), frames[2], 40, 40);
    cbinfer_frame_stats fs;
    ASSERT_EQ(cbinfer_stream_frame_stats(cb.get(), &fs), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(fs.frame_index, 0);
    EXPECT_DOUBLE_EQ(fs.changed_share, 1.0);
    StreamPtr dense = make_stream(net.get(), 40, 40, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
    push(dense.get(), frames[2], 40, 40);
    EXPECT_LE(cbi_test_max_abs_diff(output_of(dense.get()), output_of(cb.get())), 1e-5f);
}

// A NaN or an Inf in the input is always a change (issue 11, class 3): at
// τ = 0 the change-based output keeps matching dense, non-finite pattern
// included, and recovers with dense on the next finite frame. With NaN
// treated as "no change", the NaN frame's output would stay finite.
TEST(Stream, NonFiniteInputIsAChange)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    const int w = 40, h = 32;
    auto frames = cbi_test_read_frames("vtest.avi", 0, 4, kCropX, kCropY, w, h);
    float scale = 0, offset = 0;
    ASSERT_EQ(cbinfer_network_input_scaling(net.get(), &scale, &offset), CBINFER_STATUS_SUCCESS);
    auto nchw_of = [&](const std::vector<uint8_t> &rgb) {
        std::vector<float> x((size_t)3 * w * h);
        for (int c = 0; c < 3; ++c)
            for (int p = 0; p < w * h; ++p) x[(size_t)c * w * h + p] = rgb[(size_t)p * 3 + c] * scale + offset;
        return x;
    };
    for (float bad : {NAN, INFINITY}) {
        StreamPtr dense = make_stream(net.get(), w, h, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
        StreamPtr cb = make_stream(net.get(), w, h, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
        ASSERT_TRUE(dense && cb);
        for (int f = 0; f < 4; ++f) {
            std::vector<float> x = nchw_of(frames[f]);
            if (f == 2) x[(size_t)1 * w * h + 10 * w + 20] = bad; // channel 1, pixel (20, 10)
            ASSERT_EQ(cbinfer_stream_push_nchw(dense.get(), x.data(), 3, h, w), CBINFER_STATUS_SUCCESS);
            ASSERT_EQ(cbinfer_stream_push_nchw(cb.get(), x.data(), 3, h, w), CBINFER_STATUS_SUCCESS);
            const std::vector<float> a = output_of(dense.get()), b = output_of(cb.get());
            size_t non_finite = 0;
            float worst = 0.f;
            for (size_t i = 0; i < a.size(); ++i) {
                ASSERT_EQ(std::isfinite(a[i]), std::isfinite(b[i])) << "frame " << f << " element " << i;
                if (!std::isfinite(a[i])) {
                    ++non_finite;
                    continue;
                }
                worst = std::max(worst, std::fabs(a[i] - b[i]));
            }
            EXPECT_LE(worst, 1e-4f) << "frame " << f;
            if (f == 2)
                EXPECT_GT(non_finite, 0u) << "the bad value reaches the output";
            else
                EXPECT_EQ(non_finite, 0u) << "frame " << f;
        }
    }
}

TEST(Stream, Rgb8AndNchwInputsAgree)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    auto fr = cbi_test_read_frames("vtest.avi", 0, 1, kCropX, kCropY, 32, 24)[0];
    float scale = 0, offset = 1;
    ASSERT_EQ(cbinfer_network_input_scaling(net.get(), &scale, &offset), CBINFER_STATUS_SUCCESS);
    EXPECT_FLOAT_EQ(scale, 1.f / 255.f);
    EXPECT_FLOAT_EQ(offset, 0.f);
    std::vector<float> nchw((size_t)3 * 32 * 24);
    for (int c = 0; c < 3; ++c)
        for (int p = 0; p < 32 * 24; ++p) nchw[(size_t)c * 32 * 24 + p] = fr[(size_t)p * 3 + c] * scale;
    StreamPtr a = make_stream(net.get(), 32, 24, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
    StreamPtr b = make_stream(net.get(), 32, 24, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
    push(a.get(), fr, 32, 24);
    ASSERT_EQ(cbinfer_stream_push_nchw(b.get(), nchw.data(), 3, 24, 32), CBINFER_STATUS_SUCCESS);
    EXPECT_LE(cbi_test_max_abs_diff(output_of(a.get()), output_of(b.get())), 1e-6f);
}

// One shared network, N threads each with its own stream: the same results as
// one thread.
TEST(Stream, ThreadsShareOneNetwork)
{
    NetPtr net = load("scene-labeling-synthetic");
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 4, kCropX, kCropY, 64, 48);
    auto run = [&](std::vector<float> *result) {
        StreamPtr s = make_stream(net.get(), 64, 48, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
        cbinfer_stream_set_threshold_all(s.get(), 0.02f);
        for (auto &f : frames) push(s.get(), f, 64, 48);
        *result = output_of(s.get());
    };
    std::vector<float> single;
    run(&single);
    std::vector<std::vector<float>> results(3);
    std::vector<std::thread> threads;
    for (auto &r : results) threads.emplace_back(run, &r);
    for (auto &t : threads) t.join();
    for (auto &r : results) EXPECT_EQ(r, single);
}

// CBINFER_PARAM_THREADS: 1, 2, 3, 5 threads (more than the cores of a small
// machine, so that detection blocks, Eq. 4 bands and chunks split unevenly)
// and the default. At τ = 0 each equals dense; at τ = 0.01 they all give the
// same output. Changing the setting re-creates the layers, so the next frame
// runs dense.
TEST(Stream, ThreadCountKeepsResults)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 6, kCropX, kCropY, kCropW, kCropH);
    StreamPtr dense = make_stream(net.get(), kCropW, kCropH, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
    std::vector<std::vector<float>> dense_out;
    for (auto &f : frames) {
        push(dense.get(), f, kCropW, kCropH);
        dense_out.push_back(output_of(dense.get()));
    }
    std::vector<std::vector<float>> outs;
    for (int threads : {1, 2, 3, 5, 0}) {
        for (float tau : {0.f, 0.01f}) {
            StreamPtr s = make_stream(net.get(), kCropW, kCropH, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
            ASSERT_EQ(cbinfer_stream_set_threshold_all(s.get(), tau), CBINFER_STATUS_SUCCESS);
            ASSERT_EQ(cbinfer_stream_set_param(s.get(), CBINFER_PARAM_THREADS, threads),
                      CBINFER_STATUS_SUCCESS);
            double v = -1;
            ASSERT_EQ(cbinfer_stream_get_param(s.get(), CBINFER_PARAM_THREADS, &v), CBINFER_STATUS_SUCCESS);
            EXPECT_EQ(v, threads);
            for (size_t f = 0; f < frames.size(); ++f) {
                push(s.get(), frames[f], kCropW, kCropH);
                if (tau == 0.f)
                    EXPECT_LE(cbi_test_max_abs_diff(output_of(s.get()), dense_out[f]), 1e-4f)
                        << threads << " threads, frame " << f;
            }
            cbinfer_frame_stats fs;
            ASSERT_EQ(cbinfer_stream_frame_stats(s.get(), &fs), CBINFER_STATUS_SUCCESS);
            EXPECT_LT(fs.changed_share, 1.0);
            if (tau > 0.f) outs.push_back(output_of(s.get()));
        }
    }
    for (size_t i = 1; i < outs.size(); ++i) EXPECT_LE(cbi_test_max_abs_diff(outs[0], outs[i]), 1e-5f);

    StreamPtr s = make_stream(net.get(), kCropW, kCropH, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    push(s.get(), frames[0], kCropW, kCropH);
    push(s.get(), frames[1], kCropW, kCropH);
    ASSERT_EQ(cbinfer_stream_set_param(s.get(), CBINFER_PARAM_THREADS, 1), CBINFER_STATUS_SUCCESS);
    std::vector<float> tmp((size_t)3 * kCropW * kCropH);
    EXPECT_EQ(cbinfer_stream_read_output(s.get(), tmp.data(), tmp.size()), CBINFER_STATUS_NOT_READY);
    push(s.get(), frames[2], kCropW, kCropH);
    cbinfer_frame_stats fs;
    ASSERT_EQ(cbinfer_stream_frame_stats(s.get(), &fs), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(fs.frame_index, 0);
    EXPECT_DOUBLE_EQ(fs.changed_share, 1.0);
}

TEST(Stream, StatsCoverEveryLayer)
{
    NetPtr net = load("scene-labeling-synthetic");
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 2, kCropX, kCropY, 64, 48);
    StreamPtr s = make_stream(net.get(), 64, 48, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    ASSERT_EQ(cbinfer_stream_set_param(s.get(), CBINFER_PARAM_COLLECT_STATS, 1), CBINFER_STATUS_SUCCESS);
    for (auto &f : frames) push(s.get(), f, 64, 48);
    int n = cbinfer_stream_layer_count(s.get());
    ASSERT_GT(n, 0);
    int convs = 0;
    for (int i = 0; i < n; ++i) {
        cbinfer_layer_stats ls;
        ASSERT_EQ(cbinfer_stream_layer_stats(s.get(), i, &ls), CBINFER_STATUS_SUCCESS);
        EXPECT_NE(ls.name, nullptr);
        EXPECT_LE(ls.changed_px, ls.total_px);
        EXPECT_LE(ls.macs, ls.dense_macs);
        if (std::strcmp(ls.op, "Conv") == 0) {
            ++convs;
            EXPECT_GT(ls.dense_macs, 0);
            EXPECT_GE(ls.total_ms, 0.0);
        }
    }
    EXPECT_EQ(convs, cbinfer_network_conv_count(net.get()));
    cbinfer_layer_stats ls;
    EXPECT_EQ(cbinfer_stream_layer_stats(s.get(), n, &ls), CBINFER_STATUS_BAD_PARAM);
    cbinfer_frame_stats fs;
    ASSERT_EQ(cbinfer_stream_frame_stats(s.get(), &fs), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(fs.host_syncs, 0) << "the CPU backend has no device to wait for";
}

TEST(Api, EveryStatusHasAString)
{
    const cbinfer_status all[] = {
        CBINFER_STATUS_SUCCESS, CBINFER_STATUS_NULL_ARGUMENT, CBINFER_STATUS_BAD_PARAM,
        CBINFER_STATUS_BAD_FRAME_SIZE, CBINFER_STATUS_UNKNOWN_NODE, CBINFER_STATUS_NOT_READY,
        CBINFER_STATUS_BUFFER_TOO_SMALL, CBINFER_STATUS_MODEL_IO, CBINFER_STATUS_MODEL_MALFORMED,
        CBINFER_STATUS_MODEL_UNSUPPORTED_OP, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
        CBINFER_STATUS_MODEL_WEIGHT_MISMATCH, CBINFER_STATUS_MODEL_INVALID_GRAPH,
        CBINFER_STATUS_OUT_OF_MEMORY, CBINFER_STATUS_BACKEND_UNAVAILABLE,
        CBINFER_STATUS_BACKEND_ERROR, CBINFER_STATUS_INTERNAL, CBINFER_STATUS_FILE_IO};
    const std::string unknown = cbinfer_status_string((cbinfer_status)12345);
    for (cbinfer_status s : all) {
        std::string text = cbinfer_status_string(s);
        EXPECT_FALSE(text.empty());
        EXPECT_NE(text, unknown) << (int)s;
    }
    EXPECT_EQ(cbinfer_version(), (unsigned)CBINFER_VERSION_NUMBER);
    for (int i = 0; i < CBINFER_STEP_COUNT; ++i) EXPECT_NE(cbinfer_step_name((cbinfer_step)i), nullptr);
}

TEST(Api, MisuseReturnsDocumentedStatus)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    cbinfer_stream_t *s = nullptr;
    char err[256];
    EXPECT_EQ(cbinfer_stream_create(nullptr, 32, 32, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE,
                                    CBINFER_PRECISION_FP32, &s, err, sizeof err),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(s, nullptr);
    EXPECT_EQ(cbinfer_stream_create(net.get(), 32, 32, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE,
                                    CBINFER_PRECISION_FP32, nullptr, err, sizeof err),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_create(net.get(), 0, 32, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE,
                                    CBINFER_PRECISION_FP32, &s, err, sizeof err),
              CBINFER_STATUS_BAD_FRAME_SIZE);
    EXPECT_EQ(cbinfer_stream_create(net.get(), 32, 32, CBINFER_BACKEND_CPU, (cbinfer_mode)7,
                                    CBINFER_PRECISION_FP32, &s, err, sizeof err),
              CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(std::string(err).find("unknown mode 7"), std::string::npos) << err;
    EXPECT_EQ(cbinfer_stream_create(net.get(), 32, 32, (cbinfer_backend)7, CBINFER_MODE_DENSE,
                                    CBINFER_PRECISION_FP32, &s, err, sizeof err),
              CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(std::string(err).find("unknown backend 7"), std::string::npos) << err;
    EXPECT_EQ(cbinfer_stream_create(net.get(), 32, 32, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE,
                                    CBINFER_PRECISION_FP16, &s, err, sizeof err),
              CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(std::string(err).find("fp32"), std::string::npos) << err;
    if (!cbi_test_has_cuda_device()) {
        EXPECT_EQ(cbinfer_stream_create(net.get(), 32, 32, CBINFER_BACKEND_CUDA,
                                        CBINFER_MODE_DENSE, CBINFER_PRECISION_FP32, &s, err,
                                        sizeof err),
                  CBINFER_STATUS_BACKEND_UNAVAILABLE);
        EXPECT_EQ(s, nullptr);
    }

    StreamPtr st = make_stream(net.get(), 32, 24, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(st);
    std::vector<uint8_t> frame(32 * 24 * 3, 7);
    std::vector<float> out(3 * 32 * 24);
    EXPECT_EQ(cbinfer_stream_read_output(st.get(), out.data(), out.size()), CBINFER_STATUS_NOT_READY);
    EXPECT_EQ(cbinfer_stream_push_rgb8(st.get(), nullptr, 32, 24, 96), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_push_rgb8(nullptr, frame.data(), 32, 24, 96), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_push_rgb8(st.get(), frame.data(), 24, 32, 96),
              CBINFER_STATUS_BAD_FRAME_SIZE);
    EXPECT_NE(std::string(cbinfer_stream_last_error(st.get())).find("32x24"), std::string::npos);
    EXPECT_EQ(cbinfer_stream_push_rgb8(st.get(), frame.data(), 32, 24, 10), CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(std::string(cbinfer_stream_last_error(st.get())).find("row stride 10"),
              std::string::npos);
    EXPECT_EQ(cbinfer_stream_push_nchw(st.get(), out.data(), 4, 24, 32), CBINFER_STATUS_BAD_FRAME_SIZE);
    EXPECT_NE(std::string(cbinfer_stream_last_error(st.get())).find("tensor has 4 channels"),
              std::string::npos);
    ASSERT_EQ(cbinfer_stream_push_rgb8(st.get(), frame.data(), 32, 24, 96), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(cbinfer_stream_read_output(st.get(), out.data(), out.size() - 1),
              CBINFER_STATUS_BUFFER_TOO_SMALL);
    EXPECT_EQ(cbinfer_stream_read_output(st.get(), nullptr, out.size()), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_set_threshold(st.get(), "no-such-node", 0.1f), CBINFER_STATUS_UNKNOWN_NODE);
    EXPECT_EQ(cbinfer_stream_set_threshold(st.get(), nullptr, 0.1f), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_set_threshold_all(st.get(), -1.f), CBINFER_STATUS_BAD_PARAM);
    EXPECT_EQ(cbinfer_stream_set_threshold_all(st.get(), NAN), CBINFER_STATUS_BAD_PARAM);
    const char *first = cbinfer_network_conv_name(net.get(), 0);
    ASSERT_NE(first, nullptr);
    EXPECT_EQ(cbinfer_network_conv_name(net.get(), -1), nullptr);
    EXPECT_EQ(cbinfer_stream_set_threshold(st.get(), first, 0.25f), CBINFER_STATUS_SUCCESS);
    float t = 0;
    EXPECT_EQ(cbinfer_stream_get_threshold(st.get(), first, &t), CBINFER_STATUS_SUCCESS);
    EXPECT_FLOAT_EQ(t, 0.25f);
    EXPECT_EQ(cbinfer_stream_set_param(st.get(), CBINFER_PARAM_THRESHOLD_SCALE, -1), CBINFER_STATUS_BAD_PARAM);
    EXPECT_EQ(cbinfer_stream_set_param(st.get(), (cbinfer_param)99, 1), CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(std::string(cbinfer_stream_last_error(st.get())).find("unknown parameter 99"),
              std::string::npos);
    double v = 0;
    EXPECT_EQ(cbinfer_stream_set_param(st.get(), CBINFER_PARAM_THRESHOLD_SCALE, 2), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(cbinfer_stream_get_param(st.get(), CBINFER_PARAM_THRESHOLD_SCALE, &v), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(v, 2.0);
    EXPECT_EQ(cbinfer_stream_set_param(st.get(), CBINFER_PARAM_THREADS, -1), CBINFER_STATUS_BAD_PARAM);
    EXPECT_EQ(cbinfer_stream_set_param(st.get(), CBINFER_PARAM_THREADS, 1.5), CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(std::string(cbinfer_stream_last_error(st.get())).find("whole number"), std::string::npos);
    EXPECT_EQ(cbinfer_stream_set_param(st.get(), CBINFER_PARAM_THREADS, 5000), CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(std::string(cbinfer_stream_last_error(st.get())).find("5000 outside [0, 4096]"),
              std::string::npos);
    EXPECT_EQ(cbinfer_stream_set_param(st.get(), CBINFER_PARAM_THREADS, 64), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(cbinfer_stream_get_param(st.get(), CBINFER_PARAM_THREADS, &v), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(v, 64.0);
    EXPECT_EQ(cbinfer_stream_reset(nullptr), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_frame_stats(st.get(), nullptr), CBINFER_STATUS_NULL_ARGUMENT);
    cbinfer_stream_destroy(nullptr);
    cbinfer_network_free(nullptr);
}

TEST(Api, BackendDescribe)
{
    char buf[256];
    ASSERT_EQ(cbinfer_backend_describe(CBINFER_BACKEND_CPU, buf, sizeof buf), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(std::string(buf).rfind("oneDNN ", 0), 0u) << buf;
    EXPECT_NE(std::string(buf).find("isa "), std::string::npos) << buf;
    char tiny[8];
    ASSERT_EQ(cbinfer_backend_describe(CBINFER_BACKEND_CPU, tiny, sizeof tiny), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(std::strlen(tiny), sizeof tiny - 1);
    EXPECT_EQ(cbinfer_backend_describe(CBINFER_BACKEND_CPU, nullptr, 8), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_backend_describe(CBINFER_BACKEND_CPU, buf, 0), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_backend_describe((cbinfer_backend)7, buf, sizeof buf), CBINFER_STATUS_BAD_PARAM);
#ifndef CBINFER_WITH_CUDA
    EXPECT_EQ(cbinfer_backend_describe(CBINFER_BACKEND_CUDA, buf, sizeof buf),
              CBINFER_STATUS_BACKEND_UNAVAILABLE);
#endif
}

TEST(Api, FrameTooSmallForTheNetwork)
{
    NetPtr net = load("scene-labeling-synthetic");
    ASSERT_TRUE(net);
    cbinfer_stream_t *s = nullptr;
    char err[256] = "";
    // Two 2x2 max-pools: a 2x2 frame leaves nothing for the third conv.
    EXPECT_EQ(cbinfer_stream_create(net.get(), 2, 2, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER,
                                    CBINFER_PRECISION_FP32, &s, err, sizeof err),
              CBINFER_STATUS_BAD_FRAME_SIZE);
    EXPECT_EQ(s, nullptr);
    EXPECT_GT(std::strlen(err), 0u);
}
