"""Draw one score image as a labelled figure, in the paper's style, with a colour legend;
or any other per-pixel array through a colormap (:class:`~fractalsweep.colour.Scale`), with
a colour bar.

Figures are built on :class:`matplotlib.figure.Figure` with an explicit Agg canvas, so
rendering never touches pyplot or the global backend; :func:`draw_level` draws into any
axes (a notebook's, the explorer's).
"""

import os
from decimal import Decimal, localcontext
from itertools import pairwise
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .colour import (
    BUFFER,
    CLASS_COLOURS,
    NOT_COMPUTED,
    Scale,
    colormap_of,
    score_colormap,
    to_rgb,
    values_rgb,
)
from .decimals import CONTEXT
from .errors import ConfigError
from .files import written_whole

__all__ = ["axis_labels", "distinct_labels", "draw_level", "end_labels", "label_ends",
           "ladder_figure", "level_figure", "render_audit", "render_ladder", "render_png"]

# 17 significant digits tell any two float64 apart; a double-double level's values, given as
# Decimals of hi + lo, need up to 34
_MIN_DIGITS, _MAX_DIGITS = 3, 34
# Longer labels are hard to compare by eye, and a figure's two end labels collide: a narrower
# window is labelled by offsets from its centre (axis_labels)
_LONG_DIGITS = 12
_MIN_PX, _MAX_PX = 400, 1000  # longest image side on screen, at 100 px per inch
_MARGIN_IN = {"left": 0.45, "right": 0.25, "bottom": 0.6, "top": 0.15, "title": 0.35,
              "legend": 0.55}


def _exact(value) -> Decimal:
    """The exact decimal a float, a Decimal or a decimal string (a stored bound) stands for."""
    if isinstance(value, Decimal):
        return value
    return Decimal(value) if isinstance(value, str) else Decimal(float(value))


def _format(value, digits):
    """``value`` (a float, a Decimal or a decimal string) with ``digits`` significant digits,
    as Python's ``g`` writes a float (rounded half to even, trailing zeros dropped), the
    exponent short.

    >>> _format(1e6, 3), _format(2.5e-7, 3), _format(0.125, 2), _format(Decimal("1E+2"), 5)
    ('1e6', '2.5e-7', '0.12', '100')
    """
    exact = _exact(value)
    if exact == 0:
        return "0"
    mantissa, exponent = f"{exact:.{digits - 1}e}".split("e")
    exponent = int(exponent)
    if -4 <= exponent < digits:
        text = f"{Decimal(f'{mantissa}e{exponent}'):f}"  # from text: exact at any length
        return text.rstrip("0").rstrip(".") if "." in text else text
    return f"{mantissa.rstrip('0').rstrip('.') if '.' in mantissa else mantissa}e{exponent}"


def _digits(values) -> int:
    """The fewest significant digits (at least 3, at most 34) at which neighbouring labels
    differ and each label's last digit is no coarser than the gap to its neighbours: no label
    is off by more than half that gap (1.2349999 and 1.2350001 differ at 3 digits, as 1.23 and
    1.24, but are labelled 1.2349999 and 1.2350001). 3 when no number of digits does."""
    with localcontext(CONTEXT):
        exact = [_exact(v) for v in values]
        gaps = [abs(b - a) for a, b in pairwise(exact)]
    if not gaps or not all(v.is_finite() for v in exact) or min(gaps) == 0:
        return _MIN_DIGITS
    near = [min(pair) for pair in pairwise([gaps[0], *gaps, gaps[-1]])]
    for digits in range(_MIN_DIGITS, _MAX_DIGITS + 1):
        labels = [_format(value, digits) for value in exact]
        if all(a != b for a, b in pairwise(labels)) and all(
                v == 0 or Decimal(1).scaleb(v.adjusted() - digits + 1) <= gap
                for v, gap in zip(exact, near)):
            return digits
    return _MAX_DIGITS


def distinct_labels(values):
    """Labels for a row of increasing values (axis ticks) in which neighbours differ.

    The fewest significant digits (at least 3, at most the 17 that tell any two float64
    apart, 34 for Decimals) for which no two neighbouring labels are equal and none is off by
    more than half the gap to its neighbours, the same for every label.

    Examples
    --------
    >>> distinct_labels([13.29976231, 13.29977418, 13.29978604])
    ['13.29976', '13.29977', '13.29979']
    >>> distinct_labels([0.1, 3.16, 100.0])
    ['0.1', '3.16', '100']
    """
    digits = _digits(values)
    return [_format(value, digits) for value in values]


def end_labels(lo, hi):
    """Labels for the two ends of an axis that tell them apart.

    Deep zoom windows span a tiny relative range, so a fixed precision would print the same
    number at both ends; use the fewest significant digits (at least 3) that tell them apart
    (:func:`distinct_labels`).

    Parameters
    ----------
    lo, hi : float, Decimal or str
        Hyperparameter values at the two ends (not log10); Decimals or decimal strings (a
        stored window's bounds) for a window narrower than float64 tells apart (a
        double-double level's, a forced one's).

    Returns
    -------
    tuple of str
        ``(lo_label, hi_label)``; identical only when ``lo == hi``.

    Examples
    --------
    >>> end_labels(13.29976231, 13.29978604)
    ('13.29976', '13.29979')
    >>> end_labels(0.001, 1e6)
    ('0.001', '1e6')
    >>> end_labels("12.3456789012345670", "12.3456789012345670000001")
    ('12.345678901234567', '12.3456789012345670000001')
    """
    return tuple(distinct_labels([lo, hi]))


def axis_labels(name: str, values) -> tuple[str, list[str]]:
    """An axis's name and the labels of a row of increasing values on it (its ticks), for a
    figure: a PNG, an animation's overlay, the web explorer.

    Values that 12 significant digits tell apart are labelled as such
    (:func:`distinct_labels`). A narrower window (a deep zoom's, a double-double level's)
    would need up to 34 digits per label: hard to compare by eye, and too long for two labels
    to sit side by side. The name then carries a centre, to one digit more than the ends
    need, and each value is labelled by its offset from it, rounded to a power of ten at
    most a tenth of the smallest gap between neighbours.

    Parameters
    ----------
    name : str
        The axis's name, e.g. ``"lr_in"``.
    values : sequence of float, Decimal or str
        Hyperparameter values (not log10), increasing; Decimals or decimal strings for a
        window narrower than float64 tells apart.

    Returns
    -------
    tuple
        ``(name, labels)``: the name, with ``" - centre"`` where the labels are offsets.

    Examples
    --------
    >>> axis_labels("lr_in", [0.001, 1e6])
    ('lr_in', ['0.001', '1e6'])
    >>> axis_labels("lr_in", ["12.345678901234567", "12.34567890123456701"])
    ('lr_in - 12.345678901234567005', ['-5e-18', '+5e-18'])
    """
    digits = _digits(values)
    if digits <= _LONG_DIGITS:
        return name, [_format(value, digits) for value in values]
    with localcontext(CONTEXT):
        exact = [_exact(value) for value in values]
        centre = _format((exact[0] + exact[-1]) / 2, digits + 1)  # the offsets are from it
        quantum = Decimal(1).scaleb(min(b - a for a, b in pairwise(exact)).adjusted() - 1)
        offsets = [((value - Decimal(centre)) / quantum).to_integral_value() * quantum
                   for value in exact]
    minus = centre.startswith("-")
    return (f"{name} {'+' if minus else '-'} {centre.removeprefix('-')}",
            [("+" if offset > 0 else "") + _format(offset, _MAX_DIGITS) for offset in offsets])


def shrink_to(text, room: float, along: int, renderer) -> None:
    """Shrink ``text``'s font until its extent along ``along`` (0: x, 1: y) is at most
    ``room`` pixels; a text's extent is not quite proportional to its size, hence up to three
    tries."""
    for _ in range(3):
        size = text.get_window_extent(renderer).size[along]
        if size <= room:
            return
        text.set_fontsize(text.get_fontsize() * max(room, 0.0) / size)


def label_ends(ax, x, y, xlabel: str, ylabel: str) -> None:
    """Ticks at the two ends of each axis of an image drawn in pixel coordinates, labelled by
    their hyperparameter values (:func:`axis_labels`), kept inside the image's span; an axis
    name longer than the figure (a deep window's, with its centre) is shrunk to fit it."""
    import matplotlib

    nx, ny = len(x), len(y)
    xname, xends = axis_labels(xlabel, [x[0], x[nx - 1]])
    yname, yends = axis_labels(ylabel, [y[0], y[ny - 1]])
    ax.set_xticks([0, nx - 1], xends)
    ax.set_yticks([0, ny - 1], yends)
    for label, align in zip(ax.get_xticklabels(), ("left", "right")):
        label.set_horizontalalignment(align)
    for label, align in zip(ax.get_yticklabels(), ("bottom", "top")):
        label.set_rotation(90)
        label.set_verticalalignment(align)
    size = matplotlib.rcParams["axes.labelsize"]  # not a smaller one left by a deeper level
    ax.set_xlabel(xname, fontsize=size)
    ax.set_ylabel(yname, fontsize=size)
    get_renderer = getattr(ax.figure.canvas, "get_renderer", None)  # Agg's, ipympl's
    if get_renderer is not None:
        edges, extent = ax.bbox.get_points(), ax.figure.bbox.size
        for along, label in ((0, ax.xaxis.label), (1, ax.yaxis.label)):
            centre = edges[:, along].mean()  # a name is centred on its axis
            shrink_to(label, 2 * min(centre, extent[along] - centre) - 4, along,
                      get_renderer())


def draw_level(ax, score, x, y, *, xlabel: str, ylabel: str, cmap: str = "paper",
               scale: Scale | None = None):
    """Draw a score image into ``ax``: pixel ``(i, j)`` centred on ``(j, i)``, row 0 at the
    bottom, ticks at the two ends (:func:`label_ends`). With ``scale`` the image is any
    per-pixel array, coloured through it (:func:`fractalsweep.colour.values_rgb`).

    Returns
    -------
    matplotlib.image.AxesImage
    """
    score = np.asarray(score, dtype=np.float64)
    rows, cols = score.shape
    rgb = to_rgb(score, cmap=cmap) if scale is None else values_rgb(score, scale)
    # rgb has rows top to bottom, so origin="upper" puts score row 0 at the bottom.
    image = ax.imshow(rgb, origin="upper",
                      extent=(-0.5, cols - 0.5, -0.5, rows - 0.5), interpolation="nearest")
    label_ends(ax, x, y, xlabel, ylabel)
    return image


def _legend(ax, cmap: str, labels: tuple[str, str]) -> None:
    """What the colours mean: ``labels`` of the negative and the positive class."""
    ax.set_axis_off()
    colormap = score_colormap(cmap)
    if colormap is None:
        names = (*(label.split(":")[0] for label in labels), "boundary")
        for i, (name, rgb) in enumerate(zip(names, CLASS_COLOURS)):
            ax.add_patch(_patch((i / 3 + 0.01, 0.45), 0.04, 0.5, rgb / 255))
            ax.text(i / 3 + 0.06, 0.7, name, va="center", fontsize=8)
        return
    # equalize() puts converged pixels on [BUFFER, 1] (fast .. slow), diverged on
    # [-1, -BUFFER] (slow, next to the boundary .. fast blow-up); see fractalsweep.colour.
    for x0, lo, hi, text in ((0.0, BUFFER, 1.0, labels[0]), (0.52, -BUFFER, -1.0, labels[1])):
        ramp = np.linspace(lo, hi, 128)[None, :]
        ax.imshow(colormap((ramp + 1) / 2), extent=(x0, x0 + 0.48, 0.45, 0.95),
                  aspect="auto", interpolation="nearest")
        ax.text(x0, 0.2, text, va="center", fontsize=8)
    ax.add_patch(_patch((0.0, -0.35), 0.03, 0.3, NOT_COMPUTED / 255, edge=True))
    ax.text(0.04, -0.2, "not computed", va="center", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.4, 1)


def _colour_bar(ax, scale: Scale) -> None:
    """What the colours of a value array mean: its colormap from ``lo`` to ``hi``, labelled."""
    from matplotlib.cm import ScalarMappable

    mappable = ScalarMappable(scale.norm(), colormap_of(scale.cmap))
    bar = ax.figure.colorbar(mappable, cax=ax, orientation="horizontal")
    bar.ax.tick_params(labelsize=7, length=2, pad=1)
    bar.ax.xaxis.set_label_position("top")
    bar.set_label(scale.label, fontsize=8, labelpad=2)


def _patch(xy, w, h, colour, edge=False):
    from matplotlib.patches import Rectangle

    return Rectangle(xy, w, h, facecolor=colour, edgecolor="0.5" if edge else "none",
                     linewidth=0.5)


def output_path(out, label: str = "out", picture: bool = True) -> Path:
    """``out`` as a file to write, or a one-line error, checked before any work where a
    caller can: no name, a folder, a device or a pipe (which the file written whole would
    replace), a folder that does not exist or that cannot be written, or
    (a ``picture``) a name without an extension of a format matplotlib writes, which it would
    write under another name (``x`` as ``x.png``) or refuse after the drawing.

    >>> output_path("x.nope")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fractalsweep.errors.ConfigError: out x.nope: expected a picture file name ending in ...
    """
    if not isinstance(out, (str, Path)) or not str(out).strip():
        raise ConfigError(f"{label} {out!r}: give a file name")
    path = Path(out)
    if path.is_dir():
        example = f", e.g. {out}/out.png" if picture else " in it"
        raise ConfigError(f"{label} {out} is a folder; give a file name{example}")
    if path.exists() and not path.is_file():  # the file is written beside it, then renamed
        raise ConfigError(f"{label} {out} is not a regular file (a device, a pipe); give the "
                          "name of a file to write")
    if not path.parent.is_dir():
        what = (f"{path.parent} is a file, not a folder" if path.parent.exists()
                else f"folder {path.parent} does not exist")
        raise ConfigError(f"{label} {out}: {what}")
    if not os.access(path.parent, os.W_OK):  # a read-only filesystem too
        raise ConfigError(f"{label} {out}: folder {path.parent} is not writable")
    if picture:
        formats = FigureCanvasAgg.get_supported_filetypes()
        if path.suffix.lower().lstrip(".") not in formats:
            raise ConfigError(f"{label} {out}: expected a picture file name ending in "
                              f"{', '.join('.' + f for f in sorted(formats))}")
    return path


def save(fig, out, dpi) -> Path:
    """Write ``fig`` to ``out`` (:func:`output_path`), whole or not at all
    (:func:`~fractalsweep.files.written_whole`); returns the path written."""
    path = output_path(out)
    with written_whole(path) as partial:
        fig.savefig(partial, dpi=dpi, format=path.suffix[1:].lower())
    return path


def render_png(score, x, y, out, *, xlabel, ylabel, cmap="paper", title=None, dpi=100,
               legend=None, scale: Scale | None = None):
    """Write one level of a sweep as a labelled image (:func:`level_figure`) to ``out``, a
    file whose suffix gives its format (normally ``.png``), at ``dpi``: the layout is fixed
    in inches, so raising it enlarges the whole figure (e.g. 200 for print).

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    return save(level_figure(score, x, y, xlabel=xlabel, ylabel=ylabel, cmap=cmap,
                             title=title, legend=legend, scale=scale), out, dpi)


def level_figure(score, x, y, *, xlabel, ylabel, cmap="paper", title=None, legend=None,
                 scale: Scale | None = None) -> Figure:
    """One level of a sweep as a labelled figure, with a colour legend if given.

    The image occupies about one screen pixel per score pixel at 100 dpi (longest side
    scaled into 400 .. 1000 px, aspect kept), with ticks only at the two ends of each axis,
    labelled by :func:`axis_labels`.

    Parameters
    ----------
    score : array_like of float, shape (N, M)
        Score image, row 0 at the bottom (y[0]), column 0 at the left (x[0]).
    x : array_like of float (or Decimal), length M
        Hyperparameter values of the columns (not log10); Decimals for a double-double level
        (:func:`fractalsweep.store.label_values`).
    y : array_like of float (or Decimal), length N
        Hyperparameter values of the rows (not log10).
    xlabel, ylabel : str
        Axis titles.
    cmap : str
        Colouring, see :func:`fractalsweep.colour.to_rgb`.
    title : str, optional
        Figure title.
    legend : (str, str) or None
        What the negative and the positive scores mean (a system's ``legend``, see
        :mod:`fractalsweep.systems`), drawn below the image with their colours; None for none.
    scale : Scale, optional
        Draw ``score`` as any per-pixel array through this colormap and range
        (:func:`fractalsweep.colour.scale_of`), with a colour bar below it; ``cmap`` and
        ``legend`` are then not used.

    Returns
    -------
    matplotlib.figure.Figure
        On its own Agg canvas.
    """
    score = np.asarray(score, dtype=np.float64)
    x, y = np.asarray(x), np.asarray(y)  # Decimals stay: a double-double level's ticks
    if score.ndim != 2 or score.shape != (y.size, x.size):
        raise ValueError(
            f"score shape {score.shape} does not match len(y)={y.size}, len(x)={x.size}"
        )
    rows, cols = score.shape
    px = np.clip(max(rows, cols), _MIN_PX, _MAX_PX) / max(rows, cols)  # screen px per pixel
    width_in, height_in = cols * px / 100.0, rows * px / 100.0
    top_in = _MARGIN_IN["top"] + (_MARGIN_IN["title"] if title else 0.0)
    bottom_in = _MARGIN_IN["bottom"] + (_MARGIN_IN["legend"] if legend or scale else 0.0)
    fig_w = _MARGIN_IN["left"] + width_in + _MARGIN_IN["right"]
    fig_h = bottom_in + height_in + top_in

    fig = Figure(figsize=(fig_w, fig_h))
    FigureCanvasAgg(fig)
    ax = fig.add_axes(
        (_MARGIN_IN["left"] / fig_w, bottom_in / fig_h, width_in / fig_w, height_in / fig_h)
    )
    draw_level(ax, score, x, y, xlabel=xlabel, ylabel=ylabel, cmap=cmap, scale=scale)
    if scale is not None:
        _colour_bar(fig.add_axes((_MARGIN_IN["left"] / fig_w, 0.2 / fig_h,
                                  width_in / fig_w, 0.12 / fig_h)), scale)
    elif legend:
        _legend(fig.add_axes((_MARGIN_IN["left"] / fig_w, 0.08 / fig_h,
                              width_in / fig_w, 0.4 / fig_h)), cmap, legend)
    if title:
        ax.set_title(title)
    return fig


def ladder_figure(levels, *, cmap: str = "paper", columns: int = 6) -> Figure:
    """A contact sheet of a keyframe ladder: every level as a thumbnail, widest first, each
    titled by its index and its window written below it, one axis per line
    (:func:`axis_labels`: a deep window's as offsets from its centre), shrunk to the
    thumbnail's width.

    Parameters
    ----------
    levels : list of fractalsweep.Level
        The ladder's levels (:meth:`fractalsweep.Store.ladder`), in the order drawn.
    cmap : str
        Colouring, as for :func:`render_png`.
    columns : int
        Thumbnails per row.
    """
    rows = -(-len(levels) // columns)
    cols = min(columns, len(levels))
    # constrained: tight_layout left a row's titles over the window lines of the row above
    fig = Figure(figsize=(2.2 * cols, 2.6 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    room = fig.bbox.width / cols - 8  # a thumbnail's cell, less a gap to its neighbour
    for ax, level in zip(fig.subplots(rows, cols, squeeze=False).ravel(), levels):
        view = level.attrs["view"]
        lines = []
        for a in ("x", "y"):
            name, (lo, hi) = axis_labels(a, [view[a]["lo"], view[a]["hi"]])
            lines.append(f"{name}: {lo} .. {hi}")
        ax.imshow(to_rgb(level.score, cmap=cmap), interpolation="nearest")
        ax.set_title(f"level {level.index}", fontsize=8)
        shrink_to(ax.set_xlabel("\n".join(lines), fontsize=6), room, 0, fig.canvas.get_renderer())
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in fig.axes[len(levels):]:
        ax.set_axis_off()
    return fig


def render_ladder(levels, out, *, cmap: str = "paper", columns: int = 6, dpi: int = 100):
    """:func:`ladder_figure` saved to ``out`` (PNG, or what the suffix names); returns
    ``out`` as a :class:`pathlib.Path`."""
    return save(ladder_figure(levels, cmap=cmap, columns=columns), out, dpi)


AUDIT_COLOURS = {"flipped": np.array([255, 215, 0], dtype=np.uint8),  # gold
                 "same": np.array([40, 40, 40], dtype=np.uint8)}


def render_audit(score, marks, report: dict, x, y, out, *, xlabel, ylabel, dpi=100):
    """The level in faded class colours, audited pixels marked: gold where the class flipped
    in the higher precision, dark where it held (:mod:`fractalsweep.audit`).

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    rgb = to_rgb(score, cmap="classes")[::-1].astype(np.float64)  # rows bottom first
    rgb = (rgb + 2 * 255) / 3  # faded: the marks carry the information
    marks = np.asarray(marks)
    rgb[marks == 0] = AUDIT_COLOURS["same"]
    rgb[marks == 1] = AUDIT_COLOURS["flipped"]
    rows, cols = marks.shape
    fig = Figure(figsize=(6, 6.4))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.12, 0.12, 0.83, 0.78))
    ax.imshow(rgb.astype(np.uint8), origin="lower", interpolation="nearest",
              extent=(-0.5, cols - 0.5, -0.5, rows - 0.5))
    label_ends(ax, x, y, xlabel, ylabel)
    ax.set_title(f"{report['flipped']} of {report['pixels']} audited pixels change class in "
                 f"{report['against']}", fontsize=9)
    return save(fig, out, dpi)
