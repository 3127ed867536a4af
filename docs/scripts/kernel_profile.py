"""Where a step of the float64 kernel goes, op by op (XLA's fused operations).

Run from the repository root, with the package installed, pinned to one core with the
workers' XLA flags:

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \\
        taskset -c 0 python docs/scripts/kernel_profile.py [--steps 200]

One group (64 networks) of the baseline tile (jobs/paper/tanh.toml) is trained for STEPS
steps under `jax.profiler`, after a warm-up call; prints each operation's time per
network-step, largest first. The names are XLA's (`ynn_fusion` is a matrix product).
"""

import argparse
import collections
import glob
import gzip
import json
import tempfile

import jax

from fractalsweep import api, kernel, streams
from fractalsweep.grid import axis_values, flat_pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    cfg = api.job_config("jobs/paper/tanh.toml", ["grid.resolution=8",
                                                  f"training.steps={args.steps}"])
    xs, ys = flat_pixels(axis_values(cfg.x, 8, "float64"), axis_values(cfg.y, 8, "float64"))
    kcfg = kernel.kernel_config(cfg)
    folder = tempfile.mkdtemp()
    with jax.enable_x64(True):
        weights, data, batch_idx = kernel.prepare(kcfg, streams.draw(cfg))
        group = kernel.compile_kernel(kcfg, False)

        def run():
            return group.advance(group.start(xs, ys, weights), xs, ys, data, batch_idx, 0,
                                 args.steps)

        jax.block_until_ready(run())
        with jax.profiler.trace(folder, create_perfetto_trace=True):
            jax.block_until_ready(run())
    with gzip.open(glob.glob(f"{folder}/**/*.trace.json.gz", recursive=True)[0]) as file:
        trace = json.load(file)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    micros, calls = collections.Counter(), collections.Counter()
    for event in events:
        if event.get("ph") == "X":
            micros[event["name"]] += event["dur"]
            calls[event["name"]] += 1
    per_step = xs.size * args.steps
    loop = max(us for name, us in micros.items() if name.startswith("while"))
    print(f"training loop: {loop / per_step:.2f} us per network-step")
    print("| operation | us per network-step | share |")
    print("|---|---|---|")
    for name, us in micros.most_common():
        # the loop body's own operations (the thunk executor is their container)
        if (calls[name] >= args.steps and not name.startswith("ThunkExecutor")
                and us / per_step >= 0.01):
            print(f"| {name} | {us / per_step:.3f} | {us / loop:.0%} |")


if __name__ == "__main__":
    main()
