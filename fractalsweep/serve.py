"""The web explorer: a Bokeh server on the levels of a store, reached from a browser.

``fractalsweep serve STORE`` serves one page per browser tab. The page shows a level with its
colouring and hyperparameter axes; a box dragged on it (or a scroll) becomes a new level,
computed on the server's execution backend while the page draws its tiles as they land; the
level list, back/forward/deepest, the keyframe ladder, an animation export with its download,
a readout of the pixel under the mouse and a URL that opens the same view complete it.

Three layers:

- pure helpers (:func:`parse_query`, :func:`query_string`, :func:`level_image`,
  :func:`placement`, :func:`axis_ticks`): arrays and strings in, arrays and strings out;
- :class:`fractalsweep.hub.Hub`: what every page of one server shares (the store, one
  execution session, the registry of jobs under way, the exported files);
- :class:`Page`: one tab's Bokeh document and its handlers; :func:`make_server` and
  :func:`serve` wire them into a Bokeh server with a download route.

A page never waits for a computation: jobs run in the hub's background threads, and the
page's periodic callback reads the store and the jobs and redraws.
"""

from __future__ import annotations

import contextlib
import html
import ipaddress
import json
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
from bokeh.application import Application
from bokeh.application.handlers.function import FunctionHandler
from bokeh.events import MouseLeave, MouseMove, RangesUpdate
from bokeh.layouts import column, row
from bokeh.models import (
    BoxZoomTool,
    Button,
    Checkbox,
    ColumnDataSource,
    CustomJS,
    Div,
    FixedTicker,
    RadioButtonGroup,
    Range1d,
    ResetTool,
    Select,
    WheelZoomTool,
)
from bokeh.plotting import figure
from bokeh.server.server import Server
from tornado.web import HTTPError, RequestHandler

from . import cluster, levels, precision, store
from .colour import classes, score_colormap, to_rgba
from .decimals import CONTEXT, parse
from .errors import ConfigError, FractalsweepError, PrecisionError
from .execution import Execution
from .explore import CMAPS, POLL_MS, REDRAW_SHARE
from .hub import EXPORTS, Hub, Job
from .render import axis_labels, end_labels
from .systems import system_of
from .verify import damage_note, damaged_tiles
from .views import AXES, View, box_to_view, box_view, window

__all__ = ["DownloadHandler", "Page", "Query", "axis_ticks", "level_image", "make_server",
           "parse_query", "placement", "query_string", "serve"]


PARAMETERS = ("level", "cmap", "x", "y")
SETTLE_S = 0.4  # a box or scroll zoom becomes a level once the view has been still this long
MIN_BOX = 1.0  # level pixels; a narrower box is a click, not a zoom
MAX_SIDE = 1024  # a level wider than this is sent to the browser sampled (every k-th pixel)
BACKDROP_MAX = 64  # a new level is drawn over the one it came from up to this zoom per axis
FRAME = 560  # screen pixels of the picture's longer side
TICKS = 5
LIST_EVERY_S = 1.0  # how often a page looks for levels added by other tabs or processes
NAMES = {0: "converged", 1: "diverged", 2: "boundary"}  # colour.classes


# --- pure helpers -----------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """What a page's URL asks for: a level (or a window) and a colouring."""

    level: int | None = None
    cmap: str = CMAPS[0]
    window: tuple[tuple[str, str], tuple[str, str]] | None = None  # (x lo, hi), (y lo, hi)


def _text(name: str, value: bytes | str) -> str:
    if isinstance(value, str):
        return value
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: not UTF-8 text") from None


def _bounds(name: str, text: str) -> tuple[str, str]:
    ends = text.split(",")
    if len(ends) != 2:
        raise ConfigError(f"{name}={text}: expected LO,HI (two hyperparameter values)")
    for end, value in zip(("lo", "hi"), ends):
        parse(f"{name}.{end}", value)
    return ends[0].strip(), ends[1].strip()


def parse_query(arguments: Mapping[str, list]) -> Query:
    """The view a page's URL asks for, or a one-line error.

    Parameters
    ----------
    arguments : mapping of str to list of bytes or str
        The URL's parameters, as tornado gives them. Valid: ``level=N``, ``cmap=NAME``
        (``paper``, ``classes`` or a matplotlib colormap) and a window ``x=LO,HI&y=LO,HI``
        (hyperparameter values) instead of a level. Bokeh's own ``bokeh-*`` are ignored.

    Raises
    ------
    ConfigError
        An unknown or repeated parameter, or a value that is not what it should be.

    Examples
    --------
    >>> parse_query({"level": [b"3"], "cmap": [b"classes"]})
    Query(level=3, cmap='classes', window=None)
    >>> parse_query({"x": [b"10,100"], "y": [b"1e-1, 2"]}).window
    (('10', '100'), ('1e-1', '2'))
    >>> parse_query({"level": [b"two"]})
    Traceback (most recent call last):
    ...
    fractalsweep.errors.ConfigError: level=two: expected a level number (0, 1, ...)
    >>> parse_query({"zoom": [b"2"]})
    Traceback (most recent call last):
    ...
    fractalsweep.errors.ConfigError: unknown URL parameter 'zoom'; valid: level, cmap, x, y
    """
    given: dict[str, str] = {}
    for name, values in arguments.items():
        if name.startswith("bokeh-"):
            continue
        if name not in PARAMETERS:
            raise ConfigError(f"unknown URL parameter {name!r}; valid: level, cmap, x, y")
        if len(values) != 1:
            raise ConfigError(f"{name} is given {len(values)} times; give it once")
        given[name] = _text(name, values[0])
    level = given.get("level")
    if level is not None and not re.fullmatch(r"[0-9]{1,9}", level):
        raise ConfigError(f"level={level}: expected a level number (0, 1, ...)")
    cmap = given.get("cmap", CMAPS[0])
    score_colormap(cmap)
    window = None
    if "x" in given or "y" in given:
        if level is not None:
            raise ConfigError("give a level or a window (x and y), not both")
        missing = [a for a in AXES if a not in given]
        if missing:
            raise ConfigError(f"a window needs x=LO,HI and y=LO,HI; {missing[0]} is missing")
        window = (_bounds("x", given["x"]), _bounds("y", given["y"]))
    return Query(level=None if level is None else int(level), cmap=cmap, window=window)


def query_string(level: int, cmap: str) -> str:
    """The URL query that opens ``level`` coloured with ``cmap`` (:func:`parse_query`).

    >>> query_string(3, "classes")
    '?level=3&cmap=classes'
    """
    return "?" + urlencode({"level": level, "cmap": cmap})


def level_image(score: np.ndarray, cmap: str, max_side: int = MAX_SIDE) -> np.ndarray:
    """A level as Bokeh's ``image_rgba`` draws it: packed RGBA, row 0 at the bottom.

    Pixels not computed yet are transparent. A level with more than ``max_side`` pixels a
    side is sampled (every k-th pixel, the same k on both axes) before it is coloured, so the
    browser gets at most ``max_side`` pixels a side; the colours are those of the sample.

    Examples
    --------
    >>> score = np.array([[-1.0, 2.0], [np.nan, 0.5]])
    >>> image = level_image(score, "classes")
    >>> image.dtype, image.shape, image.view(np.uint8).reshape(2, 2, 4)[1, 0, 3]
    (dtype('uint32'), (2, 2), np.uint8(0))
    >>> level_image(np.zeros((4097, 4097)), "paper").shape
    (820, 820)
    """
    step = -(-max(score.shape) // max_side)
    rgba = to_rgba(score[::step, ::step], cmap)[::-1]  # to_rgba's rows run from the top
    return np.ascontiguousarray(rgba).view(np.uint32)[..., 0]


def placement(view: View, resolution, target: View, target_resolution) -> tuple[float, ...]:
    """Where a level's picture lies in another level's pixel coordinates.

    Pixel ``p`` of an ``n``-pixel axis is centred at ``lo + (hi - lo) * p / (n - 1)`` in axis
    units (log10 on a log axis); a picture spans ``-0.5 .. n - 0.5`` of its own pixels.

    Returns
    -------
    tuple of float
        ``(x, y, dw, dh)``: the picture's lower left corner and size, in pixels of the
        ``target`` level (whose own picture spans ``-0.5 .. n - 0.5``).

    Examples
    --------
    >>> from fractalsweep.config import AxisConfig
    >>> wide = {"x": AxisConfig(lo="1", hi="10000"), "y": AxisConfig(lo="1", hi="10000")}
    >>> deep = {"x": AxisConfig(lo="10", hi="100"), "y": AxisConfig(lo="10", hi="100")}
    >>> placement(wide, (5, 5), deep, (5, 5))  # level 1 of wide is pixel 0 of deep
    (-6.0, -6.0, 20.0, 20.0)
    """
    out = []
    for name, n, m in zip(AXES, resolution, target_resolution):
        (centre, width), (t_centre, t_width) = window(view[name]), window(target[name])
        with localcontext(CONTEXT):
            half = width / 2 + width / (2 * (n - 1))  # half the picture, in axis units
            scale = (m - 1) / t_width  # target pixels per axis unit
            out.append((float((centre - half - t_centre + t_width / 2) * scale),
                        float(2 * half * scale)))
    (x, dw), (y, dh) = out
    return x, y, dw, dh


def axis_ticks(name: str, values: np.ndarray, count: int = TICKS) -> tuple[str, dict[int, str]]:
    """The name and tick labels of an axis drawn in pixel coordinates: pixel index -> its
    value.

    ``count`` pixels spread evenly from the first to the last, labelled with their
    hyperparameter values (not log10), or offsets from a centre the name gives
    (:func:`fractalsweep.render.axis_labels`).

    >>> axis_ticks("lr", np.array([0.1, 1.0, 10.0, 100.0, 1000.0]), 3)
    ('lr', {0: '0.1', 2: '10', 4: '1e3'})
    """
    n = len(values)
    positions = sorted({round(k * (n - 1) / (count - 1)) for k in range(count)})
    name, labels = axis_labels(name, [values[p] for p in positions])
    return name, dict(zip(positions, labels))


# --- one browser tab --------------------------------------------------------------------


#: What a page shows once its server has stopped or cannot be reached (its browser side only)
LOST = ('<div id="fs-message" style="color:#b2182b">the server has stopped or cannot be '
        "reached: this page no longer updates; reload it once the server runs again</div>")


def _exact_text(value) -> str:
    """A pixel's hyperparameter value in full: a float's shortest repr, a double-double
    level's exact decimal."""
    return str(value) if isinstance(value, Decimal) else repr(float(value))


def _div(ident: str, text: str = "") -> str:
    return f'<div id="{ident}">{text}</div>'


class Page:
    """One browser tab: a Bokeh document on the levels of the hub's store.

    Parameters
    ----------
    hub : Hub
        The server's shared state.
    doc : bokeh.document.Document
        The document to build (the server makes one per tab).
    arguments : mapping, optional
        The URL's parameters (:func:`parse_query`); a bad one is reported in the page, which
        then shows the deepest level.
    """

    def __init__(self, hub: Hub, doc, arguments: Mapping[str, list] | None = None):
        self.hub, self.doc = hub, doc
        self.level: int | None = None
        self.cmap = CMAPS[0]
        self.force = False
        self.job: Job | None = None  # the zoom or ladder this page follows
        self.following = False  # the job's level is shown as it lands
        self.export_job: Job | None = None
        self.refused: View | None = None  # a window the precision guard refused
        self._backdrop_from: tuple | None = None  # (view, resolution, image) zoomed from
        self._pending: tuple[float, ...] | None = None  # a zoomed view waiting to settle
        self._pending_at = 0.0
        self._drawn: tuple[int, int] | None = None  # (level, tiles) when last drawn
        self._drawn_at = self._draw_seconds = self._listed_at = 0.0
        self._hovered: tuple[int, int] | None = None
        self._plot()
        self._controls()
        self._layout()
        doc.js_on_event("document_ready", CustomJS(  # the address bar shows the view shown
            args={"url": self.url}, code="window.history.replaceState(null, '', url.text)"))
        doc.js_on_event("connection_lost", CustomJS(  # not a page that looks live
            args={"message": self.message}, code=f"message.text = {json.dumps(LOST)}"))
        doc.add_periodic_callback(self.poll, POLL_MS)
        doc.title = f"fractalsweep: {Path(hub.path).name}"
        try:
            query = parse_query(arguments or {})
        except ConfigError as exc:
            self._say(f"bad URL: {exc}; showing the deepest level", error=True)
            query = Query()
        self.cmap = query.cmap
        self.colours.active = CMAPS.index(query.cmap) if query.cmap in CMAPS else None
        self._refresh_levels()
        self._open(query)

    def _plot(self) -> None:
        """The picture: the level over the one it came from (while tiles land), in pixel
        coordinates with hyperparameter tick labels; box zoom on drag, zoom on scroll."""
        self.source = ColumnDataSource(_image_data())
        self.backdrop = ColumnDataSource(_image_data())
        box = BoxZoomTool()
        wheel = WheelZoomTool()
        self.plot = figure(x_range=Range1d(-0.5, 0.5), y_range=Range1d(-0.5, 0.5),
                           tools=[box, wheel, ResetTool()], frame_width=FRAME,
                           frame_height=FRAME, toolbar_location="above", min_border_right=40)
        self.plot.toolbar.active_drag, self.plot.toolbar.active_scroll = box, wheel
        self.plot.toolbar.logo = None
        self.plot.grid.visible = False
        for axis in (self.plot.xaxis[0], self.plot.yaxis[0]):
            axis.ticker = FixedTicker(ticks=[])
        for source in (self.backdrop, self.source):
            self.plot.image_rgba("image", x="x", y="y", dw="dw", dh="dh", source=source)
        self.plot.on_event(RangesUpdate, self._on_ranges)
        self.plot.on_event(MouseMove, self._on_move)
        self.plot.on_event(MouseLeave, self._on_leave)

    def _controls(self) -> None:
        """The status lines, the level list, navigation, colourings, force, ladder, export,
        the view's URL and the hover readout."""
        hub = self.hub
        self.title = Div(text=_div("fs-title", f"<b>{html.escape(hub.path)}</b>"))
        self.status = Div(text=_div("fs-status"), width=FRAME + 340)
        self.progress = Div(text=_div("fs-progress"), width=FRAME + 340)
        self.message = Div(text=_div("fs-message"), width=FRAME + 340)
        self.backend = Div(text=_div("fs-backend"), width=FRAME + 340)
        self.readout = Div(text=_div("fs-readout"), width=FRAME)
        self.level_list = Select(title="Levels", options=[], width=320)
        self.level_list.on_change("value", self._on_level)
        self.back, self.forward = Button(label="\u25c0 back"), Button(label="forward \u25b6")
        self.deepest = Button(label="deepest")
        self.back.on_click(lambda: self.step(-1))
        self.forward.on_click(lambda: self.step(1))
        self.deepest.on_click(self.to_deepest)
        self.colours = RadioButtonGroup(labels=list(CMAPS), active=0)
        self.colours.on_change("active", self._on_colours)
        self.force_box = Checkbox(label="force: compute past the precision guard")
        self.force_box.on_change("active", self._on_force)
        self.ladder_button = Button(label="build the ladder up to level 0")
        self.ladder_button.on_click(self.build_ladder)
        self.export_format = Select(title="Animation", options=list(EXPORTS), value="mp4",
                                    width=100)
        self.export_button = Button(label="export")
        self.export_button.on_click(self.export)
        self.download = Div(text=_div("fs-download"), width=320)
        self.url = Div(text="", visible=False)  # the query of the view shown
        self.url.js_on_change("text", CustomJS(
            code="window.history.replaceState(null, '', cb_obj.text)"))
        self.link = Div(text=_div("fs-link"), width=320)
        self.copy = Button(label="copy URL of this view")
        self.copy.js_on_click(CustomJS(args={"url": self.url, "button": self.copy}, code="""
            const href = new URL(url.text, window.location.href).href
            navigator.clipboard.writeText(href).then(
                () => { button.label = "copied: " + href },
                () => { button.label = "copy failed: use the link below" })"""))

    def _layout(self) -> None:
        side = column(self.level_list, row(self.back, self.forward, self.deepest), self.colours,
                      self.force_box, self.ladder_button,
                      row(self.export_format, self.export_button), self.download, self.copy,
                      self.link, self.url)
        self.doc.add_root(column(self.title, self.status, self.progress, self.message,
                                 row(column(self.plot, self.readout), side), self.backend))

    def _open(self, query: Query) -> None:
        """Show what the URL asked for; the deepest level if it cannot be shown."""
        deepest = self.hub.store.deepest().index
        if query.window is not None:
            base = self.hub.store.level(0)
            try:
                view = box_view(base.view, x=query.window[0], y=query.window[1])
            except ConfigError as exc:
                self._say(f"bad URL: {exc}; showing the deepest level", error=True)
                self.show(deepest)
                return
            self.show(base.index)
            self.request(view)
            return
        if query.level is not None and query.level not in store.level_indices(
                store.open_root(self.hub.path)):
            self._say(f"bad URL: no level {query.level} in this store; showing the deepest "
                      "level", error=True)
            query = Query(cmap=query.cmap)
        self.show(deepest if query.level is None else query.level)

    # --- drawing ------------------------------------------------------------------------

    def show(self, index: int) -> None:
        """Draw level ``index`` as the store holds it now; missing tiles are transparent."""
        start = time.monotonic()
        root = store.open_root(self.hub.path)
        if index not in store.level_indices(root):
            self._lost(index)
            return
        lvl = store.open_level(root, index)
        group = lvl.group
        values, damaged = damaged_tiles(lvl)  # a damaged tile's pixels read as NaN
        score = values["score"]
        if damaged:
            self._say(f"level {index}: {damage_note(self.hub.path, damaged)}; they are not "
                      "drawn", error=True)
        ny, nx = score.shape
        changed = index != self.level
        self.level, self.view = index, levels.view_of(lvl, self.hub.config)
        self.resolution, self.dtype = (nx, ny), group.attrs["dtype"]
        self.values = {name: store.label_values(lvl, name) for name in ("x", "y")}
        self.score, self.classes = score, classes(score)
        self.damaged = np.zeros(score.shape, bool)  # the hover readout names these pixels
        for tile in damaged:
            self.damaged[lvl.tiling.slices(tile)] = True
        self.tiles = (int(lvl.done.sum()), lvl.done.size)
        self.source.data = _image_data(level_image(score, self.cmap), nx, ny)
        if changed:  # a zoom of the picture waiting to settle was on the level before
            self._pending = None
            self._frame(group.attrs)
            self._on_leave(None)
        if self.tiles[0] == self.tiles[1]:
            self.backdrop.data = _image_data()
        if str(index) not in (value for value, _ in self.level_list.options):
            self._refresh_levels()
        query = query_string(index, self.cmap)
        if query != self.url.text:  # another view: not "copied: <the view before>"
            self.url.text, self.copy.label = query, "copy URL of this view"
        self.link.text = _div("fs-link", f'<a href="{html.escape(self.url.text)}">'
                                         "link to this view</a>")
        self.level_list.value = str(index)
        self._update_status()
        self._drawn = (index, self.tiles[0])
        self._draw_seconds = time.monotonic() - start
        self._drawn_at = time.monotonic()

    def _lost(self, index: int) -> None:
        """Level ``index`` left the store under the page (``verify --repair`` removes a level
        whose creation was cut short; a folder deleted by hand): say so and show the deepest
        level, instead of a traceback in the server's log and a page that stops answering."""
        deepest = self.hub.store.deepest().index
        self.go(deepest)
        self._say(f"level {index} is no longer in this store; showing the deepest level, "
                  f"{deepest}", error=True)

    def _frame(self, attrs: dict) -> None:
        """Axes, ticks and ranges for a newly shown level."""
        nx, ny = self.resolution
        self._full_view()
        scale = FRAME / max(nx, ny)
        self.plot.frame_width, self.plot.frame_height = round(nx * scale), round(ny * scale)
        for axis, name in ((self.plot.xaxis[0], "x"), (self.plot.yaxis[0], "y")):
            axis.axis_label, ticks = axis_ticks(attrs["view"][name]["label"], self.values[name])
            axis.ticker.ticks = list(ticks)
            axis.major_label_overrides = ticks

    def _full_view(self) -> None:
        """The whole level in the picture: for a new level, and after a zoom that makes none
        (the browser had zoomed into the box at once)."""
        nx, ny = self.resolution
        for rng, n in ((self.plot.x_range, nx), (self.plot.y_range, ny)):
            rng.update(start=-0.5, end=n - 0.5, reset_start=-0.5, reset_end=n - 0.5)

    def _update_status(self) -> None:
        nx, ny = self.resolution
        windows = " \u00b7 ".join(
            f"{a} {' .. '.join(end_labels(self.view[a].lo, self.view[a].hi))}"
            for a in AXES)
        done, total = self.tiles
        parts = [f"<b>level {self.level}</b> ({nx}x{ny} {self.dtype})", windows,
                 (f"{precision.decades_left(self.view, self.resolution, self.dtype):.1f} "
                  "decades of precision left"),
                 f"tiles {done}/{total}", self.cmap, *(["FORCE"] if self.force else [])]
        self.status.text = _div("fs-status", " \u00b7 ".join(parts))

    def _say(self, text: str, error: bool = False) -> None:
        style = ' style="color:#b2182b"' if error else ""
        self.message.text = f'<div id="fs-message"{style}>{html.escape(text)}</div>'

    # --- zooming ------------------------------------------------------------------------

    def _on_ranges(self, event) -> None:
        """A box or scroll zoom of the picture: it becomes a level once the view settles."""
        nx, ny = self.resolution
        box = (event.x0, event.x1, event.y0, event.y1)
        if np.allclose(box, (-0.5, nx - 0.5, -0.5, ny - 0.5), atol=1e-6):
            self._pending = None  # the reset tool: the level as it is
            return
        self._pending, self._pending_at = box, time.monotonic()

    def zoom_box(self, x0: float, x1: float, y0: float, y1: float) -> Job | None:
        """Zoom into a box given in the shown level's pixel coordinates (pixel i at i)."""
        if min(abs(x1 - x0), abs(y1 - y0)) < MIN_BOX:
            self._say("no zoom: the box is narrower than a pixel")
            self._full_view()
            return None
        try:
            view = box_to_view(self.view, self.resolution, (x0, x1), (y0, y1))
        except ConfigError as exc:
            self._say(f"no zoom: {exc}", error=True)
            self._full_view()
            return None
        return self.request(view)

    def request(self, view: View) -> Job | None:
        """Show ``view`` as a level of the shown level's resolution and dtype: the store's own
        if complete, else computed (or joined, if another tab asked first) and drawn as its
        tiles land. A window the precision guard refuses is kept for the force box, where
        forcing computes it (not a bound beyond the dtype's range); one the store has (forced
        when made) is shown."""
        found = self.hub.find(view, self.resolution, self.dtype)
        if found is not None:
            self.refused = None
            self._say(f"level {found} holds this window")
            self.show(found)
            return None
        try:
            precision.guard(view, self.resolution, self.dtype, force=self.force,
                            dtypes=system_of(self.hub.config).dtypes)
        except PrecisionError as exc:
            self.refused = view if exc.forcible else None
            hint = " \u2014 tick 'force' to compute it anyway" if exc.forcible else ""
            self._say(f"refused: {exc.reason}{hint}", error=True)
            self._full_view()
            return None
        self.refused = None
        self.job, self.following = self.hub.zoom(view, self.resolution, self.dtype,
                                                 self.force), True
        self._say("")
        self._backdrop_from = (self.view, self.resolution, self.source.data["image"][0])
        self._show_progress(self.job)
        return self.job

    def _follow(self, index: int) -> None:
        """Switch to the level a followed job computes, drawn over the level it came from."""
        self.show(index)
        if self._backdrop_from is None or self.tiles[0] == self.tiles[1]:
            return
        old_view, old_resolution, image = self._backdrop_from
        nx, ny = self.resolution
        x, y, dw, dh = placement(old_view, old_resolution, self.view, self.resolution)
        if max(dw / nx, dh / ny) <= BACKDROP_MAX:
            self.backdrop.data = {"image": [image], "x": [x], "y": [y], "dw": [dw], "dh": [dh]}

    # --- the periodic callback ----------------------------------------------------------

    def poll(self) -> None:
        """Settle zooms, draw the followed level as its tiles land, finish jobs, and keep the
        level list and the backend line current."""
        try:
            if self._pending is not None and time.monotonic() - self._pending_at >= SETTLE_S:
                box, self._pending = self._pending, None
                self.zoom_box(*box)
            if self.job is not None:
                self._poll_job(self.job)
            elif (other := self.hub.computing) is not None and other.kind != "backend":
                self._show_progress(other, self.hub.progress(other))
            elif self.progress.text != _div("fs-progress"):
                self.progress.text = _div("fs-progress")
            if self.export_job is not None and self.export_job.finished:
                self._finish_export(self.export_job)
            if time.monotonic() - self._listed_at >= LIST_EVERY_S:
                self._refresh_levels()
                if str(self.level) not in (value for value, _ in self.level_list.options):
                    self._lost(self.level)
        except FractalsweepError as exc:  # the store changed under the page
            self._say(str(exc), error=True)
        backend = _div("fs-backend", html.escape(self.hub.backend_status()))
        if self.backend.text != backend:
            self.backend.text = backend

    def _poll_job(self, job: Job) -> None:
        if job.finished:
            self._finish(job)
            return
        now = self.hub.progress(job)
        if now is not None and self.following:
            index, done, _ = now
            if self.level != index and job.kind == "zoom":
                self._follow(index)
            elif self.level == index and self._drawn != (index, done) and (
                    time.monotonic() - self._drawn_at >= self._draw_seconds / REDRAW_SHARE):
                self.show(index)
        self._show_progress(job, now)

    def _show_progress(self, job: Job, now: tuple[int, int, int] | None = None) -> None:
        """The progress line of a compute job: this page's, or one another tab asked for."""
        seconds = f"{time.monotonic() - job.started:.1f} s"
        what = job.kind if job is self.job else f"{job.kind} asked in another tab"
        if job.state == "queued":
            text = f"{what}: queued behind the level being computed ({seconds})"
        elif job.state == "connecting":
            text = f"{what}: connecting to {self.hub.where} ({seconds})"
        elif now is None:
            text = f"{what}: preparing ({seconds})"
        else:
            index, done, total = now
            text = (f"{what}: computing level {index} <progress value=\"{done}\" "
                    f"max=\"{total}\"></progress> {done}/{total} tiles ({seconds})")
        self.progress.text = _div("fs-progress", text)

    def _finish(self, job: Job) -> None:
        self.job = None
        self.progress.text = _div("fs-progress")
        seconds = time.monotonic() - job.started
        if job.error is not None:
            self._say(f"{job.kind} failed: {job.error}", error=True)
            self.show(self.level)
            return
        self._refresh_levels()
        if job.kind == "ladder":
            added = [i for i in job.result if i != job.key[1]]
            self._say(f"ladder: levels {job.result} (widest first), {len(added)} added, in "
                      f"{seconds:.1f} s" if added else
                      f"no ladder to build: level {job.key[1]} is as wide as level 0 or wider")
            return
        if self.following:
            self._say(f"level {job.result} done in {seconds:.1f} s")
            self.show(job.result)
        else:
            self._say(f"level {job.result} done in {seconds:.1f} s (in the level list)")

    def _refresh_levels(self) -> None:
        options = self.hub.level_options()
        if options != self.level_list.options:
            self.level_list.options = options
        self._listed_at = time.monotonic()

    # --- navigation, colours, ladder, export ----------------------------------------------

    def go(self, index: int) -> None:
        """Show level ``index``; a level being computed is followed only while shown."""
        if self.job is not None:
            self.following = self.job.index == index
        self.backdrop.data = _image_data()
        self._say("")
        self.show(index)

    def step(self, offset: int) -> None:
        """Show the level ``offset`` places away in index order (stopping at the ends)."""
        self.go(levels.step(self.hub.path, self.level, offset))

    def to_deepest(self) -> None:
        """Show the deepest level (:func:`fractalsweep.levels.deepest`)."""
        self.go(self.hub.store.deepest().index)

    def _on_level(self, attr, old, new) -> None:
        if new and int(new) != self.level:
            self.go(int(new))

    def _on_colours(self, attr, old, new) -> None:
        if new is not None and CMAPS[new] != self.cmap:
            self.cmap = CMAPS[new]
            self.show(self.level)

    def _on_force(self, attr, old, new) -> None:
        self.force = bool(new)
        self._update_status()
        if self.force and self.refused is not None:
            self.request(self.refused)

    def build_ladder(self) -> Job:
        """Fill in the keyframe ladder above the shown level, up to level 0's width."""
        self.job, self.following = self.hub.ladder(self.level), False
        self._say("")
        self._show_progress(self.job)
        return self.job

    def export(self) -> Job | None:
        """Export the store's zoom animation in the chosen format; a link follows."""
        self.export_job = self.hub.export(self.export_format.value)
        self.download.text = _div("fs-download", f"exporting {self.export_format.value}\u2026")
        return self.export_job

    def _finish_export(self, job: Job) -> None:
        self.export_job = None
        if job.error is not None:
            self.download.text = _div("fs-download", "")
            self._say(f"export failed: {job.error}", error=True)
            return
        result = job.result
        name = html.escape(Path(result["path"]).name)
        self.download.text = _div(
            "fs-download", f'<a href="{html.escape(result["url"])}" download="{name}">'
                           f"download {name}</a> ({result['frames']} frames from levels "
                           f"{result['levels']})")

    # --- the pixel under the mouse ------------------------------------------------------

    def _on_move(self, event) -> None:
        if event.x is None or event.y is None:
            return
        i, j = round(event.x), round(event.y)
        nx, ny = self.resolution
        if not (0 <= i < nx and 0 <= j < ny):
            self._on_leave(event)
            return
        if self._hovered == (i, j):
            return
        self._hovered = (i, j)
        score = self.score[j, i]
        what = ("its tile is damaged (not drawn)" if self.damaged[j, i] else
                "not computed yet" if np.isnan(score) else
                f"score {score:.6g} ({NAMES[int(self.classes[j, i])]})")
        labels = [f"{self.view[a].label} = {_exact_text(self.values[a][k])}"
                  for a, k in (("x", i), ("y", j))]
        self.readout.text = _div("fs-readout", html.escape(
            f"pixel ({i}, {j}): {labels[0]}, {labels[1]}: {what}"))

    def _on_leave(self, event) -> None:
        self._hovered = None
        self.readout.text = _div("fs-readout")


def _image_data(image: np.ndarray | None = None, nx: int = 1, ny: int = 1) -> dict:
    """Columns of an ``image_rgba`` source: the picture spans ``-0.5 .. n - 0.5``."""
    images = [] if image is None else [image]
    return {"image": images, "x": [-0.5] * len(images), "y": [-0.5] * len(images),
            "dw": [nx] * len(images), "dh": [ny] * len(images)}


# --- the server ---------------------------------------------------------------------------


class DownloadHandler(RequestHandler):
    """Serves a file the server exported, by its token (:meth:`Hub.download`); nothing else."""

    def initialize(self, hub: Hub) -> None:
        self.hub = hub

    def get(self, token: str, name: str) -> None:
        path = self.hub.download(token)
        if path is None or path.name != name or not path.is_file():
            raise HTTPError(404)
        self.set_header("Content-Type", "image/gif" if path.suffix == ".gif" else "video/mp4")
        self.set_header("Content-Disposition", f'attachment; filename="{path.name}"')
        self.write(path.read_bytes())


def make_server(hub: Hub, *, port: int = 8050, host: str = "127.0.0.1"):
    """A Bokeh server of the explorer page at ``/`` and its downloads at ``/download/``.

    Websocket connections are accepted from pages loaded through ``localhost:PORT`` and
    ``HOST:PORT`` only (an SSH tunnel keeps the port), and through this machine's name when
    ``host`` is not the loopback address.

    Raises
    ------
    ConfigError
        If the port cannot be bound.
    """
    def document(doc) -> None:
        Page(hub, doc, doc.session_context.request.arguments)

    if not host.strip():
        raise ConfigError("--host '': give an address to listen on, e.g. 127.0.0.1")
    if ":" in host:  # Bokeh's websocket origins are names or IPv4 addresses with a port
        try:
            ipaddress.IPv6Address(host.strip("[]"))
            what = "IPv6 addresses are not supported"
        except ValueError:
            what = "give the address alone, without a scheme or a port (that is --port)"
        raise ConfigError(f"--host {host}: {what}; give an IPv4 address (e.g. 127.0.0.1) or "
                          "a host name")
    names = {"localhost", "127.0.0.1", host}
    if host not in ("localhost", "127.0.0.1"):  # reached by this machine's name too
        names |= {socket.gethostname(), socket.getfqdn()}
    origins = sorted(f"{name}:{port}" for name in names)
    try:
        return Server({"/": Application(FunctionHandler(document))}, address=host, port=port,
                      allow_websocket_origin=origins,
                      extra_patterns=[(r"/download/([A-Za-z0-9_-]+)/([^/]+)",
                                       DownloadHandler, {"hub": hub})])
    except OSError as exc:
        raise ConfigError(f"cannot serve on {host}:{port}: {exc.strerror or exc}; choose "
                          "another --port, or a --host of this machine") from None


def serve(path: str, *, port: int = 8050, host: str = "127.0.0.1",
          execution: Execution | None = None) -> None:
    """Serve the web explorer on a store until interrupted (Ctrl-C or SIGTERM).

    Prints the URL and how to reach it through an SSH tunnel. One compute session serves
    every zoom of every page; it is closed (its cluster stopped) when the server stops.
    """
    hub = Hub(path, execution, connect=False)  # no cluster for a port that cannot be bound
    try:
        if hub.execution.gpus:  # bad input, refused now; a backend not answering is news for
            cluster.check_gpus(hub.execution.gpus)  # the page, which it may answer later
        server = make_server(hub, port=port, host=host)
        hub.connect()
        server.start()
        loop = server.io_loop
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.asyncio_loop.add_signal_handler(signal.SIGTERM, loop.stop)
        print(f"fractalsweep serve: {path} at http://{host}:{port}/ (compute: {hub.where})",
              flush=True)
        if host in ("127.0.0.1", "localhost"):
            print(f"from your own machine: ssh -N -L {port}:localhost:{port} "
                  f"{socket.gethostname()}, then open http://localhost:{port}/", flush=True)
        else:
            print(f"warning: listening on {host}: anyone who can reach it can use the page "
                  "and compute on your cluster", flush=True)
        try:
            loop.start()
        except KeyboardInterrupt:
            pass
        server.stop()
    finally:
        _stop(hub)


def _stop(hub: Hub) -> None:
    """Close the hub, which waits for the level under way to stop (in this process, after
    the tile it computes: the interpreter's exit must not cut JAX's C++ code short, which
    aborts the process). A second Ctrl-C meanwhile ends the process at once, as a kill
    would and without the interpreter's exit: the tile under way is computed again by a
    resume, and the lock it leaves is taken over by the next run on this machine."""
    try:
        if hub.computing is not None and hub.session.in_process:
            print("stopping after the tile under way (Ctrl-C again stops at once)", flush=True)
        hub.close()
    except KeyboardInterrupt:
        print(f"fractalsweep: error: interrupted; finished tiles are kept, 'fractalsweep "
              f"resume {hub.path}' computes the rest", file=sys.stderr, flush=True)
        os._exit(130)
