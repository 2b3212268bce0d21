// CPU convolution kernels against a naive direct convolution over many
// shapes, and the change-based path against the dense path with τ = 0.
#include <gtest/gtest.h>

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
};

// Direct convolution in NCHW with ONNX weights [Cout][Cin][kh][kw]: the
// reference the kernels must match.
std::vector<float> naive_conv(const ConvCase &c, int ho, int wo, const std::vector<float> &x,
                              const std::vector<float> &w, const std::vector<float> &b,
                              const cbi_activation &act)
{
    std::vector<float> y((size_t)c.cout * ho * wo);
    for (int o = 0; o < c.cout; ++o)
        for (int oy = 0; oy < ho; ++oy)
            for (int ox = 0; ox < wo; ++ox) {
                double acc = b[o];
                for (int ci = 0; ci < c.cin; ++ci)
                    for (int ky = 0; ky < c.k; ++ky)
                        for (int kx = 0; kx < c.k; ++kx) {
                            int iy = oy * c.stride - c.pad + ky * c.dil;
                            int ix = ox * c.stride - c.pad + kx * c.dil;
                            if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
                            acc += (double)w[(((size_t)o * c.cin + ci) * c.k + ky) * c.k + kx] *
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
        std::normal_distribution<float> nd(0.f, 1.f / std::sqrt((float)(c.cin * c.k * c.k)));
        w_onnx.resize((size_t)c.cout * c.cin * c.k * c.k);
        for (auto &v : w_onnx) v = nd(rng);
        bias.resize(c.cout);
        for (auto &v : bias) v = nd(rng);
        slope.resize(c.cout);
        for (auto &v : slope) v = 0.05f * nd(rng);
        // [Cout][Cin][kh][kw] -> [Cout][kh][kw][Cin]
        w_nhwc.resize(w_onnx.size());
        for (int o = 0; o < c.cout; ++o)
            for (int ci = 0; ci < c.cin; ++ci)
                for (int ky = 0; ky < c.k; ++ky)
                    for (int kx = 0; kx < c.k; ++kx)
                        w_nhwc[(((size_t)o * c.k + ky) * c.k + kx) * c.cin + ci] =
                            w_onnx[(((size_t)o * c.cin + ci) * c.k + ky) * c.k + kx];
        node.name = (char *)"conv";
        node.op_type = "Conv";
        node.op = CBI_OP_CONV;
        node.n_inputs = 1;
        node.inputs[0] = 0;
        node.output = 1;
        node.cin = c.cin;
        node.cout = c.cout;
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
    snprintf(s, sizeof s, "cin=%d cout=%d %dx%d k=%d s=%d p=%d d=%d act=%d", c.cin, c.cout, c.h,
             c.w, c.k, c.stride, c.pad, c.dil, (int)c.act);
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
    ASSERT_EQ(f.run(CBI_K_CONV_CHANGE, 0, 0.f), CBINFER_STATUS_SUCCESS);
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
