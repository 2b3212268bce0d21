/* Per-layer threshold search (paper Sec. III-F); see tune_search.h. */
#include "tune_search.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

double cbi_tune_layer(cbi_tune_eval_fn eval, void *ctx, double init, double growth, double base,
                      double budget, int max_steps, int *evals, double *loss_out)
{
    int n = 0;
    if (evals) *evals = 0;
    if (!eval || !(init > 0) || !(growth > 1) || !(budget >= 0) || max_steps < 1) return NAN;
    /* Sec. III-F: raise τ until the added loss leaves the budget, keep the last
     * τ inside it (0 if the first step already leaves it). */
    double prev = 0, prev_loss = base, tau = init;
    while (n < max_steps) {
        const double loss = eval(ctx, tau);
        ++n;
        if (isnan(loss)) {
            prev = NAN;
            break;
        }
        if (loss - base > budget) break;
        prev = tau;
        prev_loss = loss;
        tau *= growth;
    }
    if (evals) *evals = n;
    if (loss_out) *loss_out = prev_loss;
    return prev;
}

int cbi_tune_parse_weights(const char *s, double *w, int max)
{
    int n = 0;
    if (!s || !*s) return -1;
    for (;;) {
        char *end;
        errno = 0;
        const double v = strtod(s, &end);
        if (end == s || errno || !isfinite(v) || v < 0 || n >= max) return -1;
        w[n++] = v;
        if (*end == '\0') return n;
        if (*end != ',') return -1;
        s = end + 1;
    }
}
