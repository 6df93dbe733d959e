"""``PARAMS`` and ``PARAM_RANGES``: literal dicts, never changed, every value in its range."""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable, Iterator

from aicodec.candidates.contract import PARAM_RANGES_NAME, PARAMS_NAME
from aicodec.validation.allowed import MUTATING_METHODS
from aicodec.validation.report import Violation
from aicodec.validation.structure import Binding


def params_check(
    tree: ast.Module, bindings: list[Binding]
) -> tuple[dict[str, object] | None, dict[str, object] | None, list[Violation]]:
    """Parse PARAMS and PARAM_RANGES (optional literals) and check values against ranges."""
    violations: list[Violation] = []
    params, params_node, params_failed = _literal_dict(tree, bindings, PARAMS_NAME, violations)
    ranges, ranges_node, ranges_failed = _literal_dict(
        tree, bindings, PARAM_RANGES_NAME, violations
    )
    violations += _mutation_violations(tree, (PARAMS_NAME, PARAM_RANGES_NAME))
    if not params_failed and not ranges_failed and (params_node or ranges_node):
        violations += _range_violations(params or {}, params_node, ranges or {}, ranges_node)
    return params, ranges, violations


def top_assignment(tree: ast.Module, name: str) -> tuple[ast.Name, ast.expr] | None:
    """The first direct module-level ``NAME = value`` (or ``NAME: T = value``)."""
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target, value = stmt.target, stmt.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == name:
            return target, value
    return None


def _literal_dict(
    tree: ast.Module, bindings: list[Binding], name: str, violations: list[Violation]
) -> tuple[dict[str, object] | None, ast.Dict | None, bool]:
    """(parsed dict, its AST node, whether the name is present but unusable)."""
    found = [binding for binding in bindings if binding.name == name]
    if not found:
        return None, None, False
    assignment = top_assignment(tree, name)
    target = assignment[0] if assignment else None
    for binding in found:
        if binding.node is not target:
            message = f"{name} must be assigned exactly once, at module level, to a literal"
            violations.append(Violation("params-literal", binding.line, message))
    if assignment is None:
        return None, None, True
    value = assignment[1]
    problem = _literal_problem(value, name)
    if problem:
        violations.append(Violation("params-literal", value.lineno, problem))
        return None, None, True
    parsed = ast.literal_eval(value)
    assert isinstance(value, ast.Dict) and isinstance(parsed, dict)
    return parsed, value, False


def _literal_problem(value: ast.expr, name: str) -> str | None:
    """Why the value of PARAMS or PARAM_RANGES is not a usable literal dict, or None."""
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return f"{name} must be a plain literal (numbers, strings, tuples, lists, dicts)"
    if not isinstance(value, ast.Dict) or not isinstance(parsed, dict):
        return f"{name} must be a dict literal"
    keys = [key.value if isinstance(key, ast.Constant) else None for key in value.keys]
    if not all(isinstance(key, str) for key in keys):
        return f"{name} keys must be strings"
    if len(set(keys)) != len(keys):
        return f"{name} has a key twice"
    if not all(_plain(item) for item in parsed.values()):
        return f"{name} values must be plain: finite numbers, strings, tuples, lists, dicts"
    return None


def _plain(value: object) -> bool:
    """Whether a literal is made of plain JSON-like values (tuples allowed)."""
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, tuple | list):
        return all(_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _mutation_violations(tree: ast.Module, names: Iterable[str]) -> Iterator[Violation]:
    """Item assignments, deletions and mutating calls on PARAMS or PARAM_RANGES."""
    watched = set(names)
    for node in ast.walk(tree):
        if not isinstance(node, ast.expr):  # subscripts and calls are expressions
            continue
        target: ast.expr | None = None
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store | ast.Del):
            target = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in MUTATING_METHODS:
                target = node.func.value
        if isinstance(target, ast.Name) and target.id in watched:
            message = f"{target.id} must not be changed after its literal"
            yield Violation("params-literal", node.lineno, message)


def _key_lines(node: ast.Dict | None) -> dict[str, int]:
    """Line of each string key of a dict literal."""
    if node is None:
        return {}
    return {
        key.value: key.lineno
        for key in node.keys
        if isinstance(key, ast.Constant) and isinstance(key.value, str)
    }


def _range_violations(
    params: dict[str, object],
    params_node: ast.Dict | None,
    ranges: dict[str, object],
    ranges_node: ast.Dict | None,
) -> Iterator[Violation]:
    """Every parameter has a well-formed range that holds its value; no range is orphaned."""
    params_lines, ranges_lines = _key_lines(params_node), _key_lines(ranges_node)
    for key, value in params.items():
        line = params_lines.get(key, 0)
        if key not in ranges:
            yield Violation("params-range", line, f"parameter {key!r} has no range")
            continue
        problem = _range_problem(ranges[key])
        if problem:
            yield Violation("params-range", ranges_lines.get(key, 0), f"{key!r}: {problem}")
        elif not _within(value, ranges[key]):
            message = f"{key}={value!r} lies outside its range {ranges[key]!r}"
            yield Violation("params-range", line, message)
    for key in ranges:
        if key not in params:
            message = f"range for {key!r}, which is not in {PARAMS_NAME}"
            yield Violation("params-range", ranges_lines.get(key, 0), message)


def _is_number(value: object) -> bool:
    """Whether a value is a finite int or float (not a bool)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _range_problem(rng: object) -> str | None:
    """Why a range is not ``(low, high)`` of numbers or a non-empty list, or None."""
    if isinstance(rng, tuple):
        if len(rng) != 2 or not all(_is_number(end) for end in rng):
            return "a numeric range must be (low, high) with two numbers"
        if rng[0] > rng[1]:
            return "a numeric range must have low <= high"
        return None
    if isinstance(rng, list):
        return None if rng else "a list of choices must not be empty"
    return "a range must be (low, high) or a list of choices"


def _within(value: object, rng: object) -> bool:
    """Whether a value lies in a well-formed range."""
    if isinstance(rng, list):
        return any(
            choice == value and isinstance(choice, bool) == isinstance(value, bool)
            for choice in rng
        )
    assert isinstance(rng, tuple)
    low, high = rng
    if not _is_number(value):
        return False
    if isinstance(low, int) and isinstance(high, int) and not isinstance(value, int):
        return False
    return low <= value <= high
