"""The GStreamer element (tools/gst) through gst-launch-1.0 on vtest.avi: run
by ctest as Gst.Launch with GST_PLUGIN_PATH=<build>/gst.

gst-launch decodes and scales the video, a tee writes the frames the element
gets to in.rgb and the element's frames to out.rgb; cbinfer-bench then runs
the dense network on in.rgb (--raw), so both see the same decoded frames."""
import os
import subprocess

import numpy as np
import pytest

MODELS = os.environ["CBINFER_TEST_MODEL_DIR"]
SOURCE = os.environ["CBINFER_TEST_SOURCE_DIR"]
BENCH = os.environ["CBINFER_TEST_BENCH"]
VIDEO = os.path.join(os.environ["CBINFER_DATA_DIR"], "data", "video", "vtest.avi")
VGG7 = os.path.join(MODELS, "vgg7-noise1.onnx")
GST_LAUNCH = os.environ.get("CBINFER_GST_LAUNCH", "gst-launch-1.0")
THR = os.path.join(SOURCE, "bench", "thresholds", "vgg7-noise1_vtest-96x72.thr")
W, H, N = 192, 144, 6


def launch(element, tmp_path, n=N, check=True):
    """Runs vtest.avi's first n frames at W x H through `element`; returns
    (input frames, output frames) as n x H x W x 3 uint8, or the failed
    process when check is False."""
    # The bound sits on the demuxer's packets: identity's EOS goes straight
    # back to avidemux, which stops. (Behind decodebin's queues it was once
    # ignored, and 501 frames came through.) vtest.avi gives one frame fewer
    # than the packets let through.
    src = (f"filesrc location={VIDEO} ! avidemux ! identity eos-after={n + 1} ! decodebin ! "
           f"videoconvert ! videoscale ! video/x-raw,format=RGB,width={W},height={H} ! tee name=t "
           f"t. ! queue ! filesink location={tmp_path / 'in.rgb'} "
           f"t. ! queue ! {element} ! filesink location={tmp_path / 'out.rgb'}")
    p = subprocess.run([GST_LAUNCH, "-q"] + src.split(), capture_output=True, text=True,
                       timeout=240)
    if not check:
        return p
    assert p.returncode == 0, p.stdout + p.stderr
    frames = [np.fromfile(tmp_path / f, np.uint8).reshape(-1, H, W, 3)
              for f in ("in.rgb", "out.rgb")]
    assert frames[0].shape[0] == n and frames[1].shape[0] == n, (frames[0].shape,
                                                                 frames[1].shape)
    return frames


def bench_output(tmp_path, mode="dense", *flags):
    """cbinfer-bench's output of every frame in in.rgb in a mode, with more
    flags: float32 arrays 3 x H x W."""
    out = tmp_path / "bench"
    n = os.path.getsize(tmp_path / "in.rgb") // (W * H * 3)
    subprocess.run([BENCH, "--model", VGG7, "--raw", f"{W}x{H}:{tmp_path / 'in.rgb'}",
                    "--mode", mode, "--warmup", "0", "--frames", str(n), "--dump-output",
                    str(out), *flags], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)
    return [np.load(out / f"frame_{k:05d}.npy")[0] for k in range(n)]


def expect_equal_but_rounding(out, ref_frames):
    """The element's frames equal the rounded reference, but where float
    re-association moves a value across a rounding boundary (x 255 within
    1e-3 of k + 0.5), which may then round to the neighbour. Returns how many
    bytes did."""
    flips = 0
    for k, y in enumerate(ref_frames):
        ref, t = to_rgb8(y)
        d = out[k].astype(int) - ref.astype(int)
        near = np.abs(t - np.floor(t) - 0.5) < 1e-3
        assert np.all(np.abs(d) <= 1), f"frame {k}: max diff {np.abs(d).max()}"
        assert np.all(near[d != 0]), f"frame {k}: a difference away from a rounding boundary"
        flips += int(np.count_nonzero(d))
    assert flips <= 1e-3 * out.size, flips
    return flips


def to_rgb8(chw):
    """The element's write-back: value x 255, clamped to [0, 255], rounded
    half up, in float32 as the element computes it. Also returns t = value x
    255 before rounding."""
    t = chw.astype(np.float32) * np.float32(255)
    t = np.minimum(np.where(t > 0, t, np.float32(0)), np.float32(255))
    return np.floor(t + np.float32(0.5)).astype(np.uint8).transpose(1, 2, 0), t.transpose(1, 2, 0)


def test_dense_mode_equals_bench_dense(tmp_path):
    _, out = launch(f"cbinfer model-file={VGG7} mode=dense", tmp_path)
    for k, y in enumerate(bench_output(tmp_path)):
        np.testing.assert_array_equal(out[k], to_rgb8(y)[0], err_msg=f"frame {k}")


def test_zero_threshold_equals_bench_dense(tmp_path):
    """Change-based at threshold 0: the bench's dense frames, but where float
    re-association moves a value across a rounding boundary (x 255 within
    1e-3 of k + 0.5), which may then round to the neighbour."""
    frames_in, out = launch(f"cbinfer model-file={VGG7} threshold=0", tmp_path)
    assert not np.array_equal(frames_in[0], frames_in[1])  # real, moving frames
    print("flips:", expect_equal_but_rounding(out, bench_output(tmp_path)), "of", out.size)
    # The element's output is the network's, not its input.
    assert np.mean(np.abs(out.astype(int) - frames_in.astype(int))) > 0.5


def test_thresholds_file_and_policy_equal_the_bench(tmp_path):
    """thresholds-file, threshold-scale, policy and threads reach the stream:
    the bench's change-based run with the same settings gives the same
    frames (and they are not dense's)."""
    _, out = launch(f"cbinfer model-file={VGG7} thresholds-file={THR} threshold-scale=1.5 "
                    f"policy=evnet:pixel threads=1", tmp_path, n=4)
    same = bench_output(tmp_path, "cbinfer", "--thresholds", THR,
                        "--threshold-scale", "1.5", "--policy", "evnet", "--granularity", "pixel",
                        "--threads", "1")
    expect_equal_but_rounding(out, same)
    dense = bench_output(tmp_path)
    assert not np.array_equal(out[-1], to_rgb8(dense[-1])[0])


@pytest.mark.parametrize("element,message", [
    ("cbinfer", "model-file"),
    ("cbinfer model-file=/nonexistent/model.onnx", "/nonexistent/model.onnx"),
    (f"cbinfer model-file={SOURCE}/README.md", "cannot load model"),
    (f"cbinfer model-file={VGG7} task=detect", "the outputs do not fit the task"),
    (f"cbinfer model-file={VGG7} task=pose", "the outputs do not fit the task"),
    (f"cbinfer model-file={VGG7} threshold=0.1 thresholds-file={THR}", "not both"),
    (f"cbinfer model-file={VGG7} thresholds-file=/nonexistent.thr", "nonexistent.thr"),
    (f"cbinfer model-file={VGG7} policy=bogus", "bogus"),
    (f"cbinfer model-file={VGG7} precision=fp16", "cannot create a stream"),
    (f"cbinfer model-file={VGG7} device=1", "the cpu backend takes no device"),
])
def test_bad_settings_fail_with_a_message(tmp_path, element, message):
    p = launch(element, tmp_path, n=2, check=False)
    assert p.returncode != 0, p.stdout + p.stderr
    assert message in p.stdout + p.stderr, p.stdout + p.stderr


def test_inspect_lists_the_properties():
    p = subprocess.run(["gst-inspect-1.0", "cbinfer"], capture_output=True, text=True, check=True)
    for prop in ("model-file", "threshold", "thresholds-file", "policy", "backend",
                 "threshold-scale", "break-even-file", "device", "mode", "task", "threads"):
        assert f"  {prop} " in p.stdout, prop
