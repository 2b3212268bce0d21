/*
 * Results of a cbinfer-bench run as plain data, and the writers that turn
 * them into the summary on stdout, the JSON report (--json, schema
 * "cbinfer-bench/1"), trtexec's exportProfile shape (--export-profile) and
 * per-frame CSV (--csv). The writers read only these structs, so tests can
 * feed them synthetic results (tests/cpu_bench_report.cpp).
 *
 * Missing values: NAN in a double field means "not measured" and is written
 * as null (JSON) or an empty field (CSV). PSNR of identical outputs is
 * INFINITY and also written as null.
 */
#ifndef CBI_BENCH_REPORT_H
#define CBI_BENCH_REPORT_H

#include <stdio.h>

#include "bench_stats.h"
#include "cbinfer.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CBI_BENCH_SCHEMA "cbinfer-bench/1"

/* One timed frame. */
typedef struct cbi_frame_rec {
    long long index;      /* position in the input, counted from --skip (warm-up included) */
    double dense_ms;      /* push time of the dense stream, or NAN */
    double cbinfer_ms;    /* push time of the change-based stream, or NAN */
    double changed_share; /* of the change-based stream (dense mode: of the dense one) */
    double mse, psnr_db, max_abs; /* change-based against dense (compare mode), or NAN */
    cbi_nonfinite nonfinite;      /* ref = dense, x = change-based (compare mode) */
    /* --task in compare mode, else NAN: the change-based persons' recall and
     * precision against the dense ones (NAN without any on a side), or the
     * keypoints' PCKh@0.5 (NAN without a dense keypoint to place). */
    double person_recall, person_precision, pck;
} cbi_frame_rec;

/* Boxes of one class over a run (--task detect, compare mode). */
typedef struct cbi_class_counts {
    long long dense, cbinfer; /* boxes each stream found */
    long long matched;        /* change-based boxes paired with a dense one (IoU >= 0.5) */
} cbi_class_counts;

/* One layer of the measured stream, means over the timed frames without the
 * stream's frame 0 (which runs dense). */
typedef struct cbi_layer_rec {
    const char *name, *op;
    double changed_share; /* changed_px / total_px; NAN when the layer has no pixels */
    double macs;          /* multiply-accumulates per frame, the papers' count
                           * (cbinfer_layer_stats.macs_effective) */
    double macs_executed; /* those the kernels ran (cbinfer_layer_stats.macs) */
    double dense_macs;    /* those of the dense layer per frame */
    double overhead_arith, overhead_ldst; /* per frame, [EV-S] Sec. E */
    double state_bytes;   /* the layer's temporal state */
    int dense_frames;     /* frames in which the layer ran its dense path */
} cbi_layer_rec;

/* --cameras N: N streams on the video from N start frames, stepped
 * together. Throughputs are camera-frames per second over the timed steps
 * (every camera's frame counts), NAN where the mode did not run that side. */
typedef struct cbi_cameras_rec {
    int n;                      /* cameras; 0: no --cameras pass */
    long long steps;            /* timed steps (frames per camera) */
    long long *starts;          /* n start frames, counted from --skip (malloc'd) */
    double dense_fps;           /* dense batch (one convolution over N images per layer) */
    double independent_fps;     /* N change-based streams, pushed one after another */
    double batched_fps;         /* a change-based batch (one GEMM per layer) */
    double batched_vs_independent_max_abs; /* over every output, stream and timed step */
} cbi_cameras_rec;

/* One pass (one threshold scale of --sweep). */
typedef struct cbi_run_result {
    double threshold_scale;
    int has_dense;   /* a dense stream ran (dense and compare modes) */
    int has_cbinfer; /* a change-based stream ran (all but dense mode) */
    int has_quality; /* compare mode */
    cbi_latency dense_ms, cbinfer_ms;
    double dense_fps, cbinfer_fps;
    double dense_syncs, cbinfer_syncs; /* host-device synchronisations per timed frame
                                        * (cbinfer_frame_stats.host_syncs; 0 on the CPU) */
    double changed_share; /* mean over timed frames without the stream's frame 0 */
    double speedup;       /* dense mean / change-based mean (compare), else NAN */
    double mse;           /* mean of the per-frame MSE */
    double psnr_db;       /* PSNR of that mean MSE */
    double min_psnr_db;   /* worst frame */
    double max_abs;       /* largest over all frames */
    cbi_nonfinite nonfinite; /* summed over the frames */
    cbi_layer_rec *layers;
    int layer_count;
    cbi_frame_rec *frames;
    long long frame_count;
    /* --task: a cbi_bench_task value (0: none); the agreement figures are
     * those of compare mode. */
    int task;
    cbi_class_counts *classes; /* detect: class_count entries */
    const char *(*class_name)(int); /* detect: the name of class c < class_count, or NULL */
    int class_count;
    long long pck_correct, pck_total;    /* pose: dense keypoints placed / to place */
    long long dense_poses, cbinfer_poses; /* pose: poses counted by each stream */
    long long boxes_truncated; /* detect: decodes that kept only the best 1000 boxes */
    long long worst_frame;  /* the frame of the lowest person recall or precision, or
                             * PCK; -1 if none */
    double worst_value;
    cbi_cameras_rec cameras;
} cbi_run_result;

/* One layer of the profiling pass (--per-layer). */
typedef struct cbi_profile_layer {
    const char *name, *op;
    double time_ms_total;  /* sum over the profiled frames */
    double time_ms_mean;   /* per frame */
    double time_ms_median; /* per frame */
    double percentage;     /* of the sum over all layers */
    double changed_share;  /* mean, NAN when the layer has no pixels */
    double macs_share;     /* MACs done / dense MACs over the profiled frames */
    double step_ms[CBINFER_STEP_COUNT]; /* mean per frame */
} cbi_profile_layer;

typedef struct cbi_bench_report {
    const char *version, *commit, *date; /* the tool */
    const char *backend;                 /* "cpu" or "cuda" */
    const char *device_name;             /* CPU model, or NULL */
    int cores;                           /* <= 0: unknown (null) */
    const char *kernels;                 /* cbinfer_backend_describe(), or NULL */
    int threads;                         /* --threads (0: every core) */
    const char *model, *workload, *input; /* workload may be NULL */
    int width, height, skip;
    long long frames; /* timed frames per pass */
    int warmup;
    const char *mode;      /* "dense", "cbinfer", "compare" */
    const char *policy;    /* spec of the change-based stream (cbinfer_stream_set_policy),
                            * NULL without one */
    const char *precision; /* "fp32", "tf32", "fp16" */
    double threshold;
    const char *thresholds_file, *break_even_file; /* or NULL */
    const cbi_run_result *runs;
    int run_count;
    const cbi_profile_layer *profile; /* NULL: no profiling pass */
    int profile_layer_count;
    long long profile_count; /* frames profiled */
} cbi_bench_report;

/* The JSON report (schema CBI_BENCH_SCHEMA). Returns 0, or -1 on a write error. */
int cbi_report_write_json(FILE *f, const cbi_bench_report *r);

/* trtexec's --exportProfile shape: [{"count":N}, {"name", "timeMs",
 * "averageMs", "medianMs", "percentage", "cbinfer": {...}}, ...]. Requires
 * r->profile. Returns 0, or -1 on a write error or without a profile. */
int cbi_report_write_profile(FILE *f, const cbi_bench_report *r);

/* Per-frame records of every run, one header line, then
 * "threshold_scale,index,dense_ms,cbinfer_ms,changed_share,mse,psnr_db,max_abs"
 * rows; missing values are empty, infinite PSNR is "inf". */
int cbi_report_write_csv(FILE *f, const cbi_bench_report *r);

/* Human-readable summary of one run (latency, throughput, speedup, quality). */
void cbi_report_print_run(FILE *f, const cbi_run_result *run);

/* Human-readable per-layer table of the profiling pass. */
void cbi_report_print_profile(FILE *f, const cbi_bench_report *r);

#ifdef __cplusplus
}
#endif

#endif /* CBI_BENCH_REPORT_H */
