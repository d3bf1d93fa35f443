"""The report is made in one direction (issue #14): analyse_run reads the archive and writes nothing,
figures.draw_figures writes every figure and names each file it wrote, the documents link those names."""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from reportgen.report.analysis import analyse_run, with_figures
from reportgen.report.contact_sheets import gallery_png, pngs_written_meanwhile
from reportgen.report.figures import draw_figures
from reportgen.report.matrix_plots import confusion_svg, heatmap_svg
from reportgen.run.archive_reading import ArchiveReader
from reportgen.run.archive_records import RunRecord
from reportgen.states import RunState

FIXTURE = Path(__file__).parent / "fixtures" / "run_format1"


def _linked(figures) -> set[str]:
    """Every file name the templates are handed."""
    names = {c["file"] for c in figures.model_curves} | set(figures.heatmaps)
    names |= {figures.sweep_panels, figures.cost_scatter, figures.reliability}
    for gallery in figures.galleries:
        names |= {gallery.correct, gallery.confident, gallery.confusion, *gallery.wrong, *gallery.confusion_sheets}
    for pair in figures.disagreements:
        names |= {pair["a_only"], pair["b_only"]}
    return names - {None}


def test_analysis_writes_nothing_and_the_figures_are_every_file_drawn(tmp_path, monkeypatch):
    run_folder = tmp_path / "runs" / "format1"
    shutil.copytree(FIXTURE, run_folder)
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))

    context = analyse_run(ArchiveReader(run_folder), "en", [])
    assert sorted(tmp_path.rglob("*")) == before
    assert isinstance(context.status, RunRecord) and context.status.state is RunState.COMPLETE

    folder = tmp_path / "figures"
    folder.mkdir()
    figures = draw_figures(context, folder)
    drawn = {f"figures/{p.name}" for p in folder.iterdir()}
    assert drawn == _linked(figures) | {"figures/loss.svg", "figures/acc.svg"}  # the two the templates name
    assert [len(c["panels"]) for c in figures.model_curves] == [4, 4]

    shown = with_figures(context, figures)
    assert [g["confusion"] for g in shown.galleries] == [g.confusion for g in figures.galleries]
    assert shown.costs["scatter"] == figures.cost_scatter == "figures/cost.svg"


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


def _cell_texts(svg: str) -> dict[str, str]:
    """Each number written in a grid cell → its fill colour (black is matplotlib's default, no fill style)."""
    cells = re.findall(r'<text style="([^"]*)"[^>]*>(\d+\.\d\d|\d+)</text>', svg)
    return {text: (re.search(r"fill: (#[0-9a-f]{6})", style) or [None, "#000000"])[1] for style, text in cells}


def test_heatmap_numbers_read_on_their_cells_and_share_one_scale(tmp_path):
    """viridis runs from dark purple to yellow: white on the low cells, black on the high ones — on every
    model's heatmap the same, since they share a scale (a 70% cell is dark on a 10–90 scale)."""
    values = [[12.0, 85.5], [70.0, 89.9]]
    heatmap_svg(values, [0.01, 0.1], [32, 64], "lr", "batch", "t", tmp_path / "h.svg", (10.0, 90.0))
    svg = (tmp_path / "h.svg").read_text("utf-8")
    colors = _cell_texts(svg)
    assert colors["12.00"] == "#ffffff" and colors["85.50"] == "#000000" and colors["89.90"] == "#000000"
    assert svg.count("<rect") >= 1 and "#d55e00" in svg  # the best cell (89.90) framed in vermillion


def test_confusion_matrix_is_shaded_by_the_share_of_each_true_class(tmp_path):
    """A rare class's 8 of 10 is as dark as a common class's 800 of 1,000; a diagonal of 970 does not wash
    out every other cell."""
    confusion_svg([[8, 2], [200, 800]], ["rare", "common"], "t", "true", "predicted", tmp_path / "c.svg")
    colors = _cell_texts((tmp_path / "c.svg").read_text("utf-8"))
    assert colors["8"] == colors["800"] == "#ffffff"  # both 80% of their row: the same dark blue
    assert colors["2"] == "#000000" and colors["200"] == "#000000"


def _sheet_images() -> tuple[np.ndarray, list[tuple[str, str]]]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 1, 28, 28), dtype=np.uint8)
    return images, [("Ankle boot", "Sneaker")] * 12


def test_contact_sheets_written_meanwhile_are_the_same_files_and_all_on_disk_on_leaving(tmp_path):
    """Issue #38: the PNGs are encoded in a background thread while the next figures are drawn; on leaving,
    every file is there and byte for byte what a plain call writes."""
    images, captions = _sheet_images()
    gallery_png(images, captions, tmp_path / "plain.png", wrong=True)
    with pngs_written_meanwhile():
        for n in range(3):
            gallery_png(images, captions, tmp_path / f"meanwhile-{n}.png", wrong=True)
    plain = (tmp_path / "plain.png").read_bytes()
    assert [(tmp_path / f"meanwhile-{n}.png").read_bytes() == plain for n in range(3)] == [True] * 3


def test_a_contact_sheet_that_cannot_be_written_meanwhile_still_raises(tmp_path):
    """A write that fails in the background thread is not lost: it raises where the figures were drawn."""
    images, captions = _sheet_images()
    with pytest.raises(FileNotFoundError), pngs_written_meanwhile():
        gallery_png(images, captions, tmp_path / "no such folder" / "sheet.png")


@pytest.mark.skipif(sys.platform != "linux", reason="figures are drawn in a copy of the process on Linux alone")
def test_a_copy_draws_the_galleries_meanwhile_and_every_file_is_the_same(tmp_path, monkeypatch):
    """In the report process the galleries are drawn by a forked copy while this process draws the rest
    (drawn_aside.py): the same files, byte for byte, and the same names handed to the templates."""
    from reportgen.report import drawn_aside
    from reportgen.report import figures as figures_module

    run_folder = tmp_path / "runs" / "format1"
    shutil.copytree(FIXTURE, run_folder)
    context = analyse_run(ArchiveReader(run_folder), "en", [])
    assert context.galleries  # the part a copy draws
    here, aside, drawers = tmp_path / "here", tmp_path / "aside", tmp_path / "drawers"
    for folder in (here, aside, drawers):
        folder.mkdir()
    serial = draw_figures(context, here)

    original = figures_module._gallery

    def recorded(*args, **kwargs):
        (drawers / str(os.getpid())).touch()  # a copy inherits this patch
        return original(*args, **kwargs)

    monkeypatch.setattr(figures_module, "_gallery", recorded)
    monkeypatch.setattr(drawn_aside, "_allowed", True)
    copied = draw_figures(context, aside)
    assert copied == serial
    assert [p.name for p in drawers.iterdir()] not in ([], [str(os.getpid())])  # drawn by another process
    assert sorted(p.name for p in aside.iterdir()) == sorted(p.name for p in here.iterdir())
    differing = [p.name for p in here.iterdir() if _drawn(aside / p.name) != _drawn(p)]
    assert differing == []


def _drawn(path: Path) -> bytes:
    """A figure file's bytes, an SVG's without what matplotlib varies from one drawing to the next: its date and
    the random ids of its clip paths, markers and images."""
    if path.suffix != ".svg":
        return path.read_bytes()
    text = re.sub(r"<dc:date>[^<]*</dc:date>", "", path.read_text("utf-8"))
    ids = list(dict.fromkeys(re.findall(r'id="((?:image|[mp])[0-9a-f]{10})"', text)))  # in order of appearance
    for n, found in enumerate(ids):
        text = text.replace(found, f"id{n}")
    return text.encode()


def test_a_copy_that_fails_leaves_its_work_to_this_process_and_a_stopped_one_is_reaped(monkeypatch):
    from reportgen.report import drawn_aside

    monkeypatch.setattr(drawn_aside, "_allowed", True)
    parent = os.getpid()

    def work() -> str:
        if os.getpid() != parent:
            raise RuntimeError("the copy failed")
        return "drawn here"

    with drawn_aside.drawn_aside(work) as drawing:
        assert drawing.aside
    assert drawing.result() == "drawn here"

    sleeping = drawn_aside.Drawing(lambda: time.sleep(60))
    sleeping.start()
    drawn_aside.stop_copies()  # what the report process does first when the command stops it
    with pytest.raises(ChildProcessError):  # ended and reaped: no process, not even a zombie
        os.waitpid(sleeping._pid, os.WNOHANG)
