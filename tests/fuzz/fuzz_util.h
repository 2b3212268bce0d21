/*
 * Helpers of the libFuzzer targets: readers that take a path get the fuzz
 * input through an anonymous in-memory file (memfd), named by its
 * /proc/self/fd path, so no target touches the disk.
 */
#ifndef CBI_FUZZ_UTIL_H
#define CBI_FUZZ_UTIL_H

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A libFuzzer target may only crash on a bug, so a broken harness aborts
 * loudly rather than passing silently. */
#define FUZZ_CHECK(cond)                                                                          \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);              \
            abort();                                                                              \
        }                                                                                         \
    } while (0)

/* Writes size bytes into a new memfd and its path into path (>= 32 bytes).
 * Returns the descriptor; the caller closes it. */
static inline int fuzz_memfd(const uint8_t *data, size_t size, char *path, size_t path_len)
{
    const int fd = memfd_create("cbinfer-fuzz", 0);
    FUZZ_CHECK(fd >= 0);
    for (size_t done = 0; done < size;) {
        const ssize_t n = write(fd, data + done, size - done);
        FUZZ_CHECK(n > 0);
        done += (size_t)n;
    }
    snprintf(path, path_len, "/proc/self/fd/%d", fd);
    return fd;
}

#endif /* CBI_FUZZ_UTIL_H */
