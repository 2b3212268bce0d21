// NanoDet and PoseNet on the CUDA backend against the CPU, on real vtest
// frames, fp32: cuDNN dense (grouped convolutions, linear Resize, several
// outputs) and change-based at threshold 0 (the grouped rows kernel). The
// delta policies refuse grouped convolutions as on the CPU. Skipped without a
// device.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_util.h"

namespace {

constexpr int kX = 300, kY = 250;

void expect_matches_cpu(const char *model, int w, int h)
{
    SCOPED_TRACE(model);
    NetPtr net = load(model);
    ASSERT_TRUE(net);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 6, kX, kY, w, h);
    StreamPtr cpu = make_stream(net.get(), w, h, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
    StreamPtr dense = make_stream(net.get(), w, h, CBINFER_BACKEND_CUDA, CBINFER_MODE_DENSE);
    StreamPtr cb = make_stream(net.get(), w, h, CBINFER_BACKEND_CUDA, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(cpu && dense && cb);
    ASSERT_EQ(cbinfer_stream_set_threshold_all(cb.get(), 0.f), CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(cbinfer_stream_set_break_even_all(cb.get(), 1.f), CBINFER_STATUS_SUCCESS);
    for (size_t f = 0; f < frames.size(); ++f) {
        push(cpu.get(), frames[f], w, h);
        push(dense.get(), frames[f], w, h);
        push(cb.get(), frames[f], w, h);
        auto ref = outputs_of(cpu.get(), net.get());
        auto d = outputs_of(dense.get(), net.get()), c = outputs_of(cb.get(), net.get());
        ASSERT_EQ(d.size(), ref.size());
        for (size_t k = 0; k < ref.size(); ++k) {
            EXPECT_LE(cbi_test_max_abs_diff(ref[k], d[k]), 1e-3f) << "cuDNN output " << k
                                                                 << " frame " << f;
            EXPECT_LE(cbi_test_max_abs_diff(ref[k], c[k]), 1e-3f) << "cbinfer output " << k
                                                                 << " frame " << f;
        }
    }
}

} // namespace

TEST(GpuSurveillance, NanoDetMatchesTheCpu)
{
    SKIP_WITHOUT_CUDA();
    expect_matches_cpu("nanodet", 128, 96);
}

TEST(GpuSurveillance, PoseNetMatchesTheCpu)
{
    SKIP_WITHOUT_CUDA();
    expect_matches_cpu("posenet", 129, 97);
}

TEST(GpuSurveillance, GroupedConvsRefuseDeltaPolicies)
{
    SKIP_WITHOUT_CUDA();
    NetPtr pose = load("posenet");
    ASSERT_TRUE(pose);
    cbinfer_stream_t *s = nullptr;
    char err[512] = "";
    EXPECT_EQ(cbinfer_stream_create(pose.get(), 33, 33, CBINFER_BACKEND_CUDA, CBINFER_MODE_EVNET,
                                    CBINFER_PRECISION_FP32, &s, err, sizeof err),
              CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR);
    EXPECT_EQ(s, nullptr);
    EXPECT_NE(std::string(err).find("grouped convolutions"), std::string::npos) << err;
}
