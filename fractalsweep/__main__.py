"""The ``fractalsweep`` command (``python -m fractalsweep`` and its console script).

Its modules take about 2 s to import; a Ctrl-C in that time ends in one line, as one later
does (:func:`fractalsweep.cli.main`), not in a traceback of the import.
"""

import sys


def command() -> None:
    try:
        from .cli import command as run
    except KeyboardInterrupt:
        sys.stderr.write("fractalsweep: error: interrupted\n")
        sys.exit(130)
    run()


if __name__ == "__main__":
    command()
