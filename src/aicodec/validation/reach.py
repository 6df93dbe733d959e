"""Whether a dotted name from an allowed module may be reached: by the tables, and by what
it really is once resolved on the installed modules (a module that is not allowed, a refused
builtin)."""

from __future__ import annotations

import importlib
import sys
import threading
import types
import warnings

from aicodec.candidates.contract import ALLOWED_IMPORTS
from aicodec.validation.allowed import (
    ATTRIBUTE_ONLY_PACKAGES,
    DENIED_BECAUSE,
    DENIED_MODULE_ATTRIBUTES,
    FORBIDDEN_BUILTINS,
    SYSTEM_MODULE_NAMES,
    SYSTEM_MODULE_NAMES_ON_MODULES,
)


def last_part_problem(dotted: str) -> str | None:
    """Why the last part of a dotted module name may not be reached, or None when it may."""
    last = dotted.rpartition(".")[2]
    if dotted in DENIED_BECAUSE:
        return f"{dotted} {DENIED_BECAUSE[dotted]}"
    if dotted in DENIED_MODULE_ATTRIBUTES:
        return f"{dotted} reaches files, processes, native code or other modules"
    if last.startswith("_"):
        return f"{dotted}: private and dunder attributes of modules are not allowed"
    if last in SYSTEM_MODULE_NAMES or last in SYSTEM_MODULE_NAMES_ON_MODULES:
        return f"{dotted} reaches a system module"
    return None


def dotted_problem(dotted: str) -> str | None:
    """Why a dotted module name (or any of its prefixes) may not be reached, or None."""
    parts = dotted.split(".")
    for end in range(2, len(parts) + 1):
        problem = last_part_problem(".".join(parts[:end]))
        if problem:
            return problem
    return None


# -------------------------------------------------------- what dotted names really are

_UNRESOLVED = object()
_RESOLVED: dict[tuple[str, bool], tuple[object, ...]] = {}
_RESOLVED_MAX = 20_000
_RESOLVE_LOCK = threading.Lock()


def _resolve(dotted: str, importing: bool = False) -> tuple[object, ...]:
    """The objects ``top``, ``top.a``, ``top.a.b``... stand for in this (trusted) process,
    as far as they resolve: the top must be an allowed import, and the walk stops before a
    prefix the static tables refuse, so nothing denied is imported or touched. ``importing``
    (for the candidate's own import statements) imports a submodule that is not yet an
    attribute, as the candidate's import would."""
    key = (dotted, importing)
    cached = _RESOLVED.get(key)
    if cached is not None:
        return cached
    parts = dotted.split(".")
    if parts[0] not in ALLOWED_IMPORTS:
        return ()
    with _RESOLVE_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = _walk(parts, importing)
    if len(found) == len(parts):  # a partial walk may resolve later, once more is imported
        if len(_RESOLVED) >= _RESOLVED_MAX:
            _RESOLVED.clear()
        _RESOLVED[key] = found
    return found


def _walk(parts: list[str], importing: bool) -> tuple[object, ...]:
    """The objects of each prefix of ``parts`` that resolves (see :func:`_resolve`)."""
    found = [_quiet_import(parts[0])]
    for end in range(2, len(parts) + 1):
        if found[-1] is _UNRESOLVED:
            break
        path = ".".join(parts[:end])
        if last_part_problem(path):
            break
        try:
            found.append(getattr(found[-1], parts[end - 1]))
        except Exception:  # any failure at all means "does not resolve"
            module = isinstance(found[-1], types.ModuleType)
            found.append(_quiet_import(path) if importing and module else _UNRESOLVED)
    return tuple(obj for obj in found if obj is not _UNRESOLVED)


def _quiet_import(name: str) -> object:
    """The module of that name imported here, or _UNRESOLVED when it cannot be."""
    try:
        return importlib.import_module(name)
    except Exception:  # a module that fails to import reaches nothing
        return _UNRESOLVED


def _module_name(path: str, module: types.ModuleType) -> str | None:
    """The name a module is registered under, or for a package whose submodules are only
    attributes, the path it was reached by; None for a module registered under no name."""
    try:
        name = module.__name__
    except Exception:  # a module whose name cannot be read is registered under none
        name = None
    if isinstance(name, str) and sys.modules.get(name) is module:
        return name
    if path.split(".")[0] in ATTRIBUTE_ONLY_PACKAGES:
        return path
    return None


def _object_problem(path: str, obj: object) -> tuple[str, str] | None:
    """(rule, message) when what a dotted name resolved to is a module that is not allowed
    or a refused builtin."""
    if isinstance(obj, types.ModuleType):
        real = _module_name(path, obj)
        if real is None:
            return "forbidden-attribute", f"{path} is a module that is not an allowed import"
        if real.split(".")[0] not in ALLOWED_IMPORTS:
            return "forbidden-attribute", f"{path} is the module {real}, not an allowed import"
        problem = dotted_problem(real)
        if problem:
            return "forbidden-attribute", f"{path} is the module {real}; {problem}"
        return None
    for name, builtin in FORBIDDEN_BUILTINS:
        if obj is builtin:
            return "forbidden-name", f"{path} is the builtin {name}, not allowed in a codec"
    return None


def runtime_problem(
    dotted: str, *, importing: bool = False, last_only: bool = False
) -> tuple[str, str] | None:
    """(rule, message) for the first prefix of a dotted name (or only the whole name) that
    resolves to a module that is not allowed or to a refused builtin."""
    parts = dotted.split(".")
    found = _resolve(dotted, importing)
    for end in range(len(parts) if last_only else 2, len(found) + 1):
        problem = _object_problem(".".join(parts[:end]), found[end - 1])
        if problem:
            return problem
    return None


def reach_problem(dotted: str, importing: bool = False) -> tuple[str, str] | None:
    """(rule, message) when a dotted name is refused by the tables or by what it really is."""
    problem = dotted_problem(dotted)
    if problem:
        return "forbidden-attribute", problem
    return runtime_problem(dotted, importing=importing)


def is_module(dotted: str) -> bool:
    """Whether a dotted name resolves, here, to a module."""
    found = _resolve(dotted)
    return len(found) == dotted.count(".") + 1 and isinstance(found[-1], types.ModuleType)
