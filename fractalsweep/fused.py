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
each network's entries being the transposes of the stored matrices. The data set is read in
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
compiles and agrees with the XLA kernel; on the H100 it runs at 3.2x its rate in float64
(32.9M network-steps/s) and 2.2x in float32 (docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

try:
    from jax.experimental.pallas import triton as pltriton
except ImportError:  # deprecated since JAX 0.11 and to be removed: then the XLA kernel trains
    pltriton = None

from . import elementary, score
from .axes import Hyper, hyper_for
from .errors import ConfigError
from .execution import KERNELS
from .models import ACTIVATIONS, MLP, full_precision


@dataclass(frozen=True)
class Launch:
    """How the kernel lays one dtype's work out on a GPU, in the order the measurements
    write it: ``(block, chunk, warps, stages, fma)``.

    ``block`` networks per program, the data read in chunks of ``chunk`` examples (16, the
    smallest side a Triton dot takes), ``warps`` per program, ``stages`` of Triton's
    software pipelining of the chunk loop (None: Pallas' default, 3 on NVIDIA GPUs), and
    ``fma``: the float64 tanh's multiply-adds as PTX ``fma.rn`` (:func:`ptx_fma`), rounded
    once, where the GPU would otherwise multiply and add apart (jaxlib's Triton contracts
    none: an H100 profile counted 10.1e9 separate float64 multiplies and adds against 1.6e9
    fused). Not timed on a GPU yet, so off in :data:`LAUNCH`.
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
# Activations the kernel evaluates with its own code, by (name, dtype), each taking a
# multiply-add as ``fma``: float64 tanh as the CPU kernel does (elementary.tanh64), 19%
# faster than libdevice's on an H100 (32.1M against 27.0M net-steps/s; XLA's GPU kernel
# gained nothing from it, docs/performance.md), with the clip Triton compiles shortest.
OWN = {("tanh", "float64"): partial(elementary.tanh64, clip="select")}
OUTPUTS = ("score", "first_nonfinite", "final_loss")  # kernel.outputs, in the kernel's order
LAYOUT = ((1, 2), (1,))  # per layer: the axes a per-network value is expanded over


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def unsupported(cfg) -> str | None:
    """What of ``cfg`` the fused kernel cannot train, as a phrase; None if it can.

    The kernel is written for the paper's family: two mean-field layers without biases, one
    output, plain gradient descent without weight decay on the random-regression task, the
    activations its tests cover, float64 or float32. Triton tensors have power-of-two sides
    and its dots at least 16 of them, so the hidden and input widths must be powers of two
    with ``block * width >= 16`` and ``input_dim >= 16`` (padding them is not exact once
    weights are infinite). Every axis kind, data size and batch size is supported; the
    per-run measures (snapshots, the Lyapunov twin) are not, and an ensemble's members are
    plain runs it can train. It needs Pallas' Triton backend, which JAX 0.11 deprecates: a
    JAX without it trains every config with the XLA kernel.
    """
    plan = LAUNCH.get(cfg.dtype)
    width, min_width = cfg.model.width, -(-16 // (plan.block if plan else 1))
    checks = (
        (pltriton is not None, f"this JAX ({jax.__version__}, without Pallas' Triton backend)"),
        (plan is not None, f"dtype = {cfg.dtype!r}"),
        (cfg.model.depth == 2, f"model.depth = {cfg.model.depth} (only 2)"),
        (cfg.model.parameterization == "mean_field",
         f"model.parameterization = {cfg.model.parameterization!r}"),
        (not cfg.model.biases, "model.biases = true"),
        (not cfg.model.residual, "model.residual = true"),
        (not cfg.training.weight_decay, f"training.weight_decay = {cfg.training.weight_decay}"),
        (cfg.model.activation in ACTIVATIONS_TESTED,
         f"model.activation = {cfg.model.activation!r}"),
        (cfg.data.target_dim == 1, f"data.target_dim = {cfg.data.target_dim} (only 1)"),
        (cfg.data.task == "random_regression", f"data.task = {cfg.data.task!r}"),
        (cfg.training.optimizer == "gd", f"training.optimizer = {cfg.training.optimizer!r}"),
        (_power_of_two(width) and width >= min_width,
         f"model.width = {width} (a power of two >= {min_width})"),
        (_power_of_two(cfg.input_dim) and cfg.input_dim >= 16,
         f"input dimension {cfg.input_dim} (a power of two >= 16)"),
        (not cfg.measures.lyapunov, "measures.lyapunov = true"),
        (not cfg.measures.snapshots, "measures.snapshots"),
    )
    return next((why for ok, why in checks if not ok), None)


def select(cfg, backend: str = "auto", platform: str | None = None) -> str:
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
    check(cfg, backend)
    if backend != "auto":
        return backend
    platform = platform or jax.devices()[0].platform
    return "pallas" if platform == "gpu" and unsupported(cfg) is None else "xla"


def check(cfg, backend: str) -> None:
    """Refuse an unknown kernel, and ``pallas`` for a config the fused kernel does not
    support (:func:`unsupported`), with one line that says what would do.

    >>> from fractalsweep import config
    >>> check(config.resolve({"model": {"biases": True}}), "pallas")
    Traceback (most recent call last):
    ...
    fractalsweep.errors.ConfigError: kernel = 'pallas': the fused kernel does not support model.biases = true; use 'xla' or 'auto'
    """
    if backend not in KERNELS:
        raise ConfigError(f"kernel = {backend!r}: valid values are {', '.join(KERNELS)}")
    why = unsupported(cfg) if backend == "pallas" else None
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


def ptx_fma(a, b, c, subtract: bool = False):
    """``a * b + c`` (``a * b - c`` if ``subtract``) in float64 with one rounding, as PTX
    ``fma.rn.f64`` inline (Pallas' Triton lowering has no fused multiply-add, and negates by
    subtracting from zero, which the GPU's compiler cannot fold into the fma as it folds
    ``neg``); only in a kernel compiled for a GPU."""
    a, b, c = jnp.broadcast_arrays(*(jnp.asarray(v, jnp.float64) for v in (a, b, c)))
    asm = ("{ .reg .f64 t; neg.f64 t, $3; fma.rn.f64 $0, $1, $2, t; }" if subtract
           else "fma.rn.f64 $0, $1, $2, $3;")
    [out] = pltriton.elementwise_inline_asm(
        asm, args=[a, b, c], constraints="=d,d,d,d", pack=1,
        result_shape_dtypes=[jax.ShapeDtypeStruct(a.shape, a.dtype)])
    return out


def activation(name: str, dtype, fma: bool = False):
    """The function the kernel evaluates activation ``name`` with in ``dtype``: its own
    where :data:`OWN` names one (with :func:`ptx_fma` if ``fma``), else the model's."""
    own = OWN.get((name, jnp.dtype(dtype).name))
    if own is None:
        return ACTIVATIONS[name].fn
    return partial(own, fma=ptx_fma) if fma else own


# --- the math of a block: pure functions, also callable outside a kernel (tested so) ---

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


def shifted(params, shifts) -> tuple:
    """Each layer plus its shift (None: unchanged), as :func:`kernel.net_step` shifts."""
    return tuple(p if s is None else p + s for p, s in zip(params, shifts))


def _masked(x, valid):
    """``x`` with the padding examples (last axis) set to exactly 0; ``valid`` None: none.

    A select, not a product: padding examples are zero inputs, and an infinite weight
    times zero is NaN, which must not reach the loss or the gradient sums.
    """
    return x if valid is None else jnp.where(valid, x, 0)


def forward(model: MLP, params, xc, valid=None, fn=None):
    """``(u, a, out)`` of a block on a chunk ``xc`` (C, d): ``u``, ``a`` (B, h, C), ``out`` (B, C).

    The same arithmetic as :meth:`MLP.forward` per network: ``u = s0 * (W0 @ x)``,
    ``a = fn(u)``, ``out = s1 * (W1 @ a)``, with the first layer of the block as one
    product against the shared chunk and the output layer as a sum over hidden units;
    ``fn`` defaults to :func:`activation`'s.
    """
    fn = fn or activation(model.activation, xc.dtype)
    s0, s1 = model.scales()
    w0, w1 = params
    b, h, d = w0.shape
    z = lax.dot_general(w0.reshape(b * h, d), xc, (((1,), (1,)), ((), ())))
    u = s0 * z.reshape(b, h, -1)
    a = _masked(fn(u), valid)
    return u, a, s1 * jnp.sum(w1[:, :, None] * a, axis=1)


def backward(model: MLP, params, xc, u, a, g, valid=None) -> tuple:
    """The block's gradient sums over a chunk, before the layer scales: ``(B, h, d), (B, h)``.

    ``g`` (B, C) is d loss / d out. Per network this is :meth:`MLP.backward` with the
    multiplication by each layer's scale left to the end of the data pass, so the chunks'
    sums add up to the gradient of the whole data set.
    """
    act = ACTIVATIONS[model.activation]
    s1 = model.scales()[1]
    w0, w1 = params
    b, h, d = w0.shape
    gw1 = jnp.sum(g[:, None, :] * a, axis=2)
    g0 = _masked((s1 * w1)[:, :, None] * g[:, None, :] * act.grad(u, a), valid)
    gw0 = jnp.dot(g0.reshape(b * h, -1), xc).reshape(b, h, d)
    return gw0, gw1


def chunk_loss(model: MLP, params, xc, yc, valid=None, fn=None):
    """Per network, the sum of squared errors over a chunk (``yc`` (C,) the targets)."""
    r = _masked(forward(model, params, xc, valid, fn)[2] - yc, valid)
    return jnp.sum(r * r, axis=1)


def chunk_terms(model: MLP, params, xc, yc, n: int, valid=None, fn=None) -> tuple:
    """Squared-error sums and gradient sums of a block over one chunk of an ``n``-example set.

    ``d loss / d out = (2 / n) * (out - y)`` as :meth:`RandomRegression.loss_grad` (one
    output), so the chunks' sums, divided by ``n`` (loss) and scaled per layer (gradient),
    give the loss and gradient of the whole set.
    """
    u, a, out = forward(model, params, xc, valid, fn)
    r = _masked(out - yc, valid)
    return (jnp.sum(r * r, axis=1), *backward(model, params, xc, u, a, (2 / n) * r, valid))


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


def _data_loss(model, fn, params, x_ref, y_ref, n: int):
    """The mean squared error of every network of the block on the ``n``-example set."""
    def body(i, total):
        return total + chunk_loss(model, params, *_chunk(x_ref, y_ref, n, i), fn)

    zero = jnp.zeros(params[1].shape[:1], params[1].dtype)
    return lax.fori_loop(0, _chunks(n, x_ref.dtype), body, zero) / n


def _data_loss_and_grads(model, fn, params, x_ref, y_ref, n: int, lead=()):
    """Loss and gradients of every network of the block on the ``n``-example set."""
    def body(i, sums):
        xc, yc, valid = _chunk(x_ref, y_ref, n, i, lead)
        terms = chunk_terms(model, params, xc, yc, n, valid, fn)
        return tuple(s + t for s, t in zip(sums, terms))

    zeros = (jnp.zeros(params[1].shape[:1], params[1].dtype), *map(jnp.zeros_like, params))
    squares, *grads = lax.fori_loop(0, _chunks(n, x_ref.dtype), body, zeros)
    return squares / n, tuple(s * g for s, g in zip(model.scales(), grads))


def _step(cfg, model, fn, hyper, data_refs, t, params):
    """One training step of the block: ``(params, loss)``, as :func:`kernel.net_step`.

    The loss is the full-batch loss before the update, at the shifted weights the gradient
    is taken at; minibatches take the gradient on step ``t``'s rows.
    """
    params = shifted(params, hyper.shift)
    x_ref, y_ref, *batch_refs = data_refs
    if batch_refs:
        loss = _data_loss(model, fn, params, x_ref, y_ref, cfg.n_data)
        _, grads = _data_loss_and_grads(model, fn, params, *batch_refs, cfg.batch_size, (t,))
    else:
        loss, grads = _data_loss_and_grads(model, fn, params, x_ref, y_ref, cfg.n_data)
    # plain gradient descent, the only optimizer the kernel trains (unsupported())
    return tuple(p - lr * g for p, g, lr in zip(params, grads, hyper.lr)), loss


def _kernel(cfg, early_exit: bool, fn, xs_ref, ys_ref, w0_ref, w1_ref, *refs):
    """One program: train its block of networks for every step and write their outputs.

    ``refs`` are the data (``x`` (N', d), ``y`` (N',), then for minibatches ``xb``
    (steps, b', d), ``yb`` (steps, b'), zero-padded to whole chunks), then the outputs.
    Training stops once every network of the block has a NaN parameter (``early_exit``);
    the remaining steps feed NaN losses to the score, bit-identical to training on.
    """
    *data_refs, score_ref, first_ref, final_ref = refs
    model, steps = MLP.from_config(cfg), cfg.training.steps
    hyper = block_hyper(cfg, xs_ref[...], ys_ref[...])
    params = shifted((w0_ref[...], w1_ref[...]), hyper.init_shift)
    dtype, b = xs_ref.dtype, xs_ref.shape[0]

    def training(carry):
        t, params, _ = carry
        return (t < steps) & ~(early_exit & all_nan(params))

    def train_step(carry):
        t, params, sc = carry
        params, loss = _step(cfg, model, fn, hyper, data_refs, t, params)
        return t + 1, params, score.update(sc, loss, t, steps)

    sc = jax.tree.map(lambda z: jnp.full((b,), z), score.init(dtype))
    t, _, sc = lax.while_loop(training, train_step, (jnp.int32(0), params, sc))
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
    fn = activation(cfg.model.activation, dtype, fma=plan.fma and not interpret)
    per_net = pl.BlockSpec((b,), lambda i: (i,))
    whole = [pl.BlockSpec(a.shape, lambda i, nd=a.ndim: (0,) * nd) for a in arrays]
    return pl.pallas_call(
        partial(_kernel, cfg, early_exit, fn),
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
