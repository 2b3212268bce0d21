/*
 * NumPy .npy reader and writer for float32 arrays. Format:
 * https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 * magic "\x93NUMPY", version (major, minor), header length (uint16 LE in 1.0,
 * uint32 LE in 2.0/3.0), a Python dict literal padded with spaces and ended by
 * '\n' so the data starts at a multiple of 64 bytes, then the raw data.
 */
#define _POSIX_C_SOURCE 200809L /* fstat, fileno */
#include "npy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* numpy.lib.format.ARRAY_ALIGN: data offsets are multiples of this. */
#define NPY_ALIGN 64
/* A header longer than this is not one numpy would write for a plain array;
 * refusing it bounds the allocation a corrupt length field can cause. */
#define NPY_MAX_HEADER (1u << 20)

static int fail(char *err, size_t n, const char *fmt, ...)
{
    if (err && n > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static void swap4(void *p, size_t count)
{
    unsigned char *b = p;
    for (size_t i = 0; i < count; ++i, b += 4) {
        unsigned char t0 = b[0], t1 = b[1];
        b[0] = b[3];
        b[1] = b[2];
        b[2] = t1;
        b[3] = t0;
    }
}

/* Element count of a shape, or -1 if it overflows what a size_t of bytes
 * can hold. */
static int64_t shape_count(const int64_t *shape, int ndim)
{
    int64_t count = 1;
    for (int i = 0; i < ndim; ++i) {
        if (shape[i] < 0) return -1;
        if (shape[i] != 0 && count > (int64_t)(SIZE_MAX / 4) / shape[i]) return -1;
        count *= shape[i];
    }
    return count;
}

/* --------------------------------------------------------------- write --- */

int cbi_npy_write_f32(const char *path, const float *data, const int64_t *shape, int ndim,
                      char *err, size_t err_len)
{
    if (!path || (!data && ndim > 0) || (!shape && ndim > 0))
        return fail(err, err_len, "npy write: NULL argument");
    if (ndim < 0 || ndim > CBI_NPY_MAX_DIMS)
        return fail(err, err_len, "npy write: %d dimensions (0..%d supported)", ndim,
                    CBI_NPY_MAX_DIMS);
    int64_t count = shape_count(shape, ndim);
    if (count < 0) return fail(err, err_len, "npy write: bad shape");

    /* The dict exactly as numpy.save writes it: a 1-tuple keeps its comma. */
    char dict[512];
    int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < ndim; ++i)
        len += snprintf(dict + len, sizeof dict - (size_t)len, "%s%lld", i ? ", " : "",
                        (long long)shape[i]);
    len += snprintf(dict + len, sizeof dict - (size_t)len, "%s), }", ndim == 1 ? "," : "");

    /* 10 bytes of preamble + dict + padding + '\n' = a multiple of 64. */
    size_t total = 10 + (size_t)len + 1;
    size_t padded = (total + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    size_t header_len = padded - 10;
    unsigned char head[10 + 512 + NPY_ALIGN];
    memcpy(head, npy_magic, 6);
    head[6] = 1;
    head[7] = 0;
    head[8] = (unsigned char)(header_len & 0xff);
    head[9] = (unsigned char)(header_len >> 8);
    memcpy(head + 10, dict, (size_t)len);
    memset(head + 10 + len, ' ', header_len - (size_t)len - 1);
    head[padded - 1] = '\n';

    FILE *f = fopen(path, "wb");
    if (!f) return fail(err, err_len, "cannot create '%s': %s", path, strerror(errno));
    int ok = fwrite(head, 1, padded, f) == padded;
    if (ok && count > 0) {
        if (host_is_little_endian()) {
            ok = fwrite(data, 4, (size_t)count, f) == (size_t)count;
        } else {
            /* Swap through a small buffer rather than a copy of the array. */
            float chunk[1024];
            for (int64_t done = 0; ok && done < count; done += 1024) {
                size_t m = (size_t)(count - done < 1024 ? count - done : 1024);
                memcpy(chunk, data + done, m * 4);
                swap4(chunk, m);
                ok = fwrite(chunk, 4, m, f) == m;
            }
        }
    }
    /* fclose flushes: a full disk may only show up here. */
    if (fclose(f) != 0) ok = 0;
    if (!ok) return fail(err, err_len, "writing '%s' failed: %s", path, strerror(errno));
    return 0;
}

/* --------------------------------------------------------------- parse --- */

typedef struct {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        ++c->p;
}

static int accept(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        ++c->p;
        return 1;
    }
    return 0;
}

/* A Python string literal in ' or " quotes, without escapes (numpy never
 * writes any in a header). */
static int parse_str(cursor *c, char *out, size_t out_len)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return -1;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= out_len) return -1;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return -1;
    ++c->p;
    out[n] = '\0';
    return 0;
}

static int match_word(cursor *c, const char *w)
{
    skip_ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0) {
        c->p += n;
        return 1;
    }
    return 0;
}

/* "(d0, d1, ...)" with an optional trailing comma; Python 2 wrote "3L". */
static int parse_shape(cursor *c, int64_t *shape, int *ndim, char *err, size_t n)
{
    if (!accept(c, '(')) return fail(err, n, "npy header: 'shape' is not a tuple");
    int k = 0;
    for (;;) {
        if (accept(c, ')')) break;
        skip_ws(c);
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return fail(err, n, "npy header: bad 'shape' tuple");
        int64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (v > (INT64_MAX - 9) / 10) return fail(err, n, "npy header: dimension too large");
            v = v * 10 + (*c->p++ - '0');
        }
        if (c->p < c->end && (*c->p == 'L' || *c->p == 'l')) ++c->p;
        if (k == CBI_NPY_MAX_DIMS)
            return fail(err, n, "npy header: more than %d dimensions", CBI_NPY_MAX_DIMS);
        shape[k++] = v;
        if (accept(c, ',')) continue;
        if (accept(c, ')')) break;
        return fail(err, n, "npy header: bad 'shape' tuple");
    }
    *ndim = k;
    return 0;
}

int cbi_npy_parse_header(const char *text, size_t len, int64_t shape[CBI_NPY_MAX_DIMS], int *ndim,
                         char *err, size_t err_len)
{
    if (!text || !shape || !ndim) return fail(err, err_len, "npy header: NULL argument");
    cursor c = {text, text + len};
    int have_descr = 0, have_order = 0, have_shape = 0;
    if (!accept(&c, '{')) return fail(err, err_len, "npy header: not a dict");
    for (;;) {
        if (accept(&c, '}')) break;
        char key[32];
        if (parse_str(&c, key, sizeof key) != 0 || !accept(&c, ':'))
            return fail(err, err_len, "npy header: malformed dict");
        if (strcmp(key, "descr") == 0) {
            char descr[32];
            if (have_descr++) return fail(err, err_len, "npy header: 'descr' given twice");
            if (parse_str(&c, descr, sizeof descr) != 0)
                return fail(err, err_len, "npy header: unsupported dtype (a structured or "
                                          "unreadable 'descr'; need '<f4', float32)");
            if (strcmp(descr, "<f4") != 0)
                return fail(err, err_len,
                            "npy header: unsupported dtype '%s' (need '<f4', little-endian float32;"
                            " convert with arr.astype('<f4'))",
                            descr);
        } else if (strcmp(key, "fortran_order") == 0) {
            if (have_order++) return fail(err, err_len, "npy header: 'fortran_order' given twice");
            if (match_word(&c, "True"))
                return fail(err, err_len, "npy header: Fortran-order arrays are not supported "
                                          "(save a C-contiguous array)");
            if (!match_word(&c, "False"))
                return fail(err, err_len, "npy header: 'fortran_order' is not True or False");
        } else if (strcmp(key, "shape") == 0) {
            if (have_shape++) return fail(err, err_len, "npy header: 'shape' given twice");
            if (parse_shape(&c, shape, ndim, err, err_len) != 0) return -1;
        } else {
            return fail(err, err_len, "npy header: unexpected key '%s'", key);
        }
        if (accept(&c, ',')) continue;
        if (accept(&c, '}')) break;
        return fail(err, err_len, "npy header: malformed dict");
    }
    skip_ws(&c);
    if (c.p != c.end) return fail(err, err_len, "npy header: text after the dict");
    if (!have_descr || !have_order || !have_shape)
        return fail(err, err_len, "npy header: missing key '%s'",
                    !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
    return 0;
}

/* ---------------------------------------------------------------- read --- */

int cbi_npy_read_f32(const char *path, float **data, int64_t shape[CBI_NPY_MAX_DIMS], int *ndim,
                     char *err, size_t err_len)
{
    if (data) *data = NULL;
    if (!path || !data || !shape || !ndim) return fail(err, err_len, "npy read: NULL argument");
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, err_len, "cannot open '%s': %s", path, strerror(errno));

    int rc = -1;
    char *header = NULL;
    float *buf = NULL;
    unsigned char pre[12];
    if (fread(pre, 1, 8, f) != 8 || memcmp(pre, npy_magic, 6) != 0) {
        fail(err, err_len, "'%s' is not a .npy file (bad magic)", path);
        goto done;
    }
    size_t header_len;
    if (pre[6] == 1) {
        if (fread(pre + 8, 1, 2, f) != 2) goto truncated;
        header_len = (size_t)pre[8] | (size_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 8, 1, 4, f) != 4) goto truncated;
        header_len = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 |
                     (size_t)pre[11] << 24;
    } else {
        fail(err, err_len, "'%s': unsupported .npy version %d.%d", path, pre[6], pre[7]);
        goto done;
    }
    if (header_len == 0 || header_len > NPY_MAX_HEADER) {
        fail(err, err_len, "'%s': bad .npy header length %zu", path, header_len);
        goto done;
    }
    header = malloc(header_len);
    if (!header) {
        fail(err, err_len, "out of memory reading '%s'", path);
        goto done;
    }
    if (fread(header, 1, header_len, f) != header_len) goto truncated;
    if (header[header_len - 1] != '\n') {
        fail(err, err_len, "'%s': .npy header does not end with a newline", path);
        goto done;
    }
    char msg[256];
    if (cbi_npy_parse_header(header, header_len, shape, ndim, msg, sizeof msg) != 0) {
        fail(err, err_len, "'%s': %s", path, msg);
        goto done;
    }
    int64_t count = shape_count(shape, *ndim);
    if (count < 0) {
        fail(err, err_len, "'%s': array too large", path);
        goto done;
    }
    /* A regular file must hold the data the header promises before that
     * much memory is taken for it. */
    struct stat sb;
    const long at = ftell(f);
    if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) && at >= 0) {
        const uint64_t have = (uint64_t)(sb.st_size - at), need = (uint64_t)count * 4;
        if (have < need) {
            fail(err, err_len, "'%s': truncated data (%llu of %lld floats)", path,
                 (unsigned long long)(have / 4), (long long)count);
            goto done;
        }
        if (have > need) {
            fail(err, err_len, "'%s': data longer than the shape in the header", path);
            goto done;
        }
    }
    buf = malloc(count > 0 ? (size_t)count * 4 : 4);
    if (!buf) {
        fail(err, err_len, "out of memory for %lld floats from '%s'", (long long)count, path);
        goto done;
    }
    size_t got = fread(buf, 4, (size_t)count, f);
    if (got != (size_t)count) {
        if (ferror(f)) {
            fail(err, err_len, "reading '%s' failed: %s", path, strerror(errno));
            goto done;
        }
        fail(err, err_len, "'%s': truncated data (%zu of %lld floats)", path, got,
             (long long)count);
        goto done;
    }
    /* Extra bytes mean the header does not describe the file. */
    if (fgetc(f) != EOF) {
        fail(err, err_len, "'%s': data longer than the shape in the header", path);
        goto done;
    }
    if (!host_is_little_endian()) swap4(buf, (size_t)count);
    *data = buf;
    buf = NULL;
    rc = 0;
    goto done;
truncated:
    fail(err, err_len, "'%s': truncated .npy header", path);
done:
    free(buf);
    free(header);
    fclose(f);
    return rc;
}
