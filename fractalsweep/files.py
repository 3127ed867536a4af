"""Output files written whole or not at all: a picture or a video is never left truncated
over the one it replaces (by a full disk, a file-size limit, an interrupt)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["NotWritten", "written_whole"]


class NotWritten(OSError):
    """An output file the machine would not write (a full disk, a file-size limit): Python's
    own error, naming the file (where a picture library's error named none, or the hidden
    file), so a command can say that only this file, made last, is missing."""


@contextlib.contextmanager
def written_whole(path: Path):
    """A hidden file beside ``path`` to write into (``.<name>.part``), renamed to ``path``
    once the block ends; removed if it raises, so ``path`` holds a whole new file or what it
    held before. A failure to write either is a :class:`NotWritten` naming ``path`` (another
    file's error, such as the store's while frames are read, is left as it is).

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
    except BaseException as exc:
        with contextlib.suppress(OSError):  # not ours to remove (a folder): keep the cause
            partial.unlink(missing_ok=True)
        if (isinstance(exc, OSError) and not isinstance(exc, NotWritten)
                and exc.filename in (None, str(partial), str(path))):
            raise NotWritten(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
