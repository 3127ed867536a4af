"""The interactive explorer: a matplotlib window (or a Jupyter widget) on the levels of a store.

Drag a box to zoom: the box becomes a new level, computed in a background job of a
:class:`~fractalsweep.hub.Hub` (as the web explorer's are) on the cluster while a timer
redraws the level as its tiles land. Keys
step through the levels and change the colouring; the status line shows the level's window,
its dtype and the decades of zoom its precision has left.

The window is an ordinary :class:`~matplotlib.figure.Figure`: only :func:`explore` touches
pyplot, so :class:`Explorer` runs headless (Agg) and is tested by sending it synthetic events.

Keys
----
``left`` / ``b``, ``right`` / ``n``
    Previous / next level (by index).
``d``
    The deepest level.
``c``
    Next colouring (:data:`CMAPS`).
``f``
    Toggle force: compute zooms the precision guard refuses.
``r``
    Redraw the level from the store (a level another process is computing).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.widgets import RectangleSelector

from . import levels, precision, store
from .colour import to_rgba
from .errors import ConfigError, PrecisionError
from .execution import Execution
from .hub import Hub, Job
from .render import end_labels, label_ends
from .systems import system_of
from .verify import damage_note, damaged_tiles
from .views import box_to_view

__all__ = ["CMAPS", "KEYS", "Explorer", "explore"]

CMAPS = ("paper", "classes", "viridis")
#: key -> (method of :class:`Explorer`, its arguments)
KEYS = {"left": ("step", -1), "b": ("step", -1), "right": ("step", 1), "n": ("step", 1),
        "d": ("to_deepest",), "c": ("cycle_colours",), "f": ("toggle_force",),
        "r": ("redraw",)}
HELP = "drag: zoom   \u2190/\u2192 b/n: levels   d: deepest   c: colours   f: force   r: redraw"
MIN_DRAG = 2  # screen pixels; a shorter drag in either direction is a click, not a box
POLL_MS = 250
REDRAW_SHARE = 0.2  # while tiles land, redrawing takes at most this share of the time


@dataclass
class _Job:
    """A level being computed (the hub's ``work``), and what the window knows of it."""

    index: int
    work: Job
    follow: bool = True  # show the level as it lands, until the user steps elsewhere
    done: int = 0  # tiles finished at the last poll
    drawn: int | None = None  # tiles finished when the level was last drawn
    total: int | None = None


class Explorer:
    """A matplotlib figure on the levels of a store, with box zoom and level navigation.

    Parameters
    ----------
    store_path : str
        The store (a path or an fsspec URL) holding at least one level.
    level : int, optional
        The level shown first; default: the deepest (:func:`fractalsweep.levels.deepest`).
    execution : Execution, optional
        Where the zooms are computed. Its session starts on the first zoom and is kept until
        :meth:`close`; by default that is a local cluster. ``Execution(scheduler="sync")``
        computes in this process.
    figure : matplotlib.figure.Figure, optional
        The figure to draw in (a pyplot one for a window); default: a new one on an Agg
        canvas.

    Examples
    --------
    >>> explorer = Explorer("quickstart.zarr", execution=Execution(scheduler="sync"))  # doctest: +SKIP
    >>> box = box_to_view(explorer.view, explorer.resolution, (3, 9), (2, 8))  # doctest: +SKIP
    >>> explorer.zoom(box)  # doctest: +SKIP
    1
    >>> explorer.wait()  # doctest: +SKIP
    """

    def __init__(self, store_path: str, *, level: int | None = None,
                 execution: Execution | None = None, figure: Figure | None = None):
        self.path = store_path
        self.cfg = store.config_of(store_path)
        self.cmap = CMAPS[0]
        self.force = False
        self.message = HELP
        self._hub = Hub(store_path, execution or Execution(), connect=False)
        self._job: _Job | None = None
        self._timer = None
        self._drawn_at = self._draw_seconds = 0.0
        if figure is None:
            figure = Figure(figsize=(7, 7.5))
            FigureCanvasAgg(figure)
        self.figure = figure
        self.ax = figure.subplots()
        figure.subplots_adjust(left=0.12, right=0.97, top=0.97, bottom=0.2)
        self.image = self.ax.imshow(np.zeros((1, 1, 4), np.uint8), origin="upper",
                                    interpolation="nearest")
        self.status = figure.text(0.01, 0.01, "", family="monospace", fontsize=8, va="bottom")
        self.selector = RectangleSelector(self.ax, self._on_select, useblit=True, button=[1])
        figure.canvas.mpl_connect("key_press_event", self._on_key)
        self.show(levels.deepest(store_path) if level is None else level)

    # --- drawing ------------------------------------------------------------------------

    def show(self, level: int) -> None:
        """Draw ``level`` as the store holds it now; pixels not computed yet are left clear."""
        start = time.monotonic()
        lvl = store.open_level(store.open_root(self.path), level)
        values, damaged = damaged_tiles(lvl)  # a damaged tile's pixels read as NaN
        score = values["score"]
        if damaged:
            self.message = f"level {level}: {damage_note(self.path, damaged)}; not drawn"
        ny, nx = score.shape
        self.level, self.view = level, levels.view_of(lvl, self.cfg)
        self.resolution, self.dtype = (nx, ny), lvl.group.attrs["dtype"]
        self.tiles = (int(lvl.done.sum()), lvl.done.size)
        self.preview = lvl.group.attrs.get("preview", False)
        self.image.set_data(to_rgba(score, self.cmap))
        # pixel-index coordinates: pixel (i, j) is centred on (i, j), row 0 at the bottom
        self.image.set_extent((-0.5, nx - 0.5, -0.5, ny - 0.5))
        self.ax.set_xlim(-0.5, nx - 0.5)
        self.ax.set_ylim(-0.5, ny - 0.5)
        label_ends(self.ax, store.label_values(lvl, "x"), store.label_values(lvl, "y"),
                   self.view["x"].label, self.view["y"].label)
        self._update_status()
        self._draw_seconds = time.monotonic() - start
        self._drawn_at = time.monotonic()

    def _update_status(self) -> None:
        """Two lines: the level shown, then the computation under way or the last message."""
        ends = {a: end_labels(self.view[a].lo, self.view[a].hi) for a in "xy"}
        windows = [f"{a} {' .. '.join(ends[a])}" for a in ("x", "y")]
        done, total = self.tiles
        left = precision.decades_left(self.view, self.resolution, self.dtype)
        parts = [f"level {self.level}", *windows,
                 self.dtype + (" preview" if self.preview else ""), f"{left:.1f} decades left",
                 self.cmap]
        if done < total:
            parts.append(f"tiles {done}/{total}")
        if self.force:
            parts.append("FORCE")
        job = self._job
        second = self.message
        if job is not None:
            progress = "starting" if job.total is None else f"{job.done}/{job.total} tiles"
            # the help is for an idle window; a message (a refused zoom) stays on the line
            second = f"computing level {job.index}: {progress}" + (
                "" if self.message == HELP else f"   {self.message}")
        self.status.set_text("   ".join(parts) + "\n" + second)
        self.figure.canvas.draw_idle()

    def _say(self, message: str) -> None:
        self.message = message
        self._update_status()

    # --- zooming ------------------------------------------------------------------------

    def _on_select(self, press, release) -> None:
        """RectangleSelector callback: the dragged box, in pixel coordinates, becomes a level."""
        if min(abs(release.x - press.x), abs(release.y - press.y)) < MIN_DRAG:
            return
        try:
            view = box_to_view(self.view, self.resolution, (press.xdata, release.xdata),
                               (press.ydata, release.ydata))
        except ConfigError as exc:
            self._say(f"no zoom: {exc}")
            return
        self.zoom(view)

    def zoom(self, view: dict, *, resolution=None, dtype: str | None = None) -> int | None:
        """Start computing ``view`` as a level in the background; the window follows it.

        ``resolution`` (nx, ny) and ``dtype`` default to those of the level shown. The guard
        runs here, so a refusal shows at once in the status line (``f`` forces).

        Returns
        -------
        int or None
            The level being computed (an existing one if the store has this window), or None
            if refused or another level is still computing.
        """
        if self._job is not None:
            self._say("one zoom at a time: this one is still computing")
            return None
        resolution = tuple(resolution or self.resolution)
        dtype = dtype or self.dtype
        try:
            precision.guard(view, resolution, dtype, force=self.force,
                            dtypes=system_of(self.cfg).dtypes)
        except PrecisionError as exc:
            self._say(f"refused: {exc.reason}{' (f: force)' if exc.forcible else ''}")
            return None
        index = levels.level_for(store.open_root(self.path), view, resolution, dtype)
        # the hub's job starts the session's cluster on first use: not in the window's
        # thread, so the window stays live meanwhile
        self._job = _Job(index, self._hub.zoom(view, resolution, dtype, self.force))
        self.message = HELP
        self._timer = self.figure.canvas.new_timer(interval=POLL_MS)
        self._timer.add_callback(self._poll)
        self._timer.start()
        self._update_status()
        return index

    def _poll(self) -> None:
        """Timer callback: redraw the level being computed as tiles land; finish it at the end."""
        job = self._job
        if job is None:
            return
        if job.work.finished:
            self._finish(job)
            return
        progress = self._hub.progress(job.work)
        if progress is None:  # the level does not exist yet
            return
        _, job.done, job.total = progress
        # a big level takes a while to colour; redraw no more often than keeps the window live
        due = time.monotonic() - self._drawn_at >= self._draw_seconds / REDRAW_SHARE
        if job.follow and (job.drawn != job.done or self.level != job.index) and due:
            job.drawn = job.done
            self.show(job.index)
        else:
            self._update_status()

    def _finish(self, job: _Job) -> None:
        self._timer.stop()
        self._timer = None  # dropped now, not at interpreter exit (ipympl's timers need its loop)
        self._job = None
        work = job.work
        if work.error is not None:
            self._say(f"level {job.index} failed: {work.error}")
            return
        self.message = (f"level {work.result} done in {time.monotonic() - work.started:.1f} s"
                        + ("" if job.follow else " (d or \u2192 to see it)"))
        if job.follow:
            self.show(work.result)
        else:
            self._update_status()

    def wait(self) -> None:
        """Block until the level being computed is finished, then draw it (for scripts, tests)."""
        job = self._job
        if job is not None:
            job.work.wait()
            self._poll()

    def close(self) -> None:
        """Wait for the level being computed, then stop the cluster the zooms started."""
        self.wait()
        self._hub.close()

    # --- keys ---------------------------------------------------------------------------

    def _on_key(self, event) -> None:
        name, *args = KEYS.get(event.key, (None,))
        if name is not None:
            getattr(self, name)(*args)

    def _go(self, level: int) -> None:
        if self._job is not None:
            self._job.follow = level == self._job.index
        self.message = HELP
        self.show(level)

    def step(self, offset: int) -> None:
        """Show the level ``offset`` places away in index order (stopping at the ends)."""
        self._go(levels.step(self.path, self.level, offset))

    def to_deepest(self) -> None:
        """Show the deepest level (:func:`fractalsweep.levels.deepest`)."""
        self._go(levels.deepest(self.path))

    def cycle_colours(self) -> None:
        """Colour with the next of :data:`CMAPS`."""
        self.cmap = CMAPS[(CMAPS.index(self.cmap) + 1) % len(CMAPS)]
        self.show(self.level)

    def toggle_force(self) -> None:
        """Compute zooms the precision guard refuses (pixels may collide) or stop doing so."""
        self.force = not self.force
        self._update_status()

    def redraw(self) -> None:
        """Read the level shown from the store again."""
        self.show(self.level)


def _own_keys(figure) -> None:
    """Give the explorer's keys to the explorer, every other key to matplotlib's defaults.

    Matplotlib binds ``left`` and ``c`` to "back", ``right`` to "forward", ``r`` to "home"
    and ``f`` to full screen; these would act as well as the explorer's own keys.
    """
    from matplotlib.backend_bases import key_press_handler

    canvas, manager = figure.canvas, figure.canvas.manager
    if manager is None or getattr(manager, "key_press_handler_id", None) is None:
        return
    canvas.mpl_disconnect(manager.key_press_handler_id)
    manager.key_press_handler_id = canvas.mpl_connect(
        "key_press_event",
        lambda event: event.key in KEYS or key_press_handler(event, canvas, manager.toolbar))


NON_INTERACTIVE = ("agg", "cairo", "pdf", "pgf", "ps", "svg", "template",
                   "module://matplotlib_inline.backend_inline")


def _in_notebook(backend: str) -> bool:
    """Whether ``backend`` draws into a Jupyter notebook (ipympl), where show() returns."""
    return "ipympl" in backend or backend in ("widget", "nbagg")


def explore(store_path: str, level: int | None = None,
            execution: Execution | None = None) -> Explorer:
    """Open the explorer on a store: a window, or a widget in a Jupyter notebook.

    In a window (any interactive matplotlib backend) this blocks until the window is closed;
    closing waits for a level still being computed (its finished tiles are kept either way),
    then stops the cluster the zooms started. In a notebook with the ipympl backend
    (``%matplotlib widget``) the figure is shown in the cell and the explorer returned at once:
    call its :meth:`Explorer.close` when done. Arguments as for :class:`Explorer`.

    Returns
    -------
    Explorer
        Closed already when it ran in a window.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend()
    if backend.lower() in NON_INTERACTIVE:
        raise ConfigError(f"explore needs an interactive matplotlib backend, not {backend}: "
                          "run it where a window can open (or set MPLBACKEND, e.g. TkAgg), "
                          "or in Jupyter after %matplotlib widget (ipympl)")
    figure = plt.figure(figsize=(7, 7.5))
    _own_keys(figure)
    explorer = Explorer(store_path, level=level, execution=execution, figure=figure)
    if _in_notebook(backend):
        plt.show()
        return explorer
    try:
        plt.show()
    finally:
        explorer.close()
    return explorer
