// bench/npy.c: the .npy writer (format 1.0, as numpy.save writes it) and the
// float32 reader, including the headers it must reject.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../bench/npy.h"

namespace {

std::string temp_path(const std::string &suffix)
{
    const auto *info = ::testing::UnitTest::GetInstance()->current_test_info();
    return ::testing::TempDir() + "cbi_npy_" + info->name() + "_" + suffix;
}

std::vector<uint8_t> read_bytes(const std::string &path)
{
    std::vector<uint8_t> out;
    FILE *f = std::fopen(path.c_str(), "rb");
    if (!f) return out;
    int c;
    while ((c = std::fgetc(f)) != EOF) out.push_back((uint8_t)c);
    std::fclose(f);
    return out;
}

void write_bytes(const std::string &path, const std::vector<uint8_t> &b)
{
    FILE *f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(b.data(), 1, b.size(), f), b.size());
    std::fclose(f);
}

// A version 1.0 file with the given header dict (padded to 64 bytes as numpy
// does) followed by `data_bytes` bytes.
std::vector<uint8_t> npy_file(const std::string &dict, size_t data_bytes)
{
    std::string h = dict;
    while ((10 + h.size() + 1) % 64 != 0) h += ' ';
    h += '\n';
    std::vector<uint8_t> b = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(h.size() & 0xff),
                              (uint8_t)(h.size() >> 8)};
    b.insert(b.end(), h.begin(), h.end());
    b.insert(b.end(), data_bytes, 0);
    return b;
}

struct ReadResult {
    int rc = -1;
    std::vector<float> data;
    std::vector<int64_t> shape;
    std::string err;
};

ReadResult read_npy(const std::string &path)
{
    ReadResult r;
    float *data = nullptr;
    int64_t shape[CBI_NPY_MAX_DIMS];
    int ndim = -1;
    char err[512] = "";
    r.rc = cbi_npy_read_f32(path.c_str(), &data, shape, &ndim, err, sizeof err);
    r.err = err;
    if (r.rc == 0) {
        size_t n = 1;
        for (int i = 0; i < ndim; ++i) {
            r.shape.push_back(shape[i]);
            n *= (size_t)shape[i];
        }
        r.data.assign(data, data + n);
    } else {
        EXPECT_EQ(data, nullptr);
    }
    std::free(data);
    return r;
}

ReadResult read_file_bytes(const std::string &name, const std::vector<uint8_t> &bytes)
{
    const std::string path = temp_path(name);
    write_bytes(path, bytes);
    ReadResult r = read_npy(path);
    std::remove(path.c_str());
    return r;
}

int parse(const std::string &dict, std::vector<int64_t> *shape, std::string *err)
{
    int64_t s[CBI_NPY_MAX_DIMS];
    int ndim = -1;
    char msg[256] = "";
    int rc = cbi_npy_parse_header(dict.data(), dict.size(), s, &ndim, msg, sizeof msg);
    *err = msg;
    shape->clear();
    if (rc == 0)
        for (int i = 0; i < ndim; ++i) shape->push_back(s[i]);
    return rc;
}

}  // namespace

TEST(Npy, RoundTripNchw)
{
    std::vector<float> v(1 * 3 * 5 * 7);
    for (size_t i = 0; i < v.size(); ++i) v[i] = (float)i * 0.25f - 3.0f;
    v[4] = -0.0f;
    v[5] = 1e-38f;
    v[6] = 3.4e38f;
    const int64_t shape[4] = {1, 3, 5, 7};
    const std::string path = temp_path("a.npy");
    char err[512] = "";
    ASSERT_EQ(cbi_npy_write_f32(path.c_str(), v.data(), shape, 4, err, sizeof err), 0) << err;
    ReadResult r = read_npy(path);
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_EQ(r.shape, (std::vector<int64_t>{1, 3, 5, 7}));
    ASSERT_EQ(r.data.size(), v.size());
    EXPECT_EQ(std::memcmp(r.data.data(), v.data(), v.size() * 4), 0);
    std::remove(path.c_str());
}

TEST(Npy, HeaderIsNumpyFormat10Aligned)
{
    const float v[6] = {1, 2, 3, 4, 5, 6};
    const int64_t shape[4] = {1, 2, 1, 3};
    const std::string path = temp_path("h.npy");
    char err[512] = "";
    ASSERT_EQ(cbi_npy_write_f32(path.c_str(), v, shape, 4, err, sizeof err), 0) << err;
    std::vector<uint8_t> b = read_bytes(path);
    ASSERT_GE(b.size(), 10u);
    EXPECT_EQ(std::memcmp(b.data(), "\x93NUMPY\x01\x00", 8), 0);
    size_t hlen = b[8] | (size_t)b[9] << 8;
    EXPECT_EQ((10 + hlen) % 64, 0u) << "data must start 64-byte aligned";
    ASSERT_EQ(b.size(), 10 + hlen + sizeof v);
    std::string header(b.begin() + 10, b.begin() + 10 + (long)hlen);
    // numpy.save's exact text, then space padding and a newline.
    const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 1, 3), }";
    EXPECT_EQ(header.substr(0, dict.size()), dict);
    EXPECT_EQ(header.back(), '\n');
    EXPECT_EQ(header.find_first_not_of(' ', dict.size()), hlen - 1);
    // Little-endian float32 data.
    EXPECT_EQ(std::memcmp(b.data() + 10 + hlen, "\x00\x00\x80\x3f", 4), 0);
    std::remove(path.c_str());
}

TEST(Npy, OneAndZeroDimensions)
{
    const float v[3] = {7, 8, 9};
    const int64_t shape1[1] = {3};
    const std::string path = temp_path("1d.npy");
    char err[512] = "";
    ASSERT_EQ(cbi_npy_write_f32(path.c_str(), v, shape1, 1, err, sizeof err), 0) << err;
    std::vector<uint8_t> b = read_bytes(path);
    std::string text(b.begin(), b.end());
    EXPECT_NE(text.find("'shape': (3,), }"), std::string::npos);  // a 1-tuple keeps its comma
    ReadResult r = read_npy(path);
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_EQ(r.shape, (std::vector<int64_t>{3}));
    EXPECT_EQ(r.data, (std::vector<float>{7, 8, 9}));

    ASSERT_EQ(cbi_npy_write_f32(path.c_str(), v, nullptr, 0, err, sizeof err), 0) << err;
    r = read_npy(path);
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_TRUE(r.shape.empty());
    EXPECT_EQ(r.data, (std::vector<float>{7}));
    std::remove(path.c_str());
}

TEST(Npy, ParsesHeaderVariants)
{
    std::vector<int64_t> shape;
    std::string err;
    // Key order, quotes, spacing, trailing commas and Python 2 longs vary.
    EXPECT_EQ(parse("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 4, 5), }", &shape,
                    &err), 0) << err;
    EXPECT_EQ(shape, (std::vector<int64_t>{1, 3, 4, 5}));
    EXPECT_EQ(parse("{\"shape\":(2,3),\"fortran_order\":False,\"descr\":\"<f4\"}  \n", &shape,
                    &err), 0) << err;
    EXPECT_EQ(shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(parse("{'descr':'<f4','fortran_order':False,'shape':(1L, 2L,)}", &shape, &err), 0)
        << err;
    EXPECT_EQ(shape, (std::vector<int64_t>{1, 2}));
    EXPECT_EQ(parse("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", &shape, &err), 0)
        << err;
    EXPECT_TRUE(shape.empty());
}

TEST(Npy, RejectsBadHeaders)
{
    std::vector<int64_t> shape;
    std::string err;
    struct Case {
        const char *dict;
        const char *needle;
    } cases[] = {
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", "'>f4'"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", "'<f8'"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", "unsupported dtype"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", "unsupported dtype"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", "Fortran"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", "fortran_order"},
        {"{'descr': '<f4', 'shape': (2,), }", "missing key 'fortran_order'"},
        {"{'fortran_order': False, 'shape': (2,), }", "missing key 'descr'"},
        {"{'descr': '<f4', 'fortran_order': False}", "missing key 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", "unexpected key"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", "twice"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", "shape"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", "shape"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }", "not a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }",
         "dimensions"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
         "too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", "after the dict"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", "malformed"},
        {"'descr': '<f4'", "not a dict"},
        {"", "not a dict"},
    };
    for (const auto &c : cases) {
        EXPECT_EQ(parse(c.dict, &shape, &err), -1) << c.dict;
        EXPECT_NE(err.find(c.needle), std::string::npos) << c.dict << " -> " << err;
    }
}

TEST(Npy, RejectsBadFiles)
{
    const std::string good = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 2, 2), }";
    ASSERT_EQ(read_file_bytes("ok.npy", npy_file(good, 32)).rc, 0);

    ReadResult r = read_file_bytes("short.npy", npy_file(good, 31));
    EXPECT_EQ(r.rc, -1);
    EXPECT_NE(r.err.find("truncated data"), std::string::npos) << r.err;

    r = read_file_bytes("long.npy", npy_file(good, 36));
    EXPECT_EQ(r.rc, -1);
    EXPECT_NE(r.err.find("longer"), std::string::npos) << r.err;

    r = read_file_bytes("f8.npy", npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': "
                                           "(2,), }", 16));
    EXPECT_EQ(r.rc, -1);
    EXPECT_NE(r.err.find("'<f8'"), std::string::npos) << r.err;

    std::vector<uint8_t> b = npy_file(good, 32);
    b[1] = 'X';
    r = read_file_bytes("magic.npy", b);
    EXPECT_EQ(r.rc, -1);
    EXPECT_NE(r.err.find("magic"), std::string::npos) << r.err;

    b = npy_file(good, 32);
    b[6] = 9;
    r = read_file_bytes("version.npy", b);
    EXPECT_EQ(r.rc, -1);
    EXPECT_NE(r.err.find("version"), std::string::npos) << r.err;

    b = npy_file(good, 32);
    b[10 + (b[8] | b[9] << 8) - 1] = ' ';  // the header's final newline
    r = read_file_bytes("newline.npy", b);
    EXPECT_EQ(r.rc, -1);
    EXPECT_NE(r.err.find("newline"), std::string::npos) << r.err;

    b = npy_file(good, 0);
    b.resize(40);
    r = read_file_bytes("cut.npy", b);
    EXPECT_EQ(r.rc, -1);
    EXPECT_NE(r.err.find("truncated .npy header"), std::string::npos) << r.err;

    r = read_file_bytes("empty.npy", {});
    EXPECT_EQ(r.rc, -1);

    r = read_npy("/nonexistent/cbi.npy");
    EXPECT_EQ(r.rc, -1);
    EXPECT_NE(r.err.find("/nonexistent/cbi.npy"), std::string::npos) << r.err;
}

TEST(Npy, ReadsVersion2)
{
    // Version 2.0: a 4-byte header length.
    std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    while ((12 + h.size() + 1) % 64 != 0) h += ' ';
    h += '\n';
    std::vector<uint8_t> b = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, (uint8_t)h.size(), 0, 0, 0};
    b.insert(b.end(), h.begin(), h.end());
    const float v[2] = {1.5f, -2.0f};
    const uint8_t *p = reinterpret_cast<const uint8_t *>(v);
    b.insert(b.end(), p, p + sizeof v);
    ReadResult r = read_file_bytes("v2.npy", b);
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_EQ(r.data, (std::vector<float>{1.5f, -2.0f}));
}

TEST(Npy, WriteErrors)
{
    const float v[1] = {0};
    const int64_t shape[1] = {1};
    char err[512] = "";
    EXPECT_EQ(cbi_npy_write_f32("/nonexistent/dir/x.npy", v, shape, 1, err, sizeof err), -1);
    EXPECT_NE(std::string(err).find("/nonexistent/dir/x.npy"), std::string::npos) << err;
    const int64_t many[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    EXPECT_EQ(cbi_npy_write_f32("/tmp/unused.npy", v, many, 9, err, sizeof err), -1);
    const int64_t neg[1] = {-1};
    EXPECT_EQ(cbi_npy_write_f32("/tmp/unused.npy", v, neg, 1, err, sizeof err), -1);
}
