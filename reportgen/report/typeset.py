"""Typesetting of the HTML that WeasyPrint lays out as the PDF: Korean set by word.

Korean breaks lines between words (eojeol), never inside one. Browsers do that with the stylesheet's
`word-break: keep-all`, but WeasyPrint accepts only `normal` and `break-all` and drops it, and Pango then
breaks between any two Hangul syllables ("정확|도"). So the printed HTML gets a WORD JOINER (U+2060, "no
break here" in Unicode's line breaking, which Pango follows) between the characters of each word that holds
Hangul: lines still break at the spaces between words, and Latin-script text around them (a long identifier,
a path in a narrow table cell) keeps every break opportunity it had. The joiner is invisible and zero-width,
and the PDF's text (search, copy) does not hold it. Measured on the golden three-model report in Korean:
no-break spans around each word cost WeasyPrint 1.4 s more CPU (3.8 → 5.2 s), the joiners nothing measurable.
"""

from __future__ import annotations

import html
import re

import markupsafe

HANGUL = "\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3"  # jamo, compatibility jamo, syllables
# A word: its Hangul and what is glued to it without a space. Pango may break between a digit or Latin
# letter and the Hangul after it ("3|개", "MLP|보다"), so letters, digits and closing marks around the Hangul
# belong to the word; a hyphen, slash, colon or opening bracket ends it, where Latin text may break anyway.
WORD = re.compile(rf"[\w.,%'’”)\]]*[{HANGUL}][\w.,%'’”)\]!?;:]*")
HAS_HANGUL = re.compile(f"[{HANGUL}]")
TAG = re.compile(r"(<!--.*?-->|<[^>]*>)", re.DOTALL)
# elements whose text is not HTML text laid out in lines: code (a style, a script) or text set apart (SVG)
RAW = {"script", "style", "title", "textarea", "svg", "math"}
JOINER = "\u2060"


def keep_words_whole(document: str) -> str:
    """`document` with no line break allowed inside a word holding Hangul; markup, attributes and the text
    of raw elements (script, style, title, inline SVG) untouched."""
    parts = TAG.split(document)
    raw_depth = 0
    for i, part in enumerate(parts):
        if i % 2:  # a tag or comment
            raw_depth += _raw_change(part)
        elif raw_depth == 0 and HAS_HANGUL.search(part):
            parts[i] = _wrapped(part)
    return "".join(parts)


def _raw_change(tag: str) -> int:
    """+1 when `tag` opens a raw element, -1 when it closes one, 0 otherwise (self-closing included)."""
    name = re.match(r"</?\s*([A-Za-z][\w-]*)", tag)
    if not name or name.group(1).lower() not in RAW or tag.endswith("/>"):
        return 0
    return -1 if tag.startswith("</") else 1


def _wrapped(text: str) -> str:
    """HTML text (entities and all) with joiners inside its Hangul words, re-escaped."""
    joined = WORD.sub(lambda word: JOINER.join(word.group()), html.unescape(text))
    return str(markupsafe.escape(joined))
