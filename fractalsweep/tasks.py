"""Tasks: where the data comes from and what loss is minimised.

A task draws its data from a key and defines the loss of a prediction; the kernel never
sees anything else, so a new task is one class added to :data:`TASKS`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


class RandomRegression:
    """Fit pure-noise targets: X ~ N(0, 1), Y ~ N(0, 1), MSE loss (science.md 3)."""

    def draw(self, key, n: int, input_dim: int, target_dim: int, dtype) -> dict:
        key, kx = jax.random.split(key)
        key, ky = jax.random.split(key)
        return {
            "X": jax.random.normal(kx, (n, input_dim), dtype=dtype),
            "Y": jax.random.normal(ky, (n, target_dim), dtype=dtype),
        }

    @staticmethod
    def loss(out, yt) -> jax.Array:
        """Mean squared error of the outputs ``out`` against the targets, both ``(k, N)``."""
        return jnp.mean((out - yt) ** 2)

    @staticmethod
    def loss_grad(out, yt) -> jax.Array:
        """The gradient of :meth:`loss` with respect to ``out``."""
        return (2 / out.size) * (out - yt)


TASKS = {"random_regression": RandomRegression()}
