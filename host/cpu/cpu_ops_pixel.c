/*
 * The CPU backend's pixel-wise ops: standalone activations, Add, Concat and
 * Resize (nearest and linear), each dense or over a change list.
 *
 * Change propagation. The paper carries a convolution's change indices
 * through pooling (Sec. III-E); the same holds for every op whose output
 * pixel reads a fixed set of input pixels. When each input arrives with a
 * change list (cbi_changes.all == 0) and the node has change state (a
 * change-based stream: a cpu_layer, with idx for a merge and out_map for
 * Resize's marks), the op rewrites only the output
 * pixels that read a listed input pixel, and hands their list on:
 *   - Activation, Add, Concat read the same pixel of each input: the output
 *     list is the union of the input lists (one input: its list as it is);
 *   - Resize reads the input pixels of its row and column taps: the output
 *     list holds the pixels a changed input reaches, from per-axis reach
 *     tables made when the layer is created.
 * Every other output pixel keeps what it held after the previous frame, which
 * is what the dense op would compute again from its unchanged inputs. Both
 * paths run the same per-pixel code, so they agree bit for bit. The next
 * change-based conv then tests only the listed pixels for changes.
 *
 * CUDA runs these ops dense (the host loop leaves its output lists at all).
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "cpu_ops_common.h"

/* Whether this call can run over change lists: not the first frame, change
 * state present, and every input with a list. A list without indices is a
 * broken producer. */
static cbinfer_status ops_listed(const cbi_op_args *a, int *listed, cbi_err *e)
{
    const cpu_layer *L = a->layer;
    *listed = !a->first && L && a->out_chg && (a->n_in == 1 || L->idx);
    for (int i = 0; *listed && i < a->n_in; i++) {
        const cbi_changes *c = a->in_chg[i];
        if (!c || c->all) {
            *listed = 0;
        } else if (c->count > 0 && !c->idx) {
            return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                            "node %s (%s): input %d has a change list without indices",
                            ops_name(a), a->node->op_type, i);
        }
    }
    return CBINFER_STATUS_SUCCESS;
}

/* The union of the inputs' ascending lists, ascending, without repeats. One
 * input: its own list (no copy); otherwise a merge into L->idx. */
static const int32_t *ops_union(const cbi_op_args *a, int64_t *n_out)
{
    if (a->n_in == 1) {
        *n_out = a->in_chg[0]->count;
        return a->in_chg[0]->idx;
    }
    int32_t *out = ((cpu_layer *)a->layer)->idx;
    int64_t pos[CBI_MAX_INPUTS] = {0}, n = 0;
    for (;;) {
        int32_t m = INT32_MAX;
        int any = 0;
        for (int i = 0; i < a->n_in; i++)
            if (pos[i] < a->in_chg[i]->count && (!any || a->in_chg[i]->idx[pos[i]] < m)) {
                m = a->in_chg[i]->idx[pos[i]];
                any = 1;
            }
        if (!any) break;
        out[n++] = m;
        for (int i = 0; i < a->n_in; i++)
            while (pos[i] < a->in_chg[i]->count && a->in_chg[i]->idx[pos[i]] == m) pos[i]++;
    }
    *n_out = n;
    return out;
}

/* What the op did this frame: the whole output (idx NULL), or n listed
 * pixels, which become its output list. */
static void ops_finish(const cbi_op_args *a, const int32_t *idx, int64_t n, int64_t in_px,
                       double t0)
{
    const int64_t px = ops_px(a->plan->out);
    if (a->out_chg) {
        a->out_chg->all = idx == NULL;
        a->out_chg->idx = (int32_t *)idx;
        a->out_chg->count = idx ? n : px;
    }
    if (a->stats) {
        a->stats->changed_in_px = in_px;
        if (idx) a->stats->ran_dense = 0;
    }
    ops_done(a, CBINFER_STEP_DENSE, t0, idx ? n : px);
}

/* The pixels of a listed call of a same-grid op (or the whole tensor), and
 * how many listed input pixels drove it. */
static cbinfer_status ops_pixels(const cbi_op_args *a, const int32_t **idx, int64_t *n,
                                 int64_t *in_px, cbi_err *e)
{
    int listed;
    cbinfer_status st = ops_listed(a, &listed, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    *idx = NULL;
    *n = *in_px = ops_px(a->plan->out);
    if (!listed) return CBINFER_STATUS_SUCCESS;
    *idx = ops_union(a, n);
    *in_px = 0;
    for (int i = 0; i < a->n_in; i++) *in_px += a->in_chg[i]->count;
    return CBINFER_STATUS_SUCCESS;
}

/* ----------------------------------------------------------- Activation --- */

typedef struct act_job {
    const cbi_activation *act;
    const float *x;
    float *y;
    int c;
    const int32_t *idx;
} act_job;

static CPU_SIMD_CLONES void act_block(const void *p, int64_t k0, int64_t k1)
{
    const act_job *j = p;
    const int c = j->c;
    for (int64_t k = k0; k < k1; k++) {
        const size_t q = (size_t)OPS_PIXEL(j->idx, k) * c;
        for (int ch = 0; ch < c; ch++) j->y[q + ch] = cpu_activate(j->act, ch, j->x[q + ch]);
    }
}

/* Standalone Relu / LeakyRelu / PRelu / Clip / Sigmoid, elementwise over NHWC
 * (channel = index % c); may run in place. */
cbinfer_status cpu_activation(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cbinfer_status st = ops_check(a, 1, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    const cbi_shape s = a->plan->out;
    if (!ops_same_shape(s, a->in[0]->shape))
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (%s): input/output shapes differ",
                        ops_name(a), a->node->op_type);
    const double t0 = ops_t0(a);
    const int32_t *idx;
    int64_t n, in_px;
    if ((st = ops_pixels(a, &idx, &n, &in_px, e)) != CBINFER_STATUS_SUCCESS) return st;
    const act_job j = {&a->node->act, a->in[0]->data, a->out->data, s.c, idx};
    ops_run_blocks(act_block, &j, n, s.c, ops_threads(bctx));
    ops_finish(a, idx, n, in_px, t0);
    return CBINFER_STATUS_SUCCESS;
}

/* ------------------------------------------------------------------ Add --- */

typedef struct add_job {
    const float *x0, *x1;
    float *y;
    int c;
    const int32_t *idx;
} add_job;

static CPU_SIMD_CLONES void add_block(const void *p, int64_t k0, int64_t k1)
{
    const add_job *j = p;
    const int c = j->c;
    for (int64_t k = k0; k < k1; k++) {
        const size_t q = (size_t)OPS_PIXEL(j->idx, k) * c;
        for (int ch = 0; ch < c; ch++) j->y[q + ch] = j->x0[q + ch] + j->x1[q + ch];
    }
}

/* Elementwise sum of two equally shaped NHWC tensors (residual connections). */
cbinfer_status cpu_add(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cbinfer_status st = ops_check(a, 2, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    const cbi_shape s = a->plan->out;
    if (!ops_same_shape(a->in[0]->shape, s) || !ops_same_shape(a->in[1]->shape, s))
        return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                        "node %s (Add): shapes %dx%dx%d + %dx%dx%d -> %dx%dx%d differ", ops_name(a),
                        a->in[0]->shape.c, a->in[0]->shape.h, a->in[0]->shape.w,
                        a->in[1]->shape.c, a->in[1]->shape.h, a->in[1]->shape.w, s.c, s.h, s.w);
    const double t0 = ops_t0(a);
    const int32_t *idx;
    int64_t n, in_px;
    if ((st = ops_pixels(a, &idx, &n, &in_px, e)) != CBINFER_STATUS_SUCCESS) return st;
    const add_job j = {a->in[0]->data, a->in[1]->data, a->out->data, s.c, idx};
    ops_run_blocks(add_block, &j, n, 2 * s.c, ops_threads(bctx));
    ops_finish(a, idx, n, in_px, t0);
    return CBINFER_STATUS_SUCCESS;
}

/* --------------------------------------------------------------- Concat --- */

typedef struct concat_job {
    int n_in;
    const float *x[CBI_MAX_INPUTS];
    int c[CBI_MAX_INPUTS];
    float *y;
    int c_out;
    const int32_t *idx;
} concat_job;

static void concat_block(const void *p, int64_t k0, int64_t k1)
{
    const concat_job *j = p;
    for (int64_t k = k0; k < k1; k++) {
        const int64_t q = OPS_PIXEL(j->idx, k);
        float *dst = j->y + (size_t)q * j->c_out;
        for (int i = 0; i < j->n_in; i++) {
            memcpy(dst, j->x[i] + (size_t)q * j->c[i], (size_t)j->c[i] * sizeof(float));
            dst += j->c[i];
        }
    }
}

/* Channel concatenation, NHWC: per pixel, each input's channel run in order. */
cbinfer_status cpu_concat(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cbinfer_status st = ops_check(a, 1, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    const cbi_shape s = a->plan->out;
    concat_job j = {.n_in = a->n_in, .y = a->out->data, .c_out = s.c};
    int c_sum = 0;
    for (int i = 0; i < a->n_in; i++) {
        const cbi_shape si = a->in[i]->shape;
        if (si.h != s.h || si.w != s.w)
            return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                            "node %s (Concat): input %d is %dx%d, output %dx%d", ops_name(a), i,
                            si.h, si.w, s.h, s.w);
        j.x[i] = a->in[i]->data;
        j.c[i] = si.c;
        c_sum += si.c;
    }
    if (c_sum != s.c)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                        "node %s (Concat): input channels sum to %d, output has %d", ops_name(a),
                        c_sum, s.c);
    const double t0 = ops_t0(a);
    int64_t n, in_px;
    if ((st = ops_pixels(a, &j.idx, &n, &in_px, e)) != CBINFER_STATUS_SUCCESS) return st;
    ops_run_blocks(concat_block, &j, n, s.c, ops_threads(bctx));
    ops_finish(a, j.idx, n, in_px, t0);
    return CBINFER_STATUS_SUCCESS;
}

/* --------------------------------------------------------------- Resize --- */

/* The taps of output coordinate o along an axis: linear (cbi_resize_linear_tap),
 * or nearest, as one tap with weight 0 (cbi_resize_src). */
static cbi_resize_tap resize_tap(const cbi_node *n, const cbi_node_plan *p, int axis, int o)
{
    if (n->linear) return cbi_resize_linear_tap(n, p, axis, o);
    const int i = cbi_resize_src(n, p, axis, o);
    return (cbi_resize_tap){i, i, 0.f};
}

int cpu_resize_tables(const cbi_node *n, const cbi_node_plan *p, cpu_layer *L)
{
    const cbi_shape si = p->in, so = p->out;
    L->tap_y = cbi_malloc_array((size_t)so.h, sizeof *L->tap_y);
    L->tap_x = cbi_malloc_array((size_t)so.w, sizeof *L->tap_x);
    L->reach_y = cbi_malloc_array(2 * (size_t)si.h, sizeof *L->reach_y);
    L->reach_x = cbi_malloc_array(2 * (size_t)si.w, sizeof *L->reach_x);
    if (!L->tap_y || !L->tap_x || !L->reach_y || !L->reach_x) return -1;
    for (int axis = 0; axis < 2; axis++) {
        const int n_out = axis ? so.w : so.h, n_in = axis ? si.w : si.h;
        cbi_resize_tap *tap = axis ? L->tap_x : L->tap_y;
        int32_t *reach = axis ? L->reach_x : L->reach_y;
        for (int i = 0; i < n_in; i++) {
            reach[2 * i] = n_out; /* empty until an output reads it */
            reach[2 * i + 1] = -1;
        }
        for (int o = 0; o < n_out; o++) {
            tap[o] = resize_tap(n, p, axis, o);
            const int in2[2] = {tap[o].i0, tap[o].i1};
            for (int t = 0; t < 2; t++) {
                int32_t *r = reach + 2 * in2[t];
                if (o < r[0]) r[0] = o;
                if (o > r[1]) r[1] = o;
            }
        }
    }
    return 0;
}

typedef struct resize_job {
    const cbi_node *node;
    const cbi_node_plan *plan;
    const cbi_resize_tap *tap_y, *tap_x; /* NULL: computed per pixel */
    const float *x;
    float *y;
    const int32_t *idx;
} resize_job;

/* Not cloned for wider instruction sets: those would contract the blends
 * into FMAs, and the values would then depend on the CPU. */
static void resize_block(const void *p, int64_t k0, int64_t k1)
{
    const resize_job *j = p;
    const cbi_shape si = j->plan->in, so = j->plan->out;
    const int c = so.c;
    for (int64_t k = k0; k < k1; k++) {
        const int64_t q = OPS_PIXEL(j->idx, k);
        const int oy = (int)(q / so.w), ox = (int)(q % so.w);
        const cbi_resize_tap ty = j->tap_y ? j->tap_y[oy] : resize_tap(j->node, j->plan, 0, oy);
        const cbi_resize_tap tx = j->tap_x ? j->tap_x[ox] : resize_tap(j->node, j->plan, 1, ox);
        float *o = j->y + (size_t)q * c;
        const float *r0 = j->x + (size_t)ty.i0 * si.w * c;
        if (!j->node->linear) {
            memcpy(o, r0 + (size_t)tx.i0 * c, (size_t)c * sizeof(float));
            continue;
        }
        /* First along x, then along y. */
        const float *r1 = j->x + (size_t)ty.i1 * si.w * c;
        const float *a0 = r0 + (size_t)tx.i0 * c, *a1 = r0 + (size_t)tx.i1 * c;
        const float *b0 = r1 + (size_t)tx.i0 * c, *b1 = r1 + (size_t)tx.i1 * c;
        for (int ch = 0; ch < c; ch++) {
            const float top = a0[ch] + tx.f * (a1[ch] - a0[ch]);
            const float bot = b0[ch] + tx.f * (b1[ch] - b0[ch]);
            o[ch] = top + ty.f * (bot - top);
        }
    }
}

/* The output pixels that read a listed input pixel, ascending, into L->idx:
 * each changed input marks the rectangle of its reach in L->out_map, which
 * cpu_map_extract reads out and clears. */
static int64_t resize_listed(const cpu_layer *L, const cbi_changes *c, cbi_shape si, cbi_shape so)
{
    uint8_t *map = L->out_map;
    int lo = so.h, hi = -1;
    for (int64_t k = 0; k < c->count; k++) {
        const int iy = c->idx[k] / si.w, ix = c->idx[k] % si.w;
        const int32_t *ry = L->reach_y + 2 * iy, *rx = L->reach_x + 2 * ix;
        if (ry[0] > ry[1] || rx[0] > rx[1]) continue; /* no output reads it */
        for (int oy = ry[0]; oy <= ry[1]; oy++)
            memset(map + (size_t)oy * so.w + rx[0], 1, (size_t)(rx[1] - rx[0] + 1));
        if (ry[0] < lo) lo = ry[0];
        if (ry[1] > hi) hi = ry[1];
    }
    const int64_t n = cpu_map_extract(map, so.w, lo, hi, L->idx);
    assert(n <= (int64_t)so.h * so.w);
    return n;
}

/* Resize, NHWC: nearest copies one input pixel's channel run, linear blends
 * the four of its row and column taps. Scale is out/in when sizes were
 * given, the node's otherwise. */
cbinfer_status cpu_resize(void *bctx, cbi_op_args *a, cbi_err *e)
{
    cbinfer_status st = ops_check(a, 1, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    const cbi_node *n = a->node;
    const cbi_shape si = a->plan->in, so = a->plan->out;
    if (si.c != so.c || si.h < 1 || si.w < 1)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL,
                        "node %s (Resize): bad geometry %dx%dx%d -> %dx%dx%d", ops_name(a), si.c,
                        si.h, si.w, so.c, so.h, so.w);
    const cpu_layer *L = a->layer;
    int listed;
    if ((st = ops_listed(a, &listed, e)) != CBINFER_STATUS_SUCCESS) return st;
    if (listed && (!L->tap_y || !L->reach_y || !L->out_map || !L->idx))
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (Resize): no change state",
                        ops_name(a));
    const double t0 = ops_t0(a);
    resize_job j = {n, a->plan, L ? L->tap_y : NULL, L ? L->tap_x : NULL, a->in[0]->data,
                    a->out->data, NULL};
    int64_t count = ops_px(so), in_px = ops_px(si);
    if (listed) {
        count = resize_listed(L, a->in_chg[0], si, so);
        j.idx = L->idx;
        in_px = a->in_chg[0]->count;
    }
    ops_run_blocks(resize_block, &j, count, (n->linear ? 4 : 1) * (int64_t)so.c,
                   ops_threads(bctx));
    ops_finish(a, j.idx, count, in_px, t0);
    return CBINFER_STATUS_SUCCESS;
}

/* ---------------------------------------------------------- the layers --- */

int64_t cpu_map_extract(uint8_t *map, int w, int row_lo, int row_hi, int32_t *idx)
{
    int64_t n = 0;
    for (int y = row_lo; y <= row_hi; y++) {
        uint8_t *row = map + (size_t)y * w;
        for (int x = 0; x < w; x++) {
            uint64_t word;
            if (x + 8 <= w && (memcpy(&word, row + x, 8), word == 0)) {
                x += 7;
                continue;
            }
            if (!row[x]) continue;
            row[x] = 0;
            idx[n++] = y * w + x;
        }
    }
    return n;
}

int cpu_op_propagates(const cbi_node *n)
{
    return n->op == CBI_OP_ACTIVATION || n->op == CBI_OP_ADD || n->op == CBI_OP_CONCAT ||
           n->op == CBI_OP_RESIZE;
}
