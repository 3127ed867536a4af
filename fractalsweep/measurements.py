"""The kernel rates ``fractalsweep bench`` measured, kept for cost estimates
(``run --dry-run``, :mod:`fractalsweep.cost`).

One JSON file, ``$XDG_CACHE_HOME/fractalsweep/bench.json`` (default ``~/.cache``): the
device and device kind measured on, and the bench's rows (:func:`fractalsweep.bench.run`),
each with when it was measured.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import jax

from .grid import DOUBLE_DOUBLE


def cache_file() -> Path:
    """Where the last measured rates are kept, for cost estimates (``run --dry-run``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fractalsweep" / "bench.json"


def interpreted(row: dict) -> bool:
    """Whether a bench row is of the fused kernel interpreted off a GPU: a rate that says
    nothing of its speed (:func:`save` keeps none, :func:`fractalsweep.bench.table` marks it)."""
    from .fused import interpret_here

    return row["kernel"] == "pallas" and interpret_here()


def save(rows: list[dict]) -> Path | None:
    """Remember the measured rates together with the device they were measured on, for
    cost estimates (:func:`saved_measurement`).

    The rows replace the saved ones of the dtypes they measured; the other dtypes' saved rows
    stay where they were measured on the same kind of device (each row keeps when it was
    measured). Not the fused kernel's rows off a GPU: there it runs in Pallas' interpret
    mode, for tests, at a fraction of the rate any sweep trains at. Where no kernel row is
    left, the saved measurement stays as it was and None is returned.
    """
    rows = [r for r in rows if not interpreted(r)]
    if not any(r["method"] == "kernel" for r in rows):
        return None
    path = cache_file()
    device = jax.devices()[0]
    measured = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    dtypes = {r["dtype"] for r in rows}
    kept = [r for r in _saved_rows(device.device_kind) if r["dtype"] not in dtypes]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"device": str(device), "device_kind": device.device_kind,
                                "rows": [{**r, "measured": measured} for r in rows] + kept},
                               indent=2))
    return path


def _saved() -> dict | None:
    """The saved measurement as :func:`save` wrote it; None if there is none to read."""
    try:
        return json.loads(cache_file().read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _saved_rows(device_kind: str) -> list[dict]:
    """The saved rows if they were measured on ``device_kind``, each with when it was (a
    file of an earlier version gives that once for all)."""
    saved = _saved()
    if saved is None or saved.get("device_kind") != device_kind:
        return []
    return [{"measured": saved.get("measured"), **r} for r in saved["rows"]]


def saved_measurement(dtype: str) -> tuple[float, str, float, str] | None:
    """The last measured kernel rate of one worker for ``dtype``, the device it was measured
    on, the flop per net-step of the network measured (the first kernel measured, where
    ``--kernel`` named several) and the dtype measured: double-double's own where a bench
    measured it, else float64's (which cost estimates divide by
    :data:`~fractalsweep.cost.DOUBLE_DOUBLE_COST`).

    On a CPU the rate per CPU-second: a CPU worker is one single-threaded process on a core
    of its own, as the bench's measuring process is (:func:`fractalsweep.bench.run`; a
    bench saved by an earlier version, which measured free on every core, gave about a fifth
    less). Rows saved before 0.9.0 are not used: they do not name the job they measured, and
    they counted the first layer's signal to the data in its flop, which no kernel computes.
    """
    from . import config
    from .cost import flops_per_net_step

    saved = _saved()
    if saved is None:
        return None
    for measured in (DOUBLE_DOUBLE, "float64") if dtype == DOUBLE_DOUBLE else (dtype,):
        for row in saved["rows"]:
            # a row without its job is of before 0.9.0, whose flop count cannot be redone
            if row["dtype"] == measured and row["method"] == "kernel" and "job" in row:
                flops = flops_per_net_step(config.resolve(row["job"]))
                per_core = (row.get("net_steps_per_cpu_s") if saved["device_kind"] == "cpu"
                            else None)
                return per_core or row["net_steps_per_s"], saved["device_kind"], flops, measured
    return None
