"""One exception family so the CLI can turn any user mistake into one clear line."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from typing import Any


class ReportgenError(Exception):
    """A problem the user can fix; the message names the file/key/value and what was expected."""


class SpecError(ReportgenError):
    """An experiment spec (TOML or CLI override) is invalid."""


class DataError(ReportgenError):
    """A dataset is missing, malformed or does not match its known checksum."""


class ModelError(ReportgenError):
    """A model name is unknown or the model cannot run on the dataset's input."""


class ArchiveError(ReportgenError):
    """A run folder is missing, incomplete, tampered with, or cannot be written."""


def short(value: Any) -> str:
    """A value as JSON, cut to 60 characters: a one-line message can quote it whatever its size."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "…"


# Other names people write for a value, suggested only where the value they stand for is a candidate: `lang =
# "kr"` is one letter from "ko" but too short for difflib, and a country code is a natural slip for a language.
ALIASES = {"kr": "ko", "kor": "ko", "korean": "ko", "한국어": "ko", "eng": "en", "english": "en", "gpu": "cuda"}


def _folded(text: str) -> str:
    """A name without case or separator differences: `Adam` is `adam`, `cross-entropy` is `cross_entropy`."""
    return text.casefold().replace("-", "_").replace(" ", "_")


def close_names(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The candidates a misspelt `word` most likely meant, best first: the ones that differ from it only in case
    or separators, else its known alias, else difflib's (similarity of at least 0.6)."""
    names = sorted(set(candidates))
    same = [name for name in names if _folded(name) == _folded(word)]
    if same:
        return same[:n]
    alias = ALIASES.get(_folded(word))
    if alias in names:
        return [alias]
    return difflib.get_close_matches(word, names, n=n)


def did_you_mean(word: str, candidates: Iterable[str], n: int = 3, quote: bool = False) -> str | None:
    """ "did you mean a, b?" for a misspelt `word`, or None when no candidate is close: one wording everywhere."""
    close = [repr(str(name)) if quote else str(name) for name in close_names(word, candidates, n)]
    return f"did you mean {', '.join(close)}?" if close else None
