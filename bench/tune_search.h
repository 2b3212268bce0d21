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

/* Loss of the network with threshold tau[i] at layer i (all n layers); layer
 * is the one under tuning, or -1 for the base of a layer's search. A NaN
 * return aborts the search. */
typedef double (*cbi_tune_config_fn)(void *ctx, int layer, const double *tau);

/* Per layer, what cbi_tune_network found: the threshold, the loss with it,
 * the base it was measured against and the evaluations its search took. */
typedef struct cbi_tune_result {
    double tau, loss, base;
    int evals;
} cbi_tune_result;

/* Sec. III-F over n layers in execution order. reaches[i * n + j] != 0 when a
 * change in layer j's output reaches layer i (cbinfer_network_conv_reaches).
 * Layer i is tuned with cbi_tune_layer while the layers that reach it hold
 * their tuned thresholds and all others, later layers and parallel branches
 * alike, are held at 0; its base is the loss of that configuration, taken
 * from the previous layer's search when the configuration is the same (a
 * chain) and evaluated otherwise. So re-converging branches are tuned
 * independently. init[i] and budget[i] are layer i's initial threshold and
 * budget; a layer with budget 0 is held at 0 without evaluations. out[i]
 * receives the results; done (may be NULL) is called after
 * each layer. Returns 0, or -1 when config returned NaN or the parameters
 * are invalid (as cbi_tune_layer's). */
int cbi_tune_network(cbi_tune_config_fn config, void *ctx, int n, const unsigned char *reaches,
                     const double *init, const double *budget, double growth, int max_steps,
                     cbi_tune_result *out,
                     void (*done)(void *ctx, int layer, const cbi_tune_result *r));

/* The longest step of cbi_tune_refine, as a factor. */
#define CBI_TUNE_MAX_STEP 64.0

/* Loss and cost (e.g. the executed share of the dense MACs) of thresholds
 * tau[0..n) on all layers. A NaN loss aborts the refinement. */
typedef double (*cbi_tune_cost_fn)(void *ctx, const double *tau, double *cost);

/* Cost-aware refinement after cbi_tune_network (which splits the loss
 * evenly, whatever a layer costs), from thresholds tau whose loss and cost
 * the caller has evaluated (start_loss, start_cost): greedy steps that each multiply one
 * layer's threshold by growth (a layer at 0 starts at init[i]; one with
 * budget[i] == 0 is never touched), taking the step that saves the most
 * cost per loss added while the loss stays <= total; steps that add no
 * loss go first, by the cost they save. Candidates are scored lazily: a
 * step is re-evaluated in order of its last score and taken when its fresh
 * score beats every other's last one. A step within total that saves
 * nothing is lengthened (growth^2, ^4, ... while at most CBI_TUNE_MAX_STEP;
 * from 0: init, init * growth, init * growth^3, ...) and tried again, and
 * dropped when the longest saves nothing; one
 * that leaves total is not tried again (the loss only grows). Stops after max_steps steps or when
 * no step saves cost within total. tau is updated in place; *loss and *cost
 * (may be NULL) get the final values, *evals the evaluations; step (may be
 * NULL) is called after each step taken. Returns the steps taken, or -1 for
 * a NaN loss (the start's or a step's) or bad parameters. */
int cbi_tune_refine(cbi_tune_cost_fn eval, void *ctx, int n, double *tau, double start_loss,
                    double start_cost, const double *init, const double *budget, double total,
                    double growth, int max_steps,
                    double *loss, double *cost, int *evals,
                    void (*step)(void *ctx, int layer, double tau, double loss, double cost));

/* What the search minimises against the dense output. */
typedef enum cbi_tune_metric {
    CBI_TUNE_MSE = 0,    /* mean MSE over the evaluated frames */
    CBI_TUNE_PSNR = 1,   /* a PSNR target: searched on MSE (cbi_tune_budgets) */
    CBI_TUNE_MAXABS = 2, /* mean over frames of the largest absolute error */
    CBI_TUNE_DETECT = 3, /* NanoDet heads: cbi_detect_loss (task_loss.h), a total to split */
    CBI_TUNE_POSE = 4    /* PoseNet outputs: cbi_pose_loss, a total to split */
} cbi_tune_metric;

/* Per-layer budgets of n layers into out[]. MSE and MAXABS: budget * w[i]
 * (w NULL: all 1). PSNR: budget is the PSNR in dB (peak 1) the tuned network
 * is to keep; its MSE, 10^(-budget/10), is split over the layers in
 * proportion to w (evenly for NULL), since a dB drop per layer means nothing
 * from the lossless start (an infinite PSNR). DETECT and POSE: budget is the
 * task loss the tuned network may reach, split in the same way. Returns 0, or -1 for n < 1, a
 * negative, NaN or infinite budget, or weights that sum to 0 (PSNR, DETECT,
 * POSE). */
int cbi_tune_budgets(cbi_tune_metric metric, double budget, const double *w, int n, double *out);

/* Parses "4,1,1" into w[0..max-1]; returns the count, or -1 when malformed,
 * a weight is negative or not finite, or there are more than max. */
int cbi_tune_parse_weights(const char *s, double *w, int max);

#ifdef __cplusplus
}
#endif

#endif /* CBI_TUNE_SEARCH_H */
