/*
 * Policy specs: "<kind>[:<option>[,<option>...]]".
 *   cbinfer | cbinfer-ff                 no options
 *   evnet      element | pixel | chunk=G (G >= 1; chunk=1 is element), nomem
 *   skipconv   input | output, block=B (B >= 1), reset=R (R >= 0)
 *   sigmadelta no options
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#define POLICY_MAX_INT 65536

cbi_policy cbi_policy_of_mode(cbinfer_mode mode)
{
    cbi_policy p = {.kind = CBI_POLICY_CBINFER, .chunk = 1, .block = 1};
    switch (mode) {
    case CBINFER_MODE_CBINFER_FF: p.kind = CBI_POLICY_CBINFER_FF; break;
    case CBINFER_MODE_EVNET: p.kind = CBI_POLICY_EVNET; break;
    case CBINFER_MODE_SKIPCONV: p.kind = CBI_POLICY_SKIPCONV; break;
    case CBINFER_MODE_SIGMADELTA: p.kind = CBI_POLICY_SIGMADELTA; break;
    default: break;
    }
    return p;
}

/* "key=N" with 0 <= lo <= N <= POLICY_MAX_INT, N decimal digits only. */
static int option_int(const char *opt, const char *key, int lo, int *out)
{
    const size_t n = strlen(key);
    if (strncmp(opt, key, n) != 0 || opt[n] != '=') return 0;
    const char *v = opt + n + 1;
    if (!*v) return -1;
    long x = 0;
    for (; *v; ++v) {
        if (*v < '0' || *v > '9') return -1;
        x = x * 10 + (*v - '0');
        if (x > POLICY_MAX_INT) return -1;
    }
    if (x < lo) return -1;
    *out = (int)x;
    return 1;
}

cbinfer_status cbi_policy_parse(const char *spec, cbi_policy *out, cbi_err *e)
{
    if (!spec) return cbi_fail(e, CBINFER_STATUS_NULL_ARGUMENT, "policy spec is NULL");
    char buf[256];
    if (strlen(spec) >= sizeof buf)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "policy spec of %zu characters is too long",
                        strlen(spec));
    strcpy(buf, spec);
    char *opts = strchr(buf, ':');
    if (opts) *opts++ = '\0';
    cbi_policy p = {.chunk = 1, .block = 1};
    if (strcmp(buf, "cbinfer") == 0) p.kind = CBI_POLICY_CBINFER;
    else if (strcmp(buf, "cbinfer-ff") == 0) p.kind = CBI_POLICY_CBINFER_FF;
    else if (strcmp(buf, "evnet") == 0) p.kind = CBI_POLICY_EVNET;
    else if (strcmp(buf, "skipconv") == 0) p.kind = CBI_POLICY_SKIPCONV;
    else if (strcmp(buf, "sigmadelta") == 0) p.kind = CBI_POLICY_SIGMADELTA;
    else
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM,
                        "unknown policy '%s' (cbinfer, cbinfer-ff, evnet, skipconv, sigmadelta)",
                        buf);
    if (opts && !*opts)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "policy '%s': empty option list", spec);
    for (char *opt = opts; opt;) {
        char *next = strchr(opt, ',');
        if (next) *next++ = '\0';
        int ok = 0, r;
        if (p.kind == CBI_POLICY_EVNET) {
            if (strcmp(opt, "element") == 0) ok = (p.chunk = 1);
            else if (strcmp(opt, "scatter") == 0) ok = (p.compute = CBI_COMPUTE_SCATTER);
            else if (strcmp(opt, "recompute") == 0) ok = (p.compute = CBI_COMPUTE_RECOMPUTE);
            else if (strcmp(opt, "pixel") == 0) { p.chunk = 0; ok = 1; }
            else if (strcmp(opt, "nomem") == 0) ok = (p.open_memory = 1);
            else if ((r = option_int(opt, "chunk", 1, &p.chunk)) != 0) ok = r > 0;
        } else if (p.kind == CBI_POLICY_SKIPCONV) {
            if (strcmp(opt, "input") == 0) { p.output_norm = 0; ok = 1; }
            else if (strcmp(opt, "output") == 0) ok = (p.output_norm = 1);
            else if ((r = option_int(opt, "block", 1, &p.block)) != 0) ok = r > 0;
            else if ((r = option_int(opt, "reset", 0, &p.reset)) != 0) ok = r > 0;
        } else if (p.kind == CBI_POLICY_SIGMADELTA) {
            if (strcmp(opt, "scatter") == 0) ok = (p.compute = CBI_COMPUTE_SCATTER);
            else if (strcmp(opt, "recompute") == 0) ok = (p.compute = CBI_COMPUTE_RECOMPUTE);
        }
        if (!ok)
            return cbi_fail(e, CBINFER_STATUS_BAD_PARAM,
                            "policy '%s': option '%s' is not one of %s", spec, *opt ? opt : "",
                            p.kind == CBI_POLICY_EVNET
                                ? "element, pixel, chunk=G (1..65536), nomem, scatter, recompute"
                            : p.kind == CBI_POLICY_SKIPCONV
                                ? "input, output, block=B (1..65536), reset=R (0..65536)"
                            : p.kind == CBI_POLICY_SIGMADELTA ? "scatter, recompute"
                                                              : "(this policy takes no options)");
        opt = next;
    }
    if (p.open_memory && p.compute == CBI_COMPUTE_RECOMPUTE)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM,
                        "policy '%s': recompute needs closed memory (nomem keeps deltas the "
                        "reference does not)", spec);
    *out = p;
    return CBINFER_STATUS_SUCCESS;
}

/* ",scatter" / ",recompute" (with sep first) for a compute other than AUTO. */
static const char *compute_suffix(const cbi_policy *p, const char *sep)
{
    static const char *const s[2][3] = {{"", ",scatter", ",recompute"},
                                        {"", ":scatter", ":recompute"}};
    return s[sep[0] == ':'][p->compute];
}

void cbi_policy_format(const cbi_policy *p, char *buf, size_t len)
{
    switch (p->kind) {
    case CBI_POLICY_CBINFER: snprintf(buf, len, "cbinfer"); return;
    case CBI_POLICY_CBINFER_FF: snprintf(buf, len, "cbinfer-ff"); return;
    case CBI_POLICY_SIGMADELTA:
        snprintf(buf, len, "sigmadelta%s", compute_suffix(p, ":"));
        return;
    case CBI_POLICY_EVNET: {
        char g[32];
        if (p->chunk == 0) snprintf(g, sizeof g, "pixel");
        else if (p->chunk == 1) snprintf(g, sizeof g, "element");
        else snprintf(g, sizeof g, "chunk=%d", p->chunk);
        snprintf(buf, len, "evnet:%s%s%s", g, p->open_memory ? ",nomem" : "",
                 compute_suffix(p, ","));
        return;
    }
    case CBI_POLICY_SKIPCONV:
        snprintf(buf, len, "skipconv:%s,block=%d,reset=%d", p->output_norm ? "output" : "input",
                 p->block, p->reset);
        return;
    }
    snprintf(buf, len, "?");
}

int cbi_activation_invertible(const cbi_activation *act, int channels)
{
    switch (act->kind) {
    case CBI_ACT_NONE: return 1;
    case CBI_ACT_LEAKY_RELU: return act->alpha > 0.f;
    case CBI_ACT_PRELU:
        for (int c = 0; c < (act->n_slope == 1 ? 1 : channels); ++c)
            if (!(act->slope[c] > 0.f)) return 0;
        return 1;
    default: return 0;
    }
}

int cbi_policy_keeps_accumulator(const cbi_policy *p, const cbi_node *n, int cin,
                                 size_t value_bytes)
{
    return cbi_policy_accumulates(p, cin) &&
           (!cbi_activation_invertible(&n->act, n->cout) || value_bytes < sizeof(float));
}

cbinfer_status cbi_policy_check_node(const cbi_policy *p, const cbi_node *n, cbi_err *e)
{
    if (n->op != CBI_OP_CONV || cbi_conv_groups(n) == 1 || p->kind == CBI_POLICY_CBINFER ||
        p->kind == CBI_POLICY_CBINFER_FF)
        return CBINFER_STATUS_SUCCESS;
    char spec[96];
    cbi_policy_format(p, spec, sizeof spec);
    return cbi_fail(e, CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR,
                    "node %s: policy %s does not support grouped convolutions (group %d) yet; "
                    "cbinfer and cbinfer-ff do",
                    n->name, spec, n->group);
}

float cbi_conv_weight_l1(const cbi_node *n, int cin)
{
    double l1 = 0;
    const size_t count = (size_t)n->cout * n->win.kh * n->win.kw * cbi_conv_group_cin(n, cin);
    for (size_t j = 0; j < count; ++j)
        l1 += fabs((double)n->weight[j]);
    return (float)l1;
}

size_t cbi_policy_state_bytes(const cbi_policy *p, const cbi_node *n, const cbi_node_plan *plan,
                              size_t value_bytes)
{
    const size_t ref = (size_t)plan->in.h * plan->in.w * plan->in.c * value_bytes;
    const size_t acc = cbi_policy_keeps_accumulator(p, n, plan->in.c, value_bytes)
                           ? (size_t)plan->out.h * plan->out.w * plan->out.c * sizeof(float)
                           : 0;
    return ref + acc;
}
