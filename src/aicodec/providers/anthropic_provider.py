"""Claude through the Anthropic Messages API, with prompt caching and our own retry loop.

Streaming is not used: one plain ``messages.create`` call per attempt, text answers only.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import anthropic

from aicodec.errors import ProviderError
from aicodec.providers.base import ModelReply, Prompt, call_cost
from aicodec.providers.retry import (
    Failure,
    MalformedReply,
    SdkErrors,
    call_with_retries,
    classify_sdk_error,
    retry_policy,
)

ANTHROPIC_ERRORS = SdkErrors(
    status=(anthropic.APIStatusError,),
    timeout=(anthropic.APITimeoutError,),
    connection=(anthropic.APIConnectionError,),
    validation=(anthropic.APIResponseValidationError,),
)


def _int(value: Any) -> int:
    """A token count from the usage block (absent or not a number counts as 0)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class AnthropicProvider:
    """Calls a Claude model; retries 429/529/5xx/connection errors with jittered backoff."""

    name = "anthropic"

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None,
        base_url: str | None = None,
        max_tokens: int = 8192,
        temperature: float | None = 0.7,
        timeout_s: float = 120.0,
        max_retries: int = 6,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not api_key:
            raise ProviderError(
                "ANTHROPIC_API_KEY is not set; export it to use the anthropic provider"
            )
        if not model:
            raise ProviderError("the anthropic provider needs a model name")
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._api_key = api_key
        self._policy = retry_policy(max_retries, backoff_base_s, backoff_max_s, sleep, rng)
        # max_retries=0: the SDK never retries on its own, our loop does and counts.
        self._client = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
        )

    def __repr__(self) -> str:
        return f"AnthropicProvider(model={self.model!r})"

    def complete(self, prompt: Prompt) -> ModelReply:
        """Send one prompt and return the answer, or raise ProviderCallError after retries."""
        outcome = call_with_retries(
            lambda: self._parse(self._request(prompt)),
            self._classify,
            self._policy,
            label=f"anthropic call to {self.model}",
            secrets=(self._api_key,),
        )
        text, model, usage, stop_reason = outcome.value
        input_tokens = _int(getattr(usage, "input_tokens", 0))
        output_tokens = _int(getattr(usage, "output_tokens", 0))
        cache_read = _int(getattr(usage, "cache_read_input_tokens", 0))
        cache_write = _int(getattr(usage, "cache_creation_input_tokens", 0))
        counts = (input_tokens, output_tokens, cache_read, cache_write)
        # Price by the name asked for (the table uses aliases), else by the one answered.
        cost = call_cost(self.model, *counts) or call_cost(model, *counts)
        return ModelReply(
            text=text,
            provider=self.name,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            latency_s=outcome.latency_s,
            retries=outcome.retries,
            cost_usd=cost,
            stop_reason=stop_reason,
        )

    def _request(self, prompt: Prompt) -> Any:
        """One attempt: the static system prompt is marked for prompt caching."""
        system = [{"type": "text", "text": prompt.system, "cache_control": {"type": "ephemeral"}}]
        # This SDK's create() has no temperature argument; the API field goes in the body.
        extra = {"temperature": self.temperature} if self.temperature is not None else None
        return self._client.messages.create(
            model=self.model,
            max_tokens=self.max_tokens,
            system=system,  # type: ignore[arg-type]
            messages=list(prompt.messages),  # type: ignore[arg-type]
            extra_body=extra,
        )

    def _parse(self, message: Any) -> tuple[str, str, Any, str | None]:
        """Text (all text blocks joined), model, usage and stop reason of an answer."""
        content = getattr(message, "content", None)
        if not isinstance(content, list):
            raise MalformedReply("the answer has no content list")
        texts = [
            block.text
            for block in content
            if getattr(block, "type", None) == "text"
            and isinstance(getattr(block, "text", None), str)
        ]
        if not texts:
            stop = getattr(message, "stop_reason", None)
            raise MalformedReply(f"the answer has no text content (stop_reason={stop})")
        model = getattr(message, "model", None)
        stop_reason = getattr(message, "stop_reason", None)
        return (
            "".join(texts),
            model if isinstance(model, str) and model else self.model,
            getattr(message, "usage", None),
            stop_reason if isinstance(stop_reason, str) else None,
        )

    def _classify(self, exc: Exception) -> Failure:
        """Classify an attempt's exception with the Anthropic SDK's error classes."""
        return classify_sdk_error(exc, ANTHROPIC_ERRORS)
