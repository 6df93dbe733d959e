"""Prompts: the templates in prompts/, rendered with Jinja2 within a token budget."""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2

from aicodec.errors import ConfigError, GenerationError
from aicodec.providers.base import Prompt
from aicodec.settings import Settings
from aicodec.validation.contract_rules import contract_values

CHARS_PER_TOKEN = 3.5  # a conservative average for English prose and Python code


_TIMING = re.compile(r"\b(encode|decode) \d+\.\d\d s \(child limit \d+ s\)")


def timing_text(role: str, seconds: float, limit_s: float) -> str:
    """A measured wall time in a prompt with the limit a child gets: ``encode 1.80 s
    (child limit 20 s)``."""
    return f"{role} {seconds:.2f} s (child limit {limit_s:.0f} s)"


def without_timings(text: str) -> str:
    """``text`` with every ``timing_text`` blanked: wall times differ between two runs of
    the same codec, so a prompt's identity for replay leaves them out."""
    return _TIMING.sub(r"\1 (time)", text)


def estimate_tokens(text: str) -> int:
    """Estimated token count of ``text`` (characters / 3.5, rounded up)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class ParentCodec:
    """The codec a prompt asks to improve."""

    id: int | None
    name: str
    source: str


def _environment(folder: Path) -> jinja2.Environment:
    """A Jinja2 environment over the prompt folder (strict: a missing value is an error)."""
    if not folder.is_dir():
        raise ConfigError(f"prompt folder {folder} does not exist")
    return _folder_environment(folder)


@functools.lru_cache(maxsize=8)
def _folder_environment(folder: Path) -> jinja2.Environment:
    """One environment per folder, so its compiled templates are reused (fitting a prompt to
    its budget renders it once per dropped block); a template edited on disk is reloaded."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(settings: Settings, template: str, **values: object) -> str:
    """Render one template from the prompt folder."""
    try:
        return _environment(settings.prompts_dir).get_template(template).render(**values)
    except jinja2.TemplateError as exc:
        raise ConfigError(f"prompt template {template}: {exc}") from None


def contract_text(settings: Settings) -> str:
    """The codec contract as models and people read it: contract.md.j2, its lists of what a
    codec may use rendered from the validator's own tables."""
    return render(settings, "contract.md.j2", **contract_values()).strip()


def system_prompt(settings: Settings) -> str:
    """The static system prompt: role, the codec contract, integrity rules, answer format."""
    return render(settings, "system.md.j2", contract=contract_text(settings))


@dataclass(frozen=True)
class Block:
    """Prompt lines that are kept or dropped together to fit the budget.

    ``rank`` orders the dropping (the highest first; within a rank, later blocks first);
    ``kind`` names several dropped blocks ("older failures"), ``label`` names one
    ("per-frame profile of clip a.y4m").
    """

    lines: tuple[str, ...]
    rank: int
    kind: str
    label: str


@dataclass(frozen=True)
class Section:
    """A part of a prompt: its heading, lines always shown, then its droppable blocks."""

    heading: str
    lines: tuple[str, ...] = ()
    blocks: tuple[Block, ...] = ()


@dataclass(frozen=True)
class PromptMaterial:
    """What a prompt shows besides the code: sections of figures and history, the best
    codec so far (a line), and the plan prompt's summary lines."""

    sections: tuple[Section, ...] = ()
    best: str | None = None
    summary: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Shown:
    """A section as rendered: heading and the lines of its kept blocks."""

    heading: str
    lines: list[str]


def dropped_note(dropped: list[Block]) -> str:
    """What was left out, in the order dropped: one block by its label, several by count."""
    kinds: dict[str, list[Block]] = {}
    for block in dropped:
        kinds.setdefault(block.kind, []).append(block)
    return ", ".join(
        blocks[0].label if len(blocks) == 1 else f"{len(blocks)} {kind}"
        for kind, blocks in kinds.items()
    )


def _fit(
    settings: Settings, template: str, budget: int, material: PromptMaterial, **values: object
) -> str:
    """Render, dropping whole blocks of ``material`` (by rank) until the prompt fits
    ``budget``; the prompt names what was dropped."""
    blocks = [block for section in material.sections for block in section.blocks]
    order = sorted(range(len(blocks)), key=lambda index: (-blocks[index].rank, -index))
    dropped: set[int] = set()
    while True:
        shown, position = [], 0
        for section in material.sections:
            lines = list(section.lines)
            for block in section.blocks:
                if position not in dropped:
                    lines += block.lines
                position += 1
            if lines or section.blocks:
                shown.append(_Shown(section.heading, lines))
        note = dropped_note([blocks[index] for index in order if index in dropped])
        text = render(
            settings,
            template,
            **values,
            sections=shown,
            best=material.best,
            summary=list(material.summary),
            dropped=note,
        )
        if estimate_tokens(text) <= budget:
            return text
        if len(dropped) == len(blocks):
            raise GenerationError(
                f"the prompt needs about {estimate_tokens(text)} tokens even without history, "
                f"over the {budget}-token budget (is the parent codec very large?)"
            )
        dropped.add(order[len(dropped)])


def generate_prompt(
    settings: Settings,
    parent: ParentCodec,
    material: PromptMaterial,
    *,
    plan: str | None = None,
) -> Prompt:
    """The generation prompt for ``parent``, within the token budget (system included).

    A parent longer than half the answer limit is to be changed by SEARCH/REPLACE edits: a
    complete file would not fit in the answer.
    """
    system = system_prompt(settings)
    budget = settings.prompt_budget_tokens - estimate_tokens(system)
    parent_tokens = estimate_tokens(parent.source)
    text = _fit(
        settings,
        "generate.md.j2",
        budget,
        material,
        parent=parent,
        plan=plan,
        edits_only=parent_tokens > settings.max_tokens // 2,
        parent_tokens=parent_tokens,
        max_tokens=settings.max_tokens,
    )
    return Prompt(system=system, messages=({"role": "user", "content": text},))


def repair_prompt(
    settings: Settings, previous: Prompt, answer: str, error: str, *, failed_edits: bool = False
) -> Prompt:
    """The conversation continued with the model's answer and the error to fix: a validation
    error, or (``failed_edits``) why its SEARCH/REPLACE edits could not be applied."""
    message = render(settings, "repair.md.j2", error=error, failed_edits=failed_edits)
    turns = (
        *previous.messages,
        {"role": "assistant", "content": answer},
        {"role": "user", "content": message},
    )
    return Prompt(system=previous.system, messages=turns, purpose="repair")


def plan_prompt(settings: Settings, material: PromptMaterial) -> Prompt:
    """The planning prompt over the lab's history, within the token budget."""
    system = system_prompt(settings)
    budget = settings.prompt_budget_tokens - estimate_tokens(system)
    text = _fit(settings, "plan.md.j2", budget, material)
    return Prompt(system=system, messages=({"role": "user", "content": text},), purpose="plan")
