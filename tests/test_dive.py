"""Zoom levels, the keyframe ladder with shared pixels, and the unattended dive."""

import subprocess
import sys

import numpy as np
import pytest
import zarr

from fractalsweep import dive, store, zoom
from fractalsweep.config import resolve
from fractalsweep.execute import run_sweep

JOB = {"training": {"steps": 30}, "x": {"log10": [-1, 4]}, "y": {"log10": [-1, 4]},
       "grid": {"resolution": 9, "tile": 4}}
ARRAYS = ("score", "first_nonfinite", "final_loss")


def fs(*args):
    return subprocess.run([sys.executable, "-m", "fractalsweep", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def overview(tmp_path):
    path = str(tmp_path / "s.zarr")
    run_sweep(path, resolve(JOB), scheduler="sync", progress=False)
    return path


def _level(path, index):
    group = zarr.open_group(path, mode="r")[f"levels/{index}"]
    return {name: group[name][:] for name in ARRAYS}, dict(group.attrs)


def test_ladder_copies_shared_pixels_and_matches_a_fresh_computation(overview, tmp_path):
    cfg = resolve(JOB)
    deep = zoom.centre_view({"x": cfg.x, "y": cfg.y}, centre=("30", "300"), width=0.05)
    index, _ = dive.zoom_to(overview, deep, scheduler="sync", progress=False)
    ladder = dive.ladder(overview, index, widest=0.2, scheduler="sync", progress=False)
    assert ladder[-1] == index and len(ladder) == len(zoom.ladder(deep, 0.2)) >= 3

    fresh = str(tmp_path / "fresh.zarr")
    run_sweep(fresh, cfg, scheduler="sync", progress=False)
    for i in ladder[:-1]:
        values, attrs = _level(overview, i)
        assert attrs["kind"] == "ladder" and attrs["reused_pixels"] == 5 * 5  # 9 // 2 + 1
        reused = zarr.open_group(overview, mode="r")[f"levels/{i}/reused"][:]
        # the wider level's central half per axis lands on every other narrower pixel
        assert reused.sum() == 25 and reused[2:7, 2:7].all()
        view = dive.view_of(store.open_level(store.open_root(overview), i), cfg)
        j, _ = dive.zoom_to(fresh, view, scheduler="sync", progress=False)
        assert _level(fresh, j)[1]["reused_pixels"] == 0
        for name in ARRAYS:
            np.testing.assert_array_equal(values[name], _level(fresh, j)[0][name])
    # Resuming the ladder finds every level again and adds none.
    again = dive.ladder(overview, index, widest=0.2, scheduler="sync", progress=False)
    assert again == ladder and dive.deepest(overview) == index


def test_zoom_box_auto_preview_and_guard_from_the_command_line(overview):
    r = fs("zoom", overview, "--box", "10", "100", "10", "100", "--scheduler", "sync", "--quiet")
    assert r.returncode == 0, r.stderr
    _, attrs = _level(overview, 1)
    assert attrs["view"]["x"]["lo"] == "10" and attrs["view"]["y"]["hi"] == "100"
    assert attrs["kind"] == "zoom" and not attrs["preview"]

    r = fs("zoom", overview, "--auto", "--from-level", "0", "--box-fraction", "0.5",
           "--float32-preview",
           "--scheduler", "sync", "--quiet")
    assert r.returncode == 0, r.stderr
    values, attrs = _level(overview, 2)
    assert attrs["kind"] == "auto" and attrs["dtype"] == "float32" and attrs["preview"]
    assert not np.isnan(values["score"]).any()
    assert "PREVIEW" in fs("info", overview).stdout

    lo, hi = "13.0000000000000001", "13.0000000000000003"
    r = fs("zoom", overview, "--box", lo, hi, lo, hi, "--scheduler", "sync")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "float64" in r.stderr and "--force" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert sorted(zarr.open_group(overview, mode="r")["levels"].group_keys()) == ["0", "1", "2"]


def test_dive_then_resume_then_animate(tmp_path, job_dir):
    store_path = tmp_path / "d.zarr"
    args = ["dive", job_dir / "quickstart.toml", "--decades", "1", "--store", store_path,
            "--scheduler", "sync", "--quiet", "--set", "grid.resolution=20",
            "--set", "grid.tile=8", "--set", "training.steps=30"]
    r = fs(*args)
    assert r.returncode == 0, r.stderr
    root = zarr.open_group(str(store_path), mode="r")
    n_levels = len(list(root["levels"].group_keys()))
    assert n_levels >= 4
    assert all(root[f"levels/{k}/tiles"][:].all() for k in root["levels"].group_keys())
    deepest = dive.deepest(str(store_path))
    assert root[f"levels/{deepest}"].attrs["resolution"] == [21, 21]  # aligned for the ladder

    again = fs(*args)
    assert again.returncode == 0, again.stderr
    assert len(list(zarr.open_group(str(store_path), mode="r")["levels"].group_keys())) == n_levels

    r = fs("dimension", store_path, "--method", "paper")  # 21 px: too small for the default
    assert r.returncode == 0, r.stderr
    assert "boundary dimension" in r.stdout and "method paper" in r.stdout
    r = fs("dimension", store_path, "--levels", "99")
    assert r.returncode == 2 and "no level 99" in r.stderr

    out = tmp_path / "zoom.gif"
    r = fs("animate", store_path, "--out", out, "--size", "64x64", "--frames-per-octave", "4",
           "--quiet")
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 0 and "frames" in r.stdout
    bad = fs("dive", job_dir / "quickstart.toml", "--decades", "1", "--box-fraction", "2",
             "--store", tmp_path / "bad.zarr", "--scheduler", "sync")
    assert bad.returncode == 2 and "--box-fraction 2" in bad.stderr
    assert not (tmp_path / "bad.zarr").exists()
    r = fs("animate", store_path, "--out", tmp_path / "x.mp4", "--size", "64by64")
    assert r.returncode == 2 and "--size" in r.stderr
