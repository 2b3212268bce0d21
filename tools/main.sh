#!/usr/bin/env bash
# The main job: cbinfer-bench on the sample surveillance video (vtest.avi)
# with the waifu2x vgg_7 denoiser, on the GPU if one is present, otherwise on
# the CPU. Extra arguments go to cbinfer-bench (e.g. --frames 50).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_debian.sh
source tools/data_dir.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCBINFER_DATA_DIR="$CBINFER_DATA_DIR" >&2
cmake --build build -j "$(nproc)" --target cbinfer-bench >&2
# --mode compare: a dense stream (oneDNN on the CPU, cuDNN on the GPU) and the
# change-based stream with the shipped thresholds run on the same frames, so
# one run shows the speed-up and the quality against dense. Frames 400-499 are
# held out from the frames the thresholds were tuned on (0-199).
exec build/bench/cbinfer-bench --model build/models/vgg7-noise1.onnx \
  --video "$CBINFER_DATA_DIR/data/video/vtest.avi" --resize 384x288 --skip 400 --frames 100 \
  --warmup 1 --mode compare --thresholds bench/thresholds/vgg7-noise1_vtest-96x72.thr "$@"
