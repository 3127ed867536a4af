"""The pixel grid: exact axis coordinates and the tiling of a level.

Coordinates are computed in decimal arithmetic with ``decimals.PRECISION`` digits and rounded
once, correctly, to the working dtype, so deep windows keep every digit the job gives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

import numpy as np

from .decimals import PRECISION, pair
from .errors import ConfigError

DOUBLE_DOUBLE = "double-double"  # a working dtype: pairs of float64 (fractalsweep.ddkernel)


def relative_ulp(value: float, dtype) -> float:
    """The spacing of ``dtype`` numbers next to ``value``, relative to ``value``.

    A double-double carries 53 bits beyond its leading float64, so its spacing is that of
    float64 divided by 2**53.

    >>> relative_ulp(1.5, "float64") == 2.0 ** -52 / 1.5, relative_ulp(1.5, "double-double")
    (True, 1.6434602192104412e-32)
    """
    if dtype == DOUBLE_DOUBLE:
        return relative_ulp(value, "float64") * 2.0 ** -53
    dtype = np.dtype(dtype)
    return float(np.spacing(dtype.type(value))) / float(value)


def resolution_pair(value: Any, label: str = "resolution") -> tuple[int, int]:
    """``(nx, ny)`` from ``N`` or ``(nx, ny)``, each an integer >= 2, or a one-line error.

    >>> resolution_pair(64), resolution_pair([64, 48])
    ((64, 64), (64, 48))
    """
    nx, ny = pair(label, value, "(nx, ny)", scalar_ok=True)
    for n in (nx, ny):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
            raise ConfigError(f"{label} = {value!r}: expected N or [nx, ny], integers >= 2")
    return int(nx), int(ny)


def decimal_values(lo: str, hi: str, n: int, scale: str) -> list[Decimal]:
    """``n`` values from ``lo`` to ``hi`` inclusive, evenly spaced in log10 or linearly."""
    with localcontext() as ctx:
        ctx.prec = PRECISION
        a, b = Decimal(lo), Decimal(hi)
        if scale == "log":
            la, lb = a.log10(), b.log10()
            inner = [Decimal(10) ** (la + (lb - la) * i / (n - 1)) for i in range(1, n - 1)]
        else:
            inner = [a + (b - a) * i / (n - 1) for i in range(1, n - 1)]
        return [a, *inner, b]


def round_to(value: Decimal, dtype) -> np.floating:
    """The ``dtype`` number nearest to ``value`` (a single, correct rounding)."""
    dtype = np.dtype(dtype)
    guess = dtype.type(float(value))
    candidates = (np.nextafter(guess, dtype.type(-np.inf)), guess,
                  np.nextafter(guess, dtype.type(np.inf)))
    return min(candidates, key=lambda c: abs(Decimal(float(c)) - value))


def axis_values(axis, n: int, dtype) -> np.ndarray:
    """The ``n`` hyperparameter values of an axis in the working dtype.

    For ``"double-double"`` an ``(n, 2)`` float64 array: the float64 nearest each value, and
    the remainder rounded to float64 (together about 32 significant digits).

    >>> from fractalsweep.config import AxisConfig
    >>> axis_values(AxisConfig(lo="0.1", hi="0.3", scale="linear"), 3, "double-double")[0]
    array([ 1.00000000e-01, -5.55111512e-18])
    """
    values = decimal_values(axis.lo, axis.hi, n, axis.scale)
    if dtype == DOUBLE_DOUBLE:
        hi = [round_to(v, np.float64) for v in values]
        return np.array([(h, float(v - Decimal(float(h)))) for v, h in zip(values, hi)])
    return np.array([round_to(v, dtype) for v in values], dtype=dtype)


def increasing(values: np.ndarray) -> bool:
    """Whether coordinates (``axis_values``) strictly increase; double-doubles by (hi, lo)."""
    if values.ndim == 1:
        return bool(np.all(np.diff(values) > 0))
    hi, lo = np.diff(values[:, 0]), np.diff(values[:, 1])
    return bool(np.all((hi > 0) | ((hi == 0) & (lo > 0))))


def matching_indices(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(ia, ib)`` with ``a[ia] == b[ib]``, for increasing coordinate arrays.

    Finite floats compare equal exactly when their bits are equal (a decimal grid has no
    zeros of both signs), so these are the pixels a kernel would compute identically.
    Double-double coordinates (``(n, 2)``) match on both parts: as complex numbers, which
    compare and sort by the first part, then the second.
    """
    if a.ndim == 2:
        a, b = a[:, 0] + 1j * a[:, 1], b[:, 0] + 1j * b[:, 1]
    ia = np.flatnonzero(np.isin(a, b))
    return ia, np.searchsorted(b, a[ia])


def auto_tile(nx: int, ny: int, smallest: int = 16) -> int:
    """Pixels per tile side for an ``nx x ny`` level: a power of two from ``smallest`` to 128.

    About 64 tiles per level, so that the tiles keep every worker of a cluster busy to the
    end (a tile is the unit of scheduling), while a 4096 x 4096 keyframe is still only 1024
    tiles (a tile is one chunk file per array). GPU workers train 16384 networks per call,
    so for them a tile is 128 x 128 (``smallest``): a smaller one would pay for the rest of
    the call in padding.

    >>> auto_tile(64, 64), auto_tile(256, 256), auto_tile(4096, 4096), auto_tile(64, 64, 128)
    (16, 32, 128, 128)
    """
    side = math.sqrt(nx * ny / 64)
    return int(min(max(2 ** round(math.log2(max(side, 1))), smallest), 128))


@dataclass(frozen=True)
class Tiling:
    """Square tiles of ``tile`` pixels on a side over an ``(ny, nx)`` image; edge tiles are cut.

    >>> t = Tiling(ny=5, nx=7, tile=4)
    >>> t.shape, t.slices((1, 1))
    ((2, 2), (slice(4, 5, None), slice(4, 7, None)))
    """

    ny: int
    nx: int
    tile: int

    @property
    def shape(self) -> tuple[int, int]:
        return math.ceil(self.ny / self.tile), math.ceil(self.nx / self.tile)

    def slices(self, index: tuple[int, int]) -> tuple[slice, slice]:
        ty, tx = index
        t = self.tile
        return slice(ty * t, min((ty + 1) * t, self.ny)), slice(tx * t, min((tx + 1) * t, self.nx))

    def indices(self) -> list[tuple[int, int]]:
        ty, tx = self.shape
        return [(i, j) for i in range(ty) for j in range(tx)]


def flat_pixels(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel x and y values of a ``(len(ys), len(xs))`` block, row-major (a coordinate
    may be a row of its own, as double-doubles are)."""
    iy, ix = np.indices((len(ys), len(xs)))
    return xs[ix.ravel()], ys[iy.ravel()]
