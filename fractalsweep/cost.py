"""What a sweep will cost before it runs: network-steps, floating-point work, memory and
worker-hours.

Worker-hours scale a measured rate (a cluster profile's ``net_steps_per_second``, else the
last ``fractalsweep bench`` on this machine; for GPU workers, when that bench ran on a CPU,
the GPU measurement of docs/performance.md) by the floating-point work of one network-step
of this config against that of the network the rate was measured on, so a wider, deeper or
minibatch network is estimated from its actual size; double-double scales from its own
bench where one was saved, else costs a measured factor more than float64
(docs/precision.md). Where the workers a run starts are known, the wall time follows from the
tiles each of them trains.
"""

from __future__ import annotations

import os

from .config import SweepConfig
from .errors import ConfigError
from .grid import DOUBLE_DOUBLE
from .limits import tiles_of

__all__ = ["DOUBLE_DOUBLE_COST", "estimate", "flops_per_net_step", "network_bytes",
           "networks_per_pixel"]

DOUBLE_DOUBLE_COST = 80  # double-double / float64 time per network-step (docs/precision.md)
# A transcendental activation, in multiply-adds: a rational tanh (XLA's, or on a CPU in
# float64 the kernel's own Padé quotient, elementary.tanh64), about 20 operations either way.
ACTIVATION_FLOPS = 20
# Net-steps/s of the baseline network on one GPU, by kernel and dtype, measured on a lent
# NVIDIA H100 (docs/performance.md, "GPU", second H100 lease; in calls of 16384 networks,
# a GPU tile, the fused kernel at Pallas' 3 pipelining stages: its 1 stage ran 1-2% faster
# in calls of 65536): what a GPU profile's estimate scales from when neither the profile
# nor a `fractalsweep bench` on a GPU gives a rate.
GPU_REFERENCE = ("NVIDIA H100", {("pallas", "float64"): 31.9e6, ("pallas", "float32"): 56.3e6,
                                 ("xla", "float64"): 10.2e6, ("xla", "float32"): 22.6e6})


def flops_per_net_step(cfg: SweepConfig) -> float:
    """Floating-point operations of one training step of one network.

    Each weight matrix costs a multiply-add per entry and data row forward and one backward
    (its gradient), and one more backward for the signal to the layer below, which the first
    layer, on the data, has not; on the full batch for the recorded loss and, for a
    minibatch, again on its rows. Each hidden unit costs an activation per row forward and
    two operations backward (its derivative from the activation's output).

    >>> from fractalsweep.config import resolve
    >>> round(flops_per_net_step(resolve({})))  # the baseline: 272 rows, 256 + 16 weights
    400384
    """
    weights = sum(a * b for a, b in cfg.layer_shapes)
    first = cfg.layer_shapes[0][0] * cfg.layer_shapes[0][1]
    hidden = cfg.model.width * (cfg.model.depth - 1)
    rows = cfg.n_data
    gradient_rows = cfg.batch_size or rows
    forward = 2 * weights + ACTIVATION_FLOPS * hidden
    backward = 2 * weights + 2 * (weights - first) + 2 * hidden
    batch_pass = 0 if cfg.batch_size is None else forward  # the minibatch's own forward
    return rows * forward + gradient_rows * (batch_pass + backward)


def networks_per_pixel(cfg: SweepConfig) -> int:
    """Networks trained per pixel: the ensemble's members and the Lyapunov twin of member 0
    (docs/measures.md); snapshots cost no network.

    >>> from fractalsweep.config import resolve
    >>> networks_per_pixel(resolve({})), networks_per_pixel(
    ...     resolve({"ensemble": {"seeds": 4}, "measures": {"lyapunov": True}}))
    (1, 5)
    """
    return cfg.ensemble.seeds + cfg.measures.lyapunov


def network_bytes(cfg: SweepConfig) -> int:
    """Memory one network needs while it trains: its parameters and optimizer state, and the
    activations of every layer over every data row (kept for the backward pass)."""
    itemsize = 4 if cfg.dtype == "float32" else 8 if cfg.dtype == "float64" else 16
    weights = sum(a * b for a, b in cfg.layer_shapes)
    activations = cfg.n_data * sum(b for _, b in cfg.layer_shapes)
    return itemsize * (4 * weights + 3 * activations)


def check_memory(cfg: SweepConfig, networks: int, have: float | None = None) -> float:
    """Bytes to train ``networks`` of ``cfg`` at once; a one-line error past ``have`` (a
    worker's memory, default this machine's).

    >>> from fractalsweep.config import resolve
    >>> check_memory(resolve({}), 64) / 1e6
    7.65952
    >>> check_memory(resolve({"model": {"width": 100000}}), 64)
    Traceback (most recent call last):
    ...
    fractalsweep.errors.ConfigError: one worker needs about 1.54e+09 GB to train 64 of these ...
    """
    need = networks * network_bytes(cfg) * (1 + cfg.measures.lyapunov)
    have = _machine_memory() if have is None else have
    if need > have:
        raise ConfigError(f"one worker needs about {need / 1e9:.3g} GB to train {networks} of "
                          f"these networks at once (each {network_bytes(cfg) / 1e9:.3g} GB) "
                          f"and has {have / 1e9:.3g} GB; make the network or the data smaller")
    return need


def _bytes(text: str) -> float:
    """``"16GB"``-style sizes (dask's spelling) in bytes."""
    from dask.utils import parse_bytes

    return parse_bytes(text)


def estimate(cfg: SweepConfig, path: str, execution, force: bool = False) -> list[str]:
    """Lines describing level 0 of ``cfg`` computed at ``path`` by ``execution``: its work,
    its workers' memory, its worker-hours, and its files, disk and memory against the limits
    (:mod:`fractalsweep.limits`) with whether a run would be refused.

    Raises
    ------
    ConfigError
        If one tile's networks cannot fit a worker's memory (the profile's ``memory``, else
        this machine's), or its kernel cannot train ``cfg``
        (:func:`~fractalsweep.systems.check_computable`), or, for a new store, its data
        cannot be read (:meth:`fractalsweep.tasks.Task.check_sources`), as a run would be
        refused.
    PrecisionError
        For a new store, unless ``force``, a window its dtype cannot keep the pixels of apart
        (:func:`fractalsweep.precision.guard`), as a run would be refused.
    """
    from . import limits
    from .precision import guard
    from .store import LevelSpec
    from .systems import check_computable, system_of
    from .tasks import TASKS

    check_computable(cfg, execution.kernel)
    nx, ny = cfg.grid.resolution
    tile = execution.tile_for((nx, ny))
    tiles = tiles_of((nx, ny), tile)
    done = _done_already(path, cfg)
    if done is None:
        spec = LevelSpec.of_job(cfg)
        guard(spec.view, spec.resolution, spec.dtype, force=force, dtypes=system_of(cfg).dtypes)
    if cfg.system.kind == "training":
        lines = _training(cfg, execution, tile, tiles)
        if done is None:  # a new store reads its data first (drawing them may be huge)
            TASKS[cfg.data.task].check_sources(cfg.data)
    else:  # an escape-time or Newton map: iterations of a formula, no network
        lines = [(f"{nx}x{ny} pixels x up to {cfg.system.max_iter} iterations of "
                  f"system.kind = {cfg.system.kind!r} in {_tiles(tiles, tile, nx, ny)}"),
                 ("estimated worker-hours: unknown ('fractalsweep bench' measures training "
                  "runs only)")]
    if done is not None:
        lines.insert(0, f"the store holds level 0 with {done[0]} of {done[1]} tiles done: a run "
                        f"computes the {done[1] - done[0]} missing (the figures below are for "
                        "the whole level, in a new store)")
    level = limits.level_estimate(cfg, (nx, ny), tile, new_store=True)
    try:
        limits.check("level 0", path, level, execution.limits)
    except limits.LimitError as exc:
        lines.append(f"a run would be refused: {exc}")
    else:
        lines.append(f"level 0: {level}")
    return lines


def _done_already(path: str, cfg: SweepConfig) -> tuple[int, int] | None:
    """Tiles done and in all of level 0 of the store at ``path``, if there is one; a one-line
    error where a run would refuse the store (:func:`fractalsweep.store.existing`)."""
    from . import store

    root = store.existing(path, cfg)
    if root is None or 0 not in store.level_indices(root):
        return None
    done = store.open_level(root, 0).done
    return int(done.sum()), int(done.size)


def _tiles(tiles: int, tile: int, nx: int, ny: int) -> str:
    """How a level is cut, as read: one tile is the whole level, however large its side."""
    return f"1 tile of {nx}x{ny}" if tiles == 1 else f"{tiles} tiles of {tile}x{tile}"


def _training(cfg: SweepConfig, execution, tile: int, tiles: int) -> list[str]:
    """:func:`estimate`'s lines on training ``cfg``: its work, memory, worker-hours and wall
    time."""
    from . import cluster, ddkernel, kernel, measurements
    from .status import duration

    profile = execution.cluster
    nx, ny = cfg.grid.resolution
    networks = networks_per_pixel(cfg)
    work = nx * ny * networks * cfg.training.steps
    flops = flops_per_net_step(cfg)
    gpu = execution.on_gpus
    group = (ddkernel if cfg.dtype == DOUBLE_DOUBLE else kernel).GROUP["gpu" if gpu else "cpu"]
    at_once = min(group, tile * tile)
    have = _bytes(profile.memory) if profile is not None else _machine_memory()
    need = check_memory(cfg, at_once, have)
    per_pixel = "" if networks == 1 else f" x {networks} networks"
    lines = [(f"{nx}x{ny} pixels{per_pixel} x {cfg.training.steps} steps = {work:.3g} "
              f"net-steps in {_tiles(tiles, tile, nx, ny)}; {flops:.3g} flop per net-step, "
              f"{work * flops:.3g} in all"),
             (f"memory: {need / 1e9:.3g} GB per worker for {at_once} networks at once, of "
              f"{have / 1e9:.3g} GB")]
    if networks > 1:
        lines.insert(1, f"networks per pixel: {cfg.ensemble.seeds} ensemble member(s)"
                     + (" + 1 Lyapunov twin" if cfg.measures.lyapunov else ""))
    rate, source = _rate(cfg, gpu, profile, measurements.saved_measurement(cfg.dtype))
    kind = "GPU" if gpu else "worker"
    workers = execution.worker_count
    if rate is None:
        lines.append(f"estimated {kind}-hours: unknown ({source})")
    else:
        lines.append(f"estimated {kind}-hours: {work / rate / 3600:.3g} at {rate:,.3g} "
                     f"net-steps/s per {kind} ({source})")
    if rate is not None and workers:
        each = -(-tiles // workers)
        # local CPU workers beyond the cores take turns on them, each at a share of a core
        cores = cluster.usable_cores() if execution.starts_local_cluster and not gpu else workers
        sharing = f" sharing {cores} core{'s' * (cores > 1)}" if cores < workers else ""
        seconds = _busiest(nx, ny, tile, each, lambda pixels: -(-pixels * networks // group)
                           * group * cfg.training.steps) / rate * max(workers / cores, 1)
        wall = f"{seconds:.3g} s" if seconds < 60 else duration(seconds)
        lines.append(f"estimated wall time: {wall} of training, "
                     f"{tiles} tile{'s' * (tiles > 1)} on {workers} {kind}{'s' * (workers > 1)}"
                     f"{sharing}, up to {each} each (start-up, reading and writing not counted)")
    return lines


def _busiest(nx: int, ny: int, tile: int, each: int, work) -> float:
    """The ``work(pixels)`` of a worker given ``each`` tiles, the largest there are: Dask
    hands tiles to workers as they free up, so one may get every full tile while another
    gets the slivers cut at the borders. Counted by kind of tile (full, cut in x, in y, in
    both), not listed: a huge level has millions."""
    rows = [(tile, ny // tile), (ny % tile, 1)]
    cols = [(tile, nx // tile), (nx % tile, 1)]
    kinds = sorted(((h * w, m * n) for h, m in rows for w, n in cols if h * w * m * n),
                   reverse=True)
    total = 0.0
    for pixels, count in kinds:
        take = min(count, each)
        total += take * work(pixels)
        each -= take
    return total


def _rate(cfg, gpu: bool, profile, saved) -> tuple[float | None, str]:
    """Network-steps per second of ``cfg`` per worker (a GPU worker where ``gpu``), and where
    the figure comes from."""
    if profile is not None and profile.net_steps_per_second:
        return profile.net_steps_per_second, "the profile's net_steps_per_second"
    source = "the last 'fractalsweep bench'"
    if gpu and (saved is None or "cpu" in saved[1].lower()):
        saved, source = _gpu_reference(cfg), "the GPU measurement of docs/performance.md"
    if saved is None:
        return None, ("run 'fractalsweep bench' on a worker, or set net_steps_per_second in "
                      "the profile")
    rate, device, flops, measured = saved
    scale = flops / flops_per_net_step(cfg)
    unit = "net-steps per CPU-second" if device == "cpu" else "net-steps/s"
    note = (f"{source}, {rate:,.3g} {measured} {unit} on {device}, scaled by flop per "
            f"net-step ({scale:.3g}x)")
    if cfg.dtype == DOUBLE_DOUBLE and measured != DOUBLE_DOUBLE:
        scale /= DOUBLE_DOUBLE_COST
        note += f" and 1/{DOUBLE_DOUBLE_COST} for double-double"
    return rate * scale, note


def _gpu_reference(cfg) -> tuple[float, str, float, str]:
    """:data:`GPU_REFERENCE`'s rate for the kernel a GPU would train ``cfg`` with, as
    ``(rate, device, flop per net-step of the network measured, dtype measured)``."""
    from . import fused
    from .config import resolve

    device, rates = GPU_REFERENCE
    dtype = "float64" if cfg.dtype == DOUBLE_DOUBLE else cfg.dtype
    kernel = fused.select(cfg, "auto", platform="gpu")
    return (rates[kernel, dtype], f"{device}, {kernel} kernel", flops_per_net_step(resolve({})),
            dtype)


def _machine_memory() -> float:
    """This machine's memory, for the local cluster (its workers share it)."""
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
