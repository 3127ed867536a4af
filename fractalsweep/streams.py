"""The random streams (docs/kernel.md, "Random streams"): init, data and minibatch rows.

Everything random is drawn here, once per sweep, on the host, and saved in the store; the
kernel receives plain arrays. ``scheme="legacy"`` selects JAX's pre-2024 random bits (the
published images); ``"default"`` the current ones.

The measures of docs/measures.md draw from streams of their own, keyed
``fold_in(PRNGKey(seed), k)``: stream 0 is the direction of the Lyapunov twin's
perturbation, stream ``k >= 1`` the init and data of ensemble member ``k``. Member 0 is the
sweep's own draw, from ``PRNGKey(seed)``, so it is exactly what a single-seed sweep trains.
"""

from __future__ import annotations

import jax
import numpy as np

from .tasks import TASKS

MEMBERS = "members_"  # prefix of the stacked inputs of ensemble members 1 .. seeds - 1
LYAPUNOV = "lyapunov_"  # prefix of the Lyapunov perturbation's direction, one per layer


def normal_weights(key, shapes) -> tuple:
    """One float64 N(0, 1) matrix per layer, each from its own split of ``key``."""
    keys = jax.random.split(key, len(shapes))
    return tuple(jax.random.normal(k, s, dtype=np.float64) for k, s in zip(keys, shapes))


def _init_and_data(cfg, key) -> dict[str, np.ndarray]:
    """The init weights ``w0..`` and the task's data drawn from one key (the paper's order)."""
    key, k_init = jax.random.split(key)
    weights = normal_weights(k_init, cfg.layer_shapes)
    out = {f"w{i}": np.asarray(w) for i, w in enumerate(weights)}
    out.update({k: np.asarray(v) for k, v in TASKS[cfg.data.task].draw(cfg, key).items()})
    return out


def varied(cfg, arrays: dict) -> list[str]:
    """The names of the inputs an ensemble member draws afresh (``ensemble.vary``)."""
    weights = [f"w{i}" for i in range(cfg.model.depth)]
    data = [name for name in arrays if name not in weights and name != "batch_idx"
            and not name.startswith((MEMBERS, LYAPUNOV))]
    return {"init": weights, "data": data, "both": weights + data}[cfg.ensemble.vary]


def member(cfg, arrays: dict, k: int) -> dict[str, np.ndarray]:
    """The inputs of ensemble member ``k``: the sweep's own for member 0, else its varied
    inputs from the stored stacks and the others (e.g. the minibatch rows) shared.

    >>> from fractalsweep.config import resolve
    >>> cfg = resolve({"ensemble": {"seeds": 3}, "training": {"steps": 2}})
    >>> arrays = draw(cfg)
    >>> bool((member(cfg, arrays, 2)["w0"] == arrays["members_w0"][1]).all())
    True
    >>> member(cfg, arrays, 2)["X"] is arrays["X"]
    True
    """
    if k == 0:
        return arrays
    return arrays | {name: arrays[MEMBERS + name][k - 1] for name in varied(cfg, arrays)}


def draw(cfg) -> dict[str, np.ndarray]:
    """Init weights ``w0..``, data (``X``, ``Y``) and, for minibatches, ``batch_idx``.

    Drawn in float64 whatever the working dtype, so a float32 sweep trains the rounded
    float64 init rather than a different one. The task draws its data from the key left
    after the init's split (docs/kernel.md, "Random streams"). An ensemble adds
    ``members_<name>``: the varied inputs of members 1 .. seeds - 1 stacked on a first
    axis; the Lyapunov measure adds ``lyapunov_w0..``, an N(0, 1) matrix per layer.
    """
    root = jax.random.PRNGKey(cfg.seed)
    with jax.enable_x64(True), jax.threefry_partitionable(cfg.scheme == "default"):
        out = _init_and_data(cfg, root)
        if cfg.ensemble.seeds > 1:
            members = [_init_and_data(cfg, jax.random.fold_in(root, k))
                       for k in range(1, cfg.ensemble.seeds)]
            out.update({MEMBERS + name: np.stack([m[name] for m in members])
                        for name in varied(cfg, out)})
        if cfg.measures.lyapunov:
            direction = normal_weights(jax.random.fold_in(root, 0), cfg.layer_shapes)
            out.update({f"{LYAPUNOV}w{i}": np.asarray(w) for i, w in enumerate(direction)})
        if cfg.batch_size is not None:
            keys = jax.random.split(jax.random.PRNGKey(cfg.training.batch_seed), cfg.training.steps)
            idx = jax.vmap(lambda k: jax.random.randint(k, (cfg.batch_size,), 0, cfg.n_data))(keys)
            out["batch_idx"] = np.asarray(idx, dtype=np.int32)
    return out
