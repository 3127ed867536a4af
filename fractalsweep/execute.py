"""Computing a level: its missing tiles as tasks on a Dask cluster, or in this process.

Before anything is created, the level's config is checked to be one its kernel trains
(:func:`~fractalsweep.systems.check_computable`), a new level's cost is checked against this
machine (:mod:`fractalsweep.limits`) and the place to compute is checked to be there
(:meth:`Session.preflight`), so a refused start leaves no store and no lock. The coordinating
process then holds the store's lock, creates the store and the level (metadata is written
only here), and hands out the tiles that have no completion marker. Each task writes its own
tile; only a summary comes back, so no pixel array travels through the scheduler. A failing
tile is retried; a stuck worker is restarted (:mod:`fractalsweep.watchdog`); tiles that still
fail are named at the end, after every other tile has been computed and kept.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from concurrent.futures import CancelledError
from dataclasses import dataclass, field

from . import limits, precision, store
from .config import SweepConfig
from .errors import SweepError
from .execution import Execution, Session
from .progress import TileProgress
from .status import figure
from .store import LevelSpec
from .systems import check_computable, system_of
from .tile import compute_tile
from .verify import require_intact
from .watchdog import Watchdog, automatic_timeout

RETRIES = 2
WAIT_S = 0.05  # how soon the driver sees a finished tile: the last one ends the run
POLL_S = 0.5  # how often the driver asks the scheduler for stuck workers (the watchdog)


@dataclass
class RunReport:
    """What one computation of a level did: tiles computed now, tiles found done, summaries."""

    level: int
    total: int
    skipped: int
    summaries: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    dashboard: str | None = None  # the Dask dashboard of the cluster that computed it
    work: str = "trained"  # what was done to a pixel: a fractal's are "computed"
    cancelled: int = 0  # tiles not seen to finish: the session closed, or the scheduler went

    @property
    def computed(self) -> int:
        return len(self.summaries)

    @property
    def pixels(self) -> int:
        return sum(s["pixels"] for s in self.summaries)

    @property
    def trained(self) -> int:
        """Pixels trained, not copied from a narrower level (a ladder's)."""
        return sum(s["computed"] for s in self.summaries)

    def __str__(self) -> str:
        line = (f"level {self.level}: {self.computed} tile{'s' * (self.computed != 1)} computed, "
                f"{self.skipped} already done")
        if not self.summaries:
            return line
        copied = self.pixels - self.trained
        rate = figure(self.trained / self.seconds) if self.seconds else "?"
        return (f"{line}, {self.trained} pixels {self.work}"
                + (f" and {copied} copied" if copied else "")
                + f" in {figure(self.seconds)} s ({rate} px/s)")


def run_level(path: str, cfg: SweepConfig, session: Session, index: int = 0,
              spec: LevelSpec | None = None, force: bool = False) -> RunReport:
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
    force : bool
        Create a level whose neighbouring pixels its dtype cannot keep apart
        (:func:`fractalsweep.precision.guard`); an existing level passed the guard, or was
        forced, when it was made.

    Raises
    ------
    ConfigError
        The level cannot be computed as configured (double-double for a fractal or beyond
        the baseline family, an explicit ``pallas`` the fused kernel does not support);
        nothing is created.
    SweepError
        Tiles failed after their retries (every finished tile is kept).
    LimitError
        A new level larger than this machine's disk or memory, or the file limit, allows
        (unless the execution says ``limits=False``); nothing is created.
    PrecisionError
        A new level whose pixels its dtype cannot keep apart, unless ``force``; nothing is
        created.
    """
    spec = spec or LevelSpec.of_job(cfg)
    if spec.tile is None:
        spec = spec.replace(tile=session.execution.tile_for(spec.resolution))
    existing = _existing_level(path, index)
    check_computable(existing.config(cfg) if existing is not None
                     else dataclasses.replace(cfg, dtype=spec.dtype), session.execution.kernel)
    if existing is None:  # its size first, before the guard's walk over its pixels
        check_limits(path, cfg, index, spec, session.execution)
        precision.guard(spec.view, spec.resolution, spec.dtype, force=force,
                        dtypes=system_of(cfg).dtypes)
    if existing is None or existing.pending():
        session.preflight()
    run = uuid.uuid4().hex[:12]
    with store.driver_lock(path):
        root = store.create_or_check(path, cfg, lambda: system_of(cfg).draw(cfg))
        lvl = store.ensure_level(root, index, cfg, spec)
        if existing is not None:  # skipping its finished tiles must not pass over damage
            require_intact(path, lvl, checked=lvl.pixel_arrays)
        pending = lvl.pending()
        if pending:
            store.read_inputs(path)  # damaged inputs: one line now, not every tile failing
        total = len(lvl.tiling.indices())
        report = RunReport(level=index, total=total, skipped=total - len(pending),
                           work="trained" if cfg.system.kind == "training" else "computed")
        if pending and not session.in_process:
            session.client()  # started first: its dashboard line comes before the bar's
        bar = TileProgress(total, report.skipped, enabled=session.progress)

        def finished(key, summary: dict) -> None:
            report.summaries.append(summary)
            bar.update(summary["computed"])  # not the pixels a ladder level copies

        def timeout() -> float:
            return (session.execution.tile_timeout
                    or automatic_timeout([s["seconds"] for s in report.summaries]))

        where = store.for_workers(path)
        tasks = {i: (where, index, i, run, session.execution.kernel) for i in pending}
        start = time.perf_counter()
        try:
            failures, report.cancelled = run_tasks(session, compute_tile, tasks, finished,
                                                   bar, timeout)
        finally:
            bar.close()
            report.seconds = time.perf_counter() - start
            report.dashboard = session.dashboard
        if failures or lvl.group.attrs.get("failed"):
            store.record_failures(lvl, failures)
        if report.cancelled and not failures:
            raise SweepError(f"{report.cancelled} tile(s) of level {index} were not seen to "
                             f"finish ({session.why_cut_short})")
        if failures:
            first, error = next(iter(sorted(failures.items())))
            hint = (f"; 'fractalsweep verify {path} --repair' clears damaged chunks"
                    if "checksum" in error else "")
            raise SweepError(f"{len(failures)} tile(s) of level {index} failed"
                             f"{after_attempts(error)}, first tile {first}: {error}{hint}")
    return report


def after_attempts(error: str) -> str:
    """How often a task that failed with ``error`` was tried: ``RETRIES + 1`` times where it
    raised; a task whose workers died is Dask's to retry, and its error says how often."""
    return "" if error.startswith("KilledWorker") else f" after {RETRIES + 1} attempts"


def _existing_level(path: str, index: int) -> store.LevelGroup | None:
    """The level if the store has it already (read without the lock: only to plan)."""
    try:
        root = store.open_root(path)
        return store.open_level(root, index) if index in store.level_indices(root) else None
    except store.StoreError:
        return None  # a new store, or one create_or_check will refuse with its own line


def check_limits(path: str, cfg: SweepConfig, index: int, spec: LevelSpec,
                 execution: Execution) -> None:
    """Refuse a new level (and a new store's inputs) of ``spec`` (its tile chosen) that
    cannot work here, before any file.

    Raises
    ------
    LimitError
        Unless ``execution.limits`` is False.
    """
    try:
        store.open_root(path)
        new_store = False
    except store.StoreError:
        new_store = True
    estimate = limits.level_estimate(cfg, spec.resolution, spec.tile, new_store)
    limits.check(f"level {index}", path, estimate, execution.limits)


def run_tasks(session: Session, fn: Callable, tasks: dict, finished: Callable,
              bar: TileProgress, timeout: Callable[[], float]) -> tuple[dict, int]:
    """Call ``fn(*tasks[key])`` for every key, in this process or on the session's cluster,
    each retried :data:`RETRIES` times, and ``finished(key, result)`` as each one ends.

    On a cluster, each task takes a GPU of a worker that has one, and a :class:`Watchdog`
    (with ``timeout()``, asked at each tick) restarts workers that stop making progress and
    says so through ``bar``. Tiles of levels and the audit's pixels run this way.

    Returns
    -------
    (failures, cancelled)
        The error of each key that failed every attempt, one line each; and how many tasks
        were cut short (:attr:`Session.why_cut_short`; in this process, the tasks not
        started yet when it closed).
    """
    failures: dict = {}
    if session.in_process:
        for started, (key, args) in enumerate(tasks.items()):
            if session.closed:  # a server stopping: it waits for the task under way only
                return failures, len(tasks) - started
            for attempt in range(RETRIES + 1):
                try:
                    result = fn(*args)
                except Exception as exc:  # noqa: BLE001 - any failure of a task is retried
                    if attempt == RETRIES:
                        failures[key] = f"{type(exc).__name__}: {exc}"
                    continue
                finished(key, result)
                break
        return failures, 0
    if not tasks:
        return failures, 0
    from distributed import as_completed

    client = session.client()
    has_gpus = any("GPU" in w.get("resources", {})
                   for w in client.scheduler_info()["workers"].values())
    resources = {"GPU": 1} if has_gpus else None
    futures = {client.submit(fn, *args, pure=False, retries=RETRIES, resources=resources): key
               for key, args in tasks.items()}
    watchdog = Watchdog(client, timeout, bar.note, session.no_workers)
    done = as_completed(futures)
    cancelled = 0
    next_tick = 0.0
    while not done.is_empty():
        if client.status != "running":  # closed under the run, or its scheduler is gone
            return failures, cancelled + done.count()
        if not done.has_ready():
            time.sleep(WAIT_S)
            now = time.monotonic()
            if now >= next_tick:
                try:
                    watchdog.tick(now)
                except Exception:  # the client closed during the tick: stopped above
                    if client.status == "running":
                        raise
                next_tick = now + POLL_S
            continue
        for future in done.next_batch(block=False):
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - reported with the task's key
                if isinstance(exc, CancelledError) or client.status != "running":
                    cancelled += 1  # cut short: not the task's failure
                else:
                    failures[futures[future]] = f"{type(exc).__name__}: {exc}"
                continue
            finished(futures[future], result)
    return failures, cancelled
