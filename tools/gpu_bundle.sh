#!/usr/bin/env bash
# Gathers, on a Debian machine with apt, what a bare CUDA machine lacks to
# build and check cbinfer (the device tool's H100/H200: nvcc, CMake, ninja,
# gcc and a python3 with numpy and onnx, but no apt, no internet, no
# FFmpeg, oneDNN, protobuf-c or GoogleTest). Writes gpu-bundle/bundle.tar.xz
# (ignored by git; at most 40 MiB) and gpu-bundle/MANIFEST.txt, which
# tools/gpu_check.sh unpacks and builds with:
#
#   prefix/       oneDNN (libdnnl, headers) with its OpenCL loader, and the
#                 protobuf-c runtime and headers
#   gen/          the ONNX parser protoc-c generated here from onnx.proto
#   onnx.proto    the file it was generated from
#   googletest/   the GoogleTest sources (built there)
#   models/       the converted pretrained models (the synthetic ones are
#                 built there by tools/convert_models.py, from no data)
#   data/models/human-models/  NanoDet's and PoseNet's TF.js files, converted
#                 there by tools/convert_tfjs.py (smaller than the ONNX)
#   onnx-testdata/ the ONNX node test vectors the op tests run (Debian
#                 libonnx-testdata), as tests/onnx_node_tests.cpp lists them
#   data/video/   vtest.avi, for the benchmark (decoded there with OpenCV)
#   frames/       the frames the tests read, raw rgb24 decoded here:
#                 vtest.avi frames 0-19, Megamind.avi frame 30
#
# Run after tools/test.sh has built build/ (it needs build/models, the
# generated parser and cbinfer-bench): bash tools/gpu_bundle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_debian.sh
source tools/data_dir.sh
MAX_MIB=40
B=gpu-bundle
for f in build/gen/onnx.pb-c.c build/bench/cbinfer-bench build/models/vgg7-noise1.onnx; do
  [ -e "$f" ] || { echo "gpu_bundle.sh: $f missing: run bash tools/test.sh first" >&2; exit 1; }
done
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/prefix/include" "$stage/prefix/lib" "$stage/gen" "$stage/models" \
         "$stage/data/video" "$stage/data/models" "$stage/frames"

lib=/usr/lib/x86_64-linux-gnu
# oneDNN: the library (and the OpenCL ICD loader it links), its headers.
cp -a "$lib"/libdnnl.so* "$stage/prefix/lib/"
cp -aL "$lib/libOpenCL.so.1" "$stage/prefix/lib/"
cp -a /usr/include/oneapi "$stage/prefix/include/"
cp -a /usr/include/dnnl*.h /usr/include/dnnl*.hpp "$stage/prefix/include/"
# protobuf-c: runtime and headers; the parser generated here.
cp -a "$lib"/libprotobuf-c.so* "$stage/prefix/lib/"
cp -a /usr/include/protobuf-c "$stage/prefix/include/"
cp build/gen/onnx.pb-c.c build/gen/onnx.pb-c.h "$stage/gen/"
cp /usr/include/onnx/onnx.proto "$stage/"
# GoogleTest sources.
cp -a /usr/src/googletest "$stage/googletest"
# Converted pretrained models.
for m in vgg7-noise1 vgg7-scale2x upconv7-noise1-scale2x realesr-x2; do
  cp "build/models/$m.onnx" "$stage/models/"
done
# The TF.js surveillance models, converted there.
mkdir -p "$stage/data/models/human-models"
cp "$CBINFER_DATA_DIR"/models/human-models/{nanodet,posenet}.{json,bin} \
   "$stage/data/models/human-models/"
# The ONNX node test vectors of the op tests.
td=/usr/share/libonnx-testdata/data
for c in $(grep -o '"\(node\|pytorch-converted\)/test_[a-z0-9_A-Z]*"' tests/onnx_node_tests.cpp | tr -d '"'); do
  mkdir -p "$stage/onnx-testdata/$c"
  cp -a "$td/$c/." "$stage/onnx-testdata/$c/"
done
# The benchmark's video; the tests' frames, decoded here by FFmpeg.
cp "$CBINFER_DATA_DIR/data/video/vtest.avi" "$stage/data/video/"
dump() { # video first count out
  build/bench/cbinfer-bench --model build/models/scene-labeling-synthetic.onnx \
    --video "$CBINFER_DATA_DIR/data/video/$1" --skip "$2" --frames "$3" --warmup 0 \
    --mode dense --dump-frames "$stage/frames/$4" >/dev/null
}
dump vtest.avi 0 20 vtest.avi.768x576.rgb
dump Megamind.avi 30 1 Megamind.avi.720x528+30.rgb

mkdir -p "$B"
echo "gpu_bundle.sh: compressing (xz)" >&2
tar -C "$stage" -cf - . | xz -T0 -6 > "$B/bundle.tar.xz.tmp"
mv "$B/bundle.tar.xz.tmp" "$B/bundle.tar.xz"
{
  echo "cbinfer GPU bundle, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD)"
  echo "oneDNN $(dpkg-query -W -f='${Version}' libdnnl-dev), protobuf-c $(dpkg-query -W -f='${Version}' libprotobuf-c-dev), googletest $(dpkg-query -W -f='${Version}' googletest)"
  echo
  (cd "$stage" && du -sh prefix gen onnx.proto googletest models data frames onnx-testdata)
} > "$B/MANIFEST.txt"
size=$(stat -c %s "$B/bundle.tar.xz")
cat "$B/MANIFEST.txt" >&2
echo "gpu_bundle.sh: $B/bundle.tar.xz: $((size / 1048576)) MiB ($size bytes) of at most $MAX_MIB MiB" >&2
if [ "$size" -gt $((MAX_MIB * 1048576)) ]; then
  echo "gpu_bundle.sh: the bundle is larger than $MAX_MIB MiB" >&2
  exit 1
fi
