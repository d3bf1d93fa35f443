"""The user's code in its own lane: nothing of theirs shadows ours, and no child process inherits it in front.

A student's folder often holds statistics.py, random.py, queue.py, torch.py or torchinfo.py. `python -m …`
and `python -c …` put the current folder first on sys.path, ahead of the standard library; so did loading
a model file, which put its folder first. Every process then imported the student's file instead of the
module reportgen needs: spawned workers died on start and were replaced without end (a statistics.py beside
models.py: 24 crashes in 10 minutes, not one epoch), and a torchinfo.py replaced the real torchinfo.

The rule here: a user's folder (the model file's, the current folder for `module:Class`) is added at the
*end* of sys.path, so its sibling imports work but never win over the standard library, reportgen or its
dependencies; interpreters started by reportgen run with `-P`/PYTHONSAFEPATH (no current folder), and the
path handed to spawned children (multiprocessing sends the parent's sys.path) lists user folders last.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

SAFE_PATH = "-P"  # Python ≥ 3.11: do not prepend the script's or the current folder to sys.path
SAFE_PATH_VARIABLE = "PYTHONSAFEPATH"  # the same for interpreters started by libraries (multiprocessing)

# Folders of user code this process added to sys.path (model files' folders, the current folder).
_USER_FOLDERS: set[str] = set()


def python_command(*args: str) -> tuple[str, ...]:
    """This interpreter, started without the current folder on its path, with `args` (e.g. `-m module`)."""
    return (sys.executable, SAFE_PATH, *args)


def add_user_folder(folder: str) -> None:
    """Make `folder`'s modules importable (a model file's `from layers import Block`) behind everything else:
    a user's statistics.py is found only by a name the standard library and installed packages lack."""
    _USER_FOLDERS.add(folder)
    if folder not in sys.path:
        sys.path.append(folder)


def user_folders() -> set[str]:
    """The user's folders on sys.path: those added here, the current folder, and "" (which means it)."""
    return _USER_FOLDERS | {"", os.getcwd()}


def user_folders_last(path: list[str]) -> list[str]:
    """`path` with the user's folders moved to the end, in their order: what a child process may inherit."""
    users = user_folders()

    def is_user(entry: str) -> bool:
        return entry in users

    return [entry for entry in path if not is_user(entry)] + [entry for entry in path if is_user(entry)]


@contextlib.contextmanager
def children_without_current_folder() -> Iterator[None]:
    """Interpreters started meanwhile (multiprocessing's spawned workers, `python -c …`) leave the current
    folder off sys.path and get this process's path with the user's folders last: set in this process's
    environment and sys.path, which they inherit, and restored afterwards. (A notebook kernel has its own
    folder first on sys.path; its workers must not.)"""
    previous_variable, previous_path = os.environ.get(SAFE_PATH_VARIABLE), list(sys.path)
    os.environ[SAFE_PATH_VARIABLE] = "1"
    sys.path[:] = user_folders_last(sys.path)
    try:
        yield
    finally:
        sys.path[:] = previous_path
        if previous_variable is None:
            os.environ.pop(SAFE_PATH_VARIABLE, None)
        else:
            os.environ[SAFE_PATH_VARIABLE] = previous_variable


def drop_current_folder(path: list[str]) -> None:
    """`python -m reportgen` put the current folder first on `path` (sys.path): take it off again, so the
    command's own later imports and the workers that inherit its path never find a user's file there."""
    if path and path[0] in ("", os.getcwd()):
        del path[0]
