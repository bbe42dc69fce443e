#!/usr/bin/env bash
# Flat vs hierarchical FL (issue 16) on the netns backend (root): the seed
# topology with an edge aggregator per campus, one 50-client cohort over the
# 5 campuses, Fashion-MNIST IID, MLP, FedAvg, fracfit 0.5, 10 rounds
# (scenarios/hierarchical.yaml), at each satellite bandwidth given (Mbit/s),
# flat and hierarchical one after the other. Prints one row per run: median
# round time, satellite MB per round (mean over the two hops of the link
# counters), accuracy at the last round, wall time.
# Usage: sudo bash bench/hierarchical.sh [MBIT...]   (default: 20 100 500)
# DMO=path/to/dmo uses that binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${DMO:-}" ]]; then
  cargo build --release -q -p dmo
  DMO=$PWD/target/release/dmo
fi
bandwidths=("$@")
((${#bandwidths[@]})) || bandwidths=(20 100 500)
work=${WORK:-$(mktemp -d)}
printf '| satellite Mbit/s | aggregation | median round s | satellite MB/round | accuracy (last round) | wall s |\n'
printf '|---:|---|---:|---:|---:|---:|\n'
for mbit in "${bandwidths[@]}"; do
  for how in flat hierarchical; do
    scenario=$work/hier-$mbit-$how.yaml
    sed -e "s/satellite_bandwidth_mbit: 100/satellite_bandwidth_mbit: $mbit/" \
        -e "s/aggregation: hierarchical/aggregation: $how/" \
        -e "s/^name: hierarchical/name: hierarchical-$mbit-$how/" \
        scenarios/hierarchical.yaml >"$scenario"
    out=$work/out-$mbit-$how
    "$DMO" run "$scenario" --backend netns --out "$out" >"$work/log-$mbit-$how" 2>&1 || true
    python3 - "$out/summary.json" "$mbit" "$how" <<'PY'
import json, statistics, sys
path, mbit, how = sys.argv[1:]
try:
    s = json.load(open(path))
except OSError:
    print(f"| {mbit} | {how} | run failed, see its log | | | |")
    sys.exit()
j = s["jobs"][0]
rounds = j["rounds"]
median = statistics.median(r["duration_s"] for r in rounds)
sat = (j.get("satellite_bytes") or 0) / max(len(rounds), 1) / 1e6
acc = rounds[-1]["accuracy"] if rounds else float("nan")
print(f"| {mbit} | {how} | {median:.2f} | {sat:.1f} | {acc:.4f} | {s['wall_s']:.0f} |")
PY
  done
done
echo "results in $work" >&2
