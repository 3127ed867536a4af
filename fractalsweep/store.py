"""The on-disk layout of a sweep: one zarr v3 store per sweep (see docs/store.md).

::

    /                         attrs["fractalsweep"]: format, id, resolved config, its digest,
                              versions, created
    /inputs/w0, w1, ...       the init weights actually used (float64)
    /inputs/X, Y              the data set (float64)
    /inputs/batch_idx         minibatch rows per step (int32; minibatch sweeps only)
    /levels/<L>/              attrs: view (exact decimal strings), resolution, tile, dtype
    /levels/<L>/score         float64 (y, x); row 0 is the bottom of the picture; NaN = not computed
    /levels/<L>/first_nonfinite  int32 (y, x); -1 = always finite, -2 = not computed
    /levels/<L>/final_loss    float64 (y, x): last normalized loss
    /levels/<L>/reused        uint8 (y, x): 1 where the pixel was copied from another level
/levels/<L>/x, y          float64: the exact hyperparameter value of each column / row
    /levels/<L>/provenance    str (tile_y, tile_x): JSON per tile: device, versions, host, timing
/levels/<L>/tiles         uint8 (tile_y, tile_x): 1 once a tile's data is written

The per-pixel arrays are chunked by tile, so a tile writes whole chunks only and tiles never
share a chunk; the tile's marker (its own chunk of ``tiles``) is written after its data.
Every chunk carries checksums (:data:`CODECS`), so damage is found when it is read
(:mod:`fractalsweep.verify`). Only the coordinating process creates arrays or writes
attributes; while it runs, it holds the store's lock file (local stores), so a second driver
is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import hashlib
import json
import numbers
import os
import platform
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, localcontext
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from . import faults
from .config import SCALES, SweepConfig, from_dict
from .decimals import CONTEXT, parse
from .errors import ConfigError, StoreError
from .grid import DOUBLE_DOUBLE, Tiling, auto_tile, axis_values, matching_indices

FORMAT = 1
LOCK = "fractalsweep.lock"
PRECISION_RANK = ("float32", "float64", DOUBLE_DOUBLE)  # a level below its job's is a preview
LEGACY_ARRAYS = ("score", "first_nonfinite", "final_loss")  # levels without an "arrays" attr
# zstd's frame checksum covers the uncompressed bytes, crc32c the bytes on disk: eight bytes
# overwritten anywhere in a chunk fail its read instead of decoding to wrong numbers.
CODECS = (ZstdCodec(level=0, checksum=True), Crc32cCodec())
# Level attribute "integrity": 1 = its chunks carry CODECS, and a finished tile has every
# per-pixel chunk on disk ("reused" and fill values included), so a missing one is damage.
INTEGRITY = 1
CREATING = "fractalsweep-creating"  # root attribute of a store whose creation is under way
WRITE_EVERY_CHUNK = {"write_empty_chunks": True}


def new_array(group: zarr.Group, name: str, **kwargs) -> zarr.Array:
    """An array of the store, with checksums on every chunk."""
    return group.create_array(name, compressors=CODECS, **kwargs)


def read_checked(array: zarr.Array) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """An array's values and the chunks that could not be read (damaged).

    The whole array is read at once; only if that fails is it read chunk by chunk, so a
    damaged chunk is named and the rest still read. A damaged chunk reads as fill value.
    Errors of the filesystem itself (permissions, a vanished store) are raised.
    """
    try:
        return array[...], []
    except OSError:
        raise
    except Exception:  # noqa: BLE001 - any decoding failure is a damaged chunk, named below
        return _read_by_chunk(array)


def _read_by_chunk(array: zarr.Array) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    values = np.full(array.shape, array.fill_value, dtype=array.dtype)
    damaged = []
    for chunk in np.ndindex(*array.cdata_shape):
        where = tuple(slice(i * c, min((i + 1) * c, n))
                      for i, c, n in zip(chunk, array.chunks, array.shape))
        try:
            values[where] = array[where]
        except OSError:
            raise
        except Exception:  # noqa: BLE001 - see above
            damaged.append(chunk)
    return values, damaged


def chunks_on_disk(array: zarr.Array) -> set[tuple[int, ...]]:
    """The chunks of an array that exist in the store (one never written reads as fill)."""
    present = _keys(array.store, f"{array.path}/")
    encode = array.metadata.encode_chunk_key
    return {ix for ix in np.ndindex(*array.cdata_shape) if f"{array.path}/{encode(ix)}" in present}


def _keys(listing, prefix: str) -> set[str]:
    """The keys of the zarr store ``listing`` under the folder ``prefix``.

    Raises
    ------
    OSError
        Where a folder of a local store cannot be listed: zarr's own listing skips it, so
        the chunks and markers in it looked missing (damage, or tiles not finished) where
        the machine refuses; a local store's folders are walked here instead.
    """
    from zarr.core.sync import sync

    if isinstance(listing, zarr.storage.LocalStore):
        return {(Path(folder) / name).relative_to(listing.root).as_posix()
                for folder, _, names in os.walk(listing.root / prefix, onerror=_unless_gone)
                for name in names}

    async def keys():
        return {key async for key in listing.list_prefix(prefix)}

    return sync(keys())


def _unless_gone(exc: OSError) -> None:
    """``os.walk``'s error handler: a folder that is not there holds no keys, as in zarr's
    listing; any other error is the machine's refusal."""
    if not isinstance(exc, FileNotFoundError):
        raise exc


def _versions() -> dict[str, str]:
    from . import __version__  # "0+unknown" in a source tree that was never installed

    pkgs = ("jax", "jaxlib", "numpy", "zarr", "dask", "distributed")
    return {"python": platform.python_version(), "fractalsweep": __version__,
            **{p: version(p) for p in pkgs}}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _first_difference(a, b, prefix=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            diff = _first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if diff:
                return diff
        return None
    return None if a == b else (prefix.rstrip("."), a, b)


@dataclass(frozen=True)
class LevelGroup:
    """One computed view of a sweep: its group in the store plus its tiling."""

    group: zarr.Group
    tiling: Tiling
    _arrays: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def array(self, name: str) -> zarr.Array:
        """The level's array ``name``, its metadata read once per handle (a worker writes
        many tiles through one, :mod:`fractalsweep.tile`)."""
        if name not in self._arrays:
            self._arrays[name] = self.group[name]
        return self._arrays[name]

    @property
    def arrays(self) -> list[str]:
        """The names of the level's per-pixel result arrays."""
        return list(self.group.attrs.get("arrays", LEGACY_ARRAYS))

    @property
    def pixel_arrays(self) -> list[str]:
        """Every per-pixel array a tile writes: the results and ``reused``."""
        return [*self.arrays, "reused"]

    @property
    def done(self) -> np.ndarray:
        """Which tiles are finished; a damaged marker counts as not finished."""
        return read_checked(self.group["tiles"])[0].astype(bool)

    def finished(self, markers: np.ndarray) -> np.ndarray:
        """Per pixel, whether its tile is finished by ``markers`` (its ``tiles`` as read): a
        tile cut short may have written its data, which counts for nothing until its marker
        is set."""
        t, done = self.tiling, markers.astype(bool)
        return np.repeat(np.repeat(done, t.tile, axis=0), t.tile, axis=1)[:t.ny, :t.nx]

    def check_finished(self, path: str, before: str) -> None:
        """A one-line error, for work that needs every pixel (``before`` it), naming the tiles
        missing and the command that computes them."""
        done = self.done
        if not done.all():
            raise StoreError(f"level {self.group.basename} is not finished ("
                             f"{done.size - done.sum()} of {done.size} tiles missing); finish "
                             f"it with 'fractalsweep resume {path}' before {before}")

    def config(self, cfg: SweepConfig) -> SweepConfig:
        """The job's config as this level computes it (its own dtype)."""
        return dataclasses.replace(cfg, dtype=self.group.attrs["dtype"])

    def pending(self) -> list[tuple[int, int]]:
        done = self.done
        return [ix for ix in self.tiling.indices() if not done[ix]]


def check_location(path: str) -> None:
    """A one-line error for a URL whose filesystem fsspec does not know, or knows but cannot
    load (``s3://`` without s3fs installed); a local path passes.

    >>> check_location("foo://bucket/sweep.zarr")
    Traceback (most recent call last):
    ...
    fractalsweep.errors.StoreError: foo://bucket/sweep.zarr: Protocol not known: foo
    """
    if "://" not in path:
        return
    from fsspec import get_filesystem_class

    for part in path.split("::"):  # a chained URL: simplecache::s3://...
        try:
            get_filesystem_class(part.partition("://")[0])
        except (ImportError, ValueError) as exc:  # "Install s3fs to access S3"
            raise StoreError(f"{path}: {' '.join(str(exc).split())}") from None


def open_root(path: str, mode: str = "r") -> zarr.Group:
    check_location(path)
    try:
        root = zarr.open_group(path, mode=mode)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        raise StoreError(f"{path}: {lost_root(path) or NO_STORE}") from None
    except ValueError as exc:
        raise _unreadable_root(path, exc) from None
    if "fractalsweep" not in root.attrs:
        raise StoreError(f"{path}: {missing_metadata(root, NOT_A_STORE)}")
    root_meta(root, path)
    return root


NO_STORE = "no fractalsweep store there"
NOT_A_STORE = "a zarr group, but not a fractalsweep store"
CUT_SHORT = ("its creation was cut short (nothing was computed in it); the 'fractalsweep run' "
             "that made it makes it again")


def missing_metadata(root: zarr.Group, otherwise: str) -> str:
    """Why a group lacks a store's root metadata: lost, while its levels hold finished tiles
    (never to be computed over); a creation cut short (:data:`CUT_SHORT`); or ``otherwise``."""
    finished = sum(marker_chunks(root, key) for key in level_keys(root) if key.isdigit())
    if finished:
        return _lost_over_tiles("the 'fractalsweep' attribute", finished)
    return CUT_SHORT if CREATING in root.attrs else otherwise


def lost_root(path: str) -> str | None:
    """Why a folder without a root ``zarr.json`` is not a store to read or make again: its
    levels hold finished tiles (:func:`marker_chunks`, read from the folder's listing); None
    where they do not."""
    local = _local_path(path)
    if local is None or not (local / "levels").is_dir():
        return None
    listing = zarr.storage.LocalStore(local, read_only=True)
    finished = sum(len(_keys(listing, f"levels/{folder.name}/tiles/c/"))
                   for folder in (local / "levels").iterdir() if folder.name.isdigit())
    return _lost_over_tiles("zarr.json", finished) if finished else None


def _lost_over_tiles(metadata: str, finished: int) -> str:
    return (f"its root metadata ({metadata}) is lost, while its levels hold {finished} "
            "finished tile(s); nothing is computed over them")


def _unreadable_root(path: str, exc: ValueError) -> StoreError:
    return StoreError(f"{path}: its root metadata (zarr.json) is unreadable ({one_line(exc)}); "
                      f"see 'fractalsweep verify {path}'")


# the root's 'fractalsweep' attribute: each key, and the type of its value
ROOT_KEYS = {"format": int, "id": str, "config": dict, "versions": dict, "created": str}


def root_meta_problems(meta) -> list[str]:
    """What is wrong with a root's 'fractalsweep' attribute: not a table, keys missing or
    holding another type (:data:`ROOT_KEYS`), another format than :data:`FORMAT`, or a config
    changed since (:func:`config_changed`):
    every command refuses such a store in one line, as it refuses one it cannot read."""
    if not isinstance(meta, dict):
        return [f"the root's fractalsweep metadata is not a table ({meta!r:.60})"]
    missing = [key for key in ROOT_KEYS if key not in meta]
    problems = [*([f"root metadata lacks {', '.join(missing)}"] if missing else []),
                *(f"root metadata {key} = {meta[key]!r:.60}: expected type {kind.__name__}"
                  for key, kind in ROOT_KEYS.items()
                  if key in meta and (not isinstance(meta[key], kind)
                                      or isinstance(meta[key], bool)))]  # JSON true is no 1
    if not problems and meta["format"] != FORMAT:
        problems.append(f"root format {meta['format']}: this fractalsweep reads format {FORMAT}")
    if not problems and (changed := config_changed(meta)):
        problems.append(changed)
    return problems


def root_meta(root: zarr.Group, path: str) -> dict:
    """The root's fractalsweep metadata (:data:`ROOT_KEYS`); a one-line error naming the
    first thing wrong with it."""
    meta = root.attrs["fractalsweep"]
    problems = root_meta_problems(meta)
    if problems:
        raise StoreError(f"{path}: its root metadata (the 'fractalsweep' attribute) is "
                         f"damaged ({problems[0]}); see 'fractalsweep verify {path}'")
    return meta


def config_of(path: str) -> SweepConfig:
    """The resolved config a store was made with."""
    return from_dict(open_root(path).attrs["fractalsweep"]["config"])


def existing(path: str, cfg: SweepConfig) -> zarr.Group | None:
    """The store at ``path`` (read-only) if there is one that ``cfg`` resumes; None where
    there is none, or a creation cut short, which a run makes again. Changes nothing: a dry
    run asks it too.

    Raises
    ------
    StoreError
        Where a run refuses ``path``: a store of another configuration, or with damaged root
        metadata, or a folder or zarr group that is no store.
    """
    check_location(path)
    try:
        root = zarr.open_group(path, mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        local = _local_path(path)
        if local is not None and local.exists() and any(p.name != LOCK for p in local.iterdir()):
            lost = lost_root(path)
            raise StoreError(f"{path}: {lost}" if lost else f"{path} exists and is not a "
                             "fractalsweep store; choose another --store") from None
        return None
    except ValueError as exc:
        raise _unreadable_root(path, exc) from None
    if "fractalsweep" not in root.attrs:
        why = missing_metadata(root, f"{NOT_A_STORE}; choose another --store")
        if why == CUT_SHORT:
            return None
        raise StoreError(f"{path}: {why}")
    meta = root_meta(root, path)
    # the name only labels the sweep (the default store name): any name resumes it
    diff = _first_difference(from_dict(meta["config"]).to_dict() | {"name": cfg.name},
                             cfg.to_dict())
    if diff:
        key, theirs, ours = diff
        raise StoreError(f"{path} holds another configuration ({key} is {theirs!r} there, "
                         f"{ours!r} here); use the same settings to resume, or a new --store")
    return root


def create_or_check(path: str, cfg: SweepConfig,
                    draw_inputs: Callable[[], dict[str, np.ndarray]]) -> zarr.Group:
    """Create a store for ``cfg``, or check that an existing one was made by the same config.

    ``draw_inputs`` gives the init, data and minibatch arrays; it is called only when the
    store is created (a resumed store keeps the arrays it has).

    Raises
    ------
    StoreError
        If the store exists and holds another configuration; nothing in it is changed.
    """
    if existing(path, cfg) is not None:
        return zarr.open_group(path, mode="r+")
    with contextlib.suppress(FileNotFoundError, zarr.errors.GroupNotFoundError):
        zarr.open_group(path, mode="r")  # a group existing() passed over: a creation cut short
        _remove_contents(path)  # (killed): start it again
    local = _local_path(path)
    try:
        root = zarr.open_group(path, mode="a" if local is not None else "w-",
                               attributes={CREATING: _now()})
        inputs_group = root.create_group("inputs")
        for name, value in draw_inputs().items():
            new_array(inputs_group, name, data=value)
        root.create_group("levels")
        faults.point("store-inputs")
        config = cfg.to_dict()
        root.attrs["fractalsweep"] = {"format": FORMAT, "id": uuid.uuid4().hex,
                                      "config": config, "config_digest": config_digest(config),
                                      "versions": _versions(), "created": _now()}
    except BaseException:
        _remove_contents(path)  # a failed start leaves no half-made store behind
        raise
    return root


def _remove_contents(path: str) -> None:
    """Delete a store's contents (its lock file stays with the driver that holds it)."""
    local = _local_path(path)
    if local is None:
        zarr.open_group(path, mode="w")
        return
    for child in local.iterdir() if local.is_dir() else ():
        if child.name != LOCK:
            shutil.rmtree(child) if child.is_dir() else child.unlink()


def read_inputs(path: str) -> tuple[SweepConfig, dict[str, np.ndarray]]:
    """The config and the init, data and minibatch arrays of a store.

    Cached per process by the store's id, so a long-lived worker never mixes up a store
    that was deleted and made again at the same path.
    """
    return _read_inputs(path, open_root(path).attrs["fractalsweep"]["id"])


@lru_cache(maxsize=4)
def _read_inputs(path: str, store_id: str) -> tuple[SweepConfig, dict[str, np.ndarray]]:
    root = open_root(path)
    try:
        arrays = {name: arr[...] for name, arr in root["inputs"].arrays()}
    except (KeyError, ValueError) as exc:  # missing, or a checksum or metadata that fails
        raise StoreError(f"{path}: its inputs are unreadable ({one_line(exc)}); "
                         f"'fractalsweep verify {path} --repair' redraws them") from None
    return from_dict(root.attrs["fractalsweep"]["config"]), arrays


@dataclass(frozen=True)
class LevelSpec:
    """What a new level is: its window, pixels, dtype, tile size and how it came to be.

    ``kind`` is ``job``, ``zoom``, ``auto`` or ``ladder``. ``reuse_from`` names a finished
    level whose pixels with exactly the same hyperparameters are copied into this one instead
    of being recomputed (the keyframe ladder's shared pixels). ``tile`` None chooses
    :func:`fractalsweep.grid.auto_tile`. A ``dtype`` below the job's makes a ``preview``
    level (a float32 preview of a float64 job).
    """

    view: dict
    resolution: tuple[int, int]
    dtype: str
    kind: str = "job"
    reuse_from: int | None = None
    tile: int | None = None

    @classmethod
    def of_job(cls, cfg: SweepConfig) -> LevelSpec:
        """Level 0: the job's own window, resolution and dtype."""
        return cls({"x": cfg.x, "y": cfg.y}, cfg.grid.resolution, cfg.dtype)

    def replace(self, **changes) -> LevelSpec:
        return dataclasses.replace(self, **changes)


def ensure_level(root: zarr.Group, index: int, cfg: SweepConfig, spec: LevelSpec) -> LevelGroup:
    """Create level ``index`` as ``spec`` describes, if the store does not have it yet."""
    levels = levels_group(root)
    refuse_lost_levels(root)  # so a folder without metadata here holds no finished tile
    if str(index) in level_keys(root) and index not in level_indices(root):
        del levels[str(index)]  # a creation cut short: its attributes, written last, are missing
    if str(index) not in level_keys(root):
        from .systems import system_of

        nx, ny = spec.resolution
        t = spec.tile or auto_tile(nx, ny)
        view = spec.view
        group = levels.create_group(str(index))
        arrays = system_of(cfg).outputs(cfg)
        for name, layout in level_layout(cfg, (nx, ny), t, spec.dtype).items():
            new_array(group, name, **layout)
        write_coordinates(group, view, (nx, ny), spec.dtype)
        faults.point("level-arrays")
        # one write (attrs.update writes key by key): a reader that sees "view", and so
        # counts the level (level_indices), sees every attribute with it
        group.update_attributes({
            "view": {a: {"lo": view[a].lo, "hi": view[a].hi, "scale": view[a].scale,
                         "label": view[a].label} for a in ("x", "y")},
            "resolution": [nx, ny], "tile": t, "arrays": list(arrays), "dtype": spec.dtype,
            "scheme": cfg.scheme, "preview": PRECISION_RANK.index(spec.dtype) <
            PRECISION_RANK.index(cfg.dtype), "kind": spec.kind,
            "reuse_from": spec.reuse_from, "reused_pixels": 0, "integrity": INTEGRITY,
            "created": _now(),
        })
    level = open_level(root, index)
    _share_pixels(root, level)
    return level


def _share_pixels(root: zarr.Group, level: LevelGroup) -> None:
    """Copy the pixels a ladder level shares with its ``reuse_from`` level, unless copied.

    The level counts from its attributes on, so a driver killed during the copy leaves it
    to the next one (a re-run of the ladder or dive, a resume), which copies again: the copy
    is owed while ``reused_pixels`` is 0 (written once it ends) and no tile is finished (a
    tile keeps the ``reused`` it was computed with). Copying over a partial copy writes the
    same values, so the level ends as if the first copy had not been cut short.
    """
    source = level.group.attrs["reuse_from"]
    if source is None or level.group.attrs["reused_pixels"] or level.done.any():
        return
    copied = _copy_shared_pixels(open_level(root, source), level)
    if copied:
        level.group.attrs["reused_pixels"] = copied


def level_layout(cfg: SweepConfig, resolution, tile: int, dtype: str) -> dict[str, dict]:
    """Every array of a level (docs/store.md) with its :func:`new_array` keywords: the
    system's per-pixel results and ``reused`` in tiles, the coordinates (a double-double
    one keeps its remainder beside it, ``{axis}_lo``), a provenance record and a marker per
    tile."""
    from .systems import system_of

    nx, ny = resolution
    layout = {name: {"shape": (ny, nx), "chunks": (tile, tile), "dtype": array_dtype,
                     "fill_value": fill, "dimension_names": ("y", "x")}
              for name, (array_dtype, fill) in {**system_of(cfg).outputs(cfg),
                                                "reused": ("uint8", 0)}.items()}
    for axis, n in (("x", nx), ("y", ny)):
        for name in (axis, f"{axis}_lo") if dtype == DOUBLE_DOUBLE else (axis,):
            layout[name] = {"shape": (n,), "chunks": (tile,), "dtype": "float64",
                            "dimension_names": (axis,)}
    tiles = Tiling(ny, nx, tile).shape
    for name, array_dtype, fill in (("provenance", str, ""), ("tiles", "uint8", 0)):
        layout[name] = {"shape": tiles, "chunks": (1, 1), "dtype": array_dtype,
                        "fill_value": fill, "dimension_names": ("tile_y", "tile_x")}
    return layout


def coordinate_arrays(view: dict, resolution, dtype: str) -> dict[str, np.ndarray]:
    """The coordinate arrays a level of this window holds: ``x`` and ``y``, and for
    double-double ``x_lo`` and ``y_lo`` (:func:`coordinates` reads them back)."""
    arrays = {}
    for axis, n in zip(("x", "y"), resolution):
        values = axis_values(view[axis], n, dtype).astype(np.float64)
        arrays |= dict(zip((axis, f"{axis}_lo"), values.reshape(n, -1).T))
    return arrays


def write_coordinates(group: zarr.Group, view: dict, resolution, dtype: str) -> None:
    """Each axis's hyperparameter values from the level's window."""
    for name, part in coordinate_arrays(view, resolution, dtype).items():
        group[name][:] = part


def _copy_shared_pixels(source: LevelGroup, target: LevelGroup) -> int:
    """Copy every pixel whose coordinates, as used by the kernel, equal the source's.

    Runs in the coordinator before any tile of ``target`` is finished, so writing whole
    arrays here races with nobody, and again after a copy cut short: the shared pixels of
    ``target`` are overwritten and ``reused`` written whole. Returns the number of pixels
    copied.
    """
    if not source.done.all() or source.group.attrs["dtype"] != target.group.attrs["dtype"]:
        return 0
    tx, sx = matching_indices(coordinates(target, "x"), coordinates(source, "x"))
    ty, sy = matching_indices(coordinates(target, "y"), coordinates(source, "y"))
    if not (tx.size and ty.size):
        return 0
    for field in target.arrays:
        values = target.group[field][:]
        values[np.ix_(ty, tx)] = source.group[field][:][np.ix_(sy, sx)]
        target.group[field][:] = values
    reused = np.zeros(target.group["reused"].shape, dtype="uint8")
    reused[np.ix_(ty, tx)] = 1
    target.group["reused"].with_config(WRITE_EVERY_CHUNK)[:] = reused
    return int(reused.sum())


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def marker_chunks(root: zarr.Group, key: str) -> int:
    """Chunks of level ``key``'s tile markers on disk, read from the listing alone (no
    metadata needed): a tile's marker is written once it is finished."""
    prefix = f"{root.path}/levels/{key}/tiles/c/" if root.path else f"levels/{key}/tiles/c/"
    return len(_keys(root.store, prefix))


def lost_levels(root: zarr.Group) -> dict[int, int]:
    """Levels whose metadata is lost while their folder holds finished tiles, with how many:
    out of every reader's reach, and never to be computed over."""
    found = set(level_indices(root))
    return {int(key): count for key in level_keys(root)
            if key.isdigit() and int(key) not in found and (count := marker_chunks(root, key))}


def refuse_lost_levels(root: zarr.Group) -> None:
    """Refuse to compute in a store with :func:`lost_levels`: a new level could take a lost
    one's place, or repeat its window unseen."""
    lost = lost_levels(root)
    if lost:
        named = ", ".join(f"level {i} ({n} finished tile(s))" for i, n in lost.items())
        raise StoreError(f"a folder without level metadata holds {named}; 'fractalsweep "
                         "verify' names the damage; move such a folder out of the store's "
                         "levels/ to compute in it again")


def level_keys(root: zarr.Group) -> list[str]:
    """The names under ``levels/`` as the store lists them: a level whose metadata is damaged
    is still named (zarr's own listing would fail on it)."""
    from zarr.core.sync import sync

    prefix = f"{root.path}/levels" if root.path else "levels"

    async def names():
        return [name async for name in root.store.list_dir(prefix)]

    return sorted(name for name in sync(names()) if name != "zarr.json")


def levels_group(root: zarr.Group) -> zarr.Group:
    """The group of the levels; a one-line error if its metadata is missing or unreadable
    (its levels are then out of reach: ``fractalsweep verify --repair`` rewrites it)."""
    try:
        return root["levels"]
    except KeyError:
        what = "missing"
    except ValueError as exc:
        what = f"unreadable ({one_line(exc)})"
    raise StoreError(f"the levels group's metadata (levels/zarr.json) is {what}; see "
                     "'fractalsweep verify'")


def level_group(root: zarr.Group, key: str) -> zarr.Group | None:
    """Level ``key``'s group, None if there is none; a one-line error if it is unreadable."""
    levels = levels_group(root)
    try:
        return levels[key]
    except KeyError:
        return None
    except ValueError as exc:
        raise StoreError(f"level {key}: its metadata is unreadable ({one_line(exc)}); see "
                         "'fractalsweep verify'") from None


def level_indices(root: zarr.Group) -> list[int]:
    """The store's levels, in index order; a level counts once its attributes are written."""
    groups = {int(key): level_group(root, key) for key in level_keys(root) if key.isdigit()}
    return sorted(i for i, group in groups.items() if group is not None and "view" in group.attrs)


# Arrays every level has besides its per-pixel results; opened (metadata only) when a level is
PARTS = ("reused", "x", "y", "provenance", "tiles")


def level_view(group: zarr.Group, index: int) -> dict:
    """A level's window (its ``view`` attribute): each axis's ``lo``, ``hi``, ``scale`` and
    ``label``; a one-line error naming what is unreadable, since every picture, zoom and
    ladder computes with its bounds."""
    try:
        view = group.attrs["view"]
        for a in ("x", "y"):
            axis = view[a]
            for key in ("lo", "hi"):
                parse(f"view.{a}.{key}", axis[key])
            if axis["scale"] not in SCALES or not isinstance(axis["label"], str):
                raise ConfigError(f"view.{a}.scale = {axis['scale']!r}, view.{a}.label = "
                                  f"{axis['label']!r}")
    except (KeyError, TypeError, ConfigError) as exc:
        raise StoreError(f"level {index}: its window is missing or unreadable "
                         f"({exc if isinstance(exc, ConfigError) else one_line(exc)}); see "
                         "'fractalsweep verify'") from None
    return view


def open_level(root: zarr.Group, index: int) -> LevelGroup:
    """Level ``index``, its arrays' metadata checked; a one-line error if it is missing or
    damaged beyond reading."""
    if isinstance(index, bool) or not isinstance(index, numbers.Integral):
        raise StoreError(f"level {index!r}: expected an integer; levels are "
                         f"{level_indices(root)}")
    group = level_group(root, str(index))
    if group is None or "view" not in group.attrs:
        raise StoreError(f"no level {index} in this store; levels are {level_indices(root)}")
    level_view(group, index)
    try:
        nx, ny = group.attrs["resolution"]
        level = LevelGroup(group, Tiling(ny, nx, group.attrs["tile"]))
        for key in ("dtype", "kind", "preview", "reused_pixels"):  # read without a default
            group.attrs[key]
        for name in (*level.arrays, *PARTS):
            level.array(name)  # reads the array's metadata, or fails here
    except (KeyError, ValueError, TypeError) as exc:
        raise StoreError(f"level {index}: an array or attribute is missing or unreadable "
                         f"({one_line(exc)}); see 'fractalsweep verify'") from None
    return level


def coordinates(level: LevelGroup, axis: str, where=slice(None)) -> np.ndarray:
    """The hyperparameter values of ``axis`` (``x`` or ``y``) as the kernel takes them: in the
    level's dtype, or as ``(n, 2)`` double-doubles (:func:`fractalsweep.grid.axis_values`)."""
    dtype = level.group.attrs["dtype"]
    if dtype == DOUBLE_DOUBLE:
        return np.stack([level.array(axis)[where], level.array(f"{axis}_lo")[where]], axis=-1)
    return level.array(axis)[where].astype(dtype)


def label_values(level: LevelGroup, axis: str) -> np.ndarray:
    """The hyperparameter values of ``axis`` to label a picture with: float64, or for a
    double-double level Decimals of each value's ``hi + lo``, exact (its ends can be one
    float apart, or none). A damaged chunk of a float64 axis reads as NaN."""
    if level.group.attrs["dtype"] != DOUBLE_DOUBLE:
        return read_checked(level.array(axis))[0]
    with localcontext(CONTEXT):
        return np.array([Decimal(hi) + Decimal(lo) for hi, lo in coordinates(level, axis)],
                        dtype=object)


def write_tile(level: LevelGroup, index: tuple[int, int], results: dict[str, np.ndarray],
               provenance: dict) -> None:
    """Write one tile's pixel arrays (whole chunks) and provenance, then its marker.

    Every chunk is written, even one that holds only fill values, so that a finished tile
    missing a chunk on disk is known to be damaged (:mod:`fractalsweep.verify`). The record
    gets each array's :func:`tile_digest`, so a chunk that decodes but is not this tile's
    (copied from another tile, rewritten) is found too.
    """
    sy, sx = level.tiling.slices(index)
    shape = (sy.stop - sy.start, sx.stop - sx.start)
    digests = {}
    for field in level.pixel_arrays:
        array = level.array(field).with_config(WRITE_EVERY_CHUNK)
        values = np.asarray(results[field][: shape[0] * shape[1]],
                            dtype=array.dtype).reshape(shape)
        array[sy, sx] = values
        digests[field] = tile_digest(values)
    faults.point("tile-data")
    level.array("provenance")[index] = json.dumps({**provenance, "digests": digests})
    faults.point("tile-provenance")
    level.array("tiles")[index] = 1


def config_digest(config: dict) -> str:
    """A stored config's digest (BLAKE2b of its JSON, keys sorted), kept beside it from 0.10.1
    on, so a config edited or damaged after the store was made is found before anything is
    computed by it: it is the only copy of what the pixels mean.

    >>> config_digest({"seed": 0})
    'fb78e7add6ea0908'
    """
    data = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def config_changed(meta: dict) -> str | None:
    """Why a root's stored config is not the one its store was made with (its digest
    differs), or None (it is, or the store predates digests)."""
    if "config_digest" not in meta or config_digest(meta["config"]) == meta["config_digest"]:
        return None
    return "the stored config was edited or damaged after the store was made (its digest differs)"


def tile_digest(values: np.ndarray) -> str:
    """A tile's values of one array, as the bytes of its pixels in row order, in 16 hex
    digits (BLAKE2b); the same however the tile is read back.

    >>> tile_digest(np.zeros((2, 2)))
    'c50d124a8aaf41a1'
    """
    data = np.ascontiguousarray(values).tobytes()
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def provenance(level: LevelGroup) -> list[dict]:
    """The provenance records of a level's finished tiles (damaged ones left out)."""
    records, _ = read_checked(level.group["provenance"])
    return [rec for rec in map(parse_provenance, records[level.done]) if rec is not None]


def parse_provenance(text: str) -> dict | None:
    """A tile's provenance record, or None if the text is not one (damaged, or empty)."""
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def record_failures(level: LevelGroup, failures: dict) -> None:
    """Note failed tiles in the level's attributes (coordinator only); {} clears them."""
    level.group.attrs["failed"] = [{"tile": list(ix), "error": err}
                                   for ix, err in sorted(failures.items())]


def _local_path(path: str) -> Path | None:
    return None if "://" in path else Path(path)


def for_workers(path: str) -> str:
    """``path`` as workers find it: a relative path made absolute, since workers started by
    hand or by a batch system work in folders of their own (a URL is kept as it is).

    >>> import os
    >>> for_workers("s3://bucket/a.zarr"), for_workers("a.zarr") == os.path.abspath("a.zarr")
    ('s3://bucket/a.zarr', True)
    """
    return path if _local_path(path) is None else os.path.abspath(path)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except (FileNotFoundError, IndexError):
        return False


def read_lock(path: str) -> dict | None:
    """Who holds the store's lock (``host``, ``pid``, ``started``): None if nobody, ``{}``
    for a lock file that is not a fractalsweep lock (garbage, or one written this instant)."""
    local = _local_path(path)
    if local is None:
        return None
    try:
        holder = json.loads((local / LOCK).read_text())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError):
        return {}
    valid = (isinstance(holder, dict) and isinstance(holder.get("host"), str)
             and isinstance(holder.get("pid"), int) and not isinstance(holder["pid"], bool))
    return holder if valid else {}


def holder_alive(holder: dict) -> bool | None:
    """Whether the driver holding a lock still runs; None when it runs on another host."""
    return _alive(holder["pid"]) if holder.get("host") == socket.gethostname() else None


def _unwritable(path: str, exc: OSError) -> StoreError:
    return StoreError(f"{path}: cannot write there ({exc.strerror}); a store that cannot be "
                      "written can still be read (info, render, verify)")


@contextlib.contextmanager
def _one_at_a_time(folder: Path):
    """Drivers on this machine taking the lock of ``folder`` one after another (``flock`` on
    the folder, released as it closes): two that found the same dead driver's lock both took
    it over, the second removing the lock the first had just made. Unserialized where the
    folder cannot be opened or its filesystem has no ``flock``."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        fd = None
    try:
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fd is not None:
            os.close(fd)


def _take_lock(path: str, lock: Path) -> int:
    """Create the lock file, taking over one left by a dead driver on this host."""
    for _ in range(3):
        try:
            return os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = read_lock(path)
            if holder == {}:  # maybe a driver between creating and writing it: look again
                time.sleep(0.2)
                holder = read_lock(path)
            if holder == {}:
                raise StoreError(f"{lock} is not a fractalsweep lock file (unreadable); if no "
                                 f"run is computing {path}, delete it") from None
            if holder is not None and holder_alive(holder) is False:
                lock.unlink(missing_ok=True)
            elif holder is not None:
                raise StoreError(
                    f"{path} is being {holding(holder)} (pid {holder['pid']} on "
                    f"{holder['host']}, since {holder.get('started')}); wait for it, or delete "
                    f"{lock} if that run is gone") from None
    raise StoreError(f"{path}: the lock {lock} keeps changing hands; try again")


def holding(holder: dict) -> str:
    """What the driver holding a store's lock is doing (:func:`driver_lock`'s ``command``)."""
    command = holder.get("command", "run")  # a lock of before 0.10.2 names none: a run's
    return "computed by another run" if command == "run" else f"used by {command}"


@contextlib.contextmanager
def driver_lock(path: str, command: str = "run"):
    """Hold the store's lock file while a driver computes it; a second driver is refused.
    ``command``: what holds it, recorded for ``status`` and the refusal ("run", computing
    tiles; "an audit"; "a repair").

    A lock left by a driver on this host that no longer runs is taken over. A store folder
    this call created and that is still empty at the end (a start that failed) is removed.
    Stores given as URLs have no lock (docs/cluster.md).
    """
    local = _local_path(path)
    if local is None:
        yield
        return
    if local.exists() and not local.is_dir():
        raise StoreError(f"{path} is a file, not a store; choose another --store")
    created = not local.exists()
    lock = local / LOCK
    try:
        local.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(path, exc) from None
    with _one_at_a_time(local):
        try:
            fd = _take_lock(path, lock)
        except OSError as exc:
            raise _unwritable(path, exc) from None
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"host": socket.gethostname(), "pid": os.getpid(),
                           "started": _now(), "command": command}, f)
        except OSError:  # a full disk: an empty lock file would refuse every later run
            lock.unlink(missing_ok=True)
            raise
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        if created:
            with contextlib.suppress(OSError):
                local.rmdir()  # only if empty: nothing was made
