"""Turn score images into colours the way the paper does.

Score convention (docs/science.md, section 6): converged pixels have negative
scores (more negative = slower convergence), diverged pixels non-negative
scores (larger = stayed low longer before blowing up). A NaN score is a
pixel not computed yet: it belongs to neither class, makes no boundary, and
:func:`to_rgb` draws it in :data:`NOT_COMPUTED` (white).

Row 0 of a score array is the BOTTOM of the picture (origin lower), as in
the grid of docs/science.md, section 7. :func:`to_rgb` returns rows top to
bottom, ready to be written as an image file or a video frame.

Any other per-pixel array (docs/measures.md) is drawn through a colormap over a value
range, a :class:`Scale`: :func:`scale_of` chooses it per array (a perceptual map over
[0, 1] for the converged fraction, a diverging one centred at 0 for the Lyapunov
exponent) and :func:`values_rgb` applies it. Arrays that are scores (:func:`is_score`: the
score, its snapshots, an ensemble's mean) keep the paper's colouring.

Matplotlib is imported lazily, inside the colouring functions only, so that the
numeric parts stay importable and cheap in worker processes.
"""

import contextlib
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

__all__ = ["BOUNDARY", "BUFFER", "CLASS_COLOURS", "CONVERGED", "DIVERGED", "NEVER",
           "NOT_COMPUTED", "Scale", "classes", "colormap_of", "equalize", "is_score", "scale_of",
           "score_colormap", "to_rgb", "to_rgba", "values_rgb"]

CONVERGED, DIVERGED, BOUNDARY = 0, 1, 2

#: RGB of each class for ``cmap="classes"``: blue, red, near-black.
CLASS_COLOURS = np.array([[50, 136, 189], [213, 62, 79], [20, 20, 20]], dtype=np.uint8)

BUFFER = 0.25  # the unused middle band (-0.25, 0.25) makes the boundary a hard colour jump
_BIG = np.finfo(np.float64).max


def _converged(score):
    """Boolean mask of converged pixels; NaN compares False, so it counts as diverged."""
    return np.asarray(score) < 0


def _ranks(values, reference=None):
    """Ranks in [0, 1] of ``values`` among ``reference`` (default: themselves), one class.

    Ties share their mean rank. Values between reference values are
    interpolated linearly (so a blended animation frame varies smoothly),
    values outside the reference range are clamped. Infinite values are
    clamped to the largest float: one class never mixes signs, so
    differences stay finite. Queries are interpolated in sorted order,
    which keeps the table look-ups cache friendly (6x faster at 4096^2).
    """
    values = np.clip(values, -_BIG, _BIG)
    order = np.argsort(values)
    ref = values[order] if reference is None else np.sort(np.clip(reference, -_BIG, _BIG))
    if ref.size == 1:
        return np.full(values.shape, 0.5)
    starts = np.flatnonzero(np.concatenate(([True], ref[1:] != ref[:-1])))
    ends = np.append(starts[1:], ref.size)
    mean_rank = (starts + ends - 1) / (2.0 * (ref.size - 1))
    out = np.empty(values.shape)
    if reference is None:
        out[order] = np.repeat(mean_rank, ends - starts)
    else:
        out[order] = np.interp(values[order], ref[starts], mean_rank)
    return out


def equalize(score, reference=None):
    """Rank-equalize a score image per class, as in the paper.

    Converged pixels are spread by rank over [-1, -0.25] (slowest first),
    diverged ones over [0.25, 1] (fastest blow-up first), then the value is
    negated. Final sign convention, which is what ``Spectral`` on [-1, 1]
    expects to draw the paper's colours:

    * converged -> [0.25, 1]: 0.25 fast (light green) ... 1 slow (dark blue);
    * diverged -> [-1, -0.25]: -0.25 fast blow-up (orange) ... -1 slow, next
      to the boundary (dark red).

    Parameters
    ----------
    score : array_like of float
        Score image, any shape.
    reference : array_like of float, optional
        Scores whose per-class sorted values define the rank mapping, so
        that colours follow another image (animations blend the colour
        references of neighbouring keyframes). Ranks of values between
        reference values are interpolated; values outside its range are
        clamped to its ends. Defaults to ``score`` itself. Where the
        reference has no pixel of a class the image holds, that class is
        ranked against the image itself.

    Returns
    -------
    numpy.ndarray of float64
        Same shape as ``score``, values in [-1, 1]; never in (-0.25, 0.25).
    """
    score = np.asarray(score, dtype=np.float64)
    if reference is None:
        ref_sets = (None, None)
    else:
        ref = np.asarray(reference, dtype=np.float64)
        ref_conv = _converged(ref)
        ref_sets = (ref[ref_conv], ref[~ref_conv & ~np.isnan(ref)])
    nan = np.isnan(score)
    conv = _converged(score)
    out = np.empty(score.shape)
    for mask, ref_values, low in zip((conv, ~conv & ~nan), ref_sets, (-1.0, BUFFER)):
        if mask.any():
            own = ref_values is None or ref_values.size == 0
            out[mask] = low + (1.0 - BUFFER) * _ranks(score[mask], None if own else ref_values)
    out[nan] = BUFFER
    return -out


def classes(score):
    """Plain converged / diverged / boundary view of a score image.

    A pixel is boundary when any of its 4 neighbours is of the other class,
    so both sides of every sign change are marked; a NaN pixel (not computed
    yet) makes no boundary.

    Parameters
    ----------
    score : array_like of float
        2-D score image.

    Returns
    -------
    numpy.ndarray of int8
        Same shape; :data:`CONVERGED` (0), :data:`DIVERGED` (1) or
        :data:`BOUNDARY` (2).
    """
    conv = _converged(score)
    if conv.ndim != 2:
        raise ValueError(f"score must be 2-D, got shape {conv.shape}")
    known = ~np.isnan(np.asarray(score, dtype=np.float64))  # not computed yet: no class
    edge = np.zeros(conv.shape, dtype=bool)
    rows = (conv[1:, :] != conv[:-1, :]) & known[1:, :] & known[:-1, :]
    cols = (conv[:, 1:] != conv[:, :-1]) & known[:, 1:] & known[:, :-1]
    edge[1:, :] |= rows
    edge[:-1, :] |= rows
    edge[:, 1:] |= cols
    edge[:, :-1] |= cols
    out = np.where(conv, CONVERGED, DIVERGED).astype(np.int8)
    out[edge] = BOUNDARY
    return out


def colormap_of(cmap):
    """The matplotlib colormap of a colouring: ``"paper"`` is ``Spectral``, any other name a
    matplotlib colormap. The one check of a cmap: anything else, an unknown name or not a
    name at all (a list, an array, 0), is a one-line error naming the valid choices."""
    import matplotlib

    if isinstance(cmap, str):
        with contextlib.suppress(KeyError):
            return matplotlib.colormaps["Spectral" if cmap == "paper" else cmap]
    raise ConfigError(f"unknown cmap {cmap!r}; valid choices are 'paper', 'classes', "
                      "or any matplotlib colormap name (e.g. 'viridis', 'Spectral')")


def score_colormap(cmap):
    """The colormap of a score's colouring, or None for ``"classes"`` (drawn with
    :data:`CLASS_COLOURS`); anything else is :func:`colormap_of`'s one-line error."""
    return None if isinstance(cmap, str) and cmap == "classes" else colormap_of(cmap)


NOT_COMPUTED = np.array([255, 255, 255], dtype=np.uint8)
#: RGB of a value that means "never" (:data:`NEVER_VALUES`), apart from every colormap's range
NEVER = np.array([150, 150, 150], dtype=np.uint8)


def to_rgb(score, cmap="paper", reference=None):
    """Colour a score image, rows top to bottom.

    Parameters
    ----------
    score : array_like of float
        2-D score image, row 0 at the BOTTOM of the picture.
    cmap : str
        ``"paper"``: :func:`equalize` then ``Spectral`` on [-1, 1];
        ``"classes"``: :func:`classes` drawn with :data:`CLASS_COLOURS`;
        any other matplotlib colormap name: :func:`equalize` then that
        colormap on [-1, 1].
    reference : array_like of float, optional
        Rank reference passed to :func:`equalize`; unused by ``"classes"``.
        NaN (a pixel not computed yet) is drawn in :data:`NOT_COMPUTED`, white.

    Returns
    -------
    numpy.ndarray of uint8, shape (H, W, 3)
        Row 0 is the TOP of the picture (``score`` flipped vertically), so
        the array can be written directly as an image.
    """
    score = np.asarray(score, dtype=np.float64)
    if score.ndim != 2:
        raise ValueError(f"score must be 2-D, got shape {score.shape}")
    colormap = score_colormap(cmap)
    if colormap is None:
        rgb = CLASS_COLOURS[classes(score)]
    else:
        rgb = colormap((equalize(score, reference) + 1.0) / 2.0, bytes=True)[..., :3]
    rgb[np.isnan(score)] = NOT_COMPUTED  # a level still being computed shows its holes
    return np.ascontiguousarray(rgb[::-1])


def to_rgba(score, cmap="paper"):
    """:func:`to_rgb` with an alpha channel: pixels not computed yet are transparent.

    For drawing a level while its tiles land over something else (the explorers).

    Returns
    -------
    numpy.ndarray of uint8, shape (H, W, 4)
        Rows top to bottom, as :func:`to_rgb`.

    Examples
    --------
    >>> to_rgba(np.array([[np.nan, -1.0], [2.0, 3.0]]), "classes")[..., 3]
    array([[255, 255],
           [  0, 255]], dtype=uint8)
    """
    score = np.asarray(score, dtype=np.float64)
    alpha = np.where(np.isnan(score[::-1]), 0, 255).astype(np.uint8)
    return np.dstack([to_rgb(score, cmap), alpha])


def is_score(name: str) -> bool:
    """Whether a per-pixel array is a signed score, drawn with the paper's colouring: the
    score, a snapshot of it (``score_at_<steps>``) and an ensemble's ``mean_score``.

    >>> is_score("score_at_50"), is_score("mean_score"), is_score("lyapunov")
    (True, True, False)
    """
    return name in ("score", "mean_score") or name.startswith("score_at_")


@dataclass(frozen=True)
class Scale:
    """A colormap over a value range, for a per-pixel array that is not a score.

    Values at or below ``lo`` take the colormap's first colour, at or above ``hi`` its
    last; ``label`` names the quantity on the picture's colour bar. ``never``: a value that
    says the event never happened (:data:`NEVER_VALUES`), drawn in :data:`NEVER` grey. With
    ``linear_width`` the map is symmetric-logarithmic (matplotlib's ``SymLogNorm``): linear
    within ``+-linear_width`` of 0, logarithmic beyond, for values spanning many decades of
    either sign.
    """

    cmap: str
    lo: float
    hi: float
    label: str
    linear_width: float | None = None
    never: float | None = None

    def norm(self):
        """The matplotlib normalization from values to [0, 1] (clipped at the ends)."""
        from matplotlib.colors import Normalize, SymLogNorm

        if self.linear_width is None:
            return Normalize(self.lo, self.hi, clip=True)
        return SymLogNorm(self.linear_width, vmin=self.lo, vmax=self.hi, clip=True, base=10)


#: Per array: its colour bar's label and default colormap (others: their name, viridis).
#: The Lyapunov map is dark at 0, so an exponent near 0 is not the white of a pixel not
#: computed (RdBu_r's centre was).
SCALES = {"converged_fraction": ("fraction of the ensemble converged", "cividis"),
          "lyapunov": ("Lyapunov exponent (per step)", "berlin"),
          "first_nonfinite": ("first step with a non-finite loss (grey: never)", "viridis")}
#: Per array: the value that means the event never happened in the run
NEVER_VALUES = {"first_nonfinite": -1}
LYAPUNOV_PERCENTILE = 99  # the range of the Lyapunov map: |values| up to this percentile
LYAPUNOV_DECADES = 3  # ... of which the map is logarithmic over this many decades


def scale_of(name: str, values, cmap: str | None = None) -> Scale:
    """The default :class:`Scale` of a per-pixel array that is not a score.

    ``converged_fraction``: cividis over [0, 1], the whole range whatever the image holds,
    so pictures compare. ``lyapunov``: the diverging berlin, centred at 0 (black), its
    range symmetric up to the 99th percentile ``L`` of the finite ``|values|``, and
    symmetric-logarithmic over the three decades below ``L``: blow-ups reach exponents
    a thousand times those of the runs that converge, and both show. Any other array:
    viridis from its smallest to its largest finite value, leaving out the value that
    means "never" (``first_nonfinite``'s -1, drawn grey). ``cmap`` replaces the colormap
    (any matplotlib name; ``"paper"`` and ``"classes"``, colourings of scores, are refused).

    Examples
    --------
    >>> fraction = scale_of("converged_fraction", [0.25, 0.5])
    >>> fraction.cmap, fraction.lo, fraction.hi
    ('cividis', 0.0, 1.0)
    >>> lyapunov = scale_of("lyapunov", [-0.5, 0.1, np.nan])
    >>> lyapunov.cmap, lyapunov.lo, lyapunov.hi, round(lyapunov.linear_width, 9)
    ('berlin', -0.496, 0.496, 0.000496)
    >>> steps = scale_of("first_nonfinite", [-1, 12, 40])
    >>> steps.lo, steps.hi, steps.never
    (12.0, 40.0, -1)
    >>> other = scale_of("final_loss", [2.0, 5.0, np.inf], cmap="magma")
    >>> other.cmap, other.lo, other.hi, other.linear_width
    ('magma', 2.0, 5.0, None)
    """
    label, default = SCALES.get(name, (name, "viridis"))
    values = np.asarray(values, dtype=np.float64)
    never = NEVER_VALUES.get(name)
    finite = values[np.isfinite(values) & ((values != never) if never is not None else True)]
    cmap = default if cmap is None else cmap
    if isinstance(cmap, str) and cmap in ("paper", "classes"):
        raise ConfigError(f"cmap {cmap!r} colours scores; {name} takes a matplotlib colormap "
                          "name (e.g. 'viridis')")
    colormap_of(cmap)  # an unknown name, or no name, fails here, with the valid choices
    if name == "converged_fraction":
        return Scale(cmap, 0.0, 1.0, label)
    if name == "lyapunov":
        top = float(np.percentile(np.abs(finite), LYAPUNOV_PERCENTILE)) if finite.size else 0.0
        top = top or 1.0
        return Scale(cmap, -top, top, label, top / 10**LYAPUNOV_DECADES)
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return Scale(cmap, lo, hi, label, never=never)


def values_rgb(values, scale: Scale):
    """Colour a per-pixel array through ``scale``, rows top to bottom as :func:`to_rgb`.

    NaN (not computed) is :data:`NOT_COMPUTED` white, the scale's ``never`` value
    :data:`NEVER` grey; infinite values take the colormap's ends.

    >>> values_rgb(np.array([[0.0, np.nan]]), Scale("gray", 0.0, 1.0, "x")).tolist()
    [[[0, 0, 0], [255, 255, 255]]]
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"values must be 2-D, got shape {values.shape}")
    with np.errstate(invalid="ignore"):
        position = np.ma.filled(scale.norm()(np.clip(values, -_BIG, _BIG)), np.nan)
    rgb = colormap_of(scale.cmap)(position, bytes=True)[..., :3]
    rgb[np.isnan(values)] = NOT_COMPUTED
    if scale.never is not None:
        rgb[values == scale.never] = NEVER
    return np.ascontiguousarray(rgb[::-1])
