"""The path of a zoom through a keyframe ladder: the depth of every frame, the rank-reference
blend between keyframes, and where each keyframe sits relative to the zoom's target.

The zoom is parametrised by the *depth* ``s`` in keyframes: ``s = k + t`` lies between
keyframes ``k`` and ``k + 1`` (``t`` in [0, 1)), where the view, centred on the deepest
keyframe's centre, is ``w_k * (w_{k+1} / w_k) ** t`` wide (docs/science.md, section 9).
With ``ease`` the zoom speeds up smoothly over its first half octave and slows down over its
last; in between it runs at exactly ``frames_per_octave`` frames per factor-2 zoom.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import numpy as np

from .decimals import CONTEXT
from .levels import Keyframe

__all__ = ["blend_weight", "geometry", "zoom_schedule"]


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


def geometry(ladder: list[Keyframe]) -> tuple[np.ndarray, np.ndarray]:
    """Per axis and keyframe: log2(widest width / width), and (target - centre) / width.

    The deepest keyframe's centre is the zoom target. Both are small floats computed from
    the exact decimal windows, so a zoom of any depth keeps full float64 accuracy.
    """
    target = ladder[-1].centre
    with localcontext(CONTEXT):
        log2 = Decimal(2).ln()
        octaves = [[float((ladder[0].width[a] / kf.width[a]).ln() / log2) for kf in ladder]
                   for a in (0, 1)]
        offsets = [[float((target[a] - kf.centre[a]) / kf.width[a]) for kf in ladder]
                   for a in (0, 1)]
    return np.array(octaves), np.array(offsets)


