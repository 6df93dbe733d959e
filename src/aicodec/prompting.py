"""Prompts: the templates in prompts/, rendered with Jinja2 within a token budget."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import jinja2

from aicodec.contract_rules import contract_values
from aicodec.errors import ConfigError, GenerationError
from aicodec.providers.base import Prompt
from aicodec.settings import Settings

CHARS_PER_TOKEN = 3.5  # a conservative average for English prose and Python code


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


def _fit(
    settings: Settings, template: str, budget: int, lists: tuple[str, ...], **values: object
) -> str:
    """Render, dropping the last entries of the named lists until the prompt fits ``budget``.

    Entries are whole lines (newest first), so nothing is cut mid-line; the number left
    out is shown in the prompt.
    """
    entries = {name: list(values[name]) for name in lists}  # type: ignore[call-overload]
    omitted = 0
    while True:
        text = render(settings, template, **{**values, **entries, "omitted": omitted})
        if estimate_tokens(text) <= budget:
            return text
        longest = max(lists, key=lambda name: len(entries[name]))
        if not entries[longest]:
            raise GenerationError(
                f"the prompt needs about {estimate_tokens(text)} tokens even without history, "
                f"over the {budget}-token budget (is the parent codec very large?)"
            )
        entries[longest].pop()
        omitted += 1


def generate_prompt(
    settings: Settings,
    parent: ParentCodec,
    *,
    scores: list[str],
    best: str | None,
    failures: list[str],
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
        settings, "generate.md.j2", budget, ("failures", "scores"),
        parent=parent, scores=scores, best=best, failures=failures, plan=plan,
        edits_only=parent_tokens > settings.max_tokens // 2, parent_tokens=parent_tokens,
        max_tokens=settings.max_tokens,
    )  # fmt: skip
    return Prompt(system=system, messages=({"role": "user", "content": text},))


def repair_prompt(
    settings: Settings, previous: Prompt, answer: str, error: str, *, failed_edits: bool = False
) -> Prompt:
    """The conversation continued with the model's answer and the error to fix: a validation
    error, or (``failed_edits``) why its SEARCH/REPLACE edits could not be applied."""
    message = render(settings, "repair.md.j2", error=error, failed_edits=failed_edits)
    turns = (*previous.messages, {"role": "assistant", "content": answer},
             {"role": "user", "content": message})  # fmt: skip
    return Prompt(system=previous.system, messages=turns, purpose="repair")


def plan_prompt(settings: Settings, history: list[str]) -> Prompt:
    """The planning prompt over the lab's history, within the token budget."""
    system = system_prompt(settings)
    budget = settings.prompt_budget_tokens - estimate_tokens(system)
    text = _fit(settings, "plan.md.j2", budget, ("history",), history=history)
    return Prompt(system=system, messages=({"role": "user", "content": text},), purpose="plan")
