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
