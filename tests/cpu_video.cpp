// host/video/video.c: FFmpeg decode and the raw rgb24 reader, on the sample
// videos (vtest.avi: 768x576, static camera; tree.avi: 444 frame times, most of
// them repeats stored as empty AVI chunks).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "test_util.h"
#include "video.h"

namespace {

struct VideoCloser {
    void operator()(cbi_video *v) const { cbi_video_close(v); }
};
using VideoPtr = std::unique_ptr<cbi_video, VideoCloser>;

using Frame = std::vector<uint8_t>;

// Opens a sample video; err receives the message on failure.
VideoPtr open_video(const std::string &file, int w, int h, int skip, std::string *err = nullptr)
{
    char msg[512] = "";
    cbi_video *v = nullptr;
    int rc = cbi_video_open(cbi_test_video(file).c_str(), w, h, skip, &v, msg, sizeof msg);
    if (err) *err = msg;
    return VideoPtr(rc == 0 ? v : nullptr);
}

// Reads the next frame; returns the reader's status (1, 0 or -1).
int read_frame(cbi_video *v, Frame *f, std::string *err = nullptr)
{
    int w = 0, h = 0;
    cbi_video_size(v, &w, &h);
    f->assign((size_t)w * h * 3, 0);
    char msg[512] = "";
    int r = cbi_video_read(v, f->data(), msg, sizeof msg);
    if (err) *err = msg;
    return r;
}

// Share of pixels whose largest channel difference exceeds thr.
double changed_share(const Frame &a, const Frame &b, int thr)
{
    size_t changed = 0, px = a.size() / 3;
    for (size_t p = 0; p < px; ++p) {
        int m = 0;
        for (int c = 0; c < 3; ++c) m = std::max(m, std::abs(a[3 * p + c] - b[3 * p + c]));
        changed += m > thr;
    }
    return (double)changed / (double)px;
}

// A file name in the test temp folder, unique per test.
std::string temp_path(const std::string &suffix)
{
    const auto *info = ::testing::UnitTest::GetInstance()->current_test_info();
    return ::testing::TempDir() + "cbi_" + info->name() + "_" + suffix;
}

void write_file(const std::string &path, const std::vector<uint8_t> &bytes)
{
    FILE *f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr) << path;
    ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
    ASSERT_EQ(std::fclose(f), 0);
}

}  // namespace

TEST(Video, DecodesVtestAt768x576)
{
    SKIP_WITHOUT_FFMPEG();
    std::string err;
    VideoPtr v = open_video("vtest.avi", 0, 0, 0, &err);
    ASSERT_TRUE(v) << err;
    int w = 0, h = 0;
    cbi_video_size(v.get(), &w, &h);
    EXPECT_EQ(w, 768);
    EXPECT_EQ(h, 576);
    Frame f;
    ASSERT_EQ(read_frame(v.get(), &f, &err), 1) << err;
    // A decoded picture, not a blank buffer.
    size_t nonzero = 0;
    for (uint8_t x : f) nonzero += x != 0;
    EXPECT_GT(nonzero, f.size() / 2);
}

TEST(Video, StaticCameraChangesLittleBetweenFrames)
{
    SKIP_WITHOUT_FFMPEG();
    std::string err;
    VideoPtr v = open_video("vtest.avi", 0, 0, 0, &err);
    ASSERT_TRUE(v) << err;
    Frame f0, f1;
    ASSERT_EQ(read_frame(v.get(), &f0, &err), 1) << err;
    ASSERT_EQ(read_frame(v.get(), &f1, &err), 1) << err;
    // Consecutive frames are different pictures (sensor noise alone changes
    // most pixels slightly) ...
    EXPECT_GT(changed_share(f0, f1, 0), 0.10);
    // ... but the camera is static: only the walking people change much.
    double big = changed_share(f0, f1, 30);
    EXPECT_GT(big, 0.001);
    EXPECT_LT(big, 0.20);
}

TEST(Video, ResizeTo384x288)
{
    SKIP_WITHOUT_FFMPEG();
    std::string err;
    VideoPtr full = open_video("vtest.avi", 0, 0, 0, &err);
    ASSERT_TRUE(full) << err;
    VideoPtr half = open_video("vtest.avi", 384, 288, 0, &err);
    ASSERT_TRUE(half) << err;
    int w = 0, h = 0;
    cbi_video_size(half.get(), &w, &h);
    ASSERT_EQ(w, 384);
    ASSERT_EQ(h, 288);
    Frame a, s;
    ASSERT_EQ(read_frame(full.get(), &a, &err), 1) << err;
    ASSERT_EQ(read_frame(half.get(), &s, &err), 1) << err;
    ASSERT_EQ(s.size(), (size_t)384 * 288 * 3);
    // Bilinear halving is close to a 2x2 box average of the full frame (a
    // picture shifted by 8 pixels is about 17 off).
    double sad = 0;
    for (int y = 0; y < 288; ++y)
        for (int x = 0; x < 384; ++x)
            for (int c = 0; c < 3; ++c) {
                auto px = [&](int yy, int xx) {
                    return (double)a[((size_t)yy * 768 + xx) * 3 + c];
                };
                double box = (px(2 * y, 2 * x) + px(2 * y, 2 * x + 1) + px(2 * y + 1, 2 * x) +
                              px(2 * y + 1, 2 * x + 1)) / 4.0;
                sad += std::fabs(box - s[((size_t)y * 384 + x) * 3 + c]);
            }
    EXPECT_LT(sad / (384.0 * 288 * 3), 5.0);
}

TEST(Video, SkipEqualsSequentialRead)
{
    SKIP_WITHOUT_FFMPEG();
    const int k = 7;
    std::string err;
    VideoPtr seq = open_video("vtest.avi", 0, 0, 0, &err);
    ASSERT_TRUE(seq) << err;
    Frame f, fk, f_next;
    for (int i = 0; i <= k; ++i) ASSERT_EQ(read_frame(seq.get(), &f, &err), 1) << err;
    ASSERT_EQ(read_frame(seq.get(), &f_next, &err), 1) << err;

    VideoPtr skipped = open_video("vtest.avi", 0, 0, k, &err);
    ASSERT_TRUE(skipped) << err;
    ASSERT_EQ(read_frame(skipped.get(), &fk, &err), 1) << err;
    EXPECT_TRUE(fk == f) << "frame " << k << " after skip differs from sequential frame " << k;
    ASSERT_EQ(read_frame(skipped.get(), &fk, &err), 1) << err;
    EXPECT_TRUE(fk == f_next);
}

TEST(Video, RepeatedFramesFillTimestampGaps)
{
    SKIP_WITHOUT_FFMPEG();
    // tree.avi stores frame times 1..10 as empty chunks (repeats of frame 0)
    // and a new picture at 11. A skip into the gap shows the held picture.
    std::string err;
    VideoPtr v = open_video("tree.avi", 0, 0, 0, &err);
    ASSERT_TRUE(v) << err;
    std::vector<Frame> frames(12);
    for (auto &f : frames) ASSERT_EQ(read_frame(v.get(), &f, &err), 1) << err;
    for (int i = 1; i <= 10; ++i) EXPECT_TRUE(frames[i] == frames[0]) << "frame " << i;
    EXPECT_FALSE(frames[11] == frames[0]);

    VideoPtr s = open_video("tree.avi", 0, 0, 5, &err);
    ASSERT_TRUE(s) << err;
    Frame f;
    ASSERT_EQ(read_frame(s.get(), &f, &err), 1) << err;
    EXPECT_TRUE(f == frames[5]);
}

TEST(Video, TreeHas444Frames)
{
    SKIP_WITHOUT_FFMPEG();
    std::string err;
    VideoPtr v = open_video("tree.avi", 0, 0, 0, &err);
    ASSERT_TRUE(v) << err;
    int w = 0, h = 0;
    cbi_video_size(v.get(), &w, &h);
    EXPECT_EQ(w, 320);
    EXPECT_EQ(h, 240);
    Frame f;
    int n = 0, r;
    while ((r = read_frame(v.get(), &f, &err)) == 1) ++n;
    EXPECT_EQ(r, 0) << err;
    EXPECT_EQ(n, 444);
    // The end is sticky.
    EXPECT_EQ(read_frame(v.get(), &f, &err), 0);
}

TEST(Video, SkipPastTheEndFails)
{
    SKIP_WITHOUT_FFMPEG();
    std::string err;
    VideoPtr v = open_video("tree.avi", 0, 0, 1000, &err);
    EXPECT_FALSE(v);
    EXPECT_NE(err.find("444"), std::string::npos) << err;
}

TEST(Video, MissingFileFails)
{
    SKIP_WITHOUT_FFMPEG();
    char err[512] = "";
    cbi_video *v = reinterpret_cast<cbi_video *>(1);
    EXPECT_EQ(cbi_video_open("/nonexistent/cbi_no_such.avi", 0, 0, 0, &v, err, sizeof err), -1);
    EXPECT_EQ(v, nullptr);
    EXPECT_NE(std::string(err).find("cbi_no_such.avi"), std::string::npos) << err;
    EXPECT_NE(std::string(err).find("No such file"), std::string::npos) << err;

    v = reinterpret_cast<cbi_video *>(1);
    EXPECT_EQ(
        cbi_video_open_raw("/nonexistent/cbi_no_such.rgb", 4, 4, 0, 0, 0, &v, err, sizeof err), -1);
    EXPECT_EQ(v, nullptr);
    EXPECT_NE(std::string(err).find("No such file"), std::string::npos) << err;
}

TEST(Video, NotAVideoFails)
{
    SKIP_WITHOUT_FFMPEG();
    // A file FFmpeg cannot open as any format.
    const std::string path = temp_path("junk.dat");
    write_file(path, std::vector<uint8_t>(4096, 0x5a));
    char err[512] = "";
    cbi_video *v = nullptr;
    EXPECT_EQ(cbi_video_open(path.c_str(), 0, 0, 0, &v, err, sizeof err), -1);
    EXPECT_EQ(v, nullptr);
    EXPECT_NE(std::string(err).find(path), std::string::npos) << err;
    std::remove(path.c_str());
}

TEST(Video, NoVideoStreamFails)
{
    SKIP_WITHOUT_FFMPEG();
    // One second of 8 kHz mono silence in a WAV file: a valid input, no video.
    auto le = [](std::vector<uint8_t> &b, uint32_t v, int bytes) {
        for (int i = 0; i < bytes; ++i) b.push_back((uint8_t)(v >> (8 * i)));
    };
    std::vector<uint8_t> wav = {'R', 'I', 'F', 'F'};
    le(wav, 36 + 16000, 4);
    for (char c : std::string("WAVEfmt ")) wav.push_back((uint8_t)c);
    le(wav, 16, 4);
    le(wav, 1, 2);      // PCM
    le(wav, 1, 2);      // mono
    le(wav, 8000, 4);   // sample rate
    le(wav, 16000, 4);  // byte rate
    le(wav, 2, 2);      // block align
    le(wav, 16, 2);     // bits per sample
    for (char c : std::string("data")) wav.push_back((uint8_t)c);
    le(wav, 16000, 4);
    wav.resize(wav.size() + 16000, 0);
    const std::string path = temp_path("audio.wav");
    write_file(path, wav);
    char err[512] = "";
    cbi_video *v = nullptr;
    EXPECT_EQ(cbi_video_open(path.c_str(), 0, 0, 0, &v, err, sizeof err), -1);
    EXPECT_EQ(v, nullptr);
    EXPECT_NE(std::string(err).find("no video stream"), std::string::npos) << err;
    std::remove(path.c_str());
}

TEST(Video, UnsupportedCodecFails)
{
    SKIP_WITHOUT_FFMPEG();
    // tree.avi with its codec fourcc ('cvid' in the stream headers) replaced
    // by one no decoder knows.
    std::vector<uint8_t> bytes;
    {
        FILE *f = std::fopen(cbi_test_video("tree.avi").c_str(), "rb");
        ASSERT_NE(f, nullptr);
        int c;
        while ((c = std::fgetc(f)) != EOF) bytes.push_back((uint8_t)c);
        std::fclose(f);
    }
    int patched = 0;
    for (size_t i = 0; i + 4 <= std::min<size_t>(bytes.size(), 4096); ++i)
        if (std::memcmp(&bytes[i], "cvid", 4) == 0) {
            std::memcpy(&bytes[i], "zzzz", 4);
            ++patched;
        }
    ASSERT_GE(patched, 1);
    const std::string path = temp_path("unknown_codec.avi");
    write_file(path, bytes);
    char err[512] = "";
    cbi_video *v = nullptr;
    EXPECT_EQ(cbi_video_open(path.c_str(), 0, 0, 0, &v, err, sizeof err), -1);
    EXPECT_EQ(v, nullptr);
    EXPECT_NE(std::string(err).find("unsupported codec"), std::string::npos) << err;
    EXPECT_NE(std::string(err).find("zzzz"), std::string::npos) << err;
    std::remove(path.c_str());
}

TEST(Video, BadSizesFail)
{
    SKIP_WITHOUT_FFMPEG();
    char err[512] = "";
    cbi_video *v = nullptr;
    EXPECT_EQ(cbi_video_open(cbi_test_video("vtest.avi").c_str(), 100, 0, 0, &v, err, sizeof err),
              -1);
    EXPECT_NE(std::string(err).find("size"), std::string::npos) << err;
    EXPECT_EQ(cbi_video_open(cbi_test_video("vtest.avi").c_str(), -2, -2, 0, &v, err, sizeof err),
              -1);
    EXPECT_EQ(cbi_video_open(cbi_test_video("vtest.avi").c_str(), 0, 0, -1, &v, err, sizeof err),
              -1);
    EXPECT_EQ(cbi_video_open_raw("-", 0, 4, 0, 0, 0, &v, err, sizeof err), -1);
    EXPECT_NE(std::string(err).find("size"), std::string::npos) << err;
    EXPECT_EQ(v, nullptr);
}

TEST(Video, RawRoundTrip)
{
    // Three real frames (a crop, to keep the file small) written as raw rgb24
    // come back byte for byte, then a clean end.
    const int w = 64, h = 48;
    auto frames = cbi_test_read_frames("vtest.avi", 0, 3, 100, 200, w, h);
    std::vector<uint8_t> bytes;
    for (const auto &f : frames) bytes.insert(bytes.end(), f.begin(), f.end());
    const std::string path = temp_path("frames.rgb");
    write_file(path, bytes);

    char err[512] = "";
    cbi_video *raw = nullptr;
    ASSERT_EQ(cbi_video_open_raw(path.c_str(), w, h, 0, 0, 0, &raw, err, sizeof err), 0) << err;
    VideoPtr v(raw);
    int ow = 0, oh = 0;
    cbi_video_size(v.get(), &ow, &oh);
    EXPECT_EQ(ow, w);
    EXPECT_EQ(oh, h);
    Frame f;
    std::string msg;
    for (const auto &expected : frames) {
        ASSERT_EQ(read_frame(v.get(), &f, &msg), 1) << msg;
        EXPECT_TRUE(f == expected);
    }
    EXPECT_EQ(read_frame(v.get(), &f, &msg), 0) << msg;

    // skip drops whole frames.
    raw = nullptr;
    ASSERT_EQ(cbi_video_open_raw(path.c_str(), w, h, 0, 0, 2, &raw, err, sizeof err), 0) << err;
    VideoPtr skipped(raw);
    ASSERT_EQ(read_frame(skipped.get(), &f, &msg), 1) << msg;
    EXPECT_TRUE(f == frames[2]);
    EXPECT_EQ(read_frame(skipped.get(), &f, &msg), 0);
    std::remove(path.c_str());
}

TEST(Video, RawTruncatedFrameIsAnError)
{
    const int w = 8, h = 6;
    std::vector<uint8_t> bytes((size_t)w * h * 3 * 2 + 10, 7);
    const std::string path = temp_path("short.rgb");
    write_file(path, bytes);
    char err[512] = "";
    cbi_video *raw = nullptr;
    ASSERT_EQ(cbi_video_open_raw(path.c_str(), w, h, 0, 0, 0, &raw, err, sizeof err), 0) << err;
    VideoPtr v(raw);
    Frame f;
    std::string msg;
    EXPECT_EQ(read_frame(v.get(), &f, &msg), 1);
    EXPECT_EQ(read_frame(v.get(), &f, &msg), 1);
    EXPECT_EQ(read_frame(v.get(), &f, &msg), -1);
    EXPECT_NE(msg.find("truncated frame"), std::string::npos) << msg;
    std::remove(path.c_str());
}

TEST(Video, RawResize)
{
    SKIP_WITHOUT_FFMPEG();
    // A horizontal ramp resized to half width stays a ramp of the same range;
    // a flat colour stays flat.
    const int w = 64, h = 32;
    std::vector<uint8_t> bytes((size_t)w * h * 3);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            uint8_t *p = &bytes[((size_t)y * w + x) * 3];
            p[0] = (uint8_t)(x * 4);
            p[1] = 90;
            p[2] = 200;
        }
    const std::string path = temp_path("ramp.rgb");
    write_file(path, bytes);
    char err[512] = "";
    cbi_video *raw = nullptr;
    ASSERT_EQ(cbi_video_open_raw(path.c_str(), w, h, 32, 16, 0, &raw, err, sizeof err), 0) << err;
    VideoPtr v(raw);
    int ow = 0, oh = 0;
    cbi_video_size(v.get(), &ow, &oh);
    ASSERT_EQ(ow, 32);
    ASSERT_EQ(oh, 16);
    Frame f;
    std::string msg;
    ASSERT_EQ(read_frame(v.get(), &f, &msg), 1) << msg;
    for (int y = 0; y < 16; ++y)
        for (int x = 0; x < 32; ++x) {
            const uint8_t *p = &f[((size_t)y * 32 + x) * 3];
            EXPECT_NEAR(p[0], x * 8 + 2, 3) << "x " << x << " y " << y;
            EXPECT_NEAR(p[1], 90, 1);
            EXPECT_NEAR(p[2], 200, 1);
        }
    EXPECT_EQ(read_frame(v.get(), &f, &msg), 0);
    std::remove(path.c_str());
}

#ifndef CBINFER_WITH_VIDEO
// Without FFmpeg, decoding and resizing refuse with the reason; raw frames at
// their own size are read (RawRoundTrip).
TEST(Video, WithoutFFmpegSaysSo)
{
    char err[512] = "";
    cbi_video *v = nullptr;
    EXPECT_EQ(cbi_video_open(cbi_test_video("vtest.avi").c_str(), 0, 0, 0, &v, err, sizeof err),
              -1);
    EXPECT_NE(std::string(err).find("built without FFmpeg (CBINFER_VIDEO=OFF)"),
              std::string::npos)
        << err;
    const std::string path = temp_path("flat.rgb");
    write_file(path, std::vector<uint8_t>(8 * 6 * 3, 7));
    EXPECT_EQ(cbi_video_open_raw(path.c_str(), 8, 6, 4, 3, 0, &v, err, sizeof err), -1);
    EXPECT_NE(std::string(err).find("needs FFmpeg"), std::string::npos) << err;
    EXPECT_EQ(v, nullptr);
    std::remove(path.c_str());
}
#endif
