// Change propagation through the pixel-wise CPU kernels (host/cpu/cpu_ops_pixel.c):
// Activation, Add, Concat and Resize run over their inputs' change lists and
// must leave exactly what the dense kernel computes from the same inputs, bit
// for bit, frame after frame of random sparse changes; their output list must
// be exactly the pixels that read a changed input, ascending.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
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
typedef cbinfer_status (*Kernel)(void *, cbi_op_args *, cbi_err *);

struct Shape {
    int c, h, w;
};

// One node with its tensors (NHWC), run twice per frame: once over change
// lists with the state layer_create would make, once dense without state.
struct PixelOp {
    cbi_node node{};
    cbi_node_plan plan{};
    std::vector<Shape> in_shapes;
    std::vector<Vec> in;
    Vec out_listed, out_dense;
    std::vector<cbi_tensor> in_t;
    cbi_tensor out_listed_t{}, out_dense_t{};
    cpu_layer layer{};
    std::vector<uint8_t> map;
    std::vector<int32_t> idx;

    PixelOp(cbi_op op, const char *type)
    {
        node.name = const_cast<char *>("pixel_node");
        node.op_type = type;
        node.op = op;
    }
    ~PixelOp()
    {
        free(layer.tap_y);
        free(layer.tap_x);
        free(layer.reach_y);
        free(layer.reach_x);
    }
    void setup(std::mt19937 &rng, const std::vector<Shape> &ins, Shape out)
    {
        in_shapes = ins;
        plan.in = {ins[0].c, ins[0].h, ins[0].w};
        plan.out = {out.c, out.h, out.w};
        for (const Shape &s : ins) in.push_back(random_vec(rng, (size_t)s.c * s.h * s.w));
        out_listed.assign((size_t)out.c * out.h * out.w, 777.f);
        out_dense = out_listed;
        // The map as layer_create makes it (zeroed): listed frames must
        // clear what they set.
        map.assign((size_t)out.h * out.w, 0);
        idx.assign((size_t)out.h * out.w, -1);
        layer.out_map = map.data();
        layer.idx = idx.data();
        if (node.op == CBI_OP_RESIZE) ASSERT_EQ(cpu_resize_tables(&node, &plan, &layer), 0);
    }
    cbi_op_args args(bool listed, Vec &out, cbi_tensor &out_t, cbi_changes *in_chg,
                     cbi_changes *out_chg, cbinfer_layer_stats *stats)
    {
        cbi_op_args a{};
        a.node = &node;
        a.plan = &plan;
        a.n_in = (int)in.size();
        in_t.resize(in.size());
        for (size_t i = 0; i < in.size(); i++) {
            in_t[i].data = in[i].data();
            in_t[i].shape = {in_shapes[i].c, in_shapes[i].h, in_shapes[i].w};
            a.in[i] = &in_t[i];
            a.in_chg[i] = &in_chg[i];
        }
        out_t.data = out.data();
        out_t.shape = plan.out;
        a.out = &out_t;
        a.out_chg = out_chg;
        a.layer = listed ? &layer : nullptr;
        a.stats = stats;
        return a;
    }
};

// The output pixels that read a changed input pixel, from the taps of each
// output row and column (Resize) or the same pixel (the rest).
std::vector<int32_t> expected_list(const PixelOp &op, const std::vector<std::vector<int32_t>> &lists)
{
    std::set<int32_t> want;
    if (op.node.op != CBI_OP_RESIZE) {
        for (const auto &l : lists) want.insert(l.begin(), l.end());
        return {want.begin(), want.end()};
    }
    const Shape si = op.in_shapes[0];
    std::set<int32_t> changed(lists[0].begin(), lists[0].end());
    for (int oy = 0; oy < op.plan.out.h; oy++)
        for (int ox = 0; ox < op.plan.out.w; ox++) {
            const cbi_resize_tap ty = op.layer.tap_y[oy], tx = op.layer.tap_x[ox];
            const int ys[2] = {ty.i0, ty.i1}, xs[2] = {tx.i0, tx.i1};
            bool hit = false;
            for (int a : ys)
                for (int b : xs) hit = hit || changed.count(a * si.w + b);
            if (hit) want.insert(oy * op.plan.out.w + ox);
        }
    return {want.begin(), want.end()};
}

// Frames of random sparse changes (one input at a time, both, none, a blob,
// everything), with dense producers now and then.
// threads > 1: the kernels split their pixels over that many threads (a
// context with that many slots).
void run_frames(PixelOp &op, Kernel kernel, std::mt19937 &rng, const std::string &what,
                int threads = 1)
{
    cpu_ctx ctx{};
    ctx.n_slots = threads;
    const int n_in = (int)op.in.size();
    cbi_changes in_chg[CBI_MAX_INPUTS]{}, out_chg{}, dense_chg[CBI_MAX_INPUTS]{}, dense_out{};
    cbinfer_layer_stats stats{}, dense_stats{};
    for (int i = 0; i < n_in; i++) in_chg[i].all = dense_chg[i].all = 1;
    std::vector<std::vector<int32_t>> lists(n_in);
    std::uniform_real_distribution<float> u(0.f, 1.f);
    for (int f = 0; f < 9; f++) {
        const bool first = f == 0, producer_dense = f == 6;
        for (int i = 0; i < n_in; i++) {
            const Shape s = op.in_shapes[i];
            const int px = s.h * s.w;
            lists[i].clear();
            const float share = f == 2 ? 0.f : (f == 7 ? 1.f : ((f + i) % 3 == 0 ? 0.02f : 0.2f));
            for (int q = 0; q < px; q++) {
                const bool blob = f == 5 && i == 0 && q / s.w >= s.h / 3 && q / s.w < s.h / 3 + 2 &&
                                  q % s.w < 3;
                if (!first && !blob && !(u(rng) < share) && !(f == 1 && q == px - 1)) continue;
                lists[i].push_back(q);
                for (int ch = 0; ch < s.c; ch++) op.in[i][(size_t)q * s.c + ch] = u(rng) * 4.f - 2.f;
            }
            in_chg[i].all = first || producer_dense;
            in_chg[i].idx = lists[i].data();
            in_chg[i].count = (int64_t)lists[i].size();
        }
        cbi_op_args a = op.args(true, op.out_listed, op.out_listed_t, in_chg, &out_chg, &stats);
        a.first = first;
        stats.ran_dense = 1;
        cbi_err err{};
        ASSERT_EQ(kernel(&ctx, &a, &err), CBINFER_STATUS_SUCCESS) << what << ": " << err.msg;
        cbi_op_args d = op.args(false, op.out_dense, op.out_dense_t, dense_chg, &dense_out, &dense_stats);
        ASSERT_EQ(kernel(nullptr, &d, &err), CBINFER_STATUS_SUCCESS) << what << ": " << err.msg;
        ASSERT_EQ(std::memcmp(op.out_listed.data(), op.out_dense.data(), op.out_dense.size() * sizeof(float)), 0)
            << what << ", frame " << f;
        for (uint8_t m : op.map) ASSERT_EQ(m, 0) << what << ", frame " << f;
        if (first || producer_dense) {
            EXPECT_EQ(out_chg.all, 1) << what << ", frame " << f;
            EXPECT_EQ(stats.ran_dense, 1);
            continue;
        }
        ASSERT_EQ(out_chg.all, 0) << what << ", frame " << f;
        EXPECT_EQ(stats.ran_dense, 0);
        const std::vector<int32_t> want = expected_list(op, lists);
        ASSERT_EQ(out_chg.count, (int64_t)want.size()) << what << ", frame " << f;
        ASSERT_TRUE(std::equal(want.begin(), want.end(), out_chg.idx)) << what << ", frame " << f;
        EXPECT_EQ(stats.changed_px, (int64_t)want.size());
    }
}

TEST(PixelOps, ActivationAddConcatListedEqualDense)
{
    std::mt19937 rng(31);
    const Shape sizes[] = {{3, 9, 11}, {17, 6, 5}, {1, 1, 1}, {32, 12, 16}};
    int runs = 0;
    for (const Shape s : sizes) {
        {
            PixelOp op(CBI_OP_ACTIVATION, "Clip");
            op.node.act.kind = CBI_ACT_CLIP;
            op.node.act.lo = 0.f;
            op.node.act.hi = 1.f;
            op.setup(rng, {s}, s);
            run_frames(op, cpu_activation, rng, "Clip");
            runs++;
        }
        {
            PixelOp op(CBI_OP_ADD, "Add");
            op.setup(rng, {s, s}, s);
            run_frames(op, cpu_add, rng, "Add");
            runs++;
        }
        {
            PixelOp op(CBI_OP_CONCAT, "Concat");
            const Shape a{s.c, s.h, s.w}, b{5, s.h, s.w}, c{2, s.h, s.w};
            op.setup(rng, {a, b, c}, {s.c + 7, s.h, s.w});
            run_frames(op, cpu_concat, rng, "Concat");
            runs++;
        }
    }
    EXPECT_EQ(runs, 12);
}

TEST(PixelOps, ThreadedListedEqualDense)
{
    // Large enough that the kernels split their pixels over two threads.
    std::mt19937 rng(34);
    const Shape s{64, 48, 40};
    PixelOp add(CBI_OP_ADD, "Add");
    add.setup(rng, {s, s}, s);
    run_frames(add, cpu_add, rng, "threaded Add", 2);
    PixelOp cat(CBI_OP_CONCAT, "Concat");
    cat.setup(rng, {s, {32, 48, 40}}, {96, 48, 40});
    run_frames(cat, cpu_concat, rng, "threaded Concat", 2);
    PixelOp rs(CBI_OP_RESIZE, "Resize");
    rs.node.linear = 1;
    rs.node.coord = CBI_RESIZE_HALF_PIXEL;
    rs.node.size_h = 96;
    rs.node.size_w = 80;
    rs.setup(rng, {s}, {s.c, 96, 80});
    run_frames(rs, cpu_resize, rng, "threaded Resize", 2);
}

TEST(PixelOps, ResizeListedEqualsDense)
{
    std::mt19937 rng(32);
    struct Case {
        bool linear;
        cbi_resize_coord coord;
        Shape in;
        int oh, ow;
    };
    const Case cases[] = {
        {true, CBI_RESIZE_HALF_PIXEL, {4, 9, 12}, 18, 24},    // NanoDet's 2x up
        {true, CBI_RESIZE_HALF_PIXEL, {4, 18, 24}, 9, 12},    // and 0.5x down
        {true, CBI_RESIZE_ASYMMETRIC, {3, 7, 5}, 21, 10},
        {true, CBI_RESIZE_ALIGN_CORNERS, {2, 6, 8}, 11, 15},
        {true, CBI_RESIZE_PYTORCH_HALF_PIXEL, {3, 10, 9}, 4, 1},
        {true, CBI_RESIZE_HALF_PIXEL, {5, 12, 12}, 5, 3},     // inputs no output reads
        {false, CBI_RESIZE_ASYMMETRIC, {3, 8, 6}, 16, 12},
        {false, CBI_RESIZE_HALF_PIXEL, {2, 9, 9}, 4, 20},
    };
    for (const Case &k : cases) {
        PixelOp op(CBI_OP_RESIZE, "Resize");
        op.node.linear = k.linear;
        op.node.coord = k.coord;
        op.node.round = CBI_RESIZE_ROUND_PREFER_FLOOR;
        op.node.size_h = k.oh;
        op.node.size_w = k.ow;
        op.setup(rng, {k.in}, {k.in.c, k.oh, k.ow});
        run_frames(op, cpu_resize, rng,
                   std::string(k.linear ? "linear " : "nearest ") + std::to_string(k.in.h) + "x" +
                       std::to_string(k.in.w) + " -> " + std::to_string(k.oh) + "x" +
                       std::to_string(k.ow) + " coord " + std::to_string((int)k.coord));
    }
}

TEST(PixelOps, BrokenChangeListIsAnError)
{
    std::mt19937 rng(33);
    PixelOp op(CBI_OP_ADD, "Add");
    op.setup(rng, {{2, 3, 3}, {2, 3, 3}}, {2, 3, 3});
    cbi_changes in_chg[2]{}, out_chg{};
    in_chg[0].count = 2; // a list without indices
    cbinfer_layer_stats stats{};
    cbi_op_args a = op.args(true, op.out_listed, op.out_listed_t, in_chg, &out_chg, &stats);
    cbi_err err{};
    EXPECT_EQ(cpu_add(nullptr, &a, &err), CBINFER_STATUS_INTERNAL);
    EXPECT_NE(std::string(err.msg).find("pixel_node"), std::string::npos) << err.msg;
}

} // namespace
