#!/usr/bin/env bash
# Flat vs hierarchical FL (issue 16) on the netns backend (root): the seed
# topology with an edge aggregator per campus, one 50-client cohort over the
# 5 campuses, Fashion-MNIST IID, MLP, FedAvg, fracfit 0.5, 10 rounds
# (scenarios/hierarchical.yaml), at each satellite bandwidth given (Mbit/s),
# flat and hierarchical one after the other. Prints one row per run: median
# round time, satellite MB per round (mean over the two hops of the link
# counters), accuracy at the last round, wall time; then a second table of
# the MLFO's predictions for each run (its plan in summary.json, from the
# figures it measured before the run) beside the measurements, with the
# error, and the option `aggregation: auto` would have taken.
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
printf '| satellite Mbit/s | aggregation | median round s | satellite MB/round | accuracy (last round) | wall s |\n' >"$work/measured.md"
printf '|---:|---|---:|---:|---:|---:|\n' >>"$work/measured.md"
printf '| satellite Mbit/s | aggregation | predicted round s | measured | error | predicted wide-area MB | measured | error | auto would take |\n' >"$work/predicted.md"
printf '|---:|---|---:|---:|---:|---:|---:|---:|---|\n' >>"$work/predicted.md"
for mbit in "${bandwidths[@]}"; do
  for how in flat hierarchical; do
    scenario=$work/hier-$mbit-$how.yaml
    sed -e "s/satellite_bandwidth_mbit: 100/satellite_bandwidth_mbit: $mbit/" \
        -e "s/aggregation: hierarchical/aggregation: $how/" \
        -e "s/^name: hierarchical/name: hierarchical-$mbit-$how/" \
        scenarios/hierarchical.yaml >"$scenario"
    out=$work/out-$mbit-$how
    "$DMO" run "$scenario" --backend netns --out "$out" >"$work/log-$mbit-$how" 2>&1 || true
    python3 - "$out/summary.json" "$mbit" "$how" "$work" <<'PY'
import json, statistics, sys
path, mbit, how, work = sys.argv[1:]
measured = open(f"{work}/measured.md", "a")
predicted = open(f"{work}/predicted.md", "a")
try:
    s = json.load(open(path))
except OSError:
    print(f"| {mbit} | {how} | run failed, see its log | | | |", file=measured)
    sys.exit()
j = s["jobs"][0]
rounds = j["rounds"]
median = statistics.median(r["duration_s"] for r in rounds)
sat = (j.get("satellite_bytes") or 0) / max(len(rounds), 1) / 1e6
acc = rounds[-1]["accuracy"] if rounds else float("nan")
print(f"| {mbit} | {how} | {median:.2f} | {sat:.1f} | {acc:.4f} | {s['wall_s']:.0f} |", file=measured)
plan = j.get("plan")
if plan:
    taken = next(o for o in plan["options"]
                 if o["aggregation"] == plan["chosen"]
                 and o.get("edge_campuses", []) == plan.get("edge_campuses", []))
    fastest = min(plan["options"], key=lambda o: o["round_s"])
    auto = fastest["aggregation"]
    if fastest.get("edge_campuses"):
        auto += f" ({len(fastest['edge_campuses'])} campuses)"
    err = lambda p, m: f"{100 * (p - m) / m:+.0f} %" if m else "-"
    print(f"| {mbit} | {how} | {taken['round_s']:.2f} | {median:.2f} | {err(taken['round_s'], median)} "
          f"| {taken['wan_bytes'] / 1e6:.1f} | {sat:.1f} | {err(taken['wan_bytes'] / 1e6, sat)} | {auto} |",
          file=predicted)
PY
  done
done
cat "$work/measured.md"
echo
cat "$work/predicted.md"
echo "results in $work" >&2
