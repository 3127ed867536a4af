"""What every page of one web-explorer server shares (:mod:`fractalsweep.serve`): the store,
one execution session for the server's lifetime, the registry of jobs under way, and the
files the server exported. The matplotlib explorer (:mod:`fractalsweep.explore`) computes
its zooms through a hub of its own.

The registry is the :class:`Hub`: a job is keyed by what it makes (a zoom by its window,
resolution and dtype), and a second request for a key under way gets the same job, so two
browser tabs asking for one window share one computation. Jobs run in background threads and
write only their own fields; pages read them from their periodic callbacks. Levels are
computed one at a time, in the order asked: the store's driver lock admits one driver per
process, and the level index of a new window is only known once the level before it exists.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from . import api, levels, store
from .errors import ConfigError, FractalsweepError
from .execution import Execution
from .views import AXES, View

__all__ = ["EXPORTS", "Hub", "Job"]

log = logging.getLogger(__name__)

#: animation exports offered for download: format -> options of :meth:`Store.animate`
EXPORTS = {"mp4": {}, "gif": {"size": (240, 240), "fps": 15, "frames_per_octave": 15}}


def _window_key(view: View) -> tuple:
    """A window as a dict key: equal decimals are one key ('10' and '1E+1')."""
    return tuple((Decimal(view[a].lo), Decimal(view[a].hi)) for a in AXES)


@dataclass
class Job:
    """Work the hub does in a background thread for every page that asked for it.

    ``kind`` is ``zoom``, ``ladder``, ``export`` or ``backend`` (connecting to the compute
    backend). ``state`` goes ``queued`` (waiting for the level before it), ``connecting``,
    ``running``, then ``done`` or ``failed`` (with ``error``, one line). ``index`` is the
    level a zoom computes, once known; a ladder's levels are those from ``first`` on.
    """

    key: tuple
    kind: str
    state: str = "queued"
    index: int | None = None
    first: int | None = None
    result: Any = None
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job is finished (or ``timeout`` seconds); True if it is."""
        return self._done.wait(timeout)


class Hub:
    """The store, the compute session and the jobs shared by every page of one server.

    This is the server-wide registry: :meth:`submit` hands back the job already under way
    for the same key (the same window, resolution and dtype for a zoom), so two tabs asking
    for one window share one computation. Levels are computed one at a time, in the order
    asked; the session is opened at once (a backend that cannot be reached shows on every
    page), or with ``connect=False`` by :meth:`connect`, and kept until :meth:`close`.

    Parameters
    ----------
    path : str
        The store.
    execution : Execution, optional
        Where levels are computed (default: a local cluster).
    connect : bool
        Start connecting to the backend now.
    """

    def __init__(self, path: str, execution: Execution | None = None, *, connect: bool = True):
        self.path = path
        self.store = api.open(path)
        self.config = self.store.config
        self.execution = execution or Execution()
        self.backend_error: str | None = None
        self.workers: int | None = None
        self.computing: Job | None = None  # the compute job holding the lock, for every page
        self._jobs: dict[tuple, Job] = {}
        self._downloads: dict[str, Path] = {}
        self._labels: dict[int, str] = {}
        self._lock = threading.Lock()  # the registries above
        self._compute = threading.Lock()  # one driver at a time
        self._stopping = False  # closed: no compute job starts
        self.level_options()  # a level whose metadata is unreadable: one line now, not per page
        self.session = self.execution.session(progress=False)
        self.backend: Job | None = None
        if connect:
            self.connect()

    def connect(self) -> None:
        """Start the session's cluster or client in the background (a page shows how it went);
        nothing to do in process."""
        if not self.session.in_process and self.backend is None:
            self.backend = self.submit(("backend",), "backend", lambda job: None)

    def close(self) -> None:
        """Close the session (stopping the cluster it started), then wait for the level under
        way to stop: it keeps its finished tiles and releases the store's lock. In this
        process it stops after the tile it computes; not waited for, it was cut short by the
        interpreter's exit inside JAX's C++ code, which aborts the process ('terminate
        called ...'), and left its lock behind. A cluster still starting is not waited for
        (its start cannot be cut short); jobs queued behind do not start."""
        with self._lock:
            self._stopping = True
            job = self.computing
        self.session.close()
        if job is not None and job.state != "connecting":
            job.wait()

    # --- the registry ---------------------------------------------------------------------

    def submit(self, key: tuple, kind: str, work: Callable[[Job], Any], *,
               compute: bool = True) -> Job:
        """Run ``work(job)`` in a background thread, or return the job under way for ``key``.

        ``compute`` jobs hold the compute lock (one at a time) and connect to the backend
        first.
        """
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and not job.finished:
                return job
            job = self._jobs[key] = Job(key, kind)
        threading.Thread(target=self._run, args=(job, work, compute), name=f"serve-{kind}",
                         daemon=True).start()
        return job

    def _run(self, job: Job, work: Callable[[Job], Any], compute: bool) -> None:
        try:
            with self._compute if compute else contextlib.nullcontext():
                if compute:
                    with self._lock:  # close() sees this job computing, or it does not start
                        if self._stopping:  # a call given the closed session opens a new one
                            job.error = "the server is stopping"
                            return
                        self.computing = job
                    if not self._connect(job):
                        return
                job.state = "running"
                job.result = work(job)
        except FractalsweepError as exc:  # expected: a refusal, a failed tile; one line
            job.error = str(exc)
        except OSError as exc:  # the scheduler went away, a connection dropped
            job.error = f"lost the compute backend ({self.where}): {exc}"
        except Exception as exc:
            log.exception("%s job failed", job.kind)
            job.error = f"{type(exc).__name__}: {exc}"
        finally:
            job.state = "failed" if job.error else "done"
            job._done.set()
            if self.computing is job:
                self.computing = None

    def _connect(self, job: Job) -> bool:
        """Connect the session (starting its cluster) unless connected; False if it cannot."""
        if self.session.in_process:
            return True
        job.state = "connecting"
        try:
            client = self.session.client()
        except (OSError, FractalsweepError) as exc:  # refused, timed out, a bad profile
            self.backend_error = f"cannot reach the compute backend ({self.where}): {exc}"
            job.error = self.backend_error
            return False
        self.backend_error = None
        self.workers = len(client.scheduler_info()["workers"])
        return True

    @property
    def where(self) -> str:
        """Where levels are computed, in words."""
        ex = self.execution
        if ex.in_process:
            return "in the server's process (--scheduler sync)"
        if ex.scheduler or ex.scheduler_file:
            return f"the Dask scheduler {ex.scheduler or ex.scheduler_file}"
        if ex.cluster is not None:
            return f"the {ex.cluster.name} cluster profile"
        return "a local cluster"

    def backend_status(self) -> str:
        """One line on the compute backend: connecting, ready (with its dashboard), unreachable."""
        if self.backend_error:
            return self.backend_error
        if self.session.in_process:
            return f"compute: {self.where}"
        if self.workers is None:
            return f"compute: {self.where}, connecting\u2026"
        return (f"compute: {self.where}, {self.workers} worker(s); Dask dashboard "
                f"{self.session.dashboard}")

    # --- jobs -----------------------------------------------------------------------------

    def find(self, view: View, resolution, dtype: str) -> int | None:
        """The complete level holding exactly this window, if the store has one."""
        root = store.open_root(self.path)
        index = levels.find_level(root, view, resolution, dtype)
        if index is None or not store.open_level(root, index).done.all():
            return None
        return index

    def zoom(self, view: View, resolution, dtype: str, force: bool = False) -> Job:
        """Compute ``view`` as a level (the store's own if it has this window); the job
        under way for the same window, resolution and dtype if there is one."""
        resolution = tuple(resolution)

        def work(job: Job) -> int:
            job.index = levels.level_for(store.open_root(self.path), view, resolution, dtype)
            level = self.store.zoom(x=(view["x"].lo, view["x"].hi), y=(view["y"].lo,
                                    view["y"].hi), resolution=resolution, dtype=dtype,
                                    force=force, execution=self.session, progress=False)
            return level.index

        return self.submit(("zoom", _window_key(view), resolution, dtype), "zoom", work)

    def ladder(self, index: int) -> Job:
        """Fill in the keyframe ladder above level ``index`` up to level 0's width."""
        def work(job: Job) -> list[int]:
            job.first = max(store.level_indices(store.open_root(self.path))) + 1
            ladder = self.store.ladder(index, widest=self.store.level(0).view,
                                       execution=self.session, progress=False)
            return [level.index for level in ladder]

        return self.submit(("ladder", index), "ladder", work)

    def export(self, fmt: str) -> Job:
        """Export the zoom through the store's keyframe ladder (:data:`EXPORTS`); the job's
        result holds the download's ``url``."""
        if fmt not in EXPORTS:
            raise ConfigError(f"export format {fmt!r}: expected one of {', '.join(EXPORTS)}")

        def work(job: Job) -> dict:
            number = 1
            while (out := self._export_path(number, fmt)).exists():
                number += 1
            result = self.store.animate(out, progress=False, **EXPORTS[fmt])
            token = secrets.token_urlsafe(12)
            with self._lock:
                self._downloads[token] = out
            return {**result, "url": f"/download/{token}/{out.name}"}

        return self.submit(("export", fmt), "export", work, compute=False)

    def _export_path(self, number: int, fmt: str) -> Path:
        """``<store stem>-zoom-<number>.<fmt>`` next to a local store."""
        return Path(api.default_png(self.path, f"-zoom-{number}")).with_suffix(f".{fmt}")

    def download(self, token: str) -> Path | None:
        """The file exported under ``token``; None for anything the server did not write."""
        with self._lock:
            return self._downloads.get(token)

    def progress(self, job: Job) -> tuple[int, int, int] | None:
        """``(level, tiles done, tiles)`` of the level a compute job is on now, if any."""
        root = store.open_root(self.path)
        found = store.level_indices(root)
        index = job.index
        if job.kind == "ladder" and job.first is not None and found and found[-1] >= job.first:
            index = found[-1]
        if index is None or index not in found:
            return None
        done = store.open_level(root, index).done
        return index, int(done.sum()), done.size

    def level_options(self) -> list[tuple[str, str]]:
        """The level list: ``(index, description)`` per level, in index order."""
        root = store.open_root(self.path)
        found = store.level_indices(root)
        with self._lock:  # a removed level's label is not that of the next level of its index
            self._labels = {i: label for i, label in self._labels.items() if i in found}
            missing = [i for i in found if i not in self._labels]
        if missing:
            overview = levels.view_of(store.open_level(root, found[0]), self.config)
            for index in missing:
                group = store.open_level(root, index)
                attrs = group.group.attrs
                deep = levels.zoom_factor(levels.view_of(group, self.config), overview)
                nx, ny = attrs["resolution"]
                label = (f"{index}: {attrs['kind']} {nx}x{ny} {attrs['dtype']}"
                         f"{' preview' if attrs.get('preview') else ''}, {deep:.2f} decades "
                         "deep")
                with self._lock:
                    self._labels[index] = label
        with self._lock:
            return [(str(i), self._labels[i]) for i in found]
