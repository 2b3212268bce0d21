// The ONNX node test vectors of cpu_onnx_nodes.cpp on the CUDA backend, fp32
// (dense through cuDNN, change-based through cbinfer's kernels); skipped
// without a device.
#include <gtest/gtest.h>

#include "onnx_node_tests.h"
#include "test_util.h"

namespace {

class OnnxNodeGpu : public ::testing::TestWithParam<const char *> {};

TEST_P(OnnxNodeGpu, MatchesTheReferenceOutput)
{
    SKIP_WITHOUT_CUDA();
    // cuDNN may take TF32-free but re-associated paths: fp32 within 1e-4.
    cbi_test_run_onnx_node_case(GetParam(), CBINFER_BACKEND_CUDA, 1e-4f);
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Cases, OnnxNodeGpu, ::testing::ValuesIn(cbi_test_onnx_node_cases()),
                         cbi_test_onnx_node_case_name);
