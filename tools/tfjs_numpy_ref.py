#!/usr/bin/python3
"""A numpy evaluator of TensorFlow.js graph models, in TensorFlow's own terms.

The independent side of the converter check: it runs the TF graph as TF
defines its ops (NHWC, TF's SAME padding with the odd pixel at the end,
ResizeBilinear's half-pixel and legacy sampling, depthwise channel order
c * multiplier + m), node by node from the GraphDef, float64 by default, up to
the graph's signature outputs (post-processing included). It shares nothing
with tools/convert_tfjs.py but the reading of the weights file.

Library use:
    import tfjs_numpy_ref as tref
    outs = tref.run("nanodet.json", {"input_1": x})   # {signature output name: array}

Command line (prints each output's shape and range on a random input):
    /usr/bin/python3 tools/tfjs_numpy_ref.py MODEL.json
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_tfjs import attr, data_inputs, load_tfjs, split_input  # noqa: E402


def _same_pads(n, k, s, d):
    """TF SAME: total = max((ceil(n/s) - 1) * s + eff_k - n, 0), before = total // 2."""
    eff = (k - 1) * d + 1
    out = -(-n // s)
    total = max((out - 1) * s + eff - n, 0)
    return total // 2, total - total // 2


def _windows(x, kh, kw, strides, dilations, padding, pad_value=0.0):
    """x [N,H,W,C] -> list of ((ky, kx), view [N,OH,OW,C]) after TF padding."""
    n, h, w, c = x.shape
    sh, sw = strides[1], strides[2]
    dh, dw = dilations[1], dilations[2]
    if padding == "SAME":
        (t, b), (l, r) = _same_pads(h, kh, sh, dh), _same_pads(w, kw, sw, dw)
    elif padding == "VALID":
        t = b = l = r = 0
    else:
        raise NotImplementedError(f"padding {padding}")
    xp = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=pad_value)
    oh = (h + t + b - (kh - 1) * dh - 1) // sh + 1
    ow = (w + l + r - (kw - 1) * dw - 1) // sw + 1
    views = []
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dh, kx * dw
            views.append(((ky, kx), xp[:, y0:y0 + (oh - 1) * sh + 1:sh,
                                       x0:x0 + (ow - 1) * sw + 1:sw, :]))
    return views


def _conv2d(x, w, node):
    """w [kh, kw, cin, cout] (HWIO)."""
    views = _windows(x, w.shape[0], w.shape[1], attr(node, "strides", [1] * 4),
                     attr(node, "dilations", [1] * 4), attr(node, "padding"))
    return sum(np.tensordot(v, w[ky, kx], axes=([3], [0])) for (ky, kx), v in views)


def _depthwise(x, w, node):
    """w [kh, kw, cin, mult]; output channel c * mult + m."""
    views = _windows(x, w.shape[0], w.shape[1], attr(node, "strides", [1] * 4),
                     attr(node, "dilations", [1] * 4), attr(node, "padding"))
    cin, mult = w.shape[2], w.shape[3]
    acc = sum(v[..., :, None] * w[ky, kx][None, None, None] for (ky, kx), v in views)
    return acc.reshape(acc.shape[:3] + (cin * mult,))


def _fused(y, node, ins, env):
    ops = attr(node, "fused_ops", [])
    if ops and ops[0] == "BiasAdd":
        y = y + env[ins[2]]
        ops = ops[1:]
    for op in ops:
        if op == "Relu":
            y = np.maximum(y, 0)
        elif op == "Relu6":
            y = np.clip(y, 0, 6)
        else:
            raise NotImplementedError(f"fused op {op}")
    return y


def _resize_bilinear(x, size, half_pixel, align_corners):
    """TF's ResizeBilinear kernel: per axis in = (o + 0.5) * scale - 0.5 with
    half-pixel centres (scale = in/out), else o * scale (scale (in-1)/(out-1)
    with align_corners); taps floor(in) clamped at 0 and min(ceil(in), n-1),
    weight in - floor(in)."""
    def axis(n_in, n_out):
        if align_corners and n_out > 1:
            scale = (n_in - 1) / (n_out - 1)
        else:
            scale = n_in / n_out
        o = np.arange(n_out, dtype=np.float64)
        src = (o + 0.5) * scale - 0.5 if half_pixel else o * scale
        lo_f = np.floor(src)
        lo = np.maximum(lo_f, 0).astype(np.int64)
        hi = np.minimum(np.ceil(src), n_in - 1).astype(np.int64)
        return lo, hi, src - lo_f

    n, h, w, c = x.shape
    y0, y1, fy = axis(h, int(size[0]))
    x0, x1, fx = axis(w, int(size[1]))
    fy, fx = fy[None, :, None, None], fx[None, None, :, None]
    top_l, top_r = x[:, y0][:, :, x0], x[:, y0][:, :, x1]
    bot_l, bot_r = x[:, y1][:, :, x0], x[:, y1][:, :, x1]
    top = top_l + (top_r - top_l) * fx
    bot = bot_l + (bot_r - bot_l) * fx
    return top + (bot - top) * fy


def _eval(node, ins, env, dtype):
    op = node["op"]
    a = [env[r] for r in ins]
    if op in ("Identity",):
        return a[0]
    if op == "Transpose":
        return np.transpose(a[0], [int(p) for p in a[1]])
    if op in ("Pad", "PadV2"):
        value = a[2].item() if op == "PadV2" else 0.0
        return np.pad(a[0], [tuple(int(v) for v in p) for p in a[1]], constant_values=value)
    if op == "Conv2D":
        return _conv2d(a[0], a[1], node)
    if op == "_FusedConv2D":
        return _fused(_conv2d(a[0], a[1], node), node, ins, env)
    if op == "DepthwiseConv2dNative":
        return _depthwise(a[0], a[1], node)
    if op == "FusedDepthwiseConv2dNative":
        return _fused(_depthwise(a[0], a[1], node), node, ins, env)
    if op in ("Add", "AddV2", "BiasAdd"):
        return a[0] + a[1]
    if op == "LeakyRelu":
        alpha = np.float32(attr(node, "alpha", 0.2))  # a float attribute: float32 in TF
        return np.where(a[0] >= 0, a[0], a[0] * alpha)
    if op == "Relu":
        return np.maximum(a[0], 0)
    if op == "Relu6":
        return np.clip(a[0], 0, 6)
    if op == "Sigmoid":
        return 1.0 / (1.0 + np.exp(-a[0]))
    if op == "MaxPool":
        k = attr(node, "ksize")
        views = _windows(a[0], k[1], k[2], attr(node, "strides"), [1] * 4,
                         attr(node, "padding"), pad_value=-np.inf)
        return np.max(np.stack([v for _, v in views]), axis=0)
    if op == "ConcatV2":
        return np.concatenate(a[:-1], axis=int(a[-1]))
    if op == "ResizeBilinear":
        return _resize_bilinear(a[0], a[1], attr(node, "half_pixel_centers", False),
                                attr(node, "align_corners", False))
    if op == "Reshape":
        return a[0].reshape([int(v) for v in a[1]])
    if op == "SplitV":
        sizes, axis = [int(v) for v in a[1]], int(a[2])
        if -1 in sizes:
            sizes[sizes.index(-1)] = a[0].shape[axis] - (sum(sizes) + 1)
        return np.split(a[0], np.cumsum(sizes)[:-1], axis=axis)
    if op == "SparseToDense":
        idx, shape, values, default = a
        out = np.full([int(v) for v in shape], default, dtype=np.asarray(default).dtype)
        idx = np.asarray(idx).reshape(-1, len(out.shape)) if out.ndim else idx
        for i, row in enumerate(idx):
            out[tuple(int(v) for v in row)] = values[i] if np.ndim(values) else values
        return out
    raise NotImplementedError(f"op {op} (node {node['name']})")


def run(json_path, feeds, dtype=np.float64, outputs=None):
    """Evaluates the graph; returns {name: array} for the signature outputs
    (or for the given tensor names)."""
    nodes, consts, signature = load_tfjs(json_path)
    env = {}
    for name, arr in consts.items():
        env[name] = arr.astype(dtype) if arr.dtype.kind == "f" else arr
    for name, value in feeds.items():
        env[name] = np.asarray(value, dtype=dtype)
    wanted = outputs or [o.get("name", k) for k, o in signature.get("outputs", {}).items()]

    def value(ref):
        name, idx = split_input(ref)
        stack = [name]
        while stack:
            top = stack[-1]
            if top in env:
                stack.pop()
                continue
            node = nodes[top]
            ins = [split_input(r)[0] for r in data_inputs(node)]
            todo = [i for i in ins if i not in env]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            refs = data_inputs(node)
            args = []
            for r in refs:
                n, i = split_input(r)
                v = env[n]
                args.append(v[i] if isinstance(v, list) else v)
            tmp = {f"__in{k}": v for k, v in enumerate(args)}
            env.update(tmp)
            env[top] = _eval(node, list(tmp), env, dtype)
            for k in tmp:
                del env[k]
        v = env[name]
        return v[idx] if isinstance(v, list) else v

    return {ref: value(ref) for ref in wanted}


def main(argv):
    if len(argv) != 2:
        print("usage: " + __doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    nodes, _, signature = load_tfjs(argv[1])
    feeds = {}
    for key, spec in signature["inputs"].items():
        dims = [int(d["size"]) for d in spec["tensorShape"]["dim"]]
        feeds[split_input(spec.get("name", key))[0]] = \
            np.random.default_rng(0).random(dims)
    for name, y in run(argv[1], feeds).items():
        print(f"{name}: {list(y.shape)} range [{y.min():.4f}, {y.max():.4f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
