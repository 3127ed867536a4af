"""Computing a level: its missing tiles as tasks on a Dask cluster, or in this process.

The coordinating process holds the store's lock, creates the store and the level (metadata
is written only here), then hands out the tiles that have no completion marker. Each task
writes its own tile; only a summary comes back, so no pixel array travels through the
scheduler. A failing tile is retried; tiles that still fail are named at the end, after
every other tile has been computed and kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from . import store
from .config import SweepConfig
from .errors import SweepError
from .execution import Session
from .progress import TileProgress
from .store import LevelSpec
from .systems import system_of
from .tile import compute_tile

RETRIES = 2


@dataclass
class RunReport:
    """What one computation of a level did: tiles computed now, tiles found done, summaries."""

    level: int
    total: int
    skipped: int
    summaries: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    dashboard: str | None = None  # the Dask dashboard of the cluster that computed it

    @property
    def computed(self) -> int:
        return len(self.summaries)

    @property
    def pixels(self) -> int:
        return sum(s["pixels"] for s in self.summaries)

    def __str__(self) -> str:
        rate = self.pixels / self.seconds if self.seconds else 0.0
        return (f"level {self.level}: {self.computed} tiles computed, {self.skipped} already "
                f"done, {self.pixels} pixels in {self.seconds:.1f} s ({rate:,.0f} px/s)")


def run_level(path: str, cfg: SweepConfig, session: Session, index: int = 0,
              spec: LevelSpec | None = None) -> RunReport:
    """Compute every missing tile of level ``index`` of the sweep stored at ``path``.

    Parameters
    ----------
    path : str
        The zarr store (a path or an fsspec URL); created if absent, resumed if it holds the
        same config, refused if it holds another.
    cfg : SweepConfig
        The resolved configuration.
    session : Session
        Where to compute (:meth:`Execution.session`); its progress flag shows a bar.
    index : int
        The level; level 0 is the job's own view.
    spec : LevelSpec, optional
        What the level is, if it must be created; default: the job's view, resolution and
        dtype. An existing level keeps what it was created with.

    Raises
    ------
    SweepError
        Tiles failed after their retries (every finished tile is kept).
    """
    spec = spec or LevelSpec.of_job(cfg)
    if spec.tile is None:
        spec = spec.replace(tile=session.execution.tile)
    with store.driver_lock(path):
        root = store.create_or_check(path, cfg, lambda: system_of(cfg).draw(cfg))
        lvl = store.ensure_level(root, index, cfg, spec)
        pending = lvl.pending()
        total = len(lvl.tiling.indices())
        report = RunReport(level=index, total=total, skipped=total - len(pending))
        bar = TileProgress(total, report.skipped, enabled=session.progress)
        failures: dict[tuple[int, int], str] = {}
        start = time.perf_counter()
        try:
            if session.in_process:
                _run_in_process(path, index, pending, report, bar, failures,
                                session.execution.kernel)
            elif pending:
                _run_distributed(session.client(), path, index, pending, report, bar, failures,
                                 session.execution.kernel)
        finally:
            bar.close()
            report.seconds = time.perf_counter() - start
            report.dashboard = session.dashboard
        if failures or lvl.group.attrs.get("failed"):
            store.record_failures(lvl, failures)
        if failures:
            first, error = next(iter(sorted(failures.items())))
            raise SweepError(f"{len(failures)} tile(s) of level {index} failed after "
                             f"{RETRIES + 1} attempts, first tile {first}: {error}")
    return report


def _run_in_process(path, level, pending, report, bar, failures, kernel) -> None:
    for index in pending:
        for attempt in range(RETRIES + 1):
            try:
                summary = compute_tile(path, level, index, kernel)
            except Exception as exc:  # noqa: BLE001 - any failure of a tile is retried
                if attempt == RETRIES:
                    failures[index] = f"{type(exc).__name__}: {exc}"
                continue
            report.summaries.append(summary)
            bar.update(summary)
            break


def _run_distributed(client, path, level, pending, report, bar, failures, kernel) -> None:
    from distributed import as_completed

    has_gpus = any("GPU" in w.get("resources", {})
                   for w in client.scheduler_info()["workers"].values())
    resources = {"GPU": 1} if has_gpus else None
    futures = {client.submit(compute_tile, path, level, index, kernel, pure=False,
                             retries=RETRIES,
                             resources=resources): index for index in pending}
    for future in as_completed(futures):
        try:
            summary = future.result()
        except Exception as exc:  # noqa: BLE001 - reported with the tile's index
            failures[futures[future]] = f"{type(exc).__name__}: {exc}"
            continue
        report.summaries.append(summary)
        bar.update(summary)
