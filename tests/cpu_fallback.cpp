// Adaptive dense fallback (ANCHORS point 5): past a layer's break-even share
// of changed output pixels, the change-based conv computes its output dense.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cbinfer.h"
#include "test_util.h"

namespace {

// The crop of vtest.avi the stream suite uses: pedestrians walk through it.
constexpr int kX = 300, kY = 250, kW = 96, kH = 80;

struct ConvStats {
    int convs = 0, fell_back = 0;  // conv layers; those that ran dense
    bool macs_dense = true;        // every dense-run conv did dense_macs
    int64_t macs = 0;
};

// The statistics of s's conv layers, in network order.
std::vector<cbinfer_layer_stats> conv_layers(const cbinfer_stream_t *s)
{
    std::vector<cbinfer_layer_stats> convs;
    for (int i = 0; i < cbinfer_stream_layer_count(s); ++i) {
        cbinfer_layer_stats ls;
        EXPECT_EQ(cbinfer_stream_layer_stats(s, i, &ls), CBINFER_STATUS_SUCCESS);
        if (std::string(ls.op) == "Conv") convs.push_back(ls);
    }
    return convs;
}

// Whether a conv detected changes this frame (statistics collected): a
// predicted fallback does not.
bool detected(const cbinfer_layer_stats &ls)
{
    return ls.step_ms[CBINFER_STEP_CHANGE_DETECT] > 0;
}

ConvStats conv_stats(const cbinfer_stream_t *s)
{
    ConvStats r;
    for (const cbinfer_layer_stats &ls : conv_layers(s)) {
        ++r.convs;
        r.macs += ls.macs;
        if (ls.ran_dense) {
            ++r.fell_back;
            r.macs_dense = r.macs_dense && ls.macs == ls.dense_macs && ls.changed_px == ls.total_px;
        }
    }
    return r;
}

// Threshold 0 and any break-even: the output equals dense on every frame;
// returns the number of (frame, conv) fallbacks after the first frame.
int expect_equals_dense(const std::string &model, cbinfer_mode mode, float break_even)
{
    NetPtr net = load(model);
    EXPECT_TRUE(net);
    if (!net) return -1;
    auto frames = cbi_test_read_frames("vtest.avi", 0, 5, kX, kY, kW, kH);
    StreamPtr dense = make_stream(net.get(), kW, kH, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
    StreamPtr cb = make_stream(net.get(), kW, kH, CBINFER_BACKEND_CPU, mode);
    EXPECT_TRUE(dense && cb);
    if (!dense || !cb) return -1;
    EXPECT_EQ(cbinfer_stream_set_break_even_all(cb.get(), break_even), CBINFER_STATUS_SUCCESS);
    int fallbacks = 0;
    for (size_t f = 0; f < frames.size(); ++f) {
        push(dense.get(), frames[f], kW, kH);
        push(cb.get(), frames[f], kW, kH);
        EXPECT_LE(cbi_test_max_abs_diff(output_of(dense.get()), output_of(cb.get())), 1e-4f)
            << model << " mode " << mode << " break-even " << break_even << " frame " << f;
        if (f > 0) fallbacks += conv_stats(cb.get()).fell_back;
    }
    return fallbacks;
}

} // namespace

TEST(Fallback, BreakEvenZeroRunsEveryConvDenseEveryFrame)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 6, kX, kY, kW, kH);
    StreamPtr dense = make_stream(net.get(), kW, kH, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
    StreamPtr cb = make_stream(net.get(), kW, kH, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(dense && cb);
    ASSERT_EQ(cbinfer_stream_set_break_even_all(cb.get(), 0.f), CBINFER_STATUS_SUCCESS);
    for (size_t f = 0; f < frames.size(); ++f) {
        push(dense.get(), frames[f], kW, kH);
        push(cb.get(), frames[f], kW, kH);
        ConvStats c = conv_stats(cb.get());
        ASSERT_GT(c.convs, 0);
        // Real frames at τ = 0 always change somewhere, so every conv passes b = 0.
        EXPECT_EQ(c.fell_back, c.convs) << "frame " << f;
        EXPECT_TRUE(c.macs_dense) << "frame " << f;
        cbinfer_frame_stats fs;
        ASSERT_EQ(cbinfer_stream_frame_stats(cb.get(), &fs), CBINFER_STATUS_SUCCESS);
        EXPECT_EQ(fs.macs, fs.dense_macs) << "frame " << f;
        EXPECT_DOUBLE_EQ(fs.changed_share, 1.0) << "frame " << f;
        EXPECT_LE(cbi_test_max_abs_diff(output_of(dense.get()), output_of(cb.get())), 1e-4f)
            << "frame " << f;
    }
}

TEST(Fallback, BreakEvenOneNeverFallsBack)
{
    // 1 is the default; set it anyway to exercise the setter.
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 6, kX, kY, kW, kH);
    StreamPtr cb = make_stream(net.get(), kW, kH, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(cb);
    ASSERT_EQ(cbinfer_stream_set_break_even_all(cb.get(), 1.f), CBINFER_STATUS_SUCCESS);
    // An inverted frame changes every pixel: even then b = 1 keeps the
    // change-based path (the share is 1, not above it).
    std::vector<uint8_t> inverted = frames[0];
    for (auto &v : inverted) v = (uint8_t)(255 - v);
    frames.push_back(inverted);
    for (size_t f = 0; f < frames.size(); ++f) {
        push(cb.get(), frames[f], kW, kH);
        if (f == 0) continue;
        EXPECT_EQ(conv_stats(cb.get()).fell_back, 0) << "frame " << f;
    }
}

TEST(Fallback, ZeroThresholdEqualsDenseForAnyBreakEven)
{
    for (float b : {0.f, 0.05f, 0.3f, 0.7f, 1.f}) {
        const int n = expect_equals_dense("vgg7-noise1", CBINFER_MODE_CBINFER, b);
        if (b == 0.f) EXPECT_GT(n, 0);
        if (b == 1.f) EXPECT_EQ(n, 0);
    }
    // Pointwise convs, pooling and concatenation downstream of a fallback.
    EXPECT_GT(expect_equals_dense("scene-labeling-synthetic", CBINFER_MODE_CBINFER, 0.f), 0);
    EXPECT_GE(expect_equals_dense("scene-labeling-synthetic", CBINFER_MODE_CBINFER, 0.3f), 0);
    EXPECT_GT(expect_equals_dense("vgg7-noise1", CBINFER_MODE_CBINFER_FF, 0.f), 0);
    EXPECT_GE(expect_equals_dense("scene-labeling-synthetic", CBINFER_MODE_CBINFER_FF, 0.3f), 0);
}

TEST(Fallback, WithReusedPointwiseIndicesEqualsDense)
{
    NetPtr net = load("scene-labeling-synthetic");
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 5, kX, kY, kW, kH);
    StreamPtr dense = make_stream(net.get(), kW, kH, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
    StreamPtr cb = make_stream(net.get(), kW, kH, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(dense && cb);
    ASSERT_EQ(cbinfer_stream_set_param(cb.get(), CBINFER_PARAM_REUSE_1X1_INDICES, 1),
              CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(cbinfer_stream_set_break_even_all(cb.get(), 0.2f), CBINFER_STATUS_SUCCESS);
    for (auto &fr : frames) {
        push(dense.get(), fr, kW, kH);
        push(cb.get(), fr, kW, kH);
        EXPECT_LE(cbi_test_max_abs_diff(output_of(dense.get()), output_of(cb.get())), 1e-4f);
    }
}

// A scene cut (a Megamind.avi frame after vtest.avi frames) makes every conv
// fall back for that frame only; the next, static frame is change-based again.
// tol: largest difference from the CPU dense output.
static void expect_scene_cut_falls_back_once(cbinfer_backend be, float tol)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 4, kX, kY, kW, kH);
    auto cut = cbi_test_read_frames("Megamind.avi", 30, 1, 100, 100, kW, kH);
    ASSERT_EQ(cut.size(), 1u);
    StreamPtr dense = make_stream(net.get(), kW, kH, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
    StreamPtr cb = make_stream(net.get(), kW, kH, be, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(dense && cb);
    ASSERT_EQ(cbinfer_stream_set_threshold_all(cb.get(), 0.05f), CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(cbinfer_stream_set_break_even_all(cb.get(), 0.5f), CBINFER_STATUS_SUCCESS);
    for (size_t f = 0; f < frames.size(); ++f) {
        push(cb.get(), frames[f], kW, kH);
        if (f > 0) EXPECT_EQ(conv_stats(cb.get()).fell_back, 0) << "vtest frame " << f;
    }
    push(cb.get(), cut[0], kW, kH);
    push(dense.get(), cut[0], kW, kH);
    ConvStats c = conv_stats(cb.get());
    EXPECT_EQ(c.fell_back, c.convs) << "scene cut";
    EXPECT_TRUE(c.macs_dense);
    // Every conv dense from a state equal to its input: exactly the dense output.
    EXPECT_LE(cbi_test_max_abs_diff(output_of(dense.get()), output_of(cb.get())), tol);
    // The same frame again: static, change-based, no work at all.
    push(cb.get(), cut[0], kW, kH);
    c = conv_stats(cb.get());
    EXPECT_EQ(c.fell_back, 0) << "after the cut";
    EXPECT_EQ(c.macs, 0);
    EXPECT_LE(cbi_test_max_abs_diff(output_of(dense.get()), output_of(cb.get())), tol);
}

TEST(Fallback, SceneCutFallsBackForThatFrameOnly)
{
    expect_scene_cut_falls_back_once(CBINFER_BACKEND_CPU, 1e-4f);
}

// After a fallback every state equals its input, as after a reset, including
// pixels that changed by less than τ: from then on the stream computes exactly
// what a stream started on that frame computes.
TEST(Fallback, StateTakesTheInputEverywhere)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    const float tau = 0.05f;  // 12.75 levels of 255
    auto frames = cbi_test_read_frames("vtest.avi", 0, 3, kX, kY, kW, kH);
    // The cut: everything inverted except a band of rows moved by 5 levels,
    // below τ, where a state that is not refreshed stays stale.
    std::vector<uint8_t> cut = frames[2];
    for (int y = 0; y < kH; ++y)
        for (int i = 0; i < kW * 3; ++i) {
            uint8_t &v = cut[(size_t)y * kW * 3 + i];
            v = (y >= 30 && y < 42) ? (uint8_t)(v < 250 ? v + 5 : v - 5) : (uint8_t)(255 - v);
        }
    // Then a patch overlapping the band changes, so the layers recompute
    // around it from their states.
    std::vector<uint8_t> patched = cut;
    for (int y = 24; y < 36; ++y)
        for (int i = 30 * 3; i < 70 * 3; ++i) {
            uint8_t &v = patched[(size_t)y * kW * 3 + i];
            v = (uint8_t)(255 - v);
        }
    StreamPtr cb = make_stream(net.get(), kW, kH, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    StreamPtr fresh = make_stream(net.get(), kW, kH, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(cb && fresh);
    for (auto *s : {cb.get(), fresh.get()})
        ASSERT_EQ(cbinfer_stream_set_threshold_all(s, tau), CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(cbinfer_stream_set_break_even_all(cb.get(), 0.5f), CBINFER_STATUS_SUCCESS);
    for (auto &fr : frames) push(cb.get(), fr, kW, kH);
    push(cb.get(), cut, kW, kH);
    ConvStats c = conv_stats(cb.get());
    ASSERT_EQ(c.fell_back, c.convs);
    push(fresh.get(), cut, kW, kH);
    EXPECT_LE(cbi_test_max_abs_diff(output_of(fresh.get()), output_of(cb.get())), 1e-6f);
    for (const auto *fr : {&patched, &cut}) {
        push(cb.get(), *fr, kW, kH);
        push(fresh.get(), *fr, kW, kH);
        EXPECT_EQ(conv_stats(cb.get()).fell_back, 0);
        EXPECT_LE(cbi_test_max_abs_diff(output_of(fresh.get()), output_of(cb.get())), 1e-6f);
    }
}

// The closed-loop drift test of the stream suite with the fallback active: a
// slow brightness ramp whose steps (0.004) stay below τ (0.01) until the state
// falls τ behind, when nearly every pixel changes at once and the layers fall
// back. The error against dense stays bounded.
TEST(Fallback, ClosedLoopDriftStaysBounded)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    const int w = 48, h = 40, steps = 40;
    const float step = 0.004f, tau = 0.01f;
    auto tex = cbi_test_read_frames("vtest.avi", 0, 1, kX, kY, w, h)[0];
    StreamPtr dense = make_stream(net.get(), w, h, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
    StreamPtr closed = make_stream(net.get(), w, h, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(dense && closed);
    ASSERT_EQ(cbinfer_stream_set_threshold_all(closed.get(), tau), CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(cbinfer_stream_set_break_even_all(closed.get(), 0.5f), CBINFER_STATUS_SUCCESS);
    std::vector<float> frame((size_t)3 * h * w);
    float err = 0.f;
    int fallbacks = 0, partial = 0;
    for (int t = 0; t < steps; ++t) {
        for (int c = 0; c < 3; ++c)
            for (int p = 0; p < h * w; ++p)
                frame[(size_t)c * h * w + p] = 0.6f * tex[(size_t)p * 3 + c] / 255.f + t * step;
        for (auto *s : {dense.get(), closed.get()})
            ASSERT_EQ(cbinfer_stream_push_nchw(s, frame.data(), 3, h, w), CBINFER_STATUS_SUCCESS);
        err = std::fmax(err,
                        cbi_test_max_abs_diff(output_of(dense.get()), output_of(closed.get())));
        if (t > 0) {
            ConvStats c = conv_stats(closed.get());
            fallbacks += c.fell_back;
            partial += c.convs - c.fell_back;
        }
    }
    EXPECT_GT(fallbacks, 0);
    EXPECT_GT(partial, 0);
    EXPECT_LT(err, 0.05f);
}

// The CUDA backend falls back like the CPU one (skipped without a device).
TEST(Fallback, CudaSceneCut)
{
    SKIP_WITHOUT_CUDA();
    expect_scene_cut_falls_back_once(CBINFER_BACKEND_CUDA, 1e-3f);
}

// A conv that fell back (but not the first, which only detection gives a
// change list) predicts its fallback for the next frames: it computes dense
// without detecting, and hands on the outputs its producer's changes reach;
// once those are under its break-even share it detects or recomputes them
// instead. At a threshold just above 0 (at 0 the layers would follow their
// producers' lists instead of detecting) the output equals dense on every
// frame, through fallbacks, predictions and their ends; a static frame costs
// nothing.
TEST(Fallback, PredictedFallbackEqualsDense)
{
    const struct {
        const char *model;
        cbinfer_mode mode;
    } cases[] = {{"vgg7-noise1", CBINFER_MODE_CBINFER},
                 {"nanodet", CBINFER_MODE_CBINFER},
                 {"vgg7-noise1", CBINFER_MODE_CBINFER_FF}};
    for (const auto &c : cases) {
        const char *model = c.model;
        SCOPED_TRACE(c.mode == CBINFER_MODE_CBINFER_FF ? "feed-forward" : "closed loop");
        NetPtr net = load(model);
        ASSERT_TRUE(net) << model;
        const int w = 128, h = 96;
        auto base = cbi_test_read_frames("vtest.avi", 0, 1, 250, 220, w, h);
        ASSERT_EQ(base.size(), 1u);
        // The base frame with an inverted block that moves: large on ten
        // frames in a row (the layers fall back, one more of them on its
        // producer's list each frame, and the first predictions run out),
        // then small on three (the predictions end under the break-even).
        std::vector<std::vector<uint8_t>> frames;
        for (int f = 0; f < 26; ++f) {
            const bool big = f % 13 < 10;
            const int bw = big ? w * 3 / 4 : 10, bh = big ? h * 3 / 4 : 8;
            const int x0 = (f * 7) % (w - bw), y0 = (f * 5) % (h - bh);
            std::vector<uint8_t> fr = base[0];
            for (int y = y0; y < y0 + bh; ++y)
                for (int i = x0 * 3; i < (x0 + bw) * 3; ++i) {
                    uint8_t &v = fr[(size_t)y * w * 3 + i];
                    v = (uint8_t)(255 - v);
                }
            frames.push_back(fr);
        }
        frames.push_back(frames.back()); // static
        StreamPtr dense = make_stream(net.get(), w, h, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
        StreamPtr cb = make_stream(net.get(), w, h, CBINFER_BACKEND_CPU, c.mode);
        ASSERT_TRUE(dense && cb);
        ASSERT_EQ(cbinfer_stream_set_param(cb.get(), CBINFER_PARAM_COLLECT_STATS, 1),
                  CBINFER_STATUS_SUCCESS);
        ASSERT_EQ(cbinfer_stream_set_break_even_all(cb.get(), 0.25f), CBINFER_STATUS_SUCCESS);
        ASSERT_EQ(cbinfer_stream_set_threshold_all(cb.get(), 1e-6f), CBINFER_STATUS_SUCCESS);
        // The first conv never falls back, so the layers after it get lists.
        const auto convs = conv_layers(cb.get());
        ASSERT_FALSE(convs.empty());
        ASSERT_EQ(cbinfer_stream_set_break_even(cb.get(), convs[0].name, 1.f),
                  CBINFER_STATUS_SUCCESS);
        int predicted_dense = 0, predicted_under = 0, fell_back = 0;
        for (size_t f = 0; f < frames.size(); ++f) {
            push(dense.get(), frames[f], w, h);
            push(cb.get(), frames[f], w, h);
            EXPECT_LE(cbi_test_max_abs_diff(output_of(dense.get()), output_of(cb.get())), 1e-4f)
                << model << " frame " << f;
            if (f == 0) continue;
            for (const cbinfer_layer_stats &ls : conv_layers(cb.get())) {
                fell_back += ls.ran_dense && detected(ls);
                predicted_dense += ls.ran_dense && !detected(ls);
                predicted_under += !ls.ran_dense && !detected(ls) && ls.changed_px > 0;
            }
        }
        EXPECT_GT(fell_back, 0) << model;
        EXPECT_GT(predicted_dense, 0) << model;
        EXPECT_GT(predicted_under, 0) << model;
        cbinfer_frame_stats fs;
        ASSERT_EQ(cbinfer_stream_frame_stats(cb.get(), &fs), CBINFER_STATUS_SUCCESS);
        EXPECT_EQ(fs.macs, 0) << model << ": the static frame";
    }
}

// With b = 0 every conv falls back on every frame. The first conv, whose
// input (the network's) changes everywhere on every frame, detects each
// time; every conv after it predicts its fallback from the second frame
// on and stops detecting. All of them compute dense from their inputs, so
// even at τ > 0 the output is the dense one.
TEST(Fallback, OnlyConvsAfterTheFirstPredict)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 6, kX, kY, kW, kH);
    StreamPtr dense = make_stream(net.get(), kW, kH, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
    StreamPtr cb = make_stream(net.get(), kW, kH, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(dense && cb);
    ASSERT_EQ(cbinfer_stream_set_param(cb.get(), CBINFER_PARAM_COLLECT_STATS, 1),
              CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(cbinfer_stream_set_threshold_all(cb.get(), 0.02f), CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(cbinfer_stream_set_break_even_all(cb.get(), 0.f), CBINFER_STATUS_SUCCESS);
    for (size_t f = 0; f < frames.size(); ++f) {
        push(dense.get(), frames[f], kW, kH);
        push(cb.get(), frames[f], kW, kH);
        EXPECT_LE(cbi_test_max_abs_diff(output_of(dense.get()), output_of(cb.get())), 1e-4f)
            << "frame " << f;
        if (f == 0) continue;
        const auto convs = conv_layers(cb.get());
        ASSERT_FALSE(convs.empty());
        for (size_t k = 0; k < convs.size(); ++k) {
            EXPECT_TRUE(convs[k].ran_dense) << convs[k].name << " frame " << f;
            EXPECT_EQ(detected(convs[k]), k == 0 || f == 1) << convs[k].name << " frame " << f;
        }
    }
}
