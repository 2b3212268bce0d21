/*
 * Per-layer value files (thresholds, break-even shares): the plain-text
 * format documented at cbinfer_stream_load_thresholds() in cbinfer.h.
 * Private to the library.
 */
#ifndef CBI_LAYER_VALUES_H
#define CBI_LAYER_VALUES_H

#include "cbinfer.h"
#include "common.h"
#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The format's first line, written by cbi_layer_values_write(). */
#define CBI_LAYER_VALUES_MAGIC "# cbinfer layer values v1"
/* Larger files are refused: a layer-value file is a few lines per layer. */
#define CBI_LAYER_VALUES_MAX_BYTES (1 << 20)

/* Reads path and stores each named Conv node's value into values[node id]
 * (one float per node of net). Values must lie in [0, max_value]. Lines end
 * with LF, CRLF or CR. A file with a NUL byte or of more than
 * CBI_LAYER_VALUES_MAX_BYTES is refused. On failure values may be partly
 * written: callers pass a scratch copy. Messages are "path:line: ...".
 * Statuses: FILE_IO, UNKNOWN_NODE, BAD_PARAM, OUT_OF_MEMORY. */
cbinfer_status cbi_layer_values_read(const cbi_net *net, const char *path, double max_value,
                                     float *values, cbi_err *e);

/* Writes values[node id] of every Conv node of net, in execution order, after
 * the magic line and the header comment's lines prefixed with "# ".
 * Statuses: FILE_IO, BAD_PARAM (a node name the format cannot hold, or a
 * file over CBI_LAYER_VALUES_MAX_BYTES, which is removed again). */
cbinfer_status cbi_layer_values_write(const cbi_net *net, const char *path, const char *header,
                                      const float *values, cbi_err *e);

#ifdef __cplusplus
}
#endif

#endif /* CBI_LAYER_VALUES_H */
