/*
 * State shared by cbinfer-bench's passes (private to bench/): the timed run
 * (cbinfer_bench.c), the profiling pass (profile_pass.c) and the break-even
 * calibration (calibrate.c), and the run helpers they share (bench_run.c).
 * The calls go one way: cbinfer_bench.c calls the two passes, and all three
 * call bench_run.c. Helpers report errors on stderr themselves and return
 * non-zero.
 */
#ifndef CBI_BENCH_H
#define CBI_BENCH_H

#include <stdint.h>
#include <stdio.h>

#include "bench_args.h"
#include "cbinfer.h"
#include "report.h"
#include "video.h"

typedef struct {
    const char *name, *op; /* owned by the network */
    double share_sum;      /* changed_px / total_px */
    int share_n;
    double macs_sum, dense_macs_sum; /* macs_sum: the kernels' (cbinfer_layer_stats.macs) */
    double macs_eff_sum;             /* the papers' count (macs_effective) */
    double ov_arith_sum, ov_ldst_sum; /* overhead operations, [EV-S] Sec. E */
    double state_bytes;              /* the layer's state bytes (last frame) */
    double step_ms_sum[CBINFER_STEP_COUNT];
    double total_ms_sum;
    int dense_frames; /* frames in which the layer ran its dense path */
    int n;
} layer_acc;


#define BENCH_MAX_OUTPUTS 64 /* the loader's limit on graph outputs */
#define BENCH_MAX_BOXES 1000 /* --task detect: the best this many boxes of a frame count */
#define BENCH_MAX_POSES 20   /* --task pose: poses decoded per frame */

/* --task state (task.c): slot 0 holds the dense stream's results, 1 the
 * change-based stream's. */
typedef struct bench_task {
    cbinfer_detection *boxes[2];
    int nboxes[2];
    cbinfer_pose *poses[2];
    int nposes[2];
    int pose_out[4];     /* the outputs holding heatmap, offset, displacement_fwd, _bwd */
    unsigned char *used; /* matching scratch */
    long long truncated; /* decodes of this pass that found more than BENCH_MAX_BOXES */
    FILE *dump;          /* --dump-detections */
} bench_task;

typedef struct bench {
    cbi_bench_args args;
    int argc;
    char **argv;
    cbinfer_network_t *net;
    cbinfer_stream_t *dense; /* dense and compare modes, and --calibrate */
    cbinfer_stream_t *cb;    /* the change-based stream: every mode but dense */
    cbi_video *video;
    int input_opens; /* how often the input was opened (stdin allows one) */
    long long read_since_open; /* frames read since the input was last opened */
    uint8_t *rgb;
    FILE *dump_frames;  /* --dump-frames, open during the first pass */
    long long dumped_frames;
    float *npy_data;
    int in_c;
    /* Every output of the network, one after another (C x H x W each). */
    float *out_dense, *out_cb;
    size_t out_count;                          /* floats of all outputs */
    int n_out;                                 /* the network's outputs */
    int out_dims[BENCH_MAX_OUTPUTS][3];        /* C, H, W of output k */
    size_t out_off[BENCH_MAX_OUTPUTS + 1];     /* where output k starts */
    int width, height;
    int layer_count;
    layer_acc *acc;  /* timed frames after the stream's frame 0 */
    layer_acc *acc0; /* the stream's frame 0, used when it is the only one */
    cbi_run_result *runs;
    int run_count;
    cbi_profile_layer *profile;
    long long profile_count;
    int progress;       /* stderr is a terminal: draw a progress bar */
    int progress_shown; /* a bar is on screen */
    bench_task task;
    char device_name[256];
    char kernels[256]; /* cbinfer_backend_describe() */
    char date[32];
} bench;

/* ---- bench_run.c ---- */

/* "cbinfer-bench: <message>" on stderr; returns 1. */
int bench_error(const char *fmt, ...);
/* A failed call on a stream: the status text plus the stream's detail; 1. */
int bench_stream_error(const cbinfer_stream_t *s, const char *what, cbinfer_status st);
const char *bench_backend_name(int backend);
/* CLOCK_MONOTONIC in milliseconds. */
double bench_now_ms(void);

int bench_set_param(cbinfer_stream_t *s, cbinfer_param key, double v, const char *what);
/* Applies every stream option of the command line to s, a stream of mode
 * (thresholds, policy, files, parameters). */
int bench_configure_stream(bench *b, cbinfer_stream_t *s, cbinfer_mode mode);
/* Resets s (NULL is accepted). */
int bench_reset(cbinfer_stream_t *s);
/* Opens the video or raw input (not stdin's second time) from frame skip,
 * at --resize, as a handle of the caller's. */
int bench_video_open(const bench *b, int skip, cbi_video **out);
/* Opens (or reopens, for another pass) the input at --skip; the first call
 * sets the frame size. */
int bench_source_open(bench *b);
/* Takes the progress bar off the screen (before a line on stdout). */
void bench_progress_clear(bench *b);
/* Redraws "label [#####.....] done/total" on stderr (a terminal only);
 * total < 0: unknown. */
void bench_progress_draw(bench *b, const char *label, long long done, long long total);
/* Pushes the current frame into s; ms gets the wall time of the call. */
int bench_push(bench *b, cbinfer_stream_t *s, long long k, double *ms);
/* Pushes a packed RGB8 frame (frame k, for the message) into s and adds the
 * wall time of the call to *ms. */
int bench_push_rgb(cbinfer_stream_t *s, const uint8_t *rgb, int width, int height, long long k,
                   double *ms);

/* Calls fn for every frame of one pass (warm-up, then timed frames), after
 * reopening the input; draws the progress bar under `label`. */
typedef int (*bench_frame_fn)(bench *b, long long k, int timed, void *ctx);
int bench_for_each_frame(bench *b, const char *label, bench_frame_fn fn, void *ctx);

/* ---- task.c ---- */

/* Checks the outputs against --task, allocates, opens --dump-detections. */
int bench_task_open(bench *b);
/* Frees; closes the dump (non-zero when that fails). Safe without open. */
int bench_task_close(bench *b);
/* Sets a run's task fields (before its frames; after any memset). */
void bench_task_run_init(bench *b, cbi_run_result *run);
int bench_task_run_alloc(const bench *b, cbi_run_result *run);
/* Decodes the frame's outputs (already read into b->out_dense / out_cb),
 * writes its dump line when dump is set, and in compare mode adds the
 * agreement to fr and run. */
int bench_task_frame(bench *b, long long k, int dump, cbi_frame_rec *fr, cbi_run_result *run);

/* ---- the passes ---- */

/* --per-layer: fills b->profile and b->profile_count (profile_pass.c). */
int bench_profile_pass(bench *b, double scale);
/* --calibrate: writes the break-even file and prints the table (calibrate.c). */
int bench_calibrate(bench *b);
/* --cameras N: the many-camera pass at threshold scale `scale`, into *out
 * (cameras_pass.c). */
int bench_cameras_pass(bench *b, double scale, cbi_cameras_rec *out);

#endif /* CBI_BENCH_H */
