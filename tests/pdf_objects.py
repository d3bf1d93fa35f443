"""Reading a PDF's structure as WeasyPrint writes it, for the tests of tagged PDFs: no PDF library needed."""

from __future__ import annotations

import re
import zlib

ALT = re.compile(rb"/Alt\s*(<[0-9a-fA-F]+>|\((?:\\.|[^\\)])*\))")


def pdf_objects(pdf: bytes) -> bytes:
    """The PDF's bytes with every Flate stream decompressed beside them: WeasyPrint packs its structure
    tree into compressed object streams."""
    parts = [pdf]
    for match in re.finditer(rb"stream\r?\n", pdf):
        try:
            parts.append(zlib.decompressobj().decompress(pdf[match.end() :]))
        except zlib.error:
            continue
    return b"\n".join(parts)


def pdf_string(token: bytes) -> str:
    """A PDF string as pydyf writes it: (literal, with backslash escapes) or <FEFF UTF-16BE hex>."""
    if token.startswith(b"<"):
        return bytes.fromhex(token[1:-1].decode()).decode("utf-16")
    return re.sub(rb"\\(.)", rb"\1", token[1:-1]).decode("latin-1")


def is_tagged(objects: bytes) -> bool:
    """Whether the PDF has a structure tree and says it is marked (what screen readers follow)."""
    return b"/StructTreeRoot" in objects and re.search(rb"/Marked\s+true", objects) is not None


def alt_texts(objects: bytes) -> set[str]:
    """Every /Alt entry of the structure tree, decoded."""
    return {pdf_string(token) for token in ALT.findall(objects)}
