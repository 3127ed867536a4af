"""One tile of one level, computed and written by whichever process runs it.

This is the unit of work a Dask task carries: it reads the config and the random inputs from
the store (the single source of truth), trains the tile's networks with the kernel, writes
whole chunks, its provenance and then its marker, and returns only a small summary.
"""

from __future__ import annotations

import datetime
import os
import socket
import time
from functools import lru_cache
from importlib.metadata import version

import jax
import numpy as np

from . import kernel, store
from .grid import tile_pixels


@lru_cache(maxsize=4)
def _prepared(path: str):
    cfg = store.config_of(path)
    return cfg, kernel.prepare(cfg, store.read_inputs(path))


def _device() -> dict:
    device = jax.devices()[0]
    return {"platform": device.platform, "device_kind": device.device_kind,
            "device": str(device), "jax": jax.__version__, "jaxlib": version("jaxlib"),
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "host": socket.gethostname(),
            "pid": os.getpid()}


def compute_tile(path: str, level: int, index: tuple[int, int]) -> dict:
    """Compute tile ``index`` of ``level`` in the store at ``path`` and write it there.

    Returns
    -------
    dict
        The tile's provenance record (also stored): ``level``, ``tile``, ``pixels``,
        ``converged``, ``diverged``, ``min``, ``max``, ``seconds`` (kernel time, including a
        first compile), ``finished``, ``dtype``, and the device, versions, XLA flags and host.
    """
    cfg, (weights, data, batch_idx) = _prepared(path)
    lvl = store.open_level(store.open_root(path, mode="r+"), level)
    sy, sx = lvl.tiling.slices(index)
    xs = lvl.group["x"][sx].astype(cfg.dtype)
    ys = lvl.group["y"][sy].astype(cfg.dtype)
    px, py = tile_pixels(xs, ys, cfg.grid.tile, cfg.grid.group)
    start = time.perf_counter()
    out = kernel.compile_kernel(cfg)(px, py, weights, data, batch_idx)
    results = {k: np.asarray(v) for k, v in out.items()}
    seconds = time.perf_counter() - start
    score = results["score"][: xs.size * ys.size]
    summary = {
        "level": level,
        "tile": [int(i) for i in index],
        "pixels": int(score.size),
        "steps": cfg.training.steps,
        "converged": int((score < 0).sum()),
        "diverged": int((score >= 0).sum()),
        "min": float(score.min()),
        "max": float(score.max()),
        "seconds": seconds,
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "dtype": cfg.dtype,
        **_device(),
    }
    store.write_tile(lvl, index, results, summary)
    return summary
