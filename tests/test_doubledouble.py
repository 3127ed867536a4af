"""Double-double arithmetic, compiled as the kernels compile it, against exact rationals and
mpmath at 50 digits."""

from fractions import Fraction

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest

from fractalsweep import doubledouble as dd
from fractalsweep.kernel import jit  # with the kernels' XLA options

mpmath.mp.dps = 50


@pytest.fixture(scope="module")
def k():
    with jax.enable_x64(True):
        yield dd.constants()


def _random(seed, n=2000):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n) * 10.0 ** rng.integers(-8, 8, n)


def _exact(pair):
    return [Fraction(float(h)) + Fraction(float(lo)) for h, lo in zip(*map(np.asarray, pair))]


def _mp(pair):
    return [mpmath.mpf(float(h)) + mpmath.mpf(float(lo)) for h, lo in zip(*map(np.asarray, pair))]


def test_two_sum_is_error_free_when_compiled():
    a, b = _random(0), _random(1)
    with jax.enable_x64(True):
        s = jit(dd.two_sum)(jnp.asarray(a), jnp.asarray(b))
    assert _exact(s) == [Fraction(x) + Fraction(y) for x, y in zip(a, b)]


def test_two_prod_is_error_free_to_two_to_the_minus_106(k):
    """The split by masking leaves lo * lo one bit wide of exact: within 2**-106 of a * b."""
    a, b = _random(2), _random(3)
    with jax.enable_x64(True):
        p = jit(dd.two_prod)(jnp.asarray(a), jnp.asarray(b), k)
    for got, x, y in zip(_exact(p), a, b):
        want = Fraction(x) * Fraction(y)
        assert abs(got - want) <= abs(want) * Fraction(1, 2 ** 106)


def test_a_constant_addend_keeps_the_error_term(k):
    """XLA rewrites (b + c) - c into b for a compile-time c; constants are arguments."""
    with jax.enable_x64(True):
        b = jnp.full(4, 1e-20)
        s = jit(lambda b, k: dd.add(dd.from_float(jnp.broadcast_to(k.one, b.shape)),
                                    dd.from_float(b)))(b, k)
    assert np.all(np.asarray(s[0]) == 1.0) and np.all(np.asarray(s[1]) == 1e-20)


@pytest.mark.parametrize("name", ["add", "add_terms", "sub", "mul", "div"])
def test_arithmetic_to_two_to_the_minus_104(name, k):
    rng = np.random.default_rng(4)
    hi = rng.standard_normal((2, 500)) * 10.0 ** rng.integers(-3, 3, (2, 500))
    lo = hi * rng.uniform(-1, 1, hi.shape) * 2.0 ** -53
    ops = {"add": (lambda x, y, k: dd.add(x, y), lambda x, y: x + y),
           "add_terms": (lambda x, y, k: dd.add_terms(x, y), lambda x, y: x + y),
           "sub": (lambda x, y, k: dd.sub(x, y), lambda x, y: x - y),
           "mul": (dd.mul, lambda x, y: x * y), "div": (dd.div, lambda x, y: x / y)}
    f, exact = ops[name]
    with jax.enable_x64(True):
        a, b = ((jnp.asarray(hi[i]), jnp.asarray(lo[i])) for i in (0, 1))
        got = _mp(jit(f)(a, b, k))  # constants as arguments, as the kernel passes them
    for g, x, y in zip(got, _mp(a), _mp(b)):
        want = exact(x, y)
        scale = {"mul": abs(want), "div": abs(want), "add_terms": abs(x) + abs(y)}.get(
            name, max(abs(x), abs(y)))
        assert abs(g - want) <= scale * mpmath.mpf(2) ** -104


def test_exp_and_tanh_to_thirty_digits(k):
    xs = np.array([-700.0, -40.0, -3.3, -0.7, -1e-5, 0.0, 1e-9, 0.3, 1.1, 5.5, 20.0, 39.9,
                   41.0, 1e300])
    with jax.enable_x64(True):
        x = dd.from_float(jnp.asarray(xs))
        e, t = jit(dd.exp)(x, k), jit(dd.tanh)(x, k)
    for v, got_e, got_t in zip(xs, _mp(e), _mp(t)):
        want_t = mpmath.tanh(mpmath.mpf(v))
        assert abs(got_t - want_t) <= mpmath.mpf(10) ** -31
        if abs(v) < 700:
            want_e = mpmath.exp(mpmath.mpf(v))
            assert abs(got_e - want_e) <= want_e * mpmath.mpf(10) ** -30
    assert np.isinf(np.asarray(e[0])[-1]) and np.asarray(e[0])[0] > 0  # overflow, no NaN


def test_exp_and_tanh_relative_to_mpmath_over_random_arguments(k):
    """3000 double-double arguments from 1e-12 to a few hundred in size: ``exp`` within
    2**-104 of the value per unit of ``|a|`` (the argument's reduction by ``m ln2``), ``tanh``
    within 2**-102 relative, also near 0, where ``1 - 2 / (e**(2a) + 1)`` would keep only the
    digits of 1."""
    rng = np.random.default_rng(5)
    hi = rng.standard_normal(3000) * 10.0 ** rng.integers(-12, 3, 3000)
    lo = hi * rng.uniform(-1, 1, hi.shape) * 2.0 ** -53
    with jax.enable_x64(True):
        x = (jnp.asarray(hi), jnp.asarray(lo))
        e, t = jit(dd.exp)(x, k), jit(dd.tanh)(x, k)
    for v, got_e, got_t in zip(_mp(x), _mp(e), _mp(t)):
        assert abs(got_e / mpmath.exp(v) - 1) <= max(1, abs(v)) * mpmath.mpf(2) ** -104
        assert abs(got_t / mpmath.tanh(v) - 1) <= mpmath.mpf(2) ** -102


def test_split_decimal_rounds_once():
    hi, lo = dd.split_decimal("0.1")
    assert hi == 0.1 and Fraction(hi) + Fraction(lo) != Fraction(1, 10)
    assert abs(Fraction(hi) + Fraction(lo) - Fraction(1, 10)) < Fraction(1, 10 ** 33)
