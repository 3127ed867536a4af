"""Nothing waits forever without saying so: stuck workers are restarted, missing ones named.

A worker that stops making progress (a hung device or filesystem, a process stopped by a
signal) keeps its tiles forever: Dask reschedules the tiles of a worker that dies, not of
one that hangs. The driver polls the scheduler; a worker whose assigned tiles have not
changed for the tile timeout is restarted (its nanny kills and replaces the process), so
its tiles go to other workers, and a line says so. A cluster without any worker is reported
once a minute, with what its session knows of why (batch jobs queued, ended, replaced).
"""

from __future__ import annotations

from collections.abc import Callable

MIN_TIMEOUT_S = 600.0  # the automatic tile timeout is never below this
SLOWEST_FACTOR = 10  # ... nor below this many times the slowest tile finished so far
NO_WORKERS_EVERY_S = 60.0


def automatic_timeout(seconds: list[float]) -> float:
    """The tile timeout when none is given: generous against the slowest tile seen.

    >>> automatic_timeout([]), automatic_timeout([2.0, 90.0])
    (600.0, 900.0)
    """
    return max(MIN_TIMEOUT_S, SLOWEST_FACTOR * max(seconds, default=0.0))


class Watchdog:
    """Polled by the driver while tiles run on a Dask cluster (:meth:`tick`).

    Parameters
    ----------
    client : distributed.Client
        The client the tiles were submitted with.
    timeout : callable
        Seconds without progress after which a worker counts as stuck (asked at each tick,
        so it can follow the tiles finished so far).
    say : callable
        Prints one line for the user.
    why : callable
        Why the cluster may have no worker now (asked when that is said): its session's
        :meth:`~fractalsweep.execution.Session.no_workers`.
    """

    def __init__(self, client, timeout: Callable[[], float], say: Callable[[str], None],
                 why: Callable[[], str]):
        self.client = client
        self.timeout = timeout
        self.say = say
        self.why = why
        self.busy: dict[str, tuple[tuple, float]] = {}  # worker -> (its tiles, since when)
        self.alone_since: float | None = None
        self.said_alone = 0.0

    def tick(self, now: float) -> None:
        processing = self.client.processing()
        if not processing:
            self._no_workers(now)
            return
        self.alone_since = None
        for worker, keys in processing.items():
            keys = tuple(sorted(map(str, keys)))
            since = self.busy.get(worker)
            if not keys or since is None or since[0] != keys:
                self.busy[worker] = (keys, now)
            elif now - since[1] > self.timeout():
                self._restart(worker, now - since[1])

    def _restart(self, worker: str, stuck: float) -> None:
        self.busy.pop(worker, None)
        self.say(f"worker {worker} finished no tile for {stuck:.0f} s (tile timeout "
                 f"{self.timeout():.0f} s): restarting it; its tiles go to other workers")
        try:
            self.client.restart_workers([worker], timeout=60)
        except Exception as exc:  # noqa: BLE001 - reported; the run goes on without it
            self.say(f"could not restart worker {worker} ({type(exc).__name__}: {exc}); "
                     "stop that process to let its tiles go elsewhere")

    def _no_workers(self, now: float) -> None:
        if self.alone_since is None:
            self.alone_since = now
        waited = now - self.alone_since
        if waited >= NO_WORKERS_EVERY_S and now - self.said_alone >= NO_WORKERS_EVERY_S:
            self.said_alone = now
            self.say(f"no workers connected for {waited:.0f} s: {self.why()}")
