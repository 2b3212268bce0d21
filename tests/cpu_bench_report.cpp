// cbinfer-bench's statistics (bench/bench_stats.c) and report writers
// (bench/report.c, bench/json_writer.c): percentiles, PSNR/MSE, the
// break-even fit, and the JSON / exportProfile / CSV structure, parsed back
// with a small JSON parser. No timing assertions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../bench/bench_stats.h"
#include "../bench/json_writer.h"
#include "../bench/report.h"

namespace {

// ---- a tiny JSON parser: enough to check the writers' output ----
struct JVal {
    enum Kind { Null, Bool, Num, Str, Arr, Obj } kind = Null;
    double num = 0;
    bool b = false;
    std::string str;
    std::vector<JVal> arr;
    std::vector<std::pair<std::string, JVal>> obj;  // in order, to check key order too

    bool has(const std::string &k) const
    {
        for (auto &m : obj)
            if (m.first == k) return true;
        return false;
    }
    const JVal &operator[](const std::string &k) const
    {
        for (auto &m : obj)
            if (m.first == k) return m.second;
        static JVal missing;
        ADD_FAILURE() << "missing key " << k;
        return missing;
    }
    std::vector<std::string> keys() const
    {
        std::vector<std::string> k;
        for (auto &m : obj) k.push_back(m.first);
        return k;
    }
};

struct Parser {
    const std::string &s;
    size_t i = 0;
    bool ok = true;
    explicit Parser(const std::string &text) : s(text) {}
    void ws()
    {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r')) ++i;
    }
    bool lit(const char *w)
    {
        size_t n = std::strlen(w);
        if (s.compare(i, n, w) != 0) return false;
        i += n;
        return true;
    }
    std::string string()
    {
        std::string out;
        if (s[i] != '"') {
            ok = false;
            return out;
        }
        ++i;
        while (i < s.size() && s[i] != '"') {
            unsigned char c = (unsigned char)s[i];
            if (c < 0x20) ok = false;  // raw control characters are invalid JSON
            if (c == '\\') {
                ++i;
                switch (s[i]) {
                case 'n': out += '\n'; break;
                case 't': out += '\t'; break;
                case 'r': out += '\r'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'u': out += (char)std::stoi(s.substr(i + 1, 4), nullptr, 16); i += 4; break;
                case '"': case '\\': case '/': out += s[i]; break;
                default: ok = false;
                }
                ++i;
            } else {
                out += s[i++];
            }
        }
        if (i >= s.size()) ok = false;
        ++i;
        return out;
    }
    JVal value()
    {
        JVal v;
        ws();
        if (i >= s.size()) {
            ok = false;
            return v;
        }
        char c = s[i];
        if (c == '{') {
            v.kind = JVal::Obj;
            ++i;
            ws();
            if (s[i] == '}') {
                ++i;
                return v;
            }
            for (;;) {
                ws();
                std::string k = string();
                ws();
                if (s[i++] != ':') ok = false;
                v.obj.emplace_back(k, value());
                ws();
                if (s[i] == ',') {
                    ++i;
                    continue;
                }
                if (s[i] == '}') {
                    ++i;
                    break;
                }
                ok = false;
                break;
            }
        } else if (c == '[') {
            v.kind = JVal::Arr;
            ++i;
            ws();
            if (s[i] == ']') {
                ++i;
                return v;
            }
            for (;;) {
                v.arr.push_back(value());
                ws();
                if (s[i] == ',') {
                    ++i;
                    continue;
                }
                if (s[i] == ']') {
                    ++i;
                    break;
                }
                ok = false;
                break;
            }
        } else if (c == '"') {
            v.kind = JVal::Str;
            v.str = string();
        } else if (lit("null")) {
            v.kind = JVal::Null;
        } else if (lit("true")) {
            v.kind = JVal::Bool;
            v.b = true;
        } else if (lit("false")) {
            v.kind = JVal::Bool;
        } else {
            // JSON numbers: -?digits[.digits][e[+-]digits]; no nan/inf.
            size_t start = i;
            if (s[i] == '-') ++i;
            if (i >= s.size() || !isdigit((unsigned char)s[i])) ok = false;
            while (i < s.size() && (isdigit((unsigned char)s[i]) || s[i] == '.' || s[i] == 'e' ||
                                    s[i] == 'E' || s[i] == '+' || s[i] == '-'))
                ++i;
            v.kind = JVal::Num;
            v.num = std::stod(s.substr(start, i - start));
        }
        return v;
    }
};

JVal parse_json(const std::string &text)
{
    Parser p(text);
    JVal v = p.value();
    p.ws();
    EXPECT_TRUE(p.ok) << text;
    EXPECT_EQ(p.i, text.size()) << "trailing text in " << text;
    return v;
}

// Runs a writer into a temporary file and returns what it wrote.
template <typename F> std::string capture(F write)
{
    FILE *f = std::tmpfile();
    EXPECT_NE(f, nullptr);
    if (!f) return "";
    write(f);
    std::fflush(f);
    std::string out;
    std::rewind(f);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    std::fclose(f);
    return out;
}

// A small synthetic compare-mode result: two frames, two layers, a profile.
struct Synthetic {
    cbi_frame_rec frames[2];
    cbi_layer_rec layers[2];
    cbi_run_result run{};
    cbi_profile_layer profile[2]{};
    cbi_bench_report r{};

    Synthetic()
    {
        frames[0] = {3, 10.0, 11.0, 1.0, 0.0, INFINITY, 0.0};
        frames[1] = {4, 10.5, 2.5, 0.25, 1e-4, 40.0, 0.02};
        layers[0] = cbi_layer_rec{"conv \"1\"\\a\n", "Conv", 0.25, 1e6, 2e6, 4e6, 1e4, 2e4, 4096, 0};
        layers[1] = cbi_layer_rec{"pool", "MaxPool", NAN, 0, 0, 0, 0, 0, 0, 0};
        run.threshold_scale = 0.5;
        run.has_dense = run.has_cbinfer = run.has_quality = 1;
        run.dense_ms = {10, 10.25, 10.25, 10.45, 10.475, 10.495};
        run.cbinfer_ms = {2.5, 6.75, 6.75, 10.15, 10.575, 10.915};
        run.dense_fps = 1e3 / 10.25;
        run.cbinfer_fps = 1e3 / 6.75;
        run.changed_share = 0.25;
        run.speedup = 10.25 / 6.75;
        run.mse = 5e-5;
        run.psnr_db = cbi_psnr_of_mse(5e-5);
        run.min_psnr_db = 40.0;
        run.max_abs = 0.02;
        run.layers = layers;
        run.layer_count = 2;
        run.frames = frames;
        run.frame_count = 2;
        profile[0] = {"conv \"1\"\\a\n", "Conv", 3.0, 1.5, 1.5, 75.0, 0.25, 0.25, {}};
        profile[0].step_ms[CBINFER_STEP_GEMM] = 1.0;
        profile[1] = {"pool", "MaxPool", 1.0, 0.5, 0.5, 25.0, NAN, NAN, {}};
        r.version = "0.1.0";
        r.commit = "abc1234";
        r.date = "2024-01-02T03:04:05Z";
        r.backend = "cpu";
        r.device_name = "Test CPU";
        r.cores = 2;
        r.model = "m.onnx";
        r.workload = nullptr;
        r.input = "v.avi";
        r.width = 96;
        r.height = 72;
        r.skip = 1;
        r.frames = 2;
        r.warmup = 2;
        r.mode = "compare";
        r.policy = "evnet:chunk=8";
        r.precision = "fp32";
        r.threshold = 0.01;
        r.runs = &run;
        r.run_count = 1;
        r.profile = profile;
        r.profile_layer_count = 2;
        r.profile_count = 2;
    }
};

bool balanced(const std::string &s)
{
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') ++i;
            else if (c == '"') in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            ++depth;
        } else if (c == '}' || c == ']') {
            if (--depth < 0) return false;
        }
    }
    return depth == 0 && !in_str;
}

}  // namespace

TEST(BenchStats, Percentiles)
{
    const double v[] = {1, 2, 3, 4, 5};
    EXPECT_DOUBLE_EQ(cbi_percentile_sorted(v, 5, 0), 1);
    EXPECT_DOUBLE_EQ(cbi_percentile_sorted(v, 5, 50), 3);
    EXPECT_DOUBLE_EQ(cbi_percentile_sorted(v, 5, 90), 4.6);
    EXPECT_DOUBLE_EQ(cbi_percentile_sorted(v, 5, 100), 5);
    EXPECT_DOUBLE_EQ(cbi_percentile_sorted(v, 1, 99), 1);
    EXPECT_DOUBLE_EQ(cbi_percentile_sorted(v, 0, 50), 0);

    // Any order in, sorted summary out; the input is left alone.
    double u[] = {5, 1, 4, 2, 3, 10, 9, 8, 7, 6};
    cbi_latency l;
    ASSERT_EQ(cbi_latency_of(u, 10, &l), 0);
    EXPECT_DOUBLE_EQ(l.min, 1);
    EXPECT_DOUBLE_EQ(l.mean, 5.5);
    EXPECT_DOUBLE_EQ(l.median, 5.5);
    EXPECT_NEAR(l.p90, 9.1, 1e-12);
    EXPECT_NEAR(l.p95, 9.55, 1e-12);
    EXPECT_NEAR(l.p99, 9.91, 1e-12);
    EXPECT_EQ(u[0], 5);
    EXPECT_DOUBLE_EQ(cbi_median(u, 4), 3.0);  // {5, 1, 4, 2}
    ASSERT_EQ(cbi_latency_of(u, 0, &l), 0);
    EXPECT_EQ(l.mean, 0);
    EXPECT_EQ(l.p99, 0);
}

TEST(BenchStats, Quality)
{
    const float ref[] = {0.0f, 0.5f, 1.0f, 0.25f};
    const float same[] = {0.0f, 0.5f, 1.0f, 0.25f};
    double mse, psnr, mx;
    cbi_nonfinite nf;
    cbi_quality(ref, same, 4, &mse, &psnr, &mx, &nf);
    EXPECT_EQ(mse, 0.0);
    EXPECT_TRUE(std::isinf(psnr) && psnr > 0);
    EXPECT_EQ(mx, 0.0);

    // Differences 0.1, -0.1, 0, 0: MSE 0.005, PSNR 10 log10(200), max 0.1.
    const float x[] = {0.1f, 0.4f, 1.0f, 0.25f};
    cbi_quality(ref, x, 4, &mse, &psnr, &mx, nullptr);
    EXPECT_NEAR(mse, 0.005, 1e-8);
    EXPECT_NEAR(psnr, 10.0 * std::log10(200.0), 1e-5);
    EXPECT_NEAR(mx, 0.1, 1e-7);

    EXPECT_DOUBLE_EQ(cbi_psnr_of_mse(0.01), 20.0);
    EXPECT_DOUBLE_EQ(cbi_psnr_of_mse(1.0), 0.0);
    EXPECT_TRUE(std::isinf(cbi_psnr_of_mse(0.0)));
    EXPECT_TRUE(std::isnan(cbi_psnr_of_mse(NAN)));
}

// Issue 11, class 4: a NaN (or Inf) in one output and not the other is never
// "identical": MSE and max abs are infinite, PSNR -inf, and the counts say so.
// The same non-finite value in the same place in both is equal.
TEST(BenchStats, QualitySeesNonFiniteValues)
{
    const float ref[] = {0.0f, 0.5f, NAN, INFINITY};
    double mse, psnr, mx;
    cbi_nonfinite nf;
    const float same[] = {0.0f, 0.5f, NAN, INFINITY};
    cbi_quality(ref, same, 4, &mse, &psnr, &mx, &nf);
    EXPECT_EQ(mse, 0.0);
    EXPECT_TRUE(std::isinf(psnr) && psnr > 0);
    EXPECT_EQ(nf.ref, 2);
    EXPECT_EQ(nf.x, 2);
    EXPECT_EQ(nf.mismatched, 0);

    const float finite[] = {0.0f, 0.5f, 0.25f, 1.0f};
    for (const float *a : {ref, finite}) {
        const float *b = a == ref ? finite : ref;
        cbi_quality(a, b, 4, &mse, &psnr, &mx, &nf);
        EXPECT_TRUE(std::isinf(mse) && mse > 0);
        EXPECT_TRUE(std::isinf(psnr) && psnr < 0);
        EXPECT_TRUE(std::isinf(mx));
        EXPECT_EQ(nf.mismatched, 2);
        EXPECT_EQ(nf.ref + nf.x, 2);
    }
    const float other[] = {0.0f, 0.5f, INFINITY, -INFINITY}; // NaN vs Inf, +Inf vs -Inf
    cbi_quality(ref, other, 4, &mse, &psnr, &mx, &nf);
    EXPECT_EQ(nf.mismatched, 2);
    EXPECT_TRUE(std::isinf(mse));

    // The summary never calls such a run identical.
    cbi_run_result run{};
    run.has_quality = 1;
    run.mse = INFINITY;
    run.psnr_db = -INFINITY;
    run.min_psnr_db = -INFINITY;
    run.max_abs = INFINITY;
    run.nonfinite = {3, 0, 3};
    std::string out = capture([&](FILE *f) { cbi_report_print_run(f, &run); });
    EXPECT_EQ(out.find("identical"), std::string::npos) << out;
    EXPECT_NE(out.find("not measurable"), std::string::npos) << out;
    EXPECT_NE(out.find("non-finite values: dense 3, cbinfer 0"), std::string::npos) << out;
}

TEST(BenchStats, LeastSquaresBreakEven)
{
    // Exact line y = 2 + 8 x.
    const double x[] = {0.0, 0.25, 0.5, 1.0};
    const double y[] = {2.0, 4.0, 6.0, 10.0};
    double a, b;
    ASSERT_EQ(cbi_fit_line(x, y, 4, &a, &b), 0);
    EXPECT_NEAR(a, 2.0, 1e-12);
    EXPECT_NEAR(b, 8.0, 1e-12);
    EXPECT_NEAR(cbi_break_even(6.0, a, b), 0.5, 1e-12);  // (6 - 2) / 8

    // Noisy symmetric points: y = 1 + 2 x, residuals +-0.1 cancel.
    const double xn[] = {0, 0, 1, 1};
    const double yn[] = {1.1, 0.9, 3.1, 2.9};
    ASSERT_EQ(cbi_fit_line(xn, yn, 4, &a, &b), 0);
    EXPECT_NEAR(a, 1.0, 1e-12);
    EXPECT_NEAR(b, 2.0, 1e-12);

    // Clamping: dense cheaper than the overhead -> 0; dearer than all -> 1;
    // a flat or falling line never crosses -> 1.
    EXPECT_EQ(cbi_break_even(1.0, 2.0, 8.0), 0.0);
    EXPECT_EQ(cbi_break_even(100.0, 2.0, 8.0), 1.0);
    EXPECT_EQ(cbi_break_even(5.0, 2.0, 0.0), 1.0);
    EXPECT_EQ(cbi_break_even(5.0, 2.0, -1.0), 1.0);

    // Undetermined: one point, or no spread in x.
    const double same_x[] = {0.3, 0.3, 0.3};
    EXPECT_EQ(cbi_fit_line(same_x, y, 3, &a, &b), -1);
    EXPECT_NEAR(a, 4.0, 1e-12);
    EXPECT_EQ(b, 0.0);
    EXPECT_EQ(cbi_fit_line(x, y, 1, &a, &b), -1);
}

TEST(BenchJson, WriterEscapesAndNulls)
{
    std::string out = capture([](FILE *f) {
        cbi_json j;
        cbi_json_init(&j, f);
        cbi_json_begin_object(&j, nullptr);
        cbi_json_string(&j, "s", "q\"b\\n\nt\t\x01z");
        cbi_json_number(&j, "nan", NAN);
        cbi_json_number(&j, "inf", INFINITY);
        cbi_json_number(&j, "neg0", -0.0);
        cbi_json_number(&j, "tiny", 1.5e-12);
        cbi_json_string(&j, "none", nullptr);
        cbi_json_begin_array(&j, "empty");
        cbi_json_end_array(&j);
        cbi_json_begin_object(&j, "o");
        cbi_json_end_object(&j);
        cbi_json_end_object(&j);
        EXPECT_EQ(j.error, 0);
    });
    JVal v = parse_json(out);
    ASSERT_EQ(v.kind, JVal::Obj);
    EXPECT_EQ(v["s"].str, "q\"b\\n\nt\t\x01z");
    EXPECT_EQ(v["nan"].kind, JVal::Null);
    EXPECT_EQ(v["inf"].kind, JVal::Null);
    EXPECT_EQ(v["neg0"].num, 0.0);
    EXPECT_EQ(out.find("-0"), std::string::npos);
    EXPECT_DOUBLE_EQ(v["tiny"].num, 1.5e-12);
    EXPECT_EQ(v["none"].kind, JVal::Null);
    EXPECT_EQ(v["empty"].arr.size(), 0u);
    EXPECT_EQ(v["o"].obj.size(), 0u);
}

TEST(BenchJson, ReportSchema)
{
    Synthetic syn;
    int rc = -1;
    std::string out = capture([&](FILE *f) { rc = cbi_report_write_json(f, &syn.r); });
    ASSERT_EQ(rc, 0);
    EXPECT_TRUE(balanced(out));
    JVal v = parse_json(out);
    ASSERT_EQ(v.kind, JVal::Obj);
    EXPECT_EQ(v.keys(), (std::vector<std::string>{"schema", "tool", "device", "config", "runs",
                                                  "profile"}));
    EXPECT_EQ(v["schema"].str, "cbinfer-bench/1");
    EXPECT_EQ(v["tool"].keys(), (std::vector<std::string>{"version", "commit", "date"}));
    EXPECT_EQ(v["tool"]["commit"].str, "abc1234");
    EXPECT_EQ(v["device"].keys(),
              (std::vector<std::string>{"backend", "name", "cores", "kernels", "threads"}));
    EXPECT_EQ(v["device"]["kernels"].kind, JVal::Null);
    EXPECT_EQ(v["device"]["threads"].num, 0);
    EXPECT_EQ(v["device"]["cores"].num, 2);
    const JVal &c = v["config"];
    EXPECT_EQ(c.keys(),
              (std::vector<std::string>{"model", "workload", "input", "width", "height", "skip",
                                        "frames", "warmup", "mode", "policy", "precision",
                                        "threshold", "thresholds_file", "break_even_file"}));
    EXPECT_EQ(c["policy"]["spec"].str, "evnet:chunk=8");
    EXPECT_EQ(c["policy"]["kind"].str, "evnet");
    EXPECT_EQ(c["policy"]["options"].str, "chunk=8");
    EXPECT_EQ(c["workload"].kind, JVal::Null);
    EXPECT_EQ(c["thresholds_file"].kind, JVal::Null);
    EXPECT_EQ(c["width"].num, 96);
    EXPECT_EQ(c["mode"].str, "compare");
    EXPECT_DOUBLE_EQ(c["threshold"].num, 0.01);

    ASSERT_EQ(v["runs"].arr.size(), 1u);
    const JVal &run = v["runs"].arr[0];
    EXPECT_EQ(run.keys(), (std::vector<std::string>{"threshold_scale", "dense", "cbinfer",
                                                    "speedup", "quality", "task", "cameras", "layers",
                                                    "frames"}));
    EXPECT_EQ(run["dense"]["latency_ms"].keys(),
              (std::vector<std::string>{"min", "mean", "median", "p90", "p95", "p99"}));
    EXPECT_DOUBLE_EQ(run["dense"]["latency_ms"]["mean"].num, 10.25);
    EXPECT_TRUE(run["dense"].has("fps"));
    EXPECT_FALSE(run["dense"].has("changed_share"));
    EXPECT_DOUBLE_EQ(run["cbinfer"]["changed_share"].num, 0.25);
    EXPECT_NEAR(run["speedup"].num, 10.25 / 6.75, 1e-9);
    EXPECT_EQ(run["quality"].keys(),
              (std::vector<std::string>{"mse", "psnr_db", "min_psnr_db", "max_abs",
                                        "nonfinite_dense", "nonfinite_cbinfer",
                                        "nonfinite_mismatch"}));
    EXPECT_EQ(run["quality"]["nonfinite_mismatch"].num, 0);
    ASSERT_EQ(run["layers"].arr.size(), 2u);
    const JVal &l0 = run["layers"].arr[0];
    EXPECT_EQ(l0.keys(), (std::vector<std::string>{"name", "op", "changed_share", "macs",
                                                   "macs_executed", "dense_macs",
                                                   "overhead_arith", "overhead_ldst",
                                                   "state_bytes", "dense_frames"}));
    EXPECT_EQ(l0["macs"].num, 1e6);
    EXPECT_EQ(l0["macs_executed"].num, 2e6);
    EXPECT_EQ(l0["state_bytes"].num, 4096);
    // The stream's sums over the layers (the second one has no MACs).
    EXPECT_EQ(run["cbinfer"]["macs_per_frame"].num, 1e6);
    EXPECT_EQ(run["cbinfer"]["macs_executed_per_frame"].num, 2e6);
    EXPECT_EQ(run["cbinfer"]["state_bytes"].num, 4096);
    EXPECT_NEAR(run["cbinfer"]["overhead_pct_of_saved"].num, 100.0 * 3e4 / (4e6 - 1e6), 1e-9);
    EXPECT_EQ(l0["name"].str, "conv \"1\"\\a\n");  // escaped and read back
    EXPECT_EQ(run["layers"].arr[1]["changed_share"].kind, JVal::Null);
    ASSERT_EQ(run["frames"].arr.size(), 2u);
    const JVal &f0 = run["frames"].arr[0];
    EXPECT_EQ(f0.keys(), (std::vector<std::string>{"index", "dense_ms", "cbinfer_ms",
                                                   "changed_share", "mse", "psnr_db", "max_abs"}));
    EXPECT_EQ(f0["index"].num, 3);
    EXPECT_EQ(f0["psnr_db"].kind, JVal::Null);  // identical outputs: inf -> null
    EXPECT_EQ(run["frames"].arr[1]["psnr_db"].num, 40.0);

    const JVal &p = v["profile"];
    ASSERT_EQ(p.kind, JVal::Obj);
    ASSERT_EQ(p["layers"].arr.size(), 2u);
    const JVal &pl = p["layers"].arr[0];
    EXPECT_EQ(pl.keys(), (std::vector<std::string>{"name", "op", "time_ms_mean", "time_ms_median",
                                                   "percentage", "changed_share", "macs_share",
                                                   "steps"}));
    EXPECT_EQ(pl["steps"].obj.size(), (size_t)CBINFER_STEP_COUNT);
    EXPECT_EQ(pl["steps"]["gemm"].num, 1.0);
}

TEST(BenchJson, DenseModeNullsAndNoProfile)
{
    Synthetic syn;
    syn.run.has_cbinfer = 0;
    syn.run.has_quality = 0;
    syn.r.mode = "dense";
    syn.r.profile = nullptr;
    syn.r.workload = "vgg7-noise1";
    syn.r.cores = 0;
    std::string out = capture([&](FILE *f) { EXPECT_EQ(cbi_report_write_json(f, &syn.r), 0); });
    JVal v = parse_json(out);
    const JVal &run = v["runs"].arr[0];
    EXPECT_EQ(run["dense"].kind, JVal::Obj);
    EXPECT_EQ(run["cbinfer"].kind, JVal::Null);
    EXPECT_EQ(run["speedup"].kind, JVal::Null);
    EXPECT_EQ(run["quality"].kind, JVal::Null);
    EXPECT_EQ(v["profile"].kind, JVal::Null);
    EXPECT_EQ(v["config"]["workload"].str, "vgg7-noise1");
    EXPECT_EQ(v["device"]["cores"].kind, JVal::Null);
    // Without a profile there is nothing to export.
    capture([&](FILE *f) { EXPECT_EQ(cbi_report_write_profile(f, &syn.r), -1); });
}

TEST(BenchJson, SweepHasOneRunPerScale)
{
    Synthetic syn;
    cbi_run_result runs[3] = {syn.run, syn.run, syn.run};
    runs[1].threshold_scale = 1.0;
    runs[2].threshold_scale = 2.0;
    syn.r.runs = runs;
    syn.r.run_count = 3;
    std::string out = capture([&](FILE *f) { EXPECT_EQ(cbi_report_write_json(f, &syn.r), 0); });
    JVal v = parse_json(out);
    ASSERT_EQ(v["runs"].arr.size(), 3u);
    EXPECT_EQ(v["runs"].arr[2]["threshold_scale"].num, 2.0);
}

TEST(BenchJson, ExportProfileTrtexecShape)
{
    Synthetic syn;
    int rc = -1;
    std::string out = capture([&](FILE *f) { rc = cbi_report_write_profile(f, &syn.r); });
    ASSERT_EQ(rc, 0);
    JVal v = parse_json(out);
    ASSERT_EQ(v.kind, JVal::Arr);
    ASSERT_EQ(v.arr.size(), 3u);
    EXPECT_EQ(v.arr[0].keys(), (std::vector<std::string>{"count"}));
    EXPECT_EQ(v.arr[0]["count"].num, 2);
    const JVal &l = v.arr[1];
    EXPECT_EQ(l.keys(), (std::vector<std::string>{"name", "timeMs", "averageMs", "medianMs",
                                                  "percentage", "cbinfer"}));
    EXPECT_EQ(l["timeMs"].num, 3.0);
    EXPECT_EQ(l["averageMs"].num, 1.5);
    EXPECT_EQ(l["percentage"].num, 75.0);
    EXPECT_EQ(l["cbinfer"].keys(),
              (std::vector<std::string>{"op", "changedShare", "macsShare", "steps"}));
    EXPECT_EQ(v.arr[2]["cbinfer"]["changedShare"].kind, JVal::Null);
}

TEST(BenchCsv, OneRowPerFrame)
{
    Synthetic syn;
    syn.frames[1].dense_ms = NAN;
    std::string out = capture([&](FILE *f) { EXPECT_EQ(cbi_report_write_csv(f, &syn.r), 0); });
    EXPECT_EQ(out,
              "threshold_scale,index,dense_ms,cbinfer_ms,changed_share,mse,psnr_db,max_abs\n"
              "0.5,3,10,11,1,0,inf,0\n"
              "0.5,4,,2.5,0.25,0.0001,40,0.02\n");
}
