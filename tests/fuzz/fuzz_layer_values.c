/*
 * libFuzzer target: the layer-value file parser (thresholds and break-even
 * shares, cbinfer_stream_load_thresholds / _load_break_even), through the
 * public API on a stream of the seed graph add.onnx (convolutions c0, c1).
 * A load either sets values inside the documented range or changes nothing
 * and says why.
 */
#include "fuzz_util.h" /* first: it defines _GNU_SOURCE */

#include <math.h>

#include "cbinfer.h"

static cbinfer_network_t *g_net;
static cbinfer_stream_t *g_stream;
static const char *const g_convs[] = {"c0", "c1"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[512];
    FUZZ_CHECK(cbinfer_network_load(CBINFER_FUZZ_SEEDS "/onnx/add.onnx", &g_net, err,
                                    sizeof err) == CBINFER_STATUS_SUCCESS);
    FUZZ_CHECK(cbinfer_network_conv_count(g_net) == 2);
    FUZZ_CHECK(cbinfer_stream_create(g_net, 8, 8, CBINFER_BACKEND_CPU,
                                     CBINFER_MODE_CBINFER, CBINFER_PRECISION_FP32,
                                     &g_stream, err, sizeof err) == CBINFER_STATUS_SUCCESS);
    return 0;
}

typedef cbinfer_status (*load_fn)(cbinfer_stream_t *, const char *);
typedef cbinfer_status (*get_fn)(const cbinfer_stream_t *, const char *, float *);

static void check_load(load_fn load, get_fn get, const char *path, float max_value)
{
    float before[2], after[2];
    for (int i = 0; i < 2; ++i) FUZZ_CHECK(get(g_stream, g_convs[i], &before[i]) == 0);
    const cbinfer_status st = load(g_stream, path);
    for (int i = 0; i < 2; ++i) FUZZ_CHECK(get(g_stream, g_convs[i], &after[i]) == 0);
    if (st == CBINFER_STATUS_SUCCESS) {
        for (int i = 0; i < 2; ++i)
            FUZZ_CHECK(isfinite(after[i]) && after[i] >= 0.f && after[i] <= max_value);
    } else {
        FUZZ_CHECK(st == CBINFER_STATUS_BAD_PARAM || st == CBINFER_STATUS_UNKNOWN_NODE);
        FUZZ_CHECK(cbinfer_stream_last_error(g_stream)[0] != '\0');
        FUZZ_CHECK(memcmp(before, after, sizeof before) == 0); /* all or nothing */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    const int fd = fuzz_memfd(data, size, path, sizeof path);
    check_load(cbinfer_stream_load_thresholds, cbinfer_stream_get_threshold, path, INFINITY);
    check_load(cbinfer_stream_load_break_even, cbinfer_stream_get_break_even, path, 1.f);
    close(fd);
    return 0;
}
