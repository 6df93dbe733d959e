"""The "what a codec may use" part of the contract, written from the validator's own tables.

``prompts/contract.md.j2`` holds the prose; this module renders every list in it (allowed
imports, refused names and attributes, the signature, PARAMS and size rules) from the
tables :mod:`aicodec.validation.allowed` and :mod:`aicodec.candidates.contract` check with,
so the prompt cannot promise what the checks refuse. Each bullet starts with a fixed label
(``LABELS``) that tests look up. The library never prints.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from aicodec.candidates.contract import (
    ALLOWED_IMPORTS,
    DEFAULT_QUALITIES,
    MAX_SOURCE_BYTES,
    PARAM_RANGES_NAME,
    PARAMS_NAME,
    QUALITY_MAX,
    QUALITY_MIN,
    REQUIRED_FUNCTIONS,
)
from aicodec.validation.allowed import (
    ALLOWED_DUNDER_NAMES,
    ATTRIBUTE_ONLY_PACKAGES,
    DENIED_ATTRIBUTE_NAMES,
    DENIED_BECAUSE,
    DENIED_MODULE_ATTRIBUTES,
    DYNAMIC_CODE_NAMES,
    FORBIDDEN_NAMES,
    FUTURE_MODULE,
    HASATTR,
    INTERNAL_ATTRIBUTES,
    MUTATING_METHODS,
    SAFE_DUNDER_ATTRIBUTES,
    SAFE_STRING_DUNDERS,
    SYSTEM_MODULE_NAMES,
    SYSTEM_MODULE_NAMES_ON_MODULES,
)

# The lead of each bullet, by what it lists.
LABELS: dict[str, str] = {
    "imports": "Imports:",
    "dynamic": "Code built from strings, refused:",
    "names": "Names refused anywhere:",
    "hasattr": "hasattr:",
    "dunder_names": "Dunder names:",
    "dunder_attributes": "Dunder attributes allowed:",
    "internal": "Interpreter internals refused as attributes:",
    "attributes": "Attributes refused on any object:",
    "system_modules": "System modules refused as attributes of any object:",
    "on_modules": "Refused as attributes of a module:",
    "module_parts": "Refused parts of allowed modules:",
    "because": "Refused for a reason of their own:",
    "module_values": "Modules as values:",
    "reached_modules": "Modules reached through attributes:",
}

# Allowed packages that need a word on what they are for.
PACKAGE_NOTES: dict[str, str] = {
    "constriction": "entropy coding, below",
    "cv2": "OpenCV",
    "torch": "where installed",
}


def _codes(names: Iterable[str]) -> str:
    """Names as a sorted, comma-separated list of inline code."""
    return ", ".join(f"`{name}`" for name in sorted(names))


def _bullet(key: str, text: str) -> str:
    """One bullet: its fixed label, then the text."""
    return f"- {LABELS[key]} {text}"


def _imports() -> str:
    """The allowed imports: third-party packages (with a note) first, then standard modules."""
    third = sorted(name for name in ALLOWED_IMPORTS if name not in sys.stdlib_module_names)
    standard = sorted(name for name in ALLOWED_IMPORTS if name in sys.stdlib_module_names)
    shown = [
        f"`{name}` ({PACKAGE_NOTES[name]})" if name in PACKAGE_NOTES else f"`{name}`"
        for name in third
    ]
    return (
        f"{', '.join(shown)}, and these standard modules: {_codes(standard)}. Their submodules "
        "too (`import numpy.fft`, `from collections import deque`); nothing else, no relative "
        f"imports and no `import *`. `from {FUTURE_MODULE} import annotations` is fine."
    )


def _attribute_only() -> list[str]:
    """How to reach packages whose submodules exist only as attributes."""
    return [
        f"- `{package}`: write `import {package}` and full paths "
        f"(`{package}.stream.model.Categorical`); `from {package}.stream.model import ...` is "
        "refused (those submodules are attributes of a native module, not importable)."
        for package in sorted(ATTRIBUTE_ONLY_PACKAGES)
    ]


def _name_rules() -> list[str]:
    """Bullets on imports, code built from strings, refused names and dunders."""
    return [
        _bullet("imports", _imports()),
        *_attribute_only(),
        _bullet("dynamic", _codes(DYNAMIC_CODE_NAMES) + "."),
        _bullet(
            "names",
            f"{_codes(FORBIDDEN_NAMES)}, in any context, even with a literal name "
            '(write `obj.name`, not `getattr(obj, "name")`).',
        ),
        _bullet("hasattr", f'only as `{HASATTR}(obj, "literal_name")`.'),
        _bullet(
            "dunder_names",
            f"only {_codes(ALLOWED_DUNDER_NAMES)} may be read as plain names; a string "
            f"(other than a docstring) may name no dunder but {_codes(SAFE_STRING_DUNDERS)}.",
        ),
        _bullet("dunder_attributes", f"{_codes(SAFE_DUNDER_ATTRIBUTES)}; no other `x.__y__`."),
        _bullet("internal", _codes(INTERNAL_ATTRIBUTES) + "."),
    ]


def _attribute_rules() -> list[str]:
    """Bullets on attributes refused on any object and refused parts of allowed modules."""
    plain_denied = DENIED_MODULE_ATTRIBUTES - frozenset(DENIED_BECAUSE)
    return [
        _bullet(
            "attributes",
            f"{_codes(DENIED_ATTRIBUTE_NAMES)} (files, native memory, computed attribute "
            "access), whatever the object.",
        ),
        _bullet("system_modules", _codes(SYSTEM_MODULE_NAMES) + "."),
        _bullet(
            "on_modules",
            f"private names (`module._name`) and {_codes(SYSTEM_MODULE_NAMES_ON_MODULES)}.",
        ),
        _bullet(
            "module_parts",
            f"{_codes(plain_denied)}: each name and everything under it, however it is "
            "reached (import, alias, attribute chain).",
        ),
        f"- {LABELS['because']}",
        *(f"  - `{name}`: {DENIED_BECAUSE[name]}." for name in sorted(DENIED_BECAUSE)),
    ]


def _module_rules() -> list[str]:
    """Bullets on modules used as values and modules reached through attributes."""
    return [
        _bullet(
            "module_values",
            "a module (a name an `import` binds, or an attribute that is a module, such as "
            "`numpy.fft`) may only be used as `module.name`, bound to a plain name or a "
            "default argument (then checked like the import itself), or tested (`if m:`, "
            f'`m is None`, `{HASATTR}(m, "name")`). Anywhere else it is refused: in a '
            "tuple, list, set or dict, passed to or returned from a function or lambda, "
            "iterated over, in a `with`, stored in an attribute, an item or a class body, or "
            "given an attribute (`m.x = ...`).",
        ),
        _bullet(
            "reached_modules",
            "every attribute chain from an allowed module is looked up in the installed "
            "modules. Each module it passes through must itself be allowed (by its own name, "
            "under the rules above), so a module's own imports are refused "
            "(`numpy.ma.core.textwrap` is `textwrap`), and no chain may lead to a builtin "
            "refused above.",
        ),
    ]


def _code_rules() -> list[str]:
    """Bullets on str.format, module-level code, encode/decode, PARAMS and the source size."""
    required = ", ".join(
        f"`{name}({', '.join(params)})`" for name, params in REQUIRED_FUNCTIONS.items()
    )
    return [
        "- `str.format` only on a string literal whose fields use no `.` and no `[ ]`.",
        "- At module level (and in class bodies): definitions and constants only; no bare "
        "expressions (calls) and no `while` loops, since the module runs when it is loaded.",
        f"- {required}: one plain top-level `def` each (not async, not decorated, not a "
        "lambda, class or import), defined once, with these parameters first; any further "
        "parameter needs a default.",
        f"- `{PARAMS_NAME}` and `{PARAM_RANGES_NAME}` (optional): assigned once at module "
        "level to plain literals (numbers, strings, booleans, None, tuples, lists, dicts with "
        f"string keys) and never changed (no item assignment, `del` or "
        f"{_codes('.' + name + '()' for name in MUTATING_METHODS if not name.startswith('_'))}"
        f"). Every parameter needs a range holding its value, and every range a parameter.",
        f"- Source size: at most {MAX_SOURCE_BYTES:,} bytes.",
    ]


def may_use_section() -> str:
    """The rules of the static checks as markdown bullets, every list from the validator."""
    return "\n".join([*_name_rules(), *_attribute_rules(), *_module_rules(), *_code_rules()])


def contract_values() -> dict[str, object]:
    """The values ``contract.md.j2`` is rendered with."""
    return {
        "may_use": may_use_section(),
        "quality_min": QUALITY_MIN,
        "quality_max": QUALITY_MAX,
        "default_qualities": ", ".join(str(quality) for quality in DEFAULT_QUALITIES),
    }
