/*
 * libFuzzer target: the .npy reader of cbinfer-bench's --input-npy. Any
 * input must come back as an array whose size matches its shape, or as a
 * refusal with a message.
 */
#include "fuzz_util.h"
#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64], err[256];
    const int fd = fuzz_memfd(data, size, path, sizeof path);
    float *arr = NULL;
    int64_t shape[CBI_NPY_MAX_DIMS];
    int ndim = -1;
    err[0] = '\0';
    if (cbi_npy_read_f32(path, &arr, shape, &ndim, err, sizeof err) == 0) {
        FUZZ_CHECK(arr != NULL && ndim >= 0 && ndim <= CBI_NPY_MAX_DIMS);
        size_t count = 1;
        for (int i = 0; i < ndim; ++i) {
            FUZZ_CHECK(shape[i] >= 0);
            count *= (size_t)shape[i];
        }
        /* The data is exactly the shape's floats: the rest of the file. */
        FUZZ_CHECK(count * 4 <= size);
        volatile float sink = 0.f;
        for (size_t i = 0; i < count; ++i) sink += arr[i]; /* ASan checks the extent */
        (void)sink;
        free(arr);
    } else {
        FUZZ_CHECK(arr == NULL && err[0] != '\0');
    }
    close(fd);
    return 0;
}
