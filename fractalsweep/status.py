"""What a store's progress is: tiles done, rate and ETA from the tiles' own provenance.

The rate is measured from when tiles started and finished, so ``fractalsweep status`` works
from any shell, while the run goes on or after it stopped. Only the tiles of the latest run
count (each record names its run): a gap between two runs is not time spent computing.
"""

from __future__ import annotations

import datetime
from collections import defaultdict

from .store import LevelGroup, holder_alive, provenance

RECENT = 50  # tiles that define the current rate


def level_status(level: LevelGroup, now: datetime.datetime | None = None) -> dict:
    """Counts, rate, ETA, failures and workers of one level.

    The rate is the pixels the latest run's last :data:`RECENT` tiles trained over the time
    from the first of them starting to the last finishing: every worker's tiles over the
    time they took together (finish times alone credit W workers' parallel tiles to the gaps
    between their finishes, W times too fast). The ETA is from ``now`` (default: now), at
    the pace tiles went, copied pixels and all: negative when the tiles are overdue.
    """
    records = sorted(provenance(level), key=lambda r: r["finished"])
    done, total = int(level.done.sum()), int(level.done.size)
    latest = records[-1].get("run") if records else None
    recent = [r for r in records if r.get("run") == latest][-RECENT:]
    rate = eta = None
    nx, ny = level.group.attrs["resolution"]
    remaining = nx * ny - sum(r["pixels"] for r in records)
    if recent:
        finished = [datetime.datetime.fromisoformat(r["finished"]) for r in recent]
        start = min(f - datetime.timedelta(seconds=r.get("seconds", 0))
                    for f, r in zip(finished, recent))
        span = (finished[-1] - start).total_seconds()
        if span > 0:  # trained pixels only: a ladder level copies some, at no cost
            rate = sum(r.get("computed", r["pixels"]) for r in recent) / span
            if remaining:
                since = ((now or datetime.datetime.now(datetime.UTC)) - finished[-1])
                eta = (remaining * span / sum(r["pixels"] for r in recent)
                       - since.total_seconds())
    processes = defaultdict(set)  # local workers all compute on "cpu:0": count them
    for r in records:
        processes[r["host"], r["device"]].add(r.get("pid"))
    workers = [f"{host} ({device}, {len(pids)} process{'es' * (len(pids) > 1)})"
               for (host, device), pids in sorted(processes.items())]
    return {"level": int(level.group.basename), "tiles_done": done, "tiles": total,
            "pixels_per_s": rate, "rate_tiles": len(recent), "eta_s": eta,
            "failed": level.group.attrs.get("failed", []), "workers": workers,
            "last_finished": records[-1]["finished"] if records else None}


def figure(value: float) -> str:
    """A measured number to the 3 significant figures a shared machine's timings repeat to.

    >>> figure(1932.4), figure(88712.3), figure(0.5301), figure(12.34)
    ('1,930', '88,700', '0.53', '12.3')
    """
    value = float(f"{value:.3g}")
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:g}"


def duration(seconds: float) -> str:
    """``seconds`` as ``H:MM:SS`` (``D days, H:MM:SS`` from a day on, years from 1000 days).

    >>> duration(43.2), duration(90061), duration(1e13)
    ('0:00:43', '1 day, 1:01:01', '3.17e+05 years')
    """
    if seconds >= 1000 * 86400:  # a dry run may estimate past timedelta's 999999999 days
        return f"{seconds / (365.25 * 86400):.3g} years"
    return str(datetime.timedelta(seconds=round(seconds)))


def format_status(path: str, levels: list[dict], lock: dict | None) -> str:
    """The status of a store as text."""
    lines = [f"store {path}"]
    running = False
    if lock == {}:
        lines.append("lock file unreadable: not a fractalsweep lock; delete it if no run is "
                     "computing this store")
    elif lock and holder_alive(lock) is False:
        lines.append(f"not running: driver pid {lock['pid']} on {lock['host']} (since "
                     f"{lock.get('started')}) has exited; 'fractalsweep resume {path}' takes its "
                     "lock over and computes the missing tiles")
    elif lock:
        running = lock.get("command", "run") == "run"  # an audit or a repair computes no tiles
        lines.append(f"running: pid {lock['pid']} on {lock['host']} since {lock.get('started')}"
                     + ("" if running else f", {lock['command']}: no tiles are being computed"))
    elif any(s["tiles_done"] < s["tiles"] for s in levels):
        lines.append(f"not running: no run holds the store; 'fractalsweep resume {path}' "
                     "computes the missing tiles")
    for s in levels:
        line = f"level {s['level']}: {s['tiles_done']}/{s['tiles']} tiles"
        if s["pixels_per_s"]:
            line += (f", {figure(s['pixels_per_s'])} px/s (latest run, last "
                     f"{s['rate_tiles']} tile{'s' * (s['rate_tiles'] > 1)})")
        if running and s["eta_s"] is not None and s["tiles_done"] < s["tiles"]:
            eta = ("overdue" if s["eta_s"] < -0.5 else "under a second" if s["eta_s"] < 0.5
                   else duration(s["eta_s"]))
            line += f", ETA {eta} at that rate"
        lines.append(line)
        for f in s["failed"]:
            lines.append(f"  failed tile {tuple(f['tile'])}: {f['error']}")
        if s["workers"]:
            lines.append("  workers: " + ", ".join(s["workers"]))
    return "\n".join(lines)
