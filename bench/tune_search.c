/* Per-layer threshold search (paper Sec. III-F); see tune_search.h. */
#include "tune_search.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
        /* Not "> budget": an infinite loss over an infinite base gives NaN,
         * and that must stop the search too. */
        if (!(loss - base <= budget)) break;
        prev = tau;
        prev_loss = loss;
        tau *= growth;
    }
    if (evals) *evals = n;
    if (loss_out) *loss_out = prev_loss;
    return prev;
}

typedef struct layer_eval {
    cbi_tune_config_fn config;
    void *ctx;
    int layer;
    double *tau; /* the configuration; tau[layer] is varied */
} layer_eval;

static double eval_one(void *p, double tau)
{
    layer_eval *le = p;
    le->tau[le->layer] = tau;
    return le->config(le->ctx, le->layer, le->tau);
}

int cbi_tune_network(cbi_tune_config_fn config, void *ctx, int n, const unsigned char *reaches,
                     const double *init, const double *budget, double growth, int max_steps,
                     cbi_tune_result *out,
                     void (*done)(void *ctx, int layer, const cbi_tune_result *r))
{
    if (!config || n < 1 || !reaches || !init || !budget || !out) return -1;
    /* tau: the configuration under evaluation; known/known_loss: the last
     * configuration whose loss is known. */
    double *tau = calloc((size_t)n, sizeof *tau), *known = calloc((size_t)n, sizeof *known);
    int rc = -1;
    if (!tau || !known) goto end;
    double known_loss = config(ctx, -1, known);
    if (isnan(known_loss)) goto end;
    for (int i = 0; i < n; ++i) {
        for (int j = 0; j < n; ++j) tau[j] = reaches[(size_t)i * n + j] ? out[j].tau : 0;
        cbi_tune_result *r = &out[i];
        if (memcmp(tau, known, (size_t)n * sizeof *tau) == 0) {
            r->base = known_loss;
        } else {
            r->base = config(ctx, -1, tau);
            if (isnan(r->base)) goto end;
        }
        if (budget[i] == 0) {
            /* No budget: held at 0, unsearched (a loss that does not grow
             * would let it rise). */
            r->tau = 0;
            r->loss = r->base;
            r->evals = 0;
        } else {
            layer_eval le = {config, ctx, i, tau};
            r->tau = cbi_tune_layer(eval_one, &le, init[i], growth, r->base, budget[i], max_steps,
                                    &r->evals, &r->loss);
            if (isnan(r->tau)) goto end;
        }
        tau[i] = r->tau;
        memcpy(known, tau, (size_t)n * sizeof *tau);
        known_loss = r->loss;
        if (done) done(ctx, i, r);
    }
    rc = 0;
end:
    free(tau);
    free(known);
    return rc;
}

/* How much better a step to (loss, cost) is from (l0, c0): steps that add
 * no loss rank above all others, by the cost they save; the others by cost
 * saved per loss added. -INFINITY: the step saves nothing or leaves total. */
static double step_score(double l0, double c0, double loss, double cost, double total)
{
    if (!(loss <= total) || !(cost < c0)) return -INFINITY;
    if (loss <= l0) return 1e300 * (c0 - cost);
    return (c0 - cost) / (loss - l0);
}

int cbi_tune_refine(cbi_tune_cost_fn eval, void *ctx, int n, double *tau, double start_loss,
                    double start_cost, const double *init, const double *budget, double total,
                    double growth, int max_steps,
                    double *loss, double *cost, int *evals,
                    void (*step)(void *ctx, int layer, double tau, double loss, double cost))
{
    if (!eval || n < 1 || !tau || !init || !budget || !(growth > 1) || max_steps < 0 ||
        !(total >= 0) || isnan(start_loss))
        return -1;
    double *score = malloc((size_t)n * sizeof *score), *cand = malloc((size_t)n * sizeof *cand);
    double *next_loss = malloc((size_t)n * sizeof *next_loss);
    double *next_cost = malloc((size_t)n * sizeof *next_cost);
    char *fresh = malloc((size_t)n);
    int *power = malloc((size_t)n * sizeof *power);
    int taken = -1, nev = 0;
    if (!score || !cand || !next_loss || !next_cost || !fresh || !power) goto end;
    double l0 = start_loss, c0 = start_cost;
    /* Every step starts stale and above any real score, so each is
     * evaluated once before it can be ranked. */
    for (int i = 0; i < n; ++i) {
        score[i] = budget[i] > 0 ? INFINITY : -INFINITY;
        power[i] = 1;
    }
    taken = 0;
    while (taken < max_steps) {
        memset(fresh, 0, (size_t)n);
        int pick = -1;
        for (;;) {
            /* The best last score; evaluate it unless it is fresh. */
            int best = -1;
            for (int i = 0; i < n; ++i)
                if (score[i] > -INFINITY && (best < 0 || score[i] > score[best])) best = i;
            if (best < 0) break;
            if (fresh[best]) {
                pick = best;
                break;
            }
            const double old = tau[best];
            cand[best] = old > 0 ? old * pow(growth, power[best])
                                 : init[best] * pow(growth, power[best] - 1);
            tau[best] = cand[best];
            next_loss[best] = eval(ctx, tau, &next_cost[best]);
            ++nev;
            tau[best] = old;
            if (isnan(next_loss[best])) {
                taken = -1;
                goto end;
            }
            score[best] = step_score(l0, c0, next_loss[best], next_cost[best], total);
            if (next_loss[best] <= total && !(next_cost[best] < c0) && power[best] < (1 << 20) &&
                pow(growth, 2.0 * power[best]) <= CBI_TUNE_MAX_STEP) {
                /* Within total but too small to change anything: a longer
                 * step next time, still unranked. */
                power[best] *= 2;
                score[best] = INFINITY;
                continue;
            }
            fresh[best] = 1;
        }
        if (pick < 0) break;
        tau[pick] = cand[pick];
        l0 = next_loss[pick];
        c0 = next_cost[pick];
        ++taken;
        if (step) step(ctx, pick, tau[pick], l0, c0);
        /* The step taken is scored anew from its new threshold. */
        score[pick] = INFINITY;
        power[pick] = 1;
    }
    if (loss) *loss = l0;
    if (cost) *cost = c0;
end:
    if (evals) *evals = nev;
    free(score);
    free(cand);
    free(next_loss);
    free(next_cost);
    free(fresh);
    free(power);
    return taken;
}

int cbi_tune_budgets(cbi_tune_metric metric, double budget, const double *w, int n, double *out)
{
    if (n < 1 || !out || !(budget >= 0) || !isfinite(budget)) return -1;
    double scale = budget, sum = n;
    if (metric == CBI_TUNE_PSNR || metric == CBI_TUNE_DETECT || metric == CBI_TUNE_POSE) {
        if (w) {
            sum = 0;
            for (int i = 0; i < n; ++i) sum += w[i];
        }
        if (!(sum > 0)) return -1;
        scale = (metric == CBI_TUNE_PSNR ? pow(10.0, -budget / 10.0) : budget) / sum;
    }
    for (int i = 0; i < n; ++i) out[i] = scale * (w ? w[i] : 1.0);
    return 0;
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
