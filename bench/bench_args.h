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
    int mode;               /* --mode, a cbinfer_mode (default CBINFER_MODE_CBINFER) */
    float threshold;        /* --threshold T (default 0) */
    const char *dump_dir;   /* --dump-output DIR, or NULL */
    int stats;              /* --stats */
    int reuse_1x1;          /* --reuse-1x1: CBINFER_PARAM_REUSE_1X1_INDICES */
    int help;               /* --help: print usage, nothing else is checked */
    int version;            /* --version: likewise */
} cbi_bench_args;

/* Parses argv[1..argc-1] into *out (set to defaults first). Flags take their
 * value as the next argument or after '=' (--skip=3). Returns 0 on success,
 * including --help and --version, which end parsing at once; otherwise 2 (a
 * usage error, the bench's exit status) with a one-line message in err. */
int cbi_bench_parse_args(int argc, char **argv, cbi_bench_args *out, char *err, size_t n);

/* Usage text for --help. */
const char *cbi_bench_usage(void);

#ifdef __cplusplus
}
#endif

#endif /* CBI_BENCH_ARGS_H */
