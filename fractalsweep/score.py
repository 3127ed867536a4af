"""The score of one run (docs/kernel.md, "Score"), computed online.

Only running sums are kept, never the loss history: ``v_t = min(l_t' / l_0', CLIP)`` where
``l'`` is the loss with non-finite values replaced by ``BIG``; the run converged iff the mean
of the last ``TAIL`` values of ``v`` is below 1; score = ``-sum(v)`` if converged, else
``+sum(1/v)``. The last ``TAIL`` steps are known in advance (the step count is static), so
their sum is an ordinary masked running sum.

Snapshots (docs/measures.md) are the scores the same run would have had after fewer
steps: the losses of a run's first ``s`` steps do not depend on how many follow, so one
state per snapshot, fed the same losses up to step ``s`` and left alone after, finishes
with exactly the score of an ``s``-step run.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

BIG = 1e6  # stands in for a non-finite loss
CLIP = 1e6  # upper bound of a normalized loss
TAIL = 20  # steps whose mean decides convergence


class ScoreState(NamedTuple):
    l0: jax.Array
    sum_v: jax.Array
    sum_inv_v: jax.Array
    tail_sum: jax.Array
    first_nonfinite: jax.Array
    last_v: jax.Array


def init(dtype) -> ScoreState:
    zero = jnp.zeros((), dtype)
    return ScoreState(zero, zero, zero, zero, jnp.int32(-1), zero)


def update(state: ScoreState, loss, t, steps: int) -> ScoreState:
    """Fold the loss recorded at step ``t`` (of ``steps``) into the state."""
    finite = jnp.isfinite(loss)
    loss = jnp.where(finite, loss, BIG)  # a select: inf * 0 would be NaN
    l0 = jnp.where(t == 0, loss, state.l0)
    v = jnp.minimum(loss / l0, CLIP)
    first = jnp.where((state.first_nonfinite < 0) & ~finite, t, state.first_nonfinite)
    return ScoreState(
        l0=l0,
        sum_v=state.sum_v + v,
        sum_inv_v=state.sum_inv_v + 1 / v,
        tail_sum=state.tail_sum + jnp.where(t >= steps - TAIL, v, 0),
        first_nonfinite=first.astype(jnp.int32),
        last_v=v,
    )


def finalize(state: ScoreState, steps: int) -> dict:
    """Score, first non-finite step (-1 if none) and final normalized loss."""
    converged = state.tail_sum / min(TAIL, steps) < 1
    return {
        "score": jnp.where(converged, -state.sum_v, state.sum_inv_v),
        "first_nonfinite": state.first_nonfinite,
        "final_loss": state.last_v,
    }


def snapshot_name(steps: int) -> str:
    """The per-pixel array holding the score after ``steps`` steps."""
    return f"score_at_{steps}"


def snapshots_init(dtype, counts: tuple[int, ...]) -> tuple[ScoreState, ...]:
    """One score state per snapshot step count."""
    return tuple(init(dtype) for _ in counts)


def snapshots_update(states, loss, t, counts: tuple[int, ...]) -> tuple[ScoreState, ...]:
    """Fold step ``t``'s loss into the states of the snapshots it belongs to (``t < s``)."""
    return tuple(jax.tree.map(partial(jnp.where, t < s), update(state, loss, t, s), state)
                 for state, s in zip(states, counts))


def snapshots_finalize(states, counts: tuple[int, ...]) -> dict:
    """The score of each snapshot, by its array name (:func:`snapshot_name`)."""
    return {snapshot_name(s): finalize(state, s)["score"] for state, s in zip(states, counts)}


def from_losses(losses) -> dict:
    """Score a whole recorded loss sequence (used by the naive baseline and for checks)."""
    def body(state, tl):
        t, loss = tl
        return update(state, loss, t, steps), None

    with jax.enable_x64(True):
        losses = jnp.asarray(losses)
        steps = losses.shape[-1]
        state, _ = jax.lax.scan(body, init(losses.dtype), (jnp.arange(steps), losses))
        return finalize(state, steps)
