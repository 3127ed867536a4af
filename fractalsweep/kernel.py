"""The sweep kernel: trains a tile of networks, one per pixel, in one jitted call.

It composes the pieces: the task (data, loss), the model (forward pass), the optimizer
(update rule), the axes (how a pixel's two values become its :class:`~fractalsweep.axes.Hyper`)
and the score (online reduction of the loss sequence). A run is a ``lax.while_loop`` over
steps (a scan that can stop early), all inside one jitted call;
pixels are batched with ``vmap`` in groups of :data:`GROUP` networks, and ``lax.map`` walks
the groups, so a group's working set stays in cache for all steps on a CPU. The group size is
fixed, never set by the tile, so results do not depend on how a grid is tiled.
A group stops training early once all its networks have NaN parameters.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from . import models, score
from .axes import hyper_for
from .optimizers import OPTIMIZERS
from .tasks import TASKS


def make_step(cfg):
    """One training step of one network: ``step(params, opt_state, hyper, data, idx)``.

    Returns ``(params, opt_state, loss)`` where ``loss`` is the full-batch loss recorded
    before the update, at the weights the gradient is taken at. ``idx`` selects the
    minibatch rows, or is None for full batch.
    """
    task = TASKS[cfg.data.task]
    opt = OPTIMIZERS[cfg.training.optimizer]

    def loss_fn(params, data):
        return task.loss(models.forward(params, data["X"], cfg.model.activation), data)

    value_and_grad = jax.value_and_grad(loss_fn)

    def step(params, opt_state, hyper, data, idx):
        params = tuple(p + s for p, s in zip(params, hyper.shift))
        if idx is None:
            loss, grads = value_and_grad(params, data)
        else:
            loss = loss_fn(params, data)
            grads = jax.grad(loss_fn)(params, {k: v[idx] for k, v in data.items()})
        params, opt_state = opt.update(params, grads, opt_state, hyper)
        return params, opt_state, loss

    return step


def prepare(cfg, arrays: dict) -> tuple:
    """Split the stored random arrays into (weights, data, batch_idx) in the working dtype."""
    dtype = jnp.dtype(cfg.dtype)
    weights = tuple(jnp.asarray(arrays[f"w{i}"], dtype) for i in range(cfg.model.depth))
    data = {k: jnp.asarray(arrays[k], dtype) for k in ("X", "Y")}
    batch_idx = arrays.get("batch_idx")
    return weights, data, None if batch_idx is None else jnp.asarray(batch_idx)


def make_group_run(cfg, early_exit: bool = True):
    """``run(xs, ys, weights, data, batch_idx) -> dict`` for a group of pixels.

    With ``early_exit``, training stops once every network of the group has a NaN
    parameter: from then on every loss is NaN, so the remaining steps only feed NaN losses
    to the score, through the same update in the same order, and the results are
    bit-identical to training on (docs/performance.md). An infinite loss alone is not
    enough to stop: it can come from a finite overflowing output.
    """
    step = make_step(cfg)
    opt = OPTIMIZERS[cfg.training.optimizer]
    steps = cfg.training.steps

    def init(x, y, weights):
        params = tuple(w + s for w, s in zip(weights, hyper_for(cfg, x, y).init_shift))
        return params, opt.init(params), score.init(weights[0].dtype)

    def train_one(x, y, params, opt_state, sc, t, data, idx):
        params, opt_state, loss = step(params, opt_state, hyper_for(cfg, x, y), data, idx)
        return params, opt_state, score.update(sc, loss, t, steps)

    train = jax.vmap(train_one, in_axes=(0, 0, 0, 0, 0, None, None, None))
    record = jax.vmap(score.update, in_axes=(0, None, None, None))

    def run(xs, ys, weights, data, batch_idx):
        def training(carry):
            t, params, _, _ = carry
            alive = ~jnp.all(jnp.stack([jnp.isnan(p).any(axis=(1, 2)) for p in params]).any(0))
            return (t < steps) & (alive | (not early_exit))

        def train_step(carry):
            t, params, opt_state, sc = carry
            idx = None if batch_idx is None else batch_idx[t]
            return (t + 1, *train(xs, ys, params, opt_state, sc, t, data, idx))

        carry = (0, *jax.vmap(init, in_axes=(0, 0, None))(xs, ys, weights))
        t, _, _, sc = jax.lax.while_loop(training, train_step, carry)
        nan = jnp.full((), jnp.nan, weights[0].dtype)
        _, sc = jax.lax.while_loop(lambda c: c[0] < steps,
                                   lambda c: (c[0] + 1, record(c[1], nan, c[0], steps)), (t, sc))
        return jax.vmap(score.finalize, in_axes=(0, None))(sc, steps)

    return run


def kernel_config(cfg):
    """The part of a config the compiled kernel depends on.

    Windows, resolution and name only change the kernel's inputs, so every level of a sweep
    shares one compiled kernel per dtype.
    """
    return dataclasses.replace(
        cfg, name="", grid=dataclasses.replace(cfg.grid, resolution=(2, 2)),
        **{a: dataclasses.replace(getattr(cfg, a), lo="1", hi="2") for a in ("x", "y")})


GROUP = 4  # networks trained together (vmap) on a CPU


def outputs(cfg) -> dict[str, tuple[str, object]]:
    """The per-pixel arrays a run of ``cfg`` produces: name -> (dtype, fill for "not computed")."""
    return {"score": ("float64", np.nan), "first_nonfinite": ("int32", -2),
            "final_loss": ("float64", np.nan)}


def train(cfg, arrays: dict, xs, ys) -> dict[str, np.ndarray]:
    """Train one network per pixel and return :func:`outputs` for each, in the pixels' order.

    Parameters
    ----------
    cfg : SweepConfig
        The sweep's config as the level computes it (its dtype).
    arrays : dict
        The store's inputs (init weights, data, minibatch rows), as :func:`streams.draw` gives.
    xs, ys : 1-D arrays
        The pixels' hyperparameter values, any number of them.

    float64 is enabled for the duration of the call only: importing fractalsweep changes no
    global JAX setting.
    """
    xs, ys = np.asarray(xs), np.asarray(ys)
    n = xs.size
    if n == 0:
        return {name: np.empty(0, dtype) for name, (dtype, _) in outputs(cfg).items()}
    pad = -n % GROUP
    xs, ys = (np.concatenate([v, np.full(pad, v[0])]) for v in (xs, ys))
    kcfg = kernel_config(cfg)
    with jax.enable_x64(True):
        out = compile_kernel(kcfg)(xs.astype(cfg.dtype), ys.astype(cfg.dtype),
                                   *prepare(kcfg, arrays))
        return {k: np.asarray(v)[:n] for k, v in out.items()}


@lru_cache(maxsize=8)
def compile_kernel(cfg, early_exit: bool = True):
    """The jitted tile kernel for a config (cached: one compile per config and process).

    ``kernel(xs, ys, weights, data, batch_idx)`` takes 1-D axis values of length a multiple
    of :data:`GROUP` and returns ``score``, ``first_nonfinite`` and ``final_loss``, one
    entry per pixel. Call it with float64 enabled (``jax.enable_x64``).
    """
    group = GROUP
    run = make_group_run(cfg, early_exit)

    @jax.jit
    def kernel(xs, ys, weights, data, batch_idx):
        out = jax.lax.map(
            lambda xy: run(xy[0], xy[1], weights, data, batch_idx),
            (xs.reshape(-1, group), ys.reshape(-1, group)),
        )
        return {k: v.reshape(-1) for k, v in out.items()}

    return kernel
