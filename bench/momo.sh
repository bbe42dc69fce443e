#!/usr/bin/env bash
# The management plane's cost, aggregated vs per-client Mo-Mo: one intent
# over a cohort of N clients (the prototype's 50, and 200), one round, on
# the local backend. Prints Mo-Mo messages and bytes of the intent and the
# time from its arrival to every client started (the prototype's "HTTP
# Intent took"), median of REPEATS runs.
# Usage: bash bench/momo.sh [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p dmo
dmo=$PWD/target/release/dmo
repeats=${1:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '| clients | Mo-Mo mode | messages | bytes | clients started (median s) | runs |\n'
printf '|---:|---|---:|---:|---:|---:|\n'
for n in 50 200; do
  for mode in aggregated per-client; do
    times=()
    for r in $(seq 1 "$repeats"); do
      scenario=$work/momo-$n-$mode.yaml
      # The CI scenario's cutting pipeline, one cohort of n clients, one round.
      python3 - "$n" "$mode" >"$scenario" <<'PY'
import sys
n, mode = sys.argv[1], sys.argv[2]
text = open("scenarios/ci-small.yaml").read()
head, intents = text.split("intents:\n", 1)
head = head.replace("cohorts: [4, 2, 2]", f"cohorts: [{n}]").replace("name: ci-small", f"name: momo-{n}-{mode}")
print(head + f"momo: {mode}\nintents:\n" + """  - cohort: cohort1
    document: |
      intentID: momo
      targets:
        - id: factory.all
          operation: maximise
          operand: robots.cutting.accuracy
          constraints: { privacylevel: high }
    constraints: { fracfit: "0.5", minfit: "1", minav: "1", numround: "1" }
timeouts: { ready_s: 300, run_s: 300 }
""")
PY
      out=$work/out-$n-$mode-$r
      "$dmo" run "$scenario" --out "$out" >"$work/log" 2>&1 || { cat "$work/log"; exit 1; }
      line=$(python3 -c '
import json, sys
j = json.load(open(sys.argv[1] + "/summary.json"))["jobs"][0]
print(j["momo"]["messages"], j["momo"]["bytes"], j["orchestration"]["clients_started_s"])' "$out")
      read -r messages bytes started <<<"$line"
      times+=("$started")
    done
    median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    printf '| %d | %s | %d | %d | %.3f | %d |\n' "$n" "$mode" "$messages" "$bytes" "$median" "$repeats"
  done
done
