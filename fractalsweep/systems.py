"""What a sweep computes at each pixel: a training run (the default) or a classic fractal.

A system gives the per-pixel arrays it produces (``outputs``), the random inputs drawn once
per store (``draw``), the computation of a batch of pixels (``compute``, whose ``kernel``
option only training systems read), the working dtypes it computes in (``dtypes``) and its
picture's ``legend``. The store, the tiles, the cluster, zooms, ladders, animations and the
dimension see only these, so a new system is one entry in :data:`SYSTEMS`.
"""

from __future__ import annotations

import numpy as np

from .config import single_run
from .errors import ConfigError
from .fractals import FRACTALS, Fractal
from .grid import DOUBLE_DOUBLE

__all__ = ["SYSTEMS", "Training", "check_computable", "system_of"]


class Training:
    """A training run per pixel: the kernel (:mod:`fractalsweep.kernel`) on stored inputs.

    With ``ensemble.seeds = K`` a pixel trains K networks (docs/measures.md): member 0 is
    the sweep's own run, with every per-run array and measure, and members 1 .. K-1 are
    plain runs on their own inputs (:func:`fractalsweep.streams.member`), one kernel call
    each, so a group of the kernel shares one X. Their scores add ``converged_fraction``
    and ``mean_score``.
    """

    legend = ("converged: fast \u2192 slow", "diverged: fast \u2192 slow blow-up")
    dtypes = ("float64", "float32", DOUBLE_DOUBLE)

    @staticmethod
    def outputs(cfg) -> dict[str, tuple[str, object]]:
        from .kernel import outputs

        ensemble = {name: ("float64", np.nan) for name in ENSEMBLE_ARRAYS}
        return outputs(cfg) | (ensemble if cfg.ensemble.seeds > 1 else {})

    @staticmethod
    def draw(cfg) -> dict[str, np.ndarray]:
        from .streams import draw

        return draw(cfg)

    @staticmethod
    def runs(cfg, arrays, xs, ys, kernel: str = "auto", group: int | None = None,
             early_exit: bool = True) -> dict[str, np.ndarray]:
        """One run per pixel, by the kernel of ``cfg``'s dtype: ``kernel`` and ``group`` are
        the float64/float32 kernel's (:func:`fractalsweep.kernel.train`'s ``kernel`` and
        ``group``); double-double has one kernel, with its own groups."""
        if cfg.dtype == DOUBLE_DOUBLE:
            from .ddkernel import train

            return train(cfg, arrays, xs, ys, early_exit=early_exit)
        from .kernel import train

        return train(cfg, arrays, xs, ys, group=group, early_exit=early_exit, kernel=kernel)

    @staticmethod
    def compute(cfg, arrays, xs, ys, kernel: str = "auto") -> dict[str, np.ndarray]:
        """``kernel``: the float64/float32 kernel (:meth:`runs`)."""
        out = Training.runs(cfg, arrays, xs, ys, kernel)
        if cfg.ensemble.seeds == 1:
            return out
        from .streams import member

        plain = single_run(cfg)
        scores = [out["score"], *(Training.runs(plain, member(cfg, arrays, k), xs, ys,
                                                kernel)["score"]
                                  for k in range(1, cfg.ensemble.seeds))]
        return out | ensemble_arrays(np.stack(scores))


ENSEMBLE_ARRAYS = ("converged_fraction", "mean_score")


def ensemble_arrays(scores: np.ndarray) -> dict[str, np.ndarray]:
    """``converged_fraction`` and ``mean_score`` of the members' scores (members, pixels).

    A NaN score (a run whose first loss was zero) counts as not converged and makes the
    mean NaN.

    >>> ensemble_arrays(np.array([[-3.0, 1.0], [-1.0, 2.0]]))["converged_fraction"].tolist()
    [1.0, 0.0]
    """
    return {"converged_fraction": (scores < 0).mean(axis=0), "mean_score": scores.mean(axis=0)}


SYSTEMS = {"training": Training(), **{kind: Fractal(kind) for kind in FRACTALS}}


def system_of(cfg):
    """The system a config computes (``system.kind``)."""
    return SYSTEMS[cfg.system.kind]


def check_computable(cfg, kernel: str = "auto") -> None:
    """Refuse before any work what every tile would refuse: a dtype the system does not
    compute in (fractals: no double-double), double-double for a training config beyond
    that kernel's family (:func:`fractalsweep.ddkernel.check`), and ``kernel = "pallas"``
    for a config the fused kernel does not support (:func:`fractalsweep.fused.check`); a
    fractal ignores the kernel named.

    >>> from fractalsweep.config import resolve
    >>> check_computable(resolve({"system": {"kind": "mandelbrot"}, "dtype": "double-double"}))
    Traceback (most recent call last):
    ...
    fractalsweep.errors.ConfigError: dtype = 'double-double': system.kind = 'mandelbrot' computes in float64 or float32
    """
    dtypes = system_of(cfg).dtypes
    if not isinstance(cfg.dtype, str) or cfg.dtype not in dtypes:  # a name: no array compares
        raise ConfigError(f"dtype = {cfg.dtype!r}: system.kind = {cfg.system.kind!r} "
                          f"computes in {' or '.join(dtypes)}")
    if cfg.system.kind != "training":
        return
    if cfg.dtype == DOUBLE_DOUBLE:
        from .ddkernel import check as check_double_double

        check_double_double(cfg)
    if kernel == "pallas":
        from .fused import check as check_fused

        check_fused(cfg, kernel)
