"""The box-counting dimension of the trainability boundary, with an interval
(docs/science.md, section 10).

Both methods count boxes over the boundary cells of each score image
(:mod:`fractalsweep.boundary`): 2x2 windows holding a negative and a non-negative score; a
box counts if it holds some boundary cells but is not entirely boundary. ``N(s)`` is the
number of counted boxes of side ``s`` (in cells, which are pixels for all purposes here).
docs/dimension.md has the measurements behind every choice below.

``sliding`` (the default)
    ``N(s)`` is averaged over every placement of the box grid
    (:func:`fractalsweep.boundary.sliding_box_counts`), at four sizes per octave from two
    octaves below the fitted range to two above it (:func:`sliding_sizes`). The dimension
    is the least-squares slope of ``-log N`` against ``log s`` over the fitted range, one
    line per image with a common slope (each image keeps its own intercept). The fitted
    range runs from 16 pixels up by whole octaves to at most 1/8 of the image's shorter side
    (:func:`fit_range`; a box taller than a strip of an image counts its area): smaller
    boxes see the pixel grid (local slopes of the Koch curve and the Julia sets read 0.02 to
    0.05 low at 4 to 16 pixels), larger ones the image's and the set's finite size.
    The interval is a Student-t interval on the octave slopes ``-log2(N(2s) / N(s))``
    within the fitted range, pooled over the images: their standard deviation over the
    square root of the number of octaves spanned, with one degree of freedom fewer. It says
    how far the scaling wanders over the fitted scales and images, which is the uncertainty
    that more keyframes or a wider range reduce; it does not cover the slow convergence of
    some sets (docs/dimension.md).
``paper``
    The recipe of the paper: one grid from the first row and column (boxes cut by the far
    edges kept), ten sizes spaced evenly in log from 10 cells to the shorter side of the
    image (:func:`box_sizes`; the paper's images are square), local slopes
    ``-d log N / d log s`` by central differences (:func:`local_slopes`), and the median of
    all local slopes pooled over the images. Its interval is the distribution-free one for a
    median: the order statistics of the pooled slopes that a binomial(m, 1/2) count
    brackets at the confidence level.

Example
-------
>>> rows, cols = np.indices((256, 256))
>>> half_plane = np.where(rows < 100.5 + 0.3 * cols, -1.0, 1.0)
>>> result = dimension_of_images([half_plane])
>>> round(result.dimension, 2), result.fit_range
(1.0, (8, 32))
>>> round(dimension_of_images([half_plane], method="paper").dimension, 1)
1.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from . import store
from .boundary import boundary, box_counts, sliding_box_counts
from .config import is_integer, is_number
from .errors import ConfigError, StoreError
from .levels import find_ladder

METHODS = ("sliding", "paper")
COUNT = 10  # paper: box sizes per image
SMALLEST = 10  # paper: smallest box side, in cells
# the paper's recipe on a smaller image has boxes from 10 cells to its side over less than two
# octaves, each most of the image: counts of 1 to 4, and a slope of 0 read as a dimension
PAPER_SMALLEST_IMAGE = 4 * SMALLEST
FIT_SMALLEST = 16  # sliding: smallest fitted box side, in pixels
FIT_FRACTION = 8  # sliding: the largest fitted box is at most 1/8 of the image
PER_OCTAVE = 4  # sliding: box sizes per factor 2
BELOW, ABOVE = 2, 2  # sliding: octaves measured below and above the fitted range


@dataclass(frozen=True)
class Dimension:
    """A measured boundary dimension, its interval and the counts behind it.

    Attributes
    ----------
    dimension : float
        The estimate; NaN if no image has a boundary at two fitted box sizes.
    interval : (float, float)
        Low and high end of the interval at ``confidence``; NaN where it cannot be formed
        (too few slopes, see the module docstring).
    confidence : float
        The interval's confidence level, e.g. 0.95.
    method : str
        ``"sliding"`` or ``"paper"``.
    levels : tuple of int
        The store levels measured, or the images' positions; the tuples below follow them.
    sizes : tuple of tuple of int
        Per image, the box sides measured, in cells.
    counts : tuple of tuple of float
        Per image, ``N(s)`` for each size.
    slopes : tuple of tuple of float
        Per image, the local slopes ``-d log N / d log s`` by central differences, one per
        size with ``N > 0`` (:func:`local_slopes`).
    fit_ranges : tuple of (int, int)
        Per image, the smallest and largest box side the estimate used.
    level_set : str
        The boundary measured, ``"ARRAY = VALUE"``: the edge between the pixels of a
        per-pixel array below the value and those at or above it; ``"score = 0"`` is the
        trainability boundary.
    """

    dimension: float
    interval: tuple[float, float]
    confidence: float
    method: str
    levels: tuple[int, ...]
    sizes: tuple[tuple[int, ...], ...]
    counts: tuple[tuple[float, ...], ...]
    slopes: tuple[tuple[float, ...], ...]
    fit_ranges: tuple[tuple[int, int], ...]
    level_set: str = "score = 0"

    @property
    def fit_range(self) -> tuple[int, int]:
        """Smallest and largest box side used by the estimate, over all images."""
        return (min(lo for lo, _ in self.fit_ranges), max(hi for _, hi in self.fit_ranges))

    @property
    def measured_range(self) -> tuple[int, int]:
        """Smallest and largest box side measured, over all images."""
        return (min(s[0] for s in self.sizes), max(s[-1] for s in self.sizes))

    def __str__(self) -> str:
        """One line: the estimate, its interval, the box sizes fitted, the levels, the method."""
        low, high = (round(v, 3) + 0.0 for v in self.interval)  # no "-0.000"
        interval = ("no interval: too few slopes" if math.isnan(low)
                    else f"{self.confidence:.0%} interval {low:.3f} to {high:.3f}")
        smallest, largest = self.fit_range
        levels = f"{len(self.levels)} level" + ("s" if len(self.levels) > 1 else "")
        of = "" if self.level_set == "score = 0" else f", level set {self.level_set}"
        return (f"boundary dimension {self.dimension:.3f} ({interval}, box sizes "
                f"{smallest}-{largest} px, {levels}, method {self.method}{of})")

    def as_dict(self) -> dict:
        """The fields and both ranges, as plain values (for JSON)."""
        return {**asdict(self), "fit_range": self.fit_range,
                "measured_range": self.measured_range}


def box_sizes(n: int, count: int = COUNT, smallest: int = SMALLEST) -> np.ndarray:
    """The paper's box sides: ``smallest`` to ``n``, spaced evenly in log, rounded.

    Parameters
    ----------
    n : int
        The largest box side (the image size, in boundary cells).
    count : int
        The number of sizes before rounding; fewer come back where rounding repeats a size.
    smallest : int
        The smallest box side.

    Returns
    -------
    ndarray of int
        Increasing, without repeats; the first is ``smallest`` and the last ``n``.

    Raises
    ------
    ValueError
        If ``n < smallest``.

    Examples
    --------
    >>> box_sizes(4095).tolist()
    [10, 20, 38, 74, 145, 283, 551, 1076, 2099, 4095]
    >>> box_sizes(20).tolist()
    [10, 11, 12, 13, 14, 15, 16, 17, 19, 20]
    >>> box_sizes(12).tolist()
    [10, 11, 12]
    """
    if n < smallest:
        raise ConfigError(f"an image of {n} cells is smaller than the smallest box ({smallest})")
    return np.unique(np.rint(np.geomspace(smallest, n, count)).astype(np.int64))


def fit_range(n: int) -> tuple[int, int]:
    """The sliding method's fitted box sides for an image ``n`` pixels on its shorter side.

    From ``FIT_SMALLEST`` (16) pixels up by whole octaves while the box stays within
    ``n / FIT_FRACTION`` (1/8). Below about 512 pixels the range starts lower, at a power
    of two, so that it still spans two octaves.

    Parameters
    ----------
    n : int
        Pixels on the image's shorter side.

    Returns
    -------
    (int, int)
        The smallest and largest fitted box side; the largest is the smallest times a power
        of two.

    Raises
    ------
    ValueError
        If ``n < 64``: two octaves of boxes from 2 cells (1-cell boxes are all or nothing,
        so they never count) need boxes of 8 within 1/8 of the image.

    Examples
    --------
    >>> fit_range(2048), fit_range(4096), fit_range(3000), fit_range(256)
    ((16, 256), (16, 512), (16, 256), (8, 32))
    """
    largest = n / FIT_FRACTION
    if largest < 8:
        raise ConfigError(f"an image of {n} pixels is too small for the sliding method: it "
                         f"needs at least {8 * FIT_FRACTION} (or use the paper method)")
    smallest = min(FIT_SMALLEST, 2 ** math.floor(math.log2(largest / 4)))
    return smallest, smallest * 2 ** math.floor(math.log2(largest / smallest))


def sliding_sizes(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Box sides measured by the sliding method, and which of them are fitted.

    Parameters
    ----------
    n : int
        Pixels on the image's shorter side.

    Returns
    -------
    sizes : ndarray of int
        ``PER_OCTAVE`` (4) per octave on the grid through :func:`fit_range`, rounded, from
        ``BELOW`` (2) octaves under the fitted range (at least 2 cells) to ``ABOVE`` (2)
        over it (at most half the image).
    fitted : ndarray of bool
        True for the sizes of the fitted range.

    Examples
    --------
    >>> sizes, fitted = sliding_sizes(256)
    >>> sizes.tolist()
    [2, 3, 4, 5, 6, 7, 8, 10, 11, 13, 16, 19, 23, 27, 32, 38, 45, 54, 64, 76, 91, 108, 128]
    >>> sizes[fitted].tolist()
    [8, 10, 11, 13, 16, 19, 23, 27, 32]
    >>> sliding_sizes(64)[0][sliding_sizes(64)[1]].tolist()  # rounding merges sizes near 2
    [2, 3, 4, 5, 6, 7, 8]
    """
    smallest, largest = fit_range(n)
    octaves = round(math.log2(largest / smallest))
    steps = np.arange(-BELOW * PER_OCTAVE, (octaves + ABOVE) * PER_OCTAVE + 1)
    sizes = np.unique(np.rint(smallest * 2.0 ** (steps / PER_OCTAVE)).astype(np.int64))
    sizes = sizes[sizes >= 2]
    return sizes, (sizes >= smallest) & (sizes <= largest)


def local_slopes(sizes: Iterable[int], counts: Iterable[float]) -> np.ndarray:
    """``-d log N / d log s`` by central differences, over the sizes where ``N > 0``.

    A size with no counted box has no logarithm, so it is left out and its neighbours are
    differenced across it (``np.gradient`` handles the uneven spacing). The ends use
    one-sided differences.

    Parameters
    ----------
    sizes, counts : iterable of numbers
        Box sides, increasing, and their counts ``N(s)``.

    Returns
    -------
    ndarray of float
        One slope per size with ``N > 0``; empty if fewer than two sizes have ``N > 0``.

    Examples
    --------
    >>> local_slopes([10, 20, 40, 80], [64, 16, 4, 1]).round(6).tolist()
    [2.0, 2.0, 2.0, 2.0]
    >>> local_slopes([10, 20, 40, 80], [8, 0, 2, 1]).round(6).tolist()  # N(20) = 0 left out
    [1.0, 1.0, 1.0]
    """
    sizes, counts = np.asarray(sizes, dtype=float), np.asarray(counts, dtype=float)
    kept = counts > 0
    if np.count_nonzero(kept) < 2:
        return np.empty(0)
    return -np.gradient(np.log(counts[kept]), np.log(sizes[kept]))


def image_counts(score: np.ndarray, method: str = "sliding"
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Box sizes, ``N(s)`` and the fitted sizes of one score image's boundary.

    Parameters
    ----------
    score : ndarray (ny, nx)
        A score image: negative converged, non-negative diverged, NaN not computed (neither).
    method : {"sliding", "paper"}
        ``sliding``: :func:`sliding_sizes` of the shorter side, counts averaged over all grid
        placements. ``paper``: :func:`box_sizes` of the shorter side of the boundary mask,
        counts on one grid (:func:`fractalsweep.boundary.box_counts`), all sizes used.

    Returns
    -------
    sizes : ndarray of int
    counts : ndarray of float
    fitted : ndarray of bool

    Examples
    --------
    >>> rows = np.indices((41, 41))[0]
    >>> sizes, counts, _ = image_counts(rows - 20.5, "paper")  # one straight row of cells
    >>> sizes.tolist(), counts.tolist()
    ([10, 12, 14, 16, 19, 22, 25, 29, 34, 40], [4.0, 4.0, 3.0, 3.0, 3.0, 2.0, 2.0, 2.0, 2.0, 1.0])
    """
    score = np.asarray(score, dtype=float)
    mask = boundary(score)
    if method == "paper":
        if min(mask.shape) < PAPER_SMALLEST_IMAGE:
            raise ConfigError(f"an image of {min(mask.shape) + 1} pixels is too small for the "
                              f"paper method: its boxes, from {SMALLEST} cells to the image's "
                              f"side, need two octaves (at least {PAPER_SMALLEST_IMAGE + 1} "
                              "pixels)")
        sizes = box_sizes(min(mask.shape))
        return sizes, box_counts(mask, sizes).astype(float), np.ones(sizes.size, dtype=bool)
    sizes, fitted = sliding_sizes(min(score.shape))
    return sizes, sliding_box_counts(mask, sizes), fitted


def _common_slope(xs: list[np.ndarray], ys: list[np.ndarray]) -> float:
    """Least-squares slope of y on x shared by several lines, each with its own intercept."""
    centred = [(x - x.mean(), y - y.mean()) for x, y in zip(xs, ys) if x.size >= 2]
    denominator = sum(float(cx @ cx) for cx, _ in centred)
    return sum(float(cx @ cy) for cx, cy in centred) / denominator if denominator else math.nan


def _student_t(confidence: float, dof: float) -> float:
    from scipy.stats import t  # a dependency of jax; only needed here

    return float(t.ppf(0.5 + confidence / 2, dof))


def _octave_slopes(sizes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``-d log N / d log s`` between each size and the one nearest twice it.

    On the grid of :func:`sliding_sizes` that one lies ``PER_OCTAVE`` steps on, or fewer
    where rounding merged small sizes; pairs further than half a step from a factor 2, or
    with a zero count, are left out.
    """
    kept = counts > 0
    if np.count_nonzero(kept) < 2:
        return np.empty(0)
    logs, logn = np.log(sizes[kept]), np.log(counts[kept])
    partner = np.abs(logs[None, :] - (logs[:, None] + math.log(2))).argmin(axis=1)
    paired = np.abs(logs[partner] - logs - math.log(2)) < math.log(2) / (2 * PER_OCTAVE)
    first, second = np.nonzero(paired)[0], partner[paired]
    return -(logn[second] - logn[first]) / (logs[second] - logs[first])


def sliding_fit(sizes, counts, fitted, confidence: float = 0.95
                ) -> tuple[float, tuple[float, float]]:
    """The sliding method's estimate and interval from the counts of several images.

    Parameters
    ----------
    sizes, counts, fitted : sequences, one entry per image
        Box sides (on the grid of :func:`sliding_sizes`, ``PER_OCTAVE`` per octave), their
        counts ``N(s)``, and which sizes are fitted. Sizes with ``N = 0`` are left out.
    confidence : float
        In (0, 1).

    Returns
    -------
    dimension : float
        The least-squares slope of ``-log N`` against ``log s`` over the fitted sizes, one
        line per image with a common slope; NaN if no image has two fitted sizes with
        ``N > 0``.
    interval : (float, float)
        ``dimension -+ t * sd / sqrt(K)``: ``sd`` of the octave slopes ``-log2(N(2s) /
        N(s))`` of all images, ``K`` the octaves their fitted sizes span together, ``t`` the
        Student quantile with ``K - 1`` degrees of freedom. NaN, NaN below two octave slopes
        or ``K <= 1``.

    Examples
    --------
    >>> sizes = [16, 19, 23, 27, 32, 38, 45, 54, 64]
    >>> counts = [1e4 * s ** -1.5 for s in sizes]  # a power law over two octaves
    >>> d, (low, high) = sliding_fit([sizes, sizes], [counts, [2 * n for n in counts]],
    ...                              [[True] * 9] * 2)
    >>> round(d, 6), round(low, 6), round(high, 6)  # every octave slope is 1.5
    (1.5, 1.5, 1.5)
    """
    xs, ys, octave_slopes, octaves = [], [], [], 0.0
    for s, n, f in zip(sizes, counts, fitted):
        f = np.asarray(f, dtype=bool)
        s, n = np.asarray(s, dtype=float)[f], np.asarray(n, dtype=float)[f]
        x, y = np.log(s[n > 0]), np.log(n[n > 0])
        xs.append(x)
        ys.append(-y)
        octave_slopes.append(_octave_slopes(s, n))
        if x.size >= 2:
            octaves += (x[-1] - x[0]) / math.log(2)
    dimension = _common_slope(xs, ys)
    slopes = np.concatenate(octave_slopes) if octave_slopes else np.empty(0)
    if slopes.size < 2 or octaves <= 1:
        return dimension, (math.nan, math.nan)
    half = _student_t(confidence, octaves - 1) * float(slopes.std(ddof=1)) / math.sqrt(octaves)
    return dimension, (dimension - half, dimension + half)


def median_interval(values: Iterable[float], confidence: float) -> tuple[float, float]:
    """Distribution-free interval for a median: two order statistics of the values.

    The ``k``-th smallest and ``k``-th largest of ``m`` values bracket the median with
    probability ``1 - 2 P(B < k)``, ``B`` binomial(m, 1/2); ``k`` is the largest that keeps
    this at least ``confidence``.

    Parameters
    ----------
    values : iterable of float
    confidence : float
        In (0, 1).

    Returns
    -------
    (float, float)
        NaN, NaN if even the smallest and largest value bracket it less often (fewer than 6
        values at 95%).

    Examples
    --------
    >>> median_interval(range(10), 0.95)  # k = 2: P(B < 2) = 11 / 1024
    (1.0, 8.0)
    >>> median_interval(range(5), 0.95)
    (nan, nan)
    """
    values = np.sort(np.asarray(list(values), dtype=float))
    m = values.size
    below, k = 0.0, 0  # below = P(B < k)
    while 2 * k < m and 2 * (below + math.comb(m, k) / 2 ** m) <= 1 - confidence:
        below += math.comb(m, k) / 2 ** m
        k += 1
    if k == 0:
        return math.nan, math.nan
    return float(values[k - 1]), float(values[m - k])


def dimension_of_images(scores: Iterable[np.ndarray], method: str = "sliding",
                        confidence: float = 0.95,
                        levels: Iterable[int] | None = None,
                        level_set: str = "score = 0") -> Dimension:
    """The box-counting dimension of the boundary in a set of score images.

    The images are read one at a time, so a generator keeps only one in memory.

    Parameters
    ----------
    scores : iterable of ndarray (ny, nx)
        Score images (for a zoom: its keyframes).
    method : {"sliding", "paper"}
        See the module docstring.
    confidence : float
        Confidence level of the interval, in (0, 1).
    levels : iterable of int, optional
        Labels of the images (store levels); by default their positions.
    level_set : str
        What the images' sign change is the boundary of, for the result
        (:attr:`Dimension.level_set`).

    Returns
    -------
    Dimension

    Raises
    ------
    ValueError
        For an unknown method, a confidence outside (0, 1), or an image too small for the
        method (:func:`fit_range`, :func:`box_sizes`).

    Examples
    --------
    >>> rows, cols = np.indices((512, 512))
    >>> disc = np.where((rows - 256) ** 2 + (cols - 256) ** 2 < 200 ** 2, -1.0, 1.0)
    >>> result = dimension_of_images([disc, -disc])  # either sign inside: the same boundary
    >>> result.counts[0] == result.counts[1], round(result.dimension, 2), result.levels
    (True, 1.0, (0, 1))
    >>> low, high = result.interval
    >>> bool(low <= 1 <= high)
    True
    """
    if not isinstance(method, str) or method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; methods are {', '.join(METHODS)}")
    if not is_number(confidence) or not 0 < confidence < 1:
        raise ConfigError(f"confidence {confidence!r}: not between 0 and 1, or not a number")
    sizes, counts, fitted = [], [], []
    for score in scores:
        s, n, f = image_counts(score, method)
        sizes.append(s)
        counts.append(n)
        fitted.append(f)
    slopes = [local_slopes(s, n) for s, n in zip(sizes, counts)]
    if method == "paper":
        pooled = np.concatenate(slopes) if slopes else np.empty(0)
        dimension = float(np.median(pooled)) if pooled.size else math.nan
        interval = median_interval(pooled, confidence)
    else:
        dimension, interval = sliding_fit(sizes, counts, fitted, confidence)
    return Dimension(
        dimension=dimension, interval=interval, confidence=confidence, method=method,
        levels=tuple(range(len(sizes)) if levels is None else (int(v) for v in levels)),
        sizes=tuple(tuple(int(v) for v in s) for s in sizes),
        counts=tuple(tuple(float(v) for v in n) for n in counts),
        slopes=tuple(tuple(float(v) for v in d) for d in slopes),
        fit_ranges=tuple((int(s[f][0]), int(s[f][-1])) for s, f in zip(sizes, fitted)),
        level_set=level_set)


def checked_levels(levels) -> list[int]:
    """``levels`` as a list of distinct level indices, or a one-line error: each level is
    one sample of the interval, so a repeated one would narrow it falsely."""
    if isinstance(levels, (str, bytes)) or not isinstance(levels, Iterable):
        raise ConfigError(f"levels = {levels!r}: expected a list of level indices")
    levels = list(levels)
    if not levels or not all(is_integer(level) for level in levels):
        raise ConfigError(f"levels = {levels!r}: expected a list of one or more level indices")
    levels = [int(level) for level in levels]
    repeated = sorted({level for level in levels if levels.count(level) > 1})
    if repeated:
        raise ConfigError(f"levels {levels} repeat {', '.join(map(str, repeated))}; give each "
                          "level once: each is one sample of the interval")
    return levels


def store_dimension(store_path, levels: Iterable[int] | None = None, method: str = "sliding",
                    confidence: float = 0.95, level_set: tuple[str, float] = ("score", 0.0)
                    ) -> Dimension:
    """The box-counting dimension of a zoom stored in a fractalsweep store: of the
    trainability boundary, or of the boundary of a level set of any per-pixel array.

    Parameters
    ----------
    store_path : str or path-like
        A fractalsweep store.
    levels : iterable of int, optional
        The levels to pool, each once (every level is one sample of the interval); by
        default the keyframe ladder (:func:`fractalsweep.levels.find_ladder`), widest first.
        Every level must be finished: its pixels not yet computed would add no boundary and
        bias the estimate low.
    method, confidence
        As for :func:`dimension_of_images`.
    level_set : (str, float)
        ``(array, value)``: the boundary between the pixels where the per-pixel array is
        below ``value`` and those where it is at or above it, measured as the score's is
        (the image ``array - value`` in place of the score). The default ``("score", 0)``
        is the trainability boundary; ``("converged_fraction", 0.5)`` where half an
        ensemble converges (docs/measures.md).

    Returns
    -------
    Dimension
        With ``levels`` the store levels used, in order.

    Raises
    ------
    fractalsweep.errors.AnimationError
        By default, if the store has no keyframe ladder.
    fractalsweep.store.StoreError
        If a given level is not in the store, is not finished, or lacks the array.
    fractalsweep.errors.ConfigError
        If a level is given more than once.
    ValueError
        As :func:`dimension_of_images`.

    Examples
    --------
    >>> result = store_dimension("sweep.zarr")  # doctest: +SKIP
    >>> result.dimension, result.interval, result.levels  # doctest: +SKIP
    (1.66, (1.63, 1.69), (3, 2, 1))
    """
    path = str(store_path)
    root = store.open_root(path)
    if levels is None:
        levels = [keyframe.level for keyframe in find_ladder(path)]
    levels = checked_levels(levels)
    if (not isinstance(level_set, (tuple, list)) or len(level_set) != 2
            or not isinstance(level_set[0], str) or not is_number(level_set[1])
            or not math.isfinite(level_set[1])):
        raise ConfigError(f"level_set = {level_set!r}: expected (array name, finite number), "
                          "e.g. ('converged_fraction', 0.5)")
    array, value = level_set[0], float(level_set[1])
    opened = [store.open_level(root, level) for level in levels]
    for level, lvl in zip(levels, opened):  # all finished and hold the array, or fail now
        lvl.check_finished(path, "measuring its dimension")
        if array not in lvl.arrays:
            raise StoreError(f"level {level}: {array!r} is not an array to measure; those "
                             f"it has are {', '.join(lvl.arrays)}")
    return dimension_of_images((lvl.group[array][:] - value for lvl in opened), method=method,
                               confidence=confidence, levels=levels,
                               level_set=f"{array} = {value:g}")


def plot_dimension(result: Dimension, path) -> None:
    """Write the log-log plot of ``N(s)`` with the fitted line and range.

    One series of points per image (filled where the estimate used them), and per image the
    line of slope ``-dimension`` through its fitted points (least-squares intercept). The
    fitted range is shaded.

    Parameters
    ----------
    result : Dimension
    path : str or path-like
        Output image; the format follows the suffix (``.png``, ``.pdf``, ``.svg``, ...).

    Examples
    --------
    >>> plot_dimension(store_dimension("sweep.zarr"), "dimension.png")  # doctest: +SKIP
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    from .render import save

    figure = Figure(figsize=(6, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.axvspan(*result.fit_range, color="0.9", label="fitted range")
    for level, sizes, counts, (lo, hi) in zip(result.levels, result.sizes, result.counts,
                                              result.fit_ranges):
        s, n = np.asarray(sizes, dtype=float), np.asarray(counts, dtype=float)
        shown, used = n > 0, (s >= lo) & (s <= hi) & (n > 0)
        (points,) = axes.loglog(s[shown], n[shown], "o", markerfacecolor="none", markersize=4,
                                label=f"level {level}" if len(result.levels) > 1 else "N(s)")
        axes.loglog(s[used], n[used], "o", color=points.get_color(), markersize=4)
        if np.count_nonzero(used) >= 2 and np.isfinite(result.dimension):
            intercept = np.mean(np.log(n[used]) + result.dimension * np.log(s[used]))
            axes.loglog(s[used], np.exp(intercept - result.dimension * np.log(s[used])), "-",
                        color=points.get_color(), linewidth=1)
    low, high = result.interval
    of = "" if result.level_set == "score = 0" else f"{result.level_set}: "
    axes.set_title(f"{of}boundary dimension {result.dimension:.3f} "
                   f"({result.confidence:.0%} interval {low:.3f} to {high:.3f}, "
                   f"{result.method})",
                   fontsize=10)
    axes.set_xscale("log", base=2)  # box sides in powers of two, written as plain numbers
    axes.xaxis.set_major_formatter(ScalarFormatter())
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("box side s (pixels)")
    axes.set_ylabel("counted boxes N(s)")
    if len(result.levels) <= 12:  # a legend of a long ladder would hide the points
        axes.legend(fontsize=8)
    save(figure, path, 120)
