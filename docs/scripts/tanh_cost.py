"""XLA's float64 tanh against the kernel's own (fractalsweep.elementary.tanh64) on a CPU.

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \\
        taskset -c 0 python docs/scripts/tanh_cost.py

Cost: ns per element of a jitted loop of 50 passes ``c <- f(c) / 2 + x`` over 278,528
values (one group's activations: 64 x 16 x 272), compiled with the kernel's XLA options,
best of 5 by CPU time; the row ``x / 2 + x`` is the loop alone. Accuracy: ulps against
mpmath (113 bits) on the 3000 of 3 million samples (every scale a hidden unit sees, and
both sides of each change of the reduction's k) where each function differs most from
NumPy's tanh, and the mean over 4000 random ones.
"""

import time

import jax
import jax.numpy as jnp
import mpmath
import numpy as np

from fractalsweep.elementary import tanh64
from fractalsweep.kernel import COMPILER_OPTIONS

FUNCTIONS = {"XLA tanh": jnp.tanh, "elementary.tanh64": tanh64, "x / 2 + x (loop alone)": None}


def cost(fn, x) -> float:
    def loop(x):
        return jax.lax.fori_loop(0, 50, lambda i, c: (c if fn is None else fn(c)) * 0.5 + x, x)

    run = jax.jit(loop, compiler_options=COMPILER_OPTIONS["cpu"]).lower(x).compile()
    run(x).block_until_ready()
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        run(x).block_until_ready()
        best = min(best, time.process_time() - start)
    return best / 50 / x.size * 1e9


def ulps(values, xs):
    with mpmath.workprec(113):
        exact = np.array([float(mpmath.tanh(mpmath.mpf(float(v)))) for v in xs])
    return np.abs(values - exact) / np.spacing(np.abs(exact))


def main() -> None:
    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=64 * 16 * 272) * 2)
    for name, fn in FUNCTIONS.items():
        print(f"{name:24s} {cost(fn, x):.3f} ns/element")
    edges = (np.arange(-60, 61) + 0.5) * np.log(2) / 2
    xs = np.concatenate([rng.normal(size=400_000) * s for s in (1e-6, 0.01, 0.3, 1, 3, 10)]
                        + [rng.uniform(-21, 21, 400_000),
                           (edges[:, None] + rng.uniform(-1e-6, 1e-6, (edges.size, 2000))).ravel()])
    random = rng.choice(xs.size, 4000, replace=False)
    for name, fn in list(FUNCTIONS.items())[:2]:
        values = np.asarray(jax.jit(fn, compiler_options=COMPILER_OPTIONS["cpu"])(xs))
        numpy = np.tanh(xs)
        worst = np.argsort(np.abs(values - numpy) / np.spacing(np.abs(numpy)))[-3000:]
        print(f"{name:24s} max {ulps(values[worst], xs[worst]).max():.0f} ulp over {xs.size} "
              f"samples, mean {ulps(values[random], xs[random]).mean():.2f} ulp")


if __name__ == "__main__":
    main()
