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

/* Writes a byte of every page, so that an overcommitting kernel backs the
 * memory now, while its owner is being created, rather than at first use. */
static void *touch(void *p, size_t bytes)
{
    volatile unsigned char *b = p;
    if (b)
        for (size_t i = 0; i < bytes; i += 4096) b[i] = 0;
    return p;
}

void *cbi_calloc(size_t count, size_t size)
{
    if (count == 0 || size == 0) return calloc(1, 1);
    return touch(calloc(count, size), count <= SIZE_MAX / size ? count * size : 0);
}

void *cbi_malloc_array(size_t count, size_t size)
{
    if (count == 0 || size == 0) return malloc(1);
    if (count > SIZE_MAX / size) return NULL;
    return touch(malloc(count * size), count * size);
}

int cbi_mem_available(uint64_t *bytes)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[128];
    unsigned long long kib = 0;
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, "MemAvailable: %llu kB", &kib) == 1;
    fclose(f);
    if (found) *bytes = (uint64_t)kib * 1024;
    return found;
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
