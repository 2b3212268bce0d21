/* Task agreement of cbinfer-bench; see task_metrics.h. */
#include "task_metrics.h"

#include <math.h>
#include <string.h>

float cbi_box_iou(const cbinfer_detection *a, const cbinfer_detection *b)
{
    const float w = fminf(a->x1, b->x1) - fmaxf(a->x0, b->x0);
    const float h = fminf(a->y1, b->y1) - fmaxf(a->y0, b->y0);
    if (!(w > 0.0f) || !(h > 0.0f)) return 0.0f;
    const float inter = w * h;
    const float uni = (a->x1 - a->x0) * (a->y1 - a->y0) + (b->x1 - b->x0) * (b->y1 - b->y0) - inter;
    return uni > 0.0f ? inter / uni : 0.0f;
}

void cbi_match_detections(const cbinfer_detection *ref, int nref, const cbinfer_detection *x,
                          int nx, cbi_class_counts *counts, int class_count, unsigned char *used)
{
    if (nref > 0) memset(used, 0, (size_t)nref);
    for (int i = 0; i < nref; ++i)
        if (ref[i].class_id >= 0 && ref[i].class_id < class_count) counts[ref[i].class_id].dense++;
    for (int i = 0; i < nx; ++i) {
        const int c = x[i].class_id;
        if (c < 0 || c >= class_count) continue;
        counts[c].cbinfer++;
        int best = -1;
        float best_iou = CBI_TASK_MATCH_IOU;
        for (int j = 0; j < nref; ++j) {
            if (used[j] || ref[j].class_id != c) continue;
            const float v = cbi_box_iou(&x[i], &ref[j]);
            if (v >= best_iou) {
                best_iou = v;
                best = j;
            }
        }
        if (best >= 0) {
            used[best] = 1;
            counts[c].matched++;
        }
    }
}

static int shown(const cbinfer_keypoint *k) { return k->score >= CBI_TASK_KEYPOINT_MIN; }

static float dist(const cbinfer_keypoint *a, const cbinfer_keypoint *b)
{
    return hypotf(a->x - b->x, a->y - b->y);
}

/* The head length of a dense pose (see cbi_pose_pck), or 0 when it has fewer
 * than two keypoints shown. */
static float head_length(const cbinfer_pose *p)
{
    const cbinfer_keypoint *k = p->keypoints;
    float head = 0.0f;
    if (shown(&k[3]) && shown(&k[4]))
        head = dist(&k[3], &k[4]); /* ear to ear */
    else if (shown(&k[1]) && shown(&k[2]))
        head = 2.0f * dist(&k[1], &k[2]); /* eyes: about half of that */
    if (head > 0.0f) return head;
    int n = 0;
    float x0 = INFINITY, y0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY;
    for (int i = 0; i < CBINFER_POSE_KEYPOINTS; ++i) {
        if (!shown(&k[i])) continue;
        n++;
        x0 = fminf(x0, k[i].x);
        x1 = fmaxf(x1, k[i].x);
        y0 = fminf(y0, k[i].y);
        y1 = fmaxf(y1, k[i].y);
    }
    return n < 2 ? 0.0f : fmaxf(x1 - x0, y1 - y0) / 6.0f;
}

void cbi_pose_pck(const cbinfer_pose *ref, int nref, const cbinfer_pose *x, int nx,
                  long long *placed, long long *total, unsigned char *used)
{
    if (nx > 0) memset(used, 0, (size_t)nx);
    for (int i = 0; i < nref; ++i) {
        const cbinfer_pose *r = &ref[i];
        if (!(r->score >= CBI_TASK_POSE_MIN)) continue;
        const float reach = CBI_TASK_PCK_ALPHA * head_length(r);
        if (!(reach > 0.0f)) continue;
        int shown_n = 0;
        for (int k = 0; k < CBINFER_POSE_KEYPOINTS; ++k) shown_n += shown(&r->keypoints[k]);
        int best = -1, best_hits = -1;
        float best_sum = INFINITY;
        for (int j = 0; j < nx; ++j) {
            if (used[j]) continue;
            int hits = 0;
            float sum = 0.0f;
            for (int k = 0; k < CBINFER_POSE_KEYPOINTS; ++k) {
                if (!shown(&r->keypoints[k])) continue;
                const float d = dist(&r->keypoints[k], &x[j].keypoints[k]);
                sum += d;
                hits += shown(&x[j].keypoints[k]) && d <= reach;
            }
            if (hits > best_hits || (hits == best_hits && sum < best_sum)) {
                best = j;
                best_hits = hits;
                best_sum = sum;
            }
        }
        *total += shown_n;
        if (best >= 0 && best_hits > 0) {
            used[best] = 1;
            *placed += best_hits;
        }
    }
}
