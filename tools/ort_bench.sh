#!/usr/bin/env bash
# Times ONNX Runtime (CPU) on a model and rgb24 frames: installs the npm package
# onnxruntime-node (with --ignore-scripts: its install script would download GPU
# binaries; the CPU build ships in the package) into build/ort, reads the model's
# input scaling (cbinfer.input_scale / cbinfer.input_offset metadata, default
# 1/255 and 0) and runs tools/ort_bench.mjs.
#
#   bash tools/ort_bench.sh MODEL.onnx FRAMES.rgb WxH [--threads N] [--warmup K] [--json OUT]
set -euo pipefail
ORT_VERSION=1.30.0
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ $# -lt 3 ]; then
  echo "usage: $0 MODEL.onnx FRAMES.rgb WxH [--threads N] [--warmup K] [--json OUT]" >&2
  exit 2
fi
model="$1" frames="$2" size="$3"
shift 3
command -v node >/dev/null || { echo "ort_bench.sh: node is missing (apt-get install nodejs npm)" >&2; exit 1; }
prefix="$root/build/ort"
if [ ! -f "$prefix/node_modules/onnxruntime-node/package.json" ] ||
   ! grep -q "\"version\": \"$ORT_VERSION\"" "$prefix/node_modules/onnxruntime-node/package.json"; then
  echo "ort_bench.sh: installing onnxruntime-node@$ORT_VERSION into $prefix" >&2
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --ignore-scripts --no-audit --no-fund --silent \
    "onnxruntime-node@$ORT_VERSION" >&2
fi
read -r scale offset < <(/usr/bin/python3 - "$model" <<'PY'
import sys, onnx
m = onnx.load(sys.argv[1], load_external_data=False)
meta = {p.key: p.value for p in m.metadata_props}
print(meta.get("cbinfer.input_scale", repr(1 / 255)), meta.get("cbinfer.input_offset", "0"))
PY
)
exec node "$root/tools/ort_bench.mjs" --node-modules "$prefix/node_modules" --model "$model" \
  --frames "$frames" --size "$size" --scale "$scale" --offset "$offset" "$@"
