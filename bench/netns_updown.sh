#!/usr/bin/env bash
# Time to bring up and tear down the 50-client prototype topology
# (58 hosts, 59 namespaces, 65 links) on the netns backend. Root.
# Usage: bash bench/netns_updown.sh [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p dmo
dmo=target/release/dmo
repeats=${1:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
printf '| try | up s | down s |\n|---:|---:|---:|\n'
for i in $(seq 1 "$repeats"); do
  "$dmo" testbed up --run-byte 250 >"$out" &
  pid=$!
  until grep -q ' up in ' "$out"; do sleep 0.05; done
  up=$(sed -nE '1s/.* up in ([0-9.]+) s.*/\1/p' "$out")
  t0=$(date +%s.%N)
  kill -TERM "$pid"; wait "$pid"
  t1=$(date +%s.%N)
  printf '| %d | %s | %.2f |\n' "$i" "$up" "$(echo "$t1 - $t0" | bc)"
done
