"""One tile of one level, computed and written by whichever process runs it.

This is the unit of work a Dask task carries: it reads the config and the random inputs from
the store (the single source of truth), computes the tile's pixels with the sweep's system
(:mod:`fractalsweep.systems`: training runs, or a classic fractal), writes
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

from . import store
from .grid import flat_pixels
from .kernel import COMPILER_OPTIONS
from .systems import system_of


@lru_cache(maxsize=1)
def _device() -> dict:
    """What computed the tiles of this process (its versions are looked up once)."""
    from . import __version__  # set once the package's __init__ has run, as it has by now

    device = jax.devices()[0]
    return {"platform": device.platform, "device_kind": device.device_kind,
            "device": str(device), "fractalsweep": __version__,
            "jax": jax.__version__, "jaxlib": version("jaxlib"),
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "xla_options": COMPILER_OPTIONS.get(device.platform, {}), "host": socket.gethostname(),
            "pid": os.getpid()}


def _compute(cfg, arrays, xs, ys, todo, kernel) -> dict[str, np.ndarray]:
    """The system's results for the ``todo`` pixels of a tile with axis values ``xs``, ``ys``."""
    gx, gy = (g[todo] for g in flat_pixels(xs, ys))
    return system_of(cfg).compute(cfg, arrays, gx, gy, kernel=kernel) if gx.size else {}


@lru_cache(maxsize=4)
def _run_level(path: str, level: int, run: str) -> store.LevelGroup:
    """Level ``level`` of the store at ``path``, opened once per run in each process: the
    run's driver holds the store's lock, so its arrays do not change shape under it, and
    the tiles after the first are spared reading their metadata (about 8 ms a tile on a
    local disk). Values are still read per tile, so a damaged chunk fails only its tiles."""
    return store.open_level(store.open_root(path, mode="r+"), level)


def compute_tile(path: str, level: int, index: tuple[int, int], run: str,
                 kernel: str = "auto") -> dict:
    """Compute tile ``index`` of ``level`` in the store at ``path`` and write it there.

    ``kernel`` chooses the kernel of a training system (:class:`fractalsweep.Execution`).

    Pixels the level copied from another level (``reused``) are kept, not recomputed.
    ``run`` names the driver's run (a new one for each computation of a level) in the
    record, so rates are measured per run; a process reads the level once per run.

    Returns
    -------
    dict
        The tile's provenance record (also stored): ``level``, ``tile``, ``pixels``,
        ``computed``, ``steps`` (a fractal's: ``max_iter``), ``converged``, ``diverged``,
        ``min``, ``max``, ``seconds`` (kernel time, including a first compile),
        ``finished``, ``run``, ``dtype``, and the device,
        versions, XLA flags, the kernel's XLA options and host.
    """
    job_cfg, arrays = store.read_inputs(path)
    lvl = _run_level(path, level, run)
    cfg = lvl.config(job_cfg)
    sy, sx = lvl.tiling.slices(index)
    xs, ys = store.coordinates(lvl, "x", sx), store.coordinates(lvl, "y", sy)
    reused = lvl.array("reused")[sy, sx].astype(bool).ravel()
    start = time.perf_counter()
    computed = _compute(cfg, arrays, xs, ys, ~reused, kernel)
    seconds = time.perf_counter() - start
    results = {"reused": reused.astype(np.uint8)}
    for name in lvl.arrays:
        values = (lvl.array(name)[sy, sx].ravel() if reused.any()
                  else np.empty(reused.size, lvl.array(name).dtype))
        if computed:
            values[~reused] = computed[name]
        results[name] = values
    score = results["score"]
    summary = {
        "level": level,
        "tile": [int(i) for i in index],
        "pixels": int(score.size),
        "computed": int((~reused).sum()),
        "steps": cfg.training.steps if cfg.system.kind == "training" else cfg.system.max_iter,
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
