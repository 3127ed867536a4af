"""Classic fractals as sweep systems: the Mandelbrot set, Julia sets and Newton's basins.

They go through the same store, tiles, cluster, zoom, ladder, animation and dimension as
training runs, and are the references with known answers for every later number (the paper
compares its pictures with them). The score follows the training convention: negative
"inside" (the orbit stayed bounded; Newton's iteration reached the chosen root), positive
outside, so the boundary is the sign change:

* escape time (Mandelbrot ``z <- z^2 + c`` from ``z = 0`` with ``c = x + iy``; Julia the same
  map from ``z = x + iy`` with a fixed ``c``): outside, the smooth escape count
  ``n + 1 - log2(log|z_n| / log R)`` (positive, larger = stayed bounded longer, continuous
  across iteration counts); inside, ``-(1 + min |z_k|)`` over the orbit ``k >= 1``, an
  "orbit trap" that gives the inside some structure (negative);
* Newton's method for ``z^3 - 1`` from ``z = x + iy``: reaching the chosen root
  (``system.root``, ``exp(2 pi i k / 3)``) within ``max_iter`` steps scores ``-(1 + steps)``
  (more negative = slower, as a slow converged run); reaching another root ``+(1 + steps)``;
  reaching none ``+(1 + max_iter)``.

Every pixel is computed elementwise, so its result does not depend on the other pixels of a
call (the bit-identity the tiling relies on). The loop stops once every pixel is decided.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .axes import Axis

__all__ = ["ESCAPE_RADIUS", "FRACTALS", "NEWTON_TOLERANCE", "PLANE_AXES", "Fractal"]

FRACTALS = ("mandelbrot", "julia", "newton")
#: The axes of a fractal system: the complex plane. They set no training hyperparameter; their
#: ``field`` is the part of the complex number they give, the system reads each pixel's
#: coordinates directly (x may be the imaginary part).
PLANE_AXES = {"re": Axis("re", "every", "real part"), "im": Axis("im", "every", "imaginary part")}

ESCAPE_RADIUS = 256.0  # far beyond 2, so the smooth escape count is smooth
NEWTON_TOLERANCE = 1e-9  # |z - root| below this counts as reached (the roots are 1.73 apart)


@dataclass(frozen=True)
class Fractal:
    """One of the classic systems: ``kind`` is ``mandelbrot``, ``julia`` or ``newton``."""

    kind: str
    dtypes = ("float64", "float32")  # the escape-time loops are written for NumPy's floats

    @property
    def legend(self) -> tuple[str, str]:
        """What the negative and the positive colours mean, for a picture's legend."""
        if self.kind == "newton":
            return "reaches the root: fast \u2192 slow", "another root or none: fast \u2192 slow"
        return "inside (bounded orbit)", "outside: fast \u2192 slow escape"

    @staticmethod
    def outputs(cfg) -> dict[str, tuple[str, object]]:
        """The score, and the iterations until the pixel was decided (-2: not computed)."""
        return {"score": ("float64", np.nan), "iterations": ("int32", -2)}

    @staticmethod
    def draw(cfg) -> dict[str, np.ndarray]:
        """Nothing random: a fractal store has no inputs."""
        return {}

    def compute(self, cfg, arrays, xs, ys, kernel: str = "auto") -> dict[str, np.ndarray]:
        """The outputs of every pixel ``(xs[i], ys[i])`` (see the module docstring); one
        kernel computes them all, whatever ``kernel`` names."""
        import jax

        system = cfg.system
        xs, ys = np.asarray(xs, cfg.dtype), np.asarray(ys, cfg.dtype)
        if cfg.x.kind == "im":  # then y is the real part (axes.check_distinct)
            xs, ys = ys, xs
        if xs.size == 0:
            return {name: np.empty(0, dtype) for name, (dtype, _) in self.outputs(cfg).items()}
        with jax.enable_x64(True):
            c = complex(float(system.c[0]), float(system.c[1]))
            run = _iteration(self.kind, system.max_iter, system.root, cfg.dtype)
            score, n = run(xs, ys, c)
            return {"score": np.asarray(score, np.float64),
                    "iterations": np.asarray(n, np.int32)}


@lru_cache(maxsize=16)
def _iteration(kind: str, max_iter: int, root: int, dtype: str):
    """The jitted loop of one system, compiled once per (kind, max_iter, root, dtype)."""
    import jax
    import jax.numpy as jnp

    real = jnp.dtype(dtype)
    cdtype = jnp.complex128 if real == jnp.float64 else jnp.complex64
    roots = jnp.exp(2j * jnp.pi * jnp.arange(3) / 3).astype(cdtype)
    log_r = math.log(ESCAPE_RADIUS)

    def escape_step(state, c):
        n, z, done, trap = state
        z = jnp.where(done, z, z * z + c)
        trap = jnp.where(done, trap, jnp.minimum(trap, jnp.abs(z)))
        out = ~done & (jnp.abs(z) > ESCAPE_RADIUS)
        return n + ~done, z, done | out, trap

    def escape(xs, ys, c):
        point = (xs + 1j * ys).astype(cdtype)
        c, z0 = (point, jnp.zeros_like(point)) if kind == "mandelbrot" else (
            jnp.full_like(point, c), point)
        state = (jnp.zeros(point.shape, jnp.int32), z0, jnp.abs(z0) > ESCAPE_RADIUS,
                 jnp.full(point.shape, jnp.inf, real))  # the trap sees z_1, z_2, ...
        n, z, done, trap = jax.lax.while_loop(
            lambda s: (s[0].max() < max_iter) & ~s[2].all(),
            lambda s: escape_step(s, c), state)
        # clipped at 0 (still outside) where a first step lands far beyond the radius
        smooth = jnp.maximum(n + 1 - jnp.log2(jnp.log(jnp.abs(z)) / log_r), 0)
        return jnp.where(done, smooth, -(1 + trap)).astype(real), n

    def reached(z):
        """The root ``z`` is within the tolerance of, or -1."""
        near = jnp.abs(z[..., None] - roots) < NEWTON_TOLERANCE
        return jnp.where(near.any(-1), jnp.argmax(near, -1).astype(jnp.int32), -1)

    def newton_step(state):
        n, z, which = state
        undecided = which < 0
        z = jnp.where(undecided, z - (z * z * z - 1) / (3 * z * z), z)
        return n + undecided, z, jnp.where(undecided, reached(z), which)

    def newton(xs, ys, c):
        z = (xs + 1j * ys).astype(cdtype)  # a pixel on a root has reached it after 0 steps
        state = (jnp.zeros(z.shape, jnp.int32), z, reached(z))
        n, _, which = jax.lax.while_loop(
            lambda s: (s[0].max() < max_iter) & (s[2] < 0).any(), newton_step, state)
        steps = (1 + n).astype(real)
        return jnp.where(which == root, -steps, jnp.where(which < 0, 1.0 + max_iter, steps)), n

    return jax.jit(newton if kind == "newton" else escape)
