// The public API end to end on the CUDA backend, against the CPU backend:
// real frames of vtest.avi through the waifu2x vgg_7 model and the synthetic
// scene-labeling network. Every test skips with a reason when no CUDA device
// can be used.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "cbinfer.h"
#include "test_util.h"

namespace {

// A crop of vtest.avi where pedestrians walk through the frame.
constexpr int kCropX = 300, kCropY = 250, kCrop = 96, kFrames = 20;
// Change threshold on the first convolution only: its input is the pushed
// frame, bit-identical on both backends, so both detect the same pixels;
// deeper layers at τ = 0 recompute wherever anything changed.
constexpr float kFirstTau = 0.02f;

// On 20 real frames: CUDA change-based equals CPU change-based, cuDNN dense
// equals CPU dense, and CUDA change-based at τ = 0 equals CUDA dense, all
// within 1e-4 (fp32).
void expect_cuda_matches_cpu(const std::string &model)
{
    NetPtr net = load(model);
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, kFrames, kCropX, kCropY, kCrop, kCrop);
    StreamPtr cpu_dense = make_stream(net.get(), kCrop, kCrop, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
    StreamPtr cpu_cb = make_stream(net.get(), kCrop, kCrop, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    StreamPtr gpu_dense = make_stream(net.get(), kCrop, kCrop, CBINFER_BACKEND_CUDA, CBINFER_MODE_DENSE);
    StreamPtr gpu_cb = make_stream(net.get(), kCrop, kCrop, CBINFER_BACKEND_CUDA, CBINFER_MODE_CBINFER);
    StreamPtr gpu_cb0 = make_stream(net.get(), kCrop, kCrop, CBINFER_BACKEND_CUDA, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(cpu_dense && cpu_cb && gpu_dense && gpu_cb && gpu_cb0);
    const char *conv1 = cbinfer_network_conv_name(net.get(), 0);
    ASSERT_NE(conv1, nullptr);
    ASSERT_EQ(cbinfer_stream_set_threshold(cpu_cb.get(), conv1, kFirstTau), CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(cbinfer_stream_set_threshold(gpu_cb.get(), conv1, kFirstTau), CBINFER_STATUS_SUCCESS);
    double share_sum = 0;
    for (int f = 0; f < kFrames; ++f) {
        for (auto *s : {cpu_dense.get(), cpu_cb.get(), gpu_dense.get(), gpu_cb.get(), gpu_cb0.get()})
            push(s, frames[f], kCrop, kCrop);
        const std::vector<float> cd = output_of(cpu_dense.get()), gd = output_of(gpu_dense.get());
        EXPECT_LE(cbi_test_max_abs_diff(cd, gd), 1e-4f) << model << " dense, frame " << f;
        EXPECT_LE(cbi_test_max_abs_diff(output_of(cpu_cb.get()), output_of(gpu_cb.get())), 1e-4f)
            << model << " change-based, frame " << f;
        EXPECT_LE(cbi_test_max_abs_diff(gd, output_of(gpu_cb0.get())), 1e-4f)
            << model << " tau 0 vs dense, frame " << f;
        cbinfer_frame_stats fc, fg;
        ASSERT_EQ(cbinfer_stream_frame_stats(cpu_cb.get(), &fc), CBINFER_STATUS_SUCCESS);
        ASSERT_EQ(cbinfer_stream_frame_stats(gpu_cb.get(), &fg), CBINFER_STATUS_SUCCESS);
        EXPECT_EQ(fg.frame_index, f);
        EXPECT_EQ(fg.dense_macs, fc.dense_macs);
        if (f > 0) {
            EXPECT_LE(fg.macs, fg.dense_macs);
            share_sum += fg.changed_share;
        }
        // The first layer's decisions are the same on both backends.
        cbinfer_layer_stats lc, lg;
        for (int i = 0; i < cbinfer_stream_layer_count(cpu_cb.get()); ++i) {
            ASSERT_EQ(cbinfer_stream_layer_stats(cpu_cb.get(), i, &lc), CBINFER_STATUS_SUCCESS);
            if (std::strcmp(lc.name, conv1) != 0) continue;
            ASSERT_EQ(cbinfer_stream_layer_stats(gpu_cb.get(), i, &lg), CBINFER_STATUS_SUCCESS);
            EXPECT_EQ(lg.changed_in_px, lc.changed_in_px) << "frame " << f;
            EXPECT_EQ(lg.changed_px, lc.changed_px) << "frame " << f;
        }
    }
    EXPECT_LT(share_sum / (kFrames - 1), 0.95) << model;
}

} // namespace

TEST(GpuStream, CudaMatchesCpuVgg7)
{
    SKIP_WITHOUT_CUDA();
    expect_cuda_matches_cpu("vgg7-noise1");
}

TEST(GpuStream, CudaMatchesCpuSceneLabeling)
{
    SKIP_WITHOUT_CUDA();
    expect_cuda_matches_cpu("scene-labeling-synthetic");
}

TEST(GpuStream, ZeroThresholdEqualsDenseWithReusedPointwiseIndices)
{
    SKIP_WITHOUT_CUDA();
    NetPtr net = load("scene-labeling-synthetic");
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 6, kCropX, kCropY, kCrop, kCrop);
    StreamPtr dense = make_stream(net.get(), kCrop, kCrop, CBINFER_BACKEND_CUDA, CBINFER_MODE_DENSE);
    StreamPtr cb = make_stream(net.get(), kCrop, kCrop, CBINFER_BACKEND_CUDA, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(dense && cb);
    ASSERT_EQ(cbinfer_stream_set_param(cb.get(), CBINFER_PARAM_REUSE_1X1_INDICES, 1),
              CBINFER_STATUS_SUCCESS);
    for (auto &fr : frames) {
        push(dense.get(), fr, kCrop, kCrop);
        push(cb.get(), fr, kCrop, kCrop);
        EXPECT_LE(cbi_test_max_abs_diff(output_of(dense.get()), output_of(cb.get())), 1e-4f);
    }
}

// Closed loop against feed-forward (paper Sec. III-C) on CUDA, as the CPU
// test: a slow brightness ramp on a real textured crop, every step (0.004)
// below τ (0.01), the total (0.16) 16 τ. Stated bound: the closed loop stays
// within 0.05 (5 τ) of dense at every frame; feed-forward ends more than 0.1
// away.
TEST(GpuStream, ClosedLoopBoundsDriftFeedForwardDoesNot)
{
    SKIP_WITHOUT_CUDA();
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    const int w = 48, h = 40, steps = 40;
    const float step = 0.004f, tau = 0.01f;
    auto tex = cbi_test_read_frames("vtest.avi", 0, 1, kCropX, kCropY, w, h)[0];
    StreamPtr dense = make_stream(net.get(), w, h, CBINFER_BACKEND_CUDA, CBINFER_MODE_DENSE);
    StreamPtr closed = make_stream(net.get(), w, h, CBINFER_BACKEND_CUDA, CBINFER_MODE_CBINFER);
    StreamPtr ff = make_stream(net.get(), w, h, CBINFER_BACKEND_CUDA, CBINFER_MODE_CBINFER_FF);
    ASSERT_TRUE(dense && closed && ff);
    ASSERT_EQ(cbinfer_stream_set_threshold_all(closed.get(), tau), CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(cbinfer_stream_set_threshold_all(ff.get(), tau), CBINFER_STATUS_SUCCESS);
    std::vector<float> frame((size_t)3 * h * w);
    float closed_err = 0.f, ff_err = 0.f;
    for (int t = 0; t < steps; ++t) {
        for (int c = 0; c < 3; ++c)
            for (int p = 0; p < h * w; ++p)
                frame[(size_t)c * h * w + p] = 0.6f * tex[(size_t)p * 3 + c] / 255.f + t * step;
        for (auto *s : {dense.get(), closed.get(), ff.get()})
            ASSERT_EQ(cbinfer_stream_push_nchw(s, frame.data(), 3, h, w), CBINFER_STATUS_SUCCESS)
                << cbinfer_stream_last_error(s);
        std::vector<float> ref = output_of(dense.get());
        closed_err = std::fmax(closed_err, cbi_test_max_abs_diff(ref, output_of(closed.get())));
        ff_err = cbi_test_max_abs_diff(ref, output_of(ff.get()));
    }
    EXPECT_LT(closed_err, 0.05f);
    EXPECT_GT(ff_err, 0.1f);
}

// fp16 (half storage, fp32 accumulation) and TF32 against fp32 through the
// seven layers of vgg_7, dense and change-based at τ = 0. Stated tolerance
// for outputs in [0, 1]: max abs 0.01 and mean abs 1e-3. A numpy emulation of
// half storage (inputs, weights and every activation rounded to fp16, fp32
// accumulation) on these frames gives max 1.4e-3 and mean 2.3e-4; the bounds
// leave room for cuDNN's extra rounding of the pre-bias sum and for
// accumulation order.
TEST(GpuStream, ReducedPrecisionWithinToleranceOfFp32)
{
    SKIP_WITHOUT_CUDA();
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 5, kCropX, kCropY, kCrop, kCrop);
    const auto ref_out = dense_outputs(net.get(), frames, kCrop, kCrop, CBINFER_BACKEND_CUDA);
    ASSERT_EQ(ref_out.size(), frames.size());
    for (cbinfer_precision prec : {CBINFER_PRECISION_FP16, CBINFER_PRECISION_TF32}) {
        StreamPtr dense = make_stream(net.get(), kCrop, kCrop, CBINFER_BACKEND_CUDA,
                                      CBINFER_MODE_DENSE, prec);
        StreamPtr cb = make_stream(net.get(), kCrop, kCrop, CBINFER_BACKEND_CUDA,
                                   CBINFER_MODE_CBINFER, prec);
        ASSERT_TRUE(dense && cb);
        for (size_t f = 0; f < frames.size(); ++f) {
            push(dense.get(), frames[f], kCrop, kCrop);
            push(cb.get(), frames[f], kCrop, kCrop);
            const std::vector<float> &r = ref_out[f];
            for (auto *s : {dense.get(), cb.get()}) {
                const std::vector<float> o = output_of(s);
                EXPECT_LE(cbi_test_max_abs_diff(r, o), 0.01f) << "precision " << prec << " frame " << f;
                EXPECT_LE(cbi_test_mean_abs_diff(r, o), 1e-3f) << "precision " << prec << " frame " << f;
            }
        }
    }
}

TEST(GpuStream, UnchangedFrameDoesNoConvWork)
{
    SKIP_WITHOUT_CUDA();
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    auto fr = cbi_test_read_frames("vtest.avi", 3, 1, kCropX, kCropY, kCrop, kCrop)[0];
    StreamPtr cb = make_stream(net.get(), kCrop, kCrop, CBINFER_BACKEND_CUDA, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(cb);
    push(cb.get(), fr, kCrop, kCrop);
    const std::vector<float> first = output_of(cb.get());
    push(cb.get(), fr, kCrop, kCrop);
    cbinfer_frame_stats fs;
    ASSERT_EQ(cbinfer_stream_frame_stats(cb.get(), &fs), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(fs.macs, 0);
    EXPECT_EQ(fs.changed_share, 0.0);
    EXPECT_EQ(output_of(cb.get()), first);
}

TEST(GpuStream, ResetRunsDenseAgain)
{
    SKIP_WITHOUT_CUDA();
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 3, kCropX, kCropY, 40, 40);
    StreamPtr cb = make_stream(net.get(), 40, 40, CBINFER_BACKEND_CUDA, CBINFER_MODE_CBINFER);
    StreamPtr dense = make_stream(net.get(), 40, 40, CBINFER_BACKEND_CUDA, CBINFER_MODE_DENSE);
    ASSERT_TRUE(cb && dense);
    ASSERT_EQ(cbinfer_stream_set_threshold_all(cb.get(), 0.05f), CBINFER_STATUS_SUCCESS);
    push(cb.get(), frames[0], 40, 40);
    push(cb.get(), frames[1], 40, 40);
    ASSERT_EQ(cbinfer_stream_reset(cb.get()), CBINFER_STATUS_SUCCESS);
    push(cb.get(), frames[2], 40, 40);
    cbinfer_frame_stats fs;
    ASSERT_EQ(cbinfer_stream_frame_stats(cb.get(), &fs), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(fs.frame_index, 0);
    EXPECT_DOUBLE_EQ(fs.changed_share, 1.0);
    push(dense.get(), frames[2], 40, 40);
    EXPECT_LE(cbi_test_max_abs_diff(output_of(dense.get()), output_of(cb.get())), 1e-5f);
}

// Per-step times with statistics on: the change-based steps of every Conv
// after the first frame, and the layer totals.
TEST(GpuStream, StatsTimeEveryStep)
{
    SKIP_WITHOUT_CUDA();
    NetPtr net = load("scene-labeling-synthetic");
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 3, kCropX, kCropY, 64, 48);
    StreamPtr s = make_stream(net.get(), 64, 48, CBINFER_BACKEND_CUDA, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(s);
    ASSERT_EQ(cbinfer_stream_set_param(s.get(), CBINFER_PARAM_COLLECT_STATS, 1), CBINFER_STATUS_SUCCESS);
    for (auto &f : frames) push(s.get(), f, 64, 48);
    int convs = 0;
    for (int i = 0; i < cbinfer_stream_layer_count(s.get()); ++i) {
        cbinfer_layer_stats ls;
        ASSERT_EQ(cbinfer_stream_layer_stats(s.get(), i, &ls), CBINFER_STATUS_SUCCESS);
        EXPECT_LE(ls.changed_px, ls.total_px);
        EXPECT_LE(ls.macs, ls.dense_macs);
        EXPECT_GE(ls.total_ms, 0.0);
        if (std::strcmp(ls.op, "Conv") != 0) continue;
        ++convs;
        if (ls.changed_in_px > 0) {
            EXPECT_GT(ls.step_ms[CBINFER_STEP_CHANGE_DETECT], 0.0) << ls.name;
        }
        if (ls.changed_px > 0) {
            EXPECT_GT(ls.step_ms[CBINFER_STEP_GEMM], 0.0) << ls.name;
        }
    }
    EXPECT_EQ(convs, cbinfer_network_conv_count(net.get()));
}

// The push waits for the device at least once (its final synchronisation),
// and change-based frames read back change counts: more waits than dense,
// at most a few per convolution.
TEST(GpuStream, HostSyncsAreCountedPerFrame)
{
    SKIP_WITHOUT_CUDA();
    NetPtr net = load("scene-labeling-synthetic");
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 3, kCropX, kCropY, 64, 48);
    StreamPtr dense = make_stream(net.get(), 64, 48, CBINFER_BACKEND_CUDA, CBINFER_MODE_DENSE);
    StreamPtr cb = make_stream(net.get(), 64, 48, CBINFER_BACKEND_CUDA, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(dense && cb);
    const int convs = cbinfer_network_conv_count(net.get());
    for (auto &f : frames) {
        push(dense.get(), f, 64, 48);
        push(cb.get(), f, 64, 48);
        cbinfer_frame_stats d, c;
        ASSERT_EQ(cbinfer_stream_frame_stats(dense.get(), &d), CBINFER_STATUS_SUCCESS);
        ASSERT_EQ(cbinfer_stream_frame_stats(cb.get(), &c), CBINFER_STATUS_SUCCESS);
        EXPECT_GE(d.host_syncs, 1);
        EXPECT_LE(d.host_syncs, 4);
        EXPECT_GE(c.host_syncs, 1);
        EXPECT_LE(c.host_syncs, 4 + 3 * convs);
        if (c.frame_index > 0) EXPECT_GT(c.host_syncs, d.host_syncs) << "no change count read";
    }
}

// One shared network, N threads each with its own CUDA stream context.
TEST(GpuStream, ThreadsShareOneNetwork)
{
    SKIP_WITHOUT_CUDA();
    NetPtr net = load("scene-labeling-synthetic");
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 4, kCropX, kCropY, 64, 48);
    const char *conv1 = cbinfer_network_conv_name(net.get(), 0);
    ASSERT_NE(conv1, nullptr);
    auto run = [&](std::vector<float> *result) {
        StreamPtr s = make_stream(net.get(), 64, 48, CBINFER_BACKEND_CUDA, CBINFER_MODE_CBINFER);
        if (!s) return;
        cbinfer_stream_set_threshold(s.get(), conv1, kFirstTau);
        for (auto &f : frames)
            if (cbinfer_stream_push_rgb8(s.get(), f.data(), 64, 48, 64 * 3) != CBINFER_STATUS_SUCCESS)
                return;
        *result = output_of(s.get());
    };
    std::vector<float> single;
    run(&single);
    ASSERT_FALSE(single.empty());
    std::vector<std::vector<float>> results(3);
    std::vector<std::thread> threads;
    for (auto &r : results) threads.emplace_back(run, &r);
    for (auto &t : threads) t.join();
    // Each context picks its cuDNN algorithms by timing, so results may differ
    // in the last bits, not more.
    for (auto &r : results) EXPECT_LE(cbi_test_max_abs_diff(r, single), 1e-4f);
}
