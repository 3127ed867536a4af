"""Whole `fractalsweep run` commands of several checkouts, alternated, for comparing them.

    python docs/scripts/run_alternating.py --rounds 6 --steps 1 OLD NEW

Each round runs, for each checkout in turn (a folder holding a `fractalsweep` package,
put first on PYTHONPATH), `python -m fractalsweep run jobs/paper/tanh.toml` in a new
process with a new store and picture (`--set grid.resolution=RES --set
training.steps=STEPS --quiet`), and times it from start to exit; prints each checkout's
median and every time. With one step the times are the run's fixed costs alone (imports,
the store and its inputs, the cluster, a worker's imports, the tiles' own costs, the
picture). Run it from any folder with the package's dependencies installed; the job file
is the one in this repository.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JOB = Path(__file__).resolve().parents[2] / "jobs" / "paper" / "tanh.toml"


def run_seconds(tree: str, resolution: int, steps: int, folder: str) -> float:
    store = os.path.join(folder, "run.zarr")
    shutil.rmtree(store, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fractalsweep", "run", str(JOB), "--store", store,
                    "--png", os.path.join(folder, "run.png"), "--quiet",
                    "--set", f"grid.resolution={resolution}", "--set", f"training.steps={steps}"],
                   check=True, stdout=subprocess.DEVNULL, cwd=folder,
                   env=dict(os.environ, PYTHONPATH=os.path.abspath(tree)))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", help="checkouts to compare")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--steps", type=int, default=1)
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    times: dict[str, list[float]] = {tree: [] for tree in args.trees}
    for _ in range(args.rounds):
        for tree in args.trees:
            times[tree].append(run_seconds(tree, args.resolution, args.steps, folder))
    for tree, seconds in times.items():
        print(f"{tree}: median {statistics.median(seconds):.2f} s, each "
              + " ".join(f"{s:.2f}" for s in seconds))
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
