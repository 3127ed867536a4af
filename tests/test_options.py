"""Config keys of the optimizers, architectures and tasks: defaults that reproduce the
paper's setup, stores written before these keys existed, and bad combinations refused with
one line naming the keys."""

import pytest
from test_config import test_bad_values_name_the_key_and_what_is_valid as _refused

from fractalsweep import config
from fractalsweep.config import resolve
from fractalsweep.errors import ConfigError

# The canonical config a store made before these keys existed holds (today's defaults).
OLD_STORED = {
    "model": {"width": 16, "depth": 2, "activation": "tanh"},
    "data": {"task": "random_regression", "size": "params", "target_dim": 1,
             "input_dim": "width"},
    "training": {"steps": 1000, "batch": "full", "batch_seed": 42, "optimizer": "gd",
                 "lr": 1.0},
    "x": {"kind": "lr", "layer": 0, "lo": "0.001", "hi": "1000000", "scale": "log"},
    "y": {"kind": "lr", "layer": 1, "lo": "0.001", "hi": "1000000", "scale": "log"},
    "grid": {"resolution": [48, 48]}, "dtype": "float64", "scheme": "legacy", "seed": 0,
    "name": "sweep",
}


def test_an_old_store_resolves_to_todays_defaults():
    old = config.from_dict(OLD_STORED)
    assert old == resolve({})
    assert config.from_dict(old.to_dict()) == old
    assert (old.model.parameterization, old.model.biases, old.model.residual) == (
        "mean_field", False, False)
    assert old.training.weight_decay == 0.0 and old.n_params == 272 == old.n_data


@pytest.mark.parametrize("raw,words", [
    ({"x": {"kind": "beta2", "lo": "0.9", "hi": "0.99"}}, ["x.kind", "beta2", "adam or adamw",
                                                           "'gd'"]),
    ({"training": {"optimizer": "adam"}, "y": {"kind": "momentum", "lo": "0.5", "hi": "0.9"}},
     ["y.kind", "momentum", "training.optimizer"]),
    ({"training": {"beta1": 0.5}}, ["training.beta1", "adam or adamw", "'gd'"]),
    ({"training": {"optimizer": "adam", "nesterov": True}}, ["training.nesterov", "momentum"]),
    ({"training": {"optimizer": "sgd"}}, ["training.optimizer", "gd, momentum, adam, adamw"]),
    ({"training": {"optimizer": "momentum", "nesterov": "yes"}}, ["training.nesterov", "true"]),
    ({"model": {"residual": True}}, ["model.residual", "model.depth >= 3"]),
    ({"model": {"parameterization": "ntk"}}, ["model.parameterization", "mean_field, standard"]),
    ({"model": {"biases": 1}}, ["model.biases", "true or false"]),
    ({"data": {"image": "sample"}}, ["data.image", "random_regression"]),
    ({"data": {"task": "image_fit", "size": 300}}, ["data.size", "289"]),
    ({"data": {"task": "image_fit", "image": "mandelbrt"}}, ["data.image", "mandelbrot, sample"]),
    ({"data": {"task": "image_fit", "fourier_features": 4, "fourier_scale": 0}},
     ["data.fourier_scale", "> 0"]),
    ({"data": {"task": "digits", "target_dim": 3}}, ["data.target_dim", "10"]),
    ({"data": {"task": "digits", "size": 5000}}, ["data.size", "1797"]),
    ({"data": {"task": "digits", "fourier_features": 3}}, ["data.fourier_features", "digits"]),
    ({"x": {"kind": "weight_decay", "layer": 5, "log10": [-3, 0]}}, ["x.layer", "0..1"]),
])
def test_bad_combinations_are_refused_naming_the_keys(raw, words):
    _refused(raw, words)


def test_tasks_fix_their_dimensions():
    digits = resolve({"data": {"task": "digits"}})
    assert digits.layer_shapes == ((64, 16), (16, 10))
    assert digits.n_data == (64 * 16 + 16 * 10) // 10
    image = resolve({"data": {"task": "image_fit"}})
    assert image.layer_shapes == ((2, 16), (16, 1)) and image.n_data == 36  # 48 -> 6 x 6
    fourier = resolve({"data": {"task": "image_fit", "fourier_features": 8, "size": 64}})
    assert fourier.layer_shapes == ((16, 16), (16, 1)) and fourier.n_data == 64
    assert config.from_dict(fourier.to_dict()) == fourier


def test_axis_kinds_for_optimizer_hyperparameters():
    cfg = resolve({"training": {"optimizer": "adamw"},
                   "x": {"kind": "weight_decay", "log10": [-4, -1]},
                   "y": {"kind": "beta1", "lo": "0.5", "hi": "0.99", "scale": "linear"}})
    assert cfg.x.layer is None and cfg.x.label == "weight decay"
    one = resolve({"x": {"kind": "weight_decay", "layer": 1, "log10": [-4, -1]}})
    assert one.x.label == "weight decay (layer 1)"
    with pytest.raises(ConfigError, match="y.layer"):
        resolve({"training": {"optimizer": "momentum"},
                 "y": {"kind": "momentum", "layer": 0, "lo": "0.1", "hi": "0.9"}})
