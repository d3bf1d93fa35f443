"""Sentences a run records, as catalogue keys with their values: worded in a report's language when it is
rendered (reportgen/report/i18n.py), in English wherever `str()` is taken (the CLI, error messages).

    Message("IDX files in {path}", {"path": "data/"})       # archived as {"key": …, "values": {"path": "data/"}}
    str(Message("IDX files in {path}", {"path": "data/"}))  # "IDX files in data/"

A value may itself be a Message, an Op (a PyTorch op, said in words in a report) or a list of them (joined with
", "). The measure/ and data/ layers record these; nothing here imports the report.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any

# PyTorch ops a MAC check names when it has no formula for them ("no formula for aten.native_batch_norm"), in
# words; an op not listed is named by its words without the namespace ("aten._foo_bar" → "foo bar").
OP_NAMES = {
    "native_batch_norm": "batch normalization",
    "_native_batch_norm_legit": "batch normalization",
    "_native_batch_norm_legit_no_training": "batch normalization",
    "_native_batch_norm_legit_functional": "batch normalization",
    "native_layer_norm": "layer normalization",
    "native_group_norm": "group normalization",
    "_cdist_forward": "pairwise distances",
    "_scaled_dot_product_flash_attention": "attention",
    "_scaled_dot_product_efficient_attention": "attention",
    "_scaled_dot_product_attention_math": "attention",
    "mkldnn_rnn_layer": "fused recurrent layer",
    "lstm": "LSTM",
    "gru": "GRU",
}


@dataclass(frozen=True)
class Message:
    """A sentence to be translated when the report is rendered: a catalogue key and its values."""

    key: str
    values: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        """In English: the key itself, formatted with its values (without values it is returned as is, so
        literal braces stay literal)."""
        if not self.values:
            return self.key
        return string.Formatter().format(self.key, **{name: text(value) for name, value in self.values.items()})

    def __hash__(self) -> int:  # a reason groups the layers it holds for (measure/unchecked.py)
        return hash((self.key, _frozen(self.values)))

    def render(self, translate: Any) -> str:
        """In the language of `translate` (a report/i18n.py Translator)."""
        return translate.render(self)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "values": {name: encoded(value) for name, value in self.values.items()}}


@dataclass(frozen=True)
class Op:
    """A PyTorch op a recorded sentence names ("aten.native_batch_norm"): as it is in English text, in words
    in a report ("batch normalization")."""

    op: str

    def __str__(self) -> str:
        return self.op

    @property
    def words(self) -> str:
        name = self.op.split(".")[1] if "." in self.op else self.op  # "aten.x.default" → "x"
        return OP_NAMES.get(name, name.strip("_").replace("_", " "))

    def to_dict(self) -> dict[str, str]:
        return {"op": self.op}


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple((name, _frozen(item)) for name, item in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(item) for item in value)
    return value


Recorded = str | Message  # a field that holds a sentence (Message) or text that is no sentence (a formula)


def text(value: Any) -> str:
    """`value` in English: a message or op as `str()` words it, a list joined with ", "."""
    if isinstance(value, (list, tuple)):
        return ", ".join(text(item) for item in value)
    return str(value)


def encoded(value: Any) -> Any:
    """`value` as the archive writes it: messages and ops as dicts, lists item by item."""
    if isinstance(value, (Message, Op)):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [encoded(item) for item in value]
    return value


def decoded(value: Any) -> Any:
    """What `encoded` wrote, read back: {"key", "values"} → Message, {"op"} → Op, lists item by item; other
    values as they are."""
    if isinstance(value, dict) and set(value) == {"key", "values"}:
        return Message(str(value["key"]), {name: decoded(item) for name, item in dict(value["values"]).items()})
    if isinstance(value, dict) and set(value) == {"op"}:
        return Op(str(value["op"]))
    if isinstance(value, list):
        return [decoded(item) for item in value]
    return value


def english(record: Any) -> Any:
    """A record as `encoded` writes it, with every message and op in English text instead: what the CLI's
    JSON shows (`reportgen params --format json`)."""
    if isinstance(record, dict):
        if set(record) in ({"key", "values"}, {"op"}):
            return text(decoded(record))
        return {name: english(value) for name, value in record.items()}
    if isinstance(record, list):
        return [english(item) for item in record]
    return text(record) if isinstance(record, (Message, Op)) else record
