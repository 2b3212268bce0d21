#!/usr/bin/python3
"""Converts cbinfer's pretrained models to ONNX and builds the synthetic paper networks.

Usage:
    /usr/bin/python3 tools/convert_models.py --data-dir DIR --out-dir OUT [--only NAME,...]
                                             [--prebuilt DIR2]

DIR holds models/... laid out as the shared data folder (tools/fetch_data.sh makes
one). Writes into OUT (opset 13, the IR version onnx 1.12 writes, one input
"input" [1,3,H,W] with symbolic H and W, one output "output"):

  vgg7-noise1.onnx                 waifu2x vgg_7 denoise level 1 (torch7 JSON)
  vgg7-scale2x.onnx                waifu2x vgg_7 2x upscale (torch7 JSON)
  upconv7-noise1-scale2x.onnx      waifu2x upconv_7 denoise 1 + 2x (ncnn)
  realesr-x2.onnx                  Real-ESRGAN realesr-animevideov3-x2 (ncnn)
  scene-labeling-synthetic.onnx    CBinfer Table I network, random weights
  openpose-synthetic.onnx          OpenPose body net, T=2 stages, random weights
  nanodet.onnx                     NanoDet-g COCO detector (TF.js graph model), three
                                   outputs head_s8, head_s16, head_s32 (H and W multiples of 32)
  posenet.onnx                     PoseNet MobileNetV1 0.75 (TF.js graph model), four outputs
                                   heatmap, offset, displacement_fwd, displacement_bwd
                                   (H and W of the form 16k+1)

The two TF.js models go through tools/convert_tfjs.py, which keeps their
post-processing (sigmoid, split, reshape) out of the network: that is the
decoders' part.

Nodes are named after their layers (conv1, lrelu1, ...; the TF.js models keep
their TF node names); cbinfer users set
per-layer change thresholds by these names. Every model carries metadata_props:
cbinfer.input_scale / cbinfer.input_offset (network input = 8-bit pixel * scale
+ offset), cbinfer.input_channels, cbinfer.output_size (in terms of H and W),
cbinfer.source (input files and their sha256), cbinfer.converter, and for the
random-weight networks cbinfer.synthetic = "1" and cbinfer.seed.

--prebuilt DIR2 takes <name>.onnx from DIR2 where it is there (converted
elsewhere, e.g. carried in tools/gpu_bundle.sh's bundle) instead of
converting it; then DIR needs only the source files of the rest.

The output is deterministic (byte-identical on rerun). Progress goes to stderr;
on error the script prints one line and exits with status 1.
"""
import argparse
import hashlib
import json
import os
import sys
from fractions import Fraction

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # convert_tfjs

OPSET = 13
CONVERTER = "tools/convert_models.py"
INPUT_SCALE = repr(1.0 / 255.0)  # "0.00392156862745098"
INPUT_OFFSET = "0"

# Seeds of the synthetic (random-weight) networks; changing one changes the model.
SCENE_LABELING_SEED = 20170901
OPENPOSE_SEED = 20170902

NCNN_MAGIC = 7767517
NCNN_TAG_FP16 = 0x01306B47
NCNN_TAG_FP32 = 0x00000000

# ncnn Interp bicubic (resize_type 3) at scale 0.5 without align_corner samples
# source x = 2*dx + 0.5 (half-pixel), i.e. taps 2dx-1..2dx+2 at fraction 0.5 of
# the Keys cubic with A = -0.75, indices clamped at the border. Those weights:
BICUBIC_HALF_TAPS = np.array([-0.09375, 0.59375, 0.59375, -0.09375], dtype=np.float64)


class ConversionError(Exception):
    """A problem with an input file or an unsupported construct in it."""


def log(msg):
    print(f"convert_models: {msg}", file=sys.stderr, flush=True)


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def require_file(path):
    if not os.path.isfile(path):
        raise ConversionError(f"missing input file {path}")
    return path


class Size:
    """An output length a*L + b of an input length L, kept exact with fractions."""

    def __init__(self, a=Fraction(1), b=Fraction(0)):
        self.a, self.b = Fraction(a), Fraction(b)

    def conv(self, k, s, p0, p1):
        return Size(self.a / s, (self.b + p0 + p1 - k) / s + 1)

    def deconv(self, k, s, p0, p1, out_pad=0):
        return Size(self.a * s, (self.b - 1) * s + k - p0 - p1 + out_pad)

    def scale(self, f):
        return Size(self.a * f, self.b * f)

    def pad(self, p0, p1):
        return Size(self.a, self.b + p0 + p1)

    def __eq__(self, other):
        return (self.a, self.b) == (other.a, other.b)

    def expr(self, var):
        """E.g. "2*H", "H", "H-4"; only for the integer cases the models produce."""
        parts = var if self.a == 1 else f"{self.a}*{var}"
        if self.b:
            parts += f"{'+' if self.b > 0 else '-'}{abs(self.b)}"
        return parts


class GraphBuilder:
    """Collects ONNX nodes and initializers; every node's output tensor is named
    after the node, except the graph output, which is "output"."""

    def __init__(self):
        self.nodes = []
        self.initializers = []
        self.names = set()
        self.param_count = 0

    def _claim(self, name):
        if name in self.names:
            raise ConversionError(f"duplicate node/tensor name {name}")
        self.names.add(name)
        return name

    def init(self, name, array, dtype=np.float32):
        arr = np.ascontiguousarray(np.asarray(array, dtype=dtype))
        self.initializers.append(numpy_helper.from_array(arr, self._claim(name)))
        if name.endswith((".weight", ".bias", ".slope")):
            self.param_count += arr.size
        return name

    def node(self, op, name, inputs, doc=None, **attrs):
        n = helper.make_node(op, inputs, [self._claim(name)], name=name, **attrs)
        if doc:
            n.doc_string = doc
        self.nodes.append(n)
        return name

    def conv(self, name, x, w, b=None, stride=1, pads=(0, 0, 0, 0), doc=None):
        """w [out, in, kh, kw]; pads [top, left, bottom, right]."""
        w = np.asarray(w)
        inputs = [x, self.init(f"{name}.weight", w)]
        if b is not None:
            inputs.append(self.init(f"{name}.bias", b))
        return self.node("Conv", name, inputs, doc=doc,
                         kernel_shape=[int(w.shape[2]), int(w.shape[3])],
                         strides=[stride, stride], pads=[int(p) for p in pads],
                         dilations=[1, 1], group=1)

    def conv_transpose(self, name, x, w, b=None, stride=1, pads=(0, 0, 0, 0), doc=None):
        """w [in, out, kh, kw] (ONNX layout)."""
        w = np.asarray(w)
        inputs = [x, self.init(f"{name}.weight", w)]
        if b is not None:
            inputs.append(self.init(f"{name}.bias", b))
        return self.node("ConvTranspose", name, inputs, doc=doc,
                         kernel_shape=[int(w.shape[2]), int(w.shape[3])],
                         strides=[stride, stride], pads=[int(p) for p in pads],
                         dilations=[1, 1], group=1, output_padding=[0, 0])

    def pad_edge(self, name, x, px, doc=None):
        pads = self.init(f"{name}.pads", [0, 0, px, px, 0, 0, px, px], dtype=np.int64)
        return self.node("Pad", name, [x, pads], doc=doc, mode="edge")

    def upsample_nearest(self, name, x, factor, doc=None):
        # asymmetric + floor: out[y] = in[floor(y / factor)], i.e. plain pixel
        # replication, which is what ncnn's and waifu2x's nearest resize do.
        scales = self.init(f"{name}.scales", [1.0, 1.0, float(factor), float(factor)])
        return self.node("Resize", name, [x, "", scales], doc=doc, mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor")

    def relu(self, name, x):
        return self.node("Relu", name, [x])

    def leaky_relu(self, name, x, alpha):
        return self.node("LeakyRelu", name, [x], alpha=float(alpha))

    def maxpool2(self, name, x):
        # ceil_mode=1: Caffe (OpenPose) and the paper's Table I (541 -> 271) round up.
        return self.node("MaxPool", name, [x], kernel_shape=[2, 2], strides=[2, 2],
                         pads=[0, 0, 0, 0], ceil_mode=1)

    def mark_output(self, tensor):
        """Renames the tensor `tensor` (the last node's output) to "output"."""
        last = self.nodes[-1]
        if last.output[0] != tensor:
            raise ConversionError(f"graph output {tensor} is not produced by the last node")
        last.output[0] = "output"


def build_model(gb, graph_name, doc, out_channels, out_h, out_w, metadata):
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "H", "W"])
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT,
                                        [1, out_channels, out_h, out_w])
    graph = helper.make_graph(gb.nodes, graph_name, [inp], [out],
                              initializer=gb.initializers, doc_string=doc)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="cbinfer", producer_version="1",
                              doc_string=doc)
    for key, value in metadata:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model, full_check=True)
    return model


def common_metadata(sources, output_size, data_dir=None):
    """sources: list of paths relative to DIR/models (or a literal description)."""
    if data_dir is not None:
        src = "; ".join(f"models/{rel} sha256={sha256_of(os.path.join(data_dir, 'models', rel))}"
                        for rel in sources)
    else:
        src = sources
    return [
        ("cbinfer.input_scale", INPUT_SCALE),
        ("cbinfer.input_offset", INPUT_OFFSET),
        ("cbinfer.input_channels", "RGB"),
        ("cbinfer.output_size", output_size),
        ("cbinfer.source", src),
        ("cbinfer.converter", CONVERTER),
    ]


# --------------------------------------------------------------------------
# waifu2x vgg_7 (torch7 JSON export)
# --------------------------------------------------------------------------

def load_torch7_json(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            layers = json.load(f)
    except json.JSONDecodeError as e:
        raise ConversionError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(layers, list) or not layers:
        raise ConversionError(f"{path}: expected a non-empty list of layers")
    out = []
    prev_out = 3
    for i, layer in enumerate(layers):
        try:
            w = np.asarray(layer["weight"], dtype=np.float64)
            b = np.asarray(layer["bias"], dtype=np.float64)
            kw, kh = int(layer["kW"]), int(layer["kH"])
            dw, dh = int(layer["dW"]), int(layer["dH"])
            pw, ph = int(layer["padW"]), int(layer["padH"])
            n_in, n_out = int(layer["nInputPlane"]), int(layer["nOutputPlane"])
        except (KeyError, TypeError, ValueError) as e:
            raise ConversionError(f"{path}: layer {i + 1}: bad or missing field ({e})") from None
        if w.shape != (n_out, n_in, kh, kw) or b.shape != (n_out,):
            raise ConversionError(f"{path}: layer {i + 1}: weight {w.shape} / bias {b.shape} "
                                  f"do not match {n_out}x{n_in}x{kh}x{kw}")
        if n_in != prev_out:
            raise ConversionError(f"{path}: layer {i + 1} takes {n_in} channels, "
                                  f"previous layer gives {prev_out}")
        if (dw, dh) != (1, 1):
            raise ConversionError(f"{path}: layer {i + 1}: stride {dw}x{dh} unsupported")
        out.append({"w": w, "b": b, "kh": kh, "kw": kw, "ph": ph, "pw": pw,
                    "config": layer.get("model_config")})
        prev_out = n_out
    if prev_out != 3:
        raise ConversionError(f"{path}: last layer gives {prev_out} channels, expected 3")
    return out


def convert_vgg7(data_dir, rel, scale):
    path = require_file(os.path.join(data_dir, "models", rel))
    layers = load_torch7_json(path)
    config = layers[0]["config"] or {}
    shrink = sum((l["kh"] - 1) // 2 - l["ph"] for l in layers)
    shrink_w = sum((l["kw"] - 1) // 2 - l["pw"] for l in layers)
    offset = int(config.get("offset", shrink))
    if not shrink == shrink_w == offset:
        raise ConversionError(f"{path}: model_config.offset={offset} but the layers crop "
                              f"{shrink}x{shrink_w} px per side")
    if int(config.get("scale_factor", 1)) != 1:
        raise ConversionError(f"{path}: model_config.scale_factor "
                              f"{config.get('scale_factor')} (expected 1: the net does not resize)")

    gb = GraphBuilder()
    x = "input"
    size = Size()
    if scale != 1:
        x = gb.upsample_nearest("upsample_input", x, scale,
                                doc="waifu2x runs vgg_7 scale models on a nearest-neighbour "
                                    f"{scale}x upsampled input")
        size = size.scale(scale)
    x = gb.pad_edge("pad_input", x, offset,
                    doc=f"waifu2x pads the input by model_config.offset={offset} px, "
                        "edge-replicate, so the output keeps the input size")
    size = size.pad(offset, offset)
    for i, l in enumerate(layers, start=1):
        x = gb.conv(f"conv{i}", x, l["w"], l["b"], pads=(l["ph"], l["pw"], l["ph"], l["pw"]))
        size = size.conv(l["kh"], 1, l["ph"], l["ph"])
        if i < len(layers):
            x = gb.leaky_relu(f"lrelu{i}", x, 0.1)
    gb.mark_output(x)
    if size != Size(scale, 0):
        raise ConversionError(f"{path}: output size {size.expr('H')} != {scale}*H")

    name = "vgg7-noise1" if scale == 1 else f"vgg7-scale{scale}x"
    out_hw = ("H", "W") if scale == 1 else (size.expr("H"), size.expr("W"))
    chans = "-".join(str(l["w"].shape[1]) for l in layers) + "-3"
    doc = (f"waifu2x vgg_7 ({os.path.basename(rel)}), converted by {CONVERTER}. "
           f"Input RGB in [0,1] (8-bit value / 255), output RGB in [0,1] (clamp before "
           f"quantising). Graph: "
           + (f"Resize nearest {scale}x (upsample_input) -> " if scale != 1 else "")
           + f"Pad edge {offset} px (pad_input) -> conv1..conv{len(layers)} "
           f"(3x3, no padding, channels {chans}) with LeakyReLU(0.1) lrelu1..lrelu"
           f"{len(layers) - 1} after all but the last. Output size "
           f"{out_hw[0]} x {out_hw[1]} for an H x W input.")
    meta = common_metadata([rel], f"{out_hw[0]},{out_hw[1]}", data_dir)
    return name, build_model(gb, name, doc, 3, out_hw[0], out_hw[1], meta), gb


# --------------------------------------------------------------------------
# ncnn (.param + .bin)
# --------------------------------------------------------------------------

def _parse_ncnn_value(text):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise ConversionError(f"bad ncnn parameter value {text!r}") from None


def parse_ncnn_param(path):
    """Returns a list of layers: {type, name, inputs, outputs, params{id: value}}.

    Array parameters (key -233xx) are stored under id xx as a list of values."""
    with open(path, "r", encoding="ascii") as f:
        lines = [ln.strip() for ln in f if ln.strip()]
    if not lines or lines[0] != str(NCNN_MAGIC):
        raise ConversionError(f"{path}: not an ncnn .param file (magic {NCNN_MAGIC} missing)")
    try:
        layer_count, blob_count = (int(v) for v in lines[1].split())
    except (IndexError, ValueError):
        raise ConversionError(f"{path}: bad layer/blob count line") from None
    layers = []
    for ln in lines[2:]:
        tok = ln.split()
        try:
            ltype, lname, nin, nout = tok[0], tok[1], int(tok[2]), int(tok[3])
        except (IndexError, ValueError):
            raise ConversionError(f"{path}: bad layer line {ln!r}") from None
        ins = tok[4:4 + nin]
        outs = tok[4 + nin:4 + nin + nout]
        if len(ins) != nin or len(outs) != nout:
            raise ConversionError(f"{path}: layer {lname}: truncated blob list")
        params = {}
        for kv in tok[4 + nin + nout:]:
            key, sep, value = kv.partition("=")
            if not sep:
                raise ConversionError(f"{path}: layer {lname}: bad parameter {kv!r}")
            k = int(key)
            if k <= -23300:
                vals = [_parse_ncnn_value(v) for v in value.split(",")]
                if vals[0] != len(vals) - 1:
                    raise ConversionError(f"{path}: layer {lname}: array {kv!r} count mismatch")
                params[-k - 23300] = vals[1:]
            else:
                params[k] = _parse_ncnn_value(value)
        layers.append({"type": ltype, "name": lname, "inputs": ins, "outputs": outs,
                       "params": params})
    if len(layers) != layer_count:
        raise ConversionError(f"{path}: header says {layer_count} layers, found {len(layers)}")
    return layers


class NcnnBin:
    """Sequential reader of an ncnn .bin weight file."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        self.path = path
        self.pos = 0

    def _take(self, nbytes, what):
        if self.pos + nbytes > len(self.data):
            raise ConversionError(f"{self.path}: truncated while reading {what}")
        chunk = self.data[self.pos:self.pos + nbytes]
        self.pos += nbytes
        return chunk

    def tagged(self, count, what):
        """A weight array with ncnn's 4-byte type tag (ModelBin::load type 0)."""
        tag = int.from_bytes(self._take(4, what), "little")
        if tag == NCNN_TAG_FP16:
            arr = np.frombuffer(self._take(2 * count, what), dtype="<f2").astype(np.float32)
            self._take((-2 * count) % 4, what)  # fp16 arrays are padded to 4 bytes
            return arr
        if tag == NCNN_TAG_FP32:
            return np.frombuffer(self._take(4 * count, what), dtype="<f4").astype(np.float32)
        raise ConversionError(f"{self.path}: {what}: unsupported weight tag 0x{tag:08x} "
                              "(only float32 and float16 supported)")

    def raw(self, count, what):
        """A plain float32 array (ModelBin::load type 1): biases, PReLU slopes."""
        return np.frombuffer(self._take(4 * count, what), dtype="<f4").astype(np.float32)

    def finish(self):
        if self.pos != len(self.data):
            raise ConversionError(f"{self.path}: {len(self.data) - self.pos} unread bytes "
                                  "after the last layer (layer list and weights disagree)")


_CONV_KNOWN = {0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 21}


def _conv_geometry(lname, p, deconv):
    unknown = set(p) - _CONV_KNOWN
    if unknown:
        raise ConversionError(f"layer {lname}: unsupported parameter id(s) {sorted(unknown)}")
    k_w = p.get(1, 0)
    k_h = p.get(11, k_w)
    dil_w = p.get(2, 1)
    dil_h = p.get(12, dil_w)
    s_w = p.get(3, 1)
    s_h = p.get(13, s_w)
    pad_l = p.get(4, 0)
    pad_t = p.get(14, pad_l)
    pad_r = p.get(15, pad_l)
    pad_b = p.get(16, pad_t)
    if k_w != k_h or s_w != s_h:
        raise ConversionError(f"layer {lname}: non-square kernel/stride unsupported")
    if (dil_w, dil_h) != (1, 1):
        raise ConversionError(f"layer {lname}: dilation unsupported")
    if min(pad_l, pad_t, pad_r, pad_b) < 0:
        raise ConversionError(f"layer {lname}: 'SAME' padding (negative pad "
                              f"{min(pad_l, pad_t, pad_r, pad_b)}) unsupported")
    if deconv:
        if p.get(18, 0) or p.get(19, 0) or p.get(20, 0) or p.get(21, 0):
            raise ConversionError(f"layer {lname}: output_pad/output_size unsupported")
    elif p.get(18, 0.0) != 0 or 19 in p or 20 in p or 21 in p:
        raise ConversionError(f"layer {lname}: pad_value/dynamic weight unsupported")
    return k_w, s_w, (pad_t, pad_l, pad_b, pad_r)


def convert_ncnn(data_dir, rel_param, rel_bin, input_pad, names):
    """Walks an ncnn graph and emits the equivalent ONNX nodes.

    input_pad: edge-replicate padding (px) prepended to the graph (waifu2x's
    "prepadding", which is not part of the ncnn file). names: ncnn layer name ->
    ONNX node name for layers without a natural generated name."""
    ppath = require_file(os.path.join(data_dir, "models", rel_param))
    bpath = require_file(os.path.join(data_dir, "models", rel_bin))
    layers = parse_ncnn_param(ppath)
    wb = NcnnBin(bpath)
    gb = GraphBuilder()

    tensor = {}   # ncnn blob -> ONNX tensor
    chans = {}    # ncnn blob -> channel count
    size = {}     # ncnn blob -> Size (same rule for H and W)
    conv_index = 0
    act_index = {"prelu": 0}
    graph_input_blob = None
    last = None

    for L in layers:
        t, lname, p = L["type"], L["name"], L["params"]
        ins = [tensor[b] if b in tensor else None for b in L["inputs"]]
        if any(v is None for v in ins):
            raise ConversionError(f"{ppath}: layer {lname} reads an undefined blob")
        in_blob = L["inputs"][0] if L["inputs"] else None
        out_blob = L["outputs"][0] if L["outputs"] else None
        doc = f"ncnn {t} {lname}"

        if t == "Input":
            if graph_input_blob is not None:
                raise ConversionError(f"{ppath}: more than one Input layer")
            if p.get(2, 3) != 3:
                raise ConversionError(f"{ppath}: Input has {p.get(2)} channels, expected 3")
            graph_input_blob = out_blob
            x = "input"
            s = Size()
            if input_pad:
                x = gb.pad_edge("pad_input", x, input_pad,
                                doc=f"waifu2x prepadding: {input_pad} px edge-replicate")
                s = s.pad(input_pad, input_pad)
            tensor[out_blob], chans[out_blob], size[out_blob] = x, 3, s
            last = x
            continue

        if t == "Split":
            for ob in L["outputs"]:
                tensor[ob], chans[ob], size[ob] = ins[0], chans[in_blob], size[in_blob]
            continue

        if t in ("Convolution", "Deconvolution"):
            deconv = t == "Deconvolution"
            k, s, pads = _conv_geometry(lname, p, deconv)
            n_out, bias_term, wsize = p.get(0, 0), p.get(5, 0), p.get(6, 0)
            n_in = chans[in_blob]
            if wsize != n_out * n_in * k * k:
                raise ConversionError(f"{ppath}: layer {lname}: weight_data_size {wsize} != "
                                      f"{n_out}x{n_in}x{k}x{k}")
            w = wb.tagged(wsize, f"{lname} weights").reshape(n_out, n_in, k, k)
            b = wb.raw(n_out, f"{lname} bias") if bias_term else None
            conv_index += 1
            if deconv:
                # ncnn stores deconvolution weights [out][in][kh][kw] and computes a
                # true transposed convolution, no kernel flip:
                #   out[oc][y*s + ky][x*s + kx] += w[oc][ic][ky][kx] * in[ic][y][x]
                # then crops pad from each side. ONNX ConvTranspose is the same
                # sum with weights [in][out][kh][kw] and pads as the crop.
                name = f"deconv{conv_index}"
                x = gb.conv_transpose(name, ins[0], w.transpose(1, 0, 2, 3), b, stride=s,
                                      pads=pads, doc=doc)
                size[out_blob] = size[in_blob].deconv(k, s, pads[0], pads[2])
            else:
                name = f"conv{conv_index}"
                x = gb.conv(name, ins[0], w, b, stride=s, pads=pads, doc=doc)
                size[out_blob] = size[in_blob].conv(k, s, pads[0], pads[2])
            act = p.get(9, 0)
            act_params = p.get(10, [])
            if act == 1:
                x = gb.relu(f"relu{conv_index}", x)
            elif act == 2:
                slope = act_params[0] if act_params else 0.0
                x = gb.leaky_relu(f"lrelu{conv_index}", x, slope)
            elif act != 0:
                raise ConversionError(f"{ppath}: layer {lname}: fused activation type {act} "
                                      "unsupported")
            tensor[out_blob], chans[out_blob] = x, n_out

        elif t == "PReLU":
            n = p.get(0, 0)
            if n not in (1, chans[in_blob]):
                raise ConversionError(f"{ppath}: layer {lname}: {n} slopes for "
                                      f"{chans[in_blob]} channels")
            slope = wb.raw(n, f"{lname} slopes")
            act_index["prelu"] += 1
            name = f"prelu{act_index['prelu']}"
            sl = gb.init(f"{name}.slope", slope.reshape(n, 1, 1))
            x = gb.node("PRelu", name, [ins[0], sl], doc=doc)
            tensor[out_blob], chans[out_blob], size[out_blob] = x, chans[in_blob], size[in_blob]

        elif t == "PixelShuffle":
            r, mode = p.get(0, 1), p.get(1, 0)
            if chans[in_blob] % (r * r):
                raise ConversionError(f"{ppath}: layer {lname}: {chans[in_blob]} channels "
                                      f"not divisible by {r}^2")
            # ncnn mode 0: in channel = c*r*r + sh*r + sw, as torch pixel_shuffle
            # (ONNX CRD); mode 1: (sh*r + sw)*C + c (ONNX DCR).
            x = gb.node("DepthToSpace", names.get(lname, f"pixel_shuffle{conv_index}"),
                        ins, doc=doc, blocksize=r, mode="CRD" if mode == 0 else "DCR")
            tensor[out_blob], chans[out_blob] = x, chans[in_blob] // (r * r)
            size[out_blob] = size[in_blob].scale(r)

        elif t == "Interp":
            rtype, sh, sw = p.get(0, 0), float(p.get(1, 1.0)), float(p.get(2, 1.0))
            if p.get(3, 0) or p.get(4, 0) or p.get(5, 0) or p.get(6, 0):
                raise ConversionError(f"{ppath}: layer {lname}: fixed output size / dynamic "
                                      "size / align_corner unsupported")
            if sh != sw:
                raise ConversionError(f"{ppath}: layer {lname}: anisotropic scale unsupported")
            base = names.get(lname, f"resize_{lname}")
            if rtype == 1 and sh >= 1 and sh == int(sh):
                x = gb.upsample_nearest(base, ins[0], int(sh), doc=doc)
                size[out_blob] = size[in_blob].scale(int(sh))
            elif rtype == 3 and sh == 0.5:
                # Bicubic 2x downscale as ncnn computes it, expressed exactly as an
                # edge pad of 1 px and a fixed 4x4 stride-2 convolution (per-channel,
                # written as a dense conv with a diagonal channel matrix) so the
                # runtime needs no cubic Resize. Output x uses input taps
                # 2x-1..2x+2 (clamped), weights BICUBIC_HALF_TAPS in each axis.
                c = chans[in_blob]
                k2 = np.outer(BICUBIC_HALF_TAPS, BICUBIC_HALF_TAPS)
                w = np.zeros((c, c, 4, 4))
                for ch in range(c):
                    w[ch, ch] = k2
                xp = gb.pad_edge(f"{base}_pad", ins[0], 1, doc=doc + ": border clamp")
                x = gb.conv(base, xp, w, None, stride=2,
                            doc=doc + ": bicubic (A=-0.75, half-pixel) 0.5x as a fixed conv")
                size[out_blob] = size[in_blob].pad(1, 1).conv(4, 2, 0, 0)
            else:
                raise ConversionError(f"{ppath}: layer {lname}: Interp type {rtype} at scale "
                                      f"{sh} unsupported")
            tensor[out_blob], chans[out_blob] = x, chans[in_blob]

        elif t == "BinaryOp":
            if p.get(0, 0) != 0 or p.get(1, 0) != 0 or len(ins) != 2:
                raise ConversionError(f"{ppath}: layer {lname}: only two-input Add supported")
            a, b = L["inputs"]
            if chans[a] != chans[b] or size[a] != size[b]:
                raise ConversionError(f"{ppath}: layer {lname}: operand shapes differ")
            x = gb.node("Add", names.get(lname, f"add_{lname}"), ins, doc=doc)
            tensor[out_blob], chans[out_blob], size[out_blob] = x, chans[a], size[a]

        else:
            raise ConversionError(f"{ppath}: layer {lname}: ncnn layer type {t} unsupported")
        last = out_blob

    wb.finish()
    if last is None or graph_input_blob is None:
        raise ConversionError(f"{ppath}: no layers / no Input")
    gb.mark_output(tensor[last])
    return gb, chans[last], size[last]


def convert_upconv7(data_dir):
    rel_p = "waifu2x-upconv7/noise1_scale2.0x_model.param"
    rel_b = "waifu2x-upconv7/noise1_scale2.0x_model.bin"
    # waifu2x upconv_7: model offset 14 output px = 7 input px of prepadding.
    gb, c, size = convert_ncnn(data_dir, rel_p, rel_b, input_pad=7, names={})
    if c != 3 or size != Size(2, 0):
        raise ConversionError(f"upconv7: output {c} channels, size {size.expr('H')}; "
                              "expected 3 channels at 2*H")
    name = "upconv7-noise1-scale2x"
    oh, ow = size.expr("H"), size.expr("W")
    doc = (f"waifu2x upconv_7 anime_style_art_rgb, denoise level 1 + 2x upscale "
           f"(ncnn {os.path.basename(rel_p)}), converted by {CONVERTER}. Input RGB in [0,1], "
           "output RGB in [0,1] (clamp before quantising). Graph: Pad edge 7 px (pad_input; "
           "waifu2x's prepadding) -> conv1..conv6 (3x3, no padding, 3-16-32-64-128-128-256) "
           "each followed by LeakyReLU(0.1) lrelu1..lrelu6 -> deconv7 (ConvTranspose 4x4, "
           "stride 2, pads 3, 256->3). Without the pad the net maps H to 2H-28; with it the "
           f"output is {oh} x {ow} for an H x W input, output pixel (2y, 2x) aligned to "
           "input pixel (y, x).")
    meta = common_metadata([rel_p, rel_b], f"{oh},{ow}", data_dir)
    return name, build_model(gb, name, doc, 3, oh, ow, meta), gb


def convert_realesr(data_dir):
    rel_p = "realesr-animevideov3/realesr-animevideov3-x2.param"
    rel_b = "realesr-animevideov3/realesr-animevideov3-x2.bin"
    names = {"DepthToSpace_35": "pixel_shuffle", "Resize_37": "upsample_input",
             "Add_38": "add_residual", "Resize_40": "downsample"}
    gb, c, size = convert_ncnn(data_dir, rel_p, rel_b, input_pad=0, names=names)
    if c != 3 or size != Size(2, 0):
        raise ConversionError(f"realesr: output {c} channels, size {size.expr('H')}; "
                              "expected 3 channels at 2*H")
    n_conv = sum(1 for n in gb.nodes if n.op_type == "Conv") - 1  # minus the downsample
    name = "realesr-x2"
    oh, ow = size.expr("H"), size.expr("W")
    doc = (f"Real-ESRGAN realesr-animevideov3-x2 (SRVGGNetCompact, ncnn "
           f"{os.path.basename(rel_p)}), converted by {CONVERTER}. Input RGB in [0,1], output "
           "RGB in [0,1] (clamp before quantising). As in the ncnn file, the x2 model is the "
           f"x4 network followed by a bicubic 0.5x resize: conv1 (3->64) .. conv{n_conv} "
           "(64->48), 3x3 pad 1, PReLU prelu1..prelu"
           f"{n_conv - 1} after all but the last -> DepthToSpace 4 CRD (pixel_shuffle) -> "
           "Add (add_residual) with the input upsampled 4x nearest (upsample_input; Resize "
           "asymmetric/floor) -> downsample_pad (Pad edge 1) + downsample (fixed 4x4 "
           "stride-2 conv = ncnn bicubic 0.5x, A=-0.75, half-pixel). Output "
           f"{oh} x {ow} for an H x W input.")
    meta = common_metadata([rel_p, rel_b], f"{oh},{ow}", data_dir)
    return name, build_model(gb, name, doc, 3, oh, ow, meta), gb


# --------------------------------------------------------------------------
# The surveillance models (TensorFlow.js graph models, tools/convert_tfjs.py)
# --------------------------------------------------------------------------

TFJS = {
    # name: (json, pixel scale, pixel offset, input sizes, description)
    "nanodet": ("human-models/nanodet.json", INPUT_SCALE, "0", "multiples of 32",
                "NanoDet-g (RangiLyu/nanodet), COCO 80 classes. Input RGB/255. Each output "
                "head_sS (S = 8, 16, 32; a grid of H/S x W/S cells) has 124 channels: 80 class "
                "logits (sigmoid for the score), then 4 x 11 GFL distance bins (left, top, "
                "right, bottom; softmax over the 11, expectation x S is the distance in "
                "pixels from the cell's centre ((x + 0.5) S, (y + 0.5) S))"),
    "posenet": ("human-models/posenet.json", repr(2.0 / 255.0), "-1", "16k+1",
                "PoseNet MobileNetV1 0.75, output stride 16. Input RGB scaled to [-1, 1]. "
                "Outputs on a (H-1)/16+1 x (W-1)/16+1 grid: heatmap (17 keypoint logits, "
                "COCO order), offset (34: the 17 y offsets, then the 17 x offsets, in input "
                "pixels), displacement_fwd and displacement_bwd (32 each: 16 y then 16 x, "
                "along the pose skeleton's edges)"),
}


def convert_tfjs_model(data_dir, key):
    import convert_tfjs
    rel, scale, offset, sizes, what = TFJS[key]
    rel_bin = rel[:-len(".json")] + ".bin"
    try:
        conv, named, (h, w) = convert_tfjs.convert(os.path.join(data_dir, "models", rel), key)
    except convert_tfjs.TfjsError as e:
        raise ConversionError(str(e)) from None
    doc = (f"{what}. Converted from the TF.js graph model models/{rel} by "
           f"tools/convert_tfjs.py (through {CONVERTER}); the file's own size is {h}x{w}, "
           f"any H and W that are {sizes} work.")
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "H", "W"])
    graph = helper.make_graph(conv.nodes, key, [inp], convert_tfjs.output_infos(named, key),
                              initializer=conv.inits, doc_string=doc)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="cbinfer", producer_version="1", doc_string=doc)
    sizes_meta = ";".join(f"{convert_tfjs.output_dim(key, 'H', s)},"
                          f"{convert_tfjs.output_dim(key, 'W', s)}" for *_, s in named)
    meta = common_metadata([rel, rel_bin], sizes_meta, data_dir)
    meta = [(k, scale if k == "cbinfer.input_scale" else offset if k == "cbinfer.input_offset"
             else v) for k, v in meta]
    meta.append(("cbinfer.outputs", ",".join(n for n, *_ in named)))
    meta.append(("cbinfer.input_sizes", sizes))
    for k, v in meta:
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(model, full_check=True)

    class Counts:  # what main() logs
        nodes, param_count = conv.nodes, conv.param_count
    return key, model, Counts


# --------------------------------------------------------------------------
# Synthetic networks from the CBinfer paper (random He-initialised weights)
# --------------------------------------------------------------------------

def he_conv(gb, rng, name, x, c_in, c_out, k):
    fan_in = c_in * k * k
    w = rng.standard_normal((c_out, c_in, k, k)) * np.sqrt(2.0 / fan_in)
    b = rng.normal(0.0, 0.01, c_out)
    p = (k - 1) // 2
    return gb.conv(name, x, w, b, pads=(p, p, p, p))


def synthetic_metadata(seed, output_size, what):
    meta = common_metadata(f"synthetic: {what}; weights numpy.random.default_rng({seed}), "
                           "He normal std sqrt(2/fan_in), biases normal std 0.01",
                           output_size)
    return meta + [("cbinfer.synthetic", "1"), ("cbinfer.seed", str(seed))]


def build_scene_labeling():
    rng = np.random.default_rng(SCENE_LABELING_SEED)
    gb = GraphBuilder()
    x = he_conv(gb, rng, "conv1", "input", 3, 16, 7)
    x = gb.maxpool2("pool1", gb.relu("relu1", x))
    x = he_conv(gb, rng, "conv2", x, 16, 64, 7)
    x = gb.maxpool2("pool2", gb.relu("relu2", x))
    x = gb.relu("relu3", he_conv(gb, rng, "conv3", x, 64, 256, 7))
    x = gb.relu("relu4", he_conv(gb, rng, "conv4", x, 256, 64, 1))
    x = he_conv(gb, rng, "conv5", x, 64, 8, 1)
    gb.mark_output(x)
    name = "scene-labeling-synthetic"
    oh, ow = "ceil(ceil(H/2)/2)", "ceil(ceil(W/2)/2)"
    doc = ("SYNTHETIC: random He-initialised weights, NOT a trained network. Structure of "
           "the scene labeling CNN of CBinfer (Cavigelli & Benini, TCSVT 2020) Table I: "
           "conv1 7x7 3->16 pad 3, relu1, pool1 (max 2x2/2, ceil); conv2 7x7 16->64 pad 3, "
           "relu2, pool2; conv3 7x7 64->256 pad 3, relu3; conv4 1x1 256->64, relu4; conv5 "
           f"1x1 64->8 (8 class scores). Output 8 x {oh} x {ow} for an H x W input. Weights "
           f"from numpy.random.default_rng({SCENE_LABELING_SEED}). Input RGB in [0,1].")
    meta = synthetic_metadata(SCENE_LABELING_SEED, f"{oh},{ow}", "CBinfer Table I structure")
    graph_name = f"{name} (random He-initialised weights)"
    return name, build_model(gb, graph_name, doc, 8, oh, ow, meta), gb


def build_openpose():
    rng = np.random.default_rng(OPENPOSE_SEED)
    gb = GraphBuilder()
    x, c = "input", 3
    vgg = [("1_1", 64), ("1_2", 64), "pool1", ("2_1", 128), ("2_2", 128), "pool2",
           ("3_1", 256), ("3_2", 256), ("3_3", 256), ("3_4", 256), "pool3",
           ("4_1", 512), ("4_2", 512)]
    for item in vgg:
        if isinstance(item, str):
            x = gb.maxpool2(item, x)
            continue
        tag, c_out = item
        x = gb.relu(f"relu{tag}", he_conv(gb, rng, f"conv{tag}", x, c, c_out, 3))
        c = c_out
    x = gb.relu("relu4_3_CPM", he_conv(gb, rng, "conv4_3_CPM", x, c, 256, 3))
    features = gb.relu("relu4_4_CPM", he_conv(gb, rng, "conv4_4_CPM", x, 256, 128, 3))
    c_feat = 128

    def branch(x, c_in, layers, prefix_fmt, relu_fmt):
        n = len(layers)
        for i, (k, c_out) in enumerate(layers, start=1):
            x = he_conv(gb, rng, prefix_fmt.format(i), x, c_in, c_out, k)
            if i < n:
                x = gb.relu(relu_fmt.format(i), x)
            c_in = c_out
        return x

    # Stage 1: L1 (38 PAF channels) and L2 (19 heatmaps) on the shared features.
    s1 = [(3, 128), (3, 128), (3, 128), (1, 512)]
    l1 = branch(features, c_feat, s1 + [(1, 38)], "conv5_{}_CPM_L1", "relu5_{}_CPM_L1")
    l2 = branch(features, c_feat, s1 + [(1, 19)], "conv5_{}_CPM_L2", "relu5_{}_CPM_L2")
    cat = gb.node("Concat", "concat_stage2", [l1, l2, features], axis=1)
    c_cat = 38 + 19 + c_feat
    # Stage 2: five 7x7 convs, then two 1x1, per branch.
    s2 = [(7, 128)] * 5 + [(1, 128)]
    m1 = branch(cat, c_cat, s2 + [(1, 38)], "Mconv{}_stage2_L1", "Mrelu{}_stage2_L1")
    m2 = branch(cat, c_cat, s2 + [(1, 19)], "Mconv{}_stage2_L2", "Mrelu{}_stage2_L2")
    out = gb.node("Concat", "concat_output", [m1, m2], axis=1)
    gb.mark_output(out)

    name = "openpose-synthetic"
    oh, ow = "ceil(ceil(ceil(H/2)/2)/2)", "ceil(ceil(ceil(W/2)/2)/2)"
    doc = ("SYNTHETIC: random He-initialised weights, NOT the trained OpenPose model. "
           "Structure of the OpenPose body network (T=2 stages) used in CBinfer's pose "
           "experiments: VGG-19 conv1_1..conv4_2 (3x3 pad 1, ReLU, max pools pool1..pool3 "
           "2x2/2 ceil), conv4_3_CPM (256) and conv4_4_CPM (128) with ReLU; stage 1 branches "
           "conv5_1..5_3_CPM_L{1,2} (3x3, 128), conv5_4_CPM_L{1,2} (1x1, 512), "
           "conv5_5_CPM_L1 (1x1, 38) / conv5_5_CPM_L2 (1x1, 19), ReLU after all but the last; "
           "concat_stage2 = [L1, L2, features] (185 ch); stage 2 branches Mconv1..5_stage2_L"
           "{1,2} (7x7 pad 3, 128), Mconv6 (1x1, 128), Mconv7 (1x1, 38 / 19); output = "
           f"concat_output [Mconv7_stage2_L1, Mconv7_stage2_L2], 57 x {oh} x {ow} for an "
           f"H x W input. Weights from numpy.random.default_rng({OPENPOSE_SEED}). "
           "Input RGB in [0,1].")
    meta = synthetic_metadata(OPENPOSE_SEED, f"{oh},{ow}", "OpenPose body net structure, T=2")
    graph_name = f"{name} (random He-initialised weights)"
    return name, build_model(gb, graph_name, doc, 57, oh, ow, meta), gb


# --------------------------------------------------------------------------

# Input files (under DIR/models) each model needs; checked before anything is written.
INPUTS = {
    "vgg7-noise1": ["waifu2x-vgg7/noise1_model.json"],
    "vgg7-scale2x": ["waifu2x-vgg7/scale2.0x_model.json"],
    "upconv7-noise1-scale2x": ["waifu2x-upconv7/noise1_scale2.0x_model.param",
                               "waifu2x-upconv7/noise1_scale2.0x_model.bin"],
    "realesr-x2": ["realesr-animevideov3/realesr-animevideov3-x2.param",
                   "realesr-animevideov3/realesr-animevideov3-x2.bin"],
    "scene-labeling-synthetic": [],
    "openpose-synthetic": [],
    "nanodet": ["human-models/nanodet.json", "human-models/nanodet.bin"],
    "posenet": ["human-models/posenet.json", "human-models/posenet.bin"],
}

MODELS = {
    "vgg7-noise1": lambda d: convert_vgg7(d, "waifu2x-vgg7/noise1_model.json", 1),
    "vgg7-scale2x": lambda d: convert_vgg7(d, "waifu2x-vgg7/scale2.0x_model.json", 2),
    "upconv7-noise1-scale2x": convert_upconv7,
    "realesr-x2": convert_realesr,
    "scene-labeling-synthetic": lambda d: build_scene_labeling(),
    "openpose-synthetic": lambda d: build_openpose(),
    "nanodet": lambda d: convert_tfjs_model(d, "nanodet"),
    "posenet": lambda d: convert_tfjs_model(d, "posenet"),
}


def write_model(model, path):
    data = model.SerializeToString()
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return len(data)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", required=True,
                    help="folder holding models/... (as the shared data folder)")
    ap.add_argument("--out-dir", required=True, help="where to write the .onnx files")
    ap.add_argument("--only", default="",
                    help=f"comma-separated subset of: {', '.join(MODELS)}")
    ap.add_argument("--prebuilt", default="",
                    help="folder of converted <name>.onnx files to copy instead of converting")
    args = ap.parse_args(argv)

    wanted = [m for m in args.only.split(",") if m] or list(MODELS)
    try:
        unknown = [m for m in wanted if m not in MODELS]
        if unknown:
            raise ConversionError(f"unknown model(s) {', '.join(unknown)}")
        def prebuilt(key):
            path = os.path.join(args.prebuilt, f"{key}.onnx")
            return path if args.prebuilt and os.path.isfile(path) else None
        convert = [k for k in wanted if not prebuilt(k)]
        if any(INPUTS[k] for k in convert) and \
                not os.path.isdir(os.path.join(args.data_dir, "models")):
            raise ConversionError(f"{args.data_dir}/models is not a folder")
        for key in convert:
            for rel in INPUTS[key]:
                require_file(os.path.join(args.data_dir, "models", rel))
        os.makedirs(args.out_dir, exist_ok=True)
        for key in wanted:
            if prebuilt(key):
                model = onnx.load(prebuilt(key))
                onnx.checker.check_model(model)
                nbytes = write_model(model, os.path.join(args.out_dir, f"{key}.onnx"))
                log(f"took {key} from {args.prebuilt} ({nbytes} bytes)")
                continue
            log(f"converting {key}")
            name, model, gb = MODELS[key](args.data_dir)
            path = os.path.join(args.out_dir, f"{name}.onnx")
            nbytes = write_model(model, path)
            log(f"wrote {path} ({len(gb.nodes)} nodes, {gb.param_count} parameters, "
                f"{nbytes} bytes)")
    except (ConversionError, OSError, onnx.checker.ValidationError) as e:
        print(f"convert_models: error: {e}".splitlines()[0], file=sys.stderr)
        return 1
    except Exception as e:  # one line, never a traceback, for anything unforeseen
        print(f"convert_models: error: {type(e).__name__}: {e}".splitlines()[0],
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
