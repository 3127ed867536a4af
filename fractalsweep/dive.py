"""Adding levels to a store: a zoom by hand, an automatic target, the keyframe ladder, and
the unattended dive that chains them.

Each new level is computed like any level (:func:`~fractalsweep.execute.run_level`), so it
runs on the cluster and resumes. A level is found again by its window
(:func:`~fractalsweep.levels.level_for`): asking for a view the store already has resumes that
level instead of adding a copy, which is what makes a whole dive resumable by re-running it.
"""

from __future__ import annotations

import dataclasses
import math

from . import levels, store, targets, views
from .config import SweepConfig
from .errors import PrecisionError
from .execute import RunReport, run_level
from .execution import Session
from .grid import DOUBLE_DOUBLE
from .store import LevelSpec
from .systems import check_computable, system_of
from .verify import require_intact


def zoom_to(path: str, view: dict, session: Session, *, resolution=None,
            dtype: str | None = None, force: bool = False, kind: str = "zoom",
            reuse_from: int | None = None) -> tuple[int, RunReport]:
    """Compute ``view`` as a level of the store at ``path`` (a new one, or the one it has).

    ``resolution`` and ``dtype`` default to the job's. The precision guard refuses a new
    level's view whose neighbouring pixels the dtype cannot keep apart, unless ``force``; a
    level the store already has is resumed without it, as by ``resume`` (it passed the
    guard, or was forced, when it was made). Returns the level's index and the run's report.
    """
    cfg = store.config_of(path)
    resolution, dtype = _size(cfg, resolution, dtype)
    spec = LevelSpec(view, resolution, dtype, kind=kind, reuse_from=reuse_from,
                     tile=session.execution.tile_for(resolution))
    check_computable(dataclasses.replace(cfg, dtype=spec.dtype))  # a dtype it computes in
    index = levels.level_for(store.open_root(path), view, spec.resolution, spec.dtype)
    return index, run_level(path, cfg, session, index, spec, force)


def _size(cfg: SweepConfig, resolution, dtype: str | None) -> tuple[tuple[int, int], str]:
    """A new level's resolution and dtype: the job's unless given."""
    return (tuple(resolution or cfg.grid.resolution),
            cfg.dtype if dtype is None else dtype)  # only None: "" or 0 is refused later


def interrupted_auto_view(path: str, level: int, **settings) -> dict | None:
    """The window of ``level``, the deepest, if it is an unfinished automatic zoom that an
    automatic zoom with ``settings`` (those of :func:`auto_view`) from the deepest of the
    other levels makes again; None otherwise.

    An interrupted ``zoom --auto`` leaves its level the deepest, so the same command run
    again would zoom from it and be refused for it being unfinished; asked for this window
    instead, it finishes that level (found again by its window, :func:`zoom_to`). The window
    is taken again, not guessed from the level's attributes, so a zoom with other settings,
    or a level taken from elsewhere, is still refused.
    """
    root = store.open_root(path)
    lvl = store.open_level(root, level)
    if (lvl.group.attrs["kind"] != "auto" or lvl.done.all()
            or len(store.level_indices(root)) < 2):
        return None
    earlier = levels.deepest(path, leaving_out=level)
    require_intact(path, store.open_level(root, earlier))
    view = auto_view(path, earlier, **settings)
    size = _size(store.config_of(path), settings.get("resolution"), settings.get("dtype"))
    return view if levels.find_level(root, view, *size) == level else None


def auto_view(path: str, level: int, *, box_fraction: float = targets.BOX_FRACTION,
              resolution=None, dtype: str | None = None, force: bool = False) -> dict:
    """The most boundary-rich box of ``level`` that precision still allows
    (:func:`fractalsweep.targets.auto_target`)."""
    cfg = store.config_of(path)
    lvl = store.open_level(store.open_root(path), level)
    lvl.check_finished(path, "an automatic zoom")
    return targets.auto_target(lvl.group["score"][:], levels.view_of(lvl, cfg),
                               box_fraction=box_fraction,
                               resolution=resolution or lvl.group.attrs["resolution"],
                               dtype=lvl.group.attrs["dtype"] if dtype is None else dtype,
                               force=force,
                               dtypes=system_of(cfg).dtypes)


def ladder(path: str, level: int, session: Session, *, widest=6) -> list[int]:
    """Fill in the keyframe ladder above ``level``: same centre, each level twice as wide.

    Levels are computed from the deepest up, each copying the pixels it shares with the one
    below it; the level's resolution should satisfy :func:`views.aligned_resolution` for a
    quarter of the pixels to be shared. Returns the ladder's levels, widest first.
    """
    cfg = store.config_of(path)
    lvl = store.open_level(store.open_root(path), level)
    attrs = lvl.group.attrs
    indices = [level]
    for view in reversed(views.ladder(levels.view_of(lvl, cfg), widest)[:-1]):
        index, _ = zoom_to(path, view, session, resolution=attrs["resolution"],
                           dtype=attrs["dtype"], kind="ladder", reuse_from=indices[-1])
        indices.append(index)
    return indices[::-1]


def dive(path: str, cfg: SweepConfig, decades: float, session: Session, *,
         box_fraction: float = targets.BOX_FRACTION, widest=None) -> list[int]:
    """From the job's overview, auto-target and zoom until ``decades`` of zoom, then fill in
    the keyframe ladder up to the overview's width (or ``widest``). Resumable: run the same
    call again. Returns the ladder's levels, widest first.
    """
    targets.box_steps(*cfg.grid.resolution, box_fraction)  # before the overview is computed
    resolution = tuple(views.aligned_resolution(n) for n in cfg.grid.resolution)
    run_level(path, cfg, session)
    overview = {"x": cfg.x, "y": cfg.y}
    deepest_level, view = 0, overview
    while (reached := levels.zoom_factor(view, overview)) < decades:
        try:
            view = auto_view(path, deepest_level, box_fraction=box_fraction,
                             resolution=resolution)
        except PrecisionError as exc:  # its advice (--force) is not the dive's
            raise _too_deep(exc, deepest_level, reached, decades, cfg) from None
        deepest_level, _ = zoom_to(path, view, session, resolution=resolution, kind="auto")
    return ladder(path, deepest_level, session, widest=widest or overview)


def _too_deep(exc: PrecisionError, level: int, reached: float, decades: float,
              cfg: SweepConfig) -> PrecisionError:
    """The dive's refusal: how deep it got, and which dive finishes (with its ladder)."""
    if level:
        most = math.floor(reached * 100) / 100  # rounded down: that dive stops at or above here
        advice = f"its levels are kept; a dive of at most {most:g} decades finishes"
    else:
        advice = "a coarser grid.resolution goes deeper"
    if DOUBLE_DOUBLE in system_of(cfg).dtypes and cfg.dtype != DOUBLE_DOUBLE:
        advice += "; a job in double-double goes deeper"
    return PrecisionError(f"the dive stopped at level {level}, {reached:.3g} of the "
                          f"{decades:g} decades asked: {exc.reason}", advice)
