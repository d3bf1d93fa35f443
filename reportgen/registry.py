"""Model registry: entry functions register under a name; users pick models by name or `module:Class`.

Model references accept constructor kwargs after `?`, joined by `&`, values parsed as JSON
(bare words stay strings): `lenet5?dropout=0.3`, `models.mlp:MLP?hidden=[75,32]`.
"""
from __future__ import annotations

import difflib
import fnmatch
import importlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import torch.nn as nn

from .errors import ModelError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_DESCRIPTIONS: dict[str, str] = {}
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: register a model entry function under its own name."""
    _REGISTRY[fn.__name__] = fn
    _DESCRIPTIONS[fn.__name__] = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
    return fn


def _load_builtin_models() -> None:
    importlib.import_module("models")  # importing the package registers every entry function


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style wildcard, sorted."""
    _load_builtin_models()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def describe_model(name: str) -> str:
    _load_builtin_models()
    return _DESCRIPTIONS.get(name, "")


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference: registry name or `module:Class`, plus constructor kwargs."""

    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if not self.kwargs:
            return self.target
        args = "&".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in self.kwargs.items())
        return f"{self.target}?{args}"


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_model_ref(text: str, extra_kwargs: dict[str, Any] | None = None) -> ModelRef:
    """Parse `name?key=value&key=value`; `extra_kwargs` (e.g. from a spec table) are merged in."""
    target, _, query = text.strip().partition("?")
    kwargs: dict[str, Any] = {}
    for part in filter(None, query.split("&")):
        key, sep, value = part.partition("=")
        if not sep or not key.isidentifier():
            raise ModelError(f"model reference {text!r}: expected key=value after '?', got {part!r}")
        kwargs[key] = _parse_value(value)
    kwargs.update(extra_kwargs or {})
    return ModelRef(target, kwargs)


def _resolve_factory(target: str) -> Callable[..., nn.Module]:
    if ":" in target:
        if not _IMPORT_PATH.match(target):
            raise ModelError(f"model {target!r}: expected 'package.module:Class'")
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ModelError(f"model {target!r}: cannot import module {module_name!r} ({exc})") from exc
        if not hasattr(module, attr):
            raise ModelError(f"model {target!r}: module {module_name!r} has no attribute {attr!r}")
        return getattr(module, attr)
    _load_builtin_models()
    if target not in _REGISTRY:
        close = difflib.get_close_matches(target, _REGISTRY, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(sorted(_REGISTRY))}"
        raise ModelError(f"unknown model {target!r}: {hint}")
    return _REGISTRY[target]


def create_model(ref: ModelRef | str, **kwargs: Any) -> nn.Module:
    """Build a model; None-valued kwargs are dropped so unset CLI options never override defaults."""
    if isinstance(ref, str):
        ref = parse_model_ref(ref)
    factory = _resolve_factory(ref.target)
    merged = {k: v for k, v in {**ref.kwargs, **kwargs}.items() if v is not None}
    try:
        model = factory(**merged)
    except TypeError as exc:
        raise ModelError(f"model {ref.label!r}: bad constructor arguments ({exc})") from exc
    if not isinstance(model, nn.Module):
        raise ModelError(f"model {ref.label!r}: factory returned {type(model).__name__}, expected nn.Module")
    return model
