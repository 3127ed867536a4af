"""The on-disk layout of a sweep: one zarr v3 store per sweep (see docs/store.md).

::

    /                         attrs["fractalsweep"]: format, resolved config, versions, created
    /inputs/w0, w1, ...       the init weights actually used (float64)
    /inputs/X, Y              the data set (float64)
    /inputs/batch_idx         minibatch rows per step (int32; minibatch sweeps only)
    /levels/<L>/              attrs: view (exact decimal strings), resolution, tile, dtype
    /levels/<L>/score         float64 (y, x); row 0 is the bottom of the picture; NaN = not computed
    /levels/<L>/first_nonfinite  int32 (y, x); -1 = always finite, -2 = not computed
    /levels/<L>/final_loss    float64 (y, x): last normalized loss
    /levels/<L>/x, y          float64: the exact hyperparameter value of each column / row
    /levels/<L>/tiles         uint8 (tile_y, tile_x): 1 once a tile's data is written

The per-pixel arrays are chunked by tile, so a tile writes whole chunks only and tiles never
share a chunk; the tile's marker (its own chunk of ``tiles``) is written after its data.
Only the coordinating process creates arrays or writes attributes.
"""

from __future__ import annotations

import datetime
import platform
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version

import numpy as np
import zarr

from . import __version__
from .config import ConfigError, SweepConfig, from_dict
from .grid import Tiling, axis_values

FORMAT = 1
PIXEL_ARRAYS = {  # name -> (dtype, fill value meaning "not computed")
    "score": ("float64", np.nan),
    "first_nonfinite": ("int32", -2),
    "final_loss": ("float64", np.nan),
}


class StoreError(ConfigError):
    """A store that cannot be used as asked (another config, not a sweep, missing level)."""


def _versions() -> dict[str, str]:
    pkgs = ("jax", "jaxlib", "numpy", "zarr", "dask", "distributed")
    return {"python": platform.python_version(), "fractalsweep": __version__,
            **{p: version(p) for p in pkgs}}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _first_difference(a, b, prefix=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            diff = _first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if diff:
                return diff
        return None
    return None if a == b else (prefix.rstrip("."), a, b)


@dataclass(frozen=True)
class Level:
    """One computed view of a sweep: its group in the store plus its tiling."""

    group: zarr.Group
    tiling: Tiling

    @property
    def done(self) -> np.ndarray:
        return self.group["tiles"][:].astype(bool)

    def pending(self) -> list[tuple[int, int]]:
        done = self.done
        return [ix for ix in self.tiling.indices() if not done[ix]]


def open_root(path: str, mode: str = "r") -> zarr.Group:
    try:
        root = zarr.open_group(path, mode=mode)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        raise StoreError(f"{path}: no fractalsweep store there") from None
    if "fractalsweep" not in root.attrs:
        raise StoreError(f"{path}: a zarr group, but not a fractalsweep store")
    return root


def config_of(path: str) -> SweepConfig:
    """The resolved config a store was made with."""
    return from_dict(open_root(path).attrs["fractalsweep"]["config"])


def create_or_check(path: str, cfg: SweepConfig, inputs: dict[str, np.ndarray]) -> zarr.Group:
    """Create a store for ``cfg``, or check that an existing one was made by the same config.

    Raises
    ------
    StoreError
        If the store exists and holds another configuration; nothing in it is changed.
    """
    try:
        root = zarr.open_group(path, mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        root = None
    if root is not None:
        meta = root.attrs.get("fractalsweep")
        if meta is None:
            raise StoreError(f"{path} exists and is not a fractalsweep store; choose another --store")
        diff = _first_difference(meta["config"], cfg.to_dict())
        if diff:
            key, theirs, ours = diff
            raise StoreError(
                f"{path} holds another configuration ({key} is {theirs!r} there, {ours!r} here);"
                " use the same settings to resume, or a new --store"
            )
        return zarr.open_group(path, mode="r+")
    root = zarr.open_group(path, mode="w-")
    inputs_group = root.create_group("inputs")
    for name, value in inputs.items():
        inputs_group.create_array(name, data=value)
    root.create_group("levels")
    root.attrs["fractalsweep"] = {"format": FORMAT, "config": cfg.to_dict(),
                                  "versions": _versions(), "created": _now()}
    return root


@lru_cache(maxsize=4)
def read_inputs(path: str) -> dict[str, np.ndarray]:
    """The init, data and minibatch arrays of a store (cached per process)."""
    group = open_root(path)["inputs"]
    return {name: arr[...] for name, arr in group.arrays()}


def ensure_level(root: zarr.Group, index: int, cfg: SweepConfig, view: dict) -> Level:
    """Create level ``index`` with window ``view`` (``{"x": axis, "y": axis}``) if new."""
    name = str(index)
    levels = root["levels"]
    if name not in levels:
        nx, ny = cfg.grid.resolution
        t = cfg.grid.tile
        group = levels.create_group(name)
        for field, (dtype, fill) in PIXEL_ARRAYS.items():
            group.create_array(field, shape=(ny, nx), chunks=(t, t), dtype=dtype,
                               fill_value=fill, dimension_names=("y", "x"))
        for axis, n in (("x", nx), ("y", ny)):
            values = axis_values(view[axis], n, cfg.dtype).astype(np.float64)
            group.create_array(axis, data=values, dimension_names=(axis,))
        tiling = Tiling(ny, nx, t)
        group.create_array("tiles", shape=tiling.shape, chunks=(1, 1), dtype="uint8",
                           fill_value=0, dimension_names=("tile_y", "tile_x"))
        group.attrs.update({
            "view": {a: {"lo": view[a].lo, "hi": view[a].hi, "scale": view[a].scale,
                         "label": view[a].label} for a in ("x", "y")},
            "resolution": [nx, ny], "tile": t, "dtype": cfg.dtype, "scheme": cfg.scheme,
            "created": _now(),
        })
    return open_level(root, index)


def open_level(root: zarr.Group, index: int) -> Level:
    levels = root["levels"]
    if str(index) not in levels:
        have = sorted(int(k) for k in levels.group_keys())
        raise StoreError(f"no level {index} in this store; levels are {have}")
    group = levels[str(index)]
    nx, ny = group.attrs["resolution"]
    return Level(group, Tiling(ny, nx, group.attrs["tile"]))


def write_tile(level: Level, index: tuple[int, int], results: dict[str, np.ndarray]) -> None:
    """Write one tile's pixel arrays (whole chunks), then its completion marker."""
    sy, sx = level.tiling.slices(index)
    shape = (sy.stop - sy.start, sx.stop - sx.start)
    for field, (dtype, _) in PIXEL_ARRAYS.items():
        level.group[field][sy, sx] = np.asarray(results[field][: shape[0] * shape[1]],
                                                dtype=dtype).reshape(shape)
    level.group["tiles"][index] = 1
