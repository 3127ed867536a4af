"""The ``fractalsweep`` command line: run, zoom, ladder, dive, animate, explore, dimension,
status, render, info, bench.

Every expected failure (bad job, bad override, a store of another config) ends with one
line on stderr and exit status 2; a failed tile ends with exit status 1. No tracebacks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import ConfigError, apply_overrides, load_job, resolve
from .execute import SweepError

EPILOG = "Documentation: docs/cli.md. Job file keys: docs/jobs.md."


def _add_overrides(parser, what: str = "a job setting") -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE",
                        help=f"override {what}, e.g. --set grid.resolution=64 (repeatable)")


def _add_level_options(parser) -> None:
    parser.add_argument("--resolution", type=int, nargs="+", metavar="N",
                        help="pixels per side of the new level, or NX NY (default: the job's)")
    parser.add_argument("--float32-preview", action="store_true",
                        help="compute the level in float32: cheap, shallow, marked as preview")
    parser.add_argument("--force", action="store_true",
                        help="zoom even where the dtype cannot keep neighbouring pixels apart")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fractalsweep",
        description="Map where training of a tiny network converges or diverges over two "
                    "hyperparameters; store every pixel in zarr and render the fractal boundary.",
        epilog=EPILOG)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    execution = argparse.ArgumentParser(add_help=False)
    where = execution.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDR",
                       help="address of a running Dask scheduler, or 'sync' to compute in this "
                            "process (default: start a local cluster)")
    where.add_argument("--scheduler-file", metavar="FILE",
                       help="scheduler file of a running Dask cluster")
    where.add_argument("--cluster", metavar="PROFILE",
                       help="start workers through SLURM or PBS with this cluster profile "
                            "(see jobs/clusters/)")
    execution.add_argument("--workers", type=int, metavar="N",
                           help="CPU worker processes of the local cluster (default: one per "
                                "core)")
    execution.add_argument("--gpus", metavar="LIST",
                           help="GPUs for the local cluster, one worker each, e.g. 0,1 "
                                "(default: all visible GPUs; 'none' for CPU workers)")
    execution.add_argument("--gpu-mem-fraction", type=float, metavar="F",
                           help="preallocate this fraction of each GPU (default: on demand)")
    execution.add_argument("--tile", type=int, metavar="N",
                           help="pixels per tile side of a new level (default: from the "
                                "resolution, about 64 tiles)")
    execution.add_argument("--quiet", action="store_true", help="no progress bar")

    run = sub.add_parser("run", parents=[execution], help="compute a sweep (resumes an existing store)",
                         description="Compute every missing tile of a job's sweep, then render "
                                     "it. Running the same command again resumes.")
    run.add_argument("job", help="TOML job file (see jobs/)")
    run.add_argument("--store", help="zarr store to write (default: ./<job name>.zarr)")
    _add_overrides(run)
    run.add_argument("--dry-run", action="store_true",
                     help="print the worker job script and the cost estimate; submit nothing")
    run.add_argument("--png", metavar="FILE",
                     help="picture to write when done (default: next to the store)")
    run.add_argument("--no-render", action="store_true", help="do not write a picture")

    zoom = sub.add_parser("zoom", parents=[execution], help="add a zoomed level to a store",
                          description="Compute a new level of a store with its configuration: "
                                      "a box, a centre and width, or --auto (the most "
                                      "boundary-rich region of a level). Resumable.")
    zoom.add_argument("store")
    how = zoom.add_mutually_exclusive_group(required=True)
    how.add_argument("--box", nargs=4, metavar=("XLO", "XHI", "YLO", "YHI"),
                     help="the new window, as hyperparameter values (or log10 with --log10)")
    how.add_argument("--centre", nargs=2, metavar=("CX", "CY"),
                     help="the new window's centre (with --width)")
    how.add_argument("--auto", action="store_true",
                     help="zoom into the most boundary-rich box of --from-level")
    zoom.add_argument("--width", nargs="+", metavar="W",
                      help="window width: decades on a log axis, value units on a linear one; "
                           "one number for both axes or two (x, y)")
    zoom.add_argument("--log10", action="store_true", help="--box/--centre are in log10 units")
    zoom.add_argument("--from-level", type=int, metavar="L",
                      help="level --auto looks at (default: the deepest)")
    zoom.add_argument("--box-fraction", type=float, default=0.25, metavar="F",
                      help="--auto zooms by this factor per axis (default 0.25)")
    _add_level_options(zoom)

    ladder = sub.add_parser("ladder", parents=[execution],
                            help="fill in the keyframe ladder above a level",
                            description="Levels sharing a level's centre, each twice as wide, "
                                        "up to a width; pixels shared with the next narrower "
                                        "level are copied, not recomputed.")
    ladder.add_argument("store")
    ladder.add_argument("--level", type=int, metavar="L",
                        help="the deep level (default: the deepest)")
    ladder.add_argument("--widest", type=float, default=6.0, metavar="DECADES",
                        help="stop when the widest level spans this many decades (default 6)")

    dive = sub.add_parser("dive", parents=[execution],
                          help="unattended deep zoom: overview, auto-zooms, ladder",
                          description="Compute the job's overview, auto-target and zoom until "
                                      "--decades of zoom, then fill in the keyframe ladder up to "
                                      "the overview. Re-run the same command to resume.")
    dive.add_argument("job")
    dive.add_argument("--decades", type=float, required=True,
                      help="how deep to go, in decades of zoom")
    dive.add_argument("--store", help="zarr store (default: ./<job name>.zarr)")
    _add_overrides(dive)
    dive.add_argument("--box-fraction", type=float, default=0.25, metavar="F",
                      help="zoom factor per auto step and axis (default 0.25)")

    explore = sub.add_parser("explore", parents=[execution],
                             help="interactive window: drag a box to zoom",
                             description="A matplotlib window on a level. Drag a box to zoom: "
                                         "the new level is computed on the cluster and drawn "
                                         "as tiles land. Keys: left/right (or b/n) step "
                                         "through levels, d the deepest, c cycles colourings, "
                                         "f toggles the precision override, r redraws.")
    explore.add_argument("store")
    explore.add_argument("--level", type=int, metavar="L",
                         help="level to show first (default: the deepest)")

    animate = sub.add_parser("animate", help="export the zoom across the ladder as MP4 or GIF",
                             description="A smooth exponential zoom across a store's keyframe "
                                         "ladder, streamed to ffmpeg (H.264 MP4, or GIF).")
    animate.add_argument("store")
    animate.add_argument("--out", required=True, metavar="FILE", help=".mp4, .mov, .mkv or .gif")
    animate.add_argument("--fps", type=int, default=30, help="frames per second (default 30)")
    animate.add_argument("--frames-per-octave", type=int, default=45, metavar="N",
                         help="frames per factor-2 zoom (default 45)")
    animate.add_argument("--size", default="512x512", metavar="WxH",
                         help="frame size in pixels (default 512x512)")
    animate.add_argument("--cmap", default="paper", help="colouring (as for render)")
    animate.add_argument("--zoom", choices=("in", "out"), default="in", help="direction")
    animate.add_argument("--no-ease", action="store_true", help="constant speed from end to end")
    animate.add_argument("--overlay", action="store_true", help="draw the axes and end values")
    animate.add_argument("--codec", choices=("h264", "hevc", "av1"),
                         help="video codec (default: H.264, HEVC above 4K)")
    animate.add_argument("--quiet", action="store_true", help="no progress bar")

    render = sub.add_parser("render", help="draw a level of a store as a PNG",
                            description="Draw a level with the paper's colouring, axis labels "
                                        "and end ticks.")
    render.add_argument("store", help="zarr store written by 'fractalsweep run'")
    render.add_argument("--level", type=int, default=0, help="level to draw (default 0)")
    render.add_argument("--out", metavar="FILE", help="PNG to write (default: <store>-L<level>.png)")
    render.add_argument("--cmap", default="paper",
                        help="'paper' (default), 'classes' (converged/diverged/boundary) or any "
                             "matplotlib colormap name")

    dimension = sub.add_parser("dimension", help="fractal dimension of a zoom's boundary",
                               description="Box-counting dimension of the boundary "
                                           "(science.md 10): local slopes pooled over the "
                                           "keyframe ladder (or the given levels), median.")
    dimension.add_argument("store")
    dimension.add_argument("--levels", type=int, nargs="+", metavar="L",
                           help="levels to pool (default: the keyframe ladder)")
    dimension.add_argument("--json", action="store_true", help="also sizes, counts and slopes")

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
                                       "measured in the same process, per wall second and "
                                       "per CPU second (one core's figure on a CPU).")
    bench.add_argument("--pixels", type=int, default=1024, help="networks trained (default 1024)")
    bench.add_argument("--group", type=int, help="kernel networks per call (default: chosen "
                                                 "for the device)")
    bench.add_argument("--dtype", choices=("float64", "float32"), action="append",
                       help="measure only this dtype (repeatable; default both)")
    bench.add_argument("--method", choices=("naive", "kernel", "kernel-no-exit"),
                       action="append", help="measure only this method (repeatable; "
                                             "default all)")
    bench.add_argument("--kernel", choices=("xla", "pallas", "auto"), action="append",
                       help="kernel the kernel methods use: xla, pallas (the fused kernel; "
                            "interpreted, slow, off a GPU) or auto (repeatable; default auto)")
    bench.add_argument("--steps", type=int, default=100, help="training steps (default 100)")
    bench.add_argument("--repeats", type=int, default=3, help="timed repeats, best kept")
    bench.add_argument("--job", help="job file whose network and window to use (default: the "
                                     "baseline network on the paper's tanh window)")
    _add_overrides(bench, "a setting of the benchmarked job")
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


def _dry_run(cfg, path: str, profile, tile) -> int:
    from . import bench
    from .cluster import job_script
    from .grid import Tiling, auto_tile

    nx, ny = cfg.grid.resolution
    tile = tile or auto_tile(nx, ny)
    tiles = len(Tiling(ny, nx, tile).indices())
    work = nx * ny * cfg.training.steps
    if profile is not None:
        print(job_script(profile))
    print(f"store {path}: {nx}x{ny} pixels x {cfg.training.steps} steps = {work:.3g} "
          f"net-steps in {tiles} tiles of {tile}x{tile}")
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


def _execution(args) -> dict:
    """run_sweep's keyword arguments for where and how to compute."""
    from .cluster import load_profile

    _positive("--workers", args.workers)
    _positive("--tile", args.tile)
    if args.gpu_mem_fraction is not None and not 0 < args.gpu_mem_fraction <= 1:
        raise ConfigError(f"--gpu-mem-fraction {args.gpu_mem_fraction}: expected 0 < F <= 1")
    return {"scheduler": args.scheduler, "scheduler_file": args.scheduler_file,
            "profile": load_profile(args.cluster) if args.cluster else None,
            "workers": args.workers, "gpus": _gpus(args.gpus),
            "mem_fraction": args.gpu_mem_fraction, "tile": args.tile, "progress": not args.quiet}


def _job(args) -> tuple:
    """The resolved job and its store path (default ``./<job stem>.zarr``)."""
    cfg = resolve(apply_overrides(load_job(args.job), args.overrides))
    return cfg, args.store or f"{Path(args.job).stem}.zarr"


def _box_fraction(args) -> float:
    """Checked before any work starts (a dive would otherwise compute its overview first)."""
    if not 0 < args.box_fraction < 1:
        raise ConfigError(f"--box-fraction {args.box_fraction}: expected 0 < F < 1")
    return args.box_fraction


def _report(path: str, report, level: int = 0) -> None:
    rate = report.pixels / report.seconds if report.seconds else 0.0
    print(f"{path} level {level}: {report.computed} tiles computed, {report.skipped} already "
          f"done, {report.pixels} pixels in {report.seconds:.1f} s ({rate:,.0f} px/s)")


def cmd_run(args) -> int:
    from .execute import run_sweep

    execution = _execution(args)
    cfg, path = _job(args)
    if args.dry_run:
        return _dry_run(cfg, path, execution["profile"], execution["tile"])
    _report(path, run_sweep(path, cfg, **execution))
    if not args.no_render:
        out = args.png or _default_png(path)
        print(f"wrote {_render(path, 0, out, 'paper')}")
    return 0


def _level_options(args) -> dict:
    res = args.resolution
    if res is not None and len(res) not in (1, 2):
        raise ConfigError(f"--resolution {' '.join(map(str, res))}: expected N or NX NY")
    if res is not None and min(res) < 2:
        raise ConfigError(f"--resolution {min(res)}: must be >= 2")
    return {"resolution": None if res is None else (res[0], res[-1]),
            "dtype": "float32" if args.float32_preview else None, "force": args.force}


def cmd_zoom(args) -> int:
    from . import store, zoom
    from .dive import auto_view, deepest, view_of, zoom_to

    execution = _execution(args)
    level_options = _level_options(args)
    cfg = store.config_of(args.store)
    root = store.open_root(args.store)
    if args.auto:
        source = deepest(args.store) if args.from_level is None else args.from_level
        view = auto_view(args.store, source, box_fraction=_box_fraction(args),
                         resolution=level_options["resolution"], dtype=level_options["dtype"],
                         force=args.force)
        kind = "auto"
    else:
        current = view_of(store.open_level(root, deepest(args.store)), cfg)
        if args.box:
            view = zoom.box_view(current, x=args.box[:2], y=args.box[2:], log10=args.log10)
        else:
            if not args.width or len(args.width) > 2:
                raise ConfigError("--centre needs --width W (both axes) or --width WX WY")
            width = args.width[0] if len(args.width) == 1 else tuple(args.width)
            view = zoom.centre_view(current, centre=tuple(args.centre), width=width,
                                    log10=args.log10)
        kind = "zoom"
    index, report = zoom_to(args.store, view, kind=kind, **level_options, **execution)
    _report(args.store, report, index)
    print(f"level {index}: x {view['x'].lo} .. {view['x'].hi}, y {view['y'].lo} .. "
          f"{view['y'].hi}")
    return 0


def cmd_ladder(args) -> int:
    from . import store
    from .dive import deepest, ladder

    execution = _execution(args)
    level = deepest(args.store) if args.level is None else args.level
    indices = ladder(args.store, level, widest=args.widest, **execution)
    root = store.open_root(args.store)
    reused = sum(store.open_level(root, i).group.attrs["reused_pixels"] for i in indices)
    print(f"{args.store}: ladder of {len(indices)} levels {indices} (widest first); "
          f"{reused} pixels copied from narrower levels, not recomputed")
    return 0


def cmd_dive(args) -> int:
    from .dive import dive

    execution = _execution(args)
    cfg, path = _job(args)
    if args.decades <= 0:
        raise ConfigError(f"--decades {args.decades}: expected a number > 0")
    indices = dive(path, cfg, args.decades, box_fraction=_box_fraction(args), **execution)
    print(f"{path}: keyframe ladder of {len(indices)} levels {indices} (widest first); "
          f"animate it with: fractalsweep animate {path} --out zoom.mp4")
    return 0


def cmd_explore(args) -> int:
    from .explore import explore

    explore(args.store, level=args.level, execution={**_execution(args), "progress": False})
    return 0


def cmd_animate(args) -> int:
    from .animate import animate

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size {args.size!r}: expected WIDTHxHEIGHT, e.g. 512x512") from None
    try:
        result = animate(args.store, args.out, fps=args.fps,
                         frames_per_octave=args.frames_per_octave, size=(width, height),
                         cmap=args.cmap, zoom=args.zoom, ease=not args.no_ease,
                         overlay=args.overlay, progress=not args.quiet, codec=args.codec)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    print(f"wrote {result['path']}: {result['frames']} frames, {result['size'][0]}x"
          f"{result['size'][1]}, {result['codec']}, {result['seconds']:.1f} s of video from "
          f"levels {result['levels']} in {result['elapsed']:.1f} s")
    return 0


def _default_png(path: str, level: int | None = None) -> str:
    """``<store stem>[-L<level>].png`` next to a local store, in the working directory for URLs."""
    store = Path(path.rstrip("/").split("://")[-1])
    base = store.parent / store.stem if "://" not in path else Path(store.stem)
    return f"{base}{'' if level is None else f'-L{level}'}.png"


def _render(path: str, level: int, out: str, cmap: str) -> Path:
    from . import store
    from .render import render_png

    lvl = store.open_level(store.open_root(path), level)
    g = lvl.group
    view = g.attrs["view"]
    if not lvl.done.all():
        print(f"note: level {level} is incomplete ({int(lvl.done.sum())}/{lvl.done.size} "
              "tiles); missing pixels are white", file=sys.stderr)
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
    for name in store.level_indices(root):
        lvl = store.open_level(root, int(name))
        score = lvl.group["score"][:]
        attrs = lvl.group.attrs
        levels.append({"level": int(name), "view": attrs["view"],
                       "resolution": attrs["resolution"], "dtype": attrs["dtype"],
                       "preview": attrs["preview"], "kind": attrs["kind"],
                       "reused_pixels": attrs["reused_pixels"],
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
        preview = " PREVIEW" if lv["preview"] else ""
        print(f"level {lv['level']}   {lv['kind']}  {lv['resolution'][0]}x{lv['resolution'][1]}"
              f"  {lv['dtype']}{preview}  tiles {lv['tiles_done']}/{lv['tiles']}  converged "
              f"{lv['converged']}  diverged {lv['diverged']}  reused {lv['reused_pixels']}")
        print(f"          x: {x['label']} {x['lo']} .. {x['hi']} ({x['scale']})")
        print(f"          y: {y['label']} {y['lo']} .. {y['hi']} ({y['scale']})")
    return 0


def cmd_dimension(args) -> int:
    from .dimension import store_dimension

    try:
        result = store_dimension(args.store, levels=args.levels)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    pooled = sum(len(v) for v in result["slopes"].values())
    if pooled == 0:
        raise ConfigError(f"{args.store}: no boundary at two or more box sizes in levels "
                          f"{result['levels']}; nothing to measure")
    print(f"{args.store}: boundary dimension {result['dimension']:.3f} (median of {pooled} "
          f"local slopes over levels {result['levels']})")
    return 0


def cmd_status(args) -> int:
    from . import store
    from .status import format_status, level_status

    root = store.open_root(args.store)
    levels = [level_status(store.open_level(root, int(name)))
              for name in store.level_indices(root)]
    print(format_status(args.store, levels, store.read_lock(args.store)))
    return 0


def cmd_bench(args) -> int:
    from . import bench

    for name in ("pixels", "steps", "repeats", "group"):
        _positive(f"--{name}", getattr(args, name))
    job = apply_overrides(load_job(args.job) if args.job else bench.BASELINE, args.overrides)
    rows = bench.run(pixels=args.pixels, steps=args.steps, repeats=args.repeats, job=job,
                     group=args.group, dtypes=args.dtype or ("float64", "float32"),
                     methods=args.method or tuple(bench.METHODS), kernels=args.kernel or ("auto",))
    print(bench.table(rows))
    print(f"saved for cost estimates: {bench.save(rows)}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


COMMANDS = {"run": cmd_run, "zoom": cmd_zoom, "ladder": cmd_ladder, "dive": cmd_dive,
            "animate": cmd_animate, "explore": cmd_explore, "dimension": cmd_dimension,
            "status": cmd_status, "render": cmd_render,
            "info": cmd_info, "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        return _fail(str(exc))
    except SweepError as exc:
        return _fail(f"{exc} (finished tiles are kept; run the same command to resume)", 1)
    except KeyboardInterrupt:
        return _fail("interrupted; finished tiles are kept, run the same command to resume", 130)


if __name__ == "__main__":
    sys.exit(main())
