"""Zoom frames composed from a store's stored scores, with numpy only; and frames of one
level's score snapshots, the fractal forming as training proceeds (:class:`StepsPlan`).

* keyframe ``k`` fills the view, ``k + 1`` is drawn over it where it covers the view, and
  ``k + 2`` fades in over both with alpha ``t`` (docs/science.md, section 9);
* every pixel is the nearest stored pixel (index arithmetic and one gather), never an
  interpolated one: pixels are the sampled hyperparameter points, and the converged /
  diverged boundary must stay a hard colour jump;
* colours are the paper's per-image rank equalization, with the rank reference moving
  smoothly from keyframe ``k`` to ``k + 1``: each visible keyframe ``j`` is equalized against
  both references and the two values are mixed with weight ``sin^2(pi t / 2)`` before the
  colormap look-up. The mix is continuous across keyframes (at ``t = 1`` the reference is
  ``k + 1`` alone, as at the start of the next segment), starts and ends with zero slope, and
  never crosses the middle band, since both values of a pixel belong to its own class. Each
  (keyframe, reference) pair is equalized once, when its segment is first reached, and
  dropped when no later segment of the run needs it, so memory does not grow however
  long the ladder is (at most six equalized and three score images are held).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext
from functools import partial

import numpy as np
import zarr

from . import store
from .colour import CLASS_COLOURS, classes, equalize, score_colormap
from .config import is_integer
from .decimals import CONTEXT, is_sequence
from .errors import AnimationError
from .execution import flag
from .keyframes import blend_weight, geometry, zoom_schedule
from .levels import Keyframe, find_ladder
from .score import snapshot_name

__all__ = ["render_frames", "sample_axis", "snapshots_of"]

# 45 make a smooth zoom; 10,000 are over five minutes of video per octave at 30 fps. Beyond,
# the frame schedule alone runs to gigabytes (10^9 asked for 22 GiB before the first frame)
MAX_FRAMES_PER_OCTAVE = 10000
_LUT_SIZE = 256  # matplotlib's default colormap resolution, so frames match colour.to_rgb


def sample_axis(n_out: int, n_key: int, zoom: float, offset: float) -> tuple[int, int, np.ndarray]:
    """Nearest keyframe pixel of each output pixel along one axis, where the keyframe covers it.

    Output pixels ``0 .. n_out-1`` span the view from end to end, as a level's pixels span
    its window (both ends included); keyframe pixel ``i`` covers ``[i - 1/2, i + 1/2]``.

    Parameters
    ----------
    n_out, n_key : int
        Pixels of the output and of the keyframe along this axis.
    zoom : float
        View width over keyframe width.
    offset : float
        (view centre - keyframe centre) / keyframe width.

    Returns
    -------
    start, stop : int
        The covered output pixels, ``start:stop`` (contiguous; empty when ``start == stop``).
    index : numpy.ndarray of intp
        Keyframe pixel of each covered output pixel.

    Examples
    --------
    >>> sample_axis(4, 4, 1.0, 0.0)
    (0, 4, array([0, 1, 2, 3]))
    >>> sample_axis(8, 4, 2.0, 0.0)  # the keyframe covers the middle half
    (2, 6, array([0, 1, 2, 3]))
    """
    u = np.linspace(-0.5, 0.5, n_out)
    index = np.floor((offset + u * zoom + 0.5) * (n_key - 1) + 0.5).astype(np.intp)
    inside = np.flatnonzero((index >= 0) & (index < n_key))
    if inside.size == 0:
        return 0, 0, index[:0]
    return int(inside[0]), int(inside[-1]) + 1, index[inside[0]:inside[-1] + 1]


def _packed(rgb: np.ndarray) -> np.ndarray:
    """RGB triples (uint8, ..., 3) as one uint32 each, bytes R, G, B, 0 in memory order.

    A frame is assembled from packed pixels: gathering one 4-byte word per pixel is several
    times faster than gathering three bytes.
    """
    rgba = np.zeros(rgb.shape[:-1] + (4,), dtype=np.uint8)
    rgba[..., :3] = rgb
    return rgba.view(np.uint32)[..., 0]


def _fade_in(under: np.ndarray, over: np.ndarray, alpha: float) -> None:
    """Draw packed pixels ``over`` onto packed ``under`` (in place) with opacity ``alpha``."""
    under = under.view(np.uint8)
    under[...] = ((1.0 - alpha) * under + alpha * over.view(np.uint8) + 0.5).astype(np.uint8)


def _unpacked(frame: np.ndarray) -> np.ndarray:
    """A packed frame (row 0 at the bottom) as RGB bytes, row 0 at the top."""
    height, width = frame.shape
    return np.ascontiguousarray(frame.view(np.uint8).reshape(height, width, 4)[::-1, :, :3])


def _gather(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``image[rows][:, cols]`` by one flat take, the fastest numpy gather for this."""
    return image.ravel().take(rows[:, None] * image.shape[1] + cols[None, :])


class _Colours:
    """Per-keyframe colours for one run, computed once and dropped when no longer needed.

    The keyframes are score images of the store, named by their paths (a zoom's levels'
    scores, or one level's snapshots). For a colormap: equalized values of keyframe ``j``
    against the rank reference of keyframe ``m``, for the pairs the current segment uses.
    For ``"classes"``: the class colours, which need no reference. Colours come out packed
    (see :func:`_packed`).
    """

    def __init__(self, root: zarr.Group, paths: list[str], cmap: str):
        self.root, self.paths = root, paths
        self.scores: dict[int, np.ndarray] = {}
        self.values: dict[tuple[int, int | None], np.ndarray] = {}
        colormap = score_colormap(cmap)
        self.lut = (None if colormap is None
                    else _packed(colormap(np.arange(_LUT_SIZE), bytes=True)[:, :3]))

    def _score(self, j: int) -> np.ndarray:
        if j not in self.scores:
            self.scores[j] = self.root[self.paths[j]][:]
        return self.scores[j]

    def _value(self, j: int, m: int | None) -> np.ndarray:
        """Keyframe ``j`` equalized against keyframe ``m``; its class colours if ``m`` is None."""
        if (j, m) not in self.values:
            if m is None:
                self.values[j, m] = _packed(CLASS_COLOURS)[classes(self._score(j))]
            else:
                self.values[j, m] = equalize(self._score(j), None if j == m else self._score(m))
        return self.values[j, m]

    def enter(self, k: int) -> None:
        """Keep only what segment ``k`` (keyframes k, k+1, k+2; references k, k+1) uses."""
        shown = range(k, k + 3)
        self.scores = {j: v for j, v in self.scores.items() if j in shown}
        self.values = {jm: v for jm, v in self.values.items()
                       if jm[0] in shown and jm[1] in (k, k + 1, None)}

    def _colour(self, j: int, k: int, weight: float, pick) -> np.ndarray:
        """Packed colours of keyframe ``j``'s pixels ``pick(image)``, references k and k + 1."""
        if self.lut is None:
            return pick(self._value(j, None))
        values = pick(self._value(j, k))
        if weight > 0:
            values = (1.0 - weight) * values + weight * pick(self._value(j, k + 1))
        # colour.to_rgb's look-up: matplotlib puts x in [0, 1] into bin floor(x * N).
        bins = (values + 1.0) / 2.0 * _LUT_SIZE
        np.minimum(bins, _LUT_SIZE - 1, out=bins)
        return self.lut[bins.astype(np.intp)]

    def sample(self, j: int, k: int, weight: float, rows: np.ndarray, cols: np.ndarray):
        """Packed colours of keyframe ``j`` at ``rows x cols`` (both non-decreasing)."""
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        if (r1 - r0) * (c1 - c0) < rows.size * cols.size:
            # Zoomed in: colour the stored pixels in view, then repeat them.
            block = self._colour(j, k, weight, lambda image: image[r0:r1, c0:c1])
            return _gather(block, rows - r0, cols - c0)
        # Zoomed out (a keyframe larger than the frame): colour only the pixels shown.
        return self._colour(j, k, weight, lambda image: _gather(image, rows, cols))


class _Overlay:
    """A border, the view's axis names and end values and a caption (top right), drawn over a
    frame.

    Text is drawn by matplotlib on one transparent Agg canvas made once: each frame restores
    its empty background and draws only the texts (matplotlib's blitting), as a deep view's
    axis names change with it (:func:`fractalsweep.render.axis_labels`). An axis name is
    shrunk where it would not fit between its end labels (a deep view's, in a small frame).
    Everything else in a frame is plain numpy.
    """

    def __init__(self, size: tuple[int, int]):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        width, height = size
        self.fig = Figure(figsize=(width / 100, height / 100), dpi=100)
        self.fig.patch.set_alpha(0.0)
        self.canvas = FigureCanvasAgg(self.fig)
        font_px = max(8.0, min(width, height) / 45)
        mx, my = 2.2 * font_px / width, 2.2 * font_px / height  # keeps the corners apart
        self.points = font_px * 0.72  # at 100 dpi
        style = {"color": "white", "fontsize": self.points,
                 "bbox": {"boxstyle": "square,pad=0.25", "facecolor": "black", "alpha": 0.5,
                          "linewidth": 0}}
        text = partial(self.fig.text, animated=True, **style)  # drawn per frame only
        self.x_texts = (text(0.5, 0.01, "", ha="center", va="bottom"),
                        text(mx, 0.01, "", ha="left", va="bottom"),
                        text(0.99, 0.01, "", ha="right", va="bottom"))
        self.y_texts = (text(0.01, 0.5, "", ha="left", va="center", rotation=90),
                        text(0.01, my, "", ha="left", va="bottom", rotation=90),
                        text(0.01, 0.99, "", ha="left", va="top", rotation=90))
        self.caption = text(0.99, 0.99, "", ha="right", va="top")
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)
        self.border = max(1, min(width, height) // 256)

    def _fit(self, along: int, name, lo, hi) -> None:
        """Centre an axis name between its end labels (``along`` 0: the x axis, 1: the y
        axis), shrunk where it is longer than the room there."""
        from .render import shrink_to

        renderer = self.canvas.get_renderer()
        pad = self.points * 100 / 72 * 0.25  # each text's box reaches this far past it
        start = lo.get_window_extent(renderer).get_points()[1, along] + 2 * pad
        stop = hi.get_window_extent(renderer).get_points()[0, along] - 2 * pad
        name.set_fontsize(self.points)
        shrink_to(name, stop - start - 2 * pad, along, renderer)
        position = list(name.get_position())
        position[along] = (start + stop) / 2 / self.fig.bbox.size[along]
        name.set_position(position)

    def draw(self, frame: np.ndarray, axes: tuple[tuple[str, list[str]], ...],
             caption: str = "") -> None:
        """Draw onto ``frame`` each axis's name and end labels
        (:func:`fractalsweep.render.axis_labels`) and the caption."""
        self.canvas.restore_region(self.background)
        for along, artists, (name, ends) in zip((0, 1), (self.x_texts, self.y_texts), axes):
            for artist, value in zip(artists, (name, *ends)):
                artist.set_text(value)
            self._fit(along, *artists)
            for artist in artists:
                self.fig.draw_artist(artist)
        if caption:
            self.caption.set_text(caption)
            self.fig.draw_artist(self.caption)
        rgba = np.asarray(self.canvas.buffer_rgba())
        h, w = min(rgba.shape[0], frame.shape[0]), min(rgba.shape[1], frame.shape[1])
        # Blend only where there is text: Agg's buffer is straight (not premultiplied) alpha.
        where = np.nonzero(rgba[:h, :w, 3])
        alpha = rgba[:h, :w, 3][where][:, None].astype(np.uint16)
        under = frame[:h, :w][where].astype(np.uint16)
        frame[where] = (under * (255 - alpha) + rgba[:h, :w, :3][where] * alpha + 127) // 255
        b = self.border
        frame[:b], frame[-b:], frame[:, :b], frame[:, -b:] = 255, 255, 255, 255


@dataclass(frozen=True)
class ZoomPlan:
    """Everything fixed for one run: the ladder, the depth of each frame, the geometry."""

    store_path: str
    ladder: list[Keyframe]
    depths: np.ndarray  # s of each frame, in the order shown
    size: tuple[int, int]  # (width, height)
    cmap: str
    overlay: bool
    octaves: np.ndarray  # (axis, keyframe), see _geometry
    offsets: np.ndarray

    def view_axes(self, k: int, view: np.ndarray) -> tuple[tuple[str, list[str]], ...]:
        """Name and end labels of each axis of the view at log2 depth ``view`` (per axis),
        as hyperparameter values (:func:`fractalsweep.render.axis_labels`)."""
        from .render import axis_labels

        out = []
        with localcontext(CONTEXT):
            for a in (0, 1):
                kf = self.ladder[k]
                half = kf.width[a] * Decimal(2.0 ** (self.octaves[a, k] - view[a])) / 2
                lo, hi = self.ladder[-1].centre[a] - half, self.ladder[-1].centre[a] + half
                if kf.scale[a] == "log":
                    lo, hi = Decimal(10) ** lo, Decimal(10) ** hi
                out.append(axis_labels(kf.label[a], [lo, hi]))
        return tuple(out)

    def frames(self):
        """Yield every frame, uint8 (height, width, 3), row 0 at the top."""
        octaves, offsets = self.octaves, self.offsets
        width, height = self.size
        n_key = len(self.ladder)
        colours = _Colours(zarr.open_group(self.store_path, mode="r"),
                           [f"levels/{kf.level}/score" for kf in self.ladder], self.cmap)
        overlay = _Overlay(self.size) if self.overlay else None
        for s in self.depths:
            k = min(int(s), n_key - 2)
            t = float(s) - k
            weight = blend_weight(t)
            colours.enter(k)
            view = octaves[:, k] + t * (octaves[:, k + 1] - octaves[:, k])  # log2 depth per axis
            frame = np.zeros((height, width), dtype=np.uint32)  # packed; row 0 = bottom
            for j, alpha in ((k, 1.0), (k + 1, 1.0), (k + 2, t)):
                if j >= n_key or alpha == 0.0:
                    continue
                zoom = 2.0 ** (octaves[:, j] - view)
                nx, ny = self.ladder[j].resolution
                c0, c1, cols = sample_axis(width, nx, zoom[0], offsets[0, j])
                r0, r1, rows = sample_axis(height, ny, zoom[1], offsets[1, j])
                if c0 == c1 or r0 == r1:
                    continue
                packed = colours.sample(j, k, weight, rows, cols)
                if alpha == 1.0:
                    frame[r0:r1, c0:c1] = packed
                else:
                    _fade_in(frame[r0:r1, c0:c1], packed, alpha)
            frame = _unpacked(frame)
            if overlay is not None:
                overlay.draw(frame, self.view_axes(k, view))
            yield frame


def _check_options(frames_per_octave, size, cmap, zoom) -> None:
    """Refuse, with one line, options no animation can be made with."""
    if not is_integer(frames_per_octave) or not 1 <= frames_per_octave <= MAX_FRAMES_PER_OCTAVE:
        raise AnimationError(f"frames_per_octave = {frames_per_octave!r}: expected an integer "
                             f"from 1 to {MAX_FRAMES_PER_OCTAVE}")
    if (not is_sequence(size) or len(size) != 2
            or not all(is_integer(n) and n >= 2 for n in size)):
        raise AnimationError(f"size = {size!r}: expected (width, height), integers >= 2")
    if not isinstance(zoom, str) or zoom not in ("in", "out"):
        raise AnimationError(f"zoom = {zoom!r}: valid values are 'in', 'out'")
    score_colormap(cmap)  # an unknown name, or no name, fails here, once


def plan_zoom(store_path, frames_per_octave, size, cmap, zoom, ease, overlay) -> ZoomPlan:
    """Check the options, find the ladder and lay out the frames."""
    _check_options(frames_per_octave, size, cmap, zoom)
    ladder = find_ladder(store_path)
    depths = zoom_schedule(len(ladder) - 1, frames_per_octave, ease)
    return ZoomPlan(str(store_path), ladder, depths if zoom == "in" else depths[::-1],
                 (int(size[0]), int(size[1])), cmap, overlay, *geometry(ladder))


@dataclass(frozen=True)
class StepsPlan:
    """An animation over training steps: one level's score snapshots as keyframes.

    Keyframe ``j`` is the score after ``steps[j]`` steps (array ``arrays[j]``); between
    keyframes ``k`` and ``k + 1`` keyframe ``k + 1`` fades in over ``k`` with alpha ``t``,
    and the rank reference moves from ``k`` to ``k + 1`` with weight ``sin^2(pi t / 2)``,
    as in a zoom (:class:`ZoomPlan`), with the view fixed on the level's window.
    """

    store_path: str
    level: int
    arrays: list[str]
    steps: list[int]
    depths: np.ndarray  # position of each frame in keyframes, in the order shown
    size: tuple[int, int]
    cmap: str
    overlay: bool
    resolution: tuple[int, int]  # (nx, ny) of the level
    axes: tuple[tuple[str, list[str]], ...]  # render.axis_labels of the ends, per axis

    def frames(self):
        """Yield every frame, uint8 (height, width, 3), row 0 at the top."""
        width, height = self.size
        colours = _Colours(zarr.open_group(self.store_path, mode="r"),
                           [f"levels/{self.level}/{name}" for name in self.arrays], self.cmap)
        overlay = _Overlay(self.size) if self.overlay else None
        cols = sample_axis(width, self.resolution[0], 1.0, 0.0)[2]
        rows = sample_axis(height, self.resolution[1], 1.0, 0.0)[2]
        for s in self.depths:
            k = min(int(s), len(self.arrays) - 2)
            t = float(s) - k
            weight = blend_weight(t)
            colours.enter(k)
            frame = colours.sample(k, k, weight, rows, cols)
            if t > 0:
                _fade_in(frame, colours.sample(k + 1, k, weight, rows, cols), t)
            frame = _unpacked(frame)
            if overlay is not None:
                overlay.draw(frame, self.axes, f"{self.steps[k + round(t)]} steps")
            yield frame


def snapshots_of(store_path, level: int) -> tuple[list[str], list[int]]:
    """A complete level's score snapshots, fewest steps first, and their step counts; the
    level's ``score`` ends the list where no snapshot is taken at the last step.

    Raises
    ------
    AnimationError
        If the level is not complete or holds no snapshot before the last step.
    """
    root = store.open_root(str(store_path))
    lvl = store.open_level(root, level)
    if not lvl.done.all():
        raise AnimationError(f"level {level} is not complete ({int(lvl.done.sum())}/"
                             f"{lvl.done.size} tiles); finish it before animating its steps")
    steps = sorted(int(name.removeprefix("score_at_")) for name in lvl.arrays
                   if name.startswith("score_at_"))
    if not steps:
        raise AnimationError(f"level {level} holds no score snapshots; compute the job with "
                             "measures.snapshots = [...] (docs/measures.md)")
    arrays = [snapshot_name(n) for n in steps]
    last = store.config_of(str(store_path)).training.steps
    if steps[-1] != last:
        arrays, steps = [*arrays, "score"], [*steps, last]
    if len(steps) < 2:
        raise AnimationError(f"level {level} holds one snapshot, at the last step ({last}); "
                             "an animation over steps needs a snapshot before it")
    return arrays, steps


def plan_steps(store_path, level, frames_per_octave, size, cmap, zoom, ease,
               overlay) -> StepsPlan:
    """Check the options, find the level's snapshots and lay out the frames:
    ``frames_per_octave`` frames from one snapshot to the next; ``zoom = "out"`` plays
    training backwards."""
    from .render import axis_labels

    _check_options(frames_per_octave, size, cmap, zoom)
    arrays, steps = snapshots_of(store_path, level)
    lvl = store.open_level(store.open_root(str(store_path)), level)
    view = lvl.group.attrs["view"]
    depths = zoom_schedule(len(arrays) - 1, frames_per_octave, ease)
    return StepsPlan(str(store_path), level, arrays, steps,
                     depths if zoom == "in" else depths[::-1], (int(size[0]), int(size[1])), cmap,
                     overlay, tuple(lvl.group.attrs["resolution"]),
                     tuple(axis_labels(view[a]["label"], store.label_values(lvl, a)[[0, -1]])
                           for a in "xy"))


OVER = ("zoom", "steps")  # what an animation goes through


def plan(store_path, over, level, frames_per_octave, size, cmap, zoom, ease, overlay):
    """The plan of an animation over a zoom's ladder (:class:`ZoomPlan`) or over the
    training steps of ``level`` (:class:`StepsPlan`; level 0 when None)."""
    if not isinstance(over, str) or over not in OVER:
        raise AnimationError(f"over = {over!r}: valid values are {', '.join(OVER)}")
    ease, overlay = flag("ease", ease), flag("overlay", overlay)
    if over == "steps":
        return plan_steps(store_path, 0 if level is None else level, frames_per_octave, size,
                          cmap, zoom, ease, overlay)
    if level is not None:
        raise AnimationError("level picks the level of an animation over steps; a zoom goes "
                             "through the keyframe ladder")
    return plan_zoom(store_path, frames_per_octave, size, cmap, zoom, ease, overlay)


def render_frames(store_path, *, frames_per_octave: int = 45, size=(512, 512),
                  cmap: str = "paper", zoom: str = "in", ease: bool = True,
                  overlay: bool = False, over: str = "zoom", level: int | None = None):
    """The frames of a store's zoom animation (or, with ``over="steps"``, of a level's
    snapshots), one at a time.

    The options are checked and the ladder (the snapshots) found at the call; frames are
    made as the returned generator is consumed. See :func:`animate` for the parameters.

    Returns
    -------
    generator of numpy.ndarray
        uint8 frames of shape (height, width, 3), row 0 at the top.

    Examples
    --------
    >>> frames = render_frames("zoom.zarr", size=(256, 256))  # doctest: +SKIP
    >>> next(frames).shape  # doctest: +SKIP
    (256, 256, 3)
    """
    return plan(store_path, over, level, frames_per_octave, size, cmap, zoom, ease,
                overlay).frames()


