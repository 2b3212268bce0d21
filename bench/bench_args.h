/*
 * Command line of cbinfer-bench, parsed apart from main() so that tests can
 * call the parser (tests/cpu_bench_args.cpp).
 */
#ifndef CBI_BENCH_ARGS_H
#define CBI_BENCH_ARGS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cbi_bench_input {
    CBI_BENCH_INPUT_NONE = 0,
    CBI_BENCH_INPUT_VIDEO = 1, /* --video PATH: any file FFmpeg decodes */
    CBI_BENCH_INPUT_RAW = 2,   /* --raw WxH:PATH: raw rgb24 frames, "-" = stdin */
    CBI_BENCH_INPUT_NPY = 3    /* --input-npy PATH: one float32 NCHW tensor, N = 1 */
} cbi_bench_input;

/* Backend choice: the cbinfer_backend values, or AUTO (CUDA when available). */
#define CBI_BENCH_BACKEND_AUTO (-1)

/* --mode compare: a dense and a change-based stream (of --policy) side by
 * side; the other modes are cbinfer_mode values (dense, cbinfer). */
#define CBI_BENCH_MODE_COMPARE 100

/* --task: what the outputs are decoded into (bench/task.c). */
typedef enum cbi_bench_task {
    CBI_BENCH_TASK_NONE = 0,   /* raw outputs only */
    CBI_BENCH_TASK_DETECT = 1, /* NanoDet boxes (cbinfer_decode_nanodet) */
    CBI_BENCH_TASK_POSE = 2    /* PoseNet poses (cbinfer_decode_posenet) */
} cbi_bench_task;

/* Most scales one --sweep takes. */
#define CBI_BENCH_MAX_SWEEP 64
#define CBI_BENCH_PATH_MAX 4096

/* Values of -1 mean "not given". String members point into argv. */
typedef struct cbi_bench_args {
    const char *model;      /* --model PATH (required) */
    cbi_bench_input input;  /* exactly one input */
    const char *input_path; /* the input's path ("-" = stdin for --raw) */
    int raw_w, raw_h;       /* --raw frame size */
    int resize_w, resize_h; /* --resize WxH; 0, 0 = none */
    int skip;               /* --skip N: first frame (default 0) */
    long long frames;       /* --frames N; -1 = all */
    int backend;            /* --backend; CBI_BENCH_BACKEND_AUTO by default */
    int mode;               /* --mode, a cbinfer_mode (default CBINFER_MODE_CBINFER; --mode
                             * cbinfer-ff is CBINFER with --policy cbinfer-ff) */
    /* --policy and its options, composed into the spec of
     * cbinfer_stream_set_policy, e.g. "evnet:chunk=8" (default "cbinfer"). */
    const char *policy;      /* --policy KIND */
    const char *granularity; /* --granularity element|pixel|chunk:G (evnet), or NULL */
    const char *gate;        /* --gate input|output (skipconv), or NULL */
    const char *compute;     /* --compute auto|scatter|recompute (evnet, sigmadelta), or NULL */
    int block, reset;        /* --block B, --reset R (skipconv); -1: not given */
    char policy_spec[128];
    float threshold;        /* --threshold T (default 0) */
    const char *dump_dir;   /* --dump-output DIR, or NULL */
    const char *dump_frames; /* --dump-frames FILE: the rgb24 frames fed, or NULL */
    int task;               /* --task, a cbi_bench_task; the workload's by default */
    int task_given;
    const char *dump_detections; /* --dump-detections FILE: JSON lines, or NULL */
    int threads;            /* --threads N: CBINFER_PARAM_THREADS (0: every core) */
    int cameras;            /* --cameras N (0: none): the many-camera pass */
    int stats;              /* --stats */
    int reuse_1x1;          /* --reuse-1x1: CBINFER_PARAM_REUSE_1X1_INDICES */
    int warmup;             /* --warmup N: frames pushed before timing (default 0) */
    int precision;          /* --precision, a cbinfer_precision (default FP32) */
    double threshold_scale; /* --threshold-scale S (default 1) */
    int threshold_scale_given;
    const char *thresholds_file; /* --thresholds FILE, or NULL */
    const char *break_even_file; /* --break-even FILE, or NULL */
    double sweep[CBI_BENCH_MAX_SWEEP]; /* --sweep S1,S2,...: one pass per scale */
    int sweep_count;        /* 0: no --sweep (one pass at threshold_scale) */
    int per_layer;          /* --per-layer: separate profiling pass (also --export-profile) */
    const char *json_path;  /* --json FILE, or NULL */
    const char *profile_path; /* --export-profile FILE, or NULL */
    const char *csv_path;   /* --csv FILE, or NULL */
    const char *calibrate_path; /* --calibrate FILE, or NULL */
    const char *workload;   /* --workload NAME (a static name from the table), or NULL */
    const char *model_dir;  /* --model-dir DIR, or NULL (see cbi_bench_resolve) */
    int resize_given;
    int help;               /* --help: print usage, nothing else is checked */
    int version;            /* --version: likewise */
    char model_buf[CBI_BENCH_PATH_MAX]; /* model path made from --workload */
    char video_buf[CBI_BENCH_PATH_MAX]; /* video path made from --workload */
} cbi_bench_args;

/* Parses argv[1..argc-1] into *out (set to defaults first). Flags take their
 * value as the next argument or after '=' (--skip=3). Returns 0 on success,
 * including --help and --version, which end parsing at once; otherwise 2 (a
 * usage error, the bench's exit status) with a one-line message in err. */
int cbi_bench_parse_args(int argc, char **argv, cbi_bench_args *out, char *err, size_t n);

/* Fills in what --workload implies, after parsing: the model
 * <model dir>/<name>.onnx unless --model was given (model dir: --model-dir,
 * else <dirname(dirname(exe_path))>/models, i.e. <build>/models for
 * <build>/bench/cbinfer-bench), the video <data_dir>/data/video/<video> unless
 * an input was given (data_dir: $CBINFER_DATA_DIR, may be NULL) and the
 * workload's resize unless --resize was given. Without --workload it does
 * nothing. Pointers may then point into a->model_buf / a->video_buf, so the
 * struct must not be copied afterwards. Returns 0 or 2 with a message. */
int cbi_bench_resolve(cbi_bench_args *a, const char *exe_path, const char *data_dir, char *err,
                      size_t n);

/* Names of the --workload table, comma separated (for messages and help). */
const char *cbi_bench_workload_names(void);

/* Usage text for --help. */
const char *cbi_bench_usage(void);

#ifdef __cplusplus
}
#endif

#endif /* CBI_BENCH_ARGS_H */
