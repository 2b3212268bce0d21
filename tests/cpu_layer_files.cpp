// Per-layer value files (thresholds, break-even shares) and the break-even
// setters: round trip, comments, every documented error, all-or-nothing.
#include <gtest/gtest.h>

#include <clocale>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "cbinfer.h"
#include "test_util.h"

extern "C" {
#include "layer_values.h"
}

namespace {

std::string temp_path(const std::string &name)
{
    const ::testing::TestInfo *t = ::testing::UnitTest::GetInstance()->current_test_info();
    return ::testing::TempDir() + "cbi_" + t->name() + "_" + name;
}

void write_file(const std::string &path, const std::string &text)
{
    std::ofstream f(path, std::ios::binary);
    f << text;
}

std::string read_file(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::vector<std::string> conv_names(const cbinfer_network_t *net)
{
    std::vector<std::string> names;
    for (int i = 0; i < cbinfer_network_conv_count(net); ++i)
        names.push_back(cbinfer_network_conv_name(net, i));
    return names;
}

std::vector<float> thresholds_of(const cbinfer_stream_t *s, const std::vector<std::string> &names)
{
    std::vector<float> v;
    for (auto &n : names) {
        float t = -1.f;
        EXPECT_EQ(cbinfer_stream_get_threshold(s, n.c_str(), &t), CBINFER_STATUS_SUCCESS);
        v.push_back(t);
    }
    return v;
}

std::vector<float> break_even_of(const cbinfer_stream_t *s, const std::vector<std::string> &names)
{
    std::vector<float> v;
    for (auto &n : names) {
        float b = -1.f;
        EXPECT_EQ(cbinfer_stream_get_break_even(s, n.c_str(), &b), CBINFER_STATUS_SUCCESS);
        v.push_back(b);
    }
    return v;
}

struct Fixture {
    NetPtr net;
    StreamPtr s;
    std::vector<std::string> names;
};

Fixture make_fixture()
{
    Fixture f;
    f.net = load("vgg7-noise1");
    if (!f.net) return f;
    f.s = make_stream(f.net.get(), 32, 32, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    f.names = conv_names(f.net.get());
    return f;
}

} // namespace

TEST(LayerFiles, RoundTripGivesIdenticalThresholds)
{
    Fixture f = make_fixture();
    ASSERT_TRUE(f.s);
    ASSERT_GE(f.names.size(), 2u);
    const float odd[] = {1.f / 3.f, 1e-7f, 0.005f, 123.456f, 0.f, 7.0e-3f, 2.5f, 1e-30f};
    for (size_t i = 0; i < f.names.size(); ++i)
        ASSERT_EQ(cbinfer_stream_set_threshold(f.s.get(), f.names[i].c_str(), odd[i % 8]),
                  CBINFER_STATUS_SUCCESS);
    const std::string path = temp_path("t.txt");
    ASSERT_EQ(cbinfer_stream_save_thresholds(f.s.get(), path.c_str(),
                                             "tools/tune.py --psnr 40\ndata vtest.avi"),
              CBINFER_STATUS_SUCCESS);
    const std::string text = read_file(path);
    EXPECT_EQ(text.rfind("# cbinfer layer values v1\n# tools/tune.py --psnr 40\n# data vtest.avi\n",
                         0),
              0u)
        << text;
    EXPECT_NE(text.find(f.names[0] + " 0.333333343\n"), std::string::npos) << text;

    StreamPtr s2 = make_stream(f.net.get(), 32, 32, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
    ASSERT_TRUE(s2);
    ASSERT_EQ(cbinfer_stream_load_thresholds(s2.get(), path.c_str()), CBINFER_STATUS_SUCCESS)
        << cbinfer_stream_last_error(s2.get());
    const auto a = thresholds_of(f.s.get(), f.names), b = thresholds_of(s2.get(), f.names);
    for (size_t i = 0; i < a.size(); ++i)
        EXPECT_EQ(std::memcmp(&a[i], &b[i], sizeof(float)), 0) << f.names[i] << " " << a[i]
                                                               << " vs " << b[i];
    // Saving without a header comment still writes the magic line only.
    ASSERT_EQ(cbinfer_stream_save_thresholds(s2.get(), path.c_str(), nullptr),
              CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(read_file(path).rfind("# cbinfer layer values v1\n" + f.names[0] + " ", 0), 0u);
    std::remove(path.c_str());
}

TEST(LayerFiles, CommentsBlankLinesAndUnnamedLayers)
{
    Fixture f = make_fixture();
    ASSERT_TRUE(f.s);
    ASSERT_GE(f.names.size(), 3u);
    ASSERT_EQ(cbinfer_stream_set_threshold_all(f.s.get(), 0.25f), CBINFER_STATUS_SUCCESS);
    const std::string path = temp_path("c.txt");
    write_file(path, "# cbinfer layer values v1\n"
                     "\n"
                     "   # indented comment\n"
                     "\t\n" +
                         f.names[0] + " 0.005\r\n" +  // CRLF
                         "  " + f.names[1] + "\t5e-3   \n" +
                         f.names[0] + " +1.5E-2");  // repeated: last wins; no final newline
    ASSERT_EQ(cbinfer_stream_load_thresholds(f.s.get(), path.c_str()), CBINFER_STATUS_SUCCESS)
        << cbinfer_stream_last_error(f.s.get());
    const auto t = thresholds_of(f.s.get(), f.names);
    EXPECT_EQ(t[0], 0.015f);
    EXPECT_EQ(t[1], 0.005f);
    for (size_t i = 2; i < t.size(); ++i) EXPECT_EQ(t[i], 0.25f) << f.names[i];

    // Break-even shares from the same format; 0 and 1 are both valid.
    write_file(path, "# shares\n" + f.names[0] + " 0\n" + f.names[2] + " 1\n" + f.names[1] +
                         " .5\n");
    ASSERT_EQ(cbinfer_stream_load_break_even(f.s.get(), path.c_str()), CBINFER_STATUS_SUCCESS)
        << cbinfer_stream_last_error(f.s.get());
    const auto b = break_even_of(f.s.get(), f.names);
    EXPECT_EQ(b[0], 0.f);
    EXPECT_EQ(b[1], 0.5f);
    EXPECT_EQ(b[2], 1.f);
    for (size_t i = 3; i < b.size(); ++i) EXPECT_EQ(b[i], 1.f) << "default " << f.names[i];
    std::remove(path.c_str());
}

// Every bad line is line 3, after a valid line 2 that must not be applied.
TEST(LayerFiles, ErrorsNameFileAndLineAndChangeNothing)
{
    Fixture f = make_fixture();
    ASSERT_TRUE(f.s);
    const std::string &c0 = f.names[0], &c1 = f.names[1];
    struct Case {
        bool break_even;
        std::string line;
        cbinfer_status status;
    };
    const Case cases[] = {
        {false, "no_such_conv 0.1", CBINFER_STATUS_UNKNOWN_NODE},
        {false, c1 + " 0.0x1", CBINFER_STATUS_BAD_PARAM},
        {false, c1 + " abc", CBINFER_STATUS_BAD_PARAM},
        {false, c1 + " -0.1", CBINFER_STATUS_BAD_PARAM},
        {false, c1 + " nan", CBINFER_STATUS_BAD_PARAM},
        {false, c1 + " NaN", CBINFER_STATUS_BAD_PARAM},
        {false, c1 + " inf", CBINFER_STATUS_BAD_PARAM},
        {false, c1 + " 1e39", CBINFER_STATUS_BAD_PARAM},  // not a finite float
        {false, c1 + " 1e", CBINFER_STATUS_BAD_PARAM},
        {false, c1 + " 0,5", CBINFER_STATUS_BAD_PARAM},
        {false, c1 + " 0.1 0.2", CBINFER_STATUS_BAD_PARAM},  // trailing text
        {false, c1 + " 0.1 # comment", CBINFER_STATUS_BAD_PARAM},
        {false, c1, CBINFER_STATUS_BAD_PARAM},  // no value
        {true, c1 + " 1.5", CBINFER_STATUS_BAD_PARAM},
        {true, c1 + " 1.0000001", CBINFER_STATUS_BAD_PARAM},
        {true, c1 + " -0.5", CBINFER_STATUS_BAD_PARAM},
        {true, c1 + " nan", CBINFER_STATUS_BAD_PARAM},
        {true, "no_such_conv 0.5", CBINFER_STATUS_UNKNOWN_NODE},
    };
    const std::string path = temp_path("bad.txt");
    ASSERT_EQ(cbinfer_stream_set_threshold_all(f.s.get(), 0.125f), CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(cbinfer_stream_set_break_even_all(f.s.get(), 0.75f), CBINFER_STATUS_SUCCESS);
    const auto t_before = thresholds_of(f.s.get(), f.names);
    const auto b_before = break_even_of(f.s.get(), f.names);
    for (const Case &c : cases) {
        write_file(path, "# cbinfer layer values v1\n" + c0 + " 0.5\n" + c.line + "\n" + c1 +
                             " 0.25\n");
        const cbinfer_status st = c.break_even
                                      ? cbinfer_stream_load_break_even(f.s.get(), path.c_str())
                                      : cbinfer_stream_load_thresholds(f.s.get(), path.c_str());
        EXPECT_EQ(st, c.status) << c.line;
        const std::string msg = cbinfer_stream_last_error(f.s.get());
        EXPECT_NE(msg.find(path + ":3: "), std::string::npos) << c.line << ": " << msg;
        if (c.status == CBINFER_STATUS_UNKNOWN_NODE)
            EXPECT_NE(msg.find("no Conv node named 'no_such_conv'"), std::string::npos) << msg;
        EXPECT_EQ(thresholds_of(f.s.get(), f.names), t_before) << c.line;
        EXPECT_EQ(break_even_of(f.s.get(), f.names), b_before) << c.line;
    }
    std::remove(path.c_str());

    // A missing file.
    const std::string missing = temp_path("does_not_exist.txt");
    EXPECT_EQ(cbinfer_stream_load_thresholds(f.s.get(), missing.c_str()), CBINFER_STATUS_FILE_IO);
    EXPECT_NE(std::string(cbinfer_stream_last_error(f.s.get())).find(missing), std::string::npos);
    EXPECT_EQ(cbinfer_stream_load_break_even(f.s.get(), missing.c_str()), CBINFER_STATUS_FILE_IO);
    EXPECT_EQ(cbinfer_stream_save_thresholds(f.s.get(), (missing + "/sub/x.txt").c_str(), nullptr),
              CBINFER_STATUS_FILE_IO);
    EXPECT_EQ(thresholds_of(f.s.get(), f.names), t_before);
    EXPECT_EQ(break_even_of(f.s.get(), f.names), b_before);
}

// Issue 11, class 7: every common line end is read (a CR-only file used to
// load as SUCCESS with nothing applied); a NUL byte, /dev/zero and an
// oversized file are refused without a hang, and change nothing.
TEST(LayerFiles, LineEndsNulBytesAndSize)
{
    Fixture f = make_fixture();
    ASSERT_TRUE(f.s);
    const std::string &c0 = f.names[0], &c1 = f.names[1];
    const std::string path = temp_path("ends.txt");
    const char *const ends[] = {"\n", "\r\n", "\r"};
    for (const char *nl : ends) {
        ASSERT_EQ(cbinfer_stream_set_threshold_all(f.s.get(), 0.f), CBINFER_STATUS_SUCCESS);
        write_file(path, std::string("# cbinfer layer values v1") + nl + "# comment" + nl + nl + c0 +
                             " 0.5" + nl + c1 + " 0.25" + nl + "bogus_layer_name" + nl);
        // The last line has no value: its number shows how the lines were counted.
        ASSERT_EQ(cbinfer_stream_load_thresholds(f.s.get(), path.c_str()), CBINFER_STATUS_BAD_PARAM);
        EXPECT_NE(std::string(cbinfer_stream_last_error(f.s.get())).find(path + ":6: "),
                  std::string::npos)
            << cbinfer_stream_last_error(f.s.get());
        write_file(path, std::string("# cbinfer layer values v1") + nl + "# comment" + nl + nl + c0 +
                             " 0.5" + nl + c1 + " 0.25");
        ASSERT_EQ(cbinfer_stream_load_thresholds(f.s.get(), path.c_str()), CBINFER_STATUS_SUCCESS);
        const auto t = thresholds_of(f.s.get(), f.names);
        EXPECT_EQ(t[0], 0.5f);
        EXPECT_EQ(t[1], 0.25f);
    }

    ASSERT_EQ(cbinfer_stream_set_threshold_all(f.s.get(), 0.125f), CBINFER_STATUS_SUCCESS);
    const auto before = thresholds_of(f.s.get(), f.names);
    write_file(path, "# cbinfer layer values v1\n" + c0 + " 0.5" + std::string(1, '\0') + "7\n");
    EXPECT_EQ(cbinfer_stream_load_thresholds(f.s.get(), path.c_str()), CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(std::string(cbinfer_stream_last_error(f.s.get())).find(path + ":2: NUL byte"),
              std::string::npos)
        << cbinfer_stream_last_error(f.s.get());
    EXPECT_EQ(cbinfer_stream_load_thresholds(f.s.get(), "/dev/zero"), CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(std::string(cbinfer_stream_last_error(f.s.get())).find("NUL byte"), std::string::npos);
    write_file(path, "# cbinfer layer values v1\n" + std::string((size_t)1 << 20, '#') + "\n");
    EXPECT_EQ(cbinfer_stream_load_thresholds(f.s.get(), path.c_str()), CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(std::string(cbinfer_stream_last_error(f.s.get())).find("larger than"),
              std::string::npos);
    EXPECT_EQ(thresholds_of(f.s.get(), f.names), before);
    std::remove(path.c_str());
}

// The writer refuses (and removes) a file the reader would refuse as too
// large: 40,000 convs with 30-character names make about 1.3 MB.
TEST(LayerFiles, WriterKeepsWithinTheReadersCap)
{
    const int n = 40000;
    std::vector<std::string> names(n);
    std::vector<cbi_node> nodes(n);
    std::vector<int> conv_ids(n);
    for (int i = 0; i < n; ++i) {
        char name[40];
        snprintf(name, sizeof name, "a_rather_long_layer_name_%05d", i);
        names[i] = name;
        nodes[i].name = const_cast<char *>(names[i].c_str());
        nodes[i].op = CBI_OP_CONV;
        conv_ids[i] = i;
    }
    cbi_net net{};
    net.nodes = nodes.data();
    net.n_nodes = n;
    net.conv_nodes = conv_ids.data();
    net.n_conv = n;
    std::vector<float> values(n, 0.125f);
    const std::string path = temp_path("big.txt");
    cbi_err e{};
    EXPECT_EQ(cbi_layer_values_write(&net, path.c_str(), nullptr, values.data(), &e),
              CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(std::string(e.msg).find("more than the 1048576 bytes"), std::string::npos) << e.msg;
    EXPECT_EQ(std::fopen(path.c_str(), "rb"), nullptr) << "the oversized file is removed";
    net.n_conv = 1000; // about 34 kB: written, and read back
    EXPECT_EQ(cbi_layer_values_write(&net, path.c_str(), nullptr, values.data(), &e),
              CBINFER_STATUS_SUCCESS)
        << e.msg;
    std::vector<float> back(n, 0.f);
    EXPECT_EQ(cbi_layer_values_read(&net, path.c_str(), 1.0, back.data(), &e),
              CBINFER_STATUS_SUCCESS)
        << e.msg;
    EXPECT_EQ(back[999], 0.125f);
    std::remove(path.c_str());
}

TEST(LayerFiles, NullArguments)
{
    Fixture f = make_fixture();
    ASSERT_TRUE(f.s);
    float v;
    EXPECT_EQ(cbinfer_stream_load_thresholds(nullptr, "x"), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_load_thresholds(f.s.get(), nullptr), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_load_break_even(nullptr, "x"), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_load_break_even(f.s.get(), nullptr), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_save_thresholds(nullptr, "x", nullptr), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_save_thresholds(f.s.get(), nullptr, nullptr),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_set_break_even(nullptr, "x", 0.5f), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_set_break_even(f.s.get(), nullptr, 0.5f),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_set_break_even_all(nullptr, 0.5f), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_get_break_even(nullptr, "x", &v), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_stream_get_break_even(f.s.get(), f.names[0].c_str(), nullptr),
              CBINFER_STATUS_NULL_ARGUMENT);
}

TEST(LayerFiles, BreakEvenSetters)
{
    Fixture f = make_fixture();
    ASSERT_TRUE(f.s);
    const char *c0 = f.names[0].c_str();
    float b = -1.f;
    ASSERT_EQ(cbinfer_stream_get_break_even(f.s.get(), c0, &b), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(b, 1.f);  // default: never fall back
    EXPECT_EQ(cbinfer_stream_set_break_even(f.s.get(), c0, 0.3f), CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(cbinfer_stream_get_break_even(f.s.get(), c0, &b), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(b, 0.3f);
    for (float bad : {-0.01f, 1.01f, std::numeric_limits<float>::quiet_NaN(),
                      std::numeric_limits<float>::infinity()}) {
        EXPECT_EQ(cbinfer_stream_set_break_even(f.s.get(), c0, bad), CBINFER_STATUS_BAD_PARAM);
        EXPECT_EQ(cbinfer_stream_set_break_even_all(f.s.get(), bad), CBINFER_STATUS_BAD_PARAM);
    }
    ASSERT_EQ(cbinfer_stream_get_break_even(f.s.get(), c0, &b), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(b, 0.3f);
    EXPECT_EQ(cbinfer_stream_set_break_even(f.s.get(), "nope", 0.5f), CBINFER_STATUS_UNKNOWN_NODE);
    EXPECT_EQ(cbinfer_stream_get_break_even(f.s.get(), "nope", &b), CBINFER_STATUS_UNKNOWN_NODE);
    EXPECT_EQ(cbinfer_stream_set_break_even_all(f.s.get(), 0.f), CBINFER_STATUS_SUCCESS);
    for (float v : break_even_of(f.s.get(), f.names)) EXPECT_EQ(v, 0.f);
}

// The application's LC_NUMERIC must not change how files are read or written.
TEST(LayerFiles, IndependentOfNumericLocale)
{
    Fixture f = make_fixture();
    ASSERT_TRUE(f.s);
    const char *locales[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8"};
    const char *got = nullptr;
    for (const char *l : locales)
        if ((got = std::setlocale(LC_NUMERIC, l))) break;
    if (!got) GTEST_SKIP() << "no locale with a comma decimal point installed";
    const std::string path = temp_path("l.txt");
    ASSERT_EQ(cbinfer_stream_set_threshold(f.s.get(), f.names[0].c_str(), 0.375f),
              CBINFER_STATUS_SUCCESS);
    const cbinfer_status saved = cbinfer_stream_save_thresholds(f.s.get(), path.c_str(), nullptr);
    write_file(path + "2", f.names[1] + " 0.625\n");
    const cbinfer_status loaded = cbinfer_stream_load_thresholds(f.s.get(), (path + "2").c_str());
    std::setlocale(LC_NUMERIC, "C");
    EXPECT_EQ(saved, CBINFER_STATUS_SUCCESS);
    EXPECT_NE(read_file(path).find(f.names[0] + " 0.375\n"), std::string::npos) << read_file(path);
    ASSERT_EQ(loaded, CBINFER_STATUS_SUCCESS);
    float t;
    ASSERT_EQ(cbinfer_stream_get_threshold(f.s.get(), f.names[1].c_str(), &t),
              CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(t, 0.625f);
    std::remove(path.c_str());
    std::remove((path + "2").c_str());
}
