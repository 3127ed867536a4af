"""Elementary functions the kernels evaluate themselves instead of leaving them to XLA.

Only one so far: float64 ``tanh``. On a CPU XLA's own takes a third of the XLA kernel's
time per step and is up to 7 ulp off; :func:`tanh64` is at most 4 ulp off and costs 45%
less (0.42 ns per element against 0.76): it made the kernel 5.7% faster, its ``2^k``
without a conversion 2-4% more and its fewer products 4% more (docs/scripts/tanh_cost.py,
docs/performance.md, docs/kernel.md). The fused GPU kernel uses it too (``fused.OWN``: 8%
faster than libdevice's ``tanh`` on an H200), the XLA kernel on a GPU does not (no gain
measured there), and in float32 XLA's ``tanh`` stays: it is already a short rational
approximation.

``tanh(x) = (e^y - 1) / (e^y + 1)`` with ``y = 2x``, and ``e^y = 2^k e^r`` with ``k`` the
integer nearest ``y / ln 2`` (``floor(y / ln 2 + 1/2)``: Pallas' Triton lowering has no
``round``) and ``|r| <= ln(2) / 2`` (a few ulp more next to a tie, where the sum rounds
up). ``e^r`` is its [6/6] Padé approximant ``P(r) / P(-r)`` (relative error below
``2e-19`` there). Writing ``P(r) = E + O`` (even and odd parts in ``r``), ``p = E + O``
and ``s = 2^k``, the quotient becomes

    tanh(x) = (s p - (E - O)) / (s p + (E - O)) = ((s - 1) p + 2 O) / ((s + 1) p - 2 O),

one division, no branch, and no cancellation near zero (``k = 0`` gives ``2 O / (2 E)``).
The reduction works on ``x`` itself, ``r / 2 = x - k ln(2) / 2``, with ``P``'s
coefficients scaled by powers of two to match: no product ``2x``. Both trade products for
additions or nothing; on a CPU the multipliers, not the adders, are the busy units: 11
multiplications or FMAs per element instead of 14 with 0.3.0's quotient
``((s - 1) E + (s + 1) O) / ((s + 1) E + (s - 1) O)``.
``x`` is clipped to ``[-20, 20]`` first (``tanh(±20)`` rounds to ``±1``) so ``2^k`` stays
finite; ``2^k`` is built from the bits of ``k``, which ``k + 1.5 * 2^52`` holds at its
bottom, without a conversion to an integer. ``tanh(-0.0)`` is ``+0.0``; NaN stays NaN.

On a GPU every float64 operation takes the same pipe, and the fused kernel asks for the
GPU's form (``tanh64(gpu=...)``): the same values rounded the same way but for ties (of
``k``, and of the quotient next to halfway), in 22 float64 instructions per element
instead of 37 (fused multiply-adds, ``k`` rounded by the shifted sum instead of a floor,
and the quotient from the hardware's reciprocal approximation by :func:`quotient` instead
of a division; Triton's code for an H100 read without a GPU, docs/scripts/tanh_sass.py).

Example
-------
>>> import jax, jax.numpy as jnp, numpy as np
>>> with jax.enable_x64(True):
...     t = jax.jit(tanh64)(jnp.array([-30.0, -0.5, 1e-300, 0.5, 1.0]))
>>> bool(np.all(np.abs(np.asarray(t) - np.tanh([-30.0, -0.5, 1e-300, 0.5, 1.0]))
...             <= 4 * np.spacing(np.tanh([30.0, 0.5, 1e-300, 0.5, 1.0]))))
True
"""

from __future__ import annotations

import math
from fractions import Fraction

import jax.numpy as jnp
from jax import lax

TANH_CLIP = 20.0
_LN2 = math.log(2)
_INV_LN2 = 1 / _LN2
# Added to an integer-valued float64 of magnitude below 2^51, puts the integer, two's
# complement, in the low bits of the sum (the bits above them are shifted out of 2^k).
_SHIFTER = 1.5 * 2.0**52
_PADE = 6
# P(2h) = sum_k c_k 2^k h^k, c_k = (2m - k)! m! / ((2m)! k! (m - k)!): exp's [m/m] Padé
# numerator, in the half-argument h = r / 2 the reduction gives
_P = [float(Fraction(math.factorial(2 * _PADE - k) * math.factorial(_PADE) * 2**k,
                     math.factorial(2 * _PADE) * math.factorial(k) * math.factorial(_PADE - k)))
      for k in range(_PADE + 1)]


# -2 times P's odd coefficients: the odd part doubled and negated exactly, for the GPU's form
_NEG_ODD2 = [-2 * c for c in _P[1::2]]


def multiply_add(a, b, c, subtract: bool = False):
    """``a * b + c`` (``a * b - c`` if ``subtract``) as written: two roundings, unless the
    compiler contracts them."""
    return a * b - c if subtract else a * b + c


def _poly(coefficients, x, fma):
    """``sum_i coefficients[i] * x**i`` by Horner's rule."""
    acc = jnp.full_like(x, coefficients[-1])
    for c in coefficients[-2::-1]:
        acc = fma(acc, x, c)
    return acc


def pow2(k):
    """``2**k`` for integer-valued float64 ``k`` in [-1022, 1023], exact, built from its bits.

    Not by converting ``k`` to an integer: a conversion saturates, with checks and selects
    in XLA's and Triton's code (0.08 ns per element on a CPU, 19 instructions per element in
    the fused kernel); ``k + 1.5 * 2^52`` holds ``k`` in its low bits already.
    """
    return pow2_shifted(k + _SHIFTER)


def pow2_shifted(t):
    """``2**k`` from ``t = k + 1.5 * 2^52`` (:func:`pow2`), which holds ``k`` in its low bits."""
    return lax.bitcast_convert_type(
        (lax.bitcast_convert_type(t, jnp.int64) + 1023) << 52, jnp.float64)


def tanh64(x, clip: str = "clamp", gpu=None):
    """``tanh`` of a float64 array (see the module docstring for the method and accuracy).

    ``clip`` writes the clip to ``[-20, 20]`` for the compiler at hand, with the same values:
    ``"clamp"`` (XLA's CPU code is shortest so: 0.08 ns per element less than the select)
    or ``"select"`` on ``|x|`` (Triton's code of a clamp that keeps NaN takes 8 more
    instructions per element: 7% of the fused kernel's data loop, docs/performance.md).

    ``gpu = (fma, neg_reciprocal)`` selects the form for a GPU, where every float64
    operation costs the same and a multiply-add is one (the fused kernel's
    ``fused.ptx_fma`` and ``fused.ptx_neg_reciprocal``): each ``a * b + c`` is
    ``fma(a, b, c)``, rounded once; ``k`` is rounded by the shifted multiply-add
    ``x * 2 / ln 2 + 1.5 * 2^52`` itself, with no floor (so this form must not be compiled
    by XLA, whose simplifier folds ``(t + S) - S`` back to the product: Triton's code
    alone runs it); ``-2 O`` comes from negated, doubled coefficients (exact) and
    ``p = E + O`` from one multiply-add of it; the quotient is :func:`quotient` from
    ``neg_reciprocal(b)``, about ``-1 / b`` (6 operations where a division takes 8 and a
    check for special cases it never meets here). With the same ``k`` as the floor's (all
    but next to ties) it rounds ``p``, the numerator and the denominator as the CPU's code
    does (XLA contracts the same multiply-adds there), and the quotient nearly always as a
    division. Without it the multiply-adds are written as products and sums
    (:func:`multiply_add`): on a CPU the multipliers are the busy units and the adders have
    room.
    """
    if clip not in ("clamp", "select"):
        raise ValueError(f"clip = {clip!r}: valid values are 'clamp' and 'select'")
    if clip == "select":
        x = jnp.where(jnp.abs(x) > TANH_CLIP, jnp.copysign(TANH_CLIP, x), x)
    else:
        x = jnp.clip(x, -TANH_CLIP, TANH_CLIP)
    fma, neg_reciprocal = gpu or (multiply_add, None)
    if gpu:
        # k by the shifted multiply-add's own rounding, no floor (not for XLA: docstring)
        t = fma(x, 2 * _INV_LN2, _SHIFTER)
        k, s = t - _SHIFTER, pow2_shifted(t)
    else:
        k = jnp.floor(fma(x, 2 * _INV_LN2, 0.5))
        s = pow2(k)
    h = fma(k, -_LN2 / 2, x)
    h2 = h * h
    even = _poly(_P[0::2], h2, fma)
    if gpu:
        neg_odd2 = h * _poly(_NEG_ODD2, h2, fma)
        p = fma(neg_odd2, -0.5, even)
        return quotient(fma(1.0 - s, p, neg_odd2), fma(s + 1.0, p, neg_odd2), fma,
                        neg_reciprocal)
    odd = h * _poly(_P[1::2], h2, fma)
    p, odd2 = even + odd, odd + odd
    # a subtraction, not an added -odd2: Triton negates by subtracting from zero, one more
    # instruction where a fused multiply-add negates an operand for free
    return fma(s - 1.0, p, odd2) / fma(s + 1.0, p, odd2, subtract=True)


def quotient(neg_a, b, fma, neg_reciprocal):
    """``a / b`` from ``-a`` and a finite ``b > 0``, by multiply-adds from an approximation
    ``neg_reciprocal(b)`` of ``-1 / b`` (relative error below ``2^-10``) and ``fma(a, b,
    c)``, a multiply-add rounded once: within half a unit in the last place and ``2^-59``
    relative.

    One cubic step takes the reciprocal ``r`` to ``r (1 + e + e^2)`` (``e = 1 - b r``,
    relative error ``e^3``), then the quotient ``q = a r`` is corrected once by its
    remainder, ``q + (a - b q) r``. Every sign is carried by the operands (the negated
    numerator and reciprocal), so no negation costs an instruction.
    """
    n = neg_reciprocal(b)
    e = fma(b, n, 1.0)
    n = fma(n, fma(e, e, e), n)
    q = neg_a * n
    return fma(fma(b, q, neg_a), n, q)


def tanh(x):
    """``tanh`` as the XLA kernel evaluates it: :func:`tanh64` for float64 compiled for a
    CPU, XLA's own elsewhere.

    The platform is the one the computation is lowered for (``lax.platform_dependent``),
    so a kernel lowered for a GPU on a CPU machine gets the GPU's tanh. Pallas' Triton
    lowering cannot take that choice: the fused kernel names its own (``fused.OWN``).
    """
    if x.dtype != jnp.float64:
        return jnp.tanh(x)
    return lax.platform_dependent(x, cpu=tanh64, default=jnp.tanh)
