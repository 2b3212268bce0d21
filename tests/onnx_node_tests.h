// The ONNX node test vectors of Debian's libonnx-testdata (model.onnx and
// test_data_set_0/{input,output}_k.pb per case) run through cbinfer. Shared
// by the CPU and the GPU suites.
#ifndef CBI_TEST_ONNX_NODE_TESTS_H
#define CBI_TEST_ONNX_NODE_TESTS_H

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cbinfer.h"

// The test data folder: $CBINFER_ONNX_TESTDATA, else the configure-time
// CBINFER_TEST_ONNX_TESTDATA (Debian: /usr/share/libonnx-testdata/data).
std::string cbi_test_onnx_testdata_dir();

// Runs case `rel` (e.g. "node/test_resize_upsample_scales_linear") on a
// backend. The model is rewritten the way cbinfer takes it: every graph
// input but the first becomes an initializer holding its input_k.pb (the
// runtime wants constant scales, sizes and weights), the first is widened to
// rank 4 with leading 1s (elementwise ops) and given batch 1. Each batch item
// of input_0 is pushed in turn, to a dense stream and to a cbinfer stream at
// threshold 0 and break-even 1 (so the items after the first run the
// change-based kernels, never the dense fallback), and every
// output must match output_k.pb's item within tol. Failures are recorded as
// GoogleTest failures naming the case.
void cbi_test_run_onnx_node_case(const std::string &rel, cbinfer_backend backend, float tol);

// The cases both suites run: linear Resize (every coordinate mode the
// vectors have), nearest Resize, grouped and depthwise Conv, Sigmoid.
const std::vector<const char *> &cbi_test_onnx_node_cases();
// A test name for a case ("resize_upsample_scales_linear").
std::string cbi_test_onnx_node_case_name(const ::testing::TestParamInfo<const char *> &info);

#endif
