/*
 * Helpers shared by the CPU backend's non-convolution kernels (cpu_ops.c,
 * cpu_ops_pixel.c): argument checks, shape arithmetic, step timing.
 * Private to host/cpu/.
 */
#ifndef CBI_CPU_OPS_COMMON_H
#define CBI_CPU_OPS_COMMON_H

#include "cpu_backend.h"

static inline double ops_t0(const cbi_op_args *a)
{
    return a->collect_stats ? cbi_now_ms() : 0.0;
}

static inline void ops_done(const cbi_op_args *a, cbinfer_step step, double t0_ms, int64_t out_px)
{
    if (a->stats) a->stats->changed_px = out_px;
    if (a->collect_stats) cpu_step_time(a, step, t0_ms, cbi_now_ms());
}

static inline const char *ops_name(const cbi_op_args *a)
{
    return a->node && a->node->name ? a->node->name : "?";
}

/* Checks the pointers every kernel needs and that the first n inputs exist. */
static inline cbinfer_status ops_check(const cbi_op_args *a, int n_in_min, cbi_err *e)
{
    if (!a || !a->node || !a->plan || !a->out || !a->out->data)
        return cbi_fail(e, CBINFER_STATUS_NULL_ARGUMENT, "node %s: missing op arguments",
                        a && a->node && a->node->name ? a->node->name : "?");
    if (a->n_in < n_in_min)
        return cbi_fail(e, CBINFER_STATUS_INTERNAL, "node %s (%s): %d inputs, need %d",
                        ops_name(a), a->node->op_type, a->n_in, n_in_min);
    for (int i = 0; i < a->n_in; i++)
        if (!a->in[i] || !a->in[i]->data)
            return cbi_fail(e, CBINFER_STATUS_NULL_ARGUMENT, "node %s: input %d missing",
                            ops_name(a), i);
    return CBINFER_STATUS_SUCCESS;
}

static inline int64_t ops_px(cbi_shape s)
{
    return (int64_t)s.h * s.w;
}

static inline int ops_same_shape(cbi_shape x, cbi_shape y)
{
    return x.c == y.c && x.h == y.h && x.w == y.w;
}

/* Threads of a kernel called with context bctx (NULL in op tests: one). */
static inline int ops_threads(const void *bctx)
{
    return cpu_threads((const cpu_ctx *)bctx);
}

/* Output pixel k of a job: idx[k], or k itself over the whole tensor. */
#define OPS_PIXEL(idx, k) ((idx) ? (int64_t)(idx)[(k)] : (int64_t)(k))

/* Runs fn over items [0, n) of a job, split into one block per thread when
 * they add up to enough work: CPU_PARALLEL_MIN_PX pixels of 16 floats, where
 * an item reads about item_floats floats. Blocks must write disjoint memory. */
typedef void (*ops_block_fn)(const void *job, int64_t k0, int64_t k1);

static inline void ops_run_blocks(ops_block_fn fn, const void *job, int64_t n, int64_t item_floats,
                                  int threads)
{
    if (threads < 2 || n * item_floats < (int64_t)CPU_PARALLEL_MIN_PX * 16) {
        fn(job, 0, n);
        return;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int t = 0; t < threads; t++) fn(job, n * t / threads, n * (t + 1) / threads);
}

#endif /* CBI_CPU_OPS_COMMON_H */
