"""Questions about a store's levels: a level's window, the level holding a window, the
deepest level, how much deeper one window is than another, and the keyframe ladder.

Levels are found by their window, never by index alone: asking for a window the store already
has finds that level again, which is what makes zooms, ladders and whole dives resumable by
repeating a command. A window is the same when its decimals are, or when its bounds are a
rounding apart and give the same pixel coordinates, the only numbers the kernel sees (a
ladder's keyframe, rebuilt from centre and width, may differ from an automatic zoom's box in
its 40th digit).
"""

from __future__ import annotations

import bisect
import dataclasses
from dataclasses import dataclass
from decimal import Decimal, localcontext

import numpy as np
import zarr

from . import store
from .config import AxisConfig, SweepConfig
from .decimals import CONTEXT
from .errors import AnimationError, StoreError
from .grid import axis_values
from .views import AXES, View, window

__all__ = ["Keyframe", "deepest", "find_ladder", "find_level", "level_for", "view_of",
           "zoom_factor"]


def view_of(level: store.LevelGroup | zarr.Group, cfg: SweepConfig) -> View:
    """A level's window (from its group's attributes) as ``{"x": AxisConfig, "y":
    AxisConfig}`` (the job's axis kinds)."""
    view = getattr(level, "group", level).attrs["view"]  # checked by store.open_level
    return {a: dataclasses.replace(getattr(cfg, a), lo=view[a]["lo"], hi=view[a]["hi"])
            for a in AXES}


NEAR = Decimal("1e-12")  # of a window's width: bounds this close are compared pixel by pixel


def _same(view: View, stored: dict, resolution, dtype: str) -> bool:
    """Whether ``stored`` (a level's ``view`` attribute) is ``view`` (module docstring)."""
    for a, n in zip(AXES, resolution):
        ours = Decimal(view[a].lo), Decimal(view[a].hi)
        theirs = Decimal(stored[a]["lo"]), Decimal(stored[a]["hi"])
        if ours == theirs:
            continue
        if max(abs(o - t) for o, t in zip(ours, theirs)) > NEAR * (theirs[1] - theirs[0]):
            return False
        stored_axis = dataclasses.replace(view[a], lo=stored[a]["lo"], hi=stored[a]["hi"])
        if not np.array_equal(axis_values(view[a], n, dtype), axis_values(stored_axis, n, dtype)):
            return False
    return True


def find_level(root: zarr.Group, view: View, resolution, dtype: str) -> int | None:
    """The level with this window (module docstring), resolution and dtype, if the store has
    one."""
    levels = store.levels_group(root)
    for index in store.level_indices(root):
        group = levels[str(index)]
        if (tuple(group.attrs["resolution"]) == tuple(resolution)
                and group.attrs["dtype"] == dtype
                and _same(view, store.level_view(group, index), resolution, dtype)):
            return index
    return None


def level_for(root: zarr.Group, view: View, resolution, dtype: str) -> int:
    """The level that holds ``view``: the store's own, or the next free index."""
    found = find_level(root, view, resolution, dtype)
    return max(store.level_indices(root), default=-1) + 1 if found is None else found


def zoom_factor(deep: View, wide: View) -> float:
    """How many decades deeper ``deep`` is than ``wide`` (the smaller of the two axes)."""
    return min(float((window(wide[a])[1] / window(deep[a])[1]).log10()) for a in AXES)


def deepest(path: str, leaving_out: int | None = None) -> int:
    """The level the most decades below level 0, counted on its less zoomed axis
    (:func:`zoom_factor`: a box narrow on one axis only is no deeper than its wider side);
    ties: the lowest index. ``leaving_out`` a level: the deepest before it was added."""
    cfg = store.config_of(path)
    root = store.open_root(path)
    found = [i for i in store.level_indices(root) if i != leaving_out]
    if not found:
        store.refuse_lost_levels(root)  # levels there, out of reach: not "no level yet"
        raise StoreError(f"{path} has no level yet; run the job first")
    views = {i: view_of(store.open_level(root, i), cfg) for i in found}
    return max(found, key=lambda i: (zoom_factor(views[i], views[found[0]]), -i))


def step(path: str, level: int, offset: int) -> int:
    """The level ``offset`` places from ``level`` in index order, stopping at the ends (the
    explorers' back and forward). A ``level`` no longer in the store (``verify --repair``
    removes one whose creation was cut short) counts from where it was: one place forward
    is the level after it."""
    found = store.level_indices(store.open_root(path))
    at = bisect.bisect_left(found, level) + offset
    if level not in found and offset > 0:
        at -= 1  # the level after a removed one stands in its place
    return found[min(max(at, 0), len(found) - 1)]


@dataclass(frozen=True)
class Keyframe:
    """One level of a store placed on a zoom: its window per axis as (x, y) pairs.

    ``centre`` and ``width`` are exact decimals in axis units (log10 units on a log axis).
    """

    level: int
    centre: tuple[Decimal, Decimal]
    width: tuple[Decimal, Decimal]
    scale: tuple[str, str]
    label: tuple[str, str]
    resolution: tuple[int, int]  # (nx, ny)


def _keyframe(index: int, group: zarr.Group) -> Keyframe:
    view = store.level_view(group, index)
    windows = [window(AxisConfig(lo=view[a]["lo"], hi=view[a]["hi"], scale=view[a]["scale"]))
               for a in AXES]
    return Keyframe(level=index, centre=(windows[0][0], windows[1][0]),
                    width=(windows[0][1], windows[1][1]),
                    scale=(view["x"]["scale"], view["y"]["scale"]),
                    label=(view["x"]["label"], view["y"]["label"]),
                    resolution=tuple(group.attrs["resolution"]))


def _is_next(wide: Keyframe, deep: Keyframe, rtol: float) -> bool:
    """Whether ``deep`` is the next keyframe after ``wide``: same centre, half as wide."""
    if wide.scale != deep.scale:
        return False
    with localcontext(CONTEXT):
        return all(abs(wide.width[a] / deep.width[a] - 2) <= 2 * Decimal(rtol)
                   and abs(wide.centre[a] - deep.centre[a]) <= Decimal(rtol) * deep.width[a]
                   for a in (0, 1))


def find_ladder(store_path, *, rtol: float = 1e-3) -> list[Keyframe]:
    """The keyframe ladder among a store's complete levels, widest first.

    A level is complete when every tile marker is set. Level ``b`` follows level ``a`` when,
    on both axes, ``a`` is twice as wide as ``b`` and the centres differ by less than
    ``rtol`` times ``b``'s width (a fraction of a pixel at any usual resolution, and room for
    windows written with finitely many digits). The longest such chain is returned; among
    equally long chains, the one whose deepest level has the lowest index.

    Parameters
    ----------
    store_path : str or path-like
        A fractalsweep store.
    rtol : float
        Relative tolerance on the width ratio and on the centre, see above.

    Returns
    -------
    list of Keyframe
        At least two keyframes, widest first.

    Raises
    ------
    AnimationError
        If no two complete levels form a ladder.
    """
    root = store.open_root(str(store_path))
    levels = store.levels_group(root)
    indices = store.level_indices(root)
    complete = [_keyframe(i, levels[str(i)]) for i in indices
                if levels[str(i)]["tiles"][:].all()]
    # Longest chain ending at each level; a parent is always wider, so visit widest first.
    complete.sort(key=lambda kf: (-(kf.width[0] * kf.width[1]), kf.level))
    chain: dict[int, list[Keyframe]] = {}
    for deep in complete:
        parents = [chain[w.level] for w in complete if w.level in chain and _is_next(w, deep, rtol)]
        chain[deep.level] = max(parents, key=len, default=[]) + [deep]
    best = max(sorted(chain.values(), key=lambda c: c[-1].level), key=len, default=[])
    if len(best) < 2:
        unfinished = sorted(set(indices) - {kf.level for kf in complete})
        resume = (f"; level(s) {', '.join(map(str, unfinished))} not finished: 'fractalsweep "
                  f"resume {store_path}' finishes them" if unfinished else "")
        raise AnimationError(
            f"{store_path}: no zoom ladder: need at least 2 complete levels sharing a centre, "
            f"each twice as wide as the next ({len(complete)} of {len(indices)} levels complete,"
            f" longest chain {len(best)}{resume})")
    return best
