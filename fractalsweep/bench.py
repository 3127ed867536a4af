"""``fractalsweep bench``: network-steps per second of the kernel against the naive method.

The naive method is the published notebook's: a Python loop of per-step jitted, vmapped
calls that keeps every loss, scored at the end. Both run in the same process on the same
pixels, so their ratio is meaningful on a shared, noisy machine.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from . import config, kernel, score, streams
from .axes import hyper_for
from .grid import axis_values
from .optimizers import OPTIMIZERS


def _pixels(cfg, n: int):
    """``n`` pixels (rounded up to whole kernel groups) on the diagonal of the window."""
    n = -(-n // kernel.GROUP) * kernel.GROUP
    xs = axis_values(cfg.x, n, cfg.dtype)
    ys = axis_values(cfg.y, n, cfg.dtype)[::-1]
    return jnp.asarray(xs), jnp.asarray(ys.copy())


def naive(cfg, xs, ys, arrays) -> dict:
    """The published method: one jitted, vmapped step per Python iteration, every loss kept."""
    weights, data, batch_idx = kernel.prepare(cfg, arrays)
    step = kernel.make_step(cfg)
    opt = OPTIMIZERS[cfg.training.optimizer]

    def one(x, y, params, opt_state, idx):
        return step(params, opt_state, hyper_for(cfg, x, y), data, idx)

    batched = jax.jit(jax.vmap(one, in_axes=(0, 0, 0, 0, None)))
    init = jax.vmap(lambda x, y: tuple(
        w + s for w, s in zip(weights, hyper_for(cfg, x, y).init_shift)))
    params = init(xs, ys)
    opt_state = jax.vmap(opt.init)(params)
    losses = []
    for t in range(cfg.training.steps):
        idx = None if batch_idx is None else batch_idx[t]
        params, opt_state, loss = batched(xs, ys, params, opt_state, idx)
        losses.append(loss)
    return jax.vmap(score.from_losses)(jnp.stack(losses, axis=1))


def fused(cfg, xs, ys, arrays, early_exit: bool = True) -> dict:
    """The fractalsweep kernel on the same pixels."""
    weights, data, batch_idx = kernel.prepare(cfg, arrays)
    return kernel.compile_kernel(cfg, early_exit)(xs, ys, weights, data, batch_idx)


def fused_without_exit(cfg, xs, ys, arrays) -> dict:
    """The kernel training every network for every step (no early exit on NaN)."""
    return fused(cfg, xs, ys, arrays, early_exit=False)


METHODS = {"naive": naive, "kernel": fused, "kernel-no-exit": fused_without_exit}


def _rate(fn, cfg, xs, ys, arrays, repeats: int) -> float:
    """Best-of-``repeats`` network-steps per second, after one warm-up (compile) call."""
    jax.block_until_ready(fn(cfg, xs, ys, arrays))
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(cfg, xs, ys, arrays))
        best = min(best, time.perf_counter() - t)
    return len(xs) * cfg.training.steps / best


# The paper's baseline tile (science.md 8): tanh, full batch, learning rates of both layers.
BASELINE = {"x": {"lo": "13.29976231", "hi": "13.29978604"},
            "y": {"lo": "200.3582269", "hi": "200.3585844"}}


def run(pixels: int = 1024, steps: int = 100, repeats: int = 3, job: dict = BASELINE) -> list:
    """Measure every method in float64 and float32; returns one row per (dtype, method)."""
    rows = []
    with jax.enable_x64(True):
        rows += _measure(pixels, steps, repeats, job)
    return rows


def _measure(pixels, steps, repeats, job) -> list:
    rows = []
    for dtype in ("float64", "float32"):
        overrides = [f"dtype='{dtype}'", f"training.steps={steps}"]
        raw = config.apply_overrides(job, overrides)
        cfg = config.resolve(raw)
        arrays = streams.draw(cfg)
        xs, ys = _pixels(cfg, pixels)
        rates = {name: _rate(fn, cfg, xs, ys, arrays, repeats) for name, fn in METHODS.items()}
        rows += [{"dtype": dtype, "method": name, "net_steps_per_s": rate,
                  "ratio": rate / rates["naive"]} for name, rate in rates.items()]
    return rows


def table(rows: list[dict]) -> str:
    """The rows as an aligned text table."""
    lines = [f"{'dtype':8} {'method':15} {'net-steps/s':>12} {'vs naive':>9}"]
    lines += [f"{r['dtype']:8} {r['method']:15} {r['net_steps_per_s']:>12,.0f} {r['ratio']:>8.2f}x"
              for r in rows]
    return "\n".join(lines)


def cache_file() -> Path:
    """Where the last measured rates are kept, for cost estimates (``run --dry-run``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fractalsweep" / "bench.json"


def save(rows: list[dict]) -> Path:
    """Remember the measured rates together with the device they were measured on."""
    path = cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    device = jax.devices()[0]
    path.write_text(json.dumps({"device": str(device), "device_kind": device.device_kind,
                                "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                "rows": rows}, indent=2))
    return path


def saved_rate(dtype: str) -> tuple[float, str] | None:
    """The last measured kernel rate for ``dtype`` and the device it was measured on."""
    try:
        saved = json.loads(cache_file().read_text())
    except (OSError, json.JSONDecodeError):
        return None
    for row in saved["rows"]:
        if row["dtype"] == dtype and row["method"] == "kernel":
            return row["net_steps_per_s"], saved["device_kind"]
    return None
