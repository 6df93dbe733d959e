"""Static checks of a candidate's source before anything of it runs.

The checks read the source with :mod:`ast` only; nothing is imported or executed. They
enforce the codec contract (``encode``/``decode`` signatures, ``PARAMS``/``PARAM_RANGES``
literals) and refuse the obvious ways out of the sandbox: imports outside the allowed
list, dynamic code, forbidden builtins, dunder and frame traversal, and attributes of
allowed modules that reach files, processes, native memory or other modules. Names bound
by imports (and plain rebindings of them) are followed, so ``import numpy as n; n.load``
and ``from numpy import save as s`` are caught. The run-time guard of the sandbox stays
the last line of defence; these checks reject early, with a rule id and a line.

Modules are values a codec may not pass around: a module (a name bound to one, or an
attribute chain that ends at one, such as ``np.fft``) may only be the base of an attribute
(``np.fft.rfft``), bound to a plain name or default argument (which is then followed like an
import), or tested (``if m``, ``m is None``, ``hasattr(m, "x")``). Anywhere else (in a
tuple, list or dict, as a call argument, returned, iterated, a ``with`` item, stored in an
attribute, item or class body) it is refused under ``module-value``, since the validator
could no longer follow it. Attribute chains and from-imports are also resolved on the real
installed modules (only those whose top is an allowed import, and only what the candidate's
own imports and attribute reads would reach): every module passed through must itself be an
allowed module (``enum.bltns`` is ``builtins``; ``numpy.ma.core.textwrap`` is ``textwrap``),
and no refused builtin may be reached.

Rule ids: ``syntax``, ``size``, ``missing-function``, ``signature``, ``import``,
``forbidden-name``, ``forbidden-attribute``, ``module-value``, ``dunder``, ``dynamic-code``,
``params-literal``, ``params-range``, ``top-level-code``. Line 0 means the file as a whole.
The library never prints.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import importlib
import math
import re
import string
import sys
import threading
import types
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from aicodec.candidates import code_hash
from aicodec.candidates.contract import (
    ALLOWED_IMPORTS,
    MAX_SOURCE_BYTES,
    PARAM_RANGES_NAME,
    PARAMS_NAME,
    REQUIRED_FUNCTIONS,
)
from aicodec.errors import ValidationError

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

# Builtins that run code built from strings.
DYNAMIC_CODE_NAMES: frozenset[str] = frozenset({"exec", "eval", "compile", "__import__"})

# Builtins and module globals a codec may not name at all (any context).
FORBIDDEN_NAMES: frozenset[str] = frozenset(
    {
        "open",
        "input",
        "breakpoint",
        "globals",
        "locals",
        "vars",
        "getattr",
        "setattr",
        "delattr",
        "__builtins__",
        "__loader__",
        "__spec__",
        "exit",
        "quit",
        "help",
        "copyright",
        "credits",
        "license",
    }
)

# hasattr is allowed only as hasattr(obj, "literal_name").
HASATTR = "hasattr"

# Dunder names a codec may read as plain names.
ALLOWED_DUNDER_NAMES: frozenset[str] = frozenset({"__name__", "__doc__", "__debug__"})

# Dunder attributes a codec may use (x.__init__ in super().__init__(), protocol methods).
SAFE_DUNDER_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "__init__",
        "__len__",
        "__getitem__",
        "__setitem__",
        "__iter__",
        "__next__",
        "__enter__",
        "__exit__",
        "__eq__",
        "__hash__",
        "__repr__",
        "__str__",
    }
)

# Dunders a string constant may mention (e.g. ``if __name__ == "__main__"``).
SAFE_STRING_DUNDERS: frozenset[str] = SAFE_DUNDER_ATTRIBUTES | ALLOWED_DUNDER_NAMES | {"__main__"}

# Frame, code, generator and traceback internals (reported under the ``dunder`` rule).
INTERNAL_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_back",
        "f_code",
        "f_trace",
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "cr_frame",
        "cr_code",
        "cr_await",
        "ag_frame",
        "ag_code",
        "tb_frame",
        "tb_next",
        "co_code",
        "co_consts",
        "co_names",
        "func_globals",
        "mro",
    }
)

# Attribute names refused on any object: file I/O, native memory, computed attribute access.
DENIED_ATTRIBUTE_NAMES: frozenset[str] = frozenset(
    {
        "tofile",
        "fromfile",
        "from_file",
        "fromregex",
        "ctypes",
        "ctypeslib",
        "dump",
        "load",
        "loadtxt",
        "save",
        "savez",
        "savez_compressed",
        "savetxt",
        "genfromtxt",
        "memmap",
        "imread",
        "imreadmulti",
        "imwrite",
        "imwritemulti",
        "VideoCapture",
        "VideoWriter",
        "FileStorage",
        "attrgetter",
        "methodcaller",
        "get_type_hints",
        "format_map",
        "open",
    }
)

# System modules that libraries re-export as attributes (cv2.os, cv2.sys, ...): refused on
# any object.
SYSTEM_MODULE_NAMES: frozenset[str] = frozenset(
    {
        "os",
        "sys",
        "subprocess",
        "importlib",
        "builtins",
        "inspect",
        "pickle",
        "marshal",
        "shutil",
        "pathlib",
        "socket",
        "tempfile",
        "multiprocessing",
        "threading",
        "_thread",
        "gc",
        "codeop",
        "runpy",
        "pkgutil",
        "sysconfig",
        "mmap",
        "posix",
        "linecache",
        "tokenize",
        "webbrowser",
        "sqlite3",
        "asyncio",
        "faulthandler",
        "zipimport",
        "pty",
        "fcntl",
        "_io",
        "_ctypes",
        "_posixsubprocess",
        "pydoc",
        "pdb",
        "urllib",
    }
)

# Module names too common as plain attribute names to refuse everywhere: refused only as
# attributes of a module reached through an import (numpy.io, torch.types, ...).
SYSTEM_MODULE_NAMES_ON_MODULES: frozenset[str] = frozenset(
    {
        "io",
        "code",
        "types",
        "platform",
        "site",
        "resource",
        "codecs",
        "logging",
        "glob",
        "zipfile",
        "tarfile",
        "gzip",
        "shelve",
        "http",
        "concurrent",
        "traceback",
        "ssl",
        "signal",
    }
)

# Dotted names of allowed modules refused for a reason of their own -> that reason.
# constriction's coders and models take numpy arrays and numbers and reach no files,
# processes or modules. Refused: a second spelling of the package (every entry here would
# need a twin), and the two models that call Python back from native code per symbol:
# slow, and an exception raised in a callback makes pyo3 import io to format it, which the
# run-time guard refuses, so an honest bug would end as a refusal. Categorical (a
# probability table per symbol) covers any discrete model.
DENIED_BECAUSE: dict[str, str] = {
    "constriction.constriction": (
        "is the native module behind the package; use constriction.stream, constriction.symbol"
    ),
    "constriction.stream.model.CustomModel": (
        "calls Python back per symbol from native code (slow, and an error in it cannot be "
        "reported in the sandbox); use Categorical with a probability table per symbol"
    ),
    "constriction.stream.model.ScipyModel": (
        "wraps a scipy distribution and scipy is not an allowed import; "
        "use Categorical or a Quantized model"
    ),
}

# Dotted names of allowed modules that reach files, processes, the network, native code,
# other modules or computed attribute access. A name is refused when it or any prefix of
# it is listed here, however it is reached (import, alias, attribute chain).
DENIED_MODULE_ATTRIBUTES: frozenset[str] = frozenset(
    {
        # numpy
        "numpy.load",
        "numpy.save",
        "numpy.savez",
        "numpy.savez_compressed",
        "numpy.fromfile",
        "numpy.fromregex",
        "numpy.loadtxt",
        "numpy.savetxt",
        "numpy.genfromtxt",
        "numpy.memmap",
        "numpy.lib",
        "numpy.ctypeslib",
        "numpy.distutils",
        "numpy.f2py",
        "numpy.testing",
        "numpy.DataSource",
        "numpy.ctypes",
        "numpy.core",
        "numpy.show_config",
        "numpy.show_runtime",
        "numpy.info",
        "numpy.source",
        "numpy.lookfor",
        "numpy.ma.load",
        "numpy.ma.loads",
        "numpy.ma.dump",
        "numpy.ma.dumps",
        # OpenCV
        "cv2.imread",
        "cv2.imreadmulti",
        "cv2.imcount",
        "cv2.imwrite",
        "cv2.imwritemulti",
        "cv2.haveImageReader",
        "cv2.haveImageWriter",
        "cv2.VideoCapture",
        "cv2.VideoWriter",
        "cv2.videoio_registry",
        "cv2.FileStorage",
        "cv2.FileNode",
        "cv2.dnn",
        "cv2.utils",
        "cv2.samples",
        "cv2.ml",
        "cv2.gapi",
        "cv2.CascadeClassifier",
        "cv2.HOGDescriptor",
        "cv2.FaceDetectorYN",
        "cv2.FaceRecognizerSF",
        "cv2.bootstrap",
        "cv2.imshow",
        "cv2.namedWindow",
        "cv2.waitKey",
        "cv2.destroyAllWindows",
        "cv2.load_config_py2",
        "cv2.load_config_py3",
        # torch
        "torch.load",
        "torch.save",
        "torch.hub",
        "torch.utils",
        "torch.ops",
        "torch.classes",
        "torch.jit",
        "torch.compile",
        "torch.compiler",
        "torch.from_file",
        "torch.package",
        "torch.multiprocessing",
        "torch.distributed",
        "torch.library",
        "torch.fx",
        "torch.export",
        "torch.onnx",
        "torch.profiler",
        "torch.autograd.profiler",
        "torch.serialization",
        "torch.testing",
        "torch.monitor",
        # standard library
        "operator.attrgetter",
        "operator.methodcaller",
        "typing.get_type_hints",
        "typing.ForwardRef",
        "functools.singledispatch",
        "functools.singledispatchmethod",
        "lzma.open",
        "lzma.LZMAFile",
        "bz2.open",
        "bz2.BZ2File",
    }
) | frozenset(DENIED_BECAUSE)

# Allowed packages whose submodules are attributes of a native extension, not importable
# modules: ``from constriction.stream.model import Categorical`` fails when the codec loads.
ATTRIBUTE_ONLY_PACKAGES: frozenset[str] = frozenset({"constriction"})

# ``from __future__ import annotations`` is a compiler directive, not a module a codec uses.
FUTURE_MODULE = "__future__"

# Methods that change a dict in place (PARAMS and PARAM_RANGES must stay literal).
MUTATING_METHODS: frozenset[str] = frozenset(
    {"update", "pop", "popitem", "setdefault", "clear", "__setitem__", "__delitem__"}
)

_DUNDER_RE = re.compile(r"__[A-Za-z][A-Za-z0-9_]*__")
_MAX_ALIAS_PASSES = 4
_MAX_ALIAS_DEPTH = 8

# Builtins a module attribute may not lead to (``enum.bltns.exec``, ``x.io.open``), by name.
# (The interpreter's own dunders, such as ``__spec__``, are refused by name already.)
FORBIDDEN_BUILTINS: tuple[tuple[str, object], ...] = tuple(
    (name, getattr(builtins, name))
    for name in sorted(FORBIDDEN_NAMES | DYNAMIC_CODE_NAMES)
    if hasattr(builtins, name) and (not name.startswith("__") or name in DYNAMIC_CODE_NAMES)
)

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


@dataclass(frozen=True)
class _Binding:
    """A name bound in the module's own scope: where, how (``kind``) and by which node."""

    name: str
    line: int
    kind: str
    node: ast.AST


# ---------------------------------------------------------------------------- public API


def validate_source(source: str) -> ValidationReport:
    """Check a candidate's source text against the contract and the sandbox rules."""
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
    return _validate(source, data)


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
    rebindings = list(_rebindings(tree))
    aliases = _module_aliases(tree, rebindings)
    bindings = list(_module_bindings(tree))
    violations: list[Violation] = []
    violations += _import_violations(tree)
    violations += _name_violations(tree, aliases)
    violations += _attribute_violations(tree, aliases)
    violations += _module_value_violations(tree, aliases, rebindings)
    violations += _string_violations(tree)
    violations += _top_level_violations(tree.body, direct=True)
    violations += _function_violations(tree, bindings)
    params, ranges, param_violations = _params_check(tree, bindings)
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


# ------------------------------------------------------------------- names and aliases


def _is_dunder(name: str) -> bool:
    """Whether a name has the ``__x__`` form."""
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _module_aliases(
    tree: ast.Module, rebindings: list[tuple[str, ast.expr]]
) -> dict[str, set[str]]:
    """Every name that may stand for a module or module attribute -> its dotted meanings."""
    aliases: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        for name, dotted in _import_bindings(node):
            aliases.setdefault(name, set()).add(dotted)
    for _ in range(_MAX_ALIAS_PASSES):
        changed = False
        for name, value in rebindings:
            for dotted in _meanings(value, aliases):
                if dotted.count(".") < _MAX_ALIAS_DEPTH and dotted not in aliases.get(name, ()):
                    aliases.setdefault(name, set()).add(dotted)
                    changed = True
        if not changed:
            break
    return aliases


def _import_bindings(node: ast.AST) -> Iterator[tuple[str, str]]:
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


def _walk_with_class_scope(tree: ast.Module) -> Iterator[tuple[ast.AST, bool]]:
    """Every node (breadth first, as ast.walk) with whether it is evaluated in a class body's
    own scope (its bases and decorators count too; its methods' bodies do not)."""
    queue: deque[tuple[ast.AST, bool]] = deque([(tree, False)])
    while queue:
        node, in_class = queue.popleft()
        yield node, in_class
        inner = isinstance(node, ast.ClassDef) or (in_class and not isinstance(node, _SCOPES))
        queue.extend((child, inner) for child in ast.iter_child_nodes(node))


def _rebindings(tree: ast.Module) -> Iterator[tuple[str, ast.expr]]:
    """(name, value) pairs of plain bindings that may copy a module alias to a new name.

    A binding in a class body is not one of them: it makes a class attribute, which the
    aliases (plain names) cannot follow, so a module bound there is refused instead.
    """
    for node, in_class in _walk_with_class_scope(tree):
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


def _meanings(node: ast.expr, aliases: dict[str, set[str]]) -> set[str]:
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


def _last_part_problem(dotted: str) -> str | None:
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


def _dotted_problem(dotted: str) -> str | None:
    """Why a dotted module name (or any of its prefixes) may not be reached, or None."""
    parts = dotted.split(".")
    for end in range(2, len(parts) + 1):
        problem = _last_part_problem(".".join(parts[:end]))
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
        if _last_part_problem(path):
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
        problem = _dotted_problem(real)
        if problem:
            return "forbidden-attribute", f"{path} is the module {real}; {problem}"
        return None
    for name, builtin in FORBIDDEN_BUILTINS:
        if obj is builtin:
            return "forbidden-name", f"{path} is the builtin {name}, not allowed in a codec"
    return None


def _runtime_problem(
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


def _reach_problem(dotted: str, importing: bool = False) -> tuple[str, str] | None:
    """(rule, message) when a dotted name is refused by the tables or by what it really is."""
    problem = _dotted_problem(dotted)
    if problem:
        return "forbidden-attribute", problem
    return _runtime_problem(dotted, importing=importing)


def _is_module(dotted: str) -> bool:
    """Whether a dotted name resolves, here, to a module."""
    found = _resolve(dotted)
    return len(found) == dotted.count(".") + 1 and isinstance(found[-1], types.ModuleType)


# ------------------------------------------------------------------------------ imports


def _import_violations(tree: ast.Module) -> Iterator[Violation]:
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
    problem = _reach_problem(dotted, importing=True)
    if problem:
        yield Violation(problem[0], line, problem[1])


def _attribute_only_violations(module: str, line: int) -> Iterator[Violation]:
    """Importing a submodule of a package whose submodules are only attributes."""
    top = module.split(".")[0]
    if top in ATTRIBUTE_ONLY_PACKAGES and "." in module and not _dotted_problem(module):
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


# -------------------------------------------------------------------------------- names


def _permitted_hasattr(tree: ast.Module) -> set[int]:
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


def _name_violations(tree: ast.Module, aliases: dict[str, set[str]]) -> Iterator[Violation]:
    """Forbidden builtins, dunder names and names bound to denied module attributes."""
    permitted = _permitted_hasattr(tree)
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
    if _is_dunder(name) and name not in ALLOWED_DUNDER_NAMES:
        return Violation("dunder", line, f"{name} reaches interpreter internals")
    for dotted in sorted(aliases.get(name, ())):
        problem = _reach_problem(dotted)
        if problem:
            return Violation(problem[0], line, f"{name} stands for {dotted}; {problem[1]}")
    return None


# --------------------------------------------------------------------------- attributes


def _attribute_violations(tree: ast.Module, aliases: dict[str, set[str]]) -> Iterator[Violation]:
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
    if _is_dunder(attr) and attr not in SAFE_DUNDER_ATTRIBUTES:
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
    meanings = _meanings(node, aliases)
    for dotted in sorted(meanings):
        reason = _last_part_problem(dotted)
        if reason:
            return Violation("forbidden-attribute", line, reason)
    for dotted in sorted(meanings):  # the prefixes are attribute nodes of their own
        found = _runtime_problem(dotted, last_only=True)
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


# ------------------------------------------------------------------------ module values


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


def _module_value_violations(
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
    for node, in_class in _walk_with_class_scope(tree):
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
                meanings = _meanings(node, aliases)
                if meanings:
                    uses.append((node, meanings))
    permitted = _permitted_hasattr(tree)
    for node, meanings in uses:
        modules = [d for d in sorted(meanings) if d in imported or _is_module(d)]
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


def _string_violations(tree: ast.Module) -> Iterator[Violation]:
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


def _top_level_violations(body: list[ast.stmt], direct: bool) -> Iterator[Violation]:
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
            yield from _top_level_violations(stmt.body, direct=True)
            continue
        for child in _child_bodies(stmt):
            yield from _top_level_violations(child, direct=False)


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


def _module_bindings(tree: ast.Module) -> Iterator[_Binding]:
    """Every binding of a name in the module's scope (defs, assignments, imports, globals)."""
    for node, direct in _module_scope_nodes(tree):
        if isinstance(node, ast.FunctionDef):
            kind = "def" if direct else "nested-def"
            yield _Binding(node.name, node.lineno, kind, node)
        elif isinstance(node, ast.AsyncFunctionDef):
            yield _Binding(node.name, node.lineno, "async-def", node)
        elif isinstance(node, ast.ClassDef):
            yield _Binding(node.name, node.lineno, "class", node)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            yield _Binding(node.id, node.lineno, "assignment", node)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for name, _dotted in _import_bindings(node):
                yield _Binding(name, node.lineno, "import", node)
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            for name in node.names:
                yield _Binding(name, node.lineno, "global", node)


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


def _function_violations(tree: ast.Module, bindings: list[_Binding]) -> Iterator[Violation]:
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


# ------------------------------------------------------------------ PARAMS / PARAM_RANGES


def _params_check(
    tree: ast.Module, bindings: list[_Binding]
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
    tree: ast.Module, bindings: list[_Binding], name: str, violations: list[Violation]
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
