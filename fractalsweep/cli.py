"""The ``fractalsweep`` command line: a thin layer over the Python API (:mod:`fractalsweep.api`).

Every expected failure (bad job, bad option, a store of another config) ends with one line
on stderr and exit status 2; a failed tile ends with exit status 1. No tracebacks.
"""

from __future__ import annotations

import _thread
import argparse
import gc
import json
import os
import signal
import sys
import threading
from pathlib import Path

from . import api
from .cluster import use_compile_cache
from .decimals import readable
from .errors import ConfigError, PrecisionError, SweepError
from .execution import Execution
from .files import NotWritten, written_whole
from .store import check_location

EPILOG = "Documentation: docs/cli.md. Job file keys: docs/jobs.md."


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line like every other error (no usage block)."""

    def error(self, message: str):
        command = self.prog.partition(" ")[2]
        print(f"fractalsweep: error: {command + ': ' if command else ''}{message} "
              f"(see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def _add_overrides(parser, what: str = "a job setting") -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE",
                        help=f"override {what}, e.g. --set grid.resolution=64 (repeatable)")


def _add_picture(parser, what: str) -> None:
    parser.add_argument("--png", metavar="FILE", help=f"picture to write when done "
                                                      f"(default: {what})")
    parser.add_argument("--no-render", action="store_true", help="do not write a picture")


def _add_level_options(parser) -> None:
    parser.add_argument("--resolution", type=int, nargs="+", metavar="N",
                        help="pixels per side of the new level, or NX NY (default: the job's)")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--float32-preview", action="store_true",
                           help="compute the level in float32: cheap, shallow, marked as preview")
    precision.add_argument("--double-double", action="store_true",
                           help="compute the level in double-double (about 32 digits): zooms "
                                "far deeper than float64, at about 80 times the cost")
    parser.add_argument("--force", action="store_true",
                        help="zoom even where the dtype cannot keep neighbouring pixels apart")


def _execution_parser() -> argparse.ArgumentParser:
    execution = _Parser(add_help=False)
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
    execution.add_argument("--kernel", choices=("auto", "xla", "pallas"), default="auto",
                           help="the kernel that trains the networks: auto (default) takes the "
                                "fused Pallas kernel on a GPU where it supports the config")
    execution.add_argument("--no-limits", action="store_true",
                           help="compute a new level even beyond this machine's disk, memory "
                                "or the file limit (default: refuse it with the estimate)")
    execution.add_argument("--tile-timeout", type=float, metavar="S",
                           help="restart a worker that finishes no tile for S seconds "
                                "(default: 10x the slowest tile, at least 600)")
    execution.add_argument("--quiet", action="store_true",
                           help="no progress bar, no dashboard link")
    return execution


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    p = _Parser(
        prog="fractalsweep",
        description="Map where training of a tiny network converges or diverges over two "
                    "hyperparameters; store every pixel in zarr and render the fractal boundary.",
        epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"fractalsweep {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    execution = _execution_parser()

    run = sub.add_parser("run", parents=[execution], help="compute a sweep (resumes an existing store)",
                         description="Compute every missing tile of a job's sweep, then render "
                                     "it. Running the same command again resumes.")
    run.add_argument("job", help="TOML job file (see jobs/)")
    run.add_argument("--store", help="zarr store to write (default: ./<job file stem>.zarr)")
    _add_overrides(run)
    run.add_argument("--dry-run", action="store_true",
                     help="print the worker job script and the cost estimate; submit nothing")
    run.add_argument("--force", action="store_true",
                     help="compute a job window whose neighbouring pixels its dtype cannot "
                          "keep apart")
    _add_picture(run, "<store stem>.png next to the store")

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
                      help="the level the new window is taken from (default: the deepest)")
    zoom.add_argument("--box-fraction", type=float, metavar="F",
                      help="--auto zooms by this factor per axis (default 0.25)")
    _add_level_options(zoom)
    _add_picture(zoom, "<store stem>-L<level>.png next to the store")

    ladder = sub.add_parser("ladder", parents=[execution],
                            help="fill in the keyframe ladder above a level",
                            description="Levels sharing a level's centre, each twice as wide, "
                                        "up to a width; pixels shared with the next narrower "
                                        "level are copied, not recomputed.")
    ladder.add_argument("store")
    ladder.add_argument("--level", type=int, metavar="L",
                        help="the deep level (default: the deepest)")
    ladder.add_argument("--widest", type=float, metavar="DECADES",
                        help="stop when the widest level spans this many decades (default 6; "
                             "with two linear axes, when it is as wide as level 0)")
    _add_picture(ladder, "<store stem>-ladder.png: every keyframe, widest first")

    dive = sub.add_parser("dive", parents=[execution],
                          help="unattended deep zoom: overview, auto-zooms, ladder",
                          description="Compute the job's overview, auto-target and zoom until "
                                      "--decades of zoom, then fill in the keyframe ladder up to "
                                      "the overview. Re-run the same command to resume.")
    dive.add_argument("job")
    dive.add_argument("--decades", type=float, required=True,
                      help="how deep to go, in decades of zoom")
    dive.add_argument("--store", help="zarr store (default: ./<job file stem>.zarr)")
    _add_overrides(dive)
    dive.add_argument("--box-fraction", type=float, metavar="F",
                      help="zoom factor per auto step and axis (default 0.25)")
    _add_picture(dive, "<store stem>-ladder.png: every keyframe, widest first")

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

    serve = sub.add_parser("serve", parents=[execution],
                           help="web explorer: zoom from a browser (over an SSH tunnel)",
                           description="Serve a web page on a store's levels: drag a box or "
                                       "scroll to zoom, and the new level is computed where "
                                       "the execution options say and drawn as its tiles "
                                       "land. Binds to 127.0.0.1; reach it from your own "
                                       "machine with ssh -L PORT:localhost:PORT HOST. "
                                       "See docs/explore.md.")
    serve.add_argument("store")
    serve.add_argument("--port", type=int, default=8050, help="port to listen on (default 8050)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only)")

    animate = sub.add_parser("animate", help="export the zoom across the ladder as MP4 or GIF",
                             description="A smooth exponential zoom across a store's keyframe "
                                         "ladder, or (--over steps) a level's score snapshots "
                                         "as training proceeds, streamed to ffmpeg (H.264 "
                                         "MP4, or GIF).")
    animate.add_argument("store")
    animate.add_argument("--out", required=True, metavar="FILE", help=".mp4, .mov, .mkv or .gif")
    animate.add_argument("--fps", type=int, default=30, help="frames per second (default 30)")
    animate.add_argument("--over", choices=("zoom", "steps"), default="zoom",
                         help="zoom (default): through the keyframe ladder; steps: through the "
                              "score snapshots of --level (measures.snapshots)")
    animate.add_argument("--level", type=int, metavar="L",
                         help="with --over steps: the level (default 0)")
    animate.add_argument("--frames-per-octave", type=int, default=45, metavar="N",
                         help="frames per factor-2 zoom; with --over steps, from one snapshot "
                              "to the next (default 45)")
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
                            description="Draw a level with the paper's colouring, axis labels, "
                                        "end ticks and a colour legend.")
    render.add_argument("store", help="zarr store written by 'fractalsweep run'")
    render.add_argument("--level", type=int, default=0, help="level to draw (default 0)")
    render.add_argument("--out", metavar="FILE", help="PNG to write (default: <store>-L<level>"
                                                       ".png, -L<level>-<array>.png for an array "
                                                       "other than the score)")
    render.add_argument("--array", default="score", metavar="NAME",
                        help="the per-pixel array to draw (default score; 'fractalsweep info' "
                             "lists a level's arrays): converged_fraction, lyapunov, "
                             "score_at_<steps>, ...")
    render.add_argument("--cmap",
                        help="for a score: 'paper' (default), 'classes' (converged/diverged/"
                             "boundary) or any matplotlib colormap name; for another array a "
                             "colormap name (default: the array's own, e.g. cividis for "
                             "converged_fraction, berlin centred at 0 for lyapunov)")

    dimension = sub.add_parser("dimension", help="fractal dimension of a zoom's boundary",
                               description="Box-counting dimension of the boundary "
                                           "(docs/science.md, section 10) pooled over the "
                                           "keyframe ladder (or the given levels), with an "
                                           "interval and the box sizes fitted. Methods: "
                                           "docs/dimension.md.")
    dimension.add_argument("store")
    dimension.add_argument("--levels", type=int, nargs="+", metavar="L",
                           help="levels to pool (default: the keyframe ladder)")
    dimension.add_argument("--method", choices=["sliding", "paper"], default="sliding",
                           help="'sliding' (default): counts averaged over all grid placements, "
                                "least-squares slope over 16 px to 1/8 of the image; 'paper': "
                                "the paper's median of local slopes")
    dimension.add_argument("--confidence", type=float, default=0.95, metavar="C",
                           help="confidence level of the interval (default 0.95)")
    dimension.add_argument("--plot", metavar="FILE",
                           help="also write the log-log plot of the box counts (.png, .pdf, ...)")
    dimension.add_argument("--json", action="store_true",
                           help="print the whole result: sizes, counts and slopes per level")
    dimension.add_argument("--level-set", metavar="ARRAY=VALUE", default="score=0",
                           help="measure the boundary between the pixels where a per-pixel "
                                "array is below VALUE and those at or above it, e.g. "
                                "converged_fraction=0.5 (default score=0: the trainability "
                                "boundary)")

    audit = sub.add_parser("audit", parents=[execution],
                           help="recompute pixels one precision up: which classes flip?",
                           description="Recompute a sample of a level's pixels in the next "
                                       "precision (float32 to float64, float64 to "
                                       "double-double) and count the pixels whose class "
                                       "flips; the level keeps the map (docs/precision.md).")
    audit.add_argument("store")
    audit.add_argument("--level", type=int, metavar="L", help="level (default: the deepest)")
    how_many = audit.add_mutually_exclusive_group()
    how_many.add_argument("--sample", type=int, default=256, metavar="N",
                          help="pixels to recompute, drawn at random (default 256)")
    how_many.add_argument("--all", action="store_true", help="recompute every pixel")
    audit.add_argument("--against", choices=("float32", "float64", "double-double"),
                       help="the dtype to compare with (default: the next one up)")
    audit.add_argument("--png", metavar="FILE",
                       help="map of the flipped pixels (default: <store stem>-L<level>-audit.png)")

    verify = sub.add_parser("verify", help="check every chunk of a store; --repair what is damaged",
                            description="Read every chunk of every level (checksums), check "
                                        "that every finished tile has all its data and its "
                                        "provenance, the coordinates against each window, "
                                        "and the root metadata. One line per problem; exit "
                                        "status 1 if any. --repair unmarks damaged tiles so "
                                        "that 'fractalsweep resume' recomputes exactly those.")
    verify.add_argument("store")
    verify.add_argument("--repair", action="store_true",
                        help="make damaged parts recomputable (holds the store's lock)")

    resume = sub.add_parser("resume", parents=[execution],
                            help="compute the missing tiles of every level of a store",
                            description="Finish every incomplete level of a store (after a "
                                        "crash, or after 'verify --repair'), with the store's "
                                        "own configuration; nothing else is added.")
    resume.add_argument("store")

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
                                       "published per-step method, in float64 and float32 "
                                       "(double-double on request), "
                                       "measured in the same process, per wall second and "
                                       "per CPU second; on a CPU, on one core, as one "
                                       "worker trains.")
    bench.add_argument("--pixels", type=int,
                       help="networks trained (default 1024, or one whole kernel call where a "
                            "call holds more: 16384 on a GPU; in double-double 64, or 1024 "
                            "on a GPU)")
    bench.add_argument("--group", type=int, help="kernel networks per call (default: chosen "
                                                 "for the device)")
    bench.add_argument("--dtype", choices=("float64", "float32", "double-double"),
                       action="append", help="measure this dtype (repeatable; default float64 "
                                             "and float32; double-double: the kernel methods "
                                             "only, 64 pixels (1024 on a GPU) unless "
                                             "--pixels)")
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


def _execution(args) -> Execution:
    """Where and how to compute, from the shared options."""
    gpus = None if args.gpus is None else () if args.gpus == "none" else args.gpus.split(",")
    return Execution(scheduler=args.scheduler, scheduler_file=args.scheduler_file,
                     cluster=args.cluster, workers=args.workers, gpus=gpus,
                     mem_fraction=args.gpu_mem_fraction, tile=args.tile, kernel=args.kernel,
                     limits=not args.no_limits, tile_timeout=args.tile_timeout)


def _store_path(args, cfg) -> str:
    if args.store is not None and not args.store.strip():
        raise ConfigError("--store '': give a path, or leave --store out for "
                          f"{api.default_store(args.job, cfg)}")
    path = args.store or api.default_store(args.job, cfg)
    check_location(path)  # a dry run, too, names a filesystem that is not installed
    return path


def _box_fraction(args) -> float | None:
    """Checked before any work starts (a dive would otherwise compute its overview first);
    None where not given: the API's default."""
    if args.box_fraction is not None and not 0 < args.box_fraction < 1:
        raise ConfigError(f"--box-fraction {args.box_fraction}: expected 0 < F < 1")
    return args.box_fraction


def _incomplete_note(level: api.Level) -> None:
    if not level.complete:
        print(f"note: level {level.index} is incomplete ({level.tiles_done}/{level.tiles} "
              "tiles); missing pixels are white", file=sys.stderr)


def _unfinished_note(store: api.Store) -> None:
    """Say which levels the ladder (of animate, dimension) leaves out for being unfinished."""
    unfinished = [str(level.index) for level in store.levels if not level.complete]
    if unfinished:
        print(f"note: level{'s' * (len(unfinished) > 1)} {', '.join(unfinished)} not finished, "
              f"so not in the ladder; 'fractalsweep resume {store.path}' finishes them",
              file=sys.stderr)


def _output(path: str | None, option: str, picture: bool = True) -> None:
    """Refuse, before any work, a file that cannot be written (:func:`render.output_path`)."""
    if path is not None:
        from .render import output_path

        output_path(path, option, picture)


def _picture(args, level: api.Level, default: str | None = None) -> None:
    if args.no_render:
        return
    print(f"wrote {level.render(args.png or default)}")
    _incomplete_note(level)


def _ladder_picture(args, path: str, ladder: list[api.Level]) -> None:
    from .render import render_ladder

    if not args.no_render:
        print(f"wrote {render_ladder(ladder, args.png or api.default_png(path, '-ladder'))}")


def cmd_run(args) -> int:
    _output(args.png, "--png")
    execution = _execution(args)
    cfg = api.job_config(args.job, args.overrides)
    path = _store_path(args, cfg)
    if args.dry_run:
        from .cluster import check_gpus, job_script
        from .cost import estimate

        if execution.gpus:  # the run's preflight refuses them first; the rest of it asks the
            check_gpus(execution.gpus)  # network or the batch system, which a dry run does not
        if execution.cluster is not None:
            print(job_script(execution.cluster))
        print(f"store {path}: " + "\n".join(estimate(cfg, path, execution, args.force)))
        print("dry run: nothing submitted, nothing written")
        return 0
    store = api.run(cfg, path, execution=execution, progress=not args.quiet, force=args.force)
    print(f"{path} {store.report}")
    _picture(args, store.level(0), api.default_png(path))
    return 0


def _resolution(args):
    res = args.resolution
    if res is not None and len(res) not in (1, 2):
        raise ConfigError(f"--resolution {' '.join(map(str, res))}: expected N or NX NY")
    return None if res is None else (res[0], res[-1])


def cmd_zoom(args) -> int:
    _output(args.png, "--png")
    store = api.open(args.store, execution=_execution(args))
    if args.auto and args.log10:
        raise ConfigError("--log10 applies to --box and --centre; --auto finds its own window")
    if args.box_fraction is not None and not args.auto:
        raise ConfigError(f"--box-fraction {args.box_fraction} applies to --auto only")
    if args.width and not args.centre:
        raise ConfigError("--width goes with --centre; --box gives its bounds and --auto "
                          "zooms by --box-fraction")
    if args.centre and (not args.width or len(args.width) > 2):
        raise ConfigError("--centre needs --width W (both axes) or --width WX WY")
    box = {"x": args.box[:2], "y": args.box[2:]} if args.box else {}
    width = None if not args.width else args.width[0] if len(args.width) == 1 else args.width
    level = store.zoom(**box, centre=args.centre, width=width, auto=args.auto,
                       log10=args.log10, level=args.from_level,
                       box_fraction=_box_fraction(args), resolution=_resolution(args),
                       dtype=("float32" if args.float32_preview else
                              "double-double" if args.double_double else None),
                       force=args.force,
                       progress=not args.quiet)
    x, y = level.view["x"], level.view["y"]
    print(f"{args.store} {level.report}")
    print(f"level {level.index}: x {readable(x.lo)} .. {readable(x.hi)}, y {readable(y.lo)} .. "
          f"{readable(y.hi)}")
    _picture(args, level)
    return 0


def cmd_ladder(args) -> int:
    _output(args.png, "--png")
    store = api.open(args.store, execution=_execution(args))
    ladder = store.ladder(args.level, widest=args.widest, progress=not args.quiet)
    _ladder_line(args.store, ladder)
    _ladder_picture(args, args.store, ladder)
    return 0


def _ladder_line(path: str, ladder: list) -> None:
    """The closing line of ``ladder`` and ``dive``: the levels and the pixels they copied."""
    reused = sum(level.attrs["reused_pixels"] for level in ladder)
    print(f"{path}: keyframe ladder of {len(ladder)} levels {[lv.index for lv in ladder]} "
          f"(widest first); its levels hold {reused} pixels copied from narrower levels, not "
          f"computed again; animate it with: fractalsweep animate {path} --out zoom.mp4")


def cmd_dive(args) -> int:
    from .targets import BOX_FRACTION, box_steps

    _output(args.png, "--png")
    execution = _execution(args)
    cfg = api.job_config(args.job, args.overrides)
    path = _store_path(args, cfg)
    if not 0 < args.decades < float("inf"):
        raise ConfigError(f"--decades {args.decades}: expected a finite number > 0")
    box_fraction = _box_fraction(args)
    box_steps(*cfg.grid.resolution, box_fraction or BOX_FRACTION)  # before the overview
    with execution.session(not args.quiet) as session:  # one cluster for the whole dive
        try:
            overview = api.run(cfg, path, execution=session)
        except PrecisionError as exc:  # its advice, --force, is run's: the dive takes none
            raise PrecisionError(f"the job's window: {exc.reason}",
                                 "make its level with 'fractalsweep run --force' (the dive "
                                 "then resumes it), or use a coarser grid.resolution") from None
        ladder = overview.dive(args.decades, box_fraction=box_fraction)
    _ladder_line(path, ladder)
    _ladder_picture(args, path, ladder)
    return 0


def cmd_explore(args) -> int:
    api.open(args.store).explore(args.level, execution=_execution(args))
    return 0


def cmd_serve(args) -> int:
    from .serve import serve

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port}: expected 1 to 65535")
    serve(args.store, port=args.port, host=args.host, execution=_execution(args))
    return 0


def cmd_animate(args) -> int:
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size {args.size!r}: expected WIDTHxHEIGHT, e.g. 512x512") from None
    _output(args.out, "--out", picture=False)
    store = api.open(args.store)
    result = store.animate(
        args.out, fps=args.fps, frames_per_octave=args.frames_per_octave, size=(width, height),
        cmap=args.cmap, zoom=args.zoom, ease=not args.no_ease, overlay=args.overlay,
        progress=not args.quiet, codec=args.codec, over=args.over, level=args.level)
    if args.over != "steps":
        _unfinished_note(store)
    source = (f"level {result['levels'][0]} at steps {result['steps']}" if args.over == "steps"
              else f"levels {result['levels']}")
    print(f"wrote {result['path']}: {result['frames']} frames, {result['size'][0]}x"
          f"{result['size'][1]}, {result['codec']}, {result['seconds']:.1f} s of video from "
          f"{source} in {result['elapsed']:.1f} s")
    return 0


def cmd_render(args) -> int:
    _output(args.out, "--out")
    level = api.open(args.store).level(args.level)
    print(f"wrote {level.render(args.out, cmap=args.cmap, array=args.array)}")
    _incomplete_note(level)
    return 0


def cmd_info(args) -> int:
    from .summary import format_info

    info = api.open(args.store).info()
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def cmd_dimension(args) -> int:
    from math import isnan

    from .dimension import plot_dimension

    if not 0 < args.confidence < 1:
        raise ConfigError(f"--confidence {args.confidence}: expected 0 < C < 1")
    _output(args.plot, "--plot")
    array, _, value = args.level_set.partition("=")
    try:
        level_set = (array.strip(), float(value))
    except ValueError:
        raise ConfigError(f"--level-set {args.level_set!r}: expected ARRAY=VALUE, e.g. "
                          "converged_fraction=0.5") from None
    store = api.open(args.store)
    result = store.dimension(levels=args.levels, method=args.method,
                             confidence=args.confidence, level_set=level_set)
    if args.levels is None:
        _unfinished_note(store)
    if isnan(result.dimension):  # JSON too: NaN is not JSON, and there is nothing to plot
        raise ConfigError(f"{args.store}: no boundary of {result.level_set} at two or more "
                          f"fitted box sizes in levels {list(result.levels)}; nothing to measure")
    if args.plot:
        plot_dimension(result, args.plot)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0
    print(f"{args.store}: {result}")
    return 0


def cmd_audit(args) -> int:
    _positive("--sample", args.sample)
    _output(args.png, "--png")
    store = api.open(args.store, execution=_execution(args))
    level = store.deepest() if args.level is None else store.level(args.level)
    report = level.audit(None if args.all else args.sample, against=args.against,
                         progress=not args.quiet)
    print(f"{args.store} level {level.index}: {report['flipped']} of {report['pixels']} "
          f"pixels ({report['fraction']:.1%}) change class in {report['against']}")
    print(f"wrote {level.render_audit(args.png)}")
    return 0


def cmd_verify(args) -> int:
    store = api.Store(args.store)
    report = store.verify(repair=args.repair)  # even an unreadable root
    for line in report.notes:
        print(f"note: {line}", file=sys.stderr)
    for line in report.repaired:
        print(f"repaired: {line}")
    for problem in report.problems:
        print(problem)
    print(report)
    if report.repaired and _unfinished(store):  # not after rewriting coordinates or inputs
        print(f"recompute the unmarked tiles with: fractalsweep resume {args.store}")
    return 1 if report.problems else 0


def _unfinished(store: api.Store) -> bool:
    """Whether a level has tiles to compute (or cannot be read to tell)."""
    try:
        return not all(level.complete for level in store.levels)
    except ConfigError:
        return True


def cmd_resume(args) -> int:
    levels = api.open(args.store, execution=_execution(args)).resume(progress=not args.quiet)
    for level in levels:
        print(f"{args.store} {level.report}")
    if not levels:
        print(f"{args.store}: every level is complete; nothing to compute")
    return 0


def cmd_status(args) -> int:
    print(api.open(args.store).status())
    return 0


def cmd_bench(args) -> int:
    from . import bench, measurements
    from .config import apply_overrides, load_job

    for name in ("pixels", "steps", "repeats", "group"):
        _positive(f"--{name}", getattr(args, name))
    _output(args.json, "--json", picture=False)
    for item in args.overrides:  # it would be measured otherwise, and recorded as set
        key = item.partition("=")[0].strip()
        own = bench.OWN_KEYS.get(key) or bench.OWN_KEYS.get(key.split(".")[0])
        if own:
            raise ConfigError(f"bench: --set {item}: the bench sets {key} itself; use {own}")
    job = apply_overrides(load_job(args.job) if args.job else bench.BASELINE, args.overrides)
    rows = bench.run(pixels=args.pixels, steps=args.steps, repeats=args.repeats, job=job,
                     group=args.group, dtypes=args.dtype or ("float64", "float32"),
                     methods=args.method or tuple(bench.METHODS), kernels=args.kernel or ("auto",))
    print(bench.table(rows))
    saved = measurements.save(rows)
    if saved:
        print(f"saved for cost estimates: {saved}")
    else:
        how = ("only interpreted off a GPU" if any(r["method"] == "kernel" for r in rows)
               else "not")
        print(f"not saved for cost estimates: they scale from the kernel method's rate (with "
              f"its early exit, as a sweep trains), {how} measured here"
              + ("; the last saved stays" if measurements.cache_file().exists() else ""))
    if args.json:
        with written_whole(Path(args.json)) as partial:
            partial.write_text(json.dumps(rows, indent=2))
    return 0


COMMANDS = {"run": cmd_run, "zoom": cmd_zoom, "ladder": cmd_ladder, "dive": cmd_dive,
            "animate": cmd_animate, "explore": cmd_explore, "serve": cmd_serve,
            "dimension": cmd_dimension, "status": cmd_status, "render": cmd_render,
            "audit": cmd_audit, "verify": cmd_verify, "resume": cmd_resume,
            "info": cmd_info, "bench": cmd_bench}


def _terminated(signum, frame):
    raise KeyboardInterrupt  # a batch system's SIGTERM ends the run as Ctrl-C does: lock freed


REDELIVER_S = 0.01  # an interrupt Python swallowed is delivered again after this


def _unraisable(info) -> None:
    """The command's ``sys.unraisablehook``: a KeyboardInterrupt (Ctrl-C, or SIGTERM through
    :func:`_terminated`) that landed where Python cannot raise it (a garbage collector's
    callback, which JAX registers, a weakref callback, a ``__del__``) is not printed as
    ignored and lost, as it was (the interrupted run went on to its end, in about one run
    in five of the test that interrupts a starting cluster): it is delivered again a moment
    later, from another thread, until it lands where it ends the command. Anything else
    goes to Python's own hook."""
    if not isinstance(info.exc_value, KeyboardInterrupt):
        sys.__unraisablehook__(info)
        return
    again = threading.Timer(REDELIVER_S, _thread.interrupt_main)
    again.daemon = True  # never holds up the interpreter's exit
    again.start()


def main(argv: list[str] | None = None, *, own_process: bool = False) -> int:
    """Run the command ``argv`` (default: the process's arguments); return its exit status.

    ``own_process``: the process ends after this call (the ``fractalsweep`` command,
    :func:`command`), so Python's garbage collector stays off while the command makes its
    start (imports distributed, JAX and the rest: over 100,000 objects that live as long as
    the process), which is then frozen out of it (``gc.freeze``): its full passes, which go
    over every live object, see only what the command makes after. (Together with the
    freeze at exit, :func:`command`: 0.9 s less of a 1-step ``run``, 0.4 s of an ``info``,
    on the development machine, docs/performance.md.) It also takes Python's hook for
    exceptions it cannot raise, so that no Ctrl-C is lost (:func:`_unraisable`).
    """
    if own_process:
        gc.disable()
        sys.unraisablehook = _unraisable
    args = _parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)
    try:
        if "scheduler" in args:  # a command that computes: its workers start importing now
            _execution(args).prestart()
        use_compile_cache()
        if own_process:
            gc.freeze()
            gc.enable()
        status = COMMANDS[args.command](args)
        sys.stdout.flush()  # here, so that a reader gone away is caught below, not at exit
        return status
    except ConfigError as exc:
        return _fail(str(exc))
    except SweepError as exc:
        return _fail(f"{exc}" + (" (finished tiles are kept; run the same command to resume)"
                                 if exc.resumable else ""), 1)
    except KeyboardInterrupt:
        return _fail("interrupted" + _kept(args), 130)
    except BrokenPipeError:
        # The reader of our output left (``fractalsweep info --json | head``): not an error.
        # Point stdout at /dev/null so that Python's final flush does not complain again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # the machine, not the request: a full disk, a vanished folder
        where = f" ({exc.filename})" if exc.filename else ""
        return _fail(f"{exc.strerror or exc}{where}{_kept(args, exc)}", 1)


def _kept(args, failure: BaseException | None = None) -> str:
    """What an interrupted or failed command keeps: a command that computes, its tiles; an
    audit, nothing; either, all it computed when the picture it writes last is refused."""
    if isinstance(failure, NotWritten):
        return ("; what the command computed is kept, only this file is not written"
                if "scheduler" in args else "")
    if args.command == "audit":
        return "; the audit recorded nothing"
    return ("; finished tiles are kept, run the same command to resume" if "scheduler" in args
            else "")


def command() -> None:
    """The ``fractalsweep`` command, once its modules are imported
    (:func:`fractalsweep.__main__.command`: the console script, ``python -m fractalsweep``).

    Everything left is frozen before the interpreter exits (``gc.freeze``): its exit
    collections would otherwise go over every object once more, only for the process to
    end (0.7 s of a ``run`` on the development machine, docs/performance.md).
    """
    status = main(own_process=True)
    gc.freeze()
    sys.exit(status)
