// Stream memory (issue 11, class 9): the estimate a caller gets before
// creating a stream, the cap that creation checks, and memory that is held
// (committed) at creation rather than promised by an overcommitting kernel.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "cbinfer.h"
#include "test_util.h"

namespace {

// A field of /proc/self/status or /proc/meminfo ("VmRSS", "MemAvailable")
// in bytes, 0 if absent.
uint64_t proc_kib_field(const char *file, const std::string &key)
{
    std::ifstream f(file);
    std::string line;
    while (std::getline(f, line))
        if (line.compare(0, key.size() + 1, key + ":") == 0)
            return std::stoull(line.substr(key.size() + 1)) * 1024;
    return 0;
}

uint64_t rss_bytes()
{
    return proc_kib_field("/proc/self/status", "VmRSS");
}

uint64_t estimate(const cbinfer_network_t *net, int w, int h,
                  cbinfer_mode mode = CBINFER_MODE_CBINFER)
{
    uint64_t bytes = 0;
    char err[512] = "";
    EXPECT_EQ(cbinfer_stream_memory_bytes(net, w, h, CBINFER_BACKEND_CPU, mode,
                                          CBINFER_PRECISION_FP32, &bytes, err, sizeof err),
              CBINFER_STATUS_SUCCESS)
        << err;
    return bytes;
}

constexpr double kMiB = 1024.0 * 1024.0;

}  // namespace

// The figure is the memory a stream really takes: after creation the
// process holds at least 95% of it more (the buffers are touched, not just
// reserved; how much of its share oneDNN touches at creation varies between
// machines: 96.8% on openpose-synthetic on a 2-core EPYC), and at most 16 MiB beyond
// it (what oneDNN keeps for itself: JIT code, scratchpads). openpose-synthetic's weights (17 M) make any
// uncounted copy of them show.
TEST(Memory, EstimateIsWhatCreationCommits)
{
#if defined(__SANITIZE_ADDRESS__)
    GTEST_SKIP() << "AddressSanitizer's shadow memory and redzones change the resident size";
#endif
    // Every stream stays until the end: freed memory would stay in the
    // allocator's pools and hide the next stream's growth.
    std::vector<NetPtr> nets;
    std::vector<StreamPtr> streams;
    for (const char *model : {"vgg7-noise1", "openpose-synthetic"}) {
        SCOPED_TRACE(model);
        NetPtr net = load(model);
        ASSERT_TRUE(net);
        const int w = 320, h = 240;
        const uint64_t est = estimate(net.get(), w, h);
        ASSERT_GT(est, 100u << 20) << "both hold hundreds of MiB at 320x240";
        const uint64_t before = rss_bytes();
        ASSERT_GT(before, 0u) << "no VmRSS in /proc/self/status";
        StreamPtr s = make_stream(net.get(), w, h, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
        ASSERT_TRUE(s);
        const uint64_t grew = rss_bytes() - before;
        nets.push_back(std::move(net));
        streams.push_back(std::move(s));
        EXPECT_GE(grew, est * 0.95) << "estimate " << est / kMiB << " MiB, resident growth "
                                    << grew / kMiB << " MiB";
        EXPECT_LE(grew, est + (16u << 20)) << "estimate " << est / kMiB
                                           << " MiB, resident growth " << grew / kMiB << " MiB";
    }
    streams.clear(); // before their networks
}

// More pixels, more memory, in proportion; dense holds no temporal state.
TEST(Memory, EstimateFollowsFrameSizeAndMode)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    const double small = static_cast<double>(estimate(net.get(), 160, 120));
    const double large = static_cast<double>(estimate(net.get(), 320, 240));
    EXPECT_GT(large / small, 3.5);
    EXPECT_LT(large / small, 4.5);
    const double dense = static_cast<double>(estimate(net.get(), 320, 240, CBINFER_MODE_DENSE));
    EXPECT_LT(dense, large * 0.75) << "the change-based state is missing from the estimate";
    EXPECT_GT(dense, large * 0.25);
}

TEST(Memory, EstimateChecksItsArguments)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    uint64_t bytes = 0;
    char err[512] = "";
    EXPECT_EQ(cbinfer_stream_memory_bytes(net.get(), 64, 64, CBINFER_BACKEND_CPU,
                                          CBINFER_MODE_CBINFER, CBINFER_PRECISION_FP32, nullptr,
                                          err, sizeof err),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_memory_bytes(nullptr, 64, 64, CBINFER_BACKEND_CPU,
                                          CBINFER_MODE_CBINFER, CBINFER_PRECISION_FP32, &bytes,
                                          err, sizeof err),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_memory_bytes(net.get(), 0, 64, CBINFER_BACKEND_CPU,
                                          CBINFER_MODE_CBINFER, CBINFER_PRECISION_FP32, &bytes,
                                          err, sizeof err),
              CBINFER_STATUS_BAD_FRAME_SIZE);
    EXPECT_EQ(cbinfer_stream_memory_bytes(net.get(), 64, 64, static_cast<cbinfer_backend>(9),
                                          CBINFER_MODE_CBINFER, CBINFER_PRECISION_FP32, &bytes,
                                          err, sizeof err),
              CBINFER_STATUS_BAD_PARAM);
    EXPECT_EQ(cbinfer_stream_memory_bytes(net.get(), 64, 64, CBINFER_BACKEND_CPU,
                                          CBINFER_MODE_CBINFER, CBINFER_PRECISION_FP16, &bytes,
                                          err, sizeof err),
              CBINFER_STATUS_BAD_PARAM);
    // Too large for the kernels' index range: the planner's refusal, as at creation.
    EXPECT_EQ(cbinfer_stream_memory_bytes(net.get(), 4000, 4000, CBINFER_BACKEND_CPU,
                                          CBINFER_MODE_CBINFER, CBINFER_PRECISION_FP32, &bytes,
                                          err, sizeof err),
              CBINFER_STATUS_BAD_FRAME_SIZE);
    EXPECT_NE(std::string(err).find("elements"), std::string::npos) << err;
}

// A cap below the estimate refuses the stream before anything is allocated;
// a cap of exactly the estimate admits it.
TEST(Memory, CapIsCheckedBeforeAllocating)
{
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    const uint64_t est = estimate(net.get(), 320, 240);
    cbinfer_stream_t *s = reinterpret_cast<cbinfer_stream_t *>(0x1);
    char err[512] = "";
    const uint64_t before = rss_bytes();
    EXPECT_EQ(cbinfer_stream_create_limited(net.get(), 320, 240, CBINFER_BACKEND_CPU,
                                            CBINFER_MODE_CBINFER, CBINFER_PRECISION_FP32,
                                            est - 1, &s, err, sizeof err),
              CBINFER_STATUS_OUT_OF_MEMORY);
    EXPECT_EQ(s, nullptr);
    EXPECT_NE(std::string(err).find("over its cap"), std::string::npos) << err;
    EXPECT_LT(rss_bytes() - before, 16u << 20) << "a refused stream allocated its tensors";
    ASSERT_EQ(cbinfer_stream_create_limited(net.get(), 320, 240, CBINFER_BACKEND_CPU,
                                            CBINFER_MODE_CBINFER, CBINFER_PRECISION_FP32, est,
                                            &s, err, sizeof err),
              CBINFER_STATUS_SUCCESS)
        << err;
    StreamPtr held(s);
    // More threads, more scratch: past the cap, refused, and the stream
    // keeps its layers and runs on.
    EXPECT_EQ(cbinfer_stream_set_param(s, CBINFER_PARAM_THREADS, 4096),
              CBINFER_STATUS_OUT_OF_MEMORY);
    EXPECT_NE(std::string(cbinfer_stream_last_error(s)).find("over its cap"), std::string::npos)
        << cbinfer_stream_last_error(s);
    std::vector<uint8_t> frame(320 * 240 * 3, 90);
    EXPECT_EQ(cbinfer_stream_push_rgb8(s, frame.data(), 320, 240, 320 * 3),
              CBINFER_STATUS_SUCCESS)
        << cbinfer_stream_last_error(s);
    EXPECT_EQ(cbinfer_stream_set_param(s, CBINFER_PARAM_THREADS, 1), CBINFER_STATUS_SUCCESS)
        << "fewer threads fit";
}

// A stream larger than the machine's available memory is refused up front.
// Before, creation "succeeded" on an overcommitting kernel (the buffers were
// only reserved) and the first frame met the OOM killer.
TEST(Memory, MoreThanAvailableIsRefused)
{
    NetPtr net = load("realesr-x2");
    ASSERT_TRUE(net);
    const int side = 2896;  // ~80 GiB; within the planner's index range
    const uint64_t est = estimate(net.get(), side, side);
    const uint64_t avail = proc_kib_field("/proc/meminfo", "MemAvailable");
    if (avail == 0) GTEST_SKIP() << "no MemAvailable in /proc/meminfo";
    if (avail >= est)
        GTEST_SKIP() << "this machine has " << avail / kMiB << " MiB available, more than the "
                     << est / kMiB << " MiB stream";
    cbinfer_stream_t *s = nullptr;
    char err[512] = "";
    EXPECT_EQ(cbinfer_stream_create(net.get(), side, side, CBINFER_BACKEND_CPU,
                                    CBINFER_MODE_CBINFER, CBINFER_PRECISION_FP32, &s, err,
                                    sizeof err),
              CBINFER_STATUS_OUT_OF_MEMORY);
    EXPECT_EQ(s, nullptr);
    EXPECT_NE(std::string(err).find("available"), std::string::npos) << err;
    cbinfer_stream_destroy(s);
}
