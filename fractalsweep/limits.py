"""What a new level will take, estimated before anything is created, and the limits that
refuse what cannot work.

A level is a few arrays of one chunk file per tile each, read back whole by the
coordinator (its markers, a ladder's shared pixels) and by every reader (render, info,
dimension). So its cost is known from its resolution, tile size and arrays alone: files,
bytes on disk (each file takes at least one filesystem block) and the memory to hold one of
its float64 arrays a few times over. :func:`check` refuses a level that exceeds the free disk,
the available memory or :data:`MAX_FILES`, with one line holding the estimate, before any
file is written; ``limits=False`` (``--no-limits``) is the override for the truly large.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import LimitError
from .grid import Tiling, auto_tile

__all__ = ["Estimate", "LimitError", "check", "estimate"]

MAX_FILES = 1_000_000  # chunk files per level: beyond, listing and copying a store crawls
BLOCK = 4096  # bytes a small file takes on disk (one block of a usual filesystem)
READ_COPIES = 4  # a reader holds a float64 array of the level this many times (render, info)
PER_TILE_FILES = 2  # besides the per-pixel chunks: a tile's marker and provenance
METADATA_FILES = 5  # zarr.json of the level, of x, y, provenance and tiles (+1 per array)
# A new store's groups (root, inputs, levels: a folder and a zarr.json each), and per input
# array its folders (its own, c/, one per chunk row), zarr.json and its chunk's last block.
STORE_BLOCKS = 6
INPUT_ARRAY_BLOCKS = 5


@dataclass(frozen=True)
class Estimate:
    """The cost of one level: pixels, tiles, chunk files, bytes on disk and the peak memory
    (reading one of its arrays back, or drawing a new store's inputs)."""

    pixels: int
    tiles: int
    files: int
    disk_bytes: int
    memory_bytes: int
    inputs_bytes: int = 0  # a new store's inputs, part of both

    def __str__(self) -> str:
        return (f"{self.pixels:,} pixels in {self.tiles:,} tile{'s' * (self.tiles > 1)}: "
                f"{self.files:,} files, about "
                f"{_size(self.disk_bytes)} on disk and {_size(self.memory_bytes)} of memory at "
                "its peak")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def estimate(resolution: tuple[int, int], tile: int | None, array_dtypes: list[str],
             inputs: tuple[int, int] | None = None) -> Estimate:
    """The cost of a level of ``resolution`` (nx, ny) whose per-pixel arrays have
    ``array_dtypes``; ``inputs``, the bytes and number of arrays of a new store's inputs,
    adds that store (its inputs are held in memory once). On disk every file and folder
    takes at least a block: with the arrays counted uncompressed, the estimate is an upper
    bound on a usual filesystem.

    >>> e = estimate((4096, 4096), None, ["float64", "int32", "float64", "uint8"])
    >>> e.tiles, e.files
    (1024, 6217)
    """
    nx, ny = resolution
    t = tile or auto_tile(nx, ny)
    ty, tx = Tiling(ny, nx, t).shape
    tiles = ty * tx
    per_pixel = sum(np.dtype(d).itemsize for d in array_dtypes)
    files = (tiles * (len(array_dtypes) + PER_TILE_FILES) + tx + ty  # chunks
             + len(array_dtypes) + METADATA_FILES)
    # folders: the level's; each tiled array's own, its c/ and one per chunk row; x's and y's
    folders = 1 + (len(array_dtypes) + PER_TILE_FILES) * (2 + ty) + 2 * 2
    drawn, arrays = inputs or (0, 0)
    store = (STORE_BLOCKS + INPUT_ARRAY_BLOCKS * arrays) * BLOCK if inputs else 0
    disk = nx * ny * per_pixel + (files + folders) * BLOCK + drawn + store
    memory = max(nx * ny * 8 * READ_COPIES, 3 * drawn)
    return Estimate(nx * ny, tiles, files, int(disk), int(memory), int(drawn))


def available_memory() -> int | None:
    """Bytes of memory available to a new process (Linux ``MemAvailable``), if known."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def free_disk(path: str) -> int | None:
    """Free bytes on the filesystem that will hold ``path`` (None for URLs)."""
    if "://" in path:
        return None
    place = Path(path).absolute()
    while not place.exists():
        place = place.parent
    return shutil.disk_usage(place).free


def check(what: str, path: str, est: Estimate, limits: bool = True) -> None:
    """Refuse ``est`` (one line naming ``what`` and the estimate) if it cannot work here.

    Raises
    ------
    LimitError
        More files than :data:`MAX_FILES`, more bytes than the free disk, or more memory
        than is available; unless ``limits`` is False.
    """
    if not limits:
        return
    reasons = []
    if est.files > MAX_FILES:
        reasons.append(f"more than the {MAX_FILES:,} files allowed per level")
    free = free_disk(path)
    if free is not None and est.disk_bytes > free:
        reasons.append(f"more than the {_size(free)} free on its disk")
    memory = available_memory()
    if memory is not None and est.memory_bytes > memory:
        reasons.append(f"more than the {_size(memory)} of memory available")
    if reasons:
        advice = ("draw fewer inputs (ensemble.seeds, data.size, the network's size)"
                  if est.inputs_bytes and 3 * est.inputs_bytes >= est.memory_bytes
                  else "use a lower resolution (or a larger --tile)")
        raise LimitError(f"{what}: {est}; {' and '.join(reasons)}; {advice}, or --no-limits "
                         "if this is meant")


def level_estimate(cfg, resolution: tuple[int, int], tile: int | None,
                   new_store: bool) -> Estimate:
    """:func:`estimate` of a level of ``cfg`` (its arrays as its system names them), with
    the store's inputs if the store is new."""
    from .systems import system_of

    dtypes = [dtype for dtype, _ in system_of(cfg).outputs(cfg).values()] + ["uint8"]  # reused
    return estimate(resolution, tile, dtypes,
                    (inputs_bytes(cfg), input_arrays(cfg)) if new_store else None)


def input_arrays(cfg) -> int:
    """Arrays under a store's ``inputs/`` (docs/store.md): a weight matrix per layer, X and
    Y, the minibatch rows, the ensemble members' varied ones and the Lyapunov direction."""
    if cfg.system.kind != "training":
        return 0
    weights = cfg.model.depth
    member = {"init": weights, "data": 2, "both": weights + 2}[cfg.ensemble.vary]
    return (weights + 2 + (cfg.batch_size is not None) + (cfg.ensemble.seeds > 1) * member
            + cfg.measures.lyapunov * weights)


def inputs_bytes(cfg) -> int:
    """Bytes of a store's inputs: init weights, data and minibatch rows, and those of the
    measures (docs/measures.md): the ensemble members' varied inputs and the Lyapunov
    direction (one more set of weights).

    >>> from fractalsweep.config import resolve
    >>> plain = inputs_bytes(resolve({}))
    >>> inputs_bytes(resolve({"ensemble": {"seeds": 3}})) - plain  # two more inits
    4352
    """
    if cfg.system.kind != "training":
        return 0
    weights = cfg.n_params * 8
    data = cfg.n_data * (cfg.input_dim + cfg.data.target_dim) * 8
    batches = cfg.training.steps * (cfg.batch_size or 0) * 4
    member = {"init": weights, "data": data, "both": weights + data}[cfg.ensemble.vary]
    return (weights + data + batches + (cfg.ensemble.seeds - 1) * member
            + cfg.measures.lyapunov * weights)


def tiles_of(resolution: tuple[int, int], tile: int | None) -> int:
    """Tiles of a level, counted without listing them (a huge level has millions)."""
    nx, ny = resolution
    return math.prod(Tiling(ny, nx, tile or auto_tile(nx, ny)).shape)
