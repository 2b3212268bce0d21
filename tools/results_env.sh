# Sourced by the CPU result scripts (cpu_results.sh, task_results.sh) from
# the repository root, with the script's first argument as $1: the sample
# data (data_dir.sh) and the names the results are written under,
# bench/results/<date>_<TAG>_<commit>_*. The default TAG names the CPU
# family by its second word ("AMD EPYC" -> epyc), letters and digits only,
# and the core count: cpu-epyc-2c.
source tools/data_dir.sh
cpu="$( (grep -m1 'model name' /proc/cpuinfo || true) | sed 's/.*: //' | awk '{print tolower($2)}' |
        tr -cd 'a-z0-9')"
tag="${1:-cpu-${cpu:-unknown}-$(nproc)c}"
commit="$(git rev-parse --short HEAD)"
R="bench/results/$(date +%F)_${tag}_${commit}"
B=build/bench/cbinfer-bench
V="$CBINFER_DATA_DIR/data/video"
T=bench/thresholds
PY=/usr/bin/python3
