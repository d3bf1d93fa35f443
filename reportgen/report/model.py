"""The report as data: every table with its formatted cells, every claim with its verdict and evidence.

Built once per render (tables.py builds it from the analysed run); HTML, PDF, Markdown, LaTeX and the
notebook view only lay it out. Cells hold plain text in the report's language — each layout escapes it for
its own format — so no layout computes a number, a verdict or a rule for missing values of its own.
The value formats live here, once: a missing or non-finite value is "–" in every format.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

MISSING = "–"
# Report sections (ids a checklist item links to) and their headings: the Markdown links use their GitHub
# anchors, and a checklist that names another section is refused when it is read.
SECTION_HEADINGS = {
    "settings": "Overview and settings",
    "models": "Model architectures and parameters",
    "training": "Training monitoring",
    "curves": "Loss and accuracy curves",
    "comparison": "Comparison",
    "improvement": "Improvement",
    "conclusion": "Conclusion",
    "galleries": "Sample galleries",
    "all-trials": "Appendix: every trial, per epoch",
    "appendix": "Reproducibility",
}
# An absolute POSIX path inside any text (a command line, a model reference, a data folder), one under `~user/`,
# or one the archive wrote relative to its run folder (`../../models.py`): shown by its last part, so a student's
# home folder never reaches a document they publish (`~/hw/idx` names nobody and stays as written).
_ABSOLUTE_PATH = re.compile(
    r"(?<![\w.~/-])(?:(?:~|/)(?:[^\s/:;,'\"()]+/)+|(?:\.\./)+(?:[^\s/:;,'\"()]+/)*(?=[^\s/:;,'\"()]))([^\s/:;,'\"()]*)"
)


def is_number(value: Any) -> bool:
    """A finite int or float (bool is not a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def per_run(value: Any, form: Callable[[Any], str]) -> str | None:
    """A value that differs between combined runs (combine.PerRun: text with each run's value) as each run's
    value in `form`, beside its run id ("600 (a) · 1,200 (b)"); None for any other value."""
    values = getattr(value, "values", None)
    if not (isinstance(value, str) and isinstance(values, dict)):
        return None
    return " · ".join(f"{form(v)} ({run_id})" for run_id, v in values.items())


def percent(value: Any, digits: int = 2) -> str:
    """A fraction as a percentage ("90.54%"); "–" when missing or not finite."""
    shown = per_run(value, lambda v: percent(v, digits))
    if shown is not None:
        return shown
    return f"{100 * value:.{digits}f}%" if is_number(value) else MISSING


def decimal(value: Any, digits: int = 4) -> str:
    """A measured value to `digits` places; an exploded one (a diverging loss, 4.9e+14) in scientific form."""
    shown = per_run(value, lambda v: decimal(v, digits))
    if shown is not None:
        return shown
    if not is_number(value):
        return MISSING
    return f"{value:.3g}" if abs(value) >= 1e6 else f"{value:.{digits}f}"


def distinct(values: list[Any], form: Callable[[Any, int], str] = decimal, digits: int = 4, most: int = 8) -> list[str]:
    """`values` in one format (`percent` or `decimal`) with `digits` places, or as many more as it takes for
    values that differ to read differently: a change keeps its direction ("0.2723 → 0.2724", never
    "0.272 → 0.272"). The digits are the same for all of them, so their differences can be read off."""
    numbers = {v for v in values if is_number(v)}
    texts = [form(v, digits) for v in values]
    while len({form(v, digits) for v in numbers}) < len(numbers) and digits < most:
        digits += 1
        texts = [form(v, digits) for v in values]
    return texts


def points_between(a: str, b: str, sign: bool = False) -> str:
    """a − b of two printed percentages in percentage points, exactly ("92.81%" − "90.23%" → "2.58"): a derived
    figure equals what a reader subtracts from the printed values. "–" when either is missing."""
    if not (a.endswith("%") and b.endswith("%")):
        return MISSING
    value = Decimal(a[:-1]) - Decimal(b[:-1])
    return f"{value:+f}" if sign else f"{value:f}"


def count(value: Any) -> str:
    """A count with thousands separators ("61,706"); rates are rounded to whole numbers."""
    shown = per_run(value, count)
    if shown is not None:
        return shown
    return f"{value:,.0f}" if is_number(value) else MISSING


def setting_text(value: Any, tr) -> str:
    """A setting's value as the report shows it: text in the report's language ("adam" → 아담(Adam)), an empty
    one as "none", a number as it is."""
    if value in ("", None):
        return tr("none")
    return tr(value) if isinstance(value, str) else str(value)


def public_text(text: Any) -> str:
    """`text` with every absolute path shortened to its last part: `/home/kim/hw/models.py:Net` →
    `models.py:Net`, `/home/kim/.venv/bin/reportgen run` → `reportgen run`, `../../models.py:Net` (as a
    run archives it) → `models.py:Net`."""

    def last_part(match: re.Match) -> str:
        return match.group(1) or match.group(0).rstrip("/").rsplit("/", 1)[-1]

    return _ABSOLUTE_PATH.sub(last_part, str(text))


@dataclass(frozen=True)
class Cell:
    """One table cell. `kind`: "num" (right-aligned), "label" (text), "code" (an identifier, monospace),
    "layer" (a layer's dotted name), "formula" (a parameter or MAC formula, monospace). `verdict`: True/False
    when the cell states a checked figure (✓/✗ is part of `text`), None otherwise; `note`: a second, smaller
    line; `color`: a model's swatch; `span`: the columns it covers (a footer's "Total: …" over the names);
    `image`: a figure file the cell shows, `text` then being its alt text (a confusion's examples)."""

    text: str
    kind: str = "num"
    note: str = ""
    color: str = ""
    verdict: bool | None = None
    span: int = 1
    image: str = ""


def label(text: Any, note: str = "", color: str = "") -> Cell:
    return Cell(str(text), "label", note, color)


def code(text: Any, note: str = "") -> Cell:
    return Cell(str(text), "code", note)


@dataclass
class Row:
    cells: list[Cell]
    style: str = ""  # "best" (highlighted), "flagged" (a trial that did not complete), "muted"


@dataclass
class Table:
    """A titled table: `key` is stable (tests and summary.json find it by key), `title` and `columns` are
    in the report's language. A table with no `columns` is a key/value list (the first cell is the key)."""

    key: str
    title: str
    columns: list[str]
    rows: list[Row]
    footer: list[Row] = field(default_factory=list)
    caption: str = ""
    color: str = ""  # a model's swatch beside the title (a trial's epoch table)

    def column(self, name: str) -> list[str]:
        """The texts of one column, by its heading (tests compare formats with it)."""
        index = self.columns.index(name)
        return [row.cells[index].text for row in self.rows]


@dataclass(frozen=True)
class Claim:
    """A sentence the report asserts. `holds`: True (✓) or False (✗) when a check decided it, None for a
    statement; `evidence`: what the check saw; `test`: the test it rests on; `section`: where to look."""

    text: str
    holds: bool | None = None
    evidence: str = ""
    test: str = ""
    section: str = ""

    @property
    def mark(self) -> str:
        return {True: "✓", False: "✗", None: ""}[self.holds]


@dataclass
class Section:
    """A part of the document about one subject: in a grading document, one student's hand-in. `key` is stable
    (its run id), `claims` are said first (its flags, then its findings), `tables` are keys into the model's
    tables, in the order shown."""

    key: str
    title: str
    claims: list[Claim] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)  # after its tables (a student's curves)


@dataclass(frozen=True)
class Figure:
    """A drawn figure: its file (relative to the report folder), its alt text and caption in the report's
    language."""

    file: str
    alt: str
    caption: str = ""


@dataclass(frozen=True)
class Part:
    """One part of the document, in the order every format shows them: `key` is its id (a checklist item
    links to it), `title` its heading, `level` 2 for a section, 3 for one under the section before it, 0 for a
    notice above the contents (problems, warnings, a combined report's differences)."""

    key: str
    title: str
    level: int = 2
    section: str = ""  # the key of the Section it lays out (a grading document's student), if any


@dataclass
class Header:
    """The document's title and the line under it; `generated` is the minute it was rendered (left out of
    summary.json, which two renders of one run write alike)."""

    title: str
    run_id: str
    lang: str
    dataset: str = ""
    generated: str = ""
    version: str = ""
    notes: str = ""


@dataclass
class Gallery:
    """One model's sample gallery: figures, and the keys of its tables (per-class accuracy, confusions)."""

    label: str
    color: str
    confusion: Figure
    per_class: str
    correct: Figure | None = None
    confusions: str = ""  # the key of its most-frequent-confusions table; "" when it made no mistake
    confident: Figure | None = None
    wrong: list[str] = field(default_factory=list)  # contact sheets of every mistake (misclassified.html)
    wrong_count: str = ""
    test_count: str = ""
    wrong_link: str = ""  # "All misclassified test images (57)"
    wrong_print: str = ""  # the same said for print, where the companion page is not at hand


@dataclass
class Disagreement:
    """One pair of models: the images only one of them got right, each side a figure."""

    a: str
    b: str
    figures: list[Figure]


@dataclass
class ReportModel:
    """Everything a layout shows: the header, the parts in order, tables by key, claims, figures, galleries
    and the captions between them. A layout reads nothing else."""

    tables: dict[str, Table]
    settings_claim: Claim
    conclusion: list[Claim]
    findings: list[Claim] = field(default_factory=list)  # the lint's warnings: what each trial's check found
    next_steps: list[Claim] = field(default_factory=list)  # advice to the author (run more seeds), not a finding
    checklist_title: str = ""
    checklist: list[Claim] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)  # a grading document's students, one each
    header: Header | None = None
    parts: list[Part] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why the run may not be trustworthy (incomplete, altered)
    figures: dict[str, Figure] = field(default_factory=dict)  # by role: loss, acc, curves/<model>, cost, …
    galleries: list[Gallery] = field(default_factory=list)
    disagreements: list[Disagreement] = field(default_factory=list)
    captions: dict[str, str] = field(default_factory=dict)  # the texts between tables and figures, by place
    training: list[str] = field(default_factory=list)  # epoch tables shown under training, the rest in the appendix
    appendix: list[str] = field(default_factory=list)
    spec: str = ""  # the resolved spec as JSON (HTML only: print and Markdown point to spec.json)

    def part(self, key: str) -> Part | None:
        return next((part for part in self.parts if part.key == key), None)

    def section(self, key: str) -> Section | None:
        return next((section for section in self.sections if section.key == key), None)

    def figures_with_prefix(self, prefix: str) -> list[Figure]:
        return [figure for role, figure in self.figures.items() if role.startswith(prefix)]

    def table(self, key: str) -> Table | None:
        return self.tables.get(key)

    def with_prefix(self, prefix: str) -> list[Table]:
        """The tables whose key starts with `prefix` ("layers/", "epochs/"), in the order they were built."""
        return [t for key, t in self.tables.items() if key.startswith(prefix)]

    def to_dict(self) -> dict[str, Any]:
        """For summary.json: the same cells every document shows; a cell's empty fields are left out, and so
        is the minute of rendering."""
        model = asdict(self, dict_factory=lambda pairs: {k: v for k, v in pairs if v not in ("", None, [], {})})
        model.get("header", {}).pop("generated", None)
        return model
