"""The box-counting dimension of the trainability boundary (science.md section 10).

Boundary
    The boundary cells of a score image are the 2x2 windows holding both a negative and a
    non-negative score (:func:`fractalsweep.boundary.boundary`): an ``ny x nx`` image has an
    ``(ny - 1) x (nx - 1)`` mask of cells. Box sizes and boxes are measured in these cells.
Box sizes
    Ten sizes spaced evenly in log from 10 cells to the image size, taken as the longer side
    of the mask so that the largest box covers the whole image. Each is rounded to the
    nearest integer and repeats are dropped (they only occur on images narrower than about
    25 cells, where neighbouring sizes differ by less than one cell).
Boxes
    Boxes of side ``s`` tile the mask from its first row and column; the last row and column
    of boxes are cut short by the image edge when ``s`` does not divide it. Cut boxes are
    kept, and "entirely boundary" is judged on the cells they hold, so every cell lies in
    exactly one box at every size; dropping them would, for sizes just above half the image,
    leave out almost three quarters of it. A box counts if it holds some boundary cells but
    is not entirely boundary: a patch where every cell is boundary is unresolved noise, not
    structure. ``N(s)`` is the number of counted boxes.
Slopes and dimension
    The local slopes are ``-d log N / d log s`` by central differences (``np.gradient`` on
    the log-log points, one-sided at the two ends), over the sizes where ``N > 0``. The
    dimension of a zoom is the median of the local slopes of all its keyframes pooled.

Example
-------
>>> rows, cols = np.indices((256, 256))
>>> half_plane = np.where(rows < 100.5 + 0.3 * cols, -1.0, 1.0)
>>> round(dimension_of_images([half_plane])["dimension"], 1)
1.0
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from . import store
from .animate import find_ladder
from .boundary import boundary, box_counts

COUNT = 10  # box sizes per image
SMALLEST = 10  # smallest box side, in boundary cells


def box_sizes(n: int, count: int = COUNT, smallest: int = SMALLEST) -> np.ndarray:
    """Box sides from ``smallest`` to ``n``, spaced evenly in log and rounded to integers.

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
        raise ValueError(f"an image of {n} cells is smaller than the smallest box ({smallest})")
    return np.unique(np.rint(np.geomspace(smallest, n, count)).astype(np.int64))


def local_slopes(sizes: Iterable[int], counts: Iterable[int]) -> np.ndarray:
    """``-d log N / d log s`` by central differences, over the sizes where ``N > 0``.

    A size with no counted box has no logarithm, so it is left out and its neighbours are
    differenced across it (``np.gradient`` handles the uneven spacing). The ends use
    one-sided differences.

    Parameters
    ----------
    sizes, counts : iterable of int
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


def image_counts(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Box sizes and ``N(s)`` of one score image's boundary.

    Parameters
    ----------
    score : ndarray (ny, nx)
        A score image: negative converged, non-negative diverged, NaN not computed (neither).

    Returns
    -------
    sizes, counts : ndarray of int
        :func:`box_sizes` of the longer side of the boundary mask, and :func:`box_counts`.

    Examples
    --------
    >>> rows = np.indices((21, 21))[0]
    >>> sizes, counts = image_counts(rows - 10.5)  # one straight row of boundary cells
    >>> sizes.tolist(), counts.tolist()
    ([10, 11, 12, 13, 14, 15, 16, 17, 19, 20], [2, 2, 2, 2, 2, 2, 2, 2, 2, 1])
    """
    mask = boundary(np.asarray(score, dtype=float))
    sizes = box_sizes(max(mask.shape))
    return sizes, box_counts(mask, sizes)


def dimension_of_images(scores: Iterable[np.ndarray]) -> dict:
    """The box-counting dimension of the boundary in a set of score images.

    The images are read one at a time, so a generator keeps only one in memory.

    Parameters
    ----------
    scores : iterable of ndarray (ny, nx)
        Score images (for a zoom: its keyframes), each at least 11 pixels on its longer side.

    Returns
    -------
    dict
        ``dimension``: the median of the local slopes of all images pooled (NaN if there are
        none: no image has a boundary at two box sizes); and per image, in the order given,
        ``sizes`` (box sides in cells), ``counts`` (``N(s)`` per size) and ``slopes`` (one
        per size with ``N > 0``), as plain lists.

    Examples
    --------
    >>> rows, cols = np.indices((512, 512))
    >>> disc = np.where((rows - 256) ** 2 + (cols - 256) ** 2 < 200 ** 2, -1.0, 1.0)
    >>> result = dimension_of_images([disc, -disc])  # either sign inside: the same boundary
    >>> result["counts"][0] == result["counts"][1], round(result["dimension"], 1)
    (True, 1.0)
    """
    result: dict = {"sizes": [], "counts": [], "slopes": []}
    for score in scores:
        sizes, counts = image_counts(score)
        result["sizes"].append(sizes.tolist())
        result["counts"].append(counts.tolist())
        result["slopes"].append(local_slopes(sizes, counts).tolist())
    pooled = [slope for slopes in result["slopes"] for slope in slopes]
    result["dimension"] = float(np.median(pooled)) if pooled else float("nan")
    return result


def store_dimension(store_path, levels: Iterable[int] | None = None) -> dict:
    """The box-counting dimension of a zoom stored in a fractalsweep store.

    Parameters
    ----------
    store_path : str or path-like
        A fractalsweep store.
    levels : iterable of int, optional
        The levels to pool; by default the keyframe ladder
        (:func:`fractalsweep.animate.find_ladder`), widest first. Pixels of a given level not
        yet computed (NaN) belong to neither class, so they add no boundary.

    Returns
    -------
    dict
        ``dimension`` (as :func:`dimension_of_images`), ``levels`` (the levels used, in
        order), and ``sizes``, ``counts`` and ``slopes``, each a dict from level to list.

    Raises
    ------
    fractalsweep.animate.AnimationError
        By default, if the store has no keyframe ladder.
    fractalsweep.store.StoreError
        If a given level is not in the store.

    Examples
    --------
    >>> result = store_dimension("sweep.zarr")  # doctest: +SKIP
    >>> result["dimension"], result["levels"]  # doctest: +SKIP
    (1.66, [3, 2, 1])
    """
    path = str(store_path)
    root = store.open_root(path)
    if levels is None:
        levels = [keyframe.level for keyframe in find_ladder(path)]
    levels = [int(level) for level in levels]
    groups = [store.open_level(root, level).group for level in levels]  # all exist, or fail now
    result = dimension_of_images(group["score"][:] for group in groups)
    return {"dimension": result["dimension"], "levels": levels,
            **{key: dict(zip(levels, result[key])) for key in ("sizes", "counts", "slopes")}}
