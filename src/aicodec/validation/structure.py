"""The module's shape: no code run at import, and ``encode``/``decode`` as plain defs with
the contract's parameters; the module-scope bindings both these and the PARAMS checks read."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

from aicodec.candidates.contract import REQUIRED_FUNCTIONS
from aicodec.validation.names import import_bindings
from aicodec.validation.report import Violation


@dataclass(frozen=True)
class Binding:
    """A name bound in the module's own scope: where, how (``kind``) and by which node."""

    name: str
    line: int
    kind: str
    node: ast.AST


# ---------------------------------------------------------------------- module-level code


def _child_bodies(stmt: ast.stmt) -> Iterator[list[ast.stmt]]:
    """The statement lists nested in a compound statement (not in defs)."""
    for field_name in ("body", "orelse", "finalbody"):
        body = getattr(stmt, field_name, None)
        if isinstance(body, list):
            yield body
    for handler in getattr(stmt, "handlers", None) or []:
        yield handler.body
    for case in getattr(stmt, "cases", None) or []:
        yield case.body


def top_level_violations(body: list[ast.stmt], direct: bool) -> Iterator[Violation]:
    """Code that runs at import: bare expressions and while loops at module or class level."""
    for stmt in body:
        if isinstance(stmt, ast.While):
            yield Violation("top-level-code", stmt.lineno, "a while loop at module level")
        elif direct and isinstance(stmt, ast.Expr) and not isinstance(stmt.value, ast.Constant):
            message = "a bare expression at module level runs at import"
            yield Violation("top-level-code", stmt.lineno, message)
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(stmt, ast.ClassDef):
            yield from top_level_violations(stmt.body, direct=True)
            continue
        for child in _child_bodies(stmt):
            yield from top_level_violations(child, direct=False)


# ---------------------------------------------------------------- module-scope bindings


def _module_scope_nodes(tree: ast.Module) -> Iterator[tuple[ast.AST, bool]]:
    """Nodes evaluated in the module's own scope, with whether each is a direct statement."""
    direct = {id(stmt) for stmt in tree.body}
    stack: list[ast.AST] = list(reversed(tree.body))
    while stack:
        node = stack.pop()
        yield node, id(node) in direct
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def module_bindings(tree: ast.Module) -> Iterator[Binding]:
    """Every binding of a name in the module's scope (defs, assignments, imports, globals)."""
    for node, direct in _module_scope_nodes(tree):
        if isinstance(node, ast.FunctionDef):
            kind = "def" if direct else "nested-def"
            yield Binding(node.name, node.lineno, kind, node)
        elif isinstance(node, ast.AsyncFunctionDef):
            yield Binding(node.name, node.lineno, "async-def", node)
        elif isinstance(node, ast.ClassDef):
            yield Binding(node.name, node.lineno, "class", node)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            yield Binding(node.id, node.lineno, "assignment", node)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for name, _dotted in import_bindings(node):
                yield Binding(name, node.lineno, "import", node)
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            for name in node.names:
                yield Binding(name, node.lineno, "global", node)


# ---------------------------------------------------------------------- encode / decode

_BINDING_PROBLEMS = {
    "def": "is defined more than once",
    "nested-def": "must be defined at the top level of the module, not inside a block",
    "async-def": "must be a plain def, not async def",
    "class": "must be a def, not a class",
    "assignment": "must be a module-level def, not assigned (lambda or alias)",
    "import": "must be a def, not imported",
    "global": "must not be rebound from inside a function",
}


def function_violations(tree: ast.Module, bindings: list[Binding]) -> Iterator[Violation]:
    """encode and decode: one plain top-level def each, with the contract's parameters."""
    for name, expected in REQUIRED_FUNCTIONS.items():
        found = [binding for binding in bindings if binding.name == name]
        if not found:
            wanted = f"def {name}({', '.join(expected)})"
            yield Violation("missing-function", 0, f"{wanted} is not defined at module level")
            continue
        the_def = next((b for b in found if b.kind == "def"), None)
        for binding in found:
            if binding is not the_def:
                message = f"{name} {_BINDING_PROBLEMS[binding.kind]}"
                yield Violation("signature", binding.line, message)
        if the_def is not None and isinstance(the_def.node, ast.FunctionDef):
            yield from _signature_violations(the_def.node, expected)


def _signature_violations(node: ast.FunctionDef, expected: tuple[str, ...]) -> Iterator[Violation]:
    """The parameters of encode or decode against the contract."""
    line, name, args = node.lineno, node.name, node.args
    if node.decorator_list:
        yield Violation("signature", line, f"{name} must not be decorated")
    positional = [*args.posonlyargs, *args.args]
    names = [arg.arg for arg in positional]
    if names[: len(expected)] != list(expected):
        message = f"{name} must take ({', '.join(expected)}) first, not ({', '.join(names)})"
        yield Violation("signature", line, message)
    elif len(positional) - len(args.defaults) > len(expected):
        yield Violation("signature", line, f"extra parameters of {name} must have defaults")
    if any(default is None for default in args.kw_defaults):
        yield Violation("signature", line, f"keyword-only parameters of {name} need defaults")
