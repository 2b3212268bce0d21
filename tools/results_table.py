#!/usr/bin/python3
"""Markdown table rows from cbinfer-bench --json files (compare mode).

    /usr/bin/python3 tools/results_table.py bench/results/*.json
    /usr/bin/python3 tools/results_table.py --policies POLICY1.json POLICY2.json ...

One row per file and threshold scale: workload, video, size, frames, backend
with its dense kernels, threshold, dense and change-based mean ms/frame,
speedup, PSNR against dense, and the changed share, all as measured in that one
run. Files written before the bench recorded its kernels (device.kernels) are
from the im2col + OpenBLAS CPU backend.

--policies: one row per file and scale with the change policy
(config.policy), its speedup against dense and against the cbinfer row
among the files (speedup ratio), and the MACs per frame as the papers count
them and as the kernels ran them, the EvNet overhead and the state.
"""
import json
import os
import sys


def fmt_psnr(v):
    return "exact" if v is None else f"{v:.1f}"


def fmt_quality(q):
    """PSNR (min frame); never "exact" when the outputs differ in non-finite values."""
    if q.get("nonfinite_mismatch"):
        return f"not measurable ({q['nonfinite_mismatch']} non-finite mismatches)"
    return f"{fmt_psnr(q['psnr_db'])} (min {fmt_psnr(q['min_psnr_db'])})"


def backend(device):
    """The backend and its dense kernel library, e.g. "cpu (oneDNN 2.6.3)"."""
    kernels = device.get("kernels")
    if kernels is None and device["backend"] == "cpu" and "kernels" not in device:
        kernels = "OpenBLAS"
    return f"{device['backend']} ({kernels.split(' (')[0]})" if kernels else device["backend"]


def rows(path):
    with open(path) as f:
        d = json.load(f)
    if d.get("schema") != "cbinfer-bench/1":
        sys.exit(f"results_table.py: {path}: not a cbinfer-bench/1 file")
    c = d["config"]
    name = c.get("workload") or os.path.splitext(os.path.basename(c["model"]))[0]
    video = os.path.basename(c["input"])
    for r in d["runs"]:
        dense, cb, q = r.get("dense"), r.get("cbinfer"), r.get("quality")
        if not (dense and cb and q):
            continue
        tau = c["threshold"] * r["threshold_scale"]
        src = c.get("thresholds_file")
        tau_s = os.path.basename(src) + (f" x{r['threshold_scale']:g}" if r["threshold_scale"] != 1 else "") \
            if src else f"{tau:g}"
        yield (f"| {name} | {video} | {c['width']}x{c['height']} | {len(r['frames'])} | "
               f"{backend(d['device'])} | {tau_s} | {dense['latency_ms']['mean']:.1f} | "
               f"{cb['latency_ms']['mean']:.1f} | {r['speedup']:.2f}x | "
               f"{fmt_quality(q)} | "
               f"{100 * cb['changed_share']:.1f}% |")


def policy_rows(paths):
    runs = []
    for path in paths:
        with open(path) as f:
            d = json.load(f)
        if d.get("schema") != "cbinfer-bench/1":
            sys.exit(f"results_table.py: {path}: not a cbinfer-bench/1 file")
        c = d["config"]
        pol = (c.get("policy") or {}).get("spec", "cbinfer")
        for r in d["runs"]:
            if r.get("dense") and r.get("cbinfer") and r.get("quality"):
                src = c.get("thresholds_file")
                thr = os.path.basename(src) if src else f"{c['threshold'] * r['threshold_scale']:g}"
                if src and r["threshold_scale"] != 1:
                    thr += f" x{r['threshold_scale']:g}"
                runs.append((pol, thr, r))
    base = [r["speedup"] for pol, _, r in runs if pol == "cbinfer"]
    print("| policy | thresholds | dense ms | policy ms | speedup | vs cbinfer | PSNR dB (min frame) "
          "| MACs (papers') | MACs (executed) | overhead / MACs saved | state MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for pol, thr, r in runs:
        cb = r["cbinfer"]
        dm = cb.get("dense_macs_per_frame") or float("nan")
        ratio = f"{r['speedup'] / base[0]:.2f}x" if base else "-"
        ov = cb.get("overhead_pct_of_saved")
        print(f"| `{pol}` | {thr} | {r['dense']['latency_ms']['mean']:.1f} | "
              f"{cb['latency_ms']['mean']:.1f} | {r['speedup']:.2f}x | {ratio} | "
              f"{fmt_quality(r['quality'])} | {100 * cb['macs_per_frame'] / dm:.1f}% | "
              f"{100 * cb['macs_executed_per_frame'] / dm:.1f}% | "
              f"{'-' if ov is None else f'{ov:.2f}%'} | {cb['state_bytes'] / 2**20:.1f} |")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__.strip())
    if sys.argv[1] == "--policies":
        policy_rows(sys.argv[2:])
        return
    print("| workload | video | size | frames | backend (dense kernels) | threshold | dense ms | cbinfer ms | "
          "speedup | PSNR dB (min frame) | changed |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for p in sys.argv[1:]:
        for row in rows(p):
            print(row)


if __name__ == "__main__":
    main()
