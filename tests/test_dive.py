"""Zoom levels, the keyframe ladder with shared pixels, and the unattended dive."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from decimal import Decimal

import matplotlib.image
import numpy as np
import pytest
import zarr

import fractalsweep as fs
from fractalsweep import Execution, dive, faults, levels, store, targets, verify, views
from fractalsweep.config import resolve
from fractalsweep.errors import ConfigError

TILE = 4
SYNC = Execution(scheduler="sync", tile=TILE)
JOB = {"training": {"steps": 30}, "x": {"log10": [-1, 4]}, "y": {"log10": [-1, 4]},
       "grid": {"resolution": 9}}
ARRAYS = ("score", "first_nonfinite", "final_loss")


def cli(*args):
    return subprocess.run([sys.executable, "-m", "fractalsweep", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def overview(tmp_path):
    path = str(tmp_path / "s.zarr")
    fs.run(resolve(JOB), path, execution=SYNC, progress=False)
    return path


def _level(path, index):
    group = zarr.open_group(path, mode="r")[f"levels/{index}"]
    return {name: group[name][:] for name in ARRAYS}, dict(group.attrs)


def test_ladder_copies_shared_pixels_and_matches_a_fresh_computation(overview, tmp_path):
    cfg = resolve(JOB)
    deep = views.centre_view({"x": cfg.x, "y": cfg.y}, centre=("30", "300"), width=0.05)
    with SYNC.session(progress=False) as session:
        index, _ = dive.zoom_to(overview, deep, session)
        ladder = dive.ladder(overview, index, session, widest=0.2)
    assert ladder[-1] == index and len(ladder) == len(views.ladder(deep, 0.2)) >= 3

    fresh = str(tmp_path / "fresh.zarr")
    fs.run(cfg, fresh, execution=SYNC, progress=False)
    for i in ladder[:-1]:
        values, attrs = _level(overview, i)
        assert attrs["kind"] == "ladder" and attrs["reused_pixels"] == 5 * 5  # 9 // 2 + 1
        reused = zarr.open_group(overview, mode="r")[f"levels/{i}/reused"][:]
        # the wider level's central half per axis lands on every other narrower pixel
        assert reused.sum() == 25 and reused[2:7, 2:7].all()
        view = levels.view_of(store.open_level(store.open_root(overview), i), cfg)
        with SYNC.session(progress=False) as session:
            j, _ = dive.zoom_to(fresh, view, session)
        assert _level(fresh, j)[1]["reused_pixels"] == 0
        for name in ARRAYS:
            np.testing.assert_array_equal(values[name], _level(fresh, j)[0][name])
    # Resuming the ladder finds every level again and adds none.
    with SYNC.session(progress=False) as session:
        again = dive.ladder(overview, index, session, widest=0.2)
    assert again == ladder and levels.deepest(overview) == index


# A ladder run whose driver is SIGKILLed after the first `writes` chunk writes of a ladder
# level's copy of shared pixels, or, with more, once the copy is done (its count not written).
COPY_CUT_SHORT = """
import os, signal, sys
from zarr.storage import LocalStore
from fractalsweep import cli, store

left, copy, write = int(sys.argv[1]), store._copy_shared_pixels, LocalStore._set

async def counted(self, *args, **kwargs):
    global left
    if left == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    left -= 1
    await write(self, *args, **kwargs)

def cut_short(*args):
    LocalStore._set = counted
    copy(*args)
    os.kill(os.getpid(), signal.SIGKILL)

store._copy_shared_pixels = cut_short
sys.exit(cli.main(sys.argv[2:]))
"""
DEEP = {"centre": ("30", "300"), "width": 0.05}  # its ladder to 0.2 decades: 2 levels


@pytest.fixture(scope="module")
def deep_zoom(tmp_path_factory):
    """An overview and a deep zoom (level 1), and the same store with its ladder made in one
    uninterrupted run (levels 2 and 3)."""
    cfg = resolve(JOB)
    base = str(tmp_path_factory.mktemp("ladder") / "base.zarr")
    fs.run(cfg, base, execution=SYNC, progress=False)
    with SYNC.session(progress=False) as session:
        dive.zoom_to(base, views.centre_view({"x": cfg.x, "y": cfg.y}, **DEEP), session)
    clean = base.replace("base", "clean")
    shutil.copytree(base, clean)
    fs.open(clean).ladder(1, widest=0.2, execution=SYNC, progress=False)
    return base, _written(clean)


def _written(path):
    """Every level's attributes and arrays (values and chunks on disk), but the times and
    provenance records, which differ from run to run."""
    written = {}
    for key, group in zarr.open_group(path, mode="r")["levels"].groups():
        written[key, "attrs"] = {k: v for k, v in group.attrs.items() if k != "created"}
        for name, array in group.arrays():
            if name != "provenance":
                written[key, name] = array[:].tobytes(), store.chunks_on_disk(array)
    return written


@pytest.mark.parametrize("writes, rerun", [
    (0, "ladder"),  # attributes written, no pixel copied
    (2, "resume"),  # some chunks of the first array copied
    (13, "ladder"),  # every result array copied, some chunks of reused
    (99, "resume"),  # the copy done, reused_pixels not written
])
def test_a_ladder_killed_while_copying_shared_pixels_resumes_the_copy(deep_zoom, tmp_path,
                                                                      writes, rerun):
    """The level's attributes come before its copy, so its re-run found the level made and
    never copied: it trained the shared pixels again, and ``reused`` and ``reused_pixels``
    differed from an uninterrupted run's (the scores did not)."""
    base, clean = deep_zoom
    path = str(tmp_path / "s.zarr")
    shutil.copytree(base, path)
    args = ["ladder", path, "--level", "1", "--widest", "0.2", "--scheduler", "sync",
            "--tile", TILE, "--quiet", "--no-render"]
    killed = subprocess.run([sys.executable, "-c", COPY_CUT_SHORT, str(writes), *map(str, args)],
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert zarr.open_group(path, mode="r")["levels/2"].attrs["reuse_from"] == 1
    if rerun == "resume":
        assert [lv.index for lv in fs.open(path).resume(execution=SYNC, progress=False)] == [2]
    fs.open(path).ladder(1, widest=0.2, execution=SYNC, progress=False)
    got = _written(path)
    assert [key for key in clean if got.get(key) != clean[key]] == []
    assert got.keys() == clean.keys() and verify.verify(path).problems == []


@pytest.mark.parametrize("centre, width, widest, doublings", [
    ("5", "0.5625", "overview", 4),  # a dive by box_fraction 0.5 into a 9-decade overview
    ("0.5", "0.5", 4, 3),  # fractalsweep ladder --widest 4 above a 0.5-decade zoom
])
def test_ladder_stops_at_the_target_though_the_deep_bounds_are_rounded(centre, width, widest,
                                                                       doublings):
    """These deep widths come out a hair under ``width`` from their rounded bounds; the
    ladder once doubled past the target for it, ending twice too wide."""
    cfg = resolve({"x": {"log10": [-3, 6]}, "y": {"log10": [-3, 6]}})
    overview = {"x": cfg.x, "y": cfg.y}
    deep = views.centre_view(overview, centre=(centre, centre), width=width, log10=True)
    assert views.window(deep["x"])[1] < Decimal(width)
    ladder = views.ladder(deep, overview if widest == "overview" else widest)
    assert len(ladder) == doublings + 1
    target = 9 if widest == "overview" else widest
    assert abs(views.window(ladder[0]["x"])[1] - target) < Decimal("1e-35")


def test_dive_refuses_an_overview_too_small_for_its_boxes_before_computing_it(tmp_path):
    path = tmp_path / "small.zarr"
    with SYNC.session(progress=False) as session, pytest.raises(ConfigError) as refused:
        dive.dive(str(path), resolve({**JOB, "grid": {"resolution": 16}}), 1, session)
    assert ("a 16x16 level is too small for box_fraction 0.25: its boxes would span "
            "3 pixel steps a side" in str(refused.value))
    assert "at least 17 pixels a side" in str(refused.value) and not path.exists()
    cfg = resolve(JOB)
    rows = np.indices((17, 17))[0]  # 17 pixels, as it says, are enough to find a target
    assert targets.auto_target(rows - 8.5, {"x": cfg.x, "y": cfg.y}, box_fraction=0.25)


def test_a_dive_deeper_than_its_dtype_says_how_deep_it_got_and_which_dive_finishes(tmp_path):
    """float32 at 17 pixels keeps them apart for a few decades only: the dive stops there with
    the dive's own advice (it takes no --force), keeps its levels, and the depth it names
    finishes, computing nothing again but the ladder."""
    store = fs.run({**JOB, "dtype": "float32", "grid": {"resolution": 17}},
                   str(tmp_path / "f32.zarr"), execution=SYNC, progress=False)
    with pytest.raises(fs.PrecisionError) as stopped:
        store.dive(50, execution=SYNC, progress=False)
    message = str(stopped.value)
    deepest = store.deepest()
    assert message.startswith(f"the dive stopped at level {deepest.index}, ")
    assert "of the 50 decades asked: x: float32 keeps 17 pixels distinct" in message
    assert "--force" not in message and "a job in double-double goes deeper" in message
    most = float(message.split("a dive of at most ")[1].split()[0])
    assert 0 < most <= levels.zoom_factor(deepest.view, {"x": store.config.x,
                                                         "y": store.config.y})
    autos = [lv.index for lv in store.levels if lv.attrs["kind"] == "auto"]
    assert autos and autos[-1] == deepest.index

    ladder = store.dive(most, execution=SYNC, progress=False)
    assert ladder[-1].index == deepest.index and ladder[0].attrs["kind"] == "ladder"
    assert [lv.index for lv in store.levels if lv.attrs["kind"] == "auto"] == autos


def test_zoom_box_auto_preview_and_guard_from_the_command_line(overview):
    r = cli("zoom", overview, "--box", "10", "100", "10", "100", "--scheduler", "sync", "--quiet")
    assert r.returncode == 0, r.stderr
    _, attrs = _level(overview, 1)
    assert attrs["view"]["x"]["lo"] == "10" and attrs["view"]["y"]["hi"] == "100"
    assert attrs["kind"] == "zoom" and not attrs["preview"]
    picture = overview.replace(".zarr", "-L1.png")  # like run, zoom draws its level
    assert f"wrote {picture}" in r.stdout and matplotlib.image.imread(picture).shape[0] > 300

    r = cli("zoom", overview, "--auto", "--from-level", "0", "--box-fraction", "0.5",
           "--float32-preview",
           "--scheduler", "sync", "--quiet")
    assert r.returncode == 0, r.stderr
    values, attrs = _level(overview, 2)
    assert attrs["kind"] == "auto" and attrs["dtype"] == "float32" and attrs["preview"]
    assert not np.isnan(values["score"]).any()
    assert "float32 (preview)" in cli("info", overview).stdout

    lo, hi = "13.0000000000000001", "13.0000000000000003"
    r = cli("zoom", overview, "--box", lo, hi, lo, hi, "--scheduler", "sync")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "float64" in r.stderr and "--force" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert sorted(zarr.open_group(overview, mode="r")["levels"].group_keys()) == ["0", "1", "2"]

    r = cli("zoom", overview, "--box", "1e20", "1e30", "10", "100", "--scheduler", "sync",
            "--quiet", "--no-render")  # every digit, not 31 of them for 1e30
    assert r.returncode == 0 and "level 3: x 1e+20 .. 1e+30, y 10 .. 100" in r.stdout, r.stdout


def test_an_interrupted_automatic_zoom_run_again_finishes_its_level(overview, tmp_path):
    """Interrupted, ``zoom --auto`` said to run the same command to resume, which refused:
    it zoomed from the deepest level, now its own unfinished one."""
    clean = str(tmp_path / "clean.zarr")
    shutil.copytree(overview, clean)
    fs.open(clean).zoom(auto=True, box_fraction=0.5, execution=SYNC, progress=False)
    args = [sys.executable, "-m", "fractalsweep", "zoom", overview, "--auto", "--box-fraction",
            "0.5", "--scheduler", "sync", "--tile", str(TILE), "--quiet", "--no-render"]
    hung = tmp_path / "hung"  # the first tile hangs once its data are written: Ctrl-C
    zoom = subprocess.Popen(args, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, faults.VARIABLE: f"tile-data:hang:{hung}"})
    try:
        deadline = time.monotonic() + 300
        while not hung.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        zoom.send_signal(signal.SIGINT)
        assert zoom.wait(timeout=120) == 130
    finally:
        zoom.kill()
    said = zoom.stderr.read()
    assert "interrupted; finished tiles are kept, run the same command to resume" in said
    assert fs.open(overview).level(1).tiles_done == 0 and levels.deepest(overview) == 1

    with pytest.raises(fs.StoreError, match="level 1 is not finished"):  # another zoom
        fs.open(overview).zoom(auto=True, box_fraction=0.75, execution=SYNC, progress=False)
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"{overview} level 1: 9 tiles computed, 0 already done" in again.stdout
    assert _written(overview) == _written(clean)  # level 1 finished, and no level 2

    box = fs.open(overview).zoom(x=("20", "40"), y=("200", "400"), execution=SYNC,
                                 progress=False)
    zarr.open_group(overview, mode="r+")[f"levels/{box.index}/tiles"][0, 0] = 0  # interrupted
    with pytest.raises(fs.StoreError, match=f"level {box.index} is not finished"):
        fs.open(overview).zoom(auto=True, box_fraction=0.5, execution=SYNC, progress=False)


def test_dive_then_resume_then_animate(tmp_path, job_dir):
    store_path = tmp_path / "d.zarr"
    args = ["dive", job_dir / "quickstart.toml", "--decades", "1", "--store", store_path,
            "--scheduler", "sync", "--quiet", "--set", "grid.resolution=40",
            "--tile", "16", "--set", "training.steps=30"]
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    sheet = tmp_path / "d-ladder.png"  # every keyframe of the ladder on one picture
    assert f"wrote {sheet}" in r.stdout and matplotlib.image.imread(sheet).shape[1] > 300
    root = zarr.open_group(str(store_path), mode="r")
    n_levels = len(list(root["levels"].group_keys()))
    assert n_levels >= 4
    assert all(root[f"levels/{k}/tiles"][:].all() for k in root["levels"].group_keys())
    deepest = levels.deepest(str(store_path))
    assert root[f"levels/{deepest}"].attrs["resolution"] == [41, 41]  # aligned for the ladder
    ladder = [keyframe.level for keyframe in levels.find_ladder(store_path)]
    copied = sum(root[f"levels/{k}"].attrs["reused_pixels"] for k in ladder)  # as ladder says
    assert (f"keyframe ladder of {len(ladder)} levels {ladder} (widest first); its levels hold "
            f"{copied} pixels copied from narrower levels") in r.stdout and copied > 0, r.stdout

    again = cli(*args)
    assert again.returncode == 0, again.stderr
    assert len(list(zarr.open_group(str(store_path), mode="r")["levels"].group_keys())) == n_levels

    r = cli("dimension", store_path, "--method", "paper")  # 41 px: too small for the default
    assert r.returncode == 0, r.stderr
    assert "boundary dimension" in r.stdout and "method paper" in r.stdout
    r = cli("dimension", store_path, "--levels", "99")
    assert r.returncode == 2 and "no level 99" in r.stderr

    out = tmp_path / "zoom.gif"
    r = cli("animate", store_path, "--out", out, "--size", "64x64", "--frames-per-octave", "4",
           "--quiet")
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 0 and "frames" in r.stdout
    bad = cli("dive", job_dir / "quickstart.toml", "--decades", "1", "--box-fraction", "2",
             "--store", tmp_path / "bad.zarr", "--scheduler", "sync")
    assert bad.returncode == 2 and "--box-fraction 2" in bad.stderr
    assert not (tmp_path / "bad.zarr").exists()
    r = cli("animate", store_path, "--out", tmp_path / "x.mp4", "--size", "64by64")
    assert r.returncode == 2 and "--size" in r.stderr

    ladder = [keyframe.level for keyframe in levels.find_ladder(store_path)]
    zarr.open_group(str(store_path), mode="r+")[f"levels/{ladder[0]}/tiles"][0, 0] = 0
    r = cli("dimension", store_path, "--method", "paper", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["levels"] == ladder[1:]  # the widest keyframe left out, and:
    note = (f"note: level {ladder[0]} not finished, so not in the ladder; 'fractalsweep "
            f"resume {store_path}' finishes them")
    assert r.stderr.strip() == note
    r = cli("animate", store_path, "--out", out, "--size", "64x64", "--frames-per-octave", "4",
            "--quiet")
    assert r.returncode == 0 and r.stderr.strip() == note
