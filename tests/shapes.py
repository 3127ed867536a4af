"""Score images of sets with a known boundary dimension, for tests/test_dimension.py and
docs/scripts/dimension_accuracy.py.

Each shape is drawn as a score image, -1 on one side and +1 on the other, so that the
boundary cells of :func:`fractalsweep.boundary.boundary` are the set's edge; the expected
dimensions are the sets' own, from the sources in ``REFERENCES``, not outputs of this code.
Sets that end inside the image keep a margin of at least 1/16 of it: the sliding counts
clip boxes at the edge, so a boundary within half a fitted box (1/16) of it would lose boxes.
"""

import numpy as np

N = 2048  # pixels a side: a little over two decades of box sizes

# Douady's rabbit: f^3(0) = c (c^3 + 2 c^2 + c + 1) = 0, the root with positive imaginary
# part; 0 is then on a superattracting 3-cycle
_ROOTS = np.roots([1, 2, 1, 1])
RABBIT = complex(_ROOTS[np.argmax(_ROOTS.imag)])
SMALL_C = -0.1 + 0.1j  # |c|^2 = 0.02: Ruelle's expansion, |c|^3 = 0.003 left out

REFERENCES = {  # name: (dimension, where the value comes from)
    "straight edge": (1.0, "a line"),
    "circle": (1.0, "a smooth curve"),
    "Koch snowflake": (np.log(4) / np.log(3), "log 4 / log 3, self-similar (4 copies, 1/3)"),
    "Sierpinski gasket": (np.log(3) / np.log(2), "log 3 / log 2, self-similar (3 copies, 1/2)"),
    "Julia, Douady rabbit": (
        1.3934, ("McMullen 1998, Amer. J. Math. 120, abstract: H.dim J = 1.3934 for "
                 "f(z) = z^2 + c with f^3(0) = 0"),
    ),
    "Julia, c = -0.1+0.1i": (
        1 + abs(SMALL_C) ** 2 / (4 * np.log(2)),
        "Ruelle 1982: 1 + |c|^2 / (4 ln 2) + O(|c|^3) (MathWorld, 'Julia Set', eq. 3)",
    ),
    "Julia, c = 1/4 (cauliflower)": (
        1.0812, ("Wikipedia, 'List of fractals by Hausdorff dimension': 'Calculated 1.0812, "
                 "Julia set z^2 + 1/4'"),
    ),
    "Julia, c = -1 (basilica)": (None, "no published value found"),
    "Mandelbrot boundary": (2.0, "Shishikura 1998, Ann. of Math. 147"),
}


def _score(inside: np.ndarray) -> np.ndarray:
    return np.where(inside, -1.0, 1.0)


def half_plane(n=N):
    """A straight edge at a slope that lines up with no box edges."""
    rows, cols = np.indices((n, n))
    return _score(rows < 0.34 * n + 0.37 * cols)


def disc(n=N):
    rows, cols = np.indices((n, n)) - n / 2
    return _score(rows ** 2 + cols ** 2 < (0.4 * n) ** 2)


def koch_snowflake(depth: int) -> np.ndarray:
    """Vertices (complex) of the Koch snowflake after ``depth`` refinements, on the unit circle.

    Each edge p -> q of the counter-clockwise triangle becomes p, p + d, the peak, p + 2d with
    d = (q - p) / 3; the peak is d turned 60 degrees clockwise, i.e. outwards.
    """
    z = np.exp(2j * np.pi * np.arange(3) / 3)
    for _ in range(depth):
        d = (np.roll(z, -1) - z) / 3
        z = np.stack([z, z + d, z + d + d * np.exp(-1j * np.pi / 3), z + 2 * d], axis=1).ravel()
    return z


def fill_polygon(vertices: np.ndarray, n: int) -> np.ndarray:
    """Pixels of an ``n x n`` image whose centres lie inside a polygon (even-odd rule).

    ``vertices`` are complex, in pixel units (x = column, y = row). Each edge crosses the
    rows whose centre line ``y = r + 0.5`` it spans; a crossing flips the parity of every
    pixel to its right, so a cumulative sum along each row gives inside-ness. An edge only
    visits its own rows, which keeps this fast for many tiny edges.
    """
    x0, y0 = vertices.real, vertices.imag
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    first = np.ceil(np.minimum(y0, y1) - 0.5).astype(int)
    spans = np.ceil(np.maximum(y0, y1) - 0.5).astype(int) - first
    edge = np.repeat(np.arange(len(vertices)), spans)
    rows = first[edge] + np.arange(spans.sum()) - np.repeat(np.cumsum(spans) - spans, spans)
    x = x0[edge] + (rows + 0.5 - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
    flips = np.zeros((n, n + 1), dtype=np.int64)
    np.add.at(flips, (rows, np.clip(np.ceil(x - 0.5).astype(int), 0, n)), 1)
    return flips.cumsum(axis=1)[:, :n] % 2 == 1


def koch(n=N, depth=7):
    """The filled Koch snowflake; at depth 7 its edges (0.7 px) are below the pixel size."""
    vertices = koch_snowflake(depth)
    return _score(fill_polygon(vertices * 0.45 * n + n / 2 * (1 + 1j), n))


def sierpinski(n=N, margin=N // 16):
    """Pascal's triangle mod 2, ``n`` pixels a side, inside a margin of outside pixels.

    Pixel (i, j) is in the triangle when ``i & j == 0``. Every aligned 2x2 block holds a
    pixel outside (i and j both odd), so the 2x2 windows with both classes are those
    touching the triangle: the boundary is the triangle itself at pixel resolution, a
    Sierpinski gasket of dimension log 3 / log 2. Its holes of every size keep boxes of 10
    cells and up from being entirely boundary.
    """
    i, j = np.indices((n, n))
    inside = np.zeros((n + 2 * margin, n + 2 * margin), dtype=bool)
    inside[margin:margin + n, margin:margin + n] = (i & j) == 0
    return _score(inside)


def attracting_cycle(c: complex, period: int, iterations: int = 1000) -> list[complex]:
    """The attracting cycle of ``z^2 + c``, from the critical orbit, which it attracts."""
    z = 0j
    for _ in range(iterations):
        z = z * z + c
    cycle = []
    for _ in range(period):
        cycle.append(z)
        z = z * z + c
    return cycle


def julia(c: complex, width: float, n=N, max_iter=2000, traps=(), near=0.0):
    """Escape-time score image of the filled Julia set of ``z^2 + c``, centred on 0.

    A pixel is -1 (converged) if the orbit of its centre stays within radius 1000 for
    ``max_iter`` iterations, +1 if it escapes; the sign boundary is the Julia set. Orbits
    are advanced together and dropped once decided, so the cost is in the slow ones near
    the set. ``traps`` are disks ``(centre, radius)`` inside the basin of the finite
    attractor: an orbit entering one is decided as converged at once, which is exact and
    saves iterating the interior to ``max_iter``.

    With ``near > 0``, an escaping pixel whose distance estimate ``|z| ln|z| / |dz/dz0|``
    is below ``near`` pixels counts as converged too, which draws filaments thinner than a
    pixel. The sets drawn here have interiors whose edge is the whole Julia set, so they
    need no such help, and it fills their narrowest fjords, which lowers the measured
    dimension (docs/dimension.md).
    """
    pixel = width / n
    axis = width * ((np.arange(n) + 0.5) / n - 0.5)
    z = (axis[None, :] + 1j * axis[:, None]).ravel()
    dz = np.ones_like(z)
    converged = np.ones(z.size, dtype=bool)
    left = np.arange(z.size)
    for k in range(max_iter):
        z, dz = z * z + c, 2 * z * dz
        if k % 4 == 3:  # decide orbits now and then: the test costs more than a step
            escaped = ~(np.abs(z) <= 1e3)  # 4 squarings from 1e3 stay finite; NaN escaped
            modulus = np.abs(z[escaped])
            with np.errstate(invalid="ignore", over="ignore"):  # NaN and inf are far away
                estimate = modulus * np.log(modulus) / np.abs(dz[escaped])
            converged[left[escaped]] = estimate < near * pixel
            undecided = ~escaped
            for centre, radius in traps:
                undecided &= np.abs(z - centre) >= radius
            left, z, dz = left[undecided], z[undecided], dz[undecided]
    return _score(converged.reshape(n, n))


def mandelbrot(n=N, iterations=1000, centre=-0.743643887037151 + 0.131825904205330j,
               width=0.01):
    """Pixels within about a pixel of the Mandelbrot set, by the exterior distance estimate.

    The default window is a spiral of the seahorse valley. Sampling only whether each pixel
    centre stays bounded misses the set's filaments, far thinner than a pixel: that in/out
    edge measures the escape-time level set, not the set. The distance estimate
    ``|z| ln|z| / |dz/dc|`` of an escaping orbit marks every pixel the set passes through,
    so the edge follows the whole boundary, and the measurement no longer depends on the
    iteration count once orbits have escaped.
    """
    axis = width * (np.arange(n) / (n - 1) - 0.5)
    c = (centre + axis[None, :] + 1j * axis[:, None]).ravel()
    near = np.ones(c.size, dtype=bool)  # orbits that never escape are in the set
    left, z, dz = np.arange(c.size), np.zeros_like(c), np.zeros_like(c)
    for k in range(iterations):
        z, dz = z * z + c[left], 2 * z * dz + 1
        if k % 4 == 3:  # drop escaped orbits now and then: the rest keep iterating
            out = np.abs(z) > 1e3  # far out, where the estimate is accurate
            modulus = np.abs(z[out])
            near[left[out]] = modulus * np.log(modulus) / np.abs(dz[out]) < width / (n - 1)
            left, z, dz = left[~out], z[~out], dz[~out]
    return _score(near.reshape(n, n))


def shapes(n=N) -> dict:
    """Name -> a function drawing that set at ``n`` pixels a side (plus any margin)."""
    return {
        "straight edge": lambda: half_plane(n),
        "circle": lambda: disc(n),
        "Koch snowflake": lambda: koch(n, depth=7 if n <= 2048 else 8),
        "Sierpinski gasket": lambda: sierpinski(n, n // 16),
        "Julia, Douady rabbit": lambda: julia(
            RABBIT, 3.0, n, traps=[(p, 1e-2) for p in attracting_cycle(RABBIT, 3)]),
        "Julia, c = -0.1+0.1i": lambda: julia(
            SMALL_C, 2.5, n, traps=[(p, 1e-2) for p in attracting_cycle(SMALL_C, 1)]),
        # parabolic: no attracting cycle, orbits creep into 1/2; the disk |z - 0.45| < 0.05
        # touches 1/2 from the left and is mapped into itself (Fatou coordinate -1/(z - 1/2)
        # grows by about 1 a step there), and orbits beside 1/2 escape only after ~1/distance
        # steps, hence more iterations
        "Julia, c = 1/4 (cauliflower)": lambda: julia(0.25, 2.45, n, max_iter=5000,
                                                      traps=[(0.45, 0.05)]),
        "Julia, c = -1 (basilica)": lambda: julia(
            -1, 3.7, n, traps=[(p, 1e-2) for p in attracting_cycle(-1, 2)]),
        "Mandelbrot boundary": lambda: mandelbrot(n),
    }
