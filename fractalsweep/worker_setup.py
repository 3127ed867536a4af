"""Preloaded into every worker process of a local cluster (``distributed``'s preload).

Ctrl-C in a terminal reaches the whole process group, workers included. The driver alone
handles it: it stops the cluster and prints one line, so a worker must not print a
traceback of its own first. Ignoring SIGINT here, in the worker's main thread, does that;
the driver's own handler is left alone, so Ctrl-C works at every moment of a run. (A
forked worker ignores it from the start, as the fork server does,
:func:`fractalsweep.cluster.start_forkserver`.)

A worker applies its JAX settings (:func:`fractalsweep.cluster.jax_settings`, handed over
in its Dask config) here: JAX reads its environment only when it is imported, and a forked
worker's JAX was imported by the fork server. A local CPU worker also keeps to the core it
was given (``FRACTALSWEEP_CORE``, :func:`fractalsweep.cluster.local_cluster`): every
thread it has now, and the ones they start later, which inherit it.
"""

import os
import signal

from .cluster import CORE_VARIABLE, WORKER_JAX


def dask_setup(worker) -> None:
    """Called by ``distributed`` in the worker process before it takes tasks."""
    import dask
    import jax

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name, value in dask.config.get(WORKER_JAX, default={}).items():
        jax.config.update(name, value)
    core = os.environ.get(CORE_VARIABLE)
    if core is not None:
        for thread in os.listdir("/proc/self/task"):
            try:
                os.sched_setaffinity(int(thread), {int(core)})
            except ProcessLookupError:  # a thread that ended meanwhile
                pass
