"""The report's words in its language: catalogues, the translator, and Korean particles.

Catalogue entries are `str.format` templates keyed by their English text. A placeholder may carry a
Korean particle as its format spec — "{model:이/가}", "{acc:으로/로}" — and prints the value followed by
the particle that fits how the value ends when read aloud: "LeNet-5가" (오), "CNN이" (엔), "MLP를" (피).
English entries never use one, so one template syntax serves every language.

Strings recorded in a run (the data source, per-layer formula notes) were written in English when the run
was archived; `Translator.recorded` translates them by catalogue keys that are patterns ("IDX files in
{path}"), so old runs read in Korean too without touching the archive.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from reportgen.languages import LANGUAGES  # noqa: F401 (the report's modules name it from here)
from reportgen.settings import DISPLAY_NAMES

CATALOGUES = resources.files("reportgen") / "templates" / "i18n"

# Final consonant (jongseong) index of the Hangul syllable a character is read as; 0: none.
# ㄱ 1, ㄴ 4, ㄹ 8, ㅁ 16, ㅂ 17, ㅅ 19, ㅇ 21.
RIEUL = 8
DIGIT_FINALS = {
    "0": 21,
    "1": 8,
    "2": 0,
    "3": 16,
    "4": 0,
    "5": 0,
    "6": 1,
    "7": 8,
    "8": 8,
    "9": 0,
}  # 영 일 이 삼 사 오 육 칠 팔 구
ROUND_NUMBER_FINALS = {1: 17, 2: 1, 3: 4, 4: 4}  # 10 십, 100 백, 1000 천, 10000 만: by count of trailing zeros
LETTER_FINALS = {"L": RIEUL, "M": 16, "N": 4, "R": RIEUL}  # 엘 엠 엔 알; every other letter's name ends in a vowel
SKIPPED_TRAILERS = " )]}'\"’”.,:;!?"  # read past these to the word a particle attaches to
# (form after a final consonant, form after a vowel); either order is accepted as a spec.
PARTICLES = [("이", "가"), ("은", "는"), ("을", "를"), ("과", "와"), ("으로", "로"), ("이나", "나"), ("이라", "라")]
PARTICLE_SPECS = {f"{a}/{b}": pair for pair in PARTICLES for a, b in (pair, pair[::-1])} | {"(으)로": ("으로", "로")}


# English sentences archived with a run (data/datasets.py's source, measure/params.py's formula notes): the only
# keys matched as patterns, so no user text (a model label, a path) is ever taken for a sentence.
RECORDED_PATTERNS = (
    "no formula for {ops}",  # why a MAC cross-check could not see a layer (measure/mac_checks.py)
    "its rule counts a Linear once per first dimension ({n})",
    "IDX files in {path}",
    "torchvision {dataset} download",
    "{formula} (+{count} running stats, not trainable)",
    "{count} slopes (one per channel) = {total}",
    "{formula} [{count} pruned]",
    (
        "torchinfo counts the {repeated} shared (tied) parameters once per layer that uses them; the model stores and "
        "trains {total}: ours is right"
    ),
    (
        "torchinfo counts the {left} parameters left after pruning; the model still stores {total} ({pruned} masked to "
        "zero): both are right, for different questions"
    ),
)


def final_consonant(word: str) -> int | None:
    """The final consonant index of the last syllable `word` is read with (0: ends in a vowel), or None
    when it ends in nothing readable (symbols only)."""
    text = word.rstrip(SKIPPED_TRAILERS)
    if not text:
        return None
    last = text[-1]
    if "가" <= last <= "힣":
        return (ord(last) - 0xAC00) % 28
    if last.isdigit() and last.isascii():
        return _number_final(text)
    if last.isascii() and last.isalpha():
        return _latin_final(re.search(r"[A-Za-z]+$", text).group())
    if last == "%":
        return 0  # 퍼센트
    return None


def _number_final(text: str) -> int:
    """Integers are read as numbers (10 십, 100 백); digits after a decimal point one by one (0.50 … 영)."""
    digits = re.search(r"\d+$", text).group()
    decimal = text[: -len(digits)].endswith(".")
    zeros = len(digits) - len(digits.rstrip("0"))
    if decimal or zeros == 0 or zeros == len(digits):
        return DIGIT_FINALS[digits[-1]]
    return ROUND_NUMBER_FINALS.get(zeros, 4)


def _latin_final(run: str) -> int:
    """Acronyms are read letter by letter (CNN 엔, MLP 피); words roughly as Korean transcribes them
    (Dropout 드롭아웃, LeNet 르넷, Adam 아담, Sneaker 스니커)."""
    has_vowel = re.search(r"[AEIOUaeiou]", run) is not None
    if len(run) == 1 or (run.isupper() and (len(run) < 4 or not has_vowel)):
        return LETTER_FINALS.get(run[-1].upper(), 0)
    word = run.lower()
    if word.endswith("ng"):
        return 21
    if word[-1] in "mnl":
        return {"m": 16, "n": 4, "l": RIEUL}[word[-1]]
    # a short vowel before k/p/t keeps the consonant as a final (net 넷, top 톱, back 백); -out too (아웃)
    if word.endswith("out") or re.search(r"(^|[^aeiou])[aeiou](ck|[kpt])$", word):
        return {"k": 1, "p": 17, "t": 19}[word[-1]]
    return 0


def particle(word: str, spec: str) -> str:
    """The particle `spec` ("이/가", "은/는", "을/를", "와/과", "으로/로") chosen for `word`. Words ending
    in ㄹ take 로, not 으로; a word with no readable end keeps both forms, "이(가)"."""
    with_final, without = PARTICLE_SPECS[spec]
    final = final_consonant(word)
    if final is None:
        return f"{with_final}({without})" if with_final != "으로" else "(으)로"
    if with_final == "으로" and final == RIEUL:
        return without
    return with_final if final else without


class _ParticleFormatter(string.Formatter):
    """str.format, except that a particle spec prints the value followed by its particle."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec in PARTICLE_SPECS:
            text = str(value)
            return text + particle(text, format_spec)
        return super().format_field(value, format_spec)


FORMATTER = _ParticleFormatter()


# Option values as people write them, not as the spec spells them ("adam" → Adam, "bce_with_logits" → BCE with
# logits): English needs these besides the setting names; other catalogues translate them like any message.
VALUE_NAMES = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "rmsprop": "RMSprop",
    "cross_entropy": "cross-entropy",
    "nll": "NLL",
    "bce_with_logits": "BCE with logits",
    "onecycle": "one-cycle",
}
# PyTorch ops a MAC check names when it has no formula for them ("no formula for aten.native_batch_norm"),
# in words; an op not listed is named by its words without the namespace ("aten._foo_bar" → "foo bar").
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
_OP = re.compile(r"\b(?:aten|prims)\.(\w+?)(?:\.(?:default|Tensor|Scalar|input|out))?\b")


def op_words(text: str, word: Callable[[str], str] = str) -> str:
    """`text` with every PyTorch op name ("aten.native_batch_norm.default") in words ("batch normalization"),
    each worded by `word` (a catalogue lookup)."""
    return _OP.sub(lambda m: word(OP_NAMES.get(m.group(1), m.group(1).strip("_").replace("_", " "))), text)


def load_catalogue(lang: str) -> dict[str, str]:
    """English needs only the display names of the settings (from reportgen.settings) and of their values;
    other languages translate every message, setting names included."""
    if lang == "en":
        return dict(DISPLAY_NAMES) | VALUE_NAMES
    return json.loads(CATALOGUES.joinpath(f"{lang}.json").read_text("utf-8"))


class Translator:
    """translate(key, **values): the catalogue's entry for `key` (else `key`), formatted with `values`
    when any are given. Without values the text is returned as is, so literal braces stay literal."""

    def __init__(self, catalogue: dict[str, str]) -> None:
        self.catalogue = catalogue
        self._patterns: list[tuple[re.Pattern, str]] | None = None

    def __call__(self, text: str, /, **values: Any) -> str:
        template = self.catalogue.get(text, text)
        return FORMATTER.format(template, **values) if values else template

    def recorded(self, text: str) -> str:
        """A sentence recorded in a run, translated by an exact key or a pattern key; the parts a
        pattern captures are translated the same way ("no affine parameters (+12 running stats, …)"). A PyTorch
        op it names is said in words, in every language ("no formula for batch normalization")."""
        if text in self.catalogue:
            return self.catalogue[text]
        for pattern, template in self._compiled():
            match = pattern.fullmatch(text)
            if match:
                return FORMATTER.format(template, **{k: self.recorded(v) for k, v in match.groupdict().items()})
        return op_words(text, lambda words: self.catalogue.get(words, words))

    def _compiled(self) -> list[tuple[re.Pattern, str]]:
        if self._patterns is None:
            self._patterns = [
                (_key_pattern(key), self.catalogue[key]) for key in RECORDED_PATTERNS if key in self.catalogue
            ]
        return self._patterns


def _key_pattern(key: str) -> re.Pattern:
    parts = [
        re.escape(text) + (f"(?P<{name}>.+?)" if name else "")
        for text, name, _spec, _conv in string.Formatter().parse(key)
    ]
    return re.compile("".join(parts), re.DOTALL)


def translator(lang: str) -> Translator:
    return Translator(load_catalogue(lang))


@dataclass(frozen=True)
class Message:
    """A sentence to be translated when the report is rendered: a catalogue key and its values. A value
    that is itself a Message (or a list of them, joined with commas) is translated first."""

    key: str
    values: dict[str, Any] = field(default_factory=dict)

    def render(self, translate: Translator) -> str:
        return translate(self.key, **{name: _render_value(value, translate) for name, value in self.values.items()})


def _render_value(value: Any, translate: Translator) -> Any:
    if isinstance(value, Message):
        return value.render(translate)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(_render_value(v, translate)) for v in value)
    return value
