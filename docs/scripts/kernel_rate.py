"""The float64 kernel's rate per CPU-second, for comparing checkouts of fractalsweep.

Run in a checkout's root (this file may live elsewhere), one process per measurement,
pinned to one core with the workers' XLA flags, alternating the checkouts:

    FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    cd OLD && PYTHONPATH=. XLA_FLAGS="$FLAGS" taskset -c 0 python /path/to/kernel_rate.py old
    cd NEW && PYTHONPATH=. XLA_FLAGS="$FLAGS" taskset -c 0 python /path/to/kernel_rate.py new

It times `bench.METHODS["kernel"]` (whatever that checkout's kernel is) on the bench's
baseline tile, 1024 pixels x 100 steps, best of 5 after a warm-up, by `time.process_time`
(all the process's threads), and prints one JSON line labelled with the first argument.
Only what every checkout since the first kernel (2fa4a9a) has is used (that kernel wants
its pixels as JAX arrays; the later ones take those too).
"""

import json
import sys
import time

import jax

from fractalsweep import bench, config, streams

PIXELS, STEPS, REPEATS = 1024, 100, 5


def main() -> None:
    label = sys.argv[1] if len(sys.argv) > 1 else "kernel"
    cfg = config.resolve(config.apply_overrides(bench.BASELINE, [f"training.steps={STEPS}"]))
    arrays = streams.draw(cfg)
    kernel = bench.METHODS["kernel"]
    with jax.enable_x64(True):
        xs, ys = (jax.numpy.asarray(v) for v in bench._pixels(cfg, PIXELS))
        jax.block_until_ready(kernel(cfg, xs, ys, arrays))
        best = float("inf")
        for _ in range(REPEATS):
            start = time.process_time()
            jax.block_until_ready(kernel(cfg, xs, ys, arrays))
            best = min(best, time.process_time() - start)
    print(json.dumps({"tree": label, "kernel_cpu": round(PIXELS * STEPS / best)}))


if __name__ == "__main__":
    main()
