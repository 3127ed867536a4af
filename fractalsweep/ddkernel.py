"""Training in double-double: the baseline networks with about 32 significant digits.

float64 keeps neighbouring pixels of a 4096-pixel level apart only down to windows about
1e-12 of their centre wide (docs/science.md, section 9). A level whose dtype is
``"double-double"`` trains every network in double-double arithmetic
(:mod:`fractalsweep.doubledouble`): hyperparameters, weights, activations, gradients and
updates are pairs of float64 holding about 32 digits, so zooms can go some 15 decades
deeper. Its pixels' coordinates are computed from the window's decimal bounds to the same
precision.

Supported: the paper's family and its extensions that need no new arithmetic: mean-field MLPs
of any width and depth without biases, activations tanh, relu and identity, random regression
with the MSE loss, full batch or minibatch, plain gradient descent, the axes ``lr``,
``lr_all``, ``offset`` and ``init_offset``. Anything else is refused with one line.

The arithmetic follows the float64 kernel step for step (loss recorded before the update,
the offset added at every step, the online score of docs/science.md, section 6, fed the
loss rounded to float64), so the two differ only by precision; tests/test_ddkernel.py checks
single networks against mpmath at 50 digits. One network-step costs about 80 times the
float64 kernel's (docs/precision.md).
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from functools import lru_cache, partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import doubledouble as dd
from . import score
from .axes import hyper_for, kinds_writing
from .errors import ConfigError
from .family import outside
from .grid import DOUBLE_DOUBLE
from .kernel import group_size, jit, kernel_config

__all__ = ["check", "loss_curve", "train"]

KINDS = kinds_writing(("lr", "shift", "init_shift"))  # the axis kinds it implements
ACTIVATIONS = ("tanh", "relu", "identity")  # those it evaluates in double-double
# Networks per jitted call, by platform. A call trains until its last network has NaN
# parameters, so on windows where runs blow up at different steps small groups stop sooner,
# and on a CPU one network's arrays already fill the vector units: at 8 x 8 pixels, 200
# steps, one core, groups of 2 took 7.7 s on the overview against 8.6-8.7 with 16, 2.6 s
# against 2.9 on the ReLU tile, and 10.5-11.1 s against 10.6-10.7 on the baseline tile,
# where runs blow up late (docs/scripts/doubledouble_groups.py). On a GPU a call's steps
# are kernel launches whatever its size, so groups are large: on an H100, 32 x 32 pixels
# of the baseline tile, 100 steps, took 0.82 s in groups of 1024 against 15.3 s in 64 and
# 52.1 s in 16 (docs/performance.md); larger groups were not timed.
GROUP = {"cpu": 2, "gpu": 1024}


def check(cfg) -> None:
    """Refuse, with one line, a config the double-double kernel does not implement."""
    unsupported = outside(cfg, ACTIVATIONS, KINDS)
    if unsupported:
        raise ConfigError(f"dtype {DOUBLE_DOUBLE!r} trains the baseline family only (mean-field "
                          f"MLP without biases, gd, random regression, the score alone); not "
                          f"{', '.join(unsupported)}")


class Step(NamedTuple):
    """The runtime constants of a training step (see :mod:`fractalsweep.doubledouble` for why
    none may be a literal): the arithmetic's own, sqrt(2), each layer's 1/sqrt(fan_in), and
    1 / (rows x outputs) for the full batch and the minibatch."""

    dd: dd.Constants
    sqrt2: tuple
    scales: tuple
    zero: jax.Array
    mean: dict


def _step_constants(cfg) -> Step:
    def pair(value):
        hi, lo = dd.split_decimal(value)
        return jnp.float64(hi), jnp.float64(lo)

    rows = {cfg.n_data, cfg.batch_size or cfg.n_data}
    with localcontext() as ctx:
        ctx.prec = 60
        return Step(dd=dd.constants(), sqrt2=pair(Decimal(2).sqrt()),
                    scales=tuple(pair(1 / Decimal(fan_in).sqrt())
                                 for fan_in, _ in cfg.layer_shapes),
                    zero=jnp.float64(0.0),
                    mean={n: pair(Decimal(1) / (n * cfg.data.target_dim)) for n in rows})


def _sum(a, axis: int):
    """Sum along ``axis`` in double-double, pairwise (a fixed tree: the same order for every
    call, and a rounding error that grows with log2 of the length)."""
    while a[0].shape[axis] > 1:
        n = a[0].shape[axis]
        half = n // 2
        first, second, rest = (tuple(jax.lax.slice_in_dim(x, lo, hi, axis=axis) for x in a)
                               for lo, hi in ((0, half), (half, 2 * half), (2 * half, n)))
        a = tuple(jnp.concatenate([s, r], axis=axis)
                  for s, r in zip(dd.add(first, second), rest))
    return tuple(jnp.squeeze(x, axis) for x in a)


def _matmul(a, b, k: Step):
    """``a @ b`` for double-doubles: each outer product ``a[:, j] b[j, :]`` added in turn.

    A loop, not one tensor of all products: built from cheap adds and multiplies, a
    double-double producer (a layer's ``tanh``) looks cheap to XLA's fusion pass, which
    would recompute it inside every element of a products tensor (measured: 16 times the
    work of the whole step). A loop body is a fusion boundary. The terms are summed with
    :func:`~fractalsweep.doubledouble.add_terms`: a sum's error is bounded by its terms'
    magnitudes anyway, and it costs a quarter less than :func:`~fractalsweep.doubledouble.add`
    here.
    """
    def term(j):
        col = tuple(jax.lax.dynamic_slice_in_dim(x, j, 1, axis=1) for x in a)
        row = tuple(jax.lax.dynamic_slice_in_dim(x, j, 1, axis=0) for x in b)
        return dd.mul(col, row, k.dd)

    return jax.lax.fori_loop(1, a[0].shape[1], lambda j, acc: dd.add_terms(acc, term(j)),
                             term(0))


def _transpose(a):
    return a[0].T, a[1].T


def _broadcast(c, like):
    return jnp.broadcast_to(c[0], like[0].shape), jnp.broadcast_to(c[1], like[0].shape)


def _scaled(z, scale, k: Step):
    return dd.mul(z, _broadcast(scale, z), k.dd)


def _activate(name: str, z, k: Step):
    """``phi(z)`` and ``phi'(z)`` (docs/science.md, section 2)."""
    if name == "identity":
        return z, dd.from_float(jnp.broadcast_to(k.dd.one, z[0].shape))
    sqrt2 = _broadcast(k.sqrt2, z)
    if name == "relu":
        on = z[0] > k.zero
        zero = jnp.zeros_like(z[0])
        return (dd.mul((jnp.where(on, z[0], zero), jnp.where(on, z[1], zero)), sqrt2, k.dd),
                (jnp.where(on, sqrt2[0], zero), jnp.where(on, sqrt2[1], zero)))
    t = dd.tanh(dd.mul(z, sqrt2, k.dd), k.dd)
    one = dd.from_float(jnp.broadcast_to(k.dd.one, z[0].shape))
    return t, dd.mul(sqrt2, dd.sub(one, dd.mul(t, t, k.dd)), k.dd)


def _forward(cfg, weights, x, k: Step):
    """Output and what the backward pass needs: each layer's input, each activation's slope."""
    inputs, slopes = [], []
    h = x
    for i, w in enumerate(weights):
        inputs.append(h)
        z = _scaled(_matmul(h, w, k), k.scales[i], k)
        if i == len(weights) - 1:  # the readout: one more 1 / sqrt(fan_in)
            return _scaled(z, k.scales[i], k), inputs, slopes
        h, slope = _activate(cfg.model.activation, z, k)
        slopes.append(slope)


def _loss_and_grads(cfg, weights, x, y, k: Step):
    """The MSE loss and the gradient of every weight, by hand-written backpropagation."""
    out, inputs, slopes = _forward(cfg, weights, x, k)
    r = dd.sub(out, y)
    mean = k.mean[x[0].shape[0]]  # 1 / (rows x outputs)
    loss = dd.mul(_sum(tuple(v.ravel() for v in dd.mul(r, r, k.dd)), axis=0), mean, k.dd)
    g = dd.mul_float(_scaled(r, mean, k), k.dd.two, k.dd)  # d loss / d out
    grads = [None] * len(weights)
    for i in range(len(weights) - 1, -1, -1):
        g = _scaled(g, k.scales[i], k)
        if i == len(weights) - 1:
            g = _scaled(g, k.scales[i], k)
        grads[i] = _matmul(_transpose(inputs[i]), g, k)
        if i:
            g = dd.mul(_matmul(g, _transpose(weights[i]), k), slopes[i - 1], k.dd)
    return loss, grads


def _as_dd(value):
    """A hyperparameter as a double-double: pixel values arrive as pairs, defaults as floats
    (a shift no axis sets is None: zero)."""
    if isinstance(value, tuple):
        return value
    return dd.from_float(jnp.float64(0.0 if value is None else value))


def _network(cfg, x, y, weights, data, batch_idx, k: Step):
    """One pixel's network: its initial parameters and its training step.

    ``step(t, params) -> (params, loss)`` adds the offset, takes the full-batch loss and the
    gradient (of the step's rows for a minibatch) at those weights, and updates them.
    """
    hyper = hyper_for(cfg, x, y)
    lr, shift, init_shift = ([_as_dd(v) for v in values]
                             for values in (hyper.lr, hyper.shift, hyper.init_shift))
    xd, yd = dd.from_float(data["X"]), dd.from_float(data["Y"])
    params = tuple(dd.add(dd.from_float(w), _broadcast(s, dd.from_float(w)))
                   for w, s in zip(weights, init_shift))

    def step(t, params):
        params = tuple(dd.add(p, _broadcast(s, p)) for p, s in zip(params, shift))
        loss, grads = _loss_and_grads(cfg, params, xd, yd, k)
        if batch_idx is not None:
            rows = batch_idx[t]
            _, grads = _loss_and_grads(cfg, params, tuple(v[rows] for v in xd),
                                       tuple(v[rows] for v in yd), k)
        params = tuple(dd.sub(p, dd.mul(g, _broadcast(rate, g), k.dd))
                       for p, g, rate in zip(params, grads, lr))
        return params, loss

    return params, step


def _train(cfg, x, y, weights, data, batch_idx, k: Step, early_exit: bool):
    """One pixel: trained step by step, each loss fed to the online score."""
    steps = cfg.training.steps
    params, step = _network(cfg, x, y, weights, data, batch_idx, k)

    def body(carry):
        t, params, sc = carry
        params, loss = step(t, params)
        return t + 1, params, score.update(sc, dd.value(loss), t, steps)

    def alive(carry):
        t, params, _ = carry
        nan = jnp.any(jnp.stack([jnp.isnan(p[0]).any() for p in params]))
        return (t < steps) & ~(early_exit & nan)

    t, _, sc = jax.lax.while_loop(alive, body, (0, params, score.init(jnp.float64)))
    # NaN parameters give NaN losses from here on: feed those without training (exact)
    sc = jax.lax.fori_loop(t, steps, lambda i, c: score.update(c, jnp.float64(jnp.nan), i, steps),
                           sc)
    return score.finalize(sc, steps)


def loss_curve(cfg, arrays: dict, x, y) -> np.ndarray:
    """The loss recorded at every step of one pixel's run, as ``(steps, 2)`` double-doubles.

    For looking at a single run closely (and for checking the arithmetic against mpmath):
    the sweep itself keeps only the online score.
    """
    check(cfg)
    with jax.enable_x64(True):
        weights, data, batch_idx = _inputs(cfg, arrays)

        def run(x, y, weights, data, batch_idx, k):
            params, step = _network(cfg, x, y, weights, data, batch_idx, k)
            _, losses = jax.lax.scan(lambda p, t: step(t, p), params,
                                     jnp.arange(cfg.training.steps))
            return losses

        losses = jit(run)(tuple(map(jnp.float64, x)), tuple(map(jnp.float64, y)), weights,
                          data, batch_idx, _step_constants(cfg))
        return dd.to_numpy(losses)


def _inputs(cfg, arrays: dict):
    """The stored init, data and minibatch rows as the kernels take them."""
    weights = tuple(jnp.asarray(arrays[f"w{i}"], jnp.float64) for i in range(cfg.model.depth))
    data = {key: jnp.asarray(arrays[key], jnp.float64) for key in ("X", "Y")}
    batch_idx = arrays.get("batch_idx")
    return weights, data, None if batch_idx is None else jnp.asarray(batch_idx)


@lru_cache(maxsize=8)
def _group_kernel(cfg, early_exit: bool = True):
    """The jitted kernel training a group of networks (one per pixel) in double-double."""
    def run(xs, ys, weights, data, batch_idx, k):
        one = partial(_train, cfg, weights=weights, data=data, batch_idx=batch_idx, k=k,
                      early_exit=early_exit)
        return jax.vmap(one)((xs[:, 0], xs[:, 1]), (ys[:, 0], ys[:, 1]))

    return jit(run)


def train(cfg, arrays: dict, xs, ys, *, early_exit: bool = True) -> dict[str, np.ndarray]:
    """Train one network per pixel in double-double; as :func:`fractalsweep.kernel.train`.

    ``xs`` and ``ys`` are the pixels' coordinates as double-doubles, arrays of shape (n, 2)
    (``[:, 0]`` the float64 nearest, ``[:, 1]`` the remainder), from
    :func:`fractalsweep.grid.axis_values` with dtype ``"double-double"``.
    """
    check(cfg)
    xs, ys = (np.asarray(v, np.float64).reshape(-1, 2) for v in (xs, ys))
    n, group = len(xs), group_size(table=GROUP)
    xs, ys = (np.concatenate([v, np.repeat(v[:1], -n % group, axis=0)]) for v in (xs, ys))
    with jax.enable_x64(True):
        kernel = _group_kernel(kernel_config(cfg), early_exit)
        weights, data, batch_idx = _inputs(cfg, arrays)
        k = _step_constants(cfg)
        parts = [kernel(jnp.asarray(xs[i:i + group]), jnp.asarray(ys[i:i + group]), weights,
                        data, batch_idx, k) for i in range(0, len(xs), group)]
        return {name: np.concatenate([np.asarray(p[name]) for p in parts])[:n]
                for name in parts[0]}
