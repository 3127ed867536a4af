"""The optimizers against optax: the same network trained by the kernel's step function and
by the matching optax transformation (per-layer learning rates applied to optax's update
direction, gradients from jax.grad of a forward pass written here) records the same loss
sequence to 1e-12 over 100 steps, and the kernel scores that sequence."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fractalsweep import config, kernel, score, streams
from fractalsweep.axes import hyper_for

STEPS = 100


def _optax_direction(training, hyper):
    """optax's transformation for a config's optimizer, with the pixel's hyperparameters."""
    if training.optimizer == "gd":
        core = optax.identity()
    elif training.optimizer == "momentum":
        core = optax.trace(decay=hyper.momentum, nesterov=training.nesterov)
    else:
        core = optax.scale_by_adam(b1=hyper.beta1, b2=hyper.beta2, eps=hyper.eps)
    decay = [optax.identity() if wd is None else optax.add_decayed_weights(wd)
             for wd in hyper.weight_decay]
    # per-layer decay: one transformation per layer, as optax.multi_transform would
    layers = [optax.chain(core, d) if training.optimizer == "adamw" else optax.chain(d, core)
              for d in decay]
    return layers


def _optax_losses(cfg, arrays, x, y):
    """Loss sequence of the pixel (x, y) trained with optax; mean-field forward pass."""
    hyper = hyper_for(cfg, x, y)
    weights = [jnp.asarray(arrays[f"w{i}"]) for i in range(cfg.model.depth)]
    X, Y = jnp.asarray(arrays["X"]), jnp.asarray(arrays["Y"])

    def loss(ws):
        h = X
        for i, w in enumerate(ws):
            z = h @ w / np.sqrt(w.shape[0])
            h = z / np.sqrt(w.shape[0]) if i == len(ws) - 1 else jnp.tanh(np.sqrt(2) * z)
        return jnp.mean((h - Y) ** 2)

    transforms = _optax_direction(cfg.training, hyper)
    states = [t.init(w) for t, w in zip(transforms, weights)]
    losses = []
    for _ in range(STEPS):
        value, grads = jax.value_and_grad(loss)(weights)
        losses.append(value)
        for i, t in enumerate(transforms):
            direction, states[i] = t.update(grads[i], states[i], weights[i])
            weights[i] = weights[i] - hyper.lr[i] * direction
    return np.array(losses)


def _kernel_losses(cfg, arrays, x, y):
    """Loss sequence of the same pixel through the kernel's own step function."""
    parts = kernel.Parts.from_config(cfg)
    weights, data, _ = kernel.prepare(cfg, arrays)
    hyper = hyper_for(cfg, x, y)
    params, state = kernel.net_init(parts, weights, hyper)

    def body(carry, _):
        params, state = carry
        params, state, loss = kernel.net_step(parts, params, state, hyper, data, None)
        return (params, state), loss

    return np.asarray(jax.lax.scan(body, (params, state), None, length=STEPS)[1])


CASES = {  # a config and pixels where training is smooth (not chaotic) for 100 steps; lr
    # where a layer's learning rate is no axis's
    "gd, weight decay of layer 1": ({"optimizer": "gd"},
                                    {"kind": "lr_all", "lo": "5", "hi": "20"},
                                    {"kind": "weight_decay", "layer": 1, "lo": "0.001",
                                     "hi": "0.1"}),
    "momentum": ({"optimizer": "momentum"}, {"kind": "lr_all", "lo": "1", "hi": "5"},
                 {"kind": "momentum", "lo": "0.5", "hi": "0.95"}),
    "nesterov, L2 decay": ({"optimizer": "momentum", "nesterov": True, "weight_decay": 0.01},
                           {"kind": "lr_all", "lo": "1", "hi": "5"},
                           {"kind": "momentum", "lo": "0.5", "hi": "0.9"}),
    "adam": ({"optimizer": "adam", "lr": 0.05},
             {"kind": "lr", "layer": 0, "lo": "0.01", "hi": "0.1"},
             {"kind": "beta2", "lo": "0.9", "hi": "0.999"}),
    "adam, eps and L2": ({"optimizer": "adam", "weight_decay": 0.001},
                         {"kind": "lr_all", "lo": "0.01", "hi": "0.1"},
                         {"kind": "eps", "lo": "1e-8", "hi": "0.01"}),
    "adamw": ({"optimizer": "adamw", "lr": 0.05}, {"kind": "beta1", "lo": "0.5", "hi": "0.95"},
              {"kind": "weight_decay", "lo": "0.0001", "hi": "0.1"}),
}


@pytest.mark.parametrize("name", CASES)
def test_loss_sequence_equals_optax(name):
    training, x_axis, y_axis = CASES[name]
    cfg = config.resolve({"training": {"steps": STEPS, **training},
                          "x": x_axis, "y": y_axis})
    arrays = streams.draw(cfg)
    xs = np.array([float(x_axis["lo"]), float(x_axis["hi"])])
    ys = np.array([float(y_axis["hi"]), float(y_axis["lo"])])
    out = kernel.train(cfg, arrays, xs, ys)
    with jax.enable_x64(True):
        for i, (x, y) in enumerate(zip(xs, ys)):
            want = _optax_losses(cfg, arrays, x, y)
            assert want[-1] < 0.98 * want[0], "a point where training makes progress"
            np.testing.assert_allclose(_kernel_losses(cfg, arrays, x, y), want, rtol=1e-12)
            expected = score.from_losses(want)
            np.testing.assert_allclose(out["score"][i], expected["score"], rtol=1e-12)
            np.testing.assert_allclose(out["final_loss"][i], expected["final_loss"], rtol=1e-12)


def test_adamw_default_decay_is_optax_default():
    assert config.resolve({"training": {"optimizer": "adamw"}}).training.weight_decay == 1e-4
    assert config.resolve({"training": {"optimizer": "adam"}}).training.weight_decay == 0.0
