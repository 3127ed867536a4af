"""When a `fractalsweep run` trains and when it does something else (Linux).

    python docs/scripts/run_timeline.py [--resolution 128] [--steps 500] [--every 0.1]

Starts `fractalsweep run jobs/paper/tanh.toml` in a new process (a new store, the default
local cluster, the picture written), samples the use of every core from /proc/stat every
EVERY seconds until it exits, then reads the tiles' provenance (when each finished, how
long its training took, which process ran it) and prints, in seconds from the command's
start: for each worker its first tile's start, its last tile's end, its tiles' training
time (sum and median) and the time between its tiles; then the command's end, and about
how many core-seconds were left idle before the first tile, while tiles ran and after the
last (the samples' idle cores times EVERY).
"""

import argparse
import collections
import datetime
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fractalsweep import store

JOB = Path(__file__).resolve().parents[2] / "jobs" / "paper" / "tanh.toml"


def busy_and_total() -> list[tuple[int, int]]:
    """Per core: (busy, all) jiffies since boot (idle and iowait count as not busy)."""
    with open("/proc/stat") as f:
        rows = [line.split() for line in f if line.startswith("cpu") and line[3] != " "]
    return [(sum(map(int, r[1:])) - int(r[4]) - int(r[5]), sum(map(int, r[1:]))) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--every", type=float, default=0.1)
    args = parser.parse_args()
    path = os.path.join(tempfile.mkdtemp(), "run.zarr")
    t0 = time.time()
    command = subprocess.Popen(
        [sys.executable, "-m", "fractalsweep", "run", str(JOB), "--store", path, "--quiet",
         "--set", f"grid.resolution={args.resolution}", "--set", f"training.steps={args.steps}"],
        stdout=subprocess.DEVNULL)
    idle, previous = [], busy_and_total()  # (seconds since start, idle cores over the sample)
    while command.poll() is None:
        time.sleep(args.every)
        now = busy_and_total()
        idle.append((time.time() - t0, sum(1 - (b - pb) / max(1, t - pt)
                                           for (b, t), (pb, pt) in zip(now, previous))))
        previous = now
    end = time.time() - t0

    level = store.open_level(store.open_root(path), 0)
    tiles = collections.defaultdict(list)  # pid -> (start, end, training seconds)
    for record in store.provenance(level):
        finished = datetime.datetime.fromisoformat(record["finished"]).timestamp() - t0
        tiles[record["pid"]].append((finished - record["seconds"], finished, record["seconds"]))
    for pid, spans in sorted(tiles.items()):
        spans.sort()
        between = sum(max(0.0, b[0] - a[1]) for a, b in itertools.pairwise(spans))
        training = [s[2] for s in spans]
        print(f"worker {pid}: {len(spans)} tiles, first from {spans[0][0]:.2f}, last to "
              f"{spans[-1][1]:.2f}; training {sum(training):.2f} s in all, median "
              f"{statistics.median(training):.3f}; between tiles {between:.2f}")
    first = min(s[0][0] for s in tiles.values())
    last = max(s[-1][1] for s in tiles.values())
    phases = {"before the first tile": (0, first), "while tiles ran": (first, last),
              "after the last tile": (last, end)}
    print(f"command: {end:.2f} s; idle core-seconds " + ", ".join(
        f"{name} {sum(i for t, i in idle if lo < t <= hi) * args.every:.2f}"
        for name, (lo, hi) in phases.items()))


if __name__ == "__main__":
    main()
