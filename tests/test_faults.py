"""Faults with real processes and a real store: nothing lost, nothing corrupted.

Processes are killed (SIGKILL) at every phase of writing a store, by the fault hook of
:mod:`fractalsweep.faults` or from outside; a worker hangs; a real (tmpfs) filesystem fills
up. After each, the same command resumes and the arrays end bit-identical to a clean run,
and `verify` finds nothing wrong. docs/reliability.md lists these tests and their figures.
"""

import contextlib
import os
import re
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
from fractalsweep import Execution, SweepError, faults, store, streams, summary, verify
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


def _run_args(job, path, where=("--workers", "2")):
    return [sys.executable, "-m", "fractalsweep", "run", str(job), "--store", str(path),
            *where, "--tile", str(TILE), "--quiet", "--no-render",
            *(f"--set={s}" for s in SETTINGS)]


def _driver(job, path, env=None):
    return subprocess.Popen(_run_args(job, path), stdout=subprocess.PIPE, env=env,
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


def test_second_driver_is_refused(job, clean, tmp_path):
    """The first driver's worker hangs in a tile, so that the first cannot finish while the
    second starts (it did on a loaded machine, and the second found nothing to compute)."""
    path = tmp_path / "s.zarr"
    first = _driver(job, path, env=_with_fault(tmp_path, "tile-data", "hang"))
    try:
        _wait_for(lambda: (tmp_path / "fault-fired").exists())
        second = subprocess.run(_run_args(job, path), capture_output=True, text=True,
                                timeout=300)
        assert second.returncode == 2
        assert "is being computed by another run" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None  # still computing
    finally:
        _kill_group(first)
    _resumes_identical(job, path, clean)  # the refused driver changed nothing


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


def test_a_tile_whose_workers_died_is_not_said_to_have_had_three_attempts(job, clean,
                                                                           tmp_path):
    """"failed after 3 attempts" stood beside Dask's own "on 4 different workers": a task
    whose workers died is retried by Dask (allowed-failures), not by fractalsweep's retries.
    Here Dask allows no worker death at all, and one dies writing a tile."""
    path = tmp_path / "s.zarr"
    env = {**_with_fault(tmp_path, "tile-data"),
           "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    r = subprocess.run(_run_args(job, path, ("--workers", "1")), env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert re.search(r"\d tile\(s\) of level 0 failed, first tile \(", r.stderr), r.stderr
    assert "KilledWorker: Attempted to run task" in r.stderr and "attempts" not in r.stderr
    _resumes_identical(job, path, clean)


def _with_fault(tmp_path, phase, action="kill"):
    return {**os.environ, faults.VARIABLE: f"{phase}:{action}:{tmp_path / 'fault-fired'}"}


def _resumes_identical(job, path, clean, where=("--workers", "2")):
    again = subprocess.run(_run_args(job, path, where), capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr
    _assert_identical(path, clean)
    assert verify.verify(str(path)).problems == []


@pytest.mark.parametrize("phase", faults.PHASES)
def test_driver_killed_at_each_phase_then_resumed(job, clean, tmp_path, phase):
    path = tmp_path / "s.zarr"
    sync = ("--scheduler", "sync")  # the driver writes the tiles itself: every phase is its own
    killed = subprocess.run(_run_args(job, path, sync), env=_with_fault(tmp_path, phase),
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (tmp_path / "fault-fired").exists()
    assert _markers(path) < 9
    if phase == "store-inputs":  # readers say what happened and what makes it again
        with pytest.raises(fs.StoreError, match="creation was cut short.*makes it again"):
            fs.open(path)
    if phase.startswith("tile-"):  # the first tile's data are written, its marker is not
        counted = summary.describe(str(path))["levels"][0]
        assert _markers(path) == 0 and counted["converged"] + counted["diverged"] == 0
        assert not np.isnan(zarr.open_group(str(path), mode="r")["levels/0/score"][:]).all()
        assert np.isnan(fs.open(path).level(0).score).all()  # readers: not computed (white)
    _resumes_identical(job, path, clean, sync)


@pytest.mark.parametrize("phase", ["tile-data", "tile-provenance"])
def test_worker_killed_between_data_and_marker(job, clean, tmp_path, phase):
    path = tmp_path / "s.zarr"
    run = subprocess.run(_run_args(job, path), env=_with_fault(tmp_path, phase),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "fault-fired").exists(), "no worker reached the fault"
    _assert_identical(path, clean)
    assert verify.verify(str(path)).problems == []


def test_a_scheduler_killed_mid_sweep_is_one_line_then_resumed(job, clean, tmp_path):
    """A scheduler of one's own (``--scheduler``) lost mid-run: the client's reconnecting
    printed its ERROR line (and, at other moments, its tracebacks) before the run's line,
    which said "the session closed"."""
    import socket
    from pathlib import Path

    dask = str(Path(sys.executable).with_name("dask"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port",
                                  address.rsplit(":", 1)[1], "--no-dashboard"], **quiet)
    # the worker hangs in a tile: the run is under way, and cannot finish, when it goes
    worker = subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-dashboard"],
                              env=_with_fault(tmp_path, "tile-data", "hang"), **quiet)
    path = tmp_path / "s.zarr"
    try:
        run = subprocess.Popen(_run_args(job, path, ("--scheduler", address)), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _wait_for(lambda: (tmp_path / "fault-fired").exists(), timeout=300)
        scheduler.kill()
        _, err = run.communicate(timeout=120)
    finally:
        for process in (scheduler, worker):
            process.kill()
            process.wait()
    assert run.returncode == 1 and err.count("\n") == 1, err
    assert "were not seen to finish (the scheduler was lost)" in err, err
    _resumes_identical(job, path, clean, ("--scheduler", "sync"))


def test_a_cluster_without_workers_is_named_once_a_minute():
    """A real scheduler with no worker: the watchdog says so at 60 s and 120 s, not between,
    with the reason its session gives."""
    from distributed import LocalCluster

    from fractalsweep.watchdog import Watchdog

    said = []
    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        dog = Watchdog(client, lambda: 600.0, said.append, lambda: "the reason")
        for now in (1000.0, 1030.0, 1060.0, 1090.0, 1120.0):
            dog.tick(now)
    assert said == ["no workers connected for 60 s: the reason",
                    "no workers connected for 120 s: the reason"]


def test_a_hung_worker_is_restarted_and_its_tiles_computed_elsewhere(job, clean, tmp_path):
    path = tmp_path / "s.zarr"
    args = [*_run_args(job, path), "--tile-timeout", "20"]
    run = subprocess.run(args, env=_with_fault(tmp_path, "tile-data", "hang"),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "fault-fired").exists(), "no worker reached the fault"
    assert "finished no tile for" in run.stderr and "restarting it" in run.stderr
    _assert_identical(path, clean)


@pytest.fixture
def small_disk(tmp_path):
    """A real filesystem of 208 KiB (tmpfs): room for the level, not for all its tiles."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=208k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_disk_full_as_the_lock_is_written_leaves_no_lock_to_refuse_the_resume(job, clean,
                                                                                small_disk):
    """The lock file was made, then its holder could not be written into it: the empty file
    refused every later run as "not a fractalsweep lock file", after space was freed too."""
    path = small_disk / "s.zarr"
    sync = ("--scheduler", "sync", "--no-limits")
    subprocess.run(_run_args(job, path, sync), capture_output=True, timeout=600)  # fills it
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:  # every last block: the lock's few bytes do not fit either
            f.write(bytes(512))
    resume = [sys.executable, "-m", "fractalsweep", "resume", str(path), "--scheduler", "sync"]
    full = subprocess.run(resume, capture_output=True, text=True, timeout=600)
    assert full.returncode == 1 and "No space left on device" in full.stderr, full.stderr
    assert not (path / store.LOCK).exists()
    filler.unlink()
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    _resumes_identical(job, path, clean, sync)


@pytest.mark.parametrize("where", [("--scheduler", "sync"), ("--workers", "2")])
def test_disk_full_while_writing_then_resumed(job, clean, small_disk, where):
    """One line, whether the tiles fail in this process or on workers (which log each failed
    try at ERROR, with its traceback)."""
    path = small_disk / "s.zarr"
    refused = subprocess.run(_run_args(job, path, where), capture_output=True, text=True,
                             timeout=600)
    assert refused.returncode == 2 and "KiB free on its disk" in refused.stderr
    assert not path.exists()
    # Past the estimate (as when another process fills the disk during the run):
    full = subprocess.run(_run_args(job, path, (*where, "--no-limits")), capture_output=True,
                          text=True, timeout=600)
    assert full.returncode == 1, full.stderr
    lines = [line for line in full.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "No space left on device" in lines[0], full.stderr
    assert _markers(path) < 9
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    _resumes_identical(job, path, clean, where)
