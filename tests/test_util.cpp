#include "test_util.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

#include "cbinfer.h"
#include "video.h"

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

std::vector<std::vector<uint8_t>> cbi_test_read_frames(const std::string &video, int skip, int n,
                                                       int x, int y, int w, int h)
{
    char err[512];
    cbi_video *v = nullptr;
    if (cbi_video_open(cbi_test_video(video).c_str(), 0, 0, skip, &v, err, sizeof err) != 0)
        throw std::runtime_error(err);
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
            throw std::runtime_error(r == 0 ? "video ended early" : err);
        }
        std::vector<uint8_t> crop((size_t)w * h * 3);
        for (int row = 0; row < h; ++row)
            std::copy_n(&full[((size_t)(y + row) * vw + x) * 3], (size_t)w * 3, &crop[(size_t)row * w * 3]);
        frames.push_back(std::move(crop));
    }
    cbi_video_close(v);
    return frames;
}

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
