/*
 * cbinfer-cameras: N cameras served by N threads of one process, one shared
 * network, one stream per camera, each pushing the same rgb24 frames. Prints
 * the total frames per second, so that CBINFER_PARAM_THREADS settings for
 * many cameras can be compared (README, "Threads and many cameras").
 *
 *   cbinfer-cameras --model M.onnx --raw WxH:FILE [--cameras N] [--threads T]
 *                   [--mode dense|cbinfer] [--threshold τ]
 *
 * FILE holds rgb24 frames of WxH (cbinfer-bench --dump-frames writes them).
 * Every camera creates its stream and pushes the first frame (which runs
 * dense) before the clock starts; then all cameras push the other frames at
 * once, and the clock stops when the last one is done. Exit status 0, 1 on a
 * runtime error, 2 on a usage error.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cbinfer.h"

typedef struct camera {
    const cbinfer_network_t *net;
    const uint8_t *frames;
    int n_frames, width, height, threads;
    cbinfer_mode mode;
    float threshold;
    pthread_barrier_t *ready; /* every camera warmed up, and the clock started */
    cbinfer_status status;
    char err[512];
} camera;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *run_camera(void *arg)
{
    camera *c = arg;
    cbinfer_stream_t *s = NULL;
    c->status = cbinfer_stream_create(c->net, c->width, c->height, CBINFER_BACKEND_CPU, c->mode,
                                      CBINFER_PRECISION_FP32, &s, c->err, sizeof c->err);
    if (c->status == CBINFER_STATUS_SUCCESS)
        c->status = cbinfer_stream_set_param(s, CBINFER_PARAM_THREADS, c->threads);
    if (c->status == CBINFER_STATUS_SUCCESS)
        c->status = cbinfer_stream_set_threshold_all(s, c->threshold);
    const size_t bytes = (size_t)c->width * c->height * 3;
    if (c->status == CBINFER_STATUS_SUCCESS) /* warm-up: the first frame runs dense */
        c->status = cbinfer_stream_push_rgb8(s, c->frames, c->width, c->height, (size_t)c->width * 3);
    pthread_barrier_wait(c->ready); /* reached on failure too, so nobody waits forever */
    for (int i = 1; i < c->n_frames && c->status == CBINFER_STATUS_SUCCESS; ++i)
        c->status = cbinfer_stream_push_rgb8(s, c->frames + (size_t)i * bytes, c->width, c->height,
                                             (size_t)c->width * 3);
    if (c->status != CBINFER_STATUS_SUCCESS && s)
        snprintf(c->err, sizeof c->err, "%s", cbinfer_stream_last_error(s));
    cbinfer_stream_destroy(s);
    return NULL;
}

static int usage(const char *msg)
{
    fprintf(stderr,
            "cbinfer-cameras: %s\nusage: cbinfer-cameras --model M.onnx --raw WxH:FILE [--cameras N] "
            "[--threads T] [--mode dense|cbinfer] [--threshold T]\n",
            msg);
    return 2;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *raw = NULL;
    int n_cams = 2, threads = 0, width = 0, height = 0;
    cbinfer_mode mode = CBINFER_MODE_CBINFER;
    float threshold = 0.f;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) return usage("every flag takes a value");
        const char *f = argv[i], *v = argv[i + 1];
        char *end = NULL;
        if (strcmp(f, "--model") == 0) {
            model = v;
        } else if (strcmp(f, "--raw") == 0) {
            if (sscanf(v, "%dx%d:", &width, &height) != 2 || width <= 0 || height <= 0 ||
                width > 1 << 16 || height > 1 << 16 || !strchr(v, ':') || !strchr(v, ':')[1])
                return usage("--raw takes WxH:FILE");
            raw = strchr(v, ':') + 1;
        } else if (strcmp(f, "--cameras") == 0) {
            n_cams = (int)strtol(v, &end, 10);
            if (end == v || *end || n_cams < 1 || n_cams > 256)
                return usage("--cameras takes 1 to 256");
        } else if (strcmp(f, "--threads") == 0) {
            threads = (int)strtol(v, &end, 10);
            if (end == v || *end || threads < 0 || threads > 4096)
                return usage("--threads takes 0 to 4096");
        } else if (strcmp(f, "--mode") == 0) {
            if (strcmp(v, "dense") == 0)
                mode = CBINFER_MODE_DENSE;
            else if (strcmp(v, "cbinfer") == 0)
                mode = CBINFER_MODE_CBINFER;
            else
                return usage("--mode takes dense or cbinfer");
        } else if (strcmp(f, "--threshold") == 0) {
            threshold = strtof(v, &end);
            if (end == v || *end || !(threshold >= 0.f) || !isfinite(threshold))
                return usage("--threshold takes a finite number >= 0");
        } else {
            return usage("unknown flag");
        }
    }
    if (!model || !raw) return usage("--model and --raw are required");

    FILE *fp = fopen(raw, "rb");
    if (!fp) {
        fprintf(stderr, "cbinfer-cameras: cannot open '%s'\n", raw);
        return 1;
    }
    const size_t bytes = (size_t)width * height * 3;
    uint8_t *frames = NULL;
    size_t n_frames = 0, cap = 0;
    for (;;) {
        if (n_frames == cap) {
            cap = cap ? cap * 2 : 16;
            if (cap > SIZE_MAX / bytes) {
                fprintf(stderr, "cbinfer-cameras: '%s' is too large\n", raw);
                free(frames);
                fclose(fp);
                return 1;
            }
            uint8_t *t = realloc(frames, cap * bytes);
            if (!t) {
                fprintf(stderr, "cbinfer-cameras: out of memory\n");
                free(frames);
                fclose(fp);
                return 1;
            }
            frames = t;
        }
        if (fread(frames + n_frames * bytes, 1, bytes, fp) != bytes) break;
        ++n_frames;
    }
    fclose(fp);
    if (n_frames < 2) {
        fprintf(stderr, "cbinfer-cameras: '%s' holds %zu whole %dx%d frames; it needs 2 or more "
                        "(the first is a warm-up)\n",
                raw, n_frames, width, height);
        free(frames);
        return 1;
    }

    cbinfer_network_t *net = NULL;
    char err[512];
    if (cbinfer_network_load(model, &net, err, sizeof err) != CBINFER_STATUS_SUCCESS) {
        fprintf(stderr, "cbinfer-cameras: loading '%s': %s\n", model, err);
        free(frames);
        return 1;
    }
    camera *cams = calloc((size_t)n_cams, sizeof *cams);
    pthread_t *th = calloc((size_t)n_cams, sizeof *th);
    pthread_barrier_t ready;
    if (!cams || !th || pthread_barrier_init(&ready, NULL, (unsigned)n_cams + 1) != 0) {
        fprintf(stderr, "cbinfer-cameras: cannot set up %d cameras\n", n_cams);
        free(cams);
        free(th);
        cbinfer_network_free(net);
        free(frames);
        return 1;
    }
    int rc = 0, started = 0;
    while (started < n_cams) {
        cams[started] = (camera){net, frames, (int)n_frames, width, height, threads, mode, threshold,
                                 &ready, CBINFER_STATUS_SUCCESS, ""};
        if (pthread_create(&th[started], NULL, run_camera, &cams[started]) != 0)
            break;
        ++started;
    }
    if (started < n_cams) {
        /* A thread failed to start: the barrier can never fill, and the
         * threads that started wait on it, so the process ends here. */
        fprintf(stderr, "cbinfer-cameras: could not start %d camera threads\n", n_cams);
        _Exit(1);
    }
    pthread_barrier_wait(&ready); /* every stream made and warmed up */
    const double t0 = now_s();
    for (int i = 0; i < started; ++i) pthread_join(th[i], NULL);
    const double dt = now_s() - t0;
    pthread_barrier_destroy(&ready);
    for (int i = 0; i < started; ++i)
        if (cams[i].status != CBINFER_STATUS_SUCCESS) {
            fprintf(stderr, "cbinfer-cameras: camera %d: %s: %s\n", i,
                    cbinfer_status_string(cams[i].status), cams[i].err);
            rc = 1;
        }
    if (rc == 0) {
        const double timed = (double)n_cams * (double)(n_frames - 1);
        char kernels[256];
        cbinfer_backend_describe(CBINFER_BACKEND_CPU, kernels, sizeof kernels);
        printf("cameras %d, threads per stream %d%s, mode %s, threshold %g, %zu frames each "
               "(1 warm-up): %.2f s, %.2f frames/s in total (%s)\n",
               n_cams, threads, threads ? "" : " (every core)",
               mode == CBINFER_MODE_DENSE ? "dense" : "cbinfer", (double)threshold, n_frames, dt,
               timed / dt, kernels);
    }
    free(cams);
    free(th);
    cbinfer_network_free(net);
    free(frames);
    return rc;
}
