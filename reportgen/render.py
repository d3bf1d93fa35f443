"""Lays out a run's report: HTML (Jinja2, autoescaped), PDF (WeasyPrint), CSV and JSON.

The output folder is built under a temporary name and renamed into place at the end, so a failed
render never leaves a half-written report in output/.
"""
from __future__ import annotations

import base64
import json
import re
import secrets
import shutil
import time
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from .archive import ArchiveError, RunArchive, atomic_write_json, open_run, validate_run_id
from .data import load_recorded_dataset
from .checklist import evaluate_checklist, load_checklist
from .significance import literature, pairwise_mcnemar, seed_aggregates
from .lint import format_warning, lint_trials
from .plots import confusion_svg, curves_svg, gallery_png, heatmap_svg, model_colors, model_panels_svg
from .report import (TrialSummary, before_after, best_per_model, conclusion, confusion_matrix, gallery_picks,
                     per_class_accuracy, ranked_rows, settings_check, summarize_trials, sweep_pivot)

# Templates, stylesheet and catalogues ship inside the package: found the same way in a checkout and a wheel.
TEMPLATES = resources.files("reportgen") / "templates"
LANGS = ("en", "ko")
GALLERY_PAGE = 120  # misclassified images per contact sheet (10 columns × 12 rows)


def load_catalogue(lang: str) -> dict[str, str]:
    """English needs only display names for setting keys; other languages translate every message."""
    return json.loads(TEMPLATES.joinpath("i18n", f"{lang}.json").read_text("utf-8"))


def translator(lang: str):
    catalogue = load_catalogue(lang)
    return lambda text: catalogue.get(text, text)


def _environment(lang: str) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("reportgen", "templates"), autoescape=True,
                             extensions=["jinja2.ext.i18n"], undefined=jinja2.StrictUndefined)
    translate = translator(lang)
    # `_()` is for the template's own literals only: new-style gettext marks its result safe and
    # %-formats it. Values (checklist lines, states, setting keys) go through `tr`, which autoescapes.
    env.filters["tr"] = lambda value: translate(str(value))
    env.install_gettext_callables(lambda s, **kw: translate(s) % kw if kw else translate(s),
                                  lambda s, p, n, **kw: translate(s if n == 1 else p) % kw, newstyle=True)
    env.filters["pct"] = lambda x, digits=2: "–" if x is None else f"{100 * x:.{digits}f}%"
    env.filters["num"] = lambda x, digits=4: "–" if x is None else f"{x:.{digits}f}"
    env.filters["thousands"] = lambda x: f"{x:,}"
    return env


def _reload_test_images(run: RunArchive):
    """The test images for the galleries, re-read from the original files and checked against the archive."""
    spec = run.read("spec")
    return load_recorded_dataset(spec["data"], spec["train"]["seeds"][0], run.read("data")["files"]).test_images


def _galleries(run: RunArchive, best: list[TrialSummary], predictions: dict[str, list[dict[str, str]]],
               classes: list[str], seed: int, figures: Path, translate) -> list[dict[str, Any]]:
    """Per model: 10 random correct images, every misclassified one (paged), confusion matrix, per-class accuracy."""
    images = _reload_test_images(run)
    names = [translate(c) for c in classes]
    galleries = []
    for n, trial in enumerate(best):
        rows = predictions[trial.trial_id]
        correct, wrong = gallery_picks(rows, seed)
        label_of = {int(p["index"]): (int(p["label"]), int(p["prediction"])) for p in rows}

        def captions(indices: list[int]) -> list[tuple[str, str]]:
            return [(names[label_of[i][0]], names[label_of[i][1]]) for i in indices]

        gallery_png(images[correct], captions(correct), figures / f"gallery-{n}-correct.png")
        wrong_files = []
        for page, start in enumerate(range(0, len(wrong), GALLERY_PAGE)):
            chunk = wrong[start:start + GALLERY_PAGE]
            wrong_files.append(f"gallery-{n}-wrong-{page + 1}.png")
            gallery_png(images[chunk], captions(chunk), figures / wrong_files[-1], wrong=True)
        matrix = confusion_matrix(rows, len(classes))
        confusion_svg(matrix, names, trial.label, translate("True label"), translate("Predicted label"),
                      figures / f"confusion-{n}.svg")
        galleries.append({"trial": trial, "correct": f"figures/gallery-{n}-correct.png",
                          "wrong": ["figures/" + f for f in wrong_files], "wrong_count": len(wrong),
                          "test_count": len(rows), "confusion": f"figures/confusion-{n}.svg",
                          "per_class": per_class_accuracy(matrix, names)})
    return galleries


def _heatmaps(trials: list[TrialSummary], varied: dict[str, list], figures: Path, translate) -> list[str]:
    """One lr × batch-style pivot per model when at least two numeric settings were swept."""
    axes = [k for k in ("lr", "batch_size", "epochs", "momentum", "weight_decay", "optimizer", "loss") if k in varied]
    if len(axes) < 2:
        return []
    row_key, column_key = axes[0], axes[1]
    files = []
    for n, label in enumerate(dict.fromkeys(t.label for t in trials)):
        pivot = sweep_pivot([t for t in trials if t.label == label], row_key, column_key)
        name = f"heatmap-{n}.svg"
        heatmap_svg(pivot["values"], pivot["rows"], pivot["columns"], translate(row_key), translate(column_key),
                    f"{label}: {translate('Final test accuracy')} (%)", figures / name)
        files.append("figures/" + name)
    return files


def _restricted_fetcher(root: Path):
    """WeasyPrint may read files inside the report folder and nothing else (no network, no other files)."""
    from urllib.parse import unquote, urlparse

    from weasyprint.urls import URLFetcher

    class FolderFetcher(URLFetcher):
        def fetch(self, url: str, headers=None):
            parsed = urlparse(url)
            inline = parsed.scheme == "data"  # images matplotlib embeds inside SVG figures
            if not inline and (parsed.scheme != "file"
                               or not Path(unquote(parsed.path)).resolve().is_relative_to(root.resolve())):
                raise ValueError(f"blocked: {url[:80]} is outside the report folder")
            return super().fetch(url, headers)

    return FolderFetcher(allowed_protocols=("file", "data"))


def build_context(run: RunArchive, figures: Path, lang: str, problems: list[str],
                  checklist_name: str | None = None) -> dict[str, Any]:
    translate = translator(lang)
    spec, env, data = run.read("spec"), run.read("environment"), run.read("data")
    trials = summarize_trials(run)
    if not trials:
        raise ArchiveError(f"{run.path}: the run has no trials to report")
    settings = settings_check(trials)
    labels = list(dict.fromkeys(t.label for t in trials))
    colors = model_colors(labels)
    by_label = {label: [t for t in trials if t.label == label] for label in labels}
    series = {t.label if len(by_label[t.label]) == 1 else f"{t.label} [{t.trial_id[:3]}]": t.epochs
              for t in trials if t.epochs}
    series_colors = {name: colors[name.split(" [")[0]] for name in series}
    for metric in ("loss", "acc"):
        curves_svg(series, metric, series_colors, translate, figures / f"{metric}.svg")
    best = best_per_model(trials)
    predictions = {t.trial_id: run.predictions(t.trial_id) for t in best}
    warnings = lint_trials(trials, len(data["classes"]), settings["identical"])
    tests = pairwise_mcnemar(best, predictions)
    improvements = before_after(trials)
    models = [{"label": label, "trials": by_label[label], "audit": by_label[label][0].audit,
               "color": colors[label], "name": by_label[label][0].model, "kwargs": by_label[label][0].kwargs,
               "base_label": by_label[label][0].base} for label in labels]
    model_curves = []
    for n, trial in enumerate(best):
        panels = model_panels_svg(trial.epochs, trial.label, colors[trial.label], translate,
                                  figures / f"curves-{n}.svg")
        model_curves.append({"label": trial.label, "file": f"figures/curves-{n}.svg", "panels": panels})
    context = {
        "lang": lang, "run_id": run.run_id, "status": run.status(), "spec": spec, "env": env, "data": data,
        "trials": trials, "models": models, "colors": colors, "settings": settings, "warnings": warnings,
        "format_warning": format_warning, "comparison": ranked_rows([t.comparison_row() for t in trials]),
        "before_after": improvements, "aggregates": seed_aggregates(trials), "mcnemar": tests,
        "heatmaps": _heatmaps(trials, settings["varied"], figures, translate),
        "literature": literature(data["dataset"]),
        "conclusion": conclusion(best, tests, improvements, warnings, translate),
        "galleries": _galleries(run, best, predictions, data["classes"], spec["train"]["seeds"][0], figures,
                                translate),
        "problems": problems, "generated": time.strftime("%Y-%m-%d %H:%M"), "translate": translate,
        "best": best, "model_curves": model_curves,
    }
    checklist = checklist_name or spec.get("checklist")
    context["checklist"] = None
    if checklist:
        loaded = load_checklist(checklist)
        context["checklist"] = {"title": loaded["title"], "items": evaluate_checklist(loaded, context)}
    return context


def _write_tables(context: dict[str, Any], folder: Path) -> None:
    rows = [{"trial_id": t.trial_id, "model": t.label, **e} for t in context["trials"] for e in t.epochs]
    pd.DataFrame(rows).to_csv(folder / "metrics.csv", index=False)
    pd.DataFrame(context["comparison"]).to_csv(folder / "comparison.csv", index=False)
    atomic_write_json(folder / "summary.json", {
        "run_id": context["run_id"], "spec": context["spec"], "settings": context["settings"],
        "comparison": context["comparison"], "before_after": context["before_after"],
        "seed_aggregates": context["aggregates"], "mcnemar": context["mcnemar"],
        "conclusion": context["conclusion"], "checklist": context["checklist"],
        "warnings": [{"code": w.code, "trial_id": w.trial_id, "message": format_warning(w)}
                     for w in context["warnings"]],
        "epochs": {t.trial_id: t.epochs for t in context["trials"]},
        "averages": {t.trial_id: t.average for t in context["trials"]},
        "parameters": {m["label"]: {k: m["audit"][k] for k in ("total", "without_bias", "bias", "trainable",
                                                              "buffers", "torchinfo_total")}
                       for m in context["models"]},
    })


def inline_assets(html: str, folder: Path) -> str:
    """One self-contained file: the stylesheet inlined, every figure as a data: URI."""
    css = (folder / "report.css").read_text("utf-8")
    html = html.replace('<link rel="stylesheet" href="report.css">', f"<style>\n{css}</style>")

    def data_uri(match: re.Match) -> str:
        path = folder / match.group(1)
        mime = "image/svg+xml" if path.suffix == ".svg" else "image/png"
        return f'src="data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"'

    return re.sub(r'src="(figures/[A-Za-z0-9_.-]+)"', data_uri, html)


def _report_folder(output_root: Path, run: RunArchive) -> Path:
    """output/<run id>, resolved and checked: the only folder a render may ever replace.

    The run id comes from the resolved run folder and is validated, so no argument can make the
    report folder '..', '' or anything outside the output root; a folder there that is not a report
    (no summary.json) is never replaced, and a report is never written inside the run it describes."""
    root = output_root.resolve()
    if root.is_relative_to(run.path):
        raise ArchiveError(f"{output_root}: the report cannot be written inside the run folder {run.path} "
                           "(choose another --output-dir)")
    final = root / validate_run_id(run.run_id)
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise ArchiveError(f"{final}: exists and is not a report folder; move it away to render here")
    if final.is_dir() and any(final.iterdir()) and not (final / "summary.json").is_file():
        raise ArchiveError(f"{final}: exists and is not a reportgen report (no summary.json); "
                           "move it away or choose another --output-dir")
    return final


def _publish(staging: Path, final: Path) -> None:
    """Swap the finished staging folder into place. A lock beside it serialises concurrent renders of
    one run, so each swap sees either no report or a whole one."""
    import fcntl

    with open(final.parent / f".{final.name}.render-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        retired = final.parent / f".{final.name}.{secrets.token_hex(4)}.old"
        if final.is_dir():
            final.rename(retired)
        staging.rename(final)
        shutil.rmtree(retired, ignore_errors=True)


def render_report(run_path: str | Path, output_root: str | Path = "output", lang: str | None = None,
                  allow_incomplete: bool = False, pdf: bool = True, checklist: str | None = None,
                  single_file: bool = False) -> Path:
    """Render runs/<id> into output/<id>/ (report.html, report.pdf, metrics.csv, comparison.csv, summary.json)."""
    run = open_run(run_path)
    problems = run.verify()
    if problems and not allow_incomplete:
        raise ArchiveError(f"{run.path}: refusing to render: {'; '.join(problems)} "
                           "(use --allow-incomplete to render it anyway, marked as such)")
    lang = lang or run.read("spec").get("lang", "en")
    if lang not in LANGS:
        raise ArchiveError(f"language {lang!r}: expected one of {', '.join(LANGS)}")
    final = _report_folder(Path(output_root), run)
    staging = final.parent / f".{run.run_id}.{secrets.token_hex(4)}.partial"  # unique: renders may overlap
    try:
        (staging / "figures").mkdir(parents=True)
    except OSError as exc:
        raise ArchiveError(f"{final.parent}: cannot write the report ({exc.strerror})") from exc
    try:
        context = build_context(run, staging / "figures", lang, problems, checklist)
        html = _environment(lang).get_template("report.html.j2").render(**context)
        (staging / "report.css").write_bytes(TEMPLATES.joinpath("report.css").read_bytes())
        (staging / "report.html").write_text(html, "utf-8")
        _write_tables(context, staging)
        if single_file:
            (staging / "report.html").write_text(inline_assets(html, staging), "utf-8")
        if pdf:
            import weasyprint

            weasyprint.HTML(filename=str(staging / "report.html"), url_fetcher=_restricted_fetcher(staging)) \
                .write_pdf(staging / "report.pdf")
        _publish(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
