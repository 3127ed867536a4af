"""Zoom animations: a store's keyframe ladder drawn as one smooth exponential zoom; and
animations over training steps: one level's score snapshots, the fractal forming.

The ladder is found among the store's levels (:func:`fractalsweep.levels.find_ladder`), the
path of the zoom laid out (:mod:`fractalsweep.keyframes`), the frames composed from the
stored scores (:mod:`fractalsweep.frames`) and encoded (:mod:`fractalsweep.video`). An
animation over steps takes its keyframes from the level's snapshots
(:func:`fractalsweep.frames.snapshots_of`) and goes through the same path.
"""

from __future__ import annotations

import math
import numbers
import time

from .config import is_integer, is_number
from .decimals import is_sequence
from .errors import AnimationError
from .execution import flag
from .frames import plan
from .render import output_path
from .video import MIN_SIDE, choose_codec, encode

__all__ = ["animate"]

MAX_SIDE = 8192  # 8K frames: beyond, a frame's working arrays run to gigabytes
# A GIF's frame delays are whole hundredths of a second, and browsers play delays under 0.02 s
# as 0.1 s; SVT-AV1 refuses rates above 240; otherwise, high-speed camera rates.
MAX_FPS = {"gif": 50, "av1": 240, "h264": 1000, "hevc": 1000}


def animate(store_path, out, *, fps: float = 30, frames_per_octave: int = 45,
            size=(512, 512), cmap: str = "paper", zoom: str = "in", ease: bool = True,
            overlay: bool = False, progress: bool = True, codec: str | None = None,
            over: str = "zoom", level: int | None = None) -> dict:
    """Write the zoom through a store's keyframe ladder (or a level's training steps) as a
    video or a GIF.

    Parameters
    ----------
    store_path : str or path-like
        A fractalsweep store holding a keyframe ladder (:func:`fractalsweep.levels.find_ladder`),
        or, with ``over="steps"``, a level with score snapshots.
    out : str or path-like
        Output file: ``.mp4``, ``.mov`` or ``.mkv`` (video) or ``.gif`` (small previews).
    fps : float
        Frames per second: at most 50 for a GIF, 240 for AV1, 1000 otherwise (:data:`MAX_FPS`).
    frames_per_octave : int
        Frames per factor-2 zoom (at full speed, see :func:`fractalsweep.keyframes.zoom_schedule`);
        over steps, frames from one snapshot to the next.
    size : (int, int)
        Frame ``(width, height)`` in pixels; even for video (yuv420p halves the chroma).
        The view's x range spans the width and its y range the height.
    cmap : str
        ``"paper"``, ``"classes"`` or a matplotlib colormap name, as in
        :func:`fractalsweep.colour.to_rgb`.
    zoom : {"in", "out"}
        From the widest keyframe to the deepest, or back (over steps: forwards in
        training, or back).
    ease : bool
        Start and stop the zoom smoothly.
    overlay : bool
        Draw a border and the view's end values on each frame (over steps, also the
        number of steps).
    progress : bool
        Show a progress bar (frames, rate, ETA) on stderr.
    codec : {"h264", "hevc", "av1"}, optional
        Video codec; by default H.264, or HEVC for frames larger than about 4K
        (:func:`fractalsweep.video.choose_codec`). Refused for ``.gif``, which has its own
        encoding.
    over : {"zoom", "steps"}
        ``"steps"``: the snapshots of ``level`` (measures.snapshots, docs/measures.md)
        from the fewest steps to the score after all of them, the colouring reference
        blended between snapshots as between a zoom's keyframes.
    level : int, optional
        The level of an animation over steps (default 0).

    Returns
    -------
    dict
        ``path``, ``frames``, ``size`` (width, height), ``codec`` (``"h264"``, ``"hevc"``,
        ``"av1"`` or ``"gif"``), ``fps``, ``seconds`` (the video's duration), ``elapsed``
        (wall-clock seconds spent) and ``levels`` (the keyframes' level indices); over
        steps, ``steps``: the keyframes' step counts.

    Raises
    ------
    AnimationError
        On a bad option, a store without a ladder, an encoder the bundled ffmpeg lacks, or
        ffmpeg failing while it encodes (nothing is left at ``out``).
    ConfigError
        On an output file that cannot be written (:func:`fractalsweep.render.output_path`).

    Examples
    --------
    >>> animate("zoom.zarr", "zoom.mp4", progress=False)  # doctest: +SKIP
    {'path': 'zoom.mp4', 'frames': 136, 'size': (512, 512), 'codec': 'h264', ...}
    """
    start = time.perf_counter()
    flag("progress", progress)
    out = output_path(out, "out", picture=False)
    if not (is_number(fps) and 0 < fps < math.inf):
        raise AnimationError(f"fps = {fps!r}: expected a finite number > 0")
    fps = fps if isinstance(fps, numbers.Rational) else float(fps)  # Fraction refuses np.float32
    if is_sequence(size) and any(is_integer(n) and n > MAX_SIDE for n in size):
        raise AnimationError(f"size = {size!r}: at most {MAX_SIDE} pixels a side")
    kind = choose_codec(out.suffix, (1, 1), codec)  # or HEVC past 4K, whose limit is H.264's
    if fps > MAX_FPS[kind]:  # checked before any reading
        raise AnimationError(f"fps = {fps!r}: at most {MAX_FPS[kind]} for "
                             + ("a GIF" if kind == "gif" else f"{kind} video"))
    layout = plan(store_path, over, level, frames_per_octave, size, cmap, zoom, ease, overlay)
    chosen = choose_codec(out.suffix, layout.size, codec)
    if chosen != "gif" and (layout.size[0] % 2 or layout.size[1] % 2):
        raise AnimationError(f"size = {size!r}: video needs an even width and height (yuv420p)")
    if min(layout.size) < MIN_SIDE.get(chosen, 0):
        raise AnimationError(f"size = {size!r}: {chosen} needs at least {MIN_SIDE[chosen]} "
                             "pixels a side")
    frames = len(layout.depths)
    encode(layout.frames(), out, layout.size, fps, chosen, frames, progress)
    keyframes = ({"levels": [layout.level], "steps": layout.steps} if over == "steps"
                 else {"levels": [kf.level for kf in layout.ladder]})
    return {"path": str(out), "frames": frames, "size": layout.size, "codec": chosen,
            "fps": fps, "seconds": frames / float(fps),
            "elapsed": time.perf_counter() - start, **keyframes}
