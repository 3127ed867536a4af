"""Where the workers come from: a local cluster (CPU processes or one process per GPU), a
batch system through dask-jobqueue (SLURM, PBS), or a cluster already running.

Every worker gets its environment from :func:`worker_env`, so the JAX settings are the same
whichever way a worker is started.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import tomllib
import warnings
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .config import ConfigError, is_integer, is_number

# XLA's intra-op threads buy little for these small ops; one process per core is faster.
CPU_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
LIFETIME_MARGIN_S = 600  # workers retire this long before the walltime, so no tile is cut
LIFETIME_STAGGER_S = 60  # ... give or take this, or a tenth of the lifetime if that is less
CONNECT_TIMEOUT_S = 10  # a scheduler that does not answer within this is reported, not awaited
SUBMIT = {"slurm": "sbatch", "pbs": "qsub"}  # the command each batch system submits jobs with
WORKER_SETUP = "fractalsweep.worker_setup"  # preloaded by local workers: Ctrl-C is the driver's
# What a local CPU worker imports before its first tile: the fork server imports it once,
# and each worker is forked from it ready, instead of importing it after it starts.
FORKSERVER_PRELOAD = ["distributed", WORKER_SETUP, "fractalsweep.tile"]
WORKER_JAX = "fractalsweep.worker-jax"  # a local worker's JAX settings, in its Dask config
# glibc's malloc in a worker. distributed's nanny sets MALLOC_TRIM_THRESHOLD_=65536 so that
# freed memory goes back to the system at once; setting it also pins the mmap threshold at
# 128 KiB, so each kernel call maps its MiB of temporaries afresh and faults them in: with
# groups repacked every 25 steps that made a worker's tiles 13-18% slower (docs/
# performance.md, "Repacking"). A worker's memory is its tile's: it keeps them.
WORKER_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20),  # glibc's largest
                 "MALLOC_TRIM_THRESHOLD_": str(64 << 20)}
# Dask's own monitoring, sampled less often on a local cluster, whose workers share their
# cores with the driver: a 128 x 128 run took 4-5% less time (docs/performance.md, "The
# whole process"). The dashboard keeps its Profile and System pages, at a coarser grain.
LOCAL_MONITORING = {
    "distributed.worker.profile.interval": "100ms",  # the task's stack, 10 per second (100)
    "distributed.admin.system-monitor.interval": "2s",  # CPU, memory, I/O (every 0.5 s)
    "distributed.admin.tick.interval": "200ms",  # the event-loop health check (every 20 ms)
    # a worker's memory, read by its nanny and by itself, every second (every 0.1 s): a
    # tile's memory is set by its networks' shapes and does not grow while it trains
    "distributed.worker.memory.monitor-interval": "1s",
}
CORE_VARIABLE = "FRACTALSWEEP_CORE"  # the core a local CPU worker keeps to (worker_setup)


def default_cache_dir() -> str:
    """Node-local disk for JAX's persistent compilation cache."""
    return str(Path(os.environ.get("TMPDIR", tempfile.gettempdir())) / "fractalsweep-jax-cache")


def compile_cache(cache_dir: str | None = None) -> dict[str, object]:
    """JAX's settings for the persistent compilation cache (``jax.config`` names), shared by
    the workers and the driver: every compilation is cached, however quick, so a machine
    compiles each kernel and each of the random streams' functions once."""
    return {"jax_compilation_cache_dir": cache_dir or default_cache_dir(),
            "jax_persistent_cache_min_compile_time_secs": 0.0,
            "jax_persistent_cache_min_entry_size_bytes": 0}


def jax_settings(gpu: str | None, cache_dir: str | None = None) -> dict[str, object]:
    """A worker's JAX settings (``jax.config`` names): the compilation cache, and on a CPU
    worker the CPU platform, so that the CPU workers of a GPU machine leave its GPUs alone."""
    return compile_cache(cache_dir) | ({"jax_platforms": "cpu"} if gpu is None else {})


def use_compile_cache() -> None:
    """Give this process the workers' compilation cache, where its environment names none
    of JAX's cache settings (the CLI calls it; a library import changes nothing in JAX).

    The driver draws a new store's inputs with JAX and, with ``--scheduler sync``, compiles
    the kernel itself: from the cache that takes 0.2 s instead of 0.8 s for the inputs of
    the paper's tile (docs/performance.md).
    """
    import jax

    settings = compile_cache()
    if not any(name.upper() in os.environ for name in settings):
        for name, value in settings.items():
            jax.config.update(name, value)


def worker_env(gpu: str | None, *, mem_fraction: float | None = None,
               cache_dir: str | None = None, core: int | None = None) -> dict[str, str]:
    """Environment of one worker process.

    Parameters
    ----------
    gpu : str or None
        The one device this worker sees (``CUDA_VISIBLE_DEVICES``); None for a CPU worker,
        which also gets ``JAX_PLATFORMS=cpu`` and single-threaded XLA.
    mem_fraction : float, optional
        Preallocate this fraction of the GPU for maximum throughput. By default JAX does not
        preallocate, so a renderer or notebook can share the device. Only
        ``XLA_PYTHON_CLIENT_MEM_FRACTION`` is ever set: setting both of JAX's fraction
        variables is an error in current jaxlib.
    cache_dir : str, optional
        Persistent compilation cache (:func:`compile_cache`); default
        :func:`default_cache_dir`.
    core : int, optional
        The CPU core a local CPU worker is pinned to (``FRACTALSWEEP_CORE``, read by
        :mod:`fractalsweep.worker_setup`).
    """
    env = {name.upper(): str(value) for name, value in jax_settings(gpu, cache_dir).items()}
    env |= WORKER_MALLOC | {"OMP_NUM_THREADS": "1"}
    if gpu is None:
        env["XLA_FLAGS"] = CPU_XLA_FLAGS
        if core is not None:
            env[CORE_VARIABLE] = str(core)
        return env
    env["CUDA_VISIBLE_DEVICES"] = gpu
    if mem_fraction is None:
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    else:
        env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{mem_fraction:g}"
    return env


def visible_gpus() -> list[str]:
    """GPU indices on this machine (from ``CUDA_VISIBLE_DEVICES`` or ``nvidia-smi``). As CUDA
    reads the variable, a negative index ends the list: ``-1`` hides every GPU."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        shown = [g.strip() for g in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
        return list(itertools.takewhile(lambda g: not g.startswith("-"), shown))
    return list(_nvidia_smi_gpus())


def check_gpus(gpus) -> None:
    """Refuse GPU indices this machine does not show (:func:`visible_gpus`): a worker given
    one would quietly train on its CPU instead. Left alone where ``CUDA_VISIBLE_DEVICES``
    names GPUs by UUID, which indices cannot be compared with."""
    shown = visible_gpus()
    missing = [g for g in gpus if g not in shown]
    if missing and all(g.isdigit() for g in shown):
        raise ConfigError(f"gpus = {','.join(gpus)}: no GPU {','.join(missing)} on this "
                          f"machine (its GPUs: {', '.join(shown) or 'none'}, as "
                          "CUDA_VISIBLE_DEVICES or else nvidia-smi lists them)")


@lru_cache(maxsize=1)
def _nvidia_smi_gpus() -> tuple[str, ...]:
    """The machine's GPUs as ``nvidia-smi`` lists them, asked once per process: a command
    asks up to three times (``Execution.prestart``, the tile size, the cluster's start)."""
    if shutil.which("nvidia-smi") is None:
        return ()
    out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=30)
    return tuple(line.strip() for line in out.stdout.splitlines() if line.strip())


def local_cluster(workers: int | None = None, gpus: list[str] | None = None,
                  mem_fraction: float | None = None, dashboard_address: str = ":8787",
                  cache_dir: str | None = None):
    """A cluster on this machine: one worker per GPU (each with resource ``GPU=1``), else one
    single-threaded CPU worker per core.

    CPU workers are forked from the fork server (:func:`start_forkserver`, started here if
    the driver has not started it yet); GPU workers are spawned, each a new Python. Either
    way a worker's environment is the driver's as the cluster starts plus its own
    (:func:`worker_env`), and its JAX settings are those of :func:`jax_settings`.

    Examples
    --------
    >>> with local_cluster(workers=2) as cluster:  # doctest: +SKIP
    ...     print(cluster.scheduler_address)
    """
    import dask
    from distributed import Nanny, Scheduler, SpecCluster

    # Logs at CRITICAL only: the chatter of a shutdown (a tile cancelled by Ctrl-C, a worker
    # killed after 4 s) would come before the driver's one-line message, and a tile's failure
    # (distributed logs "Compute Failed" and its traceback at ERROR, once per retry) reaches
    # the driver, which names it in one line. A worker applies its JAX settings itself
    # (worker_setup): a forked one imported JAX in the fork server, which read its
    # environment then.
    def nanny(gpu: str | None, **options) -> dict:
        return {"cls": Nanny, "options": {
            "nthreads": 1, "silence_logs": logging.CRITICAL, "preload": [WORKER_SETUP],
            "config": LOCAL_MONITORING | {WORKER_JAX: jax_settings(gpu, cache_dir)},
            **options}}

    settings = LOCAL_MONITORING | {"distributed.nanny.pre-spawn-environ": pre_spawn_environ()}
    if gpus:
        specs = {f"gpu-{g}": nanny(g, resources={"GPU": 1}, env=worker_env(
            g, mem_fraction=mem_fraction, cache_dir=cache_dir)) for g in gpus}
    else:
        n = local_cpu_workers(workers)
        cores = _cores_for(n)
        # A forked worker starts from the fork server's environment, the driver's when that
        # started: the driver's now is handed over as a spawned worker would inherit it.
        specs = {f"cpu-{i}": nanny(None, env=os.environ | worker_env(
            None, cache_dir=cache_dir, core=cores[i])) for i in range(n)}
        start_forkserver()
        settings["distributed.worker.multiprocessing-method"] = "forkserver"
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": dashboard_address,
                                               "host": "127.0.0.1"}}
    # The scheduler and the nannies (in this process) read the settings as they start; a
    # nanny hands its ``config`` to its worker at every (re)start. A worker restarted later
    # (one killed, ``Client.restart``) is spawned.
    with _any_dashboard_port(), dask.config.set(settings):
        return SpecCluster(workers=specs, scheduler=scheduler, name="fractalsweep",
                           silence_logs=logging.CRITICAL)


@contextlib.contextmanager
def _any_dashboard_port():
    """A dashboard port another cluster holds is no problem: the dashboard moves to a free
    port, and the link printed says where (distributed's warning is four lines)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Port .* is already in use", UserWarning)
        yield


WORKERS_PER_CORE = 4  # at most, on a local cluster: more would only take turns on the cores


def local_cpu_workers(workers: int | None = None) -> int:
    """The CPU workers of a local cluster: ``workers``, default one per core this process
    may run on (``taskset -c 0``: one)."""
    return workers or usable_cores()


def usable_cores() -> int:
    """The cores this process may run on (its affinity; every core where none can be read)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def check_local_workers(workers: int) -> None:
    """Refuse more local workers than :data:`WORKERS_PER_CORE` per core: each is a process
    that imports JAX (a count in the thousands exhausts memory and open files while starting,
    before any tile)."""
    most = WORKERS_PER_CORE * local_cpu_workers()
    if workers > most:
        raise ConfigError(f"workers (--workers) = {workers}: at most {most} here "
                          f"({WORKERS_PER_CORE} per core; the default is one per core)")


def pre_spawn_environ() -> dict[str, str]:
    """The environment a local worker process starts with, before Python runs: distributed's
    ``pre-spawn-environ`` (one BLAS thread, malloc trimming) with the workers' malloc
    settings over it (:data:`WORKER_MALLOC`). glibc reads them as the process starts, so a
    nanny's ``env``, set in the worker once it runs, would come too late for them."""
    import dask
    import distributed.config  # noqa: F401 - distributed's settings, pre-spawn-environ too

    return {name: str(value) for name, value in
            dask.config.get("distributed.nanny.pre-spawn-environ").items()} | WORKER_MALLOC


def start_forkserver() -> None:
    """Start the fork server that local CPU workers are forked from, unless it is running.

    It imports :data:`FORKSERVER_PRELOAD` once, while the driver goes on (the CLI starts it
    before it imports JAX, :meth:`fractalsweep.Execution.prestart`), so a worker is ready
    as soon as it is forked, instead of importing for 1.6 s after it starts: a 128 x 128
    run's fixed costs are about 1.7 s smaller (docs/performance.md, "The whole process").
    It is one per process (``multiprocessing``'s) and lives as long as the driver. It starts
    with :func:`pre_spawn_environ`, which a nanny puts into the driver's environment before
    it starts a worker anyway, and with SIGINT ignored, as the workers forked from it are:
    Ctrl-C, which reaches the whole process group, is the driver's alone
    (:mod:`fractalsweep.worker_setup`). (The driver ignores it too for the few milliseconds
    this takes to start the server.)
    """
    import multiprocessing.forkserver

    import distributed.utils

    os.environ.update(pre_spawn_environ())
    multiprocessing.forkserver.set_forkserver_preload(FORKSERVER_PRELOAD)
    # distributed sets its own preload (pandas among it) the first time a nanny starts a
    # worker, importing each package in this process to see that it exists; the server
    # runs with ours by then, so that would only make the driver import pandas (0.24 s)
    distributed.utils._forkserver_preload_set = True
    main = threading.current_thread() is threading.main_thread()
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        if main:
            signal.signal(signal.SIGINT, handler)


def _cores_for(n: int) -> list[int | None]:
    """A core of its own for each of ``n`` local CPU workers, or no pinning (None each) when
    there are fewer cores than workers or the platform cannot pin.

    XLA's CPU client runs a step's work on more than one thread even when told to use one,
    so unpinned single-threaded workers, one per core, take turns on every core and lose
    about a tenth of a run to it (docs/performance.md, "The whole process").
    """
    if not hasattr(os, "sched_getaffinity"):
        return [None] * n
    allowed = sorted(os.sched_getaffinity(0))
    return allowed[:n] if n <= len(allowed) else [None] * n


@dataclass(frozen=True)
class Profile:
    """A batch-system cluster profile (``jobs/clusters/*.toml``, see docs/cluster.md); every
    value is checked as it is made (:data:`PROFILE_KEYS`), so a bad one is a line naming its
    key, not a traceback from dask-jobqueue or a worker job script that cannot work."""

    system: str = "slurm"
    queue: str | None = None
    account: str | None = None
    gpus_per_job: int = 1
    cores: int = 4
    memory: str = "16GB"
    walltime: str = "04:00:00"
    jobs: int = 1
    adaptive: bool = False
    max_jobs: int | None = None
    env_setup: list[str] = field(default_factory=list)
    extra_directives: list[str] = field(default_factory=list)
    skip_directives: list[str] = field(default_factory=list)
    interface: str | None = None
    local_directory: str | None = None
    log_directory: str | None = None
    python: str | None = None
    mem_fraction: float | None = None
    net_steps_per_second: float | None = None  # per worker; else the last `fractalsweep bench`

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            valid, expected = PROFILE_KEYS[f.name]  # a field without its check: a KeyError
            if not ((value is None and f.default is None) or valid(value)):
                raise ConfigError(f"{f.name} = {value!r}: expected {expected}")
        if self.max_jobs is not None and self.max_jobs < self.jobs:
            raise ConfigError(f"max_jobs = {self.max_jobs}: expected at least jobs "
                              f"({self.jobs}), the jobs an adaptive cluster keeps")

    @property
    def walltime_seconds(self) -> int:
        return _seconds(self.walltime)


SYSTEMS = ("slurm", "pbs")
# [D-]HH:MM:SS: the batch systems' shorter forms are read apart (a bare number is minutes to
# SLURM, seconds to PBS), and the workers' --lifetime is reckoned from the walltime
WALLTIME = re.compile(r"(\d+-)?\d+:[0-5]\d:[0-5]\d", re.ASCII)


def is_fraction(value: object) -> bool:
    """A GPU memory fraction JAX can preallocate: 0 < F <= 1."""
    return is_number(value) and 0 < value <= 1


def _is_text(value: object) -> bool:
    """A non-empty string: an empty queue or path would go into the job script as a bare
    directive."""
    return isinstance(value, str) and bool(value.strip())


def _is_log_directory(value: object) -> bool:
    """A folder this user can write in, or make: dask-jobqueue makes it as it builds the
    first job, and a path under a file (or a folder not ours) would fail there, as an OSError.
    Read without writing anything (a dry run writes nothing), so a folder that refuses new
    folders though it looks writable (/proc to root) is found by the run's preflight
    (:func:`check_batch_system`), which makes it."""
    if not _is_text(value):
        return False
    path = Path(value).absolute()
    nearest = next(p for p in (path, *path.parents) if p.exists())
    return nearest.is_dir() and os.access(nearest, os.W_OK | os.X_OK)


def _is_size(value: object) -> bool:
    """A memory size as dask-jobqueue reads it (``dask.utils.parse_bytes``), of a byte or
    more."""
    from dask.utils import parse_bytes

    if not _is_text(value):
        return False
    try:
        return parse_bytes(value) >= 1
    except ValueError:
        return False


def _is_walltime(value: object) -> bool:
    """:data:`WALLTIME`, and longer than nothing."""
    return (isinstance(value, str) and WALLTIME.fullmatch(value) is not None
            and _seconds(value) > 0)


def _seconds(walltime: str) -> int:
    """The seconds of a :data:`WALLTIME`."""
    days, _, clock = walltime.rpartition("-")
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds


COUNT = (lambda v: is_integer(v) and v >= 1, "an integer >= 1")
TEXT = (_is_text, "a non-empty string")
LINES = (lambda v: isinstance(v, list) and all(isinstance(line, str) for line in v),
         "a list of strings")
#: each key of a :class:`Profile`: whether a value is valid, and what is (said when not)
PROFILE_KEYS = {
    "system": (lambda v: v in SYSTEMS, f"one of {', '.join(SYSTEMS)}"),
    "queue": TEXT, "account": TEXT, "interface": TEXT, "local_directory": TEXT,
    "python": TEXT,
    "log_directory": (_is_log_directory, ("a folder that exists or can be made: the nearest "
                                          "existing part of its path a folder this user can "
                                          "write in")),
    "gpus_per_job": (lambda v: is_integer(v) and v in (0, 1),
                     "1 (one job per GPU, scale with jobs) or 0 for CPU workers"),
    "cores": COUNT, "jobs": COUNT, "max_jobs": COUNT,
    "memory": (_is_size, "a size like '64GB' or '1.5GiB', as dask's parse_bytes reads it"),
    "walltime": (_is_walltime, ("[D-]HH:MM:SS with minutes and seconds below 60, e.g. "
                                "'04:00:00' or '1-12:00:00'")),
    "adaptive": (lambda v: isinstance(v, bool), "true or false"),
    "env_setup": LINES, "extra_directives": LINES, "skip_directives": LINES,
    "mem_fraction": (is_fraction, "a number 0 < F <= 1"),
    "net_steps_per_second": (lambda v: is_number(v) and 0 < v < float("inf"),
                             "a number > 0 (one worker's net-steps per second)"),
}


def load_profile(path: str) -> Profile:
    """Read and validate a cluster profile."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"cluster profile not found: {path}")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"cluster profile {path}: not UTF-8 text; expected a TOML file "
                          "like jobs/clusters/slurm-gpu.toml") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    fields = {f.name for f in dataclasses.fields(Profile)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in cluster profile {path}; valid keys "
                          f"are {', '.join(sorted(fields))}")
    try:
        return Profile(**raw)
    except ConfigError as e:
        raise ConfigError(f"cluster profile {path}: {e}") from None


def _jobqueue_kwargs(profile: Profile) -> dict:
    """Keyword arguments shared by dask-jobqueue's cluster and job classes."""
    gpu = "$CUDA_VISIBLE_DEVICES" if profile.gpus_per_job else None
    # Expanded on the compute node, so the cache lands on node-local disk.
    env = worker_env(gpu, mem_fraction=profile.mem_fraction,
                     cache_dir="${TMPDIR:-/tmp}/fractalsweep-jax-cache")
    if gpu:
        del env["CUDA_VISIBLE_DEVICES"]  # the batch system assigns the job its GPU
    lifetime = max(profile.walltime_seconds - LIFETIME_MARGIN_S, profile.walltime_seconds // 2)
    # the stagger keeps the workers from retiring together; a tenth at most, so that the
    # workers of a short walltime do not retire almost at once
    stagger = min(LIFETIME_STAGGER_S, lifetime // 10)
    extra_args = ["--lifetime", f"{lifetime}s", "--lifetime-stagger", f"{stagger}s"]
    directives = list(profile.extra_directives)
    if profile.gpus_per_job:
        extra_args += ["--resources", "GPU=1"]
        if profile.system == "slurm" and not any("gres" in d or "gpus" in d for d in directives):
            directives.append("--gres=gpu:1")
    kwargs = {
        "cores": profile.cores, "processes": 1, "memory": profile.memory,
        "walltime": profile.walltime, "queue": profile.queue, "account": profile.account,
        "job_script_prologue": [*profile.env_setup,
                                *(f'export {k}="{v}"' for k, v in sorted(env.items()))],
        "job_extra_directives": directives, "job_directives_skip": profile.skip_directives,
        "worker_extra_args": extra_args, "interface": profile.interface,
        "local_directory": profile.local_directory, "log_directory": profile.log_directory,
    }
    if profile.python:
        kwargs["python"] = profile.python
    return {k: v for k, v in kwargs.items() if v is not None}


_JOBQUEUE_IMPORT = threading.Lock()


def _jobqueue():
    """The dask_jobqueue package, imported without the Ctrl-C handler that its ``runner``
    module installs as it is imported: ``sys.exit()``, which ended a run stopped with Ctrl-C
    with status 0 and not a word, and which fails outside the main thread (a web explorer's
    zoom on a batch cluster did). Only the importing thread's installs are dropped."""
    with _JOBQUEUE_IMPORT:
        install, importer = signal.signal, threading.get_ident()

        def dropped(signum, handler):
            if threading.get_ident() == importer:
                return signal.getsignal(signum)
            return install(signum, handler)

        signal.signal = dropped
        try:
            import dask_jobqueue
        finally:
            signal.signal = install
    return dask_jobqueue


def job_script(profile: Profile) -> str:
    """The batch script one worker job would run; nothing is submitted or made. dask-jobqueue
    makes the log directory as it builds a job, so the script is built with an empty
    temporary folder in its place."""
    jobqueue = _jobqueue()
    job_cls = {"slurm": jobqueue.slurm.SLURMJob, "pbs": jobqueue.pbs.PBSJob}[profile.system]
    with tempfile.TemporaryDirectory() as stand_in:
        logs = {"log_directory": stand_in} if profile.log_directory else {}
        job = job_cls(scheduler="tcp://SCHEDULER:8786", name="fractalsweep-worker",
                      **_jobqueue_kwargs(profile) | logs)
        script = job.job_script()
    return script.replace(stand_in, profile.log_directory or stand_in)


def stop_growing(started) -> None:
    """Stop a batch cluster from submitting jobs, before it closes: its adaptive pool or the
    jobs' check (:class:`BatchJobs`) could add one while it closes, which distributed's close
    then finds running (an AssertionError, as a traceback after a run's Ctrl-C)."""
    async def stop():
        if started._adaptive is not None:
            started._adaptive.stop()
        for callback in started.periodic_callbacks.values():
            callback.stop()

    started.sync(stop)


#: how a batch system lists the jobs it still holds (queued, running, ending) among some job
#: ids, and what it says when it holds none of them (squeue then exits with status 1)
HELD_JOBS = {"slurm": (["squeue", "-h", "-o", "%i %T", "-j"], "Invalid job id")}
JOBS_EVERY_S = 10  # how often a batch cluster asks which of its jobs are still held


def batch_cluster(profile: Profile):
    """Start a dask-jobqueue cluster for ``profile`` and submit its worker jobs.

    The cluster keeps ``jobs`` jobs (up to ``max_jobs`` when adaptive) as an adaptive pool:
    ``scale`` submits jobs once, and one that ends (its worker retired by ``--lifetime``
    before the walltime, the job cancelled) would not be replaced; the pool submits another.
    :class:`BatchJobs` replaces the jobs that end before their worker connects.
    """
    from tornado.ioloop import PeriodicCallback

    jobqueue = _jobqueue()
    cls = {"slurm": jobqueue.SLURMCluster, "pbs": jobqueue.PBSCluster}[profile.system]
    with _any_dashboard_port():
        cluster = cls(**_jobqueue_kwargs(profile))
    cluster.adapt(minimum_jobs=profile.jobs,
                  maximum_jobs=(profile.adaptive and profile.max_jobs) or profile.jobs)
    cluster.batch_jobs = BatchJobs(cluster, profile)
    check = PeriodicCallback(cluster.batch_jobs.check, JOBS_EVERY_S * 1000)
    cluster.periodic_callbacks["fractalsweep-jobs"] = check  # stopped as the cluster closes
    cluster.loop.add_callback(check.start)
    return cluster


class BatchJobs:
    """The worker jobs of a batch cluster as its batch system holds them (SLURM's; other
    systems are not asked).

    distributed forgets a job, and the cluster's pool submits another in its place, when the
    job's worker leaves the scheduler. A job that ends before its worker connects (cancelled
    while queued, a worker that fails as it starts) has no worker to leave and would be
    waited for forever: every :data:`JOBS_EVERY_S` the batch system is asked which jobs it
    still holds, and a job it has not held for longer than distributed's
    ``lost-worker-timeout``, whose worker is not connected, is forgotten here, so the pool
    replaces it. (A worker that connected left before its job ended, so distributed has
    forgotten that job by then; forgetting it too could close the job started in its place.)
    """

    def __init__(self, cluster, profile: Profile):
        import dask
        from dask.utils import parse_timedelta

        self.cluster = cluster
        self.profile = profile
        self.held: dict[str, str] | None = None  # job id -> state, at the last answer
        self.ended: dict[str, float] = {}  # job id -> when first found ended
        self.replaced = 0  # jobs that ended before their worker connected
        self.lost_after = parse_timedelta(
            dask.config.get("distributed.deploy.lost-worker-timeout"))

    async def check(self) -> None:
        jobs = {name: job for name, job in self.cluster.workers.items()
                if getattr(job, "job_id", None)}
        held = await _held_jobs(self.profile.system, [job.job_id for job in jobs.values()])
        if held is None:
            return
        self.held = held
        now = asyncio.get_running_loop().time()
        self.ended = {job.job_id: self.ended.get(job.job_id, now) for job in jobs.values()
                      if job.job_id not in held}
        connected = {w["name"] for w in self.cluster.scheduler_info["workers"].values()}
        for name, job in jobs.items():
            if (now - self.ended.get(job.job_id, now) > self.lost_after
                    and name not in connected and self.cluster.workers.get(name) is job):
                del self.cluster.workers[name]  # the pool submits a job in its place
                self.replaced += 1

    def summary(self) -> str:
        """What the batch system says of the cluster's jobs, for a run without workers."""
        system = self.profile.system.upper()
        if self.held is None:
            jobs = f"{len(self.cluster.workers)} worker jobs submitted ({system} not asked)"
        else:
            states = Counter(state.lower() for state in self.held.values())
            jobs = (f"{system} holds {len(self.held)} of its {len(self.cluster.worker_spec)} "
                    f"worker jobs" + "".join(f", {n} {state}" for state, n in
                                             sorted(states.items())))
        if self.replaced:
            logs = self.profile.log_directory
            jobs += (f"; {self.replaced} ended before their worker connected and were "
                     f"resubmitted" + (f" (their logs: {logs})" if logs else ""))
        return (f"{jobs}; workers of running jobs that do not connect cannot reach the "
                "scheduler (see the dashboard)")


async def _held_jobs(system: str, ids: list[str]) -> dict[str, str] | None:
    """Job id -> state of the jobs among ``ids`` that the batch system still holds, or None
    where it is not asked or does not answer. Asked without blocking: the cluster's
    scheduler runs on the same event loop."""
    if system not in HELD_JOBS or not ids:
        return None
    command, holds_none = HELD_JOBS[system]
    try:
        ask = await asyncio.create_subprocess_exec(*command, ",".join(ids),
                                                   stdout=subprocess.PIPE,
                                                   stderr=subprocess.PIPE)
    except OSError:
        return None
    try:
        out, err = await asyncio.wait_for(ask.communicate(), CONNECT_TIMEOUT_S * 3)
    except TimeoutError:
        ask.kill()
        return None
    if ask.returncode != 0:
        return {} if holds_none in err.decode(errors="replace") else None
    return dict(line.split(maxsplit=1) for line in out.decode().splitlines() if line.strip())


def check_batch_system(profile: Profile) -> None:
    """Refuse a profile whose batch system is not installed here (its submit command), or,
    on SLURM, whose worker job it would reject (``sbatch --test-only`` submits nothing).

    A job the batch system refuses would otherwise leave the run waiting for workers that
    never come.
    """
    command = SUBMIT[profile.system]
    if shutil.which(command) is None:
        raise ConfigError(f"system = {profile.system!r}: {command!r} is not on PATH here; run on "
                          "a machine that submits jobs (a login node), or use --scheduler")
    if profile.log_directory:
        try:
            os.makedirs(profile.log_directory, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"log_directory = {profile.log_directory!r}: cannot be made "
                              f"({exc.strerror}); expected a folder that exists or can be "
                              "made") from None
    if profile.system != "slurm":
        return
    with tempfile.NamedTemporaryFile("w", suffix=".sh") as script:
        script.write(job_script(profile))
        script.flush()
        try:
            test = subprocess.run([command, "--test-only", script.name], capture_output=True,
                                  text=True, timeout=CONNECT_TIMEOUT_S * 3)
        except subprocess.TimeoutExpired:
            raise ConfigError(f"{command} --test-only did not answer within "
                              f"{CONNECT_TIMEOUT_S * 3} s; is SLURM's controller up?") from None
    if test.returncode != 0:
        cause = (test.stderr.strip().splitlines() or ["no message"])[0]
        raise ConfigError(f"SLURM would reject the worker job of this profile: {cause}")


def scheduler_address(path: str) -> str:
    """The address in a Dask scheduler file, or a one-line error."""
    try:
        info = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"scheduler file {path} not found; start the scheduler with "
                          "--scheduler-file, or give its --scheduler address") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"scheduler file {path}: not readable as JSON ({exc})") from None
    address = info.get("address") if isinstance(info, dict) else None
    if not isinstance(address, str):
        raise ConfigError(f"scheduler file {path}: no address in it; is it a Dask scheduler "
                          "file?")
    check_address(address, f"the scheduler of {path}")
    return address


def check_address(address: str, what: str) -> tuple[str, str, int]:
    """The transport, host and port of a scheduler address, or a one-line error naming
    ``what``; reads no network, so that every command can refuse a malformed address first,
    before it finds that it has nothing to compute (distributed's client would raise a
    ValueError)."""
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    scheme, location = parse_address(address)
    if scheme not in backends:
        raise ConfigError(f"{what} {address}: {scheme}:// is not a scheduler's transport (the "
                          f"dashboard's http:// link is not its address); valid: "
                          f"{', '.join(sorted(backends))}, e.g. tcp://host:8786")
    try:
        host, port = parse_host_port(location)
    except ValueError:
        host, port = "", 0
    if not 0 < port < 65536:
        raise ConfigError(f"{what} {address!r}: expected an address like tcp://host:8786, or "
                          "'sync'")
    return scheme, host, port


def check_reachable(address: str, what: str) -> None:
    """Refuse, within about :data:`CONNECT_TIMEOUT_S`, a scheduler address that is
    malformed (:func:`check_address`), one nothing listens at, and (over plain TCP) one
    where something else listens."""
    scheme, host, port = check_address(address, what)
    if scheme not in ("tcp", "tls"):
        return  # other transports are left to the client's own timeout
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ConfigError(f"{what} {address} does not answer ({exc.strerror or exc}); is it "
                          "running? A stale scheduler file names one that has stopped") from None
    if scheme == "tcp":  # TLS needs the security settings the client is given
        _handshake(address, what)


def _handshake(address: str, what: str) -> None:
    """Refuse a listener that is not a Dask scheduler: a web server or another service, which
    distributed's client would wait on forever, or whose first bytes it would read as the
    size of a message (a MemoryError of exbibytes, as a traceback); a Dask worker or nanny,
    which speak Dask but fail the client's first request (a traceback, after the store was
    made). The listener is asked who it is, as the client would ask first."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from distributed.comm import connect

    async def identity():
        comm = await connect(address, timeout=CONNECT_TIMEOUT_S)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            await comm.close()

    # in a thread of its own, with its own event loop: a notebook's thread runs one already
    with ThreadPoolExecutor(1) as pool:
        done = pool.submit(asyncio.run, asyncio.wait_for(identity(), CONNECT_TIMEOUT_S))
    try:
        kind = done.result().get("type")
    except TimeoutError:
        why = f"no Dask handshake within {CONNECT_TIMEOUT_S} s"
    except OSError:  # distributed's CommClosedError too
        why = "it closed the connection"
    except Exception:  # noqa: BLE001 - bytes read as a message (a size of exbibytes), or none
        why = "its reply is no Dask message"
    else:
        if kind == "Scheduler":
            return
        why = (f"a Dask {kind.lower()}, not its scheduler" if kind in ("Worker", "Nanny")
               else "its reply is no Dask message")
    raise ConfigError(f"{what} {address} answers, but not as a Dask scheduler ({why}); "
                      "give the address the scheduler printed, e.g. tcp://host:8786") from None
