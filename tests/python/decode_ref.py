"""Independent numpy decoders of NanoDet and PoseNet outputs, for checking
the library's C decoders (cbinfer_decode_nanodet, cbinfer_decode_posenet)
on real frames. Written from the methods' descriptions (GFL / NanoDet's
post-processing; TensorFlow.js PoseNet's decodeMultiplePoses), in float64,
with vectorised box decoding and a plain list-based pose search, so that
they share no code and few habits with host/decode.c.
"""
import numpy as np

# PoseNet's keypoint tree: (parent, child), COCO keypoint ids.
POSE_CHAIN = [(0, 1), (1, 3), (0, 2), (2, 4), (0, 5), (5, 7), (7, 9), (5, 11),
              (11, 13), (13, 15), (0, 6), (6, 8), (8, 10), (6, 12), (12, 14), (14, 16)]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def stride_of(in_w, in_h, grid_w, grid_h):
    for s in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024):
        if -(-in_w // s) == grid_w and -(-in_h // s) == grid_h:
            return s
    raise ValueError("no stride")


def box_iou(a, b):
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def nanodet(heads, in_w, in_h, classes=80, score_thr=0.35, iou_thr=0.5):
    """heads: list of (C, H, W) arrays. Returns [x0, y0, x1, y1, score, class]
    rows, best first."""
    cands = []  # (class, -score, order, box, score)
    order0 = 0
    for head in heads:
        head = np.asarray(head, dtype=np.float64)
        c, h, w = head.shape
        bins = (c - classes) // 4
        s = stride_of(in_w, in_h, w, h)
        scores = sigmoid(head[:classes])                       # (classes, H, W)
        reg = head[classes:].reshape(4, bins, h, w)
        reg = np.exp(reg - reg.max(axis=1, keepdims=True))
        dist = (reg * np.arange(bins)[None, :, None, None]).sum(1) / reg.sum(1) * s
        ys, xs = np.mgrid[0:h, 0:w]
        cx, cy = (xs + 0.5) * s, (ys + 0.5) * s
        boxes = np.stack([np.clip(cx - dist[0], 0, in_w), np.clip(cy - dist[1], 0, in_h),
                          np.clip(cx + dist[2], 0, in_w), np.clip(cy + dist[3], 0, in_h)], -1)
        for k, y, x in zip(*np.nonzero(scores > score_thr)):
            cands.append((int(k), -scores[k, y, x], order0 + y * w + x, boxes[y, x],
                          scores[k, y, x]))
        order0 += h * w
    cands.sort(key=lambda t: (t[0], t[1], t[2]))
    kept = []
    for cls, _, order, box, score in cands:
        if all(k[0] != cls or box_iou(box, k[3]) <= iou_thr for k in kept):
            kept.append((cls, -score, order, box, score))
    kept.sort(key=lambda t: (t[1], t[0], t[2]))
    return [list(map(float, k[3])) + [float(k[4]), k[0]] for k in kept]


def posenet(heat, off, fwd, bwd, in_w, in_h, score_thr=0.5, nms_radius=20.0, max_poses=20):
    """Arrays (C, H, W). Returns [(score, [(x, y, score) * 17])], in decode order."""
    scores = sigmoid(heat)
    off = np.asarray(off, dtype=np.float64)
    fwd = np.asarray(fwd, dtype=np.float64)
    bwd = np.asarray(bwd, dtype=np.float64)
    nk, gh, gw = scores.shape
    stride = stride_of(in_w, in_h, gw, gh)
    heat = np.asarray(heat, dtype=np.float64)

    queue = []
    for k in range(nk):
        for y in range(gh):
            for x in range(gw):
                if scores[k, y, x] < score_thr:
                    continue
                win = heat[k, max(y - 1, 0):y + 2, max(x - 1, 0):x + 2]
                if (win > heat[k, y, x]).any():
                    continue
                queue.append((-heat[k, y, x], y, x, k))
    queue.sort()

    def image_coords(k, y, x):
        return y * stride + off[k, y, x], x * stride + off[k + nk, y, x]

    def near_cell(py, px):
        # JavaScript's Math.round: halves up.
        cy = int(np.floor(py / stride + 0.5))
        cx = int(np.floor(px / stride + 0.5))
        return min(max(cy, 0), gh - 1), min(max(cx, 0), gw - 1)

    def traverse(edge, src, target, disp):
        sy, sx = near_cell(src[0], src[1])
        ne = disp.shape[0] // 2
        pt = (src[0] + disp[edge, sy, sx], src[1] + disp[edge + ne, sy, sx])
        for _ in range(2):
            ty, tx = near_cell(*pt)
            pt = image_coords(target, ty, tx)
        ty, tx = near_cell(*pt)
        return (pt[0], pt[1], scores[target, ty, tx])

    r2 = nms_radius ** 2

    def near_earlier(poses, k, py, px):
        return any((p[1][k][0] - py) ** 2 + (p[1][k][1] - px) ** 2 <= r2 for p in poses)

    poses = []  # (score, keypoints as (y, x, score))
    for neg, y, x, k in queue:
        if len(poses) >= max_poses:
            break
        ry, rx = image_coords(k, y, x)
        if near_earlier(poses, k, ry, rx):
            continue
        kps = [None] * nk
        kps[k] = (ry, rx, sigmoid(-neg))
        for e in reversed(range(len(POSE_CHAIN))):
            parent, child = POSE_CHAIN[e]
            if kps[child] is not None and kps[parent] is None:
                kps[parent] = traverse(e, kps[child], parent, bwd)
        for e in range(len(POSE_CHAIN)):
            parent, child = POSE_CHAIN[e]
            if kps[parent] is not None and kps[child] is None:
                kps[child] = traverse(e, kps[parent], child, fwd)
        score = sum(p[2] for j, p in enumerate(kps)
                    if not near_earlier(poses, j, p[0], p[1])) / nk
        poses.append((score, kps))
    return [(float(s), [(float(p[1]), float(p[0]), float(p[2])) for p in kps])
            for s, kps in poses]
