#!/usr/bin/env bash
# Re-measures every CPU result the README reports, on this machine, into
# bench/results/<date>_<TAG>_<commit>_*: the break-even calibrations, the
# compare rows of the results table, the threshold sweep, the whole vtest
# sequence, the per-layer profile, the held-out runs of the shipped
# thresholds, the issue-9 target run, and the plots. Prints the README table
# rows at the end. Run it on an otherwise idle machine, after a build:
#
#   bash tools/cpu_results.sh [TAG]      (TAG default: cpu-<model>-<cores>c)
#
# Takes about 5 minutes on 2 cores (AVX-512, oneDNN).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source tools/results_env.sh "$@"

run() { # name, bench arguments...: JSON and log under $R
  local name="$1"
  shift
  echo "cpu_results.sh: $name" >&2
  "$B" "$@" --json "${R}_${name}.json" >"${R}_${name}.log" 2>&1
}

# Break-even shares of the adaptive dense fallback, per workload.
for w in "vgg7-noise1 0.005" "scene-labeling-synthetic 0.015"; do
  read -r m t <<<"$w"
  echo "cpu_results.sh: calibrate $m" >&2
  "$B" --workload "$m" --video "$V/vtest.avi" --resize 384x288 --frames 8 --mode cbinfer \
    --threshold "$t" --calibrate "${R}_${m}.break-even" >"${R}_${m}.calibrate.log" 2>&1
done

# The results table: one --mode compare run per row.
row() { # name workload threshold video size frames [extra bench args]
  local name="$1" m="$2" t="$3" video="$4" size="$5" frames="$6"
  shift 6
  run "$name" --workload "$m" --video "$V/$video" --resize "$size" --frames "$frames" --warmup 1 \
    --mode compare --threshold "$t" --break-even "${R}_${m}.break-even" "$@"
}
row scene-labeling-synthetic_megamind-1040x776 scene-labeling-synthetic 0.015 Megamind.avi 1040x776 20
row scene-labeling-synthetic_tree-1040x776 scene-labeling-synthetic 0.015 tree.avi 1040x776 60
row scene-labeling-synthetic_vtest-384x288 scene-labeling-synthetic 0.015 vtest.avi 384x288 60
row scene-labeling-synthetic_vtest-768x576 scene-labeling-synthetic 0.015 vtest.avi 768x576 20
row vgg7-noise1_megamind-384x288 vgg7-noise1 0.005 Megamind.avi 384x288 20
row vgg7-noise1_tree-384x288 vgg7-noise1 0.005 tree.avi 384x288 60
row vgg7-noise1_vtest-384x288 vgg7-noise1 0.005 vtest.avi 384x288 60
row vgg7-noise1_vtest-768x576 vgg7-noise1 0.005 vtest.avi 768x576 15
echo "cpu_results.sh: the whole vtest sequence" >&2
"$B" --workload vgg7-noise1 --video "$V/vtest.avi" --resize 192x144 --mode compare \
  --threshold 0.005 --break-even "${R}_vgg7-noise1.break-even" \
  --json "${R}_vgg7-noise1_vtest-full-192x144.json" >"${R}_vgg7-noise1_vtest-full-192x144.log" 2>&1

# Throughput against error, and the per-layer, per-step profile.
run vgg7-noise1_vtest-192x144_sweep --workload vgg7-noise1 --video "$V/vtest.avi" \
  --resize 192x144 --frames 40 --warmup 1 --mode compare --threshold 0.005 --sweep 0,0.5,1,2,4,8
run vgg7-noise1_vtest-384x288_profile --workload vgg7-noise1 --video "$V/vtest.avi" \
  --resize 384x288 --frames 30 --warmup 1 --mode cbinfer --threshold 0.005 --per-layer \
  --export-profile "${R}_vgg7-noise1_vtest-384x288_profile.trtexec.json"

# The shipped thresholds on held-out frames (vtest 400-599) and on tree.avi 0-199.
for m in vgg7-noise1 realesr-x2 scene-labeling-synthetic openpose-synthetic; do
  run "${m}_tuned_vtest-400-599-96x72" --workload "$m" --video "$V/vtest.avi" --skip 400 \
    --frames 200 --resize 96x72 --warmup 1 --mode compare --thresholds "$T/${m}_vtest-96x72.thr"
  run "${m}_tuned_tree-0-199-96x72" --workload "$m" --video "$V/tree.avi" --frames 200 \
    --resize 96x72 --warmup 1 --mode compare --thresholds "$T/${m}_vtest-96x72.thr"
done

# Issue 9's target: vgg7-noise1, held-out vtest 400-599 at 384x288, shipped
# thresholds, against the dense path of the same run; without and with the
# break-even file; then the per-layer step table at that point.
run vgg7-noise1_target_vtest-400-599-384x288 --workload vgg7-noise1 --video "$V/vtest.avi" \
  --skip 400 --frames 200 --resize 384x288 --warmup 1 --mode compare \
  --thresholds "$T/vgg7-noise1_vtest-96x72.thr"
run vgg7-noise1_target-break-even_vtest-400-599-384x288 --workload vgg7-noise1 \
  --video "$V/vtest.avi" --skip 400 --frames 200 --resize 384x288 --warmup 1 --mode compare \
  --thresholds "$T/vgg7-noise1_vtest-96x72.thr" --break-even "${R}_vgg7-noise1.break-even"
run vgg7-noise1_target_vtest-400-599-384x288_profile --workload vgg7-noise1 \
  --video "$V/vtest.avi" --skip 400 --frames 200 --resize 384x288 --warmup 1 --mode cbinfer \
  --thresholds "$T/vgg7-noise1_vtest-96x72.thr" --per-layer

# Plots (matplotlib).
P=bench/results/plots
$PY tools/plot_bench.py sweep "${R}_vgg7-noise1_vtest-192x144_sweep.json" \
  -o "$P/vgg7-noise1_vtest-192x144_sweep.png"
$PY tools/plot_bench.py steps "${R}_vgg7-noise1_target_vtest-400-599-384x288_profile.json" \
  -o "$P/vgg7-noise1_vtest-384x288_steps.png"
$PY tools/plot_bench.py timeline "${R}_vgg7-noise1_vtest-full-192x144.json" \
  -o "$P/vgg7-noise1_vtest-full_timeline.png"
$PY tools/plot_bench.py timeline "${R}_vgg7-noise1_vtest-384x288.json" \
  "${R}_vgg7-noise1_tree-384x288.json" "${R}_vgg7-noise1_megamind-384x288.json" \
  -o "$P/vgg7-noise1_videos_timeline.png"

$PY tools/results_table.py $(ls "${R}"_*.json | grep -v trtexec)
