"""fractalsweep: maps where neural-network training converges and where it blows up."""

__version__ = "0.1.0"
