"""The tasks' data, and every task run through the store, a zoom and the kernel's outputs."""

import numpy as np
import pytest
import zarr

import fractalsweep as fs
from fractalsweep import kernel, streams, tasks
from fractalsweep.config import resolve
from fractalsweep.grid import axis_values, flat_pixels


def test_image_grid_is_cell_centres_bottom_row_first():
    x, y = tasks.image_grid(4)
    assert x[:4].tolist() == [-0.75, -0.25, 0.25, 0.75] and set(y[:4]) == {-0.75}
    assert y[-1] == 0.75 and len(x) == 16


def test_mandelbrot_escape_times():
    window = (-2.0, 2.0, -2.0, 2.0)  # (x, y) in [-1, 1]^2 is c = 2x + 2iy
    inside = tasks.mandelbrot(np.array([0.0, -0.5]), np.array([0.0, 0.0]), window)
    assert inside.tolist() == [tasks.MANDELBROT_ITERATIONS] * 2  # c = 0 and c = -1 stay bounded
    # c = 2 + 2i: z1 = c, z2 = 2 + 10i, z3 = -94 + 42i, z4 = 5074 - 7894i is the first past
    # 256: n = 4, value n + 1 - log2(log|z4|) (it was 4 - ..., one iterate short)
    z4 = (-94 + 42j) ** 2 + (2 + 2j)
    far = tasks.mandelbrot(np.array([1.0]), np.array([1.0]), window)
    assert far[0] == pytest.approx(5 - np.log2(np.log(abs(z4))), rel=1e-12)


def test_the_mandelbrot_target_is_the_mandelbrot_system_s_smooth_escape_time():
    """One definition, two implementations (a NumPy task, a JAX system): where a point escapes
    they differ by the system's log2(log 256) only; the target was one iterate short."""
    from fractalsweep.systems import system_of

    x, y = tasks.image_grid(24)
    target = tasks.mandelbrot(x, y)
    re_lo, re_hi, im_lo, im_hi = tasks.MANDELBROT_WINDOW
    cfg = resolve({"system": {"kind": "mandelbrot", "max_iter": tasks.MANDELBROT_ITERATIONS},
                   "x": {"kind": "re", "lo": -1, "hi": 1, "scale": "linear"},
                   "y": {"kind": "im", "lo": -1, "hi": 1, "scale": "linear"}})
    c_re, c_im = re_lo + (x + 1) / 2 * (re_hi - re_lo), im_lo + (y + 1) / 2 * (im_hi - im_lo)
    system = system_of(cfg).compute(cfg, {}, c_re, c_im)["score"]
    escaped = system > 0
    assert escaped.sum() > 400 and (target[~escaped] == tasks.MANDELBROT_ITERATIONS).all()
    np.testing.assert_allclose(target[escaped] + np.log2(np.log(256)), system[escaped],
                               rtol=1e-12)


def test_image_fit_data():
    cfg = resolve({"data": {"task": "image_fit", "size": 64}})
    data = streams.draw(cfg)
    assert data["X"].shape == (64, 2) and data["Y"].shape == (64, 1)
    assert abs(data["Y"].mean()) < 1e-12 and data["Y"].std() == pytest.approx(1, rel=1e-12)
    x, y = tasks.image_grid(8)
    np.testing.assert_array_equal(data["X"], np.stack([x, y], axis=1))
    values = tasks.mandelbrot(x, y)
    np.testing.assert_allclose(data["Y"][:, 0], (values - values.mean()) / values.std())

    photo = streams.draw(resolve({"data": {"task": "image_fit", "size": 64, "image": "sample"}}))
    assert photo["Y"].std() == pytest.approx(1) and not np.allclose(photo["Y"], data["Y"])


def test_user_image_and_fourier_features(tmp_path):
    import matplotlib.image

    path = tmp_path / "ramp.png"
    ramp = np.tile(np.linspace(0, 1, 32), (32, 1))  # brighter to the right
    matplotlib.image.imsave(path, ramp, cmap="gray")
    cfg = resolve({"data": {"task": "image_fit", "size": 16, "image": str(path)}})
    data = streams.draw(cfg)
    grid = data["Y"][:, 0].reshape(4, 4)
    assert (np.diff(grid, axis=1) > 0).all() and np.allclose(grid, grid[0])

    fourier = resolve({"data": {"task": "image_fit", "size": 16, "image": str(path),
                                "fourier_features": 3, "fourier_scale": 2.0}})
    features = streams.draw(fourier)["X"]
    assert features.shape == (16, 6)
    np.testing.assert_allclose(features[:, :3] ** 2 + features[:, 3:] ** 2, 1.0)  # cos, sin
    assert (features.std(axis=0) > 0.1).all(), "every feature varies over the image"


def test_digits_data():
    from sklearn.datasets import load_digits

    cfg = resolve({"data": {"task": "digits", "size": 100}})
    data = streams.draw(cfg)
    assert data["X"].shape == (100, 64) and data["Y"].shape == (100, 10)
    digits = load_digits()
    pixels = digits.data
    recovered = np.rint(data["X"] * pixels.std() + pixels.mean())  # undo the standardisation
    for image, label in zip(recovered, data["Y"]):
        match = np.flatnonzero((pixels == image).all(axis=1))
        assert match.size and label.argmax() in digits.target[match]
    assert len({tuple(r) for r in data["X"]}) >= 95, "drawn without replacement"
    assert (data["Y"].sum(1) == 1).all()


JOBS = {
    "image_fit": {"data": {"task": "image_fit", "size": 64}},
    "digits": {"data": {"task": "digits", "size": 50}, "model": {"biases": True}},
    "adam, residual": {"training": {"optimizer": "adam"}, "model": {"depth": 3, "width": 8,
                                                                   "residual": True},
                       "x": {"kind": "lr", "layer": 0, "log10": [-3, 0]},
                       "y": {"kind": "beta2", "lo": "0.9", "hi": "0.999"}},
}


@pytest.mark.parametrize("name", JOBS)
def test_runs_through_the_store_and_a_zoom(name, tmp_path):
    raw = {"training": {"steps": 20}, "x": {"log10": [-1, 3]}, "y": {"log10": [-1, 3]},
           "grid": {"resolution": 6}}
    raw = {**raw, **JOBS[name]}
    cfg = resolve(raw)
    path = str(tmp_path / "s.zarr")
    store = fs.run(cfg, path, execution=fs.Execution(scheduler="sync", tile=4), progress=False)
    index = store.zoom(centre=(axis_values(cfg.x, 3, "float64")[1].item(),
                               axis_values(cfg.y, 3, "float64")[1].item()), width=0.5,
                       progress=False).index
    level = zarr.open_group(path, mode="r")[f"levels/{index}"]
    assert set(kernel.outputs(cfg)) <= set(level.array_keys())
    xs, ys = level["x"][:], level["y"][:]
    want = kernel.train(cfg, streams.draw(cfg), *flat_pixels(xs, ys))
    for key, values in want.items():  # the same bits as a direct call of the kernel
        np.testing.assert_array_equal(level[key][:].ravel(), values)
    if "accuracy" in want:
        assert ((want["accuracy"] >= 0) & (want["accuracy"] <= 1)).all()
        assert want["accuracy"].max() > 0.5, "some runs learn to classify"
