// The delta policies on the CUDA backend (cuda/conv_delta.cu) against the CPU
// backend (host/cpu/cpu_delta.c), on real frames of vtest.avi through
// vgg7-noise1 (LeakyReLU: the accumulator is f^-1 of the output) and
// scene-labeling-synthetic (ReLU, 7x7, pooling: a stored accumulator). Every
// test skips with a reason when no CUDA device can be used.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "cbinfer.h"
#include "test_util.h"

namespace {

constexpr int kCropX = 300, kCropY = 250, kCrop = 96, kFrames = 20;
// θ on the first convolution only: its input is the pushed frame, the same
// bits on both backends, so both gates decide alike there; deeper layers at
// θ = 0 pass on every change.
constexpr float kFirstTheta = 0.02f;

// Every kernel of conv_delta.cu at least once: the delta scatter (pixel,
// element, chunk, open memory), the recompute of closed memory, Skip-Conv
// with both gates, blocks and re-flushes, and Sigma-Delta both ways.
const std::vector<std::string> kPolicies = {
    "evnet",          "evnet:pixel,scatter", "evnet:chunk=8,scatter", "evnet:element,nomem",
    "evnet:pixel,recompute", "skipconv:input", "skipconv:output,block=4",
    "skipconv:input,reset=5", "sigmadelta:scatter", "sigmadelta:recompute"};

StreamPtr policy_stream(const cbinfer_network_t *net, cbinfer_backend be, const std::string &pol,
                        float first_theta, cbinfer_precision prec = CBINFER_PRECISION_FP32)
{
    StreamPtr s = make_stream(net, kCrop, kCrop, be, CBINFER_MODE_CBINFER, prec);
    if (!s) return s;
    EXPECT_EQ(cbinfer_stream_set_policy(s.get(), nullptr, pol.c_str()), CBINFER_STATUS_SUCCESS)
        << pol << ": " << cbinfer_stream_last_error(s.get());
    EXPECT_EQ(cbinfer_stream_set_threshold(s.get(), cbinfer_network_conv_name(net, 0), first_theta),
              CBINFER_STATUS_SUCCESS);
    return s;
}

cbinfer_layer_stats conv1_stats(const cbinfer_stream_t *s, const char *conv1)
{
    cbinfer_layer_stats ls{};
    for (int i = 0; i < cbinfer_stream_layer_count(s); ++i) {
        EXPECT_EQ(cbinfer_stream_layer_stats(s, i, &ls), CBINFER_STATUS_SUCCESS);
        if (std::strcmp(ls.name, conv1) == 0) return ls;
    }
    ADD_FAILURE() << "no layer " << conv1;
    return ls;
}

// On 20 real frames, per policy: CUDA equals the CPU within 1e-4, the first
// layer's gate makes the same decisions (pixels, elements sent, effective
// MACs, outputs reached), and the state bytes agree.
void expect_cuda_matches_cpu(const std::string &model)
{
    NetPtr net = load(model);
    ASSERT_TRUE(net);
    const char *conv1 = cbinfer_network_conv_name(net.get(), 0);
    ASSERT_NE(conv1, nullptr);
    auto frames = cbi_test_read_frames("vtest.avi", 0, kFrames, kCropX, kCropY, kCrop, kCrop);
    for (const std::string &pol : kPolicies) {
        StreamPtr cpu = policy_stream(net.get(), CBINFER_BACKEND_CPU, pol, kFirstTheta);
        StreamPtr gpu = policy_stream(net.get(), CBINFER_BACKEND_CUDA, pol, kFirstTheta);
        ASSERT_TRUE(cpu && gpu) << pol;
        uint64_t bc = 0, bg = 0;
        ASSERT_EQ(cbinfer_stream_state_bytes(cpu.get(), &bc), CBINFER_STATUS_SUCCESS);
        ASSERT_EQ(cbinfer_stream_state_bytes(gpu.get(), &bg), CBINFER_STATUS_SUCCESS);
        EXPECT_EQ(bg, bc) << model << " " << pol;
        for (int f = 0; f < kFrames; ++f) {
            push(cpu.get(), frames[f], kCrop, kCrop);
            push(gpu.get(), frames[f], kCrop, kCrop);
            EXPECT_LE(cbi_test_max_abs_diff(output_of(cpu.get()), output_of(gpu.get())), 1e-4f)
                << model << " " << pol << ", frame " << f;
            const cbinfer_layer_stats lc = conv1_stats(cpu.get(), conv1);
            const cbinfer_layer_stats lg = conv1_stats(gpu.get(), conv1);
            EXPECT_EQ(lg.ran_dense, lc.ran_dense) << pol << ", frame " << f;
            EXPECT_EQ(lg.changed_in_px, lc.changed_in_px) << pol << ", frame " << f;
            EXPECT_EQ(lg.changed_px, lc.changed_px) << pol << ", frame " << f;
            if (!lc.ran_dense) {
                EXPECT_EQ(lg.transmitted_el, lc.transmitted_el) << pol << ", frame " << f;
                EXPECT_EQ(lg.macs_effective, lc.macs_effective) << pol << ", frame " << f;
                EXPECT_EQ(lg.macs, lc.macs) << pol << ", frame " << f;
            }
        }
    }
}

} // namespace

TEST(GpuPolicy, CudaMatchesCpuVgg7)
{
    SKIP_WITHOUT_CUDA();
    expect_cuda_matches_cpu("vgg7-noise1");
}

TEST(GpuPolicy, CudaMatchesCpuSceneLabeling)
{
    SKIP_WITHOUT_CUDA();
    expect_cuda_matches_cpu("scene-labeling-synthetic");
}

// VARIANTS.md §7.1 on CUDA: at θ = 0 every policy equals cuDNN dense within
// 1e-4 (fp32), and after the first frame it multiplies less than dense.
TEST(GpuPolicy, ZeroThresholdEqualsDense)
{
    SKIP_WITHOUT_CUDA();
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 8, kCropX, kCropY, kCrop, kCrop);
    const auto ref = dense_outputs(net.get(), frames, kCrop, kCrop, CBINFER_BACKEND_CUDA);
    ASSERT_EQ(ref.size(), frames.size());
    std::vector<StreamPtr> streams;
    for (auto &p : kPolicies) streams.push_back(policy_stream(net.get(), CBINFER_BACKEND_CUDA, p, 0.f));
    for (size_t f = 0; f < frames.size(); ++f) {
        for (size_t i = 0; i < kPolicies.size(); ++i) {
            ASSERT_TRUE(streams[i]);
            push(streams[i].get(), frames[f], kCrop, kCrop);
            EXPECT_LE(cbi_test_max_abs_diff(ref[f], output_of(streams[i].get())), 1e-4f)
                << kPolicies[i] << ", frame " << f;
            cbinfer_frame_stats fs;
            ASSERT_EQ(cbinfer_stream_frame_stats(streams[i].get(), &fs), CBINFER_STATUS_SUCCESS);
            if (f > 0 && kPolicies[i].find("reset") == std::string::npos)
                EXPECT_LT(fs.macs, fs.dense_macs) << kPolicies[i] << ", frame " << f;
        }
    }
}

// CBINFER_PARAM_DETERMINISTIC: the gather gives the same bits run after run,
// and agrees with the atomic scatter up to float re-association.
TEST(GpuPolicy, DeterministicScatterIsBitReproducible)
{
    SKIP_WITHOUT_CUDA();
    NetPtr net = load("scene-labeling-synthetic");
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 10, kCropX, kCropY, kCrop, kCrop);
    for (const char *pol : {"evnet:pixel,scatter", "sigmadelta:scatter"}) {
        StreamPtr a = policy_stream(net.get(), CBINFER_BACKEND_CUDA, pol, kFirstTheta);
        StreamPtr b = policy_stream(net.get(), CBINFER_BACKEND_CUDA, pol, kFirstTheta);
        StreamPtr atomics = policy_stream(net.get(), CBINFER_BACKEND_CUDA, pol, kFirstTheta);
        ASSERT_TRUE(a && b && atomics);
        for (auto *s : {a.get(), b.get()})
            ASSERT_EQ(cbinfer_stream_set_param(s, CBINFER_PARAM_DETERMINISTIC, 1),
                      CBINFER_STATUS_SUCCESS);
        for (size_t f = 0; f < frames.size(); ++f) {
            for (auto *s : {a.get(), b.get(), atomics.get()}) push(s, frames[f], kCrop, kCrop);
            const std::vector<float> oa = output_of(a.get());
            EXPECT_EQ(oa, output_of(b.get())) << pol << ", frame " << f;
            EXPECT_LE(cbi_test_max_abs_diff(oa, output_of(atomics.get())), 1e-4f)
                << pol << ", frame " << f;
        }
    }
}

// TF32 and FP16 run every policy within the tolerance of cbinfer's own
// reduced-precision test against fp32 dense; at FP16 the accumulator is
// stored even where f is invertible (f^-1 of a half output would round).
TEST(GpuPolicy, ReducedPrecisionWithinToleranceOfFp32)
{
    SKIP_WITHOUT_CUDA();
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 5, kCropX, kCropY, kCrop, kCrop);
    const auto ref_out = dense_outputs(net.get(), frames, kCrop, kCrop, CBINFER_BACKEND_CUDA);
    ASSERT_EQ(ref_out.size(), frames.size());
    for (cbinfer_precision prec : {CBINFER_PRECISION_FP16, CBINFER_PRECISION_TF32}) {
        for (const std::string &pol : kPolicies) {
            StreamPtr s = policy_stream(net.get(), CBINFER_BACKEND_CUDA, pol, 0.f, prec);
            ASSERT_TRUE(s) << pol;
            if (prec == CBINFER_PRECISION_FP16 && pol.find("recompute") == std::string::npos) {
                StreamPtr f32 = policy_stream(net.get(), CBINFER_BACKEND_CUDA, pol, 0.f);
                uint64_t b16 = 0, b32 = 0;
                ASSERT_EQ(cbinfer_stream_state_bytes(s.get(), &b16), CBINFER_STATUS_SUCCESS);
                ASSERT_EQ(cbinfer_stream_state_bytes(f32.get(), &b32), CBINFER_STATUS_SUCCESS);
                EXPECT_GT(b16, b32 / 2) << pol << ": the fp16 state holds the accumulator";
            }
            for (size_t f = 0; f < frames.size(); ++f) {
                push(s.get(), frames[f], kCrop, kCrop);
                const std::vector<float> o = output_of(s.get());
                EXPECT_LE(cbi_test_max_abs_diff(ref_out[f], o), 0.01f)
                    << pol << " precision " << prec << " frame " << f;
                EXPECT_LE(cbi_test_mean_abs_diff(ref_out[f], o), 1e-3f)
                    << pol << " precision " << prec << " frame " << f;
            }
        }
    }
}

// A static frame: no pixel transmits, no MAC runs, the output stays.
TEST(GpuPolicy, UnchangedFrameDoesNoConvWork)
{
    SKIP_WITHOUT_CUDA();
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    auto fr = cbi_test_read_frames("vtest.avi", 3, 1, kCropX, kCropY, kCrop, kCrop)[0];
    for (const std::string &pol : kPolicies) {
        StreamPtr s = policy_stream(net.get(), CBINFER_BACKEND_CUDA, pol, 0.f);
        ASSERT_TRUE(s);
        push(s.get(), fr, kCrop, kCrop);
        const std::vector<float> first = output_of(s.get());
        push(s.get(), fr, kCrop, kCrop);
        cbinfer_frame_stats fs;
        ASSERT_EQ(cbinfer_stream_frame_stats(s.get(), &fs), CBINFER_STATUS_SUCCESS);
        EXPECT_EQ(fs.macs, 0) << pol;
        EXPECT_EQ(fs.macs_effective, 0) << pol;
        EXPECT_EQ(output_of(s.get()), first) << pol;
    }
}
