// cbinfer-bench's command line (bench/bench_args.c): every flag, the input
// exclusivity, malformed values and unknown flags.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "../bench/bench_args.h"
#include "cbinfer.h"

namespace {

struct Parsed {
    int rc = -1;
    cbi_bench_args args{};
    std::string err;
    std::vector<std::string> storage;  // keeps argv's strings alive for args' pointers
};

// Parses "cbinfer-bench" followed by the given arguments.
Parsed parse(std::vector<std::string> argv_in)
{
    Parsed p;
    p.storage = std::move(argv_in);
    p.storage.insert(p.storage.begin(), "cbinfer-bench");
    std::vector<char *> argv;
    for (auto &s : p.storage) argv.push_back(&s[0]);
    argv.push_back(nullptr);
    char err[512];
    std::memset(err, 'x', sizeof err);  // the parser must terminate it
    err[sizeof err - 1] = '\0';
    p.rc = cbi_bench_parse_args((int)p.storage.size(), argv.data(), &p.args, err, sizeof err);
    p.err = err;
    return p;
}

// A minimal valid command line plus extra arguments.
Parsed parse_with(std::vector<std::string> extra)
{
    std::vector<std::string> a = {"--model", "m.onnx", "--video", "v.avi"};
    a.insert(a.end(), extra.begin(), extra.end());
    return parse(a);
}

// Fails with a message that mentions `needle`.
void expect_usage_error(const Parsed &p, const std::string &needle)
{
    EXPECT_EQ(p.rc, 2);
    EXPECT_NE(p.err.find(needle), std::string::npos) << "message: " << p.err;
    EXPECT_EQ(p.err.find('\n'), std::string::npos) << "one line: " << p.err;
}

}  // namespace

TEST(BenchArgs, Defaults)
{
    Parsed p = parse({"--model", "m.onnx", "--video", "v.avi"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_STREQ(p.args.model, "m.onnx");
    EXPECT_EQ(p.args.input, CBI_BENCH_INPUT_VIDEO);
    EXPECT_STREQ(p.args.input_path, "v.avi");
    EXPECT_EQ(p.args.resize_w, 0);
    EXPECT_EQ(p.args.resize_h, 0);
    EXPECT_EQ(p.args.skip, 0);
    EXPECT_EQ(p.args.frames, -1);
    EXPECT_EQ(p.args.backend, CBI_BENCH_BACKEND_AUTO);
    EXPECT_EQ(p.args.mode, CBINFER_MODE_CBINFER);
    EXPECT_EQ(p.args.threshold, 0.0f);
    EXPECT_EQ(p.args.dump_dir, nullptr);
    EXPECT_EQ(p.args.stats, 0);
    EXPECT_EQ(p.args.help, 0);
    EXPECT_EQ(p.args.version, 0);
    EXPECT_EQ(p.err, "");
}

TEST(BenchArgs, ModelIsRequired)
{
    expect_usage_error(parse({"--video", "v.avi"}), "--model");
    expect_usage_error(parse({"--model", "", "--video", "v.avi"}), "empty");
}

TEST(BenchArgs, Video)
{
    Parsed p = parse({"--video", "/data/a b.avi", "--model", "m.onnx"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.input, CBI_BENCH_INPUT_VIDEO);
    EXPECT_STREQ(p.args.input_path, "/data/a b.avi");
}

TEST(BenchArgs, Raw)
{
    Parsed p = parse({"--model", "m.onnx", "--raw", "640x480:frames.rgb"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.input, CBI_BENCH_INPUT_RAW);
    EXPECT_EQ(p.args.raw_w, 640);
    EXPECT_EQ(p.args.raw_h, 480);
    EXPECT_STREQ(p.args.input_path, "frames.rgb");

    p = parse({"--model", "m.onnx", "--raw", "32x16:-"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_STREQ(p.args.input_path, "-");
    // stdin is read once: modes that read the frames again need a file.
    for (const char *extra : {"--per-layer", "--export-profile=p.json", "--sweep=1,2",
                              "--calibrate=b.txt"})
        expect_usage_error(parse({"--model", "m.onnx", "--raw", "32x16:-", extra}), "stdin");
    EXPECT_EQ(parse({"--model", "m.onnx", "--raw", "32x16:-", "--sweep", "2"}).rc, 0);

    // The path may contain ':'; only the first one ends the size.
    p = parse({"--model", "m.onnx", "--raw=8x8:c:/x:y.rgb"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_STREQ(p.args.input_path, "c:/x:y.rgb");
}

TEST(BenchArgs, RawMalformed)
{
    expect_usage_error(parse({"--model", "m", "--raw", "640x480"}), "WxH:PATH");
    expect_usage_error(parse({"--model", "m", "--raw", "640x480:"}), "empty path");
    expect_usage_error(parse({"--model", "m", "--raw", "640:f.rgb"}), "malformed size");
    expect_usage_error(parse({"--model", "m", "--raw", "x480:f.rgb"}), "malformed size");
    expect_usage_error(parse({"--model", "m", "--raw", "0x480:f.rgb"}), "out of range");
    expect_usage_error(parse({"--model", "m", "--raw", "-640x480:f.rgb"}), "malformed size");
    expect_usage_error(parse({"--model", "m", "--raw", ":f.rgb"}), "malformed size");
}

TEST(BenchArgs, InputNpy)
{
    Parsed p = parse({"--model", "m.onnx", "--input-npy", "x.npy"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.input, CBI_BENCH_INPUT_NPY);
    EXPECT_STREQ(p.args.input_path, "x.npy");
    // One tensor, run once: frame selection and resizing do not apply.
    expect_usage_error(parse({"--model", "m", "--input-npy", "x.npy", "--resize", "8x8"}),
                       "--resize");
    expect_usage_error(parse({"--model", "m", "--input-npy", "x.npy", "--skip", "1"}), "--skip");
    expect_usage_error(parse({"--model", "m", "--input-npy", "x.npy", "--frames", "2"}),
                       "--frames");
    expect_usage_error(parse({"--model", "m", "--input-npy", "x.npy", "--dump-frames", "f.rgb"}),
                       "--dump-frames");
}

TEST(BenchArgs, ExactlyOneInput)
{
    expect_usage_error(parse({"--model", "m.onnx"}), "input is required");
    expect_usage_error(parse({"--model", "m", "--video", "a.avi", "--raw", "4x4:f"}),
                       "exactly one input");
    expect_usage_error(parse({"--model", "m", "--video", "a.avi", "--input-npy", "x.npy"}),
                       "exactly one input");
    expect_usage_error(parse({"--model", "m", "--raw", "4x4:f", "--input-npy", "x.npy"}),
                       "exactly one input");
    expect_usage_error(parse({"--model", "m", "--video", "a.avi", "--video", "b.avi"}),
                       "exactly one input");
}

TEST(BenchArgs, Resize)
{
    Parsed p = parse_with({"--resize", "384x288"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.resize_w, 384);
    EXPECT_EQ(p.args.resize_h, 288);
    p = parse_with({"--resize=10X20"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.resize_w, 10);
    EXPECT_EQ(p.args.resize_h, 20);
}

TEST(BenchArgs, MalformedSizes)
{
    for (const char *bad : {"384", "384x", "x288", "384x288x3", "384*288", "384 x288", "a384x288",
                            "384x288 ", "", "384x-288", "-384x288", "3.5x2"})
        expect_usage_error(parse_with({"--resize", bad}), "malformed size");
    for (const char *bad : {"0x288", "384x0", "99999x10", "100000000000000000000x10"})
        expect_usage_error(parse_with({"--resize", bad}), "out of range");
}

TEST(BenchArgs, SkipAndFrames)
{
    Parsed p = parse_with({"--skip", "25", "--frames=100"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.skip, 25);
    EXPECT_EQ(p.args.frames, 100);
    p = parse_with({"--skip", "0"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.skip, 0);
}

TEST(BenchArgs, NegativeAndMalformedNumbers)
{
    expect_usage_error(parse_with({"--skip", "-1"}), "negative");
    expect_usage_error(parse_with({"--frames", "-5"}), "negative");
    expect_usage_error(parse_with({"--frames", "0"}), "at least 1");
    expect_usage_error(parse_with({"--threshold", "-0.5"}), "negative");
    expect_usage_error(parse_with({"--skip", "1O"}), "integer");
    expect_usage_error(parse_with({"--skip", "3.0"}), "integer");
    expect_usage_error(parse_with({"--skip", ""}), "integer");
    expect_usage_error(parse_with({"--skip", " 3"}), "integer");
    expect_usage_error(parse_with({"--skip", "99999999999"}), "--skip");
    expect_usage_error(parse_with({"--frames", "99999999999999999999999"}), "--frames");
    expect_usage_error(parse_with({"--threshold", "abc"}), "number");
    expect_usage_error(parse_with({"--threshold", "0.1x"}), "number");
    expect_usage_error(parse_with({"--threshold", "nan"}), "finite");
    expect_usage_error(parse_with({"--threshold", "inf"}), "finite");
    expect_usage_error(parse_with({"--threshold", "1e39"}), "finite");
}

TEST(BenchArgs, Backend)
{
    Parsed p = parse_with({"--backend", "cpu"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.backend, CBINFER_BACKEND_CPU);
    p = parse_with({"--backend=cuda"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.backend, CBINFER_BACKEND_CUDA);
    expect_usage_error(parse_with({"--backend", "gpu"}), "cpu or cuda");
    expect_usage_error(parse_with({"--backend", "CPU"}), "cpu or cuda");
}

TEST(BenchArgs, Mode)
{
    Parsed p = parse_with({"--mode", "dense"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.mode, CBINFER_MODE_DENSE);
    p = parse_with({"--mode", "cbinfer"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.mode, CBINFER_MODE_CBINFER);
    p = parse_with({"--mode", "cbinfer-ff"}); // an alias of --policy cbinfer-ff
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.mode, CBINFER_MODE_CBINFER);
    EXPECT_STREQ(p.args.policy_spec, "cbinfer-ff");
    p = parse_with({"--mode", "compare"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.mode, CBI_BENCH_MODE_COMPARE);
    expect_usage_error(parse_with({"--mode", "ff"}), "dense, cbinfer, cbinfer-ff or compare");
}

TEST(BenchArgs, Threshold)
{
    Parsed p = parse_with({"--threshold", "0.05"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_FLOAT_EQ(p.args.threshold, 0.05f);
    p = parse_with({"--threshold=2e-3"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_FLOAT_EQ(p.args.threshold, 0.002f);
    p = parse_with({"--threshold", "-0"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_FALSE(std::signbit(p.args.threshold));
}

TEST(BenchArgs, DumpOutputAndStats)
{
    Parsed p = parse_with({"--dump-output", "out/dir", "--stats"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_STREQ(p.args.dump_dir, "out/dir");
    EXPECT_EQ(p.args.stats, 1);
    EXPECT_EQ(p.args.reuse_1x1, 0);
    EXPECT_EQ(parse_with({"--reuse-1x1"}).args.reuse_1x1, 1);
    EXPECT_EQ(p.args.threads, 0);
    EXPECT_EQ(parse_with({"--threads", "3"}).args.threads, 3);
    expect_usage_error(parse_with({"--threads", "-1"}), "--threads");
    EXPECT_STREQ(parse_with({"--dump-frames", "f.rgb"}).args.dump_frames, "f.rgb");
    expect_usage_error(parse_with({"--dump-frames", ""}), "empty");
    expect_usage_error(parse_with({"--dump-output", ""}), "empty");
    expect_usage_error(parse_with({"--stats=1"}), "takes no value");
}

TEST(BenchArgs, HelpAndVersion)
{
    // They end parsing: nothing else is required.
    Parsed p = parse({"--help"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.help, 1);
    p = parse({"--version"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.version, 1);
    p = parse({"--model", "m", "--help", "--no-such-flag"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.help, 1);
    EXPECT_NE(std::string(cbi_bench_usage()).find("--threshold"), std::string::npos);
}

TEST(BenchArgs, UnknownFlagsAndArguments)
{
    expect_usage_error(parse_with({"--no-such-flag"}), "unknown flag '--no-such-flag'");
    expect_usage_error(parse_with({"--no-such-flag=3"}), "unknown flag '--no-such-flag'");
    expect_usage_error(parse_with({"-h"}), "unexpected argument '-h'");
    expect_usage_error(parse_with({"stray"}), "unexpected argument 'stray'");
    expect_usage_error(parse_with({"--"}), "unexpected argument '--'");
    expect_usage_error(parse_with({"--Model", "x"}), "unknown flag");
    expect_usage_error(parse_with({"--thresh", "0.1"}), "unknown flag");
    expect_usage_error(parse_with({std::string("--") + std::string(100, 'a')}), "unknown flag");
}

TEST(BenchArgs, MissingValue)
{
    for (const char *flag :
         {"--model", "--video", "--raw", "--input-npy", "--resize", "--skip", "--frames",
          "--backend", "--mode", "--threshold", "--dump-output", "--warmup", "--precision",
          "--threshold-scale", "--thresholds", "--break-even", "--sweep", "--json",
          "--export-profile", "--csv", "--workload", "--model-dir", "--calibrate"}) {
        Parsed p = parse({"--model", "m", "--video", "v", flag});
        expect_usage_error(p, std::string(flag) + " needs a value");
    }
    // A following flag is taken as the value and rejected as one.
    expect_usage_error(parse_with({"--skip", "--frames", "3"}), "integer");
}

TEST(BenchArgs, LastRepeatWins)
{
    Parsed p =
        parse_with({"--skip", "3", "--skip", "4", "--mode", "dense", "--mode", "cbinfer-ff"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.skip, 4);
    EXPECT_EQ(p.args.mode, CBINFER_MODE_CBINFER);
    EXPECT_STREQ(p.args.policy_spec, "cbinfer-ff");
}

// Parses with extra flags and expects the policy spec they compose.
static void expect_spec(std::vector<std::string> extra, const char *spec)
{
    Parsed p = parse_with(extra);
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_STREQ(p.args.policy_spec, spec);
}

// --policy and its options make one spec of cbinfer_stream_set_policy; an
// option of another policy is refused, never ignored.
TEST(BenchArgs, PolicyFlags)
{
    expect_spec({}, "cbinfer");
    expect_spec({"--policy", "evnet", "--granularity", "chunk:16", "--mode", "compare"},
                "evnet:chunk=16");
    expect_spec({"--policy", "evnet", "--granularity", "pixel"}, "evnet:pixel");
    expect_spec({"--policy", "skipconv", "--gate", "output", "--block", "4", "--reset", "8"},
                "skipconv:output,block=4,reset=8");
    expect_spec({"--policy", "skipconv"}, "skipconv:input,block=1,reset=0");
    expect_spec({"--policy", "sigmadelta"}, "sigmadelta");
    expect_spec({"--policy", "evnet", "--granularity", "pixel", "--compute", "recompute"},
                "evnet:pixel,recompute");
    expect_spec({"--policy", "sigmadelta", "--compute", "scatter"}, "sigmadelta:scatter");
    expect_spec({"--policy", "evnet", "--compute", "auto"}, "evnet");
    expect_usage_error(parse_with({"--policy", "skipconv", "--compute", "scatter"}),
                       "--compute applies to --policy evnet or sigmadelta, not skipconv");
    expect_usage_error(parse_with({"--policy", "evnet", "--compute", "fast"}),
                       "--compute must be auto, scatter or recompute");
    expect_usage_error(parse_with({"--policy", "delta"}), "--policy must be cbinfer, cbinfer-ff");
    expect_usage_error(parse_with({"--policy", "sigmadelta", "--granularity", "pixel"}),
                       "--granularity applies to --policy evnet, not sigmadelta");
    expect_usage_error(parse_with({"--policy", "evnet", "--block", "2"}),
                       "--block applies to --policy skipconv, not evnet");
    expect_usage_error(parse_with({"--gate", "output"}),
                       "--gate applies to --policy skipconv, not cbinfer");
    expect_usage_error(parse_with({"--policy", "evnet", "--granularity", "chunk:0"}),
                       "--granularity must be element, pixel or chunk:G");
    expect_usage_error(parse_with({"--policy", "evnet", "--granularity", "chunk:4x"}),
                       "--granularity must be element, pixel or chunk:G");
    expect_usage_error(parse_with({"--policy", "skipconv", "--block", "0"}),
                       "--block needs a whole number in 1..65536");
    expect_usage_error(parse_with({"--policy", "skipconv", "--reset", "-1"}),
                       "--reset needs a whole number in 0..65536");
    expect_usage_error(parse_with({"--policy", "evnet", "--mode", "cbinfer-ff"}),
                       "--mode cbinfer-ff is --policy cbinfer-ff");
    expect_usage_error(parse_with({"--policy", "evnet", "--mode", "dense"}),
                       "--mode dense has none");
}

TEST(BenchArgs, NewFlagDefaults)
{
    Parsed p = parse_with({});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.warmup, 0);
    EXPECT_EQ(p.args.precision, CBINFER_PRECISION_FP32);
    EXPECT_EQ(p.args.threshold_scale, 1.0);
    EXPECT_EQ(p.args.thresholds_file, nullptr);
    EXPECT_EQ(p.args.break_even_file, nullptr);
    EXPECT_EQ(p.args.sweep_count, 0);
    EXPECT_EQ(p.args.per_layer, 0);
    EXPECT_EQ(p.args.json_path, nullptr);
    EXPECT_EQ(p.args.profile_path, nullptr);
    EXPECT_EQ(p.args.csv_path, nullptr);
    EXPECT_EQ(p.args.calibrate_path, nullptr);
    EXPECT_EQ(p.args.workload, nullptr);
    EXPECT_EQ(p.args.model_dir, nullptr);
}

TEST(BenchArgs, Warmup)
{
    Parsed p = parse_with({"--warmup", "5"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.warmup, 5);
    EXPECT_EQ(parse_with({"--warmup=0"}).args.warmup, 0);
    expect_usage_error(parse_with({"--warmup", "-1"}), "negative");
    expect_usage_error(parse_with({"--warmup", "two"}), "integer");
    expect_usage_error(parse({"--model", "m", "--input-npy", "x.npy", "--warmup", "1"}),
                       "--warmup");
}

TEST(BenchArgs, Precision)
{
    EXPECT_EQ(parse_with({"--precision", "fp32"}).args.precision, CBINFER_PRECISION_FP32);
    EXPECT_EQ(parse_with({"--precision", "tf32"}).args.precision, CBINFER_PRECISION_TF32);
    EXPECT_EQ(parse_with({"--precision=fp16"}).args.precision, CBINFER_PRECISION_FP16);
    // The CPU backend's refusal of fp16 is the library's to report, at run time.
    EXPECT_EQ(parse_with({"--precision", "fp16", "--backend", "cpu"}).rc, 0);
    expect_usage_error(parse_with({"--precision", "bf16"}), "fp32, tf32 or fp16");
    expect_usage_error(parse_with({"--precision", "FP32"}), "fp32, tf32 or fp16");
}

TEST(BenchArgs, ThresholdScale)
{
    Parsed p = parse_with({"--threshold-scale", "2.5"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.threshold_scale, 2.5);
    EXPECT_EQ(p.args.threshold_scale_given, 1);
    expect_usage_error(parse_with({"--threshold-scale", "-1"}), "negative");
    expect_usage_error(parse_with({"--threshold-scale", "x"}), "number");
    expect_usage_error(parse_with({"--threshold-scale", "inf"}), "finite");
}

TEST(BenchArgs, LayerFiles)
{
    Parsed p = parse_with({"--threshold", "0.01", "--thresholds", "t.txt", "--break-even", "b.txt"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_FLOAT_EQ(p.args.threshold, 0.01f);
    EXPECT_STREQ(p.args.thresholds_file, "t.txt");
    EXPECT_STREQ(p.args.break_even_file, "b.txt");
    expect_usage_error(parse_with({"--thresholds", ""}), "empty path");
    expect_usage_error(parse_with({"--break-even="}), "empty path");
}

TEST(BenchArgs, Sweep)
{
    Parsed p = parse_with({"--sweep", "0,0.5,1,2e0"});
    ASSERT_EQ(p.rc, 0) << p.err;
    ASSERT_EQ(p.args.sweep_count, 4);
    EXPECT_EQ(p.args.sweep[0], 0.0);
    EXPECT_EQ(p.args.sweep[1], 0.5);
    EXPECT_EQ(p.args.sweep[3], 2.0);
    EXPECT_EQ(parse_with({"--sweep=3"}).args.sweep_count, 1);
    for (const char *bad : {"", ",", "1,", ",1", "1,,2"})
        expect_usage_error(parse_with({"--sweep", bad}), "empty item");
    expect_usage_error(parse_with({"--sweep", "1,x"}), "'x'");
    expect_usage_error(parse_with({"--sweep", "1,-2"}), "negative");
    expect_usage_error(parse_with({"--sweep", "1;2"}), "number");
    expect_usage_error(parse_with({"--sweep", "1, 2"}), "number");
    expect_usage_error(parse_with({"--sweep", "nan"}), "finite");
    std::string many = "1";
    for (int i = 0; i < CBI_BENCH_MAX_SWEEP; ++i) many += ",1";
    expect_usage_error(parse_with({"--sweep", many}), "more than");
    expect_usage_error(parse_with({"--sweep", "1,2", "--threshold-scale", "1"}), "exclude");
}

TEST(BenchArgs, Outputs)
{
    Parsed p = parse_with({"--json", "r.json", "--csv", "f.csv", "--per-layer"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_STREQ(p.args.json_path, "r.json");
    EXPECT_STREQ(p.args.csv_path, "f.csv");
    EXPECT_EQ(p.args.per_layer, 1);
    // --export-profile needs the profiling pass, so it implies --per-layer.
    p = parse_with({"--export-profile", "p.json"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_STREQ(p.args.profile_path, "p.json");
    EXPECT_EQ(p.args.per_layer, 1);
    expect_usage_error(parse_with({"--json", ""}), "empty path");
    expect_usage_error(parse_with({"--per-layer=1"}), "takes no value");
}

TEST(BenchArgs, Calibrate)
{
    Parsed p = parse_with({"--calibrate", "be.txt", "--threshold", "0.01"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_STREQ(p.args.calibrate_path, "be.txt");
    EXPECT_EQ(parse_with({"--calibrate", "be.txt", "--mode", "compare"}).rc, 0);
    expect_usage_error(parse_with({"--calibrate", "be.txt", "--mode", "dense"}), "--mode dense");
    expect_usage_error(parse_with({"--calibrate", "be.txt", "--sweep", "1,2"}), "--sweep");
    expect_usage_error(parse_with({"--calibrate", "be.txt", "--json", "r.json"}), "--json");
    expect_usage_error(parse_with({"--calibrate", "be.txt", "--per-layer"}), "--per-layer");
    expect_usage_error(parse_with({"--calibrate", ""}), "empty path");
}

TEST(BenchArgs, Workload)
{
    // Model and input come from the workload.
    Parsed p = parse({"--workload", "vgg7-noise1"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_STREQ(p.args.workload, "vgg7-noise1");
    EXPECT_EQ(p.args.model, nullptr);
    char err[512];
    ASSERT_EQ(cbi_bench_resolve(&p.args, "/b/build/bench/cbinfer-bench", "/data", err, sizeof err),
              0)
        << err;
    EXPECT_STREQ(p.args.model, "/b/build/models/vgg7-noise1.onnx");
    EXPECT_EQ(p.args.input, CBI_BENCH_INPUT_VIDEO);
    EXPECT_STREQ(p.args.input_path, "/data/data/video/vtest.avi");
    EXPECT_EQ(p.args.resize_w, 384);
    EXPECT_EQ(p.args.resize_h, 288);

    // Explicit --model, --video and --resize win; --model-dir moves the model.
    p = parse({"--workload", "realesr-x2", "--video", "mine.avi", "--resize", "96x72",
               "--model-dir", "/m"});
    ASSERT_EQ(p.rc, 0) << p.err;
    ASSERT_EQ(cbi_bench_resolve(&p.args, nullptr, nullptr, err, sizeof err), 0) << err;
    EXPECT_STREQ(p.args.model, "/m/realesr-x2.onnx");
    EXPECT_STREQ(p.args.input_path, "mine.avi");
    EXPECT_EQ(p.args.resize_w, 96);
    p = parse({"--workload", "openpose-synthetic", "--model", "x.onnx", "--video", "v.avi"});
    ASSERT_EQ(cbi_bench_resolve(&p.args, "/x/y/z", nullptr, err, sizeof err), 0) << err;
    EXPECT_STREQ(p.args.model, "x.onnx");
    EXPECT_EQ(p.args.resize_w, 490);
    EXPECT_EQ(p.args.resize_h, 368);

    // No input and no CBINFER_DATA_DIR: a clear error, not a guess.
    p = parse({"--workload", "scene-labeling-synthetic"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(cbi_bench_resolve(&p.args, "/b/bench/cbinfer-bench", nullptr, err, sizeof err), 2);
    EXPECT_NE(std::string(err).find("CBINFER_DATA_DIR"), std::string::npos) << err;

    expect_usage_error(parse({"--workload", "vgg8"}), "unknown workload 'vgg8'");
    expect_usage_error(parse({"--workload", ""}), "unknown workload");
    expect_usage_error(parse({"--workload", "vgg7-noise1", "--model-dir", ""}), "empty path");

    // Without --workload resolve changes nothing.
    p = parse_with({});
    ASSERT_EQ(cbi_bench_resolve(&p.args, "/b/bench/cbinfer-bench", "/data", err, sizeof err), 0);
    EXPECT_STREQ(p.args.model, "m.onnx");
    EXPECT_EQ(p.args.resize_w, 0);
}

TEST(BenchArgs, Task)
{
    char err[512];
    // The surveillance workloads decode their outputs by default.
    Parsed p = parse({"--workload", "nanodet"});
    ASSERT_EQ(p.rc, 0) << p.err;
    ASSERT_EQ(cbi_bench_resolve(&p.args, "/b/build/bench/cbinfer-bench", "/d", err, sizeof err), 0);
    EXPECT_EQ(p.args.task, CBI_BENCH_TASK_DETECT);
    p = parse({"--workload", "posenet"});
    ASSERT_EQ(cbi_bench_resolve(&p.args, "/b/build/bench/cbinfer-bench", "/d", err, sizeof err), 0);
    EXPECT_EQ(p.args.task, CBI_BENCH_TASK_POSE);
    p = parse({"--workload", "vgg7-noise1"});
    ASSERT_EQ(cbi_bench_resolve(&p.args, "/b/build/bench/cbinfer-bench", "/d", err, sizeof err), 0);
    EXPECT_EQ(p.args.task, CBI_BENCH_TASK_NONE);
    // --task overrides the workload's, and works with any model.
    p = parse({"--workload", "posenet", "--task", "none"});
    ASSERT_EQ(cbi_bench_resolve(&p.args, "/b/build/bench/cbinfer-bench", "/d", err, sizeof err), 0);
    EXPECT_EQ(p.args.task, CBI_BENCH_TASK_NONE);
    p = parse({"--model", "m.onnx", "--video", "v.avi", "--task", "detect",
               "--dump-detections", "d.jsonl"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.task, CBI_BENCH_TASK_DETECT);
    EXPECT_STREQ(p.args.dump_detections, "d.jsonl");
    p = parse({"--model", "m.onnx", "--video", "v.avi", "--task", "segment"});
    EXPECT_EQ(p.rc, 2);
    EXPECT_NE(std::string(p.err).find("none, detect or pose"), std::string::npos) << p.err;
    p = parse({"--model", "m.onnx", "--video", "v.avi", "--dump-detections", ""});
    EXPECT_EQ(p.rc, 2);
}

TEST(BenchArgs, Cameras)
{
    Parsed p = parse_with({"--cameras", "8"});
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_EQ(p.args.cameras, 8);
    EXPECT_EQ(parse_with({}).args.cameras, 0);
    expect_usage_error(parse_with({"--cameras", "0"}), "--cameras");
    expect_usage_error(parse_with({"--cameras", "257"}), "--cameras");
    expect_usage_error(parse({"--model", "m.onnx", "--input-npy", "x.npy", "--cameras", "2"}),
                       "--input-npy");
    expect_usage_error(parse({"--model", "m.onnx", "--raw", "8x8:-", "--cameras", "2"}), "stdin");
    expect_usage_error(parse_with({"--cameras", "2", "--calibrate", "b.thr"}), "--calibrate");
}
