"""Update rules with per-layer learning rates and weight decay, built on optax.

An optimizer turns gradients into an update *direction* (``direction(grads, state, hyper)
-> (d, state)``): the gradient itself for ``gd``, optax's ``trace`` for ``momentum`` and
optax's ``scale_by_adam`` for ``adam``/``adamw``, so the arithmetic is optax's own. Every
optimizer applies its direction the same way: ``p <- p - lr_layer * d`` (:func:`update`).
Weight decay is L2 (``g + wd * p`` before the direction, as ``add_decayed_weights`` first
in an optax chain) for ``gd``, ``momentum`` and ``adam``, and decoupled (``d + wd * p``
after it, as ``optax.adamw``) for ``adamw``; it is applied here, per layer. Per-run
values (learning rates, decay, momentum, Adam's betas and eps) arrive in a
:class:`~fractalsweep.axes.Hyper`, so any of them can be a swept axis: the optax
transformation is built inside the traced step with the pixel's values. The static
choices (which rule, Nesterov or not) are the dataclass's fields.

Parameters are a tuple with one entry per layer (any pytree); per-layer values of the
hyperparameters apply to every leaf of their layer. A per-layer weight decay of ``None``
means no decay at all for that layer: nothing is added, so an infinite weight cannot turn
into a NaN through ``0 * inf``.

Example
-------
>>> import jax.numpy as jnp
>>> from fractalsweep.axes import Hyper
>>> hyper = Hyper(lr=(0.5,), weight_decay=(None,), shift=(None,), init_shift=(None,),
...               momentum=0.9, beta1=0.9, beta2=0.999, eps=1e-8)
>>> opt = Momentum()
>>> params = (jnp.ones(2),)
>>> params, state = update(opt, params, (jnp.ones(2),), opt.init(params), hyper)
>>> params[0].tolist()
[0.5, 0.5]
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import optax

from .axes import ADAM


@dataclass(frozen=True)
class GradientDescent:
    """Plain gradient descent: the direction is the gradient."""

    decoupled = False

    def init(self, params):
        return ()

    def direction(self, grads, state, hyper):
        return grads, state


@dataclass(frozen=True)
class Momentum:
    """Heavy ball, ``optax.trace``: ``t <- g + mu * t``; direction ``t``, or with
    ``nesterov`` ``g + mu * t``."""

    nesterov: bool = False
    decoupled = False

    def init(self, params):
        return optax.trace(decay=0.0).init(params)

    def direction(self, grads, state, hyper):
        return optax.trace(decay=hyper.momentum, nesterov=self.nesterov).update(grads, state)


@dataclass(frozen=True)
class Adam:
    """Adam, ``optax.scale_by_adam`` (bias-corrected moments, eps outside the root);
    ``decoupled`` makes it AdamW."""

    decoupled: bool = False

    def init(self, params):
        return optax.scale_by_adam().init(params)

    def direction(self, grads, state, hyper):
        adam = optax.scale_by_adam(b1=hyper.beta1, b2=hyper.beta2, eps=hyper.eps)
        return adam.update(grads, state)


def _decay(tree, params, weight_decay):
    """``tree + wd * params``, layer by layer, skipping layers without decay."""
    return tuple(t if wd is None else jax.tree.map(lambda a, p, wd=wd: a + wd * p, t, layer)
                 for t, layer, wd in zip(tree, params, weight_decay))


def update(opt, params, grads, state, hyper):
    """One step of ``opt``: ``(params, state)`` after ``p <- p - lr * direction``."""
    if not opt.decoupled:
        grads = _decay(grads, params, hyper.weight_decay)
    d, state = opt.direction(grads, state, hyper)
    if opt.decoupled:
        d = _decay(d, params, hyper.weight_decay)
    params = tuple(jax.tree.map(lambda p, u, lr=lr: p - lr * u, layer, dl)
                   for layer, dl, lr in zip(params, d, hyper.lr))
    return params, state


# Each optimizer and the [training] keys it reads besides lr and weight_decay; a key set
# for an optimizer that does not read it is refused.
OPTIMIZERS = {"gd": (), "momentum": ("momentum", "nesterov"), "adam": ("beta1", "beta2", "eps"),
              "adamw": ("beta1", "beta2", "eps")}


def from_config(training):
    """The optimizer a config's ``[training]`` section names."""
    if training.optimizer == "momentum":
        return Momentum(nesterov=training.nesterov)
    if training.optimizer in ADAM:
        return Adam(decoupled=training.optimizer == "adamw")
    return GradientDescent()
