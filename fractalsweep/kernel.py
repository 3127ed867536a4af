"""The sweep kernel: trains one network per pixel, a group of networks per jitted call.

It composes small pure pieces: the task (data, loss and its gradient), the model (forward
and hand-written backward pass, :mod:`fractalsweep.models`), the optimizer (update rule),
the axes (how a pixel's two values become its :class:`~fractalsweep.axes.Hyper`) and the
score (online reduction of the loss sequence). :func:`net_step` is one training step of
one network; :func:`make_group_kernel` trains a group of networks with ``vmap`` inside a
``lax.while_loop`` over steps, in three functions (start, advance over some steps,
finish) so that :func:`train` can repack its groups as networks blow up
(:mod:`fractalsweep.groups`). A call walks its pixels in groups of a fixed size in a
Python loop, so a worker compiles one set of functions per config and group size,
whatever its tiles (docs/kernel.md).

The group size is the device's business (:func:`group_size`): on a CPU a small group
keeps its working set in cache for all steps. Each network's arithmetic is the same
whatever the other members of its group and its slot in it, so a pixel's results do not
depend on the tiling, the call size or its neighbours (on a CPU groups of 16 and more
also agree with each other bit for bit; docs/kernel.md). A group stops training early
once all its networks have NaN parameters, and a network with NaN parameters leaves its
group when the others fit in fewer.
"""

from __future__ import annotations

import dataclasses
import warnings
from functools import lru_cache, partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import fused, groups, lyapunov, optimizers, score
from .axes import hyper_for
from .config import EnsembleConfig
from .models import MLP, full_precision
from .streams import LYAPUNOV
from .tasks import TASKS

# Networks per jitted call, by platform (docs/performance.md). On a GPU a call of 16384
# ran the XLA kernel 14% faster than one of 4096 and the fused kernel 4% (65536: 5% and 1%
# more), and a GPU tile is 128 x 128 pixels, one such call (grid.auto_tile).
GROUP = {"cpu": 64, "gpu": 16384}
# XLA options of the compiled kernels (:func:`jit`), by platform. 512-bit vectors make the
# CPU kernel 4% faster (docs/performance.md), the double-double one 1.4 times
# (docs/precision.md); given here, not through XLA_FLAGS, every process that compiles a
# kernel (workers, --scheduler sync, the explorer, tests) computes the same bits.
COMPILER_OPTIONS = {"cpu": {"xla_cpu_prefer_vector_width": 512}}


def group_size(platform: str | None = None, table: dict = GROUP) -> int:
    """Networks trained together per call on ``platform`` (default: JAX's first device), from
    a kernel's table by platform (default this kernel's, :data:`GROUP`)."""
    platform = platform or jax.devices()[0].platform
    return table.get(platform, table["gpu"])


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


class GroupState(NamedTuple):
    """What a group of networks carries from one step to the next, one row per network."""

    params: tuple
    opt_state: tuple
    score: object  # score.ScoreState
    snapshots: tuple  # a ScoreState per snapshot of cfg.measures
    twins: object  # lyapunov.LyapunovState, or None without the measure


class GroupKernel(NamedTuple):
    """A group's training in three pure functions, so :func:`train` can look at a group
    between steps and repack its live networks (:mod:`fractalsweep.groups`).

    Training a group for all its steps is ``finish(advance(start(xs, ys, weights), xs, ys,
    data, batch_idx, 0, steps), data, steps)``; ``advance`` may be called on any stretch of
    steps, and on the rows of other groups' states stacked together.

    - ``start(xs, ys, weights, direction=None) -> GroupState``: the networks of the pixels
      ``xs``, ``ys`` at step 0 (``direction``: the Lyapunov twin's perturbation).
    - ``advance(state, xs, ys, data, batch_idx, t, stop) -> (state, alive)``: train from
      step ``t`` to ``stop``; ``alive`` says per network whether its parameters are free
      of NaN.
    - ``finish(state, data, t) -> dict``: the outputs of networks trained ``t`` steps whose
      other steps would only record NaN losses (:func:`outputs`).
    """

    start: object
    advance: object
    finish: object


def make_group_kernel(cfg, early_exit: bool = True) -> GroupKernel:
    """The :class:`GroupKernel` of a config: one network per pixel, ``vmap`` over the group
    inside a ``lax.while_loop`` over steps.

    With ``early_exit``, ``advance`` stops training once every network of the group has a
    NaN parameter: from then on every loss is NaN (NaN reaches the output and every
    gradient at once), so the remaining steps only feed NaN losses to the score, in the
    same order, and the results are bit-identical to training on. An infinite loss alone
    is not enough to stop: it can come from a finite overflowing output. The same holds
    for one network, so ``finish`` may take a network whose parameters are NaN before its
    group's last step.

    The measures of ``cfg.measures`` (docs/measures.md) ride along in the state: a score
    state per snapshot, fed the same losses (the NaN losses after an early exit too), and,
    for the Lyapunov exponent, the twin networks, stepped like the group and renormalized
    after every step (:mod:`fractalsweep.lyapunov`); ``direction`` is the twin's
    perturbation, one matrix per layer (:func:`twin_direction`).
    """
    parts = Parts.from_config(cfg)
    steps, counts = parts.steps, cfg.measures.snapshots
    eps = lyapunov.epsilon(cfg.dtype)
    hypers = jax.vmap(partial(hyper_for, cfg))

    def record(state, loss, t):
        return state._replace(
            score=jax.vmap(score.update, in_axes=(0, 0, None, None))(state.score, loss, t,
                                                                      steps),
            snapshots=jax.vmap(score.snapshots_update, in_axes=(0, 0, None, None))(
                state.snapshots, loss, t, counts))

    def drain(state, t, stop):
        """Record NaN losses from step ``t`` to ``stop``, as training NaN networks would."""
        nan = jnp.full(state.score.l0.shape, jnp.nan, state.score.l0.dtype)
        return jax.lax.fori_loop(t, stop, lambda i, s: record(s, nan, i), state)

    def start(xs, ys, weights, direction=None):
        dtype = weights[0].dtype
        params, opt_state = jax.vmap(partial(net_init, parts), in_axes=(None, 0))(
            weights, hypers(xs, ys))
        twins = None if direction is None else jax.vmap(
            partial(lyapunov.init, direction=direction, epsilon=eps))(params, opt_state)
        return GroupState(params, opt_state, jax.vmap(lambda _: score.init(dtype))(xs),
                          jax.vmap(lambda _: score.snapshots_init(dtype, counts))(xs), twins)

    def advance(state, xs, ys, data, batch_idx, t, stop):
        hyper = hypers(xs, ys)
        train = jax.vmap(partial(net_step, parts), in_axes=(0, 0, 0, None, None))

        def training(carry):
            t, state = carry
            return (t < stop) & ~(early_exit & jnp.all(_has_nan(state.params)))

        def train_step(carry):
            t, state = carry
            rows = None if batch_idx is None else batch_idx[t]
            params, opt_state, loss = train(state.params, state.opt_state, hyper, data, rows)
            twins = state.twins
            if twins is not None:
                twin = train(*twins.twin, hyper, data, rows)[:2]
                twins = jax.vmap(partial(lyapunov.update, epsilon=eps))(
                    twins._replace(twin=twin), params, opt_state)
            return t + 1, record(state._replace(params=params, opt_state=opt_state,
                                                twins=twins), loss, t)

        t, state = jax.lax.while_loop(training, train_step, (t, state))
        return drain(state, t, stop), ~_has_nan(state.params)

    def finish(state, data, t):
        state = drain(state, t, steps)
        out = jax.vmap(score.finalize, in_axes=(0, None))(state.score, steps)
        if counts:
            out |= jax.vmap(score.snapshots_finalize, in_axes=(0, None))(state.snapshots,
                                                                          counts)
        if state.twins is not None:
            out["lyapunov"] = jax.vmap(lyapunov.finalize)(state.twins)
        return out | jax.vmap(partial(final_measures, parts), in_axes=(0, None))(
            state.params, data)

    return GroupKernel(start, advance, finish)


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
          early_exit: bool = True, kernel: str = "auto") -> dict[str, np.ndarray]:
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
    kernel : {"auto", "xla", "pallas"}
        Which kernel trains the groups (:func:`fused.select`): ``auto`` takes the fused
        Pallas kernel on a GPU for a config it supports, else this module's XLA kernel;
        ``pallas`` on another platform runs it in interpret mode (for tests). Should the
        fused kernel fail on a device (another GPU or Triton version than the one it was
        measured on, docs/kernel.md), ``auto`` warns and trains with the XLA kernel.

    The pixels are trained ``group`` at a time, the last group padded with copies of its
    first pixel; the XLA kernel's groups are repacked as their networks blow up
    (:mod:`fractalsweep.groups`). float64 is enabled for the duration of the call only:
    importing fractalsweep changes no global JAX setting.
    """
    chosen = fused.select(cfg, kernel)
    n = np.size(xs)
    if n == 0:
        return {name: np.empty(0, dtype) for name, (dtype, _) in outputs(cfg).items()}
    group = group or group_size()
    xs, ys = (np.asarray(v).astype(cfg.dtype) for v in (xs, ys))
    kcfg = kernel_config(cfg)
    with jax.enable_x64(True):
        inputs, twin = prepare(kcfg, arrays), twin_direction(kcfg, arrays)

        def xla():
            return groups.train(compile_kernel(kcfg, early_exit), xs, ys, group, *inputs,
                                twin, cfg.training.steps, repacking=early_exit)

        if chosen == "xla":
            return xla()
        try:
            run = fused.compile_kernel(kcfg, early_exit)
            return groups.collect([(m, run(xs[m], ys[m], *inputs))
                                   for m in groups.pack(np.arange(n), group)], n)
        except Exception as exc:
            if kernel != "auto":
                raise
            warnings.warn(f"the fused kernel failed on this device ({type(exc).__name__}: "
                          f"{exc}); training with the XLA kernel", RuntimeWarning, stacklevel=2)
            return xla()


@lru_cache(maxsize=16)
def compile_kernel(cfg, early_exit: bool = True) -> GroupKernel:
    """The jitted :class:`GroupKernel` of a config (cached per process).

    jit compiles each function once per group size it is called with; :func:`train`
    always uses one. Call them with float64 enabled (``jax.enable_x64``). Their matrix
    products run at full precision (:func:`models.full_precision`), also float32 on a GPU.
    """
    return GroupKernel(*(jit(full_precision(f)) for f in make_group_kernel(cfg, early_exit)))


def jit(f):
    """``jax.jit`` with this platform's :data:`COMPILER_OPTIONS`, as every kernel compiles
    (the options change the bits)."""
    return jax.jit(f, compiler_options=COMPILER_OPTIONS.get(jax.devices()[0].platform))
