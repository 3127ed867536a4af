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

from decimal import Decimal, localcontext
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Constants", "add", "constants", "div", "exp", "from_float", "mul", "mul_float",
           "split_decimal", "sub", "tanh", "to_numpy", "two_prod", "two_sum", "value"]

_DIGITS = 60  # decimal digits of the arithmetic that makes constants (twice what is kept)
_HIGH_BITS = np.uint64(0xFFFFFFFFF8000000)  # keeps a float64's sign, exponent and 26 bits
_SQUARINGS = 9  # exp: the reduced argument is divided by 2**9 before the Taylor series
_TAYLOR = 10  # exp: Taylor terms of e**r - 1 for |r| <= ln2 / 2**10 (error < 1e-33)
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
    reciprocals: tuple[jax.Array, jax.Array]  # 1/n for n = 2 .. _TAYLOR


def constants() -> Constants:
    """The runtime constants (module docstring), as float64 arrays."""
    with localcontext() as ctx:
        ctx.prec = _DIGITS
        ln2 = split_decimal(Decimal(2).ln())
        recip = [split_decimal(Decimal(1) / n) for n in range(2, _TAYLOR + 1)]
    return Constants(zero=jnp.int64(0), one=jnp.float64(1.0), two=jnp.float64(2.0),
                     tanh_one=jnp.float64(_TANH_ONE), exp_limit=jnp.float64(_EXP_LIMIT),
                     ln2=(jnp.float64(ln2[0]), jnp.float64(ln2[1])),
                     reciprocals=(jnp.array([r[0] for r in recip]),
                                  jnp.array([r[1] for r in recip])))


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


def exp(a, k: Constants):
    """``e**a``: ``a = m ln2 + r``, then ``(e**(r / 2**9))**(2**9)`` from a Taylor series.

    Overflows to ``inf`` and underflows to 0 as float64 does (``2**m`` is applied with
    ``ldexp``, exactly); arguments beyond +-800 are clipped there first, so ``m`` stays a
    small integer and the reduction finite.
    """
    clipped = jnp.abs(a[0]) > k.exp_limit
    a = (jnp.clip(a[0], -k.exp_limit, k.exp_limit), jnp.where(clipped, 0.0, a[1]))
    m = jnp.round(a[0] / k.ln2[0])
    r = sub(a, mul_float(k.ln2, m, k))
    r = (jnp.ldexp(r[0], -_SQUARINGS), jnp.ldexp(r[1], -_SQUARINGS))
    # e**r - 1 = r (1 + r/2 (1 + r/3 (1 + ... r/n))), Horner from the innermost term
    one = from_float(jnp.broadcast_to(k.one, r[0].shape))
    total = one
    for i in range(_TAYLOR - 2, -1, -1):  # reciprocals[i] = 1 / (i + 2)
        total = add(one, mul(mul(r, (k.reciprocals[0][i], k.reciprocals[1][i]), k), total, k))
    total = mul(r, total, k)
    two = from_float(jnp.broadcast_to(k.two, r[0].shape))
    for _ in range(_SQUARINGS):  # e**(2r) - 1 = (e**r - 1) * (e**r - 1 + 2)
        total = mul(total, add(total, two), k)
    result = add(total, one)
    exponent = m.astype(jnp.int32)
    return jnp.ldexp(result[0], exponent), jnp.ldexp(result[1], exponent)


def tanh(a, k: Constants):
    """``tanh(a) = sign(a) (1 - 2 / (e**(2|a|) + 1))``.

    ``|a|`` is capped at 40, where ``tanh`` is 1 to within 1e-34, so the exponential never
    overflows (``2 / inf`` would give NaN through the division's remainder).
    """
    sign = jnp.where(a[0] < 0, -1.0, 1.0)
    big = a[0] * sign > k.tanh_one
    mag = (jnp.where(big, k.tanh_one, a[0] * sign), jnp.where(big, 0.0, a[1] * sign))
    e = exp(mul_float(mag, k.two, k), k)
    one = from_float(jnp.broadcast_to(k.one, e[0].shape))
    two = from_float(jnp.broadcast_to(k.two, e[0].shape))
    t = sub(one, div(two, add(e, one), k))
    return t[0] * sign, t[1] * sign
