"""How the two swept hyperparameters enter a run.

A run's hyperparameters are a small pytree, :class:`Hyper`: per layer a learning rate, a
weight decay, a shift added to the weights at every step (the paper's "offset" form) and a
shift added once at init; and the optimizer's scalars (momentum, Adam's betas and eps).
An axis is a pure function writing its value into that pytree; the kernel only ever sees
the pytree, so a new axis writing one of its fields is one entry in :data:`AXES`.

Example
-------
>>> from fractalsweep.config import TrainingConfig
>>> h = AXES["lr"].apply(Hyper.from_training(TrainingConfig(), depth=2), 1, 0.5)
>>> h.lr, h.weight_decay
((1.0, 0.5), (None, None))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .errors import ConfigError

ADAM = ("adam", "adamw")


class Hyper(NamedTuple):
    """The hyperparameters of one run; per-layer fields are tuples with one entry per layer."""

    lr: tuple
    weight_decay: tuple  # L2 (gd, momentum, adam) or decoupled (adamw); None = no decay
    shift: tuple  # added to each layer's weights before every step; None = no shift
    init_shift: tuple  # added to each layer's weights once, at init; None = no shift
    momentum: float
    beta1: float
    beta2: float
    eps: float

    @classmethod
    def from_training(cls, training, depth: int) -> Hyper:
        """The hyperparameters a config's ``[training]`` gives every pixel (a weight decay of
        0 is None: no decay term at all)."""
        decay = training.weight_decay or None
        return cls(lr=(training.lr,) * depth, weight_decay=(decay,) * depth,
                   shift=(None,) * depth, init_shift=(None,) * depth,
                   momentum=training.momentum, beta1=training.beta1, beta2=training.beta2,
                   eps=training.eps)


def _set(values, layer: int | None, value):
    if not isinstance(values, tuple):  # a scalar field
        return value
    if layer is None:
        return (value,) * len(values)
    return tuple(value if i == layer else v for i, v in enumerate(values))


@dataclass(frozen=True)
class Axis:
    """One kind of swept hyperparameter.

    field: which entry of :class:`Hyper` it writes. layers: ``"one"`` (the axis names a
    layer, ``layer = i``, by default 0 for x and 1 for y), ``"every"`` (it acts on every
    layer, or is not per layer at all) or ``"one_or_every"`` (``layer = i`` for one layer,
    no ``layer`` for all). optimizers: the ``training.optimizer`` values it applies to
    (None: all).
    """

    field: str
    layers: str
    name: str
    optimizers: tuple[str, ...] | None = None

    def apply(self, hyper: Hyper, layer: int | None, value) -> Hyper:
        return hyper._replace(**{self.field: _set(getattr(hyper, self.field), layer, value)})

    def label(self, layer: int | None) -> str:
        return self.name if layer is None else f"{self.name} (layer {layer})"

    def check_layer(self, axis: str, layer: int | None, default: int) -> int | None:
        if self.layers == "every":
            if layer is not None:
                raise ConfigError(f"{axis}.layer: this axis kind acts on every layer; remove it")
            return None
        if self.layers == "one":
            layer = default if layer is None else layer
        if layer is not None and (isinstance(layer, bool) or not isinstance(layer, int)
                                  or layer < 0):
            raise ConfigError(f"{axis}.layer = {layer!r}: expected a layer index >= 0")
        return layer

    def check_optimizer(self, axis: str, kind: str, optimizer: str) -> None:
        if self.optimizers is not None and optimizer not in self.optimizers:
            valid = ", ".join(k for k, a in AXES.items()
                              if a.optimizers is None or optimizer in a.optimizers)
            raise ConfigError(
                f"{axis}.kind = {kind!r} needs training.optimizer = "
                f"{' or '.join(self.optimizers)} (it is {optimizer!r}); with {optimizer} the "
                f"axis kinds are {valid}")


AXES: dict[str, Axis] = {
    "lr": Axis("lr", "one", "learning rate"),
    "lr_all": Axis("lr", "every", "learning rate (all layers)"),
    "offset": Axis("shift", "one", "weight offset (every step)"),
    "init_offset": Axis("init_shift", "one", "weight offset (init only)"),
    "weight_decay": Axis("weight_decay", "one_or_every", "weight decay"),
    "momentum": Axis("momentum", "every", "momentum", ("momentum",)),
    "beta1": Axis("beta1", "every", "Adam beta1", ADAM),
    "beta2": Axis("beta2", "every", "Adam beta2", ADAM),
    "eps": Axis("eps", "every", "Adam eps", ADAM),
}


def kinds_writing(fields: tuple[str, ...]) -> tuple[str, ...]:
    """The axis kinds that write only these :class:`Hyper` fields: those a kernel reading no
    other field implements (a kind it does not read would train every pixel alike).

    >>> kinds_writing(("lr", "shift", "init_shift"))
    ('lr', 'lr_all', 'offset', 'init_offset')
    """
    return tuple(kind for kind, axis in AXES.items() if axis.field in fields)


def check_distinct(kinds: dict[str, Axis], x, y) -> None:
    """Refuse a y axis that overwrites all that the x axis sets (:func:`hyper_for` applies y
    last): x would change no pixel."""
    fx, fy = kinds[x.kind], kinds[y.kind]
    if fx.field == fy.field and (y.layer is None or y.layer == x.layer):
        raise ConfigError(f"x and y both set the {fy.label(y.layer)}: y.kind = {y.kind!r} "
                          f"overwrites what x.kind = {x.kind!r} sets; sweep two different ones")


def check_read(cfg, defaults) -> None:
    """Refuse a ``[training]`` value set off its default (``defaults``) that the two axes
    overwrite in every layer: no pixel reads it, as no pixel reads a key of another
    optimizer (:func:`fractalsweep.config.refuse_unread_keys`)."""
    every = set(range(cfg.model.depth))
    for field in (f for f in Hyper._fields if hasattr(cfg.training, f)):  # from [training]
        value = getattr(cfg.training, field)
        setters = [(name, axis) for name, axis in (("x", cfg.x), ("y", cfg.y))
                   if AXES[axis.kind].field == field]
        layers = set().union(*({axis.layer} if axis.layer is not None else every
                               for _, axis in setters))
        if value != getattr(defaults, field) and layers >= every:
            named = " and ".join(f"{name}.kind = {axis.kind!r}" for name, axis in setters)
            raise ConfigError(f"training.{field} = {value!r} is read by no pixel: {named} "
                              f"set{'s' if len(setters) == 1 else ''} it in every layer; "
                              "remove it")


def hyper_for(cfg, x, y) -> Hyper:
    """The hyperparameters of the pixel at axis values ``(x, y)``."""
    hyper = Hyper.from_training(cfg.training, cfg.model.depth)
    for axis_cfg, value in ((cfg.x, x), (cfg.y, y)):
        hyper = AXES[axis_cfg.kind].apply(hyper, axis_cfg.layer, value)
    return hyper
