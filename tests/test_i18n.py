"""The language catalogues are complete and consistent: every entry translated, every placeholder kept.

A catalogue entry is a `str.format` template keyed by its English text (English needs only the display
names of the settings, which reportgen.settings holds). A Korean value that dropped, renamed or added a placeholder would either fail at
render time (KeyError) or silently lose a number, so both directions are checked for every entry.
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest

from reportgen.report import i18n
from reportgen.report.i18n import PARTICLE_SPECS, load_catalogue
from reportgen.run.recorded_text import PATTERNS

CATALOGUE_DIR = Path(__file__).resolve().parent.parent / "reportgen" / "templates" / "i18n"
LANGUAGES = list(i18n.LANGUAGES)
HANGUL = re.compile("[가-힣]")


def placeholders(template: str) -> dict[str, str]:
    """{field name: format spec} of a str.format template; ValueError for unbalanced braces."""
    return {name: spec for _text, name, spec, _conversion in string.Formatter().parse(template) if name is not None}


def test_every_language_but_english_has_a_catalogue_file():
    assert sorted(p.stem for p in CATALOGUE_DIR.glob("*.json")) == [lang for lang in LANGUAGES if lang != "en"]


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_catalogue_is_a_flat_object_of_nonempty_strings_without_duplicate_keys(lang):
    pairs = json.loads((CATALOGUE_DIR / f"{lang}.json").read_text("utf-8"), object_pairs_hook=list)
    keys = [key for key, _value in pairs]
    assert sorted({k for k in keys if keys.count(k) > 1}) == []  # a later duplicate silently wins in json.loads
    assert [key for key, value in pairs if not isinstance(value, str)] == []
    assert [key for key, value in pairs if not key.strip() or not value.strip()] == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_value_keeps_the_placeholders_of_its_key(lang):
    """Same field names both ways; a field keeps its English format spec (".2f"), or, where the English has
    none, may take a Korean particle ("{model:이/가}")."""
    wrong = []
    for key, value in load_catalogue(lang).items():
        source, target = placeholders(key), placeholders(value)
        if source.keys() != target.keys():
            wrong.append((key, sorted(source), sorted(target)))
        wrong += [
            (key, name, spec)
            for name, spec in target.items()
            if name in source and spec != source[name] and not (source[name] == "" and spec in PARTICLE_SPECS)
        ]
    assert wrong == []


def test_korean_has_every_english_display_name():
    assert sorted(load_catalogue("en").keys() - load_catalogue("ko").keys()) == []


def test_korean_translates_every_sentence_older_runs_recorded():
    assert [p for p in PATTERNS if p not in load_catalogue("ko")] == []


# Names Korean writers keep in Latin letters (issue 36: "say RMSprop, Adam", not 알엠에스프롭, 아담), the name
# of a statistical test and units (MACs, FLOPs); anything else without Hangul would be English in a Korean report.
KEPT_AS_WRITTEN = {"SGD", "Adam", "RMSprop", "AdamW", "McNemar", "p", "MAC", "MACs", "FLOP", "FLOPs"}


def test_korean_values_are_korean():
    """An entry left in English would show up in a Korean report; only a template made of nothing but
    placeholders, punctuation and names Korean writers keep in Latin letters may stay as it is."""
    untranslated = [
        key
        for key, value in load_catalogue("ko").items()
        if not HANGUL.search(value) and set(re.findall(r"[A-Za-z]+", re.sub(r"\{[^}]*\}", "", value))) - KEPT_AS_WRITTEN
    ]
    assert untranslated == []
