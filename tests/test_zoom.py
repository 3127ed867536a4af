"""Choosing new views: boxes, centres, precision guard, automatic targets, ladders, reuse."""

import itertools
import math
from decimal import Context, Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest

from fractalsweep.config import AxisConfig, resolve
from fractalsweep.errors import ConfigError, NoBoundaryError, PrecisionError
from fractalsweep.grid import axis_values, matching_indices
from fractalsweep.precision import guard, precision_check
from fractalsweep.targets import auto_target
from fractalsweep.views import aligned_resolution, box_view, centre_view, ladder

OVERVIEW = {"x": AxisConfig(lo="0.001", hi="1000000", layer=0),
            "y": AxisConfig(lo="0.001", hi="1000000", layer=1)}
BASELINE = {"x": ("13.29976231", "13.29978604"), "y": ("200.3582269", "200.3585844")}


def _narrow(centre, relative, scale="log"):
    """An axis ``relative`` wide (relative to its centre) around ``centre``."""
    with localcontext() as ctx:
        ctx.prec = 60
        c, half = Decimal(centre), Decimal(relative) / 2
        return AxisConfig(lo=str(c - c * half), hi=str(c + c * half), scale=scale)


def _decades(axis):
    with localcontext() as ctx:
        ctx.prec = 60
        return (Decimal(axis.hi) / Decimal(axis.lo)).log10()


def _log_centre(axis):
    with localcontext() as ctx:
        ctx.prec = 60
        return (Decimal(axis.lo) * Decimal(axis.hi)).log10() / 2


def _round40(value):
    return str(Context(prec=40).plus(value).normalize())


# --- box_view and centre_view -------------------------------------------------------------


def test_box_view_keeps_given_values_exactly_and_the_axis_settings():
    new = box_view(OVERVIEW, x=("190.010080", "190.011840"), y=(4.77745244, "4.77749670"))
    assert (new["x"].lo, new["x"].hi) == ("190.01008", "190.01184")
    assert (new["y"].lo, new["y"].hi) == ("4.77745244", "4.7774967")
    assert (new["x"].kind, new["x"].layer, new["x"].scale) == ("lr", 0, "log")
    assert new["y"].layer == 1
    # the strings are canonical: resolving them again changes nothing
    cfg = resolve({"x": {"lo": new["x"].lo, "hi": new["x"].hi}})
    assert (cfg.x.lo, cfg.x.hi) == (new["x"].lo, new["x"].hi)


def test_box_view_in_log10_units():
    new = box_view(OVERVIEW, x=(-2, 3), y=("0", "0.5"), log10=True)
    assert (new["x"].lo, new["x"].hi) == ("0.01", "1000")
    assert new["y"].lo == "1"
    with localcontext() as ctx:
        ctx.prec = 60
        assert new["y"].hi == _round40(Decimal(10).sqrt())
    assert box_view(OVERVIEW, y=(1, 2))["x"] is OVERVIEW["x"]


@pytest.mark.parametrize("bounds, words", [
    (("5", "3"), ["lo must be below hi", "lo=5", "hi=3"]),
    (("1", "1"), ["lo must be below hi"]),
    (("-1", "3"), ["x.lo = -1", "> 0"]),
    (("abc", "3"), ["'abc'", "not a decimal"]),
    (("1", "inf"), ["finite"]),
    ((1, 2, 3), ["expected a pair"]),
])
def test_box_view_refuses_bad_bounds_with_one_line(bounds, words):
    with pytest.raises(ConfigError) as err:
        box_view(OVERVIEW, x=bounds)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_linear_axis_accepts_signed_bounds():
    view = {"x": AxisConfig(lo="0", hi="1", scale="linear"), "y": OVERVIEW["y"]}
    assert box_view(view, x=("-0.5", "0.25"))["x"].lo == "-0.5"


def test_centre_view_width_in_decades_on_log_axes():
    new = centre_view(OVERVIEW, centre=(200, 5), width=(2, 1))
    assert (new["x"].lo, new["x"].hi) == ("20", "2000")
    with localcontext() as ctx:
        ctx.prec = 60
        root = Decimal(10).sqrt()
        assert (new["y"].lo, new["y"].hi) == (_round40(5 / root), _round40(5 * root))


def test_centre_view_in_log10_units_and_scalar_width():
    new = centre_view(OVERVIEW, centre=(1, "-2.5"), width=1, log10=True)
    with localcontext() as ctx:
        ctx.prec = 60
        root = Decimal(10).sqrt()
        assert (new["x"].lo, new["x"].hi) == (_round40(root), _round40(10 * root))
    assert (new["y"].lo, new["y"].hi) == ("0.001", "0.01")


def test_centre_view_width_in_value_units_on_linear_axes():
    view = {"x": AxisConfig(lo="0", hi="1", scale="linear"),
            "y": AxisConfig(lo="-2", hi="0", scale="linear")}
    new = centre_view(view, centre=("0.5", -1), width="0.25")
    assert (new["x"].lo, new["x"].hi) == ("0.375", "0.625")
    assert (new["y"].lo, new["y"].hi) == ("-1.125", "-0.875")
    # only the width: the centre stays
    same_centre = centre_view(view, width=(1, "0.5"))
    assert (same_centre["y"].lo, same_centre["y"].hi) == ("-1.25", "-0.75")
    assert same_centre["x"] == view["x"]


@pytest.mark.parametrize("kwargs, words", [
    ({"centre": (0, 1), "width": 1}, ["x centre = 0", "> 0"]),
    ({"centre": (1, 1), "width": (1, -2)}, ["y width = -2", "decades"]),
    ({"centre": (1,), "width": 1}, ["expected a pair"]),
])
def test_centre_view_refuses_bad_values(kwargs, words):
    with pytest.raises(ConfigError) as err:
        centre_view(OVERVIEW, **kwargs)
    for word in words:
        assert word in str(err.value)


# --- precision ----------------------------------------------------------------------------


def test_guard_refuses_a_view_float64_cannot_resolve_at_4096_pixels():
    too_deep = {"x": _narrow("13.29977", "1e-14"), "y": _narrow("200.3584", "1e-9")}
    with pytest.raises(PrecisionError) as err:
        guard(too_deep, 4096)
    message = str(err.value)
    assert isinstance(err.value, ConfigError) and "\n" not in message
    assert message.startswith("x: float64 keeps 4096 pixels distinct")
    assert "this view is 1e-14" in message and "--force" in message
    assert "collide" in message  # at 1e-14 the float64 coordinates really coincide

    report = guard(too_deep, 4096, force=True)
    assert not report["ok"] and not report["x"]["distinct"] and report["y"]["distinct"]
    assert report["x"]["decades_left"] < 0 < report["y"]["decades_left"]


def test_guard_accepts_a_resolvable_view_and_knows_float32_is_coarser():
    fine = {"x": _narrow("13.29977", "1e-9"), "y": _narrow("200.3584", "1e-9", "linear")}
    report = guard(fine, 4096)
    assert report["ok"] and report["x"]["distinct"]
    # 1e-9 relative against about 1e-12: two to three decades left
    assert 2 < report["decades_left"] < 3.5
    with pytest.raises(PrecisionError, match="float32 keeps 4096 pixels"):
        guard(fine, 4096, "float32")


@pytest.mark.parametrize("scale", ["log", "linear"])
def test_decades_left_matches_the_brute_force_distinctness_limit(scale):
    centre, n = "13.29977231", 257

    def distinct(log_relative):
        axis = _narrow(centre, repr(10 ** log_relative), scale)
        return bool(np.all(np.diff(axis_values(axis, n, "float64")) > 0))

    lo, hi = -17.0, -9.0
    assert not distinct(lo) and distinct(hi)
    for _ in range(20):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if distinct(mid) else (mid, hi)
    brute = 10 ** hi

    report = precision_check({"x": _narrow(centre, "1e-9", scale), "y": OVERVIEW["y"]}, n)
    estimate = report["x"]["limit"]
    assert estimate == pytest.approx(1e-9 / 10 ** report["x"]["decades_left"])
    # the estimate asks for 2 ulps a pixel, so it stops a little before pixels collide
    assert 1 <= estimate / brute < 3


# --- auto_target --------------------------------------------------------------------------


def _two_halves(n=129, wiggly_right=True):
    """A score image: a straight boundary in one half, a Weierstrass curve in the other."""
    v, u = np.indices((n, n)) / (n - 1)  # v along rows (y), u along columns (x)
    weierstrass = sum(0.6 ** k * np.cos(3 ** k * np.pi * u) for k in range(12))
    curve = 0.5 + 0.1 * weierstrass
    wiggly = (u >= 0.5) if wiggly_right else (u < 0.5)
    return np.where(wiggly, v - curve, v - 0.5)


def _centre_fraction(new, view, name):
    """Where the new view's centre lies across the old view, 0..1 (axis units)."""
    old = view[name]
    if old.scale == "log":
        la, lb = (float(Decimal(b).log10()) for b in (old.lo, old.hi))
        return (float(_log_centre(new[name])) - la) / (lb - la)
    lo, hi = float(old.lo), float(old.hi)
    return ((float(new[name].lo) + float(new[name].hi)) / 2 - lo) / (hi - lo)


@pytest.mark.parametrize("wiggly_right", [True, False])
def test_auto_target_picks_the_fractal_half_over_the_straight_line(wiggly_right):
    view = {"x": AxisConfig(lo="1", hi="10000"), "y": AxisConfig(lo="0", hi="1", scale="linear")}
    score = _two_halves(wiggly_right=wiggly_right)
    new = auto_target(score, view)
    fx = _centre_fraction(new, view, "x")
    # the whole box (a quarter of the width) lies in the wiggly half
    assert (fx - 0.125 >= 0.5) if wiggly_right else (fx + 0.125 <= 0.5)
    assert 0.2 < _centre_fraction(new, view, "y") < 0.8
    # exactly a quarter as wide, in decades and in value units
    assert _decades(new["x"]) == pytest.approx(Decimal(1), rel=Decimal("1e-30"))
    assert Decimal(new["y"].hi) - Decimal(new["y"].lo) == Decimal("0.25")
    assert auto_target(score.copy(), view) == new  # deterministic


def test_auto_target_stays_where_precision_is_left():
    # x straddles 16, where the float64 ulp doubles: above 16 a 4x zoom at 4097 pixels has
    # no room left, below it does. The fractal half is above 16.
    view = {"x": AxisConfig(lo="15.9999999999584", hi="16.0000000000416", scale="linear"),
            "y": AxisConfig(lo="0", hi="1", scale="linear")}
    score = _two_halves(65, wiggly_right=True)
    coarse = auto_target(score, view)
    assert Decimal(coarse["x"].lo) > 16
    fine = auto_target(score, view, resolution=4097)
    assert Decimal(fine["x"].hi) < 16
    assert guard(fine, (4097, 65))["ok"]
    with pytest.raises(PrecisionError):
        guard(coarse, (4097, 65))


def test_auto_target_refuses_when_no_precision_is_left_anywhere():
    view = {"x": _narrow("13.29977", "4e-12"), "y": AxisConfig(lo="0", hi="1", scale="linear")}
    with pytest.raises(PrecisionError, match="x: float64 keeps 4097 pixels"):
        auto_target(_two_halves(65), view, resolution=4097)
    forced = auto_target(_two_halves(65), view, resolution=4097, force=True)
    assert forced == auto_target(_two_halves(65), view)


@pytest.mark.parametrize("score", [
    -np.ones((64, 64)),
    np.full((64, 64), np.nan),
    np.indices((64, 64)).sum(axis=0) % 2 - 0.5,  # a checkerboard: boundary, but unresolved
])
def test_auto_target_raises_without_a_boundary(score):
    with pytest.raises(NoBoundaryError, match="boundary"):
        auto_target(score, OVERVIEW)


# --- ladder and pixel reuse ---------------------------------------------------------------


def test_log_ladder_doubles_decades_around_one_centre_until_six_decades():
    deep = box_view(OVERVIEW, **BASELINE)
    views = ladder(deep, widest=6)
    assert views[-1] is deep
    decades = [min(_decades(v[name]) for name in "xy") for v in views]
    expected = math.ceil(math.log2(6 / float(decades[-1]))) + 1
    assert len(views) == expected
    assert decades[0] >= 6 > decades[1]
    for wide, narrow in itertools.pairwise(views):
        for name in "xy":
            assert abs(_decades(wide[name]) / _decades(narrow[name]) - 2) < Decimal("1e-30")
    for view in views:
        for name in "xy":
            assert abs(_log_centre(view[name]) - _log_centre(deep[name])) < Decimal("1e-38")
            assert len(Decimal(view[name].lo).as_tuple().digits) <= 40
    # the centre pixel of an odd grid is the same float64 number on every level
    middles = {axis_values(v["x"], 33, "float64")[16] for v in views}
    assert len(middles) == 1


def test_linear_ladder_is_exact_and_stops_at_the_given_view():
    deep = {"x": AxisConfig(lo="0.1", hi="0.3", scale="linear"),
            "y": AxisConfig(lo="4.77745244", hi="4.77749670", scale="linear")}
    widest = {"x": AxisConfig(lo="0", hi="1", scale="linear"),
              "y": AxisConfig(lo="4", hi="5", scale="linear")}
    views = ladder(deep, widest=widest)
    # y is the narrower: 4.426e-5 * 2**15 >= 1 > 4.426e-5 * 2**14
    assert len(views) == 16
    for k, view in enumerate(reversed(views)):
        for name in "xy":
            lo, hi = Fraction(deep[name].lo), Fraction(deep[name].hi)
            centre, half = (lo + hi) / 2, (hi - lo) / 2 * 2 ** k
            assert (Fraction(view[name].lo), Fraction(view[name].hi)) == (centre - half,
                                                                          centre + half)
    assert (views[-2]["x"].lo, views[-2]["x"].hi) == ("0", "0.4")


def test_ladder_in_decades_needs_a_log_axis():
    linear = {name: AxisConfig(lo="1", hi="2", scale="linear") for name in "xy"}
    with pytest.raises(ConfigError, match="needs a log axis"):
        ladder(linear, widest=6)


def test_aligned_resolution():
    assert [aligned_resolution(n) for n in (2, 5, 6, 4096, 4097)] == [5, 5, 9, 4097, 4097]


def coinciding_pixels(narrow, wide, resolution, dtype="float64"):
    """Per axis, the pixels of ``wide`` whose coordinates equal pixels of ``narrow`` (as the
    store's reuse finds them, from the coordinates the kernel is given)."""
    nx, ny = (resolution, resolution) if isinstance(resolution, int) else resolution
    return {name: matching_indices(axis_values(wide[name], n, dtype),
                                   axis_values(narrow[name], n, dtype))
            for name, n in (("x", nx), ("y", ny))}


def _check_pairs(narrow, wide, n, dtype="float64"):
    """Index pairs of every axis: the structural ones, and truly bit-equal coordinates."""
    m = (n - 1) // 2
    pairs = coinciding_pixels(narrow, wide, n, dtype)
    for name in "xy":
        wide_idx, narrow_idx = pairs[name]
        # narrow pixel i sits where the wide one has pixel (i + m) / 2
        assert len(wide_idx) == (n // 2 + 1 if n % 4 == 1 else n // 2)
        np.testing.assert_array_equal(narrow_idx, 2 * wide_idx - m)
        w = axis_values(wide[name], n, dtype)[wide_idx]
        s = axis_values(narrow[name], n, dtype)[narrow_idx]
        np.testing.assert_array_equal(w.view(f"u{w.itemsize}"), s.view(f"u{s.itemsize}"))


@pytest.mark.parametrize("n", [5, 7, 17, 19])
def test_every_ladder_step_shares_half_the_pixels_per_axis(n):
    deep = box_view(OVERVIEW, **BASELINE)
    views = ladder(deep, widest=6)
    for wide, narrow in itertools.pairwise(views):
        _check_pairs(narrow, wide, n)
    linear = {"x": AxisConfig(lo="0.1", hi="0.3", scale="linear"),
              "y": AxisConfig(lo="-3", hi="7", scale="linear")}
    views = ladder(linear, widest={"x": AxisConfig(lo="0", hi="100", scale="linear"),
                                   "y": linear["y"]})
    for wide, narrow in itertools.pairwise(views):
        _check_pairs(narrow, wide, n)


def test_published_resolution_aligned_shares_a_quarter_of_the_pixels():
    deep = box_view(OVERVIEW, **BASELINE)
    wide, narrow = ladder(deep, widest=6)[-2:]
    n = aligned_resolution(4096)
    _check_pairs(narrow, wide, n)
    # 2049 of 4097 per axis: just over a quarter of the 2-D pixels are copied
    assert (n // 2 + 1) ** 2 / n ** 2 > 0.25


def test_even_resolution_shares_nothing_and_float32_shares_too():
    deep = box_view(OVERVIEW, **BASELINE)
    wide, narrow = ladder(deep, widest=6)[:2]
    pairs = coinciding_pixels(narrow, wide, (16, 8))
    assert all(len(idx) == 0 for pair in pairs.values() for idx in pair)
    _check_pairs(narrow, wide, 9, "float32")
