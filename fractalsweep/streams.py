"""The random streams (docs/kernel.md, "Random streams"): init, data and minibatch rows.

Everything random is drawn here, once per sweep, on the host, and saved in the store; the
kernel receives plain arrays. ``scheme="legacy"`` selects JAX's pre-2024 random bits (the
published images); ``"default"`` the current ones.
"""

from __future__ import annotations

import jax
import numpy as np

from . import models
from .tasks import TASKS


def draw(cfg) -> dict[str, np.ndarray]:
    """Init weights ``w0..``, data (``X``, ``Y``) and, for minibatches, ``batch_idx``.

    Drawn in float64 whatever the working dtype, so a float32 sweep trains the rounded
    float64 init rather than a different one. The task draws its data from the key left
    after the init's split (docs/kernel.md, "Random streams").
    """
    with jax.enable_x64(True), jax.threefry_partitionable(cfg.scheme == "default"):
        key, k_init = jax.random.split(jax.random.PRNGKey(cfg.seed))
        weights = models.init(k_init, cfg.layer_shapes, np.float64)
        data = TASKS[cfg.data.task].draw(cfg, key)
        out = {f"w{i}": np.asarray(w) for i, w in enumerate(weights)}
        out.update({k: np.asarray(v) for k, v in data.items()})
        if cfg.batch_size is not None:
            keys = jax.random.split(jax.random.PRNGKey(cfg.training.batch_seed), cfg.training.steps)
            idx = jax.vmap(lambda k: jax.random.randint(k, (cfg.batch_size,), 0, cfg.n_data))(keys)
            out["batch_idx"] = np.asarray(idx, dtype=np.int32)
    return out
