// CPU convolution kernels against a naive direct convolution over many
// shapes, and the change-based path against the dense path with τ = 0.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "test_util.h"

extern "C" {
#include "cpu/cpu_backend.h"
}

namespace {

struct ConvCase {
    int cin, cout, h, w, k, stride, pad, dil;
    cbi_act_kind act;
    int group = 1;
};

// Direct convolution in NCHW with ONNX weights [Cout][Cin][kh][kw]: the
// reference the kernels must match.
std::vector<float> naive_conv(const ConvCase &c, int ho, int wo, const std::vector<float> &x,
                              const std::vector<float> &w, const std::vector<float> &b,
                              const cbi_activation &act)
{
    // With groups, output o reads the cg input channels of group o / (Cout / group).
    const int cg = c.cin / c.group;
    std::vector<float> y((size_t)c.cout * ho * wo);
    for (int o = 0; o < c.cout; ++o)
        for (int oy = 0; oy < ho; ++oy)
            for (int ox = 0; ox < wo; ++ox) {
                double acc = b[o];
                for (int cl = 0; cl < cg; ++cl)
                    for (int ky = 0; ky < c.k; ++ky)
                        for (int kx = 0; kx < c.k; ++kx) {
                            const int ci = o / (c.cout / c.group) * cg + cl;
                            int iy = oy * c.stride - c.pad + ky * c.dil;
                            int ix = ox * c.stride - c.pad + kx * c.dil;
                            if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
                            acc += (double)w[(((size_t)o * cg + cl) * c.k + ky) * c.k + kx] *
                                   x[((size_t)ci * c.h + iy) * c.w + ix];
                        }
                y[((size_t)o * ho + oy) * wo + ox] = cpu_activate(&act, o, (float)acc);
            }
    return y;
}

// One conv node with its plan, backend context and layer state, driven the
// way host/stream.c drives it.
struct ConvFixture {
    ConvCase c;
    int ho, wo;
    std::vector<float> w_onnx, w_nhwc, bias, slope;
    cbi_net net{};
    cbi_node node{};
    cbi_node_plan plan{};
    cbi_shape shapes[2]{};
    void *ctx = nullptr;
    void *layer = nullptr;
    const cbi_backend *be = cbi_cpu_backend();
    std::vector<float> in, out;
    cbi_tensor tin{}, tout{};
    cbi_changes in_chg{}, out_chg{};
    cbinfer_layer_stats stats{};

    ConvFixture(const ConvCase &cc, cbinfer_mode mode, std::mt19937 &rng) : c(cc)
    {
        ho = (c.h + 2 * c.pad - c.dil * (c.k - 1) - 1) / c.stride + 1;
        wo = (c.w + 2 * c.pad - c.dil * (c.k - 1) - 1) / c.stride + 1;
        const int cg = c.cin / c.group;
        std::normal_distribution<float> nd(0.f, 1.f / std::sqrt((float)(cg * c.k * c.k)));
        w_onnx.resize((size_t)c.cout * cg * c.k * c.k);
        for (auto &v : w_onnx) v = nd(rng);
        bias.resize(c.cout);
        for (auto &v : bias) v = nd(rng);
        slope.resize(c.cout);
        for (auto &v : slope) v = 0.05f * nd(rng);
        // [Cout][Cin/group][kh][kw] -> [Cout][kh][kw][Cin/group]
        w_nhwc.resize(w_onnx.size());
        for (int o = 0; o < c.cout; ++o)
            for (int ci = 0; ci < cg; ++ci)
                for (int ky = 0; ky < c.k; ++ky)
                    for (int kx = 0; kx < c.k; ++kx)
                        w_nhwc[(((size_t)o * c.k + ky) * c.k + kx) * cg + ci] =
                            w_onnx[(((size_t)o * cg + ci) * c.k + ky) * c.k + kx];
        node.name = (char *)"conv";
        node.op_type = "Conv";
        node.op = CBI_OP_CONV;
        node.n_inputs = 1;
        node.inputs[0] = 0;
        node.output = 1;
        node.cin = c.cin;
        node.cout = c.cout;
        node.group = c.group;
        node.win = cbi_window{c.k, c.k, c.stride, c.stride, c.dil, c.dil, c.pad, c.pad, c.pad,
                              c.pad, CBI_AUTO_PAD_NOTSET, 0, 0, 0, 0};
        node.weight = w_nhwc.data();
        node.bias = bias.data();
        node.act.kind = c.act;
        node.act.alpha = 0.1f;
        node.act.lo = -0.5f;
        node.act.hi = 0.5f;
        node.act.slope = slope.data();
        node.act.n_slope = c.cout;
        shapes[0] = {c.cin, c.h, c.w};
        shapes[1] = {c.cout, ho, wo};
        plan.in = shapes[0];
        plan.out = shapes[1];
        plan.pad_t = plan.pad_l = plan.pad_b = plan.pad_r = c.pad;
        net.nodes = &node;
        net.n_nodes = 1;
        cbi_backend_config cfg{&net, shapes, &plan, mode, CBINFER_PRECISION_FP32};
        cbi_err e;
        EXPECT_EQ(be->create(&cfg, &ctx, &e), CBINFER_STATUS_SUCCESS) << e.msg;
        EXPECT_EQ(be->layer_create(ctx, 0, &layer, &e), CBINFER_STATUS_SUCCESS) << e.msg;
        in.assign((size_t)c.cin * c.h * c.w, 0.f);
        out.assign((size_t)c.cout * ho * wo, 0.f);
        tin = {in.data(), shapes[0]};
        tout = {out.data(), shapes[1]};
        in_chg.all = 1;
    }
    ~ConvFixture()
    {
        be->layer_destroy(ctx, layer);
        be->destroy(ctx);
    }
    cbinfer_status run(cbi_kernel k, int first, float tau, int ff = 0)
    {
        cbi_op_args a{};
        a.node = &node;
        a.plan = &plan;
        a.layer = layer;
        a.n_in = 1;
        a.in[0] = &tin;
        a.in_chg[0] = &in_chg;
        a.out = &tout;
        a.out_chg = &out_chg;
        a.first = first;
        a.threshold = tau;
        a.feed_forward = ff;
        a.stats = &stats;
        out_chg = cbi_changes{1, nullptr, 0};
        stats = cbinfer_layer_stats{};
        cbi_err e;
        return be->kernel[k](ctx, &a, &e);
    }
    std::vector<float> reference(const std::vector<float> &x_nchw)
    {
        return nchw_to_nhwc(naive_conv(c, ho, wo, x_nchw, w_onnx, bias, node.act), c.cout, ho, wo);
    }
};

std::vector<ConvCase> all_cases()
{
    std::vector<ConvCase> cases;
    const cbi_act_kind acts[] = {CBI_ACT_NONE, CBI_ACT_RELU, CBI_ACT_LEAKY_RELU, CBI_ACT_PRELU,
                                 CBI_ACT_CLIP};
    int i = 0;
    for (int k : {1, 3, 5, 7})
        for (int stride : {1, 2})
            for (int pad : {0, k / 2, k / 2 + 1})
                for (int dil : {1, 2}) {
                    if (k == 1 && dil == 2) continue;
                    cases.push_back({3 + i % 5, 4 + (i * 7) % 9, 13 + i % 4, 11 + i % 6, k, stride,
                                     pad, dil, acts[i % 5]});
                    ++i;
                }
    return cases;
}

std::string describe(const ConvCase &c)
{
    char s[160];
    snprintf(s, sizeof s, "cin=%d cout=%d group=%d %dx%d k=%d s=%d p=%d d=%d act=%d", c.cin,
             c.cout, c.group, c.h, c.w, c.k, c.stride, c.pad, c.dil, (int)c.act);
    return s;
}

} // namespace

TEST(CpuConv, DenseMatchesNaiveReference)
{
    std::mt19937 rng(1234);
    for (const ConvCase &c : all_cases()) {
        ConvFixture f(c, CBINFER_MODE_DENSE, rng);
        std::vector<float> x = random_vec(rng, (size_t)c.cin * c.h * c.w);
        f.in = nchw_to_nhwc(x, c.cin, c.h, c.w);
        f.tin.data = f.in.data();
        ASSERT_EQ(f.run(CBI_K_CONV_DENSE, 1, 0.f), CBINFER_STATUS_SUCCESS);
        std::vector<float> ref = f.reference(x);
        EXPECT_LT(cbi_test_max_abs_diff(ref, f.out), 1e-4f) << describe(c);
        EXPECT_EQ(f.stats.macs, (int64_t)f.ho * f.wo * c.cout * c.k * c.k * c.cin);
    }
}

// Sparse random changes frame after frame: with τ = 0 the stored output must
// equal a fresh convolution of the current input, and only the filter support
// of the changed pixels may be recomputed.
TEST(CpuConv, ChangeBasedEqualsDenseAtZeroThreshold)
{
    std::mt19937 rng(99);
    for (const ConvCase &c : all_cases()) {
        ConvFixture f(c, CBINFER_MODE_CBINFER, rng);
        std::vector<float> x = random_vec(rng, (size_t)c.cin * c.h * c.w);
        for (int frame = 0; frame < 5; ++frame) {
            if (frame > 0) {
                // Change a few pixels in one channel each (any channel counts, Eq. 3).
                for (int n = 0; n < 3; ++n) {
                    int p = (int)(rng() % (unsigned)(c.h * c.w));
                    int ch = (int)(rng() % (unsigned)c.cin);
                    x[(size_t)ch * c.h * c.w + p] += 0.5f;
                }
            }
            f.in = nchw_to_nhwc(x, c.cin, c.h, c.w);
            f.tin.data = f.in.data();
            ASSERT_EQ(f.run(CBI_K_CONV_CHANGE, frame == 0, 0.f), CBINFER_STATUS_SUCCESS);
            std::vector<float> ref = f.reference(x);
            EXPECT_LT(cbi_test_max_abs_diff(ref, f.out), 1e-4f) << describe(c) << " frame " << frame;
            if (frame > 0) {
                EXPECT_LE(f.stats.changed_in_px, 3);
                EXPECT_LE(f.stats.changed_px, 3 * c.k * c.k);
                EXPECT_EQ(f.out_chg.all, 0);
                EXPECT_EQ(f.out_chg.count, f.stats.changed_px);
            }
        }
    }
}

TEST(CpuConv, UnchangedInputDoesNoWork)
{
    std::mt19937 rng(5);
    ConvFixture f({8, 16, 20, 24, 3, 1, 1, 1, CBI_ACT_RELU}, CBINFER_MODE_CBINFER, rng);
    std::uniform_real_distribution<float> ud(-1.f, 1.f);
    for (auto &v : f.in) v = ud(rng);
    ASSERT_EQ(f.run(CBI_K_CONV_CHANGE, 1, 0.f), CBINFER_STATUS_SUCCESS);
    std::vector<float> before = f.out;
    ASSERT_EQ(f.run(CBI_K_CONV_CHANGE, 0, 0.f), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(f.stats.changed_px, 0);
    EXPECT_EQ(f.stats.macs, 0);
    EXPECT_EQ(f.out, before);
}

// The producer's change list restricts detection: a pixel outside it is not
// even looked at.
TEST(CpuConv, DetectionLooksOnlyAtListedPixels)
{
    std::mt19937 rng(6);
    ConvFixture f({4, 4, 10, 10, 3, 1, 1, 1, CBI_ACT_NONE}, CBINFER_MODE_CBINFER, rng);
    ASSERT_EQ(f.run(CBI_K_CONV_CHANGE, 1, 0.f), CBINFER_STATUS_SUCCESS);
    f.in[(size_t)(5 * 10 + 5) * 4] = 1.f;  // listed
    f.in[(size_t)(1 * 10 + 1) * 4] = 1.f;  // not listed
    int32_t listed[] = {55};
    f.in_chg = cbi_changes{0, listed, 1};
    ASSERT_EQ(f.run(CBI_K_CONV_CHANGE, 0, 0.01f), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(f.stats.changed_in_px, 1);
    EXPECT_EQ(f.stats.changed_px, 9);
}

TEST(CpuConv, ThresholdSuppressesSmallChanges)
{
    std::mt19937 rng(7);
    ConvFixture f({3, 5, 12, 12, 3, 1, 1, 1, CBI_ACT_NONE}, CBINFER_MODE_CBINFER, rng);
    ASSERT_EQ(f.run(CBI_K_CONV_CHANGE, 1, 0.1f), CBINFER_STATUS_SUCCESS);
    f.in[0] = 0.05f;              // below τ
    f.in[(size_t)70 * 3 + 2] = 0.2f; // above τ
    ASSERT_EQ(f.run(CBI_K_CONV_CHANGE, 0, 0.1f), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(f.stats.changed_in_px, 1);
}

namespace {

// Grouped and depthwise convolutions: channel counts that run the depthwise
// rows' 32- and 8-channel blocks and their scalar tail, a channel
// multiplier, plain groups; strides, dilations, and padding past the kernel
// (windows wholly in the padding).
std::vector<ConvCase> grouped_cases()
{
    std::vector<ConvCase> cases;
    const cbi_act_kind acts[] = {CBI_ACT_NONE, CBI_ACT_RELU, CBI_ACT_CLIP};
    const int shapes[][3] = {{5, 5, 5}, {24, 24, 24}, {37, 37, 37}, {48, 48, 48},
                             {4, 8, 4}, {6, 4, 2}};  // cin, cout, group
    int i = 0;
    for (const auto &sh : shapes)
        for (int k : {3, 5})
            for (int stride : {1, 2})
                for (int pad : {0, k / 2, k + 1})
                    for (int dil : {1, 2}) {
                        ConvCase c{sh[0], sh[1], 9 + i % 4, 8 + i % 5, k, stride, pad, dil,
                                   acts[i % 3]};
                        c.group = sh[2];
                        cases.push_back(c);
                        ++i;
                    }
    return cases;
}

} // namespace

// Grouped convolutions, dense and change-based (the first frame dense, then
// every input changed, then sparse changes), against the naive reference.
TEST(CpuConv, GroupedMatchesNaiveReference)
{
    std::mt19937 rng(77);
    for (const ConvCase &c : grouped_cases()) {
        std::mt19937 same = rng;  // the same weights for both
        ConvFixture d(c, CBINFER_MODE_DENSE, rng), f(c, CBINFER_MODE_CBINFER, same);
        std::vector<float> x = random_vec(rng, (size_t)c.cin * c.h * c.w);
        for (int frame = 0; frame < 4; ++frame) {
            if (frame == 1)  // every pixel: the depthwise runs along rows
                for (float &v : x) v += 0.25f * (float)(rng() % 5) - 0.5f;
            if (frame > 1)
                for (int n = 0; n < 4; ++n)
                    x[rng() % x.size()] += 0.5f;
            d.in = f.in = nchw_to_nhwc(x, c.cin, c.h, c.w);
            d.tin.data = d.in.data();
            f.tin.data = f.in.data();
            ASSERT_EQ(d.run(CBI_K_CONV_DENSE, 1, 0.f), CBINFER_STATUS_SUCCESS) << describe(c);
            ASSERT_EQ(f.run(CBI_K_CONV_CHANGE, frame == 0, 0.f), CBINFER_STATUS_SUCCESS)
                << describe(c);
            const std::vector<float> ref = d.reference(x);
            EXPECT_LT(cbi_test_max_abs_diff(ref, d.out), 1e-4f) << describe(c);
            EXPECT_LT(cbi_test_max_abs_diff(ref, f.out), 1e-4f) << describe(c) << " frame "
                                                                 << frame;
        }
    }
}

// At τ = 0 behind a change list, from an exact output, a conv counts every
// listed pixel as changed without testing any (no gate evaluations) and
// recomputes what the list reaches from its input, keeping no state. Above 0
// again, one frame still follows while the state takes the input; after
// changes under τ were left out, τ = 0 detects against the state (the closed
// loop: the output stays the convolution of the state). An input changed
// everywhere after following runs dense.
TEST(CpuConv, ZeroThresholdFollowsTheProducersList)
{
    std::mt19937 rng(31);
    ConvCase depthwise{40, 40, 12, 11, 3, 2, 1, 1, CBI_ACT_CLIP};
    depthwise.group = 40;
    for (const ConvCase &c : {ConvCase{6, 8, 12, 11, 3, 1, 1, 1, CBI_ACT_RELU}, depthwise}) {
        SCOPED_TRACE(describe(c));
        ConvFixture f(c, CBINFER_MODE_CBINFER, rng);
        std::vector<float> x = random_vec(rng, (size_t)c.cin * c.h * c.w);
        std::vector<int32_t> list;
        // One frame of input x with its change list (all when `all`) at τ;
        // the output must be the convolution of `expect`.
        auto frame = [&](int first, float tau, bool all, const std::vector<float> &expect) {
            f.in = nchw_to_nhwc(x, c.cin, c.h, c.w);
            f.tin.data = f.in.data();
            f.in_chg = all ? cbi_changes{1, nullptr, 0}
                           : cbi_changes{0, list.data(), (int64_t)list.size()};
            ASSERT_EQ(f.run(CBI_K_CONV_CHANGE, first, tau), CBINFER_STATUS_SUCCESS);
            EXPECT_LT(cbi_test_max_abs_diff(f.reference(expect), f.out), 1e-4f);
        };
        frame(1, 0.f, true, x);
        // Pixel 100 is listed but unchanged, and counts all the same (channel
        // 0 of the other pixels changes).
        for (int32_t p : {14, 15, 60}) x[p] += 0.5f;
        list = {14, 15, 60, 100};
        frame(0, 0.f, false, x);
        EXPECT_EQ(f.stats.changed_in_px, 4);
        EXPECT_EQ(f.stats.transmitted_el, 4 * c.cin);
        EXPECT_EQ(f.stats.overhead_arith, f.stats.transmitted_el); // no gate evaluated
        EXPECT_EQ(f.out_chg.all, 0);
        EXPECT_EQ(f.out_chg.count, f.stats.changed_px);
        EXPECT_EQ(f.stats.macs, f.stats.changed_px * c.k * c.k * (c.cin / c.group) * c.cout);
        // Above 0 again: this frame follows (a change under τ counts), and the
        // state takes the input. The restored pixels equal no kept state.
        for (int32_t p : {14, 15}) x[p] -= 0.5f;
        x[20] += 0.05f;
        list = {14, 15, 20};
        frame(0, 0.1f, false, x);
        EXPECT_EQ(f.stats.changed_in_px, 3);
        // Detection from the state: a change of 0.05 stays out.
        std::vector<float> state = x;
        x[61] += 0.05f;
        list = {61};
        frame(0, 0.1f, false, state);
        EXPECT_EQ(f.stats.changed_in_px, 0);
        // Back at 0 the layer detects (its output is not exact): a listed
        // neighbour is taken, pixel 61 keeps its state.
        x[62] += 0.5f;
        state[62] = x[62];
        list = {62};
        frame(0, 0.f, false, state);
        EXPECT_EQ(f.stats.changed_in_px, 1);
        list = {61};
        frame(0, 0.f, false, x);
        EXPECT_EQ(f.stats.changed_in_px, 1);
        // From a dense frame it follows again; then an input changed
        // everywhere (pixel 50 back to its value in the state not kept) runs
        // dense, and detection goes on from there.
        frame(1, 0.f, true, x);
        x[50] += 0.5f;
        list = {50};
        frame(0, 0.f, false, x);
        EXPECT_EQ(f.stats.overhead_arith, f.stats.transmitted_el);
        x[50] -= 0.5f;
        frame(0, 0.f, true, x);
        EXPECT_EQ(f.stats.ran_dense, 1);
        frame(0, 0.f, true, x);
        EXPECT_EQ(f.stats.changed_in_px, 0);
        EXPECT_EQ(f.stats.macs, 0);
        // An empty list above 0 leaves no change out, so the output stays
        // exact and τ = 0 follows again (as on CUDA, which skips detection
        // of an empty list): the unchanged listed pixel 70 counts.
        list.clear();
        frame(0, 0.1f, false, x);
        x[71] += 0.5f;
        list = {70, 71};
        frame(0, 0.f, false, x);
        EXPECT_EQ(f.stats.changed_in_px, 2);
        EXPECT_EQ(f.stats.overhead_arith, f.stats.transmitted_el);
    }
}
