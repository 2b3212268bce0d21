#!/usr/bin/python3
"""A tiny, strict numpy evaluator for the ONNX graphs tools/convert_models.py writes.

Reference semantics for cross-checks (converter verification, CPU/CUDA parity
fixtures): slow, obvious, NCHW, float64 accumulation by default. It implements
exactly the ops the cbinfer models use and refuses anything else (unknown op,
unsupported attribute value) with NotImplementedError rather than guess:

  Conv (any group), ConvTranspose, Relu, LeakyRelu, PRelu, Clip, Sigmoid,
  MaxPool, Pad, Resize (nearest, linear), DepthToSpace, Add, Concat

Library use:
    import onnx_numpy_ref as ref
    y = ref.run(onnx.load(path), x)                 # x: float array [N,C,H,W]
    outs = ref.run_all(model, {"input": x})         # every tensor by name

Command line (prints the output shape and range):
    /usr/bin/python3 tools/onnx_numpy_ref.py MODEL.onnx [H W]
"""
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _s(v):
    return v.decode() if isinstance(v, bytes) else v


def _check_known(node, attrs, known):
    extra = set(attrs) - set(known)
    if extra:
        raise NotImplementedError(
            f"{node.op_type} '{node.name}': unsupported attribute(s) {sorted(extra)}")


def _conv2d(x, w, b, strides, pads, dilations, group):
    """Cross-correlation (ONNX Conv). x [N,C,H,W], w [M,C/group,kH,kW], pads [t,l,b,r]."""
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    if c != cg * group or m % group:
        raise ValueError(f"Conv: channel mismatch x C={c}, w {w.shape}, group={group}")
    sh, sw = strides
    dh, dw = dilations
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (h + pads[0] + pads[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pads[1] + pads[3] - dw * (kw - 1) - 1) // sw + 1
    if oh <= 0 or ow <= 0:
        raise ValueError(f"Conv: empty output for input {x.shape}, kernel {w.shape}")
    y = np.zeros((n, m, oh, ow), dtype=x.dtype)
    mg = m // group
    for g in range(group):
        xg = xp[:, g * cg:(g + 1) * cg]
        wg = w[g * mg:(g + 1) * mg]
        for ky in range(kh):
            for kx in range(kw):
                y0, x0 = ky * dh, kx * dw
                patch = xg[:, :, y0:y0 + (oh - 1) * sh + 1:sh, x0:x0 + (ow - 1) * sw + 1:sw]
                # [mg, cg] x [n, cg, oh, ow] -> [n, mg, oh, ow]
                y[:, g * mg:(g + 1) * mg] += np.einsum("mc,nchw->nmhw", wg[:, :, ky, kx], patch)
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


def _conv_transpose2d(x, w, b, strides, pads, output_padding):
    """ONNX ConvTranspose, group 1, dilation 1. w [C_in, C_out, kH, kW].

    Scatter form: full[oc, iy*s + ky, ix*s + kx] += w[ic, oc, ky, kx] * x[ic, iy, ix]
    (no kernel flip), then pads crop the full output [t, l, b, r].
    """
    n, c, h, wd = x.shape
    ci, co, kh, kw = w.shape
    if ci != c:
        raise ValueError(f"ConvTranspose: channel mismatch x C={c}, w {w.shape}")
    sh, sw = strides
    fh = (h - 1) * sh + kh + output_padding[0]
    fw = (wd - 1) * sw + kw + output_padding[1]
    full = np.zeros((n, co, fh, fw), dtype=x.dtype)
    for ky in range(kh):
        for kx in range(kw):
            contrib = np.einsum("co,nchw->nohw", w[:, :, ky, kx], x)
            full[:, :, ky:ky + (h - 1) * sh + 1:sh, kx:kx + (wd - 1) * sw + 1:sw] += contrib
    y = full[:, :, pads[0]:fh - pads[2], pads[1]:fw - pads[3]]
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return np.ascontiguousarray(y)


def _maxpool2d(x, kernel, strides, pads, ceil_mode):
    n, c, h, w = x.shape
    kh, kw = kernel
    sh, sw = strides

    def out_len(length, k, s, p0, p1):
        span = length + p0 + p1 - k
        o = (-(-span // s) if ceil_mode else span // s) + 1
        # ONNX/PyTorch rule: the last window must start inside the input or left padding.
        if ceil_mode and (o - 1) * s >= length + p0:
            o -= 1
        return o

    oh = out_len(h, kh, sh, pads[0], pads[2])
    ow = out_len(w, kw, sw, pads[1], pads[3])
    need_h = (oh - 1) * sh + kh
    need_w = (ow - 1) * sw + kw
    xp = np.full((n, c, max(need_h, h + pads[0] + pads[2]), max(need_w, w + pads[1] + pads[3])),
                 -np.inf, dtype=x.dtype)
    xp[:, :, pads[0]:pads[0] + h, pads[1]:pads[1] + w] = x
    y = np.full((n, c, oh, ow), -np.inf, dtype=x.dtype)
    for ky in range(kh):
        for kx in range(kw):
            y = np.maximum(y, xp[:, :, ky:ky + (oh - 1) * sh + 1:sh, kx:kx + (ow - 1) * sw + 1:sw])
    return y


def _resize_geometry(x, scales, sizes):
    if sizes is not None and sizes.size:
        out = [int(v) for v in sizes]
        scales = np.array([out[i] / x.shape[i] for i in range(4)], dtype=np.float64)
    else:
        scales = np.asarray(scales, dtype=np.float64)
        out = [int(np.floor(x.shape[i] * scales[i])) for i in range(4)]
    if scales[0] != 1 or scales[1] != 1:
        raise NotImplementedError("Resize: only spatial (H, W) scaling supported")
    return out, scales


def _src_coord(o_len, i_len, scale, ctm):
    """ONNX Resize: the input coordinate of each output index."""
    d = np.arange(o_len, dtype=np.float64)
    if ctm == "asymmetric":
        return d / scale
    if ctm == "half_pixel":
        return (d + 0.5) / scale - 0.5
    if ctm == "pytorch_half_pixel":
        return (d + 0.5) / scale - 0.5 if o_len > 1 else np.zeros_like(d)
    if ctm == "align_corners":
        return d * (i_len - 1) / (o_len - 1) if o_len > 1 else np.zeros_like(d)
    raise NotImplementedError(f"Resize: coordinate_transformation_mode {ctm}")


def _resize_linear(x, scales, sizes, ctm):
    """Bilinear, no antialias: each axis interpolates its two nearest taps, the
    coordinate clamped to [0, len - 1] (the ONNX reference implementation)."""
    out, scales = _resize_geometry(x, scales, sizes)

    def taps(o_len, i_len, scale):
        s = np.clip(_src_coord(o_len, i_len, scale, ctm), 0, i_len - 1)
        i0 = np.floor(s).astype(np.int64)
        i1 = np.minimum(i0 + 1, i_len - 1)
        return i0, i1, s - i0

    y0, y1, fy = taps(out[2], x.shape[2], scales[2])
    x0, x1, fx = taps(out[3], x.shape[3], scales[3])
    fy, fx = fy[:, None], fx[None, :]
    top = x[:, :, y0][:, :, :, x0] * (1 - fx) + x[:, :, y0][:, :, :, x1] * fx
    bot = x[:, :, y1][:, :, :, x0] * (1 - fx) + x[:, :, y1][:, :, :, x1] * fx
    return top * (1 - fy) + bot * fy


def _resize_nearest(x, scales, sizes, ctm, nearest_mode):
    out, scales = _resize_geometry(x, scales, sizes)

    def src_index(o_len, i_len, scale):
        s = _src_coord(o_len, i_len, scale, ctm)
        if nearest_mode == "floor":
            i = np.floor(s)
        elif nearest_mode == "ceil":
            i = np.ceil(s)
        elif nearest_mode == "round_prefer_floor":
            i = np.where(s - np.floor(s) == 0.5, np.floor(s), np.round(s))
        elif nearest_mode == "round_prefer_ceil":
            i = np.floor(s + 0.5)
        else:
            raise NotImplementedError(f"Resize: nearest_mode {nearest_mode}")
        return np.clip(i.astype(np.int64), 0, i_len - 1)

    iy = src_index(out[2], x.shape[2], scales[2])
    ix = src_index(out[3], x.shape[3], scales[3])
    return x[:, :, iy][:, :, :, ix]


def _depth_to_space(x, bs, mode):
    n, c, h, w = x.shape
    if c % (bs * bs):
        raise ValueError(f"DepthToSpace: C={c} not divisible by {bs}^2")
    oc = c // (bs * bs)
    if mode == "DCR":
        t = x.reshape(n, bs, bs, oc, h, w).transpose(0, 3, 4, 1, 5, 2)
    elif mode == "CRD":
        t = x.reshape(n, oc, bs, bs, h, w).transpose(0, 1, 4, 2, 5, 3)
    else:
        raise NotImplementedError(f"DepthToSpace mode {mode}")
    return t.reshape(n, oc, h * bs, w * bs)


def _pad(x, pads, mode, value):
    r = x.ndim
    widths = [(int(pads[i]), int(pads[i + r])) for i in range(r)]
    if any(a < 0 or b < 0 for a, b in widths):
        raise NotImplementedError("Pad: negative pads")
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=value)
    if mode == "edge":
        return np.pad(x, widths, mode="edge")
    if mode == "reflect":
        return np.pad(x, widths, mode="reflect")
    raise NotImplementedError(f"Pad mode {mode}")


def _eval_node(node, env, dtype):
    op = node.op_type
    a = _attrs(node)
    ins = [env[i] if i else None for i in node.input]

    if op == "Conv":
        _check_known(node, a, {"kernel_shape", "strides", "pads", "dilations", "group"})
        w = ins[1]
        if "kernel_shape" in a and list(a["kernel_shape"]) != list(w.shape[2:]):
            raise ValueError(f"Conv '{node.name}': kernel_shape does not match weight")
        return _conv2d(ins[0], w, ins[2] if len(ins) > 2 else None,
                       a.get("strides", [1, 1]), a.get("pads", [0, 0, 0, 0]),
                       a.get("dilations", [1, 1]), a.get("group", 1))
    if op == "ConvTranspose":
        _check_known(node, a, {"kernel_shape", "strides", "pads", "dilations", "group",
                               "output_padding"})
        if a.get("group", 1) != 1 or list(a.get("dilations", [1, 1])) != [1, 1]:
            raise NotImplementedError("ConvTranspose: only group 1, dilation 1")
        return _conv_transpose2d(ins[0], ins[1], ins[2] if len(ins) > 2 else None,
                                 a.get("strides", [1, 1]), a.get("pads", [0, 0, 0, 0]),
                                 a.get("output_padding", [0, 0]))
    if op == "Relu":
        return np.maximum(ins[0], 0)
    if op == "LeakyRelu":
        _check_known(node, a, {"alpha"})
        alpha = a.get("alpha", 0.01)
        return np.where(ins[0] >= 0, ins[0], ins[0] * dtype(np.float32(alpha)))
    if op == "Clip":
        lo = ins[1].item() if len(ins) > 1 and ins[1] is not None else -np.inf
        hi = ins[2].item() if len(ins) > 2 and ins[2] is not None else np.inf
        return np.clip(ins[0], lo, hi)
    if op == "Sigmoid":
        return 1.0 / (1.0 + np.exp(-ins[0]))
    if op == "PRelu":
        x, slope = ins
        return np.where(x >= 0, x, x * slope)
    if op == "MaxPool":
        _check_known(node, a, {"kernel_shape", "strides", "pads", "ceil_mode", "dilations"})
        if list(a.get("dilations", [1, 1])) != [1, 1]:
            raise NotImplementedError("MaxPool: dilation")
        k = a["kernel_shape"]
        return _maxpool2d(ins[0], k, a.get("strides", [1, 1]), a.get("pads", [0, 0, 0, 0]),
                          a.get("ceil_mode", 0))
    if op == "Pad":
        _check_known(node, a, {"mode"})
        value = ins[2].item() if len(ins) > 2 and ins[2] is not None else 0.0
        return _pad(ins[0], ins[1], _s(a.get("mode", "constant")), value)
    if op == "Resize":
        _check_known(node, a, {"mode", "coordinate_transformation_mode", "nearest_mode",
                               "cubic_coeff_a", "exclude_outside", "extrapolation_value"})
        mode = _s(a.get("mode", "nearest"))
        scales = ins[2] if len(ins) > 2 else None
        sizes = ins[3] if len(ins) > 3 else None
        if mode == "linear":
            if a.get("exclude_outside", 0) or _s(a.get("coordinate_transformation_mode", "")) \
                    == "tf_crop_and_resize":
                raise NotImplementedError("Resize linear: exclude_outside / crop")
            return _resize_linear(ins[0], scales, sizes,
                                  _s(a.get("coordinate_transformation_mode", "half_pixel")))
        if mode != "nearest":
            raise NotImplementedError(f"Resize mode {mode}")
        return _resize_nearest(ins[0], scales, sizes,
                               _s(a.get("coordinate_transformation_mode", "half_pixel")),
                               _s(a.get("nearest_mode", "round_prefer_floor")))
    if op == "DepthToSpace":
        _check_known(node, a, {"blocksize", "mode"})
        return _depth_to_space(ins[0], a["blocksize"], _s(a.get("mode", "DCR")))
    if op == "Add":
        return ins[0] + ins[1]
    if op == "Concat":
        _check_known(node, a, {"axis"})
        return np.concatenate(ins, axis=a["axis"])
    raise NotImplementedError(f"op {op} (node '{node.name}')")


def run_all(model, feeds, dtype=np.float64):
    """Evaluates every node in graph order; returns {tensor name: array}."""
    if isinstance(model, (str, bytes)):
        model = onnx.load(model)
    env = {}
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        env[init.name] = arr.astype(dtype) if arr.dtype.kind == "f" else arr
    for name, value in feeds.items():
        env[name] = np.asarray(value, dtype=dtype)
    for node in model.graph.node:
        result = _eval_node(node, env, dtype)
        if len(node.output) != 1:
            raise NotImplementedError(f"node '{node.name}' has {len(node.output)} outputs")
        env[node.output[0]] = result
    return env


def run(model, x, dtype=np.float64):
    """Runs a single-input single-output model on x [N,C,H,W]; returns the output."""
    if isinstance(model, (str, bytes)):
        model = onnx.load(model)
    env = run_all(model, {model.graph.input[0].name: x}, dtype)
    return env[model.graph.output[0].name]


def main(argv):
    if len(argv) not in (2, 4):
        print("usage: " + __doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    model = onnx.load(argv[1])
    h, w = (int(argv[2]), int(argv[3])) if len(argv) == 4 else (32, 32)
    x = np.random.default_rng(0).random((1, 3, h, w))
    y = run(model, x)
    print(f"{argv[1]}: input {list(x.shape)} -> output {list(y.shape)}, "
          f"range [{y.min():.4f}, {y.max():.4f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
