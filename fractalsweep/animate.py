"""Zoom animations: a store's keyframe ladder drawn as one smooth exponential zoom.

A *keyframe ladder* is a run of complete levels of one store that share a centre, each twice
as wide as the next (science.md 9). Widths and centres are taken per axis from the exact
decimal window of each level: in log10 units on a log axis (width = log10(hi / lo), centre =
the mean of log10 lo and log10 hi), plainly on a linear axis (hi - lo and the midpoint).

The zoom is parametrised by the *depth* ``s`` in keyframes: ``s = k + t`` lies between
keyframes ``k`` and ``k + 1`` (``t`` in [0, 1)), where the view, centred on the deepest
keyframe's centre, is ``w_k * (w_{k+1} / w_k) ** t`` wide. A frame is composed from the
stored scores with numpy only:

* keyframe ``k`` fills the view, ``k + 1`` is drawn over it where it covers the view, and
  ``k + 2`` fades in over both with alpha ``t``;
* every pixel is the nearest stored pixel (index arithmetic and one gather), never an
  interpolated one: pixels are the sampled hyperparameter points, and the converged /
  diverged boundary must stay a hard colour jump (science.md 7);
* colours are the paper's per-image rank equalization, with the rank reference moving
  smoothly from keyframe ``k`` to ``k + 1``: each visible keyframe ``j`` is equalized against
  both references and the two values are mixed with weight ``sin^2(pi t / 2)`` before the
  colormap look-up. The mix is continuous across keyframes (at ``t = 1`` the reference is
  ``k + 1`` alone, as at the start of the next segment), starts and ends with zero slope, and
  never crosses the middle band, since both values of a pixel belong to its own class. Each
  (keyframe, reference) pair is equalized once, when its segment is first reached, and
  dropped when no later segment of the run needs it, so memory does not grow however
  long the ladder is (at most six equalized and three score images are held).

With ``ease`` the zoom speeds up smoothly over its first half octave and slows down over its
last; in between it runs at exactly ``frames_per_octave`` frames per factor-2 zoom.

Frames are streamed one at a time to the ``ffmpeg`` binary shipped in the ``imageio-ffmpeg``
wheel (nothing but pip is needed on a fresh machine): H.264, yuv420p and ``+faststart`` for
``.mp4`` / ``.mov`` / ``.mkv``, HEVC above the H.264 level 5.2 frame size (about 4K), and
``.gif`` through ffmpeg's palette filters. A file is written under a temporary name and moved
into place once ffmpeg has finished, so an interrupted run never leaves a truncated video at the output path.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np
import zarr

from . import store
from .colour import CLASS_COLOURS, _colormap, classes, equalize
from .config import AxisConfig
from .errors import AnimationError
from .grid import PRECISION
from .zoom import window

__all__ = ["AnimationError", "Keyframe", "animate", "blend_weight", "choose_codec",
           "find_ladder", "render_frames", "sample_axis", "zoom_schedule"]

#: H.264 level 5.2 allows 36864 macroblocks per frame (4096 x 2304), the largest frame common
#: hardware decoders play; above it the automatic choice is HEVC.
H264_MAX_MACROBLOCKS = 36864
VIDEO_SUFFIXES = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}
ENCODERS = {"h264": ("libx264",), "hevc": ("libx265",), "av1": ("libsvtav1", "libaom-av1")}
_ENCODER_ARGS = {  # visually lossless for this content, the codecs' usual speed presets
    "libx264": ["-preset", "medium", "-crf", "18"],
    "libx265": ["-preset", "medium", "-crf", "20", "-tag:v", "hvc1",  # hvc1: plays on Apple
                "-x265-params", "log-level=error"],
    "libsvtav1": ["-preset", "8", "-crf", "30"],
    "libaom-av1": ["-cpu-used", "6", "-crf", "30", "-b:v", "0"],
}
# Convert with BT.709 and say so: players assume BT.709 for HD, so ffmpeg's untagged default
# (BT.601) would shift the colours slightly. setparams tags every frame, which reaches the
# stream header where the -color_* output options alone do not.
_COLOUR_ARGS = ["-vf", ("scale=out_color_matrix=bt709:out_range=tv,"
                        "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv")]
# One palette per frame: bounded memory however long the zoom (a global palette would make
# ffmpeg hold every frame), and a frame's own 256 colours follow the zoom's changing colours.
_GIF_ARGS = ["-vf", ("split[a][b];[a]palettegen=stats_mode=single[p];"
                     "[b][p]paletteuse=new=1:dither=bayer:bayer_scale=3"), "-loop", "0"]
_LUT_SIZE = 256  # matplotlib's default colormap resolution, so frames match colour.to_rgb


@dataclass(frozen=True)
class Keyframe:
    """One level of a store placed on the zoom: its window per axis as (x, y) pairs.

    ``centre`` and ``width`` are exact decimals in axis units (log10 units on a log axis).
    """

    level: int
    centre: tuple[Decimal, Decimal]
    width: tuple[Decimal, Decimal]
    scale: tuple[str, str]
    label: tuple[str, str]
    resolution: tuple[int, int]  # (nx, ny)


def _keyframe(index: int, group: zarr.Group) -> Keyframe:
    view = group.attrs["view"]
    windows = [window(AxisConfig(lo=view[a]["lo"], hi=view[a]["hi"], scale=view[a]["scale"]))
               for a in "xy"]
    return Keyframe(level=index, centre=(windows[0][0], windows[1][0]),
                    width=(windows[0][1], windows[1][1]),
                    scale=(view["x"]["scale"], view["y"]["scale"]),
                    label=(view["x"]["label"], view["y"]["label"]),
                    resolution=tuple(group.attrs["resolution"]))


def _is_next(wide: Keyframe, deep: Keyframe, rtol: float) -> bool:
    """Whether ``deep`` is the next keyframe after ``wide``: same centre, half as wide."""
    if wide.scale != deep.scale:
        return False
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return all(abs(wide.width[a] / deep.width[a] - 2) <= 2 * Decimal(rtol)
                   and abs(wide.centre[a] - deep.centre[a]) <= Decimal(rtol) * deep.width[a]
                   for a in (0, 1))


def find_ladder(store_path, *, rtol: float = 1e-3) -> list[Keyframe]:
    """The keyframe ladder among a store's complete levels, widest first.

    A level is complete when every tile marker is set. Level ``b`` follows level ``a`` when,
    on both axes, ``a`` is twice as wide as ``b`` and the centres differ by less than
    ``rtol`` times ``b``'s width (a fraction of a pixel at any usual resolution, and room for
    windows written with finitely many digits). The longest such chain is returned; among
    equally long chains, the one whose deepest level has the lowest index.

    Parameters
    ----------
    store_path : str or path-like
        A fractalsweep store.
    rtol : float
        Relative tolerance on the width ratio and on the centre, see above.

    Returns
    -------
    list of Keyframe
        At least two keyframes, widest first.

    Raises
    ------
    AnimationError
        If no two complete levels form a ladder.
    """
    root = store.open_root(str(store_path))
    levels = root["levels"]
    indices = store.level_indices(root)
    complete = [_keyframe(i, levels[str(i)]) for i in indices
                if levels[str(i)]["tiles"][:].all()]
    # Longest chain ending at each level; a parent is always wider, so visit widest first.
    complete.sort(key=lambda kf: (-(kf.width[0] * kf.width[1]), kf.level))
    chain: dict[int, list[Keyframe]] = {}
    for deep in complete:
        parents = [chain[w.level] for w in complete if w.level in chain and _is_next(w, deep, rtol)]
        chain[deep.level] = max(parents, key=len, default=[]) + [deep]
    best = max(sorted(chain.values(), key=lambda c: c[-1].level), key=len, default=[])
    if len(best) < 2:
        raise AnimationError(
            f"{store_path}: no zoom ladder: need at least 2 complete levels sharing a centre, "
            f"each twice as wide as the next ({len(complete)} of {len(indices)} levels complete,"
            f" longest chain {len(best)})")
    return best


def zoom_schedule(octaves: int, frames_per_octave: int, ease: bool = True) -> np.ndarray:
    """The depth ``s`` of every frame, from 0 (widest keyframe) to ``octaves`` (deepest).

    Without easing the zoom runs at a constant ``frames_per_octave`` frames per factor-2
    zoom. With easing, speed ramps up from zero over the first ``frames_per_octave`` frames
    (covering half an octave) and down over the last ones, with the speed profile of a
    smoothstep, so both speed and acceleration are continuous; this adds
    ``frames_per_octave`` frames in all and keeps the nominal speed in the middle.

    Parameters
    ----------
    octaves : int
        Number of factor-2 steps: keyframes minus one.
    frames_per_octave : int
        Frames per factor-2 zoom at full speed.
    ease : bool
        Ease in and out at the two ends of the whole zoom.

    Returns
    -------
    numpy.ndarray of float64
        Increasing, starting at exactly 0 and ending at exactly ``octaves``.

    Examples
    --------
    >>> zoom_schedule(1, 4, ease=False)
    array([0.  , 0.25, 0.5 , 0.75, 1.  ])
    >>> len(zoom_schedule(2, 4)), zoom_schedule(2, 4)[[0, -1]]
    (13, array([0., 2.]))
    """
    speed = 1.0 / frames_per_octave
    if not ease:
        return np.arange(octaves * frames_per_octave + 1) * speed
    ramp = frames_per_octave
    total = octaves * frames_per_octave + ramp
    tau = np.arange(total + 1, dtype=np.float64)

    def distance(x):  # integral of smoothstep(x) = 3x^2 - 2x^3: 1/2 at x = 1
        return x**3 - x**4 / 2

    s = speed * (tau - ramp / 2)
    head, tail = tau < ramp, tau > total - ramp
    s[head] = speed * ramp * distance(tau[head] / ramp)
    s[tail] = octaves - speed * ramp * distance((total - tau[tail]) / ramp)
    return s


def blend_weight(t: float) -> float:
    """Weight of keyframe ``k + 1``'s rank reference at ``t`` in [0, 1]: sin^2(pi t / 2).

    >>> blend_weight(0.0), round(blend_weight(0.5), 12), blend_weight(1.0)
    (0.0, 0.5, 1.0)
    """
    return math.sin(math.pi * t / 2) ** 2


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


def choose_codec(suffix: str, size: tuple[int, int], codec: str | None = None) -> str:
    """The codec for an output file: ``"gif"`` for ``.gif``, else ``codec`` or the automatic one.

    The automatic choice is H.264 up to H.264 level 5.2's frame size (36864 macroblocks,
    4096 x 2304), HEVC above it.

    Examples
    --------
    >>> choose_codec(".mp4", (512, 512)), choose_codec(".mp4", (4096, 4096))
    ('h264', 'hevc')
    """
    suffix = suffix.lower()
    if suffix == ".gif":
        return "gif"
    if suffix not in VIDEO_SUFFIXES:
        raise AnimationError(f"output must end in .gif or one of {', '.join(VIDEO_SUFFIXES)};"
                             f" got {suffix or 'no suffix'!r}")
    if codec is not None:
        if codec not in ENCODERS:
            raise AnimationError(f"codec {codec!r}: valid codecs are {', '.join(ENCODERS)}")
        return codec
    macroblocks = math.ceil(size[0] / 16) * math.ceil(size[1] / 16)
    return "h264" if macroblocks <= H264_MAX_MACROBLOCKS else "hevc"


def _packed(rgb: np.ndarray) -> np.ndarray:
    """RGB triples (uint8, ..., 3) as one uint32 each, bytes R, G, B, 0 in memory order.

    A frame is assembled from packed pixels: gathering one 4-byte word per pixel is several
    times faster than gathering three bytes.
    """
    rgba = np.zeros(rgb.shape[:-1] + (4,), dtype=np.uint8)
    rgba[..., :3] = rgb
    return rgba.view(np.uint32)[..., 0]


def _gather(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``image[rows][:, cols]`` by one flat take, the fastest numpy gather for this."""
    return image.ravel().take(rows[:, None] * image.shape[1] + cols[None, :])


class _Colours:
    """Per-keyframe colours for one run, computed once and dropped when no longer needed.

    For a colormap: equalized values of keyframe ``j`` against the rank reference of
    keyframe ``m``, for the pairs the current segment uses. For ``"classes"``: the class
    colours, which need no reference. Colours come out packed (see :func:`_packed`).
    """

    def __init__(self, root: zarr.Group, ladder: list[Keyframe], cmap: str):
        self.root, self.ladder = root, ladder
        self.scores: dict[int, np.ndarray] = {}
        self.values: dict[tuple[int, int | None], np.ndarray] = {}
        if cmap == "classes":
            self.lut = None
        else:
            colormap = _colormap("Spectral" if cmap == "paper" else cmap)
            self.lut = _packed(colormap(np.arange(_LUT_SIZE), bytes=True)[:, :3])

    def _score(self, j: int) -> np.ndarray:
        if j not in self.scores:
            self.scores[j] = self.root[f"levels/{self.ladder[j].level}/score"][:]
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
    """A border and the view's end values, drawn over a frame.

    Text is drawn by matplotlib on one transparent Agg canvas made once: the axis names are
    drawn there once, and each frame restores that background and draws only the four end
    values (matplotlib's blitting). Everything else in a frame is plain numpy.
    """

    def __init__(self, size: tuple[int, int], labels: tuple[str, str]):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        width, height = size
        self.fig = Figure(figsize=(width / 100, height / 100), dpi=100)
        self.fig.patch.set_alpha(0.0)
        self.canvas = FigureCanvasAgg(self.fig)
        font_px = max(8.0, min(width, height) / 45)
        mx, my = 2.2 * font_px / width, 2.2 * font_px / height  # keeps the corners apart
        style = {"color": "white", "fontsize": font_px * 0.72,  # points at 100 dpi
                 "bbox": {"boxstyle": "square,pad=0.25", "facecolor": "black", "alpha": 0.5,
                          "linewidth": 0}}
        text = self.fig.text
        text(0.5, 0.01, labels[0], ha="center", va="bottom", **style)
        text(0.01, 0.5, labels[1], ha="left", va="center", rotation=90, **style)
        ends = {"animated": True, **style}  # left out of the background, drawn per frame
        self.x_ends = (text(mx, 0.01, "", ha="left", va="bottom", **ends),
                       text(0.99, 0.01, "", ha="right", va="bottom", **ends))
        self.y_ends = (text(0.01, my, "", ha="left", va="bottom", rotation=90, **ends),
                       text(0.01, 0.99, "", ha="left", va="top", rotation=90, **ends))
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)
        self.border = max(1, min(width, height) // 256)

    def draw(self, frame: np.ndarray, ends: tuple[tuple[str, str], tuple[str, str]]) -> None:
        self.canvas.restore_region(self.background)
        for artists, (lo, hi) in zip((self.x_ends, self.y_ends), ends):
            for artist, value in zip(artists, (lo, hi)):
                artist.set_text(value)
                self.fig.draw_artist(artist)
        rgba = np.asarray(self.canvas.buffer_rgba())
        h, w = min(rgba.shape[0], frame.shape[0]), min(rgba.shape[1], frame.shape[1])
        # Blend only where there is text: Agg's buffer is straight (not premultiplied) alpha.
        where = np.nonzero(rgba[:h, :w, 3])
        alpha = rgba[:h, :w, 3][where][:, None].astype(np.uint16)
        under = frame[:h, :w][where].astype(np.uint16)
        frame[where] = (under * (255 - alpha) + rgba[:h, :w, :3][where] * alpha + 127) // 255
        b = self.border
        frame[:b], frame[-b:], frame[:, :b], frame[:, -b:] = 255, 255, 255, 255


def _geometry(ladder: list[Keyframe]) -> tuple[np.ndarray, np.ndarray]:
    """Per axis and keyframe: log2(widest width / width), and (target - centre) / width.

    The deepest keyframe's centre is the zoom target. Both are small floats computed from
    the exact decimal windows, so a zoom of any depth keeps full float64 accuracy.
    """
    target = ladder[-1].centre
    with localcontext() as ctx:
        ctx.prec = PRECISION
        log2 = Decimal(2).ln()
        octaves = [[float((ladder[0].width[a] / kf.width[a]).ln() / log2) for kf in ladder]
                   for a in (0, 1)]
        offsets = [[float((target[a] - kf.centre[a]) / kf.width[a]) for kf in ladder]
                   for a in (0, 1)]
    return np.array(octaves), np.array(offsets)


@dataclass(frozen=True)
class _Zoom:
    """Everything fixed for one run: the ladder, the depth of each frame, the geometry."""

    store_path: str
    ladder: list[Keyframe]
    depths: np.ndarray  # s of each frame, in the order shown
    size: tuple[int, int]  # (width, height)
    cmap: str
    overlay: bool
    octaves: np.ndarray  # (axis, keyframe), see _geometry
    offsets: np.ndarray

    def view_ends(self, k: int, view: np.ndarray) -> tuple[tuple[str, str], ...]:
        """End labels of the view at log2 depth ``view`` (per axis), as hyperparameter values."""
        from .render import end_labels

        out = []
        with localcontext() as ctx:
            ctx.prec = PRECISION
            for a in (0, 1):
                kf = self.ladder[k]
                half = kf.width[a] * Decimal(2.0 ** (self.octaves[a, k] - view[a])) / 2
                lo, hi = self.ladder[-1].centre[a] - half, self.ladder[-1].centre[a] + half
                if kf.scale[a] == "log":
                    lo, hi = Decimal(10) ** lo, Decimal(10) ** hi
                out.append(end_labels(float(lo), float(hi)))
        return tuple(out)

    def frames(self):
        """Yield every frame, uint8 (height, width, 3), row 0 at the top."""
        octaves, offsets = self.octaves, self.offsets
        width, height = self.size
        n_key = len(self.ladder)
        colours = _Colours(zarr.open_group(self.store_path, mode="r"), self.ladder, self.cmap)
        overlay = _Overlay(self.size, self.ladder[0].label) if self.overlay else None
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
                    under = frame[r0:r1, c0:c1].view(np.uint8)
                    over = packed.view(np.uint8)
                    under[...] = ((1.0 - alpha) * under + alpha * over + 0.5).astype(np.uint8)
            frame = np.ascontiguousarray(frame.view(np.uint8).reshape(height, width, 4)[::-1, :, :3])
            if overlay is not None:
                overlay.draw(frame, self.view_ends(k, view))
            yield frame


def _plan(store_path, frames_per_octave, size, cmap, zoom, ease, overlay) -> _Zoom:
    """Check the options, find the ladder and lay out the frames."""
    if isinstance(frames_per_octave, bool) or not isinstance(frames_per_octave, int) \
            or frames_per_octave < 1:
        raise AnimationError(f"frames_per_octave = {frames_per_octave!r}: expected an integer >= 1")
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 2 for n in size)):
        raise AnimationError(f"size = {size!r}: expected (width, height), integers >= 2")
    if zoom not in ("in", "out"):
        raise AnimationError(f"zoom = {zoom!r}: valid values are 'in', 'out'")
    if cmap != "classes":
        _colormap("Spectral" if cmap == "paper" else cmap)  # an unknown name fails here, once
    ladder = find_ladder(store_path)
    depths = zoom_schedule(len(ladder) - 1, frames_per_octave, ease)
    return _Zoom(str(store_path), ladder, depths if zoom == "in" else depths[::-1],
                 (size[0], size[1]), cmap, bool(overlay), *_geometry(ladder))


def render_frames(store_path, *, frames_per_octave: int = 45, size=(512, 512),
                  cmap: str = "paper", zoom: str = "in", ease: bool = True,
                  overlay: bool = False):
    """The frames of a store's zoom animation, one at a time.

    The options are checked and the ladder found at the call; frames are made as the
    returned generator is consumed. See :func:`animate` for the parameters.

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
    return _plan(store_path, frames_per_octave, size, cmap, zoom, ease, overlay).frames()


@lru_cache(maxsize=1)
def _ffmpeg() -> tuple[str, frozenset[str]]:
    """The bundled ffmpeg executable and the names of its encoders."""
    import imageio_ffmpeg

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    listing = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True,
                             text=True, check=True).stdout
    table = listing.split("------", 1)[-1]  # encoder rows follow the legend's dashed line
    return exe, frozenset(row.split()[1] for row in table.splitlines() if len(row.split()) > 1)


def _encoder(codec: str) -> str:
    exe, available = _ffmpeg()
    for name in ENCODERS[codec]:
        if name in available:
            return name
    raise AnimationError(f"the bundled ffmpeg ({exe}) has no {codec} encoder "
                         f"({' or '.join(ENCODERS[codec])}); choose another codec")


def _ffmpeg_command(path: str, suffix: str, codec: str, size, fps) -> list[str]:
    exe, _ = _ffmpeg()
    rate = str(Fraction(fps).limit_denominator(1001))
    cmd = [exe, "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
           "-pix_fmt", "rgb24", "-s", f"{size[0]}x{size[1]}", "-framerate", rate, "-i", "-",
           "-an"]
    if codec == "gif":
        return cmd + _GIF_ARGS + ["-f", "gif", path]
    encoder = _encoder(codec)
    # +faststart moves the index to the front (playable while downloading); MP4 and MOV only.
    faststart = [] if suffix == ".mkv" else ["-movflags", "+faststart"]
    return cmd + _COLOUR_ARGS + ["-c:v", encoder, *_ENCODER_ARGS[encoder], "-pix_fmt", "yuv420p",
                                 *faststart, "-f", VIDEO_SUFFIXES[suffix], path]


def animate(store_path, out, *, fps: float = 30, frames_per_octave: int = 45,
            size=(512, 512), cmap: str = "paper", zoom: str = "in", ease: bool = True,
            overlay: bool = False, progress: bool = True, codec: str | None = None) -> dict:
    """Write the zoom through a store's keyframe ladder as a video or a GIF.

    Parameters
    ----------
    store_path : str or path-like
        A fractalsweep store holding a keyframe ladder (:func:`find_ladder`).
    out : str or path-like
        Output file: ``.mp4``, ``.mov`` or ``.mkv`` (video) or ``.gif`` (small previews).
    fps : float
        Frames per second.
    frames_per_octave : int
        Frames per factor-2 zoom (at full speed, see :func:`zoom_schedule`).
    size : (int, int)
        Frame ``(width, height)`` in pixels; even for video (yuv420p halves the chroma).
        The view's x range spans the width and its y range the height.
    cmap : str
        ``"paper"``, ``"classes"`` or a matplotlib colormap name, as in
        :func:`fractalsweep.colour.to_rgb`.
    zoom : {"in", "out"}
        From the widest keyframe to the deepest, or back.
    ease : bool
        Start and stop the zoom smoothly.
    overlay : bool
        Draw a border and the view's end values on each frame.
    progress : bool
        Show a progress bar (frames, rate, ETA) on stderr.
    codec : {"h264", "hevc", "av1"}, optional
        Video codec; by default H.264, or HEVC for frames larger than about 4K
        (:func:`choose_codec`). Ignored for ``.gif``.

    Returns
    -------
    dict
        ``path``, ``frames``, ``size`` (width, height), ``codec`` (``"h264"``, ``"hevc"``,
        ``"av1"`` or ``"gif"``), ``fps``, ``seconds`` (the video's duration), ``elapsed``
        (wall-clock seconds spent) and ``levels`` (the keyframes' level indices).

    Raises
    ------
    AnimationError
        On a bad option, a store without a ladder, or an encoder the bundled ffmpeg lacks.
    RuntimeError
        If ffmpeg fails while encoding; nothing is left at ``out``.

    Examples
    --------
    >>> animate("zoom.zarr", "zoom.mp4", progress=False)  # doctest: +SKIP
    {'path': 'zoom.mp4', 'frames': 136, 'size': (512, 512), 'codec': 'h264', ...}
    """
    from tqdm import tqdm

    start = time.perf_counter()
    out = Path(out)
    if not (isinstance(fps, (int, float, Fraction)) and not isinstance(fps, bool) and fps > 0):
        raise AnimationError(f"fps = {fps!r}: expected a positive number")
    plan = _plan(store_path, frames_per_octave, size, cmap, zoom, ease, overlay)
    chosen = choose_codec(out.suffix, plan.size, codec)
    if not out.parent.is_dir():
        raise AnimationError(f"{out}: folder {out.parent} does not exist")
    if chosen != "gif" and (plan.size[0] % 2 or plan.size[1] % 2):
        raise AnimationError(f"size = {size!r}: video needs an even width and height (yuv420p)")
    partial = str(out.with_name(f".{out.name}.part"))
    cmd = _ffmpeg_command(partial, out.suffix.lower(), chosen, plan.size, fps)
    bar = tqdm(total=len(plan.depths), unit="frame", file=sys.stderr, disable=not progress,
               dynamic_ncols=True)
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
        try:
            try:
                for frame in plan.frames():
                    proc.stdin.write(frame)
                    bar.update(1)
            except BrokenPipeError:
                pass  # ffmpeg stopped early; its exit status and log say why, below
            finally:
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.close()  # end of input: ffmpeg finishes the file
            if proc.wait() != 0:
                log.seek(0)
                lines = log.read().decode(errors="replace").strip().splitlines()
                # The first line names the cause; the rest is ffmpeg unwinding.
                cause = re.sub(r"^(\[[^]]*\] ?)+", "", lines[0]) if lines else "no message"
                raise RuntimeError(f"ffmpeg failed (exit {proc.returncode}) writing {out}: {cause}")
            os.replace(partial, out)
        except BaseException:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            Path(partial).unlink(missing_ok=True)
            raise
        finally:
            bar.close()
    frames = len(plan.depths)
    return {"path": str(out), "frames": frames, "size": plan.size, "codec": chosen,
            "fps": fps, "seconds": frames / float(fps),
            "elapsed": time.perf_counter() - start,
            "levels": [kf.level for kf in plan.ladder]}
