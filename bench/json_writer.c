/* Streaming JSON writer; see json_writer.h. */
#include "json_writer.h"

#include <math.h>

void cbi_json_init(cbi_json *j, FILE *f)
{
    j->f = f;
    j->depth = 0;
    j->count[0] = 0;
    j->error = 0;
}

void cbi_json_write_escaped(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; ++p) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

/* Comma, newline and indentation before a value, then its key if any. */
static void prefix(cbi_json *j, const char *key)
{
    if (j->depth > 0) {
        if (j->count[j->depth]++ > 0) fputc(',', j->f);
        fputc('\n', j->f);
        for (int i = 0; i < j->depth; ++i) fputs("  ", j->f);
    }
    if (key) {
        cbi_json_write_escaped(j->f, key);
        fputs(": ", j->f);
    }
}

static void json_open(cbi_json *j, const char *key, char c)
{
    prefix(j, key);
    fputc(c, j->f);
    if (j->depth + 1 >= CBI_JSON_MAX_DEPTH) {
        j->error = 1;
        return;
    }
    j->count[++j->depth] = 0;
}

static void json_close(cbi_json *j, char c)
{
    if (j->depth <= 0) {
        j->error = 1;
        return;
    }
    int had = j->count[j->depth];
    --j->depth;
    if (had) {
        fputc('\n', j->f);
        for (int i = 0; i < j->depth; ++i) fputs("  ", j->f);
    }
    fputc(c, j->f);
    if (j->depth == 0) fputc('\n', j->f);
}

void cbi_json_begin_object(cbi_json *j, const char *key) { json_open(j, key, '{'); }
void cbi_json_end_object(cbi_json *j) { json_close(j, '}'); }
void cbi_json_begin_array(cbi_json *j, const char *key) { json_open(j, key, '['); }
void cbi_json_end_array(cbi_json *j) { json_close(j, ']'); }

void cbi_json_string(cbi_json *j, const char *key, const char *s)
{
    prefix(j, key);
    if (s)
        cbi_json_write_escaped(j->f, s);
    else
        fputs("null", j->f);
}

void cbi_json_number(cbi_json *j, const char *key, double v)
{
    prefix(j, key);
    if (isfinite(v))
        fprintf(j->f, "%.10g", v == 0.0 ? 0.0 : v); /* no "-0" */
    else
        fputs("null", j->f);
}

void cbi_json_int(cbi_json *j, const char *key, long long v)
{
    prefix(j, key);
    fprintf(j->f, "%lld", v);
}

void cbi_json_bool(cbi_json *j, const char *key, int v)
{
    prefix(j, key);
    fputs(v ? "true" : "false", j->f);
}

void cbi_json_null(cbi_json *j, const char *key)
{
    prefix(j, key);
    fputs("null", j->f);
}
