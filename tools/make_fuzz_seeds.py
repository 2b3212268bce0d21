#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/.

  onnx/     one small graph per supported op (and per attribute form the
            loader reads), each loadable and runnable on a 12x12 frame;
            refused_*: near misses the loader must refuse
  layer_values/  layer-value files (thresholds, break-even) in every line-end form
  npy/      .npy files of versions 1.0, 2.0 and 3.0
  raw/      raw rgb24 inputs behind the raw target's 8-byte size header

The seeds are committed; run this again only to change them. The fuzz
targets (tests/fuzz/*.c) say how each input is read. Run by Debian's
interpreter: /usr/bin/python3 tools/make_fuzz_seeds.py
"""
import os
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fuzz", "corpus")
RNG = np.random.default_rng(11)


def weights(*shape):
    return RNG.uniform(-0.5, 0.5, size=shape).astype(np.float32)


def model(name, nodes, inits, out_c, opset=13):
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "H", "W"])
    out = helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT,
                                        [1, out_c, None, None])
    graph = helper.make_graph(nodes, name, [inp], [out],
                              initializer=[numpy_helper.from_array(a, n) for n, a in inits])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="cbinfer-fuzz-seeds")
    m.ir_version = 7
    onnx.checker.check_model(m)
    return m


def conv(name, x, cout, cin, k=3, **attrs):
    """A Conv node and its initializers (pads keep the size unless given)."""
    attrs.setdefault("pads", [k // 2] * 4)
    group = attrs.get("group", 1)
    inits = [(name + ".w", weights(cout, cin // group, k, k)), (name + ".b", weights(cout))]
    node = helper.make_node("Conv", [x, name + ".w", name + ".b"], [name], name=name,
                            kernel_shape=[k, k], **attrs)
    return node, inits


def seeds_onnx():
    out = {}

    def single(name, extra_nodes, extra_inits, out_c, opset=13):
        c0, i0 = conv("c0", "input", 4, 3)
        out[name] = model(name, [c0] + extra_nodes, i0 + extra_inits, out_c, opset)

    c, i = conv("c1", "input", 4, 3, k=3, strides=[2, 2], dilations=[1, 1])
    out["conv_stride2"] = model("conv_stride2", [c], i, 4)
    c, i = conv("c1", "input", 4, 3, k=3, dilations=[2, 2], pads=[2, 2, 2, 2])
    out["conv_dilated"] = model("conv_dilated", [c], i, 4)
    c0, i0 = conv("c0", "input", 4, 3)
    c1, i1 = conv("c1", "c0", 4, 4, k=3, group=2)
    out["conv_grouped"] = model("conv_grouped", [c0, c1], i0 + i1, 4)
    c, i = conv("c1", "input", 8, 3, k=1, pads=[0, 0, 0, 0])
    out["conv_1x1"] = model("conv_1x1", [c], i, 8)
    c = helper.make_node("Conv", ["input", "w", "b"], ["c1"], name="c1", kernel_shape=[3, 3],
                         auto_pad="SAME_UPPER")
    out["conv_same_upper"] = model("conv_same_upper", [c],
                                   [("w", weights(4, 3, 3, 3)), ("b", weights(4))], 4)

    single("relu", [helper.make_node("Relu", ["c0"], ["y"], name="y")], [], 4)
    single("leaky_relu", [helper.make_node("LeakyRelu", ["c0"], ["y"], name="y", alpha=0.1)],
           [], 4)
    single("prelu", [helper.make_node("PRelu", ["c0", "slope"], ["y"], name="y")],
           [("slope", weights(4, 1, 1))], 4)
    single("clip", [helper.make_node("Clip", ["c0", "lo", "hi"], ["y"], name="y")],
           [("lo", np.array(0, np.float32)), ("hi", np.array(6, np.float32))], 4)
    single("clip_attr", [helper.make_node("Clip", ["c0"], ["y"], name="y", min=0.0, max=1.0)],
           [], 4, opset=6)
    single("maxpool", [helper.make_node("MaxPool", ["c0"], ["y"], name="y", kernel_shape=[2, 2],
                                        strides=[2, 2])], [], 4)
    single("maxpool_pads", [helper.make_node("MaxPool", ["c0"], ["y"], name="y",
                                             kernel_shape=[3, 3], strides=[1, 1],
                                             pads=[1, 1, 1, 1])], [], 4)
    single("avgpool", [helper.make_node("AveragePool", ["c0"], ["y"], name="y",
                                        kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                        count_include_pad=1)], [], 4)
    c1, i1 = conv("c1", "c0", 4, 4)
    single("add", [c1, helper.make_node("Add", ["c0", "c1"], ["y"], name="y")], i1, 4)
    c1, i1 = conv("c1", "c0", 2, 4)
    single("concat", [c1, helper.make_node("Concat", ["c0", "c1"], ["y"], name="y", axis=1)],
           i1, 6)
    single("pad_edge", [helper.make_node("Pad", ["c0", "pads"], ["y"], name="y", mode="edge")],
           [("pads", np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64))], 4)
    single("pad_constant", [helper.make_node("Pad", ["c0", "pads", "v"], ["y"], name="y")],
           [("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)),
            ("v", np.array(0.5, np.float32))], 4)
    single("pad_reflect", [helper.make_node("Pad", ["c0", "pads"], ["y"], name="y",
                                            mode="reflect")],
           [("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))], 4)
    single("resize_nearest", [helper.make_node("Resize", ["c0", "", "scales"], ["y"], name="y",
                                               mode="nearest")],
           [("scales", np.array([1, 1, 2, 2], np.float32))], 4)
    single("resize_sizes", [helper.make_node("Resize", ["c0", "", "", "sizes"], ["y"], name="y",
                                             mode="nearest",
                                             coordinate_transformation_mode="asymmetric",
                                             nearest_mode="floor")],
           [("sizes", np.array([1, 4, 24, 24], np.int64))], 4)
    single("refused_resize_linear", [helper.make_node("Resize", ["c0", "", "scales"], ["y"],
                                                      name="y", mode="linear")],
           [("scales", np.array([1, 1, 2, 2], np.float32))], 4)
    single("upsample", [helper.make_node("Upsample", ["c0", "scales"], ["y"], name="y",
                                         mode="nearest")],
           [("scales", np.array([1, 1, 2, 2], np.float32))], 4, opset=9)
    single("depth_to_space_dcr", [helper.make_node("DepthToSpace", ["c0"], ["y"], name="y",
                                                   blocksize=2)], [], 1)
    single("depth_to_space_crd", [helper.make_node("DepthToSpace", ["c0"], ["y"], name="y",
                                                   blocksize=2, mode="CRD")], [], 1)
    single("batchnorm", [helper.make_node("BatchNormalization",
                                          ["c0", "s", "bb", "mean", "var"], ["y"], name="y")],
           [("s", weights(4)), ("bb", weights(4)), ("mean", weights(4)),
            ("var", np.abs(weights(4)) + 0.5)], 4)
    single("dropout_identity", [helper.make_node("Dropout", ["c0"], ["d"], name="d"),
                                helper.make_node("Identity", ["d"], ["y"], name="y")], [], 4)
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))
    single("constant", [helper.make_node("Constant", [], ["k"], name="k", value=pads),
                        helper.make_node("Pad", ["c0", "k"], ["y"], name="y", mode="edge")],
           [], 4)
    ct = helper.make_node("ConvTranspose", ["c0", "tw", "tb"], ["y"], name="y",
                          kernel_shape=[4, 4], strides=[2, 2], pads=[1, 1, 1, 1])
    single("conv_transpose", [ct], [("tw", weights(4, 3, 4, 4)), ("tb", weights(3))], 3)
    return out


def seeds_values():
    body = "c0 0.05\nc1 0.125\n"
    return {
        "lf": "# cbinfer layer values v1\n# thresholds\n" + body,
        "crlf": ("# cbinfer layer values v1\n" + body).replace("\n", "\r\n"),
        "cr": ("# cbinfer layer values v1\n" + body).replace("\n", "\r"),
        "exponent": "# cbinfer layer values v1\nc0 1.5e-3\nc1 +2E+0\n",
    }


def npy_bytes(arr, version):
    """An .npy file as numpy.save writes it, in a chosen format version."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % (repr(arr.shape),)
    size_field = 2 if version == 1 else 4
    total = 8 + size_field + len(header) + 1
    header += " " * ((64 - total % 64) % 64) + "\n"
    magic = b"\x93NUMPY" + bytes([version, 0])
    size = struct.pack("<H" if version == 1 else "<I", len(header))
    return magic + size + header.encode("latin1" if version < 3 else "utf8") + \
        arr.astype("<f4").tobytes()


def seeds_npy():
    return {
        "v1_nchw": npy_bytes(weights(1, 3, 4, 5), 1),
        "v2_vector": npy_bytes(weights(7), 2),
        "v3_scalar": npy_bytes(np.array(1.5, np.float32), 3),
        "v1_empty": npy_bytes(np.zeros((0, 3), np.float32), 1),
    }


def seeds_raw():
    """The raw target's input: in_w, in_h, out_w, out_h, skip (bytes 0-4;
    sizes 1 + byte % 16), three spare bytes, then the stream's bytes."""
    out = {}
    for name, (iw, ih, ow, oh, skip, frames) in {
            "same_size": (8, 6, 8, 6, 0, 3),
            "resize": (8, 6, 4, 3, 1, 2),
            "partial_frame": (5, 5, 5, 5, 0, 1.5)}.items():
        hdr = bytes([iw - 1, ih - 1, ow - 1, oh - 1, skip, 0, 0, 0])
        n = int(iw * ih * 3 * frames)
        out[name] = hdr + RNG.integers(0, 256, size=n, dtype=np.uint8).tobytes()
    return out


def write(kind, name, data):
    d = os.path.join(ROOT, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    for name, m in seeds_onnx().items():
        write("onnx", name + ".onnx", m.SerializeToString())
    for name, text in seeds_values().items():
        write("layer_values", name + ".txt", text.encode())
    for name, data in seeds_npy().items():
        write("npy", name + ".npy", data)
    for name, data in seeds_raw().items():
        write("raw", name + ".bin", data)
    print("seeds written to", os.path.normpath(ROOT), file=sys.stderr)


if __name__ == "__main__":
    main()
