"""Running a sweep: tiles as tasks on a Dask cluster, or in-process for tiny runs and tests.

The coordinating process holds the store's lock, creates the store and the level (metadata
is written only here), then hands out the tiles that have no completion marker. Each task
writes its own tile; only a summary comes back, so no pixel array travels through the
scheduler. A failing tile is retried; tiles that still fail are named at the end, after
every other tile has been computed and kept.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

from . import cluster, store, streams
from .config import SweepConfig
from .errors import SweepError
from .progress import TileProgress
from .tile import compute_tile

RETRIES = 2


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


def _start_cluster(profile, workers, gpus, mem_fraction):
    if profile is not None:
        return cluster.batch_cluster(profile)
    gpus = cluster.visible_gpus() if gpus is None else gpus
    return cluster.local_cluster(workers, gpus, mem_fraction)


@contextlib.contextmanager
def _client(scheduler, scheduler_file, profile, workers, gpus, mem_fraction):
    from distributed import Client

    if scheduler or scheduler_file:
        with Client(scheduler, scheduler_file=scheduler_file) as client:
            yield client
        return
    with _start_cluster(profile, workers, gpus, mem_fraction) as c, Client(c) as client:
        yield client


@contextlib.contextmanager
def shared_cluster(**execution):
    """Start the cluster ``execution`` asks for once, for several runs (a dive's levels).

    Yields run_sweep keyword arguments that point at it; attaching to a running cluster or
    computing in-process needs nothing started, and passes through unchanged.
    """
    if execution.get("scheduler") or execution.get("scheduler_file"):
        yield execution
        return
    keys = ("profile", "workers", "gpus", "mem_fraction")
    with _start_cluster(*(execution.get(k) for k in keys)) as c:
        yield {**{k: v for k, v in execution.items() if k not in keys},
               "scheduler": c.scheduler_address}


def run_sweep(path: str, cfg: SweepConfig, *, level: int = 0, view: dict | None = None,
              resolution: tuple[int, int] | None = None, dtype: str | None = None,
              tile: int | None = None, kind: str = "job", reuse_from: int | None = None, scheduler: str | None = None, scheduler_file: str | None = None,
              profile: cluster.Profile | None = None, workers: int | None = None,
              gpus: list[str] | None = None, mem_fraction: float | None = None,
              progress: bool = True) -> RunReport:
    """Compute every missing tile of a level of the sweep stored at ``path``.

    Parameters
    ----------
    path : str
        The zarr store (a path or an fsspec URL); created if absent, resumed if it holds the
        same config, refused if it holds another.
    cfg : SweepConfig
        The resolved configuration.
    level : int
        Which level to compute; level 0 is the job's own view.
    view : dict, optional
        ``{"x": AxisConfig, "y": AxisConfig}`` windows for a new level; defaults to the job's.
    resolution, dtype, tile, kind, reuse_from
        For a new level: see :func:`fractalsweep.store.ensure_level`. An existing level
        keeps what it was created with.
    scheduler : str, optional
        ``"sync"`` to compute in this process, or the address of a running Dask scheduler.
    scheduler_file : str, optional
        A running Dask cluster's scheduler file.
    profile : cluster.Profile, optional
        Start workers through a batch system (dask-jobqueue).
    workers, gpus, mem_fraction
        For the local cluster started when nothing else is given: ``workers`` CPU processes
        (default one per core), or one worker per GPU in ``gpus`` (default: the GPUs visible
        here), preallocating ``mem_fraction`` of each.

    Examples
    --------
    >>> from fractalsweep.config import resolve
    >>> report = run_sweep("/tmp/doc.zarr", resolve({"grid": {"resolution": 4}}),
    ...                    scheduler="sync", progress=False)  # doctest: +SKIP
    """
    with store.driver_lock(path):
        root = store.create_or_check(path, cfg, lambda: streams.draw(cfg))
        lvl = store.ensure_level(root, level, cfg, view or {"x": cfg.x, "y": cfg.y},
                                 resolution=resolution, dtype=dtype, tile=tile, kind=kind,
                                 reuse_from=reuse_from)
        pending = lvl.pending()
        total = len(lvl.tiling.indices())
        report = RunReport(total=total, skipped=total - len(pending))
        bar = TileProgress(total, report.skipped, enabled=progress)
        failures: dict[tuple[int, int], str] = {}
        start = time.perf_counter()
        try:
            if scheduler == "sync":
                _run_in_process(path, level, pending, report, bar, failures)
            elif pending:
                with _client(scheduler, scheduler_file, profile, workers, gpus,
                             mem_fraction) as client:
                    report.dashboard = client.dashboard_link
                    if progress:
                        bar.note(f"Dask dashboard: {report.dashboard}")
                    _run_distributed(client, path, level, pending, report, bar, failures)
        finally:
            bar.close()
            report.seconds = time.perf_counter() - start
        if failures or lvl.group.attrs.get("failed"):
            store.record_failures(lvl, failures)
        if failures:
            first, error = next(iter(sorted(failures.items())))
            raise SweepError(f"{len(failures)} tile(s) of level {level} failed after "
                             f"{RETRIES + 1} attempts, first tile {first}: {error}")
    return report


def _run_in_process(path, level, pending, report, bar, failures) -> None:
    for index in pending:
        for attempt in range(RETRIES + 1):
            try:
                summary = compute_tile(path, level, index)
            except Exception as exc:  # noqa: BLE001 - any failure of a tile is retried
                if attempt == RETRIES:
                    failures[index] = f"{type(exc).__name__}: {exc}"
                continue
            report.summaries.append(summary)
            bar.update(summary)
            break


def _run_distributed(client, path, level, pending, report, bar, failures) -> None:
    from distributed import as_completed

    has_gpus = any("GPU" in w.get("resources", {})
                   for w in client.scheduler_info()["workers"].values())
    resources = {"GPU": 1} if has_gpus else None
    futures = {client.submit(compute_tile, path, level, index, pure=False, retries=RETRIES,
                             resources=resources): index for index in pending}
    for future in as_completed(futures):
        try:
            summary = future.result()
        except Exception as exc:  # noqa: BLE001 - reported with the tile's index
            failures[futures[future]] = f"{type(exc).__name__}: {exc}"
            continue
        report.summaries.append(summary)
        bar.update(summary)
