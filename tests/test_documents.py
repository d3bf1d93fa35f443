"""Issue #15, the documents a student hands in: report.md (rendered by GitHub's own cmark-gfm), tables.tex,
the cover block from the spec and the command line, and galleries that explain mistakes.

One tiny real run on a small IDX set (two models, two seeds) is rendered in several ways.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options
from conftest import write_idx_dataset

from reportgen.cli import main

SPEC = """name = "LeNet-5 vs MLP"
[report]
title = "MNIST Classification"
course = "인공신경망과 딥러닝"
professor = "Prof. Kim"
department = "Computer Science"
date = 2026-11-24
authors = [{ name = "홍길동", student_id = "20241234" }, "Lee Young"]
checklist = "assignment"
[data]
dataset = "mnist"
data_dir = "idx"
[[models]]
name = "lenet5"
label = "LeNet|5 <b>bold</b>"
[[models]]
name = "mlp"
label = "MLP"
[train]
epochs = 1
batch_size = 50
seeds = [0, 1]
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("student")
    write_idx_dataset(folder / "idx", n_train=300, n_test=200)
    (folder / "spec.toml").write_text(SPEC, "utf-8")
    code = main(
        [
            "run",
            str(folder / "spec.toml"),
            "--run-id",
            "doc",
            "--executor",
            "local",
            "--no-pdf",
            "--runs-dir",
            str(folder / "runs"),
            "--output-dir",
            str(folder / "output"),
        ]
    )
    assert code == 0
    return folder


def render(project: Path, *args: str) -> Path:
    output = project / "rendered"
    shutil.rmtree(output, ignore_errors=True)
    assert main(["render", str(project / "runs" / "doc"), "--output-dir", str(output), *args]) == 0
    return output / "doc"


def github_html(markdown: str) -> str:
    """What GitHub shows for a README: cmark-gfm with its extensions; UNSAFE keeps any raw HTML, so a
    value that was not escaped would show up here as a live tag."""
    return cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)


@pytest.mark.slow
def test_markdown_renders_on_github_with_tables_figures_and_escaped_values(project):
    report = project / "output" / "doc"
    markdown = (report / "report.md").read_text("utf-8")
    html = github_html(markdown)
    assert html.count("<table>") >= 8  # cover, checklist, settings, parameters, epochs, comparison, seeds…
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) >= 8 and all((report / src).is_file() for src in images), images
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html  # a label stays text
    comparison = markdown.split("## Comparison", 1)[1]
    row = next(line for line in comparison.splitlines() if line.startswith("| LeNet"))
    header = next(line for line in comparison.splitlines() if line.startswith("| Model"))
    assert row.count(" | ") == header.count(" | ")  # the '|' in the label did not add a cell
    assert "<td>LeNet|5 &lt;b&gt;bold&lt;/b&gt;" in html
    for heading in (
        "Assignment checklist",
        "Model architectures and parameters",
        "Training monitoring",
        "Loss and accuracy curves",
        "Comparison",
        "Across seeds",
        "Conclusion",
        "Sample galleries",
    ):
        assert f">{heading}" in html, heading
    assert "<code>(5·5·1 + 1)·6 = 156</code>" in html  # formulas readable as code


@pytest.mark.slow
def test_cover_block_from_the_spec_in_html_and_markdown(project):
    report = project / "output" / "doc"
    markdown = (report / "report.md").read_text("utf-8")
    assert markdown.startswith("# MNIST Classification\n")
    for row in (
        "| Course | 인공신경망과 딥러닝 |",
        "| Professor | Prof. Kim |",
        "| Submission date | 2026-11-24 |",
        "| Student ID / name | 20241234 홍길동 |",
        "| Student ID / name | Lee Young |",
    ):
        assert row in markdown, row
    html = (report / "report.html").read_text("utf-8")
    assert "<h1>MNIST Classification</h1>" in html and "<th>Department</th><td>Computer Science</td>" in html
    spec = json.loads((project / "runs" / "doc" / "spec.json").read_text("utf-8"))
    assert spec["cover"]["authors"][0] == {"name": "홍길동", "student_id": "20241234"}


@pytest.mark.slow
def test_cover_options_override_the_spec_and_korean_labels_the_rows(project):
    report = render(project, "--no-pdf", "--lang", "ko", "--author", "김철수:20249999", "--title", "과제 1")
    markdown = (report / "report.md").read_text("utf-8")
    assert markdown.startswith("# 과제 1\n")
    assert "| 학번/이름 | 20249999 김철수 |" in markdown and "홍길동" not in markdown
    assert "| 과목명 | 인공신경망과 딥러닝 |" in markdown and "| 제출일 | 2026-11-24 |" in markdown


@pytest.mark.slow
def test_format_md_writes_the_markdown_alone(project):
    report = render(project, "--format", "md")
    assert (report / "report.md").is_file() and (report / "tables.tex").is_file()
    assert not (report / "report.html").exists() and not (report / "report.pdf").exists()
    assert (report / "summary.json").is_file() and (report / "figures" / "loss.svg").is_file()


@pytest.mark.slow
def test_latex_tables_are_booktabs_with_escaped_labels(project):
    tex = (project / "output" / "doc" / "tables.tex").read_text("utf-8")
    # comparison, parameters, seeds, F1 and calibration, per-class F1; layers per model; per trial
    assert tex.count("\\begin{tabular}") == 5 + 2 + 4
    assert "\\toprule" in tex and "\\bottomrule" in tex
    assert "LeNet|5 <b>bold</b>" in tex and "Final test accuracy" in tex
    assert tex.count("\nAverage & ") == 4  # every epoch table keeps its average row, as in the other formats


@pytest.mark.slow
def test_galleries_show_frequent_confusions_and_keep_every_mistake_out_of_the_body(project):
    report = project / "output" / "doc"
    summary = json.loads((report / "summary.json").read_text("utf-8"))
    html = (report / "report.html").read_text("utf-8")
    assert "Most frequent confusions" in html and "Most confident mistakes" in html
    assert "gallery-0-wrong" not in html  # the full list lives in misclassified.html
    counts = [int(c.replace(",", "")) for c in re.findall(r"<small>([\d,]+) images</small>", html)]
    assert counts == sorted(counts, reverse=True) or len(set(counts)) < len(counts)
    wrong_total = sum(1 for trial in summary["comparison"] if trial["final_test_acc"] < 1)
    if wrong_total:
        full = (report / "misclassified.html").read_text("utf-8")
        sheets = re.findall(r'src="(figures/gallery-\d+-wrong-\d+\.png)"', full)
        assert sheets and all((report / s).is_file() for s in sheets)


@pytest.mark.parametrize(
    "report, message",
    [
        ('[report]\nsubtitle = "x"\n', "unknown key 'report.subtitle'"),
        ('[report]\nauthors = "Hong"\n', "key 'report.authors': expected a list of tables like { name = "),
        ('[report]\nauthors = [{ student_id = "1" }]\n', "key 'report.authors[0]': expected a list of tables"),
        ('[report]\ncourse = ""\n', "key 'report.course': expected one line of text"),
    ],
)
def test_bad_cover_keys_are_one_line_errors(tmp_path, capsys, report, message):
    spec = tmp_path / "bad.toml"
    spec.write_text(report + '[[models]]\nname = "mlp"\n', "utf-8")
    assert main(["run", str(spec), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.slow
def test_every_plotted_point_has_a_hover_title(project):
    """Browsers show an SVG <title> as a tooltip only when the SVG is part of the page, not an <img>."""
    from xml.etree import ElementTree

    html = (project / "output" / "doc" / "report.html").read_text("utf-8")
    assert 'src="figures/acc.svg"' not in html and html.count('<svg role="img"') >= 4
    assert re.search(r"<title>MLP · test · Epoch 1: \d+\.\d\d%</title>", html)

    svg = "{http://www.w3.org/2000/svg}"
    for name in ("acc.svg", "loss.svg", "curves-0.svg"):
        root = ElementTree.parse(project / "output" / "doc" / "figures" / name).getroot()
        groups = [g for g in root.iter(f"{svg}g") if g.get("id", "").startswith("points-")]
        assert len(groups) >= 4, name
        for group in groups:
            points = list(group.iter(f"{svg}use"))
            titles = [p.find(f"{svg}title").text for p in points]
            assert len(points) == 1 and all(re.search(r" · Epoch 1: \d+\.\d+%?$", t) for t in titles), titles  # 1 epoch


@pytest.mark.slow
def test_a_sweep_reads_at_a_glance(tmp_path, capsys):
    write_idx_dataset(tmp_path / "idx", n_train=200, n_test=100)
    spec = tmp_path / "sweep.toml"
    spec.write_text(
        '[data]\ndataset = "mnist"\ndata_dir = "idx"\n[[models]]\nname = "mlp"\n[[models]]\n'
        'name = "lenet5"\n[train]\nepochs = 2\nbatch_size = 50\nlr = [0.01, 0.001]\n'
        'optimizer = ["adam", "sgd"]\n',
        "utf-8",
    )
    assert (
        main(
            [
                "run",
                str(spec),
                "--run-id",
                "sw",
                "--executor",
                "local",
                "--no-pdf",
                "--format",
                "html",
                "--runs-dir",
                str(tmp_path / "runs"),
                "--output-dir",
                str(tmp_path / "output"),
            ]
        )
        == 0
    )
    report = tmp_path / "output" / "sw"
    html = (report / "report.html").read_text("utf-8")
    panels = {
        t.split(" · ")[1]
        for t in re.findall(r"<title>([^<]*)</title>", (report / "figures" / "sweep.svg").read_text("utf-8"))
    }
    # option values as people write them (issue 36): Adam, SGD
    assert panels == {f"Optimizer {o}, Learning rate {lr}" for o in ("Adam", "SGD") for lr in (0.01, 0.001)}
    legend = [t for t in re.findall(r"<title>([^<]*)</title>", (report / "figures" / "acc.svg").read_text("utf-8"))]
    assert {t.split(" · ")[0] for t in legend} == {"mlp", "lenet5"}  # one curve per model, no trial numbers
    training = html.split('id="training"', 1)[1].split('id="curves"', 1)[0]
    assert training.count('class="epoch-table"') == 2  # each model's best trial
    appendix = html.split('id="all-trials"', 1)[1]
    assert appendix.count('class="epoch-table"') == 6  # the other 6 of 8 trials


@pytest.mark.slow
def test_a_run_renders_without_its_original_data_files(project):
    """The archive keeps the evaluated test images (test_images.npz, in the manifest): a report can be
    rendered on another machine or after the data moved."""
    moved = project.parent / f"{project.name}-idx-moved"
    (project / "idx").rename(moved)
    try:
        report = render(project, "--format", "md")
        assert (report / "figures" / "gallery-0-correct.png").is_file()
    finally:
        moved.rename(project / "idx")
    manifest = json.loads((project / "runs" / "doc" / "manifest.json").read_text("utf-8"))
    assert "test_images.npz" in manifest["files"]
