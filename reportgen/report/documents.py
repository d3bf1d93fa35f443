"""How a report is rendered (RenderOptions), which documents a render writes, and whether this machine can write
the PDF.

Kept apart from render.py (which imports matplotlib and Jinja2) so that a command can ask before it trains;
below request.py, which builds the options, and render.py, which takes them.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reportgen.errors import ReportgenError

FORMATS = ("html", "pdf", "md")
PANGO_PACKAGES = "libpango-1.0-0 libpangoft2-1.0-0"  # Debian and Ubuntu: what WeasyPrint loads with cffi


def chosen_documents(formats: Collection[str] | None, pdf: bool) -> set[str]:
    """The documents of a render: `formats` (all when None), less the PDF when `pdf` is False."""
    return {*(formats or FORMATS)} - (set() if pdf else {"pdf"})


@dataclass(frozen=True)
class RenderOptions:
    """Everything render_report takes besides the runs: where, in which language, which documents."""

    output_root: Path = Path("output")  # the report goes to output_root/<run id>/
    lang: str | None = None  # None: the spec's language
    pdf: bool = True
    formats: tuple[str, ...] | None = None  # None: html, pdf and md
    checklist: str | None = None  # None: the spec's checklist
    single_file: bool = False
    cover: dict[str, Any] = field(default_factory=dict)  # cover options over the spec's [report] cover
    summary_only: bool = False  # a grading document without its per-student sections
    allow_incomplete: bool = False  # render a run that is partial or altered, marked as such

    def documents(self) -> set[str]:
        return chosen_documents(self.formats, self.pdf)

    def to_json(self) -> dict[str, Any]:
        """As JSON, for the warm report process (worker.py)."""
        return asdict(self) | {"output_root": str(self.output_root)}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> RenderOptions:
        formats = values.get("formats")
        return cls(**values | {"output_root": Path(values["output_root"]), "formats": formats and tuple(formats)})


def pdf_problem() -> str | None:
    """Why the PDF cannot be made here, in one line, or None. WeasyPrint loads Pango and GObject when it is
    imported; where they are missing (a GPU image, a slim container) the import fails, and only then."""
    banner = io.StringIO()  # WeasyPrint prints a troubleshooting banner before it raises
    try:
        with contextlib.redirect_stdout(banner):
            import weasyprint  # noqa: F401
    except ImportError:
        return "WeasyPrint is not installed (pip install weasyprint)"
    except OSError as exc:
        library = re.search(r"cannot load library '([^']+)'", str(exc))
        missing = library.group(1) if library else str(exc).splitlines()[0][:120]
        return (
            f"WeasyPrint cannot load the system library {missing}: install Pango "
            f"(Debian/Ubuntu: apt-get install {PANGO_PACKAGES}; macOS: brew install pango)"
        )
    return None


def require_pdf_support(documents: set[str], problem: Callable[[], str | None] = pdf_problem) -> None:
    """Refuse, in one line, a render that asks for the PDF on a machine that cannot make it."""
    reason = problem() if "pdf" in documents else None
    if reason:
        raise ReportgenError(f"the PDF cannot be made here: {reason}; or leave it out (--no-pdf; pdf=False in Python)")
