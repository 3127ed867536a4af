"""Job files, overrides and validation."""

import dataclasses
import tomllib
from pathlib import Path

import pytest

from fractalsweep import config
from fractalsweep.config import ConfigError, apply_overrides, resolve


def test_defaults_are_the_paper_baseline():
    cfg = resolve({})
    assert cfg.layer_shapes == ((16, 16), (16, 1))
    assert cfg.n_params == 272 and cfg.n_data == 272
    assert (cfg.x.kind, cfg.x.layer, cfg.y.layer) == ("lr", 0, 1)
    assert (cfg.x.lo, cfg.x.hi) == ("0.001", "1000000")
    assert cfg.dtype == "float64" and cfg.scheme == "legacy"


def test_the_documented_defaults_are_the_defaults():
    """docs/jobs.md's first block shows every key with its default ([x] standing for [y])."""
    block = (Path(__file__).parents[1] / "docs" / "jobs.md").read_text().split("```toml\n")[1]
    documented = tomllib.loads(block.split("```")[0])
    defaults = resolve({}).to_dict()
    assert resolve(documented).to_dict() == defaults
    sections = {key for key, value in defaults.items() if isinstance(value, dict)} - {"y"}
    assert set(documented) == set(defaults) - {"y"}
    assert {s: set(documented[s]) for s in sections} == {s: set(defaults[s]) for s in sections}


def test_resolved_form_round_trips():
    cfg = resolve({"x": {"log10": [-2, 0.5]}, "training": {"batch": 16}})
    assert resolve(cfg.to_dict()) == cfg


def test_overrides_keep_every_digit():
    raw = apply_overrides({}, ["x.lo=0.26739883547195712345", "x.hi=0.3", "grid.resolution=[8, 6]",
                               "model.activation=relu"])
    cfg = resolve(raw)
    assert cfg.x.lo == "0.26739883547195712345"
    assert cfg.grid.resolution == (8, 6)
    assert cfg.model.activation == "relu"


def test_overrides_read_every_toml_spelling_of_a_float_as_written_in_a_file():
    spellings = ["1e-3", "1E-3", "0.0010", "+0.001", "1.0e-3", "0.000_1e1"]
    for text in spellings:
        assert apply_overrides({}, [f"training.lr={text}"]) == {"training": {"lr": 0.001}}
    cfg = resolve(apply_overrides({"training": {"optimizer": "adam"}}, ["training.eps=1e-8"]))
    assert cfg == resolve({"training": {"optimizer": "adam", "eps": 1e-8}})


def test_every_job_resolves(job_dir):
    jobs = sorted(p for p in job_dir.rglob("*.toml") if p.parent.name != "clusters")
    assert len(jobs) >= 16
    for path in jobs:
        cfg = resolve(tomllib.loads(path.read_text()))
        assert cfg.name == path.stem


def test_identity_and_one_point_data_sizes(job_dir):
    linear = resolve(config.load_job(job_dir / "paper" / "deep_linear.toml"))
    one = resolve(config.load_job(job_dir / "paper" / "tanh_one_point.toml"))
    assert (linear.n_data, one.n_data) == (16, 1)


@pytest.mark.parametrize("raw,words", [
    ({"modle": {}}, ["modle", "model"]),
    ({"model": {"widht": 3}}, ["model.widht", "width"]),
    ({"model": {"width": "16"}}, ["model.width", "integer"]),
    ({"model": {"activation": "swish"}}, ["swish", "tanh, relu, identity"]),
    ({"x": {"kind": "momentum", "log10": [0, 1]}}, ["momentum", "lr, lr_all"]),
    ({"x": {"lo": "-1", "hi": "2"}}, ["x", "positive"]),
    ({"x": {"lo": "2", "hi": "1"}}, ["lo must be below hi"]),
    ({"x": {"lo": "abc", "hi": "1"}}, ["x.lo", "decimal"]),
    ({"grid": {"resolution": 1}}, ["grid.resolution", ">= 2"]),
    ({"training": {"steps": 0}}, ["training.steps", ">= 1"]),
    ({"training": {"batch": 1000}}, ["training.batch", "272"]),
    ({"training": {"batch": "Full"}}, ["training.batch = 'Full'", 'integer >= 1 or "full"']),
    ({"data": {"size": "param"}}, ["data.size = 'param'", 'integer >= 1 or "params"']),
    ({"data": {"input_dim": 0}}, ["data.input_dim = 0: must be >= 1"]),
    ({"data": {"input_dim": "w"}}, ["data.input_dim = 'w'", 'integer >= 1 or "width"']),
    ({"y": {"kind": "lr", "layer": 2, "log10": [0, 1]}}, ["y.layer", "0..1"]),
    ({"y": {"kind": "lr_all", "layer": 1, "log10": [0, 1]}}, ["y.layer"]),
    ({"dtype": "float16"}, ["dtype", "float64, float32"]),
    ({"scheme": "new"}, ["scheme", "legacy, default"]),
    ({"x": {"kind": "lr", "layer": 1}, "y": {"kind": "lr", "layer": 1}},
     ["x and y both set the learning rate (layer 1)", "'lr' overwrites"]),
    ({"x": {"kind": "lr", "layer": 1}, "y": {"kind": "lr_all"}}, ["learning rate (all layers)"]),
    ({"x": {"log10": [0, 1], "lo": "1"}}, ["x: give the window either", "not both"]),
    ({"training": {"batch_seed": 5}}, ["training.batch_seed is read with minibatches"]),
    ({"training": {"lr": 0.5}},  # the default axes are the two layers' learning rates
     ["training.lr = 0.5 is read by no pixel: x.kind = 'lr' and y.kind = 'lr' set it"]),
    ({"training": {"optimizer": "momentum", "momentum": 0.5},
      "x": {"kind": "momentum", "lo": "0.1", "hi": "0.9", "scale": "linear"}},
     ["training.momentum = 0.5 is read by no pixel: x.kind = 'momentum' sets it"]),
    ({"training": {"weight_decay": 0.1}, "y": {"kind": "weight_decay", "log10": [-3, 0]},
      "x": {"kind": "lr_all"}}, ["training.weight_decay = 0.1", "y.kind = 'weight_decay'"]),
    ({"data": {"task": "image_fit", "fourier_scale": "big"}}, ["data.fourier_scale = 'big'"]),
    ({"data": {"task": "image_fit", "fourier_scale": 2.5}},
     ["data.fourier_scale is read with data.fourier_features > 0"]),
])
def test_bad_values_name_the_key_and_what_is_valid(raw, words):
    with pytest.raises(ConfigError) as err:
        resolve(raw)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_what_a_section_leaves_out_is_the_default():
    """An axis with no window has the system's own; a task that fixes a key takes its
    default too; one axis overwriting part of the other is a sweep."""
    assert resolve({"x": {"kind": "lr_all"}}).x == dataclasses.replace(
        resolve({}).x, kind="lr_all", layer=None)
    fractal = resolve({"system": {"kind": "julia"}, "x": {"kind": "re", "lo": "-1"}}).x
    assert (fractal.lo, fractal.hi, fractal.scale) == ("-1", "2", "linear")
    assert resolve({"data": {"task": "digits", "target_dim": 1}}).data.target_dim == 10
    assert resolve({"data": {"task": "image_fit", "input_dim": "width"}}).data.input_dim == 2
    both = resolve({"x": {"kind": "lr_all"}, "y": {"kind": "lr", "layer": 1}})
    assert (both.x.layer, both.y.layer) == (None, 1)
    assert resolve({"training": {"batch": 16, "batch_seed": 5}}).training.batch_seed == 5
    # a training value read by the layers no axis sets
    assert resolve({"training": {"lr": 0.5}, "y": {"kind": "offset"}}).training.lr == 0.5
    assert resolve({"training": {"weight_decay": 0.1},
                    "y": {"kind": "weight_decay", "layer": 1}}).training.weight_decay == 0.1


def test_a_store_s_config_opens_under_rules_added_later():
    """A store made when an unread setting was still accepted keeps opening."""
    made = resolve({}).to_dict()
    made["training"]["batch_seed"] = 5  # full batch: refused in a job since 0.6.1
    assert config.from_dict(made).training.batch_seed == 5
    with pytest.raises(ConfigError, match="batch_seed is read with minibatches"):
        resolve(made)


def test_missing_job_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        config.load_job(tmp_path / "nope.toml")
