"""fractalsweep: maps where neural-network training converges and where it blows up."""

import jax

# The science is float64 (science.md 5); float32 sweeps pass float32 arrays explicitly.
jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"
