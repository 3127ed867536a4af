"""View arithmetic: new windows from boxes, centres and widths, and keyframe ladders.

A *view* is ``{"x": AxisConfig, "y": AxisConfig}``. Every function here is pure: it takes
views and returns new views or plain numbers; nothing is read or written.

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
    Arithmetic is decimal with ``decimals.PRECISION`` (60) digits. Bounds the user gives as values
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
from decimal import Context, Decimal, localcontext
from typing import Any

from .config import AxisConfig
from .decimals import CONTEXT as _CTX
from .decimals import PRECISION, SIGNIFICANT, pair, parse, power_of_ten, text
from .errors import ConfigError

AXES = ("x", "y")
PIXEL_FRACTION = 1000  # a box drawn on a level is placed to within 1/PIXEL_FRACTION of a pixel

View = dict[str, AxisConfig]


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


def _powers(name: str, lo: Decimal, hi: Decimal) -> tuple[str, str]:
    """``10 ** lo`` and ``10 ** hi`` as bound strings, or a one-line error past any number."""
    return tuple(text(power_of_ten(f"{name}.{end}", b), SIGNIFICANT)
                 for end, b in (("lo", lo), ("hi", hi)))


def _from_window(name: str, axis: AxisConfig, centre: Decimal, width: Decimal) -> AxisConfig:
    """The axis with the window ``centre ± width / 2`` (axis units).

    Raises
    ------
    ConfigError
        A window beyond any number, or narrower than its bounds' digits can tell apart.
    """
    with localcontext(_CTX):
        lo, hi = centre - width / 2, centre + width / 2
    try:
        texts = _powers(name, lo, hi) if axis.scale == "log" else (text(lo), text(hi))
    except ConfigError as exc:  # name the window the caller gave, not only the bound
        raise ConfigError(f"{exc} (the window {width:.6g} wide around {centre:.6g}, in axis "
                          "units)") from None
    if texts[0] == texts[1] or (axis.scale == "log" and Decimal(texts[0]) <= 0):
        digits = SIGNIFICANT if axis.scale == "log" else PRECISION
        raise ConfigError(f"{name}: a window {width:.6g} wide around {centre:.6g} "
                          f"(axis units) is narrower or farther out than {digits} significant "
                          "digits of its bounds can express; no dtype can compute it")
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
        return value if not log10 else power_of_ten(label, value)


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
    fractalsweep.errors.ConfigError: y.lo = -1: a log axis needs bounds > 0
    """
    new = dict(view)
    for name, bounds in (("x", x), ("y", y)):
        if bounds is None:
            continue
        ends = pair(name, bounds, "(lo, hi)")
        lo, hi = (parse(f"{name}.{end}", b) for end, b in zip(("lo", "hi"), ends))
        texts = _powers(name, lo, hi) if log10 else (text(lo), text(hi))
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
    centres = (None, None) if centre is None else pair("centre", centre, "(cx, cy)")
    widths = (None, None) if width is None else pair("width", width, "(wx, wy)", scalar_ok=True)
    new = {}
    for name, c, w in zip(AXES, centres, widths):
        axis = view[name]
        if c is None and w is None:
            new[name] = axis
            continue
        c0, w0 = window(axis)
        if c is not None:
            c0 = _coordinate(f"{name} centre", axis, parse(f"{name} centre", c), log10)
        if w is not None:
            w0 = parse(f"{name} width", w)
            if w0 <= 0:
                unit = "decades" if axis.scale == "log" else "value units"
                raise ConfigError(f"{name} width = {w}: must be > 0 ({unit} on this axis)")
        new[name] = _from_window(name, axis, c0, w0)
    return new


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
        Stop once every log axis spans at least this many decades (docs/science.md, section 9 uses 6;
        linear axes are not counted), or once every axis is at least as wide as this view.
        A width within a millionth of the target counts as reaching it (see below).

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
        if set(widest) != set(AXES) or not all(isinstance(a, AxisConfig) for a in widest.values()):
            raise ConfigError(f"widest = {widest!r}: expected a number of decades, or a view "
                              "(an AxisConfig for each of x and y, as a level's .view)")
        targets = {name: window(widest[name])[1] for name in AXES}
    else:
        decades = parse("widest", widest)
        if decades <= 0:
            raise ConfigError(f"widest = {widest}: expected a number of decades > 0")
        targets = {name: decades for name in AXES if deep_view[name].scale == "log"}
        if not targets:
            raise ConfigError(f"widest = {widest} decades needs a log axis; with two linear "
                              f"axes give the widest view instead")
    # Log bounds are rounded to SIGNIFICANT digits, so a width that doubles onto the target
    # can land a hair under it (8.99...95 decades for 9) and add a level twice too wide. The
    # rounding is at most about 1e-11 of the width of the narrowest window a dtype computes
    # (double-double's, about 1e-28 of its centre), and a doubling is a factor 2.
    reached = Decimal("0.999999")
    views = [deep_view]
    with localcontext(_CTX):  # w * 2**k must keep every digit of w
        k = 0
        while any(windows[name][1] * 2 ** k < target * reached
                  for name, target in targets.items()):
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


def pixel_value(axis: AxisConfig, n: int, position: float) -> Decimal:
    """The hyperparameter value at fractional pixel ``position`` of an ``n``-pixel axis.

    Pixel ``p`` sits at ``lo + (hi - lo) * p / (n - 1)`` in axis units (log10 of the value on
    a log axis), as in :func:`fractalsweep.grid.decimal_values`: whole positions give the
    exact coordinates of the pixels, whose rounding to the dtype the store keeps in ``x`` and
    ``y``. Working from the window's decimal strings, not from those rounded values, keeps
    every digit of a deep window.

    The value is rounded to the fewest significant digits that keep it within
    ``1 / PIXEL_FRACTION`` of a pixel of ``position``: a mouse is not more precise, and the
    new window's bounds stay short.
    """
    centre, width = window(axis)
    with localcontext(_CTX):
        at = centre - width / 2 + width * Decimal(float(position)) / (n - 1)
        step = width / (n - 1) / PIXEL_FRACTION
        if axis.scale == "log":
            value = Decimal(10) ** at
            step *= value * Decimal(10).ln()  # d value = value * ln(10) * d(log10 value)
        else:
            value = at
        digits = value.adjusted() - step.adjusted() + 1
    return Context(prec=min(max(digits, 1), PRECISION)).plus(value)


def box_to_view(view: dict, resolution, xs, ys) -> dict:
    """The window of a box drawn on a level, in that level's pixel coordinates.

    Parameters
    ----------
    view : dict
        The level's view, ``{"x": AxisConfig, "y": AxisConfig}``.
    resolution : (nx, ny)
        The level's pixels per axis.
    xs, ys : (float, float)
        The box's ends in pixels (column and row index; fractional, either order).

    Raises
    ------
    ConfigError
        A box that gives no valid window (see :func:`box_view`).

    Examples
    --------
    >>> axis = AxisConfig(lo="0.1", hi="10000")
    >>> new = box_to_view({"x": axis, "y": axis}, (6, 6), (1, 3), (0.5, 4.25))
    >>> new["x"].lo, new["x"].hi, new["y"].lo, new["y"].hi
    ('1', '100', '0.3162', '1778')
    """
    bounds = {name: tuple(pixel_value(view[name], n, p) for p in sorted(ends))
              for name, n, ends in (("x", resolution[0], xs), ("y", resolution[1], ys))}
    return box_view(view, **bounds)
