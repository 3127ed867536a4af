"""Running a sweep: tiles as tasks on a Dask cluster, or in-process for tiny runs and tests.

The coordinating process creates the store and the level (metadata is written only here),
then hands out the tiles that have no completion marker. Each task writes its own tile;
only a summary comes back, so no pixel array travels through the scheduler.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field

from . import store, streams
from .config import SweepConfig
from .progress import TileProgress
from .tile import compute_tile

# One single-threaded JAX per worker process: XLA's intra-op threads buy little for these
# small ops, and one process per core keeps every core busy (docs/performance.md).
WORKER_ENV = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
              "OMP_NUM_THREADS": "1"}
RETRIES = 2


class SweepError(RuntimeError):
    """A tile failed after its retries; every finished tile is kept in the store."""


@dataclass
class RunReport:
    """What one run did: tiles computed now, tiles found done, and their summaries."""

    total: int
    skipped: int
    summaries: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    dashboard: str | None = None

    @property
    def computed(self) -> int:
        return len(self.summaries)

    @property
    def pixels(self) -> int:
        return sum(s["pixels"] for s in self.summaries)


@contextlib.contextmanager
def _client(scheduler: str | None, workers: int | None):
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                      dashboard_address=":8787", env=WORKER_ENV) as cluster, \
            Client(cluster) as client:
        yield client


def run_sweep(path: str, cfg: SweepConfig, *, level: int = 0, view: dict | None = None,
              scheduler: str | None = None, workers: int | None = None,
              progress: bool = True) -> RunReport:
    """Compute every missing tile of a level of the sweep stored at ``path``.

    Parameters
    ----------
    path : str
        The zarr store; created if absent, resumed if it holds the same config.
    cfg : SweepConfig
        The resolved configuration.
    level : int
        Which level to compute; level 0 is the job's own view.
    view : dict, optional
        ``{"x": AxisConfig, "y": AxisConfig}`` windows for a new level; defaults to the job's.
    scheduler : str, optional
        ``"sync"`` to compute in this process, an address to use a running Dask cluster, or
        None to start a LocalCluster of ``workers`` single-threaded processes.

    Examples
    --------
    >>> from fractalsweep.config import resolve
    >>> report = run_sweep("/tmp/doc.zarr", resolve({"grid": {"resolution": 4}}),
    ...                    scheduler="sync", progress=False)  # doctest: +SKIP
    """
    root = store.create_or_check(path, cfg, streams.draw(cfg))
    lvl = store.ensure_level(root, level, cfg, view or {"x": cfg.x, "y": cfg.y})
    pending = lvl.pending()
    total = len(lvl.tiling.indices())
    report = RunReport(total=total, skipped=total - len(pending))
    bar = TileProgress(total, report.skipped, enabled=progress)
    start = time.perf_counter()
    try:
        if scheduler == "sync":
            for index in pending:
                report.summaries.append(compute_tile(path, level, index))
                bar.update(report.summaries[-1])
        elif pending:
            with _client(scheduler, workers) as client:
                report.dashboard = client.dashboard_link
                if progress:
                    print(f"Dask dashboard: {report.dashboard}", file=sys.stderr)
                _run_distributed(client, path, level, pending, report, bar)
    finally:
        bar.close()
        report.seconds = time.perf_counter() - start
    return report


def _run_distributed(client, path, level, pending, report, bar) -> None:
    from distributed import as_completed

    futures = {client.submit(compute_tile, path, level, index, pure=False, retries=RETRIES):
               index for index in pending}
    for future in as_completed(futures):
        try:
            summary = future.result()
        except Exception as exc:
            for other in futures:
                other.cancel()
            raise SweepError(f"tile {futures[future]} of level {level} failed after "
                             f"{RETRIES + 1} attempts: {exc}") from exc
        report.summaries.append(summary)
        bar.update(summary)
