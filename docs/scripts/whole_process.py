"""The whole `fractalsweep run` against the published notebook's method, on the same pixels.

Run from the repository root, with the package installed:

    python docs/scripts/whole_process.py [--resolution 128] [--steps 500]

The notebook's method (a Python loop of one jitted, vmapped training step per call over all
pixels, every loss kept, scored at the end: `fractalsweep.bench.naive`) trains the paper's
baseline tile at RESOLUTION x RESOLUTION pixels for STEPS steps in this process; then
`fractalsweep run` computes the same sweep as a user would start it (a new process, a local
cluster of one worker per core, store and picture written), first with JAX's compilation
cache emptied, then with it warm. Prints the times and the ratios.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import jax

from fractalsweep import api, bench, streams
from fractalsweep.cluster import default_cache_dir
from fractalsweep.grid import axis_values, flat_pixels

JOB = "jobs/paper/tanh.toml"


def notebook_seconds(resolution: int, steps: int) -> float:
    cfg = api.job_config(JOB, [f"grid.resolution={resolution}", f"training.steps={steps}"])
    xs, ys = flat_pixels(axis_values(cfg.x, resolution, "float64"),
                         axis_values(cfg.y, resolution, "float64"))
    arrays = streams.draw(cfg)
    start = time.perf_counter()
    with jax.enable_x64(True):
        jax.block_until_ready(bench.naive(cfg, xs, ys, arrays))
    return time.perf_counter() - start


def run_seconds(resolution: int, steps: int, folder: str) -> float:
    store = os.path.join(folder, f"run-{time.monotonic_ns()}.zarr")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fractalsweep", "run", JOB, "--store", store,
                    "--set", f"grid.resolution={resolution}", "--set", f"training.steps={steps}",
                    "--quiet"], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    work = args.resolution ** 2 * args.steps
    folder = tempfile.mkdtemp()
    shutil.rmtree(default_cache_dir(), ignore_errors=True)
    cold = run_seconds(args.resolution, args.steps, folder)
    warm = run_seconds(args.resolution, args.steps, folder)
    notebook = notebook_seconds(args.resolution, args.steps)
    print(f"{args.resolution}x{args.resolution} pixels x {args.steps} steps = {work:.3g} "
          f"network-steps, {os.cpu_count()} cores")
    print("| method | seconds | network-steps/s | vs notebook |")
    print("|---|---|---|---|")
    for name, seconds in (("notebook method (this process)", notebook),
                          ("fractalsweep run, compile cache empty", cold),
                          ("fractalsweep run, compile cache warm", warm)):
        print(f"| {name} | {seconds:.1f} | {work / seconds:,.0f} | {notebook / seconds:.1f}x |")


if __name__ == "__main__":
    main()
