"""The languages a report can be written in: en (the templates' own text) and every language with a
catalogue in templates/i18n/<lang>.json. At the spec's level, so reading a spec loads no report code."""

from reportgen.errors import ReportgenError

LANGUAGES = ("en", "ko")
DEFAULT_LANGUAGE = "en"


def report_language(requested: str | None, recorded: str | None) -> str:
    """The one rule for a report's language: the one asked for now (`--lang`, `compare(lang=…)`), else the
    run's own (its spec's `[report] lang`, which `run --lang` already set), else English."""
    lang = requested or recorded or DEFAULT_LANGUAGE
    if lang not in LANGUAGES:
        raise ReportgenError(f"language {lang!r}: expected one of {', '.join(LANGUAGES)}")
    return lang
