"""The kernels' own float64 tanh against mpmath, compiled as the kernel compiles it."""

from fractions import Fraction
from functools import partial

import jax
import jax.extend.core
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest

from fractalsweep import elementary
from fractalsweep.kernel import COMPILER_OPTIONS


def compiled(fn):
    return jax.jit(fn, compiler_options=COMPILER_OPTIONS["cpu"])


def _ulps(values, xs):
    with mpmath.workdps(40):
        exact = np.array([float(mpmath.tanh(mpmath.mpf(float(x)))) for x in xs])
    return np.abs(values - exact) / np.spacing(np.abs(exact))


def samples(per_scale=500):
    """Every scale a hidden unit sees, and both sides of each change of the reduction's k."""
    rng = np.random.default_rng(7)
    edges = (np.arange(-60, 61) + 0.5) * np.log(2) / 2
    return np.concatenate(
        [rng.normal(size=per_scale) * s for s in (1e-9, 1e-3, 0.1, 0.5, 1, 3, 10)]
        + [rng.uniform(-25, 25, 2 * per_scale),
           (edges[:, None] + rng.uniform(-1e-9, 1e-9, (edges.size, 10))).ravel()])


@pytest.mark.parametrize("clip", ["clamp", "select"])
def test_tanh64_is_within_4_ulp_of_the_exact_value(clip):
    xs = samples()
    with jax.enable_x64(True):
        values = np.asarray(compiled(partial(elementary.tanh64, clip=clip))(xs))
    ulps = _ulps(values, xs)
    assert ulps.max() <= 4
    assert ulps.mean() < 0.6  # 0.50 here; the quotient in E and O of 0.3.0 had 0.67


def _exact_fma(a, b, c):
    """``a * b + c`` rounded once, from exact rationals: what the GPU's ``fma.rn`` gives."""
    a, b, c = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in (a, b, c)))
    out = [float(Fraction(x) * Fraction(y) + Fraction(z)) for x, y, z in zip(a.flat, b.flat, c.flat)]
    return jnp.asarray(np.reshape(out, a.shape))


def _coarse_neg_reciprocal(bits):
    """``-1 / b`` to ``bits`` bits, standing in for the GPU's approximation."""
    def neg_reciprocal(b):
        mantissa, exponent = np.frexp(1 / np.asarray(b, np.float64))
        return jnp.asarray(-np.ldexp(np.round(mantissa * 2.0**bits) / 2.0**bits, exponent))
    return neg_reciprocal


@pytest.mark.parametrize("bits", [11, 20])
def test_the_quotient_is_a_division_from_a_coarse_reciprocal(bits):
    """:func:`elementary.quotient` from a seed good to ``2^-bits``: within half an ulp and
    ``2^-59`` of the exact quotient, which makes it the division's result but where the
    exact quotient lies that close to halfway between two doubles."""
    rng = np.random.default_rng(3)
    a = rng.uniform(-1, 1, 3000) * 2.0 ** rng.integers(-60, 60, 3000)
    b = rng.uniform(0.5, 1, 3000) * 2.0 ** rng.integers(-60, 60, 3000)
    with jax.enable_x64(True):
        q = np.asarray(elementary.quotient(jnp.asarray(-a), jnp.asarray(b), _exact_fma,
                                           _coarse_neg_reciprocal(bits)))
    exact = [Fraction(x) / Fraction(y) for x, y in zip(a, b)]
    error = np.array([float(abs(Fraction(v) - e) / Fraction(float(np.spacing(abs(float(e))))))
                      for v, e in zip(q, exact)])
    assert error.max() <= 0.5 + 2.0**-59 / np.finfo(float).eps
    assert (q == a / b).mean() >= 0.999


@pytest.mark.parametrize("bits", [11, 20])
def test_tanh64_for_a_gpu_is_the_cpu_kernels_tanh(bits):
    """The GPU's form (fused.ptx_fma and fused.ptx_neg_reciprocal in the fused kernel),
    multiply-adds rounded once, gives the bits of the compiled CPU kernel's tanh: XLA's CPU
    code contracts the same multiply-adds, ``k`` is the floor's and the quotient rounds as
    the division but next to ties, which these samples do not meet."""
    xs = samples(per_scale=100)
    with jax.enable_x64(True):
        values = np.asarray(elementary.tanh64(jnp.asarray(xs), clip="select",
                                              gpu=(_exact_fma, _coarse_neg_reciprocal(bits))))
        cpu = np.asarray(compiled(partial(elementary.tanh64, clip="select"))(xs))
    np.testing.assert_array_equal(values, cpu)
    ulps = _ulps(values, xs)
    assert ulps.max() <= 4
    assert ulps.mean() < 0.6


@pytest.mark.parametrize("clip", ["clamp", "select"])
def test_tanh64_special_values(clip):
    xs = np.array([0.0, 1e-300, -1e-300, 19.5, -19.5, 20.0, 700.0, -1e308, np.inf, -np.inf, np.nan])
    with jax.enable_x64(True):
        values = np.asarray(compiled(partial(elementary.tanh64, clip=clip))(xs))
    np.testing.assert_array_equal(values[:3], xs[:3])  # tanh(x) = x below half an ulp of x^3/3
    np.testing.assert_array_equal(values[3:10], [1, -1, 1, 1, -1, 1, -1])
    assert np.isnan(values[10])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_kernels_tanh_is_tanh64_for_float64_on_a_cpu_else_xla_s(dtype):
    xs = np.random.default_rng(3).normal(size=2000).astype(dtype) * 3
    with jax.enable_x64(True):
        ours = np.asarray(compiled(elementary.tanh)(xs))
        xla = np.asarray(compiled(jnp.tanh)(xs))
        own = np.asarray(compiled(elementary.tanh64)(xs.astype("float64")))
    assert ours.dtype == dtype
    if dtype == "float64":
        np.testing.assert_array_equal(ours, own)
        assert np.any(ours != xla)  # a different function, not XLA's under another name
    else:
        np.testing.assert_array_equal(ours, xla)


def test_lowered_for_a_gpu_the_kernels_tanh_is_xla_s():
    """The choice follows the platform a computation is lowered for, not the machine's."""
    with jax.enable_x64(True):
        lowered = {p: jax.jit(elementary.tanh).trace(jnp.ones(4)).lower(lowering_platforms=(p,))
                   for p in ("cpu", "cuda")}
    cpu, cuda = (lowered[p].as_text() for p in ("cpu", "cuda"))
    assert "stablehlo.tanh" in cuda and "floor" not in cuda
    assert "stablehlo.tanh" not in cpu and "floor" in cpu


def _primitives(jaxpr) -> list:
    """The primitives of a jaxpr and of the jaxprs inside it, with their parameters."""
    found = []
    for eqn in jaxpr.eqns:
        found.append(eqn)
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            found += _primitives(sub)
    return found


def test_no_conversion_to_an_integer_and_a_clamp_only_where_asked():
    """What Triton compiles long: a saturating float-to-int conversion, a clamp keeping NaN."""
    def long(clip):
        with jax.enable_x64(True):
            jaxpr = jax.make_jaxpr(partial(elementary.tanh64, clip=clip))(jnp.ones(4)).jaxpr
        return {"conversion" if e.primitive.name == "convert_element_type" else "clamp"
                for e in _primitives(jaxpr)
                if e.primitive.name in ("clamp", "max", "min")
                or (e.primitive.name == "convert_element_type"
                    and jnp.issubdtype(e.params["new_dtype"], jnp.integer))}
    assert long("clamp") == {"clamp"} and long("select") == set()


def test_an_unknown_clip_is_refused_by_name():
    with pytest.raises(ValueError, match="clip = 'clip': valid values are 'clamp' and 'select'"):
        elementary.tanh64(jnp.ones(4), clip="clip")


def test_eleven_products_per_element():
    """What bounds tanh64 on a CPU: multiplications and FMAs (the adders have room).

    The quotient in ``p = E + O`` and ``2 O`` and the reduction on ``x`` rather than ``2x``
    took 14 down to 11 (docs/performance.md).
    """
    with jax.enable_x64(True):
        jaxpr = jax.make_jaxpr(elementary.tanh64)(jnp.ones(4)).jaxpr
    assert sum(e.primitive.name == "mul" for e in _primitives(jaxpr)) == 11
