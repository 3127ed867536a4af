"""How the two swept hyperparameters enter a run.

A run's hyperparameters are a small pytree, :class:`Hyper`: a learning rate per layer, a
shift added to each layer's weights at every step (the paper's "offset" form), and a shift
added once at init. An axis is a pure function writing its value into that pytree; the kernel
only ever sees the pytree, so a new axis is one entry in :data:`AXES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .errors import ConfigError


class Hyper(NamedTuple):
    lr: tuple  # one learning rate per layer
    shift: tuple  # added to each layer's weights before every step (None: no shift)
    init_shift: tuple  # added to each layer's weights once, at init (None: no shift)

    @classmethod
    def defaults(cls, depth: int, lr: float) -> Hyper:
        return cls((lr,) * depth, (None,) * depth, (None,) * depth)


def _set(values: tuple, layer: int | None, value) -> tuple:
    if layer is None:
        return (value,) * len(values)
    return tuple(value if i == layer else v for i, v in enumerate(values))


@dataclass(frozen=True)
class Axis:
    """One kind of swept hyperparameter.

    field: which entry of :class:`Hyper` it writes. per_layer: whether it names a layer
    (``layer = i``) or acts on all layers at once.
    """

    field: str
    per_layer: bool
    name: str

    def apply(self, hyper: Hyper, layer: int | None, value) -> Hyper:
        return hyper._replace(**{self.field: _set(getattr(hyper, self.field), layer, value)})

    def label(self, layer: int | None) -> str:
        return self.name if layer is None else f"{self.name} (layer {layer})"

    def check_layer(self, axis: str, layer: int | None, default: int) -> int | None:
        if not self.per_layer:
            if layer is not None:
                raise ConfigError(f"{axis}.layer: this axis kind acts on every layer; remove it")
            return None
        layer = default if layer is None else layer
        if isinstance(layer, bool) or not isinstance(layer, int) or layer < 0:
            raise ConfigError(f"{axis}.layer = {layer!r}: expected a layer index >= 0")
        return layer


AXES: dict[str, Axis] = {
    "lr": Axis("lr", True, "learning rate"),
    "lr_all": Axis("lr", False, "learning rate (all layers)"),
    "offset": Axis("shift", True, "weight offset (every step)"),
    "init_offset": Axis("init_shift", True, "weight offset (init only)"),
}


def hyper_for(cfg, x, y) -> Hyper:
    """The hyperparameters of the pixel at axis values ``(x, y)``."""
    hyper = Hyper.defaults(cfg.model.depth, cfg.training.lr)
    for axis_cfg, value in ((cfg.x, x), (cfg.y, y)):
        hyper = AXES[axis_cfg.kind].apply(hyper, axis_cfg.layer, value)
    return hyper
