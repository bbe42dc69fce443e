"""Runs an FL server process and measures it; prints the comparison table.

  measure.py run --label L --out R.json [--history H.json] -- CMD ARGS...
      Starts CMD, reads its stdout, and at each round-end line samples the
      process's CPU time (utime+stime from /proc/PID/stat). Round-end lines
      are ours (`round K/N ...`) or bench/flower_server.py's
      (`ROUND K/N SECONDS ...`). Round wall times come from the --history JSON
      (ours) or from the ROUND lines (Flower's). At exit, wait4() gives the
      process's total CPU time and peak RSS (ru_maxrss, i.e. VmHWM).
      Round 1 is a warm-up: medians and CPU per round cover rounds 2..N.

  measure.py table R1.json R2.json ...
      Prints the results as a Markdown table.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import time

WARMUP = 1
OURS = re.compile(r"^round (\d+)/(\d+)\b")
FLOWER = re.compile(r"^ROUND (\d+)/(\d+) ([0-9.]+)")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime+stime of the whole process (works on a zombie too), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def run(argv):
    opts = {}
    while argv and argv[0] != "--":
        key, value = argv[0], argv[1]
        opts[key.lstrip("-")] = value
        argv = argv[2:]
    cmd = argv[1:]
    label = opts["label"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1)
    cpu_at_end = {}
    durations = {}
    planned = None
    started = time.perf_counter()
    for line in proc.stdout:
        cpu = cpu_seconds(proc.pid)
        print(f"[{label}] {line.rstrip()}", flush=True)
        m = OURS.match(line) or FLOWER.match(line)
        if not m:
            continue
        k, planned = int(m.group(1)), int(m.group(2))
        cpu_at_end[k] = cpu
        if m.re is FLOWER:
            durations[k] = float(m.group(3))
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if "history" in opts:
        with open(opts["history"]) as f:
            for r in json.load(f)["rounds"]:
                durations[r["round"]] = r["duration_s"]
    rounds = sorted(durations)
    measured = [k for k in rounds if k > WARMUP]
    first, last = WARMUP, max(cpu_at_end, default=0)
    cpu_per_round = None
    if last > first and cpu_at_end.get(first) is not None and cpu_at_end.get(last) is not None:
        cpu_per_round = (cpu_at_end[last] - cpu_at_end[first]) / (last - first)
    result = {
        "label": label,
        "command": cmd,
        "exit_status": os.waitstatus_to_exitcode(status),
        "rounds_planned": planned,
        "rounds_completed": len(rounds),
        "round_durations_s": [durations[k] for k in rounds],
        "median_round_s": statistics.median([durations[k] for k in measured]) if measured else None,
        "cpu_per_round_s": cpu_per_round,
        "cpu_total_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "wall_s": wall,
    }
    with open(opts["out"], "w") as f:
        json.dump(result, f, indent=2)
    ok = result["exit_status"] == 0 and planned is not None and len(rounds) == planned
    return 0 if ok else 1


def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def table(paths):
    results = []
    for p in paths:
        try:
            with open(p) as f:
                results.append(json.load(f))
        except (OSError, ValueError) as e:
            print(f"(no result in {p}: {e})")
    base = next((r for r in results if r["label"].startswith("Flower")), None)
    print(f"| server + clients | rounds | median round (s, rounds 2-N) | server CPU / round (s) "
          f"| server CPU total (s) | server peak RSS (MiB) | CPU vs Flower | RSS vs Flower |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        cpu_x = rss_x = "-"
        if base is not None and r is not base:
            if r["cpu_per_round_s"] and base["cpu_per_round_s"]:
                cpu_x = f"{base['cpu_per_round_s'] / r['cpu_per_round_s']:.1f}x less"
            elif base["cpu_per_round_s"]:
                cpu_x = "< 1 tick"
            rss_x = f"{base['peak_rss_mib'] / r['peak_rss_mib']:.1f}x less"
        print(f"| {r['label']} | {r['rounds_completed']}/{r['rounds_planned']} "
              f"| {fmt(r['median_round_s'], '.3f')} | {fmt(r['cpu_per_round_s'], '.3f')} "
              f"| {r['cpu_total_s']:.2f} | {r['peak_rss_mib']:.1f} | {cpu_x} | {rss_x} |")
    return 0


if __name__ == "__main__":
    mode, rest = sys.argv[1], sys.argv[2:]
    sys.exit(run(rest) if mode == "run" else table(rest))
