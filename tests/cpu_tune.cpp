// cbinfer-tune: the per-layer search on synthetic losses, the thresholds file
// it writes, and the conv input statistics behind --stats-init.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cbinfer.h"
#include "test_util.h"
#include "tune_search.h"

namespace {

double square(void *ctx, double tau)
{
    ++*static_cast<int *>(ctx);
    return tau * tau;
}

double always_positive(void *, double tau)
{
    return tau > 0 ? 1e-12 + tau : 0.0;
}

double flat(void *, double)
{
    return 0.0;
}

} // namespace

TEST(Tune, SearchStopsAtBudget)
{
    const double init = 1e-3, growth = 1.1, base = 0.5, budget = 1e-4;
    // The largest init * growth^k with f <= base + budget, grown as the search does.
    double expect = 0, tau = init;
    int k = 0;
    while (base + tau * tau - base <= budget) {
        expect = tau;
        tau *= growth;
        ++k;
    }
    int calls = 0, evals = 0;
    double loss = -1;
    // f(τ) = base + τ²: the added loss is τ².
    auto f = [](void *ctx, double t) { return 0.5 + square(ctx, t); };
    const double got = cbi_tune_layer(f, &calls, init, growth, base, budget, 1000, &evals, &loss);
    EXPECT_DOUBLE_EQ(got, expect);
    EXPECT_LE(got * got, budget);
    EXPECT_GT(got * growth * got * growth, budget);
    EXPECT_EQ(evals, k + 1); // k accepted steps and the one that left the budget
    EXPECT_EQ(calls, evals);
    EXPECT_DOUBLE_EQ(loss, base + got * got);
}

TEST(Tune, ZeroBudgetKeepsZero)
{
    int evals = 0;
    double loss = -1;
    EXPECT_EQ(cbi_tune_layer(always_positive, nullptr, 1e-3, 1.1, 0.0, 0.0, 200, &evals, &loss), 0.0);
    EXPECT_EQ(evals, 1);
    EXPECT_EQ(loss, 0.0);
}

TEST(Tune, StopsAtMaxSteps)
{
    int evals = 0;
    const double got = cbi_tune_layer(flat, nullptr, 1e-3, 2.0, 0.0, 1e-6, 10, &evals, nullptr);
    EXPECT_EQ(evals, 10);
    EXPECT_DOUBLE_EQ(got, 1e-3 * 512); // init * growth^(max_steps - 1)
}

TEST(Tune, RejectsBadSearchParameters)
{
    EXPECT_TRUE(std::isnan(cbi_tune_layer(flat, nullptr, 0.0, 1.1, 0, 1, 10, nullptr, nullptr)));
    EXPECT_TRUE(std::isnan(cbi_tune_layer(flat, nullptr, 1e-3, 1.0, 0, 1, 10, nullptr, nullptr)));
    EXPECT_TRUE(std::isnan(cbi_tune_layer(flat, nullptr, 1e-3, 1.1, 0, -1, 10, nullptr, nullptr)));
    EXPECT_TRUE(std::isnan(cbi_tune_layer(flat, nullptr, 1e-3, 1.1, 0, 1, 0, nullptr, nullptr)));
    auto nan_loss = [](void *, double) { return std::nan(""); };
    EXPECT_TRUE(std::isnan(cbi_tune_layer(nan_loss, nullptr, 1e-3, 1.1, 0, 1, 10, nullptr, nullptr)));
}

TEST(Tune, ParsesBudgetWeights)
{
    double w[4];
    ASSERT_EQ(cbi_tune_parse_weights("4,1,0.5", w, 4), 3);
    EXPECT_EQ(w[0], 4.0);
    EXPECT_EQ(w[2], 0.5);
    EXPECT_EQ(cbi_tune_parse_weights("1,,2", w, 4), -1);
    EXPECT_EQ(cbi_tune_parse_weights("1,-2", w, 4), -1);
    EXPECT_EQ(cbi_tune_parse_weights("1,2,3,4,5", w, 4), -1);
    EXPECT_EQ(cbi_tune_parse_weights("", w, 4), -1);
    EXPECT_EQ(cbi_tune_parse_weights("1,2x", w, 4), -1);
}

TEST(Tune, ThresholdsFileRoundTrip)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    StreamPtr a = make_stream(net.get(), 32, 24, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    StreamPtr b = make_stream(net.get(), 32, 24, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(a && b);
    const int n = cbinfer_network_conv_count(net.get());
    ASSERT_GT(n, 1);
    for (int i = 0; i < n; ++i)
        ASSERT_EQ(cbinfer_stream_set_threshold(a.get(), cbinfer_network_conv_name(net.get(), i),
                                               0.001f * 1.1f * (float)(i + 1) / 3.f),
                  CBINFER_STATUS_SUCCESS);
    const std::string path = ::testing::TempDir() + "cbinfer_tune_roundtrip.thr";
    ASSERT_EQ(cbinfer_stream_save_thresholds(a.get(), path.c_str(),
                                             "cbinfer-tune: --budget 2e-06\nfinal loss 1e-06"),
              CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(cbinfer_stream_load_thresholds(b.get(), path.c_str()), CBINFER_STATUS_SUCCESS)
        << cbinfer_stream_last_error(b.get());
    for (int i = 0; i < n; ++i) {
        const char *name = cbinfer_network_conv_name(net.get(), i);
        float ta = -1, tb = -2;
        ASSERT_EQ(cbinfer_stream_get_threshold(a.get(), name, &ta), CBINFER_STATUS_SUCCESS);
        ASSERT_EQ(cbinfer_stream_get_threshold(b.get(), name, &tb), CBINFER_STATUS_SUCCESS);
        EXPECT_EQ(ta, tb) << name;
    }
    std::remove(path.c_str());
}

TEST(Tune, ConvInputStatsOfFirstLayerAreThoseOfTheFrame)
{
    // scene-labeling-synthetic starts with a Conv: its input is the scaled frame.
    NetPtr net = load("scene-labeling-synthetic");
    ASSERT_TRUE(net);
    const int w = 96, h = 80;
    auto frames = cbi_test_read_frames("vtest.avi", 3, 1, 300, 250, w, h);
    ASSERT_EQ(frames.size(), 1u);
    StreamPtr s = make_stream(net.get(), w, h, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(s);
    double mean = 0, sd = 0;
    EXPECT_EQ(cbinfer_stream_conv_input_stats(s.get(), 0, &mean, &sd), CBINFER_STATUS_NOT_READY);
    push(s.get(), frames[0], w, h);
    float scale = 0, offset = 0;
    ASSERT_EQ(cbinfer_network_input_scaling(net.get(), &scale, &offset), CBINFER_STATUS_SUCCESS);
    double sum = 0, sq = 0;
    for (uint8_t p : frames[0]) sum += (double)((float)p * scale + offset);
    const double m = sum / (double)frames[0].size();
    for (uint8_t p : frames[0]) {
        const double d = (double)((float)p * scale + offset) - m;
        sq += d * d;
    }
    const double want_sd = std::sqrt(sq / (double)frames[0].size());
    ASSERT_EQ(cbinfer_stream_conv_input_stats(s.get(), 0, &mean, &sd), CBINFER_STATUS_SUCCESS);
    EXPECT_NEAR(mean, m, 1e-6);
    EXPECT_NEAR(sd, want_sd, 1e-6);
    EXPECT_GT(sd, 0.0);
    // Deeper layers: finite, non-negative spreads.
    for (int c = 1; c < cbinfer_network_conv_count(net.get()); ++c) {
        ASSERT_EQ(cbinfer_stream_conv_input_stats(s.get(), c, &mean, &sd), CBINFER_STATUS_SUCCESS);
        EXPECT_TRUE(std::isfinite(mean) && std::isfinite(sd) && sd >= 0) << c;
    }
}

TEST(Tune, ConvInputStatsContract)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    StreamPtr s = make_stream(net.get(), 32, 24, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
    ASSERT_TRUE(s);
    double m, sd;
    EXPECT_EQ(cbinfer_stream_conv_input_stats(nullptr, 0, &m, &sd), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_conv_input_stats(s.get(), 0, nullptr, &sd),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_conv_input_stats(s.get(), -1, &m, &sd), CBINFER_STATUS_BAD_PARAM);
    EXPECT_EQ(cbinfer_stream_conv_input_stats(s.get(), cbinfer_network_conv_count(net.get()), &m,
                                              &sd),
              CBINFER_STATUS_BAD_PARAM);
}
