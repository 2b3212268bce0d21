#!/usr/bin/env bash
# Proof, without a GPU, that the GPU kit needs nothing from a machine but a
# compiler, CMake, ninja, python3 with numpy and onnx, and the CUDA toolkit:
# a bare Debian 12 chroot (debootstrap --variant=minbase) with only those
# installed and the toolkit bind-mounted read-only runs tools/gpu_check.sh on
# a clean clone of this checkout's HEAD plus gpu-bundle/. It must build
# (CUDA sources included), pass the CPU tests, skip the GPU tests, and end
# the benchmark stage with one "no CUDA device" line.
#
#   bash tools/gpu_bundle.sh && sudo bash tools/chroot_proof.sh [ROOT]
#
# ROOT (default /var/tmp/cbinfer-chroot) is made once and reused. CUDA comes
# from CUDA_HOME (default: where /usr/local/cuda points). Root is needed for
# debootstrap, chroot and the mounts; the mounts are undone on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="${1:-/var/tmp/cbinfer-chroot}"
CUDA_HOME="$(readlink -f "${CUDA_HOME:-/usr/local/cuda}")"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
[ "$(id -u)" = 0 ] || { echo "chroot_proof.sh: run as root (debootstrap, chroot, mount)" >&2; exit 2; }
[ -f gpu-bundle/bundle.tar.xz ] || { echo "chroot_proof.sh: no gpu-bundle/: run tools/gpu_bundle.sh" >&2; exit 2; }
[ -x "$CUDA_HOME/bin/nvcc" ] || { echo "chroot_proof.sh: no nvcc in CUDA_HOME=$CUDA_HOME" >&2; exit 2; }

if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
  echo "chroot_proof.sh: debootstrap bookworm into $ROOT" >&2
  debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >&2
fi
mounted=()
cleanup() {
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[$i]}" || true; done
}
trap cleanup EXIT
bind() { # SRC DEST [ro]
  mkdir -p "$2"
  mount --bind "$1" "$2"
  mounted+=("$2")
  [ "${3:-}" = ro ] && mount -o remount,bind,ro "$2"
  return 0
}
mount -t proc proc "$ROOT/proc" && mounted+=("$ROOT/proc")
bind /dev "$ROOT/dev"
bind /dev/pts "$ROOT/dev/pts"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
echo "chroot_proof.sh: installing only gcc, g++, cmake, ninja, python3-numpy, python3-onnx" >&2
chroot "$ROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive bash -c \
  "apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc g++ cmake ninja-build \
   python3 python3-numpy python3-onnx >/dev/null"
bind "$CUDA_HOME" "$ROOT$CUDA_HOME" ro
[ "$CUDA_HOME" = /usr/local/cuda ] || ln -sfn "$CUDA_HOME" "$ROOT/usr/local/cuda"

# A clean clone of HEAD and the bundle: nothing else of this checkout.
rm -rf "$ROOT/src/cbinfer"
mkdir -p "$ROOT/src"
git clone -q "$PWD" "$ROOT/src/cbinfer"
cp -a gpu-bundle "$ROOT/src/cbinfer/"
echo "chroot_proof.sh: tools/gpu_check.sh in the chroot (commit $(git rev-parse --short HEAD))" >&2
set +e
chroot "$ROOT" /usr/bin/env -i HOME=/root PATH="/usr/local/cuda/bin:/usr/bin:/bin" \
  bash -c "cd /src/cbinfer && OUT=/src/out bash tools/gpu_check.sh"
rc=$?
set -e
mkdir -p build-gpu
cp "$ROOT/src/out/summary.txt" build-gpu/chroot_summary.txt 2>/dev/null || true
cp "$ROOT/src/out/gpu_check.log" build-gpu/chroot_gpu_check.log 2>/dev/null || true
echo "chroot_proof.sh: gpu_check.sh exit $rc; log in build-gpu/chroot_gpu_check.log" >&2
# Expected without a GPU: every stage passes but the three that need a device.
grep -q "^no CUDA device\|no CUDA device" build-gpu/chroot_summary.txt && [ $rc = 0 ]
