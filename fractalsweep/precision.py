"""How deep a dtype can zoom: whether neighbouring pixels of a level stay distinct.

At ``n`` pixels a side, neighbouring coordinates of a deep window differ by a few ulps of the
working dtype, and then by none: the picture turns blocky, then pixels collide. The guard
refuses such a level (unless forced) with a line saying how deep this dtype can go here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal, localcontext
from typing import Any

import numpy as np

from .config import AxisConfig, check_range
from .decimals import CONTEXT as _CTX
from .errors import ConfigError, PrecisionError
from .grid import DOUBLE_DOUBLE, axis_values, increasing, relative_ulp, resolution_pair
from .views import AXES, View


def _name(dtype) -> str:
    return dtype if dtype == DOUBLE_DOUBLE else np.dtype(dtype).name


ULPS_PER_PIXEL = 2  # neighbouring pixels at least this many ulps apart count as "distinct"


def _room(axis: AxisConfig, n: int, dtype) -> dict[str, float]:
    """Estimate how far ``n`` pixels of ``axis`` are from collapsing in ``dtype``.

    The pixel step is compared with the ulp of the largest value in the window (where the
    ulp is coarsest); both relative to the window's magnitude, so the estimate is cheap.
    """
    with localcontext(_CTX):
        lo, hi = Decimal(axis.lo), Decimal(axis.hi)
        top = max(abs(lo), abs(hi))
        relative_width = float((hi - lo) / top)
        if axis.scale == "log":
            # log spacing: every step is the same ratio 10 ** (decades / (n - 1))
            step = math.expm1(float((hi / lo).log10()) * math.log(10) / (n - 1))
            ulp = max(relative_ulp(float(v), dtype) for v in (lo, hi))
        else:
            step = relative_width / (n - 1)
            ulp = relative_ulp(float(top), dtype)
    ulps = step / ulp
    # zooming by a factor z divides the step by z (exactly on a linear axis, to first order
    # on a log one), so the room left is the factor by which ulps exceeds ULPS_PER_PIXEL
    decades_left = math.log10(ulps / ULPS_PER_PIXEL)
    return {"relative_width": relative_width, "ulps_per_pixel": ulps,
            "decades_left": decades_left, "limit": relative_width / 10 ** decades_left}


def decades_left(view: View, resolution: Any, dtype="float64") -> float:
    """Decades of zoom a level has left in ``dtype`` before neighbouring pixels come within
    ``ULPS_PER_PIXEL`` ulps (:func:`_room`'s estimate, the smaller of the two axes; negative:
    already too deep). Cheap: no coordinate is computed.

    >>> from fractalsweep.config import AxisConfig
    >>> axis = AxisConfig(lo="13.29976231", hi="13.29978604")
    >>> round(decades_left({"x": axis, "y": axis}, 4096))
    6
    """
    return min(_room(view[name], n, dtype)["decades_left"]
               for name, n in zip(AXES, resolution_pair(resolution)))


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
    nx, ny = resolution_pair(resolution)
    report: dict[str, Any] = {"dtype": _name(dtype), "resolution": (nx, ny)}
    for name, n in zip(AXES, (nx, ny)):
        room = _room(view[name], n, dtype)
        room["distinct"] = increasing(axis_values(view[name], n, dtype))
        report[name] = room
    report["decades_left"] = min(report[name]["decades_left"] for name in AXES)
    report["ok"] = all(report[name]["distinct"] and report[name]["decades_left"] >= 0
                       for name in AXES)
    return report


def refusal(name: str, room: dict[str, Any], n: int, dtype,
            dtypes: Sequence[str]) -> PrecisionError:
    """The error refusing axis ``name`` of a view; its advice offers double-double only where
    the store's system computes in it (``dtypes``, a system's ``dtypes``:
    :mod:`fractalsweep.systems`) and the level is not in it already."""
    collide = "" if room.get("distinct", True) else " and its pixels collide"
    deeper = DOUBLE_DOUBLE in dtypes and _name(dtype) != DOUBLE_DOUBLE
    return PrecisionError(f"{name}: {_name(dtype)} keeps {n} pixels distinct "
                          f"({ULPS_PER_PIXEL}+ ulps apart) down to a relative width of about "
                          f"{room['limit']:.1g} here; this view is "
                          f"{room['relative_width']:.1g}{collide}",
                          "use --force or a coarser resolution"
                          + (", or compute it in double-double" if deeper else ""),
                          forcible=True)


def guard(view: View, resolution: Any, dtype="float64", force: bool = False, *,
          dtypes: Sequence[str] = ()) -> dict[str, Any]:
    """Refuse a level whose neighbouring pixels the dtype cannot keep apart.

    Parameters
    ----------
    view, resolution, dtype
        As for :func:`precision_check`.
    force : bool
        Return the report even when the check fails (the caller may warn instead).
    dtypes : sequence of str
        The dtypes the store's system computes in: the refusal suggests double-double only
        if it is one of them.

    Returns
    -------
    dict
        The :func:`precision_check` report.

    Raises
    ------
    PrecisionError
        Unless ``force``, when an axis collides or has no decades left; the one-line message
        says down to which relative width the dtype keeps that many pixels apart. Also, even
        with ``force``, when a bound is beyond the dtype's range (no pixel could be computed).
    """
    for name in AXES:
        try:
            check_range(name, view[name], _name(dtype))
        except ConfigError as exc:
            raise PrecisionError(str(exc)) from None
    report = precision_check(view, resolution, dtype)
    if report["ok"] or force:
        return report
    for name, n in zip(AXES, report["resolution"]):
        room = report[name]
        if not room["distinct"] or room["decades_left"] < 0:
            raise refusal(name, room, n, dtype, dtypes)
    raise AssertionError("unreachable: a failed report has a failing axis")


