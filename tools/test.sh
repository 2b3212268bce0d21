#!/usr/bin/env bash
# Builds cbinfer and runs every test (GPU tests skip without a GPU).
# Sample data: CBINFER_DATA_DIR, else ../shared beside the checkout, else it is
# fetched into ./data-cache the way a user would (tools/fetch_data.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_debian.sh
source tools/data_dir.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCBINFER_GST=ON -DCBINFER_DATA_DIR="$CBINFER_DATA_DIR" >&2
cmake --build build -j "$(nproc)"
ctest --test-dir build --output-on-failure -j "$(nproc)"
