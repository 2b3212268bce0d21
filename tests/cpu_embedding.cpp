// The embedding API on the CPU backend: stream options, the device-memory
// push and read (host memory there: the same results as the host calls), the
// host-sync counter, and every call's NULL and wrong-size statuses. The CUDA
// side is in gpu_embedding.cpp.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "cbinfer.h"
#include "test_util.h"

namespace {

constexpr int kX = 300, kY = 250, kW = 64, kH = 48; // pedestrians walk here

cbinfer_status create(const cbinfer_network_t *net, const cbinfer_stream_options *o,
                      cbinfer_stream_t **s, std::string *err)
{
    char buf[512] = "";
    const cbinfer_status st = cbinfer_stream_create_ex(net, kW, kH, CBINFER_BACKEND_CPU,
                                                       CBINFER_MODE_CBINFER, CBINFER_PRECISION_FP32,
                                                       o, s, buf, sizeof buf);
    *err = buf;
    return st;
}

TEST(Embedding, OptionsAreCheckedAtCreation)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    cbinfer_stream_options o;
    std::memset(&o, 0xab, sizeof o);
    cbinfer_stream_options_init(&o);
    EXPECT_EQ(o.struct_size, sizeof o);
    EXPECT_EQ(o.max_bytes, 0u);
    EXPECT_EQ(o.device, CBINFER_DEVICE_CURRENT);
    EXPECT_EQ(o.cuda_stream, nullptr);
    cbinfer_stream_options_init(nullptr); // accepted

    cbinfer_stream_t *s = nullptr;
    std::string err;
    ASSERT_EQ(create(net.get(), &o, &s, &err), CBINFER_STATUS_SUCCESS) << err;
    cbinfer_stream_destroy(s);
    ASSERT_EQ(create(net.get(), nullptr, &s, &err), CBINFER_STATUS_SUCCESS) << err;
    cbinfer_stream_destroy(s);
    cbinfer_stream_options zero = o;
    zero.device = 0; // the CPU's one "device"
    ASSERT_EQ(create(net.get(), &zero, &s, &err), CBINFER_STATUS_SUCCESS) << err;
    cbinfer_stream_destroy(s);

    cbinfer_stream_options bad = o;
    bad.struct_size = sizeof o - 8;
    EXPECT_EQ(create(net.get(), &bad, &s, &err), CBINFER_STATUS_BAD_PARAM);
    EXPECT_EQ(s, nullptr);
    EXPECT_NE(err.find("struct_size"), std::string::npos) << err;
    bad = o;
    bad.device = 1;
    EXPECT_EQ(create(net.get(), &bad, &s, &err), CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(err.find("device"), std::string::npos) << err;
    bad.device = -2;
    EXPECT_EQ(create(net.get(), &bad, &s, &err), CBINFER_STATUS_BAD_PARAM);
    bad = o;
    bad.struct_size = sizeof o + 8; // a newer header's struct
    EXPECT_EQ(create(net.get(), &bad, &s, &err), CBINFER_STATUS_BAD_PARAM);
    bad = o;
    int not_a_stream = 0;
    bad.cuda_stream = &not_a_stream;
    EXPECT_EQ(create(net.get(), &bad, &s, &err), CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(err.find("cuda_stream"), std::string::npos) << err;
    bad = o;
    bad.max_bytes = 4096; // far below any stream of vgg7
    EXPECT_EQ(create(net.get(), &bad, &s, &err), CBINFER_STATUS_OUT_OF_MEMORY);
    EXPECT_EQ(s, nullptr);
    EXPECT_EQ(create(nullptr, &o, &s, &err), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_create_ex(net.get(), kW, kH, CBINFER_BACKEND_CPU,
                                       CBINFER_MODE_CBINFER, CBINFER_PRECISION_FP32, &o, nullptr,
                                       nullptr, 0),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_create_ex(net.get(), 0, kH, CBINFER_BACKEND_CPU,
                                       CBINFER_MODE_CBINFER, CBINFER_PRECISION_FP32, &o, &s,
                                       nullptr, 0),
              CBINFER_STATUS_BAD_FRAME_SIZE);
}

// On the CPU device memory is host memory: the device calls give what the
// host calls give, on real frames, and take no host synchronisation.
TEST(Embedding, DeviceCallsOnTheCpuAreTheHostCalls)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    StreamPtr host = make_stream(net.get(), kW, kH, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    StreamPtr dev = make_stream(net.get(), kW, kH, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(host && dev);
    for (auto *s : {host.get(), dev.get()})
        ASSERT_EQ(cbinfer_stream_set_threshold_all(s, 0.02f), CBINFER_STATUS_SUCCESS);
    const size_t n = (size_t)3 * kW * kH;
    std::vector<float> out(n);
    EXPECT_EQ(cbinfer_stream_read_output_device(dev.get(), 0, out.data(), n),
              CBINFER_STATUS_NOT_READY);
    auto frames = cbi_test_read_frames("vtest.avi", 0, 4, kX, kY, kW, kH);
    for (const auto &f : frames) {
        push(host.get(), f, kW, kH);
        ASSERT_EQ(cbinfer_stream_push_rgb8_device(dev.get(), f.data(), kW, kH, kW * 3),
                  CBINFER_STATUS_SUCCESS)
            << cbinfer_stream_last_error(dev.get());
        ASSERT_EQ(cbinfer_stream_read_output_device(dev.get(), 0, out.data(), n),
                  CBINFER_STATUS_SUCCESS);
        EXPECT_EQ(out, output_of(host.get()));
        cbinfer_frame_stats fs;
        ASSERT_EQ(cbinfer_stream_frame_stats(dev.get(), &fs), CBINFER_STATUS_SUCCESS);
        EXPECT_EQ(fs.host_syncs, 0);
    }
    int64_t syncs = -1;
    ASSERT_EQ(cbinfer_stream_host_syncs(dev.get(), &syncs), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(syncs, 0);
    cbinfer_frame_stats fs;
    ASSERT_EQ(cbinfer_stream_frame_stats(dev.get(), &fs), CBINFER_STATUS_SUCCESS);
    EXPECT_LT(fs.macs, fs.dense_macs); // change-based frames, not dense ones
}

TEST(Embedding, DeviceCallStatuses)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    StreamPtr s = make_stream(net.get(), kW, kH, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
    ASSERT_TRUE(s);
    std::vector<uint8_t> frame((size_t)kW * kH * 3, 90);
    const size_t n = (size_t)3 * kW * kH;
    std::vector<float> out(n);
    EXPECT_EQ(cbinfer_stream_push_rgb8_device(nullptr, frame.data(), kW, kH, kW * 3),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_push_rgb8_device(s.get(), nullptr, kW, kH, kW * 3),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_push_rgb8_device(s.get(), frame.data(), kW + 1, kH, kW * 3 + 3),
              CBINFER_STATUS_BAD_FRAME_SIZE);
    EXPECT_NE(std::string(cbinfer_stream_last_error(s.get())).find("65x48"), std::string::npos);
    EXPECT_EQ(cbinfer_stream_push_rgb8_device(s.get(), frame.data(), kW, kH, kW * 3 - 1),
              CBINFER_STATUS_BAD_PARAM);
    ASSERT_EQ(cbinfer_stream_push_rgb8_device(s.get(), frame.data(), kW, kH, kW * 3),
              CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(cbinfer_stream_read_output_device(nullptr, 0, out.data(), n),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_read_output_device(s.get(), 0, nullptr, n),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_read_output_device(s.get(), 1, out.data(), n),
              CBINFER_STATUS_BAD_PARAM);
    EXPECT_EQ(cbinfer_stream_read_output_device(s.get(), -1, out.data(), n),
              CBINFER_STATUS_BAD_PARAM);
    EXPECT_EQ(cbinfer_stream_read_output_device(s.get(), 0, out.data(), n - 1),
              CBINFER_STATUS_BUFFER_TOO_SMALL);
    EXPECT_EQ(cbinfer_stream_read_output_device(s.get(), 0, out.data(), n),
              CBINFER_STATUS_SUCCESS);
    int64_t syncs = 0;
    EXPECT_EQ(cbinfer_stream_host_syncs(nullptr, &syncs), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_host_syncs(s.get(), nullptr), CBINFER_STATUS_NULL_ARGUMENT);
}

} // namespace
