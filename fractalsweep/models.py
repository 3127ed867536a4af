"""The network: a mean-field MLP without biases (science.md section 2), forward and backward.

Weights are drawn unscaled from N(0, 1) (:func:`init`); all scaling lives in the forward
pass, so one init serves every width-scaled learning rate.

Inside the kernel a network works *feature-major*: activations are ``(features, N)`` with
one column per example, and a layer holds the transpose of its stored matrix, so every
layer is ``W @ h``. Under ``vmap`` over a group of networks the first layer then becomes one
matrix product of the stacked weights ``(G * width, d)`` with the shared ``X^T``, and the
weight gradient of the first layer one product with the shared ``X`` (docs/kernel.md).
The backward pass is written out by hand: it reuses the forward's activations (for tanh
the derivative is computed from the output), so no autodiff runs in the training loop.

Example
-------
>>> import numpy as np
>>> net = MLP(shapes=((3, 4), (4, 1)))
>>> rng = np.random.default_rng(0)
>>> params = net.init((rng.normal(size=(3, 4)), rng.normal(size=(4, 1))))
>>> out, cache = net.forward(params, rng.normal(size=(3, 5)))
>>> out.shape, [p.shape for p in net.backward(params, cache, out)]
((1, 5), [(4, 3), (1, 4)])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

SQRT2 = 2.0**0.5


@dataclass(frozen=True)
class Activation:
    """``phi(z) = fn(scale * z)``, with ``grad(u, a)`` the derivative of ``fn`` at ``u``.

    Writing every activation as a function of a scaled input lets a layer fold the scale
    into its multiplier: ``fn((scale * m) * (W @ h))``, and in the backward pass into the
    weights, so neither costs a pass over the activations. ``grad`` gets ``a = fn(u)``
    too, so a derivative can reuse the output (tanh: ``1 - a**2``); XLA drops ``u`` where
    a derivative does not use it.
    """

    fn: Callable
    grad: Callable
    scale: float = 1.0


def _tanh_grad(u, a):
    return 1 - a * a


def _relu_grad(u, a):
    return (a > 0).astype(a.dtype)  # 0 at the kink, as autodiff gives


def _identity(u):
    return u


def _identity_grad(u, a):
    return jnp.ones_like(a)


ACTIVATIONS = {
    "tanh": Activation(jnp.tanh, _tanh_grad, SQRT2),  # tanh(sqrt(2) z)
    "relu": Activation(jax.nn.relu, _relu_grad, SQRT2),  # sqrt(2) relu(z) = relu(sqrt(2) z)
    "identity": Activation(_identity, _identity_grad),
}


def init(key, shapes, dtype) -> tuple:
    """One N(0, 1) matrix per layer, each from its own split of ``key`` (science.md 4)."""
    keys = jax.random.split(key, len(shapes))
    return tuple(jax.random.normal(k, s, dtype=dtype) for k, s in zip(keys, shapes))


@dataclass(frozen=True)
class MLP:
    """A fully connected network, static description (hashable; the parameters live apart).

    Parameters
    ----------
    shapes : tuple of (fan_in, fan_out)
        One entry per weight matrix, input layer first.
    activation : str
        A key of :data:`ACTIVATIONS`.

    A layer computes ``z = m * (W @ h)`` with the mean-field multiplier ``m``:
    ``1 / sqrt(fan_in)`` for hidden layers and ``1 / fan_in`` (that is, divided by
    ``sqrt(fan_in)`` once more) for the output layer.
    """

    shapes: tuple[tuple[int, int], ...]
    activation: str = "tanh"

    @classmethod
    def from_config(cls, cfg) -> MLP:
        return cls(shapes=cfg.layer_shapes, activation=cfg.model.activation)

    @property
    def multipliers(self) -> tuple[float, ...]:
        last = len(self.shapes) - 1
        return tuple(fan_in ** (-1.0 if i == last else -0.5)  # Python floats: weakly typed
                     for i, (fan_in, _) in enumerate(self.shapes))

    def init(self, weights) -> tuple:
        """The parameters of a network from the stored ``(fan_in, fan_out)`` matrices."""
        return tuple(jnp.asarray(w).T for w in weights)

    def _scales(self) -> tuple[float, ...]:
        """Per layer, the multiplier times the activation's input scale (none for the last)."""
        scale = ACTIVATIONS[self.activation].scale
        last = len(self.shapes) - 1
        return tuple(m if i == last else m * scale for i, m in enumerate(self.multipliers))

    def forward(self, params, xt):
        """``(out, cache)`` for inputs ``xt`` of shape ``(d, N)``; ``out`` is ``(k, N)``.

        ``cache`` holds, per layer, its input and (hidden layers) the activation's argument
        ``u`` and output ``a``, for :meth:`backward`.
        """
        act = ACTIVATIONS[self.activation]
        last = len(params) - 1
        h, cache = xt, []
        for i, (w, c) in enumerate(zip(params, self._scales())):
            u = c * (w @ h)
            if i == last:
                cache.append((h, None, None))
                return u, tuple(cache)
            a = act.fn(u)
            cache.append((h, u, a))
            h = a

    def backward(self, params, cache, g):
        """Gradients of the loss w.r.t. every layer, given ``g = dloss/dout``.

        Going down, ``g`` is the gradient w.r.t. the layer's ``u``.
        """
        act = ACTIVATIONS[self.activation]
        scales = self._scales()
        grads = [None] * len(params)
        for i in range(len(params) - 1, -1, -1):
            h, _, _ = cache[i]
            grads[i] = scales[i] * (g @ h.T)
            if i > 0:
                _, u, a = cache[i - 1]
                g = ((scales[i] * params[i]).T @ g) * act.grad(u, a)
        return tuple(grads)
