"""The Dask path against the in-process path, bit for bit, on a real LocalCluster."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import zarr
from distributed import Client, LocalCluster

import fractalsweep as fs
from fractalsweep import Execution, kernel
from fractalsweep.cluster import (
    WORKER_MALLOC,
    Profile,
    job_script,
    local_cluster,
    start_forkserver,
    worker_env,
)
from fractalsweep.config import resolve
from fractalsweep.errors import ConfigError, SweepError
from fractalsweep.execute import run_level

TILE = 5
SYNC = Execution(scheduler="sync", tile=TILE)
JOB = {"training": {"steps": 40}, "x": {"log10": [-1, 4]}, "y": {"log10": [-1, 4]},
       "grid": {"resolution": 12}}


def _score(path):
    group = zarr.open_group(path, mode="r")["levels/0"]
    return {n: group[n][:] for n in ("score", "first_nonfinite", "final_loss", "tiles")}


def test_local_cluster_matches_in_process(tmp_path):
    cfg = resolve(JOB)
    fs.run(cfg, str(tmp_path / "sync.zarr"), execution=SYNC, progress=False)
    report = fs.run(cfg, str(tmp_path / "dask.zarr"), execution=Execution(tile=TILE, workers=2), progress=False).report
    assert report.computed == 9 and report.dashboard
    assert len({s["host"] for s in report.summaries}) >= 1
    sync, dask = _score(str(tmp_path / "sync.zarr")), _score(str(tmp_path / "dask.zarr"))
    for name in sync:
        np.testing.assert_array_equal(dask[name], sync[name])


def test_existing_scheduler_by_address_and_by_file(tmp_path):
    cfg = resolve(JOB)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=":0", env=worker_env(None)) as cluster:
        report = fs.run(cfg, str(tmp_path / "a.zarr"), execution=Execution(tile=TILE, scheduler=cluster.scheduler_address), progress=False).report
        # What `dask scheduler --scheduler-file` writes (Client.write_scheduler_file fails
        # on this distributed's scheduler info; the address is all a client reads).
        (tmp_path / "scheduler.json").write_text(
            json.dumps({"type": "Scheduler", "address": cluster.scheduler_address}))
        by_file = fs.run(cfg, str(tmp_path / "b.zarr"), execution=Execution(tile=TILE, scheduler_file=str(tmp_path / "scheduler.json")), progress=False).report
    assert report.computed == by_file.computed == 9
    a, b = _score(str(tmp_path / "a.zarr")), _score(str(tmp_path / "b.zarr"))
    assert not np.isnan(a["score"]).any()
    np.testing.assert_array_equal(a["score"], b["score"])


def test_a_relative_store_path_reaches_workers_working_in_another_folder(tmp_path,
                                                                         monkeypatch):
    """Workers started by hand or by a batch system work in folders of their own: every tile
    and audit task failed there, "a.zarr: no fractalsweep store there", for the default
    store path, which is relative."""
    for folder in ("workers", "driver"):
        (tmp_path / folder).mkdir()
    monkeypatch.chdir(tmp_path / "workers")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=":0", env=worker_env(None)) as cluster:
        monkeypatch.chdir(tmp_path / "driver")
        there = Execution(tile=TILE, scheduler=cluster.scheduler_address)
        store = fs.run(JOB, "a.zarr", execution=there, progress=False)
        audited = store.level(0).audit(8, execution=there, progress=False)
    fs.run(JOB, "b.zarr", execution=SYNC, progress=False).level(0).audit(8, execution=SYNC,
                                                                         progress=False)
    assert store.report.computed == 9 and audited["pixels"] == 8
    a, b = _score("a.zarr"), _score("b.zarr")
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert list((tmp_path / "workers").iterdir()) == []


def test_one_worker_gives_the_same_bits(tmp_path):
    cfg = resolve(JOB)
    fs.run(cfg, str(tmp_path / "sync.zarr"), execution=SYNC, progress=False)
    fs.run(cfg, str(tmp_path / "one.zarr"), execution=Execution(tile=TILE, workers=1), progress=False)
    for name, value in _score(str(tmp_path / "sync.zarr")).items():
        np.testing.assert_array_equal(_score(str(tmp_path / "one.zarr"))[name], value)


def test_gpu_workers_each_see_one_device(tmp_path):
    """The per-GPU worker layout, started for real (JAX falls back to the CPU here)."""
    cfg = resolve(JOB)
    cache = tmp_path / "cache"
    with local_cluster(gpus=["0", "1"], mem_fraction=0.5, dashboard_address=":0",
                       cache_dir=str(cache)) as cluster, Client(cluster) as client:
        env = client.run(lambda: {k: os.environ.get(k) for k in (
            "CUDA_VISIBLE_DEVICES", "XLA_PYTHON_CLIENT_MEM_FRACTION",
            "XLA_PYTHON_CLIENT_PREALLOCATE", "JAX_PLATFORMS")})
        malloc = list(client.run(_malloc_at_start).values())
        resources = {w["name"]: w["resources"] for w in client.scheduler_info()["workers"].values()}
        report = fs.run(cfg, str(tmp_path / "g.zarr"), execution=Execution(tile=TILE, scheduler=cluster.scheduler_address), progress=False).report
    assert sorted(e["CUDA_VISIBLE_DEVICES"] for e in env.values()) == ["0", "1"]
    assert all(e["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.5" for e in env.values())
    assert all(e["XLA_PYTHON_CLIENT_PREALLOCATE"] is None for e in env.values())
    assert all(e["JAX_PLATFORMS"] is None for e in env.values())
    assert malloc == [WORKER_MALLOC] * 2  # spawned: from the nanny's pre-spawn environment
    assert resources == {"gpu-0": {"GPU": 1}, "gpu-1": {"GPU": 1}}
    assert report.computed == 9


def test_compilation_cache_is_shared_by_workers_and_runs(tmp_path):
    cfg = resolve(JOB)
    cache = tmp_path / "cache"

    def run(name):
        with local_cluster(workers=2, dashboard_address=":0", cache_dir=str(cache)) as c:
            fs.run(cfg, str(tmp_path / name), execution=Execution(tile=TILE, scheduler=c.scheduler_address), progress=False)
        return sorted(p.name for p in cache.rglob("*") if p.is_file())

    first = run("a.zarr")
    assert first, "the kernel was not cached"
    assert run("b.zarr") == first, "fresh workers compiled the same kernel again"


def _worker_start():
    import jax

    with open(f"/proc/{os.getppid()}/cmdline") as f:
        parent = f.read().replace("\0", " ")
    return {"forked": "multiprocessing.forkserver" in parent,
            "variable": os.environ.get("FRACTALSWEEP_TEST_VARIABLE"),
            "jax": (jax.config.jax_compilation_cache_dir, jax.config.jax_platforms),
            "malloc": _malloc_at_start()}


def _malloc_at_start():
    """The malloc settings this process started with (what glibc read), not set since."""
    with open("/proc/self/environ", "rb") as f:
        start = dict(v.decode().split("=", 1) for v in f.read().split(b"\0") if b"=" in v)
    return {name: start.get(name) for name in WORKER_MALLOC}


def test_cpu_workers_are_forked_with_the_drivers_environment_and_their_jax_settings(
        tmp_path, monkeypatch):
    """Forked from the fork server, which imported JAX before any worker's environment
    existed, a worker still has the driver's environment as the cluster starts, its own
    JAX settings and malloc's (over distributed's trimming, which read at the process's
    start would make it map every kernel call's temporaries afresh); so has a worker
    restarted later (spawned)."""
    start_forkserver()
    monkeypatch.setenv("FRACTALSWEEP_TEST_VARIABLE", "set after the fork server started")
    cache = str(tmp_path / "cache")
    with local_cluster(workers=2, dashboard_address=":0", cache_dir=cache) as cluster, \
            Client(cluster) as client:
        first = list(client.run(_worker_start).values())
        client.restart()
        restarted = list(client.run(_worker_start).values())
    settings = {"variable": "set after the fork server started", "jax": (cache, "cpu"),
                "malloc": WORKER_MALLOC}
    assert first == [{"forked": True, **settings}] * 2
    assert restarted == [{"forked": False, **settings}] * 2


def test_store_at_a_url(tmp_path):
    cfg = resolve(JOB)
    report = fs.run(cfg, "memory://fs/s.zarr", execution=SYNC, progress=False).report
    assert report.computed == 9
    level = zarr.open_group("memory://fs/s.zarr", mode="r")["levels/0"]
    fs.run(cfg, str(tmp_path / "local.zarr"), execution=SYNC, progress=False)
    np.testing.assert_array_equal(level["score"][:], _score(str(tmp_path / "local.zarr"))["score"])


def test_gpu_workers_get_tiles_of_at_least_a_gpu_call(job_dir):
    """A GPU trains 16384 networks per call: its tiles hold one call, 128 x 128 pixels."""
    assert kernel.GROUP["gpu"] == 128 * 128
    assert Execution(scheduler="sync").tile_for((64, 64)) == 16
    assert Execution(workers=2, gpus=()).tile_for((64, 64)) == 16
    assert Execution(gpus=("0",)).on_gpus and Execution(gpus=("0",)).tile_for((64, 64)) == 128
    profile = job_dir / "clusters" / "slurm-gpu.toml"
    assert Execution(cluster=str(profile)).tile_for((4096, 4096)) == 128
    assert Execution(cluster=str(profile)).tile_for((256, 256)) == 128
    assert Execution(cluster=str(profile), tile=8).tile_for((64, 64)) == 8


def test_a_tile_larger_than_the_level_is_cut_to_it(tmp_path):
    """The tile is the store's chunk, which a worker holds whole to write its part: a tile
    side of 100,000 over 12 x 12 pixels would be 80 GB of chunk for one tile."""
    assert Execution(tile=100_000).tile_for((12, 40)) == 40
    assert Execution(tile=8).tile_for((12, 40)) == 8
    store = fs.run(resolve(JOB), str(tmp_path / "t.zarr"),
                   execution=Execution(scheduler="sync", tile=100_000), progress=False)
    level = zarr.open_group(str(tmp_path / "t.zarr"), mode="r")["levels/0"]
    assert level.attrs["tile"] == 12 and level["score"].chunks == (12, 12)
    assert store.report.computed == 1


def test_gpus_the_machine_does_not_show_are_refused(monkeypatch):
    """Before anything starts: a worker given a GPU that is not there trains on its CPU."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    Execution(gpus=("1", "0")).session().preflight()
    with pytest.raises(ConfigError, match=r"gpus = 0,2: no GPU 2 on this machine \(its GPUs: 0, 1,"):
        Execution(gpus=("0", "2")).session().preflight()
    for hidden in ("", "-1"):  # -1: CUDA's usual way to hide every GPU
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        with pytest.raises(ConfigError, match="no GPU 0 on this machine .its GPUs: none"):
            Execution(gpus=("0",)).session().preflight()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,-1,1")  # CUDA stops at the -1
    with pytest.raises(ConfigError, match=r"no GPU 1 on this machine \(its GPUs: 0,"):
        Execution(gpus=("1",)).session().preflight()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8d5bd1a4")  # by UUID: not comparable
    Execution(gpus=("0",)).session().preflight()
    Execution(gpus=()).session().preflight()  # CPU workers only


@pytest.mark.parametrize("walltime,lifetime", [
    ("00:02:00", "--lifetime 60s --lifetime-stagger 6s"),  # a tenth: not 0 to 120 s
    ("04:00:00", "--lifetime 13800s --lifetime-stagger 60s")])
def test_batch_workers_retire_before_the_walltime(walltime, lifetime):
    """Give or take a tenth of their lifetime at most, so no worker retires almost at once."""
    assert lifetime in job_script(Profile(walltime=walltime, gpus_per_job=0))


def _monitoring_periods(dask_worker=None, dask_scheduler=None):
    server = dask_worker or dask_scheduler
    return {name: server.periodic_callbacks[name].callback_time
            for name in ("profile", "monitor", "tick", "memory_monitor")
            if name in server.periodic_callbacks}


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs thread affinity")
def test_a_local_cluster_has_a_worker_per_core_it_may_run_on():
    """Under ``taskset -c 0`` the default was a worker per core of the machine, two taking
    turns on one core (and the dry run's estimate said "2 workers sharing 1 core")."""
    script = textwrap.dedent("""
        import os
        from fractalsweep import cluster
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        print(cluster.local_cpu_workers(), cluster.local_cpu_workers(3))
        """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert run.stdout.split() == ["1", "3"], run.stderr


def test_local_cpu_workers_keep_to_a_core_each():
    """Each worker's threads, those started before the preload and after it (XLA's, by the
    task), run on one core, a different one per worker; more workers than cores: unpinned.
    And Dask samples its monitoring at the local cluster's lighter rates: in the workers
    (after a restart too), the scheduler and the nannies."""
    def threads_cores():
        import jax.numpy as jnp

        jnp.ones(4).sum().block_until_ready()  # XLA's threads exist now
        return sorted({frozenset(os.sched_getaffinity(int(t)))
                       for t in os.listdir("/proc/self/task")}, key=sorted)

    allowed = sorted(os.sched_getaffinity(0))
    n = min(2, len(allowed))
    with local_cluster(workers=n, dashboard_address=":0") as cluster, Client(cluster) as client:
        names = client.run(lambda dask_worker: dask_worker.name)
        cores = {names[address]: client.submit(threads_cores, workers=[address],
                                               pure=False).result()
                 for address in names}
        # periodic callbacks in ms
        client.restart()
        periods = list(client.run(_monitoring_periods).values())
        periods.append(client.run_on_scheduler(_monitoring_periods))
        periods += [_monitoring_periods(nanny) for nanny in cluster.workers.values()]
    assert periods == [{"profile": 100, "monitor": 2000, "tick": 200,
                        "memory_monitor": 1000}] * n + [{"monitor": 2000, "tick": 200}] + [
        {"monitor": 2000, "tick": 200, "memory_monitor": 1000}] * n
    assert {name: [sorted(c) for c in found] for name, found in cores.items()} == {
        f"cpu-{i}": [[allowed[i]]] for i in range(n)}
    with local_cluster(workers=len(allowed) + 1, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        assert all(sorted(a) == allowed for a in client.run(
            lambda: os.sched_getaffinity(0)).values())


def test_a_session_closed_under_a_run_fails_no_tile(tmp_path):
    """A server stopping closes its session under the level it computes: the tiles cancelled
    were recorded as failed, and status listed each as a failure."""
    cfg = resolve({**JOB, "training": {"steps": 1500}, "grid": {"resolution": 40}})
    path = str(tmp_path / "s.zarr")  # 16 tiles of a few seconds each
    session = Execution(tile=10, workers=1, gpus=()).session(progress=False)
    errors = []

    def compute():
        try:
            run_level(path, cfg, session)
        except SweepError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=compute)
    thread.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _done_tiles(path):
        time.sleep(0.1)
    session.close()
    thread.join(120)
    assert 0 < _done_tiles(path) < 16, _done_tiles(path)
    assert len(errors) == 1 and "not seen to finish (the session closed)" in errors[0], errors
    assert not zarr.open_group(path, mode="r")["levels/0"].attrs.get("failed")


def _done_tiles(path):
    try:
        return int(zarr.open_group(path, mode="r")["levels/0/tiles"][:].sum())
    except (FileNotFoundError, KeyError):
        return 0


@pytest.mark.parametrize("in_thread", [False, True])
def test_dask_jobqueue_leaves_ctrl_c_to_python_and_imports_in_any_thread(tmp_path, in_thread):
    """Its runner module, imported with it, made SIGINT call ``sys.exit()``: a ``--cluster``
    run stopped with Ctrl-C ended with status 0 and not a word. Installing that handler
    failed outside the main thread: a web explorer's zoom on a batch cluster did."""
    profile = tmp_path / "p.toml"
    profile.write_text('system = "slurm"\nqueue = "q"\nmemory = "1GB"\nwalltime = "01:00:00"\n')
    script = textwrap.dedent(f"""
        import signal, threading
        from fractalsweep import cluster
        profile = cluster.load_profile({str(profile)!r})
        scripts = []
        write = lambda: scripts.append(cluster.job_script(profile))
        if {in_thread}:
            worker = threading.Thread(target=write)
            worker.start()
            worker.join()
        else:
            write()
        assert "#SBATCH -p q" in scripts[0], scripts
        signal.raise_signal(signal.SIGINT)
        """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == -signal.SIGINT, run.stderr
    assert run.stderr.rstrip().endswith("KeyboardInterrupt"), run.stderr
