"""Double-double arithmetic: numbers as unevaluated sums ``hi + lo`` of two float64.

About 32 significant decimal digits (106 bits) from float64 hardware, through error-free
transformations (Knuth's two-sum, Dekker's two-product; Shewchuk 1997; Hida, Li and Bailey
2001). A value is a pair of arrays ``(hi, lo)`` with ``|lo| <= ulp(hi) / 2``; every function
is elementwise and pure, so it runs under ``jit`` and ``vmap`` and a pixel's result never
depends on its neighbours.

The transformations need float64 arithmetic exactly as written, and XLA's CPU compiler does
not always keep it: its algebraic simplifier rewrites ``(b + c) - c`` into ``b`` when ``c`` is
a compile-time constant (which deletes a two-sum's error term), and a multiply it fuses into
an add may become a fused multiply-add (which gives the add the exact product). So:

* constants never enter the arithmetic as literals: they travel as a runtime argument,
  :class:`Constants`, that the compiler cannot see into;
* the two halves of a product's operands are cut by masking bits (integer operations), not by
  Dekker's multiplication by ``2**27 + 1``;
* the rounded product ``p = a * b`` is laundered through its bits: reinterpreted as an
  integer, added to a runtime zero (``Constants.zero``), reinterpreted back. That returns
  ``p`` itself, but the compiler can no longer see a multiply to fuse into a later add
  (``jax.lax.optimization_barrier`` does not survive XLA's CPU pipeline, and
  ``nextafter(p, p)``, which also works, costs three times as much).

tests/test_doubledouble.py checks the arithmetic, compiled as the kernel compiles it, against
exact rational arithmetic and mpmath.

Example
-------
>>> import jax, jax.numpy as jnp
>>> with jax.enable_x64(True):
...     k = constants()
...     third = jax.jit(div)(from_float(k.one), from_float(jnp.full(1, 3.0)), k)
...     print(f"{float(third[0][0]):.17g} {float(third[1][0]):.3g}")
0.33333333333333331 1.85e-17
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .elementary import pow2

__all__ = ["Constants", "add", "add_terms", "constants", "div", "exp", "from_float", "mul",
           "mul_float", "split_decimal", "sub", "tanh", "to_numpy", "two_prod", "two_sum", "value"]

_DIGITS = 60  # decimal digits of the arithmetic that makes constants (twice what is kept)
_HIGH_BITS = np.uint64(0xFFFFFFFFF8000000)  # keeps a float64's sign, exponent and 26 bits
# exp: the reduced argument r (|r| <= ln2 / 2) is divided by 2**_SQUARINGS, e**r - 1 taken from
# its Taylor series and squared back. With |r| <= ln2 / 16, 15 terms leave 2e-34 of it, and
# the terms from the 9th on weigh under 4e-17 of it, so float64 sums them (its rounding costs
# under 1e-32): 8 double-double terms and 3 squarings, the fewest of any split.
_SQUARINGS = 3
_TAYLOR = 15
_TAYLOR_DD = 8
_EXP_LIMIT = 800  # beyond: e**a is inf or 0 in float64 anyway
_TANH_ONE = 40  # tanh(40) = 1 - 3.6e-35: 1 in double-double


def split_decimal(value) -> tuple[float, float]:
    """``(hi, lo)``: the double-double nearest a decimal (or anything ``Decimal`` takes).

    >>> split_decimal("0.1")
    (0.1, -5.551115123125783e-18)
    """
    with localcontext() as ctx:
        ctx.prec = _DIGITS
        d = Decimal(value)
        hi = float(d)
        return hi, float(d - Decimal(hi))


class Constants(NamedTuple):
    """Every constant the functions here use, as float64 arrays passed at run time.

    Each is a pair ``(hi, lo)`` unless it is exact in float64. Make them with
    :func:`constants` outside ``jit`` and pass them in as an argument.
    """

    zero: jax.Array  # int64 0: launders a product's rounding (module docstring)
    one: jax.Array
    two: jax.Array
    tanh_one: jax.Array
    exp_limit: jax.Array
    ln2: tuple[jax.Array, jax.Array]
    reduction: jax.Array  # 2**-_SQUARINGS
    taylor: tuple[jax.Array, jax.Array]  # 1/n! for n = 1 .. _TAYLOR


def constants() -> Constants:
    """The runtime constants (module docstring), as float64 arrays."""
    with localcontext() as ctx:
        ctx.prec = _DIGITS
        ln2 = split_decimal(Decimal(2).ln())
        taylor = [split_decimal(Decimal(1) / math.factorial(n)) for n in range(1, _TAYLOR + 1)]
    return Constants(zero=jnp.int64(0), one=jnp.float64(1.0), two=jnp.float64(2.0),
                     tanh_one=jnp.float64(_TANH_ONE), exp_limit=jnp.float64(_EXP_LIMIT),
                     ln2=(jnp.float64(ln2[0]), jnp.float64(ln2[1])),
                     reduction=jnp.float64(2.0 ** -_SQUARINGS),
                     taylor=(jnp.array([t[0] for t in taylor]), jnp.array([t[1] for t in taylor])))


def from_float(x):
    """A float64 array as an exact double-double."""
    return x, jnp.zeros_like(x)


def value(a):
    """The float64 nearest a double-double."""
    return a[0] + a[1]


def to_numpy(a) -> np.ndarray:
    """A double-double as a numpy array of shape ``(..., 2)``: ``[..., 0]`` hi, ``[..., 1]`` lo."""
    return np.stack([np.asarray(a[0]), np.asarray(a[1])], axis=-1)


def two_sum(a, b):
    """``s = fl(a + b)`` and the exact error ``e``: ``a + b = s + e`` (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _quick_two_sum(a, b):
    """Two-sum for ``|a| >= |b|``."""
    s = a + b
    return s, b - (s - a)


def _split(a):
    """``a = hi + lo`` with ``hi`` the leading 26 bits of ``a`` (cut by masking) and ``lo``
    the remaining 27: products of halves are exact but for ``lo * lo`` (54 bits), whose
    rounding is below 2**-106 of ``a * b``."""
    hi = jax.lax.bitcast_convert_type(
        jax.lax.bitcast_convert_type(a, jnp.uint64) & _HIGH_BITS, jnp.float64)
    return hi, a - hi


def two_prod(a, b, k: Constants):
    """``p = fl(a * b)`` and its error ``e``: ``a * b = p + e`` to 2**-106 relative."""
    bits = jax.lax.bitcast_convert_type(a * b, jnp.int64) + k.zero
    p = jax.lax.bitcast_convert_type(bits, jnp.float64)  # as rounded, never contracted below
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def add(a, b):
    """``a + b``, accurate to about 2**-106 relative (the IEEE-style double-double sum)."""
    s1, s2 = two_sum(a[0], b[0])
    t1, t2 = two_sum(a[1], b[1])
    s1, s2 = _quick_two_sum(s1, s2 + t1)
    return _quick_two_sum(s1, s2 + t2)


def add_terms(a, b):
    """``a + b`` with the low parts added in float64 ("sloppy" addition, Hida, Li and Bailey):
    its error is within about 2**-105 of ``|a| + |b|`` rather than of ``|a + b|``. That is all
    a sum of terms needs (its error is bounded by the sum of the terms' magnitudes either
    way), at half the operations of :func:`add`."""
    s, e = two_sum(a[0], b[0])
    return _quick_two_sum(s, e + (a[1] + b[1]))


def sub(a, b):
    return add(a, (-b[0], -b[1]))


def mul(a, b, k: Constants):
    """``a * b``."""
    p, e = two_prod(a[0], b[0], k)
    return _quick_two_sum(p, e + (a[0] * b[1] + a[1] * b[0]))


def mul_float(a, f, k: Constants):
    """``a * f`` for a float64 array ``f``."""
    p, e = two_prod(a[0], f, k)
    return _quick_two_sum(p, e + a[1] * f)


def div(a, b, k: Constants):
    """``a / b``: three quotient digits, each correcting the remainder of the last."""
    q1 = a[0] / b[0]
    r = sub(a, mul_float(b, q1, k))
    q2 = r[0] / b[0]
    r = sub(r, mul_float(b, q2, k))
    q3 = r[0] / b[0]
    return add(_quick_two_sum(q1, q2), from_float(q3))


def _expm1_reduced(a, k: Constants):
    """``(m, e**r - 1)`` with ``a = m ln2 + r``, ``|r| <= ln2 / 2``, for ``|a| <= 800``.

    Kept as ``e**r - 1`` throughout (each squaring keeps its relative error), so ``tanh``
    near 0 does not lose digits to ``1 - 2 / (e**(2a) + 1)``.
    """
    m = jnp.round(a[0] / k.ln2[0])
    r = sub(a, mul_float(k.ln2, m, k))
    r = (r[0] * k.reduction, r[1] * k.reduction)  # exact: a power of two
    coef = k.taylor
    tail = jnp.full_like(r[0], coef[0][_TAYLOR - 1])
    for n in range(_TAYLOR - 1, _TAYLOR_DD, -1):  # coef[.][n - 1] = 1 / n!
        tail = coef[0][n - 1] + r[0] * tail
    total = from_float(tail)
    for n in range(_TAYLOR_DD, 0, -1):
        total = add((coef[0][n - 1], coef[1][n - 1]), mul(r, total, k))
    total = mul(r, total, k)
    two = from_float(jnp.broadcast_to(k.two, r[0].shape))
    for _ in range(_SQUARINGS):  # e**(2r) - 1 = (e**r - 1) * (e**r - 1 + 2)
        total = mul(total, add(total, two), k)
    return m, total


def exp(a, k: Constants):
    """``e**a``: ``2**m (1 + (e**r - 1))`` from :func:`_expm1_reduced`.

    Overflows to ``inf`` and underflows to 0 as float64 does (``2**m`` applied exactly, as two
    factors, each a float64); arguments beyond +-800 are clipped there first, so ``m`` stays
    a small integer and the reduction finite.
    """
    clipped = jnp.abs(a[0]) > k.exp_limit
    a = (jnp.clip(a[0], -k.exp_limit, k.exp_limit), jnp.where(clipped, 0.0, a[1]))
    m, total = _expm1_reduced(a, k)
    result = add(total, from_float(jnp.broadcast_to(k.one, m.shape)))
    for factor in (pow2(jnp.floor(m / 2)), pow2(m - jnp.floor(m / 2))):
        result = (result[0] * factor, result[1] * factor)
    return result


def tanh(a, k: Constants):
    """``tanh(a) = sign(a) q / (q + 2)`` with ``q = e**(2|a|) - 1 = 2**m (e**r - 1) + 2**m - 1``.

    ``|a|`` is capped at 40, where ``tanh`` is 1 to within 1e-34, so ``2**m`` stays a float64
    and the quotient finite.
    """
    sign = jnp.where(a[0] < 0, -1.0, 1.0)
    big = a[0] * sign > k.tanh_one
    mag = (jnp.where(big, k.tanh_one, a[0] * sign), jnp.where(big, 0.0, a[1] * sign))
    m, e = _expm1_reduced(mul_float(mag, k.two, k), k)
    p = pow2(m)
    q = add((e[0] * p, e[1] * p), two_sum(p, -k.one))
    t = div(q, add(q, from_float(jnp.broadcast_to(k.two, q[0].shape))), k)
    return t[0] * sign, t[1] * sign
