"""Turns an archived run into the report's content: its trials summarized, settings checked, comparisons.

Pure data in, pure data out (no templates, no files): render.py lays it out; the same numbers
feed HTML, PDF, CSV and JSON, so they cannot disagree. pandas is imported inside the functions that use
it: reportgen.spec imports this module (through the checklist), and reading a spec should not load pandas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import fmean, median
from typing import TYPE_CHECKING, Any

from reportgen.run.archive_reading import RunReader
from reportgen.run.archive_records import ModelAuditRecord
from reportgen.settings import REPORTED, value_order, worth_showing
from reportgen.states import FINISHED_TRIALS, TrialState

if TYPE_CHECKING:
    from reportgen.report.same_training import Group


@dataclass
class TrialSummary:
    trial_id: str
    label: str
    model: str
    config: dict[str, Any]
    status: TrialState
    epochs: list[dict[str, float]]
    audit: ModelAuditRecord
    base: str | None = None
    average: dict[str, float] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    early_stopping: dict[str, Any] | None = None  # TrialRecord's: where training stopped, which epoch was kept
    same_training: Group | None = None  # the other trials that were this one training (same_training.py)

    @property
    def training(self) -> str | int:
        """Equal for trials that were one training (same_training.py), else distinct: counts count each once."""
        return self.same_training.trial_ids[0] if self.same_training else id(self)

    @property
    def repeated(self) -> bool:
        """One training with an earlier trial: left out wherever trainings are counted."""
        return self.same_training is not None and self.same_training.trial_ids[0] != self.trial_id

    @property
    def final(self) -> dict[str, float]:
        """The epoch whose weights the trial kept: the last, or the best one early stopping restored."""
        kept = (self.early_stopping or {}).get("kept_epoch")
        if kept and 0 < kept <= len(self.epochs):
            return self.epochs[kept - 1]
        return self.epochs[-1] if self.epochs else {}

    @property
    def selection_metric(self) -> str:
        """Model selection uses the validation split when there is one, else the test set (the default)."""
        return "val_acc" if self.epochs and self.epochs[0].get("val_acc") is not None else "test_acc"

    @property
    def best(self) -> dict[str, float]:
        scored = [e for e in self.epochs if e.get(self.selection_metric) is not None]
        return max(scored, key=lambda e: e[self.selection_metric]) if scored else {}

    @property
    def ranked(self) -> bool:
        """Only a trial that trained every epoch to a finite accuracy takes part in 'best' and 'better'."""
        return self.status == TrialState.COMPLETE and self.final.get("test_acc") is not None

    @property
    def seconds_per_epoch(self) -> float:
        """The median epoch: one epoch slowed by a busy machine (26-32 s among 6 s ones) does not move it."""
        return median(e["seconds"] for e in self.epochs) if self.epochs else float("nan")

    def comparison_row(self) -> dict[str, Any]:
        return {
            "trial_id": self.trial_id,
            "model": self.label,
            "status": self.status,
            **{k: self.config[k] for k in REPORTED},
            "best_test_acc": self.best.get("test_acc"),
            "best_epoch": self.best.get("epoch"),
            "final_test_acc": self.final.get("test_acc"),
            "final_test_loss": self.final.get("test_loss"),
            "final_train_acc": self.final.get("train_acc"),
            "final_train_loss": self.final.get("train_loss"),
            "parameters": self.audit.total,
            "parameters_without_bias": self.audit.without_bias,
            "seconds_per_epoch": self.seconds_per_epoch,
            "total_seconds": sum(e["seconds"] for e in self.epochs),
        }


def summarize_trials(run: RunReader) -> list[TrialSummary]:
    summaries = []
    for trial_id in run.trial_ids():
        record = run.trial_record(trial_id)
        if record is None:  # failed before it was registered: nothing to report but the lint line
            continue
        epochs = record.epochs
        keys = ("train_loss", "train_acc", "test_loss", "test_acc", "seconds", "val_loss", "val_acc")
        # None where an epoch has no value (a diverged epoch's loss): no average, shown as "–"
        average = {
            k: fmean(e[k] for e in epochs) if all(e[k] is not None for e in epochs) else None
            for k in keys
            if epochs and all(k in e for e in epochs)
        }
        summaries.append(
            TrialSummary(
                trial_id,
                record.label,
                record.model,
                record.config,
                record.status,
                epochs,
                record.audit,
                record.base,
                average,
                record.kwargs,
                record.error,
                record.early_stopping,
            )
        )
    return _one_training_each(run, summaries)


def _one_training_each(run: RunReader, summaries: list[TrialSummary]) -> list[TrialSummary]:
    """Each trial with the group of trials it was one training with (same_training.py), if any."""
    from reportgen.report.same_training import trainings

    group_of = {trial_id: group for group in trainings(run).groups for trial_id in group.trial_ids}
    for summary in summaries:
        summary.same_training = group_of.get(summary.trial_id)
    return summaries


def settings_check(trials: list[TrialSummary]) -> dict[str, Any]:
    """Were the compared models trained under identical settings? Checked from the archived configs."""
    by_model: dict[str, set[tuple]] = {}
    for trial in trials:
        by_model.setdefault(trial.label, set()).add(tuple(trial.config[k] for k in REPORTED))
    config_sets = list(by_model.values())
    identical = all(s == config_sets[0] for s in config_sets)
    shared = {k: sorted({t.config[k] for t in trials}, key=value_order) for k in REPORTED}
    return {
        "identical": identical,
        "constant": {
            k: v[0]
            for k, v in shared.items()
            if len(v) == 1 and worth_showing(k, v[0], {n: w[0] for n, w in shared.items()})
        },
        "varied": {k: v for k, v in shared.items() if len(v) > 1},
    }


def _selection_key(trial: TrialSummary) -> tuple[bool, float]:
    """Complete trials before diverged ones; then the final selection accuracy (validation when there is
    a validation split, else test)."""
    score = trial.final.get(trial.selection_metric)
    return trial.ranked, float("-inf") if score is None else score


def best_per_model(trials: list[TrialSummary]) -> list[TrialSummary]:
    """For galleries, McNemar and before/after: each model's best trial. A diverged trial stands in for
    its model only when no trial of that model completed; failed trials never do."""
    best: dict[str, TrialSummary] = {}
    for trial in trials:
        if trial.status == TrialState.FAILED or not trial.epochs:
            continue
        if trial.label not in best or _selection_key(trial) > _selection_key(best[trial.label]):
            best[trial.label] = trial
    return list(best.values())


def ranked_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Comparison rows by final test accuracy, best first; diverged, then failed or empty trials last."""
    order = {TrialState.COMPLETE: 0, TrialState.DIVERGED: 1}
    return sorted(
        rows, key=lambda r: (order.get(r["status"], 2), r["final_test_acc"] is None, -(r["final_test_acc"] or 0.0))
    )


def before_after(trials: list[TrialSummary]) -> list[dict[str, Any]]:
    """Regularized model vs its base (spec key models[].base), on the best trial of each."""
    best = {t.label: t for t in best_per_model(trials) if t.ranked}
    rows = []
    for trial in best.values():
        if trial.base and trial.base in best:
            base = best[trial.base]
            rows.append(
                {
                    "model": trial.label,
                    "base": base.label,
                    **{
                        f"{key}_{side}": getattr(t, attr)[metric]
                        for side, t in (("before", base), ("after", trial))
                        for key, attr, metric in (
                            ("final_acc", "final", "test_acc"),
                            ("final_train_acc", "final", "train_acc"),
                            ("best_acc", "best", "test_acc"),
                            ("average_acc", "average", "test_acc"),
                            ("final_loss", "final", "test_loss"),
                        )
                    },
                    "parameters_before": base.audit.total,
                    "parameters_after": trial.audit.total,
                    # overfitting shrinks the gap between train and test accuracy: regularization's own evidence
                    "gap_before": _gap(base),
                    "gap_after": _gap(trial),
                }
            )
    return rows


def _gap(trial: TrialSummary) -> float | None:
    """Final train accuracy minus final test accuracy (None when either is missing)."""
    train, test = trial.final.get("train_acc"), trial.final.get("test_acc")
    return None if train is None or test is None else train - test


def seed_mean(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per epoch, the mean test accuracy of trials that differ only in seed (epochs all of them reached)."""
    epochs = min(len(r) for r in runs)
    return [
        {
            "epoch": runs[0][i]["epoch"],
            "test_acc": None
            if any(r[i].get("test_acc") is None for r in runs)
            else fmean(r[i]["test_acc"] for r in runs),
        }
        for i in range(epochs)
    ]


def sweep_pivot(trials: list[TrialSummary], row_key: str, column_key: str) -> dict[str, Any]:
    """Best final test accuracy (%) for each (row setting, column setting) pair; NaN where untried."""
    import pandas as pd

    rows = sorted({t.config[row_key] for t in trials}, key=value_order)
    columns = sorted({t.config[column_key] for t in trials}, key=value_order)
    ranked = pd.DataFrame(
        [(t.config[row_key], t.config[column_key], 100 * t.final["test_acc"]) for t in trials if t.ranked],
        columns=["row", "column", "accuracy"],
    )
    best = ranked.pivot_table("accuracy", "row", "column", aggfunc="max")
    values = best.reindex(index=rows, columns=columns).to_numpy(dtype=float).tolist()
    return {"rows": rows, "columns": columns, "values": values, "marks": _unranked_marks(trials, row_key, column_key)}


def _unranked_marks(trials: list[TrialSummary], row_key: str, column_key: str) -> dict[tuple, str]:
    """(row setting, column setting) → "diverged" or "failed" where trials ran but none trained to the end: the
    heatmap says so in the cell, where an untried combination stays blank."""
    cells: dict[tuple, list[TrialSummary]] = {}
    for t in trials:
        cells.setdefault((t.config[row_key], t.config[column_key]), []).append(t)
    return {
        cell: "diverged" if any(t.status == TrialState.DIVERGED for t in group) else "failed"
        for cell, group in cells.items()
        if not any(t.ranked for t in group)
    }


def cost_rows(
    models: list[dict[str, Any]], best: list[TrialSummary], train_sizes: dict[str, int]
) -> list[dict[str, Any]]:
    """One row per model for the cost table: parameters, MACs, training time and speed, inference latency
    (batch 1) and throughput (batch 256), size — beside the accuracy of its best trial. train_sizes: the
    training images of each model's run, by label."""
    best_of = {t.label: t for t in best}
    rows = []
    for model in models:
        cost, trial = model["audit"].cost or {}, best_of.get(model["label"])
        if "macs" not in cost:
            continue  # archived before costs were measured, or measurement failed (cost["error"])
        latency = {x["batch_size"]: x for x in cost["latency"]}
        seconds = trial.seconds_per_epoch if trial else None
        rows.append(
            {
                "model": model["label"],
                "parameters": model["audit"].total,
                "macs": cost["macs"]["total"],
                "final_test_acc": trial.final.get("test_acc") if trial else None,
                "seconds_per_epoch": seconds,
                "train_images_per_second": train_sizes[model["label"]] / seconds if seconds else None,
                "total_train_seconds": sum(e["seconds"] for e in trial.epochs) if trial else None,
                "latency_b1_ms": latency.get(1, {}).get("median_ms"),
                "latency_b1_iqr_ms": latency.get(1, {}).get("iqr_ms"),
                "throughput_b256": latency.get(256, {}).get("images_per_second"),
                "state_dict_bytes": cost["state_dict_bytes"],
                "parameter_bytes": cost["parameter_bytes"],
                "device": cost["device"],
                "threads": cost["threads"],
                "macs_check_flop_counter": cost["macs"]["matches_flop_counter"],
                "macs_check_torchinfo": cost["macs"]["matches_torchinfo"],
            }
        )
    return rows


def quality_by_trial(trials: list[TrialSummary], read_predictions, classes: int) -> dict[str, dict[str, Any]]:
    """Per finished trial (complete or diverged: those archive predictions), its per-class scores and
    calibration from its test predictions (quality.trial_quality); `read_predictions`: trial id → rows."""
    from reportgen.report.quality import trial_quality  # scikit-learn: loaded by a render, not by reading a spec

    return {
        t.trial_id: trial_quality(read_predictions(t.trial_id), classes)
        for t in trials
        if t.status in FINISHED_TRIALS and t.epochs
    }


def with_quality(rows: list[dict[str, Any]], quality: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Comparison rows with each trial's macro and weighted F1 and its ECE (None where it has none)."""

    def columns(q: dict[str, Any] | None) -> dict[str, Any]:
        q = q or {}
        return {
            "macro_f1": (q.get("macro") or {}).get("f1"),
            "weighted_f1": (q.get("weighted") or {}).get("f1"),
            "ece": q.get("ece"),
        }

    return [row | columns(quality.get(row["trial_id"])) for row in rows]


# Calibration is worth a sentence only when it matters: a model's expected calibration error above this, or two
# models' ECEs further apart than this (the best- and worst-calibrated model are then named). The table's caption
# states the same rule.
