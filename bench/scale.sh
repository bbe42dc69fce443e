#!/usr/bin/env bash
# Scale benchmark (issue 18), one table from one go:
#   ours    `dmo run scenarios/scale-1000.yaml`: 1,000 clients in cohorts
#           [500, 250, 250], four campus processes, Fashion-MNIST IID, MLP,
#           lr 0.05, batch 32, 1 local epoch, fraction fit 0.5, 5 rounds,
#           central evaluation (release build)
#   flower  (FLOWER=1 only) Flower 1.42's simulation engine (Ray, PyTorch
#           clients) on the same setup over 1,000 clients: bench/flower_sim.py
#           in a venv it creates at bench/.venv-flower (flwr[simulation]==1.42.0
#           and torch from PyPI, several GB; never in CI)
#   server  `dmo fl server` with ECHO_CLIENTS (10,000) connected echo clients
#           on a logreg-sized model (7,850 parameters), 3 rounds
# Wall time and peak PSS cover each command's whole process tree
# (bench/peak_pss.py).
#
# Usage: bash bench/scale.sh           (ours + server)
#        FLOWER=1 bash bench/scale.sh  (and Flower's simulation)
# Environment: ECHO_CLIENTS (10000), SCENARIO (scenarios/scale-1000.yaml),
#              FLOWER_VENV (bench/.venv-flower: a venv with flwr[simulation] and torch),
#              BUILD (1: cargo build --release first), PARTS ("ours server").
set -euo pipefail
cd "$(dirname "$0")/.."

ECHO_CLIENTS=${ECHO_CLIENTS:-10000}
SCENARIO=${SCENARIO:-scenarios/scale-1000.yaml}
BUILD=${BUILD:-1}
PARTS=${PARTS:-ours server}
if [[ "${FLOWER:-0}" == 1 ]]; then PARTS="$PARTS flower"; fi
OUT=$(mktemp -d /tmp/scale_bench.XXXXXX)
DMO=target/release/dmo
ECHO=target/release/examples/echo_clients
PY=python3
# Ten thousand connections each way: raise the open-file limit (root's
# hard limit allows it) for this shell and what it starts.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [[ "$BUILD" == 1 ]]; then
    cargo build --release -p dmo
    cargo build --release -p fl --example echo_clients
fi

if [[ " $PARTS " == *" ours "* ]]; then
    echo "== ours: $DMO run $SCENARIO"
    $PY bench/peak_pss.py "$OUT/ours.json" -- "$DMO" run "$SCENARIO" --out "$OUT/ours" --security off
fi

if [[ " $PARTS " == *" flower "* ]]; then
    VENV=${FLOWER_VENV:-bench/.venv-flower}
    if [[ ! -x "$VENV/bin/python" ]]; then
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q "flwr[simulation]==1.42.0" numpy torch
    fi
    echo "== flower: $VENV/bin/python bench/flower_sim.py"
    $PY bench/peak_pss.py "$OUT/flower.json" -- "$VENV/bin/python" bench/flower_sim.py \
        --clients 1000 --rounds 5 | tee "$OUT/flower.log" | grep -E "^ROUND" || true
fi

if [[ " $PARTS " == *" server "* ]]; then
    echo "== server: $DMO fl server + $ECHO_CLIENTS echo clients (logreg-sized model)"
    addr=127.0.0.1:6999
    "$DMO" fl server --listen "$addr" --rounds 3 --fraction-fit 1 --min-fit "$ECHO_CLIENTS" \
        --min-available "$ECHO_CLIENTS" --fraction-evaluate 0 --history "$OUT/server.history.json" \
        --round-timeout 600 --wait-timeout 600 > "$OUT/server.log" 2>&1 &
    server=$!
    sleep 1
    "$ECHO" "$addr" "$ECHO_CLIENTS" logreg > "$OUT/echo.log" 2>&1 &
    echo_pid=$!
    $PY - "$server" "$OUT/server.json" <<'PY'
import json, os, sys, time
pid, out = int(sys.argv[1]), sys.argv[2]
tick = os.sysconf("SC_CLK_TCK")
peak_rss = peak_fds = 0
cpu = 0.0
while os.path.exists(f"/proc/{pid}"):
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            break
        cpu = (int(fields[11]) + int(fields[12])) / tick
    except (OSError, StopIteration):
        break
    peak_rss, peak_fds = max(peak_rss, rss), max(peak_fds, fds)
    time.sleep(0.2)
json.dump({"peak_rss_mib": round(peak_rss / 1024), "peak_fds": peak_fds, "cpu_s": cpu}, open(out, "w"))
PY
    wait "$server" || echo "server exited with $?"
    kill "$echo_pid" 2>/dev/null || true
    wait "$echo_pid" 2>/dev/null || true
fi

$PY - "$OUT" "$ECHO_CLIENTS" <<'PY'
import json, os, statistics, sys
out, echo_clients = sys.argv[1], int(sys.argv[2])
def load(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None
rows = []
ours = load("ours.json")
if ours:
    s = json.load(open(os.path.join(out, "ours", "summary.json")))
    durations = [r["duration_s"] for j in s["jobs"] for r in j["rounds"]]
    accs = [" / ".join(f"{r['accuracy']:.3f}" for r in j["rounds"]) for j in s["jobs"]]
    rows.append(("dmo run scale-1000 (3 cohorts, 1,000 clients)", ours["wall_s"], ours["peak_pss_mib"],
                 ours["peak_processes"], statistics.median(durations), "; ".join(accs)))
flower = load("flower.json")
if flower:
    lines = [l.split() for l in open(os.path.join(out, "flower.log")) if l.startswith("ROUND")]
    rows.append(("Flower 1.42 simulation (Ray, PyTorch; 1,000 clients)", flower["wall_s"],
                 flower["peak_pss_mib"], flower["peak_processes"],
                 statistics.median(float(l[2]) for l in lines),
                 " / ".join(f"{float(l[3]):.3f}" for l in lines)))
if rows:
    print("\n| run | wall s | peak PSS MiB | processes | median round s | accuracy per round |")
    print("|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.1f} | {r[2]} | {r[3]} | {r[4]:.2f} | {r[5]} |")
if ours and flower:
    print(f"\nours / Flower: wall {ours['wall_s'] / flower['wall_s']:.2f}x, "
          f"memory {ours['peak_pss_mib'] / flower['peak_pss_mib']:.2f}x")
server = load("server.json")
if server:
    h = json.load(open(os.path.join(out, "server.history.json")))
    rounds = h.get("rounds", [])
    fit = [r["fit"]["duration_s"] for r in rounds]
    done = [r["fit"]["completed"] for r in rounds]
    n = len(rounds)
    print(f"\n| dmo fl server, {echo_clients} echo clients, logreg | value |\n|---|---:|")
    print(f"| rounds completed | {n} |")
    print(f"| clients completed per round | {', '.join(map(str, done))} |")
    if fit:
        print(f"| median fit round s | {statistics.median(fit):.2f} |")
    print(f"| peak server RSS MiB | {server['peak_rss_mib']} |")
    print(f"| server RSS per client KiB | {server['peak_rss_mib'] * 1024 / echo_clients:.1f} |")
    if n:
        print(f"| server CPU per client per round ms | {server['cpu_s'] * 1000 / echo_clients / n:.3f} |")
    print(f"| peak server file descriptors | {server['peak_fds']} |")
print(f"\nresults in {out}")
PY
