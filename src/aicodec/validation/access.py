"""Names, attributes and strings that reach what a codec may not: forbidden builtins,
dunders, interpreter internals, denied attributes, ``str.format`` fields."""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Iterator

from aicodec.validation.allowed import (
    ALLOWED_DUNDER_NAMES,
    DENIED_ATTRIBUTE_NAMES,
    DYNAMIC_CODE_NAMES,
    FORBIDDEN_NAMES,
    HASATTR,
    INTERNAL_ATTRIBUTES,
    SAFE_DUNDER_ATTRIBUTES,
    SAFE_STRING_DUNDERS,
    SYSTEM_MODULE_NAMES,
)
from aicodec.validation.names import dotted_meanings, is_dunder
from aicodec.validation.reach import last_part_problem, reach_problem, runtime_problem
from aicodec.validation.report import Violation

_DUNDER_RE = re.compile(r"__[A-Za-z][A-Za-z0-9_]*__")


# -------------------------------------------------------------------------------- names


def permitted_hasattr(tree: ast.Module) -> set[int]:
    """Ids of ``hasattr`` names called as hasattr(obj, "literal")."""
    permitted: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == HASATTR
            and len(node.args) == 2
            and not node.keywords
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            permitted.add(id(node.func))
    return permitted


def name_violations(tree: ast.Module, aliases: dict[str, set[str]]) -> Iterator[Violation]:
    """Forbidden builtins, dunder names and names bound to denied module attributes."""
    permitted = permitted_hasattr(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            violation = _name_violation(node, aliases, permitted)
            if violation:
                yield violation


def _name_violation(
    node: ast.Name, aliases: dict[str, set[str]], permitted: set[int]
) -> Violation | None:
    """The violation of one name, if any."""
    name, line = node.id, node.lineno
    if name in DYNAMIC_CODE_NAMES:
        return Violation("dynamic-code", line, f"{name} runs code built at run time")
    if name == HASATTR and id(node) not in permitted:
        return Violation("forbidden-name", line, "hasattr is allowed only with a literal name")
    if name in FORBIDDEN_NAMES:
        return Violation("forbidden-name", line, f"{name} is not allowed in a codec")
    if isinstance(node.ctx, ast.Store):
        return None
    if is_dunder(name) and name not in ALLOWED_DUNDER_NAMES:
        return Violation("dunder", line, f"{name} reaches interpreter internals")
    for dotted in sorted(aliases.get(name, ())):
        problem = reach_problem(dotted)
        if problem:
            return Violation(problem[0], line, f"{name} stands for {dotted}; {problem[1]}")
    return None


# --------------------------------------------------------------------------- attributes


def attribute_violations(tree: ast.Module, aliases: dict[str, set[str]]) -> Iterator[Violation]:
    """Dunder and frame traversal, denied attributes, private module attributes."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            violation = _attribute_violation(node, aliases)
            if violation:
                yield violation
        elif isinstance(node, ast.MatchClass):
            for attr in node.kwd_attrs:
                problem = _attribute_name_problem(attr)
                if problem:
                    yield Violation(problem[0], node.lineno, problem[1])


def _attribute_name_problem(attr: str) -> tuple[str, str] | None:
    """(rule, message) when an attribute name is refused on any object."""
    if is_dunder(attr) and attr not in SAFE_DUNDER_ATTRIBUTES:
        return "dunder", f"attribute {attr} reaches interpreter internals"
    if attr in INTERNAL_ATTRIBUTES:
        return "dunder", f"attribute {attr} reaches frames, code or class internals"
    if attr in DENIED_ATTRIBUTE_NAMES:
        return "forbidden-attribute", f"attribute {attr} reaches files, native memory or names"
    if attr in SYSTEM_MODULE_NAMES:
        return "forbidden-attribute", f"attribute {attr} reaches a system module"
    return None


def _attribute_violation(node: ast.Attribute, aliases: dict[str, set[str]]) -> Violation | None:
    """The violation of one attribute access, if any."""
    line = node.end_lineno or node.lineno
    problem = _attribute_name_problem(node.attr)
    if problem:
        return Violation(problem[0], line, problem[1])
    meanings = dotted_meanings(node, aliases)
    for dotted in sorted(meanings):
        reason = last_part_problem(dotted)
        if reason:
            return Violation("forbidden-attribute", line, reason)
    for dotted in sorted(meanings):  # the prefixes are attribute nodes of their own
        found = runtime_problem(dotted, last_only=True)
        if found:
            return Violation(found[0], line, found[1])
    if node.attr == "format" and not meanings:
        return _format_violation(node, line)
    return None


def _format_violation(node: ast.Attribute, line: int) -> Violation | None:
    """str.format may reach attributes through its fields: only literal, flat fields pass."""
    base = node.value
    if not (isinstance(base, ast.Constant) and isinstance(base.value, str)):
        return Violation("forbidden-attribute", line, ".format is allowed only on a literal")
    if _format_reaches_attributes(base.value):
        return Violation("forbidden-attribute", line, "format fields may not use . or [ ]")
    return None


def _format_reaches_attributes(template: str, depth: int = 0) -> bool:
    """Whether a format string has a field such as {0.attr} or {0[key]}."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return False
    for _literal, field_name, spec, _conversion in fields:
        if field_name and ("." in field_name or "[" in field_name):
            return True
        if spec and depth < 2 and _format_reaches_attributes(spec, depth + 1):
            return True
    return False


# ------------------------------------------------------------------------------ strings


def _docstring_ids(tree: ast.Module) -> set[int]:
    """Ids of the docstring constants of the module, its classes and its functions."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def string_violations(tree: ast.Module) -> Iterator[Violation]:
    """String constants that name interpreter internals (``x["__builtins__"]``, format fields)."""
    docstrings = _docstring_ids(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in docstrings:
                continue
            for match in _DUNDER_RE.finditer(node.value):
                if match.group() not in SAFE_STRING_DUNDERS:
                    message = f"string {match.group()!r} names interpreter internals"
                    yield Violation("dunder", node.lineno, message)
                    break
