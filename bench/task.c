/*
 * --task of cbinfer-bench: decodes each timed frame's outputs into NanoDet
 * boxes or PoseNet poses with the library's decoders, scores the
 * change-based stream's against the dense stream's (compare mode;
 * task_metrics.c) and writes --dump-detections.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "task_loss.h"
#include "task_metrics.h"

/* NanoDet's demo settings: the score its demo shows boxes at, the NMS of its
 * ncnn demo. */
#define NANODET_CLASSES CBINFER_COCO_CLASSES
#define NANODET_SCORE 0.35f
#define NANODET_IOU 0.5f
/* TF.js PoseNet's multi-person defaults, with room for vtest's crowd. */
#define POSENET_SCORE 0.5f
#define POSENET_NMS_RADIUS 20.0f

int bench_task_open(bench *b)
{
    bench_task *t = &b->task;
    const cbi_bench_args *a = &b->args;
    if (a->dump_detections && a->task == CBI_BENCH_TASK_NONE)
        return bench_error("--dump-detections needs --task detect or pose");
    if (a->task == CBI_BENCH_TASK_NONE) return 0;
    if (a->task == CBI_BENCH_TASK_POSE) {
        if (cbi_pose_outputs(b->net, t->pose_out) != 0)
            return bench_error("--task pose: PoseNet has 4 outputs (heatmap, offset, "
                               "displacement_fwd, displacement_bwd); %s has %d", a->model,
                               b->n_out);
    }
    for (int s = 0; s < 2; ++s) {
        if (a->task == CBI_BENCH_TASK_DETECT)
            t->boxes[s] = malloc(BENCH_MAX_BOXES * sizeof *t->boxes[s]);
        else
            t->poses[s] = malloc(BENCH_MAX_POSES * sizeof *t->poses[s]);
        if (!t->boxes[s] && !t->poses[s]) return bench_error("out of memory");
    }
    t->used = malloc(BENCH_MAX_BOXES > BENCH_MAX_POSES ? BENCH_MAX_BOXES : BENCH_MAX_POSES);
    if (!t->used) return bench_error("out of memory");
    if (a->dump_detections) {
        t->dump = fopen(a->dump_detections, "w");
        if (!t->dump)
            return bench_error("--dump-detections: cannot write '%s': %s", a->dump_detections,
                               strerror(errno));
    }
    return 0;
}

int bench_task_close(bench *b)
{
    bench_task *t = &b->task;
    for (int s = 0; s < 2; ++s) {
        free(t->boxes[s]);
        free(t->poses[s]);
    }
    free(t->used);
    int rc = 0;
    if (t->dump && fclose(t->dump) != 0)
        rc = bench_error("--dump-detections: closing '%s' failed", b->args.dump_detections);
    memset(t, 0, sizeof *t);
    return rc;
}

void bench_task_run_init(bench *b, cbi_run_result *run)
{
    b->task.truncated = 0;
    run->task = b->args.task;
    run->worst_frame = -1;
    run->worst_value = NAN;
}

int bench_task_run_alloc(const bench *b, cbi_run_result *run)
{
    if (b->args.task != CBI_BENCH_TASK_DETECT) return 0;
    run->classes = calloc(NANODET_CLASSES, sizeof *run->classes);
    if (!run->classes) return bench_error("out of memory");
    run->class_count = NANODET_CLASSES;
    run->class_name = cbinfer_coco_class_name;
    return 0;
}

/* Decodes the outputs at out (laid out as b->out_off) into stream s's slot. */
static int decode(bench *b, long long k, const float *out, int s)
{
    bench_task *t = &b->task;
    char err[512] = "";
    cbinfer_tensor_view v[BENCH_MAX_OUTPUTS];
    for (int o = 0; o < b->n_out; ++o)
        v[o] = (cbinfer_tensor_view){out + b->out_off[o], b->out_dims[o][0], b->out_dims[o][1],
                                     b->out_dims[o][2]};
    cbinfer_status st;
    if (b->args.task == CBI_BENCH_TASK_DETECT) {
        st = cbinfer_decode_nanodet(v, b->n_out, b->width, b->height, NANODET_CLASSES,
                                    NANODET_SCORE, NANODET_IOU, t->boxes[s], BENCH_MAX_BOXES,
                                    &t->nboxes[s], err, sizeof err);
        if (st == CBINFER_STATUS_BUFFER_TOO_SMALL) {
            /* The best BENCH_MAX_BOXES were written: go on with them, say so. */
            if (!t->truncated++)
                fprintf(stderr, "cbinfer-bench: frame %lld: %d boxes, the best %d are kept (the "
                                "JSON counts the decodes cut so)\n", k, t->nboxes[s],
                        BENCH_MAX_BOXES);
            t->nboxes[s] = BENCH_MAX_BOXES;
            st = CBINFER_STATUS_SUCCESS;
        }
    } else {
        const int *p = t->pose_out;
        st = cbinfer_decode_posenet(&v[p[0]], &v[p[1]], &v[p[2]], &v[p[3]], b->width, b->height,
                                    POSENET_SCORE, POSENET_NMS_RADIUS, t->poses[s],
                                    BENCH_MAX_POSES, &t->nposes[s], err, sizeof err);
    }
    if (st != CBINFER_STATUS_SUCCESS)
        return bench_error("frame %lld: decoding the %s outputs (--task %s): %s: %s", k,
                           s ? "change-based" : "dense",
                           b->args.task == CBI_BENCH_TASK_DETECT ? "detect" : "pose",
                           cbinfer_status_string(st), err);
    return 0;
}

/* A number with `decimals` places, or null where it is not finite (outputs
 * with NaN or Inf give such keypoints), which JSON has no other way to say. */
static void num(FILE *f, const char *sep, float v, int decimals)
{
    if (isfinite(v))
        fprintf(f, "%s%.*f", sep, decimals, (double)v);
    else
        fprintf(f, "%snull", sep);
}

static void dump_boxes(FILE *f, const cbinfer_detection *d, int n)
{
    fputc('[', f);
    for (int i = 0; i < n; ++i) {
        num(f, i ? ", [" : "[", d[i].x0, 2);
        num(f, ", ", d[i].y0, 2);
        num(f, ", ", d[i].x1, 2);
        num(f, ", ", d[i].y1, 2);
        num(f, ", ", d[i].score, 4);
        fprintf(f, ", %d]", d[i].class_id);
    }
    fputc(']', f);
}

static void dump_poses(FILE *f, const cbinfer_pose *p, int n)
{
    fputc('[', f);
    for (int i = 0; i < n; ++i) {
        num(f, i ? ", {\"score\": " : "{\"score\": ", p[i].score, 4);
        fputs(", \"keypoints\": [", f);
        for (int k = 0; k < CBINFER_POSE_KEYPOINTS; ++k) {
            const cbinfer_keypoint *kp = &p[i].keypoints[k];
            num(f, k ? ", [" : "[", kp->x, 2);
            num(f, ", ", kp->y, 2);
            num(f, ", ", kp->score, 4);
            fputc(']', f);
        }
        fputs("]}", f);
    }
    fputc(']', f);
}

/* One JSON line: the measured stream's results, and the dense stream's
 * beside them in compare mode. */
static int dump_line(bench *b, long long k)
{
    bench_task *t = &b->task;
    FILE *f = t->dump;
    const int main_slot = b->cb ? 1 : 0, both = b->dense && b->cb;
    fprintf(f, "{\"frame\": %lld, ", k);
    if (b->args.task == CBI_BENCH_TASK_DETECT) {
        fputs("\"detections\": ", f);
        dump_boxes(f, t->boxes[main_slot], t->nboxes[main_slot]);
        if (both) {
            fputs(", \"dense\": ", f);
            dump_boxes(f, t->boxes[0], t->nboxes[0]);
        }
    } else {
        fputs("\"poses\": ", f);
        dump_poses(f, t->poses[main_slot], t->nposes[main_slot]);
        if (both) {
            fputs(", \"dense\": ", f);
            dump_poses(f, t->poses[0], t->nposes[0]);
        }
    }
    fputs("}\n", f);
    return ferror(f) ? bench_error("--dump-detections: writing '%s' failed",
                                   b->args.dump_detections)
                     : 0;
}

static void worst(cbi_run_result *run, long long k, double v)
{
    if (!isnan(v) && (run->worst_frame < 0 || v < run->worst_value)) {
        run->worst_frame = k;
        run->worst_value = v;
    }
}

static long long counted_poses(const cbinfer_pose *p, int n)
{
    long long c = 0;
    for (int i = 0; i < n; ++i) c += p[i].score >= CBI_TASK_POSE_MIN;
    return c;
}

int bench_task_frame(bench *b, long long k, int dump, cbi_frame_rec *fr, cbi_run_result *run)
{
    bench_task *t = &b->task;
    /* Decoding only where its results are used, so that the timed frames of
     * the other modes see no more work between their pushes than before. */
    if (b->args.task == CBI_BENCH_TASK_NONE || (!dump && !(b->dense && b->cb))) return 0;
    if (b->dense && decode(b, k, b->out_dense, 0) != 0) return 1;
    if (b->cb && decode(b, k, b->out_cb, 1) != 0) return 1;
    run->boxes_truncated = t->truncated;
    if (dump && dump_line(b, k) != 0) return 1;
    if (!(b->dense && b->cb)) return 0;
    if (b->args.task == CBI_BENCH_TASK_DETECT) {
        cbi_class_counts frame[NANODET_CLASSES];
        memset(frame, 0, sizeof frame);
        cbi_match_detections(t->boxes[0], t->nboxes[0], t->boxes[1], t->nboxes[1], frame,
                             NANODET_CLASSES, t->used);
        for (int c = 0; c < NANODET_CLASSES; ++c) {
            run->classes[c].dense += frame[c].dense;
            run->classes[c].cbinfer += frame[c].cbinfer;
            run->classes[c].matched += frame[c].matched;
        }
        const cbi_class_counts *p = &frame[0]; /* persons */
        fr->person_recall = p->dense ? (double)p->matched / (double)p->dense : NAN;
        fr->person_precision = p->cbinfer ? (double)p->matched / (double)p->cbinfer : NAN;
        worst(run, k, fmin(fr->person_recall, fr->person_precision));
    } else {
        long long placed = 0, total = 0;
        cbi_pose_pck(t->poses[0], t->nposes[0], t->poses[1], t->nposes[1], &placed, &total,
                     t->used);
        run->pck_correct += placed;
        run->pck_total += total;
        run->dense_poses += counted_poses(t->poses[0], t->nposes[0]);
        run->cbinfer_poses += counted_poses(t->poses[1], t->nposes[1]);
        fr->pck = total ? (double)placed / (double)total : NAN;
        worst(run, k, fr->pck);
    }
    return 0;
}
