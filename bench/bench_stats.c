/* Statistics of cbinfer-bench; see bench_stats.h. */
#include "bench_stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double cbi_percentile_sorted(const double *sorted, size_t n, double p)
{
    if (n == 0) return 0.0;
    if (p <= 0.0) return sorted[0];
    if (p >= 100.0) return sorted[n - 1];
    double pos = p / 100.0 * (double)(n - 1);
    size_t lo = (size_t)pos;
    if (lo + 1 >= n) return sorted[n - 1];
    double frac = pos - (double)lo;
    return sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]);
}

int cbi_latency_of(const double *v, size_t n, cbi_latency *out)
{
    memset(out, 0, sizeof *out);
    if (n == 0) return 0;
    double *s = malloc(n * sizeof *s);
    if (!s) return -1;
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) sum += s[i];
    out->min = s[0];
    out->mean = sum / (double)n;
    out->median = cbi_percentile_sorted(s, n, 50.0);
    out->p90 = cbi_percentile_sorted(s, n, 90.0);
    out->p95 = cbi_percentile_sorted(s, n, 95.0);
    out->p99 = cbi_percentile_sorted(s, n, 99.0);
    free(s);
    return 0;
}

double cbi_median(const double *v, size_t n)
{
    cbi_latency l;
    return cbi_latency_of(v, n, &l) == 0 ? l.median : 0.0;
}

double cbi_psnr_of_mse(double mse)
{
    if (isnan(mse)) return NAN;
    return mse > 0.0 ? 10.0 * log10(1.0 / mse) : INFINITY;
}

void cbi_quality(const float *ref, const float *x, size_t n, double *mse, double *psnr_db,
                 double *max_abs, cbi_nonfinite *nf)
{
    double se = 0.0, mx = 0.0;
    cbi_nonfinite c = {0, 0, 0};
    for (size_t i = 0; i < n; ++i) {
        const int fr = isfinite(ref[i]), fx = isfinite(x[i]);
        if (fr && fx) {
            const double d = (double)x[i] - (double)ref[i];
            se += d * d;
            if (fabs(d) > mx) mx = fabs(d);
            continue;
        }
        c.ref += !fr;
        c.x += !fx;
        /* Equal only as the same non-finite value: NaN and NaN, or equal infinities. */
        const int same = !fr && !fx && (isnan(ref[i]) ? isnan(x[i]) : ref[i] == x[i]);
        c.mismatched += !same;
    }
    const double m = c.mismatched ? INFINITY : (n ? se / (double)n : 0.0);
    *mse = m;
    *psnr_db = cbi_psnr_of_mse(m);
    *max_abs = c.mismatched ? INFINITY : mx;
    if (nf) *nf = c;
}

int cbi_fit_line(const double *x, const double *y, size_t n, double *a, double *b)
{
    double mx = 0.0, my = 0.0;
    for (size_t i = 0; i < n; ++i) {
        mx += x[i];
        my += y[i];
    }
    if (n > 0) {
        mx /= (double)n;
        my /= (double)n;
    }
    /* Centred sums: no cancellation when shares sit close together. */
    double sxx = 0.0, sxy = 0.0;
    for (size_t i = 0; i < n; ++i) {
        sxx += (x[i] - mx) * (x[i] - mx);
        sxy += (x[i] - mx) * (y[i] - my);
    }
    if (n < 2 || sxx <= 1e-300) {
        *a = my;
        *b = 0.0;
        return -1;
    }
    *b = sxy / sxx;
    *a = my - *b * mx;
    return 0;
}

double cbi_break_even(double t_dense_ms, double a, double b)
{
    if (!(b > 0.0)) return 1.0;
    double s = (t_dense_ms - a) / b;
    if (!(s > 0.0)) return 0.0; /* also NaN */
    return s < 1.0 ? s : 1.0;
}
