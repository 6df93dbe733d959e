"""The contract in prose (prompts, docs/codecs.md) against the contract in code (imports, denials).

The contract's lists are rendered from the validator's tables; these tests read them back
from the rendered text and hold each entry against ``validate_source``, so a table change
shows in the prompt and a prompt that promised what the checks refuse fails here.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest

from aicodec.candidates.contract import ALLOWED_IMPORTS, MAX_SOURCE_BYTES, REQUIRED_FUNCTIONS
from aicodec.generation.prompts import contract_text, system_prompt
from aicodec.settings import Settings
from aicodec.validation import validate_source
from aicodec.validation.allowed import (
    ALLOWED_DUNDER_NAMES,
    DENIED_ATTRIBUTE_NAMES,
    DENIED_BECAUSE,
    DENIED_MODULE_ATTRIBUTES,
    DYNAMIC_CODE_NAMES,
    FORBIDDEN_NAMES,
    INTERNAL_ATTRIBUTES,
    SAFE_DUNDER_ATTRIBUTES,
    SAFE_STRING_DUNDERS,
    SYSTEM_MODULE_NAMES,
    SYSTEM_MODULE_NAMES_ON_MODULES,
)
from aicodec.validation.contract_rules import LABELS

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = (ROOT / "prompts" / "contract.md.j2").read_text(encoding="utf-8")
CONTRACT = contract_text(Settings())
CODECS_DOC = (ROOT / "docs" / "codecs.md").read_text(encoding="utf-8")  # the contract in the docs
THIRD_PARTY = {name for name in ALLOWED_IMPORTS if name not in sys.stdlib_module_names}


def imports_bullet(text: str) -> str:
    """The ``- Imports:`` bullet of a markdown text, up to the next bullet."""
    match = re.search(r"^- Imports:(.*?)(?=^- |^#|\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, "no '- Imports:' bullet"
    return match.group(1)


def constriction_example() -> str:
    """The python block of the contract's constriction section."""
    section = CONTRACT.split("### Entropy coding with `constriction`", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_contract_lists_exactly_the_allowed_imports() -> None:
    named = set(re.findall(r"`([a-z0-9_]+)`", imports_bullet(CONTRACT)))
    assert named == ALLOWED_IMPORTS


def test_the_docs_and_system_prompt_name_every_third_party_import() -> None:
    assert "constriction" in THIRD_PARTY  # an installed package, not the standard library
    head = imports_bullet(CODECS_DOC).split(" and pure-computation")[0]
    said = {re.sub(r"\(.*?\)", "", part).strip() for part in head.split(",")}
    assert said == THIRD_PARTY
    prompt = system_prompt(Settings())
    for name in THIRD_PARTY:
        assert f"`{name}`" in prompt, name


def test_constriction_is_in_the_prompts_iff_it_is_allowed() -> None:
    prompt = system_prompt(Settings())
    assert ("constriction" in prompt) == ("constriction" in ALLOWED_IMPORTS)
    assert ("constriction" in imports_bullet(CONTRACT)) == ("constriction" in ALLOWED_IMPORTS)


def test_the_contract_names_the_constriction_models_the_validator_refuses() -> None:
    refused = {name for name in DENIED_BECAUSE if ".model." in name}
    assert {name.rpartition(".")[2] for name in refused} == {"CustomModel", "ScipyModel"}
    for name in refused:
        assert f"`{name}`" in CONTRACT and f"`{name.rpartition('.')[2]}`" in CODECS_DOC, name


def test_the_constriction_example_round_trips() -> None:
    namespace: dict[str, object] = {"__name__": "contract_example"}
    exec(compile(constriction_example(), "contract.md", "exec"), namespace)  # trusted: our docs
    assert len(namespace["payload"]) % 4 == 0 and namespace["payload"]  # type: ignore[arg-type]


def test_the_constriction_example_passes_validation() -> None:
    lines = constriction_example().splitlines()
    imports = [line for line in lines if line.startswith("import ")]
    body = "\n".join(line for line in lines if line and not line.startswith("import "))
    source = (
        "\n".join(imports)
        + "\n\n\ndef example():\n"
        + textwrap.indent(body, "    ")
        + "\n\n\ndef encode(frames, quality):\n    return b''\n\n\n"
        + "def decode(bitstream):\n    return bitstream\n"
    )
    report = validate_source(source)
    assert report.valid, [str(violation) for violation in report.violations]


# ----------------------------------------------- the rendered lists against the validator

CODEC = """{imports}


def helper(x):
    return {expression}


def encode(frames, quality):
    return b""


def decode(bitstream):
    return bitstream
"""
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


def listed(key: str, pattern: re.Pattern[str] = NAME) -> set[str]:
    """The names in backticks on the contract line that starts with LABELS[key] (and on its
    sub-bullets)."""
    match = re.search(rf"^- {re.escape(LABELS[key])}(.*?)(?=^- |^#|\Z)", CONTRACT, re.M | re.S)
    assert match, LABELS[key]
    return {code for code in re.findall(r"`([^`]+)`", match.group(1)) if pattern.fullmatch(code)}


def valid(imports: str = "", expression: str = "x") -> bool:
    """Whether a codec with these imports whose helper returns ``expression`` passes."""
    return validate_source(CODEC.format(imports=imports, expression=expression)).valid


def test_the_contract_lists_every_table_entry() -> None:
    plain_denied = DENIED_MODULE_ATTRIBUTES - frozenset(DENIED_BECAUSE)
    assert listed("dynamic") == DYNAMIC_CODE_NAMES
    assert listed("names") == FORBIDDEN_NAMES
    assert listed("internal") == INTERNAL_ATTRIBUTES
    assert listed("attributes") == DENIED_ATTRIBUTE_NAMES
    assert listed("system_modules") == SYSTEM_MODULE_NAMES
    assert listed("on_modules") == SYSTEM_MODULE_NAMES_ON_MODULES
    assert listed("dunder_attributes") == SAFE_DUNDER_ATTRIBUTES
    assert listed("module_parts", DOTTED) == plain_denied
    assert listed("because", DOTTED) == set(DENIED_BECAUSE)
    readable = listed("dunder_names")
    assert readable == ALLOWED_DUNDER_NAMES | SAFE_STRING_DUNDERS
    assert f"{MAX_SOURCE_BYTES:,} bytes" in CONTRACT


def test_every_listed_import_is_accepted_and_others_refused() -> None:
    named = listed("imports")
    assert named == ALLOWED_IMPORTS
    for module in named:
        assert valid(f"import {module}", f"{module} is not None"), module
        # a module itself is no value to hand on (the "Modules as values" bullet)
        report = validate_source(CODEC.format(imports=f"import {module}", expression=module))
        assert [v.rule for v in report.violations] == ["module-value"], module
    for module in ("os", "json", "pickle", "scipy", "io"):
        assert module not in named and not valid(f"import {module}"), module


@pytest.mark.parametrize("key", ["dynamic", "names"])
def test_every_listed_name_is_refused(key: str) -> None:
    for name in listed(key):
        assert not valid(expression=name), name


@pytest.mark.parametrize("key", ["internal", "attributes", "system_modules"])
def test_every_listed_attribute_is_refused_on_any_object(key: str) -> None:
    for name in listed(key):
        assert not valid(expression=f"x.{name}"), name


def test_every_listed_module_attribute_is_refused_and_allowed_dunders_pass() -> None:
    for dotted in listed("module_parts", DOTTED) | listed("because", DOTTED):
        top = dotted.split(".")[0]
        assert not valid(f"import {top}", dotted), dotted
    for name in listed("on_modules") | {"_private"}:
        assert not valid("import numpy", f"numpy.{name}"), name
        assert valid(expression=f"x.{name}") or name in SYSTEM_MODULE_NAMES, name
    for name in listed("dunder_attributes"):
        assert valid(expression=f"x.{name}"), name
    for name in ALLOWED_DUNDER_NAMES:
        assert valid(expression=name), name
    assert valid(expression='hasattr(x, "shape")') and not valid(expression="hasattr(x, x)")


def test_the_contract_states_the_module_rules_the_validator_applies() -> None:
    values, reached = listed("module_values", DOTTED), listed("reached_modules", DOTTED)
    assert values == {"numpy.fft", "module.name"} and reached
    # used as module.name, bound to a plain name or a default, tested: fine
    fine = ["numpy.fft.rfft(x)", "1 if numpy else 0", "numpy is None", 'hasattr(numpy, "fft")']
    for expression in [*fine, "(lambda a=numpy: a.zeros(1))()"]:
        assert valid("import numpy", expression), expression
    # anywhere else: refused, a module reached as an attribute (numpy.fft) included
    refused = ["(numpy,)", "[numpy.fft]", "{1: numpy}", "len(numpy.fft)", "numpy"]
    for expression in [*refused, "lambda: numpy", "[a for a in (numpy,)]"]:
        report = validate_source(CODEC.format(imports="import numpy", expression=expression))
        assert "module-value" in {v.rule for v in report.violations}, expression
    # each example of a module reached through attributes is refused as what it really is
    for dotted in reached:
        report = validate_source(
            CODEC.format(imports=f"import {dotted.split('.')[0]}", expression=f"{dotted}.x")
        )
        messages = [v.message for v in report.violations]
        assert any(f"{dotted} is the module" in m for m in messages), (dotted, messages)


def test_the_signatures_in_the_contract_are_the_validators() -> None:
    block = CONTRACT.split("```python\n", 1)[1].split("```", 1)[0]
    found = {
        name: tuple(part.split(":")[0].strip() for part in params.split(","))
        for name, params in re.findall(r"^def (\w+)\(([^)]*)\)", block, re.M)
    }
    assert found == REQUIRED_FUNCTIONS


def test_the_hand_written_prose_names_no_checked_name() -> None:
    """What the checks refuse is said only in the generated part: the prose names none of it
    (the way ``getattr`` was once said to be allowed with literal names)."""
    checked = (
        FORBIDDEN_NAMES
        | DYNAMIC_CODE_NAMES
        | DENIED_ATTRIBUTE_NAMES
        | INTERNAL_ATTRIBUTES
        | SYSTEM_MODULE_NAMES
        | {"hasattr"}
    )
    prose = re.sub(r"```python\n.*?```", "", TEMPLATE, flags=re.S)  # examples are validated
    codes = re.findall(r"`([^`]+)`", prose)
    assert "{{ may_use }}" in TEMPLATE and codes
    words = {word for code in codes for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", code)}
    assert words & checked == set()
    dotted = [name for name in DENIED_MODULE_ATTRIBUTES if any(name in code for code in codes)]
    assert dotted == []


def test_aicodec_contract_prints_what_the_prompt_carries() -> None:
    import json
    import subprocess

    run = [sys.executable, "-m", "aicodec", "contract"]
    text = subprocess.run(run, capture_output=True, text=True, check=True, timeout=60).stdout
    assert text.strip() == CONTRACT and CONTRACT in system_prompt(Settings())
    data = subprocess.run(
        [*run, "--json"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert json.loads(data) == {"contract": CONTRACT}
