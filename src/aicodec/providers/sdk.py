"""The part the two SDK providers share: checks, retry policy, the call flow, cost and reply.

Each SDK provider adds only its request (``_request``), how it reads an answer (``_parse``)
and its client library's error classes (``errors``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aicodec.errors import ProviderError
from aicodec.providers.base import (
    AnswersPrompts,
    ModelReply,
    PriceTable,
    Prompt,
    call_cost,
    load_prices,
)
from aicodec.providers.retry import (
    Failure,
    SdkErrors,
    call_with_retries,
    classify_sdk_error,
    retry_policy,
)


def token_count(value: Any) -> int:
    """A token count from a usage block (absent or not a number counts as 0)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True)
class Answer:
    """One parsed answer: its text, the model that answered, token counts, why it stopped.

    ``input_tokens`` is the uncached input, as in the price table.
    """

    text: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    stop_reason: str | None


class SdkProvider(AnswersPrompts):
    """A model behind a client library, called with the lab's own retries (the SDK's are off)."""

    name = "sdk"
    errors: SdkErrors

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None,
        max_tokens: int,
        temperature: float | None,
        max_retries: int,
        backoff_base_s: float,
        backoff_max_s: float,
        sleep: Callable[[float], None],
        rng: random.Random | None,
        prices: PriceTable | None,
    ) -> None:
        if not model:
            raise ProviderError(f"the {self.name} provider needs a model name")
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.prices: PriceTable = load_prices() if prices is None else prices
        self._api_key = api_key
        self._policy = retry_policy(max_retries, backoff_base_s, backoff_max_s, sleep, rng)

    def complete(self, prompt: Prompt) -> ModelReply:
        """Send one prompt and return the answer, or raise ProviderCallError after retries."""
        outcome = call_with_retries(
            lambda: self._parse(self._request(prompt)),
            self._classify,
            self._policy,
            label=self._label(),
            secrets=(self._api_key,),
        )
        answer = outcome.value
        counts = (
            answer.input_tokens,
            answer.output_tokens,
            answer.cache_read_tokens,
            answer.cache_write_tokens,
        )
        # Price by the name asked for (the table uses aliases), else by the one answered.
        cost = call_cost(self.model, *counts, prices=self.prices) or call_cost(
            answer.model, *counts, prices=self.prices
        )
        return ModelReply(
            text=answer.text,
            provider=self.name,
            model=answer.model,
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            cache_read_tokens=answer.cache_read_tokens,
            cache_write_tokens=answer.cache_write_tokens,
            latency_s=outcome.latency_s,
            retries=outcome.retries,
            cost_usd=cost,
            stop_reason=answer.stop_reason,
        )

    def priced(self) -> bool:
        """Whether the price table holds the model asked for."""
        return self.model in self.prices

    def _classify(self, exc: Exception) -> Failure:
        """Classify an attempt's exception with the client library's error classes."""
        return classify_sdk_error(exc, self.errors)

    def _label(self) -> str:
        """How a failed call names itself."""
        return f"{self.name} call to {self.model}"

    def _request(self, prompt: Prompt) -> Any:
        """One attempt through the client library."""
        raise NotImplementedError

    def _parse(self, response: Any) -> Answer:
        """The usable parts of an answer; MalformedReply when it has none."""
        raise NotImplementedError
