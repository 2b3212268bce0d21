// Shared helpers of the GoogleTest suites: where the data and models are,
// reading real frames, comparing tensors, driving streams through the public
// API, random data and layout conversion, the pooling configurations both op
// suites sweep.
#ifndef CBI_TEST_UTIL_H
#define CBI_TEST_UTIL_H

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cbinfer.h"

// CBINFER_DATA_DIR from the environment, else the configure-time value.
std::string cbi_test_data_dir();
// <build>/models/<name>.onnx (made by tools/convert_models.py at build time).
std::string cbi_test_model(const std::string &name);
// <data dir>/data/video/<file>.
std::string cbi_test_video(const std::string &file);
// n RGB8 frames of a video from frame `skip`, cropped to (x, y, w, h).
std::vector<std::vector<uint8_t>> cbi_test_read_frames(const std::string &video, int skip, int n,
                                                       int x, int y, int w, int h);
// Largest absolute difference of two equally long arrays.
float cbi_test_max_abs_diff(const std::vector<float> &a, const std::vector<float> &b);
// Mean absolute difference of two equally long, non-empty arrays (infinity
// otherwise).
float cbi_test_mean_abs_diff(const std::vector<float> &a, const std::vector<float> &b);
// Runs the program exe with args through the shell, its stdout to out_path
// and its stderr discarded; returns its exit status (-1 when it did not exit
// normally).
int cbi_test_run_tool(const std::string &exe, const std::string &args, const std::string &out_path);
// The whole content of a text file ("" if it cannot be read).
std::string cbi_test_slurp(const std::string &path);
// Whether a CUDA device can be used (false when built without CUDA).
bool cbi_test_has_cuda_device();

// Skips the current test, with a reason, when no CUDA device can be used.
#define SKIP_WITHOUT_CUDA()                                                                       \
    do {                                                                                          \
        if (!cbi_test_has_cuda_device()) GTEST_SKIP() << "no usable CUDA device";                 \
    } while (0)

// Skips the current test, with a reason, in a build without FFmpeg
// (CBINFER_VIDEO=OFF), where only raw frames can be read.
#ifdef CBINFER_WITH_VIDEO
#define SKIP_WITHOUT_FFMPEG() static_cast<void>(0)
#else
#define SKIP_WITHOUT_FFMPEG() GTEST_SKIP() << "built without FFmpeg (CBINFER_VIDEO=OFF)"
#endif

// ------------------------------------------------ streams (public API) ---

struct NetDeleter {
    void operator()(cbinfer_network_t *n) const { cbinfer_network_free(n); }
};
struct StreamDeleter {
    void operator()(cbinfer_stream_t *s) const { cbinfer_stream_destroy(s); }
};
using NetPtr = std::unique_ptr<cbinfer_network_t, NetDeleter>;
using StreamPtr = std::unique_ptr<cbinfer_stream_t, StreamDeleter>;

// cbi_test_model(name) loaded; a failed load is a non-fatal failure and
// returns null.
NetPtr load(const std::string &name);
// A stream of net for w x h frames; a failed create is a non-fatal failure
// and returns null.
StreamPtr make_stream(const cbinfer_network_t *net, int w, int h, cbinfer_backend be,
                      cbinfer_mode mode, cbinfer_precision prec = CBINFER_PRECISION_FP32);
// The stream's current output (C x H x W); failures are non-fatal.
std::vector<float> output_of(cbinfer_stream_t *s);
// Every output of the stream's network (C x H x W each, in the graph's
// order), through cbinfer_stream_read_output_at; failures are non-fatal.
std::vector<std::vector<float>> outputs_of(cbinfer_stream_t *s, const cbinfer_network_t *net);
// Pushes a packed RGB8 frame. A failure is recorded as fatal (ASSERT) but,
// push() being a void helper, only returns from push(): the test goes on.
void push(cbinfer_stream_t *s, const std::vector<uint8_t> &rgb, int w, int h);
// The outputs of a dense fp32 stream of `backend` on the frames (w x h), one
// per frame; empty when the stream cannot be created (recorded as a failure).
std::vector<std::vector<float>> dense_outputs(const cbinfer_network_t *net,
                                              const std::vector<std::vector<uint8_t>> &frames,
                                              int w, int h, cbinfer_backend backend);

// -------------------------------------------------- op-level test data ---

// ----------------------------------------------------------- batches ---
struct BatchDeleter {
    void operator()(cbinfer_batch_t *b) const { cbinfer_batch_destroy(b); }
};
using BatchPtr = std::unique_ptr<cbinfer_batch_t, BatchDeleter>;

BatchPtr make_batch(const cbinfer_network_t *net, int n, int w, int h, cbinfer_mode mode,
                    cbinfer_backend backend = CBINFER_BACKEND_CPU);
// Camera j's frames: vtest from frame 30 * j on, so the cameras differ.
std::vector<std::vector<std::vector<uint8_t>>> camera_frames(int cameras, int n, int w, int h);
void push_batch(cbinfer_batch_t *b, const std::vector<const uint8_t *> &frames, int w, int h);
// The per-stream settings both sides get.
struct Setup {
    float threshold;
    float break_even;
    const char *policy; // nullptr: the mode's
};
void configure(cbinfer_stream_t *s, const Setup &c, cbinfer_mode mode);
// Runs `frames` frames through a batch and through independent streams with
// the same settings, resetting stream reset_stream before frame reset_frame
// on both sides, and compares every output of every stream at every frame
// (within tol), and on the CPU also the MACs and changed shares (exactly:
// the same kernels in the same order; CUDA's GEMM over another row count
// may round differently, and at threshold 0 that changes which pixels
// count as changed downstream).
void expect_batch_equals_independent(const char *model, int w, int h, cbinfer_mode mode,
                                     const std::vector<Setup> &setups, int frames, float tol,
                                     int reset_stream = -1, int reset_frame = -1,
                                     cbinfer_backend backend = CBINFER_BACKEND_CPU);

// n values uniform in [lo, hi) from rng.
std::vector<float> random_vec(std::mt19937 &rng, size_t n, float lo = -1.f, float hi = 1.f);
// Layout conversion of a C x H x W tensor.
std::vector<float> nchw_to_nhwc(const std::vector<float> &x, int c, int h, int w);
std::vector<float> nhwc_to_nchw(const std::vector<float> &x, int c, int h, int w);

// A MaxPool/AveragePool configuration: kernel, stride, dilation, pads
// (top, left, bottom, right), ceil_mode, count_include_pad.
struct PoolCfg {
    bool is_max;
    int k, s, d, pt, pl, pb, pr;
    bool ceil, include_pad;
};
// Output extent of a pooling window along one axis (ONNX semantics).
int pool_out(int in, int k, int s, int d, int p0, int p1, bool ceil_mode);
// The configurations the pooling tests sweep: every kernel 2..3, stride
// 1..2, pad, ceil_mode and count_include_pad, plus dilated MaxPool and
// asymmetric pads.
std::vector<PoolCfg> pool_cfgs();

#endif
