"""The per-pixel measures (docs/measures.md): seed ensembles, the Lyapunov exponent and score
snapshots, against independent expectations (the NumPy reference, runs with other configs,
a linear model's exact answer, the documented random streams), and end to end through
stores, the command line, rendering, animation and the dimension."""

import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
import reference as ref
import zarr
from test_kernel import _away_from_boundary

import fractalsweep as fs
from fractalsweep import config, kernel, lyapunov, streams
from fractalsweep.colour import NEVER, NOT_COMPUTED, scale_of, to_rgb, values_rgb
from fractalsweep.errors import ConfigError
from fractalsweep.frames import render_frames
from fractalsweep.grid import axis_values, flat_pixels

N, STEPS = 12, 40
LOG = {"log10": [-1, 4]}  # both classes, and runs that blow up
SYNC = fs.Execution(scheduler="sync", tile=6)
JOB = {"training": {"steps": STEPS}, "x": LOG, "y": LOG, "grid": {"resolution": N}}
MEASURES = {"lyapunov": True, "snapshots": [1, 10, 25]}
PLAIN_ARRAYS = ("score", "first_nonfinite", "final_loss")


def pixels(cfg, n=N):
    return flat_pixels(axis_values(cfg.x, n, cfg.dtype), axis_values(cfg.y, n, cfg.dtype))


def resolve(**sections):
    return config.resolve({**JOB, **sections, "training": {**JOB["training"],
                                                          **sections.get("training", {})}})


def test_measures_change_no_bit_of_the_run_and_defaults_change_nothing():
    plain = resolve()
    stored = plain.to_dict()  # as a store made before these keys holds it
    del stored["ensemble"], stored["measures"]
    assert config.resolve(stored) == plain
    assert list(kernel.outputs(plain)) == [*PLAIN_ARRAYS]
    cfg = resolve(measures=MEASURES)
    arrays = streams.draw(cfg)
    assert all(np.array_equal(arrays[k], v) for k, v in streams.draw(plain).items())
    got = kernel.train(cfg, arrays, *pixels(cfg))
    assert sorted(got) == sorted(kernel.outputs(cfg))
    assert list(kernel.outputs(cfg)) == [*PLAIN_ARRAYS, "score_at_1", "score_at_10",
                                         "score_at_25", "lyapunov"]
    want = kernel.train(plain, arrays, *pixels(cfg))
    for name in PLAIN_ARRAYS:
        np.testing.assert_array_equal(got[name], want[name])


@pytest.mark.parametrize("batch,window,group", [
    ("full", {"log10": [-3, 6]}, 4),  # groups that all blow up: early exits before snapshots
    (16, LOG, None),
])
def test_a_snapshot_is_the_score_of_a_run_of_that_many_steps(batch, window, group):
    """Bit for bit, early exits included; a minibatch snapshot is the score of the run that
    takes the first rows of this run's stream."""
    counts = (3, 20, 37)
    cfg = resolve(training={"batch": batch}, x=window, y=window, measures={"snapshots": counts})
    arrays = streams.draw(cfg)
    got = kernel.train(cfg, arrays, *pixels(cfg), group=group)
    for s in counts:
        shorter = resolve(training={"steps": s, "batch": batch}, x=window, y=window)
        rows = {} if batch == "full" else {"batch_idx": arrays["batch_idx"][:s]}
        want = kernel.train(shorter, arrays | rows, *pixels(cfg), group=group)
        np.testing.assert_array_equal(got[f"score_at_{s}"], want["score"])
    if group:  # groups all of whose runs blew up (NaN) some steps before the last snapshot
        first = got["first_nonfinite"].reshape(-1, group)
        assert (first[(first >= 0).all(axis=1)].max(axis=1) <= 33).any()


@pytest.mark.parametrize("batch", ["full", 16])
def test_lyapunov_matches_the_reference(batch):
    """Against tests/reference.py's twin loop: to 1e-8 on the converged, well-conditioned
    pixels away from the boundary, and in sign everywhere.

    Runs that blow up are chaotic (their losses part from the reference's at the 1e-4 level
    within ten steps), so only their sign is compared.
    """
    n = 10
    cfg = resolve(training={"batch": batch}, measures={"lyapunov": True})
    arrays = streams.draw(cfg)
    xs, ys = pixels(cfg, n)
    got = kernel.train(cfg, arrays, xs, ys)["lyapunov"]
    conv = kernel.train(resolve(training={"batch": batch}), arrays, xs, ys)["score"] < 0

    def reference(x, y):
        return ref.lyapunov([arrays["w0"], arrays["w1"]], arrays["X"], arrays["Y"], "tanh",
                            [x, y], STEPS, [arrays["lyapunov_w0"], arrays["lyapunov_w1"]],
                            lyapunov.epsilon("float64"), batch_idx=arrays.get("batch_idx"))

    want = np.array([reference(x, y) for x, y in zip(xs, ys)])
    moved = np.max([np.abs([reference(*np.nextafter([x, y], to)) for x, y in zip(xs, ys)] - want)
                    for to in (np.inf, -np.inf)], axis=0)
    compared = (conv & _away_from_boundary(conv.reshape(n, n)).ravel()
                & (moved <= 1e-9 * np.maximum(1, np.abs(want))))
    assert compared.sum() >= 20
    np.testing.assert_allclose(got[compared], want[compared], rtol=0, atol=1e-8)
    np.testing.assert_array_equal(np.sign(got), np.sign(want))


def test_lyapunov_of_a_linear_model_is_the_growth_of_its_linear_map():
    """GD on a one-layer linear network is the affine map W <- (I - lr H) W + c, so the
    renormalized twin measures exactly log |(I - lr H)^T u| / T: negative below lr = 2 / h_max
    (training converges), positive above (it diverges)."""
    cfg = config.resolve({"model": {"depth": 1, "activation": "identity"},
                          "training": {"steps": 30}, "x": {"kind": "lr", "layer": 0, **LOG},
                          "y": {"kind": "init_offset", "layer": 0, "log10": [-2, 0]},
                          "measures": {"lyapunov": True}})
    arrays = streams.draw(cfg)
    x = arrays["X"]
    h = 2 / (x.shape[0] * x.shape[1] ** 2) * x.T @ x  # mean field: out = X W / 16
    critical = 2 / np.linalg.eigvalsh(h).max()
    lrs = critical * np.array([0.01, 0.1, 0.5, 0.9, 1.5, 2.0])
    u = arrays["lyapunov_w0"].ravel() / np.linalg.norm(arrays["lyapunov_w0"])
    want = [np.log(np.linalg.norm(np.linalg.matrix_power(np.eye(h.shape[0]) - lr * h, 30) @ u))
            / 30 for lr in lrs]
    got = kernel.train(cfg, arrays, lrs, np.full(lrs.size, 0.3))
    np.testing.assert_allclose(got["lyapunov"], want, rtol=0, atol=1e-8)
    assert (got["lyapunov"][:4] < 0).all() and (got["lyapunov"][4:] > 0).all()
    assert ((got["score"] < 0) == (lrs < critical)).all()


def test_lyapunov_is_positive_where_runs_blow_up_and_near_zero_where_they_converge_smoothly():
    cfg = resolve(measures={"lyapunov": True})
    out = kernel.train(cfg, streams.draw(cfg), *pixels(cfg))
    lam, conv = out["lyapunov"].reshape(N, N), out["score"].reshape(N, N) < 0
    assert (lam[~conv] > 0.1).all()  # diverged: a perturbation grows by 10% a step or more
    smooth = lam[:3, :3]  # learning rates 0.1 to 0.3 on both layers
    assert conv[:3, :3].all() and (np.abs(smooth) < 1e-3).all()
    assert np.median(lam[conv]) < np.median(lam[~conv]) / 10


def member_inputs(cfg, k):
    """Ensemble member k's init and data as docs/measures.md derives them, drawn here with
    JAX directly: the sweep's draw from key fold_in(PRNGKey(seed), k)."""
    with jax.enable_x64(True), jax.threefry_partitionable(False):
        key, k_init = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(cfg.seed), k))
        weights = [jax.random.normal(kw, shape, dtype=np.float64)
                   for kw, shape in zip(jax.random.split(k_init, 2), cfg.layer_shapes)]
        key, kx = jax.random.split(key)
        key, ky = jax.random.split(key)
        data = {"X": jax.random.normal(kx, (cfg.n_data, cfg.input_dim), dtype=np.float64),
                "Y": jax.random.normal(ky, (cfg.n_data, 1), dtype=np.float64)}
        return {"w0": np.asarray(weights[0]), "w1": np.asarray(weights[1])}, {
            k: np.asarray(v) for k, v in data.items()}


def level_arrays(path, level=0):
    group = zarr.open_group(str(path), mode="r")[f"levels/{level}"]
    return {name: group[name][:] for name in group.attrs["arrays"]}


@pytest.mark.parametrize("vary", ["init", "data", "both"])
def test_an_ensemble_is_its_members_and_member_0_is_the_single_seed_run(tmp_path, vary):
    seeds = 3
    single = fs.run(JOB, tmp_path / "one.zarr", execution=SYNC, progress=False)
    job = {**JOB, "ensemble": {"seeds": seeds, "vary": vary}}
    ensemble = fs.run(job, tmp_path / "ens.zarr", execution=SYNC, progress=False)
    one, got = level_arrays(single.path), level_arrays(ensemble.path)
    assert list(got) == [*PLAIN_ARRAYS, "converged_fraction", "mean_score"]
    for name in PLAIN_ARRAYS:  # member 0, bit for bit
        np.testing.assert_array_equal(got[name], one[name])

    cfg = ensemble.config
    base = streams.draw(cfg)
    plain = config.single_run(cfg)
    scores = [one["score"].ravel()]
    for k in range(1, seeds):
        weights, data = member_inputs(cfg, k)
        inputs = base | (weights if vary != "data" else {}) | (data if vary != "init" else {})
        assert (vary == "data") == np.array_equal(inputs["w0"], base["w0"])
        assert (vary == "init") == np.array_equal(inputs["X"], base["X"])
        scores.append(kernel.train(plain, inputs, *pixels(cfg))["score"])
    scores = np.stack(scores)
    np.testing.assert_array_equal(got["converged_fraction"].ravel(), (scores < 0).mean(axis=0))
    np.testing.assert_array_equal(got["mean_score"].ravel(), scores.mean(axis=0))
    assert 0 < got["converged_fraction"].mean() < 1


def test_measures_keep_tiling_resume_and_the_ladder_bit_identical(tmp_path):
    """The new arrays are per-pixel arrays like the others: a tile is one chunk of each, a
    resumed tile equals the first computation, and the keyframe ladder's copied pixels
    equal a fresh computation of the level."""
    job = {**JOB, "grid": {"resolution": 13}, "ensemble": {"seeds": 2},
           "measures": MEASURES}
    store = fs.run(job, tmp_path / "a.zarr", execution=SYNC, progress=False)
    first = level_arrays(store.path)
    assert set(first) >= {"lyapunov", "converged_fraction", "score_at_25"}
    other = fs.run(job, tmp_path / "b.zarr", execution=fs.Execution(scheduler="sync", tile=13),
                   progress=False)
    group = zarr.open_group(store.path, mode="r+")["levels/0"]
    assert group["lyapunov"].chunks == (6, 6)
    group["tiles"][1, 1] = 0
    group["lyapunov"][6:12, 6:12] = np.nan
    assert fs.run(job, store.path, execution=SYNC, progress=False).report.computed == 1
    for arrays in (level_arrays(store.path), level_arrays(other.path)):
        for name, values in first.items():
            np.testing.assert_array_equal(arrays[name], values)

    store.zoom(centre=(300, 300), width=0.5, execution=SYNC, progress=False)
    wide = store.ladder(1, widest=1, execution=SYNC, progress=False)[0]
    assert wide.attrs["reused_pixels"] > 0
    view = wide.view
    fresh = fs.run({**job, "x": {"lo": view["x"].lo, "hi": view["x"].hi},
                    "y": {"lo": view["y"].lo, "hi": view["y"].hi}}, tmp_path / "c.zarr",
                   execution=SYNC, progress=False)
    reused = level_arrays(store.path, wide.index)
    for name, values in level_arrays(fresh.path).items():
        np.testing.assert_array_equal(reused[name], values)


@pytest.mark.parametrize("raw,words", [
    ({"measures": {"snapshots": [10, 2000]}}, ["measures.snapshots", "2000", "training.steps"]),
    ({"measures": {"snapshots": [20, 10]}}, ["measures.snapshots", "increasing"]),
    ({"measures": {"snapshots": 10}}, ["measures.snapshots", "list"]),
    ({"measures": {"lyapunov": "yes"}}, ["measures.lyapunov", "true or false"]),
    ({"measures": {"lyapunov": True}, "training": {"optimizer": "adam"}},
     ["measures.lyapunov", "gd or momentum"]),
    ({"measures": {"snapshots": [5]}, "dtype": "double-double"},
     ["measures.snapshots", "double-double"]),
    ({"ensemble": {"seeds": 0}}, ["ensemble.seeds", ">= 1"]),
    ({"ensemble": {"vary": "data"}}, ["ensemble.vary", "seeds > 1"]),
    ({"ensemble": {"seeds": 2, "vary": "weights"}}, ["ensemble.vary", "init, data, both"]),
    ({"ensemble": {"seeds": 2, "vary": "data"}, "data": {"task": "image_fit", "size": 64}},
     ["ensemble.vary", "image_fit", "fourier_features"]),
    ({"ensemble": {"seeds": 2}, "system": {"kind": "mandelbrot"}},
     ["ensemble.seeds", "mandelbrot"]),
    ({"measures": {"lyapunov": True}, "system": {"kind": "julia"}},
     ["measures.lyapunov", "julia"]),
    ({"measures": {"twin": True}}, ["measures.twin", "lyapunov, snapshots"]),
])
def test_bad_measures_are_refused_in_one_line(raw, words):
    with pytest.raises(ConfigError) as err:
        config.resolve(raw)
    assert "\n" not in str(err.value)
    for word in words:
        assert word in str(err.value)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "fractalsweep", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def measured(tmp_path_factory, job_dir):
    """A 41x41 store (the paper method's smallest) with every measure, computed from the
    command line."""
    path = tmp_path_factory.mktemp("measures") / "m.zarr"
    sets = ["grid.resolution=41", f"training.steps={STEPS}", "x.log10=[-1,4]",
            "y.log10=[-1,4]", "ensemble.seeds=3", "measures.lyapunov=true",
            "measures.snapshots=[5,20]"]
    r = cli("run", job_dir / "quickstart.toml", "--store", path, "--scheduler", "sync",
            "--tile", "8", "--no-render", "--quiet", *(a for s in sets for a in ("--set", s)))
    assert r.returncode == 0, r.stderr
    return path


def test_dry_run_counts_the_networks_of_a_pixel(job_dir):
    r = cli("run", job_dir / "quickstart.toml", "--dry-run", "--set", "ensemble.seeds=4",
            "--set", "measures.lyapunov=true")
    assert r.returncode == 0, r.stderr
    assert "64x64 pixels x 5 networks x 300 steps" in r.stdout
    assert "4 ensemble member(s) + 1 Lyapunov twin" in r.stdout


def test_every_array_renders_with_its_colouring(measured, tmp_path):
    level = fs.open(measured).level(0)
    assert level.arrays == [*PLAIN_ARRAYS, "score_at_5", "score_at_20", "lyapunov",
                            "converged_fraction", "mean_score", "reused"]
    assert set(level.to_xarray().data_vars) == set(level.arrays)
    from matplotlib.figure import Figure

    for name in ("converged_fraction", "lyapunov", "first_nonfinite"):
        image = level.plot(Figure().subplots(), array=name)
        np.testing.assert_array_equal(image.get_array(),
                                      values_rgb(level[name], scale_of(name, level[name])))
    for name in ("score_at_5", "mean_score"):
        image = level.plot(Figure().subplots(), array=name)
        np.testing.assert_array_equal(image.get_array(), to_rgb(level[name]))
    fraction = level["converged_fraction"]
    assert set(np.unique(fraction)) <= {0, 1 / 3, 2 / 3, 1} and 0 < fraction.mean() < 1
    for name in ("lyapunov", "converged_fraction", "score_at_20"):
        r = cli("render", measured, "--array", name, "--out", tmp_path / f"{name}.png")
        assert r.returncode == 0 and (tmp_path / f"{name}.png").stat().st_size > 5000, r.stderr
    r = cli("render", measured, "--array", "lyapunov", "--cmap", "classes")
    assert r.returncode == 2 and "matplotlib colormap" in r.stderr
    r = cli("render", measured, "--array", "nope")
    assert r.returncode == 2 and "converged_fraction" in r.stderr


def test_pixels_not_computed_are_white_in_every_array(measured, tmp_path):
    """A tile whose marker is not set is white whatever the array: first_nonfinite's fill
    value (-2) was drawn as data and set its colour bar's bottom, reused's (0) read as
    'not reused'."""
    from matplotlib.figure import Figure

    path = tmp_path / "m.zarr"
    shutil.copytree(measured, path)
    zarr.open_group(str(path), mode="r+")["levels/0/tiles"][0, 0] = 0  # rows, columns 0..7
    level = fs.open(path).level(0)
    for name in level.arrays:
        shown = level.plot(Figure().subplots(), array=name).get_array()
        assert (shown[::-1][:8, :8] == NOT_COMPUTED).all(), name
    for name in ("first_nonfinite", "reused"):
        values = level[name].astype(float)
        values[:8, :8] = np.nan
        np.testing.assert_array_equal(level.plot(Figure().subplots(), array=name).get_array(),
                                      values_rgb(values, scale_of(name, values)))
    r = cli("render", path, "--array", "lyapunov", "--cmap", "paper")
    assert r.returncode == 2 and "'paper' colours scores" in r.stderr


def test_never_is_grey_and_no_computed_pixel_is_white(tmp_path):
    """first_nonfinite's -1 ("never") is grey, apart from the step counts' viridis, which
    starts at the first real step (it was viridis' darkest colour, next to step 0); no
    computed pixel of a value array is white, the colour of a pixel not computed (RdBu_r
    drew a Lyapunov exponent near 0 in it)."""
    from matplotlib.figure import Figure

    job = {"training": {"steps": 300}, "x": {"log10": [-1, 4]}, "y": {"log10": [-1, 4]},
           "grid": {"resolution": 12}, "measures": {"lyapunov": True}}
    level = fs.run(job, tmp_path / "n.zarr", execution=fs.Execution(scheduler="sync", tile=6),
                   progress=False).level(0)
    first = level["first_nonfinite"]
    assert (first == -1).any() and (first >= 0).any()
    shown = level.plot(Figure().subplots(), array="first_nonfinite").get_array()[::-1]
    assert (shown[first == -1] == NEVER).all()
    assert not (shown[first >= 0] == NEVER).all(axis=-1).any()
    assert scale_of("first_nonfinite", first).lo == first[first >= 0].min()
    lyapunov = level["lyapunov"]
    assert (np.abs(lyapunov) < 1e-3).any()  # near 0: RdBu_r's (247, 246, 246)
    for name in ("lyapunov", "first_nonfinite", "final_loss"):
        shown = level.plot(Figure().subplots(), array=name).get_array()
        from_white = (NOT_COMPUTED.astype(int) - shown).sum(axis=-1)
        assert from_white.min() >= 100, name  # of 765 levels: no colour could pass for white


def test_animation_over_steps_goes_through_the_snapshots(measured, tmp_path):
    options = {"over": "steps", "size": (41, 41), "frames_per_octave": 3, "ease": False}
    frames = list(render_frames(measured, **options))
    assert len(frames) == 2 * 3 + 1  # snapshots 5, 20 and the score at 40
    group = zarr.open_group(str(measured), mode="r")["levels/0"]
    np.testing.assert_array_equal(frames[0], to_rgb(group["score_at_5"][:]))
    np.testing.assert_array_equal(frames[3], to_rgb(group["score_at_20"][:]))
    np.testing.assert_array_equal(frames[-1], to_rgb(group["score"][:]))
    out = tmp_path / "steps.gif"
    r = cli("animate", measured, "--over", "steps", "--out", out, "--size", "32x32",
            "--frames-per-octave", "4", "--overlay", "--quiet")
    assert r.returncode == 0 and "at steps [5, 20, 40]" in r.stdout, r.stderr
    assert out.stat().st_size > 1000
    with pytest.raises(ConfigError, match="no score snapshots"):
        list(render_frames(fs.run(JOB, tmp_path / "p.zarr", execution=SYNC,
                                  progress=False).path, over="steps"))
    last_only = {**JOB, "measures": {"snapshots": [JOB["training"]["steps"]]}}
    with pytest.raises(ConfigError, match="needs a snapshot before it"):
        list(render_frames(fs.run(last_only, tmp_path / "l.zarr", execution=SYNC,
                                  progress=False).path, over="steps"))


def test_dimension_of_a_level_set_is_the_score_dimension_of_array_minus_value(measured):
    from fractalsweep.dimension import dimension_of_images, store_dimension

    group = zarr.open_group(str(measured), mode="r")["levels/0"]
    result = store_dimension(measured, levels=[0], method="paper",
                             level_set=("converged_fraction", 0.5))
    direct = dimension_of_images([group["converged_fraction"][:] - 0.5], method="paper")
    assert result.counts == direct.counts and result.level_set == "converged_fraction = 0.5"
    assert store_dimension(measured, levels=[0], method="paper",  # a notebook's NumPy numbers
                           level_set=("converged_fraction", np.float32(0.5))) == result
    plain = store_dimension(measured, levels=[0], method="paper")
    at_end = store_dimension(measured, levels=[0], method="paper", level_set=("score", 0))
    assert plain.counts == at_end.counts and plain.level_set == "score = 0"
    r = cli("dimension", measured, "--levels", "0", "--method", "paper", "--level-set",
            "lyapunov=0.5")
    assert r.returncode == 0 and "level set lyapunov = 0.5" in r.stdout, r.stderr


@pytest.mark.parametrize("raw", [
    {}, {"training": {"batch": 16}}, {"ensemble": {"seeds": 3}},
    {"ensemble": {"seeds": 3, "vary": "data"}}, {"ensemble": {"seeds": 2, "vary": "both"}},
    {"measures": {"lyapunov": True}, "ensemble": {"seeds": 2}},
])
def test_the_limits_count_every_input_a_store_draws(raw):
    from fractalsweep.limits import input_arrays, inputs_bytes

    cfg = config.resolve(raw)
    drawn = streams.draw(cfg)
    assert inputs_bytes(cfg) == sum(a.nbytes for a in drawn.values())
    assert input_arrays(cfg) == len(drawn)


def test_an_ensemble_too_large_for_memory_is_refused_before_anything_is_drawn(tmp_path,
                                                                               job_dir):
    store = tmp_path / "big.zarr"
    r = cli("run", job_dir / "quickstart.toml", "--set", "ensemble.seeds=100000000",
            "--store", store)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "memory available" in r.stderr and "ensemble.seeds" in r.stderr
    assert not store.exists()
