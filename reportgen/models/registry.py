"""Model registry: what a model reference means, and the rule that only models are ever constructed.

A model reference is one of
    lenet5                          a built-in or `@register_model` entry function (registry name)
    my_models.py:LeNet5             a class or registered function in a Python file (relative to the
                                    spec's folder, or the current folder on the command line)
    mynets:LeNet5                   `module:Attr`; the current folder is importable, as with uvicorn
    torchvision:resnet18            a published architecture, through its zoo's own registry (torchvision's
    timm:resnet18                   get_model, timm.create_model when timm is installed), always untrained
optionally followed by constructor kwargs after `?`, joined by `&`, values parsed as JSON (bare words
stay strings): `lenet5?dropout=0.3`, `nets/mlp.py:MLP?hidden=[75,32]`.

Built-in models live in `reportgen.models`, so a user's own `models.py` never hides them and they
never hide it. Before anything named by a reference is called it must be an `nn.Module` subclass or
a function registered with `@register_model`: a spec cannot make reportgen call `os.system`.
"""

from __future__ import annotations

import ast
import fnmatch
import hashlib
import importlib
import importlib.util
import inspect
import json
import linecache
import os
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reportgen.errors import ModelError, close_names, did_you_mean
from reportgen.files import sha256_file
from reportgen.isolation import add_user_folder

if TYPE_CHECKING:  # torch loads when a model is built or checked, not when a spec module is imported
    from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_DESCRIPTIONS: dict[str, str] = {}
_MODULE_REF = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
_FILE_REF = re.compile(r"(?P<file>.+\.py):(?P<attr>[A-Za-z_]\w*)")
# Objects handed over in Python (the notebook API) are referenced as "<python>:label"; never importable.
IN_MEMORY = "<python>"
_IN_MEMORY_OBJECTS: dict[str, Any] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: register a model entry function under its own name (usable as `name` in specs)."""
    _REGISTRY[fn.__name__] = fn
    _DESCRIPTIONS[fn.__name__] = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
    return fn


def _load_builtin_models() -> None:
    from reportgen.models import BUILTIN_MODULES

    for name in BUILTIN_MODULES:  # importing a module registers its entry functions
        importlib.import_module(f"reportgen.models.{name}")


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style wildcard, sorted."""
    _load_builtin_models()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def describe_model(name: str) -> str:
    _load_builtin_models()
    return _DESCRIPTIONS.get(name, "")


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference plus constructor kwargs.

    `target` is what resolves (a registry name, `module:Attr`, or an absolute `/path/file.py:Attr`);
    `written` is the reference as the user wrote it, which labels the model in the report.
    """

    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    written: str = ""

    @property
    def label(self) -> str:
        """The default label: the reference as written, a model file by its name only (`models.py:Net`), so
        no folder of the user's machine reaches the report they publish."""
        name = self.written or self.target
        if self.file is not None:
            name = f"{self.file.name}:{name.rsplit(':', 1)[1]}"
        if not self.kwargs:
            return name
        args = "&".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in self.kwargs.items())
        return f"{name}?{args}"

    @property
    def file(self) -> Path | None:
        """The user's model file for `file.py:Attr` references."""
        match = _FILE_REF.fullmatch(self.target)
        return Path(match["file"]) if match else None


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_model_ref(
    text: str, extra_kwargs: dict[str, Any] | None = None, base_dir: str | Path | None = None
) -> ModelRef:
    """Parse `name?key=value&key=value`; `extra_kwargs` (e.g. from a spec table) are merged in.

    A `file.py:Attr` target is made absolute against `base_dir` (the spec's folder), else the
    current folder, so the reference means the same file wherever the trial later runs.
    """
    written, _, query = text.strip().partition("?")
    kwargs: dict[str, Any] = {}
    for part in filter(None, query.split("&")):
        key, sep, value = part.partition("=")
        if not sep or not key.isidentifier():
            raise ModelError(f"model reference {text!r}: expected key=value after '?', got {part!r}")
        kwargs[key] = _parse_value(value)
    kwargs.update(extra_kwargs or {})
    target = written
    file_ref = _FILE_REF.fullmatch(written)
    if file_ref:
        path = Path(file_ref["file"]).expanduser()
        if not path.is_absolute():
            path = Path(base_dir or os.getcwd()) / path
        target = f"{os.path.normpath(path.absolute())}:{file_ref['attr']}"
    return ModelRef(target, kwargs, written)


def register_object(label: str, obj: Any) -> ModelRef:
    """A class, zero-argument factory or instance handed over in Python (not by name): referenced
    in-process only, so it can be trained here but not in worker processes or resumed later."""
    _IN_MEMORY_OBJECTS[label] = obj
    return ModelRef(f"{IN_MEMORY}:{label}", {}, label)


def is_in_memory(ref: ModelRef) -> bool:
    return ref.target.startswith(f"{IN_MEMORY}:")


def _where_it_failed(exc: BaseException, file: Path) -> str:
    """`line N` of the user's file where an import failed (SyntaxError carries its own line)."""
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f"line {exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == file]
    return f"line {frames[-1].lineno}" if frames else "while importing"


def _import_file(file: Path) -> Any:
    """Import a user's model file once per process under a private module name."""
    if not file.is_file():
        raise ModelError(f"model file {file}: not found")
    name = "reportgen_user_" + hashlib.sha256(str(file).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    # sibling imports (`from layers import Block`) work as in the user's own scripts, but behind the standard
    # library and installed packages (reportgen/isolation.py)
    add_user_folder(str(file.parent))
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ModelError(
            f"model file {file}, {_where_it_failed(exc, file)}: {type(exc).__name__}: {exc}{_shadowed(exc, file)}"
        ) from exc
    return module


def _shadowed(exc: BaseException, file: Path) -> str:
    """The hint for `from statistics import helper` where the user's statistics.py sits beside the model file:
    the standard library's (or an installed package's) module of that name is the one Python imports."""
    module = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
    found = getattr(sys.modules.get(module or ""), "__file__", None)
    own = file.parent / f"{module}.py"
    if module and found and own.is_file() and Path(found) != own:
        return (
            f" — your {own.name} is hidden by the installed module {module!r} of the same name, which Python "
            f"imports first; rename your file (e.g. my_{module}.py)"
        )
    return ""


def _import_module(module_name: str) -> Any:
    local = Path.cwd() / f"{module_name}.py"
    if "." not in module_name and local.is_file():
        # `models:LeNet5` means this folder's models.py, as uvicorn and flask read it — loaded by its path under
        # a private name, so neither a models.py of a folder imported earlier in this process (a notebook that
        # changed folders) nor a module of the standard library or an installed package of that name wins
        return _import_file(local.resolve())
    add_user_folder(os.getcwd())  # a package of the current folder (`mynets.sub:Net`), behind the rest
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        close = close_names(module_name, ZOOS, n=1)  # torchvison:resnet18
        hint = f"; did you mean the {close[0]} zoo ({close[0]}:name)?" if close else ""
        raise ModelError(f"cannot import module {module_name!r} ({exc}){hint}") from exc
    except Exception as exc:
        origin = getattr(importlib.util.find_spec(module_name), "origin", None) or module_name
        where = _where_it_failed(exc, Path(origin))
        raise ModelError(f"model module {origin}, {where}: {type(exc).__name__}: {exc}") from exc


# --------------------------------------------------------------------------- model zoos

ZOOS = ("torchvision", "timm")
# Builder arguments that fetch weights from the network: torchvision's `weights`/`weights_backbone` (and the
# older `pretrained`/`pretrained_backbone`), timm's `pretrained`, `pretrained_cfg*` and `checkpoint_path`.
# Given any value but None or False, they are refused before anything is imported (sources.check_reference).
_NO_WEIGHTS = (
    "weights",
    "weights_backbone",
    "pretrained",
    "pretrained_backbone",
    "pretrained_cfg",
    "pretrained_cfg_overlay",
    "checkpoint_path",
)


def refuse_weights(reference: str, kwargs: dict[str, Any]) -> None:
    """One line for a zoo model asked for pretrained weights: reportgen never downloads anything."""
    refused = [key for key in _NO_WEIGHTS if kwargs.get(key) not in (None, False)]
    if refused:
        raise ModelError(
            f"model {reference}: {refused[0]!r} is not accepted — zoo models are built untrained "
            "(weights are never downloaded); drop it"
        )


def is_zoo_reference(target: str) -> bool:
    return target.partition(":")[0] in ZOOS


@dataclass(frozen=True)
class ZooModel:
    """A published architecture named in a zoo's own registry; built untrained, never by calling an arbitrary
    function, and never downloading weights."""

    zoo: str
    name: str

    def __call__(self, **kwargs: Any) -> nn.Module:
        refuse_weights(f"{self.zoo}:{self.name}", kwargs)
        if self.zoo == "timm":
            model = _zoo_module("timm").create_model(self.name, **kwargs | {"pretrained": False})
            size = tuple(model.pretrained_cfg.get("input_size") or ())
        else:
            models = _zoo_module("torchvision").models
            model = models.get_model(self.name, **kwargs | _untrained_torchvision(models.get_model_builder(self.name)))
            size = _torchvision_input(self.name)
        if size:  # what the architecture was published for: audit_model compares it with the data's shape
            channels = kwargs.get("in_chans", size[0])
            hw = kwargs.get("img_size", kwargs.get("image_size", size[1:]))
            model._reportgen_expected_input = (int(channels), *(hw if isinstance(hw, (tuple, list)) else (hw, hw)))
        return model

    def code(self) -> dict[str, Any]:
        """Which code builds it: the zoo package and its version."""
        package = _zoo_module(self.zoo)
        return {"file": None, "sha256": None, "package": f"{self.zoo} {package.__version__}"}


def _zoo_module(zoo: str) -> Any:
    try:
        return importlib.import_module(zoo)
    except ImportError as exc:
        raise ModelError(f"{zoo} is not installed: pip install {zoo} (or reportgen[{zoo}]) to name its models") from exc


def _zoo_names(zoo: str) -> list[str]:
    module = _zoo_module(zoo)
    return module.list_models() if zoo == "timm" else module.models.list_models()


def _untrained_torchvision(builder: Callable[..., Any]) -> dict[str, None]:
    """No weights for the model, nor for its backbone: detection and segmentation builders
    (`fasterrcnn_resnet50_fpn`, `lraspp_mobilenet_v3_large`…) default `weights_backbone` to ImageNet weights,
    which they download when built (issue 32); the builder's signature says which of the two it takes."""
    accepted = inspect.signature(builder).parameters
    return {key: None for key in ("weights", "weights_backbone") if key in accepted}


def _torchvision_input(name: str) -> tuple[int, ...]:
    """(3, H, W) of a torchvision classification model, from its weights' metadata (read locally, nothing is
    downloaded); () for other tasks (detection, video…), whose input is not one fixed image size."""
    models = _zoo_module("torchvision").models
    if name not in models.list_models(module=models):
        return ()
    crop = getattr(models.get_model_weights(name).DEFAULT.transforms(), "crop_size", None)
    return (3, int(crop[0]), int(crop[-1])) if crop else ()


def _zoo_model(zoo: str, name: str) -> ZooModel:
    names = _zoo_names(zoo)
    if name not in names:
        hint = did_you_mean(name, names) or f"see {zoo}'s list_models()"
        raise ModelError(f"unknown {zoo} model {name!r}: {hint}")
    return ZooModel(zoo, name)


def expected_input(model: nn.Module) -> tuple[int, ...] | None:
    """(channels, height, width) a zoo model was published for, or None."""
    return getattr(model, "_reportgen_expected_input", None)


def _lookup(target: str) -> Any:
    """The object a target names, without calling it."""
    if target.startswith(f"{IN_MEMORY}:"):
        label = target.split(":", 1)[1]
        if label not in _IN_MEMORY_OBJECTS:
            raise ModelError(
                f"model {label!r} was defined in another Python session (a notebook); "
                "it cannot be re-created here — run it again from that session"
            )
        return _IN_MEMORY_OBJECTS[label]
    zoo, _, name = target.partition(":")
    if zoo in ZOOS:
        return _zoo_model(zoo, name)
    file_ref = _FILE_REF.fullmatch(target)
    if file_ref:
        module, attr, where = _import_file(Path(file_ref["file"])), file_ref["attr"], f"model file {file_ref['file']}"
    elif ":" in target:
        if not _MODULE_REF.fullmatch(target):
            raise ModelError(f"expected 'module:Class' or 'file.py:Class', got {target!r}")
        module_name, attr = target.split(":")
        module, where = _import_module(module_name), f"module {module_name!r}"
    else:
        _load_builtin_models()
        if target not in _REGISTRY:
            hint = did_you_mean(target, _REGISTRY) or f"known: {', '.join(sorted(_REGISTRY))}"
            raise ModelError(f"unknown model {target!r}: {hint}")
        return _REGISTRY[target]
    if not hasattr(module, attr):
        raise ModelError(f"{where} has no attribute {attr!r}")
    return getattr(module, attr)


def _is_model_factory(obj: Any) -> bool:
    """An nn.Module subclass, or a function someone registered as a model with @register_model."""
    from torch import nn

    if inspect.isclass(obj):
        return issubclass(obj, nn.Module)
    return isinstance(obj, ZooModel) or any(obj is fn for fn in _REGISTRY.values())


def resolve_factory(ref: ModelRef) -> Callable[..., nn.Module]:
    """What builds the model; refuses, before any call, anything that is not a model."""
    obj = _lookup(ref.target)
    if is_in_memory(ref):
        return obj  # handed over explicitly as a model in Python; checked after construction
    if not _is_model_factory(obj):
        kind = "a class" if inspect.isclass(obj) else type(obj).__name__
        raise ModelError(
            f"model {ref.label!r}: {kind} is not a model — expected an nn.Module subclass "
            "or a function registered with @register_model"
        )
    return obj


def _takes_input_shape(factory: Any) -> bool:
    """Whether a model function or class names `input_shape` among its parameters (the built-in models do)."""
    try:
        return "input_shape" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to read (a builtin, an instance): it is not given one
        return False


def create_model(ref: ModelRef | str, input_shape: tuple[int, ...] | None = None, **kwargs: Any) -> nn.Module:
    """Build a model; None-valued kwargs are dropped so unset CLI options never override defaults.

    `input_shape`, the data's (channels, height, width), goes to a factory whose signature names it (the
    built-in models adapt their first and flattened layers to it), unless the reference sets it itself."""
    if isinstance(ref, str):
        ref = parse_model_ref(ref)
    from torch import nn

    factory = resolve_factory(ref)
    merged = {k: v for k, v in {**ref.kwargs, **kwargs}.items() if v is not None}
    if input_shape is not None and not isinstance(factory, nn.Module) and _takes_input_shape(factory):
        merged.setdefault("input_shape", tuple(input_shape))
    if isinstance(factory, nn.Module):  # an instance from the notebook API: a fresh copy per trial
        import copy

        if merged:
            raise ModelError(f"model {ref.label!r}: an instance takes no constructor arguments")
        return copy.deepcopy(factory)
    try:
        model = factory(**merged)
    except ModelError:
        raise
    except TypeError as exc:
        raise ModelError(f"model {ref.label!r}: bad constructor arguments ({exc})") from exc
    except Exception as exc:  # the constructor is the user's code: one line, not a traceback
        raise ModelError(f"model {ref.label!r}: constructor raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise ModelError(f"model {ref.label!r}: factory returned {type(model).__name__}, expected nn.Module")
    return model


def model_code(ref: ModelRef) -> dict[str, Any]:
    """Which code builds this model: the defining file and its sha256; for code typed into a notebook,
    the sha256 of its source text when Python can recover it."""
    from torch import nn

    obj = _lookup(ref.target)
    if isinstance(obj, nn.Module):
        return {"file": None, "sha256": None, "initialised_by": "caller"}
    if isinstance(obj, ZooModel):
        return obj.code()
    try:
        file = inspect.getsourcefile(obj)
    except (TypeError, OSError):  # a class defined in a notebook cell has no file to point at
        file = None
    if file is not None and Path(file).is_file() and not is_in_memory(ref):
        return {"file": str(Path(file).resolve()), "sha256": sha256_file(Path(file))}
    source = _source_text(obj)
    # None when Python cannot recover the source (a class typed at a plain REPL): said as a null, not left out
    digest = hashlib.sha256(source.encode()).hexdigest() if source is not None else None
    return {"file": None, "sha256": None, "source_sha256": digest}


def _source_text(obj: Any) -> str | None:
    """The source text that defines `obj`, or None when Python cannot recover it."""
    try:
        return inspect.getsource(obj)
    except (TypeError, OSError, IndexError):
        pass
    return _class_source(obj) if inspect.isclass(obj) else None


def _class_source(cls: type) -> str | None:
    """A class's source found through its methods: inspect.getsource looks a class up in its module's
    file, which a notebook's `__main__` (or a module made from a string) does not have, while each method's
    code object names the cell it came from, whose lines linecache holds (IPython registers every cell)."""
    for value in vars(cls).values():
        function = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
        code = getattr(inspect.unwrap(function), "__code__", None) if callable(function) else None
        lines = linecache.getlines(code.co_filename) if code is not None else []
        if not lines:
            continue
        try:
            tree = ast.parse("".join(lines))
        except SyntaxError:
            continue
        enclosing = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)
            and node.name == cls.__name__
            and node.lineno <= code.co_firstlineno <= node.end_lineno
        ]
        if enclosing:
            node = max(enclosing, key=lambda n: n.lineno)  # the innermost, for a class nested in another
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            return "".join(lines[start - 1 : node.end_lineno])
    return None
