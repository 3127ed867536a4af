"""What the double-double kernel's group size costs on a window, measured in one process.

Run from the repository root, with the package installed, on one core:

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \\
        taskset -c 1 python docs/scripts/doubledouble_groups.py jobs/paper/relu.toml \\
        [--resolution 8] [--steps 200] [--groups 2 4 16] [--rounds 2]

Trains the job's window (resolution x resolution pixels) in double-double with each group
size (``ddkernel.GROUP``, networks per call: a call trains until its last network has NaN
parameters), each compiled first, then the sizes alternated for ``--rounds``, and prints the
CPU seconds of each (the figure on a CPU, pinned to one core) and its wall seconds (on a
GPU), with the fraction of runs that diverged.
"""

import argparse
import time

import numpy as np

import fractalsweep as fs
from fractalsweep import ddkernel, streams
from fractalsweep.grid import DOUBLE_DOUBLE, axis_values, flat_pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("job")
    parser.add_argument("--resolution", type=int, default=8)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--groups", type=int, nargs="+", default=[2, 4, 16])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    cfg = fs.job_config(args.job, [f"training.steps={args.steps}", f"dtype='{DOUBLE_DOUBLE}'"])
    arrays = streams.draw(cfg)
    xs, ys = flat_pixels(axis_values(cfg.x, args.resolution, DOUBLE_DOUBLE),
                         axis_values(cfg.y, args.resolution, DOUBLE_DOUBLE))
    seconds = {group: [] for group in args.groups}  # (CPU, wall) per round
    for group in seconds:  # compile each
        ddkernel.GROUP = dict.fromkeys(ddkernel.GROUP, group)
        ddkernel.train(cfg, arrays, xs[:group], ys[:group])
    for _ in range(args.rounds):
        for group, times in seconds.items():
            ddkernel.GROUP = dict.fromkeys(ddkernel.GROUP, group)
            start, wall = time.process_time(), time.perf_counter()
            out = ddkernel.train(cfg, arrays, xs, ys)
            times.append((time.process_time() - start, time.perf_counter() - wall))
    print(f"{args.job}: {args.resolution}x{args.resolution} pixels, {args.steps} steps, "
          f"{np.mean(out['score'] > 0):.0%} diverged")
    for group, times in seconds.items():
        print(f"group {group:5}: " + ", ".join(f"{cpu:.1f} CPU s ({wall:.1f} s wall)"
                                             for cpu, wall in times))


if __name__ == "__main__":
    main()
