// The two real surveillance models on real vtest frames: NanoDet (three
// outputs, linear Resizes, MaxPool, Concat, Add) and PoseNet (depthwise
// convolutions, ReLU6, four outputs). Threshold 0 equals dense on every
// output; the multi-output API's statuses; the policies grouped convs refuse.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_util.h"

namespace {

constexpr int kX = 300, kY = 250; // pedestrians walk here

struct Workload {
    const char *model;
    int w, h;                       // NanoDet: multiples of 32; PoseNet: 16k+1
    std::vector<const char *> names;
    std::vector<int> channels;
    int grid_h, grid_w;             // output 0's grid
};

const Workload kNanoDet{"nanodet", 128, 96, {"head_s8", "head_s16", "head_s32"},
                        {124, 124, 124}, 12, 16};
const Workload kPoseNet{"posenet", 129, 97,
                        {"heatmap", "offset", "displacement_fwd", "displacement_bwd"},
                        {17, 34, 32, 32}, 7, 9};

void expect_zero_threshold_equals_dense(const Workload &wl)
{
    SCOPED_TRACE(wl.model);
    NetPtr net = load(wl.model);
    ASSERT_TRUE(net);
    ASSERT_EQ(cbinfer_network_output_count(net.get()), (int)wl.names.size());
    for (size_t k = 0; k < wl.names.size(); ++k)
        EXPECT_STREQ(cbinfer_network_output_name(net.get(), (int)k), wl.names[k]);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 6, kX, kY, wl.w, wl.h);
    StreamPtr dense = make_stream(net.get(), wl.w, wl.h, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
    StreamPtr cb = make_stream(net.get(), wl.w, wl.h, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(dense && cb);
    ASSERT_EQ(cbinfer_stream_set_threshold_all(cb.get(), 0.f), CBINFER_STATUS_SUCCESS);
    // Never the dense fallback: the change-based kernels run at every layer.
    ASSERT_EQ(cbinfer_stream_set_break_even_all(cb.get(), 1.f), CBINFER_STATUS_SUCCESS);
    int c, h, w;
    ASSERT_EQ(cbinfer_stream_output_dims_at(cb.get(), 0, &c, &h, &w), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(c, wl.channels[0]);
    EXPECT_EQ(h, wl.grid_h);
    EXPECT_EQ(w, wl.grid_w);
    double changed = 0;
    for (size_t f = 0; f < frames.size(); ++f) {
        push(dense.get(), frames[f], wl.w, wl.h);
        push(cb.get(), frames[f], wl.w, wl.h);
        auto d = outputs_of(dense.get(), net.get()), o = outputs_of(cb.get(), net.get());
        ASSERT_EQ(d.size(), wl.names.size());
        for (size_t k = 0; k < d.size(); ++k) {
            EXPECT_EQ(d[k].size() % wl.channels[k], 0u);
            EXPECT_LE(cbi_test_max_abs_diff(d[k], o[k]), 1e-4f) << wl.names[k] << " frame " << f;
        }
        cbinfer_frame_stats fs;
        ASSERT_EQ(cbinfer_stream_frame_stats(cb.get(), &fs), CBINFER_STATUS_SUCCESS);
        if (f > 0) changed += fs.changed_share;
    }
    // The frames after the first ran change-based, and changes were local.
    EXPECT_GT(changed, 0.0);
    EXPECT_LT(changed / (frames.size() - 1), 0.95);
}

} // namespace

TEST(Surveillance, NanoDetZeroThresholdEqualsDense)
{
    expect_zero_threshold_equals_dense(kNanoDet);
}

TEST(Surveillance, PoseNetZeroThresholdEqualsDense)
{
    expect_zero_threshold_equals_dense(kPoseNet);
}

TEST(Surveillance, MultiOutputStatuses)
{
    NetPtr net = load("nanodet");
    ASSERT_TRUE(net);
    EXPECT_EQ(cbinfer_network_output_count(nullptr), 0);
    EXPECT_EQ(cbinfer_network_output_name(nullptr, 0), nullptr);
    EXPECT_EQ(cbinfer_network_output_name(net.get(), -1), nullptr);
    EXPECT_EQ(cbinfer_network_output_name(net.get(), 3), nullptr);
    StreamPtr s = make_stream(net.get(), 64, 64, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(s);
    int c = 0, h = 0, w = 0;
    EXPECT_EQ(cbinfer_stream_output_dims_at(nullptr, 0, &c, &h, &w), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_output_dims_at(s.get(), 3, &c, &h, &w), CBINFER_STATUS_BAD_PARAM);
    EXPECT_EQ(cbinfer_stream_output_dims_at(s.get(), -1, &c, &h, &w), CBINFER_STATUS_BAD_PARAM);
    ASSERT_EQ(cbinfer_stream_output_dims_at(s.get(), 2, &c, &h, &w), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(c, 124);
    EXPECT_EQ(h, 2);
    EXPECT_EQ(w, 2);
    std::vector<float> buf(124 * 8 * 8);
    EXPECT_EQ(cbinfer_stream_read_output_at(s.get(), 0, buf.data(), buf.size()),
              CBINFER_STATUS_NOT_READY);
    std::vector<uint8_t> frame(64 * 64 * 3, 90);
    push(s.get(), frame, 64, 64);
    EXPECT_EQ(cbinfer_stream_read_output_at(nullptr, 0, buf.data(), buf.size()),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_read_output_at(s.get(), 0, nullptr, buf.size()),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_read_output_at(s.get(), 3, buf.data(), buf.size()),
              CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(std::string(cbinfer_stream_last_error(s.get())).find("output 3"), std::string::npos);
    EXPECT_EQ(cbinfer_stream_read_output_at(s.get(), 0, buf.data(), 124 * 8 * 8 - 1),
              CBINFER_STATUS_BUFFER_TOO_SMALL);
    EXPECT_EQ(cbinfer_stream_read_output_at(s.get(), 2, buf.data(), 124 * 2 * 2),
              CBINFER_STATUS_SUCCESS);
    // Output 0 through the single-output calls is output 0 of the _at calls.
    std::vector<float> a(124 * 8 * 8), b(124 * 8 * 8);
    ASSERT_EQ(cbinfer_stream_read_output(s.get(), a.data(), a.size()), CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(cbinfer_stream_read_output_at(s.get(), 0, b.data(), b.size()), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(a, b);
}

// The delta policies and Skip-Conv take no grouped convolutions yet: PoseNet
// refuses them with the node and the policy named; NanoDet (no groups) runs.
TEST(Surveillance, GroupedConvsRefuseDeltaPolicies)
{
    NetPtr pose = load("posenet");
    NetPtr det = load("nanodet");
    ASSERT_TRUE(pose && det);
    for (cbinfer_mode mode : {CBINFER_MODE_EVNET, CBINFER_MODE_SKIPCONV, CBINFER_MODE_SIGMADELTA}) {
        cbinfer_stream_t *s = nullptr;
        char err[512] = "";
        EXPECT_EQ(cbinfer_stream_create(pose.get(), 33, 33, CBINFER_BACKEND_CPU, mode,
                                        CBINFER_PRECISION_FP32, &s, err, sizeof err),
                  CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR);
        EXPECT_EQ(s, nullptr);
        EXPECT_NE(std::string(err).find("grouped convolutions"), std::string::npos) << err;
        EXPECT_NE(std::string(err).find("depthwise"), std::string::npos) << err;
        StreamPtr ok = make_stream(det.get(), 64, 64, CBINFER_BACKEND_CPU, mode);
        EXPECT_TRUE(ok);
    }
    // cbinfer-ff, the other recompute policy, runs PoseNet.
    StreamPtr ff = make_stream(pose.get(), 33, 33, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER_FF);
    EXPECT_TRUE(ff);
}

// set_policy refuses a delta policy on grouped convs before it touches
// anything: the stream keeps its policy and goes on running frames.
TEST(Surveillance, RefusedSetPolicyLeavesTheStreamRunning)
{
    NetPtr pose = load("posenet");
    ASSERT_TRUE(pose);
    StreamPtr s = make_stream(pose.get(), 33, 33, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(s);
    std::vector<uint8_t> frame(33 * 33 * 3, 100);
    push(s.get(), frame, 33, 33);
    EXPECT_EQ(cbinfer_stream_set_policy(s.get(), nullptr, "evnet:pixel"),
              CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR);
    char spec[64];
    ASSERT_EQ(cbinfer_stream_get_policy(s.get(), "Conv2d_1_depthwise", spec, sizeof spec),
              CBINFER_STATUS_SUCCESS);
    EXPECT_STREQ(spec, "cbinfer");
    push(s.get(), frame, 33, 33);
}
