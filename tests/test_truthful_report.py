"""The report claims only what it checked, in every format: diverged runs render, hostile names stay text,
documents carry no private path, a partial render keeps the other documents."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cmarkgfm
from cmarkgfm.cmark import Options
from conftest import idx_run_args

HOSTILE = "[click](https://evil.example) <img src=https://evil.example/x.png> `tick` a|b *x* 100% $5 #1 ~_^&{}\\"
MODEL_FILE = """
from torch import nn

Hostile = type("<img src=https://evil.example/layer.png>", (nn.ReLU,), {})


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.flat = nn.Flatten()
        self.add_module("fc[link](https:evil)", nn.Linear(784, 10))
        self.act = Hostile()

    def forward(self, x):
        return self.act(getattr(self, "fc[link](https:evil)")(self.flat(x)))
"""


def test_a_run_in_which_every_model_diverges_renders_and_compares_nothing(workdir, cli):
    """The issue's reproduction: SGD at lr 10 on Fashion-MNIST; NaN confidences used to break the render."""
    code, _out, err = cli(
        "run", "--models", "lenet5,mlp", "--optimizer", "sgd", "--lr", "10", "--epochs", "1",
        "--train-subset", "600", "--test-subset", "200", "--executor", "local", "--run-id", "d", "--no-pdf",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads((workdir / "output" / "d" / "summary.json").read_text("utf-8"))
    assert summary["mcnemar"] == []  # a diverged model never wins (or loses) a comparison
    rows = summary["report"]["tables"]["comparison"]["rows"]
    assert [row["cells"][0]["note"] for row in rows] == ["diverged at epoch 1"] * 2
    comparison = next(c for c in summary["report"]["checklist"] if c["test"] == "model_comparison")
    assert comparison["holds"] is False
    markdown = (workdir / "output" / "d" / "report.md").read_text("utf-8")
    assert "diverged at epoch 1" in markdown and "better" not in markdown


def test_hostile_names_stay_text_in_markdown_and_latex(workdir, cli, idx_dir):
    folder = workdir / "hw[x](https:evil)"
    folder.mkdir()
    (folder / "my_models.py").write_text(MODEL_FILE, "utf-8")
    code, _out, err = cli(
        "run", *idx_run_args(idx_dir), "--models", f"{folder / 'my_models.py'}:Net", "--run-id", "h",
        "--title", HOSTILE, "--author", "[me](https://evil.example):2024", "--format", "md",
    )  # fmt: skip
    assert code == 0, err
    markdown = (workdir / "output" / "h" / "report.md").read_text("utf-8")
    # as GitHub shows it (raw HTML allowed, as GitHub allows <img>): no image, no link from user text
    shown = cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)
    assert '<img src="https://evil' not in shown and "<img src=https://evil" not in shown
    assert 'href="https://evil' not in shown and 'href="https:evil' not in shown
    assert "[click](https://evil.example)" in shown and "fc[link](https:evil)" in shown  # shown as text
    for line in markdown.splitlines():  # no user text adds a table cell: every row has its header's cells
        if line.startswith("|") and "\\|" in line:
            assert line.replace("\\|", "").count("|") >= 2
    assert str(workdir) not in markdown and "/tmp/" not in markdown
    tex = (workdir / "output" / "h" / "tables.tex").read_text("utf-8")
    assert "fc[link](https:evil)" in tex  # as text: [ ] ( ) mean nothing to LaTeX
    assert not re.search(r"(?<!\\)[%$#&_^~](?![^{]*\})", re.sub(r"\\[a-z]+\{?\}?|\$\\[a-z]+\$| & | \\\\$", "", tex))


def test_render_of_one_format_keeps_the_other_documents(workdir, cli, idx_dir):
    code, _out, err = cli("run", *idx_run_args(idx_dir), "--models", "mlp", "--run-id", "f")
    assert code == 0, err
    report = workdir / "output" / "f"
    html = (report / "report.html").read_bytes()
    code, _out, err = cli("render", "runs/f", "--format", "md")
    assert code == 0, err
    assert (report / "report.html").read_bytes() == html and (report / "report.md").is_file()
    assert (report / "report.css").is_file()


def test_a_killed_renders_staging_folder_is_removed_by_the_next_render(workdir, cli, idx_dir):
    code, _out, err = cli("run", *idx_run_args(idx_dir), "--models", "mlp", "--run-id", "k")
    assert code == 0, err
    dead = workdir / "output" / ".k.999999999-0123abcd.partial"  # no process has this pid
    (dead / "figures").mkdir(parents=True)
    code, _out, err = cli("render", "runs/k", "--format", "md")
    assert code == 0, err
    assert not dead.exists()
    assert [p.name for p in Path(workdir / "output").iterdir() if p.name.endswith(".partial")] == []
