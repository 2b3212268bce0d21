#!/usr/bin/env bash
# The task-level results of the surveillance models (issue 13), on this
# machine, into bench/results/<date>_<TAG>_<commit>_*: NanoDet at 384x288
# and PoseNet at 385x289, one --mode compare run per row (the dense stream
# in the same run), on the held-out vtest frames 400 to 599 and on the two
# harder clips, with the shipped thresholds and with one uniform threshold;
# then the README's picture of one frame's dense and change-based boxes and
# poses. Prints the README table rows at the end. Run it after a build, on
# an otherwise idle machine:
#
#   bash tools/task_results.sh [TAG]      (TAG default: cpu-<model>-<cores>c)
#
# Takes about 7 minutes on 2 cores.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source tools/results_env.sh "$@"

run() { # name, bench arguments...: JSON, log and detections under $R
  local name="$1"
  shift
  echo "task_results.sh: $name" >&2
  "$B" "$@" --warmup 1 --mode compare --json "${R}_${name}.json" \
    --dump-detections "${R}_${name}.detections.jsonl" >"${R}_${name}.log" 2>&1
}

ND="$T/nanodet_cbinfer_vtest-384x288.thr"
PN="$T/posenet_cbinfer_vtest-385x289.thr"
for clip in "vtest.avi 400 vtest-400-599" "tree.avi 0 tree-0-199" "Megamind.avi 0 megamind-0-199"; do
  read -r video skip label <<<"$clip"
  for m in nanodet posenet; do
    f=$( [ $m = nanodet ] && echo "$ND" || echo "$PN")
    run "${m}_${label}_tuned" --workload $m --video "$V/$video" --skip "$skip" --frames 200 \
      --thresholds "$f"
  done
done
# On the held-out vtest frames also: the tuned NanoDet file at twice its
# values, and one uniform threshold per model.
run nanodet_vtest-400-599_tuned-x2 --workload nanodet --video "$V/vtest.avi" --skip 400 \
  --frames 200 --thresholds "$ND" --threshold-scale 2
run nanodet_vtest-400-599_tau0.05 --workload nanodet --video "$V/vtest.avi" --skip 400 \
  --frames 200 --threshold 0.05
run posenet_vtest-400-599_tau0.01 --workload posenet --video "$V/vtest.avi" --skip 400 \
  --frames 200 --threshold 0.01
# And the shipped files with the adaptive dense fallback: each layer's
# break-even share measured on this machine (8 frames of vtest 0-7, outside
# the held-out frames), then the held-out run with it.
for m in nanodet posenet; do
  f=$( [ $m = nanodet ] && echo "$ND" || echo "$PN")
  echo "task_results.sh: $m calibration" >&2
  "$B" --workload $m --video "$V/vtest.avi" --frames 8 --mode cbinfer --thresholds "$f" \
    --calibrate "${R}_$m.break-even" >"${R}_$m.calibrate.log" 2>&1
  run "${m}_vtest-400-599_tuned_break-even" --workload $m --video "$V/vtest.avi" --skip 400 \
    --frames 200 --thresholds "$f" --break-even "${R}_$m.break-even"
done

# The picture: the worst NanoDet frame of the tuned held-out run, and a
# PoseNet frame, with their frames dumped by a short second run.
pic() { # name workload thresholds-file frame: frames and detections of frame k
  local name="$1" m="$2" thr="$3" k="$4"
  "$B" --workload "$m" --video "$V/vtest.avi" --skip 400 --frames $((k + 1)) --warmup 0 \
    --mode compare --thresholds "$thr" --dump-frames "${R}_${name}.rgb" \
    --dump-detections "${R}_${name}.pic.jsonl" >"${R}_${name}.pic.log" 2>&1 ||
    { echo "task_results.sh: the picture run failed, see ${R}_${name}.pic.log" >&2; exit 1; }
}
worst=$($PY -c 'import json,sys; t=json.load(open(sys.argv[1]))["runs"][0]["task"]; print(t["worst_frame"] if t["worst_frame"] is not None else 100)' \
  "${R}_nanodet_vtest-400-599_tuned.json")
pic nanodet nanodet "$ND" "$worst"
pic posenet posenet "$PN" 100
mkdir -p bench/results/plots
$PY tools/plot_detections.py \
  --frames "${R}_nanodet.rgb" --size 384x288 --detections "${R}_nanodet.pic.jsonl" --frame "$worst" \
  --title "NanoDet, vtest frame $((400 + worst)) (its worst held-out frame), tuned thresholds" \
  --frames "${R}_posenet.rgb" --size 385x289 --detections "${R}_posenet.pic.jsonl" --frame 100 \
  --title "PoseNet, vtest frame 500, tuned thresholds" \
  --out bench/results/plots/surveillance_dense-vs-cbinfer_vtest.png
rm -f "${R}_nanodet.rgb" "${R}_posenet.rgb"
# PoseNet's per-frame poses are half a megabyte a run: the JSON keeps the
# per-frame PCK.
rm -f "${R}"_posenet_*.detections.jsonl

# README rows.
$PY - "${R}"_{nanodet,posenet}_*.json <<'EOF'
import json, sys
def f(v, spec=".3f"):
    return "-" if v is None else format(v, spec)
print("| model | video, frames | thresholds | dense ms | cbinfer ms | speed-up | changed | task agreement with dense | worst frame |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for path in sys.argv[1:]:
    r = json.load(open(path))
    c, run = r["config"], r["runs"][0]
    t = run["task"]
    thr = c["thresholds_file"].split("/")[-1] if c["thresholds_file"] else f"τ = {c['threshold']:g}"
    if run["threshold_scale"] != 1:
        thr += f" x {run['threshold_scale']:g}"
    if c.get("break_even_file"):
        thr += ", break-even file"
    frames = run["frames"]  # the timed ones: --warmup 1 leaves the first out
    clip = f"{c['input'].split('/')[-1]} {c['skip'] + frames[0]['index']}-{c['skip'] + frames[-1]['index']}"
    if t["kind"] == "detect":
        p = t["classes"][0]
        agree = f"persons: recall {f(p['recall'])}, precision {f(p['precision'])} ({p['dense']} dense boxes)"
    else:
        agree = f"PCKh@0.5 {f(t['pck'])} ({t['keypoints']} keypoints, {t['dense_poses']} poses)"
    worst = "-" if t["worst_frame"] is None else f"{c['skip'] + t['worst_frame']}: {t['worst_value']:.2f}"
    print(f"| {c['workload']} {c['width']}x{c['height']} | {clip} | {thr} | "
          f"{run['dense']['latency_ms']['mean']:.2f} | {run['cbinfer']['latency_ms']['mean']:.2f} | "
          f"{run['speedup']:.2f}x | {100 * run['cbinfer']['changed_share']:.1f}% | {agree} | {worst} |")
EOF
