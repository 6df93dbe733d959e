"""The replay provider: answers from a recorded model-call log, so a run reproduces exactly."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict, deque

from sqlalchemy import select

from aicodec.errors import ProviderError
from aicodec.generation.prompts import without_timings
from aicodec.providers.base import AnswersPrompts, ModelReply, Prompt
from aicodec.store import ModelCall, Store


def prompt_hash(prompt: Prompt) -> str:
    """SHA-256 (hex) of a prompt's system text and messages, measured wall times left out:
    its identity in the log."""
    blob = json.dumps({"system": prompt.system, "messages": list(prompt.messages)}, sort_keys=True)
    return hashlib.sha256(without_timings(blob).encode("utf-8")).hexdigest()


class ReplayProvider(AnswersPrompts):
    """Gives, for each prompt, the next recorded answer to the same prompt (in log order)."""

    name = "replay"

    def __init__(self, store: Store) -> None:
        self.answers: dict[str, deque[ModelCall]] = defaultdict(deque)
        with store.session() as session:
            calls = session.scalars(
                select(ModelCall)
                .where(ModelCall.response_text.is_not(None), ModelCall.provider != "replay")
                .order_by(ModelCall.id)
            ).all()
        for call in calls:
            self.answers[call.prompt_hash].append(call)
        if not calls:
            raise ProviderError("replay: the store holds no recorded model answers")
        self.model = calls[-1].model

    def complete(self, prompt: Prompt) -> ModelReply:
        """The recorded answer to this exact prompt; ProviderError when there is none left."""
        digest = prompt_hash(prompt)
        queue = self.answers.get(digest)
        if not queue:
            raise ProviderError(f"replay: no recorded answer for this prompt ({digest[:12]})")
        call = queue.popleft()
        return ModelReply(
            text=call.response_text or "",
            provider=self.name,
            model=call.model,
            input_tokens=call.input_tokens,
            output_tokens=call.output_tokens,
            cache_read_tokens=call.cache_read_tokens,
            cache_write_tokens=call.cache_write_tokens,
        )

    def priced(self) -> bool:
        """Always: a replayed answer costs nothing."""
        return True
