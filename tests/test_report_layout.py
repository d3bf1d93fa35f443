"""What a reader sees in the report's tables (a student tester's findings): each total once, at the end of its
table, in the PDF too; an own model's constructor arguments and code identity in HTML, PDF and Markdown; layer
names kept whole; "1 thread"; the reproducibility rows in Korean; a notebook class's source sha256.

One tiny real run (own models in a module next to the spec, one of them long enough that its tables cross a
page break) is rendered as HTML, PDF (WeasyPrint) and Markdown and read back with pdftotext.
"""

from __future__ import annotations

import hashlib
import json
import linecache
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import nbformat
import pytest
import torch
from conftest import idx_run_args, write_idx_dataset
from nbclient import NotebookClient

from reportgen.cli import main
from reportgen.models.registry import model_code, register_object
from reportgen.report.i18n import translator
from reportgen.report.tables_setup import thread_count
from reportgen.report.templating import jinja_environment

MODULE = "layout_models"  # not `models`: another test's models.py may already be imported under that name
MODELS = textwrap.dedent('''
    import torch.nn as nn


    class MyCNN(nn.Module):
        def __init__(self, c1=4, c2=8, hidden=16):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
            self.classifier = nn.Sequential(
                nn.Flatten(), nn.Linear(c2 * 49, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, 10))

        def forward(self, x):
            return self.classifier(self.features(x))


    class Deep(nn.Module):
        """Long enough that its parameter and multiply-add tables each run over a page break."""

        def __init__(self, depth=45):
            super().__init__()
            layers = [nn.Flatten(), nn.Linear(784, 16)]
            for _ in range(depth):
                layers += [nn.Linear(16, 16), nn.ReLU()]
            self.classifier = nn.Sequential(*layers, nn.Linear(16, 10))

        def forward(self, x):
            return self.classifier(x)
''')
SPEC = f"""name = "Own models"
[data]
dataset = "mnist"
data_dir = "idx"
[[models]]
name = "{MODULE}:MyCNN"
kwargs = {{ c1 = 8, c2 = 16, hidden = 32 }}
label = "Mine"
[[models]]
name = "{MODULE}:Deep"
label = "Deep"
[train]
epochs = 1
batch_size = 50
"""


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    """output/layout of a run with PDF, trained with one torch thread."""
    folder = tmp_path_factory.mktemp("layout")
    write_idx_dataset(folder / "idx", n_train=200, n_test=100)
    (folder / f"{MODULE}.py").write_text(MODELS, "utf-8")
    (folder / "spec.toml").write_text(SPEC, "utf-8")
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # `module:Class` imports from the current folder
        torch.set_num_threads(1)
        try:
            code = main(["run", "spec.toml", "--run-id", "layout", "--executor", "local"])
        finally:
            torch.set_num_threads(threads)
            sys.modules.pop(MODULE, None)
    assert code == 0
    return folder / "output" / "layout"


def pdf_pages(output: Path) -> list[str]:
    text = subprocess.run(["pdftotext", output / "report.pdf", "-"], check=True, capture_output=True, text=True).stdout
    return text.split("\f")


def model_section(markdown: str) -> str:
    return markdown.split("## Model architectures and parameters")[1].split("## Training monitoring")[0]


@pytest.mark.slow
def test_pdf_shows_each_total_once_at_the_end_of_its_table(layout):
    """WeasyPrint repeats a <tfoot> on every page its table reaches: a total must be a last row, printed once."""
    summary = json.loads((layout / "summary.json").read_text("utf-8"))
    pages = pdf_pages(layout)
    text = "\f".join(pages)
    # the long model's tables do cross pages (else this test would prove nothing)
    first = next(i for i, page in enumerate(pages) if "classifier.1\n" in page)
    last = next(i for i, page in enumerate(pages) if "classifier.92\n" in page)
    assert last > first
    for label in ("Mine", "Deep"):
        total = summary["parameters"][label]["total"]
        macs = summary["cost"][label]["macs"]["total"]
        parameter_totals = re.findall(rf"Total:\s+{total:,}\b", text)
        mac_totals = re.findall(rf"Total per image:\s+{macs:,} MACs", text)
        assert (label, len(parameter_totals), len(mac_totals)) == (label, 1, 1)
    # once, after the table's last row: on the page with the last layer, below it
    deep_totals = [page for page in pages if f"Total per image: {summary['cost']['Deep']['macs']['total']:,}" in page]
    (page,) = deep_totals
    assert page.rindex("classifier.92\n") < page.index("Total per image")


@pytest.mark.slow
def test_own_model_arguments_and_code_identity_in_html_pdf_and_markdown(layout):
    sha = hashlib.sha256((layout.parent.parent / f"{MODULE}.py").read_bytes()).hexdigest()
    spec = json.loads((layout.parent.parent / "runs" / "layout" / "spec.json").read_text("utf-8"))
    assert spec["models"][0]["code"]["sha256"] == sha  # what the report shows is what the run archived
    arguments = "c1=8, c2=16, hidden=32"
    html = (layout / "report.html").read_text("utf-8")
    table = html.split('<section id="models">')[1].split("</table>")[0]
    row = next(r for r in table.split("<tr>") if "Mine" in r)
    assert f'<small class="prose">{arguments} · {MODULE}.py · sha256 {sha[:12]}</small>' in row  # prose: may wrap
    pdf = " ".join("\f".join(pdf_pages(layout)).split())
    assert arguments in pdf and f"{MODULE}.py · sha256 {sha[:12]}" in pdf
    markdown = model_section((layout / "report.md").read_text("utf-8"))
    row = next(line for line in markdown.splitlines() if line.startswith("| Mine |"))
    escaped = MODULE.replace("_", "\\_")  # Markdown-escaped, shown as the file name on GitHub
    assert f"(c1=8, c2=16, hidden=32 · {escaped}.py · sha256 {sha[:12]})" in row


@pytest.mark.slow
def test_layer_names_stay_whole_in_pdf_tables(layout):
    """A name breaks nowhere (not "classifier.\\n1"), though a long formula (BatchNorm's) squeezes the name's
    column: every layer name in a table is on one line of the PDF text (layers without parameters or
    multiply-adds are folded into a note under the table)."""
    lines = "\n".join(pdf_pages(layout)).splitlines()
    assert [line for line in lines if line.endswith(("features.", "classifier."))] == []
    tables = json.loads((layout / "summary.json").read_text("utf-8"))["report"]["tables"]
    names = [row["cells"][0]["text"] for key in ("layers/Mine", "layers/Deep") for row in tables[key]["rows"]]
    assert len(names) == 2 + 3 + 47 and "classifier.92" in names  # Mine: 2 conv, 2 linear + BatchNorm; Deep: 47
    assert [name for name in names if name not in lines] == []


def test_a_long_nested_layer_name_breaks_only_before_a_named_part():
    template = jinja_environment("en").from_string(
        '{% from "macros.html.j2" import layer_name %}{{ layer_name(name) }}'
    )
    assert template.render(name="classifier.1") == '<code class="layer"><span>classifier.1</span></code>'
    assert template.render(name="layer1.0.downsample.1") == (
        '<code class="layer"><span>layer1.0.</span><wbr><span>downsample.1</span></code>'
    )


@pytest.mark.slow
def test_one_thread_is_singular(layout):
    html = (layout / "report.html").read_text("utf-8")
    device = next(line for line in html.splitlines() if ">Device</th>" in line)
    assert "cpu (" in device and "), 1 thread" in device and "threads" not in device
    markdown = (layout / "report.md").read_text("utf-8")
    device = next(line for line in markdown.splitlines() if line.startswith("| Device |"))
    assert "), 1 thread · " in device and "threads" not in device  # the executor follows, as in the HTML
    translate = {}
    for lang in ("en", "ko"):
        translate[lang] = f"{thread_count(1, translator(lang))}|{thread_count(4, translator(lang))}"
    assert translate == {"en": "1 thread|4 threads", "ko": "스레드 1개|스레드 4개"}


@pytest.mark.slow
def test_korean_reproducibility_rows_say_the_default_spec_and_an_unknown_commit_in_korean(
    workdir, cli, tmp_path, monkeypatch
):
    """The embedded default spec and a commit git could not tell are worded when shown; the archive keeps English."""
    real_run = subprocess.run

    def no_git(args, *rest, **options):
        if list(args[:2]) == ["git", "rev-parse"]:
            raise OSError("git is not installed")
        return real_run(args, *rest, **options)

    monkeypatch.setattr(subprocess, "run", no_git)
    code, _out, err = cli("run", *idx_run_args(write_idx_dataset(tmp_path / "idx")), "--lang", "ko", "--run-id", "ko")
    assert code == 0, err
    monkeypatch.undo()
    assert json.loads((workdir / "runs" / "ko" / "spec.json").read_text("utf-8"))["source"] == "<embedded default spec>"
    assert json.loads((workdir / "runs" / "ko" / "environment.json").read_text("utf-8"))["git_commit"] == "unknown"
    html = (workdir / "output" / "ko" / "report.html").read_text("utf-8")
    appendix = html.split('<section id="appendix">')[1].split("</table>")[0]
    assert "<code>&lt;내장 기본 실험 명세&gt;</code>" in appendix and "<code>알 수 없음</code>" in appendix
    assert "embedded" not in appendix and "unknown" not in appendix
    markdown = (workdir / "output" / "ko" / "report.md").read_text("utf-8")
    appendix = markdown.split("## 재현성 정보")[1]
    assert "| `<내장 기본 실험 명세>` |" in appendix and "| `알 수 없음` |" in appendix
    assert "embedded" not in appendix and "unknown" not in appendix


# ------------------------------------------------------------------ a class typed into a notebook

CELL = textwrap.dedent("""
    import torch.nn as nn


    class Typed(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x)


    factory = lambda: Typed()  # noqa: E731
""")


def typed_module(source: str, filename: str, cached: bool = True) -> types.ModuleType:
    """A module made from a string, as a notebook's `__main__` is: no __file__; its cell's lines in linecache
    (as IPython puts them there) when `cached`."""
    if cached:
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = types.ModuleType("typed_in_a_cell")
    exec(compile(source, filename, "exec"), module.__dict__)  # noqa: S102 (the test's own constant source)
    return module


def test_a_class_typed_in_a_cell_gets_the_sha256_of_its_source_like_a_lambda():
    module = typed_module(CELL, "<ipython-input-1-layout>")
    class_source = CELL[CELL.index("class Typed") : CELL.index("factory")].rstrip("\n") + "\n"
    typed = model_code(register_object("Typed", module.Typed))
    assert typed == {"file": None, "sha256": None, "source_sha256": hashlib.sha256(class_source.encode()).hexdigest()}
    assert model_code(register_object("factory", module.factory))["source_sha256"]


def test_a_class_whose_source_is_gone_has_a_clear_null():
    module = typed_module(CELL, "<ipython-input-2-layout-gone>", cached=False)
    assert model_code(register_object("Gone", module.Typed)) == {"file": None, "sha256": None, "source_sha256": None}
    made = type("Made", (torch.nn.Linear,), {})  # no source at all
    assert model_code(register_object("Made", made)) == {"file": None, "sha256": None, "source_sha256": None}


@pytest.mark.slow
def test_a_class_defined_in_a_real_notebook_is_archived_with_its_source_sha256(tmp_path):
    """Through a Jupyter kernel: compare()'s spec entries, archived as the run's spec.json would be."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(CELL.strip()),
        nbformat.v4.new_code_cell(
            textwrap.dedent("""
            import json
            from reportgen.api import _model_entries
            from reportgen.spec import parse_spec, read_spec_file

            raw, _ = read_spec_file(None)
            raw["models"] = _model_entries({"Typed": Typed, "factory": factory})
            print(json.dumps([m["code"] for m in parse_spec(raw, "compare()").to_dict()["models"]]))
            """).strip()
        ),
    ]
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    (output,) = notebook.cells[1].outputs
    typed, factory = json.loads(output["text"])
    class_source = CELL[CELL.index("class Typed") : CELL.index("factory")].rstrip("\n") + "\n"
    assert typed == {"file": None, "sha256": None, "source_sha256": hashlib.sha256(class_source.encode()).hexdigest()}
    assert re.fullmatch(r"[0-9a-f]{64}", factory["source_sha256"])
