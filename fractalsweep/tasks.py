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
    def loss(pred, data) -> jax.Array:
        return jnp.mean((pred - data["Y"]) ** 2)


TASKS = {"random_regression": RandomRegression()}
