"""Modules used as values the aliases cannot follow (in containers, calls, returns, loops)."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from aicodec.validation.access import permitted_hasattr
from aicodec.validation.names import dotted_meanings, walk_with_class_scope
from aicodec.validation.reach import is_module
from aicodec.validation.report import Violation

# Where a module was found used as a value, in words (by the type of the enclosing node).
_PLACES: dict[type, str] = {
    ast.Tuple: "put in a tuple",
    ast.List: "put in a list",
    ast.Set: "put in a set",
    ast.Dict: "put in a dict",
    ast.Call: "passed to a call",
    ast.keyword: "passed to a call",
    ast.Return: "returned",
    ast.Yield: "yielded",
    ast.YieldFrom: "yielded",
    ast.Lambda: "returned by a lambda",
    ast.For: "iterated over",
    ast.comprehension: "iterated over",
    ast.withitem: "used in a with statement",
    ast.Subscript: "used in a subscript",
    ast.Starred: "unpacked",
    ast.Attribute: "given an attribute by assignment or del",
    ast.Assign: "stored in an attribute, an item or an unpacking",
    ast.AnnAssign: "stored in an attribute or an item",
    ast.AugAssign: "used in an augmented assignment",
    ast.BoolOp: "combined with and/or",
    ast.IfExp: "chosen by a conditional expression",
    ast.match_case: "matched",
    ast.Match: "matched",
    ast.FormattedValue: "formatted",
}


def _in_test(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    """Whether a value is only tested for truth (``if m``, ``not m``, ``m and x`` in a test)."""
    parent = parents.get(id(node))
    if isinstance(parent, ast.If | ast.While | ast.IfExp | ast.Assert):
        return parent.test is node
    if isinstance(parent, ast.comprehension):
        return any(test is node for test in parent.ifs)
    if isinstance(parent, ast.UnaryOp):
        return isinstance(parent.op, ast.Not)
    if isinstance(parent, ast.BoolOp):
        return _in_test(parent, parents)
    return False


def _harmless_use(node: ast.expr, parents: dict[int, ast.AST], permitted: set[int]) -> bool:
    """Whether a module value is used only as ``m.name``, tested, compared with ``is`` or
    asked ``hasattr(m, "name")``."""
    parent = parents.get(id(node))
    if isinstance(parent, ast.Attribute):
        return parent.value is node and isinstance(parent.ctx, ast.Load)
    if isinstance(parent, ast.Compare):
        return all(isinstance(op, ast.Is | ast.IsNot) for op in parent.ops)
    if isinstance(parent, ast.Call) and id(parent.func) in permitted:
        return parent.args[0] is node
    return _in_test(node, parents)


def module_value_violations(
    tree: ast.Module, aliases: dict[str, set[str]], rebindings: list[tuple[str, ast.expr]]
) -> Iterator[Violation]:
    """Modules (names bound to one, attribute chains ending at one, ``m := module``) used as
    values the aliases cannot follow: in containers, calls, returns, loops, with, classes."""
    if not aliases:
        return
    tracked = {id(value) for _name, value in rebindings}
    imported: set[str] = set()  # what ``import a.b.c`` makes a module: a, a.b and a.b.c
    uses: list[tuple[ast.expr, set[str]]] = []
    parents: dict[int, ast.AST] = {}
    class_scope: set[int] = set()
    for node, in_class in walk_with_class_scope(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
        if in_class:
            class_scope.add(id(node))
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                imported.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))
        elif isinstance(node, ast.Name | ast.Attribute | ast.NamedExpr) and id(node) not in tracked:
            if not isinstance(node, ast.Name | ast.Attribute) or isinstance(node.ctx, ast.Load):
                meanings = dotted_meanings(node, aliases)
                if meanings:
                    uses.append((node, meanings))
    permitted = permitted_hasattr(tree)
    for node, meanings in uses:
        modules = [d for d in sorted(meanings) if d in imported or is_module(d)]
        if not modules or _harmless_use(node, parents, permitted):
            continue
        parent = parents.get(id(node))
        if isinstance(parent, ast.Assign | ast.AnnAssign | ast.NamedExpr) and (
            id(parent) in class_scope
        ):
            place = "bound in a class body (a class attribute)"
        else:
            place = _PLACES.get(type(parent), "used as a value")
        text = ast.unparse(node)
        message = (
            f"{text} is the module {modules[0]}; a module may only be used as {text}.name, "
            f"bound to a plain name or tested, not {place}"
        )
        yield Violation("module-value", node.lineno, message)
