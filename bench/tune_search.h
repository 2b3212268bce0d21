/*
 * The per-layer threshold search of cbinfer-tune (paper Sec. III-F), kept
 * apart from I/O so that tests can drive it with synthetic loss functions
 * (tests/cpu_tune.cpp).
 */
#ifndef CBI_TUNE_SEARCH_H
#define CBI_TUNE_SEARCH_H

#ifdef __cplusplus
extern "C" {
#endif

/* Loss of the network with the layer under tuning at threshold tau (the
 * other layers as the caller holds them). A NaN return aborts the search. */
typedef double (*cbi_tune_eval_fn)(void *ctx, double tau);

/* Grows the threshold geometrically, tau = init * growth^k for k = 0, 1, ...,
 * while eval(tau) - base <= budget, and returns the last tau that kept to the
 * budget: 0 when even init exceeds it. Stops after max_steps evaluations
 * (returning the last accepted tau). *evals (may be NULL) receives the number
 * of evaluations; *loss_out (may be NULL) the loss of the returned tau (base
 * when it is 0). Returns NaN when eval returned NaN, or when init <= 0,
 * growth <= 1, budget < 0 or max_steps < 1. */
double cbi_tune_layer(cbi_tune_eval_fn eval, void *ctx, double init, double growth, double base,
                      double budget, int max_steps, int *evals, double *loss_out);

/* Loss of a configuration from the mean MSE over the evaluated frames, in the
 * unit the budgets are given in. */
typedef enum cbi_tune_metric {
    CBI_TUNE_MSE = 0,    /* mean MSE */
    CBI_TUNE_PSNR = 1,   /* -PSNR(mean MSE) in dB, capped at -99 (exact) */
    CBI_TUNE_MAXABS = 2  /* mean over frames of the largest absolute error */
} cbi_tune_metric;

/* Parses "4,1,1" into w[0..max-1]; returns the count, or -1 when malformed,
 * a weight is negative or not finite, or there are more than max. */
int cbi_tune_parse_weights(const char *s, double *w, int max);

#ifdef __cplusplus
}
#endif

#endif /* CBI_TUNE_SEARCH_H */
