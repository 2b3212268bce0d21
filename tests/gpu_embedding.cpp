// The embedding API on the CUDA backend: a stream on the caller's CUDA
// stream, pushes and reads through device buffers, the host synchronisations
// cbinfer.h documents, and the device checks. Every test skips with a reason
// when no CUDA device can be used.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "cbinfer.h"
#include "test_util.h"

namespace {

constexpr int kX = 300, kY = 250, kW = 96, kH = 72; // pedestrians walk here

// A device buffer of n bytes, freed with the object.
struct DeviceBuffer {
    void *p = nullptr;
    explicit DeviceBuffer(size_t n) { EXPECT_EQ(cudaMalloc(&p, n), cudaSuccess); }
    ~DeviceBuffer() { cudaFree(p); }
};

StreamPtr create_on(const cbinfer_network_t *net, cbinfer_mode mode, cudaStream_t cs)
{
    cbinfer_stream_options o;
    cbinfer_stream_options_init(&o);
    o.cuda_stream = cs;
    cbinfer_stream_t *s = nullptr;
    char err[512] = "";
    EXPECT_EQ(cbinfer_stream_create_ex(net, kW, kH, CBINFER_BACKEND_CUDA, mode,
                                       CBINFER_PRECISION_FP32, &o, &s, err, sizeof err),
              CBINFER_STATUS_SUCCESS)
        << err;
    return StreamPtr(s);
}

int64_t syncs_of(const cbinfer_stream_t *s)
{
    int64_t n = -1;
    EXPECT_EQ(cbinfer_stream_host_syncs(s, &n), CBINFER_STATUS_SUCCESS);
    return n;
}

// Frames pushed from device memory on the caller's stream and read into
// device memory give what the host calls give on a stream of its own.
TEST(GpuEmbedding, CallerStreamAndDeviceBuffersMatchTheHostPath)
{
    SKIP_WITHOUT_CUDA();
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    cudaStream_t cs = nullptr;
    ASSERT_EQ(cudaStreamCreate(&cs), cudaSuccess);
    {
        StreamPtr dev = create_on(net.get(), CBINFER_MODE_CBINFER, cs);
        StreamPtr host = make_stream(net.get(), kW, kH, CBINFER_BACKEND_CUDA, CBINFER_MODE_CBINFER);
        ASSERT_TRUE(dev && host);
        const size_t n = (size_t)3 * kW * kH;
        DeviceBuffer d_rgb(n), d_out(n * sizeof(float));
        std::vector<float> got(n);
        for (const auto &f : cbi_test_read_frames("vtest.avi", 0, 5, kX, kY, kW, kH)) {
            ASSERT_EQ(cudaMemcpyAsync(d_rgb.p, f.data(), n, cudaMemcpyHostToDevice, cs),
                      cudaSuccess);
            ASSERT_EQ(cbinfer_stream_push_rgb8_device(dev.get(), d_rgb.p, kW, kH, kW * 3),
                      CBINFER_STATUS_SUCCESS)
                << cbinfer_stream_last_error(dev.get());
            const int64_t before = syncs_of(dev.get());
            ASSERT_EQ(cbinfer_stream_read_output_device(dev.get(), 0, d_out.p, n),
                      CBINFER_STATUS_SUCCESS)
                << cbinfer_stream_last_error(dev.get());
            EXPECT_EQ(syncs_of(dev.get()), before) << "a read on the caller's stream waits";
            ASSERT_EQ(cudaMemcpyAsync(got.data(), d_out.p, n * sizeof(float),
                                      cudaMemcpyDeviceToHost, cs),
                      cudaSuccess);
            ASSERT_EQ(cudaStreamSynchronize(cs), cudaSuccess);
            push(host.get(), f, kW, kH);
            // Each stream picks its cuDNN algorithms by timing: float
            // re-association apart, the same outputs.
            EXPECT_LE(cbi_test_max_abs_diff(got, output_of(host.get())), 1e-4f);
        }
    }
    cudaStreamDestroy(cs); // after the stream that used it
}

// The counts of cbinfer.h: a dense push waits once, a host read once, a
// device read on a stream of the library's own once, on the caller's none.
TEST(GpuEmbedding, HostSyncsPerCallAreTheDocumentedOnes)
{
    SKIP_WITHOUT_CUDA();
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    StreamPtr own = make_stream(net.get(), kW, kH, CBINFER_BACKEND_CUDA, CBINFER_MODE_DENSE);
    ASSERT_TRUE(own);
    const size_t n = (size_t)3 * kW * kH;
    DeviceBuffer d_out(n * sizeof(float));
    std::vector<float> host(n);
    for (const auto &f : cbi_test_read_frames("vtest.avi", 0, 3, kX, kY, kW, kH)) {
        int64_t s0 = syncs_of(own.get());
        push(own.get(), f, kW, kH);
        cbinfer_frame_stats fs;
        ASSERT_EQ(cbinfer_stream_frame_stats(own.get(), &fs), CBINFER_STATUS_SUCCESS);
        EXPECT_EQ(fs.host_syncs, 1);
        EXPECT_EQ(syncs_of(own.get()) - s0, 1);
        s0 = syncs_of(own.get());
        ASSERT_EQ(cbinfer_stream_read_output_at(own.get(), 0, host.data(), n),
                  CBINFER_STATUS_SUCCESS);
        EXPECT_EQ(syncs_of(own.get()) - s0, 1);
        s0 = syncs_of(own.get());
        ASSERT_EQ(cbinfer_stream_read_output_device(own.get(), 0, d_out.p, n),
                  CBINFER_STATUS_SUCCESS);
        EXPECT_EQ(syncs_of(own.get()) - s0, 1);
    }
}

TEST(GpuEmbedding, DeviceChecks)
{
    SKIP_WITHOUT_CUDA();
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    int count = 0;
    ASSERT_EQ(cudaGetDeviceCount(&count), cudaSuccess);
    cbinfer_stream_options o;
    cbinfer_stream_options_init(&o);
    o.device = count; // one past the last
    cbinfer_stream_t *s = nullptr;
    char err[512] = "";
    EXPECT_EQ(cbinfer_stream_create_ex(net.get(), kW, kH, CBINFER_BACKEND_CUDA,
                                       CBINFER_MODE_DENSE, CBINFER_PRECISION_FP32, &o, &s, err,
                                       sizeof err),
              CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(std::string(err).find("device"), std::string::npos) << err;
    StreamPtr st = make_stream(net.get(), kW, kH, CBINFER_BACKEND_CUDA, CBINFER_MODE_DENSE);
    ASSERT_TRUE(st);
    if (count >= 2) {
        // The default is the current device; an explicit one leaves the
        // caller's current device as it was.
        ASSERT_EQ(cudaSetDevice(count - 1), cudaSuccess);
        o.device = 0;
        ASSERT_EQ(cbinfer_stream_create_ex(net.get(), kW, kH, CBINFER_BACKEND_CUDA,
                                           CBINFER_MODE_DENSE, CBINFER_PRECISION_FP32, &o, &s, err,
                                           sizeof err),
                  CBINFER_STATUS_SUCCESS)
            << err;
        StreamPtr on0(s);
        int cur = -1;
        ASSERT_EQ(cudaGetDevice(&cur), cudaSuccess);
        EXPECT_EQ(cur, count - 1);
        std::vector<uint8_t> f((size_t)kW * kH * 3, 70);
        push(on0.get(), f, kW, kH);
        ASSERT_EQ(cudaGetDevice(&cur), cudaSuccess);
        EXPECT_EQ(cur, count - 1);
        // A frame on device count-1 is refused by a stream on device 0.
        DeviceBuffer d_rgb(f.size());
        EXPECT_EQ(cbinfer_stream_push_rgb8_device(on0.get(), d_rgb.p, kW, kH, kW * 3),
                  CBINFER_STATUS_BAD_PARAM);
        ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
    }
    // Host memory where device memory is due is refused, not read.
    std::vector<uint8_t> frame((size_t)kW * kH * 3, 50);
    push(st.get(), frame, kW, kH);
    EXPECT_EQ(cbinfer_stream_push_rgb8_device(st.get(), frame.data(), kW, kH, kW * 3),
              CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(std::string(cbinfer_stream_last_error(st.get())).find("device memory"),
              std::string::npos);
    // A refused pointer leaves the stream's frame in place.
    std::vector<float> host((size_t)3 * kW * kH);
    EXPECT_EQ(cbinfer_stream_read_output_at(st.get(), 0, host.data(), host.size()),
              CBINFER_STATUS_SUCCESS);
    std::vector<float> out((size_t)3 * kW * kH);
    EXPECT_EQ(cbinfer_stream_read_output_device(st.get(), 0, out.data(), out.size()),
              CBINFER_STATUS_BAD_PARAM);
}

} // namespace
