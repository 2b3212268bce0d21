#!/usr/bin/python3
"""Checks the ONNX files written by tools/convert_models.py and prints the numbers.

Usage:
    /usr/bin/python3 tools/verify_models.py --data-dir DIR --onnx-dir OUT [--image PHOTO]

  * structure: onnx checker, opset, input/output names and symbolic dims,
    unique node names, the cbinfer.* metadata keys;
  * vgg7 (both): the ONNX graph run by tools/onnx_numpy_ref.py against an
    independent numpy forward pass straight from the torch7 JSON, on a random
    24x24 image (max abs difference);
  * realesr-x2: the tail (nearest 4x, bicubic 0.5x as Pad + fixed conv) against
    a transcription of ncnn's Interp nearest/bicubic code;
  * all four real models on a real photo crop (PHOTO, e.g. fruits.jpg from
    opencv-doc; a smooth random image if none is given): output range and PSNR
    against the input (denoise) or a bicubic / nearest 2x upsample (2x models),
    plus (informative) a downscale-then-upscale PSNR against the original crop;
  * the 2x models on a drawn cartoon (their training domain), bicubic-downscaled
    then upscaled: must beat bicubic by > 3 dB with zero spatial shift; for
    upconv7 the alternative readings of the ncnn deconvolution weights
    (transposed layout, flipped kernel) must come out clearly worse;
  * the synthetic nets: output shapes for an odd-sized input (ceil pooling).
Exit status 1 if a check fails.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
from numpy.lib.stride_tricks import sliding_window_view

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx_numpy_ref as ref  # noqa: E402

FAILED = []


def check(cond, what):
    print(f"  [{'ok' if cond else 'FAIL'}] {what}")
    if not cond:
        FAILED.append(what)


def psnr(a, b):
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def load_image(path, size, rng):
    """A [3, size, size] float64 crop in [0, 1]: from a photo, or smooth noise."""
    if path:
        from PIL import Image
        im = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0
        h, w = im.shape[:2]
        y0, x0 = (h - size) // 2, (w - size) // 2
        return im[y0:y0 + size, x0:x0 + size].transpose(2, 0, 1).copy()
    from scipy.ndimage import gaussian_filter
    noise = rng.random((3, size, size))
    return np.clip(gaussian_filter(noise, sigma=(0, 3, 3)) * 4 - 1.5, 0, 1)


def cartoon_image(size, seed=5):
    """A [3, size, size] flat-colour drawing with dark outlines (anime-like content)."""
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (size, size), (235, 220, 200))
    d = ImageDraw.Draw(im)
    for i in range(10):
        x0, y0 = (int(v) for v in rng.integers(0, size - 28, 2))
        x1, y1 = x0 + int(rng.integers(15, 50)), y0 + int(rng.integers(15, 50))
        col = tuple(int(c) for c in rng.integers(0, 255, 3))
        (d.ellipse if i % 2 else d.rectangle)([x0, y0, x1, y1], fill=col,
                                               outline=(20, 20, 20), width=2)
    return np.asarray(im, dtype=np.float64).transpose(2, 0, 1) / 255.0


def resize_pil(img, factor, method):
    from PIL import Image
    c, h, w = img.shape
    out = []
    for ch in img:
        im = Image.fromarray(ch.astype(np.float32), mode="F")
        im = im.resize((int(w * factor), int(h * factor)), method)
        out.append(np.asarray(im, dtype=np.float64))
    return np.stack(out)


def bicubic(img, factor):
    from PIL import Image
    return resize_pil(img, factor, Image.BICUBIC)


def nearest2(img):
    return img.repeat(2, axis=1).repeat(2, axis=2)


# ---------------------------------------------------------------------------

def check_structure(path):
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    g = m.graph
    dims = [d.dim_param or d.dim_value for d in g.input[0].type.tensor_type.shape.dim]
    meta = {p.key: p.value for p in m.metadata_props}
    names = [n.name for n in g.node]
    check(m.opset_import[0].version == 13 and m.ir_version == onnx.IR_VERSION,
          f"opset {m.opset_import[0].version}, IR {m.ir_version}")
    check(len(g.input) == 1 and g.input[0].name == "input" and dims == [1, 3, "H", "W"],
          f"input {g.input[0].name} {dims}")
    check(len(g.output) == 1 and g.output[0].name == "output", f"output {g.output[0].name}")
    check(all(names) and len(set(names)) == len(names), f"{len(names)} unique node names")
    need = ["cbinfer.input_scale", "cbinfer.input_offset", "cbinfer.source", "cbinfer.converter"]
    check(all(k in meta for k in need) and meta["cbinfer.input_scale"] == "0.00392156862745098"
          and meta["cbinfer.input_offset"] == "0", "cbinfer.* metadata")
    return m, meta


def vgg7_from_json(json_path, img, scale):
    """Independent forward pass of waifu2x vgg_7 straight from the torch7 JSON."""
    with open(json_path) as f:
        layers = json.load(f)
    x = nearest2(img) if scale == 2 else img
    x = np.pad(x, ((0, 0), (7, 7), (7, 7)), mode="edge")
    for i, l in enumerate(layers):
        w = np.asarray(l["weight"], dtype=np.float64)
        b = np.asarray(l["bias"], dtype=np.float64)
        win = sliding_window_view(x, (l["kH"], l["kW"]), axis=(1, 2))
        x = np.einsum("cijkl,ockl->oij", win, w) + b[:, None, None]
        if i < len(layers) - 1:
            x = np.where(x >= 0, x, 0.1 * x)
    return x


def ncnn_bicubic_half(x):
    """ncnn Interp resize_type 3, scale 0.5, align_corner 0 (src/layer/interp.cpp)."""
    def coeffs(n_in, n_out):
        rows = np.zeros((n_out, n_in))
        scale = n_in / n_out
        A = -0.75
        for d in range(n_out):
            fx = (d + 0.5) * scale - 0.5
            sx = int(np.floor(fx))
            fx -= sx
            f0, f1, f2 = fx + 1, fx, 1 - fx
            c = [A * f0 ** 3 - 5 * A * f0 ** 2 + 8 * A * f0 - 4 * A,
                 (A + 2) * f1 ** 3 - (A + 3) * f1 ** 2 + 1,
                 (A + 2) * f2 ** 3 - (A + 3) * f2 ** 2 + 1]
            c.append(1 - sum(c))
            # ncnn folds out-of-range taps onto the border pixel.
            for t in range(4):
                rows[d, min(max(sx - 1 + t, 0), n_in - 1)] += c[t]
        return rows
    _, _, h, w = x.shape
    ry, rx = coeffs(h, h // 2), coeffs(w, w // 2)
    return np.einsum("yh,nchw,xw->ncyx", ry, x, rx)


def upconv7_variants(model):
    """(name, model) for the alternative readings of the ncnn deconvolution weights."""
    out = []
    for name in ("transposed-layout", "flipped-kernel"):
        m = onnx.ModelProto()
        m.CopyFrom(model)
        for init in m.graph.initializer:
            if init.name == "deconv7.weight":
                w = onnx.numpy_helper.to_array(init)      # [256, 3, 4, 4]
                if name == "transposed-layout":
                    # the same bytes read as [in][out] instead of [out][in]
                    w2 = w.transpose(1, 0, 2, 3).reshape(-1).reshape(256, 3, 4, 4)
                else:
                    w2 = w[:, :, ::-1, ::-1]
                init.CopyFrom(onnx.numpy_helper.from_array(np.ascontiguousarray(w2), init.name))
        out.append((name, m))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--onnx-dir", required=True)
    ap.add_argument("--image", default="", help="a photo (JPEG/PNG) for the plausibility tests")
    ap.add_argument("--crop", type=int, default=64)
    args = ap.parse_args()
    rng = np.random.default_rng(1234)
    mdir = os.path.join(args.data_dir, "models")
    path = lambda n: os.path.join(args.onnx_dir, n + ".onnx")  # noqa: E731

    models = {}
    for name in ("vgg7-noise1", "vgg7-scale2x", "upconv7-noise1-scale2x", "realesr-x2",
                 "scene-labeling-synthetic", "openpose-synthetic"):
        print(f"{name}: structure")
        models[name], meta = check_structure(path(name))
        if "synthetic" in name:
            check(meta.get("cbinfer.synthetic") == "1" and "random" in models[name].graph.name,
                  f"labelled synthetic: graph name '{models[name].graph.name}'")

    print("vgg7: ONNX (numpy evaluator) vs direct numpy from JSON, random 24x24")
    x24 = rng.random((3, 24, 24))
    for name, js, scale in (("vgg7-noise1", "noise1_model.json", 1),
                            ("vgg7-scale2x", "scale2.0x_model.json", 2)):
        y_onnx = ref.run(models[name], x24[None])[0]
        y_ref = vgg7_from_json(os.path.join(mdir, "waifu2x-vgg7", js), x24, scale)
        d = float(np.abs(y_onnx - y_ref).max())
        check(y_onnx.shape == y_ref.shape == (3, 24 * scale, 24 * scale) and d < 1e-4,
              f"{name}: shape {y_onnx.shape}, max |diff| {d:.2e}")

    print("realesr-x2: tail vs ncnn Interp code")
    x_small = rng.random((1, 3, 10, 14))
    env = ref.run_all(models["realesr-x2"], {"input": x_small})
    up = env["upsample_input"]
    check(np.array_equal(up, x_small.repeat(4, 2).repeat(4, 3)), "upsample_input == 4x pixel "
          "replication (ncnn Interp nearest)")
    d = float(np.abs(env["output"] - ncnn_bicubic_half(env["add_residual"])).max())
    check(d < 1e-9, f"downsample_pad+downsample == ncnn bicubic 0.5x: max |diff| {d:.2e}")
    check(env["output"].shape == (1, 3, 20, 28), f"output shape {env['output'].shape} for 10x14")

    src = args.image or "smooth random image"
    print(f"plausibility on a {args.crop}x{args.crop} crop of {src}")
    img = load_image(args.image, args.crop, rng)
    y = ref.run(models["vgg7-noise1"], img[None])[0]
    check(y.shape == img.shape and psnr(y, img) > 30,
          f"vgg7-noise1: range [{y.min():.3f}, {y.max():.3f}], PSNR vs input {psnr(y, img):.2f} dB")
    up_bic, up_nn = bicubic(img, 2), nearest2(img)
    # Downscale-upscale test: model(downscaled crop) vs the original crop.
    from PIL import Image
    small = resize_pil(img, 0.5, Image.BICUBIC)
    base_bic = bicubic(small, 2)
    print(f"  bicubic baseline on the downscale-upscale test: "
          f"PSNR {psnr(base_bic, img):.2f} dB")
    for name in ("vgg7-scale2x", "upconv7-noise1-scale2x", "realesr-x2"):
        y = ref.run(models[name], img[None])[0]
        yr = ref.run(models[name], small[None])[0]
        p_bic, p_nn, p_rt = psnr(y, up_bic), psnr(y, up_nn), psnr(yr, img)
        check(y.shape == up_bic.shape and p_bic > 25 and -0.1 < y.min() and y.max() < 1.1,
              f"{name}: range [{y.min():.3f}, {y.max():.3f}], PSNR vs bicubic 2x "
              f"{p_bic:.2f} dB, vs nearest 2x {p_nn:.2f} dB; downscale-upscale "
              f"{p_rt:.2f} dB")

    print("super-resolution on a 128x128 cartoon drawing (the models' domain): bicubic-"
          "downscaled 0.5x, upscaled 2x, compared with the original")
    hr = cartoon_image(128)
    lr = resize_pil(hr, 0.5, Image.BICUBIC)
    p_base = psnr(bicubic(lr, 2), hr)
    print(f"  bicubic 2x baseline: PSNR {p_base:.2f} dB, nearest 2x {psnr(nearest2(lr), hr):.2f} dB")
    for name in ("vgg7-scale2x", "upconv7-noise1-scale2x", "realesr-x2"):
        y = ref.run(models[name], lr[None])[0]
        best = max(((psnr(np.roll(y, (dy, dx), (1, 2))[:, 4:-4, 4:-4], hr[:, 4:-4, 4:-4]), dy, dx)
                    for dy in range(-2, 3) for dx in range(-2, 3)))
        check(psnr(y, hr) > p_base + 3 and (best[1], best[2]) == (0, 0),
              f"{name}: PSNR {psnr(y, hr):.2f} dB (bicubic + {psnr(y, hr) - p_base:.2f} dB), "
              f"best shift ({best[1]}, {best[2]})")
        if name == "upconv7-noise1-scale2x":
            for vname, vmod in upconv7_variants(models[name]):
                pv = psnr(ref.run(vmod, lr[None])[0], hr)
                check(pv < psnr(y, hr) - 3, f"  alternative reading '{vname}': PSNR {pv:.2f} dB")

    print("synthetic nets on a 37x45 input (ceil pooling)")
    xs = rng.random((1, 3, 37, 45))
    y = ref.run(models["scene-labeling-synthetic"], xs)
    check(y.shape == (1, 8, 10, 12) and np.isfinite(y).all(),
          f"scene-labeling-synthetic: {y.shape}, std {y.std():.3f}")
    y = ref.run(models["openpose-synthetic"], xs)
    check(y.shape == (1, 57, 5, 6) and np.isfinite(y).all(),
          f"openpose-synthetic: {y.shape}, std {y.std():.3f}")

    print("FAILED: " + "; ".join(FAILED) if FAILED else "all checks passed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
