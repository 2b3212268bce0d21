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
#include "task_loss.h"
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
    // The task losses: the budget is the total, split as for PSNR.
    ASSERT_EQ(cbi_tune_budgets(CBI_TUNE_DETECT, 6e-4, w, 3, b), 0);
    EXPECT_DOUBLE_EQ(b[0], 4e-4);
    EXPECT_DOUBLE_EQ(b[2], 1e-4);
    ASSERT_EQ(cbi_tune_budgets(CBI_TUNE_POSE, 3e-4, nullptr, 3, b), 0);
    EXPECT_DOUBLE_EQ(b[1], 1e-4);
    const double none[3] = {0, 0, 0};
    EXPECT_EQ(cbi_tune_budgets(CBI_TUNE_DETECT, 1e-4, none, 3, b), -1);
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

namespace {

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// One head of 2 classes and 3 bins a side (14 channels) on a 2 x 2 grid:
// every class logit at -12 (background), every side's bins (10, -10, -10),
// so its mean bin is ~0.
std::vector<float> background_head()
{
    std::vector<float> h(14 * 4, -12.f);
    for (int side = 0; side < 4; ++side)
        for (int p = 0; p < 4; ++p) {
            h[(size_t)(2 + side * 3) * 4 + p] = 10.f;
            h[(size_t)(2 + side * 3 + 1) * 4 + p] = -10.f;
            h[(size_t)(2 + side * 3 + 2) * 4 + p] = -10.f;
        }
    return h;
}

double detect_loss(const std::vector<float> &ref, const std::vector<float> &x)
{
    const cbinfer_tensor_view r = {ref.data(), 14, 2, 2}, c = {x.data(), 14, 2, 2};
    return cbi_detect_loss(&r, &c, 1, 2);
}

} // namespace

// The detect loss reads the outputs as the decoder does: class scores after
// the sigmoid (a logit far below any threshold moves nothing), and a side's
// distance only where the dense cell scores a class.
TEST(Tune, DetectLossFollowsTheDecoder)
{
    const std::vector<float> ref = background_head();
    EXPECT_EQ(detect_loss(ref, ref), 0.0);
    // A background logit 4 up: (sigmoid(-8) - sigmoid(-12))^2 over 4 cells.
    std::vector<float> x = ref;
    x[1 * 4 + 3] = -8.f;
    const double d = sigmoid(-8) - sigmoid(-12);
    EXPECT_NEAR(detect_loss(ref, x), d * d / 4, 1e-12);
    // A logit at 0 moved by 0.5 weighs ~1e5 times more.
    std::vector<float> r0 = ref, x0 = ref;
    r0[3] = 0.f;
    x0[3] = 0.5f;
    const double e = sigmoid(0.5) - 0.5;
    EXPECT_NEAR(detect_loss(r0, x0), e * e / 4, 1e-9);
    // Side 2's bins of cell 3 moved to (-10, -10, 10): the mean bin from 0
    // to 2 of 3 bins, weighted by the dense cell's best score.
    auto move_side = [](std::vector<float> v) {
        v[(size_t)(2 + 2 * 3) * 4 + 3] = -10.f;
        v[(size_t)(2 + 2 * 3 + 2) * 4 + 3] = 10.f;
        return v;
    };
    const double box = (2.0 / 3) * (2.0 / 3);
    EXPECT_NEAR(detect_loss(ref, move_side(ref)), sigmoid(-12) * box / 4, 1e-9);
    std::vector<float> scored = ref;
    scored[3] = 3.f; // class 0 scores 0.95 at cell 3 on both sides
    EXPECT_NEAR(detect_loss(scored, move_side(scored)), sigmoid(3) * box / 4, 1e-6);
    // Not finite on one side only: infinite; shapes that do not fit: NaN.
    x = ref;
    x[5] = NAN;
    EXPECT_TRUE(std::isinf(detect_loss(ref, x)));
    // The same infinity on both sides is left out; opposite ones are not.
    std::vector<float> r_inf = ref;
    r_inf[5] = INFINITY;
    x = r_inf;
    EXPECT_EQ(detect_loss(r_inf, x), 0.0);
    x[5] = -INFINITY;
    EXPECT_TRUE(std::isinf(detect_loss(r_inf, x)));
    const cbinfer_tensor_view r = {ref.data(), 14, 2, 2}, wide = {ref.data(), 14, 1, 4},
                              odd = {ref.data(), 13, 2, 2};
    EXPECT_TRUE(std::isnan(cbi_detect_loss(&r, &wide, 1, 2)));
    EXPECT_TRUE(std::isnan(cbi_detect_loss(&odd, &odd, 1, 2)));
    EXPECT_TRUE(std::isnan(cbi_detect_loss(&r, &r, 1, 14)));
}

// The pose loss: keypoint scores after the sigmoid, offsets in cells
// weighted by their keypoint's dense score, displacements by the cell's
// best score.
TEST(Tune, PoseLossWeighsOffsetsByTheirKeypoint)
{
    const int cells = 2; // a 1 x 2 grid
    std::vector<float> heat(17 * cells, -12.f), off(34 * cells, 0.f), fwd(32 * cells, 0.f),
        bwd(32 * cells, 0.f);
    heat[5 * cells + 1] = 2.f; // keypoint 5 scores 0.88 at cell 1
    auto loss = [&](const std::vector<float> &o, const std::vector<float> &f) {
        const cbinfer_tensor_view r[4] = {{heat.data(), 17, 1, 2}, {off.data(), 34, 1, 2},
                                          {fwd.data(), 32, 1, 2}, {bwd.data(), 32, 1, 2}};
        const cbinfer_tensor_view x[4] = {r[0], {o.data(), 34, 1, 2}, {f.data(), 32, 1, 2}, r[3]};
        return cbi_pose_loss(r, x, 16.f);
    };
    EXPECT_EQ(loss(off, fwd), 0.0);
    // Keypoint 5's x offset (channel 17 + 5) 16 px off at cell 1: one cell.
    std::vector<float> o = off;
    o[(17 + 5) * cells + 1] = 16.f;
    EXPECT_NEAR(loss(o, fwd), sigmoid(2) / cells, 1e-9);
    // The same error at cell 0, where no keypoint scores: sigmoid(-12).
    o = off;
    o[(17 + 5) * cells + 0] = 16.f;
    EXPECT_NEAR(loss(o, fwd), sigmoid(-12) / cells, 1e-12);
    // A displacement 8 px off at cell 1: (1/2)^2 times the best score there.
    std::vector<float> f = fwd;
    f[3 * cells + 1] = 8.f;
    EXPECT_NEAR(loss(off, f), 0.25 * sigmoid(2) / cells, 1e-9);
    f[3 * cells + 1] = INFINITY;
    EXPECT_TRUE(std::isinf(loss(off, f)));
    const cbinfer_tensor_view bad[4] = {{heat.data(), 17, 1, 2}, {off.data(), 34, 1, 2},
                                        {fwd.data(), 32, 1, 2}, {bwd.data(), 32, 2, 1}};
    EXPECT_TRUE(std::isnan(cbi_pose_loss(bad, bad, 16.f)));
}

// --metric detect end to end on NanoDet; --start alone: the scaling curve of
// a file without a search; --start with --refine: a refined file.
TEST(Tune, ToolTunesStartsAndRefinesOnTheDetectLoss)
{
    SKIP_WITHOUT_FFMPEG(); // it reads --video
    const std::string dir = ::testing::TempDir(), thr = dir + "cbinfer_tune_detect.thr",
                      curve = dir + "cbinfer_tune_detect.txt";
    const std::string base = "--model '" + cbi_test_model("nanodet") + "' --video '" +
                             cbi_test_video("vtest.avi") +
                             "@0:7' --resize 64x64 --sequences 1 --warmup 2 --evaluate 2 "
                             "--metric detect ";
    ASSERT_EQ(run_tune(base + "--budget 1e-3 --init 1e-2 --growth 4 --max-steps 2 --out '" +
                           thr + "'",
                       curve),
              0);
    NetPtr net = load("nanodet");
    ASSERT_TRUE(net);
    expect_file_sets_every_conv(net.get(), 64, 64, thr, 4e-2f * 1.0001f);
    EXPECT_NE(cbi_test_slurp(thr).find("metric detect, budget 0.001 in all"), std::string::npos);
    // The loss at each scale of a curve on stdout (header, then 7 rows).
    auto curve_losses = [&]() {
        std::istringstream lines(cbi_test_slurp(curve));
        std::string line;
        std::getline(lines, line);
        std::vector<double> losses;
        double scale, loss;
        while (lines >> scale >> loss && std::getline(lines, line)) losses.push_back(loss);
        return losses;
    };
    const std::vector<double> searched = curve_losses();
    ASSERT_EQ(searched.size(), 7u);
    // --start alone gives the curve of the file: the search's own.
    ASSERT_EQ(run_tune(base + "--start '" + thr + "'", curve), 0);
    const std::vector<double> started = curve_losses();
    ASSERT_EQ(started.size(), 7u);
    for (size_t i = 0; i < 7; ++i) {
        EXPECT_TRUE(std::isfinite(started[i]) && started[i] >= 0) << i;
        EXPECT_NEAR(started[i], searched[i], 1e-6 * searched[i] + 1e-15) << i;
    }
    // --refine needs a budget; with one, the file records the refinement and
    // its thresholds stay where the steps allow (4 steps of at most
    // CBI_TUNE_MAX_STEP). Outputs that are not PoseNet's are an error (1).
    EXPECT_EQ(run_tune(base + "--start '" + thr + "' --refine 2", curve), 2);
    const std::string refined = dir + "cbinfer_tune_refined.thr";
    ASSERT_EQ(run_tune(base + "--start '" + thr + "' --refine 4 --budget 1e-2 --growth 4 --out '" +
                           refined + "'",
                       curve),
              0);
    // Growth 4: the longest step is x16.
    expect_file_sets_every_conv(net.get(), 64, 64, refined, 4e-2f * 16 * 16 * 16 * 16 * 1.0001f);
    EXPECT_NE(cbi_test_slurp(refined).find("refine 4: "), std::string::npos);
    std::remove(refined.c_str());
    EXPECT_EQ(run_tune(base.substr(0, base.find("--metric")) + "--metric pose --budget 1", curve),
              1); // NanoDet has no PoseNet outputs
    std::remove(thr.c_str());
    std::remove(curve.c_str());
}

namespace {

// A synthetic network for cbi_tune_refine: loss and cost are given functions
// of the thresholds.
struct Synth {
    double (*loss)(const double *tau);
    double (*cost)(const double *tau);
};

double synth_eval(void *ctx, const double *tau, double *cost)
{
    const Synth *s = static_cast<const Synth *>(ctx);
    *cost = s->cost(tau);
    return s->loss(tau);
}

// cbi_tune_refine from tau, its start evaluated first as cbinfer-tune does.
int refine(Synth *s, int n, double *tau, const double *init, const double *budget, double total,
           double growth, int max_steps, double *loss, double *cost, int *evals)
{
    double c0;
    const double l0 = synth_eval(s, tau, &c0);
    return cbi_tune_refine(synth_eval, s, n, tau, l0, c0, init, budget, total, growth, max_steps,
                           loss, cost, evals, nullptr);
}

} // namespace

// The refinement spends the loss on the layer that saves the most cost per
// loss, up to the total, and leaves the others.
TEST(Tune, RefineSpendsTheLossWhereItSavesMost)
{
    Synth s = {[](const double *t) { return t[0] + t[1] + t[2]; },
               [](const double *t) { return 10 - t[0] - 3 * t[1] - 2 * t[2]; }};
    double tau[3] = {0.1, 0.1, 0.1};
    const double init[3] = {0.1, 0.1, 0.1}, budget[3] = {1, 1, 1};
    double loss, cost;
    int evals;
    // Layer 1 to 0.2, 0.4, 0.8 (loss 1.0); its next step (1.6) and any other
    // (loss 1.1) leave the total 1.05.
    EXPECT_EQ(refine(&s, 3, tau, init, budget, 1.05, 2.0, 50, &loss, &cost, &evals),
              3);
    EXPECT_DOUBLE_EQ(tau[0], 0.1);
    EXPECT_DOUBLE_EQ(tau[1], 0.8);
    EXPECT_DOUBLE_EQ(tau[2], 0.1);
    EXPECT_NEAR(loss, 1.0, 1e-12);
    EXPECT_NEAR(cost, 10 - 0.1 - 2.4 - 0.2, 1e-12);
    EXPECT_GT(evals, 3);
    // max_steps bounds the steps.
    double again[3] = {0.1, 0.1, 0.1};
    EXPECT_EQ(refine(&s, 3, again, init, budget, 1.05, 2.0, 1, nullptr, nullptr, nullptr),
              1);
    EXPECT_DOUBLE_EQ(again[1], 0.2);
}

// Steps that add no loss go first; a layer with no budget is never moved; a
// step too short to save anything is lengthened.
TEST(Tune, RefineTakesFreeStepsFirstAndLengthensIdleOnes)
{
    Synth s = {[](const double *t) { return t[1] + t[2]; },
               [](const double *t) { return 10 - t[0] - 3 * t[1] - 100 * t[2]; }};
    double tau[3] = {0.1, 0.1, 0};
    const double init[3] = {0.1, 0.1, 0.1}, budget[3] = {1, 1, 0};
    EXPECT_EQ(refine(&s, 3, tau, init, budget, 10, 2.0, 3, nullptr, nullptr, nullptr),
              3);
    EXPECT_DOUBLE_EQ(tau[0], 0.8); // free: all three steps
    EXPECT_DOUBLE_EQ(tau[1], 0.1);
    EXPECT_EQ(tau[2], 0.0);
    // The cost drops only once tau reaches 1: 0.1 x 2 and x 4 save nothing,
    // x 16 does.
    Synth step = {[](const double *t) { return 0.01 * t[0]; },
                  [](const double *t) { return t[0] >= 1 ? 5.0 : 10.0; }};
    double one[1] = {0.1};
    const double init1[1] = {0.1}, budget1[1] = {1};
    double cost;
    EXPECT_EQ(refine(&step, 1, one, init1, budget1, 1, 2.0, 1, nullptr, &cost, nullptr),
              1);
    EXPECT_DOUBLE_EQ(one[0], 1.6);
    EXPECT_EQ(cost, 5.0);
    // A NaN loss aborts; so do bad parameters.
    Synth nan_loss = {[](const double *) { return std::nan(""); },
                      [](const double *) { return 1.0; }};
    EXPECT_EQ(refine(&nan_loss, 1, one, init1, budget1, 1, 2.0, 5, nullptr, nullptr, nullptr),
              -1);
    EXPECT_EQ(refine(&step, 1, one, init1, budget1, 1, 1.0, 5, nullptr, nullptr, nullptr),
              -1);
}
