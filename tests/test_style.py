"""The code stays ruff clean (the version pinned in pyproject.toml, whose default rules are the standard)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_the_tree_is_ruff_clean(command):
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "reportgen", "tests", "benchmarks", "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_drawing_report_figures_leaves_the_callers_matplotlib_settings_alone(tmp_path):
    """A notebook that imports reportgen keeps its backend and rcParams: the report's style applies only
    while its own figures are drawn."""
    code = f"""
import matplotlib
matplotlib.use("svg")
before = dict(matplotlib.rcParams)
from reportgen.report import plots
epochs = [{{"epoch": 1, "train_loss": 1.0, "test_loss": 1.1, "train_acc": 0.5, "test_acc": 0.4}}]
plots.curves_svg({{"MLP": epochs}}, "acc", {{"MLP": "#1f77b4"}}, str, __import__("pathlib").Path({str(tmp_path)!r}) / "c.svg")
after = dict(matplotlib.rcParams)
changed = sorted(k for k in before if before[k] != after[k])
assert changed == [], changed
assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
svg = (__import__("pathlib").Path({str(tmp_path)!r}) / "c.svg").read_text()
assert "<text" in svg  # the report's style (svg.fonttype none) applied while drawing
"""
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_template_lines_fit_on_a_screen():
    """No template line is longer than 160 characters: long table rows go through the macros
    (macros.html.j2, macros.md.j2) or break at a Jinja tag."""
    long_lines = [
        f"{path.name}:{number}: {len(line)} characters"
        for path in sorted((ROOT / "reportgen" / "templates").glob("*.j2"))
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if len(line) > 160
    ]
    assert long_lines == []


def _stylesheet_problems(css: str) -> list[str]:
    """Rules that are not well formed, a selector declared twice in one context (top level, or one @media
    block), and two rules with the same declarations (one rule with both selectors: a second copy is
    where the two drift apart)."""
    import tinycss2

    def problems(rules, context: str) -> list[str]:
        found, selectors, blocks = [], {}, {}
        for rule in rules:
            if rule.type == "error":
                found.append(f"{context}: {rule.message}")
            if rule.type == "at-rule" and rule.content is not None and rule.at_keyword == "media":
                inner = tinycss2.parse_rule_list(rule.content, skip_comments=True, skip_whitespace=True)
                found += problems(inner, f"@media {tinycss2.serialize(rule.prelude).strip()}")
            if rule.type != "qualified-rule":
                continue
            selector = " ".join(tinycss2.serialize(rule.prelude).split())
            body = "".join(tinycss2.serialize(rule.content).split())
            if any(token.type in ("at-keyword", "{} block") for token in rule.prelude):
                # "a, @media … {" is one rule with a broken selector: browsers drop it, block and all
                found.append(f"{context}: {selector!r} is not a selector")
            if selector in selectors:
                found.append(f"{context}: {selector!r} declared twice")
            if body in blocks:
                found.append(f"{context}: {blocks[body]!r} and {selector!r} have the same declarations")
            selectors[selector], blocks[body] = True, selector
        return found

    return problems(tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True), "top level")


def test_the_stylesheet_declares_each_rule_once():
    css = (ROOT / "reportgen" / "templates" / "report.css").read_text("utf-8")
    assert _stylesheet_problems(css) == []


@pytest.mark.parametrize(
    "css, problem",
    [
        ("a { color: red; }\na { margin: 0; }", "'a' declared twice"),
        ("a { color: red; }\nb { color: red; }", "'a' and 'b' have the same declarations"),
        ("a, @media print { b { color: red; } }", "is not a selector"),
    ],
    ids=["selector twice", "same declarations", "media block swallowed by a selector"],
)
def test_the_stylesheet_check_finds(css, problem):
    assert any(problem in found for found in _stylesheet_problems(css)), _stylesheet_problems(css)
