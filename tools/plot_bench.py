#!/usr/bin/python3
"""Plots the JSON results of cbinfer-bench --json (schema cbinfer-bench/1).

    /usr/bin/python3 tools/plot_bench.py sweep    RUN.json -o sweep.png
    /usr/bin/python3 tools/plot_bench.py steps    RUN.json -o steps.png
    /usr/bin/python3 tools/plot_bench.py timeline RUN.json [RUN2.json ...] -o timeline.png
    /usr/bin/python3 tools/plot_bench.py pareto   POLICY1.json [POLICY2.json ...] -o pareto.png

sweep:    change-based throughput (frames/s) against the threshold scale of a
          --sweep, the dense throughput of the same runs as a reference line,
          and the PSNR against dense on a second axis (CBinfer Fig. 7/9).
steps:    mean time per frame of each layer, split into its processing steps
          (profile.layers[].steps, needs --stats), in network order
          (CBinfer Table II / Fig. 10).
timeline: changed share and PSNR over the frame index (runs[0].frames, or
          the run picked with --scale), one line per file (CBinfer Fig. 15).
pareto:   PSNR against dense over MACs per frame (the papers' count, log
          scale) and over wall time per frame, one line per file (one policy's
          --sweep each, --mode compare), the dense cost as a reference line
          (EvNet Fig. 6, Skip-Convolutions Fig. 5, CBinfer Fig. 9).

A PSNR of null means identical outputs (infinite PSNR); it is drawn on an
"exact" row at the top of the PSNR axis. Malformed input ends the program with
one line on stderr and exit status 1; usage errors exit with status 2.

tools/example_bench.json is a hand-written example (not a measurement) that
exercises all three plots.
"""
import argparse
import json
import math
import os
import sys

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

SCHEMA = "cbinfer-bench/1"
PROG = "plot_bench.py"
DPI = 120
SIZE = (9.0, 5.0)
# Steps in the order they run, with fixed colours so plots compare.
STEPS = ["change_detect", "dilate", "extract", "im2col", "gemm", "update", "pool", "dense"]
STEP_COLORS = {
    "change_detect": "#4e79a7", "dilate": "#a0cbe8", "extract": "#59a14f",
    "im2col": "#f28e2b", "gemm": "#e15759", "update": "#b07aa1",
    "pool": "#9c755f", "dense": "#79706e", "other": "#d3d3d3",
}


class BenchError(Exception):
    """Malformed input or an unusable file: reported as one line."""


# ----------------------------------------------------------------------------
# Validated access to the JSON document

NUM, INT, STR, OBJ, LIST = "number", "integer", "string", "object", "array"


def _is(value, kind):
    if kind == NUM:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == STR:
        return isinstance(value, str)
    if kind == OBJ:
        return isinstance(value, dict)
    if kind == LIST:
        return isinstance(value, list)
    raise AssertionError(kind)


def _type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {dict: "object", list: "array", str: "string", int: "integer",
            float: "number"}.get(type(value), type(value).__name__)


def need(obj, key, where, kind, nullable=False):
    """obj[key], checked to be of kind (or null if nullable)."""
    if not isinstance(obj, dict):
        raise BenchError(f"{where or 'top level'}: expected an object, got {_type_name(obj)}")
    path = f"{where}.{key}" if where else key
    if key not in obj:
        raise BenchError(f"missing key {path}")
    value = obj[key]
    if value is None:
        if nullable:
            return None
        raise BenchError(f"{path} is null, expected {'an' if kind[0] in 'aeio' else 'a'} {kind}")
    if not _is(value, kind):
        raise BenchError(f"{path}: expected {'an' if kind[0] in 'aeio' else 'a'} {kind}, "
                         f"got {_type_name(value)}")
    if kind == NUM and math.isnan(value):
        raise BenchError(f"{path} is NaN")
    return value


def psnr_value(psnr, where, exact_known=True):
    """PSNR in dB, math.inf for identical outputs (null or Infinity)."""
    if psnr is None:
        return math.inf if exact_known else None
    if psnr == math.inf:
        return math.inf
    if psnr == -math.inf:
        raise BenchError(f"{where} is -Infinity")
    return float(psnr)


class Doc:
    """One loaded file: its document, path and the header fields every plot uses."""

    def __init__(self, path):
        self.path = path
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except OSError as e:
            raise BenchError(f"{path}: {e.strerror or e}") from None
        except UnicodeDecodeError as e:
            raise BenchError(f"{path}: not UTF-8 text ({e.reason})") from None
        except json.JSONDecodeError as e:
            raise BenchError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} "
                             f"column {e.colno})") from None
        self.doc = doc
        with self.context():
            if not isinstance(doc, dict):
                raise BenchError(f"top level: expected an object, got {_type_name(doc)}")
            schema = need(doc, "schema", "", STR)
            if schema != SCHEMA:
                raise BenchError(f"schema is {schema!r}, expected {SCHEMA!r}")
            dev = need(doc, "device", "", OBJ)
            self.backend = need(dev, "backend", "device", STR)
            self.device_name = need(dev, "name", "device", STR)
            self.cores = need(dev, "cores", "device", INT, nullable=True)
            cfg = need(doc, "config", "", OBJ)
            self.model = need(cfg, "model", "config", STR)
            self.workload = need(cfg, "workload", "config", STR, nullable=True)
            self.input = need(cfg, "input", "config", STR)
            self.width = need(cfg, "width", "config", INT)
            self.height = need(cfg, "height", "config", INT)
            self.mode = need(cfg, "mode", "config", STR)
            self.precision = need(cfg, "precision", "config", STR)
            self.threshold = need(cfg, "threshold", "config", NUM, nullable=True)
            # Per-layer thresholds (--thresholds); absent in older files.
            self.thresholds_file = (need(cfg, "thresholds_file", "config", STR, nullable=True)
                                    if "thresholds_file" in cfg else None)
            self.runs = need(doc, "runs", "", LIST)
            for i, run in enumerate(self.runs):
                need(run, "threshold_scale", f"runs[{i}]", NUM)

    def context(self):
        """with doc.context(): prefixes BenchErrors with the file name."""
        path = self.path

        class _Ctx:
            def __enter__(self):
                return self

            def __exit__(self, typ, exc, tb):
                if typ is BenchError and not str(exc).startswith(path + ": "):
                    raise BenchError(f"{path}: {exc}") from None
                return False

        return _Ctx()

    # Labels -----------------------------------------------------------------
    def model_label(self):
        name = os.path.basename(self.model)
        if name.endswith(".onnx"):
            name = name[:-5]
        return f"{name} / {self.workload}" if self.workload and self.workload != name else name

    def input_label(self):
        return os.path.basename(self.input.rstrip("/")) or self.input

    def device_label(self):
        name = self.device_name if len(self.device_name) <= 48 else self.device_name[:45] + "..."
        cores = f", {self.cores} cores" if self.backend == "cpu" and self.cores else ""
        return f"{self.backend.upper()} {name}{cores}"

    def threshold_label(self):
        if self.thresholds_file:
            return os.path.basename(self.thresholds_file)
        return "-" if self.threshold is None else f"{self.threshold:g}"


def _merge(values, many=None):
    """The one value, or several joined; many(n) names n different values instead."""
    seen = []
    for v in values:
        if v not in seen:
            seen.append(v)
    if len(seen) == 1:
        return seen[0]
    if many is not None:
        return many(len(seen))
    return ", ".join(seen) if len(seen) <= 3 else "various"


def title_for(docs, what, with_threshold=True):
    """Two-line title: what / model, input, resolution // device, precision, mode."""
    model = _merge([d.model_label() for d in docs])
    inp = _merge([d.input_label() for d in docs], lambda n: f"{n} inputs (see legend)")
    res = _merge([f"{d.width}x{d.height}" for d in docs])
    dev = _merge([d.device_label() for d in docs])
    prec = _merge([d.precision for d in docs])
    mode = _merge([d.mode for d in docs])
    line2 = f"{dev}, {prec}, mode {mode}"
    if with_threshold:
        line2 += f", threshold {_merge([d.threshold_label() for d in docs])}"
    return f"{what}: {model} on {inp}, {res}\n{line2}"


def new_figure(nrows=1, height=SIZE[1], sharex=False):
    fig, axes = plt.subplots(nrows, 1, figsize=(SIZE[0], height), dpi=DPI, sharex=sharex,
                             squeeze=False)
    return fig, [a[0] for a in axes]


def save(fig, out):
    try:
        fig.savefig(out, dpi=DPI, format="png", bbox_inches="tight", pad_inches=0.15)
    except OSError as e:
        raise BenchError(f"{out}: {e.strerror or e}") from None
    finally:
        plt.close(fig)


def exact_row(lo, hi):
    """y of the 'exact' (infinite PSNR) row and the axis limits for finite values lo..hi
    (None, None: no finite value, the axis shows the exact row only)."""
    if lo is None:
        return 0.75, (0.0, 1.0)
    span = max(hi - lo, 4.0)
    lo, hi = lo - 0.12 * span, hi + 0.08 * span
    y_exact = hi + 0.18 * span
    return y_exact, (lo, y_exact + 0.1 * span)


def mark_exact_axis(ax, y_exact, lim, color, finite=True):
    """Finite ticks below the exact row (if finite) plus an 'exact' tick at it."""
    ax.set_ylim(*lim)
    ticks = []
    if finite:
        finite_top = y_exact - 0.1 * (lim[1] - lim[0])
        ticks = [t for t in MaxNLocator(nbins=6).tick_values(lim[0], finite_top)
                 if lim[0] <= t <= finite_top]
    else:
        ax.text(0.5, 0.3, "all identical to dense: PSNR = inf", transform=ax.transAxes,
                ha="center", va="center", fontsize=9, color="0.4")
    ax.set_yticks(ticks + [y_exact])
    ax.set_yticklabels([f"{t:g}" for t in ticks] + ["exact"])
    ax.axhline(y_exact, color=color, lw=0.8, ls=":", alpha=0.6, zorder=1)


# ----------------------------------------------------------------------------
# sweep

# Offsets (points) and alignments tried for a point label, in order of preference.
LABEL_SPOTS = [((0, 10), "center", "bottom"), ((0, -11), "center", "top"),
               ((8, 6), "left", "bottom"), ((-8, 6), "right", "bottom"),
               ((8, -6), "left", "top"), ((-8, -6), "right", "top"),
               ((11, 0), "left", "center"), ((-11, 0), "right", "center")]


def line_samples(fig, axes, step_px=3.0):
    """Display coordinates of points along every line drawn in axes (markers included)."""
    pts = []
    for a in axes:
        for line in a.get_lines():
            xy = np.column_stack([np.asarray(line.get_xdata(), float),
                                  np.asarray(line.get_ydata(), float)])
            if not len(xy):
                continue
            disp = line.get_transform().transform(xy)
            disp = disp[np.all(np.isfinite(disp), axis=1)]
            if not len(disp):
                continue
            pts.append(disp)
            if line.get_linestyle() not in ("None", "none", "", " "):
                for p0, p1 in zip(disp[:-1], disp[1:]):
                    n = int(np.hypot(*(p1 - p0)) // step_px)
                    if n > 1:
                        t = np.linspace(0.0, 1.0, n)[:, None]
                        pts.append(p0 + t * (p1 - p0))
    return np.vstack(pts) if pts else np.zeros((0, 2))


def place_label(fig, ax, text, obstacles, placed):
    """Moves an annotation to the LABEL_SPOTS position that covers the fewest obstacles."""
    renderer = fig.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    best = None
    for k, (off, ha, va) in enumerate(LABEL_SPOTS):
        text.set_position(off)
        text.set_ha(ha)
        text.set_va(va)
        bb = text.get_window_extent(renderer).expanded(1.0, 1.0).padded(3.0)
        hits = 0
        if len(obstacles):
            hits = int(np.sum((obstacles[:, 0] >= bb.x0) & (obstacles[:, 0] <= bb.x1)
                              & (obstacles[:, 1] >= bb.y0) & (obstacles[:, 1] <= bb.y1)))
        hits += 1000 * sum(bb.overlaps(o) for o in placed)
        if not (inside.x0 <= bb.x0 and bb.x1 <= inside.x1
                and inside.y0 <= bb.y0 and bb.y1 <= inside.y1):
            hits += 10000
        if best is None or hits < best[0]:
            best = (hits, k)
        if hits == 0:
            break
    off, ha, va = LABEL_SPOTS[best[1]]
    text.set_position(off)
    text.set_ha(ha)
    text.set_va(va)


def cmd_sweep(args):
    d = Doc(args.files[0])
    points = []
    with d.context():
        if not d.runs:
            raise BenchError("runs is empty")
        for i, run in enumerate(d.runs):
            w = f"runs[{i}]"
            scale = float(run["threshold_scale"])
            dense = need(run, "dense", w, OBJ, nullable=True)
            cb = need(run, "cbinfer", w, OBJ, nullable=True)
            dfps = need(dense, "fps", w + ".dense", NUM) if dense is not None else None
            cfps = need(cb, "fps", w + ".cbinfer", NUM) if cb is not None else None
            speedup = need(run, "speedup", w, NUM, nullable=True)
            if speedup is None and dfps and cfps:
                speedup = cfps / dfps
            q = need(run, "quality", w, OBJ, nullable=True)
            psnr = min_psnr = None
            # Outputs that differ in their non-finite values are not measurable
            # (no point), never "exact".
            if q is not None and not q.get("nonfinite_mismatch"):
                psnr = psnr_value(need(q, "psnr_db", w + ".quality", NUM, nullable=True),
                                  w + ".quality.psnr_db")
                if "min_psnr_db" in q:
                    m = need(q, "min_psnr_db", w + ".quality", NUM, nullable=True)
                    min_psnr = psnr_value(m, w + ".quality.min_psnr_db")
            points.append((scale, dfps, cfps, speedup, psnr, min_psnr))
        if all(p[2] is None for p in points):
            raise BenchError("no run has change-based results (runs[].cbinfer is null everywhere; "
                             f"config.mode is {d.mode!r})")
    points.sort(key=lambda p: p[0])

    fig, (ax,) = new_figure()
    ax.set_title(title_for([d], "Throughput and error against threshold", with_threshold=True),
                 fontsize=10.5)
    cb_pts = [p for p in points if p[2] is not None]
    xs = [p[0] for p in cb_pts]
    ys = [p[2] for p in cb_pts]
    handles = []
    (h_cb,) = ax.plot(xs, ys, "o-", color="C0", lw=2, ms=7, zorder=4,
                      label=f"change-based ({d.mode}), frames/s")
    handles.append(h_cb)

    dense_fps = [p[1] for p in points if p[1] is not None]
    ymax = max(ys + dense_fps)
    if dense_fps:
        mean_dense = sum(dense_fps) / len(dense_fps)
        lo, hi = min(dense_fps), max(dense_fps)
        label = f"dense, {mean_dense:.3g} frames/s"
        if len(dense_fps) > 1:
            label += f" (mean of {len(dense_fps)} runs)"
        h_d = ax.axhline(mean_dense, color="0.25", ls="--", lw=1.4, zorder=3, label=label)
        handles.append(h_d)
        if hi - lo > 0.03 * mean_dense:  # only when the band would be visible
            ax.axhspan(lo, hi, color="0.5", alpha=0.15, lw=0, zorder=2)
            handles.append(plt.Rectangle((0, 0), 1, 1, color="0.5", alpha=0.15,
                                         label="dense, range over runs"))

    ax.set_ylim(0, ymax * 1.18)
    ax.set_ylabel("throughput (frames/s)", color="C0")
    ax.tick_params(axis="y", colors="C0")
    thr = f" (1 = threshold {d.threshold:g})" if d.threshold else ""
    ax.set_xlabel(f"threshold scale{thr}")
    span = (max(xs) - min(xs)) or 1.0
    ax.set_xlim(min(xs) - 0.06 * span, max(xs) + 0.06 * span)
    ax.set_xticks(sorted(set(p[0] for p in points)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.grid(True, alpha=0.35)

    q_pts = [p for p in points if p[4] is not None]
    if q_pts:
        ax2 = ax.twinx()
        finite = [v for p in q_pts for v in (p[4], p[5]) if v is not None and v != math.inf]
        y_exact, lim = exact_row(min(finite) if finite else None, max(finite) if finite else None)
        mark_exact_axis(ax2, y_exact, lim, "C3", finite=bool(finite))
        fx = [p[0] for p in q_pts if p[4] != math.inf]
        fy = [p[4] for p in q_pts if p[4] != math.inf]
        if fx:
            (h,) = ax2.plot(fx, fy, "s-", color="C3", lw=1.6, ms=6, zorder=4,
                            label="PSNR vs dense, all frames (dB)")
            handles.append(h)
        mx = [p[0] for p in q_pts if p[5] is not None and p[5] != math.inf]
        my = [p[5] for p in q_pts if p[5] is not None and p[5] != math.inf]
        if mx:
            (h,) = ax2.plot(mx, my, "v:", color="C3", lw=1.2, ms=5, alpha=0.75, zorder=4,
                            label="PSNR vs dense, worst frame (dB)")
            handles.append(h)
        ex = [p[0] for p in q_pts if p[4] == math.inf]
        if ex:
            (h,) = ax2.plot(ex, [y_exact] * len(ex), "*", color="C3", ms=13, zorder=5,
                            linestyle="none", label="identical to dense (exact, PSNR = inf)")
            handles.append(h)
            for x in ex:
                ax2.annotate("exact", (x, y_exact), xytext=(9, 0), textcoords="offset points",
                             ha="left", va="center", fontsize=9, color="C3")
        ax2.set_ylabel("PSNR against dense (dB)", color="C3")
        ax2.tick_params(axis="y", colors="C3")
        ax.set_zorder(ax2.get_zorder() + 1)  # throughput line and labels on top
        ax.patch.set_visible(False)
    # Speedup labels, placed where they hide the fewest plotted points.
    obstacles = line_samples(fig, [ax] + ([ax2] if q_pts else []))
    renderer = fig.canvas.get_renderer()
    placed = [t.get_window_extent(renderer) for t in (ax2.texts if q_pts else [])]
    for x, y, p in zip(xs, ys, cb_pts):
        if p[3] is not None:
            t = ax.annotate(f"{p[3]:.2f}x", (x, y), xytext=(0, 10), textcoords="offset points",
                            fontsize=9, color="C0", fontweight="bold", zorder=6,
                            bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none",
                                      alpha=0.8))
            place_label(fig, ax, t, obstacles, placed)
            placed.append(t.get_window_extent(renderer))

    notes = []
    if not q_pts:
        notes.append("no quality data (run with --mode compare)")
    if not dense_fps:
        notes.append("no dense reference (run with --mode compare)")
    if notes:
        ax.text(0.99, 0.02, "\n".join(dict.fromkeys(notes)), transform=ax.transAxes,
                ha="right", va="bottom", fontsize=8, color="0.4")

    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13),
              ncol=3 if len(handles) > 4 else 2, fontsize=8.5, frameon=False)
    save(fig, args.output)


# ----------------------------------------------------------------------------
# steps

def cmd_steps(args):
    d = Doc(args.files[0])
    rows = []
    extra_steps = []
    with d.context():
        prof = need(d.doc, "profile", "", OBJ, nullable=True)
        if prof is None:
            raise BenchError("profile is null (run cbinfer-bench with --stats)")
        layers = need(prof, "layers", "profile", LIST)
        if not layers:
            raise BenchError("profile.layers is empty")
        for i, layer in enumerate(layers):
            w = f"profile.layers[{i}]"
            name = need(layer, "name", w, STR)
            op = need(layer, "op", w, STR)
            t = need(layer, "time_ms_mean", w, NUM)
            pct = need(layer, "percentage", w, NUM, nullable=True)
            share = need(layer, "changed_share", w, NUM, nullable=True)
            steps = need(layer, "steps", w, OBJ)
            vals = {}
            for s in STEPS:
                vals[s] = need(steps, s, w + ".steps", NUM)
            for s in steps:
                if s not in STEPS:
                    vals[s] = need(steps, s, w + ".steps", NUM)
                    if s not in extra_steps:
                        extra_steps.append(s)
            rows.append((name, op, t, pct, share, vals))
    order = [s for s in STEPS + extra_steps if any(r[5].get(s, 0.0) > 0 for r in rows)]
    # Time of the layer not covered by its steps, when it matters.
    others = [max(0.0, r[2] - sum(r[5].values())) for r in rows]
    show_other = any(o > 0.02 * r[2] and o > 0.01 for o, r in zip(others, rows))

    n = len(rows)
    height = max(SIZE[1], 1.9 + 0.36 * n)
    fig, (ax,) = new_figure(height=height)
    ax.set_title(title_for([d], "Time per layer and step"), fontsize=10.5)
    ys = list(range(n))
    left = [0.0] * n
    handles = []
    for s in order:
        widths = [r[5].get(s, 0.0) for r in rows]
        color = STEP_COLORS.get(s) or f"C{(len(handles) + 2) % 10}"
        h = ax.barh(ys, widths, left=left, height=0.68, color=color, edgecolor="white",
                    linewidth=0.5, label=s, zorder=3)
        handles.append(h)
        left = [a + b for a, b in zip(left, widths)]
    if show_other:
        h = ax.barh(ys, others, left=left, height=0.68, color=STEP_COLORS["other"],
                    edgecolor="white", linewidth=0.5, hatch="//", label="other (not in a step)",
                    zorder=3)
        handles.append(h)
        left = [a + b for a, b in zip(left, others)]
    total = sum(r[2] for r in rows)
    xmax = max(max(left), max(r[2] for r in rows)) or 1.0
    for y, r, end in zip(ys, rows, left):
        pct = r[3] if r[3] is not None else (100.0 * r[2] / total if total else 0.0)
        txt = f"{r[2]:.3g} ms ({pct:.1f}%)"
        if r[4] is not None:
            txt += f", {100.0 * r[4]:.1f}% changed"
        ax.text(max(end, r[2]) + 0.01 * xmax, y, txt, va="center", ha="left", fontsize=8.5,
                zorder=4)
    ax.set_yticks(ys)
    ax.set_yticklabels([f"{r[0]} ({r[1]})" for r in rows], fontsize=9 if n <= 30 else 7)
    ax.invert_yaxis()  # network order from the top
    ax.set_xlim(0, xmax * 1.42)
    ax.set_ylim(n - 0.4, -0.6)
    ax.set_xlabel(f"mean time per frame (ms); all layers {total:.4g} ms")
    ax.set_ylabel("layer (network order)")
    ax.grid(True, axis="x", alpha=0.35, zorder=0)
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.55 / (0.77 * height)),
              ncol=math.ceil(len(handles) / math.ceil(len(handles) / 8)), fontsize=8.5,
              frameon=False)
    save(fig, args.output)


# ----------------------------------------------------------------------------
# timeline

def pick_run(d, scale):
    if not d.runs:
        raise BenchError("runs is empty")
    if scale is None:
        return 0, d.runs[0]
    for i, run in enumerate(d.runs):
        if math.isclose(run["threshold_scale"], scale, rel_tol=1e-9, abs_tol=1e-12):
            return i, run
    have = ", ".join(f"{r['threshold_scale']:g}" for r in d.runs)
    raise BenchError(f"no run with threshold_scale {scale:g} (runs have {have})")


def cmd_timeline(args):
    docs = [Doc(p) for p in args.files]
    series = []
    for d in docs:
        with d.context():
            i, run = pick_run(d, args.scale)
            frames = need(run, "frames", f"runs[{i}]", LIST)
            if not frames:
                raise BenchError(f"runs[{i}].frames is empty")
            idx, share, psnr = [], [], []
            for j, fr in enumerate(frames):
                w = f"runs[{i}].frames[{j}]"
                idx.append(need(fr, "index", w, INT))
                sh = need(fr, "changed_share", w, NUM, nullable=True)
                share.append(None if sh is None else 100.0 * sh)
                mse = need(fr, "mse", w, NUM, nullable=True)
                p = need(fr, "psnr_db", w, NUM, nullable=True)
                # psnr null with an mse means identical; with no mse, not measured.
                psnr.append(psnr_value(p, w + ".psnr_db", exact_known=mse is not None))
            series.append(dict(doc=d, scale=run["threshold_scale"], idx=idx, share=share,
                               psnr=psnr))
    labels = [f"{s['doc'].input_label()} ({s['doc'].mode})" for s in series]
    if len(set(labels)) < len(labels):
        labels = [f"{lab}, scale {s['scale']:g}" for lab, s in zip(labels, series)]
    if len(set(labels)) < len(labels):
        labels = [f"{lab} [{os.path.basename(s['doc'].path)}]" for lab, s in zip(labels, series)]

    fig, (ax1, ax2) = new_figure(nrows=2, height=SIZE[1] + 0.6, sharex=True)
    scales = _merge([f"{s['scale']:g}" for s in series])
    ax1.set_title(title_for(docs, f"Per-frame changed share and error (threshold scale {scales})"),
                  fontsize=10.5)
    many = max(len(s["idx"]) for s in series) > 150
    ms = 0 if many else 3.5
    for k, (s, lab) in enumerate(zip(series, labels)):
        c = f"C{k % 10}"
        xs = [x for x, v in zip(s["idx"], s["share"]) if v is not None]
        vs = [v for v in s["share"] if v is not None]
        ax1.plot(xs, vs, "o-", color=c, lw=1.5, ms=ms, label=lab)
    ax1.set_ylabel("changed share (%)")
    top = max([v for s in series for v in s["share"] if v is not None] or [100.0])
    ax1.set_ylim(0, min(105.0, max(10.0, top * 1.1)))
    ax1.grid(True, alpha=0.35)

    finite = [v for s in series for v in s["psnr"] if v is not None and v != math.inf]
    have_q = any(v is not None for s in series for v in s["psnr"])
    if have_q:
        y_exact, lim = exact_row(min(finite) if finite else None, max(finite) if finite else None)
        mark_exact_axis(ax2, y_exact, lim, "0.3", finite=bool(finite))
        for k, s in enumerate(series):
            c = f"C{k % 10}"
            # NaN breaks the line at exact or unmeasured frames.
            fy = [v if v is not None and v != math.inf else float("nan") for v in s["psnr"]]
            ax2.plot(s["idx"], fy, "o-", color=c, lw=1.5, ms=ms)
            ex = [x for x, v in zip(s["idx"], s["psnr"]) if v == math.inf]
            if ex:
                ax2.plot(ex, [y_exact] * len(ex), "^", color=c, ms=6, linestyle="none",
                         alpha=0.85)
    else:
        ax2.text(0.5, 0.5, "no per-frame quality (run cbinfer-bench with --mode compare)",
                 transform=ax2.transAxes, ha="center", va="center", fontsize=9, color="0.4")
        ax2.set_yticks([])
    missing = [lab for s, lab in zip(series, labels)
               if have_q and all(v is None for v in s["psnr"])]
    if missing:
        ax2.text(0.005, 0.02, "no PSNR for: " + "; ".join(missing), transform=ax2.transAxes,
                 ha="left", va="bottom", fontsize=8, color="0.4")
    ax2.set_ylabel("PSNR against dense (dB)")
    ax2.set_xlabel("frame index")
    ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.grid(True, alpha=0.35)
    handles, hlabels = ax1.get_legend_handles_labels()
    if have_q:
        handles.append(Line2D([], [], color="0.3", marker="^", linestyle="none", ms=6))
        hlabels.append("frame identical to dense (PSNR = inf)")
    ax2.legend(handles, hlabels, loc="upper center", bbox_to_anchor=(0.5, -0.2),
               ncol=2 if len(handles) > 1 else 1, fontsize=8.5, frameon=False)
    fig.align_ylabels([ax1, ax2])
    save(fig, args.output)


def cmd_pareto(args):
    docs = [Doc(p) for p in args.files]
    series, dense_macs, dense_ms = [], [], []
    for d in docs:
        with d.context():
            pol = need(d.doc["config"], "policy", "config", OBJ, nullable=True)
            label = need(pol, "spec", "config.policy", STR) if pol else d.mode
            pts = []
            for i, run in enumerate(d.runs):
                w = f"runs[{i}]"
                cb = need(run, "cbinfer", w, OBJ)
                q = need(run, "quality", w, OBJ)
                dn = need(run, "dense", w, OBJ)
                macs = need(cb, "macs_per_frame", w + ".cbinfer", NUM)
                ms = need(need(cb, "latency_ms", w + ".cbinfer", OBJ), "mean", w, NUM)
                psnr = psnr_value(need(q, "psnr_db", w + ".quality", NUM, nullable=True),
                                  w + ".quality.psnr_db")
                dense_macs.append(need(cb, "dense_macs_per_frame", w + ".cbinfer", NUM))
                dense_ms.append(need(need(dn, "latency_ms", w + ".dense", OBJ), "mean", w, NUM))
                pts.append((max(macs, 1.0), ms, psnr, run["threshold_scale"]))
            pts.sort(key=lambda t: t[0])
            series.append((f"{label} [{d.input_label()}]" if len(docs) > 1 and
                           len({x.input_label() for x in docs}) > 1 else label, pts))
    finite = [p[2] for _, pts in series for p in pts if p[2] != math.inf]
    y_exact, lim = exact_row(min(finite) if finite else None, max(finite) if finite else None)
    fig, axes = plt.subplots(1, 2, figsize=(SIZE[0] + 2.0, SIZE[1]), dpi=DPI, sharey=True)
    fig.suptitle(title_for(docs, "Quality against cost, one line per policy", False),
                 fontsize=10.5)
    for k, (label, pts) in enumerate(series):
        c = f"C{k % 10}"
        ys = [y_exact if p[2] == math.inf else p[2] for p in pts]
        axes[0].plot([p[0] for p in pts], ys, "o-", color=c, lw=1.5, ms=4, label=label)
        order = sorted(range(len(pts)), key=lambda i: pts[i][1])
        axes[1].plot([pts[i][1] for i in order], [ys[i] for i in order], "o-", color=c, lw=1.5,
                     ms=4)
    dm, dt = float(np.median(dense_macs)), float(np.median(dense_ms))
    axes[0].axvline(dm, color="0.3", ls="--", lw=1)
    axes[0].text(dm, lim[0], " dense", color="0.3", fontsize=8, va="bottom", rotation=90)
    axes[1].axvline(dt, color="0.3", ls="--", lw=1)
    axes[1].text(dt, lim[0], " dense", color="0.3", fontsize=8, va="bottom", rotation=90)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("MACs per frame (effective, log scale)")
    axes[1].set_xlabel("wall time per frame (ms, mean)")
    axes[0].set_ylabel("PSNR against dense (dB)")
    for ax in axes:
        mark_exact_axis(ax, y_exact, lim, "0.3", finite=bool(finite))
        ax.grid(True, alpha=0.35, which="both")
    axes[0].legend(loc="upper center", bbox_to_anchor=(1.0, -0.14), ncol=min(len(series), 4),
                   fontsize=8.5, frameon=False)
    save(fig, args.output)


# ----------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{PROG}: error: {message}\n")


def main(argv=None):
    ap = _Parser(prog=PROG, description=__doc__.splitlines()[0],
                 formatter_class=argparse.RawDescriptionHelpFormatter,
                 epilog="\n".join(__doc__.splitlines()[1:]))
    sub = ap.add_subparsers(dest="cmd", metavar="{sweep,steps,timeline,pareto}")
    sub.required = True
    for name, fn, many, text in (
            ("sweep", cmd_sweep, False, "throughput and PSNR against the threshold scale"),
            ("steps", cmd_steps, False, "per-layer time split into steps (needs --stats)"),
            ("timeline", cmd_timeline, True, "changed share and PSNR over the frames"),
            ("pareto", cmd_pareto, True, "PSNR against MACs and wall time, one line per policy")):
        p = sub.add_parser(name, help=text, description=text)
        p.error = ap.error
        p.add_argument("files", metavar="FILE.json", nargs="+" if many else 1)
        p.add_argument("-o", "--output", metavar="OUT.png", required=True)
        if name == "timeline":
            p.add_argument("--scale", type=float, default=None,
                           help="plot the run with this threshold_scale (default: runs[0])")
        p.set_defaults(fn=fn)
    args = ap.parse_args(argv)
    try:
        args.fn(args)
    except BenchError as e:
        msg = " ".join(str(e).split())
        print(f"{PROG}: error: {msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
