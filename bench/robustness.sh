#!/usr/bin/env bash
# Robustness to attacking clients (issue 17): scenarios/robustness.yaml (20
# clients, Fashion-MNIST, MLP, all sampled, 10 rounds) on the local backend
# for each strategy and each share of attackers, one run after the other.
# Prints one table of the final central accuracy: a row per strategy, a
# column per share. Krum tolerates f = 6 (30 % of 20), Bulyan f = 4 (the
# most 20 clients allow: 4f + 3 <= 20), FedTrimmedAvg cuts 30 % at each end.
# Usage: bash bench/robustness.sh [ATTACK]   (sign-flip, gaussian or
# label-flip; default sign-flip)
# DMO=path/to/dmo uses that binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${DMO:-}" ]]; then
  cargo build --release -q -p dmo
  DMO=$PWD/target/release/dmo
fi
attack=${1:-sign-flip}
shares=(0 0.1 0.2 0.3)
work=${WORK:-$(mktemp -d)}
strategies=(
  "FedAvg|avgalgo: FedAvg"
  "FedMedian|avgalgo: FedMedian"
  "FedTrimmedAvg|avgalgo: FedTrimmedAvg, trim_fraction: 0.3"
  "Krum|avgalgo: Krum, byzantine_clients: 6"
  "Bulyan|avgalgo: Bulyan, byzantine_clients: 4"
)
printf '| strategy (%s) |' "$attack"
for s in "${shares[@]}"; do printf ' %s %% attackers |' "$(python3 -c "print(round($s*100))")"; done
printf '\n|---|'
for _ in "${shares[@]}"; do printf -- '---:|'; done
printf '\n'
for entry in "${strategies[@]}"; do
  name=${entry%%|*}
  constraints=${entry#*|}
  printf '| %s |' "$name"
  for share in "${shares[@]}"; do
    scenario=$work/$name-$share.yaml
    sed -e "s/attack: { kind: sign-flip, share: 0.2 }/attack: { kind: $attack, share: $share }/" \
        -e "s/constraints: { avgalgo: FedAvg }/constraints: { $constraints }/" \
        -e "s/^name: robustness/name: robustness-$name-$share/" \
        scenarios/robustness.yaml >"$scenario"
    out=$work/out-$name-$share
    "$DMO" run "$scenario" --out "$out" >"$work/log-$name-$share" 2>&1 || true
    python3 - "$out/summary.json" <<'PY'
import json, sys
try:
    j = json.load(open(sys.argv[1]))["jobs"][0]
    acc = j.get("final_accuracy")
    print(f" {acc:.4f} |" if acc is not None else f" {j['state']} |", end="")
except (OSError, KeyError, IndexError):
    print(" run failed |", end="")
PY
  done
  printf '\n'
done
echo "results in $work" >&2
