"""tools/convert_tfjs.py on the two surveillance models, checked on a real vtest
frame against tools/tfjs_numpy_ref.py (the TF.js graph run in TensorFlow's own
terms, post-processing included). Run by ctest as Python.TfjsConverter."""
import json
import os
import shutil
import sys

import numpy as np
import onnx
import pytest

import vtest

SOURCE = os.environ["CBINFER_TEST_SOURCE_DIR"]
MODELS = os.environ["CBINFER_TEST_MODEL_DIR"]
HUMAN = os.path.join(os.environ["CBINFER_DATA_DIR"], "models", "human-models")
sys.path.insert(0, os.path.join(SOURCE, "tools"))
import convert_tfjs  # noqa: E402
import onnx_numpy_ref as oref  # noqa: E402
import tfjs_numpy_ref as tref  # noqa: E402


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def meta(model):
    return {p.key: p.value for p in model.metadata_props}


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    return vtest.vtest_frames(1, tmp_path_factory.mktemp("frames"))[0].astype(np.float64)


def test_nanodet_matches_the_tfjs_graph(frame):
    model = onnx.load(os.path.join(MODELS, "nanodet.onnx"))
    m = meta(model)
    assert [o.name for o in model.graph.output] == ["head_s8", "head_s16", "head_s32"]
    assert m["cbinfer.outputs"] == "head_s8,head_s16,head_s32"
    assert float(m["cbinfer.input_scale"]) == pytest.approx(1 / 255)
    assert float(m["cbinfer.input_offset"]) == 0
    crop = frame[80:496, 176:592] / 255.0  # the file's own 416 x 416
    x = crop.transpose(2, 0, 1)[None]
    env = oref.run_all(model, {"input": x})
    tf = tref.run(os.path.join(HUMAN, "nanodet.json"), {"input_1": x})
    # The signature outputs: per stride, sigmoid(class logits) as [1, cells, 80]
    # and the distance bins as [1, cells, 44].
    checked = 0
    for o in model.graph.output:
        y = env[o.name][0]
        cells = y.shape[1] * y.shape[2]
        assert y.shape[0] == 124 and 416 // y.shape[1] == int(o.name[len("head_s"):])
        cls = sigmoid(y[:80].reshape(80, cells).T)
        reg = y[80:].reshape(44, cells).T
        for ref in tf.values():
            if ref.shape[1] == cells:
                want = cls if ref.shape[2] == 80 else reg
                np.testing.assert_allclose(want, ref[0], rtol=0, atol=1e-6)
                checked += 1
    assert checked == 6
    # Trained weights read right: vtest's pedestrians score as persons (class 0).
    person = sigmoid(env["head_s8"][0, 0])
    assert person.max() > 0.5
    assert sigmoid(env["head_s8"][0, 1:80]).max() < person.max()


def test_nanodet_takes_other_sizes():
    model = onnx.load(os.path.join(MODELS, "nanodet.onnx"))
    x = np.random.default_rng(3).random((1, 3, 288, 384))
    env = oref.run_all(model, {"input": x}, dtype=np.float32)
    for o, s in zip(model.graph.output, (8, 16, 32)):
        assert env[o.name].shape == (1, 124, 288 // s, 384 // s)


@pytest.mark.parametrize("h,w", [(385, 385), (289, 385)])
def test_posenet_matches_the_tfjs_graph(frame, h, w):
    model = onnx.load(os.path.join(MODELS, "posenet.onnx"))
    m = meta(model)
    names = ["heatmap", "offset", "displacement_fwd", "displacement_bwd"]
    assert [o.name for o in model.graph.output] == names
    scale, offset = float(m["cbinfer.input_scale"]), float(m["cbinfer.input_offset"])
    crop = frame[95:95 + h, 191:191 + w] * scale + offset
    assert crop.min() >= -1 and crop.max() <= 1
    env = oref.run_all(model, {"input": crop.transpose(2, 0, 1)[None]})
    tf = tref.run(os.path.join(HUMAN, "posenet.json"), {"image": crop[None]})
    for name in names:
        ref = next(v for k, v in tf.items() if f"/{name}_2/" in k)  # NHWC
        y = env[name]
        assert y.shape[2:] == ((h - 1) // 16 + 1, (w - 1) // 16 + 1)
        np.testing.assert_allclose(y, ref.transpose(0, 3, 1, 2), rtol=0, atol=1e-6)
    assert sigmoid(env["heatmap"]).max() > 0.9  # keypoints of the pedestrians


def copy_model(tmp_path, name):
    for ext in (".json", ".bin"):
        shutil.copy(os.path.join(HUMAN, name + ext), tmp_path / (name + ext))
    return tmp_path / (name + ".json")


def test_truncated_weights_are_an_error(tmp_path):
    path = copy_model(tmp_path, "posenet")
    data = (tmp_path / "posenet.bin").read_bytes()
    (tmp_path / "posenet.bin").write_bytes(data[:len(data) - 4])
    with pytest.raises(convert_tfjs.TfjsError, match="too short"):
        convert_tfjs.convert(str(path), "posenet")
    (tmp_path / "posenet.bin").write_bytes(data + b"\0" * 8)
    with pytest.raises(convert_tfjs.TfjsError, match="beyond the manifest"):
        convert_tfjs.convert(str(path), "posenet")


def test_unsupported_op_names_the_node(tmp_path):
    path = copy_model(tmp_path, "posenet")
    model = json.loads(path.read_text())
    node = next(n for n in model["modelTopology"]["node"]
                if n["op"] == "FusedDepthwiseConv2dNative")
    node["op"] = "Conv3D"
    path.write_text(json.dumps(model))
    with pytest.raises(convert_tfjs.TfjsError, match=f"{node['name']} \\(Conv3D\\).*unsupported"):
        convert_tfjs.convert(str(path), "posenet")


def test_asymmetric_same_padding_is_an_error(tmp_path):
    # At an even size TF pads stride-2 SAME convolutions 0 before, 1 after:
    # no fixed ONNX pads express that for every size.
    path = copy_model(tmp_path, "posenet")
    model = json.loads(path.read_text())
    ph = next(n for n in model["modelTopology"]["node"] if n["op"] == "Placeholder")
    ph["attr"]["shape"]["shape"]["dim"][1]["size"] = "384"
    path.write_text(json.dumps(model))
    with pytest.raises(convert_tfjs.TfjsError, match="asymmetric"):
        convert_tfjs.convert(str(path), "posenet")
