"""The fast tier (`make test-fast`, i.e. pytest -m "not slow") holds no test that needs a heavy shared fixture.

A module- or session-scoped fixture that trains, renders, builds a wheel or starts Ray is paid once, by
whichever test that uses it runs first; a fast-tier test that used one would pay it in the fast tier. So every
test that uses one, directly or through another fixture, must be marked `slow` (on the test, or by the
module's `pytestmark`). Read from the test files' source, without collecting them: this check is itself fast.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent

# (file, fixture): what makes it heavy
HEAVY = {
    ("conftest.py", "finished"): "trains the default experiment (three models) and renders its report",
    ("conftest.py", "golden_reports"): "renders golden fixture runs with their PDFs (once a session, shared)",
    ("test_golden.py", "rendered"): "renders every golden case in every language and format",
    ("test_per_class_and_calibration.py", "rendered_three"): "renders the three-model golden run, en and ko",
    ("test_figure_access.py", "documents"): "renders the three-model golden run, en and ko with its PDF",
    ("test_print_quality.py", "printed"): "renders the golden cases' PDFs",
    ("test_page_count.py", "printed"): "renders the three-model golden run's PDF, en and ko",
    ("test_plain_words.py", "documents"): "renders every golden case with its PDF",
    ("test_combine.py", "runs"): "trains five runs",
    ("test_documents.py", "project"): "trains a run and renders it",
    ("test_report_layout.py", "layout"): "trains a run and renders its PDF",
    ("test_report_reader.py", "korean"): "renders the trained run again, in Korean, with its PDF",
    ("test_ray.py", "cluster"): "starts a Ray cluster",
    ("test_rgb.py", "rgb_run"): "trains a run on colour images and renders it",
    ("test_same_training.py", "root"): "trains seven runs",
    ("test_grading_class.py", "school"): "renders a class of seven hand-ins",
    ("test_packaging.py", "wheel"): "builds the wheel",
    ("test_packaging.py", "installed"): "installs the wheel into a new virtual environment",
}


def _is_fixture(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return ast.unparse(target) in ("pytest.fixture", "fixture")


def _marks(node: ast.expr | None) -> list[ast.expr]:
    """The marks of a decorator list entry or a `pytestmark = …` value (one mark or a list of them)."""
    if node is None:
        return []
    return list(node.elts) if isinstance(node, ast.List | ast.Tuple) else [node]


def _is_slow(mark: ast.expr) -> bool:
    return ast.unparse(mark) == "pytest.mark.slow"


def _used_fixtures(marks: list[ast.expr]) -> set[str]:
    """Fixture names named by `pytest.mark.usefixtures(…)` marks."""
    return {
        arg.value
        for mark in marks
        if isinstance(mark, ast.Call) and ast.unparse(mark.func) == "pytest.mark.usefixtures"
        for arg in mark.args
        if isinstance(arg, ast.Constant)
    }


class _Module:
    def __init__(self, path: Path) -> None:
        self.name = path.name
        tree = ast.parse(path.read_text("utf-8"))
        self.functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
        self.fixtures = {
            f.name: {a.arg for a in f.args.args} for f in self.functions if any(map(_is_fixture, f.decorator_list))
        }
        self.pytestmark = next(
            (
                node.value
                for node in tree.body
                if isinstance(node, ast.Assign) and any(ast.unparse(t) == "pytestmark" for t in node.targets)
            ),
            None,
        )
        # a mark kept in a name (`requires_fashion = pytest.mark.usefixtures(…)`) and used as pytestmark
        self.names = {
            ast.unparse(t): node.value for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
        }

    def module_marks(self, conftest: _Module) -> list[ast.expr]:
        marks = _marks(self.pytestmark)
        return [self.names.get(ast.unparse(m), conftest.names.get(ast.unparse(m), m)) for m in marks]


def _heavy_needs(module: _Module, conftest: _Module, names: set[str]) -> set[str]:
    """The heavy fixtures among `names` and every fixture they need, as 'file::fixture'."""
    heavy, seen, todo = set(), set(), list(names)
    while todo:
        name = todo.pop()
        owner = module if name in module.fixtures else conftest if name in conftest.fixtures else None
        if owner is None or (owner.name, name) in seen:
            continue
        seen.add((owner.name, name))
        if (owner.name, name) in HEAVY:
            heavy.add(f"{owner.name}::{name}")
        todo.extend(owner.fixtures[name])
    return heavy


def _fast_tests_with_heavy_fixtures() -> list[str]:
    conftest = _Module(TESTS / "conftest.py")
    found = []
    for path in sorted(TESTS.glob("test_*.py")):
        module = _Module(path)
        module_marks = module.module_marks(conftest)
        for test in (f for f in module.functions if f.name.startswith("test_")):
            marks = [conftest.names.get(ast.unparse(d), d) for d in test.decorator_list] + module_marks
            if any(map(_is_slow, marks)):
                continue
            names = {a.arg for a in test.args.args} | _used_fixtures(marks)
            if heavy := _heavy_needs(module, conftest, names):
                found.append(f"{path.name}::{test.name} uses {', '.join(sorted(heavy))}")
    return found


def test_every_test_that_uses_a_heavy_shared_fixture_is_marked_slow():
    assert _fast_tests_with_heavy_fixtures() == [], "mark these @pytest.mark.slow (docs/tests.md)"


def test_every_heavy_fixture_named_here_still_exists():
    """A renamed or moved fixture would drop out of the check above silently."""
    missing = [f"{file}::{name}" for file, name in HEAVY if name not in _Module(TESTS / file).fixtures]
    assert missing == [], "update HEAVY in tests/test_tiers.py"


def test_every_file_that_reads_the_golden_reports_is_scheduled_with_the_others():
    """`make test`'s workers keep conftest.GOLDEN_READERS on one worker so each golden case renders once; a file
    that reads golden_reports and is not listed would render them again on the other worker."""
    from conftest import GOLDEN_READERS

    readers = {
        path.name
        for path in TESTS.glob("test_*.py")
        if any("golden_reports" in {a.arg for a in f.args.args} for f in _Module(path).functions)
    }
    assert readers == GOLDEN_READERS, "update GOLDEN_READERS in tests/conftest.py"
