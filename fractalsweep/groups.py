"""How a call's networks are packed into the kernel's groups, and repacked as they blow up.

The XLA kernel trains a group of networks in lock step until the last of them has NaN
parameters (:func:`fractalsweep.kernel.make_group_kernel`), so a network that blew up
early beside others that still train costs as much as a live one. :func:`train` therefore
trains its groups in stretches of :data:`SEGMENT` steps and, after a stretch, when the
live networks fit in fewer groups, finishes the NaN ones (their remaining steps would only
record NaN losses) and packs the live ones into as few groups as they fill. A network's
arithmetic does not depend on its group-mates or its slot and the group size stays the
same, so every output has the bits of training each group to its end
(``tests/test_groups.py``). On the published relu tile, in tiles of 32 x 32 pixels, it
takes 9% off the training's time (docs/performance.md, "Repacking").

Example
-------
>>> pack(np.arange(5), 4)
array([[0, 1, 2, 3],
       [4, 4, 4, 4]])
"""

from __future__ import annotations

import jax
import numpy as np

# Steps between looks at which networks blew up. Counted on 64 x 64 pixels of the
# published tiles in tiles of 16 x 16 (docs/scripts/repacking.py with SEGMENT set to
# each), looks every 10, 25 or 50 steps leave 96.8%, 97.3% or 98.1% of the network-steps
# of groups never repacked on the baseline tile, 94.5% for each on the relu tile; a look
# costs a call per group, 55-85 us on a CPU, about 0.5% of 25 steps of a group of 64, when
# malloc keeps the calls' temporaries (cluster.WORKER_MALLOC; docs/performance.md).
SEGMENT = 25


def pack(ids: np.ndarray, group: int) -> np.ndarray:
    """``ids`` in rows of ``group``, the last row padded with copies of its first id."""
    rows = -(-ids.size // group)
    last = ids[(rows - 1) * group]
    return np.concatenate([ids, np.full(rows * group - ids.size, last, ids.dtype)]).reshape(
        rows, group)


def repack(members: list, states: list, alive: np.ndarray, group: int) -> tuple:
    """``(members, states, retired)``: the live networks packed into fewer groups, if they
    fit in fewer, and the NaN ones as groups to finish; else the groups unchanged.

    ``members`` holds each group's pixel ids (padding repeats an id), ``states`` each
    group's :class:`~fractalsweep.kernel.GroupState` and ``alive`` the ``advance``
    flags of all their rows, in order. ``retired`` is a list of ``(ids, state)``.
    """
    ids = np.concatenate(members)
    first = np.zeros(ids.size, bool)
    first[np.unique(ids, return_index=True)[1]] = True  # padding trains nothing new
    live = first & alive
    if -(-live.sum() // group) >= len(members):
        return members, states, []
    stacked = jax.tree.map(lambda *rows: np.concatenate([np.asarray(r) for r in rows]),
                           *states)

    def grouped(rows):  # back on the device: a NumPy argument would be another compile
        return [(ids[r], jax.device_put(jax.tree.map(lambda leaf, r=r: leaf[r], stacked)))
                for r in (pack(rows, group) if rows.size else ())]

    kept = grouped(np.flatnonzero(live))
    return ([m for m, _ in kept], [s for _, s in kept],
            grouped(np.flatnonzero(first & ~alive)))


def collect(results: list, n: int) -> dict[str, np.ndarray]:
    """Each pixel's outputs from ``(ids, outputs)`` per group, in the pixels' order."""
    out = {}
    for ids, result in results:
        for name, values in result.items():
            out.setdefault(name, np.empty(n, values.dtype))[ids] = np.asarray(values)
    return out


def train(kern, xs, ys, group: int, weights, data, batch_idx, twin: dict, steps: int,
          repacking: bool = True) -> dict[str, np.ndarray]:
    """Train one network per pixel with a :class:`~fractalsweep.kernel.GroupKernel`.

    Parameters
    ----------
    kern : GroupKernel
        The compiled group functions.
    xs, ys : 1-D arrays
        The pixels' values, in the working dtype.
    group : int
        Networks per call.
    weights, data, batch_idx, twin
        The kernel's inputs (:func:`~fractalsweep.kernel.prepare`,
        :func:`~fractalsweep.kernel.twin_direction`).
    steps : int
        Training steps.
    repacking : bool
        Train in stretches of :data:`SEGMENT` steps and repack between them; False trains
        each group to its end in one call.

    The calls of a stretch are dispatched asynchronously; only the look after it waits.
    """
    members = list(pack(np.arange(xs.size), group))
    states = [kern.start(xs[m], ys[m], weights, **twin) for m in members]
    results, t = [], 0
    while t < steps:
        stop = min(t + SEGMENT, steps) if repacking and len(members) > 1 else steps
        advanced = [kern.advance(s, xs[m], ys[m], data, batch_idx, t, stop)
                    for s, m in zip(states, members)]
        states, t = [s for s, _ in advanced], stop
        if t < steps and len(members) > 1:
            alive = np.concatenate([np.asarray(a) for _, a in advanced])
            members, states, retired = repack(members, states, alive, group)
            results += [(m, kern.finish(s, data, t)) for m, s in retired]
    results += [(m, kern.finish(s, data, t)) for m, s in zip(members, states)]
    return collect(results, xs.size)
