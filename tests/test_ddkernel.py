"""Training in double-double against mpmath at 50 digits, the float64 kernel and the store."""

import mpmath
import numpy as np
import pytest

import fractalsweep as fs
from fractalsweep import ddkernel, kernel, streams, summary
from fractalsweep.config import resolve
from fractalsweep.grid import axis_values, flat_pixels

mpmath.mp.dps = 50


def mp_losses(weights, X, Y, activation, lrs, steps, shift=None):
    """One run of a mean-field MLP (docs/science.md, sections 2, 5), in mpmath, plain loops.

    weights: float64 arrays (fan_in, fan_out); lrs and shift: one value (or None) per layer.
    Returns the loss recorded before each update.
    """
    mpf = mpmath.mpf
    W = [[[mpf(float(v)) for v in row] for row in w] for w in weights]
    Xs = [[mpf(float(v)) for v in row] for row in X]
    Ys = [[mpf(float(v)) for v in row] for row in Y]
    lrs = [mpf(lr) for lr in lrs]
    shift = [None if s is None else mpf(s) for s in (shift or [None] * len(W))]
    phi = {"tanh": lambda z: mpmath.tanh(mpmath.sqrt(2) * z),
           "relu": lambda z: mpmath.sqrt(2) * max(z, 0), "identity": lambda z: z}[activation]
    dphi = {"tanh": lambda z: mpmath.sqrt(2) * (1 - mpmath.tanh(mpmath.sqrt(2) * z) ** 2),
            "relu": lambda z: mpmath.sqrt(2) * (1 if z > 0 else 0),
            "identity": lambda z: mpf(1)}[activation]
    losses = []
    for _ in range(steps):
        W = [w if s is None else [[v + s for v in row] for row in w] for w, s in zip(W, shift)]
        hs, zs = [Xs], []
        for i, w in enumerate(W):
            c = 1 / mpmath.sqrt(len(w))
            z = [[c * sum(h[a] * w[a][b] for a in range(len(w))) for b in range(len(w[0]))]
                 for h in hs[-1]]
            if i == len(W) - 1:
                out = [[c * v for v in row] for row in z]
            else:
                zs.append(z)
                hs.append([[phi(v) for v in row] for row in z])
        r = [[o - y for o, y in zip(orow, yrow)] for orow, yrow in zip(out, Ys)]
        entries = len(r) * len(r[0])
        losses.append(sum(v * v for row in r for v in row) / entries)
        g = [[2 * v / entries for v in row] for row in r]
        grads = [None] * len(W)
        for i in range(len(W) - 1, -1, -1):
            c = 1 / mpmath.sqrt(len(W[i]))
            g = [[c * v for v in row] for row in g]
            if i == len(W) - 1:
                g = [[c * v for v in row] for row in g]
            h = hs[i]
            grads[i] = [[sum(h[n][a] * g[n][b] for n in range(len(h))) for b in range(len(g[0]))]
                        for a in range(len(W[i]))]
            if i:
                g = [[sum(g[n][b] * W[i][a][b] for b in range(len(g[0]))) * dphi(zs[i - 1][n][a])
                      for a in range(len(W[i]))] for n in range(len(g))]
        W = [[[v - lr * gv for v, gv in zip(row, grow)] for row, grow in zip(w, gw)]
             for w, gw, lr in zip(W, grads, lrs)]
    return losses


SMALL = {"model": {"width": 4}, "training": {"steps": 25}}


@pytest.mark.parametrize("activation,lrs,kind", [
    ("tanh", ("3.1", "3.2"), "lr"), ("relu", ("1.1", "3"), "lr"),
    ("identity", ("0.002", "0.3"), "offset")])
def test_loss_curve_matches_mpmath_to_thirty_digits(activation, lrs, kind):
    """A converging run of a 4-4-1 network (20 data points), 25 steps: every loss within
    1e-27 of 50-digit arithmetic; the float64 kernel's own arithmetic is 1e-12 away."""
    axes = ({"kind": "lr", "layer": 0, "lo": "1", "hi": "2"},
            {"kind": "lr", "layer": 1, "lo": "1", "hi": "2"})
    if kind == "offset":
        axes = ({"kind": "offset", "layer": 0, "lo": "0.001", "hi": "1"},
                {"kind": "lr_all", "lo": "0.001", "hi": "1"})
    cfg = resolve({**SMALL, "model": {"width": 4, "activation": activation},
                   "x": axes[0], "y": axes[1]})
    arrays = streams.draw(cfg)
    x, y = (fs_pair(v) for v in lrs)
    got = ddkernel.loss_curve(cfg, arrays, x, y)
    weights = [arrays["w0"], arrays["w1"]]
    if kind == "offset":
        want = mp_losses(weights, arrays["X"], arrays["Y"], activation, [lrs[1]] * 2, 25,
                         shift=[lrs[0], None])
    else:
        want = mp_losses(weights, arrays["X"], arrays["Y"], activation, lrs, 25)
    assert want[-1] < want[0], "a converging run"
    for (hi, lo), w in zip(got, want):
        assert abs(mpmath.mpf(hi) + mpmath.mpf(lo) - w) <= abs(w) * mpmath.mpf(10) ** -27


def fs_pair(decimal_text):
    """A hyperparameter value as the double-double pair the grid makes of it."""
    from fractalsweep.doubledouble import split_decimal

    return split_decimal(decimal_text)


def _grid(log10, n, steps):
    cfg = resolve({"training": {"steps": steps}, "x": {"log10": log10}, "y": {"log10": log10},
                   "grid": {"resolution": n}, "dtype": "double-double"})
    pixels = {d: flat_pixels(axis_values(cfg.x, n, d), axis_values(cfg.y, n, d))
              for d in ("float64", "double-double")}
    return cfg, streams.draw(cfg), pixels


def test_double_double_agrees_with_float64_away_from_chaos():
    cfg, arrays, pixels = _grid([-1, 4], 6, 40)
    f64 = kernel.train(resolve({**cfg.to_dict(), "dtype": "float64"}), arrays,
                       *pixels["float64"])
    got = ddkernel.train(cfg, arrays, *pixels["double-double"])
    assert (got["score"] < 0).any() and (got["score"] >= 0).any()
    assert ((got["score"] < 0) == (f64["score"] < 0)).all()
    np.testing.assert_allclose(got["score"], f64["score"], rtol=0.02)


def test_early_exit_is_bit_identical_to_training_on():
    cfg, arrays, pixels = _grid([6, 9], 4, 40)
    fast = ddkernel.train(cfg, arrays, *pixels["double-double"])
    assert (fast["first_nonfinite"] >= 0).all(), "every run of the group blows up"
    full = ddkernel.train(cfg, arrays, *pixels["double-double"], early_exit=False)
    for name in fast:
        np.testing.assert_array_equal(fast[name], full[name])


def test_a_pixel_s_bits_do_not_depend_on_its_group(monkeypatch):
    """On a window where some runs blow up and others do not, a CPU's groups of 2 stop at
    different steps; every pixel's outputs are those of groups of 16."""
    cfg, arrays, pixels = _grid([4, 7], 6, 60)
    small = ddkernel.train(cfg, arrays, *pixels["double-double"])
    assert (small["first_nonfinite"] >= 0).any() and (small["first_nonfinite"] < 0).any()
    monkeypatch.setattr(ddkernel, "GROUP", dict.fromkeys(ddkernel.GROUP, 16))
    large = ddkernel.train(cfg, arrays, *pixels["double-double"])
    for name in small:
        np.testing.assert_array_equal(small[name], large[name])


def test_a_double_double_level_goes_where_float64_cannot(tmp_path):
    sync = fs.Execution(scheduler="sync", tile=5)
    store = fs.run({"training": {"steps": 20}, "x": {"log10": [-1, 4]},
                    "y": {"log10": [-1, 4]}, "grid": {"resolution": 5}},
                   tmp_path / "s.zarr", execution=sync, progress=False)
    with pytest.raises(fs.PrecisionError, match="double-double"):
        store.zoom(centre=(30, 300), width=1e-18, execution=sync, progress=False)
    deep = store.zoom(centre=(30, 300), width=1e-18, dtype="double-double", execution=sync,
                      progress=False)
    assert deep.dtype == "double-double" and not deep.attrs["preview"] and deep.complete
    x = deep.to_xarray()
    hi, lo = x["x"].values, x["x_lo"].values
    assert np.all(hi == hi[0]) and np.all(np.diff(lo) > 0)  # apart only in the remainder
    np.testing.assert_array_equal(x["x_lo"].values, axis_values(deep.view["x"], 5,
                                                                "double-double")[:, 1])
    # its labels tell the ends apart, though the ends are one float (they read 30 .. 30)
    from matplotlib.figure import Figure

    ax = deep.plot(Figure().subplots()).axes
    name, centre = ax.get_xlabel().split(" - ")  # the ticks are offsets from a centre
    assert name == deep.view["x"].label
    row = summary.format_info(summary.describe(str(tmp_path / "s.zarr"))).splitlines()[-1]
    with mpmath.workdps(40):
        ends = [mpmath.mpf(centre) + mpmath.mpf(t.get_text()) for t in ax.get_xticklabels()]
        exact = [mpmath.mpf(float(h)) + mpmath.mpf(float(low)) for h, low in zip(hi, lo)]
        window = [mpmath.mpf(v) for v in row.split()[-6:-3:2]]  # x window: 'lo .. hi'
        span = exact[-1] - exact[0]  # the window's first and last pixels are its ends
        for labels in (ends, window):
            assert abs(labels[0] - exact[0]) < span / 8 and abs(labels[1] - exact[-1]) < span / 8


def test_unsupported_configs_are_refused_in_one_line():
    cfg = resolve({"dtype": "double-double", "x": {"kind": "init_offset", "layer": 0,
                                                  "lo": "1", "hi": "2"}})
    ddkernel.check(cfg)  # the baseline family, every axis kind of the paper: accepted
    with pytest.raises(fs.ConfigError, match="training.optimizer"):
        ddkernel.check(resolve({"dtype": "double-double", "training": {"optimizer": "adam"}}))


def test_a_config_the_kernel_cannot_train_is_refused_before_any_file(tmp_path):
    """A sweep, or a zoom of a store, that double-double cannot train is refused before the
    store or the level exists, not by every tile."""
    sync = fs.Execution(scheduler="sync", tile=5)
    job = {"training": {"steps": 5}, "model": {"biases": True}, "grid": {"resolution": 5}}
    with pytest.raises(fs.ConfigError, match="model.biases = true"):
        fs.run(job | {"dtype": "double-double"}, tmp_path / "dd.zarr", execution=sync,
               progress=False)
    assert not (tmp_path / "dd.zarr").exists()
    store = fs.run(job, tmp_path / "f64.zarr", execution=sync, progress=False)
    with pytest.raises(fs.ConfigError, match="model.biases = true"):
        store.zoom(centre=(1, 1), width=1e-3, dtype="double-double", execution=sync,
                   progress=False)
    assert len(fs.open(tmp_path / "f64.zarr").levels) == 1
