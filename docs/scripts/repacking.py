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
at every 5 steps), what `groups.train` asks of the kernel with and without repacking (a
group trains until its last network is NaN or its stretch ends); "each network alone" is
the least any grouping could.
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
                         ("groups as they are", lambda v: asked(v, group, steps, False)),
                         ("repacked", lambda v: asked(v, group, steps, True))):
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


class Counted:
    """A stand-in for the compiled group functions whose networks turn NaN at known steps
    (``nan_from``, indexed by the "pixel values" it is given): `groups.train` packs and
    repacks them as it packs real ones, and this counts the network-steps it asks for, a
    group training until its last network is NaN or the stretch ends."""

    def __init__(self, nan_from, group: int):
        self.nan_from, self.group, self.steps = nan_from, group, 0

    def start(self, xs, ys, weights):
        return self.nan_from[np.asarray(xs, int)]

    def advance(self, nan, xs, ys, data, batch_idx, t, stop):
        self.steps += self.group * max(0, min(stop, int(np.max(nan))) - t)
        return nan, np.asarray(nan) > stop

    def finish(self, nan, data, t):
        return {"nan_from": nan}


def asked(nan_from, group, steps, repacking: bool) -> int:
    """Network-steps `groups.train` asks of the kernel for one tile, from its pixels' NaN steps."""
    counted = Counted(nan_from, group)
    ids = np.arange(nan_from.size)
    groups.train(counted, ids, ids, group, None, None, None, {}, steps, repacking=repacking)
    return counted.steps


if __name__ == "__main__":
    main()
