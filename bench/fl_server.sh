#!/usr/bin/env bash
# FL server benchmark: Flower 1.42's server vs `dmo fl server`, 50 echo clients,
# a 199,210-parameter model (784-200-200-10 MLP, float32), FedAvg with fit and
# evaluate on every client every round. Scenarios, run one after the other:
#   (a) Flower's server (flwr.server.start_server) + 50 Python clients
#   (b) dmo fl server                              + 50 Python clients
#   (c) dmo fl server                              + 50 Rust clients
# Python clients: threads of one process (bench/echo_clients.py); Rust clients:
# tasks of one process (crates/fl/examples/echo_clients.rs). Everything binds
# to 127.0.0.1. Round 1 is a warm-up: medians and CPU/round cover rounds 2..N.
#
# Usage: bash bench/fl_server.sh
# Environment: ROUNDS (6), CLIENTS (50), TIMEOUT (seconds per scenario, 300),
#              PYTHON (.venv/bin/python), BUILD (1: cargo build first),
#              SCENARIOS ("flower dmo_py dmo_rust").
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-6}
CLIENTS=${CLIENTS:-50}
TIMEOUT=${TIMEOUT:-300}
PYTHON=${PYTHON:-.venv/bin/python}
BUILD=${BUILD:-1}
SCENARIOS=${SCENARIOS:-flower dmo_py dmo_rust}
export FLWR_TELEMETRY_ENABLED=0
export PYTHONUNBUFFERED=1

OUT=$(mktemp -d /tmp/fl_server_bench.XXXXXX)
PGIDS=()

cleanup() {
    # Every background job runs under `timeout`, which leads its own process
    # group: signal the whole group.
    local g
    for g in "${PGIDS[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
    sleep 0.5
    for g in "${PGIDS[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

DMO=target/release/dmo
RUST_CLIENTS=target/release/examples/echo_clients
needed=("$PYTHON")
if [[ " $SCENARIOS " == *" dmo_"* ]]; then
    needed+=("$DMO")
    if [[ "$BUILD" == 1 ]]; then cargo build --release -p dmo; fi
fi
if [[ " $SCENARIOS " == *" dmo_rust "* ]]; then
    needed+=("$RUST_CLIENTS")
    if [[ "$BUILD" == 1 ]]; then cargo build --release -p fl --example echo_clients; fi
fi
for f in "${needed[@]}"; do
    [[ -x "$f" ]] || { echo "missing $f" >&2; exit 1; }
done

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_listening() { # PORT PGID: up to 120 s, while the server is alive
    local i
    for ((i = 0; i < 1200; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# scenario NAME LABEL SERVER(flower|dmo) CLIENTS(python|rust)
scenario() {
    local name=$1 label=$2 server=$3 clients=$4 port addr server_cmd hist=()
    port=$(free_port)
    addr=127.0.0.1:$port
    echo "== $label (127.0.0.1:$port, logs in $OUT/$name.*.log)"
    case $server in
        flower) server_cmd=("$PYTHON" bench/flower_server.py --address "$addr"
                    --rounds "$ROUNDS" --clients "$CLIENTS") ;;
        dmo) hist=(--history "$OUT/$name.history.json")
             server_cmd=("$DMO" fl server --listen "$addr" --rounds "$ROUNDS"
                    --min-available "$CLIENTS" --min-fit "$CLIENTS" --min-evaluate "$CLIENTS"
                    --fraction-fit 1.0 --fraction-evaluate 1.0 "${hist[@]}") ;;
    esac
    timeout -k 5 "$TIMEOUT" "$PYTHON" bench/measure.py run --label "$label" \
        --out "$OUT/$name.json" "${hist[@]}" -- "${server_cmd[@]}" \
        >"$OUT/$name.server.log" 2>&1 &
    local spid=$!
    PGIDS+=("$spid")
    if ! wait_listening "$port" "$spid"; then
        echo "   server did not start; see $OUT/$name.server.log" >&2
        return 1
    fi
    case $clients in
        python) timeout -k 5 "$TIMEOUT" "$PYTHON" bench/echo_clients.py --server "$addr" \
                    --clients "$CLIENTS" >"$OUT/$name.clients.log" 2>&1 & ;;
        rust) timeout -k 5 "$TIMEOUT" "$RUST_CLIENTS" "$addr" "$CLIENTS" \
                    >"$OUT/$name.clients.log" 2>&1 & ;;
    esac
    local cpid=$!
    PGIDS+=("$cpid")
    local rc=0
    wait "$spid" || rc=$?
    # Clients leave on the server's ReconnectIns; give them a few seconds.
    local i
    for ((i = 0; i < 100; i++)); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
    kill -TERM -- "-$cpid" 2>/dev/null || true
    wait "$cpid" 2>/dev/null || true
    grep -E '^\[' "$OUT/$name.server.log" | sed 's/^/   /' || true
    if [[ $rc != 0 ]]; then
        echo "   $label: server run failed (status $rc); see $OUT/$name.server.log" >&2
    fi
}

results=()
for s in $SCENARIOS; do
    case $s in
        flower) scenario flower "Flower 1.42 server + $CLIENTS Python clients" flower python || true ;;
        dmo_py) scenario dmo_py "dmo fl server + $CLIENTS Python clients" dmo python || true ;;
        dmo_rust) scenario dmo_rust "dmo fl server + $CLIENTS Rust clients" dmo rust || true ;;
        *) echo "unknown scenario $s" >&2; exit 2 ;;
    esac
    results+=("$OUT/$s.json")
done

echo
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "Model: 199,210 float32 parameters; $CLIENTS clients; $ROUNDS rounds (round 1 = warm-up)."
echo
"$PYTHON" bench/measure.py table "${results[@]}"
echo
echo "Raw results and logs: $OUT"
