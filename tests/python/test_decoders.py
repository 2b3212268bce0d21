"""The library's task decoders (cbinfer_decode_nanodet, cbinfer_decode_posenet)
against the independent numpy decoders of decode_ref.py, on NanoDet's and
PoseNet's outputs for real vtest frames; and cbinfer-bench's --task on top
of them. Run by ctest as Python.Decoders."""
import json
import os
import subprocess

import numpy as np
import pytest

import cbinfer
import decode_ref
import vtest

MODELS = os.environ["CBINFER_TEST_MODEL_DIR"]
BENCH = os.environ["CBINFER_TEST_BENCH"]
VIDEO = os.path.join(os.environ["CBINFER_DATA_DIR"], "data", "video", "vtest.avi")


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return vtest.vtest_frames(3, tmp_path_factory.mktemp("frames"))


def half(frame):
    """576 x 768 -> 288 x 384 by 2 x 2 means."""
    f = frame.astype(np.float32)
    return ((f[0::2, 0::2] + f[1::2, 0::2] + f[0::2, 1::2] + f[1::2, 1::2]) / 4 + 0.5).astype(
        np.uint8)


def outputs(model, frame):
    net = cbinfer.Network(os.path.join(MODELS, model))
    with net.stream(frame.shape[1], frame.shape[0], mode="dense") as s:
        return s.push(frame)


def drop_borderline(rows, thr, score_col):
    """Rows whose score sits within float rounding of the threshold may fall
    either way between float32 and float64."""
    return [r for r in rows if abs(r[score_col] - thr) > 1e-5]


@pytest.mark.parametrize("thr", [0.35, 0.1])
def test_nanodet_boxes_match_the_reference(frames, thr):
    found_person = False
    for frame in frames:
        heads = outputs("nanodet.onnx", half(frame))
        got = cbinfer.decode_nanodet(heads, (384, 288), score_threshold=thr)
        ref = decode_ref.nanodet(heads, 384, 288, score_thr=thr)
        got = drop_borderline(got.tolist(), thr, 4)
        ref = drop_borderline(ref, thr, 4)
        assert len(got) == len(ref)
        assert len(got) > 0
        got, ref = np.array(got), np.array(ref)
        np.testing.assert_array_equal(got[:, 5], ref[:, 5])           # classes, in order
        np.testing.assert_allclose(got[:, 4], ref[:, 4], atol=1e-5)   # scores
        np.testing.assert_allclose(got[:, :4], ref[:, :4], atol=2e-3)  # boxes, pixels
        assert (got[:, 0] <= got[:, 2]).all() and (got[:, 1] <= got[:, 3]).all()
        assert (got[:, :4] >= 0).all() and (got[:, [0, 2]] <= 384).all()
        # The layout read right: vtest's confident persons are pedestrians,
        # boxes taller than wide and of a pedestrian's size at 384x288.
        people = got[(got[:, 5] == 0) & (got[:, 4] > 0.5)]
        for x0, y0, x1, y1 in people[:, :4]:
            assert 1.5 * (x1 - x0) < y1 - y0 and 20 < y1 - y0 < 120, (x0, y0, x1, y1)
        found_person |= len(people) > 0
        # capacity is only the first guess: too little room still gives all.
        np.testing.assert_array_equal(
            cbinfer.decode_nanodet(heads, (384, 288), score_threshold=thr, capacity=1),
            cbinfer.decode_nanodet(heads, (384, 288), score_threshold=thr))
    assert found_person  # trained weights, real pedestrians


@pytest.mark.parametrize("thr", [0.5, 0.15])
def test_posenet_poses_match_the_reference(frames, thr):
    total = 0
    for frame in frames:
        crop = np.ascontiguousarray(frame[:385, :513])  # 16k + 1 on both axes
        heat, off, fwd, bwd = outputs("posenet.onnx", crop)
        got = cbinfer.decode_posenet(heat, off, fwd, bwd, (513, 385), score_threshold=thr)
        ref = decode_ref.posenet(heat, off, fwd, bwd, 513, 385, score_thr=thr)
        assert len(got) == len(ref)
        for (gs, gk), (rs, rk) in zip(got, ref):
            assert gs == pytest.approx(rs, abs=1e-5)
            np.testing.assert_allclose(gk[:, :2], np.array(rk)[:, :2], atol=2e-3)
            np.testing.assert_allclose(gk[:, 2], np.array(rk)[:, 2], atol=1e-5)
        total += len(got)
    assert total >= 3


def test_decoders_refuse_bad_input():
    heads = [np.zeros((124, 36, 48), np.float32)]
    with pytest.raises(cbinfer.Error, match="power-of-two stride"):
        cbinfer.decode_nanodet(heads, (300, 288))
    with pytest.raises(cbinfer.Error, match="channels"):
        cbinfer.decode_nanodet([np.zeros((123, 36, 48), np.float32)], (384, 288))
    with pytest.raises(cbinfer.Error, match="score threshold"):
        cbinfer.decode_nanodet(heads, (384, 288), score_threshold=1.5)
    z = np.zeros
    with pytest.raises(cbinfer.Error, match="offsets"):
        cbinfer.decode_posenet(z((17, 19, 25)), z((17, 19, 25)), z((32, 19, 25)),
                               z((32, 19, 25)), (385, 289))
    assert cbinfer.keypoint_names()[0] == "nose" and len(cbinfer.keypoint_names()) == 17
    names = cbinfer.coco_class_names()
    assert len(names) == 80 and names[0] == "person" and names[2] == "car"


def run_bench(tmp_path, workload, *extra):
    dump, report = tmp_path / f"{workload}.jsonl", tmp_path / f"{workload}.json"
    subprocess.run([BENCH, "--workload", workload, "--video", VIDEO, "--skip", "400",
                    "--frames", "3", "--mode", "compare", "--threshold", "0",
                    "--dump-detections", str(dump), "--json", str(report), *extra],
                   check=True, stdout=subprocess.DEVNULL)
    lines = [json.loads(x) for x in dump.read_text().splitlines()]
    return lines, json.loads(report.read_text())["runs"][0]["task"]


# At threshold 0 the change-based outputs equal the dense ones up to float
# re-association (1e-5 here), so the decoded results agree but for a score
# within rounding of a threshold, which may fall either way.
def near(score, thr):
    return abs(score - thr) < 1e-3


def test_bench_detect_at_threshold_zero_agrees_with_dense(tmp_path):
    lines, task = run_bench(tmp_path, "nanodet")
    assert [x["frame"] for x in lines] == [0, 1, 2]
    for x in lines:
        cb = np.array([b for b in x["detections"] if not near(b[4], 0.35)])
        dense = np.array([b for b in x["dense"] if not near(b[4], 0.35)])
        assert cb.shape == dense.shape and cb.shape[1] == 6
        np.testing.assert_allclose(cb, dense, atol=0.02)
    person = task["classes"][0]
    assert task["kind"] == "detect" and person["name"] == "person" and person["dense"] > 0
    assert person["matched"] >= person["dense"] - sum(
        near(b[4], 0.35) for x in lines for b in x["dense"] if b[5] == 0)


def test_bench_pose_at_threshold_zero_agrees_with_dense(tmp_path):
    lines, task = run_bench(tmp_path, "posenet")
    for x in lines:
        assert len(x["poses"]) == len(x["dense"])
        for p, d in zip(x["poses"], x["dense"]):
            assert len(p["keypoints"]) == 17
            np.testing.assert_allclose(p["keypoints"], d["keypoints"], atol=0.02)
    borderline = sum(near(k[2], 0.5) for x in lines for d in x["dense"] for k in d["keypoints"])
    assert task["kind"] == "pose" and task["keypoints"] > 0
    assert task["placed"] >= task["keypoints"] - borderline
