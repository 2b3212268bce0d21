/* Status strings, versions, step names, backend availability. */
#include "backend.h"

const char *cbinfer_status_string(cbinfer_status status)
{
    switch (status) {
    case CBINFER_STATUS_SUCCESS: return "success";
    case CBINFER_STATUS_NULL_ARGUMENT: return "a required argument was NULL";
    case CBINFER_STATUS_BAD_PARAM: return "an argument is out of range";
    case CBINFER_STATUS_BAD_FRAME_SIZE: return "the frame size does not fit the stream or network";
    case CBINFER_STATUS_UNKNOWN_NODE: return "no convolution node of that name";
    case CBINFER_STATUS_NOT_READY: return "no frame has been processed yet";
    case CBINFER_STATUS_BUFFER_TOO_SMALL: return "the caller's buffer is too small";
    case CBINFER_STATUS_FILE_IO: return "a file could not be opened, read or written";
    case CBINFER_STATUS_MODEL_IO: return "the model file could not be read";
    case CBINFER_STATUS_MODEL_MALFORMED: return "the model is not a valid ONNX file";
    case CBINFER_STATUS_MODEL_UNSUPPORTED_OP: return "the model uses an unsupported op";
    case CBINFER_STATUS_MODEL_UNSUPPORTED_ATTR: return "the model uses an unsupported attribute value";
    case CBINFER_STATUS_MODEL_WEIGHT_MISMATCH: return "a weight size does not match its op";
    case CBINFER_STATUS_MODEL_INVALID_GRAPH: return "the model graph is invalid";
    case CBINFER_STATUS_OUT_OF_MEMORY: return "out of memory";
    case CBINFER_STATUS_BACKEND_UNAVAILABLE: return "the backend is not available";
    case CBINFER_STATUS_BACKEND_ERROR: return "the backend reported an error";
    case CBINFER_STATUS_INTERNAL: return "internal error";
    }
    return "unknown status";
}

unsigned cbinfer_version(void)
{
    return CBINFER_VERSION_NUMBER;
}

const char *cbinfer_step_name(cbinfer_step step)
{
    static const char *const names[CBINFER_STEP_COUNT] = {
        [CBINFER_STEP_CHANGE_DETECT] = "change_detect",
        [CBINFER_STEP_DILATE] = "dilate",
        [CBINFER_STEP_EXTRACT] = "extract",
        [CBINFER_STEP_IM2COL] = "im2col",
        [CBINFER_STEP_GEMM] = "gemm",
        [CBINFER_STEP_UPDATE] = "update",
        [CBINFER_STEP_POOL] = "pool",
        [CBINFER_STEP_DENSE] = "dense",
    };
    return (unsigned)step < CBINFER_STEP_COUNT ? names[step] : NULL;
}

cbinfer_status cbinfer_backend_available(cbinfer_backend backend)
{
    switch (backend) {
    case CBINFER_BACKEND_CPU: return CBINFER_STATUS_SUCCESS;
    case CBINFER_BACKEND_CUDA:
#ifdef CBINFER_WITH_CUDA
        return cbi_cuda_device_count() > 0 ? CBINFER_STATUS_SUCCESS
                                           : CBINFER_STATUS_BACKEND_UNAVAILABLE;
#else
        return CBINFER_STATUS_BACKEND_UNAVAILABLE;
#endif
    }
    return CBINFER_STATUS_BAD_PARAM;
}
