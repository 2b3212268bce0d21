/*
 * libFuzzer target: raw rgb24 frames (cbinfer-bench --raw WxH:path). The
 * input's first 8 bytes choose the frame sizes and the frames skipped:
 * in_w, in_h, out_w, out_h (each 1 + byte % 16, out 0 meaning "as in" when
 * the byte is 255), skip (byte % 4); three spare bytes; then the stream.
 * Every frame read must be whole; the end or a refusal comes with its status.
 */
#include "fuzz_util.h"
#include "video.h"

static int side(uint8_t b)
{
    return b == 255 ? 0 : 1 + b % 16;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8) return 0;
    const int in_w = 1 + data[0] % 16, in_h = 1 + data[1] % 16;
    const int out_w = side(data[2]), out_h = side(data[3]), skip = data[4] % 4;
    char path[64], err[256];
    const int fd = fuzz_memfd(data + 8, size - 8, path, sizeof path);
    cbi_video *v = NULL;
    err[0] = '\0';
    if (cbi_video_open_raw(path, in_w, in_h, out_w, out_h, skip, &v, err, sizeof err) != 0) {
        FUZZ_CHECK(v == NULL && err[0] != '\0');
        close(fd);
        return 0;
    }
    int w, h;
    cbi_video_size(v, &w, &h);
    FUZZ_CHECK(w >= 1 && h >= 1 && w <= 16 && h <= 16);
    uint8_t *rgb = malloc((size_t)w * h * 3);
    FUZZ_CHECK(rgb != NULL);
    const size_t frame = (size_t)in_w * in_h * 3;
    size_t frames = 0;
    int r;
    while ((r = cbi_video_read(v, rgb, err, sizeof err)) == 1) ++frames;
    /* Whole frames only: as many as the bytes hold, less the skipped ones
     * (open refuses to skip more); a partial last frame is an error. */
    FUZZ_CHECK(frames + (size_t)skip == (size - 8) / frame);
    FUZZ_CHECK(r == 0 ? (size - 8) % frame == 0 : r == -1 && err[0] != '\0');
    free(rgb);
    cbi_video_close(v);
    close(fd);
    return 0;
}
