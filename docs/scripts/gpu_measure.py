"""The GPU measurements of docs/performance.md, in one script for a short lease of a GPU.

Run in the repository's root on a machine whose JAX sees a GPU, one stage per process so
that a stage that fails or hangs (under ``timeout``) costs only itself:

    python docs/scripts/gpu_measure.py env agree ceilings --out DIR
    python docs/scripts/gpu_measure.py rates --out DIR
    python docs/scripts/gpu_measure.py variants --out DIR
    python docs/scripts/gpu_measure.py keyframe --out DIR --budget 60
    python docs/scripts/gpu_measure.py program --out DIR

Stages (each prints its table and appends JSON lines to ``DIR/gpu.jsonl``):

- ``env``: JAX's version and devices.
- ``ceilings``: the device's measured peaks: an 8192^3 matrix product per dtype at full
  precision, and a device-to-device copy.
- ``agree``: the baseline tile at 64 x 64 pixels, 300 steps, float64 and float32: the XLA
  and fused kernels on the GPU against the XLA kernel on the same machine's CPU (same
  class, score within 1e-9 / 1e-3 relative, same first non-finite step), and whether each
  GPU kernel repeats its bits run to run, with the pixels reversed and in groups of a quarter of the pixels.
- ``rates``: network-steps per second of the notebook's method, the XLA kernel and the
  fused kernel (65,536 pixels of the baseline tile, 100 steps, best of 3 after a warm-up),
  both dtypes, over several group sizes, and the fraction of :data:`PEAK` it achieves.
- ``keyframe``: the 4096 x 4096, 1000-step float64 keyframe of the baseline tile, timed on
  an evenly strided part of its pixels (every 4th row and column: 1024 x 1024, or every
  8th, 16th, 32nd where the measured rate says a larger part would take over ``--budget``
  seconds) and extrapolated to the whole keyframe; both kernels (or those of ``--kernel``)
  at their best group size.
- ``program``: the keyframe's window at 1024 x 1024 pixels through ``fractalsweep.run``
  on a local cluster of the machine's GPUs, with the tiles' kernel seconds against the
  wall, and the wait for the first tile.
- ``variants``: the fused kernel's launches (``fused.LAUNCH``: networks per program, data
  chunk, warps, pipelining stages, fused multiply-adds) of :data:`VARIANTS` (or ``--variant
  dtype:block,chunk,warps[,stages[,fma]]``) at the rates stage's size, each checked for the XLA
  kernel's classes on a sample; the keyframe stage then uses the fastest in float64.
- ``tanh``: what float64 ``tanh`` costs each kernel on the GPU: its rate (65,536 pixels,
  100 steps, no early exit) with XLA's/libdevice's ``tanh``, with the kernels' own
  (``elementary.tanh64``: the fused kernel's choice, ``fused.OWN``, clipped by a select;
  for the fused kernel also with the CPU kernel's clamp) and, for the fused kernel, with
  a clip in its place (no ``tanh`` at all: a bound on what any ``tanh`` could gain).
  ``--tanh xla`` or ``--tanh own`` makes the other stages of the process use that
  ``tanh`` in both kernels.
"""

import argparse
import contextlib
import dataclasses
import json
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from fractalsweep import bench, config, elementary, fused, kernel, models, streams
from fractalsweep.cost import flops_per_net_step
from fractalsweep.grid import axis_values, flat_pixels
from fractalsweep.models import full_precision

# Peak flop/s the fractions are taken against: an H100/H200 SXM's FP64 tensor-core rate
# (the vendor's datasheet; its float32 CUDA-core rate is about the same).
PEAK = 67e12
AGREE_RESOLUTION, AGREE_STEPS = 64, 300
RATE_PIXELS, RATE_STEPS = 65536, 100
GROUPS = (4096, 16384, 65536)
KEYFRAME_RESOLUTION, KEYFRAME_STEPS = 4096, 1000
CEILING_SIZE = 8192  # sides of the matrix product that measures the device's peak
STRIDES = (4, 8, 16, 32)  # the keyframe's timed part: every s-th row and column
# The fused kernel's launches to time, per dtype: (networks per program, examples per
# chunk, warps per program, pipelining stages (None: Pallas' default), fma), each dtype's
# own first. float64: with tanh in its GPU form (fused.Launch.fma: 31% fewer float64
# instructions in the loop by docs/scripts/fused_sass.py), at the own launch and at the
# next three (4 networks on 4 warps: 166 registers, but the fewest instructions per
# network-step), and at 3 stages. Tried before (docs/performance.md): float64 (8|4|2|1, 16, 4),
# (4|2, 16, 2), (4, 32, 4), (8, 32, 4), (4, 64, 4), (16, 16, 8), (1, 16, 2|1), (2, 16, 1|8),
# (1, 32, 4) with libdevice's tanh, (2, 16, 4, 3|2|1), (1, 16, 2, 1|3), (4, 16, 8, 1) with
# the own; float32 (8|4|2|16, 16, 4), (16|8, 16, 8), (8, 16, 2, 3|1), (16, 16, 2|1).
VARIANTS = {
    "float64": ((2, 16, 4, 1, False), (2, 16, 4, 1, True), (1, 16, 2, 1, True),
                (4, 16, 8, 1, True), (4, 16, 4, 1, True), (2, 16, 4, None, True)),
    "float32": ((8, 16, 2, 1, False),),
}

START = time.perf_counter()


def emit(out: Path, **row) -> None:
    row["elapsed_s"] = round(time.perf_counter() - START, 1)
    print(json.dumps(row), flush=True)
    with open(out / "gpu.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


def _error(exc: Exception) -> str:
    """A failure as a row's ``error`` field: one failing kernel or size is a finding."""
    return f"{type(exc).__name__}: {exc}"[:2000]


def _rows(out: Path) -> list[dict]:
    """The rows the earlier stages wrote to ``out``."""
    path = out / "gpu.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def baseline(dtype: str, steps: int, resolution: int | None = None):
    overrides = [f"dtype='{dtype}'", f"training.steps={steps}"]
    if resolution:
        overrides.append(f"grid.resolution={resolution}")
    cfg = config.resolve(config.apply_overrides(bench.BASELINE, overrides))
    return cfg, streams.draw(cfg)


def env(out: Path, args) -> None:
    devices = [f"{d.platform}:{d.device_kind}" for d in jax.devices()]
    emit(out, stage="env", jax=jax.__version__, devices=devices)


def _compare(a: dict, b: dict, tol: float) -> dict:
    """Agreement of two kernels' outputs on the same pixels."""
    sa, sb = a["score"], b["score"]
    both = np.isfinite(sa) & np.isfinite(sb)
    rel = np.abs(sa - sb)[both] / np.maximum(np.abs(sb[both]), 1e-300)
    return {"same_class": float(np.mean(np.signbit(sa) == np.signbit(sb))),
            "both_finite": float(both.mean()),
            "within_tol": float(np.mean(rel <= tol)) if rel.size else None,
            "rel_median": float(np.median(rel)) if rel.size else None,
            "same_first_nonfinite": float(np.mean(a["first_nonfinite"] == b["first_nonfinite"]))}


def _bits(a: dict, b: dict) -> bool:
    return all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)


def agree(out: Path, args) -> None:
    for dtype, tol in (("float64", 1e-9), ("float32", 1e-3)):
        cfg, arrays = baseline(dtype, AGREE_STEPS)
        px, py = flat_pixels(axis_values(cfg.x, AGREE_RESOLUTION, dtype),
                             axis_values(cfg.y, AGREE_RESOLUTION, dtype))
        with jax.default_device(jax.devices("cpu")[0]):
            cpu = kernel.train(cfg, arrays, px, py, kernel="xla", group=256)
        for backend in ("xla", "pallas"):
            try:
                start = time.perf_counter()
                first = kernel.train(cfg, arrays, px, py, kernel=backend)
                compile_s = time.perf_counter() - start
                again = kernel.train(cfg, arrays, px, py, kernel=backend)
                rev = kernel.train(cfg, arrays, px[::-1], py[::-1], kernel=backend)
                small = kernel.train(cfg, arrays, px, py, kernel=backend, group=px.size // 4)
            except Exception as exc:  # noqa: BLE001 -- reported as the row's result
                emit(out, stage="agree", dtype=dtype, backend=backend, error=_error(exc))
                continue
            emit(out, stage="agree", dtype=dtype, backend=backend, first_call_s=compile_s,
                 vs_cpu_xla=_compare(first, cpu, tol), repeats_bits=_bits(first, again),
                 reversed_bits=_bits(first, {k: v[::-1] for k, v in rev.items()}),
                 quarter_group_bits=_bits(first, small),
                 converged=float(np.mean(first["score"] < 0)))


def _rate_row(out, cfg, arrays, method, backend, group, xs, ys, **extra):
    fn = bench.METHODS[method]
    kwargs = {} if backend is None else {"kernel": backend}
    try:
        with jax.enable_x64(True):
            wall, _ = bench._rate(lambda: fn(cfg, xs, ys, arrays, group, **kwargs),
                                  xs.size, cfg.training.steps, 3)
    except Exception as exc:  # noqa: BLE001 -- reported as the row's result
        emit(out, stage="rate", dtype=cfg.dtype, method=method, kernel=backend, group=group,
             error=_error(exc), **extra)
        return None
    emit(out, stage="rate", dtype=cfg.dtype, method=method, kernel=backend, group=group,
         net_steps_per_s=wall, peak_fraction=wall * flops_per_net_step(cfg) / PEAK, **extra)
    return wall


def rates(out: Path, args) -> None:
    for dtype in ("float64", "float32"):
        cfg, arrays = baseline(dtype, RATE_STEPS)
        xs, ys = bench._pixels(cfg, RATE_PIXELS)
        _rate_row(out, cfg, arrays, "naive", None, None, xs, ys)
        for backend in ("xla", "pallas"):
            for group in GROUPS:
                _rate_row(out, cfg, arrays, "kernel", backend, group, xs, ys)


def _best_groups(out: Path) -> dict:
    """The fastest ``(rate, group)`` per backend in float64, from the rates stage's rows."""
    best = {}
    for r in _rows(out):
        if (r.get("stage") == "rate" and r["dtype"] == "float64" and r.get("method") == "kernel"
                and r.get("net_steps_per_s")):
            best[r["backend"]] = max(best.get(r["backend"], (0, 0)),
                                     (r["net_steps_per_s"], r["group"]))
    return best


def keyframe(out: Path, args) -> None:
    resolution, steps = KEYFRAME_RESOLUTION, KEYFRAME_STEPS
    cfg, arrays = baseline("float64", steps, resolution)
    xs, ys = axis_values(cfg.x, resolution, "float64"), axis_values(cfg.y, resolution, "float64")
    best, variant = _best_groups(out), _best_variant(out)
    if variant:
        _use(variant, "float64")
    for backend in args.kernel or ("pallas", "xla"):
        rate, group = best.get(backend, (None, GROUPS[-1]))
        stride = next((s for s in STRIDES if rate and (resolution // s) ** 2 * steps / rate
                       < args.budget), STRIDES[-1])
        px, py = flat_pixels(xs[::stride], ys[::stride])
        try:
            kernel.train(cfg, arrays, px[:group], py[:group], kernel=backend, group=group)
            start = time.perf_counter()
            res = kernel.train(cfg, arrays, px, py, kernel=backend, group=group)
            wall = time.perf_counter() - start
        except Exception as exc:  # noqa: BLE001 -- reported as the row's result
            emit(out, stage="keyframe", backend=backend, error=_error(exc))
            continue
        emit(out, stage="keyframe", kernel=backend, group=group,
             part=f"1 in {stride} rows and columns",
             variant=dataclasses.astuple(fused.LAUNCH["float64"])
             if backend == "pallas" else None, pixels=int(px.size),
             steps=steps, wall_s=wall, net_steps_per_s=px.size * steps / wall,
             keyframe_min=wall * stride**2 / 60, converged=float(np.mean(res["score"] < 0)))


def _use(variant, dtype: str) -> None:
    fused.LAUNCH = {**fused.LAUNCH, dtype: fused.Launch(*variant)}
    fused.compile_kernel.cache_clear()


def _given_variants(given: list[str]) -> dict:
    """``--variant dtype:block,chunk,warps[,stages[,fma]]`` options as :data:`VARIANTS`' form."""
    chosen = {}
    for text in given:
        dtype, numbers = text.split(":")
        # stages "none": Pallas' default; fma 0 or 1
        chosen.setdefault(dtype, []).append(tuple(None if n == "none" else int(n)
                                                  for n in numbers.split(",")))
    return chosen


def variants(out: Path, args) -> None:
    group = _best_groups(out).get("pallas", (None, GROUPS[-1]))[1]
    tried = _given_variants(args.variant) if args.variant else VARIANTS
    for dtype, chosen in tried.items():
        cfg, arrays = baseline(dtype, RATE_STEPS)
        xs, ys = bench._pixels(cfg, RATE_PIXELS)
        check = slice(0, RATE_PIXELS, 16)  # a sample whose classes each variant must keep
        xla = kernel.train(cfg, arrays, xs[check], ys[check], kernel="xla")
        for variant in chosen:
            _use(variant, dtype)
            try:
                same = _compare(kernel.train(cfg, arrays, xs[check], ys[check],
                                             kernel="pallas"), xla, 0)["same_class"]
            except Exception as exc:  # noqa: BLE001 -- reported as the row's result
                emit(out, stage="rate", dtype=dtype, variant=variant, error=_error(exc))
                continue
            _rate_row(out, cfg, arrays, "kernel", "pallas", group, xs, ys, variant=variant,
                      same_class_as_xla=same)


def _best_variant(out: Path):
    """The fastest float64 variant of the fused kernel that kept the XLA kernel's classes
    (all but 0.1% of its sample), from the variants stage's rows."""
    tried = [r for r in _rows(out) if r.get("stage") == "rate" and r.get("variant")
             and r["dtype"] == "float64" and r.get("net_steps_per_s")
             and r.get("same_class_as_xla", 0) >= 0.999]
    return tuple(max(tried, key=lambda r: r["net_steps_per_s"])["variant"]) if tried else None


def ceilings(out: Path, args) -> None:
    """The device's measured ceilings: a large matrix product per dtype, at full precision,
    and a device-to-device copy (bytes read plus written), median of 5 after a warm-up."""
    def median_time(fn, *a):
        jax.block_until_ready(fn(*a))
        times = []
        for _ in range(5):
            start = time.perf_counter()
            jax.block_until_ready(fn(*a))
            times.append(time.perf_counter() - start)
        return float(np.median(times))

    n = CEILING_SIZE
    with jax.enable_x64(True):
        for dtype in ("float64", "float32"):
            a, b = jax.random.normal(jax.random.key(0), (2, n, n), dtype)
            t = median_time(jax.jit(full_precision(jnp.dot)), a, b)
            emit(out, stage="ceiling", what=f"{dtype} {n}^3 matrix product",
                 tflop_per_s=2 * n**3 / t / 1e12)
        x = jax.random.normal(jax.random.key(1), (2**28,), "float64")
        t = median_time(jax.jit(lambda v: v * 2.0), x)
        emit(out, stage="ceiling", what="copy (x * 2, float64, 2 GiB)",
             tb_per_s=2 * x.nbytes / t / 1e12)


def program(out: Path, args) -> None:
    """The keyframe's window at 1024 x 1024 through ``fractalsweep.run`` (a local cluster,
    one worker per GPU), with where its time went: the tiles' kernel seconds (a first
    compile included), the wait for the first tile (cluster start, the worker's JAX start,
    the compile) and the rest."""
    import datetime
    import tempfile

    import fractalsweep as fs

    job = {**bench.BASELINE, "training": {"steps": KEYFRAME_STEPS}, "grid": {"resolution": 1024}}
    with tempfile.TemporaryDirectory() as tmp:
        begun = datetime.datetime.now(datetime.UTC)
        start = time.perf_counter()
        report = fs.run(job, f"{tmp}/s.zarr", progress=False).report
        wall = time.perf_counter() - start
    tiles = report.summaries
    finished = sorted(datetime.datetime.fromisoformat(t["finished"]) for t in tiles)
    kernel_s = [t["seconds"] for t in tiles]
    emit(out, stage="program", pixels=sum(t["pixels"] for t in tiles), tiles=len(tiles),
         steps=KEYFRAME_STEPS, wall_s=wall, report_s=report.seconds, kernel_s=sum(kernel_s),
         kernel_s_median=float(np.median(kernel_s)), kernel_s_max=max(kernel_s),
         first_tile_after_s=(finished[0] - begun).total_seconds(),
         last_tile_after_s=(finished[-1] - begun).total_seconds(),
         converged=sum(t["converged"] for t in tiles) / sum(t["pixels"] for t in tiles),
         devices=sorted({t["device_kind"] for t in tiles}))


# float64 tanh per kernel: (the fused kernel's, the XLA kernel's; None: the XLA kernel's
# default, XLA's own on a GPU)
TANHS = {"xla": (jnp.tanh, None), "own": (fused.OWN[("tanh", "float64")], elementary.tanh64),
         "own, clamped": (elementary.tanh64, None),
         "none (a clip)": (lambda u: jnp.clip(u, -1.0, 1.0), None)}


@contextlib.contextmanager
def _tanh(fused_fn, own):
    """Both kernels with ``fused_fn`` as the fused kernel's float64 ``tanh`` and ``own`` as
    the XLA kernel's, their compiled kernels forgotten."""
    saved, saved_own = models.ACTIVATIONS["tanh"], fused.OWN
    models.ACTIVATIONS["tanh"] = dataclasses.replace(saved, own=own or saved.own)
    fused.OWN = {**saved_own, ("tanh", "float64"): fused_fn}
    fused.compile_kernel.cache_clear()
    kernel.compile_kernel.cache_clear()
    try:
        yield
    finally:
        models.ACTIVATIONS["tanh"], fused.OWN = saved, saved_own
        fused.compile_kernel.cache_clear()
        kernel.compile_kernel.cache_clear()


def tanh(out: Path, args) -> None:
    cfg, arrays = baseline("float64", RATE_STEPS)
    xs, ys = bench._pixels(cfg, RATE_PIXELS)
    group = GROUPS[1]
    for backend in ("pallas", "xla"):
        for name, (fused_fn, own) in TANHS.items():
            if backend == "xla" and own is None and name != "xla":
                continue
            with _tanh(fused_fn, own), jax.enable_x64(True):
                try:
                    wall, _ = bench._rate(partial(kernel.train, cfg, arrays, xs, ys,
                                                  group=group, early_exit=False,
                                                  kernel=backend),
                                          xs.size, cfg.training.steps, 3)
                except Exception as exc:  # noqa: BLE001 -- reported as the row's result
                    emit(out, stage="tanh", backend=backend, tanh=name, error=_error(exc))
                    continue
            emit(out, stage="tanh", backend=backend, tanh=name, group=group,
                 net_steps_per_s=wall)


STAGES = {"env": env, "agree": agree, "ceilings": ceilings, "rates": rates,
          "variants": variants, "keyframe": keyframe, "program": program, "tanh": tanh}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="+", choices=STAGES)
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--budget", type=float, default=60.0,
                        help="seconds the keyframe's timed part may take per kernel")
    parser.add_argument("--kernel", action="append", choices=("pallas", "xla"),
                        help="the keyframe stage's kernels (default: both)")
    parser.add_argument("--variant", action="append", default=[],
                        help="a fused-kernel launch to try, dtype:block,chunk,warps[,stages[,fma]]")
    parser.add_argument("--tanh", choices=tuple(TANHS)[:2],
                        help="the float64 tanh of both kernels in the other stages "
                             "(default: the kernels' own choice)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with _tanh(*TANHS[args.tanh]) if args.tanh else contextlib.nullcontext():
        for stage in args.stages:
            STAGES[stage](args.out, args)


if __name__ == "__main__":
    main()
