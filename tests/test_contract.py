"""The contract in prose (prompts, README) against the contract in code (imports, denials)."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

from aicodec.candidates.contract import ALLOWED_IMPORTS
from aicodec.prompting import system_prompt
from aicodec.settings import Settings
from aicodec.validation import DENIED_BECAUSE, validate_source

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = (ROOT / "prompts" / "contract.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
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


def test_readme_and_system_prompt_name_every_third_party_import() -> None:
    assert "constriction" in THIRD_PARTY  # an installed package, not the standard library
    head = imports_bullet(README).split(" and pure-computation")[0]
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
    refused = {name.rpartition(".")[2] for name in DENIED_BECAUSE if ".model." in name}
    assert refused == {"CustomModel", "ScipyModel"}
    for name in refused:
        assert f"`{name}`" in CONTRACT and f"`{name}`" in README, name


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
