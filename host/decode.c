/*
 * Task decoders of the public API (cbinfer.h, "Task decoders"): NanoDet's
 * boxes and PoseNet's multi-person poses from the networks' raw outputs.
 * Plain C over caller memory, no state; both backends' outputs reach them
 * through cbinfer_stream_read_output_at.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbinfer.h"
#include "common.h"

/* Largest head count cbinfer_decode_nanodet takes (NanoDet has 3). */
#define DECODE_MAX_HEADS 16

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* The power-of-two stride s (1 to 1024) with ceil(in / s) = grid on both
 * axes, or 0 when there is none. */
static int stride_of(int in_w, int in_h, int grid_w, int grid_h)
{
    for (int s = 1; s <= 1024; s *= 2)
        if ((in_w - 1) / s + 1 == grid_w && (in_h - 1) / s + 1 == grid_h) return s;
    return 0;
}

static cbinfer_status check_view(cbi_err *e, const cbinfer_tensor_view *v, const char *what)
{
    if (!v || !v->data) return cbi_fail(e, CBINFER_STATUS_NULL_ARGUMENT, "%s: NULL tensor", what);
    if (v->channels < 1 || v->height < 1 || v->width < 1)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "%s: bad shape %dx%dx%d", what, v->channels,
                        v->height, v->width);
    return CBINFER_STATUS_SUCCESS;
}

static cbinfer_status check_unit(cbi_err *e, float v, const char *what)
{
    if (!(v >= 0.0f && v <= 1.0f))
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "%s %g is outside [0, 1]", what, (double)v);
    return CBINFER_STATUS_SUCCESS;
}

/* ------------------------------------------------------------- NanoDet -- */

typedef struct {
    cbinfer_detection d;
    int64_t order; /* head, row, column: the tie-break of equal scores */
} candidate;

static int by_class_then_score(const void *pa, const void *pb)
{
    const candidate *a = pa, *b = pb;
    if (a->d.class_id != b->d.class_id) return a->d.class_id < b->d.class_id ? -1 : 1;
    if (a->d.score != b->d.score) return a->d.score > b->d.score ? -1 : 1;
    return (a->order > b->order) - (a->order < b->order);
}

static int by_score(const void *pa, const void *pb)
{
    const candidate *a = pa, *b = pb;
    if (a->d.score != b->d.score) return a->d.score > b->d.score ? -1 : 1;
    if (a->d.class_id != b->d.class_id) return a->d.class_id < b->d.class_id ? -1 : 1;
    return (a->order > b->order) - (a->order < b->order);
}

static float iou(const cbinfer_detection *a, const cbinfer_detection *b)
{
    const float w = fminf(a->x1, b->x1) - fmaxf(a->x0, b->x0);
    const float h = fminf(a->y1, b->y1) - fmaxf(a->y0, b->y0);
    if (w <= 0.0f || h <= 0.0f) return 0.0f;
    const float inter = w * h;
    const float uni = (a->x1 - a->x0) * (a->y1 - a->y0) + (b->x1 - b->x0) * (b->y1 - b->y0) - inter;
    return uni > 0.0f ? inter / uni : 0.0f;
}

/* GFL's distance of one side: stride times the expected bin of a softmax over
 * the bins at p[0], p[step], ... */
static float side_distance(const float *p, size_t step, int bins, int stride)
{
    float m = p[0];
    for (int b = 1; b < bins; ++b) m = fmaxf(m, p[(size_t)b * step]);
    float sum = 0.0f, mean = 0.0f;
    for (int b = 0; b < bins; ++b) {
        const float w = expf(p[(size_t)b * step] - m);
        sum += w;
        mean += w * (float)b;
    }
    return mean / sum * (float)stride;
}

static float clampf(float v, float hi) { return fminf(fmaxf(v, 0.0f), hi); }

/* The box of cell (x, y), clipped to the input: left, top, right, bottom
 * distances from the bins at d (side after side, `bins` planes each). */
static void cell_box(const float *d, size_t plane, int bins, int s, int x, int y, int in_w,
                     int in_h, float box[4])
{
    const float cx = ((float)x + 0.5f) * (float)s, cy = ((float)y + 0.5f) * (float)s;
    const size_t side = (size_t)bins * plane;
    box[0] = clampf(cx - side_distance(d, plane, bins, s), (float)in_w);
    box[1] = clampf(cy - side_distance(d + side, plane, bins, s), (float)in_h);
    box[2] = clampf(cx + side_distance(d + 2 * side, plane, bins, s), (float)in_w);
    box[3] = clampf(cy + side_distance(d + 3 * side, plane, bins, s), (float)in_h);
}

static cbinfer_status nanodet(cbi_err *e, const cbinfer_tensor_view *heads, int head_count,
                              int in_w, int in_h, int classes, float score_thr, float iou_thr,
                              cbinfer_detection *out, int capacity, int *count)
{
    if (!heads || !count) return cbi_fail(e, CBINFER_STATUS_NULL_ARGUMENT, "NULL argument");
    if (!out && capacity > 0) return cbi_fail(e, CBINFER_STATUS_NULL_ARGUMENT, "out is NULL");
    if (head_count < 1 || head_count > DECODE_MAX_HEADS)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "%d heads (1 to %d)", head_count,
                        DECODE_MAX_HEADS);
    if (in_w < 1 || in_h < 1 || capacity < 0 || classes < 1)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM,
                        "input %dx%d, class count %d, capacity %d: all must be positive", in_w,
                        in_h, classes, capacity);
    cbinfer_status st = check_unit(e, score_thr, "score threshold");
    if (st == CBINFER_STATUS_SUCCESS) st = check_unit(e, iou_thr, "IoU threshold");
    if (st != CBINFER_STATUS_SUCCESS) return st;
    int strides[DECODE_MAX_HEADS];
    for (int h = 0; h < head_count; ++h) {
        char what[32];
        snprintf(what, sizeof what, "head %d", h);
        if ((st = check_view(e, &heads[h], what)) != CBINFER_STATUS_SUCCESS) return st;
        const int bins4 = heads[h].channels - classes;
        if (bins4 < 4 || bins4 % 4 != 0)
            return cbi_fail(e, CBINFER_STATUS_BAD_PARAM,
                            "head %d: %d channels are not %d classes plus 4 sides of bins", h,
                            heads[h].channels, classes);
        strides[h] = stride_of(in_w, in_h, heads[h].width, heads[h].height);
        if (!strides[h])
            return cbi_fail(e, CBINFER_STATUS_BAD_PARAM,
                            "head %d: its %dx%d grid is no power-of-two stride of the %dx%d input",
                            h, heads[h].width, heads[h].height, in_w, in_h);
    }

    /* sigmoid(x) > t where x > logit(t): most cells and classes fail on the
     * logit, without an exp; the margin leaves the last word to the sigmoid. */
    const float logit_thr = score_thr <= 0.0f   ? -INFINITY
                            : score_thr >= 1.0f ? INFINITY
                                                : logf(score_thr / (1.0f - score_thr)) - 1e-3f;
    size_t n = 0, cap = 0;
    candidate *c = NULL;
    int64_t order = 0;
    for (int h = 0; h < head_count; ++h) {
        const cbinfer_tensor_view *v = &heads[h];
        const size_t plane = (size_t)v->height * (size_t)v->width;
        const int bins = (v->channels - classes) / 4, s = strides[h];
        for (int y = 0; y < v->height; ++y)
            for (int x = 0; x < v->width; ++x, ++order) {
                const float *cell = v->data + (size_t)y * v->width + x;
                float box[4] = {0};
                int have_box = 0;
                for (int k = 0; k < classes; ++k) {
                    const float logit = cell[(size_t)k * plane];
                    if (!(logit > logit_thr)) continue;
                    const float score = sigmoidf(logit);
                    if (!(score > score_thr)) continue;
                    if (!have_box) {
                        cell_box(cell + (size_t)classes * plane, plane, bins, s, x, y, in_w, in_h,
                                 box);
                        have_box = 1;
                    }
                    if (n == cap) {
                        size_t ncap = cap ? 2 * cap : 256;
                        candidate *t = realloc(c, ncap * sizeof *t);
                        if (!t) {
                            free(c);
                            return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY,
                                            "no memory for %zu candidate boxes", ncap);
                        }
                        c = t;
                        cap = ncap;
                    }
                    c[n].d = (cbinfer_detection){box[0], box[1], box[2], box[3], score, k};
                    c[n].order = order;
                    n++;
                }
            }
    }

    /* Greedy NMS within each class: the kept boxes gather at the front. */
    if (n) qsort(c, n, sizeof *c, by_class_then_score);
    size_t kept = 0;
    for (size_t i = 0, first = 0; i < n; ++i) {
        if (i > 0 && c[i].d.class_id != c[i - 1].d.class_id) first = kept;
        int keep = 1;
        for (size_t j = first; j < kept && keep; ++j) keep = !(iou(&c[i].d, &c[j].d) > iou_thr);
        if (keep) c[kept++] = c[i];
    }
    if (kept) qsort(c, kept, sizeof *c, by_score);
    const size_t written = kept < (size_t)capacity ? kept : (size_t)capacity;
    for (size_t i = 0; i < written; ++i) out[i] = c[i].d;
    free(c);
    if (kept > (size_t)INT32_MAX)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "%zu boxes kept: more than an int counts", kept);
    *count = (int)kept;
    if (kept > (size_t)capacity)
        return cbi_fail(e, CBINFER_STATUS_BUFFER_TOO_SMALL,
                        "%zu boxes kept, room for %d: the best %d were written", kept, capacity,
                        capacity);
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbinfer_decode_nanodet(const cbinfer_tensor_view *heads, int head_count,
                                      int input_width, int input_height, int class_count,
                                      float score_threshold, float iou_threshold,
                                      cbinfer_detection *out, int capacity, int *count, char *err,
                                      size_t err_len)
{
    cbi_err e = {{0}};
    if (count) *count = 0;
    cbinfer_status st = nanodet(&e, heads, head_count, input_width, input_height, class_count,
                                score_threshold, iou_threshold, out, capacity, count);
    cbi_err_copy(&e, err, err_len);
    return st;
}

static const char *const k_coco_names[CBINFER_COCO_CLASSES] = {
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush"};

const char *cbinfer_coco_class_name(int class_id)
{
    return class_id >= 0 && class_id < CBINFER_COCO_CLASSES ? k_coco_names[class_id] : NULL;
}

/* ------------------------------------------------------------- PoseNet -- */

static const char *const k_keypoint_names[CBINFER_POSE_KEYPOINTS] = {
    "nose",       "left_eye",       "right_eye", "left_ear",   "right_ear",   "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip",  "left_knee",      "right_knee", "left_ankle", "right_ankle"};

const char *cbinfer_pose_keypoint_name(int index)
{
    return index >= 0 && index < CBINFER_POSE_KEYPOINTS ? k_keypoint_names[index] : NULL;
}

/* The keypoint tree as PoseNet trained its displacements: edge e leads from
 * parent k_edges[e][0] to child k_edges[e][1]. */
#define POSE_EDGES 16
static const int k_edges[POSE_EDGES][2] = {
    {0, 1}, {1, 3}, {0, 2}, {2, 4}, {0, 5}, {5, 7}, {7, 9}, {5, 11},
    {11, 13}, {13, 15}, {0, 6}, {6, 8}, {8, 10}, {6, 12}, {12, 14}, {14, 16}};

typedef struct {
    const float *heat, *off, *fwd, *bwd;
    int gw, gh, stride;
    size_t plane;
} pose_grid;

typedef struct {
    float logit;
    int y, x, k;
} root_candidate;

static int by_root(const void *pa, const void *pb)
{
    const root_candidate *a = pa, *b = pb;
    if (a->logit != b->logit) return a->logit > b->logit ? -1 : 1;
    if (a->y != b->y) return a->y < b->y ? -1 : 1;
    if (a->x != b->x) return a->x < b->x ? -1 : 1;
    return (a->k > b->k) - (a->k < b->k);
}

static float at(const pose_grid *g, const float *t, int ch, int y, int x)
{
    return t[(size_t)ch * g->plane + (size_t)y * g->gw + x];
}

/* round(p / stride) (halves up, as JavaScript's Math.round) within [0, n). */
static int nearest_cell(float p, int stride, int n)
{
    const float q = floorf(p / (float)stride + 0.5f);
    if (!(q > 0.0f)) return 0; /* NaN too */
    return q >= (float)(n - 1) ? n - 1 : (int)q;
}

/* The grid cell nearest to an input-pixel point. */
static void cell_of(const pose_grid *g, float px, float py, int *cx, int *cy)
{
    *cx = nearest_cell(px, g->stride, g->gw);
    *cy = nearest_cell(py, g->stride, g->gh);
}

/* Keypoint k placed from cell (x, y): the cell's corner plus its offset. */
static void place(const pose_grid *g, int k, int y, int x, cbinfer_keypoint *kp)
{
    kp->y = (float)(y * g->stride) + at(g, g->off, k, y, x);
    kp->x = (float)(x * g->stride) + at(g, g->off, k + CBINFER_POSE_KEYPOINTS, y, x);
}

/* Follows edge e from the source keypoint to keypoint `target` along the
 * displacements disp, then refines by the offsets twice. */
static cbinfer_keypoint traverse(const pose_grid *g, int e, const cbinfer_keypoint *src,
                                 int target, const float *disp)
{
    int cx, cy;
    cell_of(g, src->x, src->y, &cx, &cy);
    cbinfer_keypoint t;
    t.y = src->y + at(g, disp, e, cy, cx);
    t.x = src->x + at(g, disp, e + POSE_EDGES, cy, cx);
    for (int step = 0; step < 2; ++step) {
        cell_of(g, t.x, t.y, &cx, &cy);
        place(g, target, cy, cx, &t);
    }
    cell_of(g, t.x, t.y, &cx, &cy);
    t.score = sigmoidf(at(g, g->heat, target, cy, cx));
    return t;
}

static int near_earlier(const cbinfer_pose *poses, int n, int k, float x, float y, float r2)
{
    for (int i = 0; i < n; ++i) {
        const float dx = poses[i].keypoints[k].x - x, dy = poses[i].keypoints[k].y - y;
        if (dx * dx + dy * dy <= r2) return 1;
    }
    return 0;
}

static cbinfer_status posenet(cbi_err *e, const cbinfer_tensor_view *heat,
                              const cbinfer_tensor_view *off, const cbinfer_tensor_view *fwd,
                              const cbinfer_tensor_view *bwd, int in_w, int in_h, float score_thr,
                              float nms_radius_px, cbinfer_pose *out, int capacity, int *count)
{
    if (!count) return cbi_fail(e, CBINFER_STATUS_NULL_ARGUMENT, "count is NULL");
    if (!out && capacity > 0) return cbi_fail(e, CBINFER_STATUS_NULL_ARGUMENT, "out is NULL");
    const cbinfer_tensor_view *views[4] = {heat, off, fwd, bwd};
    static const char *const names[4] = {"heatmap", "offsets", "displacement_fwd",
                                         "displacement_bwd"};
    static const int channels[4] = {CBINFER_POSE_KEYPOINTS, 2 * CBINFER_POSE_KEYPOINTS,
                                    2 * POSE_EDGES, 2 * POSE_EDGES};
    cbinfer_status st;
    for (int i = 0; i < 4; ++i) {
        if ((st = check_view(e, views[i], names[i])) != CBINFER_STATUS_SUCCESS) return st;
        if (views[i]->channels != channels[i] || views[i]->height != heat->height ||
            views[i]->width != heat->width)
            return cbi_fail(e, CBINFER_STATUS_BAD_PARAM,
                            "%s is %dx%dx%d; PoseNet's is %dx%dx%d (the heatmap's grid)", names[i],
                            views[i]->channels, views[i]->height, views[i]->width, channels[i],
                            heat->height, heat->width);
    }
    if (in_w < 1 || in_h < 1 || capacity < 0)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "input %dx%d, capacity %d", in_w, in_h,
                        capacity);
    if ((st = check_unit(e, score_thr, "score threshold")) != CBINFER_STATUS_SUCCESS) return st;
    if (!(nms_radius_px >= 0.0f) || isinf(nms_radius_px))
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "NMS radius %g is not a finite value >= 0",
                        (double)nms_radius_px);
    pose_grid g = {heat->data, off->data, fwd->data, bwd->data, heat->width, heat->height, 0,
                   (size_t)heat->width * (size_t)heat->height};
    g.stride = stride_of(in_w, in_h, g.gw, g.gh);
    if (!g.stride)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM,
                        "the %dx%d grid is no power-of-two stride of the %dx%d input", g.gw, g.gh,
                        in_w, in_h);

    /* Root candidates: scores >= the threshold that no neighbour in the 3 x 3
     * window beats (compared as logits, which sigmoid orders alike). */
    root_candidate *q = cbi_malloc_array(g.plane * CBINFER_POSE_KEYPOINTS, sizeof *q);
    if (!q)
        return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "no memory for %zu root candidates",
                        g.plane * CBINFER_POSE_KEYPOINTS);
    size_t n = 0;
    for (int k = 0; k < CBINFER_POSE_KEYPOINTS; ++k)
        for (int y = 0; y < g.gh; ++y)
            for (int x = 0; x < g.gw; ++x) {
                const float v = at(&g, g.heat, k, y, x);
                if (!(sigmoidf(v) >= score_thr)) continue;
                int is_max = 1;
                for (int yy = y > 0 ? y - 1 : 0; yy <= y + 1 && yy < g.gh && is_max; ++yy)
                    for (int xx = x > 0 ? x - 1 : 0; xx <= x + 1 && xx < g.gw; ++xx)
                        if (at(&g, g.heat, k, yy, xx) > v) {
                            is_max = 0;
                            break;
                        }
                if (is_max) q[n++] = (root_candidate){v, y, x, k};
            }
    if (n) qsort(q, n, sizeof *q, by_root);

    const float r2 = nms_radius_px * nms_radius_px;
    int poses = 0;
    for (size_t i = 0; i < n && poses < capacity; ++i) {
        const root_candidate *r = &q[i];
        cbinfer_keypoint root;
        place(&g, r->k, r->y, r->x, &root);
        root.score = sigmoidf(r->logit);
        if (near_earlier(out, poses, r->k, root.x, root.y, r2)) continue;
        cbinfer_pose *p = &out[poses];
        int have[CBINFER_POSE_KEYPOINTS] = {0};
        p->keypoints[r->k] = root;
        have[r->k] = 1;
        for (int ed = POSE_EDGES - 1; ed >= 0; --ed) { /* child to parent */
            const int src = k_edges[ed][1], dst = k_edges[ed][0];
            if (have[src] && !have[dst]) {
                p->keypoints[dst] = traverse(&g, ed, &p->keypoints[src], dst, g.bwd);
                have[dst] = 1;
            }
        }
        for (int ed = 0; ed < POSE_EDGES; ++ed) { /* parent to child */
            const int src = k_edges[ed][0], dst = k_edges[ed][1];
            if (have[src] && !have[dst]) {
                p->keypoints[dst] = traverse(&g, ed, &p->keypoints[src], dst, g.fwd);
                have[dst] = 1;
            }
        }
        float sum = 0.0f;
        for (int k = 0; k < CBINFER_POSE_KEYPOINTS; ++k)
            if (!near_earlier(out, poses, k, p->keypoints[k].x, p->keypoints[k].y, r2))
                sum += p->keypoints[k].score;
        p->score = sum / (float)CBINFER_POSE_KEYPOINTS;
        poses++;
    }
    free(q);
    *count = poses;
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbinfer_decode_posenet(const cbinfer_tensor_view *heatmap,
                                      const cbinfer_tensor_view *offsets,
                                      const cbinfer_tensor_view *displacement_fwd,
                                      const cbinfer_tensor_view *displacement_bwd,
                                      int input_width, int input_height, float score_threshold,
                                      float nms_radius_px, cbinfer_pose *out, int capacity,
                                      int *count, char *err, size_t err_len)
{
    cbi_err e = {{0}};
    if (count) *count = 0;
    cbinfer_status st = posenet(&e, heatmap, offsets, displacement_fwd, displacement_bwd,
                                input_width, input_height, score_threshold, nms_radius_px, out,
                                capacity, count);
    cbi_err_copy(&e, err, err_len);
    return st;
}
