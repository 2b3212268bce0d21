/*
 * Task-space losses of cbinfer-tune (--metric detect, pose): how far a
 * change-based stream's raw outputs stray from the dense ones in what the
 * decoders read, so that a threshold search spends its budget where boxes
 * and keypoints move, not on logits no decoder looks at; and where
 * PoseNet's outputs are (for cbinfer-bench's --task pose too). Pure
 * functions, tested by tests/cpu_tune.cpp.
 */
#ifndef CBI_TASK_LOSS_H
#define CBI_TASK_LOSS_H

#include "cbinfer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* NanoDet heads (cbinfer_decode_nanodet's layout: class_count logits, then 4
 * sides of B bins), x against the dense ref, head by head of equal shapes.
 * Per cell: the squared difference of every class's sigmoid score, plus the
 * dense cell's best class score times the squared difference of each side's
 * mean bin (the distance the decoder takes, in bins) over B. Returns the
 * mean over the cells of all heads; +inf where a value is not finite and
 * differs from the other side's (or the sum is not finite); NaN for
 * mismatched or impossible shapes. */
double cbi_detect_loss(const cbinfer_tensor_view *ref, const cbinfer_tensor_view *x, int heads,
                       int class_count);

/* PoseNet outputs in cbinfer_decode_posenet's order (heatmap, offsets,
 * displacement_fwd, displacement_bwd) on one grid of stride `stride` input
 * pixels. Per cell: the squared difference of the 17 keypoints' sigmoid
 * scores, plus each keypoint's dense score times its squared offset error,
 * plus the cell's best dense score times the squared error of the 32
 * displacement values of each direction (offsets and displacements in
 * cells, i.e. pixels over stride). Returns the mean over the cells; +inf
 * and NaN as cbi_detect_loss. */
double cbi_pose_loss(const cbinfer_tensor_view ref[4], const cbinfer_tensor_view x[4], float stride);

/* PoseNet's 4 outputs in cbinfer_decode_posenet's order (heatmap, offsets,
 * displacement_fwd, displacement_bwd) into out[]: by the converter's names
 * where all four carry them, else in the network's order. Returns 0, or -1
 * when net has not 4 outputs. */
int cbi_pose_outputs(const cbinfer_network_t *net, int out[4]);

#ifdef __cplusplus
}
#endif

#endif /* CBI_TASK_LOSS_H */
