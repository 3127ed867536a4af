"""Choosing new views: boxes, centres, automatic targets, keyframe ladders and precision.

A *view* is ``{"x": AxisConfig, "y": AxisConfig}``. Every function here is pure: it takes
views (and, for :func:`auto_target`, a score image) and returns new views or plain numbers;
nothing is read or written, so the command line and the store can wire them in freely.

Conventions
-----------
Centre and width
    A window is described in *axis units*: log10 of the value on a log axis, the value itself
    on a linear axis. So on a log axis the width is ``log10(hi / lo)`` decades and the centre
    the geometric mean ``sqrt(lo * hi)``; on a linear axis the width is ``hi - lo`` and the
    centre the midpoint. "Twice as wide" doubles that width: on a log axis the ratio hi/lo
    is squared. For a deep window this is, to first order, twice the relative width
    ``(hi - lo) / centre``, which is ``ln(10)`` times the width in decades.
Bound strings
    Arithmetic is decimal with ``grid.PRECISION`` (60) digits. Bounds the user gives as values
    are kept exactly, and linear windows are exact (halving and doubling a decimal of up to
    60 digits is exact).
    Log bounds computed from log10 units (``10 ** c``) are irrational in general and are
    rounded to ``SIGNIFICANT`` (40) significant digits: the rounding moves a bound by at most
    1e-40 relative, 24 decades below a float64 ulp, so the float64 pixel coordinates are those
    of the exact window (and a ladder's shared pixels stay bit-equal), while a window of
    1e-30 relative width still has its centre right to 1e-10 of its width. Whole-decade
    offsets come out exactly. Every string is then normalised: trailing zeros dropped,
    fixed-point for integers (``"1000"``, not ``"1E+3"``), Python's ``str(Decimal)`` otherwise;
    ``config.resolve`` keeps such a string unchanged.

Example
-------
>>> from fractalsweep.config import AxisConfig
>>> view = {"x": AxisConfig(layer=0), "y": AxisConfig(layer=1)}
>>> deep = centre_view(view, centre=(200, 5), width=2)
>>> deep["x"].lo, deep["x"].hi
('20', '2000')
>>> [v["x"].hi for v in ladder(deep, widest=6)]
['2000000', '20000', '2000']
"""

from __future__ import annotations

import dataclasses
import math
from decimal import Context, Decimal, InvalidOperation, localcontext
from typing import Any

import numpy as np

from .config import AxisConfig
from .errors import ConfigError, NoBoundaryError, PrecisionError
from .grid import PRECISION, axis_values

AXES = ("x", "y")
SIGNIFICANT = 40  # digits kept in a computed log bound (see the module docstring)
ULPS_PER_PIXEL = 2  # neighbouring pixels at least this many ulps apart count as "distinct"

_CTX = Context(prec=PRECISION)

View = dict[str, AxisConfig]


# --- decimal helpers --------------------------------------------------------------------


def _text(value: Decimal, digits: int | None = None) -> str:
    """The canonical string of a bound, rounded to ``digits`` significant digits if given."""
    if digits is not None:
        value = Context(prec=digits).plus(value)
    value = value.normalize(_CTX)
    return f"{value:f}" if value.as_tuple().exponent > 0 else str(value)


def _number(label: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise ConfigError(f"{label} = {value!r}: expected a number")
    try:
        # str() of a float is its shortest repr, so 0.1 means the decimal 0.1 (as config does)
        d = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigError(f"{label} = {value!r}: not a decimal number") from None
    if not d.is_finite():
        raise ConfigError(f"{label} = {value!r}: must be finite")
    return d


def _pair(label: str, value: Any, parts: str, scalar_ok: bool = False) -> tuple[Any, Any]:
    if scalar_ok and not isinstance(value, (tuple, list)):
        return value, value
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        either = "a number or " if scalar_ok else ""
        raise ConfigError(f"{label} = {value!r}: expected {either}a pair {parts}")
    return value[0], value[1]


def _resolution(resolution: Any) -> tuple[int, int]:
    nx, ny = _pair("resolution", resolution, "(nx, ny)", scalar_ok=True)
    for n in (nx, ny):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
            raise ConfigError(f"resolution = {resolution!r}: expected N or (nx, ny), each >= 2")
    return int(nx), int(ny)


def window(axis: AxisConfig) -> tuple[Decimal, Decimal]:
    """``(centre, width)`` of an axis in axis units (log10 on a log axis)."""
    with localcontext(_CTX):
        lo, hi = Decimal(axis.lo), Decimal(axis.hi)
        if axis.scale == "log":
            lo, hi = lo.log10(), hi.log10()
        return (lo + hi) / 2, hi - lo


def _checked(name: str, axis: AxisConfig, lo: str, hi: str) -> AxisConfig:
    for end, value in (("lo", lo), ("hi", hi)):
        if axis.scale == "log" and Decimal(value) <= 0:
            raise ConfigError(f"{name}.{end} = {value}: a log axis needs bounds > 0")
    if Decimal(lo) >= Decimal(hi):
        raise ConfigError(f"{name}: lo must be below hi, got lo={lo} hi={hi}")
    return dataclasses.replace(axis, lo=lo, hi=hi)


def _from_window(name: str, axis: AxisConfig, centre: Decimal, width: Decimal) -> AxisConfig:
    """The axis with the window ``centre ± width / 2`` (axis units)."""
    with localcontext(_CTX):
        lo, hi = centre - width / 2, centre + width / 2
        if axis.scale == "log":
            texts = (_text(Decimal(10) ** lo, SIGNIFICANT), _text(Decimal(10) ** hi, SIGNIFICANT))
        else:
            texts = (_text(lo), _text(hi))
    return _checked(name, axis, *texts)


def _coordinate(label: str, axis: AxisConfig, value: Decimal, log10: bool) -> Decimal:
    """A hyperparameter value (or its log10 if ``log10``) in the axis units of ``axis``."""
    with localcontext(_CTX):
        if axis.scale == "log":
            if log10:
                return value
            if value <= 0:
                raise ConfigError(f"{label} = {value}: a log axis needs a value > 0")
            return value.log10()
        return Decimal(10) ** value if log10 else value


# --- new windows ------------------------------------------------------------------------


def box_view(view: View, x: Any = None, y: Any = None, *, log10: bool = False) -> View:
    """A new window given by its bounds on one or both axes.

    Parameters
    ----------
    view : dict
        The current view; an axis without new bounds is kept as it is.
    x, y : (lo, hi), optional
        New bounds as hyperparameter values (str, int, float or Decimal; strings keep every
        digit), or as log10 of the values if ``log10``.
    log10 : bool
        Bounds are log10 units; non-integer ones are rounded to ``SIGNIFICANT`` digits.

    Raises
    ------
    ConfigError
        A bound that is not a finite number, ``lo >= hi``, or a bound <= 0 on a log axis.

    Examples
    --------
    >>> from fractalsweep.config import AxisConfig
    >>> view = {"x": AxisConfig(layer=0), "y": AxisConfig(layer=1)}
    >>> new = box_view(view, x=("190.010080", "190.011840"), y=(4.77745244, "4.77749670"))
    >>> new["x"].lo, new["x"].hi, new["y"].lo, new["y"].hi
    ('190.01008', '190.01184', '4.77745244', '4.7774967')
    >>> new = box_view(view, x=(-1, 2), y=(0, "0.5"), log10=True)
    >>> new["x"].lo, new["x"].hi, new["y"].hi
    ('0.1', '100', '3.16227766016837933199889354443271853372')
    >>> box_view(view, y=(-1, 2))
    Traceback (most recent call last):
    ...
    fractalsweep.config.ConfigError: y.lo = -1: a log axis needs bounds > 0
    """
    new = dict(view)
    for name, bounds in (("x", x), ("y", y)):
        if bounds is None:
            continue
        pair = _pair(name, bounds, "(lo, hi)")
        lo, hi = (_number(f"{name}.{end}", b) for end, b in zip(("lo", "hi"), pair))
        if log10:
            with localcontext(_CTX):
                texts = (_text(Decimal(10) ** lo, SIGNIFICANT), _text(Decimal(10) ** hi, SIGNIFICANT))
        else:
            texts = (_text(lo), _text(hi))
        new[name] = _checked(name, view[name], *texts)
    return new


def centre_view(view: View, centre: Any = None, width: Any = None, *,
                log10: bool = False) -> View:
    """A new window given by its centre and width.

    Parameters
    ----------
    view : dict
        The current view; what is not given (centre, width) is kept from it.
    centre : (cx, cy), optional
        Hyperparameter values, or their log10 if ``log10``. On a log axis the centre is the
        geometric mean of the bounds.
    width : float or (wx, wy), optional
        In log10 decades on a log axis (``log10(hi / lo)``), in value units on a linear axis
        (``hi - lo``); a scalar applies to both axes.
    log10 : bool
        The centre is given as log10 of the hyperparameter values.

    Raises
    ------
    ConfigError
        A value that is not a finite number, a width <= 0, or a centre <= 0 on a log axis.

    Examples
    --------
    >>> from fractalsweep.config import AxisConfig
    >>> view = {"x": AxisConfig(layer=0), "y": AxisConfig(layer=1, scale="linear")}
    >>> new = centre_view(view, centre=(200, "0.5"), width=(2, "0.25"))
    >>> new["x"].lo, new["x"].hi, new["y"].lo, new["y"].hi
    ('20', '2000', '0.375', '0.625')
    """
    centres = (None, None) if centre is None else _pair("centre", centre, "(cx, cy)")
    widths = (None, None) if width is None else _pair("width", width, "(wx, wy)", scalar_ok=True)
    new = {}
    for name, c, w in zip(AXES, centres, widths):
        axis = view[name]
        if c is None and w is None:
            new[name] = axis
            continue
        c0, w0 = window(axis)
        if c is not None:
            c0 = _coordinate(f"{name} centre", axis, _number(f"{name} centre", c), log10)
        if w is not None:
            w0 = _number(f"{name} width", w)
            if w0 <= 0:
                unit = "decades" if axis.scale == "log" else "value units"
                raise ConfigError(f"{name} width = {w}: must be > 0 ({unit} on this axis)")
        new[name] = _from_window(name, axis, c0, w0)
    return new


# --- precision ----------------------------------------------------------------------------


def _room(axis: AxisConfig, n: int, dtype) -> dict[str, float]:
    """Estimate how far ``n`` pixels of ``axis`` are from collapsing in ``dtype``.

    The pixel step is compared with the ulp of the largest value in the window (where the
    ulp is coarsest); both relative to the window's magnitude, so the estimate is cheap.
    """
    dtype = np.dtype(dtype)
    with localcontext(_CTX):
        lo, hi = Decimal(axis.lo), Decimal(axis.hi)
        top = max(abs(lo), abs(hi))
        relative_width = float((hi - lo) / top)
        if axis.scale == "log":
            # log spacing: every step is the same ratio 10 ** (decades / (n - 1))
            step = math.expm1(float((hi / lo).log10()) * math.log(10) / (n - 1))
            ulp = max(float(np.spacing(dtype.type(v))) / float(v) for v in (lo, hi))
        else:
            step = relative_width / (n - 1)
            ulp = float(np.spacing(dtype.type(top))) / float(top)
    ulps = step / ulp
    # zooming by a factor z divides the step by z (exactly on a linear axis, to first order
    # on a log one), so the room left is the factor by which ulps exceeds ULPS_PER_PIXEL
    decades_left = math.log10(ulps / ULPS_PER_PIXEL)
    return {"relative_width": relative_width, "ulps_per_pixel": ulps,
            "decades_left": decades_left, "limit": relative_width / 10 ** decades_left}


def precision_check(view: View, resolution: Any, dtype="float64") -> dict[str, Any]:
    """Whether neighbouring pixels of a level stay distinct in ``dtype``, and the room left.

    Each axis's coordinates are computed as the kernel gets them (``grid.axis_values``) and
    must be strictly increasing; in addition the estimate of :func:`_room` asks for at least
    ``ULPS_PER_PIXEL`` ulps between neighbours, because coordinates only one ulp apart are
    unevenly spaced (the picture turns blocky before pixels coincide).

    Parameters
    ----------
    view : dict
        The level's view.
    resolution : int or (nx, ny)
        Pixels along x (columns) and y (rows).
    dtype : str or numpy dtype
        The working dtype of the kernel.

    Returns
    -------
    dict
        ``{"x": axis report, "y": axis report, "decades_left", "ok", "dtype", "resolution"}``;
        an axis report holds ``distinct`` (the coordinates are strictly increasing),
        ``relative_width`` ((hi - lo) / max(|lo|, |hi|)), ``ulps_per_pixel``,
        ``decades_left`` (log10 of the further zoom factor the dtype allows around this
        centre at this resolution; negative: already too deep) and ``limit`` (the relative
        width at which decades_left reaches 0). ``decades_left`` at the top is the smaller of
        the two; ``ok`` says both axes are distinct and have decades left.

    Examples
    --------
    >>> from fractalsweep.config import AxisConfig
    >>> axis = AxisConfig(lo="13.29976231", hi="13.29978604")
    >>> report = precision_check({"x": axis, "y": axis}, 4096)
    >>> report["ok"], round(report["decades_left"])
    (True, 6)
    """
    nx, ny = _resolution(resolution)
    report: dict[str, Any] = {"dtype": np.dtype(dtype).name, "resolution": (nx, ny)}
    for name, n in zip(AXES, (nx, ny)):
        room = _room(view[name], n, dtype)
        room["distinct"] = bool(np.all(np.diff(axis_values(view[name], n, dtype)) > 0))
        report[name] = room
    report["decades_left"] = min(report[name]["decades_left"] for name in AXES)
    report["ok"] = all(report[name]["distinct"] and report[name]["decades_left"] >= 0
                       for name in AXES)
    return report


def _precision_message(name: str, room: dict[str, Any], n: int, dtype) -> str:
    collide = "" if room.get("distinct", True) else " and its pixels collide"
    return (f"{name}: {np.dtype(dtype).name} keeps {n} pixels distinct "
            f"({ULPS_PER_PIXEL}+ ulps apart) down to a relative width of about "
            f"{room['limit']:.1g} here; this view is {room['relative_width']:.1g}{collide}; "
            f"use --force or a coarser resolution")


def guard(view: View, resolution: Any, dtype="float64", force: bool = False) -> dict[str, Any]:
    """Refuse a level whose neighbouring pixels the dtype cannot keep apart.

    Parameters
    ----------
    view, resolution, dtype
        As for :func:`precision_check`.
    force : bool
        Return the report even when the check fails (the caller may warn instead).

    Returns
    -------
    dict
        The :func:`precision_check` report.

    Raises
    ------
    PrecisionError
        Unless ``force``, when an axis collides or has no decades left; the one-line message
        says down to which relative width the dtype keeps that many pixels apart.
    """
    report = precision_check(view, resolution, dtype)
    if report["ok"] or force:
        return report
    for name, n in zip(AXES, report["resolution"]):
        room = report[name]
        if not room["distinct"] or room["decades_left"] < 0:
            raise PrecisionError(_precision_message(name, room, n, dtype))
    raise AssertionError("unreachable: a failed report has a failing axis")


# --- automatic zoom target ----------------------------------------------------------------


def boundary(score: np.ndarray) -> np.ndarray:
    """Boundary cells: 2x2 windows holding a negative and a non-negative score (science.md 10).

    Cell ``(i, j)`` is the window of pixels ``i..i+1`` x ``j..j+1``; NaN (not computed) is
    neither class.

    Examples
    --------
    >>> boundary(np.array([[-1.0, -1.0, 2.0], [-1.0, -1.0, 2.0]])).tolist()
    [[False, True]]
    """
    def any2x2(mask):
        return mask[:-1, :-1] | mask[1:, :-1] | mask[:-1, 1:] | mask[1:, 1:]

    return any2x2(score < 0) & any2x2(score >= 0)


def _origins(cells: int, box: int) -> np.ndarray:
    """Candidate box origins: every quarter box, and flush with the far edge."""
    return np.unique(np.append(np.arange(0, cells - box + 1, max(1, box // 4)), cells - box))


def _summed(cells: np.ndarray) -> np.ndarray:
    """A summed-area table: ``table[i, j]`` is the number of boundary cells in ``[:i, :j]``."""
    table = np.zeros((cells.shape[0] + 1, cells.shape[1] + 1), dtype=np.int64)
    table[1:, 1:] = cells.cumsum(0).cumsum(1)
    return table


def _sub_boxes(table: np.ndarray, oy: np.ndarray, ox: np.ndarray, by: int, bx: int,
               m: int) -> tuple[np.ndarray, int, int]:
    """Boundary counts of the ``m x m`` sub-boxes of every candidate box.

    Returns the counts (``len(oy) x len(ox) x m x m``) and the sub-box size ``(sy, sx)``;
    cells left over where ``m`` does not divide the box are not counted.
    """
    sy, sx = by // m, bx // m
    y0 = (oy[:, None] + sy * np.arange(m))[:, None, :, None]
    x0 = (ox[:, None] + sx * np.arange(m))[None, :, None, :]
    counts = (table[y0 + sy, x0 + sx] - table[y0, x0 + sx]
              - table[y0 + sy, x0] + table[y0, x0])
    return counts, sy, sx


def _complexity(table: np.ndarray, oy: np.ndarray, ox: np.ndarray, by: int, bx: int,
                scales: int) -> np.ndarray:
    """The multi-scale boundary score of each candidate box (``len(oy) x len(ox)``).

    At scale ``k`` the box is cut into ``2**k x 2**k`` sub-boxes; a sub-box counts if it
    holds boundary cells but is not entirely boundary (the box-counting rule of science.md
    10: an all-boundary patch is unresolved noise, not structure). The count is divided by
    ``2**k``, the count of a straight line through the box, and summed over the scales:
    a straight boundary scores about 1 per scale, a boundary that is complex at many scales
    more at every finer scale.
    """
    total = np.zeros((len(oy), len(ox)))
    for k in range(1, scales + 1):
        counts, sy, sx = _sub_boxes(table, oy, ox, by, bx, 2 ** k)
        total += ((counts > 0) & (counts < sy * sx)).sum(axis=(2, 3)) / 2 ** k
    return total


def _off_centre(table: np.ndarray, oy: np.ndarray, ox: np.ndarray, by: int, bx: int,
                m: int) -> np.ndarray:
    """Squared distance (pixels) from each box's centre to the centroid of its boundary.

    The centroid is taken over the ``m x m`` sub-boxes (each at its centre, weighted by its
    boundary count): exact enough to break ties, and free of a full-size weighted table.
    """
    counts, sy, sx = _sub_boxes(table, oy, ox, by, bx, m)
    weight = np.maximum(counts.sum(axis=(2, 3)), 1)
    # sub-box a holds cells o + a*s .. o + (a+1)*s - 1, centred at pixel o + (a + 1/2) s
    dy = (counts.sum(axis=3) * ((np.arange(m) + 0.5) * sy - by / 2)).sum(axis=2) / weight
    dx = (counts.sum(axis=2) * ((np.arange(m) + 0.5) * sx - bx / 2)).sum(axis=2) / weight
    return dy ** 2 + dx ** 2


def _pixel_view(view: View, position: dict[str, Decimal], n: dict[str, int],
                fraction: Decimal) -> View:
    """A window ``fraction`` as wide, centred on fractional pixel ``position`` of each axis."""
    new = {}
    for name in AXES:
        axis = view[name]
        centre, width = window(axis)
        with localcontext(_CTX):
            # pixel p sits at lo + (hi - lo) * p / (n - 1) in axis units (grid.decimal_values)
            at = centre - width / 2 + width * position[name] / (n[name] - 1)
            new[name] = _from_window(name, axis, at, width * fraction)
    return new


def auto_target(score: np.ndarray, view: View, *, box_fraction: float = 0.25, scales: int = 5,
                resolution: Any = None, dtype="float64", force: bool = False) -> View:
    """The next view: the most boundary-complex box of a level that precision still allows.

    Square boxes (in pixels per axis: ``box_fraction`` of each side) are placed every quarter
    box over the boundary cells of ``score`` and scored by :func:`_complexity`, which counts
    the sub-boxes at ``scales`` scales (the box halved ``1..scales`` times) that hold a
    resolved piece of boundary, normalised so that a straight line scores 1 per scale. The
    best box whose new view still passes the precision estimate of :func:`precision_check`
    (at ``resolution`` in ``dtype``) wins; ties go to the box whose boundary cells are centred
    best in it, then to the box nearest the image centre, then the lowest row, then the
    leftmost column, so the choice is deterministic.

    Parameters
    ----------
    score : ndarray (ny, nx)
        The level's score image, row 0 at the lowest y; NaN for pixels not computed.
    view : dict
        The level's view.
    box_fraction : float
        Width of the new window as a fraction of the current one (0 < f < 1); the new window
        is exactly this fraction of the current width (in axis units), centred on the box.
    scales : int
        Number of sub-box scales; fewer are used when the box is too small to halve that often.
    resolution : int or (nx, ny), optional
        Resolution of the level to compute next (default: that of ``score``).
    dtype : str or numpy dtype
        Working dtype of the next level.
    force : bool
        Ignore precision: the best box wins even where the dtype has no room left.

    Raises
    ------
    NoBoundaryError
        The image has no boundary, or only unresolved (all-boundary) patches.
    PrecisionError
        No candidate's new view keeps its pixels apart in ``dtype`` (unless ``force``).

    Examples
    --------
    >>> from fractalsweep.config import AxisConfig
    >>> axis = AxisConfig(lo="1", hi="2", scale="linear")
    >>> rows = np.indices((33, 33))[0]
    >>> new = auto_target(rows - 10.5, {"x": axis, "y": axis})  # a straight line at row 10.5
    >>> (new["x"].lo, new["x"].hi), (new["y"].lo, new["y"].hi)
    (('1.375', '1.625'), ('1.25', '1.5'))
    """
    score = np.asarray(score, dtype=float)
    if score.ndim != 2 or min(score.shape) < 2:
        raise ConfigError(f"score of shape {score.shape}: expected an image of at least 2x2")
    fraction = _number("box_fraction", box_fraction)
    if not 0 < fraction < 1:
        raise ConfigError(f"box_fraction = {box_fraction}: expected 0 < box_fraction < 1")
    ny, nx = score.shape
    res = _resolution(resolution if resolution is not None else (nx, ny))
    cells = boundary(score)
    if not cells.any():
        raise NoBoundaryError("no boundary in this level: no 2x2 window holds both a negative "
                              "and a non-negative score")
    by, bx = (max(1, int(fraction * (c - 1))) for c in (ny, nx))
    scales = min(scales, int(math.log2(min(by, bx) / 2)) if min(by, bx) >= 4 else 0)
    if scales < 1:
        raise ConfigError(f"a {nx}x{ny} image is too small for boxes of box_fraction "
                          f"{box_fraction}: a box needs at least 4 pixels a side")
    oy, ox = _origins(ny - 1, by), _origins(nx - 1, bx)
    table = _summed(cells)
    total = _complexity(table, oy, ox, by, bx, scales)

    # ties go to the box whose boundary sits most in its middle (a box that merely touches
    # the same boundary would put it at the edge of the new view), then nearest the centre
    cy, cx = oy + by / 2, ox + bx / 2  # box centres in pixels: cells o..o+b-1 span o..o+b
    central = (cy[:, None] - (ny - 1) / 2) ** 2 + (cx[None, :] - (nx - 1) / 2) ** 2
    iy, ix = np.indices(total.shape)
    keys = (ix, iy, central, _off_centre(table, oy, ox, by, bx, 2 ** scales), -total)
    order = np.lexsort([key.ravel() for key in keys])
    room = None
    for flat in order:
        if total.flat[flat] == 0:
            break
        j, i = iy.flat[flat], ix.flat[flat]
        position = {"x": Decimal(int(2 * ox[i] + bx)) / 2, "y": Decimal(int(2 * oy[j] + by)) / 2}
        new = _pixel_view(view, position, {"x": nx, "y": ny}, fraction)
        rooms = {name: _room(new[name], n, dtype) for name, n in zip(AXES, res)}
        if force or all(r["decades_left"] >= 0 for r in rooms.values()):
            return new
        room = room or next((name, r) for name, r in rooms.items() if r["decades_left"] < 0)
    if room is None:
        raise NoBoundaryError("the boundary of this level is unresolved everywhere: no box "
                              "holds both boundary and non-boundary pixels")
    name, r = room
    raise PrecisionError(_precision_message(name, r, res[AXES.index(name)], dtype))


# --- keyframe ladders and pixel reuse -----------------------------------------------------


def ladder(deep_view: View, widest: Any = 6) -> list[View]:
    """Keyframes sharing the deep view's centre, each twice as wide as the next.

    Widths double in axis units (module docstring): decades on a log axis, value units on a
    linear one, both axes together. Each keyframe is computed from the deep view's centre and
    width directly (no rounding accumulates), and the deep view itself is the last keyframe.

    Parameters
    ----------
    deep_view : dict
        The deepest view.
    widest : float or dict
        Stop once every log axis spans at least this many decades (science.md 9 uses 6;
        linear axes are not counted), or once every axis is at least as wide as this view.

    Returns
    -------
    list of dict
        The views from the widest to ``deep_view``.

    Examples
    --------
    >>> from fractalsweep.config import AxisConfig
    >>> axis = AxisConfig(lo="0.1", hi="0.3", scale="linear")
    >>> wider = {"x": AxisConfig(lo="0", hi="1", scale="linear")} | {"y": axis}
    >>> [(v["x"].lo, v["x"].hi) for v in ladder({"x": axis, "y": axis}, widest=wider)]
    [('-0.6', '1'), ('-0.2', '0.6'), ('0', '0.4'), ('0.1', '0.3')]
    """
    windows = {name: window(deep_view[name]) for name in AXES}
    if isinstance(widest, dict):
        targets = {name: window(widest[name])[1] for name in AXES}
    else:
        decades = _number("widest", widest)
        if decades <= 0:
            raise ConfigError(f"widest = {widest}: expected a number of decades > 0")
        targets = {name: decades for name in AXES if deep_view[name].scale == "log"}
        if not targets:
            raise ConfigError(f"widest = {widest} decades needs a log axis; with two linear "
                              f"axes give the widest view instead")
    views = [deep_view]
    with localcontext(_CTX):  # w * 2**k must keep every digit of w
        k = 0
        while any(windows[name][1] * 2 ** k < target for name, target in targets.items()):
            k += 1
            views.append({name: _from_window(name, deep_view[name], c, w * 2 ** k)
                          for name, (c, w) in windows.items()})
    return views[::-1]


def aligned_resolution(n: int) -> int:
    """The smallest resolution >= ``n`` that lets a ladder reuse the most pixels.

    In a ladder (same centre, width doubling) with ``n`` pixels a side, the wider level's
    pixel ``j`` lies where the narrower level has pixel ``2j - (n-1)/2``. That is a pixel only
    for odd ``n``; the shared pixels of the narrower level are then those whose index has the
    parity of ``(n-1)/2``, which is ``n // 2 + 1`` of them per axis when ``n % 4 == 1``
    (``n // 2`` when ``n % 4 == 3``), a quarter of the 2-D pixels. Even ``n`` shares none.

    Examples
    --------
    >>> aligned_resolution(4096), aligned_resolution(4097), aligned_resolution(48)
    (4097, 4097, 49)
    """
    return n + (1 - n) % 4
