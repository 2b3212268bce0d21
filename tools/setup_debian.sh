#!/usr/bin/env bash
# Installs everything cbinfer needs to build, test and benchmark on Debian 12
# (or Ubuntu 22.04+). The CUDA toolkit is not a Debian package here: when nvcc
# is in /usr/local/cuda (or on PATH) the CUDA backend is built too.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PKGS=(
  build-essential cmake ninja-build pkg-config
  libprotobuf-c-dev protobuf-c-compiler libonnx-dev        # ONNX parsing (system onnx.proto)
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev  # video input
  libdnnl-dev                                              # CPU kernels (oneDNN)
  googletest libgtest-dev valgrind                         # tests
  libonnx-testdata                                         # the ONNX node test vectors
  clang libclang-rt-dev libomp-dev                         # fuzzing (tools/fuzz.sh: libFuzzer)
  python3-numpy python3-onnx python3-matplotlib            # tools/ (run by /usr/bin/python3)
  python3-pytest                                           # the Python bindings' test
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev     # the GStreamer element
  gstreamer1.0-tools gstreamer1.0-plugins-base             # its tests: gst-launch-1.0,
  gstreamer1.0-plugins-good gstreamer1.0-libav             #   avidemux, vtest.avi's DivX 3 decoder
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup_debian.sh: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
