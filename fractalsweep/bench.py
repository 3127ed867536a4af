"""``fractalsweep bench``: network-steps per second of the kernel against the naive method.

The naive method is the published notebook's: a Python loop of per-step jitted, vmapped
calls over all pixels, with the gradient from autodiff, keeping every loss, scored at the
end. Both run in the same process on the same pixels, so their ratio is meaningful on a
shared, noisy machine. The kernel methods run once per kernel asked for (``xla``,
``pallas``: the fused kernel, ``auto``), so one process compares the XLA and fused kernels
on a GPU. On a CPU the rates are one core's, measured as a local CPU worker trains (in a
process kept to one core from its start, :func:`run`), so cost estimates can scale from
them. Besides wall-clock rates, each row gives the rate per CPU-second of the measuring
process (all its threads), which other processes taking turns on its core disturb less.
Double-double is measured when asked for (``--dtype double-double``): it has one kernel and
no naive method, and its saved rate is what its cost estimates then scale from.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from . import config, ddkernel, kernel, optimizers, score, streams
from .axes import hyper_for
from .cluster import CORE_VARIABLE, worker_env
from .cost import check_memory
from .errors import ConfigError
from .fused import select
from .grid import DOUBLE_DOUBLE, axis_values
from .models import ACTIVATIONS
from .status import figure
from .systems import Training


def _pixels(cfg, n: int):
    """``n`` pixels on the diagonal of the window."""
    xs = axis_values(cfg.x, n, cfg.dtype)
    ys = axis_values(cfg.y, n, cfg.dtype)[::-1]
    return xs, ys.copy()


def notebook_forward(model, params, X):
    """The network as the published notebook writes it: rows are examples, ``h @ W``.

    ``z = h @ W / sqrt(fan_in)`` (divided once more for the output), ``phi(z)``; with the
    other architecture options applied the same way as :class:`~fractalsweep.models.MLP`
    (``params`` are its layers, so ``W`` is ``layer.w.T``). Kept apart from the kernel's
    feature-major pass so that the naive baseline does not change when the kernel does.
    """
    act = ACTIVATIONS[model.activation]
    last = len(params) - 1
    h = X
    for i, (layer, (fan_in, _), skip) in enumerate(zip(params, model.shapes, model.skips())):
        z = h @ layer.w.T
        if model.parameterization == "mean_field":
            z = z / fan_in**0.5 if i < last else z / fan_in**0.5 / fan_in**0.5
        if layer.b is not None:
            z = z + layer.b.T
        if i == last:
            return z
        a = act.fn(act.scale * z)
        h = a + h if skip else a


def naive(cfg, xs, ys, arrays, group=None) -> dict:
    """The published method: one jitted, vmapped step per Python iteration, every loss kept.

    The gradient comes from ``jax.grad`` of :func:`notebook_forward`, not from the kernel's
    hand-written backward pass.
    """
    parts = kernel.Parts.from_config(cfg)
    weights, data, batch_idx = kernel.prepare(cfg, arrays)
    X, Y = data["xt"].T, data["yt"].T

    def loss(params, x, y):
        return parts.task.loss(notebook_forward(parts.model, params, x).T, y.T)

    def one(params, opt_state, hyper, rows):
        params = kernel.shift(params, hyper.shift)
        if rows is None:
            full, grads = jax.value_and_grad(loss)(params, X, Y)
        else:
            full = loss(params, X, Y)
            grads = jax.grad(loss)(params, X[rows], Y[rows])
        params, opt_state = optimizers.update(parts.optimizer, params, grads, opt_state, hyper)
        return params, opt_state, full

    hyper = jax.vmap(lambda x, y: hyper_for(cfg, x, y))(jnp.asarray(xs), jnp.asarray(ys))
    params, opt_state = jax.vmap(partial(kernel.net_init, parts), in_axes=(None, 0))(weights,
                                                                                     hyper)
    batched = jax.jit(jax.vmap(one, in_axes=(0, 0, 0, None)))
    losses = []
    for t in range(cfg.training.steps):
        rows = None if batch_idx is None else batch_idx[t]
        params, opt_state, loss_t = batched(params, opt_state, hyper, rows)
        losses.append(loss_t)
    return jax.vmap(score.from_losses)(jnp.stack(losses, axis=1))


def kernel_method(cfg, xs, ys, arrays, group=None, kernel="auto", early_exit=True) -> dict:
    """The fractalsweep kernel ``kernel`` chooses on the same pixels (``group`` networks per call);
    for double-double, its one kernel (:meth:`~fractalsweep.systems.Training.runs`)."""
    return Training.runs(cfg, arrays, xs, ys, kernel, group, early_exit)


def kernel_method_without_exit(cfg, xs, ys, arrays, group=None, kernel="auto") -> dict:
    """The kernel training every network for every step (no early exit on NaN)."""
    return kernel_method(cfg, xs, ys, arrays, group, kernel, early_exit=False)


METHODS = {"naive": naive, "kernel": kernel_method,
           "kernel-no-exit": kernel_method_without_exit}


def _kernels(method: str, cfg, kernels) -> tuple:
    """The kernels a method is measured with, ``auto`` resolved and each once (None: the
    naive method, which uses none, and double-double, which has one)."""
    if method == "naive" or cfg.dtype == DOUBLE_DOUBLE:
        return (None,)
    return tuple(dict.fromkeys(select(cfg, k) for k in kernels))


def _rate(fn, n: int, steps: int, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` network-steps per wall second and per CPU second of the process,
    after one warm-up (compile) call."""
    jax.block_until_ready(fn())
    best_wall = best_cpu = np.inf
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn())
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return n * steps / best_wall, n * steps / best_cpu


# The paper's baseline tile (docs/paper.md): tanh, full batch, learning rates of both layers.
BASELINE = {"x": {"lo": "13.29976231", "hi": "13.29978604"},
            "y": {"lo": "200.3582269", "hi": "200.3585844"}}


def default_pixels(group: int | None = None, dtype: str = "float64") -> int:
    """Networks a bench trains unless told: 1024 rounded up to whole calls of the kernel
    (``group`` networks, default the device's: 16384 on a GPU), since a call pads its pixels
    to a whole group and the padding would be timed as work; in double-double, some 80 times
    slower, 64, or its one call where that holds more (1024 on a GPU).

    >>> default_pixels(64), default_pixels(100), default_pixels(16384)
    (1024, 1100, 16384)
    >>> default_pixels(dtype="double-double")
    64
    """
    calls = _calls(group, dtype)
    return calls * -(-(64 if dtype == DOUBLE_DOUBLE else 1024) // calls)


def _calls(group: int | None, dtype: str) -> int:
    """Networks per kernel call: double-double's own group, else ``group`` or the device's."""
    if dtype == DOUBLE_DOUBLE:
        return kernel.group_size(table=ddkernel.GROUP)
    return group or kernel.group_size()


def run(pixels: int | None = None, steps: int = 100, repeats: int = 3, job: dict = BASELINE,
        group: int | None = None, dtypes=("float64", "float32"), methods=tuple(METHODS),
        kernels=("auto",)) -> list:
    """Measure ``methods`` for each dtype; returns one row per (dtype, method, kernel).

    ``pixels`` defaults to :func:`default_pixels` of each dtype. ``group`` is the kernel's
    networks per call (default: the device's choice); ``naive`` always trains all pixels at
    once. The kernel methods run with each of ``kernels``
    (:data:`fractalsweep.execution.KERNELS`); a row names the kernel that ran (``auto``
    resolved; none for double-double, which has one kernel and no naive method) and, on a
    CPU, the ``core`` it ran on.

    On a CPU the measurement runs in a process that may use one core only: this one if so,
    else a new one started as a local CPU worker is (:func:`_in_worker`). XLA's CPU client
    sizes its threads to the cores its process may use when it starts, and one started with
    two spreads the kernel's calls over them: on the 2-core development machine it trained
    at 77k net-steps per CPU-second unpinned and 84k pinned after its start, against 95k in
    a process kept to one core from the start, as a worker is (docs/performance.md).
    """
    if DOUBLE_DOUBLE in dtypes and set(methods) <= {"naive"}:
        raise ConfigError("bench: the naive method is float64 and float32 only; measure "
                          "double-double with --method kernel or kernel-no-exit")
    if DOUBLE_DOUBLE in dtypes and group is not None:
        raise ConfigError(f"bench: --group {group} sets the float64 and float32 kernel's "
                          f"networks per call; double-double's kernel has its own "
                          f"({_calls(None, DOUBLE_DOUBLE)}): measure it without --group")
    kind = config.resolve(job).system.kind
    if kind != "training":
        raise ConfigError(f"bench: system.kind = {kind!r} trains no network; the bench times "
                          "training runs (system.kind = 'training')")
    for dtype in dtypes:  # refused here, as one line, rather than in the measuring process
        _check(config.resolve(_job(job, dtype, steps)), pixels, group, methods)
    spec = {"pixels": pixels, "steps": steps, "repeats": repeats,
            "job": job, "group": group, "dtypes": list(dtypes), "methods": list(methods),
            "kernels": list(kernels)}
    cores = (os.sched_getaffinity(0) if jax.devices()[0].platform == "cpu"
             and hasattr(os, "sched_getaffinity") else set())
    if len(cores) > 1:
        return _in_worker(min(cores), spec)
    core = min(cores) if len(cores) == 1 else None  # the measuring process's only core
    return [row | {"core": core} for row in _measure(**spec)]


def _measure(pixels, steps, repeats, job, group, dtypes, methods, kernels) -> list:
    """:func:`run`'s rows, measured in this process."""
    rows = []
    for dtype in dtypes:
        measured = _job(job, dtype, steps)
        cfg = config.resolve(measured)
        arrays = streams.draw(cfg)
        n = pixels or default_pixels(group, dtype)
        xs, ys = _pixels(cfg, n)
        rates = {}
        for name in methods:
            if name == "naive" and dtype == DOUBLE_DOUBLE:
                continue  # the published method is float64
            for chosen in _kernels(name, cfg, kernels):
                kwargs = {} if chosen is None else {"kernel": chosen}
                fn = partial(METHODS[name], cfg, xs, ys, arrays, group, **kwargs)
                with jax.enable_x64(True):
                    rates[name, chosen] = _rate(fn, n, steps, repeats)
        base = rates.get(("naive", None), (None,))[0]
        calls = _calls(group, dtype)
        rows += [{"dtype": dtype, "method": name, "kernel": chosen, "job": measured,
                  "group": None if name == "naive" else calls,
                  "net_steps_per_s": wall, "net_steps_per_cpu_s": cpu,
                  "ratio": None if base is None else wall / base}  # null in JSON, not NaN
                 for (name, chosen), (wall, cpu) in rates.items()]
    return rows


def _check(cfg: config.SweepConfig, pixels: int | None, group: int | None, methods) -> None:
    """Refuse pixels that fill the kernel's last call only in part (its padding would be timed
    as work, not counted: 1 pixel in a call of 64 read as 2k net-steps/s, and was saved for
    cost estimates), and networks that cannot all fit in memory at once."""
    calls = _calls(group, cfg.dtype)
    n = pixels or default_pixels(group, cfg.dtype)
    kernels = [name for name in methods if name != "naive"]
    if kernels and n % calls:
        which = "double-double's kernel" if cfg.dtype == DOUBLE_DOUBLE else "--group"
        raise ConfigError(f"bench: {n} pixels fill kernel calls of {calls} networks ({which}) "
                          f"in part, and the padding would be timed as work; give --pixels a "
                          f"multiple of {calls}, e.g. {calls * -(-n // calls)}")
    check_memory(cfg, max([calls] * bool(kernels) + [n] * ("naive" in methods)))


# What the bench sets itself, with the option that does: a job's own are replaced
OWN_KEYS = {"dtype": "--dtype", "training.steps": "--steps", "grid": "--pixels"}


def _job(job: dict, dtype: str, steps: int) -> dict:
    """The job measured: ``job`` with the bench's ``dtype`` and ``steps`` (what a row records)."""
    return config.apply_overrides(job, [f"dtype='{dtype}'", f"training.steps={steps}"])


def _in_worker(core: int, spec: dict) -> list:
    """:func:`run`'s rows for ``spec``, measured in a new process with a local CPU worker's
    environment (:func:`~fractalsweep.cluster.worker_env`) kept to ``core``
    (:func:`_worker`).

    Raises
    ------
    ConfigError
        What the new process refused of ``spec`` (a bad setting of the job), as one line.
    """
    root = str(Path(__file__).resolve().parents[1])  # this fractalsweep, whatever the cwd
    code = (f"import sys; sys.path.insert(0, {root!r}); "
            "from fractalsweep import bench; bench._worker()")
    done = subprocess.run([sys.executable, "-c", code], input=json.dumps(spec),
                          capture_output=True, text=True,
                          env=os.environ | worker_env(None, core=core))
    lines = done.stderr.strip().splitlines() or ["no message"]
    if done.returncode == 2:
        raise ConfigError(lines[-1])
    if done.returncode:  # name the exception, not a note printed after it (as JAX's)
        errors = [line for line in lines if re.match(r"[\w.]+(Error|Exception): ", line)]
        raise RuntimeError(f"the bench's process on core {core} failed: {(errors or lines)[-1]}")
    return json.loads(done.stdout)


def _worker() -> None:
    """The process :func:`_in_worker` starts: kept to its core before JAX starts its CPU
    client, it measures the spec read from stdin and writes the rows to stdout."""
    os.sched_setaffinity(0, {int(os.environ[CORE_VARIABLE])})
    try:
        rows = run(**json.load(sys.stdin))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
    json.dump(rows, sys.stdout)


def table(rows: list[dict]) -> str:
    """The rows as an aligned text table; the fused kernel's rows off a GPU are marked, as
    its interpreted rate says nothing of its speed (beside XLA's, one would read as one)."""
    from .measurements import interpreted

    header = (f"{'dtype':13} {'method':15} {'kernel':7} {'group':>6} {'net-steps/s':>12} "
              f"{'per CPU-s':>10} {'vs naive':>9}")
    lines = [header]
    marked = [interpreted(r) for r in rows]
    lines += [f"{r['dtype']:13} {r['method']:15} {(r['kernel'] or '-') + '*' * m:7} "
              f"{r['group'] or '-':>6} "
              f"{figure(r['net_steps_per_s']):>12} {figure(r['net_steps_per_cpu_s']):>10} "
              + (f"{r['ratio']:>8.2f}x" if r["ratio"] is not None else f"{'-':>9}")
              for r, m in zip(rows, marked)]
    if any(marked):
        lines.append("* interpreted off a GPU (Pallas' interpret mode, for tests): a rate that "
                     "says nothing of the fused kernel's speed, and is not saved")
    core = rows[0]["core"] if rows else None
    if core is not None:
        lines.append(f"on core {core} alone, as one local CPU worker trains (a local cluster "
                     "has a worker per core)")
    return "\n".join(lines)
