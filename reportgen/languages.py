"""The languages a report can be written in: en (the templates' own text) and every language with a
catalogue in templates/i18n/<lang>.json. At the spec's level, so reading a spec loads no report code."""

LANGUAGES = ("en", "ko")
DEFAULT_LANGUAGE = "en"
