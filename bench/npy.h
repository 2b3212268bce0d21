/*
 * NumPy .npy files of float32 ('<f4', C order), for cbinfer-bench's
 * --dump-output and --input-npy. Writes format 1.0 with a 64-byte aligned
 * header as numpy.save does; reads versions 1.0, 2.0 and 3.0.
 * Functions return 0 on success and -1 on error, with a message in err.
 */
#ifndef CBI_NPY_H
#define CBI_NPY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CBI_NPY_MAX_DIMS 8

/* Writes a float32 array of ndim (0..CBI_NPY_MAX_DIMS) dimensions, little
 * endian whatever the host. The file is replaced if it exists. */
int cbi_npy_write_f32(const char *path, const float *data, const int64_t *shape, int ndim,
                      char *err, size_t err_len);

/* Reads a float32 C-order array. On success *data owns a malloc'ed buffer of
 * the product of shape[0..*ndim-1] floats (free() it; at least one float is
 * allocated even for an empty array). Rejects other dtypes, Fortran order,
 * truncated or oversized data with a message. */
int cbi_npy_read_f32(const char *path, float **data, int64_t shape[CBI_NPY_MAX_DIMS], int *ndim,
                     char *err, size_t err_len);

/* Parses the header dictionary text (what follows the length field, len
 * bytes, not NUL-terminated), e.g. "{'descr': '<f4', 'fortran_order': False,
 * 'shape': (1, 3, 4, 5), }". Exposed for tests. */
int cbi_npy_parse_header(const char *text, size_t len, int64_t shape[CBI_NPY_MAX_DIMS], int *ndim,
                         char *err, size_t err_len);

#ifdef __cplusplus
}
#endif

#endif /* CBI_NPY_H */
