#!/usr/bin/env bash
# Time to bring up and tear down a topology on the netns backend (root):
# by default the 50-client prototype topology (58 hosts, 59 namespaces, 65
# links); CLIENTS=1000 the same shape with 1,000 clients in cohorts
# [500, 250, 250] (1,008 hosts, campuses of CAMPUS_SIZE). After each
# teardown it checks that no namespace or cgroup of the run is left.
# Usage: [CLIENTS=1000] bash bench/netns_updown.sh [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p dmo
dmo=target/release/dmo
repeats=${1:-5}
out=$(mktemp)
topology=$(mktemp --suffix=.yaml)
trap 'rm -f "$out" "$topology"' EXIT
args=()
if [[ -n "${CLIENTS:-}" ]]; then
  c=$CLIENTS
  "$dmo" testbed gen --split "$((c / 2)),$((c / 4)),$((c - c / 2 - c / 4))" \
    --campus-size "${CAMPUS_SIZE:-10}" --out "$topology"
  args=("$topology")
fi
printf '| try | up s | down s | namespaces | left after |\n|---:|---:|---:|---:|---:|\n'
for i in $(seq 1 "$repeats"); do
  "$dmo" testbed up "${args[@]}" --run-byte 250 >"$out" &
  pid=$!
  until grep -q ' up in ' "$out"; do sleep 0.05; done
  up=$(sed -nE '1s/.* up in ([0-9.]+) s.*/\1/p' "$out")
  spaces=$(ip netns list | grep -c '^dmo-250' || true)
  t0=$(date +%s.%N)
  kill -TERM "$pid"; wait "$pid"
  t1=$(date +%s.%N)
  left=$(( $(ip netns list | grep -c '^dmo-250' || true) + $(find /sys/fs/cgroup -maxdepth 2 -name 'dmo-250*' | wc -l) ))
  printf '| %d | %s | %.2f | %d | %d |\n' "$i" "$up" "$(echo "$t1 - $t0" | bc)" "$spaces" "$left"
done
