"""The network: a mean-field MLP without biases (science.md section 2).

Weights are a tuple of matrices, drawn unscaled from N(0, 1); all scaling lives in the
forward pass, so one init serves every width-scaled learning rate.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

SQRT2 = 2.0**0.5

ACTIVATIONS = {
    "tanh": lambda z: jnp.tanh(SQRT2 * z),
    "relu": lambda z: SQRT2 * jax.nn.relu(z),
    "identity": lambda z: z,
}


def init(key, shapes, dtype) -> tuple:
    """One N(0, 1) matrix per layer, each from its own split of ``key`` (science.md 4)."""
    keys = jax.random.split(key, len(shapes))
    return tuple(jax.random.normal(k, s, dtype=dtype) for k, s in zip(keys, shapes))


def forward(weights, X, activation: str):
    """Each layer divides by sqrt(fan_in); the output is divided by sqrt(fan_in) once more."""
    phi = ACTIVATIONS[activation]
    h = X
    for i, w in enumerate(weights):
        z = h @ w / jnp.sqrt(float(w.shape[0]))
        h = z / jnp.sqrt(float(w.shape[0])) if i == len(weights) - 1 else phi(z)
    return h
