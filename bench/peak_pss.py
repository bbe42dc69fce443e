"""Runs a command and samples the memory of its whole process tree.

  peak_pss.py OUT.json -- CMD ARGS...

Every 0.5 s it sums the PSS (`/proc/PID/smaps_rollup`) of the command and
all its descendants (Ray's daemons and workers, our host processes) and
counts their open files; at exit it writes
{"wall_s", "peak_pss_mib", "peak_processes", "peak_fds", "status"} to
OUT.json. The command's output passes through.
"""
import json
import os
import subprocess
import sys
import time


def children():
    """Parent pid -> child pids, for every process now."""
    tree = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(root):
    tree, out, todo = children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(tree.get(pid, []))
    return out


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def main():
    out, cmd = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd)
    peak = {"pss": 0, "procs": 0, "fds": 0}
    while proc.poll() is None:
        pids = descendants(proc.pid)
        peak["pss"] = max(peak["pss"], sum(pss_kib(p) for p in pids))
        peak["procs"] = max(peak["procs"], len(pids))
        peak["fds"] = max(peak["fds"], sum(fds(p) for p in pids))
        time.sleep(0.5)
    result = {
        "wall_s": round(time.perf_counter() - started, 2),
        "peak_pss_mib": round(peak["pss"] / 1024),
        "peak_processes": peak["procs"],
        "peak_fds": peak["fds"],
        "status": proc.returncode,
    }
    with open(out, "w") as f:
        json.dump(result, f)
    print(json.dumps(result), file=sys.stderr)
    sys.exit(proc.returncode)


main()
