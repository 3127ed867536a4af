"""The fused kernel: a block of networks trained for all their steps in one launch (issue 12).

A Pallas kernel (``jax.experimental.pallas``, Triton backend on NVIDIA GPUs) that computes
what the XLA kernel (:mod:`fractalsweep.kernel`) computes, organised for a GPU: a grid of
programs, each training a block of networks (:data:`LAUNCH` per dtype) from init to score
without leaving the kernel. A program reads its networks' hyperparameters and the shared
init once, carries its networks' weights through the training loop as loop values
(registers, on a GPU, if they fit), reduces the loss sequence to the score online
(:mod:`fractalsweep.score`, reused as is) and writes only the per-network outputs. The
shared data are read chunk by chunk at every step (from the GPU's caches after the first
step, presumably: the Pallas Triton backend offers no explicit shared-memory staging). A
block whose networks all have NaN parameters stops training early, exactly as the XLA
kernel's groups do.

Layout of a block (feature-major like the XLA kernel, ``B`` networks, ``h`` hidden units,
``d`` inputs): the first layer is ``w0`` ``(B, h, d)``, the output layer ``w1`` ``(B, h)``,
each network's entries being the transposes of the stored matrices, carried multiplied by
their layer's scale (the block math below says why). The data set is read in
chunks of ``C`` examples; per chunk the first layer of the whole block is one
matrix product ``(B*h, d) x (d, C)`` against the shared inputs and the first-layer
gradient one product ``(B*h, C) x (C, d)``; the output layer (one unit) is a
per-network weighted sum over the hidden units. Full-batch gradient, loss and score come
from one pass over the chunks per step. For minibatches the rows of every step are gathered
once, outside the kernel, into a ``(steps, batch, d)`` array that each step reads with a
plain offset: no gather runs in the training loop.

Every operation of the kernel body is one the Triton lowering has a rule for (2-D dots with
power-of-two sides of at least 16, element-wise operations, max/min/sum reductions,
reshapes, loops): the same code lowers to Triton IR for a GPU (tested without one) and runs
in Pallas interpret mode elsewhere; :func:`interpret_here` decides by platform. Like the XLA
kernel it is traced with full-precision matrix products (:func:`models.full_precision`): on
float32 the Triton backend would otherwise use TF32 inputs. On an H100 and an H200 it
compiles and agrees with the XLA kernel; on the H100 it ran at 3.2x its rate in float64
(32.9M network-steps/s) and 2.2x in float32 (docs/performance.md), before version 0.6.0
carried the scales in the weights (not timed on a GPU since).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

try:
    from jax.experimental.pallas import triton as pltriton
except ImportError:  # deprecated since JAX 0.11 and to be removed: then the XLA kernel trains
    pltriton = None

from . import elementary, score
from .axes import Hyper, hyper_for, kinds_writing
from .errors import ConfigError
from .execution import KERNELS
from .family import outside
from .models import ACTIVATIONS, MLP, Activation, full_precision


@dataclass(frozen=True)
class Launch:
    """How the kernel lays one dtype's work out on a GPU, in the order the measurements
    write it: ``(block, chunk, warps, stages, fma)``.

    ``block`` networks per program, the data read in chunks of ``chunk`` examples (16, the
    smallest side a Triton dot takes), ``warps`` per program, ``stages`` of Triton's
    software pipelining of the chunk loop (None: Pallas' default, 3 on NVIDIA GPUs), and
    ``fma``: float64 arithmetic in the GPU's forms (:func:`arithmetic`), multiply-adds as
    PTX ``fma.rn`` (:func:`ptx_fma`) where the GPU would otherwise multiply and add apart
    (jaxlib's Triton contracts none: an H100 profile counted 10.1e9 separate float64
    multiplies and adds against 1.6e9 fused), in tanh, its derivative and the sums over
    examples, and tanh's quotient from the GPU's reciprocal approximation
    (:func:`ptx_neg_reciprocal`): 22 float64 instructions per element of tanh instead of 37,
    132 in the data loop per warp and chunk instead of 192. Not timed on a GPU yet, so off
    in :data:`LAUNCH`.
    """

    block: int
    chunk: int
    warps: int
    stages: int | None = None
    fma: bool = False


# The fastest measured on an H100 (docs/performance.md, 65,536 networks per call): float64 2
# networks, 4 warps, one pipelining stage (32.9M net-steps/s, 32.4M at Pallas' default of 3
# stages, 29.2M and 30.3M with (1, 2) and (4, 8) networks and warps; with libdevice's tanh 8
# networks ran 18.5M against 2's 27.0M); float32 8 networks, 2 warps, one stage (57.1M,
# 55.9M at 3 stages; 43.7M with 4 warps and 18.4M with 2 networks at 3).
LAUNCH = {"float64": Launch(block=2, chunk=16, warps=4, stages=1),
          "float32": Launch(block=8, chunk=16, warps=2, stages=1)}

ACTIVATIONS_TESTED = ("tanh", "relu", "identity")  # the activations tests compare
KINDS = kinds_writing(("lr", "shift", "init_shift"))  # the axis kinds it implements
# Activations the kernel evaluates with its own code, by (name, dtype) (with Launch.fma,
# GPU_FORMS first): float64 tanh as the CPU kernel does (elementary.tanh64), 19%
# faster than libdevice's on an H100 (32.1M against 27.0M net-steps/s; XLA's GPU kernel
# gained nothing from it, docs/performance.md), with the clip Triton compiles shortest.
OWN = {("tanh", "float64"): partial(elementary.tanh64, clip="select")}
OUTPUTS = ("score", "first_nonfinite", "final_loss")  # kernel.outputs, in the kernel's order
LAYOUT = ((1, 2), (1,))  # per layer: the axes a per-network value is expanded over


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def unsupported(cfg) -> str | None:
    """What of ``cfg`` the fused kernel cannot train, as a phrase; None if it can.

    The kernel is written for the baseline family (:func:`fractalsweep.family.outside`: no
    snapshots nor Lyapunov twin, but an ensemble's members are plain runs it can train) with
    the activations its tests cover, two layers and one output, float64 or float32. Triton
    tensors have power-of-two sides and its dots at least 16 of them, so the hidden and input
    widths must be powers of two with ``block * width >= 16`` and ``input_dim >= 16``
    (padding them is not exact once weights are infinite). The axis kinds are those of
    learning rates and weight offsets (:data:`KINDS`); every data size and batch size is
    supported. It needs Pallas' Triton backend, which JAX 0.11 deprecates: a JAX without it
    trains every config with the XLA kernel.
    """
    plan = LAUNCH.get(cfg.dtype)
    width, min_width = cfg.model.width, -(-16 // (plan.block if plan else 1))
    checks = (
        (pltriton is not None, f"this JAX ({jax.__version__}, without Pallas' Triton backend)"),
        (plan is not None, f"dtype = {cfg.dtype!r}"),
        (cfg.model.depth == 2, f"model.depth = {cfg.model.depth} (only 2)"),
        *((False, why) for why in outside(cfg, ACTIVATIONS_TESTED, KINDS)),
        (cfg.data.target_dim == 1, f"data.target_dim = {cfg.data.target_dim} (only 1)"),
        (_power_of_two(width) and width >= min_width,
         f"model.width = {width} (a power of two >= {min_width})"),
        (_power_of_two(cfg.input_dim) and cfg.input_dim >= 16,
         f"input dimension {cfg.input_dim} (a power of two >= 16)"),
    )
    return next((why for ok, why in checks if not ok), None)


def select(cfg, kernel: str = "auto", platform: str | None = None) -> str:
    """The kernel that trains ``cfg``: ``"xla"`` or ``"pallas"``.

    ``auto`` takes the fused kernel only on a GPU (``platform``, default JAX's first
    device) and only for a config it supports: elsewhere it would run in interpret mode,
    which is for tests, not speed. An explicit ``pallas`` is honoured on any platform, and
    refused for an unsupported config.

    >>> from fractalsweep import config
    >>> select(config.resolve({}), "auto", platform="cpu")
    'xla'
    >>> select(config.resolve({"model": {"depth": 3}}), "auto", platform="gpu")
    'xla'
    """
    check(cfg, kernel)
    if kernel != "auto":
        return kernel
    platform = platform or jax.devices()[0].platform
    return "pallas" if platform == "gpu" and unsupported(cfg) is None else "xla"


def check(cfg, kernel: str) -> None:
    """Refuse an unknown kernel, and ``pallas`` for a config the fused kernel does not
    support (:func:`unsupported`), with one line that says what would do.

    >>> from fractalsweep import config
    >>> check(config.resolve({"model": {"biases": True}}), "pallas")
    Traceback (most recent call last):
    ...
    fractalsweep.errors.ConfigError: kernel = 'pallas': the fused kernel does not support model.biases = true; use 'xla' or 'auto'
    """
    if kernel not in KERNELS:
        raise ConfigError(f"kernel = {kernel!r}: valid values are {', '.join(KERNELS)}")
    why = unsupported(cfg) if kernel == "pallas" else None
    if why is not None:
        raise ConfigError(f"kernel = 'pallas': the fused kernel does not support {why}; "
                          "use 'xla' or 'auto'")


def launch_of(dtype) -> Launch:
    """The :class:`Launch` of ``dtype`` (:data:`LAUNCH`)."""
    return LAUNCH[jnp.dtype(dtype).name]


def block(dtype) -> int:
    """Networks per program for ``dtype``."""
    return launch_of(dtype).block


def interpret_here() -> bool:
    """Whether Pallas must interpret the kernel: everywhere but on a GPU."""
    return jax.devices()[0].platform != "gpu"


def _ptx(asm: str, *args):
    """One float64 result of PTX ``asm`` on float64 ``args`` (``$0`` the result), inline in
    the kernel compiled for a GPU (Pallas' ``elementwise_inline_asm``)."""
    args = jnp.broadcast_arrays(*(jnp.asarray(v, jnp.float64) for v in args))
    [out] = pltriton.elementwise_inline_asm(
        asm, args=args, constraints=",".join(["=d"] + ["d"] * len(args)), pack=1,
        result_shape_dtypes=[jax.ShapeDtypeStruct(args[0].shape, jnp.float64)])
    return out


def ptx_fma(a, b, c):
    """``a * b + c`` in float64 with one rounding, as PTX ``fma.rn.f64``: Pallas' Triton
    lowering has no fused multiply-add, and jaxlib's Triton contracts none."""
    return _ptx("fma.rn.f64 $0, $1, $2, $3;", a, b, c)


def ptx_neg_reciprocal(b):
    """About ``-1 / b``, from the GPU's reciprocal approximation (``rcp.approx.ftz.f64``;
    :func:`elementary.quotient` needs 10 bits of it, and a GPU-only test measures how many
    it has); the GPU's compiler folds the negation into the multiply-adds that take it."""
    return _ptx("{ .reg .f64 t; rcp.approx.ftz.f64 t, $1; neg.f64 $0, t; }", b)


def ptx_tanh_slope(u, a):
    """``1 - a^2``, tanh's derivative from its output, as one PTX ``fma.rn.f64`` (the
    negation folds into it)."""
    return _ptx("{ .reg .f64 t; neg.f64 t, $1; fma.rn.f64 $0, t, $1, 0d3FF0000000000000; }", a)


# The GPU's forms (Launch.fma) by (name, dtype): the activation and its derivative
GPU_FORMS = {("tanh", "float64"): (partial(elementary.tanh64, clip="select",
                                           gpu=(ptx_fma, ptx_neg_reciprocal)), ptx_tanh_slope)}


def activation(name: str, dtype, fma: bool = False) -> Activation:
    """Activation ``name`` as the kernel evaluates it in ``dtype``: the model's, with its own
    function where :data:`OWN` names one, or with ``fma`` the GPU's forms of function and
    derivative where :data:`GPU_FORMS` has them."""
    act, key = ACTIVATIONS[name], (name, jnp.dtype(dtype).name)
    if fma and key in GPU_FORMS:
        fn, grad = GPU_FORMS[key]
        return replace(act, fn=fn, grad=grad)
    return replace(act, fn=OWN.get(key, act.fn))


class Arithmetic(NamedTuple):
    """How a block computes: ``act``, the activation (:func:`activation`), and ``fma(a, b,
    c)``, the multiply-add of its sums over examples."""

    act: Activation
    fma: Callable


def arithmetic(name: str, dtype, fma: bool = False) -> Arithmetic:
    """The :class:`Arithmetic` of activation ``name`` in ``dtype``: with ``fma`` in float64
    the GPU's forms and :func:`ptx_fma`, else :func:`elementary.multiply_add` (written as a
    product and a sum)."""
    fused_fma = fma and jnp.dtype(dtype) == jnp.float64
    return Arithmetic(activation(name, dtype, fused_fma),
                      ptx_fma if fused_fma else elementary.multiply_add)


# --- the math of a block: pure functions, also callable outside a kernel (tested so) ---
#
# A block carries each layer multiplied by its scale, ``v = s * w`` (:meth:`MLP.scales`), and
# takes its gradient sums in units of the residual ``out - y``: the scales and the loss's
# ``2 / n`` then meet the learning rate in one factor per network and layer
# (:func:`step_factors`), applied once per step to each weight, instead of once per hidden
# unit and example. On a GPU the float64 pipe bounds the kernel, and these products were 3
# of its 52 float64 instructions per hidden unit and example (docs/performance.md). The
# rounding moves (not the values: the tests hold the kernel to the reference as before).

def block_hyper(cfg, xs, ys) -> Hyper:
    """The hyperparameters of a block of pixels, each shaped to broadcast against its layer.

    :func:`~fractalsweep.axes.hyper_for` of the ``(B,)`` axis values gives one value per
    network; a layer of the block holds the network on axis 0, so a per-network value is
    expanded over the layer's other axes. Scalars (the default learning rate) and None stay.
    """
    def lay(values):
        return tuple(v if v is None or jnp.ndim(v) == 0 else jnp.expand_dims(v, axes)
                     for v, axes in zip(values, LAYOUT))

    hyper = hyper_for(cfg, xs, ys)
    return hyper._replace(lr=lay(hyper.lr), shift=lay(hyper.shift),
                          init_shift=lay(hyper.init_shift))


def scaled(model: MLP, layers) -> tuple:
    """Each layer (or shift, None: none) times its scale: weights as the block carries them."""
    return tuple(None if p is None else s * p for p, s in zip(layers, model.scales()))


def shifted(params, shifts) -> tuple:
    """Each layer plus its shift (None: unchanged), as :func:`kernel.net_step` shifts."""
    return tuple(p if s is None else p + s for p, s in zip(params, shifts))


def step_factors(model: MLP, lr, n: int) -> tuple:
    """Per layer, what one step subtracts from the carried ``v = s * w`` per unit of the
    gradient sums of :func:`chunk_terms` over an ``n``-example set: ``lr * s^2 * 2 / n``.

    The true gradient is ``s * (2 / n)`` times the sum (``d loss / d out = (2 / n) (out -
    y)``, as :meth:`RandomRegression.loss_grad`), and ``v`` moves ``s`` times ``w``.
    """
    return tuple(rate * (s * s * 2 / n) for rate, s in zip(lr, model.scales()))


def _masked(x, valid):
    """``x`` with the padding examples (last axis) set to exactly 0; ``valid`` None: none.

    A select, not a product: padding examples are zero inputs, and an infinite weight
    times zero is NaN, which must not reach the loss or the gradient sums.
    """
    return x if valid is None else jnp.where(valid, x, 0)


def forward(model: MLP, v, xc, valid=None, act=None):
    """``(u, a, out)`` of a block on a chunk ``xc`` (C, d): ``u``, ``a`` (B, h, C), ``out`` (B, C).

    Per network :meth:`MLP.forward` with the scales in the carried weights ``v``:
    ``u = V0 @ x``, ``a = fn(u)``, ``out = v1 @ a``, the first layer of the block as one
    product against the shared chunk and the output layer as a sum over hidden units;
    ``act`` (the activation) defaults to :func:`activation`'s.
    """
    act = act or activation(model.activation, xc.dtype)
    v0, v1 = v
    b, h, d = v0.shape
    u = lax.dot_general(v0.reshape(b * h, d), xc, (((1,), (1,)), ((), ()))).reshape(b, h, -1)
    a = _masked(act.fn(u), valid)
    return u, a, jnp.sum(v1[:, :, None] * a, axis=1)


def backward(act: Activation, v, xc, u, a, r, valid=None):
    """The first layer's gradient sum over a chunk in units of the residual ``r`` (B, C):
    ``(B, h, d)``, :meth:`MLP.backward` per network without the factor ``s * 2 / n``
    (:func:`step_factors`), so the chunks' sums add up. The output layer's is ``r * a``,
    summed by :func:`chunk_terms`."""
    v0, v1 = v
    b, h, d = v0.shape
    g0 = _masked(v1[:, :, None] * r[:, None, :] * act.grad(u, a), valid)
    return jnp.dot(g0.reshape(b * h, -1), xc).reshape(b, h, d)


def no_sums(v, chunk: int) -> tuple:
    """Zero sums of :func:`chunk_terms` for a block ``v`` read in chunks of ``chunk`` examples:
    squared errors ``(B, C)`` and the output layer's gradient terms ``(B, h, C)``, each per
    example of a chunk, and the first layer's gradient sum ``(B, h, d)``."""
    v0, v1 = v
    return (jnp.zeros((*v1.shape[:1], chunk), v1.dtype), jnp.zeros((*v1.shape, chunk), v1.dtype),
            jnp.zeros_like(v0))


def chunk_loss(model: MLP, v, xc, yc, squares, valid=None, ops=None):
    """``squares`` (B, C) plus the block's squared errors over a chunk (``yc`` (C,) the
    targets), example by example, as multiply-adds (:func:`chunk_terms`)."""
    ops = ops or arithmetic(model.activation, xc.dtype)
    r = _masked(forward(model, v, xc, valid, ops.act)[2] - yc, valid)
    return ops.fma(r, r, squares)


def chunk_terms(model: MLP, v, xc, yc, sums, valid=None, ops=None) -> tuple:
    """``sums`` (:func:`no_sums`) plus a block's squared errors and gradient terms over a chunk.

    The squared errors and the output layer's terms ``r * a`` are added example by example,
    as multiply-adds (``ops.fma``: one instruction each on a GPU), and summed over the
    examples once per pass (:func:`totals`): per chunk that saves the products and the
    additions and shuffles of a sum over the chunk. The first layer's sum is one product
    per chunk (:func:`backward`).
    """
    ops = ops or arithmetic(model.activation, xc.dtype)
    squares, out_terms, first = sums
    u, a, out = forward(model, v, xc, valid, ops.act)
    r = _masked(out - yc, valid)
    return (ops.fma(r, r, squares), ops.fma(r[:, None, :], a, out_terms),
            first + backward(ops.act, v, xc, u, a, r, valid))


def totals(sums) -> tuple:
    """The squared-error sums ``(B,)`` and gradient sums ``((B, h, d), (B, h))`` of
    :func:`chunk_terms`' ``sums``."""
    squares, out_terms, first = sums
    return jnp.sum(squares, axis=-1), first, jnp.sum(out_terms, axis=-1)


def all_nan(params):
    """Whether every network of the block has a NaN parameter.

    With max/min reductions: the Triton lowering has no boolean ``any``/``all``.
    """
    per_net = [jnp.max(jnp.isnan(p).astype(jnp.int32), axis=tuple(range(1, p.ndim)))
               for p in params]
    return jnp.min(jnp.maximum(*per_net)) > 0


# --- the kernel ---

def _chunk(x_ref, y_ref, n: int, i, lead=()):
    """Chunk ``i`` of a data set of ``n`` examples padded to whole chunks: ``(x, y, valid)``.

    ``lead`` indexes leading axes (the step, for minibatch rows). ``valid`` is None when
    ``n`` is a whole number of chunks, so only a padded set pays for the mask.
    """
    size = launch_of(x_ref.dtype).chunk
    start = pl.multiple_of(i * size, size)
    rows = pl.ds(start, size)
    valid = None if n % size == 0 else start + jnp.arange(size) < n
    return x_ref[(*lead, rows, slice(None))], y_ref[(*lead, rows)], valid


def _chunks(n: int, dtype) -> int:
    """How many chunks an ``n``-example set is read in (the last one padded)."""
    return -(-n // launch_of(dtype).chunk)


def _data_loss(model, ops, v, x_ref, y_ref, n: int):
    """The mean squared error of every network of the block on the ``n``-example set."""
    def body(i, squares):
        xc, yc, valid = _chunk(x_ref, y_ref, n, i)
        return chunk_loss(model, v, xc, yc, squares, valid, ops)

    zero = no_sums(v, launch_of(x_ref.dtype).chunk)[0]
    return jnp.sum(lax.fori_loop(0, _chunks(n, x_ref.dtype), body, zero), axis=-1) / n


def _data_loss_and_sums(model, ops, v, x_ref, y_ref, n: int, lead=()):
    """Loss and gradient sums (:func:`totals`) of the block on the ``n``-example set."""
    def body(i, sums):
        xc, yc, valid = _chunk(x_ref, y_ref, n, i, lead)
        return chunk_terms(model, v, xc, yc, sums, valid, ops)

    sums = lax.fori_loop(0, _chunks(n, x_ref.dtype), body,
                         no_sums(v, launch_of(x_ref.dtype).chunk))
    squares, *grads = totals(sums)
    return squares / n, grads


def _step(cfg, model, ops, shifts, factors, data_refs, t, v):
    """One training step of the block: ``(v, loss)``, as :func:`kernel.net_step`, on the
    carried ``v`` with its ``shifts`` (:func:`scaled`) and ``factors`` (:func:`step_factors`).

    The loss is the full-batch loss before the update, at the shifted weights the gradient
    is taken at; minibatches take the gradient on step ``t``'s rows.
    """
    v = shifted(v, shifts)
    x_ref, y_ref, *batch_refs = data_refs
    if batch_refs:
        loss = _data_loss(model, ops, v, x_ref, y_ref, cfg.n_data)
        _, sums = _data_loss_and_sums(model, ops, v, *batch_refs, cfg.batch_size, (t,))
    else:
        loss, sums = _data_loss_and_sums(model, ops, v, x_ref, y_ref, cfg.n_data)
    # plain gradient descent, the only optimizer the kernel trains (unsupported())
    return tuple(p - c * s for p, s, c in zip(v, sums, factors)), loss


def _kernel(cfg, early_exit: bool, ops, xs_ref, ys_ref, w0_ref, w1_ref, *refs):
    """One program: train its block of networks for every step and write their outputs.

    ``refs`` are the data (``x`` (N', d), ``y`` (N',), then for minibatches ``xb``
    (steps, b', d), ``yb`` (steps, b'), zero-padded to whole chunks), then the outputs.
    Training stops once every network of the block has a NaN parameter (``early_exit``);
    the remaining steps feed NaN losses to the score, bit-identical to training on.
    """
    *data_refs, score_ref, first_ref, final_ref = refs
    model, steps = MLP.from_config(cfg), cfg.training.steps
    hyper = block_hyper(cfg, xs_ref[...], ys_ref[...])
    v = scaled(model, shifted((w0_ref[...], w1_ref[...]), hyper.init_shift))
    shifts = scaled(model, hyper.shift)
    factors = step_factors(model, hyper.lr, cfg.batch_size or cfg.n_data)
    dtype, b = xs_ref.dtype, xs_ref.shape[0]

    def training(carry):
        t, v, _ = carry
        return (t < steps) & ~(early_exit & all_nan(v))

    def train_step(carry):
        t, v, sc = carry
        v, loss = _step(cfg, model, ops, shifts, factors, data_refs, t, v)
        return t + 1, v, score.update(sc, loss, t, steps)

    sc = jax.tree.map(lambda z: jnp.full((b,), z), score.init(dtype))
    t, _, sc = lax.while_loop(training, train_step, (jnp.int32(0), v, sc))
    nan = jnp.full((b,), jnp.nan, dtype)
    sc = lax.fori_loop(t, steps, lambda i, s: score.update(s, nan, i, steps), sc)
    out = score.finalize(sc, steps)
    for ref, name in zip((score_ref, first_ref, final_ref), OUTPUTS):
        ref[...] = out[name]


def _pad(a, axis: int):
    """``a`` with zero rows appended along ``axis`` up to a whole number of chunks."""
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, -a.shape[axis] % launch_of(a.dtype).chunk)
    return jnp.pad(a, widths)


def shared_inputs(weights, data, batch_idx) -> list:
    """The arrays every program reads whole, from :func:`kernel.prepare`'s ``weights``,
    ``data`` and ``batch_idx``.

    The init tiled over one block (every program starts from it), the data example-major
    and padded to whole chunks, and for minibatches each step's rows gathered here, once.
    """
    w0, w1 = (w.T for w in weights)
    x, y = data["xt"].T, data["yt"][0]
    b = block(x.dtype)
    arrays = [jnp.broadcast_to(w0, (b, *w0.shape)), jnp.broadcast_to(w1, (b, w1.size)),
              _pad(x, 0), _pad(y, 0)]
    if batch_idx is not None:
        arrays += [_pad(x[batch_idx], 1), _pad(y[batch_idx], 1)]
    return arrays


def launch(cfg, early_exit: bool, xs, ys, arrays, interpret: bool):
    """The ``pallas_call`` over ``xs.size / block`` programs; returns the outputs' arrays.

    Triton compiler parameters select the Triton backend (Pallas' default GPU backend is
    Mosaic GPU), with the warps and pipelining stages of the dtype's :class:`Launch`; its
    ``fma`` applies where the kernel is compiled, not interpreted.
    """
    n, dtype, plan = xs.size, xs.dtype, launch_of(xs.dtype)
    b = plan.block
    ops = arithmetic(cfg.model.activation, dtype, fma=plan.fma and not interpret)
    per_net = pl.BlockSpec((b,), lambda i: (i,))
    whole = [pl.BlockSpec(a.shape, lambda i, nd=a.ndim: (0,) * nd) for a in arrays]
    return pl.pallas_call(
        partial(_kernel, cfg, early_exit, ops),
        out_shape=[jax.ShapeDtypeStruct((n,), t) for t in (dtype, jnp.int32, dtype)],
        grid=(n // b,),
        in_specs=[per_net, per_net, *whole],
        out_specs=[per_net] * len(OUTPUTS),
        interpret=interpret,
        compiler_params=pltriton.CompilerParams(num_warps=plan.warps,
                                                num_stages=plan.stages),
        name="fractalsweep_fused",
    )(xs, ys, *arrays)


def make_run(cfg, early_exit: bool = True, interpret: bool | None = None):
    """``run(xs, ys, weights, data, batch_idx) -> dict``: a group's outputs from one
    launch, which :func:`kernel.train` calls per group as it calls the XLA kernel's
    (:class:`kernel.GroupKernel`) functions. It needs no repacking: a block of networks
    stops on its own.

    The pixels are padded to whole blocks with copies of the first one; a pixel's result
    does not depend on its block-mates. ``interpret`` defaults to :func:`interpret_here`.
    """
    interpret = interpret_here() if interpret is None else interpret

    def run(xs, ys, weights, data, batch_idx):
        n, pad = xs.size, -xs.size % block(xs.dtype)
        xs, ys = (jnp.concatenate([v, jnp.full(pad, v[0], v.dtype)]) for v in (xs, ys))
        out = launch(cfg, early_exit, xs, ys, shared_inputs(weights, data, batch_idx),
                     interpret)
        return {name: o[:n] for name, o in zip(OUTPUTS, out)}

    return run


@lru_cache(maxsize=16)
def compile_kernel(cfg, early_exit: bool = True):
    """The jitted fused kernel for a config (cached per process), like
    :func:`kernel.compile_kernel`; call it with float64 enabled."""
    return jax.jit(full_precision(make_run(cfg, early_exit)))
