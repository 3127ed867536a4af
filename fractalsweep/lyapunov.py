"""The finite-time Lyapunov exponent of one training run (docs/measures.md, "Sensitivity").

A twin network starts from the run's initial weights moved by a tiny relative amount and
trains beside it on the same data, rows and hyperparameters. The state of a run is the
vector ``x`` of all its parameters and its optimizer's floating-point state. Before a step
the twin is at distance ``r = EPSILON * |x|`` from the run; after the step both have
moved, their distance ``d`` is measured, ``log(d / r)`` is added to a running sum, and the
twin is pulled back along the separation to distance ``EPSILON * |x'|`` from the run's new
state ``x'`` (Benettin's renormalization, every step). The exponent is the mean of those
logs: the average log growth of a small perturbation per step, positive where training is
chaotic, negative where it contracts onto a minimum.

- ``EPSILON`` is the square root of the dtype's machine epsilon (1.5e-8 in float64, 3.5e-4
  in float32), the usual compromise between a perturbation small enough to be linear and
  large enough to be resolved. The separation is kept *relative* to the run's size: the
  weights of a run that blows up grow by many decades before they overflow, and a
  separation of fixed size would vanish in their rounding.
- The first perturbation is along a stored N(0, 1) matrix per layer (``inputs/lyapunov_w``,
  :mod:`fractalsweep.streams`), normalized over all layers; biases and optimizer state
  start unperturbed.
- Once ``d`` or ``|x'|`` is not a finite positive number (a run went non-finite, or the
  twin fell exactly onto the run), nothing more is added: the exponent is the mean over
  the steps measured until then, NaN if there were none.

Every function here is one network's; the kernel ``vmap``s them over its group.

Example
-------
>>> import jax.numpy as jnp
>>> from fractalsweep.models import Layer
>>> params = (Layer(jnp.array([[3.0, 4.0]]), None),)  # |x| = 5
>>> state = init(params, (), (jnp.array([[0.0, 1.0]]),), epsilon=0.1)
>>> float(state.size), state.twin[0][0].w.tolist()
(0.5, [[3.0, 4.5]])
>>> doubled = (Layer(jnp.array([[3.0, 5.0]]), None),)  # the separation grew to 1: twice 0.5
>>> state = update(state._replace(twin=(doubled, ())), params, (), epsilon=0.1)
>>> round(float(finalize(state)), 6), state.twin[0][0].w.tolist()  # log 2, back to 0.5
(0.693147, [[3.0, 4.5]])
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class LyapunovState(NamedTuple):
    """The twin and the running sum of one run's log growths."""

    twin: tuple  # (params, opt_state) of the twin network
    size: jax.Array  # its distance from the run before this step: EPSILON * |x|
    log_sum: jax.Array  # sum of log(d / d0) over the steps measured
    count: jax.Array  # steps measured (int32)
    active: jax.Array  # False once the separation was not finite and positive


def epsilon(dtype) -> float:
    """The relative size of the perturbation: the square root of the machine epsilon."""
    return float(np.sqrt(np.finfo(dtype).eps))


def _norm(leaves) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(leaf * leaf) for leaf in leaves))


def _is_float(leaf) -> bool:
    return jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.inexact)


def _state_norm(tree) -> jax.Array:
    """``|x|``: the norm of every floating-point leaf of a run's (params, opt_state)."""
    return _norm([leaf for leaf in jax.tree.leaves(tree) if _is_float(leaf)])


def init(params, opt_state, direction, epsilon: float) -> LyapunovState:
    """The twin of a run whose initial parameters and optimizer state are given.

    ``direction`` holds one matrix per layer in the layout of the layer's weights; the
    twin's weights are the run's plus ``epsilon * |x|`` times the normalized direction.
    """
    size = epsilon * _state_norm((params, opt_state))
    unit = size / _norm(direction)
    twin = tuple(layer._replace(w=layer.w + unit * u) for layer, u in zip(params, direction))
    zero = jnp.zeros((), size.dtype)
    return LyapunovState((twin, opt_state), size, zero, jnp.int32(0), jnp.bool_(True))


def update(state: LyapunovState, params, opt_state, epsilon: float) -> LyapunovState:
    """Measure the separation after a step of both networks and renormalize the twin.

    ``state.twin`` is the twin after the step; ``params`` and ``opt_state`` the run's.
    """
    run = (params, opt_state)
    diff = jax.tree.map(lambda a, b: a - b if _is_float(a) else a, state.twin, run)
    d = _state_norm(diff)
    size = epsilon * _state_norm(run)
    measured = state.active & jnp.isfinite(d) & (d > 0) & jnp.isfinite(size) & (size > 0)
    scale = size / d
    twin = jax.tree.map(lambda s, b, t: b + s * scale if _is_float(s) else t,
                        diff, run, state.twin)
    return LyapunovState(twin, size,
                         state.log_sum + jnp.where(measured, jnp.log(d / state.size), 0),
                         state.count + measured.astype(jnp.int32), measured)


def finalize(state: LyapunovState) -> jax.Array:
    """The exponent: the mean log growth per step measured (NaN if none was)."""
    return jnp.where(state.count > 0, state.log_sum / jnp.maximum(state.count, 1), jnp.nan)
