#!/usr/bin/env bash
# The change-policy rows of the README that issue 10 asks for beyond vtest:
# one cbinfer-bench --mode compare run per (model, clip, policy) at 384x288,
# dense (oneDNN) measured in the same run, each policy with the thresholds
# it ships with. JSON and the run's stderr go to bench/results/ as
#   <date>_<machine>_<commit>_<model>_policy-<policy>_<clip>-<first>-<last>-384x288.{json,log}
# and the table is printed by tools/results_table.py --policies.
#
#   bash tools/policy_results.sh [MACHINE]       (MACHINE default cpu-epyc-2c)
#
# Frames: tree.avi and Megamind.avi 0 to 199 (neither was used for tuning:
# every shipped file is tuned on vtest.avi 0 to 199), realesr-x2 on vtest
# 400 to 599 like vgg7-noise1's rows. realesr-x2 ships tuned thresholds for
# cbinfer only; evnet:pixel with the same file makes the same decisions
# (Policy.EvnetPixelEqualsCbinferClosedLoop), so it runs with that file.
# Skip-Conv runs at the one shared eps of the vtest rows (0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
MACHINE=${1:-cpu-epyc-2c}
B=build/bench/cbinfer-bench
source tools/data_dir.sh
V=$CBINFER_DATA_DIR/data/video
T=bench/thresholds
R=bench/results
COMMIT=$(git rev-parse --short HEAD)
DATE=$(date -u +%Y-%m-%d)
[ -x "$B" ] || { echo "policy_results: build first ($B missing)" >&2; exit 1; }

files=()
# run MODEL CLIP SKIP POLICY-NAME bench-args...
run() {
  local model=$1 clip=$2 skip=$3 name=$4
  shift 4
  local out="$R/${DATE}_${MACHINE}_${COMMIT}_${model}_policy-${name}_${clip%.avi}-${skip}-$((skip + 199))-384x288"
  echo "policy_results: $model $clip $name" >&2
  "$B" --workload "$model" --video "$V/$clip" --skip "$skip" --frames 200 --resize 384x288 \
    --warmup 1 --mode compare --json "$out.json" "$@" > /dev/null 2> "$out.log"
  files+=("$out.json")
}

for clip in tree.avi Megamind.avi; do
  run vgg7-noise1 "$clip" 0 cbinfer --thresholds "$T/vgg7-noise1_vtest-96x72.thr"
  run vgg7-noise1 "$clip" 0 evnet-pixel --policy evnet --granularity pixel \
    --thresholds "$T/vgg7-noise1_evnet-pixel_vtest-96x72.thr"
  run vgg7-noise1 "$clip" 0 sigmadelta --policy sigmadelta \
    --thresholds "$T/vgg7-noise1_sigmadelta_vtest-96x72.thr"
  run vgg7-noise1 "$clip" 0 skipconv --policy skipconv --threshold 0.1
done
for clip_skip in vtest.avi:400 tree.avi:0 Megamind.avi:0; do
  clip=${clip_skip%%:*} skip=${clip_skip##*:}
  run realesr-x2 "$clip" "$skip" cbinfer --thresholds "$T/realesr-x2_vtest-96x72.thr"
  run realesr-x2 "$clip" "$skip" evnet-pixel --policy evnet --granularity pixel \
    --thresholds "$T/realesr-x2_vtest-96x72.thr"
done
/usr/bin/python3 tools/results_table.py --policies "${files[@]}"
