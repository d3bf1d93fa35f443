"""The templates every document is laid out from, and what a layout needs besides them: the Jinja environment in
the report's language, the stylesheet and figures inlined into a single-file HTML, and the only files WeasyPrint
may read. A module of its own, so the two documents that share it (render.py's report, grading.py's class)
need not import each other."""

from __future__ import annotations

import base64
import re
from importlib import resources
from pathlib import Path

import jinja2

from reportgen.report.i18n import translator

# Templates, stylesheet and catalogues ship inside the package: found the same way in a checkout and a wheel.
TEMPLATES = resources.files("reportgen") / "templates"


def jinja_environment(lang: str) -> jinja2.Environment:
    """The templates' environment in `lang`: autoescaped, strict about undefined names, `_()` and `tr` worded
    by the catalogue, and the number filters every layout shares."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reportgen", "templates"),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
    )
    # the resolved spec is shown as JSON: Hangul as Hangul (tojson still escapes <, >, & and ')
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
    translate = translator(lang)
    # Old-style gettext: `_()` returns plain text, which autoescape then escapes like any value, and
    # never %-formats it (new-style would mark it safe and apply `%`: "95% interval" would crash).
    # Values (checklist lines, states, setting keys) go through the `tr` filter.
    env.filters["tr"] = lambda value: translate(str(value))
    # `_("{winner} better", winner=…)` formats through the translator, which picks Korean particles.
    env.install_gettext_callables(
        lambda s, **values: translate(s, **values),
        lambda s, p, n, **values: translate(s if n == 1 else p, **values),
        newstyle=False,
    )
    env.filters["pct"] = lambda x, digits=2: "–" if x is None else f"{100 * x:.{digits}f}%"
    env.filters["num"] = lambda x, digits=4: "–" if x is None else f"{x:.{digits}f}"
    env.filters["thousands"] = lambda x: f"{x:,}"
    return env


def inline_assets(html: str, folder: Path) -> str:
    """One self-contained file: the stylesheet inlined, every figure as a data: URI."""
    css = (folder / "report.css").read_text("utf-8")
    html = html.replace('<link rel="stylesheet" href="report.css">', f"<style>\n{css}</style>")

    def data_uri(match: re.Match) -> str:
        path = folder / match.group(1)
        mime = "image/svg+xml" if path.suffix == ".svg" else "image/png"
        return f'src="data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"'

    return re.sub(r'src="(figures/(?:[A-Za-z0-9_-]+/)?[A-Za-z0-9_.-]+)"', data_uri, html)  # a class: figures/<run>/


def restricted_fetcher(root: Path):
    """WeasyPrint may read files inside the report folder and nothing else (no network, no other files)."""
    from urllib.parse import unquote, urlparse

    from weasyprint.urls import URLFetcher

    class FolderFetcher(URLFetcher):
        def fetch(self, url: str, headers=None):
            parsed = urlparse(url)
            inline = parsed.scheme == "data"  # images matplotlib embeds inside SVG figures
            if not inline and (
                parsed.scheme != "file" or not Path(unquote(parsed.path)).resolve().is_relative_to(root.resolve())
            ):
                raise ValueError(f"blocked: {url[:80]} is outside the report folder")
            return super().fetch(url, headers)

    return FolderFetcher(allowed_protocols=("file", "data"))
