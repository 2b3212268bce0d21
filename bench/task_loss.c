/* Task-space losses of cbinfer-tune; see task_loss.h. */
#include "task_loss.h"

#include <math.h>
#include <string.h>

static double sigmoid(double v) { return 1.0 / (1.0 + exp(-v)); }

/* Values a and b of the same output: 1 when both are finite, 0 when both
 * are the same non-finite value (NaN and NaN, or one infinity: the term is
 * left out), -1 otherwise. */
static int finite_pair(float a, float b)
{
    if (isfinite(a) && isfinite(b)) return 1;
    return (isnan(a) && isnan(b)) || a == b ? 0 : -1;
}

/* Adds the squared difference of the sigmoid scores of logits a (dense) and
 * b to *sum and returns a's score; 0 when both are not finite (nothing
 * added), -1 when only one is. */
static double score_term(float a, float b, double *sum)
{
    const int f = finite_pair(a, b);
    if (f <= 0) return f;
    const double sa = sigmoid(a), d = sigmoid(b) - sa;
    *sum += d * d;
    return sa;
}

static int same_shape(const cbinfer_tensor_view *a, const cbinfer_tensor_view *b)
{
    return a->data && b->data && a->channels == b->channels && a->height == b->height &&
           a->width == b->width && a->height > 0 && a->width > 0;
}

/* The mean bin of a softmax over bins v[0], v[plane], ... v[(n-1) plane]: the
 * distance the library's decoder takes (its helper is internal to it). */
static double mean_bin(const float *v, size_t plane, int n)
{
    double top = v[0];
    for (int i = 1; i < n; ++i) top = fmax(top, v[(size_t)i * plane]);
    double sum = 0, mean = 0;
    for (int i = 0; i < n; ++i) {
        const double p = exp(v[(size_t)i * plane] - top);
        sum += p;
        mean += p * i;
    }
    return mean / sum;
}

double cbi_detect_loss(const cbinfer_tensor_view *ref, const cbinfer_tensor_view *x, int heads,
                       int class_count)
{
    if (!ref || !x || heads < 1 || class_count < 1) return NAN;
    double total = 0;
    long long cells = 0;
    for (int h = 0; h < heads; ++h) {
        const cbinfer_tensor_view *r = &ref[h], *c = &x[h];
        const int bins = (r->channels - class_count) / 4;
        if (!same_shape(r, c) || bins < 1 || r->channels != class_count + 4 * bins) return NAN;
        const size_t plane = (size_t)r->height * r->width;
        for (size_t p = 0; p < plane; ++p) {
            const float *rp = r->data + p, *cp = c->data + p;
            double best = 0, cls = 0, box = 0;
            for (int k = 0; k < class_count; ++k) {
                const double sa = score_term(rp[(size_t)k * plane], cp[(size_t)k * plane], &cls);
                if (sa < 0) return INFINITY;
                best = fmax(best, sa);
            }
            for (int s = 0; s < 4; ++s) {
                const size_t c0 = (size_t)(class_count + s * bins) * plane;
                int both = 1;
                for (int i = 0; i < bins; ++i) {
                    const int f = finite_pair(rp[c0 + (size_t)i * plane], cp[c0 + (size_t)i * plane]);
                    if (f < 0) return INFINITY;
                    both &= f;
                }
                if (!both) continue;
                const double d = (mean_bin(cp + c0, plane, bins) - mean_bin(rp + c0, plane, bins)) / bins;
                box += d * d;
            }
            total += cls + best * box;
        }
        cells += (long long)plane;
    }
    return isfinite(total) ? total / (double)cells : INFINITY;
}

/* The squared difference of a and b (b - a), 0 when both are not finite,
 * -1 when only one is. */
static double sq_diff(float a, float b)
{
    const int f = finite_pair(a, b);
    if (f <= 0) return f;
    const double d = (double)b - a;
    return d * d;
}

double cbi_pose_loss(const cbinfer_tensor_view ref[4], const cbinfer_tensor_view x[4], float stride)
{
    enum { KP = CBINFER_POSE_KEYPOINTS, EDGES = 2 * (KP - 1) };
    static const int channels[4] = {KP, 2 * KP, EDGES, EDGES};
    if (!ref || !x || !(stride > 0) || !isfinite(stride)) return NAN;
    for (int t = 0; t < 4; ++t)
        if (!same_shape(&ref[t], &x[t]) || ref[t].channels != channels[t] ||
            ref[t].height != ref[0].height || ref[t].width != ref[0].width)
            return NAN;
    const size_t plane = (size_t)ref[0].height * ref[0].width;
    const double inv_s2 = 1.0 / ((double)stride * stride);
    double total = 0;
    for (size_t p = 0; p < plane; ++p) {
        double best = 0, cell = 0;
        for (int k = 0; k < KP; ++k) {
            const size_t at_k = (size_t)k * plane + p;
            const double sa = score_term(ref[0].data[at_k], x[0].data[at_k], &cell);
            if (sa < 0) return INFINITY;
            best = fmax(best, sa);
            double off = 0;
            for (int axis = 0; axis < 2; ++axis) {
                const size_t at = (size_t)(axis * KP + k) * plane + p;
                const double e = sq_diff(ref[1].data[at], x[1].data[at]);
                if (e < 0) return INFINITY;
                off += e;
            }
            cell += sa * off * inv_s2;
        }
        double disp = 0;
        for (int t = 2; t < 4; ++t)
            for (int c = 0; c < EDGES; ++c) {
                const size_t at = (size_t)c * plane + p;
                const double e = sq_diff(ref[t].data[at], x[t].data[at]);
                if (e < 0) return INFINITY;
                disp += e;
            }
        total += cell + best * disp * inv_s2;
    }
    return isfinite(total) ? total / (double)plane : INFINITY;
}

int cbi_pose_outputs(const cbinfer_network_t *net, int out[4])
{
    static const char *const roles[4] = {"heatmap", "offset", "displacement_fwd",
                                         "displacement_bwd"};
    if (cbinfer_network_output_count(net) != 4) return -1;
    int by_name = 1;
    for (int i = 0; i < 4; ++i) {
        out[i] = -1;
        for (int o = 0; o < 4; ++o) {
            const char *name = cbinfer_network_output_name(net, o);
            if (name && strcmp(name, roles[i]) == 0) out[i] = o;
        }
        by_name &= out[i] >= 0;
    }
    for (int i = 0; i < 4 && !by_name; ++i) out[i] = i;
    return 0;
}
