"""The fused Pallas kernel (interpret mode off a GPU) against the XLA kernel and the reference.

Its contract shared with the XLA kernel (early exit bit-identical to training on, a pixel
independent of its call, one compile per config) is tested in test_kernel.py for both.
"""

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import test_elementary as te
import test_kernel as tk
from jax.experimental import pallas as pl

from fractalsweep import bench, config, elementary, fused, kernel, streams
from fractalsweep.errors import ConfigError
from fractalsweep.fused import pltriton
from fractalsweep.grid import axis_values, flat_pixels
from fractalsweep.models import MLP, Layer
from fractalsweep.tasks import TASKS


def _images(cfg, arrays, nudge=False):
    """Per kernel, the outputs over the case's pixels; ``nudge``: each value one ulp up."""
    xs, ys = axis_values(cfg.x, tk.N, cfg.dtype), axis_values(cfg.y, tk.N, cfg.dtype)
    if nudge:
        xs, ys = (np.nextafter(v, v.dtype.type(np.inf)) for v in (xs, ys))
    return {choice: tk.image(kernel.train(cfg, arrays, *flat_pixels(xs, ys), kernel=choice))
            for choice in ("pallas", "xla")}


@pytest.mark.parametrize("activation,batch,axes", tk.CASES)
def test_fused_kernel_matches_the_reference_and_the_xla_kernel(activation, batch, axes):
    """float64: the XLA kernel's criteria against the reference, and the same against it."""
    _matches_the_reference(tk.case_config(activation, batch, axes))


@pytest.mark.skipif(fused.interpret_here(), reason="PTX runs on a GPU only")
@pytest.mark.parametrize("batch", ["full", 16])
def test_fused_multiply_adds_on_a_gpu_match_the_reference(batch, monkeypatch):
    """``Launch.fma``, compiled: the same criteria as without it."""
    launch = dataclasses.replace(fused.LAUNCH["float64"], fma=True)
    monkeypatch.setattr(fused, "LAUNCH", {**fused.LAUNCH, "float64": launch})
    fused.compile_kernel.cache_clear()
    try:
        _matches_the_reference(tk.case_config("tanh", batch, "lr"))
    finally:
        fused.compile_kernel.cache_clear()


def _on_gpu(fn, x):
    """``fn`` of a float64 array (power-of-two size) in a Pallas kernel compiled for the GPU."""
    def body(x_ref, out_ref):
        out_ref[...] = fn(x_ref[...])

    return np.asarray(pl.pallas_call(body, out_shape=jax.ShapeDtypeStruct(x.shape, x.dtype),
                                     compiler_params=pltriton.CompilerParams(num_warps=4))(x))


@pytest.mark.skipif(fused.interpret_here(), reason="PTX runs on a GPU only")
def test_the_gpus_tanh_is_the_cpu_kernels():
    """The GPU's form of tanh (``Launch.fma``) gives the CPU kernel's tanh, bit for bit but
    next to ties (of ``k``, and of the quotient halfway between two doubles); and the
    reciprocal it starts from is within the ``2^-10`` that :func:`elementary.quotient`
    needs (printed: how many bits it has)."""
    xs = np.resize(te.samples(), 8192)
    b = np.abs(xs) * 2.0 ** np.resize(np.arange(-60, 61), 8192) + 0.5
    with jax.enable_x64(True):
        gpu = _on_gpu(fused.activation("tanh", "float64", fma=True).fn, jnp.asarray(xs))
        seed = _on_gpu(fused.ptx_neg_reciprocal, jnp.asarray(b))
        cpu = np.asarray(te.compiled(partial(elementary.tanh64, clip="select"))(
            jax.device_put(xs, jax.devices("cpu")[0])))
    error = np.abs(1 + b * seed).max()
    print(f"reciprocal approximation: {-np.log2(error):.1f} bits")
    assert error <= 2.0**-10
    assert (gpu != cpu).mean() <= 1e-3
    assert (np.abs(gpu - cpu) <= np.spacing(np.abs(cpu))).all()


def _matches_the_reference(cfg):
    arrays = streams.draw(cfg)
    got = _images(cfg, arrays)
    want, stable = tk.reference_image(cfg, arrays, axis_values(cfg.x, tk.N, "float64"),
                                      axis_values(cfg.y, tk.N, "float64"))
    tk.assert_matches(got["pallas"], want, stable)
    tk.assert_matches(got["pallas"], got["xla"], stable)


@pytest.mark.parametrize("activation,batch,axes", [
    ("tanh", "full", "lr"), ("tanh", 16, "offset"), ("relu", 16, "lr"),
    ("identity", "full", "offset"), ("tanh", "full", "init_offset")])
def test_float32_fused_kernel_matches_the_xla_kernel(activation, batch, axes):
    """float32, against the XLA kernel in float32 (the reference is float64).

    Well-conditioned here: away from the boundary, and the XLA kernel's score moves by at
    most 1e-5 and its finite/non-finite outcome not at all when x and y move by one float32
    ulp. On those pixels the two kernels differ only in summation order; 1e-3 leaves a
    factor of 10 over the largest difference seen (9.5e-5). The step of the first non-finite
    loss is not compared: in float32 many runs overflow, and which step overflows first
    depends on summation order (the XLA kernel nudged by one ulp moves it too).
    """
    cfg = tk.case_config(activation, batch, axes, dtype="float32")
    arrays = streams.draw(cfg)
    got, nudged = _images(cfg, arrays), _images(cfg, arrays, nudge=True)["xla"]
    want = got["xla"]
    assert got["pallas"]["score"].dtype == np.float32
    assert ((got["pallas"]["score"] < 0) == (want["score"] < 0)).mean() >= 0.97
    blew_up = want["first_nonfinite"] >= 0
    well = (tk._away_from_boundary(want["score"] < 0)
            & (np.abs(nudged["score"] - want["score"]) <= 1e-5 * np.abs(want["score"]))
            & (blew_up == (nudged["first_nonfinite"] >= 0)))
    assert well.mean() >= 0.5
    np.testing.assert_allclose(got["pallas"]["score"][well], want["score"][well], rtol=1e-3)
    np.testing.assert_array_equal(got["pallas"]["first_nonfinite"][well] >= 0, blew_up[well])


def _block(arrays, rng, b=4):
    """A block of ``b`` networks near the init, and the data, in the kernel's layout."""
    w0, w1 = (np.asarray(arrays[f"w{i}"]).T for i in range(2))
    params = (w0 + 0.1 * rng.normal(size=(b, *w0.shape)),
              w1[0] + 0.1 * rng.normal(size=(b, w1.size)))
    return params, arrays["X"], arrays["Y"][:, 0]


@pytest.mark.parametrize("activation", ["tanh", "relu", "identity"])
def test_block_math_matches_the_model(activation):
    """The kernel's block forward/backward is the model's, network by network.

    And padding the data to whole chunks, with the mask, changes no bit, also with an
    infinite weight (where a padded zero input times the weight would be NaN).
    """
    cfg = config.resolve({"model": {"activation": activation}})
    model, task = MLP.from_config(cfg), TASKS[cfg.data.task]
    (w0, w1), x, y = _block(streams.draw(cfg), np.random.default_rng(0))
    s0, s1 = model.scales()
    with jax.enable_x64(True):
        v = fused.scaled(model, (w0, w1))
        sq, gw0, gw1 = fused.totals(fused.chunk_terms(model, v, x, y, fused.no_sums(v, y.size)))
        for b in range(w0.shape[0]):
            params = (Layer(jnp.asarray(w0[b]), None), Layer(jnp.asarray(w1[b][None]), None))
            out, cache = model.forward(params, x.T)
            grads = model.backward(params, cache, task.loss_grad(out, y[None]))
            np.testing.assert_allclose(sq[b] / y.size, task.loss(out, y[None]), rtol=1e-13)
            # d loss / d out = (2 / n) (out - y): layer l's gradient is s_l (2 / n) times its sum
            np.testing.assert_allclose(s0 * 2 / y.size * gw0[b], grads[0].w, rtol=1e-11)
            np.testing.assert_allclose(s1 * 2 / y.size * gw1[b], grads[1].w[0], rtol=1e-11)

        w1[0, 0] = np.inf
        rows = -y.size % fused.launch_of(x.dtype).chunk
        valid = np.arange(y.size + rows) < y.size
        v = fused.scaled(model, (w0, w1))
        padded = fused.totals(fused.chunk_terms(
            model, v, np.pad(x, ((0, rows), (0, 0))), np.pad(y, (0, rows)),
            fused.no_sums(v, y.size + rows), valid))
        for p, u in zip(padded, fused.totals(fused.chunk_terms(model, v, x, y,
                                                               fused.no_sums(v, y.size)))):
            np.testing.assert_array_equal(p, u)
        assert np.isfinite(padded[0][1:]).all(), "the infinite weight stays in its network"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_float64_tanh_is_the_kernels_own(dtype):
    """float64 tanh is :func:`elementary.tanh64` with the select clip, faster on a GPU than
    libdevice's; float32 keeps ``jnp.tanh``. Bit for bit, on a block's hidden units."""
    cfg = config.resolve({"dtype": dtype})
    (w0, w1), x, _ = _block(streams.draw(cfg), np.random.default_rng(1))
    with jax.enable_x64(True):
        u, a, _ = jax.jit(lambda p, xc: fused.forward(MLP.from_config(cfg), p, xc))(
            (w0.astype(dtype), w1.astype(dtype)), x.astype(dtype))
        want = jax.jit(partial(elementary.tanh64, clip="select") if dtype == "float64"
                       else jnp.tanh)(u)
    assert a.dtype == dtype
    np.testing.assert_array_equal(a, want)


def test_the_kernel_is_chosen_by_a_setting():
    """auto: fused on a GPU for a supported config, else XLA; pallas refused where unsupported."""
    cfg = config.resolve({"training": {"batch": 16}, "model": {"activation": "relu"},
                          "x": {"kind": "offset", "layer": 0, "log10": [-4, 0]},
                          "y": {"kind": "lr_all", "log10": [-1, 3]},
                          "dtype": "float32"})
    assert fused.select(cfg, "auto", platform="gpu") == "pallas"
    assert fused.select(cfg, "auto", platform="cpu") == "xla"
    assert fused.select(cfg, "pallas", platform="cpu") == "pallas"
    assert fused.select(cfg, "xla", platform="gpu") == "xla"
    assert tuple(kernel.outputs(cfg)) == fused.OUTPUTS
    deep = config.resolve({"model": {"depth": 3}})
    assert fused.select(deep, "auto", platform="gpu") == "xla"
    with pytest.raises(ConfigError, match="model.depth = 3"):
        kernel.train(deep, {}, [1.0], [1.0], kernel="pallas")
    with pytest.raises(ConfigError, match="model.width = 12"):
        fused.select(config.resolve({"model": {"width": 12}}), "pallas")
    with pytest.raises(ConfigError, match="valid values are xla, pallas, auto"):
        fused.select(cfg, "triton")


def test_axis_kinds_the_kernel_does_not_read_are_refused():
    """A weight-decay axis was trained as if absent (every pixel alike) on a GPU. The kinds
    the kernel accepts are those the comparisons above train."""
    compared = {axis["kind"] for pair in tk.WINDOWS.values() for axis in pair}
    assert set(fused.KINDS) == compared
    decay = config.resolve({"x": {"kind": "weight_decay", "log10": [-3, 0]}})
    assert fused.select(decay, "auto", platform="gpu") == "xla"
    with pytest.raises(ConfigError, match="x.kind = 'weight_decay'"):
        fused.select(decay, "pallas")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("data", [{"training": {"batch": 20}},
                                  {"data": {"size": 1}, "model": {"activation": "identity"}}])
def test_the_kernel_lowers_to_triton(dtype, data):
    """Every operation of the body has a Triton lowering and the dots fit its shape rules.

    Lowering stops at Triton IR: compiling it (PTX, registers, shared memory) needs a GPU.
    The cases hold a minibatch and a data set padded to a whole chunk.
    """
    cfg = config.resolve({**data, "training": {"steps": 3, **data.get("training", {})},
                          "dtype": dtype})
    with jax.enable_x64(True):
        inputs = kernel.prepare(cfg, streams.draw(cfg))
        xs = jnp.ones(2 * fused.block(dtype), dtype)
        run = jax.jit(fused.make_run(cfg, interpret=False))
        text = run.trace(xs, xs, *inputs).lower(lowering_platforms=("cuda",)).as_text()
    assert "__gpu$xla.gpu.triton" in text


def test_a_jax_without_pallas_triton_trains_with_the_xla_kernel(monkeypatch):
    """Pallas' Triton backend is deprecated (JAX 0.11): without it ``auto`` takes the XLA
    kernel and ``pallas`` is refused with one line, instead of an import error."""
    monkeypatch.setattr(fused, "pltriton", None)
    cfg = config.resolve({})
    assert fused.select(cfg, "auto", platform="gpu") == "xla"
    with pytest.raises(ConfigError, match="without Pallas' Triton backend.*use 'xla' or 'auto'"):
        fused.select(cfg, "pallas")


def test_fused_multiply_adds_are_compiled_not_interpreted(monkeypatch):
    """``Launch.fma`` puts PTX ``fma.rn.f64`` and the reciprocal's approximation in the code
    lowered for a GPU, and leaves the interpreted kernel (which cannot run PTX) as it was,
    bit for bit."""
    cfg = config.resolve({"training": {"steps": 5}, "grid": {"resolution": 2}})
    arrays = streams.draw(cfg)
    px, py = flat_pixels(axis_values(cfg.x, 2, cfg.dtype), axis_values(cfg.y, 2, cfg.dtype))

    def lowered_and_trained():
        with jax.enable_x64(True):
            inputs = kernel.prepare(cfg, arrays)
            xs = jnp.ones(2 * fused.block(cfg.dtype), cfg.dtype)
            text = jax.jit(fused.make_run(cfg, interpret=False)).trace(xs, xs, *inputs).lower(
                lowering_platforms=("cuda",)).as_text()
            ptx = ("fma.rn.f64 $0, $1, $2, $3;" in text, "rcp.approx.ftz.f64" in text)
            return ptx, jax.jit(fused.make_run(cfg, interpret=True))(
                jnp.asarray(px), jnp.asarray(py), *inputs)

    plain_asm, plain = lowered_and_trained()
    launch = dataclasses.replace(fused.LAUNCH["float64"], fma=True)
    monkeypatch.setattr(fused, "LAUNCH", {**fused.LAUNCH, "float64": launch})
    fma_asm, with_fma = lowered_and_trained()
    assert (plain_asm, fma_asm) == ((False, False), (True, True))
    for name in plain:
        np.testing.assert_array_equal(with_fma[name], plain[name])


def test_bench_compares_the_kernels():
    rows = bench.run(pixels=8, group=8, steps=3, repeats=1, dtypes=("float32",),
                     methods=("kernel",), kernels=("xla", "pallas", "auto"))
    assert [r["kernel"] for r in rows] == ["xla", "pallas"]  # auto is xla off a GPU
