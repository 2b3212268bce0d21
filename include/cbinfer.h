/*
 * cbinfer — change-based CNN inference on video from static cameras.
 *
 * The only public header. It is the same with or without CUDA and contains no
 * CUDA, cuDNN or Thrust types.
 *
 * Two handles:
 *   - cbinfer_network_t: loaded once from an ONNX file, immutable afterwards,
 *     safe to share across threads and streams. It must outlive its streams.
 *   - cbinfer_stream_t: one per camera. Owns all temporal state (input states,
 *     stored outputs, change maps, index lists) and all scratch memory, sized
 *     when it is created. A stream is used by one thread at a time.
 *
 * Every call returns a cbinfer_status. cbinfer_status_string() gives its static
 * text; a stream keeps a detailed message of its last error
 * (cbinfer_stream_last_error()). The library never prints and never exits.
 *
 * Tensors exchanged with the caller are float32 NCHW with N = 1.
 */
#ifndef CBINFER_H
#define CBINFER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Single source of truth for the version; CMake reads these three lines. */
#define CBINFER_VERSION_MAJOR 0
#define CBINFER_VERSION_MINOR 1
#define CBINFER_VERSION_PATCH 0
#define CBINFER_VERSION_NUMBER \
    (CBINFER_VERSION_MAJOR * 10000 + CBINFER_VERSION_MINOR * 100 + CBINFER_VERSION_PATCH)

#if defined(_WIN32)
#  define CBINFER_API
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define CBINFER_API __attribute__((visibility("default")))
#else
#  define CBINFER_API
#endif

/* ---------------------------------------------------------------------------
 * Statuses. Values are explicit and never renumbered; new codes are appended
 * within their category.
 * ------------------------------------------------------------------------- */
typedef enum cbinfer_status {
    CBINFER_STATUS_SUCCESS = 0,

    /* Caller errors (1xx). */
    CBINFER_STATUS_NULL_ARGUMENT = 100,    /* a required pointer was NULL */
    CBINFER_STATUS_BAD_PARAM = 101,        /* an enum, size or value out of range */
    CBINFER_STATUS_BAD_FRAME_SIZE = 102,   /* frame does not match the stream's size */
    CBINFER_STATUS_UNKNOWN_NODE = 103,     /* no change-detecting layer of that name */
    CBINFER_STATUS_NOT_READY = 104,        /* e.g. output read before any frame */
    CBINFER_STATUS_BUFFER_TOO_SMALL = 105, /* caller's buffer smaller than needed */
    CBINFER_STATUS_FILE_IO = 106,          /* a caller's file cannot be opened, read, written */

    /* Model errors (2xx). */
    CBINFER_STATUS_MODEL_IO = 200,              /* file missing or unreadable */
    CBINFER_STATUS_MODEL_MALFORMED = 201,       /* not a valid ONNX protobuf, truncated */
    CBINFER_STATUS_MODEL_UNSUPPORTED_OP = 202,  /* an op cbinfer does not implement */
    CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR = 203,/* supported op, unsupported attribute value */
    CBINFER_STATUS_MODEL_WEIGHT_MISMATCH = 204, /* weight/bias size disagrees with the op */
    CBINFER_STATUS_MODEL_INVALID_GRAPH = 205,   /* dangling or missing tensors, bad shapes */

    /* Resource and backend errors (3xx). */
    CBINFER_STATUS_OUT_OF_MEMORY = 300,
    CBINFER_STATUS_BACKEND_UNAVAILABLE = 301, /* backend not compiled in, or no device */
    CBINFER_STATUS_BACKEND_ERROR = 302,       /* CUDA, cuBLAS or cuDNN reported an error */

    /* Bugs (9xx). */
    CBINFER_STATUS_INTERNAL = 900
} cbinfer_status;

/* Static text for a status; never NULL ("unknown status" for unknown values). */
CBINFER_API const char *cbinfer_status_string(cbinfer_status status);

/* Run-time version: CBINFER_VERSION_NUMBER of the library actually linked. */
CBINFER_API unsigned cbinfer_version(void);

typedef enum cbinfer_backend {
    CBINFER_BACKEND_CPU = 0,  /* oneDNN kernels, OpenMP threads; the reference backend */
    CBINFER_BACKEND_CUDA = 1  /* cuBLAS/cuDNN/Thrust; BACKEND_UNAVAILABLE if not built or no GPU */
} cbinfer_backend;

/* Writes a one-line description of a backend's kernels into buf (NUL-
 * terminated, truncated to len), for reports: on the CPU the kernel library,
 * its version and the instruction set its kernels run with on this machine
 * (e.g. "oneDNN 2.6.3 (OpenMP), isa avx512_core"). Thread safe; no device
 * sync. Statuses: NULL_ARGUMENT, BAD_PARAM (unknown backend),
 * BACKEND_UNAVAILABLE (not compiled in). */
CBINFER_API cbinfer_status cbinfer_backend_describe(cbinfer_backend backend, char *buf,
                                                    size_t len);

typedef enum cbinfer_mode {
    CBINFER_MODE_DENSE = 0,      /* full convolution every frame (the baseline) */
    CBINFER_MODE_CBINFER = 1,    /* change-based, closed-loop input state (paper Sec. III-C) */
    CBINFER_MODE_CBINFER_FF = 2, /* change-based, feed-forward (paper Fig. 4 top), for comparison */
    /* Whole-network presets of the delta policies (cbinfer_stream_set_policy):
     * every conv starts with "evnet" (element granularity), "skipconv"
     * (Input-Norm gate, no blocks, no reset) or "sigmadelta". CPU only. */
    CBINFER_MODE_EVNET = 3,
    CBINFER_MODE_SKIPCONV = 4,
    CBINFER_MODE_SIGMADELTA = 5
} cbinfer_mode;

typedef enum cbinfer_precision {
    CBINFER_PRECISION_FP32 = 0, /* strict fp32, TF32 off */
    CBINFER_PRECISION_TF32 = 1, /* CUDA only */
    CBINFER_PRECISION_FP16 = 2  /* CUDA only: half storage, fp32 accumulation */
} cbinfer_precision;

/* Whether a backend can be used here: SUCCESS, or BACKEND_UNAVAILABLE when it
 * was not compiled in or no device is present. Thread safe. */
CBINFER_API cbinfer_status cbinfer_backend_available(cbinfer_backend backend);

/* Processing steps timed per layer (paper Fig. 4 and Table II). */
typedef enum cbinfer_step {
    CBINFER_STEP_CHANGE_DETECT = 0, /* Eq. 3, with the closed-loop state update */
    CBINFER_STEP_DILATE = 1,        /* Eq. 4: mark the filter support of each change */
    CBINFER_STEP_EXTRACT = 2,       /* change-index extraction */
    CBINFER_STEP_IM2COL = 3,        /* matrix generation over changed pixels */
    CBINFER_STEP_GEMM = 4,
    CBINFER_STEP_UPDATE = 5,        /* fused bias + activation + scatter */
    CBINFER_STEP_POOL = 6,          /* change-based pooling */
    CBINFER_STEP_DENSE = 7,         /* any dense op (dense conv, pad, add, ...) */
    CBINFER_STEP_COUNT = 8
} cbinfer_step;

/* Static name of a step ("change_detect", "gemm", ...); NULL if out of range. */
CBINFER_API const char *cbinfer_step_name(cbinfer_step step);

/* ---------------------------------------------------------------------------
 * Network: loaded once, immutable, shareable across threads.
 * ------------------------------------------------------------------------- */
typedef struct cbinfer_network cbinfer_network_t;

/* The largest model file cbinfer_network_load() reads: 2 GiB, protobuf's own
 * limit on one message. */
#define CBINFER_MODEL_MAX_BYTES ((size_t)2 << 30)

/* Loads an ONNX model from a file. On success *out owns a new network that the
 * caller frees with cbinfer_network_free(). On failure *out is NULL and, if
 * err is not NULL, err receives a NUL-terminated message (naming the node and
 * op where one is at fault), truncated to err_len bytes. A file of more than
 * CBINFER_MODEL_MAX_BYTES is refused (MODEL_IO) before it is read; a pipe or
 * device is read no further than that.
 * Thread safe. Statuses: NULL_ARGUMENT, MODEL_*, OUT_OF_MEMORY. */
CBINFER_API cbinfer_status cbinfer_network_load(const char *path, cbinfer_network_t **out,
                                                char *err, size_t err_len);

/* As cbinfer_network_load(), with a cap of max_bytes (at most
 * CBINFER_MODEL_MAX_BYTES) on the file's size: for a service that loads
 * models it did not make. */
CBINFER_API cbinfer_status cbinfer_network_load_limited(const char *path, size_t max_bytes,
                                                        cbinfer_network_t **out, char *err,
                                                        size_t err_len);

/* As cbinfer_network_load(), from an ONNX protobuf in memory (not retained). */
CBINFER_API cbinfer_status cbinfer_network_load_memory(const void *data, size_t size_bytes,
                                                       cbinfer_network_t **out, char *err,
                                                       size_t err_len);

/* Frees a network; NULL is accepted. No stream of it may still exist. */
CBINFER_API void cbinfer_network_free(cbinfer_network_t *net);

/* Input channels and spatial size; height/width are -1 where symbolic (the
 * stream's frame size is used then). Any output pointer may be NULL. */
CBINFER_API cbinfer_status cbinfer_network_input_dims(const cbinfer_network_t *net, int *channels,
                                                      int *height, int *width);

/* Pixel mapping recorded by the model's converter: a network input value is
 * pixel * scale + offset (defaults 1/255 and 0). */
CBINFER_API cbinfer_status cbinfer_network_input_scaling(const cbinfer_network_t *net,
                                                         float *scale, float *offset);

/* Graph outputs, in the model's order (a detector's heads, say): their count
 * (0 for a NULL network) and each one's ONNX name (NULL for an index out of
 * range). A name pointer stays valid as long as the network. Output 0 is the
 * one cbinfer_stream_output_dims/read_output read. */
CBINFER_API int cbinfer_network_output_count(const cbinfer_network_t *net);
CBINFER_API const char *cbinfer_network_output_name(const cbinfer_network_t *net, int index);

/* Change-detecting layers (convolutions), in execution order. A name pointer
 * stays valid as long as the network. */
CBINFER_API int cbinfer_network_conv_count(const cbinfer_network_t *net);
CBINFER_API const char *cbinfer_network_conv_name(const cbinfer_network_t *net, int index);

/* Whether a change in the output of convolution `ancestor` can reach the
 * input of convolution `conv` (indices as cbinfer_network_conv_name): 1 when a
 * path of the graph leads from one to the other, 0 when none does (the two
 * lie on parallel branches, conv runs first, or conv == ancestor), -1 for a
 * NULL network, an index out of range, or no memory for the search. In a
 * chain, conv i is reached by every conv j < i. cbinfer-tune uses it to tune
 * re-converging branches independently (paper Sec. III-F). Each call walks
 * the nodes between the two (time linear in the graph, no table kept). Thread
 * safe. */
CBINFER_API int cbinfer_network_conv_reaches(const cbinfer_network_t *net, int conv,
                                             int ancestor);

/* ---------------------------------------------------------------------------
 * Stream context: one per camera.
 * ------------------------------------------------------------------------- */
typedef struct cbinfer_stream cbinfer_stream_t;

/* Creates a stream for frames of width x height on a backend, in a mode and a
 * precision, and allocates all of its memory. CPU supports FP32 only.
 * On the CPU backend the memory is touched page by page as it is allocated,
 * and a stream that needs more than the system has available (Linux's
 * MemAvailable; see cbinfer_stream_memory_bytes) is refused up front with
 * OUT_OF_MEMORY, rather than succeeding on an overcommitting kernel and
 * meeting the OOM killer at its first frame.
 * On failure *out is NULL and err (if not NULL) receives the reason.
 * Thread safe with respect to the shared network.
 * Statuses: NULL_ARGUMENT, BAD_PARAM, BAD_FRAME_SIZE (too small for the
 * network, or a fixed-size network of another size), BACKEND_UNAVAILABLE
 * (not compiled in, or no device), BACKEND_ERROR, OUT_OF_MEMORY. */
CBINFER_API cbinfer_status cbinfer_stream_create(const cbinfer_network_t *net, int width,
                                                 int height, cbinfer_backend backend,
                                                 cbinfer_mode mode, cbinfer_precision precision,
                                                 cbinfer_stream_t **out, char *err,
                                                 size_t err_len);

/* As cbinfer_stream_create(), refusing (OUT_OF_MEMORY, nothing allocated) a
 * stream whose cbinfer_stream_memory_bytes() figure exceeds max_bytes; 0
 * means no cap. The cap stays with the stream: a CBINFER_PARAM_THREADS value
 * whose scratch would pass it is refused too. */
CBINFER_API cbinfer_status cbinfer_stream_create_limited(const cbinfer_network_t *net, int width,
                                                         int height, cbinfer_backend backend,
                                                         cbinfer_mode mode,
                                                         cbinfer_precision precision,
                                                         size_t max_bytes, cbinfer_stream_t **out,
                                                         char *err, size_t err_len);

/* Options of cbinfer_stream_create_ex. Fill them with
 * cbinfer_stream_options_init(), then set what you need. Fields appended in
 * later versions get their defaults there; struct_size says which version of
 * the struct the caller was built with, and a library refuses a struct newer
 * than its own (it cannot honour fields it does not know). */
typedef struct cbinfer_stream_options {
    size_t struct_size; /* sizeof(cbinfer_stream_options), set by _init */
    size_t max_bytes;   /* as cbinfer_stream_create_limited; 0 (default): no cap */
    /* CUDA: the device ordinal the stream lives on; CBINFER_DEVICE_CURRENT
     * (default, and what cbinfer_stream_create uses) is the calling thread's
     * current device at creation. Every call on the stream makes that
     * device current for the call's duration and then restores the
     * caller's (by ordinal: the primary context of the device must be the
     * one in use). CPU: CBINFER_DEVICE_CURRENT or 0. */
    int device;
    /* CUDA: a cudaStream_t of the caller's, on that device, that all of the
     * stream's work is queued on (its kernels, copies and the cuDNN and
     * cuBLAS calls); the caller keeps it alive until the stream is
     * destroyed. A push's final wait is then a cudaStreamSynchronize of it,
     * which also waits for the caller's work queued there before. NULL
     * (default): the stream creates its own (non-blocking). CPU: must be
     * NULL. */
    void *cuda_stream;
} cbinfer_stream_options;

#define CBINFER_DEVICE_CURRENT (-1)

CBINFER_API void cbinfer_stream_options_init(cbinfer_stream_options *options);

/* As cbinfer_stream_create() with options (NULL: the defaults).
 * Statuses: those of cbinfer_stream_create, and BAD_PARAM for a
 * struct_size this library does not know, a device that does not exist, a
 * CUDA stream on another device, or a CPU stream given a device or a CUDA
 * stream; BACKEND_ERROR when the device cannot be made current. */
CBINFER_API cbinfer_status cbinfer_stream_create_ex(const cbinfer_network_t *net, int width,
                                                    int height, cbinfer_backend backend,
                                                    cbinfer_mode mode,
                                                    cbinfer_precision precision,
                                                    const cbinfer_stream_options *options,
                                                    cbinfer_stream_t **out, char *err,
                                                    size_t err_len);

/* The bytes a stream of these settings would hold, without creating it: its
 * activations, the per-layer state of the change-based modes, the weights in
 * the backend's layouts, host staging and the backend's scratch (CPU: for
 * one thread per core). Host and device memory are counted together. Not
 * counted: what the kernel libraries keep for themselves (oneDNN's JIT code
 * and scratchpads, cuDNN's and cuBLAS's workspaces); on the CPU, the shipped
 * models at 320x240 take 1 to 8 MiB more than the figure. Checks the
 * arguments and the frame size as cbinfer_stream_create does, and allocates
 * only the plan's tables.
 * Thread safe. Statuses: NULL_ARGUMENT, BAD_PARAM, BAD_FRAME_SIZE,
 * BACKEND_UNAVAILABLE (not compiled in; no device is needed), OUT_OF_MEMORY
 * (for the tables). */
CBINFER_API cbinfer_status cbinfer_stream_memory_bytes(const cbinfer_network_t *net, int width,
                                                       int height, cbinfer_backend backend,
                                                       cbinfer_mode mode,
                                                       cbinfer_precision precision,
                                                       uint64_t *bytes, char *err,
                                                       size_t err_len);

/* Frees a stream and all of its memory; NULL is accepted. */
CBINFER_API void cbinfer_stream_destroy(cbinfer_stream_t *stream);

/* Detailed message of the stream's last failed call ("" if none). The pointer
 * stays valid until the next call on the stream. */
CBINFER_API const char *cbinfer_stream_last_error(const cbinfer_stream_t *stream);

/* Forgets all temporal state: the next frame runs dense and initialises it. */
CBINFER_API cbinfer_status cbinfer_stream_reset(cbinfer_stream_t *stream);

/* Tunables: a key and a value, so that adding one never breaks the ABI. */
typedef enum cbinfer_param {
    /* 1: time every step of every layer (see cbinfer_stream_layer_stats).
     * 0 (default): only frame totals. On CUDA, timing adds synchronisation. */
    CBINFER_PARAM_COLLECT_STATS = 0,
    /* Multiplies every layer's threshold (default 1). */
    CBINFER_PARAM_THRESHOLD_SCALE = 1,
    /* 1: a 1x1, stride-1 convolution fed by a change-based layer reuses that
     * layer's change indices instead of detecting changes itself (paper
     * Sec. III-E, case 2). Default 0. */
    CBINFER_PARAM_REUSE_1X1_INDICES = 2,
    /* CPU backend: the threads one push on this stream runs on. 0 (default):
     * one per core available to the process; more than the cores
     * oversubscribes them. Streams pushed from several threads at once each
     * use their own threads, so for N cameras on C cores set C / N on each
     * stream (at least 1). oneDNN fixes thread counts when its kernels are
     * created, so a new value re-creates the stream's layers and scratch: the
     * next frame runs dense, as after cbinfer_stream_reset (read_output and
     * frame_stats return NOT_READY until then). Set it right after
     * cbinfer_stream_create. Statuses of set_param: BAD_PARAM (negative, not
     * a whole number, above 4096), OUT_OF_MEMORY or another status of layer
     * creation; after such a failure the stream keeps its old thread count
     * and every push fails, saying why, until a later THREADS call or
     * cbinfer_stream_set_policy succeeds. Ignored by the CUDA backend. */
    CBINFER_PARAM_THREADS = 3,
    /* Closed-memory delta policies (evnet without nomem, sigmadelta) keep a
     * float accumulator a = W*v + b that takes one rounding per update. Every
     * REFRESH_PERIOD frames each such layer recomputes it densely from its
     * reference v (layer i of cbinfer_network_conv_name at the frames where
     * (frame_index + i) % period == 0, so layers take turns), which changes
     * nothing but the rounding: the drift stays that of at most `period`
     * frames. Default 256; 0 never refreshes. The refreshed layer counts
     * dense MACs for that frame. */
    CBINFER_PARAM_REFRESH_PERIOD = 4,
    /* The delta scatter of evnet and sigmadelta (README, "Change
     * policies"). CUDA: 0 (default) scatter-adds the products with float
     * atomics, whose order, and so the last bit of a sum, may differ from
     * run to run; 1 gathers them per output in a fixed order instead
     * (bit-reproducible, one more pass over the touched outputs per chunk of
     * deltas). The CPU backend's scatter is always in a fixed order and
     * accepts either value. */
    CBINFER_PARAM_DETERMINISTIC = 5
} cbinfer_param;

/* Range of valid values of a key. Statuses: BAD_PARAM, NULL_ARGUMENT. */
CBINFER_API cbinfer_status cbinfer_param_bounds(cbinfer_param key, double *min, double *max);
CBINFER_API cbinfer_status cbinfer_stream_set_param(cbinfer_stream_t *stream, cbinfer_param key,
                                                    double value);
CBINFER_API cbinfer_status cbinfer_stream_get_param(const cbinfer_stream_t *stream,
                                                    cbinfer_param key, double *value);

/* Change policies (../shared/docs/VARIANTS.md), one per convolution. A spec
 * is "<kind>[:<option>,...]":
 *   "cbinfer"      recompute every output whose window holds a change, from
 *                  the closed-loop input state (paper Sec. III); θ = τ.
 *   "cbinfer-ff"   the same from the previous input (feed-forward).
 *   "evnet"        Event Neural Networks: delta neurons with long-term
 *                  memory; an input element whose distance d = x - v from
 *                  what was sent so far passes h = θ is sent (Eq. 6), its
 *                  delta multiplied by the weights and scatter-added into a
 *                  pre-activation accumulator. Options: "element" (default),
 *                  "pixel" (every channel of a pixel whose max |d| > h; the
 *                  states of "cbinfer"), "chunk=G" (groups of G channels
 *                  whose mean |d| > h), "nomem" (v follows the input: the
 *                  Fig. 8 ablation without memory).
 *   "skipconv"     Skip-Convolutions: residual frames r = x - x_prev, an
 *                  output pixel updated when the L1 of r over its window
 *                  (Input-Norm, "input", default) or that times ||W||_1
 *                  ("output") exceeds ε = θ; unsent residuals are dropped
 *                  (open memory). Options: "block=B" (aligned B x B output
 *                  blocks), "reset=R" (dense re-flush every R frames, 0 never).
 *                  "scatter" / "recompute" pick the kernel of closed memory
 *                  (the outputs are the same, up to float rounding): the
 *                  delta scatter into the accumulator, or CBinfer's
 *                  recompute of the reached outputs from v (no accumulator).
 *                  Default: scatter where a conv has at least 16 input
 *                  channels, recompute below (nomem always scatters).
 *   "sigmadelta"   Sigma-Delta: the reference is Q(x, s) = s*floor(x/s + 1/2)
 *                  with step s = θ, deltas are multiples of s; the output
 *                  equals the dense network on quantized conv inputs (up to
 *                  float rounding, and while s has not changed since the
 *                  last dense frame: pixels that have not changed since keep
 *                  their place on the old grid). Options "scatter",
 *                  "recompute", as for evnet.
 * node_name NULL sets every convolution. The stream must not be dense
 * (BAD_PARAM). Every policy runs on both backends (CUDA: README, "Change
 * policies"; at fp16 the accumulator is always stored). A new policy
 * re-creates the layers' state
 * (sized then, never while processing a frame) and resets the stream: the
 * next frame runs dense. If that re-creation fails, every push fails and
 * says why until a later set_policy or CBINFER_PARAM_THREADS succeeds.
 * Not thread safe on one stream; no device sync.
 * Statuses: NULL_ARGUMENT, BAD_PARAM (unknown kind or option), UNKNOWN_NODE,
 * OUT_OF_MEMORY (over the stream's cap or the system's memory), or a status
 * of the backend's layer creation. */
CBINFER_API cbinfer_status cbinfer_stream_set_policy(cbinfer_stream_t *stream,
                                                     const char *node_name, const char *spec);

/* The canonical spec of a convolution's policy (parses back to the same),
 * into buf (NUL-terminated). Statuses: NULL_ARGUMENT, UNKNOWN_NODE,
 * BAD_PARAM (a dense stream has no policy), BUFFER_TOO_SMALL (64 bytes
 * always suffice). */
CBINFER_API cbinfer_status cbinfer_stream_get_policy(const cbinfer_stream_t *stream,
                                                     const char *node_name, char *buf,
                                                     size_t len);

/* Bytes of a stream's temporal state: every layer's reference (input state)
 * and accumulator (cbinfer_layer_stats.state_bytes summed); 0 for a dense
 * stream. Weights, activations and scratch are not state (see
 * cbinfer_stream_memory_bytes for everything). Thread safe for readers; no
 * device sync. Statuses: NULL_ARGUMENT. */
CBINFER_API cbinfer_status cbinfer_stream_state_bytes(const cbinfer_stream_t *stream,
                                                      uint64_t *bytes);

/* Thresholds τ (paper Eq. 3), in the units of each layer's input. All start at
 * 0, which makes the change-based output equal the dense output. A
 * convolution at 0 whose input comes with a change list (its producer
 * rewrote only some pixels) does not detect: every listed pixel counts as
 * changed, and it recomputes the outputs they reach (Eq. 4) from its input,
 * keeping no input state until its threshold is above 0 again (CPU; CUDA
 * keeps the state). That is exact, and on the CPU cheaper than detecting
 * where the detection costs about what it saves, e.g. depthwise convolutions
 * (CUDA still runs its detection kernel: the same decisions, no saving). After a
 * frame above 0 left changes under τ out, the layer detects at 0 until its
 * next dense frame. The network's first convolutions, whose input changes
 * everywhere, detect at 0; a layer that followed and then gets
 * such an input runs dense (ran_dense). The delta policies are unaffected.
 * set_threshold names one convolution node; set_threshold_all sets every one.
 * The effective threshold is τ times CBINFER_PARAM_THRESHOLD_SCALE.
 * Statuses: NULL_ARGUMENT, UNKNOWN_NODE, BAD_PARAM (negative or not finite). */
CBINFER_API cbinfer_status cbinfer_stream_set_threshold(cbinfer_stream_t *stream,
                                                        const char *node_name, float threshold);
CBINFER_API cbinfer_status cbinfer_stream_set_threshold_all(cbinfer_stream_t *stream,
                                                            float threshold);
CBINFER_API cbinfer_status cbinfer_stream_get_threshold(const cbinfer_stream_t *stream,
                                                        const char *node_name, float *threshold);

/* Adaptive dense fallback (worst case: camera motion, scene cuts). Each
 * convolution has a break-even share b in [0, 1], default 1. In the
 * change-based modes, when the share of output pixels a layer has to
 * recompute this frame (after change detection and Eq. 4 dilation) exceeds b,
 * the layer computes its whole output dense instead, and its input state
 * takes the input everywhere, so the stored output stays the convolution of
 * the state. Outputs are the same either way (up to float rounding); only the
 * cost differs. cbinfer_layer_stats.ran_dense reports the fallback.
 * CPU backend: a layer that falls back predicts its fallback for the next 8
 * frames, and for twice as many each time it falls back again right after
 * (up to 128), unless no change list can reach its input (the network's
 * input, or no Conv before it through pools and pixel-wise ops only). It
 * then computes dense (ran_dense 1) without detecting, and hands on the
 * outputs its producer's rewritten pixels reach (everything, when its
 * producer fell back). A
 * predicted layer thus takes every change its producer hands on, as at
 * τ = 0. When those outputs are no more than b of the layer, the prediction
 * ends: on its first frame the layer detects as on any frame; later its
 * state (not kept while it predicts) takes the input and it recomputes
 * those outputs. When the prediction runs out, the state takes the input
 * and the layer detects from the next frame on. On predicted frames
 * changed_in_px counts the pixels the producer rewrote. The CUDA backend
 * detects on every frame.
 * b = 1 never falls back (a prediction under way ends on its next frame);
 * b = 0 falls back whenever anything changed. Ignored in CBINFER_MODE_DENSE.
 * Not thread safe on one stream; no device sync.
 * Statuses: NULL_ARGUMENT, UNKNOWN_NODE, BAD_PARAM (outside [0, 1] or NaN). */
CBINFER_API cbinfer_status cbinfer_stream_set_break_even(cbinfer_stream_t *stream,
                                                         const char *node_name, float share);
CBINFER_API cbinfer_status cbinfer_stream_set_break_even_all(cbinfer_stream_t *stream,
                                                             float share);
CBINFER_API cbinfer_status cbinfer_stream_get_break_even(const cbinfer_stream_t *stream,
                                                         const char *node_name, float *share);

/* Per-layer value files: plain text, one "<conv node name> <value>" per line
 * (whitespace-separated; the name has no spaces). Blank lines and lines whose
 * first non-blank character is '#' are comments. Values are decimals
 * ("0.005", "5e-3"), parsed independently of the C locale. Example:
 *
 *     # cbinfer layer values v1
 *     # tools/tune.py --psnr 40 vtest.avi
 *     conv1 0.005
 *     conv2 0.01
 *
 * Lines end with LF, CRLF or CR. A file holding a NUL byte, or of more than
 * 1 MiB, is not a layer-value file and is refused (BAD_PARAM).
 * Loading is all or nothing: on any error no value of the stream changes.
 * Convolutions the file does not name keep their value; a name given twice
 * takes its last value. Errors name the place as "path:line: ...".
 * Not thread safe on one stream; no device sync; the file is not retained.
 *
 * load_thresholds: absolute τ per layer (finite, >= 0), as set_threshold;
 * CBINFER_PARAM_THRESHOLD_SCALE still multiplies them.
 * load_break_even: break-even shares in [0, 1], as set_break_even.
 * Statuses: NULL_ARGUMENT, FILE_IO (cannot open or read), UNKNOWN_NODE (no
 * Conv node of a name), BAD_PARAM (malformed line, bad number, value out of
 * range, trailing text), OUT_OF_MEMORY. */
CBINFER_API cbinfer_status cbinfer_stream_load_thresholds(cbinfer_stream_t *stream,
                                                          const char *path);
CBINFER_API cbinfer_status cbinfer_stream_load_break_even(cbinfer_stream_t *stream,
                                                          const char *path);

/* Writes the stream's thresholds τ (unscaled) in the format above: the line
 * "# cbinfer layer values v1", then each line of header_comment (may be NULL;
 * '\n' separates lines) prefixed with "# ", then every convolution in
 * execution order with its value printed as "%.9g" (which reads back to the
 * same float). Creates or truncates the file. The stream is only read (so
 * its last-error message is left as it was).
 * Statuses: NULL_ARGUMENT, FILE_IO, BAD_PARAM (a node name that the format
 * cannot hold: empty, with whitespace, or starting with '#'; or a file over
 * the 1 MiB the reader accepts, which is removed again). */
CBINFER_API cbinfer_status cbinfer_stream_save_thresholds(const cbinfer_stream_t *stream,
                                                          const char *path,
                                                          const char *header_comment);

/* Pushes one interleaved RGB8 frame (row stride in bytes, >= 3 * width) and
 * runs the network on it. Pixels map to the input by the network's scaling.
 * Synchronises the device before returning.
 * Statuses: NULL_ARGUMENT, BAD_FRAME_SIZE, BAD_PARAM (stride), BACKEND_ERROR. */
CBINFER_API cbinfer_status cbinfer_stream_push_rgb8(cbinfer_stream_t *stream, const uint8_t *rgb,
                                                    int width, int height, size_t stride_bytes);

/* Pushes one planar float32 NCHW tensor (N = 1) that is fed to the network
 * as is (no scaling). Statuses as push_rgb8. */
CBINFER_API cbinfer_status cbinfer_stream_push_nchw(cbinfer_stream_t *stream, const float *data,
                                                    int channels, int height, int width);

/* Device memory in and out (the embedding API). On the CUDA backend the
 * pointers are device memory of the stream's device (cudaMalloc'ed, or
 * another pipeline element's buffers); on the CPU backend, where device
 * memory is host memory, they are host pointers and the calls behave as
 * cbinfer_stream_push_rgb8 and cbinfer_stream_read_output_at.
 *
 * The frame must be complete on the device when the push is called: queue
 * its producer on the stream's cuda_stream, or wait for it first.
 *
 * Host synchronisations (waits for the device; cbinfer_frame_stats.host_syncs
 * counts a push's, cbinfer_stream_host_syncs all since creation). CPU: none,
 * ever. CUDA:
 *   push (any of the three)  1 at the end of the frame, plus, per layer
 *                            that runs change-based this frame (not on the
 *                            first frame, not skipped for unchanged inputs):
 *                              cbinfer, cbinfer-ff conv: 1 (its index
 *                                extraction; 0 when it reuses a 1x1's
 *                                indices or nothing changed);
 *                              pooling of a change list: 1;
 *                              evnet, sigmadelta, scatter kernel: 2 (the
 *                                sent inputs and the reached outputs);
 *                                recompute kernel: 1; the refresh frame
 *                                of CBINFER_PARAM_REFRESH_PERIOD: 1;
 *                              skipconv: 1, and 1 more when an output was
 *                                reached;
 *                            plus, with COLLECT_STATS, 1 per timed step
 *                            (per chunk where a step loops over chunks) and
 *                            1 per layer that ran. A frame that runs every
 *                            layer dense (the first, a dense stream) takes
 *                            exactly 1, and 1 more after a failed push.
 *   read_output_device       0 on a stream created on a caller's CUDA
 *                            stream: the copy is queued there, in order
 *                            with the caller's later work; 1 otherwise
 *                            (it returns with the copy done), a batch's
 *                            member included.
 *   read_output(_at),        1 (the copy to the host).
 *   conv_input_stats
 *   creation, set_policy     a few per layer (weights and tables uploaded
 *                            from pageable memory), counted by
 *                            cbinfer_stream_host_syncs. Not counted: the
 *                            waits cudaFree and cuDNN's algorithm search
 *                            make on their own. */

/* Host synchronisations of the stream since its creation, as counted above
 * (0 on the CPU). Not concurrently with other calls on the stream; no
 * device sync. Statuses: NULL_ARGUMENT. */
CBINFER_API cbinfer_status cbinfer_stream_host_syncs(const cbinfer_stream_t *stream,
                                                     int64_t *count);

/* As cbinfer_stream_push_rgb8, from device memory: rgb (at least
 * (height - 1) * stride_bytes + 3 * width bytes) stays where it is and is
 * converted into the network's input on the device, no host copy. The
 * caller must not change rgb until the push has returned.
 * Statuses as push_rgb8, and BAD_PARAM (CUDA: not device memory of the
 * stream's device; the stream's state is kept). */
CBINFER_API cbinfer_status cbinfer_stream_push_rgb8_device(cbinfer_stream_t *stream,
                                                           const void *rgb, int width,
                                                           int height, size_t stride_bytes);

/* As cbinfer_stream_read_output_at, into device memory: float32 NCHW,
 * capacity floats, written on the device without a host copy.
 * Statuses: NULL_ARGUMENT, NOT_READY, BUFFER_TOO_SMALL, BAD_PARAM (index;
 * CUDA: dst not device memory of the stream's device, or not 4-byte
 * aligned), BACKEND_ERROR. */
CBINFER_API cbinfer_status cbinfer_stream_read_output_device(cbinfer_stream_t *stream, int index,
                                                             void *dst, size_t capacity);

/* Shape of network output 0 for this stream; _at: of output `index`
 * (BAD_PARAM when out of range). Any output pointer may be NULL. */
CBINFER_API cbinfer_status cbinfer_stream_output_dims(const cbinfer_stream_t *stream,
                                                      int *channels, int *height, int *width);
CBINFER_API cbinfer_status cbinfer_stream_output_dims_at(const cbinfer_stream_t *stream,
                                                         int index, int *channels, int *height,
                                                         int *width);

/* Copies output 0 (_at: output `index`) of the last frame as float32 NCHW
 * into dst, which holds capacity floats. Statuses: NULL_ARGUMENT, NOT_READY,
 * BUFFER_TOO_SMALL, BAD_PARAM (index). */
CBINFER_API cbinfer_status cbinfer_stream_read_output(cbinfer_stream_t *stream, float *dst,
                                                      size_t capacity);
CBINFER_API cbinfer_status cbinfer_stream_read_output_at(cbinfer_stream_t *stream, int index,
                                                         float *dst, size_t capacity);

/* Statistics of the last frame for one layer (one node of the network after
 * activation fusion and BatchNorm folding). Step times are 0 unless
 * CBINFER_PARAM_COLLECT_STATS is 1. */
typedef struct cbinfer_layer_stats {
    const char *name;    /* node name; valid as long as the network */
    const char *op;      /* ONNX op type ("Conv", "MaxPool", ...) */
    int64_t changed_px;  /* output pixels recomputed this frame */
    int64_t total_px;    /* output pixels of the layer */
    int64_t changed_in_px; /* input pixels detected as changed (Eq. 3; at threshold 0
                            * behind a change list, every listed pixel) */
    int64_t macs;        /* multiply-accumulates performed */
    int64_t dense_macs;  /* multiply-accumulates of the dense layer */
    int ran_dense;       /* 1 if the layer ran its dense path this frame (first frame,
                          * dense op, break-even fallback; for the delta policies also
                          * Skip-Conv's reset, a refresh, a non-finite delta) */
    double step_ms[16];  /* indexed by cbinfer_step; room to grow */
    double total_ms;     /* all steps of the layer */
    /* Appended in 0.1 (policies): rebuild against this header. */
    int64_t macs_effective; /* the papers' count: for evnet and sigmadelta the products
                             * of transmitted input elements and the weights they
                             * reach (valid taps x Cout each); else (cbinfer,
                             * skipconv: the open outputs' full windows) equal to macs */
    int64_t transmitted_el; /* input elements sent on (Eq. 6 transmissions; CBinfer:
                             * every channel of a changed pixel; Skip-Conv: every
                             * channel of a pixel with a residual, used or dropped) */
    int64_t overhead_arith; /* EvNet supplement Sec. E: 3 per gate evaluation (input
                             * element tested), 1 per transmission, 1 per accumulator
                             * element updated */
    int64_t overhead_ldst;  /* the same rules: 4, 2 and 2 loads and stores */
    int64_t state_bytes;    /* this layer's temporal state (reference and, unless the
                             * activation is invertible, accumulator) */
} cbinfer_layer_stats;

CBINFER_API int cbinfer_stream_layer_count(const cbinfer_stream_t *stream);
CBINFER_API cbinfer_status cbinfer_stream_layer_stats(const cbinfer_stream_t *stream, int index,
                                                      cbinfer_layer_stats *out);

/* Frame totals of the last frame (always collected). */
typedef struct cbinfer_frame_stats {
    int64_t frame_index;  /* frames since creation or reset, 0-based */
    double total_ms;      /* wall time of the push call */
    int64_t macs;
    int64_t dense_macs;
    double changed_share; /* conv output pixels recomputed / total */
    int64_t host_syncs;   /* times the push waited for the device (CUDA: stream
                           * synchronisations, change counts read back); 0 on
                           * the CPU. Appended in 0.1: rebuild against this header */
    int64_t macs_effective; /* sums of the layers' fields of the same names */
    int64_t overhead_arith;
    int64_t overhead_ldst;
} cbinfer_frame_stats;

CBINFER_API cbinfer_status cbinfer_stream_frame_stats(const cbinfer_stream_t *stream,
                                                      cbinfer_frame_stats *out);

/* Mean and (population) standard deviation of the input tensor of the
 * conv_index-th convolution (execution order, as cbinfer_network_conv_name),
 * as it stands after the last frame (what the producing op holds; in the
 * change-based modes not the layer's closed-loop input state). Used to
 * scale initial thresholds by each layer's activation spread (cbinfer-tune
 * --stats-init). The tensor is downloaded into a host buffer allocated at
 * stream creation, so this synchronises the device and allocates nothing.
 * Not thread safe on one stream.
 * Statuses: NULL_ARGUMENT, BAD_PARAM (index out of range), NOT_READY (no
 * frame since creation or reset), BACKEND_ERROR. */
CBINFER_API cbinfer_status cbinfer_stream_conv_input_stats(cbinfer_stream_t *stream,
                                                           int conv_index, double *mean,
                                                           double *stddev);

/* ---------------------------------------------------------------------------
 * Batch: N streams of one network and one frame size, stepped together (many
 * cameras in one process). A batched push gives every stream one frame and
 * runs each convolution once for all of them: dense streams as one
 * convolution over N images, change-based streams (policies cbinfer and
 * cbinfer-ff) as one GEMM over the changed pixels of every stream, each row
 * tagged with its stream and pixel. Each stream keeps its own state,
 * thresholds, break-even shares, policy, parameters and statistics, set and
 * read with the stream calls above on cbinfer_batch_stream(); a batched push
 * leaves every stream as a push of its frame to that stream alone would
 * (outputs equal up to float re-association). Layers under a delta policy
 * (evnet, skipconv, sigmadelta), and any stream on its first frame while
 * others are not, run per stream within the step.
 * A batch is used by one thread at a time; its streams may also be pushed
 * on their own, from that same thread. The batched convolutions run on the
 * batch's own threads (cbinfer_batch_set_param), not on a member's
 * CBINFER_PARAM_THREADS. Each member holds a stream's memory, and the batch
 * about one stream's more.
 * CUDA: the batch lives on the device current at its creation, and all
 * of its streams queue on one CUDA stream of the batch's. Per Conv, each
 * stream detects and extracts its changes (one host wait each, as alone),
 * then every chunk of all streams' rows runs one cuBLAS GEMM; dense frames
 * of all streams run as one cuDNN call over N images. The extractions' host
 * waits count on the batch, not in the members' host_syncs (a member's
 * count is its own waits: the end of the frame). The CUDA batch has been
 * compiled but has not run on a GPU yet (no device was lent).
 * ------------------------------------------------------------------------- */
typedef struct cbinfer_batch cbinfer_batch_t;

/* Creates n_streams (>= 1) streams as cbinfer_stream_create would, their
 * activations laid out image after image so that the dense convolutions
 * run as one over N images, plus the batch's own convolution primitives.
 * On failure *out is NULL and err (if not NULL) receives the reason.
 * Thread safe with respect to the shared network.
 * Statuses: as cbinfer_stream_create; BAD_PARAM (n_streams outside
 * [1, 256]). */
CBINFER_API cbinfer_status cbinfer_batch_create(const cbinfer_network_t *net, int n_streams,
                                                int width, int height, cbinfer_backend backend,
                                                cbinfer_mode mode, cbinfer_precision precision,
                                                cbinfer_batch_t **out, char *err,
                                                size_t err_len);

/* Frees a batch and its streams; NULL is accepted. */
CBINFER_API void cbinfer_batch_destroy(cbinfer_batch_t *batch);

/* The number of streams (0 for NULL). */
CBINFER_API int cbinfer_batch_size(const cbinfer_batch_t *batch);

/* Stream `index` of the batch, owned by it (NULL when index is out of range
 * or batch is NULL): configure it and read its outputs and statistics with
 * the stream calls. cbinfer_stream_destroy() leaves it alone; it goes with
 * cbinfer_batch_destroy(). */
CBINFER_API cbinfer_stream_t *cbinfer_batch_stream(cbinfer_batch_t *batch, int index);

/* Detailed message of the batch's last failed call ("" if none); it names
 * the stream where one failed. Valid until the next call on the batch. */
CBINFER_API const char *cbinfer_batch_last_error(const cbinfer_batch_t *batch);

/* Sets a tunable on every stream of the batch (cbinfer_stream_set_param);
 * CBINFER_PARAM_THREADS also sets the threads of the batched convolutions.
 * Stops at the first stream that refuses, and says which.
 * Statuses: NULL_ARGUMENT, BAD_PARAM, OUT_OF_MEMORY. */
CBINFER_API cbinfer_status cbinfer_batch_set_param(cbinfer_batch_t *batch, cbinfer_param key,
                                                   double value);

/* Pushes frames[j] (interleaved RGB8 of width x height, row stride in bytes)
 * to stream j, for every j < cbinfer_batch_size(), and runs the network on
 * all of them. Synchronises the device before returning. Each stream's
 * frame statistics are its own, but for total_ms, the whole step's, and its
 * layers' total_ms and step times, which for a batched convolution are the
 * step's time divided evenly among the streams that took part. On failure
 * every stream starts over (its next frame runs dense), as a stream does
 * after a failed push.
 * Statuses: NULL_ARGUMENT (frames or one of them), BAD_FRAME_SIZE,
 * BAD_PARAM (stride, a network that does not take RGB), BACKEND_ERROR,
 * and what a stream's push returns. */
CBINFER_API cbinfer_status cbinfer_batch_push_rgb8(cbinfer_batch_t *batch,
                                                   const uint8_t *const *frames, int width,
                                                   int height, size_t stride_bytes);

/* ---------------------------------------------------------------------------
 * Task decoders: the boxes of a NanoDet detector and the poses of a PoseNet
 * from their network outputs (as cbinfer_stream_read_output_at gives them, or
 * from any other runtime). Pure functions of caller memory: no stream, no
 * device, thread safe. They allocate host scratch for the call and free it
 * before they return; nothing they are given is retained. On failure err (if
 * not NULL) receives the reason, truncated to err_len bytes.
 * ------------------------------------------------------------------------- */

/* A float32 CHW tensor (N = 1) that the caller owns. */
typedef struct cbinfer_tensor_view {
    const float *data;
    int channels, height, width;
} cbinfer_tensor_view;

typedef struct cbinfer_detection {
    float x0, y0, x1, y1; /* input pixels, x right, y down, within [0, width] x [0, height] */
    float score;          /* class probability: the sigmoid of the class logit */
    int class_id;         /* 0-based class of the model (COCO for NanoDet: 0 = person) */
} cbinfer_detection;

/* NanoDet (GFL heads): every head holds class_count class logits, then 4
 * sides (left, top, right, bottom) of B distance bins each, so channels =
 * class_count + 4 * B. A head of width w and height h has the stride s, a
 * power of two, with ceil(input_width / s) = w and ceil(input_height / s) =
 * h. Each cell (x, y) and class c whose sigmoid score exceeds score_threshold
 * gives a box around the cell's centre ((x + 0.5) s, (y + 0.5) s); each
 * side's distance is s times the mean bin of a softmax over its B bins. Boxes
 * are clipped to the input, then each class keeps a box unless it overlaps a
 * better-scoring kept box of its class by an IoU above iou_threshold (greedy
 * NMS; ties go to the earlier head, row, column). The kept boxes of all
 * classes are written to out best first (score, then class), at most
 * capacity of them; *count gets how many were kept. NMS costs the square of
 * a class's candidates: with score_threshold 0 every cell is one.
 * NanoDet's demo settings: class_count 80, score_threshold 0.35 (what its
 * demo shows), iou_threshold 0.5 (its ncnn demo's NMS).
 * out may be NULL when capacity is 0. Statuses: NULL_ARGUMENT, BAD_PARAM
 * (head sizes, counts, thresholds outside [0, 1]), BUFFER_TOO_SMALL (more
 * boxes were kept than capacity: the best capacity are written, *count says
 * how many there are), OUT_OF_MEMORY. */
CBINFER_API cbinfer_status cbinfer_decode_nanodet(const cbinfer_tensor_view *heads, int head_count,
                                                  int input_width, int input_height,
                                                  int class_count, float score_threshold,
                                                  float iou_threshold, cbinfer_detection *out,
                                                  int capacity, int *count, char *err,
                                                  size_t err_len);

/* The 80 classes of COCO detection in NanoDet's order, 0-based: "person",
 * "bicycle", "car", ... "toothbrush"; NULL out of range. The strings are
 * static, for the life of the process. Thread safe. */
#define CBINFER_COCO_CLASSES 80
CBINFER_API const char *cbinfer_coco_class_name(int class_id);

/* Keypoints of a pose, in the order of cbinfer_pose_keypoint_name(). */
#define CBINFER_POSE_KEYPOINTS 17

typedef struct cbinfer_keypoint {
    float x, y;  /* input pixels */
    float score; /* sigmoid of the heatmap at the keypoint's cell */
} cbinfer_keypoint;

typedef struct cbinfer_pose {
    /* Mean over the 17 keypoints of the scores of those that lie farther than
     * nms_radius_px from the same keypoint of every earlier pose. */
    float score;
    cbinfer_keypoint keypoints[CBINFER_POSE_KEYPOINTS];
} cbinfer_pose;

/* "nose", "left_eye", ... "right_ankle" (COCO's order); NULL out of range. */
CBINFER_API const char *cbinfer_pose_keypoint_name(int index);

/* PoseNet's multi-person decoder (Papandreou et al., "PersonLab", 2018, and
 * TensorFlow.js PoseNet): heatmap holds 17 logits, offsets 34 (17 y, then 17
 * x), each displacement tensor 32 (16 y, then 16 x) along the 16 edges of
 * the keypoint tree (nose-eyes-ears, nose-shoulders-elbows-wrists,
 * shoulders-hips-knees-ankles), all on one grid of stride s: a power of two
 * with ceil(input / s) = grid on both axes. A cell whose heatmap score
 * reaches score_threshold and is not beaten in its 3 x 3 window of that
 * keypoint is a root candidate; candidates are taken best first (ties: row,
 * column, keypoint) and skipped while within nms_radius_px input pixels of the
 * same keypoint of a decoded pose; a root grows its pose along the edges,
 * first backward, then forward, each step following the displacement and
 * refining by the offsets twice. At most capacity poses are decoded, in
 * that order, and *count gets their number; weak poses are the caller's to
 * drop by score. TF.js's settings: score_threshold 0.5, nms_radius_px 20.
 * out may be NULL when capacity is 0. Statuses: NULL_ARGUMENT, BAD_PARAM
 * (shapes, a grid that is no power-of-two stride of the input, threshold
 * outside [0, 1], a radius that is negative or not finite, a negative
 * capacity or input size), OUT_OF_MEMORY. */
CBINFER_API cbinfer_status cbinfer_decode_posenet(const cbinfer_tensor_view *heatmap,
                                                  const cbinfer_tensor_view *offsets,
                                                  const cbinfer_tensor_view *displacement_fwd,
                                                  const cbinfer_tensor_view *displacement_bwd,
                                                  int input_width, int input_height,
                                                  float score_threshold, float nms_radius_px,
                                                  cbinfer_pose *out, int capacity, int *count,
                                                  char *err, size_t err_len);

#ifdef __cplusplus
}
#endif

#endif /* CBINFER_H */
