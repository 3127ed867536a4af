"""fractalsweep: maps where neural-network training converges and where it blows up.

Each pixel of an image is a full training run of a tiny network at one pair of
hyperparameters; the boundary between runs that converge and runs that diverge is fractal.
The public API is what this module exports (``__all__``); the modules behind it are the
implementation. docs/api.md walks through it.

>>> import fractalsweep as fs
>>> cfg = fs.job_config({"grid": {"resolution": 32}})
>>> cfg.model.activation, cfg.grid.resolution, cfg.dtype
('tanh', (32, 32), 'float64')
"""

import importlib
from importlib.metadata import PackageNotFoundError, version

from .errors import (
    AnimationError,
    ConfigError,
    FractalsweepError,
    PrecisionError,
    StoreError,
    SweepError,
)

try:
    __version__ = version("fractalsweep")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["AnimationError", "ConfigError", "Execution", "FractalsweepError", "Level",
           "PrecisionError", "Store", "StoreError", "SweepConfig", "SweepError", "__version__",
           "job_config", "open", "run"]

# Imported on first use (PEP 562): JAX, zarr and Dask take about 2 s to import, and the
# ``fractalsweep`` command imports this package before it can catch a Ctrl-C in them.
_LAZY = {"Level": "api", "Store": "api", "job_config": "api", "open": "api", "run": "api",
         "SweepConfig": "config", "Execution": "execution"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
