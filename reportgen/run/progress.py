"""The driver's progress while trials train: a bar batch by batch or trial by trial, and a line per finished trial."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from reportgen.states import FINISHED_TRIALS

if TYPE_CHECKING:
    from tqdm import tqdm

    from reportgen.run.trial import TrialJob

Log = Callable[[str], None]


class Progress:
    """The driver's progress bar and log: the only object of the driver an executor touches.

    Training in this process advances the bar batch by batch (Progress is a TrialOutput); executors
    that train elsewhere call `count_trials` to make it count finished trials instead.
    """

    def __init__(self, bar: tqdm, log: Log, trials: int) -> None:
        self.bar, self._log, self.trials = bar, log, trials
        self.done = self.failed = 0
        self._per_trial = False

    def batches(self, count: int) -> None:
        if not self._per_trial:
            self.bar.update(count)

    def epoch(self, line: str) -> None:
        self.bar.write(line)  # above the bar, not through it

    def log(self, line: str) -> None:
        self._log(line)

    def count_trials(self) -> None:
        self._per_trial = True
        self.bar.unit = "trial"
        self.bar.reset(total=self.trials)

    def trial_done(self, job: TrialJob, status: str) -> None:
        if status in FINISHED_TRIALS:
            self.done += 1
        else:
            self.failed += 1
        left = self.trials - self.done - self.failed  # queued or training: not every executor can tell which
        if self._per_trial:
            self.bar.update(1)
        self.bar.set_postfix(done=self.done, left=left, failed=self.failed)
        self._log(
            f"trial {job.trial.trial_id} ({job.trial.model.label}): {status} "
            f"[{self.done} done, {left} left, {self.failed} failed]"
        )
