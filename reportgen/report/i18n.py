"""The report's words in its language: catalogues, the translator, and Korean particles.

Catalogue entries are `str.format` templates keyed by their English text. A placeholder may carry a
Korean particle as its format spec — "{model:이/가}", "{acc:으로/로}" — and prints the value followed by
the particle that fits how the value ends when read aloud: "LeNet-5가" (오), "CNN이" (엔), "MLP를" (피).
English entries never use one, so one template syntax serves every language.

Sentences a run records (the data source, per-layer formula notes, why a MAC check could not see a layer)
are archived as messages, catalogue keys with their values (reportgen/messages.py): `Translator.render` looks
the key up and formats the values, rendering each value that is itself a message first. Runs archived before
that recorded English text; the archive's reader turns it into messages (reportgen/run/recorded_text.py).
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable
from importlib import resources
from typing import Any

from reportgen.languages import LANGUAGES  # noqa: F401 (the report's modules name it from here)
from reportgen.messages import Message, Op
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

    def __call__(self, text: str, /, **values: Any) -> str:
        template = self.catalogue.get(text, text)
        return FORMATTER.format(template, **values) if values else template

    def render(self, value: Any) -> Any:
        """A recorded value in the report's language: a Message by its key, its values rendered first; an Op
        in words ("batch normalization"); a list joined with commas. Any other value (a formula, a path) is
        no sentence and stays as it is: nothing is matched against patterns."""
        if isinstance(value, Message):
            return self(value.key, **{name: self.render(item) for name, item in value.values.items()})
        if isinstance(value, Op):
            return self(value.words)
        if isinstance(value, (list, tuple)):
            return ", ".join(str(self.render(item)) for item in value)
        return value


def translator(lang: str) -> Translator:
    return Translator(load_catalogue(lang))


def wording(lang: str) -> Callable[[Any], str]:
    """How the measure layer's layouts (reportgen params, reportgen.audit) word a recorded message, op or fixed
    phrase in `lang`: `str` for English, so its text stays exactly as `str()` gives it."""
    if lang == "en":
        return str
    tr = translator(lang)
    return lambda value: str(tr.render(value) if isinstance(value, (Message, Op, list, tuple)) else tr(str(value)))
