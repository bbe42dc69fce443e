#!/usr/bin/env bash
# Times one local epoch per model at batch 10 and 50 (see examples/train_epoch.rs).
# Usage: crates/ml/bench/train_epoch.sh [THREADS] [EXAMPLES] [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/../../.."
exec cargo run -q -p ml --example train_epoch -- "$@"
