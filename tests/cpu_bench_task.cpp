// cbinfer-bench's task agreement (bench/task_metrics.c): the pairing of
// change-based with dense boxes and the PCKh@0.5 of poses, on hand-made
// results whose figures follow by hand.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "../bench/task_metrics.h"

namespace {

cbinfer_detection box(float x0, float y0, float x1, float y1, float score, int cls)
{
    return {x0, y0, x1, y1, score, cls};
}

TEST(BenchTask, BoxIou)
{
    const cbinfer_detection a = box(0, 0, 10, 10, 1, 0), b = box(5, 0, 15, 10, 1, 0);
    EXPECT_NEAR(cbi_box_iou(&a, &b), 50.0f / 150.0f, 1e-6);
    const cbinfer_detection c = box(20, 20, 30, 30, 1, 0), empty = box(3, 3, 3, 3, 1, 0);
    EXPECT_EQ(cbi_box_iou(&a, &c), 0.0f);
    EXPECT_EQ(cbi_box_iou(&a, &empty), 0.0f);
}

TEST(BenchTask, MatchPairsEachDenseBoxOnceWithinItsClass)
{
    const cbinfer_detection dense[] = {box(0, 0, 10, 10, 0.9f, 0), box(20, 0, 30, 10, 0.8f, 0),
                                       box(0, 0, 10, 10, 0.7f, 2)};
    const cbinfer_detection cb[] = {
        box(1, 0, 11, 10, 0.9f, 0),    // IoU 0.82 with dense 0
        box(0, 0, 10, 10, 0.85f, 0),   // the same dense box, already taken
        box(0, 0, 10, 10, 0.6f, 1),    // right place, wrong class
        box(24, 0, 34, 10, 0.5f, 0)};  // IoU 0.43 with dense 1: too little
    std::vector<cbi_class_counts> counts(3);
    std::memset(counts.data(), 0, counts.size() * sizeof counts[0]);
    unsigned char used[3];
    cbi_match_detections(dense, 3, cb, 4, counts.data(), 3, used);
    EXPECT_EQ(counts[0].dense, 2);
    EXPECT_EQ(counts[0].cbinfer, 3);
    EXPECT_EQ(counts[0].matched, 1);
    EXPECT_EQ(counts[1].dense, 0);
    EXPECT_EQ(counts[1].cbinfer, 1);
    EXPECT_EQ(counts[1].matched, 0);
    EXPECT_EQ(counts[2].dense, 1);
    EXPECT_EQ(counts[2].matched, 0);
    // Adding: the counts accumulate over calls, classes out of range are left out.
    const cbinfer_detection odd[] = {box(0, 0, 10, 10, 0.9f, 7)};
    cbi_match_detections(dense, 3, odd, 1, counts.data(), 3, used);
    EXPECT_EQ(counts[0].dense, 4);
    EXPECT_EQ(counts[0].cbinfer, 3);
}

TEST(BenchTask, MatchTakesTheBestOverlap)
{
    const cbinfer_detection dense[] = {box(0, 0, 10, 10, 0.9f, 0), box(2, 0, 12, 10, 0.9f, 0)};
    const cbinfer_detection cb[] = {box(2, 0, 12, 10, 0.9f, 0), box(-3, 0, 7, 10, 0.8f, 0)};
    cbi_class_counts c = {0, 0, 0};
    unsigned char used[2];
    cbi_match_detections(dense, 2, cb, 2, &c, 1, used);
    // The first takes dense 1 (IoU 1), not dense 0 (IoU 0.67), which leaves
    // dense 0 to the second (IoU 0.54; dense 1 would be 0.33).
    EXPECT_EQ(c.matched, 2);
}

// A standing person with its head keypoints 10 px apart (ears at x 95, 105).
cbinfer_pose person(float dx, float score)
{
    cbinfer_pose p;
    p.score = score;
    for (int k = 0; k < CBINFER_POSE_KEYPOINTS; ++k)
        p.keypoints[k] = {100.0f + dx, 100.0f + 5.0f * (float)k, 0.9f};
    p.keypoints[3].x = 95.0f + dx;  // left ear
    p.keypoints[4].x = 105.0f + dx; // right ear
    for (int k = 0; k < 5; ++k) p.keypoints[k].y = 100.0f;
    return p;
}

TEST(BenchTask, PckWithinHalfAHeadLength)
{
    const cbinfer_pose dense[] = {person(0, 0.8f)};
    // The head length is 10 px (ear to ear): 5 px away still counts.
    cbinfer_pose near = person(4.9f, 0.8f), far = person(5.1f, 0.8f);
    long long placed = 0, total = 0;
    unsigned char used[2];
    cbi_pose_pck(dense, 1, &near, 1, &placed, &total, used);
    EXPECT_EQ(total, 17);
    EXPECT_EQ(placed, 17);
    cbi_pose_pck(dense, 1, &far, 1, &placed, &total, used);
    EXPECT_EQ(total, 34);
    EXPECT_EQ(placed, 17);
    // A change-based keypoint too weak to be shown is not placed.
    near.keypoints[9].score = 0.2f;
    placed = total = 0;
    cbi_pose_pck(dense, 1, &near, 1, &placed, &total, used);
    EXPECT_EQ(placed, 16);
}

TEST(BenchTask, PckPairsPosesOnceAndSkipsWeakOnes)
{
    const cbinfer_pose dense[] = {person(0, 0.8f), person(200, 0.7f), person(400, 0.1f)};
    const cbinfer_pose cb[] = {person(200, 0.7f), person(1, 0.8f)};
    long long placed = 0, total = 0;
    unsigned char used[2];
    cbi_pose_pck(dense, 3, cb, 2, &placed, &total, used);
    EXPECT_EQ(total, 34);  // the third dense pose scores under CBI_TASK_POSE_MIN
    EXPECT_EQ(placed, 34);
    // A dense pose without a change-based one near it: all its keypoints are
    // missed, and it does not take the other's pose from it.
    placed = total = 0;
    cbi_pose_pck(dense, 2, cb, 1, &placed, &total, used);
    EXPECT_EQ(total, 34);
    EXPECT_EQ(placed, 17);
}

TEST(BenchTask, PckHeadLengthFromTheBodyWithoutAHead)
{
    cbinfer_pose d = person(0, 0.8f);
    for (int k = 0; k < 5; ++k) d.keypoints[k].score = 0.1f;  // no head shown
    // Keypoints 5..16 span 5 * 11 = 55 px in y: head length 55 / 6.
    cbinfer_pose x = d;
    for (int k = 5; k < CBINFER_POSE_KEYPOINTS; ++k) {
        x.keypoints[k].score = 0.9f;
        x.keypoints[k].x += 0.5f * 55.0f / 6.0f - 0.01f;
    }
    long long placed = 0, total = 0;
    unsigned char used[1];
    cbi_pose_pck(&d, 1, &x, 1, &placed, &total, used);
    EXPECT_EQ(total, 12);
    EXPECT_EQ(placed, 12);
}

}  // namespace

TEST(BenchTask, PckHeadLengthFromTheEyesWithoutTheEars)
{
    cbinfer_pose d = person(0, 0.8f);
    d.keypoints[3].score = d.keypoints[4].score = 0.1f;  // ears hidden
    d.keypoints[1].x = 98.0f;                            // eyes 4 px apart: head 8 px
    d.keypoints[2].x = 102.0f;
    long long placed = 0, total = 0;
    unsigned char used[1];
    for (float shift : {3.9f, 4.1f}) {
        cbinfer_pose x = d;
        for (int k = 0; k < CBINFER_POSE_KEYPOINTS; ++k) x.keypoints[k].y += shift;
        cbi_pose_pck(&d, 1, &x, 1, &placed, &total, used);
    }
    EXPECT_EQ(total, 2 * 15);
    EXPECT_EQ(placed, 15);  // within 4 px, not beyond
}
