/*
 * Statistics of cbinfer-bench, kept apart from I/O so that tests can check
 * them on known arrays (tests/cpu_bench_report.cpp): latency percentiles,
 * output quality (MSE, PSNR, max abs error) and the least-squares line of the
 * break-even calibration.
 */
#ifndef CBI_BENCH_STATS_H
#define CBI_BENCH_STATS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Latency summary in ms, trtexec's set of figures. */
typedef struct cbi_latency {
    double min, mean, median, p90, p95, p99;
} cbi_latency;

/* p-th percentile (0..100) of n ascending values, interpolated linearly
 * between the closest ranks (numpy's default): position p/100 * (n - 1).
 * 0 when n is 0. */
double cbi_percentile_sorted(const double *sorted, size_t n, double p);

/* Summary of n values in any order (they are not modified). All zero when n
 * is 0. Returns 0, or -1 when out of memory (out is zeroed). */
int cbi_latency_of(const double *v, size_t n, cbi_latency *out);

/* Median of n values in any order; 0 when n is 0 or out of memory. */
double cbi_median(const double *v, size_t n);

/* Quality of x against the reference ref over n values: mean squared error,
 * PSNR with peak 1.0 (INFINITY when equal) and the largest absolute
 * difference. n = 0 gives 0, INFINITY, 0. Non-finite values count as equal
 * only where both hold the same one (NaN, +Inf or -Inf); anywhere else the
 * two outputs differ beyond measure: MSE and max abs are INFINITY and PSNR
 * -INFINITY, so they are never called identical. The counts of non-finite
 * values in each, and of the positions where they differ so, go to nf. */
typedef struct cbi_nonfinite {
    long long ref, x;     /* non-finite values in ref and in x */
    long long mismatched; /* positions where they differ in finiteness or in which value */
} cbi_nonfinite;
void cbi_quality(const float *ref, const float *x, size_t n, double *mse, double *psnr_db,
                 double *max_abs, cbi_nonfinite *nf);

/* 10 log10(1 / mse); INFINITY for mse <= 0, NAN for NAN. */
double cbi_psnr_of_mse(double mse);

/* Least squares y = a + b x over n points. Returns 0, or -1 when the line is
 * undetermined (n < 2 or all x equal); then a is the mean of y and b is 0. */
int cbi_fit_line(const double *x, const double *y, size_t n, double *a, double *b);

/* Changed share at which a change-based layer with time a + b * share costs
 * as much as the dense layer (t_dense): (t_dense - a) / b clamped to [0, 1];
 * 1 when b <= 0 (never slower than dense as more pixels change). */
double cbi_break_even(double t_dense_ms, double a, double b);

#ifdef __cplusplus
}
#endif

#endif /* CBI_BENCH_STATS_H */
