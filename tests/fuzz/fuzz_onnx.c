/*
 * libFuzzer target: the ONNX loader and planner, through stream creation and
 * two frames (the first dense, the second change-based) on a small input.
 * A model is either refused with a message, or loads, plans and runs: no
 * crash, leak, hang or undefined behaviour on the way. Streams are created
 * under a memory cap (cbinfer_stream_create_limited), the same refusal a
 * service would use, so a graph that grows its tensors is refused rather
 * than exhausting the fuzzer's memory.
 */
#include "fuzz_util.h" /* first: it defines _GNU_SOURCE */

#include "cbinfer.h"

#define SIDE 12                       /* frame side where the model leaves it free */
#define MAX_SIDE 48                   /* larger fixed inputs are not run */
#define STREAM_CAP ((size_t)96 << 20) /* bytes */

static void run_stream(const cbinfer_network_t *net, int c, int w, int h)
{
    char err[512];
    uint64_t need = 0;
    const cbinfer_status est = cbinfer_stream_memory_bytes(
        net, w, h, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER, CBINFER_PRECISION_FP32, &need, err,
        sizeof err);
    cbinfer_stream_t *s = NULL;
    const cbinfer_status st =
        cbinfer_stream_create_limited(net, w, h, CBINFER_BACKEND_CPU, CBINFER_MODE_CBINFER,
                                      CBINFER_PRECISION_FP32, STREAM_CAP, &s, err, sizeof err);
    /* What the estimate refuses, creation refuses the same way; creation
     * refuses more only past the cap, or where a kernel cannot be made. */
    if (est != CBINFER_STATUS_SUCCESS) FUZZ_CHECK(st == est);
    if (st != CBINFER_STATUS_SUCCESS) {
        FUZZ_CHECK(s == NULL && err[0] != '\0');
        if (st == CBINFER_STATUS_OUT_OF_MEMORY && est == CBINFER_STATUS_SUCCESS)
            FUZZ_CHECK(need > STREAM_CAP);
        return;
    }
    FUZZ_CHECK(need <= STREAM_CAP);
    FUZZ_CHECK(cbinfer_stream_set_param(s, CBINFER_PARAM_THREADS, 1) == CBINFER_STATUS_SUCCESS);
    const size_t n_in = (size_t)c * h * w;
    float *in = malloc(n_in * sizeof *in);
    FUZZ_CHECK(in != NULL);
    for (size_t i = 0; i < n_in; ++i) in[i] = (float)(i * 37 % 256) / 255.f;
    for (int frame = 0; frame < 2; ++frame) {
        if (frame) in[h / 2 * w + w / 2] += 0.5f; /* one pixel changes */
        if (cbinfer_stream_push_nchw(s, in, c, h, w) != CBINFER_STATUS_SUCCESS) {
            FUZZ_CHECK(cbinfer_stream_last_error(s)[0] != '\0');
            break;
        }
        int oc, oh, ow;
        FUZZ_CHECK(cbinfer_stream_output_dims(s, &oc, &oh, &ow) == CBINFER_STATUS_SUCCESS);
        FUZZ_CHECK(oc > 0 && oh > 0 && ow > 0);
        const size_t n = (size_t)oc * oh * ow;
        float *out = malloc(n * sizeof *out);
        FUZZ_CHECK(out != NULL);
        FUZZ_CHECK(cbinfer_stream_read_output(s, out, n) == CBINFER_STATUS_SUCCESS);
        free(out);
    }
    free(in);
    cbinfer_stream_destroy(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cbinfer_network_t *net = NULL;
    char err[512];
    err[0] = '\0';
    if (cbinfer_network_load_memory(data, size, &net, err, sizeof err) != CBINFER_STATUS_SUCCESS) {
        FUZZ_CHECK(net == NULL && err[0] != '\0');
        return 0;
    }
    int c, h, w;
    FUZZ_CHECK(cbinfer_network_input_dims(net, &c, &h, &w) == CBINFER_STATUS_SUCCESS);
    const int n_conv = cbinfer_network_conv_count(net);
    FUZZ_CHECK(n_conv >= 0);
    for (int i = 0; i < n_conv; ++i) FUZZ_CHECK(cbinfer_network_conv_name(net, i) != NULL);
    if (n_conv > 1) FUZZ_CHECK(cbinfer_network_conv_reaches(net, n_conv - 1, 0) >= 0);
    if (h <= MAX_SIDE && w <= MAX_SIDE) run_stream(net, c, w > 0 ? w : SIDE, h > 0 ? h : SIDE);
    cbinfer_network_free(net);
    return 0;
}
