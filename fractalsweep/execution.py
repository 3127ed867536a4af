"""Where and how tiles are computed: one frozen :class:`Execution`, and the :class:`Session`
that starts (or attaches to) what it describes once per command.

A dive computes many levels and the explorer computes a level per zoom: both open one
session, so one cluster is started, one client connects, and the dashboard link is shown
once, however many levels follow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

from . import cluster
from .config import is_integer, is_number
from .errors import ConfigError

__all__ = ["KERNELS", "Execution", "Session"]

KERNELS = ("xla", "pallas", "auto")  # which kernel trains the networks (fractalsweep.fused)
# fields whose CLI option is not --<field>
OPTIONS = {"mem_fraction": "--gpu-mem-fraction", "limits": "--no-limits"}


def _named(field: str) -> str:
    """A field of :class:`Execution` with its command-line option, for errors that both the
    Python API and the CLI show."""
    return f"{field} ({OPTIONS.get(field, '--' + field.replace('_', '-'))})"


@dataclass(frozen=True)
class Execution:
    """Where tiles are computed, and the tile size of new levels.

    At most one of ``scheduler``, ``scheduler_file`` and ``cluster`` is given; with none, a
    local cluster is started (one worker per GPU, else one single-threaded worker per core).

    Parameters
    ----------
    scheduler : str, optional
        ``"sync"`` to compute in this process (tiny runs, tests, debugging), or the address of
        a running Dask scheduler (``tcp://host:8786``). A malformed address is refused here
        (:func:`~fractalsweep.cluster.check_address`); whether one answers, a session's
        :meth:`~Session.preflight` asks.
    scheduler_file : str, optional
        The scheduler file of a running Dask cluster; a missing one, or one naming a
        malformed address, is refused here.
    cluster : str, Path or cluster.Profile, optional
        A SLURM or PBS cluster profile (a path to its TOML file, or the loaded profile):
        workers are started as batch jobs through dask-jobqueue.
    workers : int, optional
        CPU workers of the local cluster (default: one per core).
    gpus : tuple of str, optional
        GPUs of the local cluster, one worker each (default: every visible GPU; ``()`` for
        CPU workers).
    mem_fraction : float, optional
        Preallocate this fraction of each local GPU (default: allocate on demand).
    tile : int, optional
        Pixels per tile side of new levels (default: :func:`fractalsweep.grid.auto_tile`);
        at most a level's longer side, where one tile covers it.
    kernel : {"auto", "xla", "pallas"}
        Which kernel trains the networks: ``auto`` takes the fused Pallas kernel on a GPU
        where it supports the config, else the XLA kernel (docs/kernel.md).
    limits : bool
        Refuse a new level that needs more disk, memory or files than this machine allows
        (:mod:`fractalsweep.limits`); False is the override for the truly large.
    tile_timeout : float, optional
        Seconds a worker may spend without finishing a tile before it is restarted and its
        tiles go elsewhere (default: :func:`fractalsweep.watchdog.automatic_timeout`).

    Examples
    --------
    >>> Execution(scheduler="sync").in_process
    True
    >>> Execution(workers=0)
    Traceback (most recent call last):
    ...
    fractalsweep.errors.ConfigError: workers (--workers) = 0: expected an integer >= 1
    """

    scheduler: str | None = None
    scheduler_file: str | None = None
    cluster: cluster.Profile | str | Path | None = None
    workers: int | None = None
    gpus: tuple[str, ...] | None = None
    mem_fraction: float | None = None
    tile: int | None = None
    kernel: str = "auto"
    limits: bool = True
    tile_timeout: float | None = None

    def __post_init__(self):
        kinds = {"scheduler": (str,), "scheduler_file": (str,),
                 "cluster": (str, Path, cluster.Profile), "gpus": (tuple, list),
                 "kernel": (str,)}
        for key, types in kinds.items():
            value = getattr(self, key)
            if value is not None and not isinstance(value, types):
                raise ConfigError(f"{_named(key)} = {value!r}: expected "
                                  f"{' or '.join(t.__name__ for t in types)}")
        for key in ("mem_fraction", "tile_timeout"):
            value = getattr(self, key)
            if value is not None and not is_number(value):
                raise ConfigError(f"{_named(key)} = {value!r}: expected a number")
            if value is not None:  # a NumPy number as Python's, as the JSON it goes to holds
                object.__setattr__(self, key, float(value))
        object.__setattr__(self, "limits", flag(_named("limits"), self.limits))
        for key in ("scheduler", "scheduler_file", "cluster"):
            if isinstance(getattr(self, key), str) and not getattr(self, key).strip():
                raise ConfigError(f"{_named(key)} = '': give one, or leave it out for a local "
                                  "cluster")
        given = [k for k in ("scheduler", "scheduler_file", "cluster") if getattr(self, k)]
        if len(given) > 1:
            raise ConfigError(f"{' and '.join(map(_named, given))}: give at most one place to "
                              "compute")
        local = [k for k in ("workers", "gpus", "mem_fraction") if getattr(self, k) is not None]
        if given and local:
            where = ("the cluster profile sets its own (cores, gpus_per_job, mem_fraction)"
                     if given[0] == "cluster" else "'sync' computes in this process"
                     if self.in_process else "a running scheduler has its own workers")
            raise ConfigError(f"{', '.join(map(_named, local))}: for a local cluster only; "
                              f"{where}")
        for key in ("workers", "tile"):
            value = getattr(self, key)
            if value is not None and (not is_integer(value) or value < 1):
                raise ConfigError(f"{_named(key)} = {value!r}: expected an integer >= 1")
            if value is not None:
                object.__setattr__(self, key, int(value))
        if self.workers is not None:
            cluster.check_local_workers(self.workers)
        if self.kernel not in KERNELS:
            raise ConfigError(f"{_named('kernel')} = {self.kernel!r}: valid values are "
                              f"{', '.join(KERNELS)}")
        if self.mem_fraction is not None and not cluster.is_fraction(self.mem_fraction):
            raise ConfigError(f"{_named('mem_fraction')} = {self.mem_fraction}: expected "
                              "0 < F <= 1")
        if self.tile_timeout is not None and not 0 < self.tile_timeout < float("inf"):
            raise ConfigError(f"{_named('tile_timeout')} = {self.tile_timeout}: expected "
                              "seconds > 0")
        if isinstance(self.cluster, (str, Path)):
            object.__setattr__(self, "cluster", cluster.load_profile(self.cluster))
        # read now, without the network: a command refuses them before it finds it has
        # nothing to compute; whether the scheduler answers, a session's preflight asks
        if self.scheduler and not self.in_process:
            cluster.check_address(self.scheduler, "scheduler")
        if self.scheduler_file:
            cluster.scheduler_address(self.scheduler_file)
        if self.gpus is not None:
            gpus = tuple(str(g).strip() for g in self.gpus)
            if not all(g.isdigit() for g in gpus):
                raise ConfigError(f"{_named('gpus')} = {self.gpus!r}: expected device indices "
                                  "like 0,1")
            object.__setattr__(self, "gpus", gpus)

    @property
    def in_process(self) -> bool:
        return self.scheduler == "sync"

    @property
    def starts_local_cluster(self) -> bool:
        """Whether a session starts a cluster on this machine (no scheduler, scheduler file
        or batch cluster given, and not in process)."""
        return not (self.in_process or self.scheduler or self.scheduler_file or self.cluster)

    @property
    def on_gpus(self) -> bool:
        """Whether the workers this execution starts are GPU workers (a running scheduler's
        workers are not known before connecting: taken as CPU workers)."""
        if self.cluster is not None:
            return bool(self.cluster.gpus_per_job)
        if not self.starts_local_cluster:
            return False
        return bool(self.local_gpus)

    @property
    def local_gpus(self) -> list[str]:
        """The GPUs a local cluster gives a worker each: ``gpus``, default every one this
        machine shows (:func:`~fractalsweep.cluster.visible_gpus`)."""
        return cluster.visible_gpus() if self.gpus is None else list(self.gpus)

    @property
    def worker_count(self) -> int | None:
        """The workers this execution starts: on a local cluster one per GPU, else
        :func:`~fractalsweep.cluster.local_cpu_workers`; for a cluster profile one per job
        (its ``max_jobs`` when adaptive); None for a running scheduler's (not known before
        connecting) and in process (no workers).

        >>> Execution(workers=3, gpus=()).worker_count, Execution(scheduler="sync").worker_count
        (3, None)
        """
        if self.cluster is not None:
            profile = self.cluster
            return (profile.max_jobs or profile.jobs) if profile.adaptive else profile.jobs
        if not self.starts_local_cluster:
            return None
        return len(self.local_gpus) or cluster.local_cpu_workers(self.workers)

    def prestart(self) -> None:
        """Start, before the work is known, what a session will start and can start early:
        the fork server of a local cluster's CPU workers (:func:`fractalsweep.cluster.
        start_forkserver`), whose imports then overlap the driver's. The CLI calls it first
        thing; without it the cluster starts the server when it starts."""
        if self.starts_local_cluster and not self.on_gpus:
            cluster.start_forkserver()

    def tile_for(self, resolution: tuple[int, int]) -> int:
        """The tile side of a new level: the one given, else the automatic one for these
        workers (:func:`fractalsweep.grid.auto_tile`; on GPUs a tile holds one call's
        networks, ``kernel.GROUP["gpu"]``).

        A given tile larger than the level is cut to its longer side: the tiling is the
        same (one tile across), but the tile is also the store's chunk, which a worker
        holds whole in memory to write its part of it.

        >>> Execution(tile=100_000).tile_for((16, 12))
        16
        """
        from .grid import auto_tile
        from .kernel import GROUP

        if self.tile:
            return min(self.tile, max(resolution))
        smallest = math.isqrt(GROUP["gpu"]) if self.on_gpus else 16
        return auto_tile(*resolution, smallest=smallest)

    def replace(self, **changes) -> Execution:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def session(self, progress: bool = True) -> Session:
        """A :class:`Session` for several runs on what this execution describes."""
        return Session(self, progress)


class Session:
    """What an :class:`Execution` describes, started once and kept for several levels.

    Use it as a context manager: leaving it closes the client and stops any cluster it
    started. The client is made on first use, so a command whose tiles are all done starts
    nothing. A closed session starts nothing again: a call given one (or a store that kept
    one) starts and stops what its :class:`Execution` describes, as that Execution would.
    """

    def __init__(self, execution: Execution, progress: bool = True):
        self.execution = execution
        self.progress = flag("progress", progress)
        self.dashboard: str | None = None
        self._stack = contextlib.ExitStack()
        self._client = None
        self._batch_jobs = None  # a batch cluster's jobs, as its batch system holds them
        self._checked = False  # preflight passed: a run asks before its store, then its client
        self.closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.closed = True  # first: a run that sees its client go knows why (why_cut_short)
        self._stack.close()
        self._client = None

    @property
    def in_process(self) -> bool:
        return self.execution.in_process

    @property
    def why_cut_short(self) -> str:
        """Why tasks under way ended without their results: this session closed under them
        (a server stopping), or else its scheduler went away (whose workers may still have
        finished some: resuming finds which)."""
        return "the session closed" if self.closed else "the scheduler was lost"

    def preflight(self) -> None:
        """Fail within seconds, with one line, where computing cannot start: a batch system
        whose submit command is missing, a missing or stale scheduler file, a scheduler that
        does not answer, GPUs named that this machine does not show. Starts nothing; run
        before a store or a lock is made."""
        ex = self.execution
        if self._checked or self.in_process:
            return
        if ex.cluster is not None:
            cluster.check_batch_system(ex.cluster)
        elif ex.scheduler_file:
            cluster.check_reachable(cluster.scheduler_address(ex.scheduler_file),
                                    f"the scheduler of {ex.scheduler_file}")
        elif ex.scheduler:
            cluster.check_reachable(ex.scheduler, "scheduler")
        elif ex.gpus:
            cluster.check_gpus(ex.gpus)
        self._checked = True

    def client(self):
        """The Dask client: connects (starting the cluster if needed) on the first call."""
        from distributed import Client

        if self.closed:
            raise ConfigError("this session is closed; open another with Execution.session()")
        if self._client is None:
            self.preflight()  # audit, explore and serve reach here without a run's preflight
            from distributed.utils import silence_logging_cmgr

            ex = self.execution
            # distributed logs at CRITICAL only while the session lasts: a scheduler lost
            # mid-run was a traceback of the client's reconnecting before the run's one line,
            # which names it; a cluster restores the level it found as it closes, and a batch
            # cluster's "Batched Comm Closed" traceback came after, before a Ctrl-C's one line
            self._stack.enter_context(silence_logging_cmgr(logging.CRITICAL))
            if ex.scheduler or ex.scheduler_file:
                address = ex.scheduler or cluster.scheduler_address(ex.scheduler_file)
                try:
                    client = Client(address, timeout=cluster.CONNECT_TIMEOUT_S)
                except (OSError, TimeoutError) as exc:
                    raise ConfigError(f"scheduler {address}: could not connect within "
                                      f"{cluster.CONNECT_TIMEOUT_S} s ({exc})") from None
            else:
                with _signals_held():  # interrupted, a starting cluster cannot be stopped
                    started = self._stack.enter_context(self._start())
                    if ex.cluster is not None:  # runs first as the session closes
                        self._stack.callback(cluster.stop_growing, started)
                    client = Client(started)
            # closed, not exited as a context manager: exiting resets a context variable
            # set in the thread that connected, and the explorers connect in a background
            # thread but close from their own
            self._stack.callback(client.close)
            self._client = client
            self.dashboard = self._client.dashboard_link
            if self.progress:
                print(f"Dask dashboard: {self.dashboard}", file=sys.stderr)
        return self._client

    def _start(self):
        ex = self.execution
        if ex.cluster is not None:
            started = cluster.batch_cluster(ex.cluster)
            self._batch_jobs = started.batch_jobs
            return started
        return cluster.local_cluster(ex.workers, ex.local_gpus, ex.mem_fraction)

    def no_workers(self) -> str:
        """Why the session's cluster may have no worker now, as far as the session knows."""
        if self.execution.starts_local_cluster:
            return ("its local workers stopped and were not replaced; Ctrl-C, then the same "
                    "command resumes")
        if self._batch_jobs is not None:
            return self._batch_jobs.summary()
        return "none has joined the scheduler, or none can reach it (see the dashboard)"


def flag(label: str, value: Any) -> bool:
    """``value`` as Python's True or False if it is one (NumPy's ``np.True_`` too, as a
    notebook's mask gives it), else a one-line error naming ``label``."""
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{label} = {value!r}: expected True or False")
    return bool(value)


@contextlib.contextmanager
def _signals_held():
    """Hold back SIGINT and SIGTERM, where Python handles them, until the block ends, then
    deliver the first one held (a second one is not held back).

    A local cluster interrupted while it starts cannot be stopped: distributed fails at exit
    on its half-started nannies, with a traceback after the driver's one line. Started, it
    is stopped with the session, within a second of the Ctrl-C. Signals reach only the main
    thread; elsewhere nothing is held back.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)
                if callable(signal.getsignal(s))}
    held = []

    def hold(signum, frame):
        if held:
            previous[signum](signum, frame)
        held.append(signum)

    for s in previous:
        signal.signal(s, hold)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if held:
        signal.raise_signal(held[0])
