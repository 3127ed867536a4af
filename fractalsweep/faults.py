"""A fault hook for the fault-injection tests: stop a process at an exact phase of a write.

Inert unless the environment variable :data:`VARIABLE` names a phase. Its value is
``PHASE:ACTION:ONCE_FILE``: when a process (the driver, or a Dask worker, which inherits the
variable) reaches :func:`point` ``(PHASE)`` and can create ``ONCE_FILE`` (it must not exist
yet), it performs ``ACTION``: ``kill`` (SIGKILL itself, as a power cut or the OOM killer
would), ``hang`` (sleep until killed, as a stuck device or filesystem would) or ``slow``
(sleep :data:`SLOW_S` seconds, then go on, as a slow tile would: long enough for a test to
act while that phase is under way). The file
makes the fault happen exactly once across every process and retry, so the tests can then
check that the same command resumes and ends bit-identical to a clean run.

The phases, in the order a store is written (docs/reliability.md):

``store-inputs``
    The store's inputs are written, its root attributes not yet.
``level-arrays``
    A new level's arrays exist, its attributes (written last) not yet.
``tile-data``
    A tile's data chunks are written, its provenance and marker not yet.
``tile-provenance``
    A tile's provenance is written, its marker not yet.
"""

from __future__ import annotations

import os
import signal
import time

VARIABLE = "FRACTALSWEEP_FAULT"
PHASES = ("store-inputs", "level-arrays", "tile-data", "tile-provenance")
SLOW_S = 5.0


def point(phase: str) -> None:
    """Where a fault may be injected; does nothing unless :data:`VARIABLE` names ``phase``."""
    spec = os.environ.get(VARIABLE)
    if not spec:
        return
    wanted, action, once = spec.split(":", 2)
    if wanted != phase:
        return
    try:
        os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return  # it happened already, in this process or another
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "slow":
        time.sleep(SLOW_S)
    while action == "hang":
        time.sleep(3600)
