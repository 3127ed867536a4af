"""Checks of tests/reference.py against independent facts (finite differences,
hand-computed scores, hand-derived gradient-descent steps)."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref

S2 = np.sqrt(2.0)


# --------------------------------------------------------------------------- helpers

def _problem(seed, shapes, n_rows, scale=1.0):
    rng = np.random.default_rng(seed)
    weights = [scale * rng.standard_normal(s) for s in shapes]
    X = rng.standard_normal((n_rows, shapes[0][0]))
    Y = rng.standard_normal((n_rows, shapes[-1][1]))
    return weights, X, Y


def _hidden_preacts(weights, X, activation):
    h, zs = X, []
    for W in weights[:-1]:
        z = h @ W / np.sqrt(W.shape[0])
        zs.append(z)
        h = ref.phi(activation, z)
    return zs


def _numerical_grads(weights, X, Y, activation, eps=1e-6, **arch):
    """Central differences of the loss w.r.t. every entry of every array in ``weights``
    (and of ``arch["biases"]``, returned after the weights' when given)."""
    arrays = list(weights) + list(arch.get("biases") or [])
    n = len(weights)

    def loss(values):
        kw = dict(arch, biases=values[n:]) if arch.get("biases") is not None else arch
        return ref.loss_and_grads(values[:n], X, Y, activation, **kw)[0]

    grads = []
    for i, W in enumerate(arrays):
        g = np.zeros_like(W)
        for idx in np.ndindex(W.shape):
            plus = [a.copy() for a in arrays]
            minus = [a.copy() for a in arrays]
            plus[i][idx] += eps
            minus[i][idx] -= eps
            g[idx] = (loss(plus) - loss(minus)) / (2 * eps)
        grads.append(g)
    return grads


# --------------------------------------------------------------------------- phi / forward

@pytest.mark.parametrize("name", ["tanh", "relu", "identity", "gelu", "sin"])
def test_phi_values(name):
    z = np.array([-1.3, -0.2, 0.4, 2.0])
    expected = {
        "tanh": np.tanh(S2 * z),
        "relu": S2 * np.array([0.0, 0.0, 0.4, 2.0]),
        "identity": z,
        # z * Phi(z), Phi from a table of the standard normal CDF
        "gelu": z * np.array([0.0968004845856103, 0.420740290560897, 0.655421741610324,
                              0.977249868051821]),
        "sin": np.sin(z),
    }[name]
    np.testing.assert_allclose(ref.phi(name, z), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", ["tanh", "relu", "identity", "gelu", "sin"])
def test_dphi_matches_finite_difference(name):
    z = np.array([-1.3, -0.2, 0.4, 2.0])  # away from the relu kink
    eps = 1e-6
    fd = (ref.phi(name, z + eps) - ref.phi(name, z - eps)) / (2 * eps)
    np.testing.assert_allclose(ref.dphi(name, z), fd, rtol=1e-8, atol=1e-9)


def test_dphi_relu_at_zero_is_zero():
    assert ref.dphi("relu", np.array([0.0]))[0] == 0.0


def test_forward_depth2_matches_the_documented_formula():
    # docs/kernel.md, "Network", literally: Z0 = X@W0/sqrt(n); H = phi(Z0); out = (H@W1/sqrt(n))/sqrt(n)
    weights, X, Y = _problem(0, [(16, 16), (16, 1)], 272)
    W0, W1 = weights
    n = 16
    H = np.tanh(S2 * (X @ W0 / np.sqrt(n)))
    out = (H @ W1 / np.sqrt(n)) / np.sqrt(n)
    np.testing.assert_allclose(ref.forward(weights, X, "tanh"), out, rtol=1e-14, atol=1e-15)
    loss, _ = ref.loss_and_grads(weights, X, Y, "tanh")
    assert loss == pytest.approx(np.sum((out - Y) ** 2) / 272, rel=1e-14)


def test_forward_depth3_uneven_widths():
    # fan_in differs per layer: d_in=3, widths 5 then 4, target 2
    weights, X, _ = _problem(1, [(3, 5), (5, 4), (4, 2)], 7)
    W0, W1, W2 = weights
    h1 = S2 * np.maximum(X @ W0 / np.sqrt(3), 0)
    h2 = S2 * np.maximum(h1 @ W1 / np.sqrt(5), 0)
    out = h2 @ W2 / 4.0  # sqrt(4) twice
    np.testing.assert_allclose(ref.forward(weights, X, "relu"), out, rtol=1e-14, atol=1e-15)


# --------------------------------------------------------------------------- gradients

GRAD_CASES = [
    ("tanh", [(3, 4), (4, 2)]),
    ("tanh", [(3, 4), (4, 5), (5, 2)]),
    ("relu", [(3, 4), (4, 1)]),
    ("relu", [(2, 5), (5, 3), (3, 2)]),
    ("identity", [(3, 4), (4, 2)]),
    ("identity", [(4, 3), (3, 3), (3, 1)]),
]


@pytest.mark.parametrize("activation,shapes", GRAD_CASES)
def test_grads_match_finite_differences(activation, shapes):
    for seed in range(100):
        weights, X, Y = _problem(seed, shapes, n_rows=6)
        if activation != "relu":
            break
        # keep every hidden pre-activation well away from the relu kink
        if min(np.min(np.abs(z)) for z in _hidden_preacts(weights, X, activation)) > 1e-2:
            break
    else:
        pytest.fail("no seed with pre-activations away from the kink")
    _, grads = ref.loss_and_grads(weights, X, Y, activation)
    num = _numerical_grads(weights, X, Y, activation)
    assert len(grads) == len(weights)
    for g, gn, W in zip(grads, num, weights):
        assert g.shape == W.shape
        np.testing.assert_allclose(g, gn, rtol=1e-6, atol=1e-8)


ARCH_CASES = [
    ("gelu", [(3, 4), (4, 4), (4, 2)], {}),
    ("sin", [(3, 4), (4, 2)], {}),
    ("tanh", [(3, 4), (4, 2)], {"biases": True}),
    ("tanh", [(3, 4), (4, 4), (4, 4), (4, 2)], {"residual": True}),
    ("gelu", [(3, 4), (4, 4), (4, 1)], {"residual": True, "biases": True}),
    ("tanh", [(3, 4), (4, 2)], {"parameterization": "standard"}),
    ("sin", [(3, 5), (5, 4)], {"loss": "cross_entropy", "biases": True}),
]


@pytest.mark.parametrize("activation,shapes,arch", ARCH_CASES)
def test_grads_of_other_architectures_match_finite_differences(activation, shapes, arch):
    weights, X, Y = _problem(3, shapes, n_rows=6)
    arch = dict(arch)
    if arch.get("loss") == "cross_entropy":
        Y = np.eye(shapes[-1][1])[np.arange(6) % shapes[-1][1]]
    if arch.pop("biases", False):
        arch["biases"] = [np.random.default_rng(4).normal(size=s[1]) for s in shapes]
    result = ref.loss_and_grads(weights, X, Y, activation, **arch)
    grads = result[1] + (result[2] if "biases" in arch else [])
    for g, gn in zip(grads, _numerical_grads(weights, X, Y, activation, **arch), strict=True):
        np.testing.assert_allclose(g, gn, rtol=1e-6, atol=1e-8)


def test_residual_and_standard_forward_by_formula():
    weights, X, _ = _problem(8, [(3, 4), (4, 4), (4, 1)], 5)
    W0, W1, W2 = weights
    h1 = np.tanh(S2 * X @ W0)
    h2 = h1 + np.tanh(S2 * h1 @ W1)  # the residual joins the two hidden layers of width 4
    np.testing.assert_allclose(
        ref.forward(weights, X, "tanh", parameterization="standard", residual=True),
        h2 @ W2, rtol=1e-14)


def test_cross_entropy_by_hand():
    out = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]])
    Y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    p = np.exp(out) / np.exp(out).sum(axis=1, keepdims=True)
    loss, g = ref.loss_value_and_dout(out, Y, "cross_entropy")
    assert loss == pytest.approx(-(np.log(p[0, 1]) + np.log(p[1, 0])) / 2, rel=1e-14)
    np.testing.assert_allclose(g, (p - Y) / 2, rtol=1e-14)


def test_train_records_accuracy_for_cross_entropy():
    # one example, two classes: out = (w0 x w1) / 1, label class 1 wins once w1[1] > w1[0]
    r = ref.train([np.array([[1.0]]), np.array([[1.0, -1.0]])], np.array([[1.0]]),
                  np.array([[0.0, 1.0]]), "identity", [0.0, 1.0], 3, loss="cross_entropy")
    assert r["accuracy"] == 1.0 and r["losses"][0] > r["losses"][-1]


# --------------------------------------------------------------------------- score

def test_score_short_converging():
    # v = [1, 0.5, 0.25], mean 0.5833 < 1 -> converged
    assert ref.score_from_losses([4.0, 2.0, 1.0]) == -(1.0 + 0.5 + 0.25)


def test_score_single_step():
    # v = [1], mean 1 is not < 1 -> diverged, score = 1/1
    assert ref.score_from_losses([3.7]) == 1.0


def test_score_diverging_with_inf_and_nan():
    # inf, nan -> 1e6 ; v = [1, 2, 5e5, 5e5] ; mean > 1 -> diverged
    s = ref.score_from_losses([2.0, 4.0, np.inf, np.nan])
    assert s == pytest.approx(1.0 + 0.5 + 2e-6 + 2e-6, rel=1e-15)
    assert s > 0


def test_score_negative_inf_is_also_replaced():
    s = ref.score_from_losses([2.0, -np.inf])
    assert s == pytest.approx(1.0 + 2e-6, rel=1e-15)


def test_score_clip_above_1e6():
    # l0 = 1e-3: v = [1, 1e3, 1e7 -> 1e6, (inf -> 1e6)/1e-3 = 1e9 -> 1e6, nan -> 1e9 -> 1e6]
    s = ref.score_from_losses([1e-3, 1.0, 1e4, np.inf, np.nan])
    assert s == pytest.approx(1.0 + 1e-3 + 1e-6 + 1e-6 + 1e-6, rel=1e-14)
    v = ref.normalized_losses([1e-3, 1.0, 1e4, np.inf, np.nan])
    np.testing.assert_array_equal(v[2:], [1e6, 1e6, 1e6])


def test_score_fewer_than_20_uses_all_values():
    # T = 5: v = [1, .1, .1, .1, 3] ; mean of all 5 = 4.3/5 = 0.86 < 1 -> converged
    # (the last value alone, 3, would say diverged)
    s = ref.score_from_losses([1.0, 0.1, 0.1, 0.1, 3.0])
    assert s == pytest.approx(-(1.0 + 0.1 + 0.1 + 0.1 + 3.0), rel=1e-15)


def test_score_exactly_20():
    # v = [1, 11, 0.4 x 18] ; mean = (1 + 11 + 7.2)/20 = 0.96 < 1 -> converged
    losses = [2.0, 22.0] + [0.8] * 18
    assert len(losses) == 20
    assert ref.score_from_losses(losses) == pytest.approx(-(1.0 + 11.0 + 18 * 0.4), rel=1e-14)


def test_score_window_is_last_20_values():
    # T = 21: v = [1, 21, 0.5 x 19]; last 20 = 21 + 9.5 -> mean 1.525 -> diverged
    s21 = ref.score_from_losses([2.0, 42.0] + [1.0] * 19)
    assert s21 == pytest.approx(1.0 + 1.0 / 21.0 + 19 * 2.0, rel=1e-14)
    # T = 22: v = [1, 21, 0.5 x 20]; last 20 all 0.5 -> converged
    s22 = ref.score_from_losses([2.0, 42.0] + [1.0] * 20)
    assert s22 == pytest.approx(-(1.0 + 21.0 + 20 * 0.5), rel=1e-14)


def test_score_mean_exactly_one_is_diverged():
    # all equal: v = 1 everywhere, mean exactly 1 -> diverged, score = T
    assert ref.score_from_losses([3.0] * 25) == 25.0
    # T = 21: v = [1] + [0.5, 1.5] x 10 ; last 20 sum to exactly 20 -> diverged
    losses = [2.0] + [1.0, 3.0] * 10
    s = ref.score_from_losses(losses)
    assert s == pytest.approx(1.0 + 10 * 2.0 + 10 * (1.0 / 1.5), rel=1e-14)


def test_score_nonfinite_first_loss_becomes_1e6():
    # l0 = nan -> 1e6 ; v = [1, .5, .25] -> converged
    assert ref.score_from_losses([np.nan, 5e5, 2.5e5]) == -(1.0 + 0.5 + 0.25)
    # l0 = inf, then everything overflows as well -> all 1 -> diverged, score = 3
    assert ref.score_from_losses([np.inf, np.nan, np.inf]) == 3.0


# --------------------------------------------------------------------------- training

def test_train_scalar_network_by_hand():
    # d_in = width = target = 1, N = 1: fan_ins are 1, so out = x * w0 * w1 (identity).
    # x=1, y=0, w0=1, w1=2, lr=0.1 both.
    #   step 0: out=2, L0=4, dL/dout=4, g0=dL/dout*x*w1=8, g1=dL/dout*x*w0=4
    #           w0 = 1 - 0.8 = 0.2 ; w1 = 2 - 0.4 = 1.6
    #   step 1: out = 0.32, L1 = 0.1024
    r = ref.train([np.array([[1.0]]), np.array([[2.0]])], np.array([[1.0]]), np.array([[0.0]]),
                  "identity", [0.1, 0.1], 2)
    np.testing.assert_allclose(r["losses"], [4.0, 0.1024], rtol=1e-14)
    assert r["final_loss"] == pytest.approx(0.1024 / 4.0, rel=1e-14)
    # v = [1, 0.0256], mean < 1 -> converged
    assert r["score"] == pytest.approx(-(1.0 + 0.0256), rel=1e-14)
    assert r["first_nonfinite"] == -1

    r1 = ref.train([np.array([[1.0]]), np.array([[2.0]])], np.array([[1.0]]), np.array([[0.0]]),
                   "identity", [0.1, 0.1], 1)
    np.testing.assert_allclose(r1["losses"], [4.0])
    assert r1["score"] == 1.0 and r1["final_loss"] == 1.0


def _identity_closed_form(W0, W1, X, Y):
    """Two-layer identity net written as one product: out = X W0 W1 / (sqrt(d) * w)."""
    d, w = W0.shape[0], W1.shape[0]
    c = 1.0 / (np.sqrt(d) * np.sqrt(w) * np.sqrt(w))
    r = c * X @ W0 @ W1 - Y
    loss = np.sum(r ** 2) / r.size
    G = 2.0 * r / r.size                # dL/dout
    g0 = c * X.T @ G @ W1.T
    g1 = c * (X @ W0).T @ G
    return loss, g0, g1


def test_train_identity_two_steps_by_formula():
    rng = np.random.default_rng(5)
    W0 = rng.standard_normal((3, 4))
    W1 = rng.standard_normal((4, 2))
    W0_before, W1_before = W0.copy(), W1.copy()
    X = rng.standard_normal((5, 3))
    Y = rng.standard_normal((5, 2))
    lr0, lr1 = 0.3, 0.7

    L0, g0, g1 = _identity_closed_form(W0, W1, X, Y)
    A0, A1 = W0 - lr0 * g0, W1 - lr1 * g1
    L1, _, _ = _identity_closed_form(A0, A1, X, Y)

    r = ref.train([W0, W1], X, Y, "identity", [lr0, lr1], 2)
    np.testing.assert_allclose(r["losses"], [L0, L1], rtol=1e-12)
    assert r["final_loss"] == pytest.approx(L1 / L0, rel=1e-12)
    v = np.array([1.0, L1 / L0])
    expected = -v.sum() if v.mean() < 1 else np.sum(1 / v)
    assert r["score"] == pytest.approx(expected, rel=1e-12)
    # the inputs are not modified
    assert np.array_equal(W0, W0_before) and np.array_equal(W1, W1_before)


def test_train_shift_every_step_and_init_shift():
    rng = np.random.default_rng(6)
    W0 = rng.standard_normal((3, 4))
    W1 = rng.standard_normal((4, 1))
    X = rng.standard_normal((4, 3))
    Y = rng.standard_normal((4, 1))
    off = 0.05 * np.ones((3, 4))
    lr = 0.2
    steps = 3

    # every step: W0 <- (W0 + off) - lr * grad(W0 + off); loss recorded at W0 + off
    A0, A1 = W0.copy(), W1.copy()
    expected = []
    for _ in range(steps):
        A0 = A0 + off
        L, g0, g1 = _identity_closed_form(A0, A1, X, Y)
        expected.append(L)
        A0, A1 = A0 - lr * g0, A1 - lr * g1
    r = ref.train([W0, W1], X, Y, "identity", [lr, lr], steps, shift=[off, None])
    np.testing.assert_allclose(r["losses"], expected, rtol=1e-12)

    # init only: W0 <- W0 + off once, then plain GD
    A0, A1 = W0 + off, W1.copy()
    expected = []
    for _ in range(steps):
        L, g0, g1 = _identity_closed_form(A0, A1, X, Y)
        expected.append(L)
        A0, A1 = A0 - lr * g0, A1 - lr * g1
    r = ref.train([W0, W1], X, Y, "identity", [lr, lr], steps, init_shift=[off, None])
    np.testing.assert_allclose(r["losses"], expected, rtol=1e-12)


def test_train_minibatch_gradient_full_batch_loss():
    rng = np.random.default_rng(7)
    W0 = rng.standard_normal((2, 3))
    W1 = rng.standard_normal((3, 1))
    X = rng.standard_normal((4, 2))
    Y = rng.standard_normal((4, 1))
    lr0, lr1 = 0.4, 0.9
    # step 0 uses rows (1, 1, 3): duplicates count twice in the batch mean; step 1 rows (0, 2, 2)
    batch_idx = np.array([[1, 1, 3], [0, 2, 2]])

    L0, _, _ = _identity_closed_form(W0, W1, X, Y)
    _, g0, g1 = _identity_closed_form(W0, W1, X[[1, 1, 3]], Y[[1, 1, 3]])
    A0, A1 = W0 - lr0 * g0, W1 - lr1 * g1
    L1, _, _ = _identity_closed_form(A0, A1, X, Y)

    r = ref.train([W0, W1], X, Y, "identity", [lr0, lr1], 2, batch_idx=batch_idx)
    np.testing.assert_allclose(r["losses"], [L0, L1], rtol=1e-12)


def test_train_tanh_scalar_network_by_hand():
    # fan_ins 1: out = w1 * tanh(sqrt2 * x * w0)
    x, y, w0, w1, lr0, lr1 = 0.7, -0.3, 0.9, 1.5, 0.25, 0.5
    t = np.tanh(S2 * x * w0)
    out = w1 * t
    L0 = (out - y) ** 2
    G = 2 * (out - y)
    g0 = G * w1 * S2 * (1 - t ** 2) * x
    g1 = G * t
    w0n, w1n = w0 - lr0 * g0, w1 - lr1 * g1
    L1 = (w1n * np.tanh(S2 * x * w0n) - y) ** 2
    r = ref.train([np.array([[w0]]), np.array([[w1]])], np.array([[x]]), np.array([[y]]),
                  "tanh", [lr0, lr1], 2)
    np.testing.assert_allclose(r["losses"], [L0, L1], rtol=1e-13)


def test_train_divergence_runs_all_steps():
    # scalar identity net with a huge learning rate: blows up, then inf/nan, never stops early
    steps = 40
    r = ref.train([np.array([[1.0]]), np.array([[2.0]])], np.array([[1.0]]), np.array([[0.0]]),
                  "identity", [10.0, 10.0], steps)
    losses = r["losses"]
    assert losses.shape == (steps,)
    assert r["first_nonfinite"] > 0
    k = r["first_nonfinite"]
    assert np.all(np.isfinite(losses[:k])) and not np.isfinite(losses[k])
    assert np.all(~np.isfinite(losses[k:]))
    assert r["final_loss"] == pytest.approx(1e6 / 4.0)  # l0 = 4, last loss non-finite
    assert r["score"] > 0
    assert r["score"] == pytest.approx(ref.score_from_losses(losses))
