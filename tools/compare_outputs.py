#!/usr/bin/python3
"""Compares two folders of cbinfer-bench --dump-output frames (frame_%05d.npy).

Prints per-frame MSE, PSNR (peak 1.0: the sample models produce images in
[0, 1]) and maximum absolute error of TEST against REF, then the means.

    /usr/bin/python3 tools/compare_outputs.py REF_DIR TEST_DIR [--skip-first]
"""
import argparse
import glob
import math
import os
import sys

import numpy as np


def psnr(mse, peak=1.0):
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ref")
    ap.add_argument("test")
    ap.add_argument("--skip-first", action="store_true",
                    help="leave frame 0 (always dense) out of the means")
    ap.add_argument("--quiet", action="store_true", help="only the summary line")
    args = ap.parse_args()
    ref_files = sorted(glob.glob(os.path.join(args.ref, "frame_*.npy")))
    if not ref_files:
        sys.exit(f"compare_outputs.py: no frame_*.npy in {args.ref}")
    mses, maxes = [], []
    for k, rf in enumerate(ref_files):
        tf = os.path.join(args.test, os.path.basename(rf))
        if not os.path.exists(tf):
            sys.exit(f"compare_outputs.py: {tf} missing")
        r = np.load(rf).astype(np.float64)
        t = np.load(tf).astype(np.float64)
        if r.shape != t.shape:
            sys.exit(f"compare_outputs.py: {os.path.basename(rf)}: shapes {r.shape} and {t.shape}")
        mse = float(np.mean((r - t) ** 2))
        mx = float(np.max(np.abs(r - t)))
        if not args.quiet:
            print(f"frame {k:5d}  mse {mse:.3e}  psnr {psnr(mse):7.2f} dB  max_abs {mx:.3e}")
        if k == 0 and args.skip_first:
            continue
        mses.append(mse)
        maxes.append(mx)
    mean_mse = float(np.mean(mses))
    print(f"frames {len(mses)}  mean mse {mean_mse:.3e}  psnr(mean mse) {psnr(mean_mse):.2f} dB  "
          f"min frame psnr {psnr(max(mses)):.2f} dB  max_abs {max(maxes):.3e}")


if __name__ == "__main__":
    main()
