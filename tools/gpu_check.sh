#!/usr/bin/env bash
# The one command for a GPU machine (the device tool's H100/H200), run from
# the checkout with gpu-bundle/ carried (tools/gpu_bundle.sh made it):
#
#   bash tools/gpu_check.sh            # OUT=<folder> collects the results
#   CBINFER_COMMIT=<id> bash tools/gpu_check.sh   # a tree copied without .git
#
# Needs only a compiler, CMake, ninja, the CUDA toolkit (cuDNN and cuBLAS of
# the toolkit or of python3's nvidia wheels) and a python3 with numpy and onnx
# (OpenCV too for the benchmark's frames). Stages, each reported pass, FAIL or
# skipped; a failed stage does not stop the next:
#   unpack     the bundle into build-gpu/bundle
#   configure  build-gpu, CUDA for this machine's GPU (sm_90 when none)
#   build
#   cpu-tests  ctest -L cpu
#   gpu-tests  ctest -L gpu (they skip without a device)
#   memcheck   compute-sanitizer --tool memcheck on the GPU op tests and the
#              stream tests on real frames (MEMCHECK_TESTS below), at most 4 min
#   racecheck  compute-sanitizer --tool racecheck on the GPU op tests
#              (GpuOps.*: the kernels one by one), at most 2.5 min
#   bench      the matrix, every row --mode compare (cuDNN dense and
#              change-based in one process, same precision): vgg7-noise1 on
#              vtest.avi frames 400-499 at 384x288 and 768x576, fp32 / tf32 /
#              fp16, shipped thresholds and 0; realesr-x2 at 384x288 fp16;
#              nanodet (384x288) and posenet (385x289) fp32 at threshold 0.05;
#              one --per-layer pass; --cameras 8, 32 and 64 (vgg7-noise1,
#              384x288, fp32, shipped). Without a device it says so in one line.
# Writes into OUT (default build-gpu/out): gpu_check.log (every command's
# output), summary.txt (the table printed last), bench.txt (one line per
# benchmark row) and bench-json.tar.gz (the reports, schema cbinfer-bench/1).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-build-gpu/out}"
mkdir -p "$OUT" build-gpu
LOG="$OUT/gpu_check.log"
: > "$LOG"
B="$PWD/build-gpu/bundle"
JOBS="$(nproc)"
export CBINFER_FRAMES_DIR="$B/frames"
export LD_LIBRARY_PATH="$B/prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
has_gpu=0
nvidia-smi -L 2>/dev/null | grep -q GPU && has_gpu=1
# The sanitizers' subsets: every op kernel against the CPU, and (memcheck)
# the streams on real frames in both change-based modes.
MEMCHECK_TESTS='GpuOps.*:GpuStream.CudaMatchesCpu*:GpuStream.ClosedLoop*:GpuStream.HostSyncs*:GpuPolicy.UnchangedFrame*:GpuPolicy.Deterministic*:Cases/OnnxNodeGpu.*:GpuEmbedding.*:GpuBatch.ZeroThresholdEqualsIndependentVgg7:GpuBatch.DeltaPolicy*'
RACECHECK_TESTS='GpuOps.*'
# The commit the reports name: git's, or CBINFER_COMMIT where the tree came
# without .git (as the device tool copies it).
COMMIT="${CBINFER_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
rows=()

# stage NAME COMMAND...: runs it into the log, records pass or FAIL.
stage() {
  local name=$1 t0 rc
  shift
  t0=$(date +%s)
  echo "===== $name: $*" >> "$LOG"
  "$@" >> "$LOG" 2>&1
  rc=$?
  local r=pass
  [ $rc -eq 0 ] || r="FAIL (exit $rc)"
  rows+=("$(printf '%-10s %-16s %5ss' "$name" "$r" "$(($(date +%s) - t0))")")
  echo "gpu_check: $name: $r" >&2
  return $rc
}
# skip NAME WHY: records a stage that could not run.
skip() {
  rows+=("$(printf '%-10s %s' "$1" "skipped")")
  echo "gpu_check: $1: skipped ($2)" >&2
  echo "===== $1: skipped: $2" >> "$LOG"
}

unpack() {
  [ -f gpu-bundle/bundle.tar.xz ] || { echo "no gpu-bundle/bundle.tar.xz: run tools/gpu_bundle.sh where apt works, and carry gpu-bundle"; return 1; }
  # python3's tarfile, not tar: a bare machine may have no xz.
  rm -rf "$B" && mkdir -p "$B" && python3 -c '
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    if hasattr(tarfile, "data_filter"):
        t.extraction_filter = tarfile.data_filter
    t.extractall(sys.argv[2])' gpu-bundle/bundle.tar.xz "$B" && cat gpu-bundle/MANIFEST.txt
}

configure() {
  local arch=90
  [ $has_gpu = 1 ] && arch=native
  # Video off everywhere, so the tests read the bundle's frames here as there.
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCBINFER_CUDA=ON -DCBINFER_VIDEO=OFF \
    -DCMAKE_CUDA_ARCHITECTURES="$arch" -DDNNL_ROOT="$B/prefix" -DPROTOBUF_C_ROOT="$B/prefix" \
    -DCBINFER_ONNX_PB_DIR="$B/gen" -DGTEST_SOURCE_DIR="$B/googletest" \
    -DCBINFER_DATA_DIR="$B/data" -DCBINFER_PREBUILT_MODELS="$B/models" \
    -DCBINFER_ONNX_TESTDATA="$B/onnx-testdata" \
    -DCBINFER_GIT_COMMIT="${CBINFER_COMMIT:-}"
}

# One benchmark row: NAME, then cbinfer-bench's arguments after the model.
bench_row() {
  local name=$1 model=$2
  shift 2
  echo "--- $name" >> "$LOG"
  if build-gpu/bench/cbinfer-bench --model "build-gpu/models/$model.onnx" --backend cuda \
       --mode compare --warmup 1 --json "build-gpu/bench/$name.json" "$@" \
       > "build-gpu/bench/$name.txt" 2>> "$LOG"; then
    echo "$name: $(grep -E '^  (speedup|quality|host syncs|[0-9]+ cameras)' "build-gpu/bench/$name.txt" | tr -s ' ' | paste -sd ';')" >> "$OUT/bench.txt"
  else
    echo "$name: FAILED (see gpu_check.log)" >> "$OUT/bench.txt"
    return 1
  fi
}

bench() {
  mkdir -p build-gpu/bench
  : > "$OUT/bench.txt"
  local v="$B/data/video/vtest.avi" failed=0
  python3 tools/decode_frames.py "$v" build-gpu/bench/f384.rgb --start 400 --count 100 --size 384x288 || return 1
  python3 tools/decode_frames.py "$v" build-gpu/bench/f768.rgb --start 400 --count 100 || return 1
  local thr=bench/thresholds/vgg7-noise1_vtest-96x72.thr
  for size in 384x288 768x576; do
    local f=build-gpu/bench/f${size%%x*}.rgb
    for prec in fp32 tf32 fp16; do
      bench_row "vgg7-$size-$prec-shipped" vgg7-noise1 --raw "$size:$f" --frames 99 --precision $prec --thresholds $thr || failed=1
      bench_row "vgg7-$size-$prec-tau0" vgg7-noise1 --raw "$size:$f" --frames 99 --precision $prec --threshold 0 || failed=1
    done
  done
  bench_row realesr-384x288-fp16-shipped realesr-x2 --raw 384x288:build-gpu/bench/f384.rgb --frames 99 \
    --precision fp16 --thresholds bench/thresholds/realesr-x2_vtest-96x72.thr || failed=1
  # The delta policies (cuda/conv_delta.cu) with their shipped thresholds.
  local p
  for p in evnet-pixel sigmadelta; do
    bench_row "vgg7-384x288-fp32-$p" vgg7-noise1 --raw 384x288:build-gpu/bench/f384.rgb --frames 99 \
      --precision fp32 --policy "${p%%-*}" $([ "$p" = evnet-pixel ] && echo --granularity pixel) \
      --thresholds "bench/thresholds/vgg7-noise1_${p}_vtest-96x72.thr" || failed=1
  done
  bench_row vgg7-384x288-fp32-skipconv vgg7-noise1 --raw 384x288:build-gpu/bench/f384.rgb --frames 99 \
    --precision fp32 --policy skipconv --threshold 0.1 || failed=1
  # The surveillance models (issue 13): NanoDet at 384x288 (f384), PoseNet at
  # 385x289 (its own frames: sizes 16k+1), fp32, threshold 0.05.
  python3 tools/decode_frames.py "$v" build-gpu/bench/f385.rgb --start 400 --count 100 --size 385x289 || return 1
  bench_row nanodet-384x288-fp32-t0.05 nanodet --raw 384x288:build-gpu/bench/f384.rgb --frames 99 \
    --precision fp32 --threshold 0.05 || failed=1
  bench_row posenet-385x289-fp32-t0.05 posenet --raw 385x289:build-gpu/bench/f385.rgb --frames 99 \
    --precision fp32 --threshold 0.05 || failed=1
  bench_row vgg7-384x288-fp32-per-layer vgg7-noise1 --raw 384x288:build-gpu/bench/f384.rgb --frames 99 \
    --precision fp32 --thresholds $thr --per-layer || failed=1
  # Many cameras in one process (issue 14): N = 8, 32, 64 of vtest at
  # 384x288, each from its own start frame: batched cuDNN, N independent
  # streams and the change-based batch, in camera-frames/s.
  local n
  for n in 8 32 64; do
    bench_row "cameras$n-vgg7-384x288-fp32-shipped" vgg7-noise1 --raw 384x288:build-gpu/bench/f384.rgb \
      --cameras $n --frames 10 --precision fp32 --thresholds $thr || failed=1
  done
  tar -C build-gpu/bench -czf "$OUT/bench-json.tar.gz" $(cd build-gpu/bench && ls *.json *.txt)
  return $failed
}

stage unpack unpack
configured=0
stage configure configure && stage build cmake --build build-gpu -j "$JOBS" && configured=1
if [ $configured = 1 ]; then
  stage cpu-tests ctest --test-dir build-gpu -L cpu -j "$JOBS" --output-on-failure
  stage gpu-tests ctest --test-dir build-gpu -L gpu --output-on-failure
  if [ $has_gpu = 1 ]; then
    # Bounded, so that the whole check ends within 8 minutes: a timeout is
    # a FAIL (exit 124) in the summary, never a hang.
    stage memcheck timeout 240 compute-sanitizer --tool memcheck --error-exitcode 1 \
      build-gpu/tests/cbinfer_gpu_tests --gtest_filter="$MEMCHECK_TESTS"
    stage racecheck timeout 150 compute-sanitizer --tool racecheck --error-exitcode 1 \
      build-gpu/tests/cbinfer_gpu_tests --gtest_filter="$RACECHECK_TESTS"
    stage bench bench
  else
    skip memcheck "no CUDA device"
    skip racecheck "no CUDA device"
    skip bench "no CUDA device"
    echo "gpu_check: no CUDA device: the sanitizers and the benchmark matrix need one" >&2
  fi
else
  for s in cpu-tests gpu-tests memcheck racecheck bench; do skip "$s" "no build"; done
fi
{
  echo "cbinfer gpu_check, commit $COMMIT, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  if [ $has_gpu = 1 ]; then echo "device: $(nvidia-smi -L | head -1)"; else echo "device: no CUDA device"; fi
  printf '%s\n' "${rows[@]}"
} > "$OUT/summary.txt"
cat "$OUT/summary.txt"
grep -q FAIL "$OUT/summary.txt" && exit 1
exit 0
