"""Where a report is written and how it appears: output/<run id> replaced only by a whole new report.

A render writes into a staging folder beside output/<run id> and swaps it in at the end, under a lock that
serialises renders of one run; a render that dies leaves a staging folder that the next render removes once
its process is gone. Nothing here knows what a report contains.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from reportgen.errors import ArchiveError
from reportgen.run.archive_layout import validate_run_id
from reportgen.stopping import stop_signals_held

if TYPE_CHECKING:
    from reportgen.run.archive_reading import RunReader


@contextlib.contextmanager
def staged_report(output_root: Path, run: RunReader) -> Iterator[tuple[Path, Path]]:
    """(staging folder, output/<run id>): write the report into the first; when the block ends without an
    error it replaces the second whole, and the staging folder is gone either way."""
    final = _report_folder(output_root, run)
    _remove_abandoned_staging(final.parent)
    # unique, since renders may overlap; the pid tells a later render whether its owner is still alive (and the
    # report process, stopped, removes its own: report/worker.py)
    staging = final.parent / f".{run.run_id}.{os.getpid()}-{secrets.token_hex(4)}.partial"
    try:
        (staging / "figures").mkdir(parents=True)
    except OSError as exc:
        raise ArchiveError(f"{final.parent}: cannot write the report ({exc.strerror})") from exc
    try:
        yield staging, final
        _publish(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _report_folder(output_root: Path, run: RunReader) -> Path:
    """output/<run id>, resolved and checked: the only folder a render may ever replace.

    The run id comes from the resolved run folder and is validated, so no argument can make the
    report folder '..', '' or anything outside the output root, and a report is never written inside
    the run it describes. Creates the output root (the lock lives there)."""
    root = output_root.resolve()
    for source in run.runs:  # a combined report (combine.py) reads several
        if root.is_relative_to(source.path):
            raise ArchiveError(
                f"{output_root}: the report cannot be written inside the run folder "
                f"{source.path} (choose another --output-dir)"
            )
    final = root / validate_run_id(run.run_id)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchiveError(f"{root}: cannot write the report ({exc.strerror})") from exc
    with _report_lock(final):  # refused now, before the render's work, if it would be refused at the end
        _check_replaceable(final)
    return final


@contextlib.contextmanager
def _report_lock(final: Path) -> Iterator[None]:
    """Held while a render looks at output/<id> or swaps it: a lock file beside it serialises renders of
    one run, so no check ever sees a folder half-way through another render's swap."""
    try:
        lock = open(final.parent / f".{final.name}.render-lock", "a")  # noqa: SIM115 (the `with` below closes it)
    except OSError as exc:
        raise ArchiveError(f"{final.parent}: cannot write the report ({exc.strerror})") from exc
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        yield


def _check_replaceable(final: Path) -> None:
    """A render may replace output/<id> only when it is absent or a previous report (it has summary.json):
    a user's folder there is never replaced. Call under _report_lock."""
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise ArchiveError(f"{final}: exists and is not a report folder; move it away to render here")
    if final.is_dir() and any(final.iterdir()) and not (final / "summary.json").is_file():
        raise ArchiveError(
            f"{final}: exists and is not a reportgen report (no summary.json); "
            "move it away or choose another --output-dir"
        )


def _publish(staging: Path, final: Path) -> None:
    """Swap the finished staging folder into place, checked again under the lock: whatever another
    render or the user put there since the first check, the swap sees either no report or a whole one.
    The documents this render did not write are carried over under the same lock (outside it, another
    render's swap could take them away mid-copy). A stop signal (Ctrl-C, the command's SIGTERM to its
    report process) waits until the swap is done: between the two renames the report folder is absent."""
    with _report_lock(final), stop_signals_held():
        _check_replaceable(final)
        _keep_other_documents(final, staging)
        retired = final.parent / f".{final.name}.{secrets.token_hex(4)}.old"
        if final.is_dir():
            final.rename(retired)
        staging.rename(final)
        shutil.rmtree(retired, ignore_errors=True)


DOCUMENTS = ("report.html", "report.css", "misclassified.html", "report.pdf", "report.md", "tables.tex")
_STAGING = re.compile(r"\.(?P<run>.+)\.(?P<pid>\d+)-[0-9a-f]{8}\.partial")


def _keep_other_documents(final: Path, staging: Path) -> None:
    """`render --format md` writes report.md and leaves the previous render's HTML and PDF in place: the
    documents this render did not write are carried over from the report folder it replaces."""
    for name in DOCUMENTS:
        if (final / name).is_file() and not (staging / name).exists():
            shutil.copy2(final / name, staging / name)


def _remove_abandoned_staging(root: Path) -> None:
    """Staging folders of renders that were killed (their process is gone) are removed; a live render's is kept."""
    for folder in root.glob(".*.partial"):
        match = _STAGING.fullmatch(folder.name)
        if match and not _process_alive(int(match["pid"])):
            shutil.rmtree(folder, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
