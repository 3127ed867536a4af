"""Classic fractals as sweep systems, against plain per-point Python loops and known facts."""

import cmath
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import zarr

import fractalsweep as fs
from fractalsweep import Execution
from fractalsweep.cli import main
from fractalsweep.config import resolve
from fractalsweep.grid import axis_values, flat_pixels
from fractalsweep.summary import describe, format_info
from fractalsweep.systems import system_of
from fractalsweep.views import window

SYNC = Execution(scheduler="sync", tile=8)
R = 256.0


def escape_reference(z, c, max_iter):
    """One orbit, written from the definition in docs/fractals.md with plain Python."""
    trap = math.inf
    for n in range(1, max_iter + 1):
        z = z * z + c
        trap = min(trap, abs(z))
        if abs(z) > R:
            return max(n + 1 - math.log2(math.log(abs(z)) / math.log(R)), 0.0), n
    return -(1 + trap), max_iter


def newton_reference(z, root, max_iter):
    """Steps n until z_n is within 1e-9 of a root, z_0 the pixel itself (n = 0 on a root)."""
    roots = [cmath.exp(2j * math.pi * k / 3) for k in range(3)]
    for n in range(max_iter + 1):
        if n:
            try:
                z = z - (z ** 3 - 1) / (3 * z * z)
            except ZeroDivisionError:
                return 1.0 + max_iter, max_iter
        for k, r in enumerate(roots):
            if abs(z - r) < 1e-9:
                return (-(1.0 + n) if k == root else 1.0 + n), n
    return 1.0 + max_iter, max_iter


def _grid(job, n):
    cfg = resolve({**job, "grid": {"resolution": n}})
    xs, ys = flat_pixels(axis_values(cfg.x, n, "float64"), axis_values(cfg.y, n, "float64"))
    return cfg, xs, ys


@pytest.mark.parametrize("kind,c", [("mandelbrot", [0, 0]), ("julia", ["-0.123", "0.745"])])
def test_escape_time_matches_a_plain_loop(kind, c):
    cfg, xs, ys = _grid({"system": {"kind": kind, "c": c, "max_iter": 150}}, 23)
    got = system_of(cfg).compute(cfg, {}, xs, ys)
    for x, y, score, n in zip(xs, ys, got["score"], got["iterations"]):
        point = complex(x, y)
        z, cc = (0j, point) if kind == "mandelbrot" else (point, complex(-0.123, 0.745))
        want, want_n = escape_reference(z, cc, 150)
        assert (score < 0) == (want < 0) and n == want_n
        assert score == pytest.approx(want, rel=1e-12)
    assert (got["score"] < 0).any() and (got["score"] >= 0).any()


def test_newton_basins_match_a_plain_loop_and_the_rotation_symmetry():
    cfg, xs, ys = _grid({"system": {"kind": "newton", "max_iter": 60}}, 21)
    got = system_of(cfg).compute(cfg, {}, xs, ys)
    for x, y, score, n in zip(xs, ys, got["score"], got["iterations"]):
        want, want_n = newton_reference(complex(x, y), 0, 60)
        assert score == pytest.approx(want, rel=1e-12) and n == want_n
    assert got["score"][(xs == 1) & (ys == 0)].tolist() == [-1.0]  # on root 0: decided at once
    # The map commutes with z -> w z (w a cube root of 1), which carries basin 0 to basin 1:
    w = cmath.exp(2j * math.pi / 3)
    turned = (xs + 1j * ys) * w
    root1 = resolve({"system": {"kind": "newton", "max_iter": 60, "root": 1}})
    other = system_of(root1).compute(root1, {}, turned.real, turned.imag)
    same = (got["score"] < 0) == (other["score"] < 0)
    assert same.mean() > 0.97  # up to pixels on the fractal basin boundary itself


def test_julia_of_zero_is_the_unit_disc():
    """c = 0: |z| < 1 stays bounded, |z| > 1 escapes after n steps with |z|^(2^n) > R."""
    cfg = resolve({"system": {"kind": "julia", "c": [0, 0], "max_iter": 200}})
    r = np.array([0.5, 0.99, 1.01, 1.5, 3.0, 100.0])
    got = system_of(cfg).compute(cfg, {}, r, np.zeros_like(r))
    assert (got["score"][:2] < 0).all() and (got["score"][2:] >= 0).all()
    n = np.ceil(np.log2(np.log(R) / np.log(r[2:])) - 1e-12)  # first n with r^(2^n) > R
    np.testing.assert_array_equal(got["iterations"][2:], n.clip(min=1))


def test_a_pixel_does_not_depend_on_the_others_in_its_call():
    cfg, xs, ys = _grid({"system": {"kind": "julia", "c": [-1, 0], "max_iter": 300}}, 16)
    whole = system_of(cfg).compute(cfg, {}, xs, ys)["score"]
    order = np.random.default_rng(0).permutation(xs.size)
    parts = [system_of(cfg).compute(cfg, {}, xs[order[i:i + 7]], ys[order[i:i + 7]])["score"]
             for i in range(0, xs.size, 7)]
    np.testing.assert_array_equal(np.concatenate(parts), whole[order])


def test_fractal_jobs_go_through_run_zoom_ladder_animate_and_dimension(tmp_path, job_dir):
    store = fs.run(job_dir / "fractals" / "julia_basilica.toml", tmp_path / "j.zarr",
                   overrides=["grid.resolution=41", "system.max_iter=200"], execution=SYNC,
                   progress=False)
    level = store.level(0)
    assert level.arrays == ["score", "iterations", "reused"]
    assert (level.score < 0).any() and (level.score >= 0).any()
    provenance = zarr.open_group(store.path, mode="r")["levels/0/provenance"][0, 0][()]
    assert json.loads(str(provenance))["steps"] == 200  # its iterations, not training.steps
    assert "1681 pixels computed in" in str(store.report)  # not "trained"
    config_lines = format_info(describe(store.path)).split("config\n")[1].split("levels")[0]
    assert "system    kind julia, c ['-1', '0'], max_iter 200\n" in config_lines
    assert "training" not in config_lines and "root" not in config_lines
    deep = store.zoom(centre=(0, 0), width=(0.45, 0.45), execution=SYNC, progress=False)
    assert deep.view["x"].lo == "-0.225" and deep.view["y"].hi == "0.225"
    wide = subprocess.run([sys.executable, "-m", "fractalsweep", "ladder", store.path,
                           "--scheduler", "sync", "--quiet", "--no-render"],
                          capture_output=True, text=True, timeout=300)
    assert wide.returncode == 0, wide.stderr  # linear axes: up to level 0's width
    ladder = store.ladder(execution=SYNC, progress=False)  # found again, not computed twice
    assert f"ladder of {len(ladder)} levels {[lv.index for lv in ladder]}" in wide.stdout
    assert [lv.index for lv in ladder][-1] == deep.index and len(ladder) >= 4
    widths = [window(lv.view["x"])[1] for lv in (ladder[0], ladder[1], store.level(0))]
    assert widths[1] < widths[2] <= widths[0]  # the first as wide as level 0 or wider
    assert store.dimension(method="paper").levels == tuple(lv.index for lv in ladder)
    out = store.animate(tmp_path / "j.gif", size=(32, 32), frames_per_octave=2, progress=False)
    assert out["frames"] > 0
    png = subprocess.run([sys.executable, "-m", "fractalsweep", "render", store.path],
                         capture_output=True, text=True, timeout=120)
    assert png.returncode == 0, png.stderr
    assert zarr.open_group(store.path, mode="r").attrs["fractalsweep"]["config"]["system"] == {
        "kind": "julia", "c": ["-1", "0"], "max_iter": 200, "root": 0}


def test_a_fractal_s_dry_run_counts_iterations_not_training_steps(job_dir, capsys):
    """It printed the network's 1000 steps at its flop rate (22 s for a 0.9 s map)."""
    status = main(["run", str(job_dir / "fractals" / "newton.toml"), "--set",
                   "system.max_iter=5", "--set", "grid.resolution=64", "--dry-run"])
    out = capsys.readouterr().out
    assert status == 0 and "64x64 pixels x up to 5 iterations of system.kind = 'newton'" in out
    assert "worker-hours: unknown ('fractalsweep bench' measures training runs only)" in out
    assert "steps" not in out and "flop" not in out


def test_a_double_double_fractal_is_refused_before_any_file(tmp_path, job_dir):
    """A fractal computes in float64 or float32: a double-double job or zoom is one line,
    not a failure of every tile, and a zoom too deep for float64 is not told to use it."""
    job = job_dir / "fractals" / "mandelbrot.toml"
    with pytest.raises(fs.ConfigError, match="dtype = 'double-double': system.kind = 'mandelbrot'"):
        fs.run(job, tmp_path / "dd.zarr", overrides=["dtype=double-double"], execution=SYNC,
               progress=False)
    assert not (tmp_path / "dd.zarr").exists()
    store = fs.run(job, tmp_path / "m.zarr", overrides=["grid.resolution=8"], execution=SYNC,
                   progress=False)
    with pytest.raises(fs.ConfigError, match="computes in float64 or float32"):
        store.zoom(centre=(-0.75, 0.1), width=1e-20, dtype="double-double", execution=SYNC,
                   progress=False)
    with pytest.raises(fs.PrecisionError, match="coarser resolution") as refused:
        store.zoom(centre=(-0.75, 0.1), width=1e-20, execution=SYNC, progress=False)
    assert "double-double" not in str(refused.value)
    assert len(fs.open(store.path).levels) == 1


def test_the_imaginary_part_on_x_is_computed_as_labelled(tmp_path):
    """Swapped axes draw the transposed picture, not the same one with other labels."""
    plane = {"re": ("-2.25", "0.75"), "im": ("-1.5", "1.5")}

    def job(x, y):
        return {"system": {"kind": "mandelbrot", "max_iter": 60}, "grid": {"resolution": 12},
                "x": {"kind": x, "lo": plane[x][0], "hi": plane[x][1]},
                "y": {"kind": y, "lo": plane[y][0], "hi": plane[y][1]}}

    usual = fs.run(job("re", "im"), tmp_path / "a.zarr", execution=SYNC, progress=False)
    swapped = fs.run(job("im", "re"), tmp_path / "b.zarr", execution=SYNC, progress=False)
    a, b = usual.level(0).score, swapped.level(0).score
    np.testing.assert_array_equal(b, a.T)
    assert not np.array_equal(a, b)
    assert swapped.level(0).view["x"].label == "imaginary part"


@pytest.mark.parametrize("raw,words", [
    ({"system": {"kind": "mandelbrot"}, "x": {"kind": "re"}, "y": {"kind": "re"}},
     ["x and y both set the real part"]),
    ({"system": {"kind": "newton"}, "seed": 5}, ["seed is read by training systems only"]),
    ({"system": {"kind": "newton"}, "scheme": "default"}, ["scheme is read by training"]),
    ({"system": {"kind": "lorenz"}}, ["system.kind", "mandelbrot, julia, newton"]),
    ({"system": {"kind": "julia"}, "x": {"kind": "lr", "lo": 1, "hi": 2}}, ["x.kind", "re, im"]),
    ({"x": {"kind": "re", "lo": 1, "hi": 2}}, ["x.kind", "lr, lr_all"]),
    ({"system": {"kind": "newton", "root": 3}}, ["system.root", "0, 1, 2"]),
    ({"system": {"kind": "julia", "c": [1]}}, ["system.c", "[re, im]"]),
    ({"system": {"kind": "julia", "max_iter": 0}}, ["system.max_iter", ">= 1"]),
])
def test_bad_system_settings_name_the_key(raw, words):
    with pytest.raises(fs.ConfigError) as err:
        resolve(raw)
    for word in words:
        assert word in str(err.value)
