"""Real frames for the Python tests: vtest.avi from frame 0 as uint8 H x W x 3."""
import os
import subprocess

import numpy as np


def vtest_frames(n, tmp_path):
    """The first n frames of vtest.avi (576 x 768 x 3 each): from raw frames in
    CBINFER_FRAMES_DIR (builds without FFmpeg), else decoded by cbinfer-bench."""
    raw = os.path.join(os.environ.get("CBINFER_FRAMES_DIR", ""), "vtest.avi.768x576.rgb")
    if not os.path.isfile(raw):
        raw = str(tmp_path / "vtest.rgb")
        models = os.environ["CBINFER_TEST_MODEL_DIR"]
        subprocess.run([os.environ["CBINFER_TEST_BENCH"], "--model",
                        os.path.join(models, "scene-labeling-synthetic.onnx"),
                        "--video", os.path.join(os.environ["CBINFER_DATA_DIR"], "data", "video",
                                                "vtest.avi"),
                        "--frames", str(n), "--mode", "dense", "--dump-frames", raw],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return np.fromfile(raw, dtype=np.uint8, count=n * 576 * 768 * 3).reshape(n, 576, 768, 3)
