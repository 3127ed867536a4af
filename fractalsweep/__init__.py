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

from importlib.metadata import PackageNotFoundError, version

from .api import Level, Store, job_config, open, run
from .config import SweepConfig
from .errors import (
    AnimationError,
    ConfigError,
    FractalsweepError,
    PrecisionError,
    StoreError,
    SweepError,
)
from .execution import Execution

try:
    __version__ = version("fractalsweep")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["AnimationError", "ConfigError", "Execution", "FractalsweepError", "Level",
           "PrecisionError", "Store", "StoreError", "SweepConfig", "SweepError", "__version__",
           "job_config", "open", "run"]
