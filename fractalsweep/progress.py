"""Progress of a sweep: tiles done, pixels per second and ETA on one line (tqdm)."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm  # a widget in notebooks, text elsewhere

from .status import figure


class TileProgress:
    """A progress bar over tiles (or other tasks, ``unit``) that also reports the pixel rate
    of this run.

    Tiles already done when the run starts count towards the total but not the rate.
    """

    def __init__(self, total: int, done: int, enabled: bool = True, unit: str = "tile"):
        self.bar = tqdm(total=total, initial=done, unit=unit, disable=not enabled,
                        file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
        self.trained = 0

    def update(self, pixels: int) -> None:
        """One task finished, having computed ``pixels``."""
        self.trained += pixels
        elapsed = self.bar.format_dict["elapsed"] or 1e-9
        self.bar.set_postfix_str(f"{figure(self.trained / elapsed)} px/s", refresh=False)
        self.bar.update(1)

    def note(self, message: str) -> None:
        """A line above the bar (e.g. the dashboard link)."""
        self.bar.write(message, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
