"""The precision audit: is a level's fine structure real, or floating-point noise?

A sample of a level's pixels (or all of them) is computed again one precision up (float32 to
float64, float64 to double-double; docs/precision.md) and compared class by class. A pixel
whose class flips was decided by rounding, not by the training dynamics: its coordinates or
its arithmetic were too coarse. The level keeps the result: an ``audit`` array (per pixel: -1
not audited, 0 the same class, 1 flipped) and an ``audit`` attribute with the counts, which
``info`` reports and ``fractalsweep audit --png`` draws.

Where the flips start, as a window narrows around a point of the boundary, is the depth at
which a dtype stops being trustworthy for that configuration: measured, not assumed
(docs/scripts/precision_depth.py, docs/precision.md).
"""

from __future__ import annotations

import dataclasses
import datetime

import numpy as np

from . import store
from .config import DTYPES, is_integer, single_run
from .errors import ConfigError, SweepError
from .execute import after_attempts, run_tasks
from .execution import Session
from .grid import DOUBLE_DOUBLE, axis_values
from .levels import view_of
from .progress import TileProgress
from .systems import check_computable, system_of
from .verify import require_intact
from .watchdog import MIN_TIMEOUT_S

__all__ = ["HIGHER", "audit", "audit_pixels"]

HIGHER = {"float32": "float64", "float64": DOUBLE_DOUBLE}  # the precision one up
CHUNK = 16  # pixels per task: one double-double group


def audit_pixels(path: str, level: int, rows, cols, dtype: str,
                 kernel: str = "auto") -> np.ndarray:
    """The scores of pixels ``(rows[i], cols[i])`` of a level computed in ``dtype`` by
    ``kernel`` (:data:`fractalsweep.execution.KERNELS`).

    The unit of distributed work: coordinates come from the level's decimal window, so a
    double-double recomputation gets every digit of them, not the stored float64 ones.
    """
    cfg, arrays = store.read_inputs(path)
    lvl = store.open_level(store.open_root(path), level)
    nx, ny = lvl.group.attrs["resolution"]
    view = view_of(lvl, cfg)
    xs = axis_values(view["x"], nx, dtype)[np.asarray(cols)]
    ys = axis_values(view["y"], ny, dtype)[np.asarray(rows)]
    cfg = single_run(dataclasses.replace(cfg, dtype=dtype))  # the score is all it compares
    return system_of(cfg).compute(cfg, arrays, xs, ys, kernel)["score"]


def audit(path: str, level: int, session: Session, *, sample: int | None = 256,
          against: str | None = None, seed: int = 0) -> dict:
    """Recompute a sample of ``level``'s pixels one precision up and record what flips.

    Parameters
    ----------
    path : str
        The store.
    level : int
        A complete level.
    session : Session
        Where to compute (:meth:`fractalsweep.Execution.session`).
    sample : int or None
        How many pixels, drawn at random (seeded by ``seed``); None for every pixel.
    against : str, optional
        The dtype to compare with; default: the one above the level's (:data:`HIGHER`).

    Returns
    -------
    dict
        ``against``, ``pixels`` (audited), ``flipped`` (changed class), ``fraction`` and
        ``created``; also stored as the level's ``audit`` attribute, with the map in the
        level's ``audit`` array.
    """
    if sample is not None and (not is_integer(sample) or sample < 1):
        raise ConfigError(f"sample = {sample!r}: expected an integer >= 1, or None for every "
                          "pixel")
    if against is not None and not (isinstance(against, str) and against in DTYPES):
        raise ConfigError(f"against = {against!r}: expected {', '.join(DTYPES)}, or None for "
                          "the next precision up")
    # the lock is held throughout, as a run's: another driver, or a store it cannot write, is
    # refused before anything is computed (it was after), and status shows the audit running
    with store.driver_lock(path, "an audit"):
        return _audit(path, level, session, sample, against, seed)


def _audit(path: str, level: int, session: Session, sample: int | None, against: str | None,
           seed: int) -> dict:
    root = store.open_root(path)
    lvl = store.open_level(root, level)
    dtype = lvl.group.attrs["dtype"]
    against = HIGHER.get(dtype) if against is None else against
    if against is None or against == dtype:
        others = [d for d in DTYPES if d != dtype]
        raise ConfigError(f"level {level} is {dtype}; audit it against another dtype "
                          f"(--against {' or '.join(others)})")
    kernel = session.execution.kernel
    # the score is all an audit recomputes (audit_pixels): what the store measures besides
    # (snapshots, an ensemble, the twin) is no reason to refuse a dtype
    check_computable(single_run(dataclasses.replace(store.config_of(path), dtype=against)),
                     kernel)
    lvl.check_finished(path, "an audit")
    score = require_intact(path, lvl)["score"]
    store.read_inputs(path)  # damaged inputs: one line now, not every task failing
    pixels = np.arange(score.size)
    if sample is not None and sample < score.size:
        pixels = np.sort(np.random.default_rng(seed).choice(score.size, sample, replace=False))
    rows, cols = np.unravel_index(pixels, score.shape)
    where = store.for_workers(path)
    tasks = {i: (where, level, rows[i:i + CHUNK], cols[i:i + CHUNK], against, kernel)
             for i in range(0, len(pixels), CHUNK)}
    again = np.full(len(pixels), np.nan)

    def finished(start: int, scores) -> None:
        again[start:start + len(scores)] = scores
        bar.update(len(scores))

    if tasks and not session.in_process:
        session.client()  # started first: its dashboard line comes before the bar's
    bar = TileProgress(len(tasks), 0, enabled=session.progress, unit="task")
    try:
        failures, cancelled = run_tasks(session, audit_pixels, tasks, finished, bar,
                                        lambda: session.execution.tile_timeout or MIN_TIMEOUT_S)
    finally:
        bar.close()
    if failures:
        first = min(failures.items())[1]
        raise SweepError(f"the audit of level {level}: {len(failures)} of {len(tasks)} tasks "
                         f"failed{after_attempts(first)}, the first with {first}; the audit "
                         "recorded nothing", resumable=False)
    if cancelled:
        raise SweepError(f"the audit of level {level}: {cancelled} of {len(tasks)} tasks were "
                         f"cut short ({session.why_cut_short}); the audit recorded nothing",
                         resumable=False)
    flipped = (again < 0) != (score[rows, cols] < 0)
    marks = np.full(score.shape, -1, dtype=np.int8)
    marks[rows, cols] = flipped
    report = {"against": against, "pixels": len(pixels), "flipped": int(flipped.sum()),
              "fraction": float(flipped.mean()),
              "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    group = store.open_level(store.open_root(path, mode="r+"), level).group
    if "audit" not in group:
        store.new_array(group, "audit", shape=score.shape, chunks=group["score"].chunks,
                        dtype="int8", fill_value=-1, dimension_names=("y", "x"))
    group["audit"][:] = marks
    group.attrs["audit"] = report
    return report
