"""What each per-pixel measure costs against a plain run, measured in one process.

Run from the repository root, with the package installed:

    python docs/scripts/measure_costs.py [--pixels 512] [--steps 300] [--repeats 3]

Trains the same pixels of the paper's baseline tile (no run blows up there, so no early
exit blurs the comparison) through the training system, as a tile does, once per set of
measures: each compiled first, then timed best of --repeats, the sets interleaved in every
repeat. Prints a Markdown table: CPU seconds and wall seconds of the best repeat, and the
cost relative to the plain run by CPU seconds (the per-core figure; docs/performance.md).
"""

import argparse
import time

from fractalsweep import bench, config, streams, systems
from fractalsweep.grid import axis_values

MEASURES = {
    "plain": {},
    "snapshots (5)": {"measures": {"snapshots": [10, 20, 50, 100, 200]}},
    "lyapunov": {"measures": {"lyapunov": True}},
    "ensemble, seeds = 4": {"ensemble": {"seeds": 4}},
    "all: seeds = 4, lyapunov, 5 snapshots": {
        "ensemble": {"seeds": 4},
        "measures": {"lyapunov": True, "snapshots": [10, 20, 50, 100, 200]}},
}


def timed(cfg, arrays, xs, ys) -> tuple[float, float]:
    """CPU and wall seconds of one computation of the pixels."""
    cpu, wall = time.process_time(), time.perf_counter()
    systems.Training.compute(cfg, arrays, xs, ys, kernel="xla")
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=int, default=512)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    base = config.apply_overrides(bench.BASELINE, [f"training.steps={args.steps}"])
    cfgs = {name: config.resolve({**base, **extra}) for name, extra in MEASURES.items()}
    arrays = {name: streams.draw(cfg) for name, cfg in cfgs.items()}
    plain = cfgs["plain"]
    xs = axis_values(plain.x, args.pixels, "float64")
    ys = axis_values(plain.y, args.pixels, "float64")[::-1].copy()
    for name, cfg in cfgs.items():  # compile
        timed(cfg, arrays[name], xs[:8], ys[:8])
    best = {name: (float("inf"), float("inf")) for name in cfgs}
    for _ in range(args.repeats):
        for name, cfg in cfgs.items():
            best[name] = min(best[name], timed(cfg, arrays[name], xs, ys))
    print(f"{args.pixels} pixels x {args.steps} steps, baseline tile, float64, best of "
          f"{args.repeats}\n")
    print("| measures | CPU s | wall s | cost (CPU) |\n|---|---|---|---|")
    for name, (cpu, wall) in best.items():
        print(f"| {name} | {cpu:.2f} | {wall:.2f} | {cpu / best['plain'][0]:.2f}x |")


if __name__ == "__main__":
    main()
