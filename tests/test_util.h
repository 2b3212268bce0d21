// Shared helpers of the GoogleTest suites: where the data and models are,
// reading real frames, comparing tensors.
#ifndef CBI_TEST_UTIL_H
#define CBI_TEST_UTIL_H

#include <cstdint>
#include <string>
#include <vector>

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
// Whether a CUDA device can be used (false when built without CUDA).
bool cbi_test_has_cuda_device();

#endif
