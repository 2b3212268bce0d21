"""The Python bindings (tools/python/cbinfer) on real frames: run by ctest as
Python.Bindings with PYTHONPATH=<build>/python."""
import os

import numpy as np
import pytest

import cbinfer
import vtest

MODELS = os.environ["CBINFER_TEST_MODEL_DIR"]
SOURCE = os.environ["CBINFER_TEST_SOURCE_DIR"]
W, H = 64, 48
X, Y = 300, 250  # a crop where pedestrians walk


def vtest_frames(n, tmp_path):
    """n frames of vtest.avi from frame 0, cropped to W x H."""
    return [np.ascontiguousarray(f[Y:Y + H, X:X + W]) for f in vtest.vtest_frames(n, tmp_path)]


@pytest.fixture(scope="module")
def net():
    n = cbinfer.Network(os.path.join(MODELS, "vgg7-noise1.onnx"))
    yield n


def test_zero_threshold_equals_dense(net, tmp_path):
    frames = vtest_frames(5, tmp_path)
    dense = net.stream(W, H, mode="dense")
    cb = net.stream(W, H, mode="cbinfer")
    for f in frames:
        d, c = dense.push(f), cb.push(f)
        assert d.shape == dense.output_shape and d.shape[0] == 3
        assert d.dtype == np.float32
        np.testing.assert_allclose(c, d, atol=1e-4)  # float re-association only
    s = cb.stats()
    assert s["frame_index"] == 4
    assert 0.0 < s["changed_share"] < 1.0
    assert s["macs"] < s["dense_macs"]
    assert len([l for l in s["layers"] if l["op"] == "Conv"]) == len(net.conv_names)


def test_thresholds_and_reset(net, tmp_path):
    frames = vtest_frames(3, tmp_path)
    s = net.stream(W, H)
    s.load_thresholds(os.path.join(SOURCE, "bench", "thresholds", "vgg7-noise1_vtest-96x72.thr"))
    first = net.conv_names[0]
    assert s.threshold(first) > 0
    s.set_threshold(0.25, layer=first)
    assert s.threshold(first) == pytest.approx(0.25)
    for f in frames:
        s.push(f)
    assert s.stats()["frame_index"] == 2
    s.reset()
    s.push(frames[0])
    st = s.stats()
    assert st["frame_index"] == 0
    assert all(l["ran_dense"] for l in st["layers"])


def test_errors_carry_status_and_message(net, tmp_path):
    with pytest.raises(cbinfer.Error) as e:
        cbinfer.Network(str(tmp_path / "no-such.onnx"))
    assert "no-such.onnx" in e.value.message
    assert e.value.status == 200  # CBINFER_STATUS_MODEL_IO
    s = net.stream(W, H)
    with pytest.raises(cbinfer.Error) as e:
        s.push(np.zeros((H + 2, W, 3), np.uint8))
    assert "was created for" in e.value.message
    with pytest.raises(cbinfer.Error) as e:
        s.set_threshold(-1.0)
    assert e.value.status == 101  # CBINFER_STATUS_BAD_PARAM
    with pytest.raises(cbinfer.Error):
        s.set_threshold(0.1, layer="no-such-layer")
    with pytest.raises(ValueError):
        s.push(np.zeros((H, W), np.uint8))
    with pytest.raises(ValueError):
        net.stream(W, H, backend="tpu")
    with pytest.raises(cbinfer.Error) as e:
        net.stream(0, H)
    assert e.value.status == 102  # CBINFER_STATUS_BAD_FRAME_SIZE
    assert cbinfer.version()[0] == 0


def test_policies_at_zero_threshold_equal_dense(net, tmp_path):
    frames = vtest_frames(4, tmp_path)
    dense = net.stream(W, H, mode="dense")
    streams = [net.stream(W, H, policy=p) for p in ("evnet:pixel", "skipconv:output",
                                                     "sigmadelta")]
    assert streams[0].policy(net.conv_names[0]) == "evnet:pixel"
    assert streams[1].state_bytes() > 0
    for f in frames:
        d = dense.push(f)
        for s in streams:
            np.testing.assert_allclose(s.push(f), d, atol=1e-4)
    assert streams[0].stats()["macs_effective"] <= streams[0].stats()["macs"]
    with pytest.raises(cbinfer.Error) as e:
        streams[0].set_policy("evnet:chunk=0")
    assert e.value.status == 101 and "chunk=0" in e.value.message


def test_several_outputs_come_as_a_list(tmp_path):
    net = cbinfer.Network(os.path.join(MODELS, "nanodet.onnx"))
    assert net.output_names == ["head_s8", "head_s16", "head_s32"]
    frames = [np.ascontiguousarray(f[250:346, 300:428]) for f in vtest.vtest_frames(2, tmp_path)]
    dense = net.stream(128, 96, mode="dense")
    cb = net.stream(128, 96, mode="cbinfer")
    cb.set_threshold(0.0)
    assert cb.output_shapes == [(124, 12, 16), (124, 6, 8), (124, 3, 4)]
    for f in frames:
        d, c = dense.push(f), cb.push(f)
        assert isinstance(d, list) and len(d) == 3
        for a, b, shape in zip(d, c, cb.output_shapes):
            assert a.shape == shape
            np.testing.assert_allclose(b, a, atol=1e-4)


def test_a_network_closed_before_its_stream_waits_for_it(tmp_path):
    # The garbage collector may finalize a network before its stream when the
    # two share a reference cycle; the network must outlive the stream.
    net = cbinfer.Network(os.path.join(MODELS, "vgg7-noise1.onnx"))
    s = net.stream(32, 24, mode="dense")
    net.close()
    assert s.push(np.zeros((24, 32, 3), np.uint8)).shape == s.output_shape
    s.close()
    assert net._h is None


def test_batch_equals_independent_streams(net, tmp_path):
    frames = vtest_frames(6, tmp_path)
    starts = [0, 2, 3]  # three cameras, each from its own frame
    with net.batch(3, W, H) as b:
        alone = [net.stream(W, H) for _ in starts]
        for cam in (b.streams[1], alone[1]):
            cam.set_threshold(0.05)
        for step in range(3):
            cams = [frames[s + step] for s in starts]
            got = b.push(cams)
            assert len(got) == 3
            for j, s in enumerate(alone):
                np.testing.assert_array_equal(got[j], s.push(cams[j]))
        assert b.streams[1].threshold(net.conv_names[0]) == pytest.approx(0.05)
        assert b.streams[2].stats()["frame_index"] == 2
        with pytest.raises(ValueError, match="3 frames needed"):
            b.push(cams[:2])
        with pytest.raises(ValueError, match="frame 1 must be"):
            b.push([cams[0], cams[1][:-1], cams[2]])
    with pytest.raises(cbinfer.Error, match="257|streams"):
        net.batch(257, W, H)
