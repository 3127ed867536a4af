"""Where the time of a `fractalsweep run` goes: training its pixels, and the fixed costs.

Run from the repository root, with the package installed:

    python docs/scripts/run_breakdown.py [--repeats 2] [--resolution 128] [--steps 500]

First the training alone: the baseline tile's RESOLUTION x RESOLUTION pixels for STEPS steps
in the tile-sized calls (16x16) a worker makes, in one new process with the workers'
environment, pinned to one core and then free to use every core (CPU and wall seconds).
Then the fixed costs, best of --repeats: a whole `fractalsweep run` of a 16x16, 1-step baseline sweep (a
new process, the default local cluster, store and PNG written), the same in-process
(`--scheduler sync`) with and without the PNG; then, in this process, the local cluster's
start, a worker's import of the kernel and the shutdown; and, in new processes pinned to
one core with the workers' environment, the first tile of the 500-step baseline with the
compilation cache empty and full against the second tile (the difference is the compile,
or the cache's load).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

JOB = "jobs/paper/tanh.toml"
TINY = ["--set", "grid.resolution=16", "--set", "training.steps=1", "--quiet"]
SETUP = """
import sys, time
from fractalsweep import api, streams, systems
from fractalsweep.grid import axis_values, flat_pixels
n, steps, job = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
cfg = api.job_config(job, [f"grid.resolution={n}", f"training.steps={steps}"])
xs, ys = flat_pixels(axis_values(cfg.x, n, "float64"), axis_values(cfg.y, n, "float64"))
arrays = streams.draw(cfg)

def tile(i):  # the 16x16 tile from pixel i on, computed as a worker computes it
    systems.Training.compute(cfg, arrays, xs[i:i + 256], ys[i:i + 256], kernel="xla")
"""
TRAINING = SETUP + """
tile(0)
cpu, wall = time.process_time(), time.perf_counter()
for i in range(0, xs.size, 256):
    tile(i)
print(time.process_time() - cpu, time.perf_counter() - wall)
"""
FIRST_TILE = SETUP + """
times = []
for i in (0, 256):
    start = time.perf_counter()
    tile(i)
    times.append(time.perf_counter() - start)
print(times[0] - times[1])
"""


def best(repeats: int, measure) -> float:
    return min(measure() for _ in range(repeats))


def run_seconds(*extra: str) -> float:
    store = os.path.join(tempfile.mkdtemp(), "s.zarr")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fractalsweep", "run", JOB, "--store", store, *TINY,
                    *extra], check=True, capture_output=True)
    return time.perf_counter() - start


def cluster_seconds() -> tuple[float, float, float]:
    from distributed import Client

    from fractalsweep.cluster import local_cluster

    start = time.perf_counter()
    with local_cluster(dashboard_address=":0") as cluster:
        started = time.perf_counter()
        with Client(cluster) as client:
            client.run(lambda: __import__("fractalsweep.kernel"))
            imported = time.perf_counter()
        closing = time.perf_counter()
    return started - start, imported - started, time.perf_counter() - closing


def in_worker_env(code: str, *args: str, cache: str | None = None, pin: bool = True) -> str:
    """The output of ``code`` run in a new process with a CPU worker's environment."""
    from fractalsweep.cluster import worker_env

    env = os.environ | worker_env(None, cache_dir=cache)
    command = [sys.executable, "-c", code, *args]
    return subprocess.run((["taskset", "-c", "0"] if pin else []) + command, env=env,
                          check=True, capture_output=True, text=True).stdout


def compile_seconds(cache: str) -> float:
    return float(in_worker_env(FIRST_TILE, "128", "500", JOB, cache=cache))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    n, work = args.repeats, args.resolution ** 2 * args.steps
    print(f"{os.cpu_count()} cores; training: {args.resolution}x{args.resolution} pixels x "
          f"{args.steps} steps\n")
    print("| training alone, one process | CPU s | wall s | net-steps per CPU-s |\n|---|---|---|---|")
    for name, pin in (("pinned to one core", True), ("free to use every core", False)):
        cpu, wall = map(float, in_worker_env(TRAINING, str(args.resolution), str(args.steps),
                                             JOB, pin=pin).split())
        print(f"| {name} | {cpu:.1f} | {wall:.1f} | {work / cpu:,.0f} |")
    print(f"\nfixed costs, best of {n}\n")
    print("| what | seconds |\n|---|---|")
    print(f"| `run`, 16x16 x 1 step, local cluster | {best(n, run_seconds):.2f} |")
    print(f"| `run`, 16x16 x 1 step, in-process | "
          f"{best(n, lambda: run_seconds('--scheduler', 'sync')):.2f} |")
    print(f"| `run`, 16x16 x 1 step, in-process, no PNG | "
          f"{best(n, lambda: run_seconds('--scheduler', 'sync', '--no-render')):.2f} |")
    parts = [cluster_seconds() for _ in range(n)]
    for i, name in enumerate(("local cluster: start", "a worker imports the kernel",
                              "local cluster: shutdown")):
        print(f"| {name} | {min(p[i] for p in parts):.2f} |")
    cold = best(n, lambda: compile_seconds(tempfile.mkdtemp()))
    warm_cache = tempfile.mkdtemp()
    compile_seconds(warm_cache)
    warm = best(n, lambda: compile_seconds(warm_cache))
    print(f"| first tile minus second, compile cache empty (compile) | {cold:.2f} |")
    print(f"| first tile minus second, compile cache full (load) | {warm:.2f} |")


if __name__ == "__main__":
    main()
