"""Model code read as text, never run: what a reference can name, and which local files a model's code uses.

Both answers come from parsing source files with `ast`, so they cost milliseconds and need neither torch
nor the user's code: a misspelt model is refused with "did you mean …" before anything heavy loads, and
a run records the sha256 of every module of the user's folder that the model's file imports, so a
resume can refuse code that changed anywhere in it (a helper's ReLU made Tanh between two epochs
resumed silently when only the defining file was hashed).
"""

from __future__ import annotations

import ast
import importlib.util
import os
from importlib import resources
from pathlib import Path
from typing import Any

from reportgen.errors import ModelError, did_you_mean
from reportgen.files import sha256_file
from reportgen.models import BUILTIN_MODULES
from reportgen.models.registry import _REGISTRY, ZOOS, ModelRef, is_in_memory, is_zoo_reference, refuse_weights


def _parse(file: Path) -> ast.Module:
    try:
        return ast.parse(file.read_bytes(), filename=str(file))
    except SyntaxError as exc:
        raise ModelError(f"model file {file}, line {exc.lineno}: SyntaxError: {exc.msg}") from exc
    except (OSError, ValueError) as exc:
        raise ModelError(f"model file {file}: cannot read ({exc})") from exc


def _registered(tree: ast.Module) -> list[str]:
    """Functions a module decorates with @register_model."""
    names = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            decorators = [d.attr if isinstance(d, ast.Attribute) else getattr(d, "id", "") for d in node.decorator_list]
            if "register_model" in decorators:
                names.append(node.name)
    return names


def builtin_names() -> set[str]:
    """The built-in registry names, read from their modules' source (importing them would import torch)."""
    folder = resources.files("reportgen.models")
    return {
        name
        for module in BUILTIN_MODULES
        for name in _registered(ast.parse(folder.joinpath(f"{module}.py").read_bytes()))
    }


def defined_names(tree: ast.Module) -> set[str] | None:
    """Top-level names a module defines (classes, functions, assignments, imports); None after `import *`."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(alias.name == "*" for alias in node.names):
                return None
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.If, ast.Try)):  # conditional definitions: taken as defined
            inner = defined_names(ast.Module(body=list(ast.iter_child_nodes(node)), type_ignores=[]))
            if inner is None:
                return None
            names |= inner
    return names


def _did_you_mean(name: str, known: set[str] | list[str]) -> str:
    if hint := did_you_mean(name, known):
        return hint
    return f"it defines {', '.join(sorted(known)[:12])}" if known else "it defines nothing"


def check_reference(ref: ModelRef) -> None:
    """Refuse, with a "did you mean", a reference that cannot name anything — from source text alone.
    What parsing cannot decide (a module outside the user's folder, a zoo name) is left to the registry; a zoo
    model asked for pretrained weights is refused here, before its zoo is imported."""
    if is_in_memory(ref):
        return
    if is_zoo_reference(ref.target):
        refuse_weights(ref.target, ref.kwargs)
        return
    if ref.file is not None:
        _check_attribute(ref.file, ref.target.rsplit(":", 1)[1], f"model file {ref.file}", ref.kwargs)
    elif ":" in ref.target:
        _check_module_reference(*ref.target.split(":", 1), ref.kwargs)
    elif ref.target not in (known := builtin_names() | set(_REGISTRY)):  # _REGISTRY: a notebook's own names
        raise ModelError(f"unknown model {ref.target!r}: {_did_you_mean(ref.target, known)}")


def _check_attribute(file: Path, attr: str, where: str, kwargs: dict[str, Any]) -> None:
    if not file.is_file():
        siblings = [p.name for p in file.parent.glob("*.py")] if file.parent.is_dir() else []
        hint = did_you_mean(file.name, siblings)
        raise ModelError(f"{where}: not found" + (f": {hint}" if hint else ""))
    tree = _parse(file)
    names = defined_names(tree)
    if names is not None and attr not in names:
        raise ModelError(f"{where} has no attribute {attr!r}: {_did_you_mean(attr, names)}")
    accepted = keyword_arguments(tree, attr)
    for key in kwargs if accepted is not None else ():
        if key not in accepted:
            hint = did_you_mean(key, accepted, quote=True) or (
                f"it takes {', '.join(sorted(accepted))}" if accepted else "it takes no arguments"
            )
            raise ModelError(f"{where}: {attr} has no argument {key!r}: {hint}")


def keyword_arguments(tree: ast.Module, attr: str) -> set[str] | None:
    """The keyword arguments a top-level class (its own __init__) or function of `tree` takes; None where the
    source alone cannot say: an inherited __init__, **kwargs, a decorator other than @register_model (a
    dataclass writes its own __init__), or no top-level definition (the last one counts, as in Python)."""
    found = [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == attr]
    node = found[-1] if found else None
    decorators = [
        d.attr if isinstance(d, ast.Attribute) else getattr(d, "id", "") for d in getattr(node, "decorator_list", [])
    ]
    if node is None or any(name != "register_model" for name in decorators):
        return None
    if isinstance(node, ast.ClassDef):
        inits = [n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"]
        node = inits[-1] if inits and not inits[-1].decorator_list else None
    if node is None or node.args.kwarg is not None:
        return None
    arguments = node.args
    by_name = (
        arguments.args[1:] if isinstance(found[-1], ast.ClassDef) and not arguments.posonlyargs else arguments.args
    )
    return {a.arg for a in by_name} | {a.arg for a in arguments.kwonlyargs}


def _check_module_reference(module: str, attr: str, kwargs: dict[str, Any]) -> None:
    """`module:Attr` where the module is a file of the current folder (the registry puts it first on the path)."""
    top = module.split(".")[0]
    if top in ZOOS:  # `torchvision:resnet18`: the zoo's own registry names its models (torch needed)
        return
    local = Path.cwd().joinpath(*module.split("."))
    for file in (local.with_suffix(".py"), local / "__init__.py"):
        if file.is_file():
            _check_attribute(file, attr, f"module {module!r} ({file.name})", kwargs)
            return
    missing = "." not in module and importlib.util.find_spec(top) is None
    if missing and (hint := did_you_mean(top, [p.stem for p in Path.cwd().glob("*.py")])):
        raise ModelError(f"cannot import module {module!r}: no such module; {hint}")


# --- local modules a model file imports --------------------------------------------------------------


def _imported(tree: ast.Module, file: Path, root: Path) -> list[Path]:
    """Files under `root` (the model file's folder, first on sys.path) that `tree`'s imports load."""
    found: list[Path] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            dotted = [alias.name for alias in node.names]
            base = root
        elif isinstance(node, ast.ImportFrom):
            base = file.parent
            for _ in range(max(node.level - 1, 0)):
                base = base.parent
            base = base if node.level else root
            stem = node.module or ""
            dotted = [stem] if stem else []
            dotted += [f"{stem}.{alias.name}" if stem else alias.name for alias in node.names]
        else:
            continue
        for name in dotted:
            found += _module_files(base, name)
    return found


def _module_files(base: Path, dotted: str) -> list[Path]:
    """The files `import dotted` runs when found under `base`: each package's __init__.py and the module."""
    files, folder = [], base
    for part in dotted.split("."):
        candidate = folder / part
        if (candidate / "__init__.py").is_file():
            files.append(candidate / "__init__.py")
        elif candidate.with_suffix(".py").is_file():
            files.append(candidate.with_suffix(".py"))
            break
        else:
            break
        folder = candidate
    return files


def local_modules(file: Path) -> dict[str, str]:
    """sha256 of every module of the model file's folder that the file imports, directly or through
    another such module, keyed by its path relative to that folder (the file itself left out)."""
    root, file = file.parent.resolve(), file.resolve()
    seen, pending = {file}, [file]
    while pending:
        current = pending.pop()
        try:
            tree = ast.parse(current.read_bytes(), filename=str(current))
        except (SyntaxError, OSError, ValueError):
            continue  # the import itself reports it; nothing more to follow here
        for found in _imported(tree, current, root):
            found = found.resolve()
            if found not in seen and _inside(found, root):
                seen.add(found)
                pending.append(found)
    return {os.path.relpath(p, root): sha256_file(p) for p in sorted(seen - {file})}


def _inside(path: Path, root: Path) -> bool:
    return path.is_relative_to(root) and not any(part in ("site-packages", "dist-packages") for part in path.parts)


def changed_modules(file: Path, recorded: dict[str, str]) -> list[str]:
    """The recorded local modules of `file` that now differ, are missing, or that it imports now and did
    not then: `helpers.py`, `old.py (missing)`, `new.py (new)`."""
    now = local_modules(file)
    changed = [name + ("" if name in now else " (missing)") for name in recorded if now.get(name) != recorded[name]]
    return changed + [f"{name} (new)" for name in now if name not in recorded]
