"""The network: a fully connected MLP, its forward and hand-written backward pass.

The paper's network is the default: mean-field parameterization, no biases, tanh
(docs/kernel.md). Weights are drawn unscaled from N(0, 1) (:func:`init`); the scaling
lives in the forward pass (mean field) or is applied to the init (standard), so one stored
init serves every parameterization and width-scaled learning rate.

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
>>> net = MLP(shapes=((3, 4), (4, 1)), biases=True)
>>> rng = np.random.default_rng(0)
>>> params = net.init((rng.normal(size=(3, 4)), rng.normal(size=(4, 1))))
>>> out, cache = net.forward(params, rng.normal(size=(3, 5)))
>>> out.shape, [(g.w.shape, g.b.shape) for g in net.backward(params, cache, out)]
((1, 5), [((4, 3), (4, 1)), ((1, 4), (1, 1))])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import elementary

SQRT2 = 2.0**0.5


# The precision of every matrix product in the kernels: on a GPU, XLA and Triton would
# otherwise feed float32 products to the tensor cores as TF32 (about three significant
# digits). A CPU computes float32 and float64 products in full either way.
MATMUL_PRECISION = "highest"


def full_precision(fn):
    """``fn`` traced with every matrix product at :data:`MATMUL_PRECISION` (wrap it before
    ``jax.jit``)."""
    @wraps(fn)
    def traced(*args, **kwargs):
        with jax.default_matmul_precision(MATMUL_PRECISION):
            return fn(*args, **kwargs)

    return traced


@dataclass(frozen=True)
class Activation:
    """``phi(z) = fn(scale * z)``, with ``grad(u, a)`` the derivative of ``fn`` at ``u``.

    Writing every activation as a function of a scaled input lets a layer fold the scale
    into its multiplier: ``fn((scale * m) * (W @ h))``, and in the backward pass into the
    weights, so neither costs a pass over the activations. ``grad`` gets ``a = fn(u)``
    too, so a derivative can reuse the output (tanh: ``1 - a**2``); XLA drops ``u`` where
    a derivative does not use it.

    ``own``, where set, is how :class:`MLP` (the XLA kernel) evaluates ``fn``: its own
    code on some platforms (tanh: float64 on a CPU, :mod:`fractalsweep.elementary`). The
    notebook's method evaluates ``fn`` itself; the fused GPU kernel names its own choice
    (``fused.OWN``: float64 tanh as on a CPU).
    """

    fn: Callable
    grad: Callable
    scale: float = 1.0
    own: Callable | None = None

    @property
    def kernel_fn(self) -> Callable:
        return self.own or self.fn


def _tanh_grad(u, a):
    return 1 - a * a


def _relu_grad(u, a):
    return (a > 0).astype(a.dtype)  # 0 at the kink, as autodiff gives


def _identity(u):
    return u


def _identity_grad(u, a):
    return jnp.ones_like(a)


def _gelu(u):
    return jax.nn.gelu(u, approximate=False)


def _gelu_grad(u, a):
    return 0.5 * (1 + jax.lax.erf(u * SQRT2 / 2)) + u * jnp.exp(-0.5 * u * u) / (2 * np.pi) ** 0.5


def _sin_grad(u, a):
    return jnp.cos(u)


ACTIVATIONS = {
    "tanh": Activation(jnp.tanh, _tanh_grad, SQRT2, own=elementary.tanh),  # tanh(sqrt(2) z)
    "relu": Activation(jax.nn.relu, _relu_grad, SQRT2),  # sqrt(2) relu(z) = relu(sqrt(2) z)
    "identity": Activation(_identity, _identity_grad),
    "gelu": Activation(_gelu, _gelu_grad),  # z * Phi(z), the exact (erf) form
    "sin": Activation(jnp.sin, _sin_grad),
}
PARAMETERIZATIONS = ("mean_field", "standard")


class Layer(NamedTuple):
    """One layer's parameters: ``w`` is ``(fan_out, fan_in)``, ``b`` is ``(fan_out, 1)`` or
    None without biases."""

    w: jax.Array
    b: jax.Array | None


@dataclass(frozen=True)
class MLP:
    """A fully connected network, static description (hashable; the parameters live apart).

    Parameters
    ----------
    shapes : tuple of (fan_in, fan_out)
        One entry per weight matrix, input layer first.
    activation : str
        A key of :data:`ACTIVATIONS`.
    parameterization : str
        ``"mean_field"``: a layer computes ``z = m * (W @ h) + b`` with ``m = 1/sqrt(fan_in)``
        for hidden layers and ``1/fan_in`` (divided by ``sqrt(fan_in)`` once more) for the
        output layer, weights N(0, 1). ``"standard"``: ``z = W @ h + b`` with the weights
        drawn N(0, 1/fan_in) (the stored N(0, 1) init times ``1/sqrt(fan_in)``).
    biases : bool
        A bias per unit, initialised to zero.
    residual : bool
        ``h <- h + phi(z)`` for the hidden layers whose input is a hidden layer of the same
        width (every layer but the first and the last).
    """

    shapes: tuple[tuple[int, int], ...]
    activation: str = "tanh"
    parameterization: str = "mean_field"
    biases: bool = False
    residual: bool = False

    @classmethod
    def from_config(cls, cfg) -> MLP:
        m = cfg.model
        return cls(shapes=cfg.layer_shapes, activation=m.activation,
                   parameterization=m.parameterization, biases=m.biases, residual=m.residual)

    @property
    def multipliers(self) -> tuple[float, ...]:
        """Per layer, the factor ``m`` in ``z = m * (W @ h) + b`` (Python floats: weakly typed)."""
        if self.parameterization == "standard":
            return (1.0,) * len(self.shapes)
        last = len(self.shapes) - 1
        return tuple(fan_in ** (-1.0 if i == last else -0.5)
                     for i, (fan_in, _) in enumerate(self.shapes))

    def scales(self) -> tuple[float, ...]:
        """Per layer, the multiplier times the activation's input scale (none for the last)."""
        scale = ACTIVATIONS[self.activation].scale
        last = len(self.shapes) - 1
        return tuple(m if i == last else m * scale for i, m in enumerate(self.multipliers))

    def skips(self) -> tuple[bool, ...]:
        """Per layer, whether its input is added to its output (residual connection)."""
        last = len(self.shapes) - 1
        return tuple(self.residual and 0 < i < last and fan_in == fan_out
                     for i, (fan_in, fan_out) in enumerate(self.shapes))

    def init(self, weights) -> tuple[Layer, ...]:
        """The parameters of a network from the stored ``(fan_in, fan_out)`` matrices."""
        params = []
        for w in weights:
            w = jnp.asarray(w)
            if self.parameterization == "standard":
                w = w * w.shape[0] ** -0.5
            b = jnp.zeros((w.shape[1], 1), w.dtype) if self.biases else None
            params.append(Layer(w.T, b))
        return tuple(params)

    def forward(self, params, xt):
        """``(out, cache)`` for inputs ``xt`` of shape ``(d, N)``; ``out`` is ``(k, N)``.

        A layer evaluates ``u = scale * z`` (the activation's input scale folded into the
        multiplier) and ``a = fn(u)``. ``cache`` holds, per layer, its input ``h`` and
        (hidden layers) ``u`` and ``a``, for :meth:`backward`.
        """
        act = ACTIVATIONS[self.activation]
        last = len(params) - 1
        h, cache = xt, []
        for i, (layer, c, skip) in enumerate(zip(params, self.scales(), self.skips())):
            u = c * (layer.w @ h)
            if layer.b is not None:
                u = u + (act.scale if i < last else 1.0) * layer.b
            if i == last:
                cache.append((h, None, None))
                return u, tuple(cache)
            a = act.kernel_fn(u)
            cache.append((h, u, a))
            h = a + h if skip else a

    def backward(self, params, cache, g):
        """Gradients of the loss w.r.t. every layer (a tuple of :class:`Layer`), given
        ``g = dloss/dout``.

        Going down, ``g`` is the gradient w.r.t. a layer's ``u`` and ``gh`` w.r.t. its input.
        """
        act = ACTIVATIONS[self.activation]
        scales, skips = self.scales(), self.skips()
        last = len(params) - 1
        grads, gh = [None] * len(params), None
        for i in range(last, -1, -1):
            h, _, _ = cache[i]
            db = None
            if params[i].b is not None:
                db = (act.scale if i < last else 1.0) * jnp.sum(g, axis=1, keepdims=True)
            grads[i] = Layer(scales[i] * (g @ h.T), db)
            if i > 0:
                through = (scales[i] * params[i].w).T @ g
                gh = through + gh if skips[i] else through
                _, u, a = cache[i - 1]
                g = gh * act.grad(u, a)
        return tuple(grads)
