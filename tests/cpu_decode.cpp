// The task decoders of the public API (cbinfer_decode_nanodet,
// cbinfer_decode_posenet) on small hand-made heads whose results follow from
// the method by hand: box geometry, NMS, capacity, the pose walk along the
// displacements, root NMS, and the argument checks. Real frames are the job
// of tests/python/test_decoders.py (Python.Decoders).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "cbinfer.h"

namespace {

// A NanoDet-shaped head: `classes` logits, then 4 sides of `bins` bins, on a
// w x h grid; every logit starts very negative (score ~0, flat bins).
struct Head {
    int classes, bins, w, h;
    std::vector<float> v;
    Head(int classes_, int bins_, int w_, int h_)
        : classes(classes_), bins(bins_), w(w_), h(h_),
          v((size_t)(classes_ + 4 * bins_) * w_ * h_, -30.0f)
    {
    }
    float &at(int c, int y, int x) { return v[((size_t)c * h + y) * w + x]; }
    // Class c scores sigmoid(logit) at (x, y); side distances in bins (one-hot).
    void box(int x, int y, int c, float logit, int l, int t, int r, int b)
    {
        at(c, y, x) = logit;
        const int d[4] = {l, t, r, b};
        for (int s = 0; s < 4; ++s) at(classes + s * bins + d[s], y, x) = 30.0f;
    }
    cbinfer_tensor_view view() const { return {v.data(), classes + 4 * bins, h, w}; }
};

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

TEST(Decode, NanodetBoxAroundTheCellCentre)
{
    Head hd(3, 5, 8, 6);  // stride 8 for a 64 x 48 input
    hd.box(2, 1, 1, 2.0f, 1, 2, 3, 4);
    const cbinfer_tensor_view v = hd.view();
    cbinfer_detection d[4];
    int n = -1;
    ASSERT_EQ(cbinfer_decode_nanodet(&v, 1, 64, 48, 3, 0.35f, 0.5f, d, 4, &n, nullptr, 0),
              CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(n, 1);
    // Centre ((2 + 0.5) * 8, (1 + 0.5) * 8) = (20, 12); distances bin * 8.
    EXPECT_NEAR(d[0].x0, 20 - 8, 1e-3);
    EXPECT_FLOAT_EQ(d[0].y0, 0.0f);  // 12 - 16, clipped to the input
    EXPECT_NEAR(d[0].x1, 20 + 24, 1e-3);
    EXPECT_NEAR(d[0].y1, 12 + 32, 1e-3);
    EXPECT_NEAR(d[0].score, sigmoid(2.0f), 1e-6);
    EXPECT_EQ(d[0].class_id, 1);
}

TEST(Decode, NanodetSoftmaxMeanOfTwoBins)
{
    Head hd(1, 4, 4, 4);  // stride 16 for 64 x 64
    hd.at(0, 2, 2) = 3.0f;
    // Left side: bins 1 and 2 equally likely -> 1.5 bins = 24 px.
    hd.at(1 + 1, 2, 2) = 10.0f;
    hd.at(1 + 2, 2, 2) = 10.0f;
    for (int s = 1; s < 4; ++s) hd.at(1 + s * 4 + 0, 2, 2) = 10.0f;  // 0 px
    const cbinfer_tensor_view v = hd.view();
    cbinfer_detection d[1];
    int n = 0;
    ASSERT_EQ(cbinfer_decode_nanodet(&v, 1, 64, 64, 1, 0.5f, 0.5f, d, 1, &n, nullptr, 0),
              CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(n, 1);
    EXPECT_NEAR(d[0].x0, 40.0f - 24.0f, 1e-3);
    EXPECT_NEAR(d[0].x1, 40.0f, 1e-3);
}

TEST(Decode, NanodetNmsWithinAClassOnly)
{
    Head hd(2, 4, 8, 8);  // stride 8, 64 x 64
    hd.box(3, 3, 0, 3.0f, 2, 2, 2, 2);  // box 12..44 around (28, 28)
    hd.box(4, 3, 0, 2.0f, 2, 2, 2, 2);  // the same box shifted by 8: IoU 0.6
    hd.box(4, 3, 1, 1.0f, 2, 2, 2, 2);  // another class at that cell: kept
    hd.box(0, 7, 0, 2.5f, 0, 0, 0, 0);  // far away: kept
    const cbinfer_tensor_view v = hd.view();
    cbinfer_detection d[8];
    int n = 0;
    ASSERT_EQ(cbinfer_decode_nanodet(&v, 1, 64, 64, 2, 0.3f, 0.5f, d, 8, &n, nullptr, 0),
              CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(n, 3);
    // Best first: the class-0 box at (3, 3), the far one, the class-1 box.
    EXPECT_NEAR(d[0].score, sigmoid(3.0f), 1e-6);
    EXPECT_NEAR(d[0].x0, 12.0f, 1e-3);
    EXPECT_NEAR(d[1].score, sigmoid(2.5f), 1e-6);
    EXPECT_EQ(d[2].class_id, 1);
    // A looser NMS keeps the overlapping box too.
    ASSERT_EQ(cbinfer_decode_nanodet(&v, 1, 64, 64, 2, 0.3f, 0.7f, d, 8, &n, nullptr, 0),
              CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(n, 4);
}

TEST(Decode, NanodetCapacityKeepsTheBestAndSaysHowMany)
{
    Head hd(1, 2, 4, 4);
    hd.box(0, 0, 0, 1.0f, 0, 0, 1, 1);
    hd.box(3, 3, 0, 4.0f, 0, 0, 1, 1);
    const cbinfer_tensor_view v = hd.view();
    cbinfer_detection d[1];
    int n = 0;
    char err[256] = "";
    EXPECT_EQ(cbinfer_decode_nanodet(&v, 1, 16, 16, 1, 0.5f, 0.5f, d, 1, &n, err, sizeof err),
              CBINFER_STATUS_BUFFER_TOO_SMALL);
    EXPECT_EQ(n, 2);
    EXPECT_NEAR(d[0].score, sigmoid(4.0f), 1e-6);
    EXPECT_NE(std::strstr(err, "2 boxes"), nullptr) << err;
    // A count query: no room at all.
    EXPECT_EQ(cbinfer_decode_nanodet(&v, 1, 16, 16, 1, 0.5f, 0.5f, nullptr, 0, &n, nullptr, 0),
              CBINFER_STATUS_BUFFER_TOO_SMALL);
    EXPECT_EQ(n, 2);
}

TEST(Decode, NanodetHeadsOfSeveralStrides)
{
    Head s8(1, 2, 8, 8), s16(1, 2, 4, 4);  // 64 x 64: strides 8 and 16
    s8.box(1, 1, 0, 2.0f, 0, 0, 1, 1);
    s16.box(3, 3, 0, 2.0f, 1, 1, 0, 0);
    const cbinfer_tensor_view v[2] = {s8.view(), s16.view()};
    cbinfer_detection d[4];
    int n = 0;
    ASSERT_EQ(cbinfer_decode_nanodet(v, 2, 64, 64, 1, 0.5f, 0.5f, d, 4, &n, nullptr, 0),
              CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(n, 2);
    // Equal scores: the earlier head first.
    EXPECT_NEAR(d[0].x0, 12.0f, 1e-3);
    EXPECT_NEAR(d[0].x1, 20.0f, 1e-3);
    EXPECT_NEAR(d[1].x0, 56.0f - 16.0f, 1e-3);
    EXPECT_NEAR(d[1].x1, 56.0f, 1e-3);
}

TEST(Decode, NanodetRefusesBadArguments)
{
    Head hd(80, 11, 12, 9);
    const cbinfer_tensor_view v = hd.view();
    cbinfer_detection d[1];
    int n = 7;
    char err[256];
    EXPECT_EQ(cbinfer_decode_nanodet(nullptr, 1, 384, 288, 80, 0.35f, 0.5f, d, 1, &n, err, 256),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(n, 0);
    EXPECT_EQ(cbinfer_decode_nanodet(&v, 1, 384, 288, 80, 0.35f, 0.5f, d, 1, nullptr, err, 256),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_decode_nanodet(&v, 1, 384, 288, 80, 0.35f, 0.5f, nullptr, 1, &n, err, 256),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(cbinfer_decode_nanodet(&v, 0, 384, 288, 80, 0.35f, 0.5f, d, 1, &n, err, 256),
              CBINFER_STATUS_BAD_PARAM);
    EXPECT_EQ(cbinfer_decode_nanodet(&v, 1, 384, 288, 81, 0.35f, 0.5f, d, 1, &n, err, 256),
              CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(std::strstr(err, "channels"), nullptr) << err;
    EXPECT_EQ(cbinfer_decode_nanodet(&v, 1, 300, 288, 80, 0.35f, 0.5f, d, 1, &n, err, 256),
              CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(std::strstr(err, "stride"), nullptr) << err;
    EXPECT_EQ(cbinfer_decode_nanodet(&v, 1, 384, 288, 80, NAN, 0.5f, d, 1, &n, err, 256),
              CBINFER_STATUS_BAD_PARAM);
    EXPECT_EQ(cbinfer_decode_nanodet(&v, 1, 384, 288, 80, 0.35f, -0.1f, d, 1, &n, err, 256),
              CBINFER_STATUS_BAD_PARAM);
    const cbinfer_tensor_view no_data = {nullptr, 124, 9, 12};
    EXPECT_EQ(cbinfer_decode_nanodet(&no_data, 1, 384, 288, 80, 0.35f, 0.5f, d, 1, &n, err, 256),
              CBINFER_STATUS_NULL_ARGUMENT);
}

// PoseNet-shaped outputs on a w x h grid: heatmap logits very negative, zero
// offsets and displacements.
struct PoseOut {
    int w, h;
    std::vector<float> heat, off, fwd, bwd;
    PoseOut(int w_, int h_)
        : w(w_), h(h_), heat((size_t)17 * w_ * h_, -10.0f), off((size_t)34 * w_ * h_, 0.0f),
          fwd((size_t)32 * w_ * h_, 0.0f), bwd((size_t)32 * w_ * h_, 0.0f)
    {
    }
    float &at(std::vector<float> &t, int c, int y, int x) { return t[((size_t)c * h + y) * w + x]; }
    cbinfer_tensor_view v(const std::vector<float> &t, int c) const { return {t.data(), c, h, w}; }
    cbinfer_status decode(int in_w, int in_h, float thr, float radius, cbinfer_pose *out, int cap,
                          int *n)
    {
        const cbinfer_tensor_view a = v(heat, 17), b = v(off, 34), c = v(fwd, 32), d = v(bwd, 32);
        return cbinfer_decode_posenet(&a, &b, &c, &d, in_w, in_h, thr, radius, out, cap, n,
                                      nullptr, 0);
    }
};

TEST(Decode, PosenetWalksTheDisplacementsFromTheRoot)
{
    PoseOut p(5, 4);  // 65 x 49 input: stride 16
    // Root: the left shoulder (5) at cell (x 2, y 1), offset (+3, -2).
    p.at(p.heat, 5, 1, 2) = 2.0f;
    p.at(p.off, 5, 1, 2) = -2.0f;      // y
    p.at(p.off, 5 + 17, 1, 2) = 3.0f;  // x
    // Backward along edge 4 (nose -> left shoulder): the nose lies 16 px up
    // and 16 px left of the shoulder, i.e. at cell (1, 0); its offset (1, 1).
    p.at(p.bwd, 4, 1, 2) = -16.0f;
    p.at(p.bwd, 4 + 16, 1, 2) = -16.0f;
    p.at(p.off, 0, 0, 1) = 1.0f;
    p.at(p.off, 17, 0, 1) = 1.0f;
    p.at(p.heat, 0, 0, 1) = 1.0f;
    // Forward along edge 5 (left shoulder -> left elbow): 32 px down.
    p.at(p.fwd, 5, 1, 2) = 32.0f;
    p.at(p.heat, 7, 3, 2) = 0.0f;
    cbinfer_pose out[4];
    int n = 0;
    ASSERT_EQ(p.decode(65, 49, 0.5f, 20.0f, out, 4, &n), CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(n, 1);
    const cbinfer_keypoint *k = out[0].keypoints;
    EXPECT_FLOAT_EQ(k[5].x, 2 * 16 + 3.0f);
    EXPECT_FLOAT_EQ(k[5].y, 1 * 16 - 2.0f);
    EXPECT_NEAR(k[5].score, sigmoid(2.0f), 1e-6);
    EXPECT_FLOAT_EQ(k[0].x, 1 * 16 + 1.0f);  // the nose, refined by its offset
    EXPECT_FLOAT_EQ(k[0].y, 0 * 16 + 1.0f);
    EXPECT_NEAR(k[0].score, sigmoid(1.0f), 1e-6);
    EXPECT_FLOAT_EQ(k[7].x, 2 * 16.0f);  // the elbow: cell (2, 3), no offset
    EXPECT_FLOAT_EQ(k[7].y, 3 * 16.0f);
    EXPECT_NEAR(k[7].score, 0.5f, 1e-6);
    // The pose's score: the mean of the 17 keypoint scores (no earlier pose).
    float sum = 0.0f;
    for (int i = 0; i < CBINFER_POSE_KEYPOINTS; ++i) sum += k[i].score;
    EXPECT_NEAR(out[0].score, sum / 17.0f, 1e-6);
}

TEST(Decode, PosenetRootsAreLocalMaximaOutsideTheNmsRadius)
{
    PoseOut p(9, 9);  // 129 x 129: stride 16
    p.at(p.heat, 0, 1, 1) = 3.0f;  // a nose
    p.at(p.heat, 0, 1, 2) = 2.0f;  // its neighbour: not a local maximum
    p.at(p.heat, 0, 7, 7) = 2.5f;  // another person's nose
    p.at(p.heat, 1, 1, 1) = 1.0f;  // a left eye on the first nose: within the radius
    cbinfer_pose out[8];
    int n = 0;
    ASSERT_EQ(p.decode(129, 129, 0.5f, 20.0f, out, 8, &n), CBINFER_STATUS_SUCCESS);
    ASSERT_EQ(n, 2);
    EXPECT_FLOAT_EQ(out[0].keypoints[0].x, 16.0f);
    EXPECT_FLOAT_EQ(out[1].keypoints[0].x, 112.0f);
    EXPECT_LT(out[1].score, out[0].score);  // its nose is weaker, it has no eye
    // The eye's own root (on the first pose's eye) was skipped: the first
    // pose holds it.
    EXPECT_NEAR(out[0].keypoints[1].score, sigmoid(1.0f), 1e-6);
    // capacity caps the poses.
    ASSERT_EQ(p.decode(129, 129, 0.5f, 20.0f, out, 1, &n), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(n, 1);
}

TEST(Decode, PosenetRefusesBadArguments)
{
    PoseOut p(25, 19);
    cbinfer_pose out[1];
    int n = 0;
    EXPECT_EQ(p.decode(385, 289, 0.5f, 20.0f, out, 1, &n), CBINFER_STATUS_SUCCESS);
    EXPECT_EQ(n, 0);  // nothing scores 0.5
    EXPECT_EQ(p.decode(385, 289, 0.5f, 20.0f, nullptr, 1, &n), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(p.decode(385, 289, 0.5f, 20.0f, out, 1, nullptr), CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_EQ(p.decode(385, 289, 1.5f, 20.0f, out, 1, &n), CBINFER_STATUS_BAD_PARAM);
    EXPECT_EQ(p.decode(385, 289, 0.5f, -1.0f, out, 1, &n), CBINFER_STATUS_BAD_PARAM);
    EXPECT_EQ(p.decode(385, 289, 0.5f, INFINITY, out, 1, &n), CBINFER_STATUS_BAD_PARAM);
    EXPECT_EQ(p.decode(200, 289, 0.5f, 20.0f, out, 1, &n), CBINFER_STATUS_BAD_PARAM);
    const cbinfer_tensor_view a = p.v(p.heat, 17), wrong = p.v(p.off, 17);
    char err[256] = "";
    EXPECT_EQ(cbinfer_decode_posenet(&a, &wrong, &a, &a, 385, 289, 0.5f, 20.0f, out, 1, &n, err,
                                     sizeof err),
              CBINFER_STATUS_BAD_PARAM);
    EXPECT_NE(std::strstr(err, "offsets"), nullptr) << err;
    EXPECT_EQ(cbinfer_decode_posenet(&a, nullptr, &a, &a, 385, 289, 0.5f, 20.0f, out, 1, &n,
                                     nullptr, 0),
              CBINFER_STATUS_NULL_ARGUMENT);
    EXPECT_STREQ(cbinfer_pose_keypoint_name(0), "nose");
    EXPECT_STREQ(cbinfer_pose_keypoint_name(16), "right_ankle");
    EXPECT_EQ(cbinfer_pose_keypoint_name(17), nullptr);
    EXPECT_EQ(cbinfer_pose_keypoint_name(-1), nullptr);
    EXPECT_STREQ(cbinfer_coco_class_name(0), "person");
    EXPECT_STREQ(cbinfer_coco_class_name(2), "car");
    EXPECT_STREQ(cbinfer_coco_class_name(CBINFER_COCO_CLASSES - 1), "toothbrush");
    EXPECT_EQ(cbinfer_coco_class_name(CBINFER_COCO_CLASSES), nullptr);
    EXPECT_EQ(cbinfer_coco_class_name(-1), nullptr);
}

}  // namespace
