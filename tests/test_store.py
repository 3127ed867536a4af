"""The zarr store: layout, resume, refusal of another config, tiling independence."""

import datetime
import json
import os
import re
import socket
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

import fractalsweep as fs
from fractalsweep import Execution, store, streams
from fractalsweep.config import resolve
from fractalsweep.execute import run_level
from fractalsweep.status import level_status
from fractalsweep.store import LevelSpec, StoreError

TILE = 4
SYNC = Execution(scheduler="sync", tile=TILE)
JOB = {"training": {"steps": 30}, "x": {"log10": [-1, 4]}, "y": {"log10": [-1, 4]},
       "grid": {"resolution": [10, 9]}}
ARRAYS = ("score", "first_nonfinite", "final_loss")


def _cfg(**grid):
    return resolve({**JOB, "grid": {**JOB["grid"], **grid}})


def _arrays(path, level=0):
    group = zarr.open_group(str(path), mode="r")[f"levels/{level}"]
    return {name: group[name][:] for name in ARRAYS}


def test_layout_is_readable_with_plain_zarr_and_xarray(tmp_path):
    path = str(tmp_path / "s.zarr")
    cfg = _cfg()
    report = fs.run(cfg, path, execution=SYNC, progress=False).report
    assert (report.computed, report.skipped, report.pixels) == (9, 0, 90)

    root = zarr.open_group(path, mode="r")
    meta = root.attrs["fractalsweep"]
    assert meta["config"] == cfg.to_dict()
    assert set(meta["versions"]) >= {"jax", "jaxlib", "numpy", "zarr", "dask", "distributed"}
    for name, value in streams.draw(cfg).items():
        np.testing.assert_array_equal(root[f"inputs/{name}"][:], value)
    level = root["levels/0"]
    assert level["score"].shape == (9, 10) and level["score"].chunks == (4, 4)
    assert level.attrs["view"]["x"]["lo"] == "0.1" and level.attrs["view"]["y"]["hi"] == "10000"
    assert level["tiles"][:].all()
    assert not np.isnan(level["score"][:]).any()
    assert (level["first_nonfinite"][:] >= -1).all()
    np.testing.assert_allclose(level["x"][:], np.logspace(-1, 4, 10), rtol=1e-15)

    ds = xr.open_zarr(path, group="levels/0", consolidated=False)
    assert ds["score"].dims == ("y", "x")
    np.testing.assert_array_equal(ds["score"].x.values, level["x"][:])
    np.testing.assert_array_equal(ds["score"].values, level["score"][:])

    layout = (Path(__file__).parents[1] / "docs" / "store.md").read_text()
    record = layout.split("- `provenance[i, j]` is the tile's record:")[1].split("It is written")[0]
    documented = set(re.findall(r"`([a-z_]+)`", record))
    assert documented == set(json.loads(str(level["provenance"][0, 0][()])))
    attrs = layout.split("/levels/<L>/ ")[1].split("/levels/<L>/score")[0]
    attrs = re.sub(r"\([^)]*\)", "", attrs.replace("attrs:", "").replace("[nx, ny]", ""))
    assert {name.strip() for name in attrs.split(",")} == set(level.attrs)


def test_a_source_tree_never_installed_sweeps(tmp_path, monkeypatch):
    """Run from a checkout on PYTHONPATH (no package metadata, as on a lent GPU machine),
    a sweep records the version ``fractalsweep.__version__`` gives instead of failing the
    store's creation and every tile."""
    from importlib.metadata import Distribution, PackageNotFoundError

    from fractalsweep import tile

    found = Distribution.from_name.__func__

    def from_name(cls, name):
        if name == "fractalsweep":
            raise PackageNotFoundError(name)
        return found(cls, name)

    monkeypatch.setattr(Distribution, "from_name", classmethod(from_name))
    tile._device.cache_clear()
    path = str(tmp_path / "s.zarr")
    fs.run(_cfg(), path, execution=SYNC, progress=False)
    root = zarr.open_group(path, mode="r")
    assert root.attrs["fractalsweep"]["versions"]["fractalsweep"] == fs.__version__
    assert root["levels/0/tiles"][:].all()
    tile._device.cache_clear()


def test_resume_skips_marked_tiles_and_recomputes_unmarked(tmp_path):
    path = str(tmp_path / "s.zarr")
    cfg = _cfg()
    fs.run(cfg, path, execution=SYNC, progress=False)
    clean = _arrays(path)

    again = fs.run(cfg, path, execution=SYNC, progress=False).report
    assert (again.computed, again.skipped) == (0, 9)

    # A tile whose data was written but whose marker was not, and one never written at all.
    level = zarr.open_group(path, mode="r+")["levels/0"]
    level["tiles"][0, 1] = 0
    level["tiles"][2, 2] = 0
    level["score"][8:9, 8:10] = np.nan
    resumed = fs.run(cfg, path, execution=SYNC, progress=False).report
    assert sorted(s["tile"] for s in resumed.summaries) == [[0, 1], [2, 2]]
    for name in ARRAYS:
        np.testing.assert_array_equal(_arrays(path)[name], clean[name])


def test_another_config_is_refused_and_nothing_changes(tmp_path):
    path = str(tmp_path / "s.zarr")
    fs.run(_cfg(), path, execution=SYNC, progress=False)
    before = _arrays(path)
    attrs = dict(zarr.open_group(path).attrs)
    other = resolve({**JOB, "model": {"activation": "relu"}})
    with pytest.raises(StoreError, match="model.activation is 'tanh' there, 'relu' here"):
        fs.run(other, path, execution=SYNC, progress=False)
    assert dict(zarr.open_group(path).attrs) == attrs
    for name in ARRAYS:
        np.testing.assert_array_equal(_arrays(path)[name], before[name])


def test_not_a_store_is_refused(tmp_path):
    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    with pytest.raises(StoreError, match="not a fractalsweep store"):
        store.create_or_check(str(tmp_path / "plain.zarr"), _cfg(), dict)


def test_results_do_not_depend_on_tiling(tmp_path):
    results = []
    for tile in (4, 5, 10):
        path = str(tmp_path / f"t{tile}.zarr")
        fs.run(_cfg(), path, execution=Execution(tile=tile, scheduler="sync"), progress=False)
        results.append(_arrays(path))
    for other in results[1:]:
        for name in ARRAYS:
            np.testing.assert_array_equal(other[name], results[0][name])


def test_float32_store_keeps_the_float32_coordinates(tmp_path):
    path = str(tmp_path / "f32.zarr")
    cfg = resolve({**JOB, "dtype": "float32"})
    fs.run(cfg, path, execution=SYNC, progress=False)
    x = zarr.open_group(path, mode="r")["levels/0/x"][:]
    assert x.dtype == np.float64
    np.testing.assert_array_equal(x, x.astype(np.float32).astype(np.float64))
    assert zarr.open_group(path, mode="r")["levels/0"].attrs["dtype"] == "float32"


def test_a_level_creation_cut_short_is_redone(tmp_path):
    path = str(tmp_path / "s.zarr")
    cfg = _cfg()
    fs.run(cfg, path, execution=SYNC, progress=False)
    half = zarr.open_group(path, mode="r+")["levels"].create_group("1")
    half.create_array("score", shape=(2, 2), dtype="float64")  # crashed before its attributes
    assert store.level_indices(zarr.open_group(path, mode="r")) == [0]
    with SYNC.session(progress=False) as session:
        report = run_level(path, cfg, session, 1, LevelSpec.of_job(cfg))
    assert report.computed == 9
    np.testing.assert_array_equal(_arrays(path, 1)["score"], _arrays(path)["score"])


def test_status_rate_is_measured_over_the_latest_run(tmp_path):
    path = str(tmp_path / "s.zarr")
    cfg = _cfg()
    fs.run(cfg, path, execution=SYNC, progress=False)
    level = zarr.open_group(path, mode="r+")["levels/0"]
    for ix in np.ndindex(*level["provenance"].shape):  # as if the first run were a day ago
        record = json.loads(str(level["provenance"][ix]))
        finished = datetime.datetime.fromisoformat(record["finished"])
        record["finished"] = (finished - datetime.timedelta(days=1)).isoformat()
        level["provenance"][ix] = json.dumps(record)
    level["tiles"][0, :] = 0
    resumed = fs.run(cfg, path, execution=SYNC, progress=False).report
    records = store.provenance(store.open_level(store.open_root(path), 0))
    latest = sorted((r for r in records if r["run"] == resumed.summaries[0]["run"]),
                    key=lambda r: r["finished"])
    assert len(latest) == 3 and len({r["run"] for r in records}) == 2
    start = min(datetime.datetime.fromisoformat(r["finished"])
                - datetime.timedelta(seconds=r["seconds"]) for r in latest)
    span = (datetime.datetime.fromisoformat(latest[-1]["finished"]) - start).total_seconds()
    stats = level_status(store.open_level(store.open_root(path), 0))
    assert stats["pixels_per_s"] == pytest.approx(sum(r["pixels"] for r in latest) / span)


def test_status_rate_is_every_worker_s_tiles_over_the_time_they_took_together(tmp_path):
    """From finish times alone, two workers' tiles finishing together were counted as done
    in the gaps between finishes: 1,330 px/s where the run said 202. And the ETA of a
    stopped run was printed, never counting down."""
    from fractalsweep.status import format_status

    path = str(tmp_path / "s.zarr")
    fs.run(_cfg(resolution=12), path, execution=SYNC, progress=False)  # 3 x 3 tiles of 16 px
    level = zarr.open_group(path, mode="r+")["levels/0"]
    t0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    # two workers, each two tiles of 10 s back to back: 64 pixels in 20 s, 3.2 px/s
    for n, ix in enumerate([(0, 0), (0, 1), (0, 2), (1, 0)]):
        record = json.loads(str(level["provenance"][ix]))
        record.update(finished=(t0 + datetime.timedelta(seconds=10 + 10 * (n // 2))).isoformat(),
                      seconds=10.0, run="latest", pid=n % 2)
        level["provenance"][ix] = json.dumps(record)
    level["tiles"][1:, :] = 0
    level["tiles"][1, 0] = 1
    now = t0 + datetime.timedelta(seconds=25)  # 5 s after the last finish
    stats = level_status(store.open_level(store.open_root(path), 0), now)
    assert stats["pixels_per_s"] == pytest.approx(64 / 20) and stats["rate_tiles"] == 4
    assert stats["eta_s"] == pytest.approx((144 - 64) / 3.2 - 5)
    assert stats["workers"] == [f"{socket.gethostname()} (cpu:0, 2 processes)"]
    here = {"pid": os.getpid(), "host": socket.gethostname(), "started": "now"}
    running, stopped = (format_status(path, [stats], lock) for lock in (here, None))
    assert "3.2 px/s (latest run, last 4 tiles), ETA 0:00:20 at that rate" in running
    assert "ETA" not in stopped and "not running: no run holds the store; 'fractalsweep " \
        f"resume {path}' computes the missing tiles" in stopped
    audit = format_status(path, [stats], {**here, "command": "an audit"})  # computes no tile
    assert "since now, an audit: no tiles are being computed" in audit and "ETA" not in audit


def test_two_drivers_finding_a_dead_driver_s_lock_do_not_both_take_it_over(tmp_path):
    """Each read the dead holder, removed the lock and made its own: the second removed the
    lock the first had just made, and both computed. Here the first is held up between
    reading the holder and taking over, where the race is."""
    import subprocess
    import sys
    import textwrap

    path = tmp_path / "s.zarr"
    path.mkdir()
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid no process has now
    (path / store.LOCK).write_text(json.dumps({"host": socket.gethostname(), "pid": gone.pid,
                                               "started": "earlier"}))
    driver = textwrap.dedent(f"""
        import sys, time
        from fractalsweep import store
        if sys.argv[1] == "slow":
            alive = store.holder_alive
            def holder_alive(holder):
                print("read", flush=True)
                time.sleep(2)
                return alive(holder)
            store.holder_alive = holder_alive
        try:
            with store.driver_lock({str(path)!r}):
                print("holds", flush=True)
                time.sleep(3)
        except store.StoreError as exc:
            print("refused:", exc, flush=True)
        """)
    slow = subprocess.Popen([sys.executable, "-c", driver, "slow"], stdout=subprocess.PIPE,
                            text=True)
    assert slow.stdout.readline() == "read\n"
    fast = subprocess.run([sys.executable, "-c", driver, "fast"], capture_output=True,
                          text=True, timeout=60)
    assert slow.communicate(timeout=60)[0] == "holds\n"
    assert fast.stdout.startswith(f"refused: {path} is being computed by another run "
                                  f"(pid {slow.pid} "), fast.stdout + fast.stderr
    assert not (path / store.LOCK).exists()


@pytest.mark.parametrize("seconds,unit,pixels,rates", [
    (0.0193, "tile", 256, "51.8 tile/s, 13,300 px/s"),
    (12.87, "tile", 256, "12.9 s/tile, 19.9 px/s"),
    (0.0193, "frame", None, "51.8 frame/s")])  # a video's frames train no pixel
def test_the_progress_bar_prints_rates_to_3_figures(capsys, seconds, unit, pixels, rates):
    """tqdm's own rate had 4 (52.93tile/s, 12.87s/task, 89.20frame/s), where docs/cli.md
    promises 3; the tile already done counts in neither rate."""
    from fractalsweep.progress import TileProgress

    bar = TileProgress(total=4, done=1, unit=unit)
    now = [bar.bar.start_t]
    bar.bar._time = lambda: now[0]  # tqdm's clock, so the rates are exact
    for _ in range(3):
        now[0] += seconds
        bar.update(pixels)
    bar.close()
    last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("100%") and last.endswith(f", {rates}]"), last
