#!/usr/bin/env bash
# One local epoch per model at batch 10 and 50, ours and (with --torch)
# PyTorch's side by side, in one table with the ratio ours / PyTorch.
#
# Usage: bench/train_epoch.sh [--torch] [THREADS] [EXAMPLES] [ROUNDS] [MODEL...]
#   defaults: 2 threads, 8000 examples, 3 rounds, every model. Each round
#   runs each side once per model, in a fresh process timing the better of
#   two epochs; the table shows each side's fastest epoch over all rounds.
#   --torch   also time PyTorch (CPU) on the same layers, data, optimiser and
#             thread count (bench/train_epoch_torch.py). On first use it
#             creates a venv with torch in $TORCH_VENV (default
#             target/bench-torch-venv). Not for CI: it downloads torch.
# Ours is the release build of crates/ml/examples/train_epoch.rs. The two
# alternate process by process, so that both see the same machine speed
# (this machine's speed moves from minute to minute: a side timed in one
# block could catch a slow minute the other does not).
# 28x28 models train on Fashion-MNIST (apt install dataset-fashion-mnist).
set -euo pipefail
cd "$(dirname "$0")/.."

torch=0
if [[ ${1:-} == --torch ]]; then
    torch=1
    shift
fi
threads=${1:-2}
examples=${2:-8000}
rounds=${3:-3}
shift $(($# < 3 ? $# : 3))
models=("$@")
if ((${#models[@]} == 0)); then
    models=(logreg mlp keras-mlp cnn cnn-cifar)
fi

cargo build -q --release -p ml --example train_epoch
ours=target/release/examples/train_epoch

if ((torch)); then
    venv=${TORCH_VENV:-target/bench-torch-venv}
    if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
        echo "installing torch into $venv ..." >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q torch numpy
    fi
fi

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for model in "${models[@]}"; do
    for ((round = 0; round < rounds; round++)); do
        "$ours" --lines "$threads" "$examples" 2 "$model" | sed 's/^/ours /' >>"$results"
        if ((torch)); then
            "$venv/bin/python" bench/train_epoch_torch.py "$threads" "$examples" 2 "$model" |
                sed 's/^/torch /' >>"$results"
        fi
    done
done

echo "One local epoch over $examples examples, SGD lr 0.01, $threads threads, fastest epoch of $rounds rounds ($(date -u +%F))"
awk -v torch="$torch" -v order="${models[*]}" '
    !(($1, $2, $3) in t) || $4 < t[$1, $2, $3] { t[$1, $2, $3] = $4 }
    function cell(who, m, b) { return ((who, m, b) in t) ? sprintf("%.3f s", t[who, m, b]) : "-" }
    function ratio(m, b) {
        if (!(("ours", m, b) in t) || !(("torch", m, b) in t) || t["torch", m, b] == 0) return "-"
        return sprintf("%.2fx", t["ours", m, b] / t["torch", m, b])
    }
    END {
        n = split(order, models, " ")
        if (torch) {
            print "| model | ours b10 | PyTorch b10 | ours/PyTorch | ours b50 | PyTorch b50 | ours/PyTorch |"
            print "|---|---:|---:|---:|---:|---:|---:|"
        } else {
            print "| model | ours b10 | ours b50 |"
            print "|---|---:|---:|"
        }
        for (i = 1; i <= n; i++) {
            m = models[i]
            if (torch)
                printf "| %s | %s | %s | %s | %s | %s | %s |\n", m, cell("ours", m, 10), cell("torch", m, 10), ratio(m, 10), cell("ours", m, 50), cell("torch", m, 50), ratio(m, 50)
            else
                printf "| %s | %s | %s |\n", m, cell("ours", m, 10), cell("ours", m, 50)
        }
    }' "$results"
