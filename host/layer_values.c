/*
 * Per-layer value files. Numbers are parsed and printed without the C
 * locale's help (strtod and printf follow LC_NUMERIC, which an application
 * may have set to a comma decimal point; the library never calls setlocale).
 */
#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_values.h"

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Parses a decimal [+-]digits[.digits][(e|E)[+-]digits] (at least one
 * mantissa digit) at s. Returns the number of characters used, 0 if s does
 * not start with one. Up to 19 significant digits count; with at most that
 * many and a decimal exponent within ±22 the result is correctly rounded
 * (both factors are exact doubles), which covers every "%.9g" of a float. */
static size_t parse_decimal(const char *s, double *out)
{
    const char *p = s;
    int neg = 0, digits = 0, sig = 0;
    long exp10 = 0;
    uint64_t mant = 0;
    if (*p == '+' || *p == '-') neg = *p++ == '-';
    for (; is_digit(*p); ++p, ++digits) {
        if (mant == 0 && *p == '0') continue;
        if (sig < 19) {
            mant = mant * 10 + (uint64_t)(*p - '0');
            ++sig;
        } else {
            ++exp10; /* a dropped integer digit */
        }
    }
    if (*p == '.') {
        for (++p; is_digit(*p); ++p, ++digits) {
            if (mant == 0 && *p == '0') {
                --exp10;
                continue;
            }
            if (sig < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                ++sig;
                --exp10;
            }
        }
    }
    if (!digits) return 0;
    if (*p == 'e' || *p == 'E') {
        const char *q = p + 1;
        int eneg = 0;
        long e = 0;
        if (*q == '+' || *q == '-') eneg = *q++ == '-';
        if (is_digit(*q)) {
            for (; is_digit(*q); ++q)
                if (e < 100000) e = e * 10 + (*q - '0');
            exp10 += eneg ? -e : e;
            p = q;
        }
        /* else: the 'e' is not part of the number (trailing text). */
    }
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    double v = (double)mant;
    if (mant == 0)
        v = 0.0;
    else if (exp10 >= 0 && exp10 <= 22)
        v *= pow10[exp10];
    else if (exp10 < 0 && exp10 >= -22)
        v /= pow10[-exp10];
    else
        v *= pow(10.0, (double)exp10); /* far outside any sensible value: range-checked */
    *out = neg ? -v : v;
    return (size_t)(p - s);
}

static int find_conv_node(const cbi_net *net, const char *name, size_t len)
{
    for (int i = 0; i < net->n_conv; ++i) {
        const char *n = net->nodes[net->conv_nodes[i]].name;
        if (strlen(n) == len && memcmp(n, name, len) == 0) return net->conv_nodes[i];
    }
    return -1;
}

/* One non-comment line (NUL-terminated, no newline). */
static cbinfer_status parse_line(const cbi_net *net, const char *path, long line_no, char *line,
                                 double max_value, float *values, cbi_err *e)
{
    char *p = line;
    while (is_blank(*p)) ++p;
    const char *name = p;
    while (*p && !is_blank(*p)) ++p;
    const size_t name_len = (size_t)(p - name);
    while (is_blank(*p)) ++p;
    if (!*p)
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "%s:%ld: expected '<conv node> <value>'",
                        path, line_no);
    double v;
    const size_t used = parse_decimal(p, &v);
    const char *num = p;
    char *end = p + used;
    if (!used || (*end && !is_blank(*end))) {
        while (*end && !is_blank(*end)) ++end;
        *end = '\0';
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "%s:%ld: '%s' is not a decimal number",
                        path, line_no, num);
    }
    for (const char *q = end; *q; ++q)
        if (!is_blank(*q))
            return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "%s:%ld: trailing text '%s'", path,
                            line_no, q);
    const int id = find_conv_node(net, name, name_len);
    if (id < 0)
        return cbi_fail(e, CBINFER_STATUS_UNKNOWN_NODE, "%s:%ld: no Conv node named '%.*s'", path,
                        line_no, (int)name_len, name);
    if (!(v >= 0.0 && v <= max_value && v <= FLT_MAX))
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "%s:%ld: %.*s: %g outside [0, %g]", path,
                        line_no, (int)name_len, name, v, max_value < FLT_MAX ? max_value : FLT_MAX);
    values[id] = (float)v;
    return CBINFER_STATUS_SUCCESS;
}

/* Where a line break is at p (p < end): its length, 0 if none. Line breaks
 * are LF, CRLF and CR. */
static size_t line_break(const char *p, const char *end)
{
    if (*p == '\n') return 1;
    if (*p == '\r') return p + 1 < end && p[1] == '\n' ? 2 : 1;
    return 0;
}

/* The 1-based line number of position at in text. */
static long line_of(const char *text, const char *at)
{
    long line = 1;
    for (const char *p = text; p < at;) {
        const size_t br = line_break(p, at);
        line += br > 0;
        p += br ? br : 1;
    }
    return line;
}

/* Reads the whole file into a NUL-terminated buffer of at most
 * CBI_LAYER_VALUES_MAX_BYTES. A NUL byte, or more bytes than that, is not a
 * layer-value file; both are refused while reading, so that a device such as
 * /dev/zero ends the read at once. */
static cbinfer_status read_text(const char *path, char **text, size_t *len, cbi_err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return cbi_fail(e, CBINFER_STATUS_FILE_IO, "%s: cannot open for reading (errno %d)", path,
                        errno);
    char *buf = malloc(CBI_LAYER_VALUES_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return cbi_fail(e, CBINFER_STATUS_OUT_OF_MEMORY, "%s: read buffer", path);
    }
    size_t n = 0;
    cbinfer_status st = CBINFER_STATUS_SUCCESS;
    for (;;) {
        const size_t want = CBI_LAYER_VALUES_MAX_BYTES + 1 - n;
        const size_t got = fread(buf + n, 1, want < 4096 ? want : 4096, f);
        const char *nul = memchr(buf + n, '\0', got);
        if (nul) {
            st = cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "%s:%ld: NUL byte: not a text file", path,
                          line_of(buf, nul));
            break;
        }
        n += got;
        if (n > CBI_LAYER_VALUES_MAX_BYTES) {
            st = cbi_fail(e, CBINFER_STATUS_BAD_PARAM,
                          "%s: larger than %d bytes: not a layer-value file", path,
                          CBI_LAYER_VALUES_MAX_BYTES);
            break;
        }
        if (got == 0) {
            if (ferror(f)) st = cbi_fail(e, CBINFER_STATUS_FILE_IO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (st != CBINFER_STATUS_SUCCESS) {
        free(buf);
        return st;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return CBINFER_STATUS_SUCCESS;
}

cbinfer_status cbi_layer_values_read(const cbi_net *net, const char *path, double max_value,
                                     float *values, cbi_err *e)
{
    char *text = NULL;
    size_t len = 0;
    cbinfer_status st = read_text(path, &text, &len, e);
    if (st != CBINFER_STATUS_SUCCESS) return st;
    long line_no = 0;
    char *const stop = text + len;
    for (char *p = text; st == CBINFER_STATUS_SUCCESS && p < stop;) {
        char *end = p;
        while (end < stop && !line_break(end, stop)) ++end;
        char *next = end < stop ? end + line_break(end, stop) : stop;
        *end = '\0';
        ++line_no;
        const char *q = p;
        while (is_blank(*q)) ++q;
        if (*q && *q != '#') st = parse_line(net, path, line_no, p, max_value, values, e);
        p = next;
    }
    free(text);
    return st;
}

/* "%.9g" with a '.' whatever the locale's decimal point is. */
static void format_value(float v, char *out, size_t out_len)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%.9g", (double)v);
    const char *dp = localeconv()->decimal_point;
    const size_t dp_len = dp ? strlen(dp) : 0;
    size_t o = 0;
    for (const char *p = tmp; *p && o + 1 < out_len;) {
        if (dp_len && strncmp(p, dp, dp_len) == 0 && strcmp(dp, ".") != 0) {
            out[o++] = '.';
            p += dp_len;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

cbinfer_status cbi_layer_values_write(const cbi_net *net, const char *path, const char *header,
                                      const float *values, cbi_err *e)
{
    for (int i = 0; i < net->n_conv; ++i) {
        const char *n = net->nodes[net->conv_nodes[i]].name;
        int bad = !*n || *n == '#';
        for (const char *q = n; *q && !bad; ++q) bad = is_blank(*q);
        if (bad)
            return cbi_fail(e, CBINFER_STATUS_BAD_PARAM,
                            "Conv node name '%s' cannot be written to a layer file", n);
    }
    FILE *f = fopen(path, "w");
    if (!f)
        return cbi_fail(e, CBINFER_STATUS_FILE_IO, "%s: cannot open for writing (errno %d)", path,
                        errno);
    fputs(CBI_LAYER_VALUES_MAGIC "\n", f);
    for (const char *p = header; p && *p;) {
        const char *nl = strchr(p, '\n');
        const size_t len = nl ? (size_t)(nl - p) : strlen(p);
        fprintf(f, "# %.*s\n", (int)len, p);
        p += len + (nl ? 1 : 0);
    }
    for (int i = 0; i < net->n_conv; ++i) {
        char num[64];
        const int id = net->conv_nodes[i];
        format_value(values[id], num, sizeof num);
        fprintf(f, "%s %s\n", net->nodes[id].name, num);
    }
    const long size = ftell(f);
    const int failed = ferror(f);
    if (fclose(f) != 0 || failed)
        return cbi_fail(e, CBINFER_STATUS_FILE_IO, "%s: write error", path);
    if (size > CBI_LAYER_VALUES_MAX_BYTES) {
        remove(path);
        return cbi_fail(e, CBINFER_STATUS_BAD_PARAM,
                        "%s: %d layers make a file of %ld bytes, more than the %d bytes a "
                        "layer-value file may hold",
                        path, net->n_conv, size, CBI_LAYER_VALUES_MAX_BYTES);
    }
    return CBINFER_STATUS_SUCCESS;
}
