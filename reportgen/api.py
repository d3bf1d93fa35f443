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
from reportgen.privacy import shown_path
from reportgen.request import DEFAULT_WORKERS

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


# the comparison's columns a reader looks at first (Report.table)
_RESULTS = ("final_test_acc", "final_test_loss", "best_test_acc", "best_epoch", "macro_f1", "ece", "parameters")


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
        """The comparison, one row per trial (the report's comparison.csv), its results before the settings: a
        notebook shows 20 columns of a wide table, and the settings alone are 14."""
        import pandas as pd

        table = pd.read_csv(self.folder / "comparison.csv")
        first = [c for c in ("trial_id", "model", "status", *_RESULTS) if c in table.columns]
        return table[first + [c for c in table.columns if c not in first]]

    @property
    def metrics(self):
        """Every trial's per-epoch metrics in long format (the report's metrics.csv)."""
        import pandas as pd

        return pd.read_csv(self.folder / "metrics.csv")

    def __repr__(self) -> str:
        return f"Report({shown_path(self.html)}, run={shown_path(self.run)})"

    def _repr_html_(self) -> str:
        """The report's first screen: the report model's warnings, checklist, comparison and conclusion from
        summary.json (the cells and words report.html shows, in its order), headed in the report's language."""
        import jinja2

        from reportgen.report.i18n import translator

        tr = translator(self.summary.get("lang", "en"))
        env = jinja2.Environment(loader=jinja2.PackageLoader("reportgen", "templates"), autoescape=True)
        report = self.summary["report"]
        figures = [report.get("figures", {}).get(role) for role in ("loss", "acc")]
        # a class rendered before its model had a header: its title stands beside the model
        header = report.get("header") or {"title": self.summary.get("title")}
        return env.get_template("notebook.html.j2").render(
            title=header["title"],
            report=report,
            words={key: tr(key.capitalize()) for key in ("run", "report", "warnings")},
            figures=[_inline_svg(self.folder / figure["file"]) for figure in figures if figure],
            # saved with the notebook, which students publish: relative to its folder, never the home folder
            html_path=shown_path(self.html),
            pdf_path=shown_path(self.pdf) if self.pdf else "",
            run=shown_path(self.run),
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
    workers: int = DEFAULT_WORKERS,
    **settings: Any,
) -> Report:
    """Train `models` under identical settings, archive the run and render its report.

    `models` maps report labels to model classes, zero-argument factories, instances (their initial
    weights are then the caller's, not seeded by reportgen) or model references such as "lenet5" or
    "my_models.py:LeNet5". Other keywords are spec settings: data (`dataset`, `data_dir`,
    `train_subset`, `test_subset`, ...) and training (`epochs`, `batch_size`, `lr`, `optimizer`,
    `loss`, ...; a list sweeps). `spec` starts from a TOML spec file instead of the default one.
    """
    from reportgen.request import RenderOptions, RunRequest, execute
    from reportgen.spec import describe_own_models, parse_spec, read_spec_file
    from reportgen.stopping import ctrl_c_stops

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
    # the command's path: checked whole before training (executor, folders, existing run id…), trained, rendered
    request = RunRequest(
        parsed,
        runs_dir=Path(runs_dir),
        output_dir=Path(output_dir),
        run_id=run_id,
        executor=executor,
        workers=workers,
        render=RenderOptions(pdf=pdf, checklist=checklist),
    )
    with ctrl_c_stops():  # an interrupt of the kernel stops the training even where it lands in a __del__
        outcome = execute(request)
    if outcome.partial:  # some trials failed: the report shows them, marked
        warnings.warn(
            f"{shown_path(outcome.run.path)} is partial ({outcome.run.record().error}); the report is marked as such — "
            f"resume with `reportgen run --resume {shown_path(outcome.run.path)}`",
            stacklevel=2,
        )
    return Report(outcome.report, outcome.run.path)


class Audit:
    """A parameter and multiply-add audit (measure.params.ModelAudit with measure.macs.MacAudit) that shows in
    Jupyter as `reportgen params` prints it, with the column names in the chosen language."""

    # CSV column → catalogue entry (the report's table uses the same words)
    _COLUMNS = (
        ("layer", "Layer"),
        ("type", "Type"),
        ("output_shape", "Output shape"),
        ("formula", "Formula"),
        ("weights", "Weights"),
        ("bias", "Bias"),
        ("trainable", "Trainable"),
        ("frozen", "Frozen"),
        ("buffers", "Buffers"),
        ("shared", "Shared"),
        ("pruned", "Pruned"),
        ("macs", "MACs"),
        ("macs_formula", "Multiply-adds formula"),
    )

    def __init__(self, audit: Any, macs: Any = None, lang: str = "en") -> None:
        self.audit, self.macs, self.lang = audit, macs, lang

    def __getattr__(self, name: str) -> Any:
        return getattr(self.audit, name)

    def __repr__(self) -> str:
        from reportgen.measure.audit_text import format_audit
        from reportgen.measure.mac_text import format_macs
        from reportgen.report.i18n import wording

        words = wording(self.lang)
        macs = f"\n{format_macs(self.macs, self.audit.model_name, translate=words)}" if self.macs is not None else ""
        return format_audit(self.audit, "table", words) + macs

    @property
    def table(self):
        """One row per layer: formula, weights, bias, trainable, buffers, and its MACs with their formula; the
        columns named as the CSV names them (programs read them), the formulas' words in the audit's language."""
        import pandas as pd

        from reportgen.measure.audit_text import format_audit
        from reportgen.report.i18n import wording

        return pd.read_csv(io.StringIO(format_audit(self.audit, "csv", wording(self.lang))), keep_default_na=False)

    def _repr_html_(self) -> str:
        from reportgen.measure.mac_text import cross_check_text
        from reportgen.report.i18n import translator, wording

        tr, words, a = translator(self.lang), wording(self.lang), self.audit
        parameters = tr(
            "{count} parameters ({without} without bias, {trainable} trainable, {buffers} buffer values); "
            "torchinfo {figure} {check}",
            count=f"{a.total:,}",
            without=f"{a.without_bias:,}",
            trainable=f"{a.trainable:,}",
            buffers=f"{a.buffers:,}",
            figure=f"{a.torchinfo_total:,}",
            check=_torchinfo_mark(a, tr),
        )
        lines = [parameters]
        if self.macs is not None:
            flop, info = cross_check_text(self.macs, words)
            lines += [
                f"{tr('Total per image')}: {self.macs.total:,} MACs = {2 * self.macs.total:,} FLOPs",
                f"{tr('FlopCounterMode')}: {flop}",
                f"torchinfo: {info}",
            ]
        names = dict(self._COLUMNS)
        table = self.table.rename(columns=lambda column: tr(names.get(column, column)))
        paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
        return f"<p><b>{html.escape(a.model_name)}</b></p>{paragraphs}{table.to_html(index=False, na_rep='')}"


def audit(
    model: nn.Module | type | str, input_size: Sequence[int] = (1, 28, 28), name: str | None = None, lang: str = "en"
) -> Audit:
    """Parameter and multiply-add audit of a model instance, class (built with no arguments) or model reference
    (`torchvision:resnet18` too); `lang` ("en", "ko") words its text and table."""
    from reportgen.measure.macs import count_macs
    from reportgen.measure.params import audit_model
    from reportgen.models.registry import create_model

    if isinstance(model, str):
        label, model = name or model, create_model(model, input_shape=tuple(input_size))
    elif isinstance(model, type):
        label, model = name or model.__name__, model()
    else:
        label = name or type(model).__name__
    if not isinstance(model, nn.Module):
        raise ModelError(f"audit(): expected an nn.Module, got {type(model).__name__}")
    parameters = audit_model(model, tuple(input_size), name=label)
    macs = count_macs(model, tuple(input_size), -1 if parameters.torchinfo_total < 0 else None)
    parameters.cost = {"macs": macs.to_dict()}  # the table carries each layer's MACs, as `params --format csv`
    return Audit(parameters, macs, lang)


def _torchinfo_mark(audit: Any, tr) -> str:
    """The mark the report's parameter table gives torchinfo's figure: ✓ equal, ≠ explained (tied or pruned
    weights: both figures are right, the note says why), ✗ otherwise."""
    if audit.matches_torchinfo:
        return "✓"
    return f"≠ ({tr.render(audit.torchinfo_note)})" if audit.torchinfo_note else "✗"
