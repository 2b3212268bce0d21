#include "test_util.h"

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "cbinfer.h"
#ifndef CBI_TEST_NO_VIDEO
#include "video.h"
#endif

std::string cbi_test_data_dir()
{
    const char *env = std::getenv("CBINFER_DATA_DIR");
    return env && *env ? env : CBINFER_TEST_DATA_DIR;
}

std::string cbi_test_model(const std::string &name)
{
    return std::string(CBINFER_TEST_MODEL_DIR) + "/" + name + ".onnx";
}

std::string cbi_test_video(const std::string &file)
{
    return cbi_test_data_dir() + "/data/video/" + file;
}

#ifndef CBI_TEST_NO_VIDEO  // the loader tests under valgrind link no FFmpeg
// Opens a sample video from frame `skip`: decoded by FFmpeg, or, in a build
// without it, from raw rgb24 frames in the folder CBINFER_FRAMES_DIR names:
// <video>.<W>x<H>.rgb holds frames from 0, <video>.<W>x<H>+<F>.rgb frames
// from F (cbinfer-bench --dump-frames writes them; tools/gpu_bundle.sh too).
static cbi_video *open_video(const std::string &video, int skip)
{
    char err[512];
    cbi_video *v = nullptr;
#ifdef CBINFER_WITH_VIDEO
    if (cbi_video_open(cbi_test_video(video).c_str(), 0, 0, skip, &v, err, sizeof err) != 0)
        throw std::runtime_error(err);
#else
    const char *dir = std::getenv("CBINFER_FRAMES_DIR");
    if (!dir || !*dir)
        throw std::runtime_error("built without FFmpeg (CBINFER_VIDEO=OFF) and CBINFER_FRAMES_DIR "
                                 "is not set: no frames of " + video);
    for (const auto &entry : std::filesystem::directory_iterator(dir)) {
        const std::string name = entry.path().filename().string();
        if (name.compare(0, video.size() + 1, video + ".") != 0) continue;
        int fw = 0, fh = 0, first = 0, used = 0;
        const char *rest = name.c_str() + video.size() + 1;
        if (std::sscanf(rest, "%dx%d%n", &fw, &fh, &used) != 2) continue;
        rest += used;
        if (*rest == '+' && std::sscanf(rest, "+%d%n", &first, &used) == 1) rest += used;
        if (std::string(rest) != ".rgb" || first > skip) continue;
        if (cbi_video_open_raw(entry.path().c_str(), fw, fh, 0, 0, skip - first, &v, err,
                               sizeof err) != 0)
            throw std::runtime_error(err);
        return v;
    }
    throw std::runtime_error("no frames of " + video + " from frame " + std::to_string(skip) +
                             " in CBINFER_FRAMES_DIR=" + dir);
#endif
    return v;
}

std::vector<std::vector<uint8_t>> cbi_test_read_frames(const std::string &video, int skip, int n,
                                                       int x, int y, int w, int h)
{
    char err[512];
    cbi_video *v = open_video(video, skip);
    int vw = 0, vh = 0;
    cbi_video_size(v, &vw, &vh);
    if (x < 0 || y < 0 || x + w > vw || y + h > vh) {
        cbi_video_close(v);
        throw std::runtime_error("crop outside the video");
    }
    std::vector<uint8_t> full((size_t)vw * vh * 3);
    std::vector<std::vector<uint8_t>> frames;
    for (int i = 0; i < n; ++i) {
        int r = cbi_video_read(v, full.data(), err, sizeof err);
        if (r != 1) {
            cbi_video_close(v);
            throw std::runtime_error(r == 0 ? video + " ended before frame " + std::to_string(skip + i)
                                            : std::string(err));
        }
        std::vector<uint8_t> crop((size_t)w * h * 3);
        for (int row = 0; row < h; ++row)
            std::copy_n(&full[((size_t)(y + row) * vw + x) * 3], (size_t)w * 3, &crop[(size_t)row * w * 3]);
        frames.push_back(std::move(crop));
    }
    cbi_video_close(v);
    return frames;
}
#endif  // CBI_TEST_NO_VIDEO

float cbi_test_max_abs_diff(const std::vector<float> &a, const std::vector<float> &b)
{
    if (a.size() != b.size()) return INFINITY;
    float m = 0.f;
    for (size_t i = 0; i < a.size(); ++i) m = std::fmax(m, std::fabs(a[i] - b[i]));
    return m;
}

bool cbi_test_has_cuda_device()
{
    return cbinfer_backend_available(CBINFER_BACKEND_CUDA) == CBINFER_STATUS_SUCCESS;
}

float cbi_test_mean_abs_diff(const std::vector<float> &a, const std::vector<float> &b)
{
    if (a.size() != b.size() || a.empty()) return INFINITY;
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += std::fabs((double)a[i] - b[i]);
    return (float)(s / (double)a.size());
}

// ------------------------------------------------ streams (public API) ---

NetPtr load(const std::string &name)
{
    cbinfer_network_t *n = nullptr;
    char err[512] = "";
    cbinfer_status st = cbinfer_network_load(cbi_test_model(name).c_str(), &n, err, sizeof err);
    EXPECT_EQ(st, CBINFER_STATUS_SUCCESS) << name << ": " << err;
    return NetPtr(n);
}

StreamPtr make_stream(const cbinfer_network_t *net, int w, int h, cbinfer_backend be,
                      cbinfer_mode mode, cbinfer_precision prec)
{
    cbinfer_stream_t *s = nullptr;
    char err[512] = "";
    cbinfer_status st = cbinfer_stream_create(net, w, h, be, mode, prec, &s, err, sizeof err);
    EXPECT_EQ(st, CBINFER_STATUS_SUCCESS) << err;
    return StreamPtr(s);
}

std::vector<float> output_of(cbinfer_stream_t *s)
{
    int c = 0, h = 0, w = 0;
    EXPECT_EQ(cbinfer_stream_output_dims(s, &c, &h, &w), CBINFER_STATUS_SUCCESS);
    std::vector<float> out((size_t)c * h * w);
    EXPECT_EQ(cbinfer_stream_read_output(s, out.data(), out.size()), CBINFER_STATUS_SUCCESS)
        << cbinfer_stream_last_error(s);
    return out;
}

std::vector<std::vector<float>> outputs_of(cbinfer_stream_t *s, const cbinfer_network_t *net)
{
    std::vector<std::vector<float>> out;
    for (int k = 0; k < cbinfer_network_output_count(net); ++k) {
        int c = 0, h = 0, w = 0;
        EXPECT_EQ(cbinfer_stream_output_dims_at(s, k, &c, &h, &w), CBINFER_STATUS_SUCCESS);
        out.emplace_back((size_t)c * h * w);
        EXPECT_EQ(cbinfer_stream_read_output_at(s, k, out.back().data(), out.back().size()),
                  CBINFER_STATUS_SUCCESS)
            << cbinfer_stream_last_error(s);
    }
    return out;
}

void push(cbinfer_stream_t *s, const std::vector<uint8_t> &rgb, int w, int h)
{
    ASSERT_EQ(cbinfer_stream_push_rgb8(s, rgb.data(), w, h, (size_t)w * 3), CBINFER_STATUS_SUCCESS)
        << cbinfer_stream_last_error(s);
}

std::vector<std::vector<float>> dense_outputs(const cbinfer_network_t *net,
                                              const std::vector<std::vector<uint8_t>> &frames,
                                              int w, int h, cbinfer_backend backend)
{
    std::vector<std::vector<float>> out;
    StreamPtr s = make_stream(net, w, h, backend, CBINFER_MODE_DENSE);
    EXPECT_TRUE(s) << "dense stream";
    if (!s) return out;
    for (const auto &fr : frames) {
        push(s.get(), fr, w, h);
        out.push_back(output_of(s.get()));
    }
    return out;
}

// ----------------------------------------------------------- batches ---

BatchPtr make_batch(const cbinfer_network_t *net, int n, int w, int h, cbinfer_mode mode,
                    cbinfer_backend backend)
{
    cbinfer_batch_t *b = nullptr;
    char err[512];
    const cbinfer_status st =
        cbinfer_batch_create(net, n, w, h, backend, mode, CBINFER_PRECISION_FP32, &b, err,
                             sizeof err);
    EXPECT_EQ(st, CBINFER_STATUS_SUCCESS) << err;
    return BatchPtr(b);
}

#ifndef CBI_TEST_NO_VIDEO  // they read video frames
std::vector<std::vector<std::vector<uint8_t>>> camera_frames(int cameras, int n, int w, int h)
{
    std::vector<std::vector<std::vector<uint8_t>>> out;
    for (int j = 0; j < cameras; ++j)
        out.push_back(cbi_test_read_frames("vtest.avi", 30 * j, n, 300, 250, w, h));
    return out;
}

void push_batch(cbinfer_batch_t *b, const std::vector<const uint8_t *> &frames, int w, int h)
{
    ASSERT_EQ(cbinfer_batch_push_rgb8(b, frames.data(), w, h, (size_t)w * 3),
              CBINFER_STATUS_SUCCESS)
        << cbinfer_batch_last_error(b);
}

void configure(cbinfer_stream_t *s, const Setup &c, cbinfer_mode mode)
{
    if (mode == CBINFER_MODE_DENSE) return;
    ASSERT_EQ(cbinfer_stream_set_threshold_all(s, c.threshold), CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(cbinfer_stream_set_break_even_all(s, c.break_even), CBINFER_STATUS_SUCCESS);
    if (c.policy)
        ASSERT_EQ(cbinfer_stream_set_policy(s, nullptr, c.policy), CBINFER_STATUS_SUCCESS)
            << cbinfer_stream_last_error(s);
}

void expect_batch_equals_independent(const char *model, int w, int h, cbinfer_mode mode,
                                     const std::vector<Setup> &setups, int frames, float tol,
                                     int reset_stream, int reset_frame, cbinfer_backend backend)
{
    SCOPED_TRACE(model);
    NetPtr net = load(model);
    ASSERT_TRUE(net);
    const int n = (int)setups.size();
    auto cams = camera_frames(n, frames, w, h);
    BatchPtr batch = make_batch(net.get(), n, w, h, mode, backend);
    ASSERT_TRUE(batch);
    ASSERT_EQ(cbinfer_batch_size(batch.get()), n);
    std::vector<StreamPtr> alone;
    for (int j = 0; j < n; ++j) {
        alone.push_back(make_stream(net.get(), w, h, backend, mode));
        ASSERT_TRUE(alone.back());
        configure(cbinfer_batch_stream(batch.get(), j), setups[j], mode);
        configure(alone.back().get(), setups[j], mode);
    }
    double changed = 0;
    for (int f = 0; f < frames; ++f) {
        if (f == reset_frame) {
            ASSERT_EQ(cbinfer_stream_reset(cbinfer_batch_stream(batch.get(), reset_stream)),
                      CBINFER_STATUS_SUCCESS);
            ASSERT_EQ(cbinfer_stream_reset(alone[reset_stream].get()), CBINFER_STATUS_SUCCESS);
        }
        std::vector<const uint8_t *> ptrs;
        for (int j = 0; j < n; ++j) ptrs.push_back(cams[j][f].data());
        push_batch(batch.get(), ptrs, w, h);
        for (int j = 0; j < n; ++j) {
            push(alone[j].get(), cams[j][f], w, h);
            cbinfer_stream_t *s = cbinfer_batch_stream(batch.get(), j);
            auto got = outputs_of(s, net.get()), want = outputs_of(alone[j].get(), net.get());
            ASSERT_EQ(got.size(), want.size());
            for (size_t k = 0; k < got.size(); ++k)
                EXPECT_LE(cbi_test_max_abs_diff(got[k], want[k]), tol)
                    << "stream " << j << " frame " << f << " output " << k;
            cbinfer_frame_stats a, b;
            ASSERT_EQ(cbinfer_stream_frame_stats(s, &a), CBINFER_STATUS_SUCCESS);
            ASSERT_EQ(cbinfer_stream_frame_stats(alone[j].get(), &b), CBINFER_STATUS_SUCCESS);
            EXPECT_EQ(a.frame_index, b.frame_index) << "stream " << j << " frame " << f;
            if (backend == CBINFER_BACKEND_CPU) {
                EXPECT_EQ(a.macs, b.macs) << "stream " << j << " frame " << f;
                EXPECT_DOUBLE_EQ(a.changed_share, b.changed_share)
                    << "stream " << j << " frame " << f;
            }
            if (f > 0) changed += a.changed_share;
        }
    }
    if (mode != CBINFER_MODE_DENSE) {
        // The frames after the first ran change-based somewhere.
        EXPECT_LT(changed / (n * (frames - 1)), 0.99);
    }
}
#endif  // CBI_TEST_NO_VIDEO

// -------------------------------------------------- op-level test data ---

std::vector<float> random_vec(std::mt19937 &rng, size_t n, float lo, float hi)
{
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (auto &x : v) x = d(rng);
    return v;
}

std::vector<float> nchw_to_nhwc(const std::vector<float> &x, int c, int h, int w)
{
    std::vector<float> y(x.size());
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) y[((size_t)i * w + j) * c + ch] = x[((size_t)ch * h + i) * w + j];
    return y;
}

std::vector<float> nhwc_to_nchw(const std::vector<float> &x, int c, int h, int w)
{
    std::vector<float> y(x.size());
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) y[((size_t)ch * h + i) * w + j] = x[((size_t)i * w + j) * c + ch];
    return y;
}

int pool_out(int in, int k, int s, int d, int p0, int p1, bool ceil_mode)
{
    const int span = in + p0 + p1 - ((k - 1) * d + 1);
    int o = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (o - 1) * s >= in + p0) o--; // last window may not start in the end padding
    return o;
}

std::vector<PoolCfg> pool_cfgs()
{
    std::vector<PoolCfg> v;
    for (int is_max = 0; is_max < 2; is_max++)
        for (int k = 2; k <= 3; k++)
            for (int s = 1; s <= 2; s++)
                for (int pad = 0; pad < k; pad++)
                    for (int ceil = 0; ceil < 2; ceil++)
                        for (int inc = 0; inc < (is_max ? 1 : 2); inc++)
                            v.push_back({(bool)is_max, k, s, 1, pad, pad, pad > 0 ? pad - 1 : 0, pad,
                                         (bool)ceil, (bool)inc});
    // Dilated MaxPool and asymmetric pads.
    v.push_back({true, 2, 1, 2, 0, 0, 0, 0, false, false});
    v.push_back({true, 3, 2, 2, 1, 2, 1, 0, true, false});
    v.push_back({false, 3, 2, 1, 2, 0, 1, 2, true, true});
    v.push_back({false, 3, 3, 1, 1, 1, 0, 0, true, false});
    // Dilated AveragePool; a stride past the window (inputs no output reads).
    v.push_back({false, 2, 2, 2, 1, 1, 1, 1, false, true});
    v.push_back({true, 2, 3, 1, 0, 0, 0, 0, false, false});
    v.push_back({false, 2, 4, 1, 0, 1, 1, 0, true, false});
    return v;
}

int cbi_test_run_tool(const std::string &exe, const std::string &args, const std::string &out_path)
{
    const std::string cmd = "'" + exe + "' " + args + " > '" + out_path + "' 2>/dev/null";
    const int st = std::system(cmd.c_str());
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string cbi_test_slurp(const std::string &path)
{
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}
