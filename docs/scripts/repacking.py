"""What repacking the kernel's groups as networks blow up saves (fractalsweep.groups).

Run from the repository root, with the package installed, pinned to one core with the
workers' XLA flags:

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \\
        taskset -c 0 python docs/scripts/repacking.py JOB [--resolution 64] [--steps S]
        [--tile 16] [--repeats 3]

Trains the job's RESOLUTION x RESOLUTION pixels in square tiles of TILE x TILE pixels,
one `groups.train` call per tile as a worker makes it (groups of 64 on a CPU), with and
without repacking, alternating, after one warm-up pass of each, and prints the CPU seconds
of every pass. Then counts the network-steps each way would train, as fractions of all
pixels for all steps: from the step at which each network's parameters turn NaN (looked
at every 5 steps), a group of 64 trains until its last network is NaN, and repacked groups
trains as `groups.train` packs them; "each network alone" is the least any grouping could.
"""

import argparse
import time

import jax
import numpy as np

from fractalsweep import api, groups, kernel, streams
from fractalsweep.grid import axis_values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("job")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--tile", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n, side = args.resolution, args.tile
    sets = [f"grid.resolution={n}"] + ([f"training.steps={args.steps}"] if args.steps else [])
    cfg = api.job_config(args.job, sets)
    steps = cfg.training.steps
    x, y = np.meshgrid(axis_values(cfg.x, n, "float64"), axis_values(cfg.y, n, "float64"))
    tiles = [(x[i:i + side, j:j + side].ravel(), y[i:i + side, j:j + side].ravel())
             for i in range(0, n, side) for j in range(0, n, side)]
    kcfg, arrays = kernel.kernel_config(cfg), streams.draw(cfg)

    with jax.enable_x64(True):
        inputs, twin = kernel.prepare(kcfg, arrays), kernel.twin_direction(kcfg, arrays)
        compiled = kernel.compile_kernel(kcfg, True)

        def one_pass(repacking: bool) -> float:
            start = time.process_time()
            for xs, ys in tiles:
                groups.train(compiled, xs, ys, kernel.group_size(), *inputs, twin, steps,
                             repacking=repacking)
            return time.process_time() - start

        one_pass(True), one_pass(False)
        seconds = {True: [], False: []}
        for _ in range(args.repeats):
            for repacking in (False, True):
                seconds[repacking].append(one_pass(repacking))
        nan_from = [nan_steps(compiled, xs, ys, inputs, twin, steps) for xs, ys in tiles]
    print(f"{args.job}, {n}x{n} pixels x {steps} steps, tiles of {side}x{side}")
    for repacking, label in ((False, "groups as they are"), (True, "repacked")):
        print(f"{label}: CPU s {', '.join(f'{s:.2f}' for s in seconds[repacking])}")
    group, everything = kernel.group_size(), n * n * steps
    for label, count in (("each network alone", lambda v: v.sum()),
                         ("groups as they are", lambda v: grouped(v, group)),
                         ("repacked", lambda v: repacked(v, group, steps))):
        print(f"network-steps, {label}: {sum(map(count, nan_from)) / everything:.3f}")


def nan_steps(compiled, xs, ys, inputs, twin, steps, every=5):
    """Per pixel, the first look (every EVERY steps) at which its parameters were NaN, or
    ``steps``: all the pixels trained as one group."""
    weights, data, batch_idx = inputs
    state, nan_from = compiled.start(xs, ys, weights, **twin), np.full(xs.size, steps)
    for t in range(0, steps, every):
        stop = min(t + every, steps)
        state, alive = compiled.advance(state, xs, ys, data, batch_idx, t, stop)
        nan_from = np.where(~np.asarray(alive) & (nan_from == steps), stop, nan_from)
    return nan_from


def grouped(nan_from, group):
    """Network-steps of fixed groups, each training until its last network is NaN."""
    return sum(nan_from[i:i + group].max() * group for i in range(0, nan_from.size, group))


def repacked(nan_from, group, steps):
    """Network-steps of groups repacked as `groups.train` does, each stretch trained whole."""
    members, total, t = [nan_from[i:i + group] for i in range(0, nan_from.size, group)], 0, 0
    while t < steps:
        stop = min(t + groups.SEGMENT, steps) if len(members) > 1 else steps
        total += group * sum(min(stop, m.max()) - t for m in members if m.max() > t)
        t = stop
        live = np.concatenate(members)[np.concatenate(members) > t] if members else []
        if t < steps and len(members) > 1 and -(-len(live) // group) < len(members):
            members = [live[i:i + group] for i in range(0, len(live), group)]
    return total


if __name__ == "__main__":
    main()
