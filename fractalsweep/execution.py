"""Where and how tiles are computed: one frozen :class:`Execution`, and the :class:`Session`
that starts (or attaches to) what it describes once per command.

A dive computes many levels and the explorer computes a level per zoom: both open one
session, so one cluster is started, one client connects, and the dashboard link is shown
once, however many levels follow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from dataclasses import dataclass
from typing import Self

from . import cluster
from .errors import ConfigError

__all__ = ["KERNELS", "Execution", "Session"]

KERNELS = ("xla", "pallas", "auto")  # which kernel trains the networks (fractalsweep.fused)


@dataclass(frozen=True)
class Execution:
    """Where tiles are computed, and the tile size of new levels.

    At most one of ``scheduler``, ``scheduler_file`` and ``cluster`` is given; with none, a
    local cluster is started (one worker per GPU, else one single-threaded worker per core).

    Parameters
    ----------
    scheduler : str, optional
        ``"sync"`` to compute in this process (tiny runs, tests, debugging), or the address of
        a running Dask scheduler (``tcp://host:8786``).
    scheduler_file : str, optional
        The scheduler file of a running Dask cluster.
    cluster : str or cluster.Profile, optional
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
        Pixels per tile side of new levels (default: :func:`fractalsweep.grid.auto_tile`).
    kernel : {"auto", "xla", "pallas"}
        Which kernel trains the networks: ``auto`` takes the fused Pallas kernel on a GPU
        where it supports the config, else the XLA kernel (docs/kernel.md).

    Examples
    --------
    >>> Execution(scheduler="sync").in_process
    True
    >>> Execution(workers=0)
    Traceback (most recent call last):
    ...
    fractalsweep.errors.ConfigError: workers = 0: expected an integer >= 1
    """

    scheduler: str | None = None
    scheduler_file: str | None = None
    cluster: cluster.Profile | str | None = None
    workers: int | None = None
    gpus: tuple[str, ...] | None = None
    mem_fraction: float | None = None
    tile: int | None = None
    kernel: str = "auto"

    def __post_init__(self):
        given = [k for k in ("scheduler", "scheduler_file", "cluster") if getattr(self, k)]
        if len(given) > 1:
            raise ConfigError(f"{' and '.join(given)}: give at most one place to compute")
        for key in ("workers", "tile"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ConfigError(f"{key} = {value!r}: expected an integer >= 1")
        if self.kernel not in KERNELS:
            raise ConfigError(f"kernel = {self.kernel!r}: valid values are {', '.join(KERNELS)}")
        if self.mem_fraction is not None and not 0 < self.mem_fraction <= 1:
            raise ConfigError(f"mem_fraction = {self.mem_fraction}: expected 0 < F <= 1")
        if isinstance(self.cluster, str):
            object.__setattr__(self, "cluster", cluster.load_profile(self.cluster))
        if self.gpus is not None:
            gpus = tuple(str(g).strip() for g in self.gpus)
            if not all(g.isdigit() for g in gpus):
                raise ConfigError(f"gpus = {self.gpus!r}: expected device indices like 0,1")
            object.__setattr__(self, "gpus", gpus)

    @property
    def in_process(self) -> bool:
        return self.scheduler == "sync"

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
    nothing.
    """

    def __init__(self, execution: Execution, progress: bool = True):
        self.execution = execution
        self.progress = progress
        self.dashboard: str | None = None
        self._stack = contextlib.ExitStack()
        self._client = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()
        self._client = None

    @property
    def in_process(self) -> bool:
        return self.execution.in_process

    def client(self):
        """The Dask client: connects (starting the cluster if needed) on the first call."""
        from distributed import Client

        if self._client is None:
            ex = self.execution
            if ex.scheduler or ex.scheduler_file:
                client = Client(ex.scheduler, scheduler_file=ex.scheduler_file)
            else:
                client = Client(self._stack.enter_context(self._start()))
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
            return cluster.batch_cluster(ex.cluster)
        gpus = cluster.visible_gpus() if ex.gpus is None else list(ex.gpus)
        return cluster.local_cluster(ex.workers, gpus, ex.mem_fraction)
