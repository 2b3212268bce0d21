// The GStreamer element (tools/gst) in a pipeline appsrc ! cbinfer ! appsink
// on real vtest frames: its region metas against the library's decoders on a
// stream of the same settings, and the network shared between instances.
// Run by ctest with GST_PLUGIN_PATH=<build>/gst.
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "test_util.h"

namespace {

constexpr int kX = 200, kY = 200; // pedestrians walk here

struct Region {
    std::string type;
    int x, y, w, h;
    double confidence; // detection: the box's score; pose: the pose's score
};

class Pipeline {
  public:
    Pipeline(const std::string &element, int w, int h)
    {
        const std::string desc = "appsrc name=src format=time caps=video/x-raw,format=RGB,width=" +
                                 std::to_string(w) + ",height=" + std::to_string(h) +
                                 ",framerate=10/1 ! " + element +
                                 " ! appsink name=sink sync=false";
        GError *e = nullptr;
        pipe_ = gst_parse_launch(desc.c_str(), &e);
        if (e) {
            error_ = e->message;
            g_error_free(e);
        }
        if (pipe_) {
            src_ = gst_bin_get_by_name(GST_BIN(pipe_), "src");
            sink_ = gst_bin_get_by_name(GST_BIN(pipe_), "sink");
        }
        gst_video_info_set_format(&info_, GST_VIDEO_FORMAT_RGB, w, h);
    }
    // Frames of another size from now on (new caps on appsrc).
    void resize(int w, int h)
    {
        gst_video_info_set_format(&info_, GST_VIDEO_FORMAT_RGB, w, h);
        GstCaps *caps = gst_video_info_to_caps(&info_);
        gst_app_src_set_caps(GST_APP_SRC(src_), caps);
        gst_caps_unref(caps);
    }
    ~Pipeline()
    {
        if (pipe_) gst_element_set_state(pipe_, GST_STATE_NULL);
        if (src_) gst_object_unref(src_);
        if (sink_) gst_object_unref(sink_);
        if (pipe_) gst_object_unref(pipe_);
    }
    bool ok() const { return pipe_ && src_ && sink_; }
    const std::string &error() const { return error_; }
    GstElement *get(const char *name) { return gst_bin_get_by_name(GST_BIN(pipe_), name); }
    bool play() { return gst_element_set_state(pipe_, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE; }
    void stop() { gst_element_set_state(pipe_, GST_STATE_NULL); }

    // Pushes one tightly packed RGB frame, laid out as GStreamer strides it;
    // returns the regions of the frame that comes out, and with `pixels` its
    // pixels packed again (false if no frame came: an error on the bus, or
    // none within timeout_s).
    bool run(const std::vector<uint8_t> &rgb, std::vector<Region> *regions,
             std::vector<uint8_t> *pixels = nullptr, int timeout_s = 120)
    {
        const int w = GST_VIDEO_INFO_WIDTH(&info_), h = GST_VIDEO_INFO_HEIGHT(&info_);
        const int stride = GST_VIDEO_INFO_PLANE_STRIDE(&info_, 0);
        GstBuffer *buf = gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&info_), nullptr);
        GstMapInfo m;
        gst_buffer_map(buf, &m, GST_MAP_WRITE);
        for (int y = 0; y < h; ++y)
            std::memcpy(m.data + (size_t)y * stride, rgb.data() + (size_t)y * w * 3, (size_t)w * 3);
        gst_buffer_unmap(buf, &m);
        GST_BUFFER_PTS(buf) = frames_ * GST_SECOND / 10;
        GST_BUFFER_DURATION(buf) = GST_SECOND / 10;
        ++frames_;
        if (gst_app_src_push_buffer(GST_APP_SRC(src_), buf) != GST_FLOW_OK) return false;
        GstSample *s = nullptr;
        for (int t = 0; !s && t < 10 * timeout_s && bus_error_.empty(); ++t) {
            s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink_), GST_SECOND / 10);
            if (!s) poll_bus(0);
        }
        if (!s) return false;
        regions->clear();
        GstBuffer *out = gst_sample_get_buffer(s);
        if (pixels) {
            pixels->resize((size_t)w * h * 3);
            gst_buffer_map(out, &m, GST_MAP_READ);
            for (int y = 0; y < h; ++y)
                std::memcpy(pixels->data() + (size_t)y * w * 3, m.data + (size_t)y * stride,
                            (size_t)w * 3);
            gst_buffer_unmap(out, &m);
        }
        gpointer state = nullptr;
        GstMeta *meta;
        while ((meta = gst_buffer_iterate_meta_filtered(
                    out, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
            auto *r = (GstVideoRegionOfInterestMeta *)meta;
            Region g{g_quark_to_string(r->roi_type), (int)r->x, (int)r->y, (int)r->w, (int)r->h,
                     NAN};
            const GstStructure *p = gst_video_region_of_interest_meta_get_param(r, "detection");
            if (!p) p = gst_video_region_of_interest_meta_get_param(r, "pose");
            if (p) {
                const char *field = gst_structure_has_field(p, "confidence") ? "confidence" : "score";
                gst_structure_get_double(p, field, &g.confidence);
            }
            regions->push_back(g);
        }
        gst_sample_unref(s);
        return true;
    }

    // The first error on the bus ("message | debug"), waiting up to a second.
    std::string bus_error()
    {
        if (bus_error_.empty()) poll_bus(GST_SECOND);
        return bus_error_;
    }

  private:
    void poll_bus(GstClockTime wait)
    {
        GstBus *bus = gst_element_get_bus(pipe_);
        GstMessage *msg = gst_bus_timed_pop_filtered(bus, wait, GST_MESSAGE_ERROR);
        if (msg) {
            GError *e = nullptr;
            gchar *dbg = nullptr;
            gst_message_parse_error(msg, &e, &dbg);
            bus_error_ = std::string(e->message) + " | " + (dbg ? dbg : "");
            g_error_free(e);
            g_free(dbg);
            gst_message_unref(msg);
        }
        gst_object_unref(bus);
    }

    GstElement *pipe_ = nullptr, *src_ = nullptr, *sink_ = nullptr;
    GstVideoInfo info_;
    guint64 frames_ = 0;
    std::string error_, bus_error_;
};

class Gst : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { gst_init(nullptr, nullptr); }
    void SetUp() override
    {
        GstElementFactory *f = gst_element_factory_find("cbinfer");
        if (!f) GTEST_FAIL() << "no cbinfer element: is GST_PLUGIN_PATH the build's gst/ folder?";
        gst_object_unref(f);
    }
};

// The reference: a stream of the element's settings (mode cbinfer, policy
// cbinfer, threshold 0), its outputs read as the element reads them.
struct Reference {
    NetPtr net;
    StreamPtr s;
    std::vector<std::vector<float>> out;
    std::vector<cbinfer_tensor_view> views;
    Reference(const char *model, int w, int h) : net(load(model))
    {
        if (!net) return;
        s = make_stream(net.get(), w, h, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER);
        if (!s || cbinfer_stream_set_policy(s.get(), nullptr, "cbinfer") != CBINFER_STATUS_SUCCESS ||
            cbinfer_stream_set_threshold_all(s.get(), 0.f) != CBINFER_STATUS_SUCCESS)
            s.reset();
    }
    void run(const std::vector<uint8_t> &rgb, int w, int h)
    {
        push(s.get(), rgb, w, h);
        out = outputs_of(s.get(), net.get());
        views.resize(out.size());
        for (size_t k = 0; k < out.size(); ++k) {
            cbinfer_tensor_view &v = views[k];
            ASSERT_EQ(cbinfer_stream_output_dims_at(s.get(), (int)k, &v.channels, &v.height,
                                                    &v.width),
                      CBINFER_STATUS_SUCCESS);
            v.data = out[k].data();
        }
    }
};

// Pushes frames through `element` and a Reference of `model`, calling
// check(regions, reference) per frame; returns the regions counted, or -1
// when a step failed (the failure is recorded).
template <class Check>
long run_both(const std::string &element, const char *model,
              const std::vector<std::vector<uint8_t>> &frames, int w, int h, Check check)
{
    Pipeline p(element, w, h);
    Reference ref(model, w, h);
    if (!p.ok() || !p.play() || !ref.s) {
        ADD_FAILURE() << "cannot set up " << element << ": " << p.error();
        return -1;
    }
    long total = 0;
    for (size_t f = 0; f < frames.size(); ++f) {
        SCOPED_TRACE(f);
        std::vector<Region> got;
        if (!p.run(frames[f], &got)) {
            ADD_FAILURE() << "no frame out: " << p.bus_error();
            return -1;
        }
        ref.run(frames[f], w, h);
        check(got, ref);
        total += (long)got.size();
    }
    return total;
}

TEST_F(Gst, DetectorRegionsAreTheLibrarysBoxes)
{
    const int w = 576, h = 384;
    auto frames = cbi_test_read_frames("vtest.avi", 0, 4, 96, 160, w, h);
    const long total = run_both(
        "cbinfer model-file=" + cbi_test_model("nanodet") + " threshold=0", "nanodet", frames, w, h,
        [&](const std::vector<Region> &got, const Reference &ref) {
            std::vector<cbinfer_detection> boxes(512);
            int n = 0;
            ASSERT_EQ(cbinfer_decode_nanodet(ref.views.data(), (int)ref.views.size(), w, h,
                                             CBINFER_COCO_CLASSES, 0.35f, 0.5f, boxes.data(),
                                             (int)boxes.size(), &n, nullptr, 0),
                      CBINFER_STATUS_SUCCESS);
            ASSERT_EQ((int)got.size(), n);
            for (int i = 0; i < n; ++i) {
                const cbinfer_detection &d = boxes[i];
                EXPECT_EQ(got[i].type, cbinfer_coco_class_name(d.class_id));
                EXPECT_EQ(got[i].x, (int)std::floor(d.x0));
                EXPECT_EQ(got[i].y, (int)std::floor(d.y0));
                EXPECT_EQ(got[i].w, (int)std::ceil(d.x1) - (int)std::floor(d.x0));
                EXPECT_EQ(got[i].h, (int)std::ceil(d.y1) - (int)std::floor(d.y0));
                EXPECT_FLOAT_EQ((float)got[i].confidence, d.score);
            }
        });
    EXPECT_GT(total, 0) << "no person in the crop: the test would prove nothing";
}

TEST_F(Gst, PoseRegionsAreTheLibrarysPoses)
{
    const int w = 257, h = 193; // PoseNet: 16k + 1
    auto frames = cbi_test_read_frames("vtest.avi", 0, 3, kX, kY, w, h);
    const long total = run_both(
        "cbinfer model-file=" + cbi_test_model("posenet") + " task=pose", "posenet", frames, w, h,
        [&](const std::vector<Region> &got, const Reference &ref) {
            std::vector<cbinfer_pose> poses(64);
            int n = 0;
            ASSERT_EQ(cbinfer_decode_posenet(&ref.views[0], &ref.views[1], &ref.views[2],
                                             &ref.views[3], w, h, 0.5f, 20.0f, poses.data(),
                                             (int)poses.size(), &n, nullptr, 0),
                      CBINFER_STATUS_SUCCESS);
            // The element attaches the poses of min-pose-score (0.25) and more.
            std::vector<cbinfer_pose> kept;
            for (int i = 0; i < n; ++i)
                if (poses[i].score >= 0.25f) kept.push_back(poses[i]);
            poses = kept;
            n = (int)kept.size();
            ASSERT_EQ((int)got.size(), n);
            for (int i = 0; i < n; ++i) {
                EXPECT_EQ(got[i].type, "person");
                EXPECT_FLOAT_EQ((float)got[i].confidence, poses[i].score);
                // The region holds every keypoint.
                for (const cbinfer_keypoint &k : poses[i].keypoints) {
                    EXPECT_LE(got[i].x, std::max(0.f, std::floor(k.x)));
                    EXPECT_LE(got[i].y, std::max(0.f, std::floor(k.y)));
                    EXPECT_GE(got[i].x + got[i].w, std::min((float)w, std::ceil(k.x)));
                    EXPECT_GE(got[i].y + got[i].h, std::min((float)h, std::ceil(k.y)));
                }
            }
        });
    EXPECT_GT(total, 0) << "no pose in the crop: the test would prove nothing";
}

TEST_F(Gst, InstancesShareOneNetwork)
{
    // Two cameras' pipelines and a third element of another model, in one
    // process.
    const std::string vgg = cbi_test_model("vgg7-noise1");
    Pipeline p1("cbinfer name=a model-file=" + vgg, 64, 48);
    Pipeline p2("cbinfer name=b model-file=" + vgg, 64, 48);
    Pipeline p3("cbinfer name=c task=none model-file=" + cbi_test_model("scene-labeling-synthetic"),
                64, 48);
    ASSERT_TRUE(p1.ok() && p2.ok() && p3.ok());
    GstElement *a = p1.get("a"), *b = p2.get("b"), *c = p3.get("c");
    ASSERT_TRUE(a && b && c);
    auto users = [](GstElement *e) {
        int n = -1;
        g_object_get(e, "network-users", &n, nullptr);
        return n;
    };
    EXPECT_EQ(users(a), 0); // not started: nothing loaded
    ASSERT_TRUE(p1.play() && p2.play() && p3.play());
    const std::vector<uint8_t> frame(64 * 48 * 3, 100);
    std::vector<Region> got;
    std::vector<uint8_t> first, second, later;
    ASSERT_TRUE(p1.run(frame, &got, &first)) << p1.bus_error();
    ASSERT_TRUE(p2.run(frame, &got, &second)) << p2.bus_error();
    ASSERT_TRUE(p3.run(frame, &got)) << p3.bus_error();
    EXPECT_EQ(second, first);
    EXPECT_EQ(users(a), 2);
    EXPECT_EQ(users(b), 2);
    EXPECT_EQ(users(c), 1);
    // The second camera stops: the first keeps the network and still runs it.
    p2.stop();
    EXPECT_EQ(users(a), 1);
    EXPECT_EQ(users(b), 0);
    ASSERT_TRUE(p1.run(frame, &got, &later)) << p1.bus_error();
    EXPECT_EQ(later, first); // the same frame again: the same output
    // It comes back and shares the network again.
    ASSERT_TRUE(p2.play());
    EXPECT_EQ(users(a), 2);
    ASSERT_TRUE(p2.run(frame, &got, &later)) << p2.bus_error();
    EXPECT_EQ(later, first);
    gst_object_unref(a);
    gst_object_unref(b);
    gst_object_unref(c);
}

// vgg7-noise1's write-back at one size, then after new caps of another: the
// element's frames are the library's dense output, rounded (mode=dense: the
// same kernels, so byte for byte).
TEST_F(Gst, ImageWriteBackFollowsANewFrameSize)
{
    Pipeline p("cbinfer model-file=" + cbi_test_model("vgg7-noise1") + " mode=dense", 64, 48);
    ASSERT_TRUE(p.ok()) << p.error();
    ASSERT_TRUE(p.play());
    NetPtr net = load("vgg7-noise1");
    ASSERT_TRUE(net);
    for (const auto &size : {std::pair<int, int>{64, 48}, {96, 72}}) {
        const int w = size.first, h = size.second;
        SCOPED_TRACE(w);
        if (w != 64) p.resize(w, h);
        StreamPtr ref = make_stream(net.get(), w, h, CBINFER_BACKEND_CPU, CBINFER_MODE_DENSE);
        ASSERT_TRUE(ref);
        for (const auto &f : cbi_test_read_frames("vtest.avi", 0, 2, kX, kY, w, h)) {
            std::vector<Region> got;
            std::vector<uint8_t> pixels;
            ASSERT_TRUE(p.run(f, &got, &pixels)) << p.bus_error();
            push(ref.get(), f, w, h);
            const std::vector<float> y = output_of(ref.get());
            ASSERT_EQ(y.size(), (size_t)3 * w * h);
            size_t diff = 0;
            for (int i = 0; i < w * h; ++i)
                for (int c = 0; c < 3; ++c) {
                    float t = y[(size_t)c * w * h + i] * 255.0f;
                    t = t > 0.0f ? (t > 255.0f ? 255.0f : t) : 0.0f;
                    diff += pixels[(size_t)i * 3 + c] != (uint8_t)std::floor(t + 0.5f);
                }
            EXPECT_EQ(diff, 0u);
            EXPECT_NE(pixels, f); // the network's output, not the input
        }
    }
}

TEST_F(Gst, WrongFrameSizeIsAnError)
{
    // NanoDet's heads need a multiple of its largest stride.
    Pipeline p("cbinfer model-file=" + cbi_test_model("nanodet"), 50, 30);
    ASSERT_TRUE(p.ok()) << p.error();
    ASSERT_TRUE(p.play());
    std::vector<Region> got;
    EXPECT_FALSE(p.run(std::vector<uint8_t>(50 * 30 * 3, 7), &got, nullptr, 5));
    const std::string e = p.bus_error();
    EXPECT_NE(e.find("cannot create a stream"), std::string::npos) << e;
    EXPECT_NE(e.find("50x30"), std::string::npos) << e;
    EXPECT_NE(e.find(cbinfer_status_string(CBINFER_STATUS_BAD_FRAME_SIZE)), std::string::npos) << e;
}

} // namespace
