"""Plain-NumPy reference implementation of ONE training run (docs/kernel.md).

Written from the definitions in docs/kernel.md alone, deliberately independent of the
fractalsweep package: no jax, no import from fractalsweep. Everything is float64, the steps
are a plain Python loop, and the backward pass of the MLP is written out by hand. Speed is
secondary; the data rows are vectorised.

Network, weights = [W0 (d_in, width), W1 (width, width), ..., W_last (width, target_dim)],
optional biases b_i (fan_out,), h_0 = X:

    mean field (the paper's):
        hidden layer i:  z_i = h_i @ W_i / sqrt(fan_in_i) + b_i,   h_{i+1} = phi(z_i)
        last layer:      out = (h @ W_last / sqrt(fan_in)) / sqrt(fan_in) + b_last
    standard: the same without any 1/sqrt(fan_in), and the initial weights divided by
        sqrt(fan_in) once, at init.
    residual: h_{i+1} = h_i + phi(z_i) for the hidden layers between equal widths (all but
        the first and the last layer).

Loss: "mse", the mean over all N * target_dim entries of (out - Y)**2, or
"cross_entropy", the mean over the N rows of -sum_k Y_k log softmax(out)_k.
"""

import math

import numpy as np

SQRT2 = np.sqrt(2.0)

#: value that replaces every non-finite loss, and the clip applied to normalised losses
BIG = 1e6
#: number of trailing normalised losses whose mean decides convergence
WINDOW = 20


# --------------------------------------------------------------------------- activations

_erf = np.vectorize(math.erf)


def phi(name, z):
    """tanh -> tanh(sqrt(2) z); relu -> sqrt(2) * relu(z); identity -> z;
    gelu -> z * Phi(z) (Phi the standard normal CDF); sin -> sin(z)."""
    if name == "tanh":
        return np.tanh(SQRT2 * z)
    if name == "relu":
        return SQRT2 * np.maximum(z, 0.0)
    if name == "identity":
        return z
    if name == "gelu":
        return z * 0.5 * (1.0 + _erf(z / SQRT2))
    if name == "sin":
        return np.sin(z)
    raise ValueError(f"unknown activation {name!r}")


def dphi(name, z):
    """Derivative of phi. For relu the derivative at 0 is taken as 0: sqrt(2) * (z > 0)."""
    if name == "tanh":
        t = np.tanh(SQRT2 * z)
        return SQRT2 * (1.0 - t * t)
    if name == "relu":
        return SQRT2 * (z > 0).astype(np.float64)
    if name == "identity":
        return np.ones_like(z)
    if name == "gelu":
        return 0.5 * (1.0 + _erf(z / SQRT2)) + z * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    if name == "sin":
        return np.cos(z)
    raise ValueError(f"unknown activation {name!r}")


# --------------------------------------------------------------------------- network

def _forward_with_cache(weights, X, activation, biases=None, parameterization="mean_field",
                        residual=False):
    """Forward pass that also returns what backprop needs.

    Returns (out, inputs, preacts): inputs[i] is the input h_i of layer i, preacts[i] is
    the pre-activation z_i of hidden layer i (len(preacts) == depth - 1).
    """
    h = np.asarray(X, dtype=np.float64)
    inputs, preacts = [], []
    last = len(weights) - 1
    for i, W in enumerate(weights):
        fan_in = W.shape[0]
        inputs.append(h)
        z = h @ W
        if parameterization == "mean_field":
            z = z / np.sqrt(fan_in)
            if i == last:
                z = z / np.sqrt(fan_in)  # the extra mean-field 1/sqrt(fan_in) of the readout
        if biases is not None:
            z = z + biases[i]
        if i < last:
            preacts.append(z)
            skip = residual and i > 0 and W.shape[0] == W.shape[1]
            h = h + phi(activation, z) if skip else phi(activation, z)
        else:
            out = z
    return out, inputs, preacts


def forward(weights, X, activation, **arch):
    """The network's output for inputs X (rows); ``arch``: biases, parameterization,
    residual as in the module docstring."""
    out, _, _ = _forward_with_cache(weights, X, activation, **arch)
    return out


def loss_value_and_dout(out, Y, loss="mse"):
    """The loss and its gradient with respect to the output."""
    Y = np.asarray(Y, dtype=np.float64)
    if loss == "mse":
        r = out - Y
        return float(np.mean(r * r)), 2.0 * r / r.size
    if loss == "cross_entropy":
        shifted = out - np.max(out, axis=1, keepdims=True)
        log_p = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))  # per row
        return float(-np.mean(np.sum(Y * log_p, axis=1))), (np.exp(log_p) - Y) / out.shape[0]
    raise ValueError(f"unknown loss {loss!r}")


def loss_and_grads(weights, X, Y, activation, biases=None, parameterization="mean_field",
                   residual=False, loss="mse"):
    """Loss and its gradient w.r.t. every W (and every bias).

    Hand-written backprop. Returns (loss: float, grads: list of arrays shaped like weights),
    or with biases (loss, grads, bias_grads).
    """
    out, inputs, preacts = _forward_with_cache(weights, X, activation, biases,
                                               parameterization, residual)
    value, g = loss_value_and_dout(out, Y, loss)  # g = dL/d out
    grads = [None] * len(weights)
    bias_grads = [None] * len(weights)
    last = len(weights) - 1

    g_h = None  # dL/d (input of the layer above)
    for i in range(last, -1, -1):
        W = weights[i]
        f = W.shape[0]
        if i < last:  # hidden layer: h_{i+1} = phi(z_i) (+ h_i with a residual connection)
            g = g_h * dphi(activation, preacts[i])  # dL/dz_i
        scale = 1.0
        if parameterization == "mean_field":
            scale = 1.0 / np.sqrt(f) if i < last else 1.0 / f
        grads[i] = inputs[i].T @ g * scale
        bias_grads[i] = g.sum(axis=0)
        g_in = g @ W.T * scale  # dL/dh_i through the weights
        if i < last and residual and i > 0 and W.shape[0] == W.shape[1]:
            g_in = g_in + g_h  # ... and through the skip h_{i+1} = h_i + phi(z_i)
        g_h = g_in

    if biases is None:
        return value, grads
    return value, grads, bias_grads


# --------------------------------------------------------------------------- score

def normalized_losses(losses):
    """docs/kernel.md, "Score", up to the convergence test: non-finite -> 1e6 (a select, not a
    multiply), divide by l[0], clip values above 1e6 to 1e6.

    Literal NumPy semantics, no special cases: l[0] non-finite becomes 1e6 like any other
    entry (so v[0] == 1). l[0] == 0 (impossible in practice: it needs out == Y exactly)
    gives v = x / 0 -> inf (clipped to 1e6) or 0 / 0 -> NaN; NaN is kept (np.minimum
    propagates NaN), which then makes the run count as diverged with a NaN score.
    """
    l = np.asarray(losses, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        l = np.where(np.isfinite(l), l, BIG)
        v = l / l[0]
        v = np.minimum(v, BIG)
    return v


def score_from_losses(losses):
    """docs/kernel.md, "Score": converged iff the mean of the last min(20, T) normalised
    values is < 1 (a mean of exactly 1 is diverged); score = -sum(v) if converged,
    else +sum(1 / v)."""
    v = normalized_losses(losses)
    tail = v[-min(WINDOW, len(v)):]
    converged = np.mean(tail) < 1.0
    if converged:
        return float(-np.sum(v))
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.sum(1.0 / v))


# --------------------------------------------------------------------------- training

def _per_layer(offsets, n_layers, what):
    """None -> list of None; else a list with one array (or scalar, or None) per layer."""
    if offsets is None:
        return [None] * n_layers
    if len(offsets) != n_layers:
        raise ValueError(f"{what}: need one entry per layer ({n_layers}), got {len(offsets)}")
    return [None if o is None else np.asarray(o, dtype=np.float64) for o in offsets]


def train(weights0, X, Y, activation, lrs, steps, *, shift=None, init_shift=None,
          batch_idx=None, biases=False, parameterization="mean_field", residual=False,
          loss="mse"):
    """One run of plain gradient descent with per-layer learning rates.

    lrs: one learning rate per layer.
    shift: list (per layer) of arrays/scalars/None, or None. Added to the weights at the
        start of EVERY step, before the loss and gradient are computed:
        W <- (W + off) - lr * grad(W + off)   (the published "offset every step" form;
        the offset therefore accumulates over steps).
    init_shift: same shape convention; added once to the initial weights (init-only form).
    batch_idx: None for full batch, else an int array (steps, B) of row indices: the
        gradient uses rows X[batch_idx[t]], Y[batch_idx[t]]; the RECORDED loss is always
        the full-batch loss at the weights the gradient is taken at.

    biases: a bias per unit, starting at zero, trained with its layer's learning rate
        (shifts act on the weights only).
    parameterization, residual, loss: as in the module docstring; with "standard" the
        initial weights are divided by sqrt(fan_in) before init_shift is added.

    The loss is recorded before each update, so losses[0] is the initial loss (after
    init_shift and after the first shift). Non-finite weights are not special-cased:
    the loop always runs all `steps` steps.

    Returns dict(score, first_nonfinite, final_loss, losses), and for the cross-entropy
    loss also accuracy: the fraction of rows whose largest output (after the last update)
    is the label, a row with a non-finite output counting as wrong.
        score: score_from_losses(losses)
        first_nonfinite: first step t whose recorded loss is non-finite, -1 if none
        final_loss: the normalised value v[T-1] (non-finite -> 1e6, / l[0], clip 1e6)
        losses: np.ndarray (steps,) of raw recorded losses
    """
    n_layers = len(weights0)
    if len(lrs) != n_layers:
        raise ValueError(f"need one learning rate per layer ({n_layers}), got {len(lrs)}")
    if steps < 1:
        raise ValueError("steps must be >= 1")
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    lrs = [float(lr) for lr in lrs]
    shift = _per_layer(shift, n_layers, "shift")
    init_shift = _per_layer(init_shift, n_layers, "init_shift")
    if batch_idx is not None:
        batch_idx = np.asarray(batch_idx)
        if batch_idx.ndim != 2 or batch_idx.shape[0] < steps:
            raise ValueError("batch_idx must have shape (steps, B)")

    W = [np.array(w, dtype=np.float64) for w in weights0]  # copies
    if parameterization == "standard":
        W = [w / np.sqrt(w.shape[0]) for w in W]
    for i in range(n_layers):
        if init_shift[i] is not None:
            W[i] = W[i] + init_shift[i]
    B = [np.zeros(w.shape[1]) for w in W] if biases else None
    arch = {"biases": B, "parameterization": parameterization, "residual": residual}

    losses = np.empty(steps, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for t in range(steps):
            # 1. the offset, every step
            for i in range(n_layers):
                if shift[i] is not None:
                    W[i] = W[i] + shift[i]
            # 2. full-batch loss (recorded) and the gradient, both at these weights
            arch["biases"] = B
            recorded, _ = loss_value_and_dout(forward(W, X, activation, **arch), Y, loss)
            rows = slice(None) if batch_idx is None else batch_idx[t]
            result = loss_and_grads(W, X[rows], Y[rows], activation, loss=loss, **arch)
            grads = result[1]
            losses[t] = recorded
            # 3. the update
            for i in range(n_layers):
                W[i] = W[i] - lrs[i] * grads[i]
                if B is not None:
                    B[i] = B[i] - lrs[i] * result[2][i]
        arch["biases"] = B
        final_out = forward(W, X, activation, **arch)

    bad = np.flatnonzero(~np.isfinite(losses))
    first_nonfinite = int(bad[0]) if bad.size else -1
    v = normalized_losses(losses)
    run = {
        "score": score_from_losses(losses),
        "first_nonfinite": first_nonfinite,
        "final_loss": float(v[-1]),
        "losses": losses,
    }
    if loss == "cross_entropy":
        right = [np.all(np.isfinite(row)) and np.argmax(row) == np.argmax(y)
                 for row, y in zip(final_out, Y)]
        run["accuracy"] = float(np.mean(right))
    return run


# --------------------------------------------------------------------------- sensitivity

def _norm(arrays):
    return math.sqrt(sum(float(np.sum(a * a)) for a in arrays))


def lyapunov(weights0, X, Y, activation, lrs, steps, direction, epsilon, *, batch_idx=None):
    """docs/measures.md, "Sensitivity": the finite-time Lyapunov exponent of one run of plain
    gradient descent (mean field, no biases, no offsets), from a twin renormalized every step.

    direction: one array per layer, shaped like the weights. The twin starts at
        W + r * direction / |direction|, r = epsilon * |W| (norms over all layers).
    After each step of both runs, to W' and twin': d = |twin' - W'|. While d and |W'| are
    finite and positive, add log(d / r), set r = epsilon * |W'| and move the twin to
    W' + (twin' - W') * (r / d); from the first step where they are not, add nothing
    more. Returns the mean of the logs added, NaN if none.
    """
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    run = [np.array(w, dtype=np.float64) for w in weights0]
    r = epsilon * _norm(run)
    size = _norm(direction)
    twin = [w + r * u / size for w, u in zip(run, direction)]
    logs = []
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for t in range(steps):
            rows = slice(None) if batch_idx is None else batch_idx[t]
            run, twin = ([w - lr * g for w, lr, g in
                          zip(ws, lrs, loss_and_grads(ws, X[rows], Y[rows], activation)[1])]
                         for ws in (run, twin))
            diff = [b - a for a, b in zip(run, twin)]
            d, new_r = _norm(diff), epsilon * _norm(run)
            if not (np.isfinite(d) and d > 0 and np.isfinite(new_r) and new_r > 0):
                break
            logs.append(math.log(d / r))
            r = new_r
            twin = [a + e * (r / d) for a, e in zip(run, diff)]
    return float(np.mean(logs)) if logs else math.nan
