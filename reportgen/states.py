"""The states a run and a trial can be in: plain values, no I/O, so the training engine and the report can
name them without loading the archive that stores them."""

from __future__ import annotations

from enum import StrEnum


class RunState(StrEnum):
    """`state` in status.json."""

    RUNNING = "running"  # being written, or killed while being written: resumable
    COMPLETE = "complete"  # every trial finished (complete or diverged); sealed with a manifest
    PARTIAL = "partial"  # finished, at least one trial failed and at least one finished; sealed; resumable
    FAILED = "failed"  # no trial finished, or the driver/environment failed (disk full); resumable
    STOPPED = "stopped"  # the user stopped it (Ctrl-C): nothing went wrong; resumable from its checkpoints


class TrialState(StrEnum):
    """`status` in trials/<id>/trial.json."""

    RUNNING = "running"  # registered, training (or interrupted): resumable from its checkpoint
    COMPLETE = "complete"  # trained for every epoch
    DIVERGED = "diverged"  # stopped early on NaN/inf or an exploded loss; kept, flagged, counts as finished
    FAILED = "failed"  # raised; `error` (one line) and `traceback` in trial.json; retrained on resume


FINISHED_TRIALS = frozenset({TrialState.COMPLETE, TrialState.DIVERGED})
