"""Validate a source or a file: parse it once, run every check, gather one report."""

from __future__ import annotations

import ast
import copy
import hashlib
from functools import lru_cache
from pathlib import Path

from aicodec.candidates import code_hash
from aicodec.candidates.contract import MAX_SOURCE_BYTES
from aicodec.errors import ValidationError
from aicodec.validation.access import attribute_violations, name_violations, string_violations
from aicodec.validation.imports import import_violations
from aicodec.validation.module_values import module_value_violations
from aicodec.validation.names import alias_rebindings, module_aliases
from aicodec.validation.params import params_check
from aicodec.validation.report import ValidationReport, Violation
from aicodec.validation.structure import function_violations, module_bindings, top_level_violations

REPORTS_KEPT = 64  # sources whose reports are kept: a source is checked once per process


def validate_source(source: str) -> ValidationReport:
    """Check a candidate's source text against the contract and the sandbox rules.

    The checks depend on the text alone, so a source checked before in this process (an
    evolve iteration's candidate: when generated, scored, run on the holdout clips) gets
    its report again without being checked again.
    """
    return copy.deepcopy(_validated(source))


@lru_cache(maxsize=REPORTS_KEPT)
def _validated(source: str) -> ValidationReport:
    """The report of one source text (kept for the sources checked last)."""
    return _validate(source, source.encode("utf-8", "surrogatepass"))


def validate_file(path: Path) -> ValidationReport:
    """Check a candidate file; ValidationError when it is missing, unreadable or not UTF-8."""
    path = Path(path)
    try:
        if not path.is_file():
            raise ValidationError(
                f"{path}: no such file" if not path.exists() else f"{path}: not a file"
            )
        size = path.stat().st_size
        if size > MAX_SOURCE_BYTES:
            return _size_report(size, _file_hash(path))
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(data) > MAX_SOURCE_BYTES:
        return _size_report(len(data), hashlib.sha256(data).hexdigest())
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from None
    return validate_source(source)


def check_source(source: str) -> None:
    """Raise ValidationError with the first violation (one line) when the source is invalid."""
    report = validate_source(source)
    if not report.valid:
        raise ValidationError(str(report.violations[0]))


# ------------------------------------------------------------------------------ driver


def _validate(source: str, data: bytes) -> ValidationReport:
    """Run every check on a source whose UTF-8 bytes are ``data``."""
    digest = code_hash(source)
    if len(data) > MAX_SOURCE_BYTES:
        return _size_report(len(data), digest)
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return _failed_report(Violation("syntax", exc.lineno or 0, exc.msg or str(exc)), digest)
    except (ValueError, RecursionError, MemoryError) as exc:
        return _failed_report(Violation("syntax", 0, f"source cannot be parsed ({exc})"), digest)
    try:
        return _check_tree(tree, digest)
    except RecursionError:
        return _failed_report(Violation("syntax", 0, "source nests too deeply to check"), digest)


def _check_tree(tree: ast.Module, digest: str) -> ValidationReport:
    """Apply all rules to a parsed module."""
    rebindings = list(alias_rebindings(tree))
    aliases = module_aliases(tree, rebindings)
    bindings = list(module_bindings(tree))
    violations: list[Violation] = []
    violations += import_violations(tree)
    violations += name_violations(tree, aliases)
    violations += attribute_violations(tree, aliases)
    violations += module_value_violations(tree, aliases, rebindings)
    violations += string_violations(tree)
    violations += top_level_violations(tree.body, direct=True)
    violations += function_violations(tree, bindings)
    params, ranges, param_violations = params_check(tree, bindings)
    violations += param_violations
    unique = sorted(set(violations), key=lambda v: (v.line, v.rule, v.message))
    functions = [s.name for s in tree.body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)]
    return ValidationReport(not unique, unique, digest, functions, params, ranges)


def _failed_report(violation: Violation, digest: str) -> ValidationReport:
    """A report for a source that could not be checked beyond one violation."""
    return ValidationReport(False, [violation], digest, [], None, None)


def _size_report(size: int, digest: str) -> ValidationReport:
    """A report for a source over the size limit (it is not parsed)."""
    message = f"source is {size} bytes, over the {MAX_SOURCE_BYTES}-byte limit"
    return _failed_report(Violation("size", 0, message), digest)


def _file_hash(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
