"""The import statements: allowed modules only, absolute, no ``*``, nothing refused."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from aicodec.candidates.contract import ALLOWED_IMPORTS
from aicodec.validation.allowed import ATTRIBUTE_ONLY_PACKAGES, FUTURE_MODULE
from aicodec.validation.reach import dotted_problem, reach_problem
from aicodec.validation.report import Violation


def import_violations(tree: ast.Module) -> Iterator[Violation]:
    """Imports outside the allowed modules, relative or star imports, denied names."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _import_name_violations(alias.name, node.lineno)
                yield from _attribute_only_violations(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            yield from _import_from_violations(node)


def _import_name_violations(dotted: str, line: int) -> Iterator[Violation]:
    """Problems of importing (from) one dotted module name."""
    top = dotted.split(".")[0]
    if top not in ALLOWED_IMPORTS:
        yield Violation("import", line, f"module {top} is not an allowed import")
        return
    problem = reach_problem(dotted, importing=True)
    if problem:
        yield Violation(problem[0], line, problem[1])


def _attribute_only_violations(module: str, line: int) -> Iterator[Violation]:
    """Importing a submodule of a package whose submodules are only attributes."""
    top = module.split(".")[0]
    if top in ATTRIBUTE_ONLY_PACKAGES and "." in module and not dotted_problem(module):
        message = f"{module} is not a module: import {top} and use {module}.NAME"
        yield Violation("import", line, message)


def _import_from_violations(node: ast.ImportFrom) -> Iterator[Violation]:
    """Problems of one ``from x import y`` statement."""
    if node.level or not node.module:
        yield Violation("import", node.lineno, "relative imports are not allowed")
        return
    if node.module == FUTURE_MODULE:
        return  # a compiler directive (the compiler itself refuses unknown features)
    if node.module.split(".")[0] not in ALLOWED_IMPORTS:
        yield from _import_name_violations(node.module, node.lineno)
        return
    yield from _attribute_only_violations(node.module, node.lineno)
    for alias in node.names:
        if alias.name == "*":
            yield Violation("import", node.lineno, f"from {node.module} import * is not allowed")
        else:
            yield from _import_name_violations(f"{node.module}.{alias.name}", node.lineno)
