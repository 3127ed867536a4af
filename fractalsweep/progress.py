"""Progress of long work: tasks (tiles, audit tasks, frames) done, their rates and ETA (tqdm)."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm  # a widget in notebooks, text elsewhere

from .status import figure

# tqdm's own layout, its task rate replaced by the postfix's: it printed 4 figures (52.93tile/s)
BAR = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"


class TileProgress:
    """A progress bar over tiles (or other tasks, ``unit``) that also reports the pixel rate
    of this run.

    Tiles already done when the run starts count towards the total but not the rates: this
    run's tasks (seconds per task below one a second) and pixels per second since it started,
    to 3 significant figures (:func:`~fractalsweep.status.figure`).
    """

    def __init__(self, total: int, done: int, enabled: bool = True, unit: str = "tile"):
        self.bar = tqdm(total=total, initial=done, unit=unit, disable=not enabled,
                        file=sys.stderr, dynamic_ncols=True, smoothing=0.1, bar_format=BAR)
        self.unit = unit
        self.tasks = self.trained = 0

    def update(self, pixels: int | None = None) -> None:
        """One task finished, having computed ``pixels`` (None: a task that trains none, such
        as a video's frame, and no pixel rate)."""
        self.tasks += 1
        elapsed = self.bar.format_dict["elapsed"] or 1e-9
        rate = self.tasks / elapsed
        shown = [f"{figure(rate)} {self.unit}/s" if rate >= 1
                 else f"{figure(1 / rate)} s/{self.unit}"]
        if pixels is not None:
            self.trained += pixels
            shown.append(f"{figure(self.trained / elapsed)} px/s")
        self.bar.set_postfix_str(", ".join(shown), refresh=False)
        self.bar.update(1)

    def note(self, message: str) -> None:
        """A line above the bar (e.g. the dashboard link)."""
        self.bar.write(message, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
