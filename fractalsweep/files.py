"""Output files written whole or not at all: a picture or a video is never left truncated
over the one it replaces (by a full disk, a file-size limit, an interrupt)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["written_whole"]


@contextlib.contextmanager
def written_whole(path: Path):
    """A hidden file beside ``path`` to write into (``.<name>.part``), renamed to ``path``
    once the block ends; removed if it raises, so ``path`` holds a whole new file or what it
    held before.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with written_whole(folder / "a.txt") as partial:
    ...     _ = partial.write_text("whole")
    >>> (folder / "a.txt").read_text(), sorted(p.name for p in folder.iterdir())
    ('whole', ['a.txt'])
    """
    partial = path.with_name(f".{path.name}.part")
    try:
        yield partial
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):  # not ours to remove (a folder): keep the cause
            partial.unlink(missing_ok=True)
        raise
