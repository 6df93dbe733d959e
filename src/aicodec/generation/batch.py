"""One generate batch as ``aicodec generate`` asks for it: a provider, a parent, candidates."""

from __future__ import annotations

from collections.abc import Callable

from aicodec.generation.generate import (
    GenerationOutcome,
    GenerationRequest,
    generate_candidates,
    resolve_parent,
    select_provider,
)
from aicodec.settings import Settings
from aicodec.store import Store


def generate_batch(
    store: Store,
    settings: Settings,
    *,
    provider: str | None,
    parent: str | None,
    count: int,
    seed: int = 0,
    repairs: int | None = None,
    max_cost: float | None = None,
    max_tokens: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> GenerationOutcome:
    """Choose the provider (``provider``, else the settings' rule) and the parent (a candidate
    id or codec file, else the best so far, else the hybrid seed), then make up to ``count``
    candidates from it, each with up to ``repairs`` repair calls (None: the settings'
    ``generate_repairs``); ``progress`` hears what is being done."""
    chosen, reason = select_provider(settings, provider, seed=seed, store=store)
    origin = resolve_parent(store, parent)
    if progress is not None:
        progress(f"generating from {origin.name}")
    request = GenerationRequest(
        count=count,
        repairs=settings.generate_repairs if repairs is None else repairs,
        max_cost=max_cost,
        max_tokens=max_tokens,
    )
    return generate_candidates(store, settings, chosen, reason, origin, request, progress)
