/* Report writers of cbinfer-bench; see report.h. */
#include "report.h"

#include <math.h>
#include <string.h>

#include "bench_args.h"
#include "json_writer.h"
#include "task_metrics.h"

static void json_latency(cbi_json *j, const char *key, const cbi_latency *l)
{
    cbi_json_begin_object(j, key);
    cbi_json_number(j, "min", l->min);
    cbi_json_number(j, "mean", l->mean);
    cbi_json_number(j, "median", l->median);
    cbi_json_number(j, "p90", l->p90);
    cbi_json_number(j, "p95", l->p95);
    cbi_json_number(j, "p99", l->p99);
    cbi_json_end_object(j);
}

static void json_steps(cbi_json *j, const char *key, const double *step_ms)
{
    cbi_json_begin_object(j, key);
    for (int s = 0; s < CBINFER_STEP_COUNT; ++s) {
        const char *name = cbinfer_step_name((cbinfer_step)s);
        if (name) cbi_json_number(j, name, step_ms[s]);
    }
    cbi_json_end_object(j);
}

/* Sums over the layers, per frame: MACs the papers' way and the kernels'
 * way, the overhead of [EV-S] Sec. E and its share of the MACs saved, and the
 * stream's state bytes. */
typedef struct run_totals {
    double macs, executed, dense, ov_arith, ov_ldst, ov_pct, state_bytes;
} run_totals;

static run_totals totals_of(const cbi_run_result *run)
{
    run_totals t = {0};
    for (int i = 0; i < run->layer_count; ++i) {
        const cbi_layer_rec *l = &run->layers[i];
        if (isnan(l->macs)) continue;
        t.macs += l->macs;
        t.executed += l->macs_executed;
        t.dense += l->dense_macs;
        t.ov_arith += l->overhead_arith;
        t.ov_ldst += l->overhead_ldst;
        t.state_bytes += l->state_bytes;
    }
    t.ov_pct = t.dense > t.macs ? 100.0 * (t.ov_arith + t.ov_ldst) / (t.dense - t.macs) : NAN;
    return t;
}

static double ratio(long long a, long long b) { return b ? (double)a / (double)b : NAN; }

/* "task": null, or the agreement of the decoded results (compare mode). */
static void json_task(cbi_json *j, const cbi_run_result *run)
{
    if (run->task == CBI_BENCH_TASK_NONE) {
        cbi_json_null(j, "task");
        return;
    }
    cbi_json_begin_object(j, "task");
    cbi_json_string(j, "kind", run->task == CBI_BENCH_TASK_DETECT ? "detect" : "pose");
    if (run->task == CBI_BENCH_TASK_DETECT) {
        cbi_json_number(j, "match_iou", CBI_TASK_MATCH_IOU);
        cbi_json_int(j, "decodes_truncated", run->boxes_truncated);
        cbi_json_begin_array(j, "classes");
        for (int c = 0; c < run->class_count && run->classes && run->has_quality; ++c) {
            const cbi_class_counts *k = &run->classes[c];
            if (c != 0 && !k->dense && !k->cbinfer) continue;
            cbi_json_begin_object(j, NULL);
            cbi_json_int(j, "class", c);
            cbi_json_string(j, "name", run->class_name ? run->class_name(c) : NULL);
            cbi_json_int(j, "dense", k->dense);
            cbi_json_int(j, "cbinfer", k->cbinfer);
            cbi_json_int(j, "matched", k->matched);
            cbi_json_number(j, "recall", ratio(k->matched, k->dense));
            cbi_json_number(j, "precision", ratio(k->matched, k->cbinfer));
            cbi_json_end_object(j);
        }
        cbi_json_end_array(j);
    } else {
        cbi_json_string(j, "metric", "PCKh@0.5");
        cbi_json_number(j, "pck", run->has_quality ? ratio(run->pck_correct, run->pck_total) : NAN);
        cbi_json_int(j, "keypoints", run->pck_total);
        cbi_json_int(j, "placed", run->pck_correct);
        cbi_json_int(j, "dense_poses", run->dense_poses);
        cbi_json_int(j, "cbinfer_poses", run->cbinfer_poses);
    }
    if (run->worst_frame >= 0) {
        cbi_json_int(j, "worst_frame", run->worst_frame);
        cbi_json_number(j, "worst_value", run->worst_value);
    } else {
        cbi_json_null(j, "worst_frame");
        cbi_json_null(j, "worst_value");
    }
    cbi_json_end_object(j);
}

static void json_run(cbi_json *j, const cbi_run_result *run)
{
    cbi_json_begin_object(j, NULL);
    cbi_json_number(j, "threshold_scale", run->threshold_scale);
    if (run->has_dense) {
        cbi_json_begin_object(j, "dense");
        json_latency(j, "latency_ms", &run->dense_ms);
        cbi_json_number(j, "fps", run->dense_fps);
        cbi_json_number(j, "host_syncs_per_frame", run->dense_syncs);
        cbi_json_end_object(j);
    } else {
        cbi_json_null(j, "dense");
    }
    if (run->has_cbinfer) {
        cbi_json_begin_object(j, "cbinfer");
        json_latency(j, "latency_ms", &run->cbinfer_ms);
        cbi_json_number(j, "fps", run->cbinfer_fps);
        cbi_json_number(j, "host_syncs_per_frame", run->cbinfer_syncs);
        cbi_json_number(j, "changed_share", run->changed_share);
        const run_totals t = totals_of(run);
        cbi_json_number(j, "macs_per_frame", t.macs);
        cbi_json_number(j, "macs_executed_per_frame", t.executed);
        cbi_json_number(j, "dense_macs_per_frame", t.dense);
        cbi_json_number(j, "overhead_arith_per_frame", t.ov_arith);
        cbi_json_number(j, "overhead_ldst_per_frame", t.ov_ldst);
        cbi_json_number(j, "overhead_pct_of_saved", t.ov_pct);
        cbi_json_number(j, "state_bytes", t.state_bytes);
        cbi_json_end_object(j);
    } else {
        cbi_json_null(j, "cbinfer");
    }
    if (run->has_dense && run->has_cbinfer)
        cbi_json_number(j, "speedup", run->speedup);
    else
        cbi_json_null(j, "speedup");
    if (run->has_quality) {
        cbi_json_begin_object(j, "quality");
        cbi_json_number(j, "mse", run->mse);
        cbi_json_number(j, "psnr_db", run->psnr_db);
        cbi_json_number(j, "min_psnr_db", run->min_psnr_db);
        cbi_json_number(j, "max_abs", run->max_abs);
        /* Non-finite outputs: with any mismatch, mse, psnr_db and max_abs
         * are null (not measurable), never 0 / identical. */
        cbi_json_int(j, "nonfinite_dense", run->nonfinite.ref);
        cbi_json_int(j, "nonfinite_cbinfer", run->nonfinite.x);
        cbi_json_int(j, "nonfinite_mismatch", run->nonfinite.mismatched);
        cbi_json_end_object(j);
    } else {
        cbi_json_null(j, "quality");
    }
    json_task(j, run);
    if (run->cameras.n > 0) {
        const cbi_cameras_rec *c = &run->cameras;
        cbi_json_begin_object(j, "cameras");
        cbi_json_int(j, "n", c->n);
        cbi_json_int(j, "steps", c->steps);
        cbi_json_begin_array(j, "starts");
        for (int i = 0; c->starts && i < c->n; ++i) cbi_json_int(j, NULL, c->starts[i]);
        cbi_json_end_array(j);
        cbi_json_number(j, "dense_fps", c->dense_fps);
        cbi_json_number(j, "independent_fps", c->independent_fps);
        cbi_json_number(j, "batched_fps", c->batched_fps);
        cbi_json_number(j, "batched_vs_independent_max_abs", c->batched_vs_independent_max_abs);
        cbi_json_end_object(j);
    } else {
        cbi_json_null(j, "cameras");
    }
    cbi_json_begin_array(j, "layers");
    for (int i = 0; i < run->layer_count; ++i) {
        const cbi_layer_rec *l = &run->layers[i];
        cbi_json_begin_object(j, NULL);
        cbi_json_string(j, "name", l->name);
        cbi_json_string(j, "op", l->op);
        cbi_json_number(j, "changed_share", l->changed_share);
        cbi_json_number(j, "macs", l->macs);
        cbi_json_number(j, "macs_executed", l->macs_executed);
        cbi_json_number(j, "dense_macs", l->dense_macs);
        cbi_json_number(j, "overhead_arith", l->overhead_arith);
        cbi_json_number(j, "overhead_ldst", l->overhead_ldst);
        cbi_json_number(j, "state_bytes", l->state_bytes);
        cbi_json_int(j, "dense_frames", l->dense_frames);
        cbi_json_end_object(j);
    }
    cbi_json_end_array(j);
    cbi_json_begin_array(j, "frames");
    for (long long k = 0; k < run->frame_count; ++k) {
        const cbi_frame_rec *fr = &run->frames[k];
        cbi_json_begin_object(j, NULL);
        cbi_json_int(j, "index", fr->index);
        cbi_json_number(j, "dense_ms", fr->dense_ms);
        cbi_json_number(j, "cbinfer_ms", fr->cbinfer_ms);
        cbi_json_number(j, "changed_share", fr->changed_share);
        cbi_json_number(j, "mse", fr->mse);
        cbi_json_number(j, "psnr_db", fr->psnr_db);
        cbi_json_number(j, "max_abs", fr->max_abs);
        if (run->task == CBI_BENCH_TASK_DETECT) {
            cbi_json_number(j, "person_recall", fr->person_recall);
            cbi_json_number(j, "person_precision", fr->person_precision);
        } else if (run->task == CBI_BENCH_TASK_POSE) {
            cbi_json_number(j, "pck", fr->pck);
        }
        cbi_json_end_object(j);
    }
    cbi_json_end_array(j);
    cbi_json_end_object(j);
}

int cbi_report_write_json(FILE *f, const cbi_bench_report *r)
{
    cbi_json j;
    cbi_json_init(&j, f);
    cbi_json_begin_object(&j, NULL);
    cbi_json_string(&j, "schema", CBI_BENCH_SCHEMA);

    cbi_json_begin_object(&j, "tool");
    cbi_json_string(&j, "version", r->version);
    cbi_json_string(&j, "commit", r->commit);
    cbi_json_string(&j, "date", r->date);
    cbi_json_end_object(&j);

    cbi_json_begin_object(&j, "device");
    cbi_json_string(&j, "backend", r->backend);
    cbi_json_string(&j, "name", r->device_name);
    if (r->cores > 0)
        cbi_json_int(&j, "cores", r->cores);
    else
        cbi_json_null(&j, "cores");
    if (r->kernels)
        cbi_json_string(&j, "kernels", r->kernels);
    else
        cbi_json_null(&j, "kernels");
    cbi_json_int(&j, "threads", r->threads);
    cbi_json_end_object(&j);

    cbi_json_begin_object(&j, "config");
    cbi_json_string(&j, "model", r->model);
    cbi_json_string(&j, "workload", r->workload);
    cbi_json_string(&j, "input", r->input);
    cbi_json_int(&j, "width", r->width);
    cbi_json_int(&j, "height", r->height);
    cbi_json_int(&j, "skip", r->skip);
    cbi_json_int(&j, "frames", r->frames);
    cbi_json_int(&j, "warmup", r->warmup);
    cbi_json_string(&j, "mode", r->mode);
    if (r->policy) {
        /* The spec and its parameters (the policy grammar of cbinfer.h). */
        char kind[32];
        const char *colon = strchr(r->policy, ':');
        const size_t klen = colon ? (size_t)(colon - r->policy) : strlen(r->policy);
        snprintf(kind, sizeof kind, "%.*s", (int)klen, r->policy);
        cbi_json_begin_object(&j, "policy");
        cbi_json_string(&j, "spec", r->policy);
        cbi_json_string(&j, "kind", kind);
        cbi_json_string(&j, "options", colon ? colon + 1 : "");
        cbi_json_end_object(&j);
    } else {
        cbi_json_null(&j, "policy");
    }
    cbi_json_string(&j, "precision", r->precision);
    cbi_json_number(&j, "threshold", r->threshold);
    cbi_json_string(&j, "thresholds_file", r->thresholds_file);
    cbi_json_string(&j, "break_even_file", r->break_even_file);
    cbi_json_end_object(&j);

    cbi_json_begin_array(&j, "runs");
    for (int i = 0; i < r->run_count; ++i) json_run(&j, &r->runs[i]);
    cbi_json_end_array(&j);

    if (r->profile) {
        cbi_json_begin_object(&j, "profile");
        cbi_json_int(&j, "count", r->profile_count);
        cbi_json_begin_array(&j, "layers");
        for (int i = 0; i < r->profile_layer_count; ++i) {
            const cbi_profile_layer *p = &r->profile[i];
            cbi_json_begin_object(&j, NULL);
            cbi_json_string(&j, "name", p->name);
            cbi_json_string(&j, "op", p->op);
            cbi_json_number(&j, "time_ms_mean", p->time_ms_mean);
            cbi_json_number(&j, "time_ms_median", p->time_ms_median);
            cbi_json_number(&j, "percentage", p->percentage);
            cbi_json_number(&j, "changed_share", p->changed_share);
            cbi_json_number(&j, "macs_share", p->macs_share);
            json_steps(&j, "steps", p->step_ms);
            cbi_json_end_object(&j);
        }
        cbi_json_end_array(&j);
        cbi_json_end_object(&j);
    } else {
        cbi_json_null(&j, "profile");
    }
    cbi_json_end_object(&j);
    return j.error || ferror(f) ? -1 : 0;
}

int cbi_report_write_profile(FILE *f, const cbi_bench_report *r)
{
    if (!r->profile) return -1;
    cbi_json j;
    cbi_json_init(&j, f);
    cbi_json_begin_array(&j, NULL);
    cbi_json_begin_object(&j, NULL);
    cbi_json_int(&j, "count", r->profile_count);
    cbi_json_end_object(&j);
    for (int i = 0; i < r->profile_layer_count; ++i) {
        const cbi_profile_layer *p = &r->profile[i];
        cbi_json_begin_object(&j, NULL);
        cbi_json_string(&j, "name", p->name);
        cbi_json_number(&j, "timeMs", p->time_ms_total);
        cbi_json_number(&j, "averageMs", p->time_ms_mean);
        cbi_json_number(&j, "medianMs", p->time_ms_median);
        cbi_json_number(&j, "percentage", p->percentage);
        cbi_json_begin_object(&j, "cbinfer");
        cbi_json_string(&j, "op", p->op);
        cbi_json_number(&j, "changedShare", p->changed_share);
        cbi_json_number(&j, "macsShare", p->macs_share);
        json_steps(&j, "steps", p->step_ms);
        cbi_json_end_object(&j);
        cbi_json_end_object(&j);
    }
    cbi_json_end_array(&j);
    return j.error || ferror(f) ? -1 : 0;
}

static void csv_value(FILE *f, double v)
{
    fputc(',', f);
    if (isinf(v))
        fputs(v > 0 ? "inf" : "-inf", f);
    else if (!isnan(v))
        fprintf(f, "%.10g", v);
}

int cbi_report_write_csv(FILE *f, const cbi_bench_report *r)
{
    fputs("threshold_scale,index,dense_ms,cbinfer_ms,changed_share,mse,psnr_db,max_abs\n", f);
    for (int i = 0; i < r->run_count; ++i) {
        const cbi_run_result *run = &r->runs[i];
        for (long long k = 0; k < run->frame_count; ++k) {
            const cbi_frame_rec *fr = &run->frames[k];
            fprintf(f, "%.10g,%lld", run->threshold_scale, fr->index);
            csv_value(f, fr->dense_ms);
            csv_value(f, fr->cbinfer_ms);
            csv_value(f, fr->changed_share);
            csv_value(f, fr->mse);
            csv_value(f, fr->psnr_db);
            csv_value(f, fr->max_abs);
            fputc('\n', f);
        }
    }
    return ferror(f) ? -1 : 0;
}

static void print_latency(FILE *f, const char *what, const cbi_latency *l, double fps)
{
    fprintf(f,
            "  %-8s latency ms: min %.3f  mean %.3f  median %.3f  p90 %.3f  p95 %.3f  p99 %.3f"
            "  | %.2f fps\n",
            what, l->min, l->mean, l->median, l->p90, l->p95, l->p99, fps);
}

/* The task agreement of compare mode: per class for detection (persons
 * first, then the classes either stream found, most dense boxes first), the
 * keypoints placed for pose. */
static void print_task(FILE *f, const cbi_run_result *run)
{
    if (run->task == CBI_BENCH_TASK_DETECT && run->classes) {
        fprintf(f, "  detection vs dense (IoU >= %g):  class  dense  cbinfer  matched  recall  "
                   "precision\n", (double)CBI_TASK_MATCH_IOU);
        int order[1024], n = 0;
        for (int c = 0; c < run->class_count && n < 1024; ++c)
            if (c == 0 || run->classes[c].dense || run->classes[c].cbinfer) order[n++] = c;
        for (int i = 2; i < n; ++i) /* insertion sort after the persons */
            for (int j = i; j > 1 && run->classes[order[j]].dense > run->classes[order[j - 1]].dense;
                 --j) {
                const int t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        for (int i = 0; i < n; ++i) {
            const cbi_class_counts *k = &run->classes[order[i]];
            char name[32];
            if (run->class_name)
                snprintf(name, sizeof name, "%s", run->class_name(order[i]));
            else
                snprintf(name, sizeof name, "class %d", order[i]);
            fprintf(f, "    %32s %6lld %8lld %8lld %7.3f %10.3f\n", name, k->dense, k->cbinfer,
                    k->matched, ratio(k->matched, k->dense), ratio(k->matched, k->cbinfer));
        }
        if (run->boxes_truncated)
            fprintf(f, "  %lld decodes kept only their best 1000 boxes\n", run->boxes_truncated);
        if (run->worst_frame >= 0)
            fprintf(f, "  worst frame %lld: person recall or precision %.3f\n", run->worst_frame,
                    run->worst_value);
    } else if (run->task == CBI_BENCH_TASK_POSE) {
        fprintf(f, "  pose vs dense: PCKh@%g %.4f (%lld of %lld dense keypoints placed; poses of "
                   "score >= %g: dense %lld, cbinfer %lld)\n",
                (double)CBI_TASK_PCK_ALPHA, ratio(run->pck_correct, run->pck_total),
                run->pck_correct, run->pck_total, (double)CBI_TASK_POSE_MIN, run->dense_poses,
                run->cbinfer_poses);
        if (run->worst_frame >= 0)
            fprintf(f, "  worst frame %lld: PCKh@0.5 %.3f\n", run->worst_frame, run->worst_value);
    }
}

void cbi_report_print_run(FILE *f, const cbi_run_result *run)
{
    fprintf(f, "summary (threshold scale %g, %lld timed frames):\n", run->threshold_scale,
            run->frame_count);
    if (run->has_dense) print_latency(f, "dense", &run->dense_ms, run->dense_fps);
    if (run->has_cbinfer) {
        print_latency(f, "cbinfer", &run->cbinfer_ms, run->cbinfer_fps);
        fprintf(f, "  mean changed share %.3f%% (frame 0 of the stream, which runs dense, left out)\n",
                100.0 * run->changed_share);
        const run_totals t = totals_of(run);
        if (t.dense > 0)
            fprintf(f, "  MACs per frame: %.4g of dense %.4g (%.2f%%; executed %.2f%%), overhead "
                       "%.3g ops (%.2f%% of the MACs saved), state %.1f MiB\n",
                    t.macs, t.dense, 100.0 * t.macs / t.dense, 100.0 * t.executed / t.dense,
                    t.ov_arith + t.ov_ldst, t.ov_pct, t.state_bytes / (1024.0 * 1024.0));
    }
    if (run->has_dense && run->has_cbinfer)
        fprintf(f, "  speedup (dense mean / cbinfer mean, same run): %.3fx\n", run->speedup);
    if (run->dense_syncs > 0 || run->cbinfer_syncs > 0)
        fprintf(f, "  host syncs per frame: dense %.2f  cbinfer %.2f\n", run->dense_syncs,
                run->cbinfer_syncs);
    if (run->cameras.n > 0) {
        const cbi_cameras_rec *c = &run->cameras;
        fprintf(f, "  %d cameras (%lld timed steps), camera-frames/s:", c->n, c->steps);
        if (!isnan(c->dense_fps)) fprintf(f, " dense batch %.1f", c->dense_fps);
        if (!isnan(c->independent_fps))
            fprintf(f, "%s change-based independent %.1f, batch %.1f (%.2fx independent",
                    isnan(c->dense_fps) ? "" : ";", c->independent_fps, c->batched_fps,
                    c->batched_fps / c->independent_fps);
        if (!isnan(c->independent_fps) && !isnan(c->dense_fps))
            fprintf(f, ", %.2fx dense batch", c->batched_fps / c->dense_fps);
        if (!isnan(c->independent_fps))
            fprintf(f, "); max |batch - independent| %.3g", c->batched_vs_independent_max_abs);
        fputc('\n', f);
    }
    if (run->has_quality) {
        const cbi_nonfinite *nf = &run->nonfinite;
        if (nf->mismatched)
            fprintf(f, "  quality vs dense: not measurable: the outputs differ in which values are "
                       "not finite at %lld positions (non-finite values: dense %lld, cbinfer %lld)\n",
                    nf->mismatched, nf->ref, nf->x);
        else if (isinf(run->psnr_db) && run->psnr_db > 0)
            fprintf(f, "  quality vs dense: identical (MSE 0, max abs 0)\n");
        else
            fprintf(f, "  quality vs dense: MSE %.4g  PSNR %.2f dB (min frame %.2f dB)  max abs %.4g\n",
                    run->mse, run->psnr_db, run->min_psnr_db, run->max_abs);
        if (!nf->mismatched && nf->ref)
            fprintf(f, "  non-finite values: %lld in each output, in the same places (left out of "
                       "MSE and PSNR)\n",
                    nf->ref);
        print_task(f, run);
    }
}

void cbi_report_print_profile(FILE *f, const cbi_bench_report *r)
{
    if (!r->profile) return;
    int name_w = 5;
    for (int i = 0; i < r->profile_layer_count; ++i) {
        int l = r->profile[i].name ? (int)strlen(r->profile[i].name) : 0;
        if (l > name_w) name_w = l;
    }
    if (name_w > 40) name_w = 40;
    fprintf(f, "per-layer profile (separate pass with statistics on, %lld frames):\n",
            r->profile_count);
    fprintf(f, "  %10s %10s %10s %7s  %-*s %-12s %8s %7s", "time ms", "avg ms", "median ms",
            "%", name_w, "layer", "op", "changed%", "MACs%");
    for (int s = 0; s < CBINFER_STEP_COUNT; ++s) fprintf(f, " %13s", cbinfer_step_name((cbinfer_step)s));
    fputc('\n', f);
    for (int i = 0; i < r->profile_layer_count; ++i) {
        const cbi_profile_layer *p = &r->profile[i];
        fprintf(f, "  %10.3f %10.4f %10.4f %7.2f  %-*.*s %-12s ", p->time_ms_total, p->time_ms_mean,
                p->time_ms_median, p->percentage, name_w, name_w, p->name ? p->name : "?",
                p->op ? p->op : "?");
        if (isnan(p->changed_share))
            fprintf(f, "%8s", "-");
        else
            fprintf(f, "%8.3f", 100.0 * p->changed_share);
        if (isnan(p->macs_share))
            fprintf(f, " %7s", "-");
        else
            fprintf(f, " %7.2f", 100.0 * p->macs_share);
        for (int s = 0; s < CBINFER_STEP_COUNT; ++s) fprintf(f, " %13.4f", p->step_ms[s]);
        fputc('\n', f);
    }
    fprintf(f, "  (step columns: mean ms per frame)\n");
}
