"""The ``fractalsweep`` command line: run, status, render, info, bench.

Every expected failure (bad job, bad override, a store of another config) ends with one
line on stderr and exit status 2; a failed tile ends with exit status 1. No tracebacks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import ConfigError, apply_overrides, load_job, resolve

EPILOG = "Documentation: docs/cli.md. Job file keys: docs/jobs.md."


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fractalsweep",
        description="Map where training of a tiny network converges or diverges over two "
                    "hyperparameters; store every pixel in zarr and render the fractal boundary.",
        epilog=EPILOG)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="compute a sweep (resumes an existing store)",
                         description="Compute every missing tile of a job's sweep, then render "
                                     "it. Running the same command again resumes.")
    run.add_argument("job", help="TOML job file (see jobs/)")
    run.add_argument("--store", help="zarr store to write (default: ./<job name>.zarr)")
    run.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="SECTION.KEY=VALUE",
                     help="override a job setting, e.g. --set grid.resolution=64 (repeatable)")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDR",
                       help="address of a running Dask scheduler, or 'sync' to compute in this "
                            "process (default: start a local cluster)")
    where.add_argument("--scheduler-file", metavar="FILE",
                       help="scheduler file of a running Dask cluster")
    where.add_argument("--cluster", metavar="PROFILE",
                       help="start workers through SLURM or PBS with this cluster profile "
                            "(see jobs/clusters/)")
    run.add_argument("--workers", type=int, metavar="N",
                     help="CPU worker processes of the local cluster (default: one per core)")
    run.add_argument("--gpus", metavar="LIST",
                     help="GPUs for the local cluster, one worker each, e.g. 0,1 (default: all "
                          "visible GPUs; 'none' for CPU workers)")
    run.add_argument("--gpu-mem-fraction", type=float, metavar="F",
                     help="preallocate this fraction of each GPU (default: allocate on demand)")
    run.add_argument("--dry-run", action="store_true",
                     help="print the worker job script and the cost estimate; submit nothing")
    run.add_argument("--png", metavar="FILE",
                     help="picture to write when done (default: next to the store)")
    run.add_argument("--no-render", action="store_true", help="do not write a picture")
    run.add_argument("--quiet", action="store_true", help="no progress bar")

    render = sub.add_parser("render", help="draw a level of a store as a PNG",
                            description="Draw a level with the paper's colouring, axis labels "
                                        "and end ticks.")
    render.add_argument("store", help="zarr store written by 'fractalsweep run'")
    render.add_argument("--level", type=int, default=0, help="level to draw (default 0)")
    render.add_argument("--out", metavar="FILE", help="PNG to write (default: <store>-L<level>.png)")
    render.add_argument("--cmap", default="paper",
                        help="'paper' (default), 'classes' (converged/diverged/boundary) or any "
                             "matplotlib colormap name")

    status = sub.add_parser("status", help="progress of a store: tiles, rate, ETA, failures",
                            description="Tiles done per level, pixels per second and ETA from "
                                        "the tiles' provenance, failed tiles, where the "
                                        "workers ran, and the driver computing it now.")
    status.add_argument("store")

    info = sub.add_parser("info", help="show a store's config, levels and tiles done")
    info.add_argument("store")
    info.add_argument("--json", action="store_true", help="machine-readable output")

    bench = sub.add_parser("bench", help="kernel speed against the naive per-step method",
                           description="Network-steps per second of the kernel and of the "
                                       "published per-step method, in float64 and float32, "
                                       "measured in the same process.")
    bench.add_argument("--pixels", type=int, default=1024, help="networks per call (default 1024)")
    bench.add_argument("--steps", type=int, default=100, help="training steps (default 100)")
    bench.add_argument("--repeats", type=int, default=3, help="timed repeats, best kept")
    bench.add_argument("--job", help="job file whose network and window to use (default: the "
                                     "baseline network on the paper's tanh window)")
    bench.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    return p


def _fail(message: str, status: int = 2) -> int:
    print(f"fractalsweep: error: {message}", file=sys.stderr)
    return status


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ConfigError(f"{name} = {value}: must be >= 1")


def _gpus(text: str | None) -> list[str] | None:
    if text is None:
        return None
    if text == "none":
        return []
    gpus = [g.strip() for g in text.split(",")]
    if not all(g.isdigit() for g in gpus):
        raise ConfigError(f"--gpus {text!r}: expected device indices like 0,1 or 'none'")
    return gpus


def _dry_run(cfg, path: str, profile) -> int:
    from . import bench
    from .cluster import job_script
    from .grid import Tiling

    nx, ny = cfg.grid.resolution
    tiles = len(Tiling(ny, nx, cfg.grid.tile).indices())
    work = nx * ny * cfg.training.steps
    if profile is not None:
        print(job_script(profile))
    print(f"store {path}: {nx}x{ny} pixels x {cfg.training.steps} steps = {work:.3g} "
          f"net-steps in {tiles} tiles of {cfg.grid.tile}x{cfg.grid.tile}")
    rate = profile.net_steps_per_second if profile and profile.net_steps_per_second else None
    source = "the profile's net_steps_per_second"
    if rate is None and (saved := bench.saved_rate(cfg.dtype)):
        rate, device = saved
        source = f"the last 'fractalsweep bench' ({device}, one worker)"
    if rate is None:
        print("estimated worker-hours: unknown (run 'fractalsweep bench' on a worker, or set "
              "net_steps_per_second in the profile)")
    else:
        kind = "GPU" if profile is not None and profile.gpus_per_job else "worker"
        print(f"estimated {kind}-hours: {work / rate / 3600:.3g} at {rate:,.0f} net-steps/s "
              f"per worker (from {source})")
    print("dry run: nothing submitted, nothing written")
    return 0


def cmd_run(args) -> int:
    from .cluster import load_profile
    from .execute import SweepError, run_sweep

    _positive("--workers", args.workers)
    if args.gpu_mem_fraction is not None and not 0 < args.gpu_mem_fraction <= 1:
        raise ConfigError(f"--gpu-mem-fraction {args.gpu_mem_fraction}: expected 0 < F <= 1")
    cfg = resolve(apply_overrides(load_job(args.job), args.overrides))
    profile = load_profile(args.cluster) if args.cluster else None
    path = args.store or f"{Path(args.job).stem}.zarr"
    if args.dry_run:
        return _dry_run(cfg, path, profile)
    try:
        report = run_sweep(path, cfg, scheduler=args.scheduler,
                           scheduler_file=args.scheduler_file, profile=profile,
                           workers=args.workers, gpus=_gpus(args.gpus),
                           mem_fraction=args.gpu_mem_fraction, progress=not args.quiet)
    except SweepError as exc:
        return _fail(f"{exc} (finished tiles are kept; run the same command to resume)", 1)
    rate = report.pixels / report.seconds if report.seconds else 0.0
    print(f"{path}: {report.computed} tiles computed, {report.skipped} already done, "
          f"{report.pixels} pixels in {report.seconds:.1f} s ({rate:,.0f} px/s)")
    if not args.no_render:
        out = args.png or _default_png(path)
        print(f"wrote {_render(path, 0, out, 'paper')}")
    return 0


def _default_png(path: str, level: int | None = None) -> str:
    """``<store stem>[-L<level>].png`` next to a local store, in the working directory for URLs."""
    base = Path(path.rstrip("/").split("://")[-1])
    base = base if "://" not in path else Path(base.name)
    suffix = "" if level is None else f"-L{level}"
    return str(base.with_name(base.stem + suffix + ".png"))


def _render(path: str, level: int, out: str, cmap: str) -> Path:
    from . import store
    from .render import render_png

    lvl = store.open_level(store.open_root(path), level)
    g = lvl.group
    view = g.attrs["view"]
    if not lvl.done.all():
        print(f"note: level {level} is incomplete ({int(lvl.done.sum())}/{lvl.done.size} "
              "tiles); missing pixels are blank", file=sys.stderr)
    try:
        return render_png(g["score"][:], g["x"][:], g["y"][:], out,
                          xlabel=view["x"]["label"], ylabel=view["y"]["label"], cmap=cmap)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def cmd_render(args) -> int:
    out = args.out or _default_png(args.store, args.level)
    print(f"wrote {_render(args.store, args.level, out, args.cmap)}")
    return 0


def cmd_info(args) -> int:
    from . import store

    root = store.open_root(args.store)
    meta = dict(root.attrs["fractalsweep"])
    levels = []
    for name in sorted(root["levels"].group_keys(), key=int):
        lvl = store.open_level(root, int(name))
        score = lvl.group["score"][:]
        levels.append({"level": int(name), "view": lvl.group.attrs["view"],
                       "resolution": lvl.group.attrs["resolution"],
                       "tiles_done": int(lvl.done.sum()), "tiles": int(lvl.done.size),
                       "converged": int((score < 0).sum()), "diverged": int((score >= 0).sum())})
    if args.json:
        print(json.dumps({**meta, "levels": levels}, indent=2))
        return 0
    print(f"store     {args.store}")
    print(f"created   {meta['created']}  (fractalsweep {meta['versions']['fractalsweep']}, "
          f"jax {meta['versions']['jax']})")
    print("config    " + json.dumps(meta["config"]))
    for lv in levels:
        x, y = lv["view"]["x"], lv["view"]["y"]
        print(f"level {lv['level']}   {lv['resolution'][0]}x{lv['resolution'][1]}  "
              f"tiles {lv['tiles_done']}/{lv['tiles']}  converged {lv['converged']}  "
              f"diverged {lv['diverged']}")
        print(f"          x: {x['label']} {x['lo']} .. {x['hi']} ({x['scale']})")
        print(f"          y: {y['label']} {y['lo']} .. {y['hi']} ({y['scale']})")
    return 0


def cmd_status(args) -> int:
    from .status import level_status, format_status
    from . import store

    root = store.open_root(args.store)
    levels = [level_status(store.open_level(root, int(name)))
              for name in sorted(root["levels"].group_keys(), key=int)]
    print(format_status(args.store, levels, store.read_lock(args.store)))
    return 0


def cmd_bench(args) -> int:
    from . import bench

    for name in ("pixels", "steps", "repeats"):
        _positive(f"--{name}", getattr(args, name))
    job = load_job(args.job) if args.job else None
    rows = bench.run(pixels=args.pixels, steps=args.steps, repeats=args.repeats, job=job)
    print(bench.table(rows))
    print(f"saved for cost estimates: {bench.save(rows)}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


COMMANDS = {"run": cmd_run, "status": cmd_status, "render": cmd_render, "info": cmd_info,
            "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted; finished tiles are kept, run the same command to resume", 130)


if __name__ == "__main__":
    sys.exit(main())
