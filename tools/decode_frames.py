#!/usr/bin/env python3
"""Decodes frames of a video to raw rgb24 with OpenCV, for a machine without
FFmpeg's development files (tools/gpu_check.sh on the GPU machine, whose
python3 has opencv-python-headless).

    python3 tools/decode_frames.py VIDEO --start S --count N [--size WxH] OUT

Writes N frames from frame S (resized with bilinear interpolation when --size
is given) to OUT, as cbinfer-bench --raw WxH:OUT reads them, and prints W x H.
OpenCV's decoder and colour conversion are not FFmpeg's swscale: pixels may
differ from what cbinfer-bench --video gives by a level or two, so compare
dense against change-based on the same decoded frames, as --mode compare does.
"""
import argparse
import sys

import cv2


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("video")
    ap.add_argument("out")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--size", default="", help="WxH (default: the video's own)")
    a = ap.parse_args()
    size = tuple(int(v) for v in a.size.split("x")) if a.size else None
    cap = cv2.VideoCapture(a.video)
    if not cap.isOpened():
        sys.exit(f"decode_frames: cannot open {a.video}")
    with open(a.out, "wb") as f:
        index = written = 0
        while written < a.count:
            ok, bgr = cap.read()
            if not ok:
                sys.exit(f"decode_frames: {a.video} ended at frame {index}, "
                         f"before frame {a.start + a.count - 1}")
            if index >= a.start:
                if size:
                    bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR)
                f.write(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).tobytes())
                written += 1
            index += 1
    h, w = bgr.shape[:2]
    print(f"{w}x{h}")


if __name__ == "__main__":
    main()
