"""The errors fractalsweep raises on purpose, each with a one-line message.

A :class:`ConfigError` (and its subclasses) is a request that cannot be done as asked: the
command line prints its message and exits with status 2. A :class:`SweepError` is work that
failed after its retries: status 1, with every finished tile kept.
"""


class FractalsweepError(Exception):
    """Base of every error fractalsweep raises on purpose; the message is one line."""


class ConfigError(FractalsweepError, ValueError):
    """A bad job, option or argument; the message names the key or value and what is valid."""


class StoreError(ConfigError):
    """A store that cannot be used as asked (another config, not a sweep, missing level)."""


class PrecisionError(ConfigError):
    """The working dtype cannot keep neighbouring pixels of a requested level apart.

    ``reason`` is the message without its ``advice``, for a caller whose remedies differ (a
    dive takes no ``--force``). ``forcible``: forcing computes the level anyway (pixels too
    close for the dtype); a bound beyond the dtype's range is refused even then.
    """

    def __init__(self, reason: str, advice: str = "", forcible: bool = False):
        super().__init__(f"{reason}; {advice}" if advice else reason)
        self.reason = reason
        self.forcible = forcible


class NoBoundaryError(ConfigError):
    """A score image without a (resolved) boundary to zoom into."""


class LimitError(ConfigError):
    """A level or store larger than this machine's disk, memory or the file limit allows."""


class AnimationError(ConfigError):
    """An animation that cannot be made as asked."""


class SweepError(FractalsweepError, RuntimeError):
    """Tiles failed after their retries; every finished tile is kept in the store.

    ``resumable``: running the same command again resumes the work (False for an audit,
    which records nothing until every task is done).
    """

    def __init__(self, message: str, resumable: bool = True):
        super().__init__(message)
        self.resumable = resumable
