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
from importlib.metadata import version

import jax
import numpy as np

from . import kernel, store
from .grid import flat_pixels


def _device() -> dict:
    device = jax.devices()[0]
    return {"platform": device.platform, "device_kind": device.device_kind,
            "device": str(device), "jax": jax.__version__, "jaxlib": version("jaxlib"),
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "host": socket.gethostname(),
            "pid": os.getpid()}


def _train(cfg, arrays, xs, ys, todo) -> dict[str, np.ndarray]:
    """Kernel results for the ``todo`` pixels of a tile with axis values ``xs``, ``ys``."""
    gx, gy = (g[todo] for g in flat_pixels(xs, ys))
    return kernel.train(cfg, arrays, gx, gy) if gx.size else {}


def compute_tile(path: str, level: int, index: tuple[int, int], run: str | None = None) -> dict:
    """Compute tile ``index`` of ``level`` in the store at ``path`` and write it there.

    Pixels the level copied from another level (``reused``) are kept, not recomputed.
    ``run`` names the driver's run in the record, so rates are measured per run.

    Returns
    -------
    dict
        The tile's provenance record (also stored): ``level``, ``tile``, ``pixels``,
        ``computed``, ``converged``, ``diverged``, ``min``, ``max``, ``seconds`` (kernel time,
        including a first compile), ``finished``, ``run``, ``dtype``, and the device,
        versions, XLA flags and host.
    """
    job_cfg, arrays = store.read_inputs(path)
    lvl = store.open_level(store.open_root(path, mode="r+"), level)
    cfg = lvl.config(job_cfg)
    sy, sx = lvl.tiling.slices(index)
    xs = lvl.group["x"][sx].astype(cfg.dtype)
    ys = lvl.group["y"][sy].astype(cfg.dtype)
    reused = lvl.group["reused"][sy, sx].astype(bool).ravel()
    start = time.perf_counter()
    computed = _train(cfg, arrays, xs, ys, ~reused)
    seconds = time.perf_counter() - start
    results = {"reused": reused.astype(np.uint8)}
    for name in lvl.arrays:
        values = (lvl.group[name][sy, sx].ravel() if reused.any()
                  else np.empty(reused.size, lvl.group[name].dtype))
        if computed:
            values[~reused] = computed[name]
        results[name] = values
    score = results["score"]
    summary = {
        "level": level,
        "tile": [int(i) for i in index],
        "pixels": int(score.size),
        "computed": int((~reused).sum()),
        "steps": cfg.training.steps,
        "converged": int((score < 0).sum()),
        "diverged": int((score >= 0).sum()),
        "min": float(score.min()),
        "max": float(score.max()),
        "seconds": seconds,
        "finished": datetime.datetime.now(datetime.UTC).isoformat(),
        "run": run,
        "dtype": cfg.dtype,
        **_device(),
    }
    store.write_tile(lvl, index, results, summary)
    return summary
