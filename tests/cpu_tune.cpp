// cbinfer-tune: the per-layer search on synthetic losses, the thresholds file
// it writes, and the conv input statistics behind --stats-init.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
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

// An infinite loss (outputs that differ in NaN or Inf are not measurable)
// over an infinite base gives inf - inf = NaN: the search must stop there,
// not take every step.
TEST(Tune, InfiniteLossStopsTheSearch)
{
    int evals = 0;
    auto inf = [](void *, double) { return (double)INFINITY; };
    EXPECT_EQ(cbi_tune_layer(inf, nullptr, 1e-3, 1.1, INFINITY, 1e-6, 200, &evals, nullptr), 0.0);
    EXPECT_EQ(evals, 1);
    EXPECT_EQ(cbi_tune_layer(inf, nullptr, 1e-3, 1.1, 0.0, 1e-6, 200, &evals, nullptr), 0.0);
    EXPECT_EQ(evals, 1);
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

TEST(Tune, BudgetsPerMetric)
{
    double b[3];
    const double w[3] = {4, 1, 1};
    ASSERT_EQ(cbi_tune_budgets(CBI_TUNE_MSE, 1e-6, nullptr, 3, b), 0);
    EXPECT_EQ(b[0], 1e-6);
    EXPECT_EQ(b[2], 1e-6);
    ASSERT_EQ(cbi_tune_budgets(CBI_TUNE_MAXABS, 0.01, w, 3, b), 0);
    EXPECT_DOUBLE_EQ(b[0], 0.04);
    EXPECT_DOUBLE_EQ(b[1], 0.01);
    // PSNR 40 dB: a total MSE of 1e-4, split 4:1:1; the budgets add up to it.
    ASSERT_EQ(cbi_tune_budgets(CBI_TUNE_PSNR, 40.0, w, 3, b), 0);
    EXPECT_DOUBLE_EQ(b[0], 1e-4 * 4 / 6);
    EXPECT_DOUBLE_EQ(b[1], 1e-4 / 6);
    EXPECT_DOUBLE_EQ(b[0] + b[1] + b[2], 1e-4);
    ASSERT_EQ(cbi_tune_budgets(CBI_TUNE_PSNR, 30.0, nullptr, 3, b), 0);
    EXPECT_DOUBLE_EQ(b[2], 1e-3 / 3);
    const double zero[3] = {0, 0, 0};
    EXPECT_EQ(cbi_tune_budgets(CBI_TUNE_PSNR, 40.0, zero, 3, b), -1);
    EXPECT_EQ(cbi_tune_budgets(CBI_TUNE_MSE, -1.0, nullptr, 3, b), -1);
    EXPECT_EQ(cbi_tune_budgets(CBI_TUNE_MSE, std::nan(""), nullptr, 3, b), -1);
    EXPECT_EQ(cbi_tune_budgets(CBI_TUNE_MSE, 1.0, nullptr, 0, b), -1);
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

// A 4-layer DAG: 0 is a trunk, 1 and 2 parallel branches on it, 3 their
// merge (reached by all three). The loss couples the layers through one
// squared sum, so the loss a layer adds depends on which others are above 0.
struct Dag {
    static constexpr int n = 4;
    std::vector<unsigned char> reaches;
    std::vector<double> weight; // per layer, in the coupled loss
    std::vector<int> layers;    // one per evaluation; -1 for a base
    std::vector<std::vector<double>> configs;
};

double coupled_loss(void *ctx, int layer, const double *tau)
{
    auto *d = static_cast<Dag *>(ctx);
    const int n = static_cast<int>(d->weight.size());
    d->layers.push_back(layer);
    d->configs.emplace_back(tau, tau + n);
    double s = 0;
    for (int i = 0; i < n; ++i) s += d->weight[i] * tau[i];
    return s * s;
}

Dag make_dag()
{
    Dag d;
    // reaches[i * n + j]: j's changes reach i.
    d.reaches = {0, 0, 0, 0,  //
                 1, 0, 0, 0,  //
                 1, 0, 0, 0,  //
                 1, 1, 1, 0};
    d.weight = {1.0, 2.0, 0.5, 1.5};
    return d;
}

TEST(Tune, BranchesAreTunedWithTheOtherPathsAtZero)
{
    Dag d = make_dag();
    const double init[4] = {1e-3, 1e-3, 1e-3, 1e-3}, budget[4] = {1e-4, 1e-4, 1e-4, 1e-4};
    cbi_tune_result r[4];
    ASSERT_EQ(cbi_tune_network(coupled_loss, &d, 4, d.reaches.data(), init, budget, 1.1, 1000, r,
                               nullptr),
              0);
    for (int i = 0; i < 4; ++i) EXPECT_GT(r[i].tau, 0) << "layer " << i;
    // Every evaluation while layer i was tuned (or its base measured) held
    // exactly the layers that reach i at their tuned values and the rest at 0.
    int bases = 0, current = 0;
    for (size_t e = 0; e < d.layers.size(); ++e) {
        const std::vector<double> &c = d.configs[e];
        if (d.layers[e] < 0) {
            ++bases;
            // A base is measured for the layer about to be tuned: the first
            // layer whose evaluations are still to come.
            current = e + 1 < d.layers.size() ? d.layers[e + 1] : current;
        } else {
            current = d.layers[e];
        }
        for (int j = 0; j < 4; ++j) {
            if (j == current && d.layers[e] >= 0) continue;
            const double held = d.reaches[current * 4 + j] ? r[j].tau : 0.0;
            EXPECT_EQ(c[j], held) << "evaluation " << e << " of layer " << current << ", layer " << j;
        }
    }
    // Bases: all 0 at the start; layer 1's base is the end of layer 0's
    // search and reused; layer 2 drops branch 1 and layer 3 adds it back, so
    // both are measured.
    EXPECT_EQ(bases, 3);
    EXPECT_DOUBLE_EQ(r[2].base, (1.0 * r[0].tau) * (1.0 * r[0].tau));
    // Branch 2 gets what a chain of the trunk and branch 2 alone gives it.
    Dag chain;
    chain.reaches = {0, 0, 1, 0};
    chain.weight = {1.0, 0.5};
    cbi_tune_result rc[2];
    ASSERT_EQ(cbi_tune_network(coupled_loss, &chain, 2, chain.reaches.data(), init, budget, 1.1,
                               1000, rc, nullptr),
              0);
    EXPECT_EQ(rc[0].tau, r[0].tau);
    EXPECT_EQ(rc[1].tau, r[2].tau);
    // Tuned with branch 1 above 0, branch 2 would have got less: the coupled
    // loss grows faster from a larger sum.
    Dag chain3;
    chain3.reaches = {0, 0, 0, 1, 0, 0, 1, 1, 0};
    chain3.weight = {1.0, 2.0, 0.5};
    cbi_tune_result r3[3];
    ASSERT_EQ(cbi_tune_network(coupled_loss, &chain3, 3, chain3.reaches.data(), init, budget, 1.1,
                               1000, r3, nullptr),
              0);
    EXPECT_LT(r3[2].tau, r[2].tau);
}

TEST(Tune, ChainMeasuresOneBase)
{
    Dag d;
    d.weight = {1.0, 2.0, 0.5};
    d.reaches = {0, 0, 0, 1, 0, 0, 1, 1, 0};
    const double init[3] = {1e-3, 1e-3, 1e-3}, budget[3] = {1e-4, 0, 1e-4};
    cbi_tune_result r[3];
    auto on_done = [](void *ctx, int layer, const cbi_tune_result *) {
        static_cast<Dag *>(ctx)->layers.push_back(100 + layer);
    };
    ASSERT_EQ(cbi_tune_network(coupled_loss, &d, 3, d.reaches.data(), init, budget, 1.1, 1000, r,
                               on_done),
              0);
    int bases = 0;
    for (int l : d.layers) bases += l == -1;
    EXPECT_EQ(bases, 1);
    EXPECT_EQ(r[1].tau, 0.0); // zero budget
    EXPECT_EQ(r[1].loss, r[1].base);
    EXPECT_EQ(r[2].base, r[1].loss); // the previous layer's end, not re-measured
    // done() follows each layer's last evaluation, in order.
    std::vector<int> order;
    for (int l : d.layers)
        if (l >= 100) order.push_back(l - 100);
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
    EXPECT_EQ(d.layers.back(), 102);
}

TEST(Tune, NetworkRejectsBadSearch)
{
    Dag d = make_dag();
    const double init[4] = {1e-3, 1e-3, 1e-3, 1e-3}, budget[4] = {1, 1, 1, 1};
    cbi_tune_result r[4];
    EXPECT_EQ(cbi_tune_network(coupled_loss, &d, 4, d.reaches.data(), init, budget, 1.0, 10, r,
                               nullptr),
              -1);
    EXPECT_EQ(cbi_tune_network(coupled_loss, &d, 0, d.reaches.data(), init, budget, 1.1, 10, r,
                               nullptr),
              -1);
    auto nan_loss = [](void *, int, const double *) { return std::nan(""); };
    EXPECT_EQ(cbi_tune_network(nan_loss, nullptr, 4, d.reaches.data(), init, budget, 1.1, 10, r,
                               nullptr),
              -1);
}

int conv_index(const cbinfer_network_t *net, const std::string &name)
{
    for (int i = 0; i < cbinfer_network_conv_count(net); ++i)
        if (name == cbinfer_network_conv_name(net, i)) return i;
    ADD_FAILURE() << "no conv " << name;
    return -1;
}

TEST(Tune, ConvReachesInAChain)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    const int n = cbinfer_network_conv_count(net.get());
    ASSERT_EQ(n, 7);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j)
            EXPECT_EQ(cbinfer_network_conv_reaches(net.get(), i, j), j < i ? 1 : 0) << i << "," << j;
    EXPECT_EQ(cbinfer_network_conv_reaches(net.get(), n, 0), -1);
    EXPECT_EQ(cbinfer_network_conv_reaches(net.get(), 0, -1), -1);
    EXPECT_EQ(cbinfer_network_conv_reaches(nullptr, 1, 0), -1);
}

TEST(Tune, ConvReachesAcrossOpenPoseBranches)
{
    NetPtr net = load("openpose-synthetic");
    ASSERT_TRUE(net);
    const cbinfer_network_t *g = net.get();
    auto reaches = [&](const char *conv, const char *from) {
        return cbinfer_network_conv_reaches(g, conv_index(g, conv), conv_index(g, from));
    };
    // Through the pools, and the trunk into both stage-1 branches.
    EXPECT_EQ(reaches("conv4_4_CPM", "conv1_1"), 1);
    EXPECT_EQ(reaches("conv5_1_CPM_L1", "conv4_4_CPM"), 1);
    EXPECT_EQ(reaches("conv5_1_CPM_L2", "conv4_4_CPM"), 1);
    // The parallel branches do not reach each other.
    EXPECT_EQ(reaches("conv5_1_CPM_L2", "conv5_5_CPM_L1"), 0);
    EXPECT_EQ(reaches("conv5_5_CPM_L1", "conv5_1_CPM_L2"), 0);
    EXPECT_EQ(reaches("Mconv1_stage2_L2", "Mconv7_stage2_L1"), 0);
    // concat_stage2 re-converges them (and the trunk's features skip to it).
    EXPECT_EQ(reaches("Mconv1_stage2_L1", "conv5_5_CPM_L1"), 1);
    EXPECT_EQ(reaches("Mconv1_stage2_L1", "conv5_5_CPM_L2"), 1);
    EXPECT_EQ(reaches("Mconv1_stage2_L2", "conv5_5_CPM_L1"), 1);
    EXPECT_EQ(reaches("Mconv7_stage2_L2", "conv1_1"), 1);
    // Nothing reaches itself or an earlier conv.
    const int n = cbinfer_network_conv_count(g);
    for (int i = 0; i < n; ++i)
        for (int j = i; j < n; ++j) EXPECT_EQ(cbinfer_network_conv_reaches(g, i, j), 0);
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

// Loads a thresholds file into a fresh w x h stream of net whose thresholds
// are all 1e9 first, and expects every conv to end in [0, max]: the file set
// each of them.
void expect_file_sets_every_conv(const cbinfer_network_t *net, int w, int h,
                                 const std::string &path, float max)
{
    StreamPtr s = make_stream(net, w, h, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(s);
    ASSERT_EQ(cbinfer_stream_set_threshold_all(s.get(), 1e9f), CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(cbinfer_stream_load_thresholds(s.get(), path.c_str()), CBINFER_STATUS_SUCCESS)
        << cbinfer_stream_last_error(s.get());
    for (int i = 0; i < cbinfer_network_conv_count(net); ++i) {
        float t = -1;
        const char *name = cbinfer_network_conv_name(net, i);
        ASSERT_EQ(cbinfer_stream_get_threshold(s.get(), name, &t), CBINFER_STATUS_SUCCESS);
        EXPECT_GE(t, 0.f) << name;
        EXPECT_LE(t, max) << name;
    }
}

// Every shipped thresholds file (bench/thresholds/<model>_<data>.thr) loads
// into its model and names each of its convolutions.
TEST(Tune, ShippedThresholdsLoad)
{
    const std::string dir = std::string(CBINFER_TEST_SOURCE_DIR) + "/bench/thresholds/";
    const char *const models[] = {"vgg7-noise1", "realesr-x2", "scene-labeling-synthetic",
                                  "openpose-synthetic"};
    for (const char *m : models) {
        SCOPED_TRACE(m);
        NetPtr net = load(m);
        ASSERT_TRUE(net);
        expect_file_sets_every_conv(net.get(), 96, 72, dir + m + "_vtest-96x72.thr", 1e8f);
    }
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

namespace {

int run_tune(const std::string &args, const std::string &out_path)
{
    return cbi_test_run_tool(CBINFER_TEST_TUNE_EXE, args, out_path);
}

} // namespace

// The tool end to end on a small crop: the thresholds file it writes loads
// into a stream, stays inside what --max-steps allows, and records the run.
TEST(Tune, ToolWritesThresholdsTheLibraryLoads)
{
    SKIP_WITHOUT_FFMPEG(); // it reads --video
    const std::string dir = ::testing::TempDir(), thr = dir + "cbinfer_tune_tool.thr",
                      curve = dir + "cbinfer_tune_tool.txt";
    const std::string model = cbi_test_model("scene-labeling-synthetic");
    const std::string args = "--model '" + model + "' --video '" +
                             cbi_test_video("vtest.avi") +
                             "@0:11' --resize 64x48 --sequences 2 --warmup 2 --evaluate 2 "
                             "--budget 1e-6 --init 1e-3 --growth 2 --max-steps 4 --out '" +
                             thr + "'";
    ASSERT_EQ(run_tune(args, curve), 0);

    NetPtr net = load("scene-labeling-synthetic");
    ASSERT_TRUE(net);
    // At most init * growth^(max_steps - 1).
    expect_file_sets_every_conv(net.get(), 64, 48, thr, 1e-3f * 8 * 1.0001f);
    const std::string text = cbi_test_slurp(thr);
    EXPECT_NE(text.find("--budget 1e-6"), std::string::npos);
    EXPECT_NE(text.find("warmup 2, evaluate 2, sequences 2"), std::string::npos);
    EXPECT_NE(text.find("@0:11"), std::string::npos);
    // stdout: the joint scaling curve, a header and seven scales.
    std::istringstream lines(cbi_test_slurp(curve));
    std::string line;
    int n = 0;
    while (std::getline(lines, line)) ++n;
    EXPECT_EQ(n, 8);
    std::remove(thr.c_str());
    std::remove(curve.c_str());
}

TEST(Tune, ToolRejectsBadArguments)
{
    SKIP_WITHOUT_FFMPEG(); // it reads --video
    const std::string out = ::testing::TempDir() + "cbinfer_tune_bad.txt";
    const std::string base = "--model '" + cbi_test_model("scene-labeling-synthetic") +
                             "' --video '" + cbi_test_video("vtest.avi") + "@0:11' --resize 64x48 ";
    EXPECT_EQ(run_tune(base, out), 2);                          // no --budget
    EXPECT_EQ(run_tune(base + "--budget 1e-6 --evaluate 0", out), 2);
    EXPECT_EQ(run_tune(base + "--budget 1e-6 --growth 1", out), 2);
    EXPECT_EQ(run_tune(base + "--budget 1e-6 --metric psnr --budget-weights 0,0,0,0,0", out), 2);
    // A frame range shorter than warmup + evaluate is a runtime error (1).
    EXPECT_EQ(run_tune(base + "--budget 1e-6 --warmup 8 --evaluate 8", out), 1);
    std::remove(out.c_str());
}

// A layer with no budget is held at 0 and never evaluated, even where the
// loss does not grow at all (which would let its threshold rise).
TEST(Tune, ZeroBudgetHoldsTheLayerAtZero)
{
    std::vector<unsigned char> reaches = {0, 0, 0, 1, 0, 0, 1, 1, 0};
    const double init[3] = {1e-3, 1e-3, 1e-3}, budget[3] = {1e-6, 0, 1e-6};
    cbi_tune_result r[3];
    auto flat = [](void *, int, const double *) { return 0.0; };
    ASSERT_EQ(cbi_tune_network(flat, nullptr, 3, reaches.data(), init, budget, 2.0, 10, r,
                               nullptr),
              0);
    EXPECT_GT(r[0].tau, 0.0);
    EXPECT_EQ(r[1].tau, 0.0);
    EXPECT_EQ(r[1].evals, 0);
    EXPECT_GT(r[2].tau, 0.0);
}
