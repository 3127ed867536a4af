"""Update rules, optax-style: ``init(params) -> state`` and ``update(...) -> (params, state)``.

Per-run hyperparameters arrive in a :class:`~fractalsweep.axes.Hyper`, so a swept optimizer
parameter is just another axis.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GradientDescent:
    """Plain gradient descent with one learning rate per layer."""

    @staticmethod
    def init(params):
        return ()

    @staticmethod
    def update(params, grads, state, hyper):
        new = tuple(p - lr * g for p, g, lr in zip(params, grads, hyper.lr))
        return new, state


OPTIMIZERS = {"gd": GradientDescent()}
