"""The XLA kernel against the plain NumPy reference (tests/reference.py); the contract both
kernels keep (the fused kernel's own comparisons are in test_fused.py)."""

import math
import os
import subprocess
import sys
from functools import partial

import jax
import numpy as np
import pytest
import reference as ref

from fractalsweep import bench, config, fused, kernel, streams
from fractalsweep.grid import axis_values, flat_pixels

N = 12  # pixels per side
STEPS = 80
KERNELS = ["xla", "pallas"]  # pallas: the fused kernel, in interpret mode off a GPU

WINDOWS = {  # log10 bounds that hold converged, diverged and non-finite runs
    "lr": ({"kind": "lr", "layer": 0, "log10": [-1, 4]},
           {"kind": "lr", "layer": 1, "log10": [-1, 4]}),
    "offset": ({"kind": "offset", "layer": 0, "log10": [-4, 0]},
               {"kind": "lr_all", "log10": [-1, 3]}),
    "init_offset": ({"kind": "init_offset", "layer": 0, "log10": [-2, 1.5]},
                    {"kind": "lr_all", "log10": [-1, 3]}),
}


def _reference(cfg, arrays, x, y):
    """The reference run of pixel (x, y), decoding the axes by hand."""
    weights = [arrays[f"w{i}"] for i in range(cfg.model.depth)]
    lrs = [cfg.training.lr] * cfg.model.depth
    shift, init_shift = [None] * cfg.model.depth, [None] * cfg.model.depth
    for axis, value in ((cfg.x, x), (cfg.y, y)):
        if axis.kind == "lr":
            lrs[axis.layer] = value
        elif axis.kind == "lr_all":
            lrs = [value] * cfg.model.depth
        elif axis.kind == "offset":
            shift[axis.layer] = value
        else:
            init_shift[axis.layer] = value
    m = cfg.model
    return ref.train(weights, arrays["X"], arrays["Y"], m.activation, lrs,
                     cfg.training.steps, shift=shift, init_shift=init_shift,
                     batch_idx=arrays.get("batch_idx"), biases=m.biases,
                     parameterization=m.parameterization, residual=m.residual,
                     loss="cross_entropy" if cfg.data.task == "digits" else "mse")


def _away_from_boundary(sign):
    """Pixels whose four neighbours (inside the image) share their sign."""
    same = np.ones_like(sign, dtype=bool)
    for axis in (0, 1):
        for shift in (1, -1):
            rolled = np.roll(sign, shift, axis=axis)
            edge = [slice(None)] * 2
            edge[axis] = 0 if shift == 1 else -1
            rolled[tuple(edge)] = sign[tuple(edge)]
            same &= rolled == sign
    return same


CASES = [(act, batch, axes) for act in ("tanh", "relu", "identity")
         for batch in ("full", 16) for axes in ("lr", "offset")] + [("tanh", "full", "init_offset")]


def case_config(activation, batch, axes, dtype="float64"):
    """The config of one case: its activation, batch and window, N x N pixels, STEPS steps."""
    x_axis, y_axis = WINDOWS[axes]
    return config.resolve({
        "model": {"activation": activation},
        "data": {"size": 16 if activation == "identity" else "params"},
        "training": {"steps": STEPS, "batch": batch},
        "x": x_axis, "y": y_axis,
        "grid": {"resolution": N},
        "dtype": dtype,
    })


def image(out, n=N):
    """A kernel's per-pixel outputs as n x n images (rows y, columns x)."""
    return {k: v.reshape(n, n) for k, v in out.items()}


def reference_image(cfg, arrays, xs, ys):
    """The reference's outputs over the pixels, and which pixels are well-conditioned.

    Two kinds of run are ill-conditioned, and the 1e-9 comparison skips them: chaotic
    runs, where the reference itself moves when x and y move by one ulp, and runs whose loss
    nears the float64 range, where whether a sum overflows depends on summation order.
    """
    runs = [[_reference(cfg, arrays, x, y) for x in xs] for y in ys]
    want = {k: np.array([[r[k] for r in row] for row in runs])
            for k in runs[0][0] if k != "losses"}
    nudged = [[_reference(cfg, arrays, *np.nextafter([x, y], np.inf)) for x in xs] for y in ys]
    near_overflow = np.array([[np.nanmax(np.where(np.isfinite(r["losses"]), r["losses"], 0))
                               > 1e300 for r in row] for row in runs])
    stable = ~near_overflow
    for name in ("score", "final_loss"):
        moved = np.array([[r[name] for r in row] for row in nudged])
        stable &= np.abs(moved - want[name]) <= 1e-11 * np.abs(want[name])
    return want, stable


def assert_matches(got, want, well_conditioned):
    """``got`` computes what ``want`` computes: the same sign on 99% of the pixels, and 1e-9
    on the well-conditioned pixels away from the boundary (at least half of them)."""
    sign_want = want["score"] < 0
    assert ((got["score"] < 0) == sign_want).mean() >= 0.99
    away = _away_from_boundary(sign_want) & well_conditioned
    assert away.mean() >= 0.5, "too few well-conditioned pixels for a meaningful comparison"
    for name in set(want) - {"first_nonfinite"}:
        np.testing.assert_allclose(got[name][away], want[name][away], rtol=1e-9)
    np.testing.assert_array_equal(got["first_nonfinite"][away], want["first_nonfinite"][away])


def _compare_with_reference(cfg, n, full_lr_window=False):
    """The XLA kernel's outputs on an n x n grid against the reference, pixel by pixel."""
    arrays = streams.draw(cfg)
    xs, ys = axis_values(cfg.x, n, "float64"), axis_values(cfg.y, n, "float64")
    got = image(kernel.train(cfg, arrays, *flat_pixels(xs, ys), kernel="xla"), n)
    want, stable = reference_image(cfg, arrays, xs, ys)
    assert 0 < (want["score"] < 0).sum() < n * n, "the window must hold both classes"
    if full_lr_window:
        assert (want["first_nonfinite"] >= 0).any(), "the window must hold non-finite runs"
    assert_matches(got, want, stable)


@pytest.mark.parametrize("activation,batch,axes", CASES)
def test_kernel_matches_reference(activation, batch, axes):
    _compare_with_reference(case_config(activation, batch, axes), N,
                            full_lr_window=batch == "full" and axes == "lr")


LOG = {"log10": [-1, 4]}
OPTIONS = {  # model and task options, each on a window that holds both classes
    "depth 3, lr of layer 2": {"model": {"depth": 3},
                              "x": {"kind": "lr", "layer": 2, **LOG},
                              "y": {"kind": "lr", "layer": 1, **LOG}},
    "biases": {"model": {"biases": True}},
    "residual, width 8": {"model": {"depth": 4, "residual": True, "width": 8},
                          "x": {"log10": [-1, 3]}, "y": {"kind": "lr", "layer": 3,
                                                         "log10": [-1, 3]}},
    "gelu": {"model": {"activation": "gelu"}},
    "sin": {"model": {"activation": "sin"}, "x": {"log10": [0, 3]}, "y": {"log10": [0, 3]}},
    "standard": {"model": {"parameterization": "standard"}, "x": {"log10": [-2, 2]},
                 "y": {"log10": [-2, 2]}},
    "image_fit": {"data": {"task": "image_fit", "size": 64}},
    "image_fit, Fourier features": {"data": {"task": "image_fit", "size": 64,
                                             "fourier_features": 8, "fourier_scale": 2.0}},
    "digits": {"data": {"task": "digits"}, "model": {"biases": True}},
}


@pytest.mark.parametrize("name", OPTIONS)
def test_options_match_reference(name):
    raw = {"x": LOG, "y": LOG, **OPTIONS[name]}
    raw["training"] = {"steps": 40, **raw.get("training", {})}
    _compare_with_reference(config.resolve(raw), 8)


@pytest.mark.parametrize("model", [{}, {"depth": 3, "biases": True, "residual": True},
                                   {"parameterization": "standard", "activation": "gelu"}])
def test_bench_naive_method_agrees_with_the_kernel(model):
    """The benchmark's baseline (autodiff, rows as examples) trains the same networks."""
    cfg = config.resolve({"model": model, "training": {"steps": 30},
                          "x": {"log10": [-1, 0]}, "y": {"log10": [-1, 0]}})
    arrays = streams.draw(cfg)
    xs, ys = np.array([0.1, 0.3, 1.0]), np.array([1.0, 0.2, 0.5])
    with jax.enable_x64(True):
        naive = bench.naive(cfg, xs, ys, arrays)
    fused = kernel.train(cfg, arrays, xs, ys)
    np.testing.assert_allclose(np.asarray(naive["score"]), fused["score"], rtol=1e-10)


def test_float32_kernel_agrees_in_sign():
    cfg = config.resolve({"training": {"steps": STEPS}, "x": WINDOWS["lr"][0],
                          "y": WINDOWS["lr"][1], "grid": {"resolution": N}})
    cfg32 = config.resolve({**cfg.to_dict(), "dtype": "float32"})
    arrays = streams.draw(cfg)
    signs = []
    for c in (cfg, cfg32):
        xs, ys = axis_values(c.x, N, c.dtype), axis_values(c.y, N, c.dtype)
        out = kernel.train(c, arrays, *flat_pixels(xs, ys))
        assert out["score"].dtype == np.dtype(c.dtype)
        signs.append(out["score"] < 0)
    assert (signs[0] == signs[1]).mean() >= 0.95


@pytest.mark.parametrize("choice", KERNELS)
@pytest.mark.parametrize("activation,batch,group", [("tanh", "full", 4), ("tanh", 16, 4),
                                                    ("relu", "full", None)])
def test_early_exit_is_bit_identical_to_training_on(activation, batch, group, choice):
    """Retiring a group (the fused kernel: a block) once all its parameters are NaN changes
    no bit of the results.

    A NaN group of the XLA kernel is one or more NaN blocks of the fused one.
    """
    size = group or kernel.group_size()
    side = max(16, math.isqrt(4 * size))  # four groups: a GPU's 16384 takes 256 x 256
    cfg = config.resolve({"model": {"activation": activation},
                          "training": {"steps": 300, "batch": batch},
                          "x": {"log10": [-3, 6]}, "y": {"log10": [-3, 6]},
                          "grid": {"resolution": side}})
    xs, ys = axis_values(cfg.x, side, "float64"), axis_values(cfg.y, side, "float64")
    arrays = streams.draw(cfg)
    fast = kernel.train(cfg, arrays, *flat_pixels(xs, ys), group=group, kernel=choice)
    full = kernel.train(cfg, arrays, *flat_pixels(xs, ys), group=group, early_exit=False,
                        kernel=choice)
    nan_groups = (full["first_nonfinite"].reshape(-1, size) >= 0).all(axis=1)
    assert nan_groups.sum() >= (4 if group else 1), "the window must hold groups that all blow up"
    for name in ("score", "first_nonfinite", "final_loss"):
        np.testing.assert_array_equal(fast[name], full[name])


def _bits(out, i):
    return {k: v[i].tobytes() for k, v in out.items()}


@pytest.mark.parametrize("choice", KERNELS)
@pytest.mark.parametrize("batch", ["full", 16])
def test_a_pixel_does_not_depend_on_the_call(batch, choice):
    """Same pixel, other neighbours, positions, call sizes and groups of 16 or more: same bits.

    Tiling, worker counts, resumption and the zoom ladder's reuse of pixels rely on it. On a
    GPU the XLA kernel keeps the device's group (a GPU worker's only one): there a pixel's
    last bits depend on the group size (H100: groups of 16; H200: 16 and 128; docs/kernel.md).
    """
    cfg = config.resolve({"training": {"steps": 60, "batch": batch},
                          "x": {"log10": [-1, 4]}, "y": {"log10": [-1, 4]}})
    arrays = streams.draw(cfg)
    rng = np.random.default_rng(0)
    xs, ys = 10 ** rng.uniform(-1, 4, 150), 10 ** rng.uniform(-1, 4, 150)
    train = partial(kernel.train, cfg, arrays, kernel=choice)
    alone = _bits(train(xs[:1], ys[:1]), 0)
    cases = [(2, 1, None), (70, 33, None), (150, 149, None)]
    if not (choice == "xla" and jax.devices()[0].platform == "gpu"):
        cases += [(150, 77, 16), (150, 5, 128)]
    for n, pos, group in cases:
        px, py = np.roll(xs[:n], pos), np.roll(ys[:n], pos)  # the pixel moves to index pos
        assert _bits(train(px, py, group=group), pos) == alone, (n, pos)


@pytest.mark.parametrize("choice", KERNELS)
def test_one_compile_per_config(choice):
    """Calls of any size reuse one compiled group function."""
    cfg = config.resolve({"training": {"steps": 5}})
    arrays = streams.draw(cfg)
    for n in (1, 10, 100, 200):
        kernel.train(cfg, arrays, np.full(n, 2.0), np.full(n, 3.0), kernel=choice)
    compile_group = fused.compile_kernel if choice == "pallas" else kernel.compile_kernel
    compiled = compile_group(kernel.kernel_config(cfg), True)
    functions = compiled if choice == "xla" else (compiled,)  # start, advance, finish
    assert [f._cache_size() for f in functions] == [1] * len(functions)


def _dot_precisions(jaxpr):
    """The precision of every matrix product in ``jaxpr`` and the jaxprs inside it (loop
    bodies, the Pallas kernel's body)."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            yield eqn.params["precision"]
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _dot_precisions(inner)


@pytest.mark.parametrize("choice", KERNELS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_matrix_product_runs_at_full_precision(choice, dtype):
    """On a GPU a float32 product at the default precision would run as TF32 (about three
    digits): both kernels' compiled functions ask for the highest precision in every product,
    whatever the caller's default."""
    cfg = kernel.kernel_config(config.resolve({"dtype": dtype, "training": {"steps": 3}}))
    xs = np.full(8, 2.0, dtype)
    with jax.enable_x64(True), jax.default_matmul_precision("bfloat16"):
        weights, data, batch_idx = kernel.prepare(cfg, streams.draw(cfg))
        if choice == "pallas":
            jaxpr = fused.compile_kernel(cfg).trace(xs, xs, weights, data, batch_idx).jaxpr
        else:
            group = kernel.compile_kernel(cfg)
            jaxpr = group.advance.trace(group.start(xs, xs, weights), xs, xs, data, batch_idx,
                                        0, 3).jaxpr
    precisions = list(_dot_precisions(jaxpr.jaxpr))
    assert len(precisions) >= 2
    highest = (jax.lax.Precision.HIGHEST,) * 2
    assert all(p == highest for p in precisions), precisions


def test_a_process_s_xla_flags_do_not_change_the_bits(tmp_path):
    """The kernel carries its own XLA options (``kernel.COMPILER_OPTIONS``): a process told
    otherwise through ``XLA_FLAGS`` (a worker, a notebook, a test run) computes the same bits."""
    job = {"training": {"steps": 60}, "x": {"log10": [-1, 4]}, "y": {"log10": [-1, 4]}}
    script = f"""
import sys, numpy as np
from fractalsweep import config, kernel, streams
cfg = config.resolve({job!r})
xs, ys = 10 ** np.random.default_rng(0).uniform(-1, 4, (2, 64))
out = kernel.train(cfg, streams.draw(cfg), xs, ys)
np.save(sys.argv[1], out["score"])
"""
    scores = []
    for name, flags in (("256", "--xla_cpu_prefer_vector_width=256"),
                        ("512", "--xla_cpu_prefer_vector_width=512"), ("none", "")):
        path = tmp_path / f"{name}.npy"
        env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
        subprocess.run([sys.executable, "-c", script, str(path)], env=env, check=True)
        scores.append(np.load(path))
    assert all(s.tobytes() == scores[0].tobytes() for s in scores[1:])
