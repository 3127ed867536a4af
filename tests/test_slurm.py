"""The SLURM path end to end, on a real single-node SLURM cluster started for the test.

tests/slurm/start.sh installs (if missing) and starts munge, slurmctld and slurmd on localhost;
the sweep then runs through ``fractalsweep run --cluster PROFILE`` exactly as a user would, its
Dask workers started by dask-jobqueue through real ``sbatch`` jobs, and the store must be
bit-identical to an in-process run. This needs root (daemons, /etc/slurm, apt-get): elsewhere
the module is skipped with the reason, shown in pytest's ``-ra`` summary.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

import fractalsweep as fs
from fractalsweep import Execution
from fractalsweep.config import apply_overrides, load_job, resolve

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "tests" / "slurm"
JOB = ROOT / "jobs" / "quickstart.toml"
OVERRIDES = ["grid.resolution=16", "training.steps=50"]
START_TIMEOUT_S = 300  # installing the packages from scratch included
RUN_TIMEOUT_S = 300
CANNOT_RUN_HERE = 77  # start.sh: not root, no apt-get, packages cannot be installed


def _why_not_here() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root to start munge, slurmctld and slurmd (CI runs it as root)"
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        return "SLURM is not installed and there is no apt-get to install it"
    return None


def _stop() -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPTS / "stop.sh")], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def slurm():
    """A running single-node SLURM cluster; stopped again after the module's tests."""
    why = _why_not_here()
    if why:
        pytest.skip(f"real SLURM test skipped: {why}")
    try:
        start = subprocess.run(["bash", str(SCRIPTS / "start.sh")], capture_output=True,
                               text=True, timeout=START_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        _stop()
        pytest.fail(f"tests/slurm/start.sh took over {START_TIMEOUT_S} s:\n{exc.stdout}\n"
                    f"{exc.stderr}")
    output = f"{start.stdout}\n{start.stderr}".strip()
    if start.returncode == CANNOT_RUN_HERE:
        _stop()
        reason = start.stderr.strip().splitlines()[-1] if start.stderr.strip() else output
        pytest.skip(f"real SLURM test skipped: {reason}")
    if start.returncode != 0:
        stop = _stop()
        pytest.fail(f"tests/slurm/start.sh failed (exit {start.returncode}):\n{output}\n"
                    f"stop.sh: {stop.stdout}{stop.stderr}")
    yield socket.gethostname()
    stop = _stop()
    assert stop.returncode == 0, f"tests/slurm/stop.sh failed:\n{stop.stdout}\n{stop.stderr}"


def _queue() -> dict[str, str]:
    """Job id -> job name of every job SLURM knows (pending, running, completing)."""
    out = subprocess.run(["squeue", "-h", "-o", "%i %j"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    return dict(line.split(maxsplit=1) for line in out.splitlines() if line.strip())


def _slurm_processes() -> dict[int, str]:
    """PID -> SLURM_JOB_ID of every process on this machine that runs inside a SLURM job."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in env:
            if item.startswith(b"SLURM_JOB_ID="):
                found[int(entry.name)] = item.split(b"=", 1)[1].decode()
                break
    return found


class Watcher:
    """While a command runs, note the SLURM jobs in the queue and the processes inside them."""

    def __init__(self):
        self.jobs: dict[str, str] = {}
        self.processes: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            try:
                self.jobs.update(_queue())
            except (subprocess.SubprocessError, OSError):
                pass
            self.processes.update(_slurm_processes())
            self._stop.wait(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _profile(tmp_path: Path, python: str = sys.executable) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    path = tmp_path / "slurm.toml"
    path.write_text("\n".join([
        'system = "slurm"', 'queue = "debug"', "gpus_per_job = 0", "cores = 1",
        'memory = "1GB"', 'walltime = "00:10:00"', "jobs = 2", 'interface = "lo"',
        f"log_directory = {json.dumps(str(logs))}", f"python = {json.dumps(python)}",
    ]) + "\n")
    return path


@contextlib.contextmanager
def _port_held(port: int):
    """``port`` held, as another cluster's dashboard would (already, if it is not free)."""
    with socket.socket() as sock:
        with contextlib.suppress(OSError):
            sock.bind(("", port))
            sock.listen()
        yield


def _fractalsweep(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fractalsweep", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=RUN_TIMEOUT_S)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    group = zarr.open_group(str(path), mode="r")["levels/0"]
    return {n: group[n][:] for n in ("score", "first_nonfinite", "final_loss", "tiles")}


def _provenance(path: Path) -> list[dict]:
    records = zarr.open_group(str(path), mode="r")["levels/0/provenance"][:]
    return [json.loads(r) for r in records.ravel() if r]


def test_sweep_through_slurm_matches_in_process(slurm, tmp_path):
    profile = _profile(tmp_path)
    store = tmp_path / "slurm.zarr"
    before = set(_queue())
    with Watcher() as seen, _port_held(8787):
        start = time.perf_counter()
        run = _fractalsweep("run", JOB, "--store", store, "--cluster", profile, "--quiet",
                            "--no-render", "--tile", "8", *(a for o in OVERRIDES for a in ("--set", o)),
                            cwd=tmp_path)
        seconds = time.perf_counter() - start
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    assert "already in use" not in run.stderr, run.stderr  # distributed's four lines

    # The workers were SLURM jobs: dask-jobqueue submitted profile.jobs = 2 of them, and every
    # tile was computed by a process inside one of those jobs on this node.
    worker_jobs = {j for j, name in seen.jobs.items() if j not in before}
    assert len(worker_jobs) == 2, seen.jobs
    records = _provenance(store)
    assert len(records) == 4
    for r in records:
        assert r["host"] == slurm
        assert r["pid"] in seen.processes, (r["pid"], seen.processes)
        assert seen.processes[r["pid"]] in worker_jobs
    pids = {r["pid"] for r in records}
    jobs = {seen.processes[p] for p in pids}
    logs = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert any(j in name for j in jobs for name in logs), logs
    print(f"\nSLURM run: {seconds:.1f} s, tiles on {len(pids)} worker process(es) in SLURM "
          f"job(s) {sorted(jobs)}; jobs submitted {sorted(worker_jobs)}")

    # dask-jobqueue cancels its jobs when the run ends.
    for _ in range(60):
        if not set(_queue()) & worker_jobs:
            break
        time.sleep(0.5)
    assert not set(_queue()) & worker_jobs, _queue()

    # Bit for bit the in-process result of the same resolved config.
    cfg = resolve(apply_overrides(load_job(JOB), OVERRIDES))
    fs.run(cfg, str(tmp_path / "sync.zarr"), execution=Execution(tile=8, scheduler="sync"), progress=False)
    got, want = _arrays(store), _arrays(tmp_path / "sync.zarr")
    assert got["tiles"].all()
    for name, value in want.items():
        assert got[name].dtype == value.dtype, name
        np.testing.assert_array_equal(got[name], value, err_msg=name)
        assert got[name].tobytes() == value.tobytes(), name


def test_dry_run_prints_the_batch_script_and_submits_nothing(slurm, tmp_path):
    profile = _profile(tmp_path)
    store = tmp_path / "dry.zarr"
    before = _queue()
    r = _fractalsweep("run", JOB, "--store", store, "--cluster", profile, "--dry-run",
                      *(a for o in OVERRIDES for a in ("--set", o)), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "#SBATCH" in r.stdout and "#SBATCH -p debug" in r.stdout, r.stdout
    assert sys.executable in r.stdout
    assert "dry run: nothing submitted" in r.stdout
    time.sleep(1)
    assert _queue() == before
    assert not store.exists()


def _as_in_process(store: Path, overrides: list[str], tmp_path: Path) -> None:
    """The store's arrays are bit for bit those of an in-process run of the same job."""
    cfg = resolve(apply_overrides(load_job(JOB), overrides))
    fs.run(cfg, str(tmp_path / "sync.zarr"), execution=Execution(tile=8, scheduler="sync"),
           progress=False)
    got, want = _arrays(store), _arrays(tmp_path / "sync.zarr")
    for name, value in want.items():
        assert got[name].tobytes() == value.tobytes(), name


def test_ctrl_c_ends_a_cluster_run_in_one_line_and_the_same_command_resumes(slurm, tmp_path):
    """dask-jobqueue's runner module made Ctrl-C call ``sys.exit()``: the run ended with
    status 0 and not a word, its store unfinished."""
    profile, store, hung = _profile(tmp_path), tmp_path / "c.zarr", tmp_path / "hung"
    sweep = ["--tile", "8", *(a for o in OVERRIDES for a in ("--set", o))]
    # one tile hangs (in a worker of a SLURM job, which inherits the variable): the run is
    # under way, and cannot finish, when the Ctrl-C comes
    run = subprocess.Popen(
        [sys.executable, "-m", "fractalsweep", "run", JOB, "--store", store, "--cluster",
         profile, "--quiet", "--no-render", *sweep], cwd=tmp_path, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=os.environ | {"FRACTALSWEEP_FAULT": f"tile-data:hang:{hung}"})
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not hung.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert err.startswith("fractalsweep: error: interrupted") and err.count("\n") == 1, err
    resumed = _fractalsweep("resume", store, "--cluster", profile, "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    _as_in_process(store, OVERRIDES, tmp_path)


def _tiles_done(store: Path) -> int:
    """The tiles of level 0 marked done so far (0 before the level exists)."""
    try:
        return int(zarr.open_group(str(store), mode="r")["levels/0/tiles"][:].sum())
    except (KeyError, FileNotFoundError, ValueError):
        return 0


def test_worker_jobs_that_end_are_replaced_and_the_run_finishes(slurm, tmp_path):
    """Both worker jobs cancelled mid-run, as a walltime or an operator ends them: new jobs
    take their place and the store is bit-identical to an in-process run (a plain scale()
    submitted its jobs once, and the run waited forever with an empty queue)."""
    overrides = ["grid.resolution=32", "training.steps=500"]  # 16 tiles of 8 x 8
    store = tmp_path / "slurm.zarr"
    before = set(_queue())
    with Watcher() as seen:
        run = subprocess.Popen(
            [sys.executable, "-m", "fractalsweep", "run", str(JOB), "--store", str(store),
             "--cluster", str(_profile(tmp_path)), "--quiet", "--no-render", "--tile", "8",
             *(a for o in overrides for a in ("--set", o))],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while _tiles_done(store) == 0 and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        cancelled = set(_queue()) - before
        done = _tiles_done(store)
        subprocess.run(["scancel", *cancelled], check=True, timeout=30)
        try:
            out, err = run.communicate(timeout=RUN_TIMEOUT_S)
        finally:
            run.kill()
    assert run.returncode == 0, f"{out}\n{err}"
    assert len(cancelled) == 2 and 0 < done < 16, (cancelled, done)
    replacements = set(seen.jobs) - before - cancelled
    assert replacements, seen.jobs
    assert {seen.processes.get(r["pid"]) for r in _provenance(store)} & replacements
    _as_in_process(store, overrides, tmp_path)


def test_worker_jobs_that_end_before_their_worker_connects_are_resubmitted(slurm, tmp_path):
    """Jobs whose worker cannot start (here no Python: ``false`` runs instead) end unseen by
    Dask: they are resubmitted, and the line said while no worker is connected says what
    SLURM holds and that jobs ended before their workers connected, where the logs are."""
    profile = _profile(tmp_path, python="false")
    before = set(_queue())
    with Watcher() as seen, Execution(cluster=str(profile)).session(progress=False) as session:
        session.client()
        deadline = time.monotonic() + 90
        while len(set(seen.jobs) - before) <= 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(set(seen.jobs) - before) > 2, seen.jobs
        why = session.no_workers()
    assert why.startswith("SLURM holds "), why
    assert f"ended before their worker connected and were resubmitted (their logs: " \
           f"{tmp_path / 'logs'})" in why, why
