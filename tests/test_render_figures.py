"""The report is made in one direction (issue #14): analyse_run reads the archive and writes nothing,
figures.draw_figures writes every figure and names each file it wrote, the documents link those names."""

from __future__ import annotations

import shutil
from pathlib import Path

from reportgen.report.figures import draw_figures
from reportgen.report.render import analyse_run, with_figures
from reportgen.run.archive import RunArchive, RunRecord, RunState

FIXTURE = Path(__file__).parent / "fixtures" / "run_format1"


def _linked(figures) -> set[str]:
    """Every file name the templates are handed."""
    names = {c["file"] for c in figures.model_curves} | set(figures.heatmaps)
    names |= {figures.sweep_panels, figures.cost_scatter}
    for gallery in figures.galleries:
        names |= {gallery.correct, gallery.confident, gallery.confusion, *gallery.wrong, *gallery.confusion_sheets}
    return names - {None}


def test_analysis_writes_nothing_and_the_figures_are_every_file_drawn(tmp_path, monkeypatch):
    run_folder = tmp_path / "runs" / "format1"
    shutil.copytree(FIXTURE, run_folder)
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))

    context = analyse_run(RunArchive(run_folder), "en", [])
    assert sorted(tmp_path.rglob("*")) == before
    assert isinstance(context["status"], RunRecord) and context["status"].state is RunState.COMPLETE

    folder = tmp_path / "figures"
    folder.mkdir()
    figures = draw_figures(context, folder)
    drawn = {f"figures/{p.name}" for p in folder.iterdir()}
    assert drawn == _linked(figures) | {"figures/loss.svg", "figures/acc.svg"}  # the two the templates name
    assert [len(c["panels"]) for c in figures.model_curves] == [4, 4]

    shown = with_figures(context, figures)
    assert [g["confusion"] for g in shown["galleries"]] == [g.confusion for g in figures.galleries]
    assert shown["costs"]["scatter"] == figures.cost_scatter == "figures/cost.svg"


def test_the_cost_scatter_labels_a_log_axis_in_plain_numbers(tmp_path):
    """Models a decade or more apart in multiply-adds get a log axis; its labels must read 20k, 50k, 100k,
    never the mathtext source ($\\mathdefault{10^{5}}$) that the report's text.parse_math off would print."""
    from xml.etree import ElementTree

    from reportgen.report.plots import cost_scatter_svg

    rows = [
        {"model": "mlp", "macs": 25_400, "final_test_acc": 0.88},
        {"model": "lenet5", "macs": 416_520, "final_test_acc": 0.9},
    ]
    path = tmp_path / "cost.svg"
    cost_scatter_svg(rows, {"mlp": "#1f77b4", "lenet5": "#ff7f0e"}, lambda text, **_: text, path)
    texts = [t.text for t in ElementTree.parse(path).iter("{http://www.w3.org/2000/svg}text") if t.text]
    assert not [t for t in texts if "$" in t or "mathdefault" in t], texts
    assert {"20k", "50k", "100k", "200k"} <= set(texts), texts
