"""Faults with real processes and a real store: nothing lost, nothing corrupted."""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import zarr
from distributed import Client

import fractalsweep as fs
from fractalsweep import Execution, SweepError, store, streams
from fractalsweep.cluster import local_cluster
from fractalsweep.config import apply_overrides, load_job, resolve

SETTINGS = ["grid.resolution=24", "training.steps=400"]
TILE = 8  # 3 x 3 tiles
SYNC = Execution(scheduler="sync", tile=TILE)
ARRAYS = ("score", "first_nonfinite", "final_loss")


@pytest.fixture(scope="module")
def job(job_dir):
    return job_dir / "quickstart.toml"


@pytest.fixture(scope="module")
def cfg(job):
    return resolve(apply_overrides(load_job(job), SETTINGS))


@pytest.fixture(scope="module")
def clean(cfg, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("clean") / "clean.zarr")
    fs.run(cfg, path, execution=SYNC, progress=False)
    return _read(path)


def _read(path):
    group = zarr.open_group(str(path), mode="r")["levels/0"]
    return {name: group[name][:] for name in (*ARRAYS, "tiles")}


def _markers(path):
    try:
        return int(zarr.open_group(str(path), mode="r")["levels/0/tiles"][:].sum())
    except Exception:  # noqa: BLE001 - the store may not exist yet
        return 0


def _wait_for(predicate, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def _assert_identical(path, clean):
    got = _read(path)
    for name in ARRAYS:
        np.testing.assert_array_equal(got[name], clean[name])
    assert (got["tiles"] == 1).all()


def test_worker_killed_mid_sweep(cfg, clean, tmp_path):
    path = str(tmp_path / "s.zarr")
    with local_cluster(workers=2, dashboard_address=":0") as cluster, Client(cluster) as client:
        pids = client.run(os.getpid)
        result = {}
        thread = threading.Thread(target=lambda: result.update(report=fs.run(cfg, path, execution=Execution(tile=TILE, scheduler=cluster.scheduler_address), progress=False).report))
        thread.start()
        _wait_for(lambda: _markers(path) >= 1)
        os.kill(next(iter(pids.values())), signal.SIGKILL)
        thread.join(timeout=300)
    report = result["report"]
    assert report.computed == report.total == 9
    _assert_identical(path, clean)


def _run_args(job, path):
    return [sys.executable, "-m", "fractalsweep", "run", str(job), "--store", str(path),
            "--workers", "2", "--tile", str(TILE), "--quiet", "--no-render",
            *(f"--set={s}" for s in SETTINGS)]


def _driver(job, path):
    return subprocess.Popen(_run_args(job, path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _kill_group(proc):
    with_group = os.getpgid(proc.pid) if proc.poll() is None else proc.pid
    try:
        os.killpg(with_group, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def test_driver_killed_then_resumed(job, clean, tmp_path):
    path = tmp_path / "s.zarr"
    driver = _driver(job, path)
    try:
        _wait_for(lambda: _markers(path) >= 2)
        driver.send_signal(signal.SIGKILL)  # the driver alone; its workers are orphaned
        driver.wait()
    finally:
        _kill_group(driver)
    done_at_kill = _markers(path)
    assert done_at_kill < 9, "the driver finished before it was killed"

    again = subprocess.run(_run_args(job, path), capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr
    line = again.stdout.strip().splitlines()[0]
    computed, skipped = (int(line.split(": ")[1].split()[0]), int(line.split(", ")[1].split()[0]))
    assert computed + skipped == 9 and skipped >= done_at_kill and computed >= 1
    _assert_identical(path, clean)


def test_second_driver_is_refused(job, tmp_path):
    path = tmp_path / "s.zarr"
    first = _driver(job, path)
    try:
        _wait_for(lambda: (path / store.LOCK).exists())
        second = subprocess.run(_run_args(job, path), capture_output=True, text=True,
                                timeout=300)
        assert second.returncode == 2
        assert "is being computed by another run" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.wait(timeout=300) == 0
    finally:
        _kill_group(first)
    assert _markers(path) == 9


def _corrupt_column(path, cfg, column):
    """Create the level, then damage one chunk of its x coordinates on disk."""
    with store.driver_lock(str(path)):
        root = store.create_or_check(str(path), cfg, lambda: streams.draw(cfg))
        store.ensure_level(root, 0, cfg, store.LevelSpec.of_job(cfg).replace(tile=TILE))
    (path / "levels" / "0" / "x" / "c" / str(column)).write_bytes(b"not a chunk")


@pytest.mark.parametrize("where", ["sync", "cluster"])
def test_failing_tile_is_named_and_finished_tiles_stay(cfg, clean, tmp_path, where):
    path = tmp_path / "s.zarr"
    _corrupt_column(path, cfg, 1)
    kwargs = {"scheduler": "sync"} if where == "sync" else {"workers": 2}
    with pytest.raises(SweepError, match=r"3 tile\(s\) of level 0 failed after 3 attempts, "
                                         r"first tile \(0, 1\)"):
        fs.run(cfg, str(path), execution=Execution(tile=TILE, **kwargs), progress=False)
    got = _read(path)
    assert got["tiles"][:, 1].sum() == 0 and got["tiles"][:, [0, 2]].all()
    for name in ARRAYS:
        np.testing.assert_array_equal(got[name][:, :8], clean[name][:, :8])
    failed = zarr.open_group(str(path), mode="r")["levels/0"].attrs["failed"]
    assert [f["tile"] for f in failed] == [[0, 1], [1, 1], [2, 1]]
    status = subprocess.run([sys.executable, "-m", "fractalsweep", "status", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert "level 0: 6/9 tiles" in status.stdout and "failed tile (0, 1)" in status.stdout
    assert not (path / store.LOCK).exists()
