"""Draw one score image as a labelled figure, in the paper's style.

The figure is built on :class:`matplotlib.figure.Figure` with an explicit
Agg canvas, so rendering never touches pyplot or the global backend.
"""

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .colour import to_rgb

__all__ = ["end_labels", "render_png"]

_MIN_DIGITS, _MAX_DIGITS = 3, 17  # 17 significant digits tell any two float64 apart
_MIN_PX, _MAX_PX = 400, 1000  # longest image side on screen, at 100 px per inch
_MARGIN_IN = {"left": 0.45, "right": 0.25, "bottom": 0.6, "top": 0.15, "title": 0.35}


def _format(value, digits):
    """``value`` with ``digits`` significant digits, exponent written short (1e6, 2.5e-7)."""
    text = f"{value:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def end_labels(lo, hi):
    """Labels for the two ends of an axis that tell them apart.

    Deep zoom windows span a tiny relative range, so a fixed precision
    would print the same number at both ends; use the fewest significant
    digits (at least 3) for which the two labels differ.

    Parameters
    ----------
    lo, hi : float
        Hyperparameter values at the two ends (not log10).

    Returns
    -------
    tuple of str
        ``(lo_label, hi_label)``; identical only when ``lo == hi``.
    """
    for digits in range(_MIN_DIGITS, _MAX_DIGITS + 1):
        labels = _format(lo, digits), _format(hi, digits)
        if labels[0] != labels[1]:
            return labels
    return _format(lo, _MIN_DIGITS), _format(hi, _MIN_DIGITS)


def render_png(score, x, y, out, *, xlabel, ylabel, cmap="paper", title=None, dpi=100):
    """Write one level of a sweep as a labelled image.

    The image occupies about one screen pixel per score pixel at ``dpi=100``
    (longest side scaled into 400 .. 1000 px, aspect kept), with ticks only
    at the two ends of each axis, labelled by :func:`end_labels`.

    Parameters
    ----------
    score : array_like of float, shape (N, M)
        Score image, row 0 at the bottom (y[0]), column 0 at the left (x[0]).
    x : array_like of float, length M
        Hyperparameter values of the columns (not log10).
    y : array_like of float, length N
        Hyperparameter values of the rows (not log10).
    out : str or path-like
        Output file; the format follows its suffix (normally ``.png``).
    xlabel, ylabel : str
        Axis titles.
    cmap : str
        Colouring, see :func:`fractalsweep.colour.to_rgb`.
    title : str, optional
        Figure title.
    dpi : float
        Output resolution; the layout is fixed in inches, so raising it
        enlarges the whole figure (e.g. 200 for print).

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    score = np.asarray(score, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if score.ndim != 2 or score.shape != (y.size, x.size):
        raise ValueError(
            f"score shape {score.shape} does not match len(y)={y.size}, len(x)={x.size}"
        )
    rows, cols = score.shape
    scale = np.clip(max(rows, cols), _MIN_PX, _MAX_PX) / max(rows, cols)
    width_in, height_in = cols * scale / 100.0, rows * scale / 100.0
    top_in = _MARGIN_IN["top"] + (_MARGIN_IN["title"] if title else 0.0)
    fig_w = _MARGIN_IN["left"] + width_in + _MARGIN_IN["right"]
    fig_h = _MARGIN_IN["bottom"] + height_in + top_in

    fig = Figure(figsize=(fig_w, fig_h))
    FigureCanvasAgg(fig)
    ax = fig.add_axes(
        (_MARGIN_IN["left"] / fig_w, _MARGIN_IN["bottom"] / fig_h, width_in / fig_w, height_in / fig_h)
    )
    # to_rgb returns rows top to bottom, so origin="upper" puts score row 0 at the bottom.
    ax.imshow(
        to_rgb(score, cmap=cmap),
        origin="upper",
        extent=(-0.5, cols - 0.5, -0.5, rows - 0.5),
        interpolation="nearest",
    )
    ax.set_xticks([0, cols - 1], end_labels(x[0], x[-1]))
    ax.set_yticks([0, rows - 1], end_labels(y[0], y[-1]))
    # Keep end labels inside the image's span so long labels never collide.
    for label, align in zip(ax.get_xticklabels(), ("left", "right")):
        label.set_horizontalalignment(align)
    for label, align in zip(ax.get_yticklabels(), ("bottom", "top")):
        label.set_rotation(90)
        label.set_verticalalignment(align)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    out = Path(out)
    fig.savefig(out, dpi=dpi)
    return out
