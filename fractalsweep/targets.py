"""Finding where to zoom: the most boundary-complex box of a level's score image."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from .boundary import boundary, box_sums, partly, summed_area
from .decimals import parse
from .errors import ConfigError, NoBoundaryError
from .grid import resolution_pair
from .precision import _room, refusal
from .views import AXES, View, _pixel_view

BOX_FRACTION = 0.25  # the automatic zoom's window, as a fraction of its level's per axis


def _origins(cells: int, box: int) -> np.ndarray:
    """Candidate box origins: every quarter box, and flush with the far edge."""
    return np.unique(np.append(np.arange(0, cells - box + 1, max(1, box // 4)), cells - box))


def _sub_boxes(table: np.ndarray, oy: np.ndarray, ox: np.ndarray, by: int, bx: int,
               m: int) -> tuple[np.ndarray, int, int]:
    """Boundary counts of the ``m x m`` sub-boxes of every candidate box.

    Returns the counts (``len(oy) x len(ox) x m x m``) and the sub-box size ``(sy, sx)``;
    cells left over where ``m`` does not divide the box are not counted.
    """
    sy, sx = by // m, bx // m
    y0 = (oy[:, None] + sy * np.arange(m))[:, None, :, None]
    x0 = (ox[:, None] + sx * np.arange(m))[None, :, None, :]
    counts = box_sums(table, y0, y0 + sy, x0, x0 + sx)
    return counts, sy, sx


def _complexity(table: np.ndarray, oy: np.ndarray, ox: np.ndarray, by: int, bx: int,
                scales: int) -> np.ndarray:
    """The multi-scale boundary score of each candidate box (``len(oy) x len(ox)``).

    At scale ``k`` the box is cut into ``2**k x 2**k`` sub-boxes; a sub-box counts if it
    holds boundary cells but is not entirely boundary (the box-counting rule of
    docs/science.md, section 10: an all-boundary patch is unresolved noise, not structure). The count is divided by
    ``2**k``, the count of a straight line through the box, and summed over the scales:
    a straight boundary scores about 1 per scale, a boundary that is complex at many scales
    more at every finer scale.
    """
    total = np.zeros((len(oy), len(ox)))
    for k in range(1, scales + 1):
        counts, sy, sx = _sub_boxes(table, oy, ox, by, bx, 2 ** k)
        total += partly(counts, sy * sx).sum(axis=(2, 3)) / 2 ** k
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


def _inside(twice_centre: int, n: int, fraction: Decimal) -> Decimal:
    """A box's centre (pixels, given doubled), moved just enough that the new window,
    ``fraction`` of the ``n - 1`` pixel spans wide, lies inside the level's window.

    A box flush with an edge is a whole number of cells, narrower than the new window when
    ``fraction * (n - 1)`` is not whole: centred on the box, the window would stick out.

    >>> _inside(6, 11, Decimal("0.25")), _inside(20, 11, Decimal("0.25")), _inside(2, 9, Decimal("0.5"))
    (Decimal('3'), Decimal('8.75'), Decimal('2.0'))
    """
    half = fraction * (n - 1) / 2
    return min(max(Decimal(twice_centre) / 2, half), n - 1 - half)


SMALLEST_BOX = 4  # pixel steps a side of a box: it is cut at least once, into halves of 2


def box_steps(nx: int, ny: int, fraction) -> tuple[int, int]:
    """Pixel steps a side ``(by, bx)`` of the boxes :func:`auto_target` scores in an
    ``nx x ny`` level (``n`` pixels are ``n - 1`` steps), or a one-line error where they are
    too small to score: checked by a dive before it computes its overview too.

    >>> box_steps(64, 48, 0.25)
    (11, 15)
    >>> box_steps(16, 16, 0.25)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fractalsweep.errors.ConfigError: a 16x16 level ... 3 pixel steps ... at least 17 pixels a side...
    """
    by, bx = (max(1, int(fraction * (c - 1))) for c in (ny, nx))
    if min(by, bx) < SMALLEST_BOX:
        raise ConfigError(f"a {nx}x{ny} level is too small for box_fraction {fraction}: its "
                          f"boxes would span {min(by, bx)} pixel steps a side, and "
                          f"auto-targeting needs {SMALLEST_BOX}; use at least "
                          f"{math.ceil(SMALLEST_BOX / fraction) + 1} pixels a side or a larger "
                          "box_fraction")
    return by, bx


def auto_target(score: np.ndarray, view: View, *, box_fraction: float = BOX_FRACTION,
                scales: int = 5,
                resolution: Any = None, dtype="float64", force: bool = False,
                dtypes: Sequence[str] = ()) -> View:
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
    dtypes : sequence of str
        The dtypes the store's system computes in (:func:`fractalsweep.precision.guard`).

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
    fraction = parse("box_fraction", box_fraction)
    if not 0 < fraction < 1:
        raise ConfigError(f"box_fraction = {box_fraction}: expected 0 < box_fraction < 1")
    ny, nx = score.shape
    res = resolution_pair(resolution if resolution is not None else (nx, ny))
    cells = boundary(score)
    if not cells.any():
        raise NoBoundaryError("no boundary in this level: no 2x2 window holds both a negative "
                              "and a non-negative score")
    by, bx = box_steps(nx, ny, fraction)
    scales = min(scales, int(math.log2(min(by, bx) / 2)))
    oy, ox = _origins(ny - 1, by), _origins(nx - 1, bx)
    table = summed_area(cells)
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
        position = {"x": _inside(int(2 * ox[i] + bx), nx, fraction),
                    "y": _inside(int(2 * oy[j] + by), ny, fraction)}
        new = _pixel_view(view, position, {"x": nx, "y": ny}, fraction)
        rooms = {name: _room(new[name], n, dtype) for name, n in zip(AXES, res)}
        if force or all(r["decades_left"] >= 0 for r in rooms.values()):
            return new
        room = room or next((name, r) for name, r in rooms.items() if r["decades_left"] < 0)
    if room is None:
        raise NoBoundaryError("the boundary of this level is unresolved everywhere: no box "
                              "holds both boundary and non-boundary pixels")
    name, r = room
    raise refusal(name, r, res[AXES.index(name)], dtype, dtypes)


