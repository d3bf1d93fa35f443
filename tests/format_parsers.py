"""Read a rendered report back, format by format, as a reader's tools would: its parts (section ids and
headings) in order and its tables' cells. HTML with the stdlib parser, Markdown by lines, LaTeX by its table
environments. tests/test_golden.py compares what each format shows with summary.json's report model."""

from __future__ import annotations

import re
from html.parser import HTMLParser

HEADINGS = ("h2", "h3", "h4", "strong")


def norm(text: str) -> str:
    return " ".join(text.split())


class HtmlReport(HTMLParser):
    """`parts`: [id, title] of every <section>/<aside> with an id (or <h4 data-part>, the notebook's), in
    document order, the title being its first heading (or <strong>, a notice's). `tables`: key → rows of cell
    texts (a cell's second line, <small>, left out; an image cell read by its alt text), header row first.
    `items` and `images`: part id → the texts of its list items, and [src, alt] of its images outside tables."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[list[str | None]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.items: dict[str, list[str]] = {}
        self.images: dict[str, list[list[str]]] = {}
        self._open: list[str] = []  # the ids of the parts open here, innermost last
        self._item: list[str] | None = None
        self._title: list[str] | None = None
        self._table: list[list[str]] | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._small = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag in ("section", "aside"):
            self._open.append(a.get("id") or (self._open[-1] if self._open else ""))
            if a.get("id"):
                self.parts.append([a["id"], None])
        elif tag == "h4" and a.get("data-part"):
            self.parts.append([a["data-part"], None])
            self._title = []
        elif tag in HEADINGS and self.parts and self.parts[-1][1] is None and self._table is None:
            self._title = []
        elif tag == "table" and a.get("data-table"):
            self._table = self.tables.setdefault(a["data-table"], [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "small":
            self._small += 1
        elif tag == "img" and self._cell is not None:
            self._cell.append(a.get("alt", ""))
        elif tag == "img" and self._open:
            self.images.setdefault(self._open[-1], []).append([a.get("src", ""), a.get("alt", "")])
        elif tag == "li" and self._open:
            self._item = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("section", "aside") and self._open:
            self._open.pop()
        elif tag == "li" and self._item is not None:
            self.items.setdefault(self._open[-1], []).append(norm("".join(self._item)))
            self._item = None
        elif tag in HEADINGS and self._title is not None:
            self.parts[-1][1] = norm("".join(self._title))
            self._title = None
        elif tag == "table":
            self._table = None
        elif tag == "tr" and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag in ("td", "th") and self._cell is not None:
            self._row.append(norm("".join(self._cell)))
            self._cell = None
        elif tag == "small":
            self._small -= 1

    def handle_data(self, data: str) -> None:
        if self._title is not None:
            self._title.append(data)
        if self._cell is not None and not self._small:
            self._cell.append(data)
        if self._item is not None:
            self._item.append(data)


_UNESCAPE_MD = re.compile(r"\\([\\`*_{}\[\]<>|#!~:.])")
_IMAGE = re.compile(r"!\[((?:\\.|[^\]])*)\]\([^)]*\)")
_IMAGE_SRC = re.compile(r"!\[((?:\\.|[^\]])*)\]\(([^)]*)\)")


def markdown_cell(text: str) -> str:
    """A Markdown table cell as a reader sees it: an image as its alt text, bold and code spans as their text."""
    text = _IMAGE.sub(lambda m: m.group(1), text.strip())
    text = re.sub(r"(?<!\\)\*\*|(?<!\\)`", "", text)
    return norm(_UNESCAPE_MD.sub(r"\1", text))


def markdown_headings(markdown: str) -> list[str]:
    """Every heading's text and every notice's (`> **Warnings**`) in document order."""
    found = []
    for line in markdown.splitlines():
        heading = re.match(r"#{1,6} (.*)", line)
        notice = re.match(r"> \*\*(.*?)\*\*", line)
        if heading or notice:
            found.append(norm(_UNESCAPE_MD.sub(r"\1", (heading or notice).group(1))))
    return found


def markdown_parts(markdown: str) -> dict[str, dict[str, list]]:
    """Each top-level part (a `#`/`##` heading or a notice) by its text: `items`, its list items (`- …`, `> - …`)
    and `images`, [src, alt] of its images outside tables, as a reader sees them."""
    parts: dict[str, dict[str, list]] = {}
    current = None
    for line in markdown.splitlines():
        heading = re.match(r"#{1,2} (.*)|> \*\*(.*?)\*\*", line)
        if heading:
            current = parts.setdefault(markdown_cell(heading.group(1) or heading.group(2)), {"items": [], "images": []})
        elif current is None or line.startswith("|"):
            continue
        elif item := re.match(r"(?:> )?- (.*)", line):
            current["items"].append(markdown_cell(item.group(1)))
        else:
            current["images"] += [[src, markdown_cell(alt)] for alt, src in _IMAGE_SRC.findall(line)]
    return parts


def markdown_tables(markdown: str) -> list[list[list[str]]]:
    """Every table as rows of cells, its separator line left out (a key/value table's first row is its header)."""
    tables, block = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if block:
            rows = [row for row in block if not re.fullmatch(r"\|(\s*-+:?\s*\|)+", row)]
            tables.append([[markdown_cell(c) for c in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows])
        block = []
    return tables


def latex_tables(tex: str) -> list[tuple[str, list[list[str]]]]:
    """Every table of tables.tex: its caption and rows of cells as written (a multicolumn's text as one cell)."""
    found = []
    for body in re.findall(r"\\begin\{table\}.*?\\end\{table\}", tex, re.DOTALL):
        caption = re.search(r"\\caption\{(.*)\}\n", body).group(1)
        lines = body.split("\\toprule\n", 1)[1].split("\\bottomrule", 1)[0].splitlines()
        rows = [
            [
                re.sub(r"^\\multicolumn\{\d+\}\{l\}\{(.*)\}$", r"\1", cell.strip())
                for cell in re.split(r"(?<!\\)&", line)
            ]
            for line in (line.removesuffix(r" \\") for line in lines if line != r"\midrule")
        ]
        found.append((caption, rows))
    return found
