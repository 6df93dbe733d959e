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

Modules: ``allowed`` (the tables of what a codec may use), ``names`` (import aliases and
dotted meanings), ``reach`` (whether a dotted name may be reached), the checks ``imports``,
``access`` (names, attributes, strings), ``module_values``, ``structure`` (code at import,
encode/decode) and ``params``, ``report`` (Violation, ValidationReport) and ``validate``
(the driver). ``contract_rules`` renders the contract's rules from the same tables.
"""

from aicodec.validation.report import RULES, ValidationReport, Violation
from aicodec.validation.validate import check_source, validate_file, validate_source

__all__ = [
    "RULES",
    "ValidationReport",
    "Violation",
    "check_source",
    "validate_file",
    "validate_source",
]
