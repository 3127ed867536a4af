"""What a sweep will cost before it runs: pixels, network-steps, tiles and worker-hours."""

from __future__ import annotations

from . import bench
from .config import SweepConfig
from .grid import auto_tile
from .limits import tiles_of

__all__ = ["estimate"]


def estimate(cfg: SweepConfig, tile: int | None = None, profile=None) -> list[str]:
    """Lines describing the work of level 0 of ``cfg`` and its estimated worker-hours.

    The rate comes from the cluster profile's ``net_steps_per_second`` if given, else from
    the last ``fractalsweep bench`` on this machine; without either the hours are unknown.
    """
    nx, ny = cfg.grid.resolution
    tile = tile or auto_tile(nx, ny)
    tiles = tiles_of((nx, ny), tile)
    work = nx * ny * cfg.training.steps
    lines = [(f"{nx}x{ny} pixels x {cfg.training.steps} steps = {work:.3g} net-steps in "
              f"{tiles} tiles of {tile}x{tile}")]
    rate = profile.net_steps_per_second if profile and profile.net_steps_per_second else None
    source = "the profile's net_steps_per_second"
    if rate is None and (saved := bench.saved_rate(cfg.dtype)):
        rate, device = saved
        source = f"the last 'fractalsweep bench' ({device}, one worker)"
    if rate is None:
        lines.append("estimated worker-hours: unknown (run 'fractalsweep bench' on a worker, "
                     "or set net_steps_per_second in the profile)")
    else:
        kind = "GPU" if profile is not None and profile.gpus_per_job else "worker"
        lines.append(f"estimated {kind}-hours: {work / rate / 3600:.3g} at {rate:,.0f} "
                     f"net-steps/s per worker (from {source})")
    return lines
