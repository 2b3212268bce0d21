// The bench programs end to end: cbinfer-cameras (several cameras in several
// threads of one process on one network, and its exit statuses) and
// cbinfer-bench --dump-frames.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <string>

#include "test_util.h"

namespace {

int run_cameras(const std::string &args, const std::string &out_path)
{
    return cbi_test_run_tool(CBINFER_TEST_CAMERAS_EXE, args, out_path);
}

// A 40x32 crop of the first n frames of vtest.avi as a raw rgb24 file at
// path (as --raw reads it); returns the bytes written.
std::string write_raw_frames(const std::string &path, int n)
{
    std::string bytes;
    for (auto &fr : cbi_test_read_frames("vtest.avi", 0, n, 300, 250, 40, 32))
        bytes.append((const char *)fr.data(), fr.size());
    std::ofstream(path, std::ios::binary) << bytes;
    return bytes;
}

} // namespace

TEST(Cameras, ToolRunsSeveralCameras)
{
    const std::string raw = ::testing::TempDir() + "cbinfer_cameras.rgb";
    const std::string out = ::testing::TempDir() + "cbinfer_cameras.txt";
    write_raw_frames(raw, 3);
    const std::string base = "--model '" + cbi_test_model("vgg7-noise1") + "' --raw 40x32:'" + raw + "' ";
    ASSERT_EQ(run_cameras(base + "--cameras 3 --threads 1 --threshold 0.01", out), 0);
    const std::string text = cbi_test_slurp(out);
    EXPECT_NE(text.find("cameras 3, threads per stream 1, mode cbinfer"), std::string::npos) << text;
    EXPECT_NE(text.find("3 frames each"), std::string::npos) << text;
    EXPECT_NE(text.find("frames/s in total (oneDNN"), std::string::npos) << text;
    EXPECT_EQ(run_cameras(base + "--mode dense", out), 0);
    EXPECT_NE(cbi_test_slurp(out).find("cameras 2, threads per stream 0 (every core), mode dense"),
              std::string::npos);

    EXPECT_EQ(run_cameras(base + "--cameras 0", out), 2);
    EXPECT_EQ(run_cameras(base + "--threads -1", out), 2);
    EXPECT_EQ(run_cameras(base + "--mode fast", out), 2);
    EXPECT_EQ(run_cameras(base + "--cameras", out), 2);
    EXPECT_EQ(run_cameras(base + "--threads ''", out), 2);
    EXPECT_EQ(run_cameras(base + "--threshold inf", out), 2);
    EXPECT_EQ(run_cameras("--model '" + cbi_test_model("vgg7-noise1") + "' --raw 40x32:", out), 2);
    EXPECT_EQ(run_cameras("--raw 40x32:'" + raw + "'", out), 2);
    EXPECT_EQ(run_cameras("--model '" + cbi_test_model("vgg7-noise1") + "' --raw 40x32:/no/such/file", out), 1);
    // A file shorter than two frames (one is the warm-up), and a model that
    // does not exist.
    EXPECT_EQ(run_cameras("--model '" + cbi_test_model("vgg7-noise1") + "' --raw 40x64:'" + raw + "'", out), 1);
    EXPECT_EQ(run_cameras("--model /no/such/model.onnx --raw 40x32:'" + raw + "'", out), 1);
    std::remove(raw.c_str());
    std::remove(out.c_str());
}

// --dump-frames writes exactly the frames fed to the network, warm-up
// included, from the first pass only (--per-layer adds a second pass), in
// the format --raw reads back.
TEST(Bench, DumpFramesWritesTheFedFrames)
{
    const int w = 40, h = 32;
    const std::string raw = ::testing::TempDir() + "cbinfer_dump_in.rgb";
    const std::string dump = ::testing::TempDir() + "cbinfer_dump_out.rgb";
    const std::string out = ::testing::TempDir() + "cbinfer_dump.txt";
    const std::string expected = write_raw_frames(raw, 5);
    const std::string args = "--model '" + cbi_test_model("vgg7-noise1") + "' --raw 40x32:'" + raw +
                             "' --frames 3 --warmup 1 --mode cbinfer --threshold 0.01 --per-layer" +
                             " --dump-frames '" + dump + "'";
    ASSERT_EQ(cbi_test_run_tool(CBINFER_TEST_BENCH_EXE, args, out), 0) << cbi_test_slurp(out);
    const std::string got = cbi_test_slurp(dump);
    ASSERT_EQ(got.size(), (size_t)4 * w * h * 3); // 1 warm-up + 3 timed frames
    EXPECT_TRUE(got == expected.substr(0, got.size()));
    EXPECT_EQ(cbi_test_run_tool(CBINFER_TEST_BENCH_EXE,
                                "--model '" + cbi_test_model("vgg7-noise1") + "' --raw 40x32:'" + raw +
                                    "' --dump-frames /no/such/dir/f.rgb",
                                out),
              1);
    std::remove(raw.c_str());
    std::remove(dump.c_str());
    std::remove(out.c_str());
}

// --raw WxH:- reads frames from a pipe fed by another process (issue 11,
// class 5: it used to be opened twice and refused).
TEST(Bench, RawFramesFromAPipe)
{
    const std::string raw = ::testing::TempDir() + "cbinfer_pipe_in.rgb";
    const std::string out = ::testing::TempDir() + "cbinfer_pipe.txt";
    write_raw_frames(raw, 4);
    const std::string cmd = "cat '" + raw + "' | '" + CBINFER_TEST_BENCH_EXE + "' --model '" +
                            cbi_test_model("vgg7-noise1") +
                            "' --raw 40x32:- --warmup 1 --mode compare --threshold 0.01 > '" + out +
                            "' 2>&1";
    const int st = std::system(cmd.c_str());
    ASSERT_TRUE(st != -1 && WIFEXITED(st)) << cmd;
    EXPECT_EQ(WEXITSTATUS(st), 0) << cbi_test_slurp(out);
    EXPECT_NE(cbi_test_slurp(out).find("3 timed frames"), std::string::npos) << cbi_test_slurp(out);
    std::remove(raw.c_str());
    std::remove(out.c_str());
}

// --policy end to end: compare mode runs the chosen policy against dense,
// the JSON records it with the MAC counts, and at threshold 0 the policy
// is exact.
TEST(Bench, PolicyCompareRecordsThePolicy)
{
    const std::string raw = ::testing::TempDir() + "cbinfer_policy_in.rgb";
    const std::string json = ::testing::TempDir() + "cbinfer_policy.json";
    const std::string out = ::testing::TempDir() + "cbinfer_policy.txt";
    write_raw_frames(raw, 4);
    const std::string args = "--model '" + cbi_test_model("vgg7-noise1") + "' --raw 40x32:'" + raw +
                             "' --warmup 1 --mode compare --policy evnet --granularity chunk:8 "
                             "--json '" + json + "'";
    ASSERT_EQ(cbi_test_run_tool(CBINFER_TEST_BENCH_EXE, args, out), 0) << cbi_test_slurp(out);
    const std::string text = cbi_test_slurp(out), j = cbi_test_slurp(json);
    EXPECT_NE(text.find("MACs per frame"), std::string::npos) << text;
    EXPECT_NE(text.find("max abs"), std::string::npos) << text;
    EXPECT_NE(j.find("\"spec\": \"evnet:chunk=8\""), std::string::npos) << j.substr(0, 2000);
    EXPECT_NE(j.find("\"macs_executed\""), std::string::npos);
    EXPECT_NE(j.find("\"state_bytes\""), std::string::npos);
    std::remove(raw.c_str());
    std::remove(json.c_str());
    std::remove(out.c_str());
}

// A network with several outputs: --dump-output writes one .npy per output
// (frame_%05d_o<k>.npy), each with its own shape in the header, and compare
// mode's quality covers them all.
TEST(Bench, DumpOutputWritesEveryOutput)
{
    const std::string raw = ::testing::TempDir() + "cbinfer_multi_in.rgb";
    const std::string dir = ::testing::TempDir() + "cbinfer_multi_out";
    const std::string out = ::testing::TempDir() + "cbinfer_multi.txt";
    std::remove((dir + "/frame_00000_o0.npy").c_str());
    ASSERT_EQ(std::system(("mkdir -p '" + dir + "'").c_str()), 0);
    write_raw_frames(raw, 3);
    const std::string args = "--model '" + cbi_test_model("nanodet") + "' --raw 40x32:'" + raw +
                             "' --resize 64x32 --frames 2 --warmup 0 --mode compare --threshold 0" +
                             " --dump-output '" + dir + "'";
    ASSERT_EQ(cbi_test_run_tool(CBINFER_TEST_BENCH_EXE, args, out), 0) << cbi_test_slurp(out);
    const char *shapes[] = {"(1, 124, 4, 8)", "(1, 124, 2, 4)", "(1, 124, 1, 2)"};
    for (int f = 0; f < 2; ++f)
        for (int k = 0; k < 3; ++k) {
            char name[64];
            std::snprintf(name, sizeof name, "/frame_%05d_o%d.npy", f, k);
            const std::string npy = cbi_test_slurp(dir + name);
            ASSERT_FALSE(npy.empty()) << name;
            EXPECT_NE(npy.find(shapes[k]), std::string::npos) << name;
        }
    EXPECT_TRUE(cbi_test_slurp(dir + "/frame_00000.npy").empty());
    EXPECT_NE(cbi_test_slurp(out).find("quality vs dense"), std::string::npos);
    std::remove(raw.c_str());
    std::remove(out.c_str());
}

// --cameras N end to end: N cameras of the same frames from spread start
// frames, a dense batch, independent streams and a change-based batch in
// one compare run; the batch equals the independent streams, the JSON has
// the three throughputs. Usage errors: stdin, --input-npy, --calibrate.
TEST(Bench, CamerasComparesBatchedWithIndependent)
{
    const std::string raw = ::testing::TempDir() + "cbinfer_cameras_in.rgb";
    const std::string json = ::testing::TempDir() + "cbinfer_cameras.json";
    const std::string out = ::testing::TempDir() + "cbinfer_cameras.txt";
    write_raw_frames(raw, 12);
    const std::string model = cbi_test_model("vgg7-noise1");
    const std::string args = "--model '" + model + "' --raw 40x32:'" + raw +
                             "' --frames 3 --warmup 1 --mode compare --threshold 0.02 "
                             "--cameras 3 --json '" + json + "'";
    ASSERT_EQ(cbi_test_run_tool(CBINFER_TEST_BENCH_EXE, args, out), 0) << cbi_test_slurp(out);
    const std::string text = cbi_test_slurp(out), j = cbi_test_slurp(json);
    EXPECT_NE(text.find("3 cameras (3 timed steps)"), std::string::npos) << text;
    EXPECT_NE(text.find("max |batch - independent| 0\n"), std::string::npos) << text;
    EXPECT_NE(j.find("\"cameras\": {"), std::string::npos) << j.substr(0, 3000);
    // 12 frames, 4 per camera: starts 0, 4 and 8.
    std::string flat;
    for (char ch : j)
        if (!std::isspace((unsigned char)ch)) flat += ch;
    EXPECT_NE(flat.find("\"starts\":[0,4,8]"), std::string::npos) << j.substr(0, 3000);
    for (const char *key : {"\"dense_fps\": ", "\"independent_fps\": ", "\"batched_fps\": "}) {
        const size_t at = j.find(key);
        ASSERT_NE(at, std::string::npos) << key;
        EXPECT_GT(std::strtod(j.c_str() + at + std::string(key).size(), nullptr), 0.0) << key;
    }
    EXPECT_NE(j.find("\"batched_vs_independent_max_abs\": 0"), std::string::npos);
    // More frames per camera than the input has: a runtime error.
    EXPECT_EQ(cbi_test_run_tool(CBINFER_TEST_BENCH_EXE,
                                "--model '" + model + "' --raw 40x32:'" + raw +
                                    "' --frames 20 --cameras 3",
                                out),
              1);
    std::remove(raw.c_str());
    std::remove(json.c_str());
    std::remove(out.c_str());
}
