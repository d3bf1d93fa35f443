"""`reportgen list`: every run in the archive with state, date, models and best accuracy.

Malformed run folders are listed as such rather than crashing the listing.
"""

from __future__ import annotations

from pathlib import Path

from reportgen.errors import ArchiveError
from reportgen.run.archive_reading import ArchiveReader
from reportgen.states import TrialState


def run_rows(root: Path) -> list[dict[str, str]]:
    rows = []
    for folder in sorted(p for p in root.glob("*") if p.is_dir() and not p.name.startswith(".")):
        run = ArchiveReader(folder)
        try:
            record = run.record()
            trials = {trial_id: run.trial_record(trial_id) for trial_id in run.trial_ids()}
        except (ArchiveError, OSError, ValueError, KeyError, TypeError) as exc:  # malformed JSON or records
            rows.append({"run": folder.name, "state": "unreadable", "started": "", "models": str(exc)[:60], "best": ""})
            continue
        # A trial that failed before it was registered has no record (its id stands in for its label); a
        # diverged epoch's accuracy may be null: neither may break the listing of every other run.
        registered = [t for t in trials.values() if t is not None]
        accuracies = [
            e["test_acc"]
            for t in registered
            if t.status == TrialState.COMPLETE
            for e in t.epochs
            if isinstance(e.get("test_acc"), (int, float))
        ]
        rows.append(
            {
                "run": folder.name,
                "state": record.state,
                "started": record.started,
                "models": ", ".join(dict.fromkeys(t.label if t else trial_id for trial_id, t in trials.items())),
                "best": f"{100 * max(accuracies):.2f}%" if accuracies else "–",
            }
        )
    return rows


def list_runs(root: Path) -> str:
    rows = run_rows(root)
    if not rows:
        return f"no runs under {root}"
    columns = ("run", "state", "started", "best", "models")
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)
