#!/usr/bin/python3
"""Draws the dense and the change-based results of one frame of a
cbinfer-bench --mode compare run onto that frame, as a PNG (matplotlib).

    build/bench/cbinfer-bench --workload nanodet --skip 400 --frames 200 \\
        --mode compare --threshold 0.02 --dump-frames /tmp/nd.rgb \\
        --dump-detections /tmp/nd.jsonl
    /usr/bin/python3 tools/plot_detections.py --frames /tmp/nd.rgb --size 384x288 \\
        --detections /tmp/nd.jsonl --frame 52 --out bench/results/nanodet_frame.png

--detections takes the JSON lines of --task detect (boxes) or --task pose
(keypoints and the skeleton); --frame is the dump's "frame" index, which is
also the frame's place in the --dump-frames file. Several --detections /
--frames / --size triples make one panel each. Dense results are drawn in
wide green, the change-based ones in thin dashed magenta over them.
"""
import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

COCO = ["person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
        "traffic light"]
SKELETON = [(0, 1), (1, 3), (0, 2), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (5, 11),
            (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16)]
KEYPOINT_MIN = 0.5  # what the bench's PCK counts as shown
POSE_MIN = 0.25


def load_frame(path, w, h, k):
    size = w * h * 3
    with open(path, "rb") as f:
        f.seek(size * k)
        data = f.read(size)
    if len(data) != size:
        sys.exit(f"plot_detections: {path} has no frame {k} of {w}x{h}")
    return np.frombuffer(data, np.uint8).reshape(h, w, 3)


def load_line(path, k):
    with open(path) as f:
        for line in f:
            d = json.loads(line)
            if d["frame"] == k:
                return d
    sys.exit(f"plot_detections: {path} has no frame {k}")


# Dense: wide and solid, under the change-based results: thin and dashed,
# with their labels below the box, so that both stay visible where they agree.
DENSE = dict(color="lime", ls="-", lw=3.0, alpha=0.8)
CHANGE = dict(color="magenta", ls="--", lw=1.2, alpha=1.0)


def draw_boxes(ax, boxes, st, label, above):
    for i, (x0, y0, x1, y1, score, cls) in enumerate(boxes):
        ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=st["lw"],
                                   ec=st["color"], ls=st["ls"], alpha=st["alpha"],
                                   label=label if i == 0 else None))
        name = COCO[int(cls)] if int(cls) < len(COCO) else f"class {int(cls)}"
        ax.text(x0, y0 - 2 if above else y1 + 7, f"{name} {score:.2f}", color=st["color"],
                fontsize=6)


def draw_poses(ax, poses, st, label):
    color, style = st["color"], st["ls"]
    first = True
    for p in poses:
        if p["score"] < POSE_MIN:
            continue
        kp = np.array(p["keypoints"])
        for a, b in SKELETON:
            if kp[a, 2] >= KEYPOINT_MIN and kp[b, 2] >= KEYPOINT_MIN:
                ax.plot(kp[[a, b], 0], kp[[a, b], 1], color=color, ls=style, lw=st["lw"],
                        alpha=st["alpha"], label=label if first else None)
                first = False
        shown = kp[:, 2] >= KEYPOINT_MIN
        ax.scatter(kp[shown, 0], kp[shown, 1], s=6, color=color)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", action="append", required=True, help="rgb24 file (--dump-frames)")
    ap.add_argument("--size", action="append", required=True, help="WxH of the frames")
    ap.add_argument("--detections", action="append", required=True,
                    help="JSON lines of a compare run (--dump-detections)")
    ap.add_argument("--frame", type=int, action="append", required=True,
                    help="frame index (one, or one per panel)")
    ap.add_argument("--title", action="append", help="panel title (one per panel)")
    ap.add_argument("--out", required=True, help="PNG to write")
    a = ap.parse_args()
    n = len(a.detections)
    if len(a.frames) != n or len(a.size) != n or len(a.frame) not in (1, n):
        sys.exit("plot_detections: give one --frames, --size (and --frame) per --detections")
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.4), squeeze=False)
    for i in range(n):
        w, h = (int(v) for v in a.size[i].split("x"))
        k = a.frame[i if len(a.frame) == n else 0]
        d = load_line(a.detections[i], k)
        if "dense" not in d:
            sys.exit(f"plot_detections: {a.detections[i]} is not from --mode compare")
        ax = axes[0][i]
        ax.imshow(load_frame(a.frames[i], w, h, k))
        if "detections" in d:
            draw_boxes(ax, d["dense"], DENSE, "dense", True)
            draw_boxes(ax, d["detections"], CHANGE, "change-based", False)
        else:
            draw_poses(ax, d["dense"], DENSE, "dense")
            draw_poses(ax, d["poses"], CHANGE, "change-based")
        ax.set_title(a.title[i] if a.title and i < len(a.title) else f"frame {k}", fontsize=9)
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.axis("off")
        ax.legend(loc="lower right", fontsize=7, framealpha=0.7)
    fig.tight_layout()
    fig.savefig(a.out, dpi=100)
    print(f"plot_detections: wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
