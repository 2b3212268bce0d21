// Op-level parity of the CUDA backend with the CPU reference (ggml's
// test-backend-ops habit): the same node, plan and cbi_op_args run through
// cbi_cpu_backend() and cbi_cuda_backend(), outputs and change lists compared.
// Every test skips with a reason when no CUDA device can be used.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "test_util.h"

extern "C" {
#include "backend.h"
}
#ifdef CBINFER_WITH_CUDA
#include "../cuda/cuda_kernels.h"
#endif

namespace {

using Vec = std::vector<float>;
using Idx = std::vector<int32_t>;

const cbi_backend *cuda_backend()
{
#ifdef CBINFER_WITH_CUDA
    return cbi_cuda_backend();
#else
    return nullptr;
#endif
}

int64_t host_syncs(void *ctx)
{
#ifdef CBINFER_WITH_CUDA
    return cbi_cuda_host_syncs(ctx);
#else
    (void)ctx;
    return 0;
#endif
}

// Largest |a - b|; equal infinities count as equal, NaN as infinitely far.
float max_diff(const Vec &a, const Vec &b)
{
    if (a.size() != b.size()) return std::numeric_limits<float>::infinity();
    float m = 0.f;
    for (size_t i = 0; i < a.size(); ++i) {
        if (a[i] == b[i]) continue;
        const float d = std::fabs(a[i] - b[i]);
        if (!(d <= m)) m = std::isnan(d) ? std::numeric_limits<float>::infinity() : d;
    }
    return m;
}

// One node on one backend, driven the way host/stream.c drives it: a
// one-node network whose values are the node's inputs (0..n_in-1) and its
// output (n_in), tensors in backend memory, change lists in backend memory.
class Runner {
public:
    Runner(const cbi_backend *be, const cbi_node &node, const cbi_node_plan &plan,
           const std::vector<cbi_shape> &in_shapes, cbinfer_mode mode, cbinfer_precision prec)
        : be_(be), node_(node), plan_(plan), prec_(prec)
    {
        init(in_shapes, mode);
    }
    Runner(const Runner &) = delete;
    Runner &operator=(const Runner &) = delete;
    ~Runner()
    {
        if (!ctx_) return;
        be_->layer_destroy(ctx_, layer_);
        for (auto &t : vals_) be_->release(ctx_, t.data);
        for (void *p : dev_lists_) be_->release(ctx_, p);
        be_->destroy(ctx_);
    }

    bool ok() const { return ok_; }
    void *ctx() const { return ctx_; }
    bool is_cuda() const { return be_ != cbi_cpu_backend(); }

    void init(const std::vector<cbi_shape> &in_shapes, cbinfer_mode mode)
    {
        const int n_in = (int)in_shapes.size();
        node_.n_inputs = n_in;
        for (int i = 0; i < n_in; ++i) node_.inputs[i] = i;
        node_.output = n_in;
        shapes_ = in_shapes;
        shapes_.push_back(plan_.out);
        net_.nodes = &node_;
        net_.n_nodes = 1;
        net_.n_values = n_in + 1;
        net_.input = 0;
        out_id_ = n_in;
        net_.outputs = &out_id_;
        net_.n_outputs = 1;
        const cbi_backend_config cfg{&net_, shapes_.data(), &plan_, mode, prec_};
        ASSERT_EQ(be_->create(&cfg, &ctx_, &err), CBINFER_STATUS_SUCCESS) << be_->name << ": " << err.msg;
        ASSERT_EQ(be_->layer_create(ctx_, 0, &layer_, &err), CBINFER_STATUS_SUCCESS) << err.msg;
        const size_t elem = prec_ == CBINFER_PRECISION_FP16 ? 2 : sizeof(float);
        vals_.resize(shapes_.size());
        for (size_t v = 0; v < shapes_.size(); ++v) {
            const cbi_shape s = shapes_[v];
            vals_[v].shape = s;
            ASSERT_EQ(be_->alloc(ctx_, (size_t)s.c * s.h * s.w * elem, &vals_[v].data, &err),
                      CBINFER_STATUS_SUCCESS)
                << err.msg;
        }
        in_chg_.assign(n_in, cbi_changes{1, nullptr, 0});
        host_lists_.resize(n_in);
        dev_lists_.assign(n_in, nullptr);
        ok_ = true;
    }

    void set_input(int i, const Vec &nhwc)
    {
        ASSERT_EQ(be_->upload(ctx_, &vals_[i], nhwc.data(), &err), CBINFER_STATUS_SUCCESS) << err.msg;
    }
    // The producer rewrote only these pixels of input i (ascending).
    void set_list(int i, const Idx &list)
    {
        host_lists_[i] = list;
        int32_t *p = host_lists_[i].data();
#ifdef CBINFER_WITH_CUDA
        if (is_cuda()) {
            const cbi_shape s = shapes_[i];
            if (!dev_lists_[i]) {
                ASSERT_EQ(be_->alloc(ctx_, (size_t)s.h * s.w * sizeof(int32_t) + 4, &dev_lists_[i], &err),
                          CBINFER_STATUS_SUCCESS)
                    << err.msg;
            }
            ASSERT_EQ(cbi_cuda_copy(ctx_, dev_lists_[i], list.data(), list.size() * sizeof(int32_t), 1, &err),
                      CBINFER_STATUS_SUCCESS)
                << err.msg;
            p = (int32_t *)dev_lists_[i];
        }
#endif
        in_chg_[i] = cbi_changes{0, p, (int64_t)list.size()};
    }
    void set_all(int i) { in_chg_[i] = cbi_changes{1, nullptr, 0}; }

    cbinfer_status run(cbi_kernel k, int first = 1, float tau = 0.f, int ff = 0, int reuse = 0,
                       int collect_stats = 0)
    {
        cbi_op_args a{};
        a.node = &node_;
        a.plan = &plan_;
        a.layer = layer_;
        a.n_in = node_.n_inputs;
        for (int i = 0; i < a.n_in; ++i) {
            a.in[i] = &vals_[i];
            a.in_chg[i] = &in_chg_[i];
        }
        a.out = &vals_[a.n_in];
        out_chg = cbi_changes{1, nullptr, 0};
        a.out_chg = &out_chg;
        a.first = first;
        a.threshold = tau;
        a.feed_forward = ff;
        a.reuse_indices = reuse;
        a.collect_stats = collect_stats;
        stats = cbinfer_layer_stats{};
        a.stats = &stats;
        cbinfer_status st = be_->kernel[k](ctx_, &a, &err);
        if (st == CBINFER_STATUS_SUCCESS) st = be_->synchronize(ctx_, &err);
        return st;
    }

    Vec output()
    {
        const cbi_shape s = shapes_.back();
        Vec out((size_t)s.c * s.h * s.w);
        EXPECT_EQ(be_->download(ctx_, out.data(), &vals_.back(), &err), CBINFER_STATUS_SUCCESS) << err.msg;
        return out;
    }
    // The change list the op reported (empty when it reported all).
    Idx out_list()
    {
        if (out_chg.all || out_chg.count == 0) return {};
        Idx r((size_t)out_chg.count);
        if (!is_cuda()) {
            std::copy(out_chg.idx, out_chg.idx + out_chg.count, r.begin());
            return r;
        }
#ifdef CBINFER_WITH_CUDA
        EXPECT_EQ(cbi_cuda_copy(ctx_, r.data(), out_chg.idx, r.size() * sizeof(int32_t), 0, &err),
                  CBINFER_STATUS_SUCCESS)
            << err.msg;
#endif
        return r;
    }

    cbi_changes out_chg{};
    cbinfer_layer_stats stats{};
    cbi_err err{};

private:
    const cbi_backend *be_;
    cbi_node node_;
    cbi_node_plan plan_;
    cbinfer_precision prec_;
    std::vector<cbi_shape> shapes_;
    cbi_net net_{};
    int out_id_ = 0;
    void *ctx_ = nullptr;
    void *layer_ = nullptr;
    std::vector<cbi_tensor> vals_;
    std::vector<cbi_changes> in_chg_;
    std::vector<Idx> host_lists_;
    std::vector<void *> dev_lists_;
    bool ok_ = false;
};

// The same op on the CPU (fp32) and on CUDA (any precision).
struct Pair {
    Runner cpu, gpu;
    Pair(const cbi_node &node, const cbi_node_plan &plan, const std::vector<cbi_shape> &in_shapes,
         cbinfer_mode mode = CBINFER_MODE_DENSE, cbinfer_precision gpu_prec = CBINFER_PRECISION_FP32)
        : cpu(cbi_cpu_backend(), node, plan, in_shapes, mode, CBINFER_PRECISION_FP32),
          gpu(cuda_backend(), node, plan, in_shapes, mode, gpu_prec)
    {
    }
    bool ok() const { return cpu.ok() && gpu.ok(); }
    void set_input(int i, const Vec &x)
    {
        cpu.set_input(i, x);
        gpu.set_input(i, x);
    }
    void set_list(int i, const Idx &l)
    {
        cpu.set_list(i, l);
        gpu.set_list(i, l);
    }
    void set_all(int i)
    {
        cpu.set_all(i);
        gpu.set_all(i);
    }
    // Runs both; false (with a failure recorded) if either fails.
    bool run(cbi_kernel k, int first = 1, float tau = 0.f, int ff = 0, int reuse = 0)
    {
        const cbinfer_status a = cpu.run(k, first, tau, ff, reuse);
        const cbinfer_status b = gpu.run(k, first, tau, ff, reuse);
        EXPECT_EQ(a, CBINFER_STATUS_SUCCESS) << "cpu: " << cpu.err.msg;
        EXPECT_EQ(b, CBINFER_STATUS_SUCCESS) << "cuda: " << gpu.err.msg;
        return a == CBINFER_STATUS_SUCCESS && b == CBINFER_STATUS_SUCCESS;
    }
};

// ---------------------------------------------------------------- Conv ---

struct ConvSpec {
    int cin, cout, h, w, k, stride, pad_t, pad_l, pad_b, pad_r, dil;
    cbi_act_kind act;
};

// A Conv node with random weights in the IR layout [cout][kh][kw][cin].
struct ConvNode {
    ConvSpec c;
    Vec weight, bias, slope;
    cbi_node node{};
    cbi_node_plan plan{};
    cbi_shape in{};

    ConvNode(const ConvSpec &spec, std::mt19937 &rng) : c(spec)
    {
        std::normal_distribution<float> nd(0.f, 1.f / std::sqrt((float)(c.cin * c.k * c.k)));
        weight.resize((size_t)c.cout * c.k * c.k * c.cin);
        for (auto &v : weight) v = nd(rng);
        bias.resize(c.cout);
        for (auto &v : bias) v = nd(rng);
        slope.resize(c.cout);
        for (auto &v : slope) v = 0.05f + 0.1f * std::fabs(nd(rng));
        node.name = const_cast<char *>("conv");
        node.op_type = "Conv";
        node.op = CBI_OP_CONV;
        node.cin = c.cin;
        node.cout = c.cout;
        node.win = cbi_window{c.k, c.k, c.stride, c.stride, c.dil, c.dil, c.pad_t, c.pad_l, c.pad_b,
                              c.pad_r, CBI_AUTO_PAD_NOTSET, 0, 0, 0, 0};
        node.weight = weight.data();
        node.bias = bias.data();
        node.act.kind = c.act;
        node.act.alpha = 0.1f;
        node.act.lo = -0.5f;
        node.act.hi = 0.5f;
        node.act.slope = slope.data();
        node.act.n_slope = c.cout;
        in = {c.cin, c.h, c.w};
        plan.in = in;
        plan.out = {c.cout, (c.h + c.pad_t + c.pad_b - c.dil * (c.k - 1) - 1) / c.stride + 1,
                    (c.w + c.pad_l + c.pad_r - c.dil * (c.k - 1) - 1) / c.stride + 1};
        plan.pad_t = c.pad_t;
        plan.pad_l = c.pad_l;
        plan.pad_b = c.pad_b;
        plan.pad_r = c.pad_r;
    }
};

std::vector<ConvSpec> conv_specs()
{
    std::vector<ConvSpec> v;
    const cbi_act_kind acts[] = {CBI_ACT_NONE, CBI_ACT_RELU, CBI_ACT_LEAKY_RELU, CBI_ACT_PRELU,
                                 CBI_ACT_CLIP};
    int i = 0;
    for (int k : {1, 3, 5, 7})
        for (int stride : {1, 2})
            for (int pad : {0, k / 2, k / 2 + 1})
                for (int dil : {1, 2}) {
                    if (k == 1 && dil == 2) continue;
                    v.push_back({3 + i % 5, 4 + (i * 7) % 9, 13 + i % 4, 11 + i % 6, k, stride, pad,
                                 pad, pad, pad, dil, acts[i % 5]});
                    ++i;
                }
    // Asymmetric pads (SAME_UPPER-like and cropping): cuDNN cannot express
    // some of them, which exercises the im2col + GEMM dense path.
    v.push_back({8, 16, 12, 12, 3, 1, 1, 1, 0, 0, 1, CBI_ACT_RELU});
    v.push_back({5, 7, 15, 10, 4, 2, 1, 1, 2, 2, 1, CBI_ACT_LEAKY_RELU});
    v.push_back({6, 9, 11, 13, 3, 2, 0, 0, 1, 1, 1, CBI_ACT_NONE});
    // Wider channel counts, the shapes of the sample models.
    v.push_back({32, 64, 20, 24, 3, 1, 1, 1, 1, 1, 1, CBI_ACT_LEAKY_RELU});
    v.push_back({64, 16, 9, 17, 1, 1, 0, 0, 0, 0, 1, CBI_ACT_RELU});
    return v;
}

std::string describe(const ConvSpec &c)
{
    char s[200];
    snprintf(s, sizeof s, "cin=%d cout=%d %dx%d k=%d s=%d pads=%d,%d,%d,%d d=%d act=%d", c.cin,
             c.cout, c.h, c.w, c.k, c.stride, c.pad_t, c.pad_l, c.pad_b, c.pad_r, c.dil, (int)c.act);
    return s;
}

TEST(GpuOps, ConvDenseMatchesCpu)
{
    SKIP_WITHOUT_CUDA();
    std::mt19937 rng(1234);
    for (const ConvSpec &c : conv_specs()) {
        ConvNode cn(c, rng);
        Pair p(cn.node, cn.plan, {cn.in});
        ASSERT_TRUE(p.ok()) << describe(c);
        p.set_input(0, random_vec(rng, (size_t)c.cin * c.h * c.w));
        ASSERT_TRUE(p.run(CBI_K_CONV_DENSE)) << describe(c);
        EXPECT_LE(max_diff(p.cpu.output(), p.gpu.output()), 1e-4f) << describe(c);
        EXPECT_EQ(p.gpu.stats.macs, p.cpu.stats.macs);
        EXPECT_EQ(p.gpu.stats.changed_px, p.cpu.stats.changed_px);
    }
}

// Frame after frame of sparse random changes: with τ = 0 the CUDA
// change-based conv equals the CPU's (outputs, detected pixels, the output
// change list), and both equal a dense convolution of the current input.
TEST(GpuOps, ConvChangeMatchesCpuAcrossFrames)
{
    SKIP_WITHOUT_CUDA();
    std::mt19937 rng(99);
    for (const ConvSpec &c : conv_specs()) {
        ConvNode cn(c, rng);
        Pair p(cn.node, cn.plan, {cn.in}, CBINFER_MODE_CBINFER);
        Runner dense(cbi_cpu_backend(), cn.node, cn.plan, {cn.in}, CBINFER_MODE_DENSE,
                     CBINFER_PRECISION_FP32);
        ASSERT_TRUE(p.ok() && dense.ok()) << describe(c);
        Vec x = random_vec(rng, (size_t)c.cin * c.h * c.w);
        for (int frame = 0; frame < 6; ++frame) {
            Idx list;
            if (frame > 0) {
                for (int n = 0; n < 3; ++n) {
                    const int px = (int)(rng() % (unsigned)(c.h * c.w));
                    x[(size_t)px * c.cin + rng() % (unsigned)c.cin] += 0.5f;
                    list.push_back(px);
                }
                std::sort(list.begin(), list.end());
                list.erase(std::unique(list.begin(), list.end()), list.end());
            }
            p.set_input(0, x);
            // The producer's list of rewritten pixels; frame 3 comes from a
            // producer that rewrote everything.
            if (frame == 3 || frame == 0)
                p.set_all(0);
            else
                p.set_list(0, list);
            ASSERT_TRUE(p.run(CBI_K_CONV_CHANGE, frame == 0)) << describe(c);
            dense.set_input(0, x);
            ASSERT_EQ(dense.run(CBI_K_CONV_DENSE), CBINFER_STATUS_SUCCESS) << dense.err.msg;
            const Vec g = p.gpu.output();
            EXPECT_LE(max_diff(p.cpu.output(), g), 1e-4f) << describe(c) << " frame " << frame;
            EXPECT_LE(max_diff(dense.output(), g), 1e-4f) << describe(c) << " frame " << frame;
            EXPECT_EQ(p.gpu.stats.changed_in_px, p.cpu.stats.changed_in_px) << frame;
            EXPECT_EQ(p.gpu.stats.changed_px, p.cpu.stats.changed_px) << frame;
            EXPECT_EQ(p.gpu.stats.macs, p.cpu.stats.macs) << frame;
            EXPECT_EQ(p.gpu.out_chg.all, p.cpu.out_chg.all) << frame;
            EXPECT_EQ(p.gpu.out_chg.count, p.cpu.out_chg.count) << frame;
            EXPECT_EQ(p.gpu.out_list(), p.cpu.out_list()) << describe(c) << " frame " << frame;
        }
    }
}

// A change list restricts detection to the listed pixels; τ suppresses small
// changes; feed-forward and closed loop keep different states. Same decisions
// on both backends (identical inputs, comparisons in float).
TEST(GpuOps, ConvChangeThresholdListsAndFeedForward)
{
    SKIP_WITHOUT_CUDA();
    std::mt19937 rng(7);
    for (int ff = 0; ff < 2; ++ff) {
        ConvNode cn({4, 6, 16, 18, 3, 1, 1, 1, 1, 1, 1, CBI_ACT_RELU}, rng);
        Pair p(cn.node, cn.plan, {cn.in}, ff ? CBINFER_MODE_CBINFER_FF : CBINFER_MODE_CBINFER);
        ASSERT_TRUE(p.ok());
        const float tau = 0.1f;
        Vec x = random_vec(rng, (size_t)4 * 16 * 18);
        p.set_input(0, x);
        ASSERT_TRUE(p.run(CBI_K_CONV_CHANGE, 1, tau, ff));
        std::uniform_real_distribution<float> small(-0.06f, 0.06f);
        for (int frame = 1; frame < 8; ++frame) {
            // Slow drift everywhere (below τ per frame) plus a few big changes.
            Idx list;
            for (int px = 0; px < 16 * 18; ++px) {
                if (px % 3 == frame % 3) {
                    list.push_back(px);
                    for (int ch = 0; ch < 4; ++ch) x[(size_t)px * 4 + ch] += small(rng);
                }
            }
            for (int n = 0; n < 2; ++n) x[(size_t)list[rng() % list.size()] * 4 + 1] += 0.3f;
            // A change outside the list must not be seen.
            x[(size_t)((frame + 1) % 3) * 4] += 1.f;
            p.set_input(0, x);
            p.set_list(0, list);
            ASSERT_TRUE(p.run(CBI_K_CONV_CHANGE, 0, tau, ff));
            EXPECT_LE(max_diff(p.cpu.output(), p.gpu.output()), 1e-4f) << "ff " << ff << " frame " << frame;
            EXPECT_EQ(p.gpu.stats.changed_in_px, p.cpu.stats.changed_in_px) << frame;
            EXPECT_GE(p.gpu.stats.changed_in_px, 1) << frame;
            EXPECT_LE(p.gpu.stats.changed_in_px, (int64_t)list.size()) << frame;
            EXPECT_EQ(p.gpu.out_list(), p.cpu.out_list()) << "ff " << ff << " frame " << frame;
        }
    }
}

// Sec. III-E case 2: a pointwise conv reuses its producer's indices, with no
// detection and no read-back.
TEST(GpuOps, ConvChangeReusesPointwiseIndices)
{
    SKIP_WITHOUT_CUDA();
    std::mt19937 rng(11);
    ConvNode cn({16, 8, 10, 12, 1, 1, 0, 0, 0, 0, 1, CBI_ACT_PRELU}, rng);
    Pair p(cn.node, cn.plan, {cn.in}, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(p.ok());
    Vec x = random_vec(rng, (size_t)16 * 10 * 12);
    p.set_input(0, x);
    ASSERT_TRUE(p.run(CBI_K_CONV_CHANGE, 1, 0.f, 0, 1));
    Idx list = {0, 5, 17, 18, 19, 64, 119};
    for (int32_t px : list) x[(size_t)px * 16 + 3] -= 0.25f;
    p.set_input(0, x);
    p.set_list(0, list);
    const int64_t syncs = host_syncs(p.gpu.ctx());
    ASSERT_TRUE(p.run(CBI_K_CONV_CHANGE, 0, 0.f, 0, 1));
    // run() adds one synchronize() of its own.
    EXPECT_EQ(host_syncs(p.gpu.ctx()) - syncs, 1);
    EXPECT_LE(max_diff(p.cpu.output(), p.gpu.output()), 1e-4f);
    EXPECT_EQ(p.gpu.out_list(), list);
    EXPECT_EQ(p.gpu.stats.changed_px, (int64_t)list.size());
}

// One host synchronisation per change-based layer (the count read-back), none
// when the producer rewrote nothing, none extra for timing when stats are off.
TEST(GpuOps, ChangeBasedConvSyncsOncePerLayer)
{
    SKIP_WITHOUT_CUDA();
    std::mt19937 rng(12);
    ConvNode cn({8, 8, 24, 24, 3, 1, 1, 1, 1, 1, 1, CBI_ACT_RELU}, rng);
    Runner r(cuda_backend(), cn.node, cn.plan, {cn.in}, CBINFER_MODE_CBINFER, CBINFER_PRECISION_FP32);
    ASSERT_TRUE(r.ok());
    Vec x = random_vec(rng, (size_t)8 * 24 * 24);
    r.set_input(0, x);
    ASSERT_EQ(r.run(CBI_K_CONV_CHANGE, 1), CBINFER_STATUS_SUCCESS) << r.err.msg;
    x[100 * 8] += 1.f;
    r.set_input(0, x);
    r.set_list(0, {100});
    int64_t s0 = host_syncs(r.ctx());
    ASSERT_EQ(r.run(CBI_K_CONV_CHANGE, 0), CBINFER_STATUS_SUCCESS) << r.err.msg;
    EXPECT_EQ(host_syncs(r.ctx()) - s0, 2); // the count read-back + run()'s synchronize()
    EXPECT_EQ(r.stats.changed_px, 9);
    r.set_list(0, {});
    s0 = host_syncs(r.ctx());
    ASSERT_EQ(r.run(CBI_K_CONV_CHANGE, 0), CBINFER_STATUS_SUCCESS) << r.err.msg;
    EXPECT_EQ(host_syncs(r.ctx()) - s0, 1); // run()'s synchronize() only
    EXPECT_EQ(r.stats.changed_px, 0);
    EXPECT_EQ(r.out_chg.all, 0);
    EXPECT_EQ(r.out_chg.count, 0);
    // With statistics every step is timed (and waited for).
    r.set_list(0, {100});
    x[100 * 8] -= 1.f;
    r.set_input(0, x);
    ASSERT_EQ(r.run(CBI_K_CONV_CHANGE, 0, 0.f, 0, 0, 1), CBINFER_STATUS_SUCCESS) << r.err.msg;
    EXPECT_GT(r.stats.step_ms[CBINFER_STEP_GEMM], 0.0);
    EXPECT_GT(r.stats.step_ms[CBINFER_STEP_CHANGE_DETECT], 0.0);
}

TEST(GpuOps, UnchangedInputDoesNoWork)
{
    SKIP_WITHOUT_CUDA();
    std::mt19937 rng(5);
    ConvNode cn({8, 16, 20, 24, 3, 1, 1, 1, 1, 1, 1, CBI_ACT_RELU}, rng);
    Runner r(cuda_backend(), cn.node, cn.plan, {cn.in}, CBINFER_MODE_CBINFER, CBINFER_PRECISION_FP32);
    ASSERT_TRUE(r.ok());
    r.set_input(0, random_vec(rng, (size_t)8 * 20 * 24));
    ASSERT_EQ(r.run(CBI_K_CONV_CHANGE, 1), CBINFER_STATUS_SUCCESS) << r.err.msg;
    const Vec before = r.output();
    ASSERT_EQ(r.run(CBI_K_CONV_CHANGE, 0), CBINFER_STATUS_SUCCESS) << r.err.msg;
    EXPECT_EQ(r.stats.changed_px, 0);
    EXPECT_EQ(r.stats.changed_in_px, 0);
    EXPECT_EQ(r.stats.macs, 0);
    EXPECT_EQ(r.output(), before);
}

// fp16 (half storage, fp32 accumulation) and TF32 against the CPU's fp32:
// stated tolerance 1e-2 absolute for outputs of magnitude ~1 (10-bit
// mantissas: ~5e-4 relative per rounding, a few roundings per value).
TEST(GpuOps, ReducedPrecisionConvWithinTolerance)
{
    SKIP_WITHOUT_CUDA();
    std::mt19937 rng(21);
    for (cbinfer_precision prec : {CBINFER_PRECISION_FP16, CBINFER_PRECISION_TF32})
        for (const ConvSpec &c : {ConvSpec{3, 32, 20, 24, 3, 1, 1, 1, 1, 1, 1, CBI_ACT_LEAKY_RELU},
                                  ConvSpec{32, 32, 20, 24, 3, 1, 1, 1, 1, 1, 1, CBI_ACT_RELU},
                                  ConvSpec{16, 8, 15, 9, 5, 2, 2, 2, 2, 2, 1, CBI_ACT_NONE}}) {
            ConvNode cn(c, rng);
            Pair p(cn.node, cn.plan, {cn.in}, CBINFER_MODE_CBINFER, prec);
            ASSERT_TRUE(p.ok());
            Vec x = random_vec(rng, (size_t)c.cin * c.h * c.w);
            for (int frame = 0; frame < 3; ++frame) {
                if (frame) {
                    Idx list;
                    for (int px = frame; px < c.h * c.w; px += 7) {
                        list.push_back(px);
                        x[(size_t)px * c.cin] += 0.5f;
                    }
                    p.set_list(0, list);
                }
                p.set_input(0, x);
                ASSERT_TRUE(p.run(CBI_K_CONV_CHANGE, frame == 0));
                EXPECT_LE(max_diff(p.cpu.output(), p.gpu.output()), 1e-2f)
                    << "precision " << prec << " " << describe(c) << " frame " << frame;
            }
        }
}

TEST(GpuOps, Fp16UploadDownloadRoundTrip)
{
    SKIP_WITHOUT_CUDA();
    cbi_node node{};
    node.name = const_cast<char *>("relu");
    node.op_type = "Relu";
    node.op = CBI_OP_ACTIVATION;
    node.act.kind = CBI_ACT_NONE;
    cbi_node_plan plan{};
    plan.in = plan.out = {3, 5, 7};
    Runner r(cuda_backend(), node, plan, {plan.in}, CBINFER_MODE_DENSE, CBINFER_PRECISION_FP16);
    ASSERT_TRUE(r.ok());
    Vec x(3 * 5 * 7);
    for (size_t i = 0; i < x.size(); ++i) x[i] = (float)((int)i - 50) / 8.f; // exact in half
    r.set_input(0, x);
    ASSERT_EQ(r.run(CBI_K_ACTIVATION), CBINFER_STATUS_SUCCESS) << r.err.msg;
    EXPECT_EQ(r.output(), x);
}

// ------------------------------------------------------------ Activation ---

TEST(GpuOps, ActivationAllKindsMatchCpu)
{
    SKIP_WITHOUT_CUDA();
    std::mt19937 rng(1);
    const int c = 5, h = 4, w = 7;
    Vec slope = random_vec(rng, c, 0.05f, 0.5f);
    float slope1 = 0.3f;
    for (int kind = CBI_ACT_NONE; kind <= CBI_ACT_CLIP + 1; ++kind) {
        cbi_node node{};
        node.name = const_cast<char *>("act");
        node.op_type = "Act";
        node.op = CBI_OP_ACTIVATION;
        node.act.kind = (cbi_act_kind)(kind > CBI_ACT_CLIP ? CBI_ACT_PRELU : kind);
        node.act.alpha = 0.1f;
        node.act.lo = -0.25f;
        node.act.hi = 0.5f;
        node.act.slope = kind > CBI_ACT_CLIP ? &slope1 : slope.data();
        node.act.n_slope = kind > CBI_ACT_CLIP ? 1 : c;
        cbi_node_plan plan{};
        plan.in = plan.out = {c, h, w};
        Pair p(node, plan, {plan.in});
        ASSERT_TRUE(p.ok());
        p.set_input(0, random_vec(rng, (size_t)c * h * w, -2.f, 2.f));
        ASSERT_TRUE(p.run(CBI_K_ACTIVATION));
        EXPECT_EQ(p.cpu.output(), p.gpu.output()) << "kind " << kind;
        EXPECT_EQ(p.gpu.stats.changed_px, (int64_t)h * w);
    }
}

// -------------------------------------------------------------- Pooling ---

bool pool_node(const PoolCfg &p, int c, int h, int w, cbi_node *node, cbi_node_plan *plan)
{
    *node = cbi_node{};
    node->name = const_cast<char *>("pool");
    node->op_type = p.is_max ? "MaxPool" : "AveragePool";
    node->op = p.is_max ? CBI_OP_MAXPOOL : CBI_OP_AVGPOOL;
    node->win.kh = node->win.kw = p.k;
    node->win.sh = node->win.sw = p.s;
    node->win.dh = node->win.dw = p.d;
    node->win.pad_t = p.pt;
    node->win.pad_l = p.pl;
    node->win.pad_b = p.pb;
    node->win.pad_r = p.pr;
    node->win.ceil_mode = p.ceil;
    node->win.count_include_pad = p.include_pad;
    *plan = cbi_node_plan{};
    plan->in = {c, h, w};
    plan->out = {c, pool_out(h, p.k, p.s, p.d, p.pt, p.pb, p.ceil),
                 pool_out(w, p.k, p.s, p.d, p.pl, p.pr, p.ceil)};
    plan->pad_t = p.pt;
    plan->pad_l = p.pl;
    plan->pad_b = p.pb;
    plan->pad_r = p.pr;
    return plan->out.h >= 1 && plan->out.w >= 1;
}

// Same arithmetic in the same order on both backends: equal bit for bit.
TEST(GpuOps, PoolDenseMatchesCpu)
{
    SKIP_WITHOUT_CUDA();
    std::mt19937 rng(3);
    const int sizes[][3] = {{3, 7, 9}, {4, 8, 8}, {16, 11, 5}, {2, 1, 4}};
    int n = 0;
    for (const PoolCfg &pc : pool_cfgs())
        for (auto &sz : sizes) {
            cbi_node node;
            cbi_node_plan plan;
            if (!pool_node(pc, sz[0], sz[1], sz[2], &node, &plan)) continue;
            Pair p(node, plan, {plan.in});
            ASSERT_TRUE(p.ok());
            p.set_input(0, random_vec(rng, (size_t)sz[0] * sz[1] * sz[2]));
            ASSERT_TRUE(p.run(CBI_K_POOL_DENSE));
            ASSERT_EQ(p.cpu.output(), p.gpu.output())
                << (pc.is_max ? "max" : "avg") << " k" << pc.k << " s" << pc.s << " d" << pc.d
                << " ceil" << pc.ceil << " inc" << pc.include_pad;
            EXPECT_EQ(p.gpu.stats.changed_px, p.cpu.stats.changed_px);
            ++n;
        }
    EXPECT_GT(n, 100);
}

// Change-based pooling from random sparse lists: the same outputs (bit for
// bit) and the same output lists as the CPU, every affected pixel once.
TEST(GpuOps, PoolChangeMatchesCpuAcrossFrames)
{
    SKIP_WITHOUT_CUDA();
    std::mt19937 rng(4);
    const int sizes[][3] = {{3, 9, 11}, {8, 16, 16}, {1, 13, 7}};
    for (const PoolCfg &pc : pool_cfgs())
        for (auto &sz : sizes) {
            const int c = sz[0], h = sz[1], w = sz[2];
            cbi_node node;
            cbi_node_plan plan;
            if (!pool_node(pc, c, h, w, &node, &plan)) continue;
            Pair p(node, plan, {plan.in}, CBINFER_MODE_CBINFER);
            ASSERT_TRUE(p.ok());
            Vec x = random_vec(rng, (size_t)c * h * w);
            p.set_input(0, x);
            ASSERT_TRUE(p.run(CBI_K_POOL_CHANGE, 1));
            ASSERT_EQ(p.cpu.output(), p.gpu.output());
            std::uniform_real_distribution<float> u(0.f, 1.f);
            for (int f = 1; f < 6; ++f) {
                const float share = f == 2 ? 0.f : (f == 5 ? 1.f : (f % 2 ? 0.03f : 0.15f));
                Idx list;
                for (int q = 0; q < h * w; ++q)
                    if (u(rng) < share || (f == 1 && q == h * w - 1)) {
                        list.push_back(q);
                        for (int ch = 0; ch < c; ++ch) x[(size_t)q * c + ch] = u(rng) * 2.f - 1.f;
                    }
                p.set_input(0, x);
                p.set_list(0, list);
                ASSERT_TRUE(p.run(CBI_K_POOL_CHANGE, 0));
                ASSERT_EQ(p.cpu.output(), p.gpu.output()) << "frame " << f;
                ASSERT_EQ(p.gpu.out_chg.all, 0);
                ASSERT_EQ(p.gpu.out_chg.count, p.cpu.out_chg.count) << "frame " << f;
                ASSERT_EQ(p.gpu.out_list(), p.cpu.out_list()) << "frame " << f;
                EXPECT_EQ(p.gpu.stats.changed_in_px, (int64_t)list.size());
                EXPECT_EQ(p.gpu.stats.changed_px, p.cpu.stats.changed_px);
            }
            // A dense producer makes the pool dense again.
            p.set_all(0);
            ASSERT_TRUE(p.run(CBI_K_POOL_CHANGE, 0));
            EXPECT_EQ(p.gpu.out_chg.all, 1);
            ASSERT_EQ(p.cpu.output(), p.gpu.output());
        }
}

// -------------------------------------------------------- ConvTranspose ---

TEST(GpuOps, ConvTransposeMatchesCpu)
{
    SKIP_WITHOUT_CUDA();
    std::mt19937 rng(5);
    struct Ct {
        int k, s, pt, pl, pb, pr, oph, opw, d;
    };
    std::vector<Ct> cfgs;
    for (int k = 2; k <= 4; ++k)
        for (int s = 1; s <= 2; ++s) {
            cfgs.push_back({k, s, 0, 0, 0, 0, 0, 0, 1});
            cfgs.push_back({k, s, 1, 1, 1, 1, 0, 0, 1});
            cfgs.push_back({k, s, k - 1, 0, 1, k - 1, s - 1, s - 1, 1});
            cfgs.push_back({k, s, 1, 2, 0, 1, 0, s - 1, 1});
        }
    cfgs.push_back({3, 2, 1, 1, 1, 1, 1, 1, 2});
    const int shapes[][4] = {{3, 4, 5, 6}, {8, 7, 3, 2}, {1, 1, 9, 4}, {32, 3, 12, 10}};
    int n = 0;
    for (const Ct &q : cfgs)
        for (auto &sh : shapes) {
            const int cin = sh[0], cout = sh[1], h = sh[2], w = sh[3];
            const int ext = q.d * (q.k - 1) + 1;
            const int oh = (h - 1) * q.s + ext - q.pt - q.pb + q.oph;
            const int ow = (w - 1) * q.s + ext - q.pl - q.pr + q.opw;
            if (oh < 1 || ow < 1) continue;
            Vec wt = random_vec(rng, (size_t)cin * q.k * q.k * cout);
            Vec bias = random_vec(rng, cout), slope = random_vec(rng, cout, 0.f, 0.3f);
            cbi_node node{};
            node.name = const_cast<char *>("convt");
            node.op_type = "ConvTranspose";
            node.op = CBI_OP_CONV_TRANSPOSE;
            node.cin = cin;
            node.cout = cout;
            node.win.kh = node.win.kw = q.k;
            node.win.sh = node.win.sw = q.s;
            node.win.dh = node.win.dw = q.d;
            node.win.pad_t = q.pt;
            node.win.pad_l = q.pl;
            node.win.pad_b = q.pb;
            node.win.pad_r = q.pr;
            node.win.out_pad_h = q.oph;
            node.win.out_pad_w = q.opw;
            node.weight = wt.data();
            node.bias = bias.data();
            node.act.kind = n % 3 == 0 ? CBI_ACT_PRELU : (n % 3 == 1 ? CBI_ACT_NONE : CBI_ACT_RELU);
            node.act.slope = slope.data();
            node.act.n_slope = cout;
            cbi_node_plan plan{};
            plan.in = {cin, h, w};
            plan.out = {cout, oh, ow};
            plan.pad_t = q.pt;
            plan.pad_l = q.pl;
            plan.pad_b = q.pb;
            plan.pad_r = q.pr;
            Pair p(node, plan, {plan.in});
            ASSERT_TRUE(p.ok());
            p.set_input(0, random_vec(rng, (size_t)cin * h * w));
            ASSERT_TRUE(p.run(CBI_K_CONV_TRANSPOSE));
            EXPECT_LE(max_diff(p.cpu.output(), p.gpu.output()), 1e-4f)
                << "k" << q.k << " s" << q.s << " d" << q.d << " pads " << q.pt << q.pl << q.pb << q.pr
                << " op " << q.oph << q.opw << " shape " << cin << "," << cout << "," << h << "," << w;
            EXPECT_EQ(p.gpu.stats.macs, p.cpu.stats.macs);
            ++n;
        }
    EXPECT_GT(n, 80);
}

// --------------------------------------------- Add, Concat, Pad, Resize ---

TEST(GpuOps, AddMatchesCpu)
{
    SKIP_WITHOUT_CUDA();
    std::mt19937 rng(6);
    const int shapes[][3] = {{1, 1, 1}, {3, 4, 5}, {17, 6, 3}};
    for (auto &s : shapes) {
        cbi_node node{};
        node.name = const_cast<char *>("add");
        node.op_type = "Add";
        node.op = CBI_OP_ADD;
        cbi_node_plan plan{};
        plan.in = plan.out = {s[0], s[1], s[2]};
        Pair p(node, plan, {plan.in, plan.in});
        ASSERT_TRUE(p.ok());
        p.set_input(0, random_vec(rng, (size_t)s[0] * s[1] * s[2]));
        p.set_input(1, random_vec(rng, (size_t)s[0] * s[1] * s[2]));
        ASSERT_TRUE(p.run(CBI_K_ADD));
        EXPECT_EQ(p.cpu.output(), p.gpu.output());
    }
}

TEST(GpuOps, ConcatMatchesCpu)
{
    SKIP_WITHOUT_CUDA();
    std::mt19937 rng(7);
    const std::vector<std::vector<int>> chans = {{1, 1}, {3, 5}, {2, 7, 4}, {16}};
    for (const auto &cs : chans) {
        const int h = 5, w = 3;
        cbi_node node{};
        node.name = const_cast<char *>("concat");
        node.op_type = "Concat";
        node.op = CBI_OP_CONCAT;
        std::vector<cbi_shape> ins;
        int ctot = 0;
        for (int ci : cs) {
            ins.push_back({ci, h, w});
            ctot += ci;
        }
        cbi_node_plan plan{};
        plan.in = ins[0];
        plan.out = {ctot, h, w};
        Pair p(node, plan, ins);
        ASSERT_TRUE(p.ok());
        for (size_t i = 0; i < ins.size(); ++i)
            p.set_input((int)i, random_vec(rng, (size_t)ins[i].c * h * w));
        ASSERT_TRUE(p.run(CBI_K_CONCAT));
        EXPECT_EQ(p.cpu.output(), p.gpu.output());
    }
}

TEST(GpuOps, PadModesMatchCpu)
{
    SKIP_WITHOUT_CUDA();
    std::mt19937 rng(8);
    const int pads[][4] = {{1, 1, 1, 1}, {0, 2, 3, 0}, {3, 3, 3, 3}, {5, 1, 4, 7}, {-1, 1, 0, -2}};
    const int shapes[][3] = {{3, 4, 5}, {1, 1, 6}, {2, 6, 1}, {8, 2, 2}};
    for (int mode = CBI_PAD_CONSTANT; mode <= CBI_PAD_REFLECT; ++mode)
        for (auto &pd : pads)
            for (auto &s : shapes) {
                const int c = s[0], h = s[1], w = s[2];
                const int oh = h + pd[0] + pd[2], ow = w + pd[1] + pd[3];
                if (oh < 1 || ow < 1) continue;
                cbi_node node{};
                node.name = const_cast<char *>("pad");
                node.op_type = "Pad";
                node.op = CBI_OP_PAD;
                node.pad_t = pd[0];
                node.pad_l = pd[1];
                node.pad_b = pd[2];
                node.pad_r = pd[3];
                node.pad_mode = (cbi_pad_mode)mode;
                node.pad_value = 0.75f;
                cbi_node_plan plan{};
                plan.in = {c, h, w};
                plan.out = {c, oh, ow};
                Pair p(node, plan, {plan.in});
                ASSERT_TRUE(p.ok());
                p.set_input(0, random_vec(rng, (size_t)c * h * w));
                ASSERT_TRUE(p.run(CBI_K_PAD));
                EXPECT_EQ(p.cpu.output(), p.gpu.output())
                    << "mode " << mode << " pads " << pd[0] << pd[1] << pd[2] << pd[3];
            }
}

TEST(GpuOps, ResizeModesMatchCpu)
{
    SKIP_WITHOUT_CUDA();
    std::mt19937 rng(9);
    struct Sz {
        int h, w;
        float sh, sw;
        int oh, ow;
    };
    const Sz sizes[] = {{4, 5, 2.f, 2.f, 0, 0}, {3, 7, 3.f, 3.f, 0, 0}, {4, 6, 0, 0, 8, 12},
                        {5, 7, 0, 0, 7, 4},     {6, 6, 1.5f, 0.5f, 0, 0}};
    for (int coord = CBI_RESIZE_HALF_PIXEL; coord <= CBI_RESIZE_TF_HALF_PIXEL_FOR_NN; ++coord)
        for (int mode = CBI_RESIZE_ROUND_PREFER_FLOOR; mode <= CBI_RESIZE_CEIL; ++mode)
            for (const Sz &s : sizes) {
                const int c = 3;
                const bool given = s.oh > 0;
                const int oh = given ? s.oh : (int)std::floor(s.h * s.sh);
                const int ow = given ? s.ow : (int)std::floor(s.w * s.sw);
                cbi_node node{};
                node.name = const_cast<char *>("resize");
                node.op_type = "Resize";
                node.op = CBI_OP_RESIZE;
                node.coord = (cbi_resize_coord)coord;
                node.round = (cbi_resize_round)mode;
                node.scale_h = given ? 0.f : s.sh;
                node.scale_w = given ? 0.f : s.sw;
                node.size_h = given ? s.oh : 0;
                node.size_w = given ? s.ow : 0;
                cbi_node_plan plan{};
                plan.in = {c, s.h, s.w};
                plan.out = {c, oh, ow};
                Pair p(node, plan, {plan.in});
                ASSERT_TRUE(p.ok());
                p.set_input(0, random_vec(rng, (size_t)c * s.h * s.w));
                ASSERT_TRUE(p.run(CBI_K_RESIZE));
                EXPECT_EQ(p.cpu.output(), p.gpu.output())
                    << "coord " << coord << " mode " << mode << " " << s.h << "x" << s.w;
            }
}

TEST(GpuOps, DepthToSpaceMatchesCpu)
{
    SKIP_WITHOUT_CUDA();
    std::mt19937 rng(10);
    const int cases[][4] = {{2, 1, 3, 4}, {2, 3, 2, 2}, {3, 2, 4, 1}, {2, 16, 5, 3}};
    for (int crd = 0; crd < 2; ++crd)
        for (auto &cs : cases) {
            const int b = cs[0], c = cs[1], h = cs[2], w = cs[3], cin = c * b * b;
            cbi_node node{};
            node.name = const_cast<char *>("d2s");
            node.op_type = "DepthToSpace";
            node.op = CBI_OP_DEPTH_TO_SPACE;
            node.blocksize = b;
            node.d2s_crd = crd;
            cbi_node_plan plan{};
            plan.in = {cin, h, w};
            plan.out = {c, h * b, w * b};
            Pair p(node, plan, {plan.in});
            ASSERT_TRUE(p.ok());
            p.set_input(0, random_vec(rng, (size_t)cin * h * w));
            ASSERT_TRUE(p.run(CBI_K_DEPTH_TO_SPACE));
            EXPECT_EQ(p.cpu.output(), p.gpu.output()) << "crd " << crd << " b " << b;
        }
}

// The dense ops in fp16 against the CPU's fp32: every value is one rounding
// to half away (inputs are rounded on upload, outputs are exact copies or one
// float op of half values), so within 2^-10 relative plus rounding of the sum.
TEST(GpuOps, Fp16DenseOpsWithinTolerance)
{
    SKIP_WITHOUT_CUDA();
    std::mt19937 rng(13);
    PoolCfg pc{false, 3, 2, 1, 1, 1, 1, 1, false, true};
    cbi_node node;
    cbi_node_plan plan;
    ASSERT_TRUE(pool_node(pc, 8, 12, 10, &node, &plan));
    Pair p(node, plan, {plan.in}, CBINFER_MODE_DENSE, CBINFER_PRECISION_FP16);
    ASSERT_TRUE(p.ok());
    p.set_input(0, random_vec(rng, (size_t)8 * 12 * 10));
    ASSERT_TRUE(p.run(CBI_K_POOL_DENSE));
    EXPECT_LE(max_diff(p.cpu.output(), p.gpu.output()), 2e-3f);
}

TEST(GpuBackend, CreateWithoutDeviceIsUnavailable)
{
    if (cbi_test_has_cuda_device()) GTEST_SKIP() << "a CUDA device is present";
    if (!cuda_backend()) GTEST_SKIP() << "built without CUDA";
    cbi_net net{};
    cbi_backend_config cfg{&net, nullptr, nullptr, CBINFER_MODE_DENSE, CBINFER_PRECISION_FP32};
    void *ctx = reinterpret_cast<void *>(1);
    cbi_err e{};
    EXPECT_EQ(cuda_backend()->create(&cfg, &ctx, &e), CBINFER_STATUS_BACKEND_UNAVAILABLE);
    EXPECT_EQ(ctx, nullptr);
    EXPECT_NE(std::string(e.msg).find("CUDA"), std::string::npos) << e.msg;
    cuda_backend()->destroy(nullptr);
    cuda_backend()->layer_destroy(nullptr, nullptr);
}

} // namespace
