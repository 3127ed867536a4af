"""The precision audit against independent recomputations in the higher precision."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import zarr

import fractalsweep as fs
from fractalsweep import audit, kernel, store, streams
from fractalsweep.config import resolve
from fractalsweep.grid import axis_values, flat_pixels
from fractalsweep.store import read_inputs

SYNC = fs.Execution(scheduler="sync", tile=6)
# An overview window in float32: wide, and at 300 steps full of float32 blow-ups
JOB = {"training": {"steps": 300}, "x": {"log10": [-1, 4]}, "y": {"log10": [-1, 4]},
       "grid": {"resolution": 12}, "dtype": "float32"}


def test_an_audit_of_every_pixel_marks_exactly_the_class_changes(tmp_path):
    store = fs.run(JOB, tmp_path / "a.zarr", execution=SYNC, progress=False)
    level = store.level(0)
    report = level.audit(None, execution=SYNC, progress=False)
    cfg = resolve({**JOB, "dtype": "float64"})
    xs, ys = (axis_values(getattr(cfg, a), 12, "float64") for a in "xy")
    again = kernel.train(cfg, streams.draw(cfg), *flat_pixels(xs, ys))["score"].reshape(12, 12)
    flips = (again < 0) != (level.score < 0)
    np.testing.assert_array_equal(level["audit"], flips.astype(np.int8))
    assert report["against"] == "float64" and report["pixels"] == 144
    assert report["flipped"] == int(flips.sum()) and level.attrs["audit"] == report


def test_a_double_double_sample_and_the_command_line(tmp_path):
    store = fs.run({**JOB, "dtype": "float64", "training": {"steps": 30}}, tmp_path / "b.zarr",
                   execution=SYNC, progress=False)
    r = subprocess.run([sys.executable, "-m", "fractalsweep", "audit", store.path, "--sample",
                        "8", "--scheduler", "sync", "--quiet"], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    assert "of 8 pixels" in r.stdout and "change class in double-double" in r.stdout
    marks = store.level(0)["audit"]
    assert (marks >= 0).sum() == 8 and set(np.unique(marks)) <= {-1, 0, 1}
    info = subprocess.run([sys.executable, "-m", "fractalsweep", "info", store.path],
                          capture_output=True, text=True, timeout=120).stdout
    assert "/8 flip in double-double" in info
    assert (tmp_path / "b-L0-audit.png").stat().st_size > 10_000
    # one pixel: three of the four tiles have no sample, and no chunk in the map (not damage)
    store.level(0).audit(1, execution=SYNC, progress=False)
    assert (store.level(0)["audit"] >= 0).sum() == 1
    assert store.level(0).render_audit(tmp_path / "one.png").stat().st_size > 10_000


def test_an_audit_holds_the_store_s_lock_and_is_refused_before_computing(tmp_path,
                                                                         monkeypatch):
    """It computed its whole sample, then found another driver's lock (or a store it could
    not write) and recorded nothing; and held no lock while it computed."""
    path = fs.run({**JOB, "training": {"steps": 30}}, tmp_path / "l.zarr", execution=SYNC,
                  progress=False).path
    computed, shown, real = [], [], audit.audit_pixels

    def recorded(where, *args):
        computed.append(json.loads((tmp_path / "l.zarr" / store.LOCK).read_text())["pid"])
        shown.append(fs.open(path).status())
        return real(where, *args)

    monkeypatch.setattr(audit, "audit_pixels", recorded)
    with subprocess.Popen(["sleep", "60"]) as holder:
        (tmp_path / "l.zarr" / store.LOCK).write_text(json.dumps(
            {"host": socket.gethostname(), "pid": holder.pid, "started": "2026-11-28T12:00"}))
        with pytest.raises(fs.StoreError, match=f"being computed by another run .pid {holder.pid}"):
            fs.open(path).level(0).audit(4, execution=SYNC, progress=False)
        holder.kill()
    assert computed == [] and "audit" not in fs.open(path).level(0).attrs
    (tmp_path / "l.zarr" / store.LOCK).unlink()
    assert fs.open(path).level(0).audit(4, execution=SYNC, progress=False)["pixels"] == 4
    assert computed and set(computed) == {os.getpid()}  # under its own lock
    assert f"running: pid {os.getpid()}" in shown[0] and ", an audit: no tiles" in shown[0]
    assert not (tmp_path / "l.zarr" / store.LOCK).exists()


def test_a_picture_the_disk_refuses_is_named_and_the_audit_kept(tmp_path):
    """"No space left on device; the audit recorded nothing": it had, and info showed it."""
    path = fs.run({**JOB, "training": {"steps": 30}}, tmp_path / "p.zarr", execution=SYNC,
                  progress=False).path
    png = tmp_path / "a.png"
    (tmp_path / ".a.png.part").symlink_to("/dev/full")  # every write: no space left
    r = subprocess.run([sys.executable, "-m", "fractalsweep", "audit", path, "--sample", "4",
                        "--scheduler", "sync", "--quiet", "--png", str(png)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 1 and r.stderr == (
        f"fractalsweep: error: No space left on device ({png}); what the command computed is "
        "kept, only this file is not written\n"), r.stderr
    assert fs.open(path).level(0).attrs["audit"]["pixels"] == 4 and not png.exists()


def test_a_store_s_measures_do_not_stop_a_double_double_audit(tmp_path):
    """The score is all an audit recomputes: it was refused, "the double-double kernel
    trains ... the score alone; not measures.snapshots", for what it does not train."""
    job = {**JOB, "dtype": "float64", "training": {"steps": 30}}
    measured = {**job, "measures": {"snapshots": [10], "lyapunov": True},
                "ensemble": {"seeds": 2}}
    plain, store = (fs.run(j, tmp_path / f"{n}.zarr", execution=SYNC, progress=False)
                    for n, j in (("p", job), ("m", measured)))
    report = store.level(0).audit(8, execution=SYNC, progress=False)
    assert report["against"] == "double-double" and report["pixels"] == 8
    plain.level(0).audit(8, execution=SYNC, progress=False)
    np.testing.assert_array_equal(store.level(0)["audit"], plain.level(0)["audit"])


def test_an_audit_needs_a_finished_level_and_another_dtype(tmp_path):
    store = fs.run({**JOB, "dtype": "float64", "training": {"steps": 5}}, tmp_path / "c.zarr",
                   execution=SYNC, progress=False)
    with pytest.raises(fs.ConfigError, match=r"another dtype \(--against float32 or "
                       r"double-double\)$"):  # not the one it refuses
        store.level(0).audit(4, against="float64", execution=SYNC, progress=False)
    zarr.open_group(store.path, mode="r+")["levels/0/tiles"][0, 0] = 0  # a tile not done
    with pytest.raises(fs.StoreError, match="not finished"):
        store.level(0).audit(4, execution=SYNC, progress=False)


def test_an_audit_computes_with_the_kernel_its_execution_names(tmp_path):
    """--kernel reaches the audit's recomputation: one the fused kernel cannot train is
    refused, as a run would be, not quietly computed by another."""
    job = {**JOB, "model": {"biases": True}, "training": {"steps": 5}}
    store = fs.run(job, tmp_path / "k.zarr", execution=SYNC, progress=False)
    pallas = fs.Execution(scheduler="sync", kernel="pallas")
    with pytest.raises(fs.ConfigError, match="kernel = .pallas.: the fused kernel does not"):
        store.level(0).audit(4, execution=pallas, progress=False)
    assert "audit" not in store.level(0).attrs


def test_damaged_inputs_stop_an_audit_or_fail_its_tasks_in_one_line(tmp_path):
    """Damaged inputs are refused before any task; inputs damaged once the driver has read
    them fail every task, retried and named as a run's tiles are. Either way the audit
    records nothing, and says so (not that finished tiles are kept, as a run does)."""
    job = tmp_path / "job.toml"
    job.write_text('dtype = "float64"\n[training]\nsteps = 5\n[x]\nlog10 = [-1, 4]\n'
                   '[y]\nlog10 = [-1, 4]\n[grid]\nresolution = 12\n')
    path = tmp_path / "f.zarr"
    made = subprocess.run([sys.executable, "-m", "fractalsweep", "run", job, "--store", path,
                           "--scheduler", "sync", "--quiet", "--no-render"],
                          capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr
    store = fs.open(path)
    read = read_inputs(str(path))  # this process, the driver, has read the intact inputs
    (path / "inputs" / "X" / "c" / "0" / "0").write_bytes(b"not a chunk")
    with pytest.raises(fs.SweepError, match=r"^the audit of level 0: 2 of 2 tasks failed after "
                       r"3 attempts, the first with .*; the audit recorded nothing$") as failed:
        store.level(0).audit(20, execution=fs.Execution(workers=2), progress=False)
    assert not failed.value.resumable and read is not None
    r = subprocess.run([sys.executable, "-m", "fractalsweep", "audit", path, "--sample", "20",
                        "--scheduler", "sync"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "its inputs are unreadable" in r.stderr and "resume" not in r.stderr
    assert "audit" not in store.level(0).attrs and "audit" not in store.level(0).arrays


def test_an_audit_on_a_cluster_shows_its_progress_and_dashboard(tmp_path):
    store = fs.run({**JOB, "dtype": "float64", "training": {"steps": 5}}, tmp_path / "p.zarr",
                   execution=SYNC, progress=False)
    r = subprocess.run([sys.executable, "-m", "fractalsweep", "audit", store.path, "--sample",
                        "40", "--workers", "2", "--against", "float32"], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "Dask dashboard" in r.stderr and "3/3" in r.stderr and "task" in r.stderr, r.stderr
    assert "of 40 pixels" in r.stdout
