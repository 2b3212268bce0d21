#!/usr/bin/env bash
# The CPU dense baseline against ONNX Runtime: for each model and frame size,
# dumps the frames once (cbinfer-bench --dump-frames), then runs cbinfer's
# dense path and ONNX Runtime (tools/ort_bench.sh) on those same frames with
# the same thread count, alternating, ROUNDS times, and prints each round and
# the medians. Writes every JSON to OUT.
#
#   bash tools/cpu_baseline.sh OUT [ROUNDS] [FRAMES] [THREADS]
# (defaults: 3 rounds, 10 timed frames after 1 warm-up, every core). Needs a
# build (tools/test.sh or tools/main.sh) and CBINFER_DATA_DIR or ../shared.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source tools/data_dir.sh
out="${1:?usage: $0 OUT [ROUNDS] [FRAMES] [THREADS]}"
rounds="${2:-3}" frames="${3:-10}" threads="${4:-$(nproc)}"
mkdir -p "$out"
B=build/bench/cbinfer-bench
V="$CBINFER_DATA_DIR/data/video/vtest.avi"
# model  size  first frame of vtest.avi
configs=("vgg7-noise1 384x288 400" "vgg7-noise1 768x576 400" "realesr-x2 384x288 400")
for cfg in "${configs[@]}"; do
  read -r model size skip <<<"$cfg"
  tag="${model}_${size}"
  rgb="$out/${tag}.rgb"
  "$B" --workload "$model" --video "$V" --skip "$skip" --resize "$size" --frames "$frames" \
    --warmup 1 --mode dense --threads "$threads" --dump-frames "$rgb" >/dev/null
  for r in $(seq 1 "$rounds"); do
    "$B" --workload "$model" --raw "$size:$rgb" --resize "$size" --frames "$frames" --warmup 1 --mode dense \
      --threads "$threads" --json "$out/${tag}_cbinfer_r$r.json" >/dev/null
    bash tools/ort_bench.sh "build/models/$model.onnx" "$rgb" "$size" --threads "$threads" \
      --warmup 1 --json "$out/${tag}_ort_r$r.json" >/dev/null
  done
  rm -f "$rgb"
done
/usr/bin/python3 - "$out" "$rounds" "${configs[@]}" <<'PY'
import json, statistics, sys
out, rounds, configs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print("| model | size | threads | cbinfer dense ms (rounds) | ONNX Runtime ms (rounds) | median ratio |")
print("| --- | --- | --- | --- | --- | --- |")
for cfg in configs:
    model, size, _ = cfg.split()
    tag = f"{model}_{size}"
    cb = [json.load(open(f"{out}/{tag}_cbinfer_r{r}.json"))["runs"][0]["dense"]["latency_ms"]["median"]
          for r in range(1, rounds + 1)]
    ort = [json.load(open(f"{out}/{tag}_ort_r{r}.json")) for r in range(1, rounds + 1)]
    thr = ort[0]["threads"]
    ort = [o["latency_ms"]["median"] for o in ort]
    mc, mo = statistics.median(cb), statistics.median(ort)
    print(f"| {model} | {size} | {thr} | {mc:.1f} ({', '.join(f'{x:.1f}' for x in cb)}) | "
          f"{mo:.1f} ({', '.join(f'{x:.1f}' for x in ort)}) | {mc / mo:.2f}x |")
PY
