"""The notebook API against the command line and the store it writes."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import zarr

import fractalsweep as fs
from fractalsweep import Execution
from fractalsweep.colour import to_rgb

JOB = {"training": {"steps": 30}, "x": {"log10": [-1, 4]}, "y": {"log10": [-1, 4]},
       "grid": {"resolution": 17}}
SYNC = Execution(scheduler="sync", tile=8)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return fs.run(JOB, tmp_path_factory.mktemp("api") / "s.zarr", execution=SYNC,
                  progress=False)


def test_importing_fractalsweep_changes_no_global_jax_setting(tmp_path):
    script = textwrap.dedent(f"""
        import jax, jax.numpy as jnp
        import fractalsweep as fs
        assert jnp.zeros(1).dtype == jnp.float32 and not jax.config.jax_enable_x64
        store = fs.run({JOB!r}, {str(tmp_path / "x.zarr")!r}, scheduler="sync", progress=False)
        assert store.level(0).score.dtype == "float64"  # the sweep itself is float64
        assert jnp.zeros(1).dtype == jnp.float32 and not jax.config.jax_enable_x64
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_run_accepts_a_path_a_mapping_and_a_config_alike(tmp_path, job_dir, store):
    small = ["grid.resolution=17", "training.steps=30", "x.log10=[-1, 4]", "y.log10=[-1, 4]"]
    cfg = fs.job_config(job_dir / "quickstart.toml", small)
    assert cfg.name == "quickstart"
    by_config = fs.run(cfg, tmp_path / "c.zarr", execution=SYNC, progress=False)
    by_path = fs.run(job_dir / "quickstart.toml", tmp_path / "p.zarr", overrides=small,
                     execution=SYNC, progress=False)
    assert by_config.config == by_path.config
    np.testing.assert_array_equal(by_config.level(0).score, by_path.level(0).score)
    assert cfg == fs.job_config({**JOB, "name": "quickstart"})  # the same sweep as JOB
    assert by_path.report.computed == 9 and by_path.report.skipped == 0
    again = fs.run(cfg, tmp_path / "c.zarr", execution=SYNC, progress=False)
    assert again.report.computed == 0 and again.report.skipped == 9


def test_a_job_file_s_store_is_named_after_the_file_as_in_the_cli(tmp_path, job_dir,
                                                                 monkeypatch):
    copy = tmp_path / "copy.toml"  # keeps quickstart's name = "quickstart"
    copy.write_text((job_dir / "quickstart.toml").read_text())
    monkeypatch.chdir(tmp_path)
    made = fs.run(copy, overrides=["grid.resolution=8", "training.steps=5"], execution=SYNC,
                  progress=False)
    assert made.path == "copy.zarr" and made.config.name == "quickstart"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.toml", "copy.zarr"]


def test_store_and_level_read_what_the_store_holds(store):
    assert [level.index for level in store.levels] == [0]
    level = store.level(0)
    group = zarr.open_group(store.path, mode="r")["levels/0"]
    np.testing.assert_array_equal(level.score, group["score"][:])
    assert level.resolution == (17, 17) and level.complete and level.kind == "job"
    assert level.view["x"].lo == "0.1" and level.view["y"].hi == "10000"
    assert store.config == fs.job_config(JOB)
    with pytest.raises(fs.StoreError, match="no level 5"):
        store.level(5)
    with pytest.raises(fs.ConfigError, match="no array 'nope'"):
        level["nope"]
    assert json.loads(json.dumps(store.info()))["levels"][0]["tiles_done"] == 9
    assert "level 0: 9/9 tiles" in store.status()


def test_to_xarray_holds_every_pixel_array_with_coordinates(store):
    level = store.level(0)
    ds = level.to_xarray()
    assert set(ds.data_vars) == {"score", "first_nonfinite", "final_loss", "reused"}
    np.testing.assert_array_equal(ds["score"].values, level.score)
    np.testing.assert_array_equal(ds["x"].values, level["x"])
    np.testing.assert_array_equal(ds["y"].values, level["y"])
    assert ds["x"].attrs["long_name"] == "learning rate (layer 0)"
    assert ds.attrs["level"] == 0 and ds.attrs["dtype"] == "float64"
    # a pixel picked by its hyperparameters is the stored pixel
    x, y = level["x"][3], level["y"][11]
    assert ds["score"].sel(x=x, y=y).item() == level.score[11, 3]


def test_plot_draws_the_rendered_colours_into_given_axes(store):
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    image = store.level(0).plot(ax=ax, cmap="classes")
    np.testing.assert_array_equal(image.get_array(), to_rgb(store.level(0).score, "classes"))
    assert ax.get_xlabel() == "learning rate (layer 0)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.1", "1e4"]


def test_zoom_ladder_dimension_and_animation_through_the_api(tmp_path):
    store = fs.run(JOB, tmp_path / "z.zarr", execution=SYNC, progress=False)
    deep = store.zoom(centre=(30, 300), width=0.1, progress=False)
    assert deep.index == 1 and deep.kind == "zoom" and deep.report.computed == 9
    assert store.zoom(centre=(30, 300), width=0.1, progress=False).index == 1  # found again
    ladder = store.ladder(widest=0.35, progress=False)
    assert [level.index for level in ladder] == [3, 2, 1]
    assert store.deepest().index == 1
    with pytest.raises(fs.ConfigError, match="17 pixels is too small for the paper method"):
        store.dimension(method="paper")  # boxes of 10 to 16 cells: docs/dimension.md, Limits
    out = store.animate(tmp_path / "z.gif", size=(32, 32), frames_per_octave=3, progress=False)
    assert out["frames"] > 0 and (tmp_path / "z.gif").stat().st_size > 0
    with pytest.raises(fs.ConfigError, match="exactly one of"):
        store.zoom(x=(1, 2), auto=True)
    with pytest.raises(fs.ConfigError, match="width goes with centre"):
        store.zoom(x=(1, 2), width=1)


def test_handles_outlive_their_store_in_one_line(tmp_path):
    import shutil

    store = fs.run(JOB, tmp_path / "s.zarr", execution=SYNC, progress=False)
    level = store.level(0)
    assert repr(level) == "Level(0, job, 17x17 float64, tiles 9/9)"
    shutil.rmtree(tmp_path / "s.zarr")
    assert repr(store).startswith(f"Store({store.path!r}, unreadable: ")
    assert "no fractalsweep store" in repr(level) and "\n" not in repr(level)


def test_a_window_a_rounding_apart_is_found_again_not_computed_twice(tmp_path):
    """A ladder rebuilds a keyframe from centre and width; an auto zoom may hold the same
    window with other last digits. Same pixel coordinates: the same level."""
    from decimal import Decimal, localcontext

    store = fs.run(JOB, tmp_path / "s.zarr", execution=SYNC, progress=False)
    deep = store.zoom(centre=(30, 300), width=0.1, execution=SYNC, progress=False)

    def nudged(relative):
        with localcontext() as ctx:
            ctx.prec = 60
            return {a: (str(Decimal(axis.lo) * (1 + Decimal(relative))),
                        str(Decimal(axis.hi) * (1 - Decimal(relative))))
                    for a, axis in deep.view.items()}

    near = nudged("1e-30")
    assert near["x"][0] != deep.view["x"].lo
    again = store.zoom(**near, execution=SYNC, progress=False)
    assert again.index == deep.index and again.report.computed == 0
    other = store.zoom(**nudged("1e-3"), execution=SYNC, progress=False)
    assert other.index == deep.index + 1 and other.report.computed > 0


def test_one_session_serves_several_zooms_on_one_cluster(tmp_path):
    """...and once closed, a store that kept it starts and stops a cluster per call."""
    import psutil

    with Execution(workers=1, tile=8).session(progress=False) as session:
        store = fs.run(JOB, tmp_path / "s.zarr", execution=session)
        a = store.zoom(centre=(30, 300), width=1)
        b = store.zoom(centre=(3, 30), width=1, execution=session)
    assert a.report.dashboard and a.report.dashboard == b.report.dashboard
    assert a.report.computed == b.report.computed == 9
    before = len(psutil.Process().children(recursive=True))  # a forkserver stays, no worker
    c = store.zoom(centre=(300, 3000), width=1)
    assert c.report.computed == 9 and c.report.dashboard  # a cluster of its own (port freed)
    assert session._client is None
    assert len(psutil.Process().children(recursive=True)) == before  # that cluster stopped
    with pytest.raises(fs.ConfigError, match="session is closed"):
        session.client()


NOTEBOOK = """
import fractalsweep as fs
from fractalsweep.views import box_to_view
%matplotlib widget
explorer = fs.open({path!r}).explore(execution=fs.Execution(scheduler="sync"))
level = explorer.zoom(box_to_view(explorer.view, explorer.resolution, (2, 9), (2, 9)))
explorer.wait()
print(level, explorer.level, explorer.tiles)
explorer.figure.canvas
"""


def test_the_explorer_runs_as_a_widget_in_a_jupyter_kernel(store, tmp_path):
    """A real IPython kernel with ipympl: the figure is a widget and a zoom lands."""
    import nbformat
    from nbclient import NotebookClient

    path = tmp_path / "e.zarr"
    fs.run(JOB, path, execution=SYNC, progress=False)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        NOTEBOOK.format(path=str(path)))])
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert text.split()[:2] == ["1", "1"], outputs
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
               for o in outputs), outputs
    assert fs.open(path).level(1).complete


def test_a_place_to_compute_that_cannot_be_is_refused_as_the_execution_is_made(store):
    """The address, the scheduler file and the cluster profile, each read without the
    network: an audit given a malformed address raised distributed's ValueError, and a
    profile that is not text (or not TOML of the right kinds) a traceback of its own."""
    from fractalsweep.cluster import Profile

    level, picture = store.level(0), Path(__file__).resolve().parents[1] / "docs" / "adam.png"
    refused = [
        (lambda: level.audit(4, against="float32", execution=Execution(scheduler="bogus")),
         "scheduler 'bogus': expected an address like tcp://host:8786, or 'sync'"),
        (lambda: Execution(scheduler_file="/nonexistent/scheduler.json"), "not found"),
        (lambda: Execution(cluster=str(picture)), f"{picture}: not UTF-8 text"),
        (lambda: Execution(cluster=Profile(memory=32)), "memory = 32: expected a size"),
    ]
    for call, words in refused:
        with pytest.raises(fs.ConfigError) as error:
            call()
        assert words in str(error.value) and "\n" not in str(error.value), str(error.value)
    assert "audit" not in level.attrs


def test_arguments_of_the_wrong_kind_are_one_line_errors(store, tmp_path):
    """Each refused before any work with the documented error class, naming the argument."""
    level, made = store.level(0), len(store.levels)
    refused = [
        (lambda: fs.job_config(5), "job = 5"),
        (lambda: fs.job_config(JOB, overrides="grid.resolution=16"), "overrides"),
        (lambda: fs.job_config(JOB, overrides=[5]), "overrides"),
        (lambda: fs.run(JOB, 5, execution=SYNC), "store = 5"),
        (lambda: fs.open(None), "path = None: expected a path"),
        (lambda: fs.run(JOB, tmp_path / "e.zarr", execution=SYNC, progress="no"),
         "progress = 'no': expected True or False"),
        (lambda: SYNC.session(progress="x"), "progress = 'x'"),
        (lambda: Execution(scheduler="sync", workers=1), "'sync' computes in this process"),
        (lambda: Execution(workers=10 ** 5), "workers (--workers) = 100000: at most"),
        (lambda: fs.run(JOB | {"name": "../up"}, execution=SYNC), "name = '../up'"),
        (lambda: fs.run(JOB, tmp_path / "e.zarr", execution="sync"), "execution = 'sync'"),
        (lambda: store.zoom(centre=(10, 100), width=1, execution="sync"), "execution"),
        (lambda: Execution(scheduler=5), "scheduler (--scheduler) = 5: expected str"),
        (lambda: Execution(mem_fraction="0.5"), "(--gpu-mem-fraction) = '0.5'"),
        (lambda: Execution(limits="no"), "limits (--no-limits) = 'no'"),
        (lambda: store.zoom(centre=(10, 100), width=1, dtype="int32"), "computes in float64"),
        (lambda: level.audit(sample=0, execution=SYNC), "sample = 0"),
        (lambda: level.audit(against="float16", execution=SYNC), "'float16'"),
        (lambda: level.audit(against="nope", execution=SYNC),  # it named dtype, not against
         "against = 'nope': expected float64, float32, double-double"),
        (lambda: store.zoom(x=(1, 2), box_fraction=5), "box_fraction = 5 goes with auto"),
        (lambda: store.zoom(centre=(1, 2), width=1, box_fraction="junk"),
         "box_fraction = 'junk' goes with auto"),
        (lambda: store.zoom(auto=True, box_fraction=5), "box_fraction = 5: expected 0 < F < 1"),
        (lambda: store.dimension([0], confidence="0.9"), "confidence '0.9': not between"),
        (lambda: store.dimension([0], level_set="score"), "level_set = 'score'"),
        (lambda: store.dimension(5), "levels = 5"),
        (lambda: store.dimension([]), "levels = []"),
        (lambda: level.render(tmp_path / "noext"), "picture file name"),
        (lambda: level.render(tmp_path), "is a folder"),
        (lambda: store.animate(tmp_path / "a.gif", fps=float("inf")), "fps = inf"),
        (lambda: store.animate(5), "out 5: give a file name"),
        (lambda: store.animate(tmp_path / "a.gif", frames_per_octave=10 ** 9), "to 10000"),
        (lambda: store.level("0"), "level '0': expected an integer"),
        (lambda: fs.Level(str(store.path), 0), "expected a Store, e.g. fractalsweep.open("),
        (lambda: level.plot(ax="notaxes"), "ax = 'notaxes': expected matplotlib Axes"),
        (lambda: store.ladder(widest={"x": 1}, execution=SYNC), "widest = {'x': 1}"),
        (lambda: fs.open("nosuchfs://bucket/s.zarr"), "Protocol not known: nosuchfs"),
        # flags are True or False, not truthy; only None means "the default"
        (lambda: store.verify(repair="no"), "repair = 'no': expected True or False"),
        (lambda: store.zoom(centre=(10, 100), width=1, force="no"), "force = 'no': expected"),
        (lambda: store.zoom(auto="yes"), "auto = 'yes': expected True or False"),
        (lambda: store.zoom(centre=(1, 2), width=1, log10=(1, 2, 3)), "log10 = (1, 2, 3)"),
        (lambda: store.zoom(centre=(10, 100), width=1, dtype=0, execution=SYNC),
         "dtype = 0: system.kind = 'training' computes in float64 or float32"),
        (lambda: store.zoom(centre=(10, 100), width=1, dtype={}, execution=SYNC), "dtype = {}"),
        (lambda: store.zoom(centre=(10, 100), width=1, execution=[]), "execution = []"),
        (lambda: store.resume(execution={}), "execution = {}: expected"),
        (lambda: store.animate(tmp_path / "a.gif", ease="no"), "ease = 'no': expected True"),
        (lambda: store.animate(tmp_path / "a.gif", overlay="no"), "overlay = 'no'"),
        (lambda: store.animate(tmp_path / "a.gif", overlay=np.array([1, 2])), "overlay = array"),
        (lambda: store.animate(tmp_path / "a.gif", progress="no"), "progress = 'no'"),
        (lambda: store.animate(tmp_path / "a.mp4", codec=[]), "codec []: valid codecs are"),
        (lambda: level.render(""), "out '': give a file name"),
        (lambda: level.plot(array=np.array([1, 2])), "no per-pixel array array([1, 2]); it has"),
        (lambda: Execution(kernel=np.array([1, 2])), "kernel (--kernel) = array([1, 2]): expected"),
        (lambda: level.audit(against=np.array([1, 2]), execution=SYNC), "against = array([1, 2])"),
        (lambda: level.audit(sample=np.array([1, 2]), execution=SYNC), "sample = array([1, 2])"),
    ]
    for call, words in refused:
        with pytest.raises(fs.AnimationError if words in ("fps = inf", "to 10000")
                           else fs.ConfigError) as error:
            call()
        assert words in str(error.value) and "\n" not in str(error.value), str(error.value)
    assert len(store.levels) == made and "audit" not in level.attrs
    assert not (tmp_path / "e.zarr").exists() and list(tmp_path.iterdir()) == []


def test_numpy_pairs_are_pairs(tmp_path):
    """A 1-D array of two was refused as "expected a pair (lo, hi)"; lists and tuples were
    taken."""
    store = fs.run(JOB, tmp_path / "s.zarr", execution=SYNC, progress=False)
    level = store.zoom(centre=np.array([30.0, 300.0]), width=np.array([1, 1]),
                       execution=SYNC, progress=False)
    assert store.zoom(centre=(30.0, 300.0), width=(1, 1), execution=SYNC,
                      progress=False).index == level.index == 1
    boxed = store.zoom(x=np.array([20, 40]), y=np.array([200.0, 400.0]), execution=SYNC,
                       progress=False)
    assert boxed.index == 2 and store.zoom(x=[20, 40], y=(200.0, 400.0), execution=SYNC,
                                           progress=False).index == 2
    with pytest.raises(fs.ConfigError, match=r"x = array\(\[1, 2, 3\]\): expected a pair"):
        store.zoom(x=np.array([1, 2, 3]))


def test_numpy_numbers_are_numbers(tmp_path):
    """A notebook's NumPy scalars (``np.int64`` from ``arange``, ``np.float32`` from an
    array) were refused where Python's are taken: "expected an integer >= 1"."""
    from fractalsweep.dimension import dimension_of_images

    job = {"training": {"steps": np.int64(30)}, "x": {"log10": [np.int64(-1), np.float32(4)]},
           "y": {"log10": np.array([-1, 4])}, "grid": {"resolution": (np.int64(17), 17)},
           "measures": {"snapshots": np.arange(10, 11)}}  # arrays and tuples are lists too
    numpy = Execution(scheduler="sync", tile=np.int64(8), tile_timeout=np.float32(60))
    store = fs.run(job, tmp_path / "n.zarr", execution=numpy, progress=False)
    plain = {**JOB, "measures": {"snapshots": [10]}}
    assert store.config == fs.job_config(plain)  # as read back from the store's JSON
    level = store.zoom(auto=np.True_, box_fraction=np.float32(0.5), execution=numpy,
                       progress=np.False_)  # and NumPy's bools are flags
    assert level.index == 1 and level.audit(sample=np.int64(4), execution=numpy,
                                            progress=False)["pixels"] == 4
    assert (Execution(workers=np.int64(1), mem_fraction=np.float64(0.5), limits=np.False_)
            == Execution(workers=1, mem_fraction=0.5, limits=False))
    assert store.verify(repair=np.False_).problems == []
    rows, cols = np.indices((128, 128))
    disc = np.where((rows - 64) ** 2 + (cols - 64) ** 2 < 50 ** 2, -1.0, 1.0)
    images = [disc, -disc]
    assert (dimension_of_images(images, levels=np.arange(2), confidence=np.float32(0.5))
            == dimension_of_images(images, confidence=0.5))
    ladder = fs.run(JOB, tmp_path / "z.zarr", execution=SYNC, progress=False)
    ladder.zoom(centre=(30, 300), width=0.1, progress=False)
    ladder.ladder(widest=0.35, progress=False)
    out = ladder.animate(tmp_path / "z.gif", fps=np.float32(10), size=np.array([32, 32]),
                         frames_per_octave=np.int64(3), progress=False)
    assert out["frames"] > 0


@pytest.mark.parametrize("cmap", [["viridis"], {"a": 1}, np.array([1, 2]), 0, [], {}, ""])
def test_a_cmap_is_a_colouring_s_name_or_refused(store, tmp_path, cmap):
    """Of any kind, and falsy ones too: only None means the paper's colouring."""
    from matplotlib.figure import Figure

    level, words = store.level(0), f"unknown cmap {cmap!r}; valid choices are 'paper'"
    for call in (lambda: level.render(tmp_path / "r.png", cmap=cmap),
                 lambda: level.render(tmp_path / "r.png", cmap=cmap, array="final_loss"),
                 lambda: level.plot(ax=Figure().subplots(), cmap=cmap),
                 lambda: store.animate(tmp_path / "a.gif", cmap=cmap)):
        with pytest.raises(fs.ConfigError) as error:
            call()
        assert words in str(error.value) and "\n" not in str(error.value), str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_verify_repairs_only_when_repair_is_true(tmp_path):
    """``repair="no"`` was truthy: it unmarked the damaged tile for recomputation."""
    store = fs.run(JOB, tmp_path / "s.zarr", execution=SYNC, progress=False)
    chunk = tmp_path / "s.zarr" / "levels" / "0" / "score" / "c" / "1" / "1"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    for value in ("no", 0, None):
        with pytest.raises(fs.ConfigError, match="expected True or False"):
            store.verify(repair=value)
    report = store.verify(repair=False)
    assert len(report.problems) == 1, report.problems
    assert str(report.problems[0]).startswith("level 0 tile (1, 1): score chunk unreadable")
    assert report.repaired == [] and store.level(0).tiles_done == 9
