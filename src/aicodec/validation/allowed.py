"""The tables of what a codec may import and use, and what it may not.

The checks (and the contract's "what a codec may use" section, rendered from these same
tables by :mod:`aicodec.validation.contract_rules`) read them; nothing here checks anything.
"""

from __future__ import annotations

import builtins

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


# Builtins a module attribute may not lead to (``enum.bltns.exec``, ``x.io.open``), by name.
# (The interpreter's own dunders, such as ``__spec__``, are refused by name already.)
FORBIDDEN_BUILTINS: tuple[tuple[str, object], ...] = tuple(
    (name, getattr(builtins, name))
    for name in sorted(FORBIDDEN_NAMES | DYNAMIC_CODE_NAMES)
    if hasattr(builtins, name) and (not name.startswith("__") or name in DYNAMIC_CODE_NAMES)
)
