// CPU kernels of host/cpu/cpu_ops.c against naive NCHW references written
// here (ONNX semantics), over many shapes; change-based pooling against dense
// pooling, bit for bit, across frames of random sparse changes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "test_util.h"

extern "C" {
#include "cpu/cpu_backend.h"
}

namespace {

using Vec = std::vector<float>;

float max_abs_diff(const Vec &a, const Vec &b)
{
    EXPECT_EQ(a.size(), b.size());
    float m = 0.f;
    for (size_t i = 0; i < a.size() && i < b.size(); i++) {
        if (std::isinf(a[i]) || std::isinf(b[i])) {
            if (a[i] != b[i]) return std::numeric_limits<float>::infinity();
            continue;
        }
        m = std::max(m, std::fabs(a[i] - b[i]));
    }
    return m;
}

// One op call built by hand: node, plan, tensors (NHWC), args, stats.
struct Op {
    cbi_node node{};
    cbi_node_plan plan{};
    cbi_op_args args{};
    cbinfer_layer_stats stats{};
    cbi_err err{};
    std::vector<Vec> in_data;
    std::vector<cbi_tensor> in_t;
    Vec out_data;
    cbi_tensor out_t{};

    Op(cbi_op op, const char *type)
    {
        node.name = const_cast<char *>("test_node");
        node.op_type = type;
        node.op = op;
        node.win.sh = node.win.sw = node.win.dh = node.win.dw = 1;
    }
    void add_input(const Vec &nhwc, int c, int h, int w)
    {
        in_data.push_back(nhwc);
        cbi_tensor t{};
        t.shape = {c, h, w};
        in_t.push_back(t);
    }
    // Wires the pointers; call after the last add_input and before the kernel.
    void finish(int oc, int oh, int ow)
    {
        plan.in = in_t[0].shape;
        plan.out = {oc, oh, ow};
        out_data.assign((size_t)oc * oh * ow, 12345.f);
        out_t.data = out_data.data();
        out_t.shape = plan.out;
        args.node = &node;
        args.plan = &plan;
        args.n_in = (int)in_t.size();
        for (size_t i = 0; i < in_t.size(); i++) {
            in_t[i].data = in_data[i].data();
            args.in[i] = &in_t[i];
        }
        args.out = &out_t;
        args.stats = &stats;
        args.collect_stats = 1;
    }
    Vec out_nchw() const { return nhwc_to_nchw(out_data, plan.out.c, plan.out.h, plan.out.w); }
};

// ----------------------------------------------------------- Activation ---

float ref_act(const cbi_activation &a, int ch, float v)
{
    switch (a.kind) {
    case CBI_ACT_RELU: return std::max(v, 0.f);
    case CBI_ACT_LEAKY_RELU: return v >= 0 ? v : a.alpha * v;
    case CBI_ACT_PRELU: return v >= 0 ? v : a.slope[a.n_slope == 1 ? 0 : ch] * v;
    case CBI_ACT_CLIP: return std::min(std::max(v, a.lo), a.hi);
    default: return v;
    }
}

TEST(CpuOps, ActivationAllKinds)
{
    std::mt19937 rng(1);
    const int c = 5, h = 4, w = 7;
    Vec slope = random_vec(rng, c, 0.05f, 0.5f);
    float slope1 = 0.3f;
    for (int kind = CBI_ACT_NONE; kind <= CBI_ACT_CLIP + 1; kind++) {
        Op op(CBI_OP_ACTIVATION, "Act");
        cbi_activation &a = op.node.act;
        a.kind = (cbi_act_kind)(kind > CBI_ACT_CLIP ? CBI_ACT_PRELU : kind);
        a.alpha = 0.1f;
        a.lo = -0.25f;
        a.hi = 0.5f;
        if (kind > CBI_ACT_CLIP) { a.slope = &slope1; a.n_slope = 1; } // broadcast PReLU
        else { a.slope = slope.data(); a.n_slope = c; }
        Vec x = random_vec(rng, (size_t)c * h * w, -2.f, 2.f);
        op.add_input(nchw_to_nhwc(x, c, h, w), c, h, w);
        op.finish(c, h, w);
        ASSERT_EQ(cpu_activation(nullptr, &op.args, &op.err), CBINFER_STATUS_SUCCESS) << op.err.msg;
        Vec got = op.out_nchw();
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < h * w; i++)
                ASSERT_FLOAT_EQ(got[(size_t)ch * h * w + i], ref_act(a, ch, x[(size_t)ch * h * w + i]))
                    << "kind " << kind << " ch " << ch;
        EXPECT_EQ(op.stats.changed_px, h * w);
        EXPECT_GE(op.stats.step_ms[CBINFER_STEP_DENSE], 0.0);
    }
}

TEST(CpuOps, ActivationInPlace)
{
    std::mt19937 rng(2);
    Op op(CBI_OP_ACTIVATION, "Relu");
    op.node.act.kind = CBI_ACT_RELU;
    Vec x = random_vec(rng, 3 * 5 * 6);
    op.add_input(x, 3, 5, 6);
    op.finish(3, 5, 6);
    op.out_t.data = op.in_t[0].data; // in place
    ASSERT_EQ(cpu_activation(nullptr, &op.args, &op.err), CBINFER_STATUS_SUCCESS);
    for (size_t i = 0; i < x.size(); i++) EXPECT_EQ(op.in_data[0][i], std::max(x[i], 0.f));
}

// -------------------------------------------------------------- Pooling ---

// ONNX-reference style: pad with 0 (counted) or NaN (ignored), NaN beyond the
// pads for ceil_mode, then reduce every window over its non-NaN values.
Vec ref_pool(const Vec &x, int c, int h, int w, const PoolCfg &p, int oh, int ow)
{
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const int ext = (p.k - 1) * p.d + 1;
    const int ph = std::max(h + p.pt + p.pb, (oh - 1) * p.s + ext);
    const int pw = std::max(w + p.pl + p.pr, (ow - 1) * p.s + ext);
    const float padv = (!p.is_max && p.include_pad) ? 0.f : nan;
    Vec y((size_t)c * oh * ow);
    for (int ch = 0; ch < c; ch++) {
        std::vector<float> P((size_t)ph * pw, nan);
        for (int i = 0; i < ph; i++)
            for (int j = 0; j < pw; j++) {
                if (i >= h + p.pt + p.pb || j >= w + p.pl + p.pr) continue; // ceil extra: NaN
                const int si = i - p.pt, sj = j - p.pl;
                P[(size_t)i * pw + j] = (si >= 0 && si < h && sj >= 0 && sj < w)
                                            ? x[((size_t)ch * h + si) * w + sj]
                                            : padv;
            }
        for (int oi = 0; oi < oh; oi++)
            for (int oj = 0; oj < ow; oj++) {
                double acc = 0;
                float mx = -std::numeric_limits<float>::infinity();
                int n = 0;
                for (int a = 0; a < p.k; a++)
                    for (int b = 0; b < p.k; b++) {
                        const float v = P[(size_t)(oi * p.s + a * p.d) * pw + oj * p.s + b * p.d];
                        if (std::isnan(v)) continue;
                        acc += v;
                        mx = std::max(mx, v);
                        n++;
                    }
                y[((size_t)ch * oh + oi) * ow + oj] = p.is_max ? mx : (n ? (float)(acc / n) : 0.f);
            }
    }
    return y;
}

void setup_pool(Op &op, const PoolCfg &p, int c, int h, int w, const Vec &x_nhwc, int *oh, int *ow)
{
    op.node.win.kh = op.node.win.kw = p.k;
    op.node.win.sh = op.node.win.sw = p.s;
    op.node.win.dh = op.node.win.dw = p.d;
    op.node.win.pad_t = p.pt;
    op.node.win.pad_l = p.pl;
    op.node.win.pad_b = p.pb;
    op.node.win.pad_r = p.pr;
    op.node.win.ceil_mode = p.ceil;
    op.node.win.count_include_pad = p.include_pad;
    *oh = pool_out(h, p.k, p.s, p.d, p.pt, p.pb, p.ceil);
    *ow = pool_out(w, p.k, p.s, p.d, p.pl, p.pr, p.ceil);
    op.add_input(x_nhwc, c, h, w);
    op.finish(c, *oh, *ow);
    op.plan.pad_t = p.pt;
    op.plan.pad_l = p.pl;
    op.plan.pad_b = p.pb;
    op.plan.pad_r = p.pr;
}

TEST(CpuOps, PoolDenseMatchesReference)
{
    std::mt19937 rng(3);
    const int sizes[][3] = {{3, 7, 9}, {4, 8, 8}, {1, 5, 6}, {16, 11, 5}, {2, 1, 4}};
    int n = 0;
    for (const PoolCfg &p : pool_cfgs())
        for (auto &sz : sizes) {
            const int c = sz[0], h = sz[1], w = sz[2];
            if (pool_out(h, p.k, p.s, p.d, p.pt, p.pb, p.ceil) < 1 ||
                pool_out(w, p.k, p.s, p.d, p.pl, p.pr, p.ceil) < 1)
                continue;
            Op op(p.is_max ? CBI_OP_MAXPOOL : CBI_OP_AVGPOOL, p.is_max ? "MaxPool" : "AveragePool");
            Vec x = random_vec(rng, (size_t)c * h * w);
            int oh, ow;
            setup_pool(op, p, c, h, w, nchw_to_nhwc(x, c, h, w), &oh, &ow);
            ASSERT_EQ(cpu_pool_dense(nullptr, &op.args, &op.err), CBINFER_STATUS_SUCCESS) << op.err.msg;
            Vec ref = ref_pool(x, c, h, w, p, oh, ow);
            ASSERT_LE(max_abs_diff(op.out_nchw(), ref), 1e-6f)
                << (p.is_max ? "max" : "avg") << " k" << p.k << " s" << p.s << " d" << p.d << " pads "
                << p.pt << p.pl << p.pb << p.pr << " ceil" << p.ceil << " inc" << p.include_pad << " "
                << c << "x" << h << "x" << w;
            EXPECT_EQ(op.stats.changed_px, (int64_t)oh * ow);
            n++;
        }
    EXPECT_GT(n, 150);
}

TEST(CpuOps, PoolCountIncludePadKnownValues)
{
    // 1x1x2x2 of ones, AveragePool k2 s1 pads 1: corners see 1 input of 4.
    Op op(CBI_OP_AVGPOOL, "AveragePool");
    PoolCfg p{false, 2, 1, 1, 1, 1, 1, 1, false, true};
    int oh, ow;
    setup_pool(op, p, 1, 2, 2, Vec(4, 1.f), &oh, &ow);
    ASSERT_EQ(oh, 3);
    ASSERT_EQ(cpu_pool_dense(nullptr, &op.args, &op.err), CBINFER_STATUS_SUCCESS);
    EXPECT_FLOAT_EQ(op.out_data[0], 0.25f);
    EXPECT_FLOAT_EQ(op.out_data[1], 0.5f);
    EXPECT_FLOAT_EQ(op.out_data[4], 1.f);
    op.node.win.count_include_pad = 0;
    ASSERT_EQ(cpu_pool_dense(nullptr, &op.args, &op.err), CBINFER_STATUS_SUCCESS);
    for (float v : op.out_data) EXPECT_FLOAT_EQ(v, 1.f);
}

// Brute force: output pixels whose window holds a changed input pixel.
std::vector<int32_t> affected_outputs(const PoolCfg &p, int h, int w, int oh, int ow,
                                      const std::vector<int32_t> &chg)
{
    std::set<int32_t> c(chg.begin(), chg.end());
    std::vector<int32_t> r;
    for (int oi = 0; oi < oh; oi++)
        for (int oj = 0; oj < ow; oj++) {
            bool hit = false;
            for (int a = 0; a < p.k && !hit; a++)
                for (int b = 0; b < p.k && !hit; b++) {
                    const int i = oi * p.s - p.pt + a * p.d, j = oj * p.s - p.pl + b * p.d;
                    hit = i >= 0 && i < h && j >= 0 && j < w && c.count(i * w + j);
                }
            if (hit) r.push_back(oi * ow + oj);
        }
    return r;
}

TEST(CpuOps, PoolChangeEqualsDenseAcrossFrames)
{
    std::mt19937 rng(4);
    const int sizes[][3] = {{3, 9, 11}, {8, 16, 16}, {2, 5, 4}, {1, 13, 7}};
    int frames_checked = 0;
    for (const PoolCfg &p : pool_cfgs())
        for (auto &sz : sizes) {
            const int c = sz[0], h = sz[1], w = sz[2];
            Op chg(p.is_max ? CBI_OP_MAXPOOL : CBI_OP_AVGPOOL, "Pool");
            Op dense(p.is_max ? CBI_OP_MAXPOOL : CBI_OP_AVGPOOL, "Pool");
            Vec x = nchw_to_nhwc(random_vec(rng, (size_t)c * h * w), c, h, w);
            int oh, ow;
            setup_pool(chg, p, c, h, w, x, &oh, &ow);
            setup_pool(dense, p, c, h, w, x, &oh, &ow);
            // Pool state as layer_create makes it (zeroed); the map starts dirty
            // to check that the first frame clears it.
            std::vector<uint8_t> out_map((size_t)oh * ow, 1);
            std::vector<int32_t> idx((size_t)oh * ow, -1);
            cpu_layer layer{};
            layer.out_map = out_map.data();
            layer.idx = idx.data();
            cbi_changes in_chg{}, out_chg{};
            chg.args.layer = &layer;
            chg.args.in_chg[0] = &in_chg;
            chg.args.out_chg = &out_chg;
            chg.args.first = 1;
            in_chg.all = 1;
            ASSERT_EQ(cpu_pool_change(nullptr, &chg.args, &chg.err), CBINFER_STATUS_SUCCESS) << chg.err.msg;
            EXPECT_EQ(out_chg.all, 1);
            EXPECT_EQ(chg.stats.changed_px, (int64_t)oh * ow);
            for (uint8_t m : out_map) ASSERT_EQ(m, 0);
            chg.args.first = 0;
            in_chg.all = 0;
            std::vector<int32_t> list;
            for (int f = 0; f < 6; f++) {
                // Random sparse changes (frame 2: none; frame 5: everything).
                std::uniform_real_distribution<float> u(0.f, 1.f);
                const float share = (f == 2 || f == 4) ? 0.f : (f == 5 ? 1.f : (f % 2 ? 0.03f : 0.15f));
                list.clear();
                for (int q = 0; q < h * w; q++)
                    if (u(rng) < share || (f == 1 && q == h * w - 1)) {
                        list.push_back(q);
                        for (int ch = 0; ch < c; ch++)
                            chg.in_data[0][(size_t)q * c + ch] = u(rng) * 2.f - 1.f;
                    }
                if (f == 4) { // a single tight cluster, e.g. one moving object
                    list.clear();
                    for (int i = h / 3; i < h / 3 + 2 && i < h; i++)
                        for (int j = w / 2; j < w / 2 + 3 && j < w; j++) {
                            list.push_back(i * w + j);
                            chg.in_data[0][(size_t)(i * w + j) * c] += 0.5f;
                        }
                }
                in_chg.idx = list.data();
                in_chg.count = (int64_t)list.size();
                ASSERT_EQ(cpu_pool_change(nullptr, &chg.args, &chg.err), CBINFER_STATUS_SUCCESS)
                    << chg.err.msg;
                dense.in_data[0] = chg.in_data[0];
                dense.in_t[0].data = dense.in_data[0].data();
                ASSERT_EQ(cpu_pool_dense(nullptr, &dense.args, &dense.err), CBINFER_STATUS_SUCCESS);
                ASSERT_EQ(std::memcmp(chg.out_data.data(), dense.out_data.data(),
                                      chg.out_data.size() * sizeof(float)),
                          0)
                    << "frame " << f << " k" << p.k << " s" << p.s << " d" << p.d << " ceil" << p.ceil
                    << " " << c << "x" << h << "x" << w;
                // The output list: exactly the affected pixels, ascending, once each.
                ASSERT_EQ(out_chg.all, 0);
                ASSERT_EQ(out_chg.idx, idx.data());
                std::vector<int32_t> want = affected_outputs(p, h, w, oh, ow, list);
                ASSERT_EQ(out_chg.count, (int64_t)want.size()) << "frame " << f;
                ASSERT_TRUE(std::equal(want.begin(), want.end(), idx.begin())) << "frame " << f;
                EXPECT_EQ(chg.stats.changed_px, (int64_t)want.size());
                EXPECT_EQ(chg.stats.changed_in_px, (int64_t)list.size());
                for (uint8_t m : out_map) ASSERT_EQ(m, 0); // cleared where it was set
                frames_checked++;
            }
            // A dense producer (all = 1) makes the pool dense again.
            in_chg.all = 1;
            ASSERT_EQ(cpu_pool_change(nullptr, &chg.args, &chg.err), CBINFER_STATUS_SUCCESS);
            EXPECT_EQ(out_chg.all, 1);
            in_chg.all = 0;
        }
    EXPECT_GT(frames_checked, 500);
}

TEST(CpuOps, PoolChangeNeedsState)
{
    Op op(CBI_OP_MAXPOOL, "MaxPool");
    PoolCfg p{true, 2, 2, 1, 0, 0, 0, 0, false, false};
    int oh, ow;
    setup_pool(op, p, 1, 4, 4, Vec(16, 0.f), &oh, &ow);
    cbi_changes in_chg{}, out_chg{};
    op.args.in_chg[0] = &in_chg;
    op.args.out_chg = &out_chg;
    EXPECT_NE(cpu_pool_change(nullptr, &op.args, &op.err), CBINFER_STATUS_SUCCESS);
    EXPECT_NE(std::string(op.err.msg).find("test_node"), std::string::npos) << op.err.msg;
}

// -------------------------------------------------------- ConvTranspose ---

struct CtCfg {
    int k, s, pt, pl, pb, pr, oph, opw;
};

// Naive scatter in NCHW with ONNX weights [cin][cout][kh][kw].
Vec ref_conv_transpose(const Vec &x, int cin, int h, int w, const Vec &wt, const Vec &bias,
                       int cout, const CtCfg &p, int oh, int ow, const cbi_activation &act)
{
    Vec y((size_t)cout * oh * ow);
    for (int co = 0; co < cout; co++)
        for (int i = 0; i < oh * ow; i++) y[(size_t)co * oh * ow + i] = bias[co];
    for (int ci = 0; ci < cin; ci++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
                for (int co = 0; co < cout; co++)
                    for (int a = 0; a < p.k; a++)
                        for (int b = 0; b < p.k; b++) {
                            const int oi = i * p.s + a - p.pt, oj = j * p.s + b - p.pl;
                            if (oi < 0 || oi >= oh || oj < 0 || oj >= ow) continue;
                            y[((size_t)co * oh + oi) * ow + oj] +=
                                x[((size_t)ci * h + i) * w + j] *
                                wt[(((size_t)ci * cout + co) * p.k + a) * p.k + b];
                        }
    for (int co = 0; co < cout; co++)
        for (int i = 0; i < oh * ow; i++)
            y[(size_t)co * oh * ow + i] = ref_act(act, co, y[(size_t)co * oh * ow + i]);
    return y;
}

TEST(CpuOps, ConvTransposeMatchesScatterReference)
{
    std::mt19937 rng(5);
    std::vector<CtCfg> cfgs;
    for (int k = 2; k <= 4; k++)
        for (int s = 1; s <= 2; s++) {
            cfgs.push_back({k, s, 0, 0, 0, 0, 0, 0});
            cfgs.push_back({k, s, 1, 1, 1, 1, 0, 0});
            cfgs.push_back({k, s, k - 1, 0, 1, k - 1, s - 1, s - 1}); // output_padding < stride
            cfgs.push_back({k, s, 1, 2, 0, 1, 0, s - 1});
        }
    const int shapes[][4] = {{3, 4, 5, 6}, {8, 7, 3, 2}, {1, 1, 9, 4}, {5, 2, 1, 1}};
    const size_t chunks[] = {1, 7, 1000};
    int n = 0;
    for (const CtCfg &p : cfgs)
        for (auto &sh : shapes)
            for (size_t chunk : chunks) {
                const int cin = sh[0], cout = sh[1], h = sh[2], w = sh[3];
                const int oh = (h - 1) * p.s + p.k - p.pt - p.pb + p.oph;
                const int ow = (w - 1) * p.s + p.k - p.pl - p.pr + p.opw;
                if (oh < 1 || ow < 1) continue;
                Vec x = random_vec(rng, (size_t)cin * h * w);
                Vec wt = random_vec(rng, (size_t)cin * cout * p.k * p.k);
                Vec bias = random_vec(rng, cout);
                Vec slope = random_vec(rng, cout, 0.f, 0.3f);
                // Loader order [cin][kh][kw][cout].
                Vec wl(wt.size());
                for (int ci = 0; ci < cin; ci++)
                    for (int co = 0; co < cout; co++)
                        for (int a = 0; a < p.k; a++)
                            for (int b = 0; b < p.k; b++)
                                wl[(((size_t)ci * p.k + a) * p.k + b) * cout + co] =
                                    wt[(((size_t)ci * cout + co) * p.k + a) * p.k + b];
                Op op(CBI_OP_CONV_TRANSPOSE, "ConvTranspose");
                op.node.cin = cin;
                op.node.cout = cout;
                op.node.win.kh = op.node.win.kw = p.k;
                op.node.win.sh = op.node.win.sw = p.s;
                op.node.win.out_pad_h = p.oph;
                op.node.win.out_pad_w = p.opw;
                op.node.weight = wl.data();
                op.node.bias = bias.data();
                op.node.act.kind = (n % 3 == 0) ? CBI_ACT_PRELU : (n % 3 == 1 ? CBI_ACT_NONE : CBI_ACT_RELU);
                op.node.act.slope = slope.data();
                op.node.act.n_slope = cout;
                op.add_input(nchw_to_nhwc(x, cin, h, w), cin, h, w);
                op.finish(cout, oh, ow);
                op.plan.pad_t = p.pt;
                op.plan.pad_l = p.pl;
                op.plan.pad_b = p.pb;
                op.plan.pad_r = p.pr;
                // Scratch as the context sizes it: chunk_px * kh * kw * cout.
                Vec gemm(chunk * p.k * p.k * cout);
                cpu_ctx ctx{};
                ctx.gemm = gemm.data();
                ctx.chunk_px = chunk;
                ASSERT_EQ(cpu_conv_transpose(&ctx, &op.args, &op.err), CBINFER_STATUS_SUCCESS) << op.err.msg;
                Vec ref = ref_conv_transpose(x, cin, h, w, wt, bias, cout, p, oh, ow, op.node.act);
                ASSERT_LE(max_abs_diff(op.out_nchw(), ref), 1e-4f)
                    << "k" << p.k << " s" << p.s << " pads " << p.pt << p.pl << p.pb << p.pr << " op "
                    << p.oph << p.opw << " shape " << cin << "," << cout << "," << h << "," << w
                    << " chunk " << chunk;
                EXPECT_EQ(op.stats.macs, (int64_t)h * w * cin * cout * p.k * p.k);
                EXPECT_EQ(op.stats.changed_px, (int64_t)oh * ow);
                n++;
            }
    EXPECT_GT(n, 250);
}

TEST(CpuOps, ConvTransposeWithoutScratchFails)
{
    Op op(CBI_OP_CONV_TRANSPOSE, "ConvTranspose");
    Vec wt(4, 1.f), bias(1, 0.f);
    op.node.cin = op.node.cout = 1;
    op.node.win.kh = op.node.win.kw = 2;
    op.node.weight = wt.data();
    op.node.bias = bias.data();
    op.add_input(Vec(4, 1.f), 1, 2, 2);
    op.finish(1, 3, 3);
    cpu_ctx ctx{};
    EXPECT_EQ(cpu_conv_transpose(&ctx, &op.args, &op.err), CBINFER_STATUS_INTERNAL);
    EXPECT_NE(std::string(op.err.msg).find("test_node"), std::string::npos);
}

// ------------------------------------------------------------ Add, Concat ---

TEST(CpuOps, AddElementwise)
{
    std::mt19937 rng(6);
    const int shapes[][3] = {{1, 1, 1}, {3, 4, 5}, {17, 6, 3}};
    for (auto &s : shapes) {
        const int c = s[0], h = s[1], w = s[2];
        Vec a = random_vec(rng, (size_t)c * h * w), b = random_vec(rng, (size_t)c * h * w);
        Op op(CBI_OP_ADD, "Add");
        op.add_input(nchw_to_nhwc(a, c, h, w), c, h, w);
        op.add_input(nchw_to_nhwc(b, c, h, w), c, h, w);
        op.finish(c, h, w);
        ASSERT_EQ(cpu_add(nullptr, &op.args, &op.err), CBINFER_STATUS_SUCCESS) << op.err.msg;
        Vec got = op.out_nchw();
        for (size_t i = 0; i < a.size(); i++) ASSERT_EQ(got[i], a[i] + b[i]);
        EXPECT_EQ(op.stats.changed_px, h * w);
    }
    Op bad(CBI_OP_ADD, "Add");
    bad.add_input(Vec(6), 1, 2, 3);
    bad.add_input(Vec(6), 2, 1, 3);
    bad.finish(1, 2, 3);
    EXPECT_NE(cpu_add(nullptr, &bad.args, &bad.err), CBINFER_STATUS_SUCCESS);
    EXPECT_NE(std::string(bad.err.msg).find("test_node"), std::string::npos);
}

TEST(CpuOps, ConcatChannels)
{
    std::mt19937 rng(7);
    const std::vector<std::vector<int>> chans = {{1, 1}, {3, 5}, {2, 7, 4}, {16}};
    for (const auto &cs : chans) {
        const int h = 5, w = 3;
        Op op(CBI_OP_CONCAT, "Concat");
        std::vector<Vec> xs;
        int ctot = 0;
        for (int ci : cs) {
            xs.push_back(random_vec(rng, (size_t)ci * h * w));
            op.add_input(nchw_to_nhwc(xs.back(), ci, h, w), ci, h, w);
            ctot += ci;
        }
        op.finish(ctot, h, w);
        ASSERT_EQ(cpu_concat(nullptr, &op.args, &op.err), CBINFER_STATUS_SUCCESS) << op.err.msg;
        Vec got = op.out_nchw();
        Vec ref;
        for (const Vec &x : xs) ref.insert(ref.end(), x.begin(), x.end()); // NCHW concat = append
        ASSERT_EQ(got, ref);
        EXPECT_EQ(op.stats.changed_px, h * w);
    }
}

// ------------------------------------------------------------------ Pad ---

int ref_reflect(int i, int n)
{
    // numpy 'reflect': bounce off the edges without repeating them.
    if (n == 1) return 0;
    while (i < 0 || i >= n) {
        if (i < 0) i = -i;
        if (i >= n) i = 2 * (n - 1) - i;
    }
    return i;
}

TEST(CpuOps, PadModes)
{
    std::mt19937 rng(8);
    const int pads[][4] = {{1, 1, 1, 1}, {0, 2, 3, 0}, {2, 0, 0, 1}, {3, 3, 3, 3}, {0, 0, 0, 0},
                           {5, 1, 4, 7}, {-1, 1, 0, -2}};
    const int shapes[][3] = {{3, 4, 5}, {1, 1, 6}, {2, 6, 1}, {8, 2, 2}};
    int n = 0;
    for (int mode = CBI_PAD_CONSTANT; mode <= CBI_PAD_REFLECT; mode++)
        for (auto &pd : pads)
            for (auto &s : shapes) {
                const int c = s[0], h = s[1], w = s[2];
                const int oh = h + pd[0] + pd[2], ow = w + pd[1] + pd[3];
                if (oh < 1 || ow < 1) continue;
                Vec x = random_vec(rng, (size_t)c * h * w);
                Op op(CBI_OP_PAD, "Pad");
                op.node.pad_t = pd[0];
                op.node.pad_l = pd[1];
                op.node.pad_b = pd[2];
                op.node.pad_r = pd[3];
                op.node.pad_mode = (cbi_pad_mode)mode;
                op.node.pad_value = 0.75f;
                op.add_input(nchw_to_nhwc(x, c, h, w), c, h, w);
                op.finish(c, oh, ow);
                ASSERT_EQ(cpu_pad(nullptr, &op.args, &op.err), CBINFER_STATUS_SUCCESS) << op.err.msg;
                Vec got = op.out_nchw();
                for (int ch = 0; ch < c; ch++)
                    for (int i = 0; i < oh; i++)
                        for (int j = 0; j < ow; j++) {
                            int si = i - pd[0], sj = j - pd[1];
                            float want;
                            if (mode == CBI_PAD_CONSTANT) {
                                want = (si >= 0 && si < h && sj >= 0 && sj < w)
                                           ? x[((size_t)ch * h + si) * w + sj]
                                           : 0.75f;
                            } else {
                                if (mode == CBI_PAD_EDGE) {
                                    si = std::min(std::max(si, 0), h - 1);
                                    sj = std::min(std::max(sj, 0), w - 1);
                                } else {
                                    si = ref_reflect(si, h);
                                    sj = ref_reflect(sj, w);
                                }
                                want = x[((size_t)ch * h + si) * w + sj];
                            }
                            ASSERT_EQ(got[((size_t)ch * oh + i) * ow + j], want)
                                << "mode " << mode << " pads " << pd[0] << pd[1] << pd[2] << pd[3]
                                << " shape " << c << "x" << h << "x" << w << " at " << ch << "," << i
                                << "," << j;
                        }
                EXPECT_EQ(op.stats.changed_px, (int64_t)oh * ow);
                n++;
            }
    EXPECT_GT(n, 70);
}

TEST(CpuOps, PadReflectKnownValues)
{
    // numpy.pad([1, 2, 3], 2, 'reflect') = [3, 2, 1, 2, 3, 2, 1]
    Op op(CBI_OP_PAD, "Pad");
    op.node.pad_l = op.node.pad_r = 2;
    op.node.pad_mode = CBI_PAD_REFLECT;
    op.add_input({1.f, 2.f, 3.f}, 1, 1, 3);
    op.finish(1, 1, 7);
    ASSERT_EQ(cpu_pad(nullptr, &op.args, &op.err), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(op.out_data, (Vec{3, 2, 1, 2, 3, 2, 1}));
}

// --------------------------------------------------------------- Resize ---

int ref_resize_src(int o, int n_in, int n_out, double scale, cbi_resize_coord coord,
                   cbi_resize_round mode)
{
    double xo = 0;
    if (coord == CBI_RESIZE_HALF_PIXEL) xo = (o + 0.5) / scale - 0.5;
    if (coord == CBI_RESIZE_ASYMMETRIC) xo = o / scale;
    if (coord == CBI_RESIZE_ALIGN_CORNERS) xo = n_out == 1 ? 0 : o * (double)(n_in - 1) / (n_out - 1);
    if (coord == CBI_RESIZE_PYTORCH_HALF_PIXEL) xo = n_out > 1 ? (o + 0.5) / scale - 0.5 : 0;
    if (coord == CBI_RESIZE_TF_HALF_PIXEL_FOR_NN) xo = (o + 0.5) / scale;
    double r;
    const bool half = xo == std::floor(xo) + 0.5;
    if (mode == CBI_RESIZE_ROUND_PREFER_FLOOR) r = half ? std::floor(xo) : std::round(xo);
    else if (mode == CBI_RESIZE_ROUND_PREFER_CEIL) r = half ? std::ceil(xo) : std::round(xo);
    else if (mode == CBI_RESIZE_FLOOR) r = std::floor(xo);
    else r = std::ceil(xo);
    return (int)std::min(std::max(r, 0.0), (double)(n_in - 1));
}

// Runs Resize on a 1 x 1 x n row and returns the source column of each output.
std::vector<int> resize_row(int n, int n_out, float scale, cbi_resize_coord coord, cbi_resize_round mode)
{
    Op op(CBI_OP_RESIZE, "Resize");
    Vec x(n);
    for (int i = 0; i < n; i++) x[i] = (float)i;
    op.node.coord = coord;
    op.node.round = mode;
    op.node.scale_h = 1.f;
    op.node.scale_w = scale;
    if (scale <= 0) op.node.size_h = 1, op.node.size_w = n_out;
    op.add_input(x, 1, 1, n);
    op.finish(1, 1, n_out);
    EXPECT_EQ(cpu_resize(nullptr, &op.args, &op.err), CBINFER_STATUS_SUCCESS) << op.err.msg;
    std::vector<int> r;
    for (float v : op.out_data) r.push_back((int)v);
    return r;
}

TEST(CpuOps, ResizeKnownValues)
{
    using V = std::vector<int>;
    // Hand-computed from the ONNX formulas, 3 -> 6.
    EXPECT_EQ(resize_row(3, 6, 2.f, CBI_RESIZE_HALF_PIXEL, CBI_RESIZE_ROUND_PREFER_FLOOR), (V{0, 0, 1, 1, 2, 2}));
    EXPECT_EQ(resize_row(3, 6, 2.f, CBI_RESIZE_ASYMMETRIC, CBI_RESIZE_ROUND_PREFER_FLOOR), (V{0, 0, 1, 1, 2, 2}));
    EXPECT_EQ(resize_row(3, 6, 2.f, CBI_RESIZE_ASYMMETRIC, CBI_RESIZE_ROUND_PREFER_CEIL), (V{0, 1, 1, 2, 2, 2}));
    EXPECT_EQ(resize_row(3, 6, 2.f, CBI_RESIZE_ALIGN_CORNERS, CBI_RESIZE_ROUND_PREFER_FLOOR), (V{0, 0, 1, 1, 2, 2}));
    EXPECT_EQ(resize_row(3, 6, 2.f, CBI_RESIZE_TF_HALF_PIXEL_FOR_NN, CBI_RESIZE_ROUND_PREFER_FLOOR),
              (V{0, 1, 1, 2, 2, 2}));
    EXPECT_EQ(resize_row(3, 6, 2.f, CBI_RESIZE_ASYMMETRIC, CBI_RESIZE_CEIL), (V{0, 1, 1, 2, 2, 2}));
    // 2 -> 6 (scale 3), half_pixel: (x + 0.5) / 3 - 0.5.
    EXPECT_EQ(resize_row(2, 6, 3.f, CBI_RESIZE_HALF_PIXEL, CBI_RESIZE_ROUND_PREFER_FLOOR), (V{0, 0, 0, 1, 1, 1}));
    // Sizes given (scale <= 0 here): 4 -> 3 with scale 0.75, asymmetric floor: 0, 1.33, 2.67.
    EXPECT_EQ(resize_row(4, 3, -1.f, CBI_RESIZE_ASYMMETRIC, CBI_RESIZE_FLOOR), (V{0, 1, 2}));
    // pytorch_half_pixel with a single output pixel reads index 0.
    EXPECT_EQ(resize_row(5, 1, -1.f, CBI_RESIZE_PYTORCH_HALF_PIXEL, CBI_RESIZE_ROUND_PREFER_CEIL), (V{0}));
}

TEST(CpuOps, ResizeModesMatchReference)
{
    std::mt19937 rng(9);
    int n = 0;
    struct Sz {
        int h, w;
        float sh, sw;  // scales (used when oh/ow are 0)
        int oh, ow;    // sizes (> 0: sizes given)
    };
    const Sz sizes[] = {{4, 5, 2.f, 2.f, 0, 0}, {3, 7, 3.f, 3.f, 0, 0}, {5, 4, 2.f, 3.f, 0, 0},
                        {4, 6, 0, 0, 8, 12},    {3, 5, 0, 0, 9, 15},    {5, 7, 0, 0, 7, 4},
                        {6, 6, 1.5f, 0.5f, 0, 0}};
    for (int coord = CBI_RESIZE_HALF_PIXEL; coord <= CBI_RESIZE_TF_HALF_PIXEL_FOR_NN; coord++)
        for (int mode = CBI_RESIZE_ROUND_PREFER_FLOOR; mode <= CBI_RESIZE_CEIL; mode++)
            for (const Sz &s : sizes) {
                const int c = 3;
                const bool sizes_given = s.oh > 0;
                const int oh = sizes_given ? s.oh : (int)std::floor(s.h * s.sh);
                const int ow = sizes_given ? s.ow : (int)std::floor(s.w * s.sw);
                const double sch = sizes_given ? (double)oh / s.h : s.sh;
                const double scw = sizes_given ? (double)ow / s.w : s.sw;
                Vec x = random_vec(rng, (size_t)c * s.h * s.w);
                Op op(CBI_OP_RESIZE, "Resize");
                op.node.coord = (cbi_resize_coord)coord;
                op.node.round = (cbi_resize_round)mode;
                op.node.scale_h = sizes_given ? 0.f : s.sh;
                op.node.scale_w = sizes_given ? 0.f : s.sw;
                op.node.size_h = sizes_given ? s.oh : 0;
                op.node.size_w = sizes_given ? s.ow : 0;
                op.add_input(nchw_to_nhwc(x, c, s.h, s.w), c, s.h, s.w);
                op.finish(c, oh, ow);
                ASSERT_EQ(cpu_resize(nullptr, &op.args, &op.err), CBINFER_STATUS_SUCCESS) << op.err.msg;
                Vec got = op.out_nchw();
                for (int ch = 0; ch < c; ch++)
                    for (int i = 0; i < oh; i++) {
                        const int si = ref_resize_src(i, s.h, oh, sch, (cbi_resize_coord)coord,
                                                      (cbi_resize_round)mode);
                        for (int j = 0; j < ow; j++) {
                            const int sj = ref_resize_src(j, s.w, ow, scw, (cbi_resize_coord)coord,
                                                          (cbi_resize_round)mode);
                            ASSERT_EQ(got[((size_t)ch * oh + i) * ow + j],
                                      x[((size_t)ch * s.h + si) * s.w + sj])
                                << "coord " << coord << " mode " << mode << " " << s.h << "x" << s.w
                                << " -> " << oh << "x" << ow;
                        }
                    }
                EXPECT_EQ(op.stats.changed_px, (int64_t)oh * ow);
                n++;
            }
    EXPECT_EQ(n, 5 * 4 * 7);
}

// --------------------------------------------------------- DepthToSpace ---

// ONNX's definition (NCHW, N dropped): DCR views x as [b][b][c][h][w] and
// transposes (2, 3, 0, 4, 1); CRD views it as [c][b][b][h][w] and transposes
// (0, 3, 1, 4, 2); both give [c][h][b][w][b] = [c][h*b][w*b].
Vec ref_d2s(const Vec &x, int cin, int h, int w, int b, bool crd)
{
    const int c = cin / (b * b);
    Vec y((size_t)cin * h * w);
    for (int ch = 0; ch < c; ch++)
        for (int hh = 0; hh < h; hh++)
            for (int i = 0; i < b; i++)
                for (int ww = 0; ww < w; ww++)
                    for (int j = 0; j < b; j++) {
                        const size_t t = crd ? (((size_t)ch * b + i) * b + j) : (((size_t)i * b + j) * c + ch);
                        y[(((((size_t)ch * h + hh) * b + i) * w + ww) * b) + j] = x[(t * h + hh) * w + ww];
                    }
    return y;
}

TEST(CpuOps, DepthToSpaceBothModes)
{
    std::mt19937 rng(10);
    const int cases[][4] = {{2, 1, 3, 4}, {2, 3, 2, 2}, {3, 2, 4, 1}, {4, 1, 2, 3}, {2, 16, 5, 3}};
    for (int crd = 0; crd < 2; crd++)
        for (auto &cs : cases) {
            const int b = cs[0], c = cs[1], h = cs[2], w = cs[3], cin = c * b * b;
            Vec x = random_vec(rng, (size_t)cin * h * w);
            Op op(CBI_OP_DEPTH_TO_SPACE, "DepthToSpace");
            op.node.blocksize = b;
            op.node.d2s_crd = crd;
            op.add_input(nchw_to_nhwc(x, cin, h, w), cin, h, w);
            op.finish(c, h * b, w * b);
            ASSERT_EQ(cpu_depth_to_space(nullptr, &op.args, &op.err), CBINFER_STATUS_SUCCESS)
                << op.err.msg;
            ASSERT_EQ(op.out_nchw(), ref_d2s(x, cin, h, w, b, crd)) << "crd " << crd << " b " << b;
            EXPECT_EQ(op.stats.changed_px, (int64_t)h * b * w * b);
        }
}

TEST(CpuOps, DepthToSpaceKnownValues)
{
    // The examples of the ONNX operator docs: x[ch][y][x] = 9 ch + 3 y + x, 1x8x2x3, b = 2.
    const int b = 2, h = 2, w = 3, cin = 8;
    Vec x((size_t)cin * h * w);
    for (int ch = 0; ch < cin; ch++)
        for (int i = 0; i < h * w; i++) x[(size_t)ch * h * w + i] = (float)(9 * ch + i);
    const Vec dcr = {0,  18, 1,  19, 2,  20, 36, 54, 37, 55, 38, 56, 3,  21, 4,  22, 5,  23, 39, 57, 40, 58, 41, 59,
                     9,  27, 10, 28, 11, 29, 45, 63, 46, 64, 47, 65, 12, 30, 13, 31, 14, 32, 48, 66, 49, 67, 50, 68};
    const Vec crd = {0,  9,  1,  10, 2,  11, 18, 27, 19, 28, 20, 29, 3,  12, 4,  13, 5,  14, 21, 30, 22, 31, 23, 32,
                     36, 45, 37, 46, 38, 47, 54, 63, 55, 64, 56, 65, 39, 48, 40, 49, 41, 50, 57, 66, 58, 67, 59, 68};
    for (int mode = 0; mode < 2; mode++) {
        Op op(CBI_OP_DEPTH_TO_SPACE, "DepthToSpace");
        op.node.blocksize = b;
        op.node.d2s_crd = mode;
        op.add_input(nchw_to_nhwc(x, cin, h, w), cin, h, w);
        op.finish(2, h * b, w * b);
        ASSERT_EQ(cpu_depth_to_space(nullptr, &op.args, &op.err), CBINFER_STATUS_SUCCESS);
        EXPECT_EQ(op.out_nchw(), mode ? crd : dcr) << (mode ? "CRD" : "DCR");
    }
}

} // namespace
