"""What a store's progress is: tiles done, rate and ETA from the tiles' own provenance.

The rate is measured from when tiles finished, so ``fractalsweep status`` works from any
shell, while the run goes on or after it stopped. Only the tiles of the latest run count
(each record names its run): a gap between two runs is not time spent computing.
"""

from __future__ import annotations

import datetime

from .store import LevelGroup, holder_alive, provenance

RECENT = 50  # tiles that define the current rate


def level_status(level: LevelGroup) -> dict:
    """Counts, rate, ETA, failures and workers of one level."""
    records = sorted(provenance(level), key=lambda r: r["finished"])
    done, total = int(level.done.sum()), int(level.done.size)
    latest = records[-1].get("run") if records else None
    recent = [r for r in records if r.get("run") == latest][-RECENT:]
    rate = None
    if len(recent) >= 2:
        times = [datetime.datetime.fromisoformat(r["finished"]) for r in recent]
        span = (times[-1] - times[0]).total_seconds()
        if span > 0:
            rate = sum(r["pixels"] for r in recent[1:]) / span
    nx, ny = level.group.attrs["resolution"]
    remaining = nx * ny - sum(r["pixels"] for r in records)
    workers = sorted({f"{r['host']} ({r['device']})" for r in records})
    return {"level": int(level.group.basename), "tiles_done": done, "tiles": total,
            "pixels_per_s": rate, "eta_s": remaining / rate if rate and remaining else None,
            "failed": level.group.attrs.get("failed", []), "workers": workers,
            "last_finished": records[-1]["finished"] if records else None}


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
    if lock == {}:
        lines.append("lock file unreadable: not a fractalsweep lock; delete it if no run is "
                     "computing this store")
    elif lock and holder_alive(lock) is False:
        lines.append(f"not running: driver pid {lock['pid']} on {lock['host']} (since "
                     f"{lock.get('started')}) has exited; the next run takes its lock over")
    elif lock:
        lines.append(f"running: pid {lock['pid']} on {lock['host']} since {lock.get('started')}")
    for s in levels:
        line = f"level {s['level']}: {s['tiles_done']}/{s['tiles']} tiles"
        if s["pixels_per_s"]:
            line += f", {s['pixels_per_s']:,.1f} px/s (latest run, last {RECENT} tiles)"
        if s["eta_s"] is not None and s["tiles_done"] < s["tiles"]:
            line += f", ETA {duration(s['eta_s'])} at that rate"
        lines.append(line)
        for f in s["failed"]:
            lines.append(f"  failed tile {tuple(f['tile'])}: {f['error']}")
        if s["workers"]:
            lines.append("  workers: " + ", ".join(s["workers"]))
    return "\n".join(lines)
