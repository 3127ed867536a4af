"""The sweep kernel: trains one network per pixel, a group of networks per jitted call.

It composes small pure pieces: the task (data, loss and its gradient), the model (forward
and hand-written backward pass, :mod:`fractalsweep.models`), the optimizer (update rule),
the axes (how a pixel's two values become its :class:`~fractalsweep.axes.Hyper`) and the
score (online reduction of the loss sequence). :func:`net_step` is one training step of
one network; :func:`make_group_run` trains a group of networks with ``vmap`` inside a
``lax.while_loop`` over steps. A call of :func:`train` walks its pixels in groups of a
fixed size in a Python loop, so a worker compiles one function per config and group
size, whatever its tiles (docs/kernel.md).

The group size is the device's business (:func:`group_size`): on a CPU a small group
keeps its working set in cache for all steps. Each network's arithmetic is the same
whatever the other members of its group and its slot in it, so a pixel's results do not
depend on the tiling, the call size or its neighbours (on a CPU groups of 16 and more
also agree with each other bit for bit; docs/kernel.md). A group stops training early
once all its networks have NaN parameters.
"""

from __future__ import annotations

import dataclasses
import warnings
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from . import fused, lyapunov, optimizers, score
from .axes import hyper_for
from .config import EnsembleConfig
from .models import MLP, full_precision
from .streams import LYAPUNOV
from .tasks import TASKS

# Networks per jitted call, by platform (docs/performance.md). On a GPU a call of 16384
# ran the XLA kernel 14% faster than one of 4096 and the fused kernel 4% (65536: 5% and 1%
# more), and a GPU tile is 128 x 128 pixels, one such call (grid.auto_tile).
GROUP = {"cpu": 64, "gpu": 16384}
# XLA options of the compiled kernel, by platform. 512-bit vectors make the CPU kernel 4%
# faster (docs/performance.md); given here, not through XLA_FLAGS, every process that
# compiles the kernel (workers, --scheduler sync, the explorer, tests) computes the same bits.
COMPILER_OPTIONS = {"cpu": {"xla_cpu_prefer_vector_width": 512}}


def group_size(platform: str | None = None) -> int:
    """Networks trained together per call on ``platform`` (default: JAX's first device)."""
    platform = platform or jax.devices()[0].platform
    return GROUP.get(platform, GROUP["gpu"])


@dataclasses.dataclass(frozen=True)
class Parts:
    """What one network's training is made of; static, one per config."""

    model: MLP
    task: object
    optimizer: object
    steps: int

    @classmethod
    def from_config(cls, cfg) -> Parts:
        return cls(MLP.from_config(cfg), TASKS[cfg.data.task],
                   optimizers.from_config(cfg.training), cfg.training.steps)


def net_init(parts: Parts, weights, hyper):
    """Parameters and optimizer state of one network from the stored init ``weights``."""
    params = shift(parts.model.init(weights), hyper.init_shift)
    return params, parts.optimizer.init(params)


def shift(params, shifts):
    """Add each layer's shift (or nothing, where it is None) to its weights."""
    return tuple(p if s is None else p._replace(w=p.w + s) for p, s in zip(params, shifts))


def net_step(parts: Parts, params, opt_state, hyper, data, rows):
    """One training step of one network: ``(params, opt_state, loss)``.

    ``loss`` is the full-batch loss recorded before the update, at the weights the gradient
    is taken at. ``rows`` selects the minibatch columns of the data, or is None for full
    batch. ``data`` holds the feature-major ``xt`` (d, N) and ``yt`` (k, N).
    """
    model, task = parts.model, parts.task
    params = shift(params, hyper.shift)
    out, cache = model.forward(params, data["xt"])
    loss = task.loss(out, data["yt"])
    if rows is not None:
        yt = data["yt"][:, rows]
        out, cache = model.forward(params, data["xt"][:, rows])
    else:
        yt = data["yt"]
    grads = model.backward(params, cache, task.loss_grad(out, yt))
    params, opt_state = optimizers.update(parts.optimizer, params, grads, opt_state, hyper)
    return params, opt_state, loss


def _has_nan(params):
    """Per network of a group: whether any parameter is NaN."""
    leaves = jax.tree.leaves(params)
    return jnp.stack([jnp.isnan(p).reshape(p.shape[0], -1).any(axis=1) for p in leaves]).any(0)


def final_measures(parts: Parts, params, data) -> dict:
    """The task's measures of the trained network (after the last update) on all the data."""
    if not parts.task.outputs:
        return {}
    return parts.task.measures(parts.model.forward(params, data["xt"])[0], data["yt"])


def make_group_run(cfg, early_exit: bool = True):
    """``run(xs, ys, weights, data, batch_idx, direction=None) -> dict`` training one network
    per pixel.

    With ``early_exit``, training stops once every network of the group has a NaN
    parameter: from then on every loss is NaN (NaN reaches the output and every gradient
    at once), so the remaining steps only feed NaN losses to the score, in the same order,
    and the results are bit-identical to training on. An infinite loss alone is not
    enough to stop: it can come from a finite overflowing output.

    The measures of ``cfg.measures`` (docs/measures.md) ride along in the loop's carry: a
    score state per snapshot, fed the same losses (the drain after an early exit feeds
    them too), and, for the Lyapunov exponent, the twin networks, stepped like the group
    and renormalized after every step (:mod:`fractalsweep.lyapunov`); ``direction`` is
    the twin's perturbation, one matrix per layer (:func:`twin_direction`).
    """
    parts = Parts.from_config(cfg)
    steps, counts = parts.steps, cfg.measures.snapshots
    eps = lyapunov.epsilon(cfg.dtype)

    def record(sc, snaps, loss, t):
        return (jax.vmap(score.update, in_axes=(0, 0, None, None))(sc, loss, t, steps),
                jax.vmap(score.snapshots_update, in_axes=(0, 0, None, None))(snaps, loss, t,
                                                                             counts))

    def run(xs, ys, weights, data, batch_idx, direction=None):
        dtype = data["xt"].dtype
        hyper = jax.vmap(lambda x, y: hyper_for(cfg, x, y))(xs, ys)
        params, opt_state = jax.vmap(partial(net_init, parts), in_axes=(None, 0))(weights, hyper)
        train = jax.vmap(partial(net_step, parts), in_axes=(0, 0, 0, None, None))
        sc = jax.vmap(lambda _: score.init(dtype))(xs)
        snaps = jax.vmap(lambda _: score.snapshots_init(dtype, counts))(xs)
        twins = None if direction is None else jax.vmap(
            partial(lyapunov.init, direction=direction, epsilon=eps))(params, opt_state)

        def training(carry):
            t, params = carry[:2]
            return (t < steps) & ~(early_exit & jnp.all(_has_nan(params)))

        def train_step(carry):
            t, params, opt_state, sc, snaps, twins = carry
            rows = None if batch_idx is None else batch_idx[t]
            params, opt_state, loss = train(params, opt_state, hyper, data, rows)
            if twins is not None:
                twin = train(*twins.twin, hyper, data, rows)[:2]
                twins = jax.vmap(partial(lyapunov.update, epsilon=eps))(
                    twins._replace(twin=twin), params, opt_state)
            return (t + 1, params, opt_state, *record(sc, snaps, loss, t), twins)

        t, params, _, sc, snaps, twins = jax.lax.while_loop(
            training, train_step, (0, params, opt_state, sc, snaps, twins))
        nan = jnp.full(xs.shape, jnp.nan, dtype)
        _, sc, snaps = jax.lax.while_loop(
            lambda c: c[0] < steps, lambda c: (c[0] + 1, *record(c[1], c[2], nan, c[0])),
            (t, sc, snaps))
        out = jax.vmap(score.finalize, in_axes=(0, None))(sc, steps)
        if counts:
            out |= jax.vmap(score.snapshots_finalize, in_axes=(0, None))(snaps, counts)
        if twins is not None:
            out["lyapunov"] = jax.vmap(lyapunov.finalize)(twins)
        return out | jax.vmap(partial(final_measures, parts), in_axes=(0, None))(params, data)

    return run


def prepare(cfg, arrays: dict) -> tuple:
    """The stored arrays as the kernel takes them: ``(weights, data, batch_idx)``.

    Weights stay in their stored ``(fan_in, fan_out)`` form; the data become feature-major
    (``xt`` = X^T, ``yt`` = Y^T), all in the working dtype.
    """
    dtype = jnp.dtype(cfg.dtype)
    weights = tuple(jnp.asarray(arrays[f"w{i}"], dtype) for i in range(cfg.model.depth))
    data = {"xt": jnp.asarray(np.ascontiguousarray(arrays["X"].T), dtype),
            "yt": jnp.asarray(np.ascontiguousarray(arrays["Y"].T), dtype)}
    batch_idx = arrays.get("batch_idx")
    return weights, data, None if batch_idx is None else jnp.asarray(batch_idx)


def twin_direction(cfg, arrays: dict) -> dict:
    """The Lyapunov twin's perturbation as the kernel takes it (``{}`` without the measure):
    ``{"direction": matrices}``, each stored ``inputs/lyapunov_w<i>`` transposed into its
    layer's layout and in the working dtype."""
    if not cfg.measures.lyapunov:
        return {}
    dtype = jnp.dtype(cfg.dtype)
    return {"direction": tuple(jnp.asarray(arrays[f"{LYAPUNOV}w{i}"].T, dtype)
                               for i in range(cfg.model.depth))}


def kernel_config(cfg):
    """The part of a config the compiled kernel depends on.

    Windows, resolution and name only change the kernel's inputs, so every level of a sweep
    shares one compiled kernel per dtype; an ensemble's members are separate calls of the
    kernel (:meth:`fractalsweep.systems.Training.compute`), so it does not see them.
    """
    return dataclasses.replace(
        cfg, name="", grid=dataclasses.replace(cfg.grid, resolution=(2, 2)),
        ensemble=EnsembleConfig(),
        **{a: dataclasses.replace(getattr(cfg, a), lo="1", hi="2") for a in ("x", "y")})


def outputs(cfg) -> dict[str, tuple[str, object]]:
    """The per-pixel arrays a run of ``cfg`` produces: name -> (dtype, fill for "not computed").

    ``score``, ``first_nonfinite`` and ``final_loss`` always, what the task measures
    (``accuracy`` for digits), and the measures of ``cfg.measures``: ``score_at_<s>`` per
    snapshot and ``lyapunov`` (docs/measures.md). An ensemble's arrays are the system's
    (:meth:`fractalsweep.systems.Training.outputs`).
    """
    snapshots = {score.snapshot_name(s): ("float64", np.nan) for s in cfg.measures.snapshots}
    twin = {"lyapunov": ("float64", np.nan)} if cfg.measures.lyapunov else {}
    return {"score": ("float64", np.nan), "first_nonfinite": ("int32", -2),
            "final_loss": ("float64", np.nan), **TASKS[cfg.data.task].outputs, **snapshots,
            **twin}


def train(cfg, arrays: dict, xs, ys, *, group: int | None = None,
          early_exit: bool = True, backend: str = "auto") -> dict[str, np.ndarray]:
    """Train one network per pixel and return :func:`outputs` for each, in the pixels' order.

    Parameters
    ----------
    cfg : SweepConfig
        The sweep's config as the level computes it (its dtype).
    arrays : dict
        The store's inputs (init weights, data, minibatch rows), as :func:`streams.draw` gives.
    xs, ys : 1-D arrays
        The pixels' hyperparameter values, any number of them.
    group : int, optional
        Networks per jitted call; default :func:`group_size` of the device. Results do not
        depend on it (nor on a pixel's position or neighbours), only the speed does.
    early_exit : bool
        Retire a group once all its networks have NaN parameters (bit-identical to
        training on; False is for tests and benchmarks).
    backend : {"auto", "xla", "pallas"}
        Which kernel trains the groups (:func:`fused.select`): ``auto`` takes the fused
        Pallas kernel on a GPU for a config it supports, else this module's XLA kernel;
        ``pallas`` on another platform runs it in interpret mode (for tests). Should the
        fused kernel fail on a device (another GPU or Triton version than the one it was
        measured on, docs/kernel.md), ``auto`` warns and trains with the XLA kernel.

    The pixels are trained ``group`` at a time, the last group padded with copies of the
    first pixel; the calls are dispatched asynchronously and collected at the end.
    float64 is enabled for the duration of the call only: importing fractalsweep changes no
    global JAX setting.
    """
    chosen = fused.select(cfg, backend)
    xs, ys = np.asarray(xs), np.asarray(ys)
    n = xs.size
    if n == 0:
        return {name: np.empty(0, dtype) for name, (dtype, _) in outputs(cfg).items()}
    group = group or group_size()
    pad = -n % group
    xs, ys = (np.concatenate([v, np.full(pad, v[0])]).astype(cfg.dtype) for v in (xs, ys))
    kcfg = kernel_config(cfg)
    with jax.enable_x64(True):
        inputs, twin = prepare(kcfg, arrays), twin_direction(kcfg, arrays)

        def groups(compile_group):
            run = compile_group(kcfg, early_exit)
            results = [run(xs[i:i + group], ys[i:i + group], *inputs, **twin)
                       for i in range(0, xs.size, group)]
            return {k: np.concatenate([np.asarray(r[k]) for r in results])[:n]
                    for k in results[0]}

        if chosen == "xla":
            return groups(compile_kernel)
        try:
            return groups(fused.compile_kernel)
        except Exception as exc:
            if backend != "auto":
                raise
            warnings.warn(f"the fused kernel failed on this device ({type(exc).__name__}: "
                          f"{exc}); training with the XLA kernel", RuntimeWarning, stacklevel=2)
            return groups(compile_kernel)


@lru_cache(maxsize=16)
def compile_kernel(cfg, early_exit: bool = True):
    """The jitted group kernel for a config (cached per process).

    ``run(xs, ys, weights, data, batch_idx)`` trains one network per entry of ``xs``,
    ``ys`` and returns ``score``, ``first_nonfinite`` and ``final_loss`` for each. jit
    compiles it once per group size it is called with; :func:`train` always uses one.
    Call it with float64 enabled (``jax.enable_x64``). Its matrix products run at full
    precision (:func:`models.full_precision`), also float32 on a GPU.
    """
    return jax.jit(full_precision(make_group_run(cfg, early_exit)),
                   compiler_options=COMPILER_OPTIONS.get(jax.devices()[0].platform))
