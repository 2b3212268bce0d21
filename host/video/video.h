/*
 * Video input for bench/ and tests/: any file FFmpeg opens, or raw rgb24
 * frames from a file or stdin. Frames come out as interleaved RGB8,
 * optionally resized (swscale, bilinear). Not part of the core library.
 * Functions return 0 on success and -1 on error, with a message in err.
 */
#ifndef CBI_VIDEO_H
#define CBI_VIDEO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cbi_video cbi_video;

/* Opens a video file. out_w/out_h: output size (0, 0 = the video's own).
 * skip: frames decoded and dropped first (the start frame). */
int cbi_video_open(const char *path, int out_w, int out_h, int skip, cbi_video **out, char *err,
                   size_t err_len);

/* Opens raw rgb24 frames of in_w x in_h from path ("-" = stdin). */
int cbi_video_open_raw(const char *path, int in_w, int in_h, int out_w, int out_h, int skip,
                       cbi_video **out, char *err, size_t err_len);

/* Output frame size. */
void cbi_video_size(const cbi_video *v, int *width, int *height);

/* Reads the next frame into rgb (width * height * 3 bytes, tightly packed).
 * Returns 1 for a frame, 0 at the end of the input, -1 on error. */
int cbi_video_read(cbi_video *v, uint8_t *rgb, char *err, size_t err_len);

/* Closes; NULL accepted. */
void cbi_video_close(cbi_video *v);

#ifdef __cplusplus
}
#endif

#endif /* CBI_VIDEO_H */
