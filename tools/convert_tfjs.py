#!/usr/bin/python3
"""TensorFlow.js graph models -> ONNX (NCHW, symbolic H and W), numpy and onnx only.

Used by tools/convert_models.py for the two surveillance models of
models/human-models (NanoDet-g and PoseNet MobileNetV1 0.75); run on its own it
converts one model:

    /usr/bin/python3 tools/convert_tfjs.py MODEL.json OUT.onnx {nanodet|posenet}

A TF.js graph model is a JSON file whose modelTopology.node is a TF GraphDef
(op, input, attr) and whose weightsManifest lists every constant's name, shape
and dtype in the order of the .bin file (float16 where "quantization" says so).

The converter walks the graph from its input to the network's outputs and keeps,
for every TF tensor, the ONNX tensor that holds it in NCHW plus the layout the
TF graph sees it in (NCHW or NHWC): a Transpose between the two layouts is a
change of that tag, not a node. Zero Pads fold into the convolution that reads
them, and a Pad with the float16 minimum (or -inf) folds into the MaxPool after
it; a bias Add folds into its convolution. ResizeBilinear's fixed output size
becomes a scale factor, so the ONNX graph takes any input the model allows.

What is the network: the ops between the input and the graph's signature
outputs, minus the post-processing at the end (Identity, Sigmoid, SplitV,
Reshape and Transpose on the heads), which belongs to the decoders. The ONNX
outputs are the tensors those post-processing chains read, named after the
heads (NanoDet: head_s8, head_s16, head_s32, each 80 class logits then 4x11
distance bins; PoseNet: heatmap, offset, displacement_fwd, displacement_bwd).

Supported ops: Placeholder, Const, Identity, Transpose (layout changes only),
Pad, PadV2, Conv2D, _FusedConv2D and FusedDepthwiseConv2dNative (fused BiasAdd,
Relu, Relu6), DepthwiseConv2dNative, Add/AddV2/BiasAdd (a bias, or two
tensors), LeakyRelu, Relu, Relu6, MaxPool, ConcatV2 and ResizeBilinear. Anything
else on the network's path is an error naming the node.
"""
import base64
import json
import os
import sys

import numpy as np
from onnx import TensorProto, helper

# Shapes are tracked at the graph's own input size (the Placeholder's shape):
# ResizeBilinear's size and SAME padding are resolved there.

POSTPROCESS_OPS = ("Identity", "Sigmoid", "SplitV", "Split", "Reshape", "Transpose")
NCHW_TO_NHWC = [0, 2, 3, 1]
NHWC_TO_NCHW = [0, 3, 1, 2]
FP16_LOWEST = float(np.finfo(np.float16).min)  # -65504


class TfjsError(Exception):
    """A problem with the model files, or a construct the converter does not handle."""


# --------------------------------------------------------------------------
# Reading the model files
# --------------------------------------------------------------------------

DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}


def load_tfjs(json_path, bin_dir=None):
    """Returns (nodes by name in file order, {const name: numpy array}, signature)."""
    try:
        with open(json_path, "r", encoding="utf-8") as f:
            model = json.load(f)
    except (OSError, ValueError) as e:
        raise TfjsError(f"{json_path}: not a readable JSON file ({e})") from None
    if not isinstance(model, dict) or model.get("format") != "graph-model":
        raise TfjsError(f"{json_path}: not a TF.js graph model (format != graph-model)")
    try:
        node_list = model["modelTopology"]["node"]
        manifest = model["weightsManifest"]
    except (KeyError, TypeError):
        raise TfjsError(f"{json_path}: no modelTopology.node or weightsManifest") from None
    nodes = {}
    for n in node_list:
        if not isinstance(n, dict) or "name" not in n or "op" not in n:
            raise TfjsError(f"{json_path}: a node without name or op")
        if n["name"] in nodes:
            raise TfjsError(f"{json_path}: node {n['name']} is defined twice")
        nodes[n["name"]] = n
    bin_dir = bin_dir or os.path.dirname(json_path)
    consts = {}
    for group in manifest:
        blob = b""
        for p in group.get("paths", []):
            path = os.path.join(bin_dir, p)
            try:
                with open(path, "rb") as f:
                    blob += f.read()
            except OSError as e:
                raise TfjsError(f"{path}: cannot read weights ({e.strerror})") from None
        off = 0
        for w in group.get("weights", []):
            name, shape, dtype = w["name"], [int(d) for d in w["shape"]], w["dtype"]
            if dtype not in DTYPES:
                raise TfjsError(f"{json_path}: weight {name} has unsupported dtype {dtype}")
            count = int(np.prod(shape)) if shape else 1
            quant = w.get("quantization")
            if quant:
                if quant.get("dtype") != "float16" or dtype != "float32":
                    raise TfjsError(f"{json_path}: weight {name}: only float16 quantisation of "
                                    f"float32 is supported, not {quant}")
                stored, nbytes = np.float16, 2 * count
            else:
                stored = DTYPES[dtype]
                nbytes = np.dtype(stored).itemsize * count
            if off + nbytes > len(blob):
                raise TfjsError(f"{json_path}: weights file too short: {name} needs bytes "
                                f"{off}..{off + nbytes} of {len(blob)}")
            arr = np.frombuffer(blob, dtype=stored, count=count, offset=off)
            consts[name] = arr.astype(DTYPES[dtype]).reshape(shape)
            off += nbytes
        if off != len(blob):
            raise TfjsError(f"{json_path}: weights file has {len(blob) - off} bytes beyond "
                            "the manifest")
    return nodes, consts, model.get("signature", {})


def attr(node, key, default=None):
    """A node attribute as a Python value (strings decoded, lists flattened)."""
    a = node.get("attr", {}).get(key)
    if a is None:
        return default
    if "s" in a:
        return base64.b64decode(a["s"]).decode()
    if "i" in a:
        return int(a["i"])
    if "f" in a:
        return float(a["f"])
    if "b" in a:
        return bool(a["b"])
    if "list" in a:
        lst = a["list"]
        if "i" in lst:
            return [int(v) for v in lst["i"]]
        if "s" in lst:
            return [base64.b64decode(v).decode() for v in lst["s"]]
        if "f" in lst:
            return [float(v) for v in lst["f"]]
        return []
    return default


def split_input(ref):
    """'name:1' -> ('name', 1); '^ctrl' control inputs are dropped by the callers."""
    if ":" in ref:
        name, idx = ref.rsplit(":", 1)
        return name, int(idx)
    return ref, 0


def data_inputs(node):
    return [r for r in node.get("input", []) if not r.startswith("^")]


# --------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------

class Value:
    """A TF tensor as the converter holds it.

    onnx: the ONNX tensor holding it in NCHW; layout: "NCHW" or "NHWC" (how TF
    indexes it); shape: its TF shape at the graph's input size; pads: zero (or
    pad_value) padding not yet applied, ONNX order [t, l, b, r]; bias_of: the
    index in Converter.nodes of the Conv that produced it, while a bias may
    still fold into it."""

    def __init__(self, onnx_name, layout, shape, pads=(0, 0, 0, 0), pad_value=0.0,
                 conv=None):
        self.onnx, self.layout, self.shape = onnx_name, layout, list(shape)
        self.pads, self.pad_value, self.conv = list(pads), pad_value, conv

    def nchw_shape(self):
        return self.shape if self.layout == "NCHW" else [self.shape[i] for i in NHWC_TO_NCHW]

    def hw(self):
        s = self.nchw_shape()
        return s[2], s[3]

    def channels(self):
        return self.nchw_shape()[1]


class Converter:
    def __init__(self, nodes, consts, what):
        self.tf, self.consts, self.what = nodes, consts, what
        self.nodes, self.inits, self.names = [], [], set()
        self.values = {}
        self.param_count = 0
        self.consumers = {}
        for n in nodes.values():
            for r in data_inputs(n):
                self.consumers.setdefault(split_input(r)[0], []).append(n["name"])

    # ---- ONNX building -------------------------------------------------
    def _claim(self, name):
        base, k = name, 1
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    def init(self, name, array, dtype=np.float32):
        arr = np.ascontiguousarray(np.asarray(array, dtype=dtype))
        name = self._claim(name)
        self.inits.append(helper.make_tensor(name, {np.float32: TensorProto.FLOAT,
                                                    np.int64: TensorProto.INT64}[dtype],
                                             arr.shape, arr.tobytes(), raw=True))
        if name.endswith((".weight", ".bias")):
            self.param_count += arr.size
        return name

    def node(self, op, name, inputs, **attrs):
        name = self._claim(name)
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    # ---- helpers -------------------------------------------------------
    def fail(self, node, msg):
        raise TfjsError(f"{self.what}: node {node['name']} ({node['op']}): {msg}")

    def const(self, ref, node):
        name, idx = split_input(ref)
        src = self.tf.get(name)
        if src is None:
            self.fail(node, f"input {ref} is not in the graph")
        if src["op"] != "Const" or idx != 0:
            self.fail(node, f"input {ref} must be a constant")
        if name not in self.consts:
            self.fail(node, f"constant {name} has no weights in the manifest")
        return self.consts[name]

    def is_const(self, ref):
        n = self.tf.get(split_input(ref)[0])
        return n is not None and n["op"] == "Const"

    def short(self, tf_name):
        """An ONNX node name from a TF name: the last meaningful path part."""
        parts = [p for p in tf_name.split("/") if p and p != "PartitionedCall"]
        if self.what == "posenet":  # MobilenetV1/MobilenetV1/Conv2d_3_depthwise/..., or
            named = [p for p in parts if p != "MobilenetV1"]  # MobilenetV1/heatmap_2/BiasAdd
            if named:
                return named[0]
        name = parts[-1] if parts else tf_name
        return name.replace("onnx_tf_prefix_", "")

    def materialize(self, v, name):
        """A Value with its pending pads applied as an ONNX Pad."""
        if not any(v.pads):
            return v
        t, l, b, r = v.pads
        pads = self.init(f"{name}.pads", [0, 0, t, l, 0, 0, b, r], dtype=np.int64)
        val = self.init(f"{name}.value", v.pad_value)
        out = self.node("Pad", name, [v.onnx, pads, val], mode="constant")
        h, w = v.hw()
        return Value(out, v.layout, self._shape_hw(v, h + t + b, w + l + r))

    def _shape_hw(self, v, h, w):
        s = list(v.shape)
        if v.layout == "NCHW":
            s[2], s[3] = h, w
        else:
            s[1], s[2] = h, w
        return s

    def value(self, ref, node):
        name, idx = split_input(ref)
        if name not in self.values:
            self.convert(name)
        v = self.values[name]
        if isinstance(v, list):
            if idx >= len(v):
                self.fail(node, f"input {ref}: no output {idx}")
            return v[idx]
        if idx != 0:
            self.fail(node, f"input {ref}: the op has one output")
        return v

    def tensor(self, ref, node):
        v = self.value(ref, node)
        if not isinstance(v, Value):
            self.fail(node, f"input {ref} is a constant where a tensor is expected")
        return v

    # ---- the walk ------------------------------------------------------
    def convert(self, name):
        stack = [name]
        while stack:  # iterative post-order: deep graphs must not hit the recursion limit
            top = stack[-1]
            if top in self.values:
                stack.pop()
                continue
            node = self.tf.get(top)
            if node is None:
                raise TfjsError(f"{self.what}: tensor {top} is used but never defined")
            pending = [split_input(r)[0] for r in data_inputs(node)
                       if not self.is_const(r) and split_input(r)[0] not in self.values]
            if pending:
                if any(p in stack for p in pending):
                    self.fail(node, "the graph has a cycle")
                stack.extend(pending)
                continue
            stack.pop()
            self.values[top] = self.lower(node)

    def lower(self, node):
        op = node["op"]
        fn = getattr(self, f"op_{op.lstrip('_')}", None)
        if fn is None:
            self.fail(node, "unsupported op (see the converter's docstring for the list)")
        return fn(node)

    def op_Placeholder(self, node):
        try:
            dims = [int(d.get("size", -1)) for d in node["attr"]["shape"]["shape"]["dim"]]
        except (KeyError, TypeError, ValueError):
            self.fail(node, "no static shape")
        if len(dims) != 4 or dims[0] != 1 or min(dims) <= 0:
            self.fail(node, f"input shape {dims}: need a static 1xHxWx3 or 1x3xHxW")
        if dims[1] == 3:
            layout = "NCHW"
        elif dims[3] == 3:
            layout = "NHWC"
        else:
            self.fail(node, f"input shape {dims} has no 3-channel axis")
        self.input_shape = dims
        return Value("input", layout, dims)

    def op_Identity(self, node):
        return self.value(data_inputs(node)[0], node)

    def op_Transpose(self, node):
        x = self.tensor(data_inputs(node)[0], node)
        perm = [int(p) for p in self.const(data_inputs(node)[1], node)]
        if x.layout == "NCHW" and perm == NCHW_TO_NHWC:
            layout = "NHWC"
        elif x.layout == "NHWC" and perm == NHWC_TO_NCHW:
            layout = "NCHW"
        else:
            self.fail(node, f"perm {perm} on a {x.layout} tensor is not a layout change")
        # pending pads are in ONNX order, whatever the layout: they travel along
        return Value(x.onnx, layout, [x.shape[p] for p in perm], x.pads, x.pad_value)

    def _pads_nchw(self, node, paddings, layout):
        p = np.asarray(paddings, dtype=np.int64)
        if p.shape != (4, 2):
            self.fail(node, f"paddings of shape {p.shape}, need 4x2")
        h_ax, w_ax = (2, 3) if layout == "NCHW" else (1, 2)
        c_ax = 1 if layout == "NCHW" else 3
        if p[0].any() or p[c_ax].any() or (p < 0).any():
            self.fail(node, "only non-negative padding of H and W is supported")
        return [int(p[h_ax, 0]), int(p[w_ax, 0]), int(p[h_ax, 1]), int(p[w_ax, 1])]

    def op_Pad(self, node, value=0.0):
        ins = data_inputs(node)
        x = self.tensor(ins[0], node)
        pads = self._pads_nchw(node, self.const(ins[1], node), x.layout)
        if any(x.pads) and x.pad_value != value:
            x = self.materialize(x, self.short(node["name"]) + "_pre")
        return Value(x.onnx, x.layout, x.shape, [a + b for a, b in zip(x.pads, pads)], value)

    def op_PadV2(self, node):
        value = float(np.asarray(self.const(data_inputs(node)[2], node)).reshape(()))
        return self.op_Pad(node, value)

    def _conv(self, node, depthwise):
        ins = data_inputs(node)
        x = self.tensor(ins[0], node)
        if attr(node, "data_format", "NHWC") != "NHWC" or x.layout != "NHWC":
            self.fail(node, "the converter handles NHWC convolutions only")
        w = self.const(ins[1], node).astype(np.float32)
        strides, dil = attr(node, "strides", [1, 1, 1, 1]), attr(node, "dilations", [1, 1, 1, 1])
        if strides[0] != 1 or strides[3] != 1 or dil[0] != 1 or dil[3] != 1:
            self.fail(node, f"strides {strides} / dilations {dil} on N or C")
        kh, kw, cin = w.shape[0], w.shape[1], w.shape[2]
        if x.shape[3] != cin:
            self.fail(node, f"input has {x.shape[3]} channels, the filter {cin}")
        if depthwise:
            mult = w.shape[3]
            wo = w.transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)  # oc = c*mult + m
            group = cin
        else:
            wo = w.transpose(3, 2, 0, 1)  # HWIO -> OIHW
            group = 1
        cout = wo.shape[0]
        if x.pad_value != 0.0 and any(x.pads):
            x = self.materialize(x, self.short(node["name"]) + "_pad")
        h, wd = x.shape[1] + x.pads[0] + x.pads[2], x.shape[2] + x.pads[1] + x.pads[3]
        sh, sw, dh, dw = strides[1], strides[2], dil[1], dil[2]
        ekh, ekw = (kh - 1) * dh + 1, (kw - 1) * dw + 1
        pad = attr(node, "padding", "VALID")
        pads = list(x.pads)
        if pad == "SAME":
            extra = []
            for n_in, k, s in ((h, ekh, sh), (wd, ekw, sw)):
                out = -(-n_in // s)
                extra.append(max((out - 1) * s + k - n_in, 0))
            if extra[0] % 2 or extra[1] % 2:
                self.fail(node, f"SAME padding is asymmetric at the model's size {x.shape}; "
                          "the ONNX file could not express it for other sizes")
            pads = [pads[0] + extra[0] // 2, pads[1] + extra[1] // 2,
                    pads[2] + extra[0] // 2, pads[3] + extra[1] // 2]
        elif pad != "VALID":
            self.fail(node, f"padding {pad}")
        oh = (h + (pads[0] - x.pads[0]) + (pads[2] - x.pads[2]) - ekh) // sh + 1
        ow = (wd + (pads[1] - x.pads[1]) + (pads[3] - x.pads[3]) - ekw) // sw + 1
        if oh <= 0 or ow <= 0:
            self.fail(node, "the output is empty at the model's size")
        name = self.short(node["name"])
        inputs = [x.onnx, self.init(f"{name}.weight", wo)]
        fused = attr(node, "fused_ops", [])
        act = None
        if fused:
            if fused[0] != "BiasAdd" or len(fused) > 2 or attr(node, "num_args", 1) != 1:
                self.fail(node, f"fused ops {fused}: only BiasAdd [+ Relu/Relu6]")
            b = self.const(ins[2], node).astype(np.float32).reshape(-1)
            if b.size != cout:
                self.fail(node, f"bias of {b.size} values for {cout} channels")
            inputs.append(self.init(f"{name}.bias", b))
            act = fused[1] if len(fused) == 2 else None
            if act not in (None, "Relu", "Relu6"):
                self.fail(node, f"fused activation {act}")
        out = self.node("Conv", name, inputs, kernel_shape=[kh, kw], strides=[sh, sw],
                        pads=pads, dilations=[dh, dw], group=group)
        conv_index = len(self.nodes) - 1 if not fused else None
        v = Value(out, "NHWC", [1, oh, ow, cout], conv=conv_index)
        if act:
            v = self._act(act, v, name + ("_relu6" if act == "Relu6" else "_relu"))
        return v

    def op_Conv2D(self, node):
        return self._conv(node, depthwise=False)

    def op_FusedConv2D(self, node):
        return self._conv(node, depthwise=False)

    def op_DepthwiseConv2dNative(self, node):
        return self._conv(node, depthwise=True)

    def op_FusedDepthwiseConv2dNative(self, node):
        return self._conv(node, depthwise=True)

    def op_Add(self, node):
        ins = data_inputs(node)
        consts = [self.is_const(r) for r in ins]
        if len(ins) != 2:
            self.fail(node, "needs two inputs")
        if all(consts):
            self.fail(node, "constant folding is not supported on the network's path")
        if any(consts):
            x = self.tensor(ins[1 - consts.index(True)], node)
            b = self.const(ins[consts.index(True)], node).astype(np.float32)
            c = x.channels()
            if b.size != c or (x.layout == "NHWC" and b.shape[-1] != c):
                self.fail(node, f"constant of shape {b.shape} is not a per-channel bias")
            conv = self.nodes[x.conv] if x.conv is not None else None
            producer = split_input(ins[1 - consts.index(True)])[0]
            if conv is not None and len(conv.input) == 2 and conv.output[0] == x.onnx \
                    and len(self.consumers.get(producer, [])) == 1:
                conv.input.append(self.init(f"{conv.name}.bias", b.reshape(-1)))
                return Value(x.onnx, x.layout, x.shape)
            name = self.short(node["name"])
            bias = self.init(f"{name}.bias", b.reshape(1, c, 1, 1))
            return Value(self.node("Add", name, [x.onnx, bias]), x.layout, x.shape)
        a, b = (self.tensor(r, node) for r in ins)
        if a.layout != b.layout or a.shape != b.shape:
            self.fail(node, f"adds {a.layout}{a.shape} and {b.layout}{b.shape}")
        name = self.short(node["name"])
        a, b = self.materialize(a, name + "_pa"), self.materialize(b, name + "_pb")
        return Value(self.node("Add", name, [a.onnx, b.onnx]), a.layout, a.shape)

    op_AddV2 = op_Add
    op_BiasAdd = op_Add

    def _act(self, act, x, name, alpha=None):
        x = self.materialize(x, name + "_pad")
        if act == "Relu":
            out = self.node("Relu", name, [x.onnx])
        elif act == "Relu6":
            lo, hi = self.init(f"{name}.min", 0.0), self.init(f"{name}.max", 6.0)
            out = self.node("Clip", name, [x.onnx, lo, hi])
        else:
            out = self.node("LeakyRelu", name, [x.onnx], alpha=float(alpha))
        return Value(out, x.layout, x.shape)

    def op_LeakyRelu(self, node):
        x = self.tensor(data_inputs(node)[0], node)
        return self._act("LeakyRelu", x, self.short(node["name"]), attr(node, "alpha", 0.2))

    def op_Relu(self, node):
        return self._act("Relu", self.tensor(data_inputs(node)[0], node),
                         self.short(node["name"]))

    def op_Relu6(self, node):
        return self._act("Relu6", self.tensor(data_inputs(node)[0], node),
                         self.short(node["name"]))

    def op_MaxPool(self, node):
        x = self.tensor(data_inputs(node)[0], node)
        if attr(node, "data_format", "NHWC") != "NHWC" or x.layout != "NHWC":
            self.fail(node, "the converter handles NHWC pooling only")
        k, s = attr(node, "ksize"), attr(node, "strides")
        if attr(node, "padding") != "VALID" or k[0] != 1 or k[3] != 1 or s[0] != 1 or s[3] != 1:
            self.fail(node, f"ksize {k} strides {s} padding {attr(node, 'padding')}")
        if any(x.pads) and x.pad_value > FP16_LOWEST:
            # a pad value that can win the max is not MaxPool's padding
            x = self.materialize(x, self.short(node["name"]) + "_pad")
        h = x.shape[1] + x.pads[0] + x.pads[2]
        w = x.shape[2] + x.pads[1] + x.pads[3]
        oh, ow = (h - k[1]) // s[1] + 1, (w - k[2]) // s[2] + 1
        out = self.node("MaxPool", self.short(node["name"]), [x.onnx],
                        kernel_shape=[k[1], k[2]], strides=[s[1], s[2]], pads=x.pads,
                        ceil_mode=0)
        return Value(out, "NHWC", [1, oh, ow, x.shape[3]])

    def op_ConcatV2(self, node):
        ins = data_inputs(node)
        axis = int(np.asarray(self.const(ins[-1], node)).reshape(()))
        xs = [self.tensor(r, node) for r in ins[:-1]]
        layout = xs[0].layout
        if any(v.layout != layout for v in xs):
            self.fail(node, "inputs in different layouts")
        axis %= 4
        if axis != (1 if layout == "NCHW" else 3):
            self.fail(node, f"concatenation along axis {axis} of {layout}; only channels")
        name = self.short(node["name"])
        xs = [self.materialize(v, f"{name}_p{i}") for i, v in enumerate(xs)]
        hw = [v.hw() for v in xs]
        if len(set(hw)) != 1:
            self.fail(node, f"inputs of different sizes {hw}")
        shape = list(xs[0].shape)
        shape[axis] = sum(v.shape[axis] for v in xs)
        return Value(self.node("Concat", name, [v.onnx for v in xs], axis=1), layout, shape)

    def op_ResizeBilinear(self, node):
        ins = data_inputs(node)
        x = self.tensor(ins[0], node)
        if x.layout != "NHWC":
            self.fail(node, "ResizeBilinear reads NHWC")
        size = [int(v) for v in self.const(ins[1], node)]
        h, w = x.hw()
        sy, sx = size[0] / h, size[1] / w
        if sy != sx or sy not in (0.25, 0.5, 2.0, 4.0, 1.0):
            self.fail(node, f"resize {h}x{w} -> {size[0]}x{size[1]}: only a uniform factor "
                      "of 1/4, 1/2, 2 or 4 converts to a size-independent ONNX Resize")
        half, corners = attr(node, "half_pixel_centers", False), attr(node, "align_corners",
                                                                      False)
        if half and corners:
            self.fail(node, "half_pixel_centers with align_corners")
        # TF's half-pixel bilinear is ONNX's half_pixel (not pytorch_half_pixel:
        # the sizes here are never 1); without it TF maps x_src = x * in / out.
        ctm = "half_pixel" if half else ("align_corners" if corners else "asymmetric")
        if corners and sy != 1.0:
            self.fail(node, "align_corners depends on the exact sizes; not size-independent")
        name = self.short(node["name"].replace("/ResizeBilinear", ""))
        x = self.materialize(x, name + "_pad")
        scales = self.init(f"{name}.scales", [1.0, 1.0, sy, sx])
        out = self.node("Resize", name, [x.onnx, "", scales], mode="linear",
                        coordinate_transformation_mode=ctm)
        return Value(out, "NHWC", [1, size[0], size[1], x.shape[3]])


# --------------------------------------------------------------------------
# The two models
# --------------------------------------------------------------------------

def network_outputs(nodes, signature, what):
    """The tensors the post-processing chains read: walks back from every
    signature output through POSTPROCESS_OPS along their data input."""
    outs = signature.get("outputs", {})
    if not outs:
        raise TfjsError(f"{what}: the model has no signature outputs")
    found = []
    for key in sorted(outs):
        ref = outs[key].get("name", key)
        name = split_input(ref)[0]
        while True:
            n = nodes.get(name)
            if n is None:
                raise TfjsError(f"{what}: output {ref} is not in the graph")
            if n["op"] not in POSTPROCESS_OPS:
                break
            ins = data_inputs(n)  # the data is input 0 (shape, perm, sizes follow)
            if not ins:
                raise TfjsError(f"{what}: post-processing node {n['name']} has no input")
            name = split_input(ins[0])[0]
        if name not in found:
            found.append(name)
    return found


def convert(json_path, what):
    """Returns (onnx GraphProto parts, info dict) for nanodet or posenet."""
    nodes, consts, signature = load_tfjs(json_path)
    conv = Converter(nodes, consts, what)
    heads = network_outputs(nodes, signature, what)
    for h in heads:
        conv.convert(h)
    if not hasattr(conv, "input_shape"):
        raise TfjsError(f"{what}: the outputs do not depend on a Placeholder")
    vals = {h: conv.values[h] for h in heads}
    for h, v in vals.items():
        if not isinstance(v, Value):
            raise TfjsError(f"{what}: output {h} is a constant")
        vals[h] = conv.materialize(v, conv.short(h) + "_pad")
    in_h, in_w = Value("input", "NCHW" if conv.input_shape[1] == 3 else "NHWC",
                       conv.input_shape).hw()
    if what == "nanodet":
        named = []
        for h, v in vals.items():
            oh, ow = v.hw()
            stride = in_h // oh
            if in_h != oh * stride or in_w != ow * stride or v.channels() != 124:
                raise TfjsError(f"{what}: head {h} is {v.channels()}x{oh}x{ow} for a "
                                f"{in_h}x{in_w} input; expected 124 channels on a stride grid")
            named.append((stride, f"head_s{stride}", h, v))
        named.sort()
        if [s for s, *_ in named] != [8, 16, 32]:
            raise TfjsError(f"{what}: heads at strides {[s for s, *_ in named]}, expected 8/16/32")
        named = [(n, h, v, stride) for stride, n, h, v in named]
    else:
        order = ["heatmap", "offset", "displacement_fwd", "displacement_bwd"]
        by_key = {}
        for h, v in vals.items():
            key = next((k for k in order if f"/{k}_" in h or h.endswith(f"/{k}")), None)
            if key is None or key in by_key:
                raise TfjsError(f"{what}: cannot name output {h}")
            by_key[key] = (h, v)
        if sorted(by_key) != sorted(order):
            raise TfjsError(f"{what}: outputs {sorted(by_key)}, expected {order}")
        named = [(k, by_key[k][0], by_key[k][1], (in_h - 1) // (by_key[k][1].hw()[0] - 1))
                 for k in order]
    # Rename each head's producing node output to the head's name.
    for out_name, _, v, _ in named:
        prod = next(n for n in conv.nodes if n.output[0] == v.onnx)
        old = prod.output[0]
        prod.output[0] = out_name
        for n in conv.nodes:
            for i, inp in enumerate(n.input):
                if inp == old:
                    n.input[i] = out_name
        v.onnx = out_name
    return conv, named, (in_h, in_w)


def output_dim(what, var, stride):
    """An output length in terms of the input length `var` (the heads' grids)."""
    # NanoDet: inputs are multiples of 32; PoseNet: 16k+1, SAME padding keeps odd sizes odd.
    return f"{var}/{stride}" if what == "nanodet" else f"({var}-1)/{stride}+1"


def output_infos(named, what):
    infos = []
    for out_name, _, v, stride in named:
        dims = [1, v.channels(), output_dim(what, "H", stride), output_dim(what, "W", stride)]
        infos.append(helper.make_tensor_value_info(out_name, TensorProto.FLOAT, dims))
    return infos


def main(argv):
    if len(argv) != 4 or argv[3] not in ("nanodet", "posenet"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    import onnx
    try:
        conv, named, _ = convert(argv[1], argv[3])
        graph = helper.make_graph(conv.nodes, argv[3],
                                  [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                 [1, 3, "H", "W"])],
                                  output_infos(named, argv[3]), initializer=conv.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, argv[2])
    except TfjsError as e:
        print(f"convert_tfjs: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
