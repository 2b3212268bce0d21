/*
 * The GStreamer element "cbinfer" (libgstcbinfer.so): one instance is one
 * camera, a cbinfer stream over RGB frames. Instances of one process that
 * name the same model file share one loaded network.
 *
 * What it does with the network's outputs depends on the task:
 *   image   an output of 3 x H x W, H x W the frame's: written back into the
 *           frame as RGB8 (value x 255, rounded, clamped to [0, 255]);
 *   detect  NanoDet heads: one GstVideoRegionOfInterestMeta per box, its
 *           type the COCO class name, with a "detection" parameter
 *           (label_id, label, confidence);
 *   pose    PoseNet's four outputs: one region per pose around its
 *           keypoints, type "person", with a "pose" parameter (score, and
 *           x, y, score of every keypoint);
 *   none    the network runs, the frame passes unchanged.
 * task=auto picks one of the first three from the outputs and refuses a
 * model that fits none of them.
 *
 * Properties are read when the element negotiates a frame size (READY to
 * PAUSED, or new caps of another size). threshold, threshold-scale and the
 * decoders' settings also apply while it plays, from the next frame on;
 * threshold not while a thresholds-file is in force (it warns and keeps the
 * file's).
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gst/gst.h>
#include <gst/video/gstvideofilter.h>
#include <gst/video/gstvideometa.h>
#include <gst/video/video.h>

#include "cbinfer.h"

GST_DEBUG_CATEGORY_STATIC(gst_cbinfer_debug);
#define GST_CAT_DEFAULT gst_cbinfer_debug

#define CBI_GST_MAX_OUTPUTS 8
#define CBI_GST_MAX_BOXES 512
#define CBI_GST_MAX_POSES 64
/* NanoDet's demo NMS, TF.js PoseNet's scores and radius (bench/task.c). */
#define CBI_GST_DETECT_SCORE 0.35
#define CBI_GST_POSE_SCORE 0.5
#define CBI_GST_IOU 0.5
#define CBI_GST_NMS_RADIUS_PX 20.0
/* The least pose score the bench counts (bench/task_metrics.h). */
#define CBI_GST_MIN_POSE_SCORE 0.25

typedef enum { TASK_AUTO, TASK_NONE, TASK_IMAGE, TASK_DETECT, TASK_POSE } cbi_gst_task;

/* ------------------------------------------------------ shared networks -- */

/* Loaded networks by canonical path, with the number of instances using each. */
typedef struct shared_net {
    cbinfer_network_t *net;
    int users;
} shared_net;

static GMutex g_nets_lock;
static GHashTable *g_nets; /* canonical path -> shared_net */

static void shared_net_free(gpointer p)
{
    shared_net *s = p;
    cbinfer_network_free(s->net);
    g_free(s);
}

/* The network at path, loaded on first use, into *net; *key gets the
 * canonical path to release it with. The load runs outside the registry's
 * lock, so one camera's load never holds up another's; of two loads of one
 * model racing, the first registered wins and the other is freed. On
 * failure err gets the reason. */
static cbinfer_status shared_net_acquire(const char *path, cbinfer_network_t **net, char **key,
                                         char *err, size_t len)
{
    char *real = realpath(path, NULL);
    if (!real) {
        g_snprintf(err, len, "cannot open model file '%s': %s", path, g_strerror(errno));
        return CBINFER_STATUS_MODEL_IO;
    }
    g_mutex_lock(&g_nets_lock);
    if (!g_nets) g_nets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, shared_net_free);
    shared_net *s = g_hash_table_lookup(g_nets, real);
    if (!s) {
        g_mutex_unlock(&g_nets_lock);
        cbinfer_network_t *loaded = NULL;
        char why[512] = "";
        const cbinfer_status st = cbinfer_network_load(real, &loaded, why, sizeof why);
        if (st != CBINFER_STATUS_SUCCESS) {
            g_snprintf(err, len, "cannot load model '%s': %s", path, why);
            free(real);
            return st;
        }
        g_mutex_lock(&g_nets_lock);
        s = g_hash_table_lookup(g_nets, real);
        if (s) {
            cbinfer_network_free(loaded);
        } else {
            s = g_new0(shared_net, 1);
            s->net = loaded;
            g_hash_table_insert(g_nets, g_strdup(real), s);
        }
    }
    s->users++;
    *net = s->net;
    g_mutex_unlock(&g_nets_lock);
    *key = g_strdup(real);
    free(real);
    return CBINFER_STATUS_SUCCESS;
}

static void shared_net_release(const char *key)
{
    g_mutex_lock(&g_nets_lock);
    shared_net *s = g_nets ? g_hash_table_lookup(g_nets, key) : NULL;
    if (s && --s->users == 0) g_hash_table_remove(g_nets, key);
    g_mutex_unlock(&g_nets_lock);
}

static int shared_net_users(const char *key)
{
    g_mutex_lock(&g_nets_lock);
    shared_net *s = key && g_nets ? g_hash_table_lookup(g_nets, key) : NULL;
    const int n = s ? s->users : 0;
    g_mutex_unlock(&g_nets_lock);
    return n;
}

/* ------------------------------------------------------------- element -- */

#define GST_TYPE_CBINFER (gst_cbinfer_get_type())
G_DECLARE_FINAL_TYPE(GstCbinfer, gst_cbinfer, GST, CBINFER, GstVideoFilter)

struct _GstCbinfer {
    GstVideoFilter parent;
    /* Properties (the object lock guards them). */
    gchar *model_file, *thresholds_file, *break_even_file, *policy;
    gint task, backend, mode, precision, device, threads;
    gdouble threshold, threshold_scale, score_threshold, iou_threshold, nms_radius_px;
    gdouble min_pose_score;
    gboolean threshold_given, thresholds_dirty;
    /* What the running stream was configured with (set in configure_stream
     * under the lock): a later change of a READY-only property waits for
     * the next start. */
    gboolean run_from_file; /* its thresholds came from thresholds-file */
    int run_mode;
    /* Running state (the streaming thread's, set up in start/set_info);
     * net_key is swapped under the lock, as network-users reads it. */
    char *net_key;
    cbinfer_network_t *net;
    cbinfer_stream_t *stream;
    int width, height;
    int run_task; /* the task in use, never TASK_AUTO */
    int n_out;
    float *out[CBI_GST_MAX_OUTPUTS];
    cbinfer_tensor_view view[CBI_GST_MAX_OUTPUTS];
    int pose_out[4]; /* heatmap, offset, displacement_fwd, displacement_bwd */
    cbinfer_detection *boxes;
    cbinfer_pose *poses;
};

G_DEFINE_TYPE(GstCbinfer, gst_cbinfer, GST_TYPE_VIDEO_FILTER)

enum {
    PROP_0,
    PROP_MODEL_FILE,
    PROP_TASK,
    PROP_BACKEND,
    PROP_DEVICE,
    PROP_MODE,
    PROP_POLICY,
    PROP_PRECISION,
    PROP_THRESHOLD,
    PROP_THRESHOLDS_FILE,
    PROP_THRESHOLD_SCALE,
    PROP_BREAK_EVEN_FILE,
    PROP_THREADS,
    PROP_SCORE_THRESHOLD,
    PROP_IOU_THRESHOLD,
    PROP_NMS_RADIUS,
    PROP_MIN_POSE_SCORE,
    PROP_NETWORK_USERS
};

static GType enum_type(const char *name, const GEnumValue *values)
{
    GType t = g_type_from_name(name);
    return t ? t : g_enum_register_static(name, values);
}

static GType task_type(void)
{
    static const GEnumValue v[] = {
        {TASK_AUTO, "From the model's outputs: image, detect or pose", "auto"},
        {TASK_NONE, "Run the network, pass the frame unchanged", "none"},
        {TASK_IMAGE, "Write the 3 x H x W output back into the frame", "image"},
        {TASK_DETECT, "NanoDet boxes as GstVideoRegionOfInterestMeta", "detect"},
        {TASK_POSE, "PoseNet poses as GstVideoRegionOfInterestMeta", "pose"},
        {0, NULL, NULL}};
    return enum_type("GstCbinferTask", v);
}

static GType backend_type(void)
{
    static const GEnumValue v[] = {{CBINFER_BACKEND_CPU, "CPU (oneDNN)", "cpu"},
                                   {CBINFER_BACKEND_CUDA, "CUDA (cuDNN, cuBLAS)", "cuda"},
                                   {0, NULL, NULL}};
    return enum_type("GstCbinferBackend", v);
}

static GType mode_type(void)
{
    static const GEnumValue v[] = {
        {CBINFER_MODE_DENSE, "Dense: every layer in full", "dense"},
        {CBINFER_MODE_CBINFER, "Change-based, under the policy property", "cbinfer"},
        {0, NULL, NULL}};
    return enum_type("GstCbinferMode", v);
}

static GType precision_type(void)
{
    static const GEnumValue v[] = {{CBINFER_PRECISION_FP32, "float32", "fp32"},
                                   {CBINFER_PRECISION_TF32, "TF32 GEMMs (CUDA)", "tf32"},
                                   {CBINFER_PRECISION_FP16, "float16 (CUDA)", "fp16"},
                                   {0, NULL, NULL}};
    return enum_type("GstCbinferPrecision", v);
}

static void gst_cbinfer_set_property(GObject *obj, guint id, const GValue *value,
                                     GParamSpec *pspec)
{
    GstCbinfer *self = GST_CBINFER(obj);
    GST_OBJECT_LOCK(self);
    switch (id) {
    case PROP_MODEL_FILE:
        g_free(self->model_file);
        self->model_file = g_value_dup_string(value);
        break;
    case PROP_TASK: self->task = g_value_get_enum(value); break;
    case PROP_BACKEND: self->backend = g_value_get_enum(value); break;
    case PROP_DEVICE: self->device = g_value_get_int(value); break;
    case PROP_MODE: self->mode = g_value_get_enum(value); break;
    case PROP_POLICY:
        g_free(self->policy);
        self->policy = g_value_dup_string(value);
        break;
    case PROP_PRECISION: self->precision = g_value_get_enum(value); break;
    case PROP_THRESHOLD:
        if (self->stream && self->run_from_file) {
            /* Replacing the file's per-layer thresholds behind the user's
             * back would be silently wrong: the file stays in force. */
            GST_WARNING_OBJECT(self, "threshold ignored: thresholds-file is in force (use "
                                     "threshold-scale, or restart without the file)");
            break;
        }
        self->threshold = g_value_get_double(value);
        self->threshold_given = TRUE;
        self->thresholds_dirty = TRUE;
        break;
    case PROP_THRESHOLDS_FILE:
        g_free(self->thresholds_file);
        self->thresholds_file = g_value_dup_string(value);
        break;
    case PROP_THRESHOLD_SCALE:
        self->threshold_scale = g_value_get_double(value);
        self->thresholds_dirty = TRUE;
        break;
    case PROP_BREAK_EVEN_FILE:
        g_free(self->break_even_file);
        self->break_even_file = g_value_dup_string(value);
        break;
    case PROP_THREADS: self->threads = g_value_get_int(value); break;
    case PROP_SCORE_THRESHOLD: self->score_threshold = g_value_get_double(value); break;
    case PROP_IOU_THRESHOLD: self->iou_threshold = g_value_get_double(value); break;
    case PROP_NMS_RADIUS: self->nms_radius_px = g_value_get_double(value); break;
    case PROP_MIN_POSE_SCORE: self->min_pose_score = g_value_get_double(value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, pspec); break;
    }
    GST_OBJECT_UNLOCK(self);
}

static void gst_cbinfer_get_property(GObject *obj, guint id, GValue *value, GParamSpec *pspec)
{
    GstCbinfer *self = GST_CBINFER(obj);
    if (id == PROP_NETWORK_USERS) { /* the registry's lock, never under the object's */
        GST_OBJECT_LOCK(self);
        gchar *key = g_strdup(self->net_key);
        GST_OBJECT_UNLOCK(self);
        g_value_set_int(value, shared_net_users(key));
        g_free(key);
        return;
    }
    GST_OBJECT_LOCK(self);
    switch (id) {
    case PROP_MODEL_FILE: g_value_set_string(value, self->model_file); break;
    case PROP_TASK: g_value_set_enum(value, self->task); break;
    case PROP_BACKEND: g_value_set_enum(value, self->backend); break;
    case PROP_DEVICE: g_value_set_int(value, self->device); break;
    case PROP_MODE: g_value_set_enum(value, self->mode); break;
    case PROP_POLICY: g_value_set_string(value, self->policy); break;
    case PROP_PRECISION: g_value_set_enum(value, self->precision); break;
    case PROP_THRESHOLD: g_value_set_double(value, self->threshold); break;
    case PROP_THRESHOLDS_FILE: g_value_set_string(value, self->thresholds_file); break;
    case PROP_THRESHOLD_SCALE: g_value_set_double(value, self->threshold_scale); break;
    case PROP_BREAK_EVEN_FILE: g_value_set_string(value, self->break_even_file); break;
    case PROP_THREADS: g_value_set_int(value, self->threads); break;
    case PROP_SCORE_THRESHOLD: g_value_set_double(value, self->score_threshold); break;
    case PROP_IOU_THRESHOLD: g_value_set_double(value, self->iou_threshold); break;
    case PROP_NMS_RADIUS: g_value_set_double(value, self->nms_radius_px); break;
    case PROP_MIN_POSE_SCORE: g_value_set_double(value, self->min_pose_score); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, pspec); break;
    }
    GST_OBJECT_UNLOCK(self);
}

static void free_stream(GstCbinfer *self)
{
    cbinfer_stream_destroy(self->stream);
    self->stream = NULL;
    for (int k = 0; k < CBI_GST_MAX_OUTPUTS; ++k) {
        g_free(self->out[k]);
        self->out[k] = NULL;
    }
    self->n_out = 0;
    g_free(self->boxes);
    g_free(self->poses);
    self->boxes = NULL;
    self->poses = NULL;
}

/* Frees the stream and lets go of the network. */
static void release(GstCbinfer *self)
{
    free_stream(self);
    GST_OBJECT_LOCK(self);
    gchar *key = self->net_key;
    self->net_key = NULL;
    GST_OBJECT_UNLOCK(self);
    if (key) shared_net_release(key);
    g_free(key);
    self->net = NULL;
}

/* Posts an element error for a cbinfer status: the GStreamer error domain
 * and code that fit it, "cbinfer: <what>" as the message and the status and
 * detail (the library's message) as the debug text. */
#define POST_ERROR(self, st, what, ...)                                                       \
    post_error((self), (st), (what), g_strdup_printf(__VA_ARGS__), __FILE__, GST_FUNCTION,   \
               __LINE__)

static void post_error(GstCbinfer *self, cbinfer_status st, const char *what, gchar *detail,
                       const char *file, const char *func, int line)
{
    GQuark domain = GST_LIBRARY_ERROR;
    gint code = GST_LIBRARY_ERROR_FAILED;
    switch (st) {
    case CBINFER_STATUS_BAD_PARAM:
    case CBINFER_STATUS_UNKNOWN_NODE: code = GST_LIBRARY_ERROR_SETTINGS; break;
    case CBINFER_STATUS_BACKEND_UNAVAILABLE: code = GST_LIBRARY_ERROR_INIT; break;
    case CBINFER_STATUS_BAD_FRAME_SIZE:
        domain = GST_STREAM_ERROR;
        code = GST_STREAM_ERROR_FORMAT;
        break;
    case CBINFER_STATUS_FILE_IO:
    case CBINFER_STATUS_MODEL_IO:
        domain = GST_RESOURCE_ERROR;
        code = GST_RESOURCE_ERROR_OPEN_READ;
        break;
    case CBINFER_STATUS_MODEL_MALFORMED:
    case CBINFER_STATUS_MODEL_UNSUPPORTED_OP:
    case CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR:
    case CBINFER_STATUS_MODEL_WEIGHT_MISMATCH:
    case CBINFER_STATUS_MODEL_INVALID_GRAPH:
        domain = GST_STREAM_ERROR;
        code = GST_STREAM_ERROR_DECODE;
        break;
    case CBINFER_STATUS_OUT_OF_MEMORY:
        domain = GST_RESOURCE_ERROR;
        code = GST_RESOURCE_ERROR_NO_SPACE_LEFT;
        break;
    default: break;
    }
    gchar *debug = g_strdup_printf("%s: %s", cbinfer_status_string(st), detail);
    g_free(detail);
    gst_element_message_full(GST_ELEMENT(self), GST_MESSAGE_ERROR, domain, code,
                             g_strdup_printf("cbinfer: %s", what), debug, file, func, line);
}

/* The stream's last error as an element error. */
#define STREAM_ERROR(self, st, what)                                                          \
    POST_ERROR(self, st, what, "%s", cbinfer_stream_last_error((self)->stream))

static gboolean gst_cbinfer_start(GstBaseTransform *bt)
{
    GstCbinfer *self = GST_CBINFER(bt);
    GST_OBJECT_LOCK(self);
    gchar *path = g_strdup(self->model_file);
    const gboolean both =
        self->threshold_given && self->thresholds_file && *self->thresholds_file;
    GST_OBJECT_UNLOCK(self);
    if (!path || !*path) {
        g_free(path);
        POST_ERROR(self, CBINFER_STATUS_MODEL_IO, "no model file",
                   "set the model-file property to an ONNX model");
        return FALSE;
    }
    if (both) {
        g_free(path);
        POST_ERROR(self, CBINFER_STATUS_BAD_PARAM, "conflicting thresholds",
                   "give threshold or thresholds-file, not both");
        return FALSE;
    }
    char err[768] = "";
    gchar *key = NULL;
    cbinfer_network_t *net = NULL;
    const cbinfer_status st = shared_net_acquire(path, &net, &key, err, sizeof err);
    g_free(path);
    if (st != CBINFER_STATUS_SUCCESS) {
        POST_ERROR(self, st, "cannot load the model", "%s", err);
        return FALSE;
    }
    self->net = net;
    GST_OBJECT_LOCK(self);
    self->net_key = key;
    GST_OBJECT_UNLOCK(self);
    return TRUE;
}

static gboolean gst_cbinfer_stop(GstBaseTransform *bt)
{
    release(GST_CBINFER(bt));
    return TRUE;
}

static int find_output(const cbinfer_network_t *net, int n, const char *name)
{
    for (int o = 0; o < n; ++o) {
        const char *got = cbinfer_network_output_name(net, o);
        if (got && strcmp(got, name) == 0) return o;
    }
    return -1;
}

/* The task of the stream's outputs: what task=auto runs, and what the other
 * values are checked against. */
static int output_task(GstCbinfer *self, int width, int height)
{
    const cbinfer_tensor_view *v = self->view;
    if (self->n_out == 1 && v[0].channels == 3 && v[0].width == width && v[0].height == height)
        return TASK_IMAGE;
    if (self->n_out == 4) {
        static const int channels[4] = {CBINFER_POSE_KEYPOINTS, 2 * CBINFER_POSE_KEYPOINTS, 32, 32};
        int ok = 1;
        for (int i = 0; i < 4; ++i) ok &= v[self->pose_out[i]].channels == channels[i];
        if (ok) return TASK_POSE;
    }
    int heads = self->n_out > 0;
    for (int k = 0; k < self->n_out; ++k)
        heads &= v[k].channels > CBINFER_COCO_CLASSES &&
                 (v[k].channels - CBINFER_COCO_CLASSES) % 4 == 0;
    return heads ? TASK_DETECT : TASK_NONE;
}

static const char *task_name(int t)
{
    GEnumClass *c = g_type_class_ref(task_type());
    GEnumValue *v = g_enum_get_value(c, t);
    const char *name = v ? v->value_nick : "?";
    g_type_class_unref(c);
    return name;
}

/* Applies threshold (unless the thresholds came from a file) and
 * threshold-scale; the caller holds no lock. */
static gboolean apply_thresholds(GstCbinfer *self)
{
    GST_OBJECT_LOCK(self);
    const gboolean from_file = self->run_from_file;
    const double t = self->threshold, scale = self->threshold_scale;
    self->thresholds_dirty = FALSE;
    GST_OBJECT_UNLOCK(self);
    cbinfer_status st = CBINFER_STATUS_SUCCESS;
    if (!from_file) st = cbinfer_stream_set_threshold_all(self->stream, (float)t);
    if (st == CBINFER_STATUS_SUCCESS)
        st = cbinfer_stream_set_param(self->stream, CBINFER_PARAM_THRESHOLD_SCALE, scale);
    if (st != CBINFER_STATUS_SUCCESS) {
        STREAM_ERROR(self, st, "threshold");
        return FALSE;
    }
    return TRUE;
}

/* Checks the outputs against the task's decoder on zeroed maps with a score
 * threshold of 1 (no candidates: nothing is decoded), so that a model of the
 * wrong layout fails at negotiation, not at its first frame. */
static gboolean check_decoder(GstCbinfer *self, int width, int height)
{
    char err[512] = "";
    int n = 0;
    cbinfer_status st = CBINFER_STATUS_SUCCESS;
    if (self->run_task == TASK_DETECT)
        st = cbinfer_decode_nanodet(self->view, self->n_out, width, height, CBINFER_COCO_CLASSES,
                                    1.0f, 0.5f, NULL, 0, &n, err, sizeof err);
    else if (self->run_task == TASK_POSE)
        st = cbinfer_decode_posenet(&self->view[self->pose_out[0]], &self->view[self->pose_out[1]],
                                    &self->view[self->pose_out[2]], &self->view[self->pose_out[3]],
                                    width, height, 1.0f, 1.0f, NULL, 0, &n, err, sizeof err);
    if (st != CBINFER_STATUS_SUCCESS) {
        POST_ERROR(self, st, "the outputs do not fit the task",
                   "task %s: %s", task_name(self->run_task), err);
        return FALSE;
    }
    return TRUE;
}

/* The outputs' buffers and views, and which output is which PoseNet map. */
static gboolean alloc_outputs(GstCbinfer *self)
{
    self->n_out = cbinfer_network_output_count(self->net);
    if (self->n_out < 1 || self->n_out > CBI_GST_MAX_OUTPUTS) {
        POST_ERROR(self, CBINFER_STATUS_BAD_PARAM, "unsupported model",
                   "%d outputs; the element takes 1 to %d", self->n_out, CBI_GST_MAX_OUTPUTS);
        return FALSE;
    }
    for (int k = 0; k < self->n_out; ++k) {
        cbinfer_tensor_view *v = &self->view[k];
        const cbinfer_status st =
            cbinfer_stream_output_dims_at(self->stream, k, &v->channels, &v->height, &v->width);
        if (st != CBINFER_STATUS_SUCCESS) {
            STREAM_ERROR(self, st, "output dims");
            return FALSE;
        }
        self->out[k] = g_try_malloc0((size_t)v->channels * v->height * v->width * sizeof(float));
        if (!self->out[k]) {
            POST_ERROR(self, CBINFER_STATUS_OUT_OF_MEMORY, "out of memory",
                       "output %d of %d x %d x %d", k, v->channels, v->height, v->width);
            return FALSE;
        }
        v->data = self->out[k];
    }
    static const char *const pose_names[4] = {"heatmap", "offset", "displacement_fwd",
                                              "displacement_bwd"};
    int by_name = self->n_out == 4;
    for (int i = 0; i < 4 && by_name; ++i)
        by_name &= (self->pose_out[i] = find_output(self->net, self->n_out, pose_names[i])) >= 0;
    for (int i = 0; i < 4 && !by_name; ++i) self->pose_out[i] = i < self->n_out ? i : 0;
    self->boxes = g_try_new(cbinfer_detection, CBI_GST_MAX_BOXES);
    self->poses = g_try_new(cbinfer_pose, CBI_GST_MAX_POSES);
    if (!self->boxes || !self->poses) {
        POST_ERROR(self, CBINFER_STATUS_OUT_OF_MEMORY, "out of memory", "decoder results");
        return FALSE;
    }
    return TRUE;
}

/* Settles the task from the outputs: auto's pick, or the given one checked. */
static gboolean settle_task(GstCbinfer *self, int task, int width, int height)
{
    const int found = output_task(self, width, height);
    if (task == TASK_AUTO && found == TASK_NONE) {
        POST_ERROR(self, CBINFER_STATUS_BAD_PARAM, "cannot tell the model's task",
                   "its %d output(s) are neither an RGB image of the frame's size, nor NanoDet "
                   "heads, nor PoseNet's four maps; set task=none to run it without using the "
                   "outputs",
                   self->n_out);
        return FALSE;
    }
    if (task == TASK_IMAGE && found != TASK_IMAGE) {
        POST_ERROR(self, CBINFER_STATUS_BAD_PARAM, "task=image does not fit the model",
                   "it needs one output of 3 x %d x %d; output 0 is %d x %d x %d", height,
                   width, self->view[0].channels, self->view[0].height, self->view[0].width);
        return FALSE;
    }
    self->run_task = task == TASK_AUTO ? found : task;
    GST_INFO_OBJECT(self, "%dx%d, task %s, %d output(s)", width, height,
                    task_name(self->run_task), self->n_out);
    return check_decoder(self, width, height);
}

static gboolean configure_stream(GstCbinfer *self, int width, int height)
{
    GST_OBJECT_LOCK(self);
    const int backend = self->backend, mode = self->mode, precision = self->precision;
    const int threads = self->threads, task = self->task;
    cbinfer_stream_options opts;
    cbinfer_stream_options_init(&opts);
    opts.device = self->device;
    gchar *policy = g_strdup(self->policy);
    gchar *thr = g_strdup(self->thresholds_file), *be = g_strdup(self->break_even_file);
    self->run_mode = mode;
    self->run_from_file = thr && *thr && mode != CBINFER_MODE_DENSE;
    GST_OBJECT_UNLOCK(self);

    gboolean ok = FALSE;
    char err[512] = "";
    cbinfer_status st = cbinfer_stream_create_ex(self->net, width, height,
                                                 (cbinfer_backend)backend, (cbinfer_mode)mode,
                                                 (cbinfer_precision)precision, &opts,
                                                 &self->stream, err, sizeof err);
    if (st != CBINFER_STATUS_SUCCESS) {
        POST_ERROR(self, st, "cannot create a stream", "%dx%d, backend %s, precision %s: %s",
                   width, height, backend == CBINFER_BACKEND_CUDA ? "cuda" : "cpu",
                   precision == CBINFER_PRECISION_FP32   ? "fp32"
                   : precision == CBINFER_PRECISION_TF32 ? "tf32"
                                                         : "fp16",
                   err);
        goto done;
    }
    if (mode == CBINFER_MODE_DENSE && policy && strcmp(policy, "cbinfer") != 0)
        GST_WARNING_OBJECT(self, "policy=%s has no effect with mode=dense", policy);
    const char *what = "threads";
    if (threads) st = cbinfer_stream_set_param(self->stream, CBINFER_PARAM_THREADS, threads);
    if (st == CBINFER_STATUS_SUCCESS && mode != CBINFER_MODE_DENSE && policy && *policy) {
        what = "policy";
        st = cbinfer_stream_set_policy(self->stream, NULL, policy);
    }
    if (st == CBINFER_STATUS_SUCCESS && thr && *thr) {
        what = "thresholds-file";
        st = cbinfer_stream_load_thresholds(self->stream, thr);
    }
    if (st == CBINFER_STATUS_SUCCESS && be && *be) {
        what = "break-even-file";
        st = cbinfer_stream_load_break_even(self->stream, be);
    }
    if (st != CBINFER_STATUS_SUCCESS) {
        STREAM_ERROR(self, st, what);
        goto done;
    }
    if (mode != CBINFER_MODE_DENSE && !apply_thresholds(self)) goto done;
    if (!alloc_outputs(self) || !settle_task(self, task, width, height)) goto done;
    self->width = width;
    self->height = height;
    ok = TRUE;
done:
    g_free(policy);
    g_free(thr);
    g_free(be);
    if (!ok) free_stream(self);
    return ok;
}

static gboolean gst_cbinfer_set_info(GstVideoFilter *vf, GstCaps *incaps, GstVideoInfo *in,
                                     GstCaps *outcaps, GstVideoInfo *out)
{
    (void)incaps;
    (void)outcaps;
    (void)out;
    GstCbinfer *self = GST_CBINFER(vf);
    const int w = GST_VIDEO_INFO_WIDTH(in), h = GST_VIDEO_INFO_HEIGHT(in);
    /* New caps of the same size (framerate, colorimetry) keep the stream and
     * its change-based state. */
    if (self->stream && w == self->width && h == self->height) return TRUE;
    free_stream(self);
    return configure_stream(self, w, h);
}

/* The image output, 3 planes of w x h, into the RGB8 frame. */
static void write_rgb(const float *chw, int w, int h, guint8 *dst, int stride)
{
    const size_t plane = (size_t)w * h;
    for (int y = 0; y < h; ++y) {
        guint8 *row = dst + (size_t)y * stride;
        for (int x = 0; x < w; ++x)
            for (int c = 0; c < 3; ++c) {
                float t = chw[c * plane + (size_t)y * w + x] * 255.0f;
                if (!(t > 0.0f)) t = 0.0f; /* NaN included */
                if (t > 255.0f) t = 255.0f;
                row[3 * x + c] = (guint8)floorf(t + 0.5f);
            }
    }
}

static void add_detections(GstCbinfer *self, GstBuffer *buf, int w, int h, int n)
{
    for (int i = 0; i < n; ++i) {
        const cbinfer_detection *d = &self->boxes[i];
        const char *label = cbinfer_coco_class_name(d->class_id);
        /* The decoder clips to the frame; the region holds the box's pixels. */
        const int x0 = CLAMP((int)floorf(d->x0), 0, w), y0 = CLAMP((int)floorf(d->y0), 0, h);
        const int x1 = CLAMP((int)ceilf(d->x1), x0, w), y1 = CLAMP((int)ceilf(d->y1), y0, h);
        GstVideoRegionOfInterestMeta *m = gst_buffer_add_video_region_of_interest_meta(
            buf, label ? label : "object", x0, y0, x1 - x0, y1 - y0);
        GST_LOG_OBJECT(self, "%s %.3f at %u,%u %ux%u", label ? label : "object", d->score, m->x,
                       m->y, m->w, m->h);
        gst_video_region_of_interest_meta_add_param(
            m, gst_structure_new("detection", "label_id", G_TYPE_UINT, (guint)d->class_id,
                                 "label", G_TYPE_STRING, label ? label : "object",
                                 "confidence", G_TYPE_DOUBLE, (double)d->score, NULL));
    }
}

static void add_poses(GstCbinfer *self, GstBuffer *buf, const cbinfer_pose *poses, int n, int w,
                      int h, double min_score)
{
    for (int i = 0; i < n; ++i) {
        const cbinfer_pose *p = &poses[i];
        if (p->score < min_score) continue;
        float x0 = (float)w, y0 = (float)h, x1 = 0.f, y1 = 0.f;
        GstStructure *s = gst_structure_new("pose", "score", G_TYPE_DOUBLE, (double)p->score,
                                            NULL);
        for (int k = 0; k < CBINFER_POSE_KEYPOINTS; ++k) {
            const cbinfer_keypoint *kp = &p->keypoints[k];
            const char *name = cbinfer_pose_keypoint_name(k);
            char f[64];
            g_snprintf(f, sizeof f, "%s-x", name);
            gst_structure_set(s, f, G_TYPE_DOUBLE, (double)kp->x, NULL);
            g_snprintf(f, sizeof f, "%s-y", name);
            gst_structure_set(s, f, G_TYPE_DOUBLE, (double)kp->y, NULL);
            g_snprintf(f, sizeof f, "%s-score", name);
            gst_structure_set(s, f, G_TYPE_DOUBLE, (double)kp->score, NULL);
            x0 = fminf(x0, kp->x);
            y0 = fminf(y0, kp->y);
            x1 = fmaxf(x1, kp->x);
            y1 = fmaxf(y1, kp->y);
        }
        const int ix0 = CLAMP((int)floorf(x0), 0, w), iy0 = CLAMP((int)floorf(y0), 0, h);
        const int ix1 = CLAMP((int)ceilf(x1), ix0, w), iy1 = CLAMP((int)ceilf(y1), iy0, h);
        GstVideoRegionOfInterestMeta *m = gst_buffer_add_video_region_of_interest_meta(
            buf, "person", ix0, iy0, ix1 - ix0, iy1 - iy0);
        gst_video_region_of_interest_meta_add_param(m, s);
        GST_LOG_OBJECT(self, "pose %.3f at %d,%d %dx%d", p->score, ix0, iy0, ix1 - ix0, iy1 - iy0);
    }
}

static GstFlowReturn gst_cbinfer_transform_frame_ip(GstVideoFilter *vf, GstVideoFrame *frame)
{
    GstCbinfer *self = GST_CBINFER(vf);
    if (!self->stream) {
        GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("cbinfer: no stream"),
                          ("a frame came before the caps, or after they failed"));
        return GST_FLOW_NOT_NEGOTIATED;
    }
    GST_OBJECT_LOCK(self);
    const gboolean dirty = self->thresholds_dirty;
    const double score = self->score_threshold, iou = self->iou_threshold;
    const double radius = self->nms_radius_px, min_pose = self->min_pose_score;
    const int mode = self->run_mode;
    GST_OBJECT_UNLOCK(self);
    if (dirty && mode != CBINFER_MODE_DENSE && !apply_thresholds(self)) return GST_FLOW_ERROR;

    const int w = GST_VIDEO_FRAME_WIDTH(frame), h = GST_VIDEO_FRAME_HEIGHT(frame);
    guint8 *data = GST_VIDEO_FRAME_PLANE_DATA(frame, 0);
    const int stride = GST_VIDEO_FRAME_PLANE_STRIDE(frame, 0);
    cbinfer_status st = cbinfer_stream_push_rgb8(self->stream, data, w, h, (size_t)stride);
    if (st != CBINFER_STATUS_SUCCESS) {
        STREAM_ERROR(self, st, "push");
        return GST_FLOW_ERROR;
    }
    if (self->run_task == TASK_NONE) return GST_FLOW_OK;
    for (int k = 0; k < self->n_out && st == CBINFER_STATUS_SUCCESS; ++k) {
        const cbinfer_tensor_view *v = &self->view[k];
        st = cbinfer_stream_read_output_at(self->stream, k, self->out[k],
                                           (size_t)v->channels * v->height * v->width);
    }
    if (st != CBINFER_STATUS_SUCCESS) {
        STREAM_ERROR(self, st, "read output");
        return GST_FLOW_ERROR;
    }
    char err[512] = "";
    int n = 0;
    switch (self->run_task) {
    case TASK_IMAGE:
        g_assert(self->view[0].channels == 3 && self->view[0].width == w &&
                 self->view[0].height == h); /* settle_task saw to it */
        write_rgb(self->out[0], w, h, data, stride);
        break;
    case TASK_DETECT:
        st = cbinfer_decode_nanodet(self->view, self->n_out, w, h, CBINFER_COCO_CLASSES,
                                    score < 0 ? (float)CBI_GST_DETECT_SCORE : (float)score,
                                    (float)iou, self->boxes, CBI_GST_MAX_BOXES, &n, err,
                                    sizeof err);
        if (st == CBINFER_STATUS_BUFFER_TOO_SMALL) {
            GST_WARNING_OBJECT(self, "%d boxes, keeping the best %d", n, CBI_GST_MAX_BOXES);
            n = CBI_GST_MAX_BOXES;
            st = CBINFER_STATUS_SUCCESS;
        }
        if (st == CBINFER_STATUS_SUCCESS) add_detections(self, frame->buffer, w, h, n);
        break;
    case TASK_POSE:
        st = cbinfer_decode_posenet(&self->view[self->pose_out[0]], &self->view[self->pose_out[1]],
                                    &self->view[self->pose_out[2]], &self->view[self->pose_out[3]],
                                    w, h, score < 0 ? (float)CBI_GST_POSE_SCORE : (float)score,
                                    (float)radius, self->poses, CBI_GST_MAX_POSES, &n, err,
                                    sizeof err);
        if (st == CBINFER_STATUS_SUCCESS) add_poses(self, frame->buffer, self->poses, n, w, h, min_pose);
        break;
    default: break;
    }
    if (st != CBINFER_STATUS_SUCCESS) {
        POST_ERROR(self, st, "cannot decode the outputs", "%s", err);
        return GST_FLOW_ERROR;
    }
    return GST_FLOW_OK;
}

static void gst_cbinfer_finalize(GObject *obj)
{
    GstCbinfer *self = GST_CBINFER(obj);
    release(self);
    g_free(self->model_file);
    g_free(self->thresholds_file);
    g_free(self->break_even_file);
    g_free(self->policy);
    G_OBJECT_CLASS(gst_cbinfer_parent_class)->finalize(obj);
}

static void gst_cbinfer_init(GstCbinfer *self)
{
    self->task = TASK_AUTO;
    self->backend = CBINFER_BACKEND_CPU;
    self->device = CBINFER_DEVICE_CURRENT;
    self->mode = CBINFER_MODE_CBINFER;
    self->precision = CBINFER_PRECISION_FP32;
    self->policy = g_strdup("cbinfer");
    self->threshold_scale = 1.0;
    self->score_threshold = -1.0;
    self->iou_threshold = CBI_GST_IOU;
    self->nms_radius_px = CBI_GST_NMS_RADIUS_PX;
    self->min_pose_score = CBI_GST_MIN_POSE_SCORE;
    /* A camera's analytics see every frame unless the user asks for QoS. */
    gst_base_transform_set_qos_enabled(GST_BASE_TRANSFORM(self), FALSE);
}

static void gst_cbinfer_class_init(GstCbinferClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    GstElementClass *ec = GST_ELEMENT_CLASS(klass);
    GstBaseTransformClass *bc = GST_BASE_TRANSFORM_CLASS(klass);
    GstVideoFilterClass *vc = GST_VIDEO_FILTER_CLASS(klass);
    oc->set_property = gst_cbinfer_set_property;
    oc->get_property = gst_cbinfer_get_property;
    oc->finalize = gst_cbinfer_finalize;

    const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;
    const GParamFlags live =
        G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING;
    g_object_class_install_property(
        oc, PROP_MODEL_FILE,
        g_param_spec_string("model-file", "Model file", "The ONNX model (required)", NULL, rw));
    g_object_class_install_property(
        oc, PROP_TASK, g_param_spec_enum("task", "Task", "What the outputs are used for",
                                         task_type(), TASK_AUTO, rw));
    g_object_class_install_property(
        oc, PROP_BACKEND, g_param_spec_enum("backend", "Backend", "Where the network runs",
                                            backend_type(), CBINFER_BACKEND_CPU, rw));
    g_object_class_install_property(
        oc, PROP_DEVICE,
        g_param_spec_int("device", "Device",
                         "CUDA device ordinal (backend=cuda); -1: the thread's current device",
                         -1, 1024, -1, rw));
    g_object_class_install_property(
        oc, PROP_MODE, g_param_spec_enum("mode", "Mode", "Dense or change-based", mode_type(),
                                         CBINFER_MODE_CBINFER, rw));
    g_object_class_install_property(
        oc, PROP_POLICY,
        g_param_spec_string("policy", "Policy",
                            "Change policy of every convolution (mode=cbinfer): cbinfer, "
                            "cbinfer-ff, evnet[:...], skipconv[:...], sigmadelta[:...]",
                            "cbinfer", rw));
    g_object_class_install_property(
        oc, PROP_PRECISION, g_param_spec_enum("precision", "Precision", "Arithmetic precision",
                                              precision_type(), CBINFER_PRECISION_FP32, rw));
    g_object_class_install_property(
        oc, PROP_THRESHOLD,
        g_param_spec_double("threshold", "Threshold",
                            "Change threshold of every convolution (0: exact, as dense); not "
                            "with thresholds-file",
                            0.0, 1e6, 0.0, live));
    g_object_class_install_property(
        oc, PROP_THRESHOLDS_FILE,
        g_param_spec_string("thresholds-file", "Thresholds file",
                            "Per-layer thresholds (cbinfer-tune's .thr, as bench/thresholds/)",
                            NULL, rw));
    g_object_class_install_property(
        oc, PROP_THRESHOLD_SCALE,
        g_param_spec_double("threshold-scale", "Threshold scale",
                            "Multiplies every threshold", 0.0, 1e6, 1.0, live));
    g_object_class_install_property(
        oc, PROP_BREAK_EVEN_FILE,
        g_param_spec_string("break-even-file", "Break-even file",
                            "Per-layer dense-fallback shares (cbinfer-bench --calibrate)", NULL,
                            rw));
    g_object_class_install_property(
        oc, PROP_THREADS,
        g_param_spec_int("threads", "Threads", "CPU threads of this camera (0: every core)", 0,
                         4096, 0, rw));
    g_object_class_install_property(
        oc, PROP_SCORE_THRESHOLD,
        g_param_spec_double("score-threshold", "Score threshold",
                            "detect: the least box score; pose: the least root score; -1: the "
                            "model's demo value (0.35, 0.5)",
                            -1.0, 1.0, -1.0, live));
    g_object_class_install_property(
        oc, PROP_IOU_THRESHOLD,
        g_param_spec_double("iou-threshold", "IoU threshold", "detect: the NMS overlap", 0.0,
                            1.0, CBI_GST_IOU, live));
    g_object_class_install_property(
        oc, PROP_NMS_RADIUS,
        g_param_spec_double("nms-radius", "NMS radius", "pose: keypoint NMS radius in pixels",
                            0.0, 1e4, CBI_GST_NMS_RADIUS_PX, live));
    g_object_class_install_property(
        oc, PROP_MIN_POSE_SCORE,
        g_param_spec_double("min-pose-score", "Least pose score",
                            "pose: poses that score less get no region", 0.0, 1.0,
                            CBI_GST_MIN_POSE_SCORE, live));
    g_object_class_install_property(
        oc, PROP_NETWORK_USERS,
        g_param_spec_int("network-users", "Network users",
                         "Instances in this process that share this one's loaded network", 0,
                         G_MAXINT, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

    gst_element_class_set_static_metadata(
        ec, "cbinfer", "Filter/Analyzer/Video",
        "Change-based CNN inference on video from static cameras: recomputes only what "
        "changed between frames",
        "cbinfer developers");
    GstCaps *caps = gst_caps_from_string(GST_VIDEO_CAPS_MAKE("RGB"));
    gst_element_class_add_pad_template(
        ec, gst_pad_template_new("sink", GST_PAD_SINK, GST_PAD_ALWAYS, caps));
    gst_element_class_add_pad_template(
        ec, gst_pad_template_new("src", GST_PAD_SRC, GST_PAD_ALWAYS, caps));
    gst_caps_unref(caps);

    bc->start = gst_cbinfer_start;
    bc->stop = gst_cbinfer_stop;
    vc->set_info = gst_cbinfer_set_info;
    vc->transform_frame_ip = gst_cbinfer_transform_frame_ip;
    gst_type_mark_as_plugin_api(task_type(), 0);
    gst_type_mark_as_plugin_api(backend_type(), 0);
    gst_type_mark_as_plugin_api(mode_type(), 0);
    gst_type_mark_as_plugin_api(precision_type(), 0);
}

static gboolean plugin_init(GstPlugin *plugin)
{
    GST_DEBUG_CATEGORY_INIT(gst_cbinfer_debug, "cbinfer", 0, "cbinfer element");
    return gst_element_register(plugin, "cbinfer", GST_RANK_NONE, GST_TYPE_CBINFER);
}

/* The project states no licence yet: GStreamer's "unknown". */
#define PACKAGE "cbinfer"
GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, cbinfer,
                  "Change-based CNN inference (cbinfer)", plugin_init, CBINFER_GST_VERSION,
                  "unknown", "cbinfer", "cbinfer")
