"""What a sweep computes at each pixel: a training run (the default) or a classic fractal.

A system gives the per-pixel arrays it produces (``outputs``), the random inputs drawn once
per store (``draw``) and the computation of a batch of pixels (``compute``, whose ``kernel``
option only training systems read). The store, the
tiles, the cluster, zooms, ladders, animations and the dimension see only these three, so a
new system is one entry in :data:`SYSTEMS`.
"""

from __future__ import annotations

import numpy as np

from .fractals import FRACTALS, Fractal
from .grid import DOUBLE_DOUBLE

__all__ = ["SYSTEMS", "Training", "system_of"]


class Training:
    """A training run per pixel: the kernel (:mod:`fractalsweep.kernel`) on stored inputs."""

    legend = ("converged: fast \u2192 slow", "diverged: fast \u2192 slow blow-up")

    @staticmethod
    def outputs(cfg) -> dict[str, tuple[str, object]]:
        from .kernel import outputs

        return outputs(cfg)

    @staticmethod
    def draw(cfg) -> dict[str, np.ndarray]:
        from .streams import draw

        return draw(cfg)

    @staticmethod
    def compute(cfg, arrays, xs, ys, kernel: str = "auto") -> dict[str, np.ndarray]:
        """``kernel``: the float64/float32 kernel (:func:`fractalsweep.kernel.train`'s
        ``backend``); double-double has one kernel."""
        if cfg.dtype == DOUBLE_DOUBLE:
            from .ddkernel import train

            return train(cfg, arrays, xs, ys)
        from .kernel import train

        return train(cfg, arrays, xs, ys, backend=kernel)


SYSTEMS = {"training": Training(), **{kind: Fractal(kind) for kind in FRACTALS}}


def system_of(cfg):
    """The system a config computes (``system.kind``)."""
    return SYSTEMS[cfg.system.kind]
