"""The sweep configuration: one frozen object, resolved and validated once.

A job file is TOML with the sections below; ``--set section.key=value`` overrides any key.
:func:`resolve` turns the merged mapping into a :class:`SweepConfig`, and
:meth:`SweepConfig.to_dict` gives the canonical form stored with the results (resolving it
again gives the same object, so a store can be compared with a job exactly).

Example
-------
>>> cfg = resolve({"grid": {"resolution": 8}})
>>> cfg.grid.resolution, cfg.model.activation
((8, 8), 'tanh')
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import numbers
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from .axes import ADAM, AXES, check_distinct, check_read
from .decimals import is_sequence, parse, power_of_ten
from .errors import ConfigError
from .fractals import FRACTALS, PLANE_AXES
from .grid import DOUBLE_DOUBLE, resolution_pair

DTYPES = ("float64", "float32", DOUBLE_DOUBLE)
SCHEMES = ("legacy", "default")
SCALES = ("log", "linear")
VARY = ("init", "data", "both")  # ensemble.vary
MAX_SEED = 2 ** 63 - 1  # the largest seed a JAX PRNGKey takes (int64)
MAX_STEPS = 2 ** 31 - 1  # first_nonfinite stores a step as int32


@dataclass(frozen=True)
class ModelConfig:
    width: int = 16
    depth: int = 2
    activation: str = "tanh"
    parameterization: str = "mean_field"  # or "standard" (models.MLP)
    biases: bool = False
    residual: bool = False  # h + phi(z) between equal-width hidden layers


@dataclass(frozen=True)
class DataConfig:
    task: str = "random_regression"
    size: int | str = "params"  # "params": number of parameters / target_dim (the task rounds)
    target_dim: int = 1  # fixed by the task for image_fit (1) and digits (10)
    input_dim: int | str = "width"  # fixed by the task for image_fit and digits
    image: str = "mandelbrot"  # image_fit: mandelbrot, sample or a path
    fourier_features: int = 0  # image_fit: K random Fourier features (0 = raw coordinates)
    fourier_scale: float = 10.0  # image_fit: standard deviation of the Fourier frequencies


@dataclass(frozen=True)
class TrainingConfig:
    steps: int = 1000
    batch: int | str = "full"
    batch_seed: int = 42
    optimizer: str = "gd"  # gd | momentum | adam | adamw
    lr: float = 1.0  # learning rate of a layer that no axis sets
    weight_decay: float | None = None  # None: optax's default (1e-4 for adamw, else 0)
    momentum: float = 0.9  # momentum only
    nesterov: bool = False  # momentum only
    beta1: float = 0.9  # adam, adamw
    beta2: float = 0.999  # adam, adamw
    eps: float = 1e-8  # adam, adamw


@dataclass(frozen=True)
class AxisConfig:
    kind: str = "lr"
    layer: int | None = None  # which layer the axis acts on; None where the kind needs none
    lo: str = "0.001"  # hyperparameter values as exact decimal strings, in canonical form
    hi: str = "1000000"
    scale: str = "log"

    @property
    def label(self) -> str:
        return {**AXES, **PLANE_AXES}[self.kind].label(self.layer)


@dataclass(frozen=True)
class SystemConfig:
    kind: str = "training"  # or a classic fractal: mandelbrot | julia | newton
    c: tuple[str, str] = ("0", "0")  # julia: the constant c = re + i im, exact decimals
    max_iter: int = 1000  # fractals: iterations before a pixel counts as inside
    root: int = 0  # newton: the root exp(2 pi i root / 3) whose basin is "inside"


@dataclass(frozen=True)
class EnsembleConfig:
    seeds: int = 1  # networks per pixel, member 0 being the single-seed run (docs/measures.md)
    vary: str = "init"  # what the members draw afresh: init | data | both


@dataclass(frozen=True)
class MeasuresConfig:
    lyapunov: bool = False  # a twin run per pixel and its finite-time Lyapunov exponent
    snapshots: tuple[int, ...] = ()  # step counts at which the score is also stored


@dataclass(frozen=True)
class GridConfig:
    resolution: tuple[int, int] = (48, 48)  # (columns = x, rows = y)


# Keys that earlier versions stored in a sweep's config. How pixels are tiled and batched is
# now chosen per level and per device (docs/design.md); stores that hold these still open.
LEGACY_KEYS = {"grid": ("tile", "group")}


@dataclass(frozen=True)
class SweepConfig:
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    training: TrainingConfig = TrainingConfig()
    x: AxisConfig = AxisConfig(layer=0)
    y: AxisConfig = AxisConfig(layer=1)
    grid: GridConfig = GridConfig()
    system: SystemConfig = SystemConfig()
    ensemble: EnsembleConfig = EnsembleConfig()
    measures: MeasuresConfig = MeasuresConfig()
    dtype: str = "float64"
    scheme: str = "legacy"
    seed: int = 0
    name: str = "sweep"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["grid"]["resolution"] = list(self.grid.resolution)
        d["system"]["c"] = list(self.system.c)
        d["measures"]["snapshots"] = list(self.measures.snapshots)
        return d

    @property
    def n_data(self) -> int:
        if self.data.size != "params":
            return int(self.data.size)
        from .tasks import TASKS

        return TASKS[self.data.task].size(self.n_params // self.data.target_dim)

    @property
    def input_dim(self) -> int:
        return self.model.width if self.data.input_dim == "width" else int(self.data.input_dim)

    @property
    def layer_shapes(self) -> tuple[tuple[int, int], ...]:
        w, d = self.model.width, self.model.depth
        dims = [self.input_dim] + [w] * (d - 1) + [self.data.target_dim]
        return tuple(itertools.pairwise(dims))

    @property
    def n_params(self) -> int:
        """Weights, and biases where the model has them."""
        biases = sum(b for _, b in self.layer_shapes) if self.model.biases else 0
        return sum(a * b for a, b in self.layer_shapes) + biases

    @property
    def batch_size(self) -> int | None:
        return None if self.training.batch == "full" else int(self.training.batch)


DEFAULT = SweepConfig()
# The default window of a fractal system: the square [-2, 2] of the complex plane.
PLANE = SweepConfig(x=AxisConfig("re", None, "-2", "2", "linear"),
                    y=AxisConfig("im", None, "-2", "2", "linear"))

SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "training": TrainingConfig,
    "x": AxisConfig,
    "y": AxisConfig,
    "grid": GridConfig,
    "system": SystemConfig,
    "ensemble": EnsembleConfig,
    "measures": MeasuresConfig,
}
TOP_LEVEL = ("dtype", "scheme", "seed", "name")


def load_job(path: str | Path) -> dict[str, Any]:
    """Read a TOML job file into a plain mapping (not yet validated)."""
    if not str(path).strip():  # Path("") is ".", the working directory
        raise ConfigError(f"job {str(path)!r}: give a path to a TOML job file (see jobs/)")
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; give a TOML job file (see jobs/)")
    if not path.exists():
        raise ConfigError(f"job file not found: {path}")
    if not path.is_file():  # a device, a FIFO, a socket: it would read as nothing, or block
        raise ConfigError(f"{path} is not a regular file; give a TOML job file (see jobs/)")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}); a job file is TOML in "
                          "UTF-8") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings; values are parsed as TOML, else kept as strings.

    >>> apply_overrides({}, ["grid.resolution=16", "model.activation=relu"])
    {'grid': {'resolution': 16}, 'model': {'activation': 'relu'}}
    >>> apply_overrides({}, ["training.lr=1e-3", "x.lo=0.12345678901234567890"])
    {'training': {'lr': 0.001}, 'x': {'lo': '0.12345678901234567890'}}
    """
    raw = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        if (isinstance(value, float) and math.isfinite(value)
                and Decimal(repr(value)) != Decimal(text.strip())):
            value = text.strip()  # more digits than a float holds: keep them all (view bounds)
        *path, last = key.strip().split(".")
        node = raw
        for part in path:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section")
        node[last] = value
    return raw


def _decimal(key: str, value: Any) -> str:
    return str(parse(key, value))


def _axis(name: str, raw: Any, default: AxisConfig, kinds: dict, optimizer: str) -> AxisConfig:
    """One axis; ``kinds`` are the axis kinds of the sweep's system, ``default`` its axis."""
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] must be a table, got {raw!r}")
    raw = dict(raw)
    raw.setdefault("kind", default.kind)
    if "log10" in raw and ("lo" in raw or "hi" in raw):
        raise ConfigError(f"{name}: give the window either as lo/hi (hyperparameter values) or "
                          "as log10 = [lo, hi], not both")
    if "log10" not in raw:  # what is not given is the system's own axis's
        raw = {"lo": default.lo, "hi": default.hi, "scale": default.scale} | raw
    else:
        bounds = raw.pop("log10")
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise ConfigError(f"{name}.log10 = {bounds!r}: expected [lo, hi] in log10 units")
        lo, hi = (Decimal(_decimal(f"{name}.log10", b)) for b in bounds)
        raw["lo"], raw["hi"] = (str(power_of_ten(f"{name}.log10", b)) for b in (lo, hi))
        raw.setdefault("scale", "log")
    axis = _dataclass(name, AxisConfig, raw)
    if not isinstance(axis.kind, str) or axis.kind not in kinds:
        raise ConfigError(f"{name}.kind = {axis.kind!r}: valid kinds are {', '.join(kinds)}")
    kinds[axis.kind].check_optimizer(name, axis.kind, optimizer)
    lo, hi = _decimal(f"{name}.lo", axis.lo), _decimal(f"{name}.hi", axis.hi)
    if axis.scale not in SCALES:
        raise ConfigError(f"{name}.scale = {axis.scale!r}: valid scales are {', '.join(SCALES)}")
    if axis.scale == "log" and (Decimal(lo) <= 0 or Decimal(hi) <= 0):
        raise ConfigError(f"{name}: a log axis needs positive bounds, got lo={lo} hi={hi}")
    if Decimal(lo) >= Decimal(hi):
        raise ConfigError(f"{name}: lo must be below hi, got lo={lo} hi={hi}")
    layer = kinds[axis.kind].check_layer(name, axis.layer, default.layer)
    return dataclasses.replace(axis, lo=lo, hi=hi, layer=layer)


def _system(raw: Any) -> SystemConfig:
    system = _dataclass("system", SystemConfig, raw)
    _choice("system.kind", system.kind, ("training", *FRACTALS))
    if not isinstance(system.c, (list, tuple)) or len(system.c) != 2:
        raise ConfigError(f"system.c = {system.c!r}: expected [re, im]")
    c = tuple(_decimal(f"system.c[{i}]", v) for i, v in enumerate(system.c))
    _int("system.max_iter", system.max_iter, 1, MAX_STEPS)  # counted in int32, as steps are
    if system.root not in (0, 1, 2) or isinstance(system.root, bool):
        raise ConfigError(f"system.root = {system.root!r}: valid roots are 0, 1, 2 "
                          "(exp(2 pi i k / 3))")
    return dataclasses.replace(system, c=c)


def _ensemble(raw: Any, cfg: SweepConfig) -> EnsembleConfig:
    """``[ensemble]``, checked against the rest of the config (docs/measures.md)."""
    ensemble = _dataclass("ensemble", EnsembleConfig, raw)
    _int("ensemble.seeds", ensemble.seeds, 1)
    _choice("ensemble.vary", ensemble.vary, VARY)
    if ensemble.seeds == 1:
        if ensemble.vary != EnsembleConfig.vary:
            raise ConfigError("ensemble.vary is read only with ensemble.seeds > 1; set seeds "
                              "or remove vary")
        return ensemble
    if cfg.system.kind != "training":
        raise ConfigError(f"ensemble.seeds = {ensemble.seeds}: system.kind = "
                          f"{cfg.system.kind!r} draws nothing at random; ensembles need "
                          "system.kind = 'training'")
    from .tasks import TASKS

    fixed = TASKS[cfg.data.task].fixed_data(cfg.data)
    if ensemble.vary != "init" and fixed is not None:
        raise ConfigError(f"ensemble.vary = {ensemble.vary!r}: data.task = {cfg.data.task!r} "
                          f"{fixed} draws no random data; use vary = 'init'")
    return ensemble


def _measures(raw: Any, cfg: SweepConfig) -> MeasuresConfig:
    """``[measures]``, checked against the rest of the config (docs/measures.md)."""
    measures = _dataclass("measures", MeasuresConfig, raw)
    _bool("measures.lyapunov", measures.lyapunov)
    snapshots, steps = measures.snapshots, cfg.training.steps
    if not isinstance(snapshots, (list, tuple)):
        raise ConfigError(f"measures.snapshots = {snapshots!r}: expected a list of step counts, "
                          "e.g. [50, 100, 200]")
    for count in snapshots:
        if not is_integer(count) or not 1 <= count <= steps:
            raise ConfigError(f"measures.snapshots: {count!r} is not a step count from 1 to "
                              f"training.steps = {steps}")
    if list(snapshots) != sorted(set(snapshots)):
        raise ConfigError(f"measures.snapshots = {list(snapshots)}: expected increasing step "
                          "counts without repeats")
    chosen = [key for key in ("lyapunov", "snapshots") if getattr(measures, key)]
    if chosen and cfg.system.kind != "training":
        raise ConfigError(f"measures.{chosen[0]} measures training runs; system.kind = "
                          f"{cfg.system.kind!r} has none")
    if chosen and cfg.dtype == DOUBLE_DOUBLE:
        raise ConfigError(f"measures.{chosen[0]}: the double-double kernel computes the score "
                          "only; use dtype float64 or float32")
    if measures.lyapunov and cfg.training.optimizer in ADAM:
        raise ConfigError(f"measures.lyapunov = true needs training.optimizer = gd or momentum "
                          f"(not {cfg.training.optimizer!r}: renormalizing the twin could make "
                          "Adam's second moment negative)")
    return dataclasses.replace(measures, snapshots=tuple(snapshots))


def single_run(cfg: SweepConfig) -> SweepConfig:
    """``cfg`` without ensemble and measures: one network per pixel, the score and what the
    task measures (ensemble members, precision audits)."""
    return dataclasses.replace(cfg, ensemble=EnsembleConfig(), measures=MeasuresConfig())


def _dataclass(section: str, cls: type, raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{section}] must be a table, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key {section}.{unknown[0]}; valid keys in [{section}] are {', '.join(fields)}"
        )
    return cls(**raw)


def _plain(raw: Any) -> Any:
    """``raw`` as TOML would give it: a NumPy scalar as the Python number or bool it holds (a
    notebook's ``np.int64(64)`` is a count like ``64``), a tuple or a 1-D NumPy array as a
    list; the stored JSON config holds only these."""
    if isinstance(raw, dict):
        return {key: _plain(value) for key, value in raw.items()}
    if is_sequence(raw):
        return [_plain(value) for value in raw]
    return raw.item() if isinstance(raw, np.generic) else raw


def is_integer(value: Any) -> bool:
    """An integer, Python's or NumPy's (a notebook's ``np.int64``), not a bool (which Python
    counts as one): TOML's ``true`` is no count."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A real number, Python's or NumPy's (``np.float32`` too), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _int(key: str, value: Any, minimum: int, maximum: int | None = None, *,
         word: str | None = None) -> int | str:
    """``value``, an integer in range or (where a key takes one, like batch = "full") ``word``."""
    if word is not None and value == word:
        return value
    if not is_integer(value):
        raise ConfigError(f"{key} = {value!r}: expected an integer >= {minimum}"
                          + (f' or "{word}"' if word else ""))
    if value < minimum:
        raise ConfigError(f"{key} = {value}: must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{key} = {value}: must be at most {maximum}")
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} = {value!r}: expected true or false")
    return value


def _number(key: str, value: Any) -> float:
    if not is_number(value) or not math.isfinite(value):
        raise ConfigError(f"{key} = {value!r}: expected a finite number")
    return float(value)


def refuse_unread_keys(section: str, values, defaults, chooser: str, chosen: str,
                       readers: dict[str, tuple[str, ...]]) -> None:
    """Refuse a key of ``[section]`` set off its default that the ``chosen`` one of
    ``chooser`` does not read; ``readers``: the keys each choice reads (the optimizers', the
    systems', the tasks' own).

    >>> refuse_unread_keys("training", TrainingConfig(momentum=0.5), TrainingConfig(),
    ...                    "training.optimizer", "gd", {"gd": (), "momentum": ("momentum",)})
    Traceback (most recent call last):
    ...
    fractalsweep.errors.ConfigError: training.momentum is read by training.optimizer = momentum, not 'gd'; remove it
    """
    for key in dict.fromkeys(itertools.chain(*readers.values())):
        if key not in readers[chosen] and getattr(values, key) != getattr(defaults, key):
            users = [name for name, keys in readers.items() if key in keys]
            raise ConfigError(f"{section}.{key} is read by {chooser} = {' or '.join(users)}, "
                              f"not {chosen!r}; remove it")


def _optimizer_settings(training: TrainingConfig, optimizers: dict) -> TrainingConfig:
    """Numbers as floats, the default weight decay filled in (optax's: 1e-4 for adamw, else
    0), and a setting the optimizer does not read refused."""
    refuse_unread_keys("training", training, TrainingConfig(), "training.optimizer",
                       training.optimizer, optimizers)
    _bool("training.nesterov", training.nesterov)
    decay = training.weight_decay
    if decay is None:
        decay = 1e-4 if training.optimizer == "adamw" else 0.0
    numbers = {key: _number(f"training.{key}", getattr(training, key))
               for key in ("lr", "momentum", "beta1", "beta2", "eps")}
    return dataclasses.replace(training, weight_decay=_number("training.weight_decay", decay),
                               **numbers)


def check_range(name: str, axis: AxisConfig, dtype: str) -> None:
    """Refuse bounds the dtype cannot hold: beyond its largest number, or (on a log axis,
    where every value is > 0) below its smallest normal one, where precision is lost."""
    for end in ("lo", "hi"):
        _check_value(f"{name}.{end}", getattr(axis, end), dtype, positive=axis.scale == "log")


def _check_value(label: str, text: str, dtype: str, positive: bool) -> None:
    info = np.finfo("float64" if dtype == DOUBLE_DOUBLE else dtype)  # dd: float64's range
    value = Decimal(text)  # named with its sign; its magnitude is what the dtype must hold
    if abs(value) > Decimal(float(info.max)):
        raise ConfigError(f"{label} = {value:.6g}: beyond {dtype}'s largest number "
                          f"({float(info.max):.3g})")
    if positive and abs(value) < Decimal(float(info.tiny)):
        raise ConfigError(f"{label} = {value:.6g}: below {dtype}'s smallest normal "
                          f"number ({float(info.tiny):.3g})")


# The [system] keys each system reads; only training reads [model], [data] and [training].
SYSTEM_KEYS = {"training": (), "mandelbrot": ("max_iter",), "julia": ("c", "max_iter"),
               "newton": ("max_iter", "root")}


# What only training systems read: a fractal draws nothing at random and trains nothing.
# Refused for a fractal unless at its default (ensemble and measures, resolved after, with
# their own messages); `info` leaves them out of a fractal's config.
TRAINING_ONLY = ("seed", "scheme", "model", "data", "training", "ensemble", "measures")


def _refuse_unread(cfg: SweepConfig) -> None:
    """A setting the system does not read is refused, as one its optimizer does not read."""
    kind = cfg.system.kind
    refuse_unread_keys("system", cfg.system, SystemConfig(), "system.kind", kind, SYSTEM_KEYS)
    if cfg.training.batch == "full" and cfg.training.batch_seed != TrainingConfig.batch_seed:
        raise ConfigError("training.batch_seed is read with minibatches (training.batch = N), "
                          "not training.batch = 'full'; remove it")
    if not cfg.data.fourier_features and cfg.data.fourier_scale != DataConfig.fourier_scale:
        raise ConfigError("data.fourier_scale is read with data.fourier_features > 0 only; "
                          "remove it or set fourier_features")
    if kind != "training":
        defaults = resolve({})
        for name in TRAINING_ONLY:
            ours, theirs = getattr(cfg, name), getattr(defaults, name)
            pairs = ({f"{name}.{f.name}": (getattr(ours, f.name), getattr(theirs, f.name))
                      for f in dataclasses.fields(ours)} if dataclasses.is_dataclass(ours)
                     else {name: (ours, theirs)})
            for key, (value, default) in pairs.items():
                if value != default:
                    raise ConfigError(f"{key} is read by training systems only, not "
                                      f"system.kind = {kind!r}; remove it")


def _choice(key: str, value: Any, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise ConfigError(f"{key} = {value!r}: valid values are {', '.join(valid)}")
    return value


def resolve(raw: dict[str, Any], *, stored: bool = False) -> SweepConfig:
    """Validate a job mapping and fill defaults into one frozen :class:`SweepConfig`.

    Parameters
    ----------
    raw : dict
        The parsed job file with overrides applied.
    stored : bool
        ``raw`` is a store's config (:func:`from_dict`), checked when the store was made:
        the rules against settings that change nothing, which later versions may add to,
        are not applied again, so an old store keeps opening.

    Raises
    ------
    ConfigError
        On the first problem found, naming the key and what is valid.
    """
    from . import tasks
    from .models import ACTIVATIONS, PARAMETERIZATIONS
    from .optimizers import OPTIMIZERS

    raw = _plain(raw)
    unknown = sorted(set(raw) - set(SECTIONS) - set(TOP_LEVEL))
    if unknown:
        valid = ", ".join([*SECTIONS, *TOP_LEVEL])
        raise ConfigError(f"unknown key {unknown[0]!r}; valid top-level keys are {valid}")
    model = _dataclass("model", ModelConfig, raw.get("model", {}))
    _int("model.width", model.width, 1)
    _int("model.depth", model.depth, 1)
    _choice("model.activation", model.activation, tuple(ACTIVATIONS))
    _choice("model.parameterization", model.parameterization, PARAMETERIZATIONS)
    for key in ("biases", "residual"):
        _bool(f"model.{key}", getattr(model, key))
    if model.residual and model.depth < 3:
        raise ConfigError(f"model.residual = true needs model.depth >= 3 (it joins hidden "
                          f"layers of equal width; depth is {model.depth})")

    raw_data = raw.get("data", {})
    data = _dataclass("data", DataConfig, raw_data)
    _choice("data.task", data.task, tuple(tasks.TASKS))
    _int("data.target_dim", data.target_dim, 1)
    _int("data.size", data.size, 1, word="params")
    _int("data.input_dim", data.input_dim, 1, word="width")
    _int("data.fourier_features", data.fourier_features, 0)
    data = tasks.resolve(data, set(raw_data))

    training = _dataclass("training", TrainingConfig, raw.get("training", {}))
    _int("training.steps", training.steps, 1, MAX_STEPS)
    _int("training.batch_seed", training.batch_seed, 0, MAX_SEED)
    _int("training.batch", training.batch, 1, word="full")
    _choice("training.optimizer", training.optimizer, tuple(OPTIMIZERS))
    training = _optimizer_settings(training, OPTIMIZERS)

    raw_grid = raw.get("grid", {})
    for key in LEGACY_KEYS["grid"]:
        if isinstance(raw_grid, dict) and key in raw_grid:
            raise ConfigError(f"grid.{key} is no longer a job key: tiles and batches are chosen "
                              "per level and device; use --tile N to set the tile size")
    grid = _dataclass("grid", GridConfig, raw_grid)
    grid = GridConfig(resolution_pair(grid.resolution, "grid.resolution"))

    system = _system(raw.get("system", {}))
    kinds, defaults = (AXES, DEFAULT) if system.kind == "training" else (PLANE_AXES, PLANE)
    cfg = SweepConfig(
        model=model,
        data=data,
        training=training,
        x=_axis("x", raw.get("x", dataclasses.asdict(defaults.x)), defaults.x, kinds,
                training.optimizer),
        y=_axis("y", raw.get("y", dataclasses.asdict(defaults.y)), defaults.y, kinds,
                training.optimizer),
        grid=grid,
        system=system,
        dtype=_choice("dtype", raw.get("dtype", "float64"), DTYPES),
        scheme=_choice("scheme", raw.get("scheme", "legacy"), SCHEMES),
        seed=_int("seed", raw.get("seed", 0), 0, MAX_SEED),
        name=_name(raw.get("name", "sweep")),
    )
    for axis_name in ("x", "y"):
        check_range(axis_name, getattr(cfg, axis_name), cfg.dtype)
    for i, part in enumerate(cfg.system.c):
        _check_value(f"system.c[{i}]", part, cfg.dtype, positive=False)
    if not stored:
        check_distinct(kinds, cfg.x, cfg.y)
        _refuse_unread(cfg)
        if kinds is AXES:  # against the optimizer's own defaults (adamw's weight decay)
            check_read(cfg, _optimizer_settings(TrainingConfig(optimizer=training.optimizer),
                                                OPTIMIZERS))
    for axis_name in ("x", "y"):
        layer = getattr(cfg, axis_name).layer
        if layer is not None and layer >= model.depth:
            raise ConfigError(
                f"{axis_name}.layer = {layer}: the model has layers 0..{model.depth - 1}"
            )
    if cfg.batch_size is not None and cfg.batch_size > cfg.n_data:
        raise ConfigError(f"training.batch = {cfg.batch_size}: at most data size {cfg.n_data}")
    return dataclasses.replace(cfg, ensemble=_ensemble(raw.get("ensemble", {}), cfg),
                               measures=_measures(raw.get("measures", {}), cfg))


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"name = {value!r}: expected a non-empty string (it names the store)")
    return value


def from_dict(d: dict[str, Any]) -> SweepConfig:
    """Rebuild the config from its stored canonical form (legacy keys are dropped)."""
    d = copy.deepcopy(d)
    for section, keys in LEGACY_KEYS.items():
        for key in keys:
            d.get(section, {}).pop(key, None)
    return resolve(d, stored=True)
