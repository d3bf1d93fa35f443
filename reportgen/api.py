"""Python API for notebooks and scripts: the same spec → runner → archive → renderer path as the CLI.

import reportgen
report = reportgen.compare({"LeNet-5": LeNet5, "MLP": MLP}, dataset="fashion-mnist", epochs=10)
report          # in Jupyter: conclusion, checklist, comparison table and curves inline
report.table    # pandas DataFrame, one row per trial; report.metrics: per-epoch, long format
report.pdf      # path of report.pdf; report.run: the archived run folder

reportgen.audit(LeNet5(), input_size=(1, 28, 28))   # parameter audit, shown as a table in Jupyter
"""

from __future__ import annotations

import html
import io
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from reportgen.errors import ModelError, SpecError

# Keyword arguments of `compare` that belong to the spec's [data] table; every other keyword is a
# [train] setting, so the spec's own validation names any mistake.
_DATA_KEYWORDS = {
    "dataset",
    "data_dir",
    "train_subset",
    "test_subset",
    "mean",
    "std",
    "format",
    "train",
    "test",
    "validation",
}
ModelLike = str | type | Callable[[], nn.Module] | nn.Module


class Report:
    """A rendered report: files on disk plus the tables as DataFrames; displays itself in Jupyter."""

    def __init__(self, folder: Path, run: Path) -> None:
        self.folder, self.run = Path(folder), Path(run)
        self.summary: dict[str, Any] = json.loads((self.folder / "summary.json").read_text("utf-8"))

    @property
    def html(self) -> Path:
        return self.folder / "report.html"

    @property
    def pdf(self) -> Path | None:
        path = self.folder / "report.pdf"
        return path if path.exists() else None

    @property
    def table(self):
        """The comparison, one row per trial (the report's comparison.csv)."""
        import pandas as pd

        return pd.read_csv(self.folder / "comparison.csv")

    @property
    def metrics(self):
        """Every trial's per-epoch metrics in long format (the report's metrics.csv)."""
        import pandas as pd

        return pd.read_csv(self.folder / "metrics.csv")

    def __repr__(self) -> str:
        return f"Report({self.html}, run={self.run})"

    def _repr_html_(self) -> str:
        """The report's first screen: the report model's conclusion, checklist and comparison table from
        summary.json (the cells report.html shows), headed in the report's language."""
        import jinja2

        from reportgen.report.i18n import translator

        tr = translator(self.summary.get("lang", "en"))
        env = jinja2.Environment(loader=jinja2.PackageLoader("reportgen", "templates"), autoescape=True)
        figures = {name: _inline_svg(self.folder / "figures" / f"{name}.svg") for name in ("loss", "acc")}
        return env.get_template("notebook.html.j2").render(
            title=tr(self.summary["spec"]["name"]),
            report=self.summary["report"],
            warnings=self.summary["warnings"],
            words={key: tr(key.capitalize()) for key in ("run", "report", "conclusion", "warnings")},
            figures=figures,
            html_path=str(self.html),
            pdf_path=str(self.pdf or ""),
            run=str(self.run),
        )


def _inline_svg(path: Path) -> str:
    """An SVG figure as markup for a notebook cell (the XML prologue dropped); '' when absent."""
    if not path.exists():
        return ""
    text = path.read_text("utf-8")
    return text[text.find("<svg") :]


def _values(models: Mapping[str, ModelLike] | Sequence[ModelLike]) -> list[ModelLike]:
    return list(models.values() if isinstance(models, Mapping) else models)


def _model_entries(models: Mapping[str, ModelLike] | Sequence[ModelLike]) -> list[dict[str, Any]]:
    """Spec [[models]] entries; Python objects are registered in-process under their label."""
    from reportgen.models.registry import register_object

    items = models.items() if isinstance(models, Mapping) else [(None, m) for m in models]
    entries = []
    for label, model in items:
        if isinstance(model, str):
            entries.append({"name": model, **({"label": label} if label else {})})
            continue
        label = label or getattr(model, "__name__", None) or type(model).__name__
        if not (isinstance(model, nn.Module) or callable(model)):
            raise ModelError(
                f"model {label!r}: expected an nn.Module class, a zero-argument factory, an "
                f"instance or a model name, got {type(model).__name__}"
            )
        entries.append({"name": register_object(label, model).target, "label": label})
    if not entries:
        raise SpecError("compare(): no models given")
    return entries


def compare(
    models: Mapping[str, ModelLike] | Sequence[ModelLike],
    *,
    spec: str | Path | None = None,
    runs_dir: str | Path = "runs",
    output_dir: str | Path = "output",
    run_id: str | None = None,
    name: str | None = None,
    lang: str | None = None,
    device: str | None = None,
    seeds: Sequence[int] | None = None,
    pdf: bool = True,
    checklist: str | None = None,
    executor: str = "auto",
    workers: int = 2,
    **settings: Any,
) -> Report:
    """Train `models` under identical settings, archive the run and render its report.

    `models` maps report labels to model classes, zero-argument factories, instances (their initial
    weights are then the caller's, not seeded by reportgen) or model references such as "lenet5" or
    "my_models.py:LeNet5". Other keywords are spec settings: data (`dataset`, `data_dir`,
    `train_subset`, `test_subset`, ...) and training (`epochs`, `batch_size`, `lr`, `optimizer`,
    `loss`, ...; a list sweeps). `spec` starts from a TOML spec file instead of the default one.
    """
    from reportgen.models.registry import is_in_memory
    from reportgen.report.render import render_report
    from reportgen.run.archive import RunState
    from reportgen.run.executors import choose_executor
    from reportgen.run.runner import run_experiment
    from reportgen.spec import describe_own_models, parse_spec, read_spec_file

    raw, source = read_spec_file(spec)
    if spec is None:
        describe_own_models(raw)
        # The embedded spec is the course assignment, whose checklist is about its LeNet-5 and MLP: a
        # notebook comparing its own models gets a checklist only when it asks for one.
        raw.pop("checklist", None)
        raw.get("report", {}).pop("checklist", None)
    raw["models"] = _model_entries(models)
    for key, value in settings.items():
        raw.setdefault("data" if key in _DATA_KEYWORDS else "train", {})[key] = value
    report = raw.setdefault("report", {})
    for key, value in {"lang": lang, "checklist": checklist}.items():
        if value is not None:
            report[key] = value
    for key, value in {"name": name, "device": device}.items():
        if value is not None:
            raw[key] = value
    if seeds is not None:
        raw.setdefault("train", {})["seeds"] = list(seeds)
    instances = [e["label"] for e, m in zip(raw["models"], _values(models)) if isinstance(m, nn.Module)]
    if instances:  # their initial weights are the caller's: the report must not suggest reportgen seeded them
        raw["notes"] = (
            f"{raw.get('notes', '')}\n{', '.join(instances)}: passed as an instance, so the initial "
            "weights were set by the caller, not seeded by reportgen."
        ).strip()
    parsed = parse_spec(raw, source if spec else "compare()")
    in_process = any(is_in_memory(m.ref) for m in parsed.models)
    if in_process and executor not in ("auto", "local"):
        raise SpecError(
            f"compare(): executor={executor!r} cannot train models defined in this Python session "
            "(worker processes cannot import them); use executor='local' or name them as 'file.py:Class'"
        )
    # Objects defined in a notebook cannot be pickled into worker processes: they train in this process.
    chosen = choose_executor(parsed, "local" if in_process else executor, workers)
    run = run_experiment(parsed, Path(runs_dir), run_id, executor=chosen)
    partial = run.state() == RunState.PARTIAL  # some trials failed: the report shows them, marked
    if partial:
        warnings.warn(
            f"{run.path} is partial ({run.record().error}); the report is marked as such — "
            f"resume with `reportgen run --resume {run.path}`",
            stacklevel=2,
        )
    folder = render_report(run.path, output_dir, parsed.lang, pdf=pdf, checklist=checklist, allow_incomplete=partial)
    return Report(folder, run.path)


class Audit:
    """A parameter audit (reportgen.measure.params.ModelAudit) that displays as a table in Jupyter."""

    def __init__(self, audit: Any) -> None:
        self.audit = audit

    def __getattr__(self, name: str) -> Any:
        return getattr(self.audit, name)

    def __repr__(self) -> str:
        from reportgen.measure.audit_text import format_audit

        return format_audit(self.audit, "table")

    @property
    def table(self):
        """One row per layer: formula, weights, bias, trainable, buffers."""
        import pandas as pd

        from reportgen.measure.audit_text import format_audit

        return pd.read_csv(io.StringIO(format_audit(self.audit, "csv")))

    def _repr_html_(self) -> str:
        a = self.audit
        check = "✓" if a.matches_torchinfo else "✗"
        totals = (
            f"<p><b>{html.escape(a.model_name)}</b>: {a.total:,} parameters ({a.without_bias:,} without bias, "
            f"{a.trainable:,} trainable, {a.buffers:,} buffer values); torchinfo {a.torchinfo_total:,} {check}</p>"
        )
        return totals + self.table.to_html(index=False, na_rep="")


def audit(model: nn.Module | type | str, input_size: Sequence[int] = (1, 28, 28), name: str | None = None) -> Audit:
    """Parameter audit of a model instance, class (built with no arguments) or model reference."""
    from reportgen.measure.params import audit_model
    from reportgen.models.registry import create_model

    if isinstance(model, str):
        label, model = name or model, create_model(model)
    elif isinstance(model, type):
        label, model = name or model.__name__, model()
    else:
        label = name or type(model).__name__
    if not isinstance(model, nn.Module):
        raise ModelError(f"audit(): expected an nn.Module, got {type(model).__name__}")
    return Audit(audit_model(model, tuple(input_size), name=label))
