"""Names that may stand for a module: import aliases, their rebindings, dotted meanings."""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator

# How often rebindings are followed, and how many dots a meaning may have.
_MAX_ALIAS_PASSES = 4
_MAX_ALIAS_DEPTH = 8

# Nodes that open a scope of their own (a class body's bindings are not followed into it).
_SCOPES = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Lambda,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)


def is_dunder(name: str) -> bool:
    """Whether a name has the ``__x__`` form."""
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def module_aliases(tree: ast.Module, rebindings: list[tuple[str, ast.expr]]) -> dict[str, set[str]]:
    """Every name that may stand for a module or module attribute -> its dotted meanings."""
    aliases: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        for name, dotted in import_bindings(node):
            aliases.setdefault(name, set()).add(dotted)
    for _ in range(_MAX_ALIAS_PASSES):
        changed = False
        for name, value in rebindings:
            for dotted in dotted_meanings(value, aliases):
                if dotted.count(".") < _MAX_ALIAS_DEPTH and dotted not in aliases.get(name, ()):
                    aliases.setdefault(name, set()).add(dotted)
                    changed = True
        if not changed:
            break
    return aliases


def import_bindings(node: ast.AST) -> Iterator[tuple[str, str]]:
    """(local name, dotted name) pairs bound by an absolute import statement."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                yield alias.asname, alias.name
            else:
                top = alias.name.split(".")[0]
                yield top, top
    elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
        for alias in node.names:
            if alias.name != "*":
                yield alias.asname or alias.name, f"{node.module}.{alias.name}"


def walk_with_class_scope(tree: ast.Module) -> Iterator[tuple[ast.AST, bool]]:
    """Every node (breadth first, as ast.walk) with whether it is evaluated in a class body's
    own scope (its bases and decorators count too; its methods' bodies do not)."""
    queue: deque[tuple[ast.AST, bool]] = deque([(tree, False)])
    while queue:
        node, in_class = queue.popleft()
        yield node, in_class
        inner = isinstance(node, ast.ClassDef) or (in_class and not isinstance(node, _SCOPES))
        queue.extend((child, inner) for child in ast.iter_child_nodes(node))


def alias_rebindings(tree: ast.Module) -> Iterator[tuple[str, ast.expr]]:
    """(name, value) pairs of plain bindings that may copy a module alias to a new name.

    A binding in a class body is not one of them: it makes a class attribute, which the
    aliases (plain names) cannot follow, so a module bound there is refused instead.
    """
    for node, in_class in walk_with_class_scope(tree):
        if in_class and isinstance(node, ast.Assign | ast.AnnAssign | ast.NamedExpr):
            continue
        if isinstance(node, ast.Assign):
            for target in node.targets:
                yield from _paired_targets(target, node.value)
        elif isinstance(node, ast.AnnAssign | ast.NamedExpr) and node.value is not None:
            yield from _paired_targets(node.target, node.value)
        elif isinstance(node, ast.arguments):
            positional = [*node.posonlyargs, *node.args]
            pairs = zip(
                positional[len(positional) - len(node.defaults) :], node.defaults, strict=True
            )
            for arg, default in [*pairs, *zip(node.kwonlyargs, node.kw_defaults, strict=True)]:
                if default is not None:
                    yield arg.arg, default


def _paired_targets(target: ast.expr, value: ast.expr) -> Iterator[tuple[str, ast.expr]]:
    """Match an assignment target with its value, element by element for tuples."""
    if isinstance(target, ast.Name):
        yield target.id, value
    elif isinstance(target, ast.Tuple | ast.List) and isinstance(value, ast.Tuple | ast.List):
        if len(target.elts) == len(value.elts):
            for sub_target, sub_value in zip(target.elts, value.elts, strict=True):
                yield from _paired_targets(sub_target, sub_value)


def dotted_meanings(node: ast.expr, aliases: dict[str, set[str]]) -> set[str]:
    """Dotted names an expression ``a.b.c`` may stand for, through the import aliases
    (``(m := a).b`` stands for what ``a.b`` does)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute | ast.NamedExpr):
        if isinstance(node, ast.NamedExpr):
            node = node.value
            continue
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return set()
    suffix = "".join(f".{part}" for part in reversed(parts))
    return {base + suffix for base in aliases[node.id]}
