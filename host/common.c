#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

cbinfer_status cbi_fail(cbi_err *e, cbinfer_status status, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return status;
}

void cbi_err_copy(const cbi_err *e, char *dst, size_t dst_len)
{
    if (!dst || dst_len == 0) return;
    snprintf(dst, dst_len, "%s", e ? e->msg : "");
}

void *cbi_calloc(size_t count, size_t size)
{
    if (count == 0 || size == 0) return calloc(1, 1);
    return calloc(count, size);
}

void *cbi_malloc_array(size_t count, size_t size)
{
    if (count == 0 || size == 0) return malloc(1);
    if (count > SIZE_MAX / size) return NULL;
    return malloc(count * size);
}

char *cbi_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

double cbi_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}
