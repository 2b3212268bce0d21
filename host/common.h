/*
 * Small shared helpers of the library: error messages, checked allocation,
 * timing. Private to the library.
 */
#ifndef CBI_COMMON_H
#define CBI_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "cbinfer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A detailed error message; every internal function that can fail takes one. */
typedef struct cbi_err {
    char msg[1024];
} cbi_err;

/* Formats msg into e (if not NULL) and returns status, so that a failure is one
 * line: `return cbi_fail(e, CBINFER_STATUS_BAD_PARAM, "node %s: ...", name);` */
cbinfer_status cbi_fail(cbi_err *e, cbinfer_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Copies e's message into a caller buffer (NUL-terminated, truncated). */
void cbi_err_copy(const cbi_err *e, char *dst, size_t dst_len);

/* Overflow-checked allocation helpers; NULL on overflow or failure. The
 * memory is touched page by page (see touch() in common.c). */
void *cbi_calloc(size_t count, size_t size);
void *cbi_malloc_array(size_t count, size_t size);
/* The memory the kernel can still give without swapping (Linux's
 * MemAvailable) into *bytes: 1, or 0 where the system does not say. */
int cbi_mem_available(uint64_t *bytes);
char *cbi_strdup(const char *s);

/* Monotonic time in milliseconds. */
double cbi_now_ms(void);

#ifdef __cplusplus
}
#endif

#endif /* CBI_COMMON_H */
