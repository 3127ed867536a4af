"""The notebook API: run a sweep, open a store, and work with its levels.

A :class:`Store` is a handle on a sweep's zarr store (docs/store.md); a :class:`Level` on one
of its levels. Handles hold no pixels: every property reads the store when asked, so a
handle stays true while tiles land from a cluster. The command line is a thin layer over
these functions.

Example
-------
>>> import tempfile, fractalsweep as fs
>>> path = tempfile.mkdtemp() + "/doc.zarr"
>>> store = fs.run({"grid": {"resolution": 8}, "training": {"steps": 20}}, path,
...                scheduler="sync", progress=False)
>>> level = store.level(0)
>>> level.resolution, level.complete, level.score.shape
((8, 8), True, (8, 8))
>>> sorted(level.to_xarray().data_vars)
['final_loss', 'first_nonfinite', 'reused', 'score']
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import levels, precision, store, views
from .config import SweepConfig, apply_overrides, is_number, load_job, resolve
from .errors import ConfigError, FractalsweepError
from .execution import Execution, Session, flag
from .systems import check_computable

if TYPE_CHECKING:  # the kernel (and JAX) load only when something is computed
    from .execute import RunReport

__all__ = ["Level", "Store", "job_config", "open", "run"]

Job = str | Path | Mapping | SweepConfig


def job_config(job: Job, overrides: list[str] | None = None) -> SweepConfig:
    """The resolved config of a job: a TOML job file's path, a mapping or a config.

    ``overrides`` are ``section.key=value`` strings, as ``--set`` takes them. A job file's
    ``name`` defaults to the file's stem.

    >>> job_config({"model": {"activation": "relu"}}, ["grid.resolution=16"]).grid.resolution
    (16, 16)
    """
    if isinstance(job, SweepConfig):
        raw = job.to_dict()
    elif isinstance(job, Mapping):
        raw = dict(job)
    elif isinstance(job, (str, Path)):
        raw = load_job(job)
        raw.setdefault("name", Path(job).stem)
    else:
        raise ConfigError(f"job = {job!r}: expected a TOML file's path, a mapping or a "
                          "SweepConfig")
    if overrides is not None and (isinstance(overrides, str) or not isinstance(
            overrides, Iterable) or not all(isinstance(item, str) for item in overrides)):
        raise ConfigError(f"overrides = {overrides!r}: expected a list of "
                          "'section.key=value' strings")
    return resolve(apply_overrides(raw, list(overrides or [])))


Where = Execution | Session


def _path(value: Any, label: str) -> str:
    """A store's path as a string, or a one-line error for anything else."""
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise ConfigError(f"{label} = {value!r}: expected a path (str or Path)")
    return str(value)


def _execution(execution: Where | None, **shortcuts) -> Where:
    """``execution`` with the keyword shortcuts of :func:`run` applied."""
    given = {k: v for k, v in shortcuts.items() if v is not None}
    if given and isinstance(execution, Session):
        raise ConfigError(f"{', '.join(given)}: give them to the session's Execution instead")
    execution = _where(execution)
    return execution.replace(**given) if given else execution


def _where(execution: Where | None) -> Where:
    """``execution``, or a default Execution; a one-line error for anything else."""
    if execution is not None and not isinstance(execution, (Execution, Session)):
        raise ConfigError(f"execution = {execution!r}: expected fractalsweep.Execution(...) or "
                          "an open Session")
    return Execution() if execution is None else execution


def _or_own(execution: Where | None, own: Where) -> Where:
    """``execution`` where given, else a handle's ``own``: only None is "not given", so an
    empty list or mapping is refused by :func:`_where`, not read as the default."""
    return own if execution is None else _where(execution)


@contextlib.contextmanager
def _session(execution: Where, progress: bool) -> Iterator[Session]:
    """A session for one call: the caller's own while open (kept open), or a new one
    (closed after)."""
    flag("progress", progress)
    execution = _where(execution)
    if isinstance(execution, Session):
        if not execution.closed:
            yield execution
            return
        execution, progress = execution.execution, execution.progress
    with execution.session(progress) as session:
        yield session


def run(job: Job, store: str | Path | None = None, *, overrides: list[str] | None = None,
        scheduler: str | None = None, workers: int | None = None, cluster: Any = None,
        progress: bool = True, execution: Where | None = None, force: bool = False) -> Store:
    """Compute a sweep (level 0: the job's own window), or resume it, and return its store.

    Parameters
    ----------
    job : str, Path, mapping or SweepConfig
        A TOML job file (docs/jobs.md), the same as a mapping, or a resolved config.
    store : str or Path, optional
        The zarr store to write; default :func:`default_store`: ``./<job file stem>.zarr``,
        or ``./<name>.zarr`` for a mapping or config. A store of the same config is resumed;
        of another, refused.
    overrides : list of str, optional
        ``section.key=value`` settings applied to the job.
    scheduler, workers, cluster
        Shortcuts for the fields of ``execution`` (:class:`Execution`): ``"sync"`` or a
        scheduler address; local CPU workers; a SLURM/PBS profile path.
    progress : bool
        Show a progress bar (tiles, rate, ETA) and the Dask dashboard link.
    execution : Execution or Session, optional
        Where and how to compute; kept by the returned store for later zooms. An open
        :class:`~fractalsweep.execution.Session` keeps one cluster for several calls (and
        its own progress setting); an Execution starts what it describes for this call.
    force : bool
        Compute a new store's window even where its dtype cannot keep neighbouring pixels
        apart (the precision guard, docs/precision.md), as :meth:`Store.zoom` does a level's.

    Returns
    -------
    Store
        With ``report`` (:class:`~fractalsweep.execute.RunReport`) saying what was computed.

    Raises
    ------
    ConfigError
        A bad job, or a store holding another configuration.
    SweepError
        Tiles that failed after their retries (every finished tile is kept).
    PrecisionError
        A new store's window its dtype cannot keep the pixels of apart, unless ``force``.
    """
    from .execute import run_level

    force = flag("force", force)
    cfg = job_config(job, overrides)
    if store is None:
        store = default_store(job, cfg)
    store = _path(store, "store")
    execution = _execution(execution, scheduler=scheduler, workers=workers, cluster=cluster)
    with _session(execution, progress) as session:
        report = run_level(store, cfg, session, force=force)
    return Store(store, execution=execution, report=report)


def open(path: str | Path, *, execution: Where | None = None) -> Store:
    """A handle on an existing store; ``execution`` is where its later zooms compute.

    Raises
    ------
    StoreError
        If there is no fractalsweep store at ``path``.
    """
    handle = Store(path, execution=execution)
    handle.config  # noqa: B018 - fail here, with one line, if it is not a store
    return handle


class Store:
    """A sweep's store: its config, its levels, and what can be added or made from them.

    Parameters
    ----------
    path : str
        The store's path (or fsspec URL).
    execution : Execution or Session, optional
        Where :meth:`zoom`, :meth:`ladder` and :meth:`dive` compute (default: a local
        cluster); each method also takes its own.
    report : RunReport, optional
        What the call that made this handle computed (:func:`run`).
    """

    def __init__(self, path: str, *, execution: Where | None = None,
                 report: RunReport | None = None):
        self.path = _path(path, "path")
        self.execution = _where(execution)
        self.report = report

    def __repr__(self) -> str:
        try:
            return f"Store({self.path!r}, levels={[lv.index for lv in self.levels]})"
        except FractalsweepError as exc:  # a handle outlives its store; Jupyter shows it
            return f"Store({self.path!r}, unreadable: {exc})"

    @property
    def config(self) -> SweepConfig:
        """The resolved config the store was made with."""
        return store.config_of(self.path)

    @property
    def levels(self) -> list[Level]:
        """Every level, in index order."""
        return [Level(self, i) for i in store.level_indices(store.open_root(self.path))]

    def level(self, index: int) -> Level:
        """Level ``index``; a one-line error lists the levels there are."""
        store.open_level(store.open_root(self.path), index)
        return Level(self, index)

    def deepest(self) -> Level:
        """The level the most decades below level 0 on its less zoomed axis
        (:func:`fractalsweep.levels.deepest`)."""
        return Level(self, levels.deepest(self.path))

    def info(self) -> dict:
        """The store's metadata and a summary of each level (``fractalsweep info --json``)."""
        from .summary import describe

        return describe(self.path)

    def status(self) -> str:
        """Tiles done, rate, ETA and failures per level (``fractalsweep status``)."""
        from .status import format_status, level_status

        root = store.open_root(self.path)
        stats = [level_status(store.open_level(root, i)) for i in store.level_indices(root)]
        return format_status(self.path, stats, store.read_lock(self.path))

    def verify(self, repair: bool = False):
        """Check every chunk, marker, provenance record and coordinate of the store
        (``fractalsweep verify``); with ``repair``, make the damaged parts recomputable and
        check again (:mod:`fractalsweep.verify`).

        Returns
        -------
        fractalsweep.verify.Report
            ``problems`` (those left after a repair), ``repaired`` (what was done), ``notes``.
        """
        from . import verify

        repair = flag("repair", repair)
        report, done = verify.verify(self.path), []
        for _ in range(3 if repair else 0):  # arrays made anew may show damaged tiles next
            if not any(p.fix for p in report.problems):
                break
            done += verify.repair(self.path, report.problems)
            report = verify.verify(self.path)
        report.repaired = done
        return report

    def resume(self, *, execution: Where | None = None, progress: bool = True) -> list[Level]:
        """Compute the missing tiles of every level (after a crash, or ``verify --repair``),
        and level 0, the job's own window, if the store lacks it.

        Returns the levels that had tiles to compute, each with its ``report``.
        """
        from .execute import run_level

        cfg = self.config
        store.refuse_lost_levels(store.open_root(self.path))  # not 'nothing to compute'
        levels = self.levels
        todo = [level.index for level in levels if not level.complete]
        self._require_intact([level.index for level in levels if level.complete],
                             listed=True)  # run_level checks the others
        if 0 not in [level.index for level in levels]:
            todo.insert(0, 0)
        with _session(_or_own(execution, self.execution), progress) as session:
            # a level 0 made anew passed the guard, or was forced, when the store was made
            return [Level(self, i, run_level(self.path, cfg, session, i, force=True))
                    for i in todo]

    def zoom(self, x=None, y=None, *, centre=None, width=None, auto: bool = False,
             log10: bool = False, level: int | None = None, box_fraction: float | None = None,
             resolution=None, dtype: str | None = None, force: bool = False,
             execution: Where | None = None, progress: bool = True) -> Level:
        """Compute a new level: a box, a centre and width, or the automatic target.

        Give ``x`` and/or ``y`` as ``(lo, hi)`` bounds, or ``centre=(cx, cy)`` with
        ``width`` (decades on a log axis, value units on a linear one; one number or
        ``(wx, wy)``), or ``auto=True``; values are hyperparameter values, or their log10
        with ``log10``. The window is taken relative to ``level`` (default: the deepest):
        an axis without new bounds keeps that level's. A window the store already has is
        resumed, not added again; so is an interrupted automatic zoom from the deepest
        level, taken again from the level it was taken from (its own level, unfinished, is
        the deepest now).

        Parameters
        ----------
        box_fraction : float, optional
            For ``auto`` only: the new window's width as a fraction of the level's
            (0 < f < 1; default 0.25).
        resolution : int or (nx, ny), optional
            Pixels of the new level (default: the job's).
        dtype : str, optional
            ``"float32"`` for a cheap, shallow preview of a float64 job; ``"double-double"``
            to zoom deeper than float64 keeps pixels apart (about 80 times the cost).
        force : bool
            Compute even where the dtype cannot keep neighbouring pixels apart.

        Returns
        -------
        Level
            With ``report`` saying what was computed.
        """
        from . import dive
        from .grid import resolution_pair

        auto, log10, force = flag("auto", auto), flag("log10", log10), flag("force", force)
        flag("progress", progress)
        execution = _or_own(execution, self.execution)
        if dtype is not None:  # only None is the default: a dtype it computes in, or refused
            check_computable(dataclasses.replace(self.config, dtype=dtype))
        base = self.deepest().index if level is None else self.level(level).index
        given = [name for name, on in (("a box", x is not None or y is not None),
                                       ("centre", centre is not None), ("auto", auto)) if on]
        if len(given) != 1:
            raise ConfigError("zoom needs exactly one of: a box (x/y bounds), centre (with "
                              f"width), auto; got {', '.join(given) or 'none'}")
        if width is not None and centre is None:
            raise ConfigError("width goes with centre; a box gives its bounds, auto its "
                              "box_fraction")
        if box_fraction is not None and not auto:
            raise ConfigError(f"box_fraction = {box_fraction!r} goes with auto; a box gives "
                              "its bounds, centre its width")
        resolution = None if resolution is None else resolution_pair(resolution)
        if auto:
            settings = {"box_fraction": _fraction(box_fraction), "resolution": resolution,
                        "dtype": dtype, "force": force}
            view = (dive.interrupted_auto_view(self.path, base, **settings) if level is None
                    else None)  # the same zoom run again finishes its level
            if view is None:
                self._require_intact([base])
                view = dive.auto_view(self.path, base, **settings)
            kind = "auto"
        else:
            current = self.level(base).view
            if centre is not None:
                if width is None:
                    raise ConfigError("centre needs width (one number, or (wx, wy))")
                view = views.centre_view(current, centre=centre, width=width, log10=log10)
            else:
                view = views.box_view(current, x=x, y=y, log10=log10)
            kind = "zoom"
        with _session(execution, progress) as session:
            index, report = dive.zoom_to(self.path, view, session, resolution=resolution,
                                         dtype=dtype, force=force, kind=kind)
        return Level(self, index, report)

    def ladder(self, level: int | None = None, *, widest=None,
               execution: Where | None = None, progress: bool = True) -> list[Level]:
        """Fill in the keyframe ladder above ``level`` (default: the deepest): levels of the
        same centre, each twice as wide, until one spans ``widest`` decades (default 6) or
        is as wide as the view ``widest`` (default with two linear axes: level 0's). Pixels
        shared with the narrower level are copied.

        Returns the ladder's levels, widest first.
        """
        from . import dive
        base = self.deepest().index if level is None else self.level(level).index
        if widest is None:  # decades mean nothing on linear axes
            cfg = self.config
            widest = 6 if "log" in (cfg.x.scale, cfg.y.scale) else self.level(0).view
        self._require_intact([base], every_array=True)
        with _session(_or_own(execution, self.execution), progress) as session:
            indices = dive.ladder(self.path, base, session, widest=widest)
        return [Level(self, i) for i in indices]

    def dive(self, decades: float, *, box_fraction: float | None = None,
             execution: Where | None = None, progress: bool = True) -> list[Level]:
        """Unattended deep zoom from level 0: auto-zoom until ``decades`` of zoom, then the
        keyframe ladder up to level 0's width. Resumable: call it again.

        Returns the ladder's levels, widest first.
        """
        from . import dive
        if not is_number(decades) or not 0 < decades < float("inf"):
            raise ConfigError(f"decades = {decades!r}: expected a finite number > 0")
        box_fraction = _fraction(box_fraction)  # before a cluster starts
        self._require_intact(every_array=True)
        with _session(_or_own(execution, self.execution), progress) as session:
            indices = dive.dive(self.path, self.config, decades, session,
                                box_fraction=box_fraction)
        return [Level(self, i) for i in indices]

    def animate(self, out: str | Path, **options) -> dict:
        """Export the zoom through the keyframe ladder, or with ``over="steps"`` a level's
        score snapshots, as MP4 or GIF (:func:`fractalsweep.animate.animate` lists the
        options)."""
        from .animate import animate

        self._require_intact()
        return animate(self.path, out, **options)

    def dimension(self, levels: list[int] | None = None, *, method: str = "sliding",
                  confidence: float = 0.95, level_set: tuple[str, float] = ("score", 0.0)):
        """Box-counting dimension of the boundary with an interval, pooled over the keyframe
        ladder or ``levels`` (:func:`fractalsweep.dimension.store_dimension`; methods in
        docs/dimension.md). ``level_set=(array, value)`` measures the boundary of a level
        set of another per-pixel array, e.g. ``("converged_fraction", 0.5)``.

        Returns
        -------
        fractalsweep.dimension.Dimension
        """
        from .dimension import checked_levels, store_dimension

        levels = None if levels is None else checked_levels(levels)
        self._require_intact(levels)
        return store_dimension(self.path, levels=levels, method=method, confidence=confidence,
                               level_set=level_set)

    def _require_intact(self, indices: list[int] | None = None, every_array: bool = False,
                        listed: bool = False):
        """A one-line error naming the damaged tiles of these levels (default: all), in
        their score or, with ``every_array``, in any per-pixel array (a ladder copies them);
        with ``listed``, a chunk missing from any per-pixel array counts too."""
        from .verify import require_intact

        root = store.open_root(self.path)
        for index in store.level_indices(root) if indices is None else indices:
            lvl = store.open_level(root, index)
            require_intact(self.path, lvl, lvl.pixel_arrays if every_array else ("score",),
                           lvl.pixel_arrays if listed else ())

    def explore(self, level: int | None = None, execution: Execution | None = None):
        """The interactive explorer: a window, or an ipympl widget in Jupyter
        (:func:`fractalsweep.explore.explore`)."""
        from .explore import explore

        where = _or_own(execution, self.execution)
        where = where.execution if isinstance(where, Session) else where
        return explore(self.path, level=level, execution=where)


def _fraction(value: float | None) -> float:
    """An automatic zoom's ``box_fraction``, checked; None for the default."""
    from .targets import BOX_FRACTION

    if value is None:
        return BOX_FRACTION
    if not is_number(value) or not 0 < value < 1:
        raise ConfigError(f"box_fraction = {value!r}: expected 0 < F < 1")
    return float(value)


class Level:
    """One level of a store: its window, its pixels and what they show.

    Parameters
    ----------
    store : Store
        The store it belongs to.
    index : int
        The level's index.
    report : RunReport, optional
        What the call that made this handle computed (:meth:`Store.zoom`).
    """

    def __init__(self, store: Store, index: int, report: RunReport | None = None):
        if not isinstance(store, Store):  # a path would fail only at the first read
            raise ConfigError(f"store = {store!r}: expected a Store, e.g. "
                              f"fractalsweep.open(path).level({index!r})")
        self.store = store
        self.index = index
        self.report = report

    def __repr__(self) -> str:
        try:
            nx, ny = self.resolution
            return (f"Level({self.index}, {self.kind}, {nx}x{ny} {self.dtype}, "
                    f"tiles {self.tiles_done}/{self.tiles})")
        except FractalsweepError as exc:
            return f"Level({self.index}, unreadable: {exc})"

    @property
    def _group(self) -> store.LevelGroup:
        return store.open_level(store.open_root(self.store.path), self.index)

    @property
    def attrs(self) -> dict:
        """The level's attributes as stored (docs/store.md)."""
        return dict(self._group.group.attrs)

    @property
    def view(self) -> dict:
        """The window, ``{"x": AxisConfig, "y": AxisConfig}`` with exact decimal bounds."""
        return levels.view_of(self._group, self.store.config)

    @property
    def resolution(self) -> tuple[int, int]:
        return tuple(self.attrs["resolution"])

    @property
    def dtype(self) -> str:
        return self.attrs["dtype"]

    @property
    def kind(self) -> str:
        return self.attrs["kind"]

    @property
    def tiles(self) -> int:
        return int(self._group.done.size)

    @property
    def tiles_done(self) -> int:
        return int(self._group.done.sum())

    @property
    def complete(self) -> bool:
        return bool(self._group.done.all())

    @property
    def arrays(self) -> list[str]:
        """Names of the per-pixel arrays (``score``, ``first_nonfinite``, ..., ``reused``, and
        ``audit`` once audited)."""
        group = self._group
        return [*group.arrays, "reused", *(["audit"] if "audit" in group.group else [])]

    def __getitem__(self, name: str) -> np.ndarray:
        """A per-pixel array (rows = y from the bottom, columns = x) or a coordinate: ``x``,
        ``y`` (and ``x_lo``, ``y_lo``, the remainders of double-double coordinates)."""
        from .verify import require_intact

        names = [*self.arrays, *(c for c in ("x", "y", "x_lo", "y_lo") if c in self._group.group)]
        return require_intact(self.store.path, self._group,
                              (self._one_of(name, names, "array"),))[name]

    def _one_of(self, name: str, names: list[str], what: str) -> str:
        """``name`` if it is one of ``names``, else a one-line error listing them (a name is
        a str: a list or an array is refused, not compared element by element)."""
        if not isinstance(name, str) or name not in names:
            raise ConfigError(f"level {self.index} has no {what} {name!r}; it has "
                              f"{', '.join(names)}")
        return name

    @property
    def score(self) -> np.ndarray:
        """The signed score: negative converged, non-negative diverged, NaN not computed."""
        return self["score"]

    def audit(self, sample: int | None = 256, *, against: str | None = None,
              execution: Where | None = None, progress: bool = True) -> dict:
        """Recompute ``sample`` pixels (None: all) one precision up and count those whose
        class flips (:func:`fractalsweep.audit.audit`; docs/precision.md).

        Returns
        -------
        dict
            ``against``, ``pixels``, ``flipped``, ``fraction``: also kept by the level.
        """
        from .audit import audit

        with _session(_or_own(execution, self.store.execution), progress) as session:
            return audit(self.store.path, self.index, session, sample=sample, against=against)

    def _label_values(self) -> tuple[np.ndarray, np.ndarray]:
        """The x and y values a picture's ticks name (:func:`fractalsweep.store.label_values`)."""
        return tuple(store.label_values(self._group, a) for a in ("x", "y"))

    def render_audit(self, out: str | Path | None = None) -> Path:
        """Draw the last audit: flipped pixels over the level (``<stem>-L<index>-audit.png``)."""
        from .render import render_audit

        view = self.attrs["view"]
        if "audit" not in self.attrs:
            raise ConfigError(f"level {self.index} has no audit yet; run one first")
        out = default_png(self.store.path, f"-L{self.index}-audit") if out is None else out
        return render_audit(self.score, self["audit"], self.attrs["audit"],
                            *self._label_values(), out,
                            xlabel=view["x"]["label"], ylabel=view["y"]["label"])

    def precision(self) -> dict:
        """How far this level's dtype can zoom further (:func:`precision.precision_check`)."""
        return precision.precision_check(self.view, self.resolution, self.dtype)

    def to_xarray(self):
        """Every per-pixel array as an :class:`xarray.Dataset` with ``x`` / ``y`` coordinates
        (hyperparameter values) and the level's attributes.

        Returns
        -------
        xarray.Dataset
        """
        import xarray as xr

        group = self._group.group
        coords = {name: (name[0], self[name]) for name in ("x", "y", "x_lo", "y_lo")
                  if name in group}  # x_lo, y_lo: remainders of double-double coordinates
        data = {name: (("y", "x"), self[name]) for name in self.arrays}
        attrs = {key: json.dumps(value) if isinstance(value, (dict, list)) else value
                 for key, value in group.attrs.items() if value is not None}
        attrs.update(level=self.index, store=self.store.path)
        dataset = xr.Dataset(data, coords=coords, attrs=attrs)
        for axis in ("x", "y"):
            dataset[axis].attrs["long_name"] = group.attrs["view"][axis]["label"]
        return dataset

    def _colouring(self, array: str, cmap: str | None) -> tuple[np.ndarray, dict]:
        """An array's values and how to draw them: the paper's colouring (or ``cmap``) for
        a score, else its :func:`~fractalsweep.colour.scale_of`."""
        from .colour import is_score, scale_of, score_colormap

        self._one_of(array, self.arrays, "per-pixel array")
        if is_score(array):
            cmap = "paper" if cmap is None else cmap  # only None: "" or [] is refused
            score_colormap(cmap)
            return self[array], {"cmap": cmap}
        values = self[array]
        # pixels not computed hold the fill value (first_nonfinite's -2, reused's 0): not data
        computed = self._group.finished(self._group.done)
        values = np.where(computed, values.astype(np.float64), np.nan)
        return values, {"scale": scale_of(array, values, cmap)}

    def plot(self, ax=None, cmap: str | None = None, array: str = "score"):
        """Draw the level into ``ax`` (default: a new pyplot figure's axes).

        ``array`` is any per-pixel array (:attr:`arrays`): a score (the score, a snapshot
        ``score_at_<steps>``, ``mean_score``) is drawn with the paper's colouring, or
        ``cmap``: ``"classes"`` or a matplotlib colormap name; any other array through its
        own colormap (:func:`fractalsweep.colour.scale_of`), or ``cmap``. Pixels not
        computed yet are white.

        Returns
        -------
        matplotlib.image.AxesImage
        """
        from matplotlib.axes import Axes

        from .render import draw_level

        if ax is None:
            import matplotlib.pyplot as plt

            ax = plt.figure().subplots()
        elif not isinstance(ax, Axes):
            raise ConfigError(f"ax = {ax!r}: expected matplotlib Axes, or None for a new figure")
        view = self.attrs["view"]
        values, colouring = self._colouring(array, cmap)
        return draw_level(ax, values, *self._label_values(), xlabel=view["x"]["label"],
                          ylabel=view["y"]["label"], **colouring)

    def render(self, out: str | Path | None = None, cmap: str | None = None,
               array: str = "score") -> Path:
        """Write the level as a PNG with axes and a colour legend (a colour bar for an array
        that is not a score); ``array`` and ``cmap`` as for :meth:`plot`. Default path
        ``<store stem>-L<index>.png`` next to the store, ``-L<index>-<array>.png`` for
        another array than the score."""
        from .render import render_png
        from .systems import system_of

        values, colouring = self._colouring(array, cmap)  # checks array: a name
        view = self.attrs["view"]
        suffix = f"-L{self.index}" + ("" if array == "score" else f"-{array}")
        return render_png(values, *self._label_values(),
                          default_png(self.store.path, suffix) if out is None else out,
                          xlabel=view["x"]["label"], ylabel=view["y"]["label"],
                          legend=system_of(self.store.config).legend, **colouring)


def default_store(job: Job, cfg: SweepConfig) -> str:
    """``<job file stem>.zarr`` for a job file (whatever its ``name``), else ``<name>.zarr``.

    >>> cfg = job_config({"name": "tanh"})
    >>> default_store("jobs/paper/tanh_copy.toml", cfg), default_store({"name": "tanh"}, cfg)
    ('tanh_copy.zarr', 'tanh.zarr')
    """
    if isinstance(job, (str, Path)):
        return f"{Path(job).stem}.zarr"
    if Path(cfg.name).name != cfg.name or cfg.name in (".", ".."):
        raise ConfigError(f"name = {cfg.name!r}: the default store ./<name>.zarr needs a name "
                          "without folders; give a plain name or the store's path")
    return f"{cfg.name}.zarr"


def default_png(path: str, suffix: str = "") -> str:
    """``<store stem><suffix>.png`` next to a local store, in the working directory for URLs.

    >>> default_png("runs/tanh.zarr"), default_png("runs/tanh.zarr", "-L3")
    ('runs/tanh.png', 'runs/tanh-L3.png')
    """
    local = Path(path.rstrip("/").split("://")[-1])
    base = local.parent / local.stem if "://" not in path else Path(local.stem)
    return f"{base}{suffix}.png"
