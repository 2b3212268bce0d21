// ONNX loader and network planning: models are built in memory with the
// protobuf-c structs (no Python), loaded, and the resulting IR is checked:
// BatchNorm folding, activation fusion, weight layout, statuses and messages
// for every kind of bad model, and cbi_net_plan() shape arithmetic.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cbinfer.h"
#include "onnx.pb-c.h"
#include "onnx_model.h"
#include "test_util.h"
extern "C" {
#include "net.h"
}

using namespace cbi_test;

namespace {

struct Loaded {
    cbinfer_status status;
    NetPtr net;
    std::string msg;
    const cbi_net &ir() const { return net->net; }
};

Loaded load_bytes(const std::vector<uint8_t> &b)
{
    char err[1024] = "unset";
    cbinfer_network_t *n = reinterpret_cast<cbinfer_network_t *>(0x1);
    // A non-NULL pointer even for empty input, so that only the length says "empty".
    static const uint8_t empty = 0;
    cbinfer_status st = cbinfer_network_load_memory(b.empty() ? &empty : b.data(), b.size(), &n,
                                                    err, sizeof err);
    if (st != CBINFER_STATUS_SUCCESS) {
        EXPECT_EQ(n, nullptr) << "out must be NULL on failure";
    }
    return Loaded{st, NetPtr(st == CBINFER_STATUS_SUCCESS ? n : nullptr), err};
}

Loaded load(Model &m) { return load_bytes(m.bytes()); }

struct Planned {
    cbinfer_status status;
    std::vector<cbi_shape> shapes;
    std::vector<cbi_node_plan> plans;
    std::string msg;
};

Planned plan(const Loaded &l, int height, int width)
{
    Planned p;
    p.shapes.resize(l.ir().n_values);
    p.plans.resize(l.ir().n_nodes);
    char err[1024] = "";
    p.status = cbi_net_plan(&l.ir(), height, width, p.shapes.data(), p.plans.data(), err,
                            sizeof err);
    p.msg = err;
    return p;
}

// Deterministic, distinct weight values.
float wv(int i, int salt = 0)
{
    return 0.03125f * static_cast<float>((i * 7 + salt * 3) % 23) - 0.3f;
}

std::vector<float> ramp(size_t n, int salt = 0)
{
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = wv(static_cast<int>(i), salt);
    return v;
}

// Conv `name` from `in` to `out` with deterministic weights [cout][cin][kh][kw]
// (and a bias unless bias is false); returns the weights.
std::vector<float> add_conv(Model &m, const std::string &name, const std::string &in,
                            const std::string &out, int cin, int cout, int kh, int kw,
                            bool bias = true, Node **node = nullptr)
{
    std::vector<float> w = ramp(static_cast<size_t>(cout) * cin * kh * kw, cout + cin);
    m.init_f(name + ".w", {cout, cin, kh, kw}, w);
    std::vector<std::string> ins{in, name + ".w"};
    if (bias) {
        m.init_f(name + ".b", {cout}, ramp(cout, 5));
        ins.push_back(name + ".b");
    }
    Node &n = m.node("Conv", name, ins, {out});
    if (node) *node = &n;
    return w;
}

// x [1,c,h,w] -> Conv 3x3 (pads 1) -> y, plus whatever the test appends.
Model one_conv(int c = 2, int64_t h = 6, int64_t w = 5, int cout = 3)
{
    Model m;
    m.input("x", {1, c, h, w});
    Node *n;
    add_conv(m, "conv", "x", "y", c, cout, 3, 3, true, &n);
    m.attr_ints(*n, "pads", {1, 1, 1, 1});
    m.output("y");
    return m;
}

size_t conv_index(int o, int y, int x, int i, int kh, int kw, int cin)
{
    return ((static_cast<size_t>(o) * kh + y) * kw + x) * cin + i;
}

}  // namespace

// ---------------------------------------------------------------------------
// Valid models
// ---------------------------------------------------------------------------

TEST(Loader, ConvBnReluIsFoldedAndFused)
{
    const int cin = 2, cout = 3, kh = 2, kw = 3;
    Model m;
    m.input("x", {1, cin, 5, 4});
    Node *conv;
    std::vector<float> w = add_conv(m, "conv1", "x", "c1", cin, cout, kh, kw, true, &conv);
    m.attr_ints(*conv, "pads", {0, 1, 1, 1});
    std::vector<float> b = ramp(cout, 5);
    std::vector<float> gamma{0.5f, 2.f, -1.f}, beta{0.1f, -0.2f, 0.3f}, mean{1.f, -0.5f, 0.25f},
        var{0.25f, 4.f, 1.f};
    const float eps = 1e-3f;
    m.init_f("g", {cout}, gamma);
    m.init_f("beta", {cout}, beta);
    m.init_f("mean", {cout}, mean);
    m.init_f("var", {cout}, var);
    Node &bn = m.node("BatchNormalization", "bn1", {"c1", "g", "beta", "mean", "var"}, {"b1"});
    m.attr_f(bn, "epsilon", eps);
    m.node("Relu", "relu1", {"b1"}, {"y"});
    m.output("y");

    Loaded l = load(m);
    ASSERT_EQ(l.status, CBINFER_STATUS_SUCCESS) << l.msg;
    const cbi_net &net = l.ir();
    ASSERT_EQ(net.n_nodes, 1);
    EXPECT_EQ(cbinfer_network_conv_count(l.net.get()), 1);
    EXPECT_STREQ(cbinfer_network_conv_name(l.net.get(), 0), "conv1");
    const cbi_node &nd = net.nodes[0];
    EXPECT_EQ(nd.op, CBI_OP_CONV);
    EXPECT_STREQ(nd.op_type, "Conv");
    EXPECT_EQ(nd.act.kind, CBI_ACT_RELU);
    EXPECT_EQ(nd.cin, cin);
    EXPECT_EQ(nd.cout, cout);
    EXPECT_EQ(nd.win.kh, kh);
    EXPECT_EQ(nd.win.kw, kw);
    EXPECT_EQ(nd.win.pad_t, 0);
    EXPECT_EQ(nd.win.pad_l, 1);
    EXPECT_EQ(nd.win.pad_b, 1);
    EXPECT_EQ(nd.win.pad_r, 1);
    ASSERT_EQ(net.n_values, 2) << "only the input and the fused output remain";
    EXPECT_STREQ(net.values[net.input].name, "x");
    EXPECT_STREQ(net.values[net.outputs[0]].name, "y");
    EXPECT_EQ(nd.inputs[0], net.input);
    EXPECT_EQ(nd.output, net.outputs[0]);
    EXPECT_EQ(net.values[net.outputs[0]].c, cout);

    for (int o = 0; o < cout; ++o) {
        double f = gamma[o] / std::sqrt(static_cast<double>(var[o]) + eps);
        EXPECT_NEAR(nd.bias[o], (b[o] - mean[o]) * f + beta[o], 1e-5) << "channel " << o;
        for (int i = 0; i < cin; ++i)
            for (int y = 0; y < kh; ++y)
                for (int x = 0; x < kw; ++x) {
                    float onnx = w[((static_cast<size_t>(o) * cin + i) * kh + y) * kw + x];
                    EXPECT_NEAR(nd.weight[conv_index(o, y, x, i, kh, kw, cin)], onnx * f, 1e-5);
                }
    }
}

TEST(Loader, ConvWeightsReorderedExactlyAndBiasDefaultsToZero)
{
    const int cin = 3, cout = 2, kh = 3, kw = 2;
    Model m;
    m.input("x", {1, cin, 8, 8});
    std::vector<float> w = add_conv(m, "c", "x", "y", cin, cout, kh, kw, false);
    m.output("y");
    Loaded l = load(m);
    ASSERT_EQ(l.status, CBINFER_STATUS_SUCCESS) << l.msg;
    const cbi_node &nd = l.ir().nodes[0];
    EXPECT_EQ(nd.act.kind, CBI_ACT_NONE);
    for (int o = 0; o < cout; ++o) {
        EXPECT_EQ(nd.bias[o], 0.f);
        for (int i = 0; i < cin; ++i)
            for (int y = 0; y < kh; ++y)
                for (int x = 0; x < kw; ++x)
                    EXPECT_EQ(nd.weight[conv_index(o, y, x, i, kh, kw, cin)],
                              w[((static_cast<size_t>(o) * cin + i) * kh + y) * kw + x]);
    }
}

TEST(Loader, ConvTransposeWeightsAreCinKhKwCout)
{
    const int cin = 2, cout = 3, k = 3;
    Model m;
    m.input("x", {1, cin, kSym, kSym});
    std::vector<float> w = ramp(static_cast<size_t>(cin) * cout * k * k);
    m.init_f("w", {cin, cout, k, k}, w);
    Node &n = m.node("ConvTranspose", "up", {"x", "w"}, {"t"});
    m.attr_ints(n, "strides", {2, 2});
    m.attr_ints(n, "pads", {1, 1, 1, 1});
    m.attr_ints(n, "output_padding", {1, 1});
    m.node("LeakyRelu", "lr", {"t"}, {"y"});
    m.output("y");
    Loaded l = load(m);
    ASSERT_EQ(l.status, CBINFER_STATUS_SUCCESS) << l.msg;
    ASSERT_EQ(l.ir().n_nodes, 1);
    const cbi_node &nd = l.ir().nodes[0];
    EXPECT_EQ(nd.op, CBI_OP_CONV_TRANSPOSE);
    EXPECT_EQ(nd.act.kind, CBI_ACT_LEAKY_RELU);
    EXPECT_FLOAT_EQ(nd.act.alpha, 0.01f);
    EXPECT_EQ(nd.cin, cin);
    EXPECT_EQ(nd.cout, cout);
    EXPECT_EQ(cbinfer_network_conv_count(l.net.get()), 0) << "only Conv nodes detect changes";
    for (int i = 0; i < cin; ++i)
        for (int o = 0; o < cout; ++o)
            for (int y = 0; y < k; ++y)
                for (int x = 0; x < k; ++x)
                    EXPECT_EQ(nd.weight[((static_cast<size_t>(i) * k + y) * k + x) * cout + o],
                              w[((static_cast<size_t>(i) * cout + o) * k + y) * k + x]);
    Planned p = plan(l, 5, 7);
    ASSERT_EQ(p.status, CBINFER_STATUS_SUCCESS) << p.msg;
    // (in - 1) * 2 - 2 + 3 + 1
    EXPECT_EQ(p.shapes[l.ir().outputs[0]].h, 10);
    EXPECT_EQ(p.shapes[l.ir().outputs[0]].w, 14);
    EXPECT_EQ(p.shapes[l.ir().outputs[0]].c, cout);
}

TEST(Loader, SymbolicInputDims)
{
    Model m;
    m.input("x", {kSym, 3, kSym, kUnset});
    add_conv(m, "c", "x", "y", 3, 4, 1, 1);
    m.output("y");
    Loaded l = load(m);
    ASSERT_EQ(l.status, CBINFER_STATUS_SUCCESS) << l.msg;
    int c = 0, h = 0, w = 0;
    ASSERT_EQ(cbinfer_network_input_dims(l.net.get(), &c, &h, &w), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(c, 3);
    EXPECT_EQ(h, -1);
    EXPECT_EQ(w, -1);
    EXPECT_EQ(cbinfer_network_input_dims(l.net.get(), nullptr, nullptr, nullptr),
              CBINFER_STATUS_SUCCESS);

    Model f = one_conv(2, 6, 5);
    Loaded lf = load(f);
    ASSERT_EQ(lf.status, CBINFER_STATUS_SUCCESS) << lf.msg;
    ASSERT_EQ(cbinfer_network_input_dims(lf.net.get(), &c, &h, &w), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(c, 2);
    EXPECT_EQ(h, 6);
    EXPECT_EQ(w, 5);
}

TEST(Loader, MetadataSetsInputScaling)
{
    float scale = 0, offset = 1;
    {
        Model m = one_conv();
        Loaded l = load(m);
        ASSERT_EQ(l.status, CBINFER_STATUS_SUCCESS) << l.msg;
        ASSERT_EQ(cbinfer_network_input_scaling(l.net.get(), &scale, &offset),
                  CBINFER_STATUS_SUCCESS);
        EXPECT_FLOAT_EQ(scale, 1.f / 255.f);
        EXPECT_EQ(offset, 0.f);
    }
    {
        Model m = one_conv();
        m.meta("author", "tests");
        m.meta("cbinfer.input_scale", "0.00784313725490196");
        m.meta("cbinfer.input_offset", "-1");
        Loaded l = load(m);
        ASSERT_EQ(l.status, CBINFER_STATUS_SUCCESS) << l.msg;
        ASSERT_EQ(cbinfer_network_input_scaling(l.net.get(), &scale, &offset),
                  CBINFER_STATUS_SUCCESS);
        EXPECT_FLOAT_EQ(scale, 2.f / 255.f);
        EXPECT_FLOAT_EQ(offset, -1.f);
    }
    {
        Model m = one_conv();
        m.meta("cbinfer.input_scale", "2.5e-1");
        Loaded l = load(m);
        ASSERT_EQ(l.status, CBINFER_STATUS_SUCCESS) << l.msg;
        ASSERT_EQ(cbinfer_network_input_scaling(l.net.get(), &scale, nullptr),
                  CBINFER_STATUS_SUCCESS);
        EXPECT_FLOAT_EQ(scale, 0.25f);
    }
    for (const char *bad : {"abc", "", "1.5x", "0,5", "1e"}) {
        Model m = one_conv();
        m.meta("cbinfer.input_offset", bad);
        Loaded l = load(m);
        EXPECT_EQ(l.status, CBINFER_STATUS_MODEL_MALFORMED) << "'" << bad << "'";
        EXPECT_NE(l.msg.find("cbinfer.input_offset"), std::string::npos) << l.msg;
    }
}

TEST(Loader, HalfDoubleAndRawInitializersAreConverted)
{
    // 1, -2, 0.5, 0.25, 1.5, 65504, the smallest subnormal, -0.
    const std::vector<uint16_t> halves{0x3C00, 0xC000, 0x3800, 0x3400,
                                       0x3E00, 0x7BFF, 0x0001, 0x8000};
    const std::vector<float> expect{1.f, -2.f, 0.5f, 0.25f, 1.5f, 65504.f, 5.9604645e-8f, -0.f};
    const std::vector<int32_t> as_int(halves.begin(), halves.end());
    for (int form = 0; form < 4; ++form) {
        Model m;
        m.input("x", {1, 2, 4, 4});
        std::vector<int64_t> dims{4, 2, 1, 1};
        if (form == 0) {  // float16 as raw_data
            m.init_raw("w", dims, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16, halves.data(),
                       halves.size() * 2);
        } else if (form == 1) {  // float16 in int32_data
            Onnx__TensorProto *t =
                m.init(m.tensor("w", dims, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16));
            t->n_int32_data = as_int.size();
            t->int32_data = const_cast<int32_t *>(as_int.data());
        } else if (form == 2) {  // double as raw_data
            std::vector<double> d(expect.begin(), expect.end());
            m.init_raw("w", dims, ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE, d.data(),
                       d.size() * sizeof(double));
        } else {  // float as raw_data
            m.init_raw_f("w", dims, expect);
        }
        Onnx__TensorProto *b = m.init(m.tensor("b", {4}, ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE));
        static const double bias[4] = {0.5, -0.25, 3.0, 1e-3};
        b->n_double_data = 4;
        b->double_data = const_cast<double *>(bias);
        m.node("Conv", "c", {"x", "w", "b"}, {"y"});
        m.output("y");
        Loaded l = load(m);
        ASSERT_EQ(l.status, CBINFER_STATUS_SUCCESS) << "form " << form << ": " << l.msg;
        const cbi_node &nd = l.ir().nodes[0];
        for (size_t i = 0; i < expect.size(); ++i) EXPECT_EQ(nd.weight[i], expect[i]) << i;
        EXPECT_TRUE(std::signbit(nd.weight[7]));
        for (int o = 0; o < 4; ++o) EXPECT_FLOAT_EQ(nd.bias[o], static_cast<float>(bias[o]));
    }
}

// Writes bytes to <temp dir>/name and returns the path.
static std::string write_temp_file(const std::vector<uint8_t> &b, const std::string &name)
{
    std::string path = testing::TempDir() + name;
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char *>(b.data()), static_cast<std::streamsize>(b.size()));
    return path;
}

TEST(Loader, LoadsFromFile)
{
    Model m = one_conv();
    std::string path = write_temp_file(m.bytes(), "cbinfer_loader_test.onnx");
    cbinfer_network_t *n = nullptr;
    char err[256] = "unset";
    ASSERT_EQ(cbinfer_network_load(path.c_str(), &n, err, sizeof err), CBINFER_STATUS_SUCCESS)
        << err;
    EXPECT_STREQ(err, "");
    EXPECT_EQ(cbinfer_network_conv_count(n), 1);
    cbinfer_network_free(n);
    std::remove(path.c_str());
}

TEST(Loader, ActivationsFuseOnlyIntoASingleUseConv)
{
    // conv1 -> relu (fused); conv2 -> {clip, add} (not fused: two uses);
    // add -> prelu (standalone: Add is not a conv).
    Model m(13);
    m.input("x", {1, 2, kSym, kSym});
    add_conv(m, "conv1", "x", "c1", 2, 3, 1, 1);
    m.node("Relu", "relu", {"c1"}, {"r1"});
    add_conv(m, "conv2", "r1", "c2", 3, 3, 1, 1);
    m.init_f("lo", {}, {-0.5f});
    m.node("Clip", "clip", {"c2", "lo", ""}, {"k2"});
    m.node("Add", "add", {"k2", "c2"}, {"s"});
    m.init_f("slope", {3, 1, 1}, {0.1f, 0.2f, 0.3f});
    m.node("PRelu", "prelu", {"s", "slope"}, {"y"});
    m.output("y");
    Loaded l = load(m);
    ASSERT_EQ(l.status, CBINFER_STATUS_SUCCESS) << l.msg;
    const cbi_net &net = l.ir();
    ASSERT_EQ(net.n_nodes, 5);
    EXPECT_STREQ(net.nodes[0].name, "conv1");
    EXPECT_EQ(net.nodes[0].act.kind, CBI_ACT_RELU);
    EXPECT_STREQ(net.nodes[1].name, "conv2");
    EXPECT_EQ(net.nodes[1].act.kind, CBI_ACT_NONE);
    EXPECT_EQ(net.nodes[2].op, CBI_OP_ACTIVATION);
    EXPECT_STREQ(net.nodes[2].op_type, "Clip");
    EXPECT_EQ(net.nodes[2].act.kind, CBI_ACT_CLIP);
    EXPECT_EQ(net.nodes[2].act.lo, -0.5f);
    EXPECT_EQ(net.nodes[2].act.hi, INFINITY);
    EXPECT_EQ(net.nodes[3].op, CBI_OP_ADD);
    EXPECT_EQ(net.nodes[3].n_inputs, 2);
    EXPECT_EQ(net.nodes[3].inputs[0], net.nodes[2].output);
    EXPECT_EQ(net.nodes[3].inputs[1], net.nodes[1].output);
    EXPECT_EQ(net.nodes[4].op, CBI_OP_ACTIVATION);
    EXPECT_EQ(net.nodes[4].act.kind, CBI_ACT_PRELU);
    ASSERT_EQ(net.nodes[4].act.n_slope, 3);
    EXPECT_FLOAT_EQ(net.nodes[4].act.slope[2], 0.3f);
    EXPECT_EQ(net.nodes[4].output, net.outputs[0]);
    EXPECT_EQ(net.n_conv, 2);
    EXPECT_EQ(net.conv_nodes[0], 0);
    EXPECT_EQ(net.conv_nodes[1], 1);
    for (int v = 0; v < net.n_values; ++v) EXPECT_EQ(net.values[v].c, v == 0 ? 2 : 3);
}

TEST(Loader, FusedPreluAndOldClipAttributes)
{
    Model m(6);
    m.input("x", {1, 2, kSym, kSym});
    add_conv(m, "c", "x", "t", 2, 3, 1, 1);
    m.init_f("slope", {1, 3, 1, 1}, {0.1f, 0.2f, 0.3f});
    m.node("PRelu", "p", {"t", "slope"}, {"u"});
    Node &clip = m.node("Clip", "", {"u"}, {"y"});
    m.attr_f(clip, "min", 0.f);
    m.attr_f(clip, "max", 6.f);
    m.output("y");
    Loaded l = load(m);
    ASSERT_EQ(l.status, CBINFER_STATUS_SUCCESS) << l.msg;
    ASSERT_EQ(l.ir().n_nodes, 2);
    EXPECT_EQ(l.ir().nodes[0].act.kind, CBI_ACT_PRELU);
    EXPECT_EQ(l.ir().nodes[0].act.n_slope, 3);
    EXPECT_STREQ(l.ir().nodes[1].name, "Clip_2") << "unnamed nodes are named <op>_<index>";
    EXPECT_EQ(l.ir().nodes[1].act.lo, 0.f);
    EXPECT_EQ(l.ir().nodes[1].act.hi, 6.f);
}

TEST(Loader, IdentityDropoutAndConstantsAreRemoved)
{
    Model m(13);
    m.input("x", {1, 2, kSym, kSym});
    // Weight from a Constant node, bias through an Identity of an initializer.
    Onnx__TensorProto *w = m.tensor("wc", {3, 2, 1, 1}, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    static const float wvals[6] = {1, 2, 3, 4, 5, 6};
    w->n_float_data = 6;
    w->float_data = const_cast<float *>(wvals);
    Node &k = m.node("Constant", "k", {}, {"w"});
    m.attr_t(k, "value", w);
    m.init_f("b0", {3}, {1, 2, 3});
    m.node("Identity", "idb", {"b0"}, {"b"});
    m.node("Conv", "conv", {"x", "w", "b"}, {"c"});
    m.node("Identity", "id", {"c"}, {"d"});
    m.node("Dropout", "drop", {"d"}, {"e", "mask"});
    m.node("Relu", "relu", {"e"}, {"y"});
    m.output("y");
    Loaded l = load(m);
    ASSERT_EQ(l.status, CBINFER_STATUS_SUCCESS) << l.msg;
    ASSERT_EQ(l.ir().n_nodes, 1);
    EXPECT_EQ(l.ir().nodes[0].act.kind, CBI_ACT_RELU);
    EXPECT_EQ(l.ir().nodes[0].weight[5], 6.f);
    EXPECT_EQ(l.ir().nodes[0].bias[2], 3.f);
    EXPECT_EQ(l.ir().n_values, 2);
}

TEST(Loader, UnsortedNodesAreSortedAndDeadNodesDropped)
{
    Model m;
    m.input("x", {1, 1, kSym, kSym});
    add_conv(m, "second", "a", "y", 2, 1, 1, 1);
    m.node("Softmax", "unused", {"a"}, {"dead"});
    add_conv(m, "first", "x", "a", 1, 2, 1, 1);
    m.output("y");
    Loaded l = load(m);
    ASSERT_EQ(l.status, CBINFER_STATUS_SUCCESS) << l.msg;
    ASSERT_EQ(l.ir().n_nodes, 2);
    EXPECT_STREQ(cbinfer_network_conv_name(l.net.get(), 0), "first");
    EXPECT_STREQ(cbinfer_network_conv_name(l.net.get(), 1), "second");
    EXPECT_EQ(cbinfer_network_conv_name(l.net.get(), 2), nullptr);
    EXPECT_EQ(cbinfer_network_conv_name(l.net.get(), -1), nullptr);
    EXPECT_EQ(l.ir().nodes[1].inputs[0], l.ir().nodes[0].output);
}

TEST(Loader, DuplicateNodeNamesAreMadeUnique)
{
    Model m;
    m.input("x", {1, 1, kSym, kSym});
    m.init_f("w", {1, 1, 1, 1}, {2.f});
    m.node("Conv", "c", {"x", "w"}, {"a"});
    m.node("Conv", "c", {"a", "w"}, {"b"});
    m.attr_ints(m.node("MaxPool", "", {"b"}, {"p"}), "kernel_shape", {2, 2});
    m.attr_ints(m.node("AveragePool", "MaxPool_2", {"p"}, {"y"}), "kernel_shape", {1, 1});
    m.output("y");
    Loaded l = load(m);
    ASSERT_EQ(l.status, CBINFER_STATUS_SUCCESS) << l.msg;
    ASSERT_EQ(l.ir().n_nodes, 4);
    EXPECT_STREQ(l.ir().nodes[0].name, "c");
    EXPECT_STREQ(l.ir().nodes[1].name, "c_2");
    EXPECT_STREQ(l.ir().nodes[2].name, "MaxPool_2");
    EXPECT_STREQ(l.ir().nodes[3].name, "MaxPool_2_2");
}

TEST(Loader, OtherOpsLowered)
{
    Model m(13);
    m.input("x", {1, 4, kSym, kSym});
    m.init_i64("pads", {8}, {0, 0, 1, 2, 0, 0, 3, 4});
    m.init_f("pv", {}, {0.5f});
    m.node("Pad", "pad", {"x", "pads", "pv"}, {"p"});
    m.init_f("scales", {4}, {1, 1, 2, 3});
    Node &rs = m.node("Resize", "rs", {"p", "", "scales"}, {"r"});
    m.attr_s(rs, "mode", "nearest");
    m.attr_s(rs, "coordinate_transformation_mode", "asymmetric");
    m.attr_s(rs, "nearest_mode", "floor");
    Node &d2s = m.node("DepthToSpace", "d2s", {"r"}, {"d"});
    m.attr_i(d2s, "blocksize", 2);
    m.attr_s(d2s, "mode", "CRD");
    m.init_i64("sizes", {4}, {1, 1, 40, 30});
    m.node("Resize", "rz", {"d", "", "", "sizes"}, {"z"});
    Node &cat = m.node("Concat", "cat", {"z", "z"}, {"y"});
    m.attr_i(cat, "axis", -3);
    m.output("y");
    Loaded l = load(m);
    ASSERT_EQ(l.status, CBINFER_STATUS_SUCCESS) << l.msg;
    const cbi_net &net = l.ir();
    ASSERT_EQ(net.n_nodes, 5);
    const cbi_node &pad = net.nodes[0];
    EXPECT_EQ(pad.op, CBI_OP_PAD);
    EXPECT_EQ(pad.pad_t, 1);
    EXPECT_EQ(pad.pad_l, 2);
    EXPECT_EQ(pad.pad_b, 3);
    EXPECT_EQ(pad.pad_r, 4);
    EXPECT_EQ(pad.pad_mode, CBI_PAD_CONSTANT);
    EXPECT_EQ(pad.pad_value, 0.5f);
    const cbi_node &r = net.nodes[1];
    EXPECT_EQ(r.op, CBI_OP_RESIZE);
    EXPECT_EQ(r.scale_h, 2.f);
    EXPECT_EQ(r.scale_w, 3.f);
    EXPECT_EQ(r.coord, CBI_RESIZE_ASYMMETRIC);
    EXPECT_EQ(r.round, CBI_RESIZE_FLOOR);
    EXPECT_EQ(net.nodes[2].blocksize, 2);
    EXPECT_EQ(net.nodes[2].d2s_crd, 1);
    EXPECT_EQ(net.nodes[3].size_h, 40);
    EXPECT_EQ(net.nodes[3].size_w, 30);
    EXPECT_EQ(net.nodes[3].coord, CBI_RESIZE_HALF_PIXEL);
    EXPECT_EQ(net.nodes[3].round, CBI_RESIZE_ROUND_PREFER_FLOOR);
    EXPECT_EQ(net.values[net.outputs[0]].c, 2);

    Planned p = plan(l, 3, 5);
    ASSERT_EQ(p.status, CBINFER_STATUS_SUCCESS) << p.msg;
    EXPECT_EQ(p.shapes[pad.output].h, 3 + 1 + 3);
    EXPECT_EQ(p.shapes[pad.output].w, 5 + 2 + 4);
    EXPECT_EQ(p.shapes[r.output].h, 14);
    EXPECT_EQ(p.shapes[r.output].w, 33);
    EXPECT_EQ(p.shapes[net.nodes[2].output].c, 1);
    EXPECT_EQ(p.shapes[net.nodes[2].output].h, 28);
    EXPECT_EQ(p.shapes[net.nodes[2].output].w, 66);
    EXPECT_EQ(p.shapes[net.outputs[0]].c, 2);
    EXPECT_EQ(p.shapes[net.outputs[0]].h, 40);
    EXPECT_EQ(p.shapes[net.outputs[0]].w, 30);
}

TEST(Loader, OldOpsetForms)
{
    // Opset 9: Pad with attributes, Upsample with a scales input.
    Model m(9);
    m.input("x", {1, 2, kSym, kSym});
    Node &pad = m.node("Pad", "pad", {"x"}, {"p"});
    m.attr_ints(pad, "pads", {0, 0, 1, 1, 0, 0, 1, 1});
    m.attr_s(pad, "mode", "reflect");
    m.init_f("s", {4}, {1, 1, 2, 2});
    m.node("Upsample", "up", {"p", "s"}, {"y"});
    m.output("y");
    Loaded l = load(m);
    ASSERT_EQ(l.status, CBINFER_STATUS_SUCCESS) << l.msg;
    EXPECT_EQ(l.ir().nodes[0].pad_mode, CBI_PAD_REFLECT);
    EXPECT_EQ(l.ir().nodes[1].scale_h, 2.f);
    EXPECT_EQ(l.ir().nodes[1].coord, CBI_RESIZE_ASYMMETRIC);
    EXPECT_EQ(l.ir().nodes[1].round, CBI_RESIZE_FLOOR);
    Planned ok = plan(l, 2, 2);
    ASSERT_EQ(ok.status, CBINFER_STATUS_SUCCESS) << ok.msg;
    EXPECT_EQ(ok.shapes[l.ir().outputs[0]].h, 8);
    Planned small = plan(l, 1, 4);
    EXPECT_EQ(small.status, CBINFER_STATUS_BAD_FRAME_SIZE) << "reflect pad 1 needs 2 px";
    EXPECT_NE(small.msg.find("pad"), std::string::npos) << small.msg;

    // Opset 7: Upsample with a scales attribute; Resize-10 with a scales input.
    Model m7(7);
    m7.input("x", {1, 2, kSym, kSym});
    m7.attr_floats(m7.node("Upsample", "up", {"x"}, {"y"}), "scales", {1, 1, 2, 4});
    m7.output("y");
    Loaded l7 = load(m7);
    ASSERT_EQ(l7.status, CBINFER_STATUS_SUCCESS) << l7.msg;
    EXPECT_EQ(l7.ir().nodes[0].scale_w, 4.f);

    Model m10(10);
    m10.input("x", {1, 2, kSym, kSym});
    m10.init_f("s", {4}, {1, 1, 3, 3});
    m10.node("Resize", "rs", {"x", "s"}, {"y"});
    m10.output("y");
    Loaded l10 = load(m10);
    ASSERT_EQ(l10.status, CBINFER_STATUS_SUCCESS) << l10.msg;
    EXPECT_EQ(l10.ir().nodes[0].scale_h, 3.f);
}

// ---------------------------------------------------------------------------
// Corrupt and unsupported models
// ---------------------------------------------------------------------------

TEST(Loader, TruncatedModelIsMalformed)
{
    Model m = one_conv();
    std::vector<uint8_t> b = m.bytes();
    ASSERT_EQ(load_bytes(b).status, CBINFER_STATUS_SUCCESS);
    // Every prefix: the graph and the opset import are the last fields, so no
    // prefix is a complete model.
    for (size_t len = 0; len < b.size(); ++len) {
        std::vector<uint8_t> cut(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(len));
        Loaded l = load_bytes(cut);
        ASSERT_EQ(l.status, CBINFER_STATUS_MODEL_MALFORMED) << "prefix of " << len << " bytes: "
                                                            << l.msg;
        EXPECT_FALSE(l.msg.empty());
    }
}

TEST(Loader, GarbageIsMalformed)
{
    std::mt19937 rng(1234);
    for (int trial = 0; trial < 20; ++trial) {
        std::vector<uint8_t> b(16 + trial * 37);
        for (auto &x : b) x = static_cast<uint8_t>(rng());
        EXPECT_EQ(load_bytes(b).status, CBINFER_STATUS_MODEL_MALFORMED) << "trial " << trial;
    }
    std::string text = "this is not an onnx file\n";
    EXPECT_EQ(load_bytes(std::vector<uint8_t>(text.begin(), text.end())).status,
              CBINFER_STATUS_MODEL_MALFORMED);
    EXPECT_EQ(load_bytes({}).status, CBINFER_STATUS_MODEL_MALFORMED);

    // Flipped bytes in a valid model never crash (any status is fine).
    Model m = one_conv();
    std::vector<uint8_t> good = m.bytes();
    for (size_t i = 0; i < good.size(); i += 3) {
        std::vector<uint8_t> b = good;
        b[i] ^= 0xA5;
        Loaded l = load_bytes(b);
        if (l.status != CBINFER_STATUS_SUCCESS) {
            EXPECT_FALSE(l.msg.empty());
        }
    }
}

// Issue 11, class 2: protobuf-c unpacks nested messages by recursion with no
// limit, so a small file of deeply nested messages (a graph in an attribute
// of a node of a graph, ...) overflowed the stack. The loader refuses it
// before unpacking; a shallow nesting of the same shape still parses.
TEST(Loader, DeeplyNestedMessagesAreMalformed)
{
    // Built back to front (each level is the tag and length before what it
    // holds), so that making it takes linear time.
    auto nested_model = [](int levels) {
        std::vector<uint8_t> rev;
        auto wrap = [&rev](int field) {
            std::vector<uint8_t> head;
            head.push_back(static_cast<uint8_t>(field << 3 | 2));
            for (uint64_t v = rev.size();; v >>= 7) {
                head.push_back(static_cast<uint8_t>((v & 0x7f) | (v > 0x7f ? 0x80 : 0)));
                if (v <= 0x7f) break;
            }
            rev.insert(rev.end(), head.rbegin(), head.rend());
        };
        // GraphProto.node (1) > NodeProto.attribute (5) > AttributeProto.g
        // (6), levels times, inside ModelProto.graph (7).
        for (int i = 0; i < levels; ++i) {
            wrap(6);
            wrap(5);
            wrap(1);
        }
        wrap(7);
        return std::vector<uint8_t>(rev.rbegin(), rev.rend());
    };
    Loaded deep = load_bytes(nested_model(20000)); // 60,000 nested messages, about 300 kB
    EXPECT_EQ(deep.status, CBINFER_STATUS_MODEL_MALFORMED);
    EXPECT_NE(deep.msg.find("nested more than"), std::string::npos) << deep.msg;
    // 30 levels (90 messages) are within the limit: protobuf-c parses them and
    // the loader then finds no opset import, as for any model without one.
    Loaded shallow = load_bytes(nested_model(30));
    EXPECT_EQ(shallow.status, CBINFER_STATUS_MODEL_MALFORMED);
    EXPECT_EQ(shallow.msg.find("nested more than"), std::string::npos) << shallow.msg;
}

TEST(Loader, MissingFileIsIoError)
{
    cbinfer_network_t *n = reinterpret_cast<cbinfer_network_t *>(0x1);
    char err[256] = "";
    std::string path = testing::TempDir() + "no/such/model.onnx";
    EXPECT_EQ(cbinfer_network_load(path.c_str(), &n, err, sizeof err),
              CBINFER_STATUS_MODEL_IO);
    EXPECT_EQ(n, nullptr);
    EXPECT_NE(std::string(err).find("model.onnx"), std::string::npos) << err;
    EXPECT_EQ(cbinfer_network_load(testing::TempDir().c_str(), &n, err, sizeof err),
              CBINFER_STATUS_MODEL_IO)
        << "a directory";
}

// Issue 11, class 9: a model file is read only up to a cap. A regular file
// over it is refused by its size before reading; a device that never ends
// (/dev/zero, which the loader used to read until memory ran out) is refused
// once it passes the cap.
TEST(Loader, FileSizeCapIsCheckedBeforeReading)
{
    Model m = one_conv();
    std::vector<uint8_t> b = m.bytes();
    std::string path = write_temp_file(b, "cbinfer_loader_cap.onnx");
    cbinfer_network_t *n = nullptr;
    char err[512] = "";
    ASSERT_EQ(cbinfer_network_load_limited(path.c_str(), b.size(), &n, err, sizeof err),
              CBINFER_STATUS_SUCCESS)
        << "a file of exactly the cap loads: " << err;
    cbinfer_network_free(n);
    n = reinterpret_cast<cbinfer_network_t *>(0x1);
    EXPECT_EQ(cbinfer_network_load_limited(path.c_str(), b.size() - 1, &n, err, sizeof err),
              CBINFER_STATUS_MODEL_IO);
    EXPECT_EQ(n, nullptr);
    EXPECT_NE(std::string(err).find("has " + std::to_string(b.size()) + " bytes, over the cap of " +
                                    std::to_string(b.size() - 1)),
              std::string::npos)
        << err;

    EXPECT_EQ(cbinfer_network_load_limited("/dev/zero", 1 << 20, &n, err, sizeof err),
              CBINFER_STATUS_MODEL_IO);
    EXPECT_NE(std::string(err).find("more than the cap of 1048576 bytes"), std::string::npos)
        << err;
    EXPECT_EQ(cbinfer_network_load_limited(path.c_str(), CBINFER_MODEL_MAX_BYTES + 1, &n, err,
                                           sizeof err),
              CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(std::string(err).find("CBINFER_MODEL_MAX_BYTES"), std::string::npos) << err;
    EXPECT_EQ(cbinfer_network_load_limited(nullptr, 100, &n, err, sizeof err),
              CBINFER_STATUS_NULL_ARGUMENT);
    std::remove(path.c_str());
}

TEST(Loader, NoGraphOrNoOpsetIsMalformed)
{
    Model m = one_conv();
    m.bytes();
    Onnx__ModelProto *p = m.proto();
    size_t n_opset = p->n_opset_import;
    p->n_opset_import = 0;
    std::vector<uint8_t> b(onnx__model_proto__get_packed_size(p));
    onnx__model_proto__pack(p, b.data());
    EXPECT_EQ(load_bytes(b).status, CBINFER_STATUS_MODEL_MALFORMED);
    p->n_opset_import = n_opset;
    p->graph = nullptr;
    b.resize(onnx__model_proto__get_packed_size(p));
    onnx__model_proto__pack(p, b.data());
    Loaded l = load_bytes(b);
    EXPECT_EQ(l.status, CBINFER_STATUS_MODEL_MALFORMED);
    EXPECT_NE(l.msg.find("graph"), std::string::npos) << l.msg;
}

TEST(Loader, UnsupportedOpNamesNodeAndOp)
{
    Model m;
    m.input("x", {1, 2, 4, 4});
    add_conv(m, "conv", "x", "c", 2, 2, 1, 1);
    m.node("Softmax", "sm1", {"c"}, {"y"});
    m.output("y");
    Loaded l = load(m);
    EXPECT_EQ(l.status, CBINFER_STATUS_MODEL_UNSUPPORTED_OP);
    EXPECT_NE(l.msg.find("sm1"), std::string::npos) << l.msg;
    EXPECT_NE(l.msg.find("Softmax"), std::string::npos) << l.msg;

    Model u;
    u.input("x", {1, 2, 4, 4});
    add_conv(u, "conv", "x", "c", 2, 2, 1, 1);
    u.node("Tanh", "", {"c"}, {"y"});
    u.output("y");
    Loaded lu = load(u);
    EXPECT_EQ(lu.status, CBINFER_STATUS_MODEL_UNSUPPORTED_OP);
    EXPECT_NE(lu.msg.find("Tanh_1"), std::string::npos) << lu.msg;

    Model d;
    d.input("x", {1, 2, 4, 4});
    Node &n = d.node("Relu", "r", {"x"}, {"y"});
    n.p->domain = const_cast<char *>("com.microsoft");
    d.output("y");
    EXPECT_EQ(load(d).status, CBINFER_STATUS_MODEL_UNSUPPORTED_OP);

    Model bn;
    bn.input("x", {1, 2, 4, 4});
    for (const char *p : {"g", "b", "m", "v"}) bn.init_f(p, {2}, {1, 1});
    bn.node("BatchNormalization", "lonely_bn", {"x", "g", "b", "m", "v"}, {"y"});
    bn.output("y");
    Loaded lb = load(bn);
    EXPECT_EQ(lb.status, CBINFER_STATUS_MODEL_UNSUPPORTED_OP);
    EXPECT_NE(lb.msg.find("lonely_bn"), std::string::npos) << lb.msg;
}

namespace {

// A model the loader must refuse with a given status and a message that
// names the failure (so that a removed check cannot pass through another).
struct RefusedCase {
    const char *what, *expect;
    void (*build)(Model &);
};

void expect_refused(const RefusedCase &c, cbinfer_status status, bool add_output)
{
    Model m;
    c.build(m);
    if (add_output) m.output("y");
    Loaded l = load(m);
    EXPECT_EQ(l.status, status) << c.what << ": " << l.msg;
    EXPECT_FALSE(l.msg.empty()) << c.what;
    EXPECT_NE(l.msg.find(c.expect), std::string::npos) << c.what << ": " << l.msg;
}

} // namespace

TEST(Loader, UnsupportedAttributes)
{
    const RefusedCase cases[] = {
        {"ConvTranspose group 2", "group = 2 is not supported (ConvTranspose: only 1)",
         [](Model &m) {
             m.input("x", {1, 4, 8, 8});
             m.init_f("w", {4, 2, 3, 3}, ramp(72));
             m.attr_i(m.node("ConvTranspose", "gconv", {"x", "w"}, {"y"}), "group", 2);
         }},
        {"group 0", "group = 0 is not supported",
         [](Model &m) {
             m.input("x", {1, 4, 8, 8});
             m.init_f("w", {4, 4, 3, 3}, ramp(144));
             m.attr_i(m.node("Conv", "gconv", {"x", "w"}, {"y"}), "group", 0);
         }},
        {"concat axis 2", "axis = 2 is not supported",
         [](Model &m) {
             m.input("x", {1, 4, 8, 8});
             m.attr_i(m.node("Concat", "cat", {"x", "x"}, {"y"}), "axis", 2);
         }},
        {"pad on channels", "only H and W may be padded",
         [](Model &m) {
             m.input("x", {1, 4, 8, 8});
             m.init_i64("p", {8}, {0, 1, 0, 0, 0, 0, 0, 0});
             m.node("Pad", "pad", {"x", "p"}, {"y"});
         }},
        {"negative pad", "negative pads",
         [](Model &m) {
             m.input("x", {1, 4, 8, 8});
             m.init_i64("p", {8}, {0, 0, -1, 0, 0, 0, 0, 0});
             m.node("Pad", "pad", {"x", "p"}, {"y"});
         }},
        {"pad wrap", "mode = 'wrap' is not supported",
         [](Model &m) {
             m.input("x", {1, 4, 8, 8});
             m.init_i64("p", {8}, {0, 0, 1, 0, 0, 0, 0, 0});
             m.attr_s(m.node("Pad", "pad", {"x", "p"}, {"y"}), "mode", "wrap");
         }},
        {"resize cubic", "mode = 'cubic' is not supported",
         [](Model &m) {
             m.input("x", {1, 4, 8, 8});
             m.init_f("s", {4}, {1, 1, 2, 2});
             m.attr_s(m.node("Resize", "rs", {"x", "", "s"}, {"y"}), "mode", "cubic");
         }},
        {"resize linear exclude_outside", "linear Resize with exclude_outside",
         [](Model &m) {
             m.input("x", {1, 4, 8, 8});
             m.init_f("s", {4}, {1, 1, 2, 2});
             Node &n = m.node("Resize", "rs", {"x", "", "s"}, {"y"});
             m.attr_s(n, "mode", "linear");
             m.attr_i(n, "exclude_outside", 1);
         }},
        {"resize channel scale", "N and C scales must be 1",
         [](Model &m) {
             m.input("x", {1, 4, 8, 8});
             m.init_f("s", {4}, {1, 2, 2, 2});
             m.node("Resize", "rs", {"x", "", "s"}, {"y"});
         }},
        {"conv transpose output_shape", "output_shape is not supported",
         [](Model &m) {
             m.input("x", {1, 2, 8, 8});
             m.init_f("w", {2, 2, 3, 3}, ramp(36));
             m.attr_ints(m.node("ConvTranspose", "ct", {"x", "w"}, {"y"}), "output_shape",
                         {16, 16});
         }},
        {"conv auto_pad bogus", "auto_pad = 'SAME' is not supported",
         [](Model &m) {
             m.input("x", {1, 2, 8, 8});
             m.init_f("w", {2, 2, 3, 3}, ramp(36));
             m.attr_s(m.node("Conv", "c", {"x", "w"}, {"y"}), "auto_pad", "SAME");
         }},
        {"add with initializer", "operand 'k' is an initializer",
         [](Model &m) {
             m.input("x", {1, 2, 8, 8});
             m.init_f("k", {1, 2, 1, 1}, {1, 2});
             m.node("Add", "add", {"x", "k"}, {"y"});
         }},
        {"int8 weights", "has data type int8",
         [](Model &m) {
             m.input("x", {1, 1, 8, 8});
             int8_t q = 3;
             m.init_raw("w", {1, 1, 1, 1}, ONNX__TENSOR_PROTO__DATA_TYPE__INT8, &q, 1);
             m.node("Conv", "c", {"x", "w"}, {"y"});
         }},
        {"1-D conv", "has 3 dims",
         [](Model &m) {
             m.input("x", {1, 1, 8, 8});
             m.init_f("w", {1, 1, 3}, {1, 2, 3});
             m.node("Conv", "c", {"x", "w"}, {"y"});
         }},
        {"spatial PRelu slope", "broadcasts along a non-channel axis",
         [](Model &m) {
             m.input("x", {1, 2, 8, 8});
             m.init_f("s", {2}, {0.1f, 0.2f});
             m.node("PRelu", "p", {"x", "s"}, {"y"});
         }},
    };
    for (const RefusedCase &c : cases) expect_refused(c, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR, true);
    Model g;
    g.input("x", {1, 4, 8, 8});
    g.init_f("w", {4, 2, 3, 3}, ramp(72));
    g.attr_i(g.node("ConvTranspose", "gconv", {"x", "w"}, {"y"}), "group", 2);
    g.output("y");
    Loaded lg = load(g);
    EXPECT_NE(lg.msg.find("gconv"), std::string::npos) << lg.msg;
    EXPECT_NE(lg.msg.find("group"), std::string::npos) << lg.msg;
}

// Issue 11, class 8: what ONNX forbids is refused, with the reason; where
// ONNX defines the result (Clip with min > max), that result is given.
TEST(Loader, SpecViolationsAreRefusedOrFollowTheSpec)
{
    const RefusedCase cases[] = {
        {"strides as FLOATS", "attribute 'strides' is FLOATS, INTS expected",
         [](Model &m) {
             m.input("x", {1, 1, 8, 8});
             m.init_f("w", {1, 1, 3, 3}, ramp(9));
             m.attr_floats(m.node("Conv", "c", {"x", "w"}, {"y"}), "strides", {2.f, 2.f});
         }},
        {"alpha as INT", "attribute 'alpha' is INT, FLOAT expected",
         [](Model &m) {
             m.input("x", {1, 1, 8, 8});
             m.attr_i(m.node("LeakyRelu", "lr", {"x"}, {"y"}), "alpha", 1);
         }},
        {"mode as INTS", "attribute 'mode' is INTS, STRING expected",
         [](Model &m) {
             m.input("x", {1, 4, 8, 8});
             m.attr_ints(m.node("DepthToSpace", "d", {"x"}, {"y"}), "mode", {1});
         }},
        {"MaxPool pads as large as the window", "must each be smaller than the window 2x2",
         [](Model &m) {
             m.input("x", {1, 1, 8, 8});
             Node &p = m.node("MaxPool", "mp", {"x"}, {"y"});
             m.attr_ints(p, "kernel_shape", {2, 2});
             m.attr_ints(p, "pads", {0, 0, 2, 0});
         }},
        {"AveragePool pads past the window", "must each be smaller than the window 3x3",
         [](Model &m) {
             m.input("x", {1, 1, 8, 8});
             Node &p = m.node("AveragePool", "ap", {"x"}, {"y"});
             m.attr_ints(p, "kernel_shape", {3, 3});
             m.attr_ints(p, "pads", {3, 0, 0, 0});
         }},
    };
    for (const RefusedCase &c : cases) expect_refused(c, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR, true);

    // A typed attribute without a value is its proto3 default, 0: ceil_mode
    // 0 and Clip min 0 (ReLU6) load.
    Model p3;
    p3.input("x", {1, 1, 8, 8});
    Node &mp = p3.node("MaxPool", "mp", {"x"}, {"p"});
    p3.attr_ints(mp, "kernel_shape", {2, 2});
    p3.attr_typed_empty(mp, "ceil_mode", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    Node &c6 = p3.node("Clip", "relu6", {"p"}, {"y"});
    p3.attr_typed_empty(c6, "min", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    p3.attr_f(c6, "max", 6.f);
    p3.output("y");
    Loaded l3 = load(p3);
    ASSERT_EQ(l3.status, CBINFER_STATUS_SUCCESS) << l3.msg;
    EXPECT_EQ(l3.ir().nodes[0].win.ceil_mode, 0);
    EXPECT_EQ(l3.ir().nodes[1].act.lo, 0.f);
    EXPECT_EQ(l3.ir().nodes[1].act.hi, 6.f);

    // The largest pads ONNX Runtime allows still load, and auto_pad ignores pads.
    Model ok;
    ok.input("x", {1, 1, 8, 8});
    Node &p = ok.node("MaxPool", "mp", {"x"}, {"q"});
    ok.attr_ints(p, "kernel_shape", {2, 2});
    ok.attr_ints(p, "pads", {1, 1, 1, 1});
    Node &pa = ok.node("MaxPool", "mp_same", {"q"}, {"y"});
    ok.attr_ints(pa, "kernel_shape", {2, 2});
    ok.attr_ints(pa, "pads", {5, 5, 5, 5});
    ok.attr_s(pa, "auto_pad", "SAME_UPPER");
    ok.output("y");
    EXPECT_EQ(load(ok).status, CBINFER_STATUS_SUCCESS) << load(ok).msg;

    // Clip with min > max gives max everywhere.
    Model clip;
    clip.input("x", {1, 1, 8, 8});
    Node &cl = clip.node("Clip", "clip", {"x"}, {"y"});
    clip.attr_f(cl, "min", 2.f);
    clip.attr_f(cl, "max", 1.f);
    clip.output("y");
    Loaded lc = load(clip);
    ASSERT_EQ(lc.status, CBINFER_STATUS_SUCCESS) << lc.msg;
    StreamPtr s = make_stream(lc.net.get(), 8, 8, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
    ASSERT_TRUE(s);
    std::vector<float> x(64);
    for (size_t i = 0; i < x.size(); ++i) x[i] = -3.f + 0.1f * (float)i;
    ASSERT_EQ(cbinfer_stream_push_nchw(s.get(), x.data(), 1, 8, 8), CBINFER_STATUS_SUCCESS);
    for (float v : output_of(s.get())) ASSERT_EQ(v, 1.f);
}

TEST(Loader, WeightSizeMismatches)
{
    const RefusedCase cases[] = {
        {"weight Cin 3 for a 2-channel input", "expects 3 input channels but input 'x' has 2",
         [](Model &m) {
             m.init_f("w", {4, 3, 3, 3}, ramp(108));
             m.node("Conv", "c", {"x", "w"}, {"y"});
         }},
        {"group 2 of a 2-channel input, weight Cin/G 2", "(group 2) expects 4 input channels",
         [](Model &m) {
             m.init_f("w", {4, 2, 3, 3}, ramp(72));
             m.attr_i(m.node("Conv", "c", {"x", "w"}, {"y"}), "group", 2);
         }},
        {"3 outputs in 2 groups", "3 output channels do not split into 2 groups",
         [](Model &m) {
             m.init_f("w", {3, 1, 3, 3}, ramp(27));
             m.attr_i(m.node("Conv", "c", {"x", "w"}, {"y"}), "group", 2);
         }},
        {"weight data shorter than its dims", "holds 70 values but its dims need 72",
         [](Model &m) {
             m.init_f("w", {4, 2, 3, 3}, ramp(70));
             m.node("Conv", "c", {"x", "w"}, {"y"});
         }},
        {"raw weight data longer than its dims", "holds 9 values but its dims need 8",
         [](Model &m) {
             m.init_raw_f("w", {4, 2, 1, 1}, ramp(9));
             m.node("Conv", "c", {"x", "w"}, {"y"});
         }},
        {"bias of 3 for 4 outputs", "bias 'b' has 3 values for 4 output channels",
         [](Model &m) {
             m.init_f("w", {4, 2, 1, 1}, ramp(8));
             m.init_f("b", {3}, ramp(3));
             m.node("Conv", "c", {"x", "w", "b"}, {"y"});
         }},
        {"kernel_shape disagrees", "kernel_shape 3x3 disagrees with weight 'w' (1x1)",
         [](Model &m) {
             m.init_f("w", {4, 2, 1, 1}, ramp(8));
             m.attr_ints(m.node("Conv", "c", {"x", "w"}, {"y"}), "kernel_shape", {3, 3});
         }},
        {"BN mean of 3 for 4 channels", "mean 'm' has 3 values for 4 channels",
         [](Model &m) {
             m.init_f("w", {4, 2, 1, 1}, ramp(8));
             m.node("Conv", "c", {"x", "w"}, {"t"});
             m.init_f("g", {4}, {1, 1, 1, 1});
             m.init_f("b", {4}, {0, 0, 0, 0});
             m.init_f("m", {3}, {0, 0, 0});
             m.init_f("v", {4}, {1, 1, 1, 1});
             m.node("BatchNormalization", "bn", {"t", "g", "b", "m", "v"}, {"y"});
         }},
        {"PRelu slope of 3 for 2 channels", "slope 's' has 3 values; 1 or 2",
         [](Model &m) {
             m.init_f("s", {3, 1, 1}, {0.1f, 0.2f, 0.3f});
             m.node("PRelu", "p", {"x", "s"}, {"y"});
         }},
    };
    for (const RefusedCase &c : cases) {
        Model m;
        m.input("x", {1, 2, 8, 8});
        c.build(m);
        m.output("y");
        Loaded l = load(m);
        EXPECT_EQ(l.status, CBINFER_STATUS_MODEL_WEIGHT_MISMATCH) << c.what << ": " << l.msg;
        EXPECT_NE(l.msg.find(c.expect), std::string::npos) << c.what << ": " << l.msg;
    }

    Model m;
    m.input("x", {1, 2, 8, 8});
    m.init(m.tensor("w", {4, 2, 1, 1}, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT));
    m.node("Conv", "c", {"x", "w"}, {"y"});
    m.output("y");
    Loaded l = load(m);
    EXPECT_EQ(l.status, CBINFER_STATUS_MODEL_MALFORMED) << "no data: " << l.msg;
}

TEST(Loader, InvalidGraphs)
{
    const RefusedCase cases[] = {
        {"dangling input", "node 'add' (Add): input 'nowhere' is not produced by any node",
         [](Model &m) {
             m.input("x", {1, 2, 8, 8});
             m.node("Add", "add", {"x", "nowhere"}, {"y"});
             m.output("y");
         }},
        {"two graph inputs", "more than one input ('x', 'x2')",
         [](Model &m) {
             m.input("x", {1, 2, 8, 8});
             m.input("x2", {1, 2, 8, 8});
             m.node("Add", "add", {"x", "x2"}, {"y"});
             m.output("y");
         }},
        {"the input as an output", "graph output 'x' is not computed by any node",
         [](Model &m) {
             m.input("x", {1, 2, 8, 8});
             m.node("Relu", "r", {"x"}, {"y"});
             m.output("y");
             m.output("x");
         }},
        {"one output twice", "graph output 'y' is listed twice",
         [](Model &m) {
             m.input("x", {1, 2, 8, 8});
             m.node("Relu", "r", {"x"}, {"y"});
             m.output("y");
             m.output("y");
         }},
        {"batch of 2", "has batch size 2",
         [](Model &m) {
             m.input("x", {2, 2, 8, 8});
             m.node("Relu", "r", {"x"}, {"y"});
             m.output("y");
         }},
        {"symbolic channels", "symbolic channel count",
         [](Model &m) {
             m.input("x", {1, kSym, 8, 8});
             m.node("Relu", "r", {"x"}, {"y"});
             m.output("y");
         }},
        {"3-D input", "has 3 dims; NCHW expected",
         [](Model &m) {
             m.input("x", {1, 2, 8});
             m.node("Relu", "r", {"x"}, {"y"});
             m.output("y");
         }},
        {"cycle", "node 'a1' (Add): the graph has a cycle through this node",
         [](Model &m) {
             m.input("x", {1, 2, 8, 8});
             m.node("Add", "a1", {"x", "b"}, {"a"});
             m.node("Relu", "r1", {"a"}, {"b"});
             m.node("Relu", "r2", {"a"}, {"y"});
             m.output("y");
         }},
        {"output not computed", "graph output 'y' is not computed by any node",
         [](Model &m) {
             m.input("x", {1, 2, 8, 8});
             m.node("Relu", "r", {"x"}, {"z"});
             m.output("y");
         }},
        {"output is the input", "is the graph input; there is nothing to compute",
         [](Model &m) {
             m.input("x", {1, 2, 8, 8});
             m.node("Identity", "i", {"x"}, {"y"});
             m.output("y");
         }},
        {"tensor produced twice", "node 'r2' (Relu): output 'y' is produced by another node too",
         [](Model &m) {
             m.input("x", {1, 2, 8, 8});
             m.node("Relu", "r1", {"x"}, {"y"});
             m.node("Relu", "r2", {"x"}, {"y"});
             m.output("y");
         }},
        {"add of different channel counts", "node 'add' (Add): inputs have 2 and 3 channels",
         [](Model &m) {
             m.input("x", {1, 2, 8, 8});
             m.init_f("w", {3, 2, 1, 1}, ramp(6));
             m.node("Conv", "c", {"x", "w"}, {"c3"});
             m.node("Add", "add", {"x", "c3"}, {"y"});
             m.output("y");
         }},
        {"fixed input too small for the network", "cannot run at its own input size: node 'c' (Conv)",
         [](Model &m) {
             m.input("x", {1, 2, 2, 2});
             m.init_f("w", {3, 2, 3, 3}, ramp(54));
             m.node("Conv", "c", {"x", "w"}, {"y"});
             m.output("y");
         }},
    };
    // Each message names its failure (issue 11, class 10).
    for (const RefusedCase &c : cases) expect_refused(c, CBINFER_STATUS_MODEL_INVALID_GRAPH, false);
    Model m;
    m.input("x", {1, 2, 8, 8});
    m.node("Add", "add", {"x", "nowhere"}, {"y"});
    m.output("y");
    Loaded l = load(m);
    EXPECT_NE(l.msg.find("nowhere"), std::string::npos) << l.msg;
    EXPECT_NE(l.msg.find("add"), std::string::npos) << l.msg;
}

TEST(Loader, NullArguments)
{
    Model m = one_conv();
    std::vector<uint8_t> b = m.bytes();
    cbinfer_network_t *n = reinterpret_cast<cbinfer_network_t *>(0x1);
    char err[128];
    EXPECT_EQ(cbinfer_network_load(nullptr, &n, err, sizeof err), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(n, nullptr);
    EXPECT_EQ(cbinfer_network_load("x.onnx", nullptr, err, sizeof err),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_network_load_memory(nullptr, 10, &n, err, sizeof err),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_network_load_memory(b.data(), b.size(), nullptr, nullptr, 0),
              CBINFER_STATUS_NULL_ARGUMENT);
    // No error buffer, or a tiny one, is fine.
    ASSERT_EQ(cbinfer_network_load_memory(b.data(), b.size(), &n, nullptr, 0),
              CBINFER_STATUS_SUCCESS);
    cbinfer_network_free(n);
    char tiny[4] = "abc";
    EXPECT_EQ(cbinfer_network_load_memory(b.data(), 3, &n, tiny, sizeof tiny),
              CBINFER_STATUS_MODEL_MALFORMED);
    EXPECT_EQ(std::strlen(tiny), 3u);

    int c;
    float s;
    EXPECT_EQ(cbinfer_network_input_dims(nullptr, &c, &c, &c), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_network_input_scaling(nullptr, &s, &s), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_network_conv_count(nullptr), 0);
    EXPECT_EQ(cbinfer_network_conv_name(nullptr, 0), nullptr);
    cbinfer_network_free(nullptr);
}

// ---------------------------------------------------------------------------
// cbi_net_plan
// ---------------------------------------------------------------------------

namespace {

// x [1,1,H,W] -> one windowed op configured by `setup` -> y.
Loaded window_net(const char *op, int k, void (*setup)(Model &, Node &))
{
    Model m;
    m.input("x", {1, 1, kSym, kSym});
    std::vector<std::string> in{"x"};
    if (std::strcmp(op, "Conv") == 0) {
        m.init_f("w", {1, 1, k, k}, ramp(static_cast<size_t>(k) * k));
        in.push_back("w");
    }
    Node &n = m.node(op, "op", in, {"y"});
    if (std::strcmp(op, "Conv") != 0) m.attr_ints(n, "kernel_shape", {k, k});
    setup(m, n);
    m.output("y");
    return load(m);
}

}  // namespace

TEST(Loader, PlanConvStridePadDilation)
{
    Loaded l = window_net("Conv", 3, [](Model &m, Node &n) {
        m.attr_ints(n, "strides", {2, 2});
        m.attr_ints(n, "pads", {1, 0, 1, 0});
    });
    ASSERT_EQ(l.status, CBINFER_STATUS_SUCCESS) << l.msg;
    Planned p = plan(l, 9, 7);
    ASSERT_EQ(p.status, CBINFER_STATUS_SUCCESS) << p.msg;
    EXPECT_EQ(p.shapes[l.ir().outputs[0]].h, 5);  // (9 + 2 - 3) / 2 + 1
    EXPECT_EQ(p.shapes[l.ir().outputs[0]].w, 3);  // (7 - 3) / 2 + 1
    EXPECT_EQ(p.plans[0].in.h, 9);
    EXPECT_EQ(p.plans[0].pad_t, 1);
    EXPECT_EQ(p.plans[0].pad_l, 0);

    Loaded d = window_net("Conv", 3,
                          [](Model &m, Node &n) { m.attr_ints(n, "dilations", {2, 3}); });
    ASSERT_EQ(d.status, CBINFER_STATUS_SUCCESS) << d.msg;
    p = plan(d, 10, 10);
    ASSERT_EQ(p.status, CBINFER_STATUS_SUCCESS) << p.msg;
    EXPECT_EQ(p.shapes[d.ir().outputs[0]].h, 6);  // 10 - (2 * 2 + 1) + 1
    EXPECT_EQ(p.shapes[d.ir().outputs[0]].w, 4);  // 10 - (2 * 3 + 1) + 1
    p = plan(d, 5, 7);
    ASSERT_EQ(p.status, CBINFER_STATUS_SUCCESS) << "a 5x7 frame fits the dilated 5x7 kernel";
    EXPECT_EQ(p.shapes[d.ir().outputs[0]].h, 1);
    EXPECT_EQ(p.shapes[d.ir().outputs[0]].w, 1);
    p = plan(d, 5, 6);
    EXPECT_EQ(p.status, CBINFER_STATUS_BAD_FRAME_SIZE);
    EXPECT_NE(p.msg.find("'op'"), std::string::npos) << p.msg;
}

TEST(Loader, PlanAutoPad)
{
    struct Case {
        const char *mode;
        int in, k, s;
        int out, pad_begin, pad_end;
    };
    const Case cases[] = {
        {"SAME_UPPER", 8, 3, 2, 4, 0, 1}, {"SAME_LOWER", 8, 3, 2, 4, 1, 0},
        {"SAME_UPPER", 7, 3, 2, 4, 1, 1}, {"SAME_UPPER", 5, 4, 1, 5, 1, 2},
        {"SAME_LOWER", 5, 4, 1, 5, 2, 1}, {"SAME_UPPER", 5, 1, 3, 2, 0, 0},
        {"VALID", 5, 3, 1, 3, 0, 0},      {"VALID", 8, 3, 2, 3, 0, 0},
    };
    for (const Case &c : cases) {
        Model m;
        m.input("x", {1, 1, kSym, kSym});
        m.init_f("w", {1, 1, c.k, c.k}, ramp(static_cast<size_t>(c.k) * c.k));
        Node &n = m.node("Conv", "c", {"x", "w"}, {"y"});
        m.attr_s(n, "auto_pad", c.mode);
        m.attr_ints(n, "strides", {c.s, c.s});
        m.attr_ints(n, "pads", {9, 9, 9, 9});  // ignored under auto_pad
        m.output("y");
        Loaded l = load(m);
        ASSERT_EQ(l.status, CBINFER_STATUS_SUCCESS) << l.msg;
        Planned p = plan(l, c.in, c.in);
        ASSERT_EQ(p.status, CBINFER_STATUS_SUCCESS) << p.msg;
        std::string what = std::string(c.mode) + " in " + std::to_string(c.in) + " k " +
                           std::to_string(c.k) + " s " + std::to_string(c.s);
        EXPECT_EQ(p.shapes[l.ir().outputs[0]].h, c.out) << what;
        EXPECT_EQ(p.plans[0].pad_t, c.pad_begin) << what;
        EXPECT_EQ(p.plans[0].pad_b, c.pad_end) << what;
        EXPECT_EQ(p.plans[0].pad_l, c.pad_begin) << what;
        EXPECT_EQ(p.plans[0].pad_r, c.pad_end) << what;
    }
}

TEST(Loader, PlanPoolCeilMode)
{
    Loaded floor2 = window_net("MaxPool", 2,
                               [](Model &m, Node &n) { m.attr_ints(n, "strides", {2, 2}); });
    ASSERT_EQ(floor2.status, CBINFER_STATUS_SUCCESS) << floor2.msg;
    Planned p = plan(floor2, 5, 4);
    ASSERT_EQ(p.status, CBINFER_STATUS_SUCCESS) << p.msg;
    EXPECT_EQ(p.shapes[floor2.ir().outputs[0]].h, 2);
    EXPECT_EQ(p.shapes[floor2.ir().outputs[0]].w, 2);

    Loaded ceil2 = window_net("MaxPool", 2, [](Model &m, Node &n) {
        m.attr_ints(n, "strides", {2, 2});
        m.attr_i(n, "ceil_mode", 1);
    });
    ASSERT_EQ(ceil2.status, CBINFER_STATUS_SUCCESS) << ceil2.msg;
    EXPECT_EQ(ceil2.ir().nodes[0].win.ceil_mode, 1);
    p = plan(ceil2, 5, 4);
    ASSERT_EQ(p.status, CBINFER_STATUS_SUCCESS) << p.msg;
    EXPECT_EQ(p.shapes[ceil2.ir().outputs[0]].h, 3);
    EXPECT_EQ(p.shapes[ceil2.ir().outputs[0]].w, 2);

    // A last window that would start in the end padding is dropped
    // (PyTorch MaxPool2d(2, 2, padding=1, ceil_mode=True) on 5 gives 3).
    Loaded pad = window_net("MaxPool", 2, [](Model &m, Node &n) {
        m.attr_ints(n, "strides", {2, 2});
        m.attr_ints(n, "pads", {1, 1, 1, 1});
        m.attr_i(n, "ceil_mode", 1);
    });
    ASSERT_EQ(pad.status, CBINFER_STATUS_SUCCESS) << pad.msg;
    p = plan(pad, 5, 6);
    ASSERT_EQ(p.status, CBINFER_STATUS_SUCCESS) << p.msg;
    EXPECT_EQ(p.shapes[pad.ir().outputs[0]].h, 3);
    EXPECT_EQ(p.shapes[pad.ir().outputs[0]].w, 4);

    Loaded avg = window_net("AveragePool", 3, [](Model &m, Node &n) {
        m.attr_ints(n, "pads", {1, 1, 1, 1});
        m.attr_i(n, "count_include_pad", 1);
    });
    ASSERT_EQ(avg.status, CBINFER_STATUS_SUCCESS) << avg.msg;
    EXPECT_EQ(avg.ir().nodes[0].op, CBI_OP_AVGPOOL);
    EXPECT_EQ(avg.ir().nodes[0].win.count_include_pad, 1);
    p = plan(avg, 4, 4);
    ASSERT_EQ(p.status, CBINFER_STATUS_SUCCESS) << p.msg;
    EXPECT_EQ(p.shapes[avg.ir().outputs[0]].h, 4);

    Loaded dil = window_net("MaxPool", 2,
                            [](Model &m, Node &n) { m.attr_ints(n, "dilations", {2, 2}); });
    ASSERT_EQ(dil.status, CBINFER_STATUS_SUCCESS) << dil.msg;
    p = plan(dil, 4, 4);
    ASSERT_EQ(p.status, CBINFER_STATUS_SUCCESS) << p.msg;
    EXPECT_EQ(p.shapes[dil.ir().outputs[0]].h, 2);
}

// Issue 11, class 1: a graph that grows a tensor (here a 30000x nearest
// Resize) must not wrap C*H*W into a small allocation. Planning refuses every
// tensor past the kernels' index range, naming the node, before a stream
// allocates anything; so does a frame too large for the input itself.
TEST(Loader, PlanRefusesTensorsPastTheIndexRange)
{
    Model m(13);
    m.input("x", {1, 3, kSym, kSym});
    m.init_f("scales", {4}, {1, 1, 30000, 30000});
    Node &rs = m.node("Resize", "grow", {"x", "", "scales"}, {"r"});
    m.attr_s(rs, "mode", "nearest");
    add_conv(m, "conv", "r", "y", 3, 3, 1, 1);
    m.output("y");
    Loaded l = load(m);
    ASSERT_EQ(l.status, CBINFER_STATUS_SUCCESS) << l.msg;
    Planned big = plan(l, 1, 1); // 3 x 30000 x 30000 = 2.7e9 > 2^31 - 1 already
    EXPECT_EQ(big.status, CBINFER_STATUS_BAD_FRAME_SIZE);
    EXPECT_NE(big.msg.find("node 'grow' (Resize) output"), std::string::npos) << big.msg;
    EXPECT_NE(big.msg.find("3x30000x30000"), std::string::npos) << big.msg;
    cbinfer_stream_t *s = nullptr;
    char err[512] = "";
    EXPECT_EQ(cbinfer_stream_create(l.net.get(), 8, 8, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER,
                                    CBINFER_PRECISION_FP32, &s, err, sizeof err),
              CBINFER_STATUS_BAD_FRAME_SIZE);
    EXPECT_EQ(s, nullptr);
    EXPECT_NE(std::string(err).find("grow"), std::string::npos) << err;

    Model c = one_conv(3, kSym, kSym);
    Loaded lc = load(c);
    ASSERT_EQ(lc.status, CBINFER_STATUS_SUCCESS) << lc.msg;
    EXPECT_EQ(plan(lc, 480, 640).status, CBINFER_STATUS_SUCCESS);
    Planned huge = plan(lc, 30000, 30000);
    EXPECT_EQ(huge.status, CBINFER_STATUS_BAD_FRAME_SIZE);
    EXPECT_NE(huge.msg.find("the network input: CxHxW 3x30000x30000"), std::string::npos)
        << huge.msg;
}

TEST(Loader, PlanRejectsBadFrameSizes)
{
    Model m;
    m.input("x", {1, 2, kSym, kSym});
    add_conv(m, "conv_a", "x", "a", 2, 2, 3, 3);
    add_conv(m, "conv_b", "a", "y", 2, 2, 3, 3);
    m.output("y");
    Loaded l = load(m);
    ASSERT_EQ(l.status, CBINFER_STATUS_SUCCESS) << l.msg;
    Planned ok = plan(l, 5, 6);
    ASSERT_EQ(ok.status, CBINFER_STATUS_SUCCESS) << ok.msg;
    EXPECT_EQ(ok.shapes[l.ir().outputs[0]].h, 1);
    EXPECT_EQ(ok.shapes[l.ir().outputs[0]].w, 2);
    Planned small = plan(l, 4, 6);
    EXPECT_EQ(small.status, CBINFER_STATUS_BAD_FRAME_SIZE);
    EXPECT_NE(small.msg.find("conv_b"), std::string::npos) << small.msg;
    Planned tiny = plan(l, 2, 6);
    EXPECT_EQ(tiny.status, CBINFER_STATUS_BAD_FRAME_SIZE);
    EXPECT_NE(tiny.msg.find("conv_a"), std::string::npos) << tiny.msg;
    EXPECT_EQ(plan(l, 0, 6).status, CBINFER_STATUS_BAD_FRAME_SIZE);
    EXPECT_EQ(plan(l, 6, -1).status, CBINFER_STATUS_BAD_FRAME_SIZE);

    Model f = one_conv(2, 6, 5);
    Loaded lf = load(f);
    ASSERT_EQ(lf.status, CBINFER_STATUS_SUCCESS) << lf.msg;
    EXPECT_EQ(plan(lf, 6, 5).status, CBINFER_STATUS_SUCCESS);
    for (const auto &hw : {std::pair<int, int>{5, 6}, std::pair<int, int>{12, 10}}) {
        Planned fixed = plan(lf, hw.first, hw.second);
        EXPECT_EQ(fixed.status, CBINFER_STATUS_BAD_FRAME_SIZE) << "fixed size";
        EXPECT_NE(fixed.msg.find("the network input is fixed at 5x6 (WxH)"), std::string::npos)
            << fixed.msg;
    }

    // Two branches that agree only at some sizes: a stride-2 conv padded
    // to keep ceil(in / 2) against a 2x2 pool keeping floor(in / 2).
    Model a;
    a.input("x", {1, 1, kSym, kSym});
    Node *c;
    add_conv(a, "down", "x", "d", 1, 1, 3, 3, true, &c);
    a.attr_ints(*c, "strides", {2, 2});
    a.attr_ints(*c, "pads", {1, 1, 1, 1});
    Node &pool = a.node("MaxPool", "pool", {"x"}, {"p"});
    a.attr_ints(pool, "kernel_shape", {2, 2});
    a.attr_ints(pool, "strides", {2, 2});
    a.node("Add", "sum", {"d", "p"}, {"y"});
    a.output("y");
    Loaded la = load(a);
    ASSERT_EQ(la.status, CBINFER_STATUS_SUCCESS) << la.msg;
    EXPECT_EQ(plan(la, 8, 8).status, CBINFER_STATUS_SUCCESS);
    Planned odd = plan(la, 9, 8);
    EXPECT_EQ(odd.status, CBINFER_STATUS_BAD_FRAME_SIZE);
    EXPECT_NE(odd.msg.find("sum"), std::string::npos) << odd.msg;

    std::vector<cbi_shape> shapes(l.ir().n_values);
    std::vector<cbi_node_plan> plans(l.ir().n_nodes);
    EXPECT_EQ(cbi_net_plan(nullptr, 5, 5, shapes.data(), plans.data(), nullptr, 0),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbi_net_plan(&l.ir(), 5, 5, nullptr, plans.data(), nullptr, 0),
              CBINFER_STATUS_NULL_ARGUMENT);
}

// ---------------------------------------------------------------------------
// A converted model from tools/convert_models.py
// ---------------------------------------------------------------------------

TEST(Loader, Vgg7HasSevenConvs)
{
    std::string path = cbi_test_model("vgg7-noise1");
    if (!std::ifstream(path).good()) GTEST_SKIP() << path << " not built yet";
    cbinfer_network_t *n = nullptr;
    char err[512] = "";
    ASSERT_EQ(cbinfer_network_load(path.c_str(), &n, err, sizeof err), CBINFER_STATUS_SUCCESS)
        << err;
    EXPECT_EQ(cbinfer_network_conv_count(n), 7);
    int c = 0;
    EXPECT_EQ(cbinfer_network_input_dims(n, &c, nullptr, nullptr), CBINFER_STATUS_SUCCESS);
    EXPECT_GT(c, 0);
    for (int i = 0; i < cbinfer_network_conv_count(n); ++i)
        EXPECT_NE(cbinfer_network_conv_name(n, i), nullptr);
    cbinfer_network_free(n);
}

// Issue 11, class 6: loading kept a table of every pair of convs (50,000
// convs took 50 s and 1.6 GB); conv_reaches now walks the graph on demand.
// Outside the Loader suite, which runs again under valgrind.
TEST(LoaderScale, ChainOf50000ConvsLoads)
{
    const int n = 50000;
    Model m;
    m.input("x", {1, 1, kSym, kSym});
    m.init_f("w", {1, 1, 1, 1}, {0.5f});
    std::string prev = "x";
    for (int i = 0; i < n; ++i) {
        const std::string out = i + 1 == n ? "y" : "v" + std::to_string(i);
        m.node("Conv", "c" + std::to_string(i), {prev, "w"}, {out});
        prev = out;
    }
    m.output("y");
    Loaded l = load(m);
    ASSERT_EQ(l.status, CBINFER_STATUS_SUCCESS) << l.msg;
    ASSERT_EQ(cbinfer_network_conv_count(l.net.get()), n);
    EXPECT_EQ(cbinfer_network_conv_reaches(l.net.get(), n - 1, 0), 1);
    EXPECT_EQ(cbinfer_network_conv_reaches(l.net.get(), 0, n - 1), 0);
    EXPECT_EQ(cbinfer_network_conv_reaches(l.net.get(), n / 2, n / 2 - 1), 1);
}

// BatchNormalization after a grouped Conv folds over the Cin/group weights of
// each output row (it once scaled Cin of them: past the buffer).
TEST(Loader, BatchNormFoldsIntoAGroupedConv)
{
    Model m;
    m.input("x", {1, 4, 5, 5});
    m.init_f("w", {4, 1, 3, 3}, ramp(36));
    Node &c = m.node("Conv", "dw", {"x", "w"}, {"c"});
    m.attr_i(c, "group", 4);
    m.init_f("g", {4}, {0.5f, 2.f, -1.f, 3.f});
    m.init_f("beta", {4}, {0.f, 0.f, 0.f, 0.f});
    m.init_f("mean", {4}, {0.f, 0.f, 0.f, 0.f});
    m.init_f("var", {4}, {1.f, 1.f, 1.f, 1.f});
    Node &bn = m.node("BatchNormalization", "bn", {"c", "g", "beta", "mean", "var"}, {"y"});
    m.attr_f(bn, "epsilon", 0.f);
    m.output("y");
    Loaded l = load(m);
    ASSERT_EQ(l.status, CBINFER_STATUS_SUCCESS) << l.msg;
    const cbi_node &nd = l.ir().nodes[0];
    ASSERT_EQ(nd.group, 4);
    const std::vector<float> w = ramp(36), s = {0.5f, 2.f, -1.f, 3.f};
    for (int o = 0; o < 4; ++o)
        for (int t = 0; t < 9; ++t) EXPECT_FLOAT_EQ(nd.weight[o * 9 + t], w[o * 9 + t] * s[o]);
}
