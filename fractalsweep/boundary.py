"""Boundary cells of a score image, and counts of the boxes that hold some (docs/science.md, section 10).

Boundary cells
    Cell ``(i, j)`` is the 2x2 window of pixels ``i..i+1`` x ``j..j+1``; it is a boundary
    cell if it holds both a negative (converged) and a non-negative (diverged) score. NaN
    (not computed) belongs to neither class, so it never makes a cell boundary on its own.
Summed-area table
    ``table[i, j]`` is the number of boundary cells in ``mask[:i, :j]``; the count in any
    box then costs four lookups (:func:`box_sums`), at every box size.
Counted boxes
    A box counts if it holds some boundary cells but is not entirely boundary: a patch where
    every cell is boundary is unresolved noise, not structure.

Two ways of laying boxes of side ``s`` over the mask share these rules:
:func:`box_counts` tiles it from its first row and column (the paper's recipe), and
:func:`sliding_box_counts` averages that count over every placement of the tiling.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def boundary(score: np.ndarray) -> np.ndarray:
    """Boundary cells: 2x2 windows holding a negative and a non-negative score.

    Parameters
    ----------
    score : ndarray (ny, nx)
        Negative converged, non-negative diverged, NaN not computed (neither class).

    Returns
    -------
    ndarray of bool (ny - 1, nx - 1)
        True where the window of pixels ``i..i+1`` x ``j..j+1`` holds both classes.

    Examples
    --------
    >>> boundary(np.array([[-1.0, -1.0, 2.0], [-1.0, -1.0, 2.0]])).tolist()
    [[False, True]]
    >>> boundary(np.array([[-1.0, np.nan], [np.nan, np.nan]])).tolist()  # NaN is no class
    [[False]]
    """
    score = np.asarray(score, dtype=float)

    def any2x2(mask):
        return mask[:-1, :-1] | mask[1:, :-1] | mask[:-1, 1:] | mask[1:, 1:]

    return any2x2(score < 0) & any2x2(score >= 0)


def summed_area(mask: np.ndarray) -> np.ndarray:
    """The summed-area table of a boundary mask.

    Parameters
    ----------
    mask : ndarray of bool (ny, nx)

    Returns
    -------
    ndarray of int (ny + 1, nx + 1)
        ``table[i, j]`` is the number of True cells in ``mask[:i, :j]``. int32 while that
        cannot overflow (below 2**31 cells), which halves its memory; int64 beyond.

    Examples
    --------
    >>> summed_area(np.array([[True, False], [True, True]])).tolist()
    [[0, 0, 0], [0, 1, 1], [0, 2, 3]]
    """
    mask = np.asarray(mask, dtype=bool)
    table = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1),
                     dtype=np.int32 if mask.size < 2 ** 31 else np.int64)
    table[1:, 1:] = mask.cumsum(0, dtype=table.dtype).cumsum(1)
    return table


def box_sums(table: np.ndarray, top, bottom, left, right) -> np.ndarray:
    """Boundary cells in the boxes ``[top:bottom, left:right]`` of a summed-area table.

    Parameters
    ----------
    table : ndarray (ny + 1, nx + 1)
        From :func:`summed_area`.
    top, bottom, left, right : int arrays or slices
        Box edges in cells; arrays broadcast together (e.g. a column of rows and a row of
        columns for a grid of boxes), slices select a block of equally shifted boxes.

    Returns
    -------
    ndarray of int
        The number of boundary cells in each box.

    Examples
    --------
    >>> table = summed_area(np.eye(4, dtype=bool))
    >>> box_sums(table, np.array([[0], [2]]), np.array([[2], [4]]), np.array([0, 2]),
    ...          np.array([2, 4])).tolist()  # the four 2x2 quarters
    [[2, 0], [0, 2]]
    """
    return table[bottom, right] - table[top, right] - table[bottom, left] + table[top, left]


def partly(inside: np.ndarray, cells) -> np.ndarray:
    """Boxes that hold boundary cells but are not entirely boundary."""
    return (inside > 0) & (inside < cells)


def _edges(n: int, s: int) -> np.ndarray:
    """Box edges along one side of ``n`` cells: every ``s``, the last box cut at ``n``."""
    return np.append(np.arange(0, n, s), n)


def box_counts(mask: np.ndarray, sizes: Iterable[int]) -> np.ndarray:
    """``N(s)`` on one tiling: boxes from the first row and column, the last ones cut short.

    Boxes cut by the far edges count too, judged on the cells they hold, so every cell lies
    in exactly one box at every size.

    Parameters
    ----------
    mask : ndarray of bool (ny, nx)
        Boundary cells (:func:`boundary`).
    sizes : iterable of int
        Box sides, in cells.

    Returns
    -------
    ndarray of int
        The number of counted boxes per size.

    Examples
    --------
    >>> mask = np.zeros((6, 6), dtype=bool)
    >>> mask[:, 2] = True  # a vertical line of boundary cells
    >>> box_counts(mask, [1, 2, 4, 6]).tolist()  # 1-cell boxes are all or nothing
    [0, 3, 2, 1]
    """
    mask = np.asarray(mask, dtype=bool)
    table = summed_area(mask)
    counts = []
    for s in sizes:
        ey, ex = _edges(mask.shape[0], int(s)), _edges(mask.shape[1], int(s))
        top, bottom, left, right = ey[:-1, None], ey[1:, None], ex[None, :-1], ex[None, 1:]
        inside = box_sums(table, top, bottom, left, right)
        counts.append(np.count_nonzero(partly(inside, (bottom - top) * (right - left))))
    return np.array(counts, dtype=np.int64)


def _spans(n: int, s: int) -> tuple[np.ndarray, np.ndarray]:
    """First and past-last cell of the ``s``-box centred on each of ``n`` cells, clipped."""
    first = np.arange(n) - s // 2
    return np.clip(first, 0, n), np.clip(first + s, 0, n)


def sliding_box_counts(mask: np.ndarray, sizes: Iterable[int]) -> np.ndarray:
    """``N(s)`` averaged over every placement of the grid of side-``s`` boxes.

    A grid shifted by ``(dy, dx)``, ``0 <= dy, dx < s``, puts a box at every ``s``-th
    position; over all ``s**2`` shifts every position is used exactly once, so the mean
    count is the number of positions whose box counts, divided by ``s**2``. A placement
    counts the boxes whose centre cell lies in the image (one box per cell), clipped by the
    image edge: a boundary that runs on past the edge counts as far as the image shows it,
    so a straight line across the image gives exactly its length over ``s``. A boundary
    that stops within ``s / 2`` of the edge loses the boxes centred beyond it.

    Averaging removes what one grid adds: where the boundary happens to fall against the
    grid makes ``N(s)`` jump by whole boxes from one size to the next.

    Parameters
    ----------
    mask : ndarray of bool (ny, nx)
        Boundary cells (:func:`boundary`).
    sizes : iterable of int
        Box sides, in cells.

    Returns
    -------
    ndarray of float
        The mean number of counted boxes per size.

    Examples
    --------
    >>> mask = np.zeros((64, 64), dtype=bool)
    >>> mask[:, 20] = True  # a vertical line of 64 cells
    >>> sliding_box_counts(mask, [2, 4, 8]).tolist()  # 64 / s: the line's length in boxes
    [32.0, 16.0, 8.0]
    >>> box_counts(mask, [8]).tolist()  # one tiling: the line needs a column of 8 boxes
    [8]
    """
    mask = np.asarray(mask, dtype=bool)
    ny, nx = mask.shape
    table = summed_area(mask)
    counts = []
    for s in sizes:
        s = int(s)
        # Repeating the table's edge rows and columns clips every box to the image, so the
        # boxes centred on all cells are four shifted slices of the padded table.
        padded = np.pad(table, ((s // 2, s - s // 2),) * 2, mode="edge")
        inside = box_sums(padded, slice(0, ny), slice(s, s + ny), slice(0, nx), slice(s, s + nx))
        (y0, y1), (x0, x1) = _spans(ny, s), _spans(nx, s)
        counts.append(np.count_nonzero(partly(inside, np.outer(y1 - y0, x1 - x0))) / s ** 2)
    return np.array(counts, dtype=float)
