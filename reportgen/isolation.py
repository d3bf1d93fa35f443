"""Child processes start without the current folder on sys.path.

`python -m …` and `python -c …` put the current folder first on sys.path, ahead of the standard library:
a student's folder often holds random.py, socket.py, test.py or utils.py, and such a file was executed by
the report process (a random.py, during a run naming only built-in models) and by every worker of the
process executor (a socket.py: each worker crashed on start and the pool replaced it, without end —
18,679 workers in a minute, measured). User code is imported only where a model reference names it; the
registry adds that file's folder then, in whichever process builds the model.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

SAFE_PATH = "-P"  # Python ≥ 3.11: do not prepend the script's or the current folder to sys.path
SAFE_PATH_VARIABLE = "PYTHONSAFEPATH"  # the same for interpreters started by libraries (multiprocessing)


def python_command(*args: str) -> tuple[str, ...]:
    """This interpreter, started without the current folder on its path, with `args` (e.g. `-m module`)."""
    return (sys.executable, SAFE_PATH, *args)


@contextlib.contextmanager
def children_without_current_folder() -> Iterator[None]:
    """Interpreters started meanwhile (multiprocessing's spawned workers, `python -c …`) leave the current
    folder off sys.path. Set in this process's environment, which they inherit, and restored afterwards."""
    previous = os.environ.get(SAFE_PATH_VARIABLE)
    os.environ[SAFE_PATH_VARIABLE] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(SAFE_PATH_VARIABLE, None)
        else:
            os.environ[SAFE_PATH_VARIABLE] = previous


def drop_current_folder(path: list[str]) -> None:
    """`python -m reportgen` put the current folder first on `path` (sys.path): take it off again, so the
    command's own later imports and the workers that inherit its path never find a user's file there."""
    if path and path[0] in ("", os.getcwd()):
        del path[0]
