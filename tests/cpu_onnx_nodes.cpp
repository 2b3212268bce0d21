// The ONNX node test vectors (Debian libonnx-testdata) of the ops the
// surveillance models brought in: linear Resize, grouped and depthwise Conv,
// Sigmoid; each dense and change-based at threshold 0 on the CPU.
#include <gtest/gtest.h>

#include "onnx_node_tests.h"

namespace {

class OnnxNodeCpu : public ::testing::TestWithParam<const char *> {};

TEST_P(OnnxNodeCpu, MatchesTheReferenceOutput)
{
    cbi_test_run_onnx_node_case(GetParam(), CBINFER_BACKEND_CPU, 1e-5f);
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Cases, OnnxNodeCpu, ::testing::ValuesIn(cbi_test_onnx_node_cases()),
                         cbi_test_onnx_node_case_name);
