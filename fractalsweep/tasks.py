"""Tasks: where the data come from, what loss is minimised, what else is measured.

A task draws its data once per store from the data key (docs/kernel.md, "Random streams")
and defines the loss of the network's output and its gradient; the kernel never sees
anything else, so a new task is one class added to :data:`TASKS`. Outputs and targets are
feature-major, ``(k, N)``: one column per example.

- ``random_regression``: the paper's pure-noise regression, X ~ N(0, 1), Y ~ N(0, 1), MSE.
- ``image_fit``: a network maps pixel coordinates in [-1, 1]^2 to an image's intensity
  (MSE), optionally through random Fourier features of the coordinates.
- ``digits``: classify scikit-learn's bundled 8x8 digits, softmax cross-entropy; the final
  training accuracy is a per-pixel output too.

Example
-------
>>> import numpy as np
>>> x, y = image_grid(2)
>>> x.tolist(), y.tolist()
([-0.5, 0.5, -0.5, 0.5], [-0.5, -0.5, 0.5, 0.5])
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from .errors import ConfigError

MANDELBROT_WINDOW = (-2.25, 0.75, -1.5, 1.5)  # re_lo, re_hi, im_lo, im_hi
MANDELBROT_ITERATIONS = 64
DIGITS = 1797  # examples in scikit-learn's bundled digits
CLASSES = 10


def _default(key: str):
    """The default of a ``[data]`` key (config imports this module, so not at import)."""
    from .config import DataConfig

    return getattr(DataConfig, key)


def resolve(data, given: set[str]):
    """``[data]`` checked and completed by its task; ``given``: the keys the job set. Keys
    that only another task reads are refused unless left at their defaults."""
    from .config import DataConfig, refuse_unread_keys

    refuse_unread_keys("data", data, DataConfig(), "data.task", data.task,
                       {name: task.keys for name, task in TASKS.items()})
    return TASKS[data.task].resolve(data, given)


def _fixed_dim(data, given: set[str], key: str, value: int, task: str):
    """Set ``data.<key>`` to the task's ``value``, refusing another explicit value (but for
    the key's default, which any task accepts)."""
    if key in given and getattr(data, key) not in (value, _default(key)):
        raise ConfigError(f"data.{key} = {getattr(data, key)!r}: data.task = {task!r} fixes it "
                          f"at {value}; remove the key")
    return dataclasses.replace(data, **{key: value})


def _mse(out, yt):
    return jnp.mean((out - yt) ** 2)


def _mse_grad(out, yt):
    return (2 / out.size) * (out - yt)


class Task:
    """What a task defines, with the defaults of a task that needs none: ``outputs``, its
    per-pixel measures besides the score (name: dtype and fill value) and ``measures``, which
    computes them; ``keys``, the ``[data]`` keys only it reads; ``resolve``, its checks of
    ``[data]``; ``size``, the number of examples; ``fixed_data``, why it draws no random
    data; ``check_sources``, whether its files can be read. Each task defines ``draw``,
    ``loss`` and ``loss_grad``."""

    outputs: ClassVar[dict] = {}
    keys: ClassVar[tuple[str, ...]] = ()

    def resolve(self, data, given: set[str]):
        return data

    def size(self, per_output: int) -> int:
        return per_output

    def measures(self, out, yt) -> dict:
        return {}

    def fixed_data(self, data) -> str | None:
        """Why ``data`` leaves nothing to the data key, as a phrase (an ensemble varying the
        data is refused with it); None when the data are random."""
        return None

    def check_sources(self, data) -> None:
        """Refuse data files that cannot be read, without drawing the data (a dry run's check:
        drawing may be huge)."""


class RandomRegression(Task):
    """Fit pure-noise targets: X ~ N(0, 1), Y ~ N(0, 1), MSE loss (the paper's task)."""

    loss, loss_grad = staticmethod(_mse), staticmethod(_mse_grad)

    def draw(self, cfg, key) -> dict:
        key, kx = jax.random.split(key)
        key, ky = jax.random.split(key)
        return {"X": jax.random.normal(kx, (cfg.n_data, cfg.input_dim), dtype=np.float64),
                "Y": jax.random.normal(ky, (cfg.n_data, cfg.data.target_dim), dtype=np.float64)}


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def image_grid(side: int) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates ``(x, y)`` of the centres of a ``side x side`` grid of cells over
    [-1, 1]^2, row-major from the bottom row (y = -1 side) up, x from left to right."""
    centres = (2 * np.arange(side) + 1) / side - 1
    x, y = np.meshgrid(centres, centres)
    return x.ravel(), y.ravel()


def mandelbrot(x, y, window=MANDELBROT_WINDOW, iterations: int = MANDELBROT_ITERATIONS):
    """The smooth escape-time value at ``c = re + i im``, ``(x, y)`` in [-1, 1]^2 mapped onto
    ``window``: ``n + 1 - log2(log|z_n|)`` at the first ``|z_n| > 2**8``, and ``iterations``
    for points that never escape (inside the set)."""
    re_lo, re_hi, im_lo, im_hi = window
    c = (re_lo + (np.asarray(x) + 1) / 2 * (re_hi - re_lo)
         + 1j * (im_lo + (np.asarray(y) + 1) / 2 * (im_hi - im_lo)))
    z = np.zeros_like(c)
    value = np.full(c.shape, float(iterations))
    alive = np.ones(c.shape, bool)
    for n in range(1, iterations + 1):  # z is z_n: z_0 = 0 is no step
        z[alive] = z[alive] ** 2 + c[alive]
        escaped = alive & (np.abs(z) > 2.0**8)
        value[escaped] = n + 1 - np.log2(np.log(np.abs(z[escaped])))
        alive &= ~escaped
    return value


def _grey_image(path: str):
    """The image file at ``path`` in grey levels, or a one-line error."""
    from PIL import Image

    try:
        return Image.open(Path(path).expanduser()).convert("L")
    except (OSError, Image.DecompressionBombError) as e:  # the latter: a huge declared size
        raise ConfigError(f"data.image = {path!r}: cannot read it as an image ({e})") from None


def _photo(source: str, side: int) -> np.ndarray:
    """A photo's 8-bit grey levels resized to ``side x side`` by PIL's box filter, bottom row
    first: each cell's average when ``side`` divides the image's sides, to within one grey
    level (PIL averages rows, then columns, rounding to 8 bits after each)."""
    from matplotlib import cbook
    from PIL import Image

    if source == "sample":
        with cbook.get_sample_data("grace_hopper.jpg") as f:
            image = Image.open(f).convert("L")
            image.load()
    else:
        image = _grey_image(source)
    grey = np.asarray(image.resize((side, side), Image.Resampling.BOX), dtype=np.float64)
    return grey[::-1].ravel() / 255.0  # image rows run top-down; the grid bottom-up


class ImageFit(Task):
    """Map pixel coordinates to an image's intensity, MSE loss.

    ``data.size`` points on a regular ``s x s`` grid of cell centres over [-1, 1]^2
    (:func:`image_grid`, ``s * s = size``); the targets are the image's intensity there,
    standardised to mean 0 and variance 1. ``data.image``: ``"mandelbrot"`` (the smooth
    escape time over :data:`MANDELBROT_WINDOW`, computed here), ``"sample"`` (the
    Grace Hopper photo shipped with matplotlib) or a path to an image file. With
    ``fourier_features = K`` the inputs are ``[cos(2 pi B v), sin(2 pi B v)]`` for the
    coordinates ``v`` and a random ``B`` of shape (K, 2) drawn N(0, fourier_scale**2).
    """

    keys = ("image", "fourier_features", "fourier_scale")
    loss, loss_grad = staticmethod(_mse), staticmethod(_mse_grad)

    def resolve(self, data, given: set[str]):
        image = data.image
        if not isinstance(image, str) or not (image in ("mandelbrot", "sample") or Path(
                image).suffix.lower() in IMAGE_SUFFIXES):
            raise ConfigError(f"data.image = {data.image!r}: expected mandelbrot, sample or the "
                              "path of an image file (.png, .jpg, ...)")
        if (isinstance(data.fourier_scale, bool) or not isinstance(
                data.fourier_scale, (int, float)) or not 0 < data.fourier_scale < math.inf):
            raise ConfigError(f"data.fourier_scale = {data.fourier_scale!r}: expected a finite "
                              "number > 0")
        if data.size != "params" and math.isqrt(data.size) ** 2 != data.size:
            side = math.isqrt(data.size)
            raise ConfigError(f"data.size = {data.size}: image_fit samples a square grid; use a "
                              f"square such as {side * side} or {(side + 1) ** 2}")
        data = _fixed_dim(data, given, "target_dim", 1, "image_fit")
        return _fixed_dim(data, given, "input_dim", 2 * data.fourier_features or 2, "image_fit")

    def size(self, per_output: int) -> int:
        return max(math.isqrt(per_output), 1) ** 2

    def draw(self, cfg, key) -> dict:
        side = math.isqrt(cfg.n_data)
        x, y = image_grid(side)
        image = cfg.data.image
        values = mandelbrot(x, y) if image == "mandelbrot" else _photo(image, side)
        values = (values - values.mean()) / (values.std() or 1.0)
        coords = np.stack([x, y], axis=1)
        if cfg.data.fourier_features:
            b = cfg.data.fourier_scale * jax.random.normal(
                key, (cfg.data.fourier_features, 2), dtype=np.float64)
            angles = 2 * np.pi * coords @ np.asarray(b).T
            coords = np.concatenate([np.cos(angles), np.sin(angles)], axis=1)
        return {"X": coords, "Y": values[:, None]}

    def fixed_data(self, data) -> str | None:
        return None if data.fourier_features else "without data.fourier_features"

    def check_sources(self, data) -> None:
        if data.image not in ("mandelbrot", "sample"):
            _grey_image(data.image)


def _log_softmax(out):
    m = jnp.max(out, axis=0, keepdims=True)
    shifted = out - m
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=0, keepdims=True))


class Digits(Task):
    """Classify scikit-learn's bundled 8x8 digits (no download): softmax cross-entropy.

    ``data.size`` examples drawn without replacement from the 1797 with the data key; the 64
    pixel values standardised with one mean and standard deviation, over all values of the
    whole set; the targets one-hot (10 outputs). The final training accuracy (fraction of
    examples whose largest output is the label, non-finite outputs counting as wrong) is
    stored per pixel.
    """

    outputs: ClassVar[dict] = {"accuracy": ("float64", np.nan)}

    def resolve(self, data, given: set[str]):
        if data.size != "params" and data.size > DIGITS:
            raise ConfigError(f"data.size = {data.size}: the digits set has {DIGITS} examples")
        data = _fixed_dim(data, given, "target_dim", CLASSES, "digits")
        return _fixed_dim(data, given, "input_dim", 64, "digits")

    def size(self, per_output: int) -> int:
        return min(per_output, DIGITS)

    def draw(self, cfg, key) -> dict:
        from sklearn.datasets import load_digits

        digits = load_digits()
        rows = np.asarray(jax.random.permutation(key, DIGITS))[:cfg.n_data]
        pixels = digits.data.astype(np.float64)
        x = (pixels[rows] - pixels.mean()) / pixels.std()
        return {"X": x, "Y": np.eye(CLASSES)[digits.target[rows]]}

    @staticmethod
    def loss(out, yt):
        return -jnp.mean(jnp.sum(yt * _log_softmax(out), axis=0))

    @staticmethod
    def loss_grad(out, yt):
        return (jnp.exp(_log_softmax(out)) - yt) / out.shape[1]

    def measures(self, out, yt) -> dict:
        right = (jnp.argmax(out, axis=0) == jnp.argmax(yt, axis=0)) & jnp.isfinite(out).all(0)
        return {"accuracy": jnp.mean(right.astype(out.dtype))}


TASKS = {"random_regression": RandomRegression(), "image_fit": ImageFit(), "digits": Digits()}
