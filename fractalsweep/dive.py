"""Adding levels to a store: a zoom by hand, an automatic target, the keyframe ladder, and
the unattended dive that chains them.

Each new level is computed like any sweep (:func:`~fractalsweep.execute.run_sweep`), so it
runs on the cluster and resumes. A level is found again by its window: asking for a view the
store already has resumes that level instead of adding a copy, which is what makes a whole
dive resumable by re-running the same command.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from . import store, zoom
from .config import SweepConfig
from .execute import RunReport, run_sweep, shared_cluster


def view_of(level: store.Level, cfg: SweepConfig) -> dict:
    """A level's window as ``{"x": AxisConfig, "y": AxisConfig}``."""
    view = level.group.attrs["view"]
    return {a: dataclasses.replace(getattr(cfg, a), lo=view[a]["lo"], hi=view[a]["hi"])
            for a in ("x", "y")}


def _same(view: dict, other: dict) -> bool:
    return all(Decimal(view[a].lo) == Decimal(other[a]["lo"]) and
               Decimal(view[a].hi) == Decimal(other[a]["hi"]) for a in ("x", "y"))


def find_level(root, view: dict, resolution, dtype: str) -> int | None:
    """The level with exactly this window, resolution and dtype, if the store has one."""
    for index in store.level_indices(root):
        attrs = root["levels"][str(index)].attrs
        if (_same(view, attrs["view"]) and tuple(attrs["resolution"]) == tuple(resolution)
                and attrs["dtype"] == dtype):
            return index
    return None


def level_for(root, view: dict, resolution, dtype: str) -> int:
    """The level that holds ``view``: the store's own, or the next free index."""
    found = find_level(root, view, resolution, dtype)
    return max(store.level_indices(root), default=-1) + 1 if found is None else found


def deepest(path: str) -> int:
    """The level with the narrowest window (the most decades below level 0)."""
    cfg = store.config_of(path)
    root = store.open_root(path)
    found = store.level_indices(root)
    if not found:
        raise store.StoreError(f"{path} has no level yet; run the job first")
    views = {i: view_of(store.open_level(root, i), cfg) for i in found}
    return max(found, key=lambda i: (zoom_factor(views[i], views[found[0]]), -i))


def zoom_to(path: str, view: dict, *, resolution=None, dtype: str | None = None,
            force: bool = False, kind: str = "zoom", reuse_from: int | None = None,
            **execution) -> tuple[int, RunReport]:
    """Compute ``view`` as a level of the store at ``path`` (a new one, or the one it has).

    The precision guard refuses a view whose neighbouring pixels the dtype cannot keep apart,
    unless ``force``. ``execution`` goes to :func:`~fractalsweep.execute.run_sweep`.
    Returns the level's index and the run's report.
    """
    cfg = store.config_of(path)
    resolution = tuple(resolution or cfg.grid.resolution)
    dtype = dtype or cfg.dtype
    zoom.guard(view, resolution, dtype, force=force)
    index = level_for(store.open_root(path), view, resolution, dtype)
    report = run_sweep(path, cfg, level=index, view=view, resolution=resolution, dtype=dtype,
                       kind=kind, reuse_from=reuse_from, **execution)
    return index, report


def auto_view(path: str, level: int, *, box_fraction: float = 0.25, resolution=None,
              dtype: str | None = None, force: bool = False) -> dict:
    """The most boundary-rich box of ``level`` that precision still allows (zoom.auto_target)."""
    cfg = store.config_of(path)
    lvl = store.open_level(store.open_root(path), level)
    if not lvl.done.all():
        raise store.StoreError(f"level {level} is not finished ({int(lvl.done.sum())}/"
                               f"{lvl.done.size} tiles); run it to the end before --auto")
    return zoom.auto_target(lvl.group["score"][:], view_of(lvl, cfg), box_fraction=box_fraction,
                            resolution=resolution or lvl.group.attrs["resolution"],
                            dtype=dtype or lvl.group.attrs["dtype"], force=force)


def ladder(path: str, level: int, *, widest=6, **execution) -> list[int]:
    """Fill in the keyframe ladder above ``level``: same centre, each level twice as wide.

    Levels are computed from the deepest up, each copying the pixels it shares with the one
    below it; the level's resolution should satisfy :func:`zoom.aligned_resolution` for a
    quarter of the pixels to be shared. Returns the ladder's levels, widest first.
    """
    cfg = store.config_of(path)
    lvl = store.open_level(store.open_root(path), level)
    attrs = lvl.group.attrs
    views = zoom.ladder(view_of(lvl, cfg), widest)
    indices = [level]
    with shared_cluster(**execution) as running:
        for view in reversed(views[:-1]):
            index, _ = zoom_to(path, view, resolution=attrs["resolution"], dtype=attrs["dtype"],
                               kind="ladder", reuse_from=indices[-1], **running)
            indices.append(index)
    return indices[::-1]


def zoom_factor(deep: dict, wide: dict) -> float:
    """How many decades deeper ``deep`` is than ``wide`` (the smaller of the two axes)."""
    return min(float((zoom.window(wide[a])[1] / zoom.window(deep[a])[1]).log10())
               for a in ("x", "y"))


def dive(path: str, cfg: SweepConfig, decades: float, *, box_fraction: float = 0.25,
         widest=None, progress: bool = True, **execution) -> list[int]:
    """From the job's overview, auto-target and zoom until ``decades`` of zoom, then fill in
    the keyframe ladder up to the overview's width. Resumable: run the same call again.

    Returns the ladder's levels, widest first.
    """
    resolution = (zoom.aligned_resolution(cfg.grid.resolution[0]),
                  zoom.aligned_resolution(cfg.grid.resolution[1]))
    with shared_cluster(progress=progress, **execution) as running:
        run_sweep(path, cfg, **running)
        overview = {"x": cfg.x, "y": cfg.y}
        deepest_level = 0
        view = overview
        while zoom_factor(view, overview) < decades:
            view = auto_view(path, deepest_level, box_fraction=box_fraction,
                             resolution=resolution)
            deepest_level, _ = zoom_to(path, view, resolution=resolution, kind="auto", **running)
        return ladder(path, deepest_level, widest=widest or overview, **running)
