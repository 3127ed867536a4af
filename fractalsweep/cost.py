"""What a sweep will cost before it runs: pixels, network-steps, tiles and worker-hours."""

from __future__ import annotations

from . import bench
from .config import SweepConfig
from .grid import Tiling, auto_tile

__all__ = ["estimate", "networks_per_pixel"]


def networks_per_pixel(cfg: SweepConfig) -> int:
    """Networks trained per pixel: the ensemble's members and the Lyapunov twin of member 0
    (docs/measures.md); snapshots cost no network.

    >>> from fractalsweep.config import resolve
    >>> networks_per_pixel(resolve({})), networks_per_pixel(
    ...     resolve({"ensemble": {"seeds": 4}, "measures": {"lyapunov": True}}))
    (1, 5)
    """
    return cfg.ensemble.seeds + cfg.measures.lyapunov


def estimate(cfg: SweepConfig, tile: int | None = None, profile=None) -> list[str]:
    """Lines describing the work of level 0 of ``cfg`` and its estimated worker-hours.

    The rate comes from the cluster profile's ``net_steps_per_second`` if given, else from
    the last ``fractalsweep bench`` on this machine; without either the hours are unknown.
    """
    nx, ny = cfg.grid.resolution
    tile = tile or auto_tile(nx, ny)
    tiles = len(Tiling(ny, nx, tile).indices())
    networks = networks_per_pixel(cfg)
    work = nx * ny * networks * cfg.training.steps
    per_pixel = "" if networks == 1 else f" x {networks} networks"
    lines = [(f"{nx}x{ny} pixels{per_pixel} x {cfg.training.steps} steps = {work:.3g} "
              f"net-steps in {tiles} tiles of {tile}x{tile}")]
    if networks > 1:
        lines.append(f"networks per pixel: {cfg.ensemble.seeds} ensemble member(s)"
                     + (" + 1 Lyapunov twin" if cfg.measures.lyapunov else ""))
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
