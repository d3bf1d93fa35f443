"""The checks every spec value passes: the keys each table allows, and one error line that names the file (or
the command-line flag) and the dotted key, what was expected, what was given, and a did-you-mean.
"""

from __future__ import annotations

import math
import unicodedata
from pathlib import Path
from typing import Any

from reportgen.cover import COVER_KEYS
from reportgen.errors import SpecError, close_names, did_you_mean
from reportgen.experiment import DataSpec
from reportgen.settings import SWEEPABLE

# Bidirectional-text controls can make a label read differently from what it is (Trojan Source).
_BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

TOP_KEYS = {
    "name",
    "notes",
    "device",
    "lang",
    "data",
    "models",
    "train",
    "report",
    "source",
    "augment",
    "checklist",
    "max_trials",
    "cover",
}  # cover: as spec.json records [report]'s cover keys
AUGMENT_KEYS = {"rotation", "translate", "scale", "erasing", "crop", "flip"}
DATA_KEYS = {f for f in DataSpec.__dataclass_fields__}
MODEL_KEYS = {"name", "kwargs", "label", "base", "train", "code"}  # code: recorded by the archive, not user input
TRAIN_KEYS = set(SWEEPABLE) | {"seeds", "seed"}
REPORT_KEYS = {"lang", "checklist", *COVER_KEYS}
# The tables a key can belong to: a key written in the wrong one is pointed to its own (`epochs` at the top).
_TABLES = {"": TOP_KEYS, "train.": TRAIN_KEYS, "data.": DATA_KEYS, "augment.": AUGMENT_KEYS, "report.": REPORT_KEYS}


def _key_hint(key: str, allowed: set[str], prefix: str) -> str | None:
    """ "did you mean 'train.epochs'?" for an unknown key: the close keys of its own table; else the key of that
    name in a neighbouring table (`epochs` at the top, or in a [[models]] entry), or failing that a close one."""
    names = [prefix + name for name in close_names(key, allowed)]
    if not names:
        tables = _neighbours(prefix)
        elsewhere = [table + name for table, keys in tables.items() for name in close_names(key, keys, 1)]
        names = [name for name in elsewhere if name.endswith(f".{key}")] or elsewhere[:1]
    return f"did you mean {', '.join(map(repr, names))}?" if names else None


def _neighbours(prefix: str) -> dict[str, set[str]]:
    """The other tables a key written under `prefix` may have been meant for."""
    if prefix in _TABLES:
        return {table: keys for table, keys in _TABLES.items() if table != prefix}
    if prefix.startswith("models[") and not prefix.endswith(".train."):
        return {f"{prefix}train.": set(SWEEPABLE)}
    return {}


def _unquoted_hint(value: Any, kind: type | tuple) -> str | None:
    """A number written in quotes (`epochs = "5"`) is TOML text: say how to write it."""
    numeric = {int, float} & set(kind if isinstance(kind, tuple) else (kind,))
    if not numeric or not isinstance(value, str):
        return None
    try:
        number = int(value) if int in numeric and float not in numeric else float(value)
    except ValueError:
        return None
    return f"write the number without quotes: {value.strip()}" if math.isfinite(number) else None


class Checker:
    """Validates one spec source, naming the file and the dotted key in every error."""

    def __init__(self, source: str, flags: dict[str, str] | None = None) -> None:
        self.source = source
        self.flags = flags or {}  # dotted key → the CLI flag that overrode it
        # model files named in a spec are relative to the spec's own folder
        self.folder = Path(source).resolve().parent if Path(source).is_file() else None

    def fail(self, key: str, expected: str, got: Any, hint: str | None = None) -> SpecError:
        return SpecError(f"{self.where(key)}: expected {expected}, got {got!r}" + (f"; {hint}" if hint else ""))

    def where(self, key: str) -> str:
        """Where a value came from: the command-line flag that gave it, else the spec file and key."""
        flag = self.flags.get(key)
        return f"{flag} (spec key '{key}')" if flag else f"{self.source}: key '{key}'"

    def unknown(self, table: dict, allowed: set[str], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                hint = _key_hint(key, allowed, prefix) or f"allowed: {', '.join(sorted(allowed))}"
                raise SpecError(f"{self.source}: unknown key '{prefix}{key}'; {hint}")

    def typed(self, key: str, value: Any, kind: type | tuple, expected: str) -> Any:
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            raise self.fail(key, expected, value, _unquoted_hint(value, kind))
        return value

    def number(self, key: str, value: Any, low: float, high: float = float("inf"), integer: bool = False) -> Any:
        bound = (lambda x: str(int(x))) if integer and math.isfinite(high) else (lambda x: f"{x:g}")
        expected = f"{'an integer' if integer else 'a number'} in [{bound(low)}, {bound(high)}]"
        self.typed(key, value, int if integer else (int, float), expected)
        if not low <= value <= high:
            raise self.fail(key, expected, value)
        return value if integer else float(value)

    def choice(self, key: str, value: Any, options: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in options:
            hint = did_you_mean(value, options, quote=True) if isinstance(value, str) else None
            raise self.fail(key, f"one of {', '.join(options)}", value, hint)
        return value

    def label(self, key: str, value: Any) -> str:
        """A model label is shown in tables, figures, file names and the console: printable, one line."""
        self.typed(key, value, str, "a string")
        if not value.strip():
            raise self.fail(key, "a non-empty label", value)
        bad = sorted(
            {
                f"U+{ord(c):04X}"
                for c in value
                if unicodedata.category(c) in ("Cc", "Cs", "Co", "Zl", "Zp") or c in _BIDI_CONTROLS
            }
        )
        if bad:
            raise self.fail(key, f"a label without control characters (found {', '.join(bad)})", value)
        return value
