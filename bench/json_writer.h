/*
 * A small streaming JSON writer for cbinfer-bench's reports: objects, arrays,
 * escaped strings, numbers (non-finite numbers are written as null, which
 * JSON has no other way to say). Commas and indentation are handled here, so
 * callers only say what comes next. No allocation; nesting up to
 * CBI_JSON_MAX_DEPTH.
 */
#ifndef CBI_JSON_WRITER_H
#define CBI_JSON_WRITER_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CBI_JSON_MAX_DEPTH 32

typedef struct cbi_json {
    FILE *f;
    int depth;
    int count[CBI_JSON_MAX_DEPTH]; /* members written at each level */
    int error;                     /* nesting misuse; the output is not valid then */
} cbi_json;

void cbi_json_init(cbi_json *j, FILE *f);

/* `key` names the member inside an object and must be NULL inside an array
 * or at the top level. */
void cbi_json_begin_object(cbi_json *j, const char *key);
void cbi_json_end_object(cbi_json *j);
void cbi_json_begin_array(cbi_json *j, const char *key);
void cbi_json_end_array(cbi_json *j);
void cbi_json_string(cbi_json *j, const char *key, const char *s); /* NULL: null */
void cbi_json_number(cbi_json *j, const char *key, double v);      /* NaN, inf: null */
void cbi_json_int(cbi_json *j, const char *key, long long v);
void cbi_json_bool(cbi_json *j, const char *key, int v);
void cbi_json_null(cbi_json *j, const char *key);

/* Writes s as a JSON string literal (quotes included) with ", \ and control
 * characters escaped; bytes >= 0x80 pass through (UTF-8 stays UTF-8). */
void cbi_json_write_escaped(FILE *f, const char *s);

#ifdef __cplusplus
}
#endif

#endif /* CBI_JSON_WRITER_H */
