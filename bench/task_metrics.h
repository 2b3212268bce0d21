/*
 * Task agreement of cbinfer-bench (--task, compare mode): how far the
 * change-based stream's boxes and keypoints stray from the dense stream's.
 * Pure functions over decoded results, tested by tests/cpu_bench_task.cpp.
 */
#ifndef CBI_TASK_METRICS_H
#define CBI_TASK_METRICS_H

#include "cbinfer.h"
#include "report.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CBI_TASK_MATCH_IOU 0.5f  /* a change-based box matches a dense one at IoU >= this */
#define CBI_TASK_PCK_ALPHA 0.5f  /* PCKh@0.5: within half a head length */
#define CBI_TASK_POSE_MIN 0.25f  /* poses of a lower score are not counted */
#define CBI_TASK_KEYPOINT_MIN 0.5f /* keypoints of a lower score are not shown */

/* Intersection over union of two boxes (0 when either is empty). */
float cbi_box_iou(const cbinfer_detection *a, const cbinfer_detection *b);

/* Pairs the change-based boxes x (best first, as the decoder writes them)
 * with the dense boxes ref: each x box takes the unpaired ref box of its
 * class with the highest IoU, if that is >= CBI_TASK_MATCH_IOU. Adds each
 * side's boxes and the pairs to counts[class] (classes outside
 * [0, class_count) are not counted). used is scratch of nref bytes. */
void cbi_match_detections(const cbinfer_detection *ref, int nref, const cbinfer_detection *x,
                          int nx, cbi_class_counts *counts, int class_count, unsigned char *used);

/* PCKh@0.5 of the change-based poses x against the dense poses ref: every
 * dense pose of score >= CBI_TASK_POSE_MIN, in order, takes the unpaired x
 * pose that places most of its keypoints (ties: the smaller sum of
 * distances; a pose that places none is left unpaired), and each of its keypoints of score >= CBI_TASK_KEYPOINT_MIN
 * counts as placed when that pose's keypoint also scores that much and lies
 * within CBI_TASK_PCK_ALPHA head lengths of it. The head length is the
 * distance between the two ears where both are shown, else twice that
 * between the eyes, else a sixth of the larger side of the box around all
 * shown keypoints; a pose without a length (fewer than two shown keypoints,
 * all in one place) is not counted. Adds to *placed and *total; used is
 * scratch of nx bytes. */
void cbi_pose_pck(const cbinfer_pose *ref, int nref, const cbinfer_pose *x, int nx,
                  long long *placed, long long *total, unsigned char *used);

#ifdef __cplusplus
}
#endif

#endif /* CBI_TASK_METRICS_H */
