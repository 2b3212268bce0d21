#include "onnx_node_tests.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <vector>

#include "onnx.pb-c.h"
#include "test_util.h"

std::string cbi_test_onnx_testdata_dir()
{
    const char *env = std::getenv("CBINFER_ONNX_TESTDATA");
    return env && *env ? env : CBINFER_TEST_ONNX_TESTDATA;
}

const std::vector<const char *> &cbi_test_onnx_node_cases()
{
    static const std::vector<const char *> cases = {
        "node/test_resize_upsample_scales_linear",
        "node/test_resize_upsample_scales_linear_align_corners",
        "node/test_resize_downsample_scales_linear",
        "node/test_resize_downsample_scales_linear_align_corners",
        "node/test_resize_downsample_sizes_linear_pytorch_half_pixel",
        // nearest: the coordinate modes it shares with linear
        "node/test_resize_upsample_scales_nearest",
        "node/test_resize_downsample_scales_nearest",
        "node/test_resize_upsample_sizes_nearest",
        "node/test_resize_downsample_sizes_nearest",
        "node/test_resize_upsample_sizes_nearest_ceil_half_pixel",
        "node/test_resize_upsample_sizes_nearest_floor_align_corners",
        "node/test_resize_upsample_sizes_nearest_round_prefer_ceil_asymmetric",
        "node/test_resize_downsample_sizes_nearest_tf_half_pixel_for_nn",
        "pytorch-converted/test_Conv2d_groups",
        "pytorch-converted/test_Conv2d_groups_thnn",
        "pytorch-converted/test_Conv2d_depthwise",
        "pytorch-converted/test_Conv2d_depthwise_padded",
        "pytorch-converted/test_Conv2d_depthwise_strided",
        "pytorch-converted/test_Conv2d_depthwise_with_multiplier",
        "node/test_sigmoid",
        "node/test_sigmoid_example",
    };
    return cases;
}

std::string cbi_test_onnx_node_case_name(const ::testing::TestParamInfo<const char *> &info)
{
    std::string n = info.param;
    n = n.substr(n.rfind("/test_") + 6);
    for (char &ch : n)
        if (!std::isalnum((unsigned char)ch)) ch = '_';
    return n;
}

namespace {

std::vector<uint8_t> read_bytes(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

struct TensorDeleter {
    void operator()(Onnx__TensorProto *t) const { onnx__tensor_proto__free_unpacked(t, nullptr); }
};
using TensorPtr = std::unique_ptr<Onnx__TensorProto, TensorDeleter>;

TensorPtr read_tensor(const std::string &path)
{
    const std::vector<uint8_t> b = read_bytes(path);
    if (b.empty()) return nullptr;
    return TensorPtr(onnx__tensor_proto__unpack(nullptr, b.size(), b.data()));
}

// A float tensor's values (float_data or little-endian raw_data).
std::vector<float> floats_of(const Onnx__TensorProto *t)
{
    if (t->n_float_data) return std::vector<float>(t->float_data, t->float_data + t->n_float_data);
    std::vector<float> v(t->raw_data.len / sizeof(float));
    if (!v.empty()) std::memcpy(v.data(), t->raw_data.data, v.size() * sizeof(float));
    return v;
}

std::vector<int64_t> dims_of(const Onnx__TensorProto *t)
{
    return std::vector<int64_t>(t->dims, t->dims + t->n_dims);
}

int64_t numel(const std::vector<int64_t> &d)
{
    int64_t n = 1;
    for (int64_t v : d) n *= v;
    return n;
}

}  // namespace

void cbi_test_run_onnx_node_case(const std::string &rel, cbinfer_backend backend, float tol)
{
    SCOPED_TRACE(rel);
    const std::string dir = cbi_test_onnx_testdata_dir() + "/" + rel;
    const std::vector<uint8_t> bytes = read_bytes(dir + "/model.onnx");
    ASSERT_FALSE(bytes.empty()) << "cannot read " << dir
                                << "/model.onnx (Debian: apt-get install libonnx-testdata, or "
                                   "set CBINFER_ONNX_TESTDATA)";
    Onnx__ModelProto *m = onnx__model_proto__unpack(nullptr, bytes.size(), bytes.data());
    ASSERT_NE(m, nullptr);
    Onnx__GraphProto *g = m->graph;
    std::set<std::string> inits;
    for (size_t i = 0; i < g->n_initializer; ++i) inits.insert(g->initializer[i]->name);

    // The data inputs in graph order: the first is the tensor pushed, the
    // rest become initializers.
    std::vector<Onnx__ValueInfoProto *> data_in, kept_in;
    for (size_t i = 0; i < g->n_input; ++i)
        (inits.count(g->input[i]->name) ? kept_in : data_in).push_back(g->input[i]);
    ASSERT_GE(data_in.size(), 1u);
    std::vector<TensorPtr> consts;
    std::vector<char *> const_names; // their own names, given back before they are freed
    std::vector<Onnx__TensorProto *> new_inits(g->initializer, g->initializer + g->n_initializer);
    for (size_t k = 1; k < data_in.size(); ++k) {
        consts.push_back(read_tensor(dir + "/test_data_set_0/input_" + std::to_string(k) + ".pb"));
        ASSERT_NE(consts.back(), nullptr) << "input_" << k;
        const_names.push_back(consts.back()->name);
        consts.back()->name = data_in[k]->name;
        new_inits.push_back(consts.back().get());
    }
    TensorPtr x = read_tensor(dir + "/test_data_set_0/input_0.pb");
    ASSERT_NE(x, nullptr);
    std::vector<int64_t> xd = dims_of(x.get());
    ASSERT_LE(xd.size(), 4u);
    while (xd.size() < 4) xd.insert(xd.begin(), 1);
    const int64_t batch = xd[0], c = xd[1], h = xd[2], w = xd[3];

    // The first input as [1, C, H, W].
    Onnx__TypeProto__Tensor *tt = data_in[0]->type->tensor_type;
    Onnx__TensorShapeProto *shape = tt->shape;
    Onnx__TensorShapeProto__Dimension dim_store[4];
    Onnx__TensorShapeProto__Dimension *dim_ptrs[4];
    const int64_t want[4] = {1, c, h, w};
    for (int i = 0; i < 4; ++i) {
        onnx__tensor_shape_proto__dimension__init(&dim_store[i]);
        dim_store[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        dim_store[i].dim_value = want[i];
        dim_ptrs[i] = &dim_store[i];
    }
    Onnx__TensorShapeProto__Dimension **old_dims = shape->dim;
    const size_t old_n_dims = shape->n_dim;
    shape->dim = dim_ptrs;
    shape->n_dim = 4;
    Onnx__TensorProto **old_inits = g->initializer;
    const size_t old_n_inits = g->n_initializer;
    g->initializer = new_inits.data();
    g->n_initializer = new_inits.size();
    Onnx__ValueInfoProto **old_inputs = g->input;
    const size_t old_n_inputs = g->n_input;
    std::vector<Onnx__ValueInfoProto *> inputs = {data_in[0]};
    inputs.insert(inputs.end(), kept_in.begin(), kept_in.end());
    g->input = inputs.data();
    g->n_input = inputs.size();
    std::vector<uint8_t> packed(onnx__model_proto__get_packed_size(m));
    onnx__model_proto__pack(m, packed.data());
    shape->dim = old_dims;
    shape->n_dim = old_n_dims;
    g->initializer = old_inits;
    g->n_initializer = old_n_inits;
    g->input = old_inputs;
    g->n_input = old_n_inputs;
    for (size_t k = 0; k < consts.size(); ++k) consts[k]->name = const_names[k];
    const size_t n_out = g->n_output;
    onnx__model_proto__free_unpacked(m, nullptr);

    std::vector<std::vector<float>> want_y;
    for (size_t k = 0; k < n_out; ++k) {
        TensorPtr y = read_tensor(dir + "/test_data_set_0/output_" + std::to_string(k) + ".pb");
        ASSERT_NE(y, nullptr) << "output_" << k;
        want_y.push_back(floats_of(y.get()));
        ASSERT_EQ((int64_t)want_y.back().size(), numel(dims_of(y.get())));
        ASSERT_EQ(want_y.back().size() % batch, 0u);
    }
    const std::vector<float> xv = floats_of(x.get());
    ASSERT_EQ((int64_t)xv.size(), batch * c * h * w);

    cbinfer_network_t *raw = nullptr;
    char err[512] = "";
    cbinfer_status st =
        cbinfer_network_load_memory(packed.data(), packed.size(), &raw, err, sizeof err);
    NetPtr net(raw);
    ASSERT_EQ(st, CBINFER_STATUS_SUCCESS) << cbinfer_status_string(st) << ": " << err;
    ASSERT_EQ(cbinfer_network_output_count(net.get()), (int)n_out);
    for (cbinfer_mode mode : {CBINFER_MODE_DENSE, CBINFER_MODE_CBINFER}) {
        SCOPED_TRACE(mode == CBINFER_MODE_DENSE ? "dense" : "cbinfer, threshold 0");
        StreamPtr s = make_stream(net.get(), (int)w, (int)h, backend, mode);
        ASSERT_NE(s, nullptr);
        ASSERT_EQ(cbinfer_stream_set_threshold_all(s.get(), 0.f), CBINFER_STATUS_SUCCESS);
        // Never the dense fallback: the change-based kernels themselves run.
        if (mode != CBINFER_MODE_DENSE)
            ASSERT_EQ(cbinfer_stream_set_break_even_all(s.get(), 1.f), CBINFER_STATUS_SUCCESS);
        for (int64_t b = 0; b < batch; ++b) {
            const size_t item = (size_t)(c * h * w);
            ASSERT_EQ(cbinfer_stream_push_nchw(s.get(), xv.data() + b * item, (int)c, (int)h, (int)w),
                      CBINFER_STATUS_SUCCESS)
                << cbinfer_stream_last_error(s.get());
            for (size_t k = 0; k < n_out; ++k) {
                const size_t per = want_y[k].size() / batch;
                int oc, oh, ow;
                ASSERT_EQ(cbinfer_stream_output_dims_at(s.get(), (int)k, &oc, &oh, &ow),
                          CBINFER_STATUS_SUCCESS);
                ASSERT_EQ((size_t)oc * oh * ow, per) << "output " << k;
                std::vector<float> got(per);
                ASSERT_EQ(cbinfer_stream_read_output_at(s.get(), (int)k, got.data(), got.size()),
                          CBINFER_STATUS_SUCCESS);
                const std::vector<float> ref(want_y[k].begin() + b * per,
                                             want_y[k].begin() + (b + 1) * per);
                EXPECT_LE(cbi_test_max_abs_diff(got, ref), tol)
                    << "output " << k << ", batch item " << b;
            }
        }
    }
}
