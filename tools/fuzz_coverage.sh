#!/usr/bin/env bash
# Line coverage of the fuzz corpora: builds the fuzz targets again with
# clang's source coverage (build-fuzz-cov/), replays each target's corpus
# (build-fuzz/corpus/<target>/ and its seeds, no new fuzzing) and prints
# llvm-cov's report for the files that target exercises.
#   bash tools/fuzz_coverage.sh            # every target
#   bash tools/fuzz_coverage.sh onnx npy   # some
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(onnx layer_values npy raw)
source tools/data_dir.sh
CC="${FUZZ_CC:-clang}"
CXX="${FUZZ_CXX:-clang++}"
cov_flags="-fprofile-instr-generate -fcoverage-mapping"
cmake -S . -B build-fuzz-cov -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" -DCBINFER_FUZZ=ON \
  -DCBINFER_CUDA=OFF -DCBINFER_GST=OFF -DCBINFER_BUILD_TESTS=OFF -DCBINFER_BUILD_BENCH=OFF \
  -DCMAKE_C_FLAGS="$cov_flags" -DCMAKE_EXE_LINKER_FLAGS="$cov_flags" \
  -DCBINFER_DATA_DIR="$CBINFER_DATA_DIR" >&2
cmake --build build-fuzz-cov -j "$(nproc)" >&2
PROFDATA="$(command -v llvm-profdata || command -v llvm-profdata-14)"
LLVMCOV="$(command -v llvm-cov || command -v llvm-cov-14)"
export OMP_NUM_THREADS=1 ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1"
for t in "${TARGETS[@]}"; do
  case "$t" in
    onnx) files=(host/onnx_loader.c host/onnx_attrs.c host/onnx_tensors.c host/onnx_graph.c host/onnx_ops.c host/onnx_ops_resize.c host/net.c host/stream.c host/cpu/cpu_conv.c host/cpu/cpu_ops.c host/cpu/cpu_ops_pixel.c host/cpu/cpu_dnnl.c host/cpu/cpu_backend.c) ;;
    layer_values) files=(host/layer_values.c) ;;
    npy) files=(bench/npy.c) ;;
    raw) files=(host/video/video.c) ;;
    *) echo "fuzz_coverage.sh: no target $t" >&2; exit 2 ;;
  esac
  exe="build-fuzz-cov/fuzz/fuzz_$t"
  dirs=("tests/fuzz/corpus/$t")
  [ -d "build-fuzz/corpus/$t" ] && dirs+=("build-fuzz/corpus/$t")
  LLVM_PROFILE_FILE="build-fuzz-cov/$t.profraw" "$exe" -runs=0 "${dirs[@]}" \
    > "build-fuzz-cov/$t.log" 2>&1
  "$PROFDATA" merge -sparse "build-fuzz-cov/$t.profraw" -o "build-fuzz-cov/$t.profdata"
  echo "== $t ($(find "${dirs[@]}" -type f | wc -l) inputs)"
  "$LLVMCOV" report "$exe" -instr-profile="build-fuzz-cov/$t.profdata" "${files[@]}" \
    | sed "s#$PWD/##"
done
