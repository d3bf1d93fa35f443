"""Nothing of the user's machine in what they publish: no home folder, user name or host name.

Students commit report.md and summary.json and hand in runs/<id>; an absolute path there names their
account (`/home/kimminji/hw/models.py`). So the archive records a path of theirs relative to the run folder
(`../../models.py`, resolved against the run folder when a resume needs the file), a path elsewhere under
their home as `~/…`, and the command line without the folder of the program. No host name is ever recorded.
Imports nothing heavy: the archive and the notebook view use it without torch.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

# `folder/file.py:Attr`, a model file reference (registry.py's _FILE_REF)
_FILE_REFERENCE = re.compile(r"(?P<file>.+\.py):(?P<attr>[A-Za-z_]\w*)")


def home_folders() -> list[Path]:
    """The home folder as written and as resolved (a symlinked /home), longest first; none when unknown."""
    try:
        home = Path.home()
    except (RuntimeError, KeyError):  # no HOME and no passwd entry
        return []
    if home == Path(home.anchor):  # a home of "/" (some containers) would turn every path into ~
        return []
    return sorted({home, home.resolve()}, key=lambda p: len(str(p)), reverse=True)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def tilde(text: str) -> str:
    """Free text (an error, a traceback, a command line) with the home folder written `~`."""
    for home in home_folders():
        text = re.sub(re.escape(str(home)) + r"(?![\w.-])", "~", text)
    return text


def portable_path(path: str | Path, folder: Path) -> str:
    """`path` as the archive in `folder` records it: relative to `folder` when both lie in one tree below the
    root and on the same side of the home folder (a project's models.py from its runs/<id>: `../../models.py`),
    else `~/…` under the home folder, else as it is (`/usr/share/datasets/…`). A relative `path` is taken
    from the current folder, as the run read it."""
    target = Path(os.path.abspath(Path(path).expanduser())).resolve()
    base = Path(os.path.abspath(folder)).resolve()
    homes = home_folders()
    shared = Path(os.path.commonpath([target, base]))
    same_side = any(_inside(target, h) for h in homes) == any(_inside(base, h) for h in homes)
    if shared != Path(shared.anchor) and same_side:
        return os.path.relpath(target, base)
    return tilde(str(target))


def resolved_path(text: str, folder: Path) -> str:
    """The inverse of portable_path: `~` expanded, a relative path taken from `folder`."""
    path = Path(text).expanduser()
    return str(path) if path.is_absolute() else os.path.normpath(Path(folder).resolve() / path)


def _map_reference(target: str, convert) -> str:
    match = _FILE_REFERENCE.fullmatch(target)
    return f"{convert(match['file'])}:{match['attr']}" if match else target


def portable_reference(target: str, folder: Path) -> str:
    """A model reference with its file made portable (`../../models.py:Net`); names and modules as they are."""
    return _map_reference(target, lambda file: portable_path(file, folder))


def resolved_reference(target: str, folder: Path) -> str:
    return _map_reference(target, lambda file: resolved_path(file, folder))


def shown_path(path: str | Path) -> str:
    """A path shown to the user where it may be saved with a notebook: relative to the current folder when
    it lies there (`output/r1/report.html`), else with the home folder as `~`."""
    absolute = Path(os.path.abspath(path))
    cwd = Path(os.getcwd())
    return os.path.relpath(absolute, cwd) if _inside(absolute, cwd) else tilde(str(absolute))


def command_line(argv: Sequence[str] | None = None) -> str:
    """What started the run, as the report's command row shows it: `reportgen run --models models.py:Net`
    (the program's folder left out, home as `~`), or where compare() was called from: in a notebook the
    kernel's own command line (`ipykernel_launcher.py -f /tmp/tmp….json`) says nothing about the run."""
    argv = list(sys.argv if argv is None else argv)
    program = Path(argv[0]) if argv else Path("")
    if program.stem == "reportgen" or (program.name == "__main__.py" and program.parent.name == "reportgen"):
        return " ".join(["reportgen", *(tilde(arg) for arg in argv[1:])])
    if "ipykernel" in sys.modules:
        return "reportgen.compare() in a notebook"
    return f"reportgen.compare() in {program.name or 'Python'}"
