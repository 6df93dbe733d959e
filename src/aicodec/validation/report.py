"""What the static checks return: the rule ids, one broken rule, the report of a source."""

from __future__ import annotations

from dataclasses import asdict, dataclass

RULES: tuple[str, ...] = (
    "syntax",
    "size",
    "missing-function",
    "signature",
    "import",
    "forbidden-name",
    "forbidden-attribute",
    "module-value",
    "dunder",
    "dynamic-code",
    "params-literal",
    "params-range",
    "top-level-code",
)


@dataclass(frozen=True)
class Violation:
    """One broken rule: its id, the 1-based source line (0: the whole file) and why."""

    rule: str
    line: int
    message: str

    def __str__(self) -> str:
        """The violation as one line: ``line N: [rule] message``."""
        return f"line {self.line}: [{self.rule}] {self.message}"


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of the static checks of one source, with what they learned about it."""

    valid: bool
    violations: list[Violation]
    code_hash: str
    functions: list[str]
    params: dict[str, object] | None
    param_ranges: dict[str, object] | None

    def to_dict(self) -> dict[str, object]:
        """Return the report as plain values (violations as dicts of rule, line, message)."""
        return asdict(self)
