"""`reportgen params --lang ko` and `reportgen.audit(lang="ko")` print no English words: only layer types, layer
and model names, units and acronyms stay in Latin script."""

from __future__ import annotations

import contextlib
import io
import json
import re

import pytest

import reportgen
from reportgen.cli import main
from reportgen.models.registry import create_model

# Latin words allowed in Korean text: layer types, units and acronyms, tool names.
ALLOWED = {
    *("Conv2d", "Linear", "MaxPool2d", "ReLU", "Flatten", "BatchNorm2d", "Dropout"),
    *("MAC", "MACs", "FLOP", "FLOPs", "torchinfo", "PyTorch"),
    *("lenet5", "LeNet5", "features", "classifier", "x"),  # the model's and its layers' names; 1x28x28
}


def english_words(text: str) -> set[str]:
    """Latin-script words of two or more letters that are not allowed (numbers and formulas have none)."""
    return {
        word
        for word in re.findall(r"(?<![A-Za-z0-9.])[A-Za-z][A-Za-z0-9_]*", text)
        if word not in ALLOWED and len(word) > 1
    }


def params(*args: str) -> str:
    """What `reportgen params lenet5 --lang ko …` prints; in this process (the command's text is the claim, not
    its process: four interpreters importing torch cost seconds each)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["params", "lenet5", "--lang", "ko", *args])
    assert code == 0
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_params_in_korean_has_no_english_words(fmt: str) -> None:
    out = params("--format", fmt)
    assert "전체 파라미터" in out and "torchinfo" in out
    assert english_words(out) == set()


def test_params_json_in_korean_keeps_english_keys_and_words_its_text() -> None:
    record = json.loads(params("--format", "json"))
    assert "layers" in record and "total" in record  # keys stay as programs read them
    record.pop("cost")  # the MAC record's plain-text fields (its convention) are archived English, not messages
    text = " ".join(str(value) for value in _values(record) if isinstance(value, str))  # not true/false
    assert english_words(text) == set()


def test_params_csv_in_korean_words_its_cells() -> None:
    lines = params("--format", "csv").splitlines()
    assert lines[0].startswith("layer,type,output_shape")  # column names: for programs, as JSON keys
    assert english_words("\n".join(lines[1:])) == set()


def _values(record: object) -> list[object]:
    if isinstance(record, dict):
        return [item for value in record.values() for item in _values(value)]
    if isinstance(record, list):
        return [item for value in record for item in _values(value)]
    return [record]


def test_audit_in_korean_has_no_english_words() -> None:
    audit = reportgen.audit(create_model("lenet5"), lang="ko")
    text, page = repr(audit), audit._repr_html_()
    assert "층" in text and "파라미터" in page
    assert english_words(text) == set()
    visible = re.sub(r"<[^>]+>", " ", page)  # the markup's tags and attributes are not read
    assert english_words(visible) == set()


def test_english_stays_the_default() -> None:
    assert "all parameters" in repr(reportgen.audit(create_model("lenet5")))
