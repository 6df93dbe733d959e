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
from aicodec.providers.base import PriceTable, Prompt
from aicodec.providers.retry import MalformedReply, SdkErrors
from aicodec.providers.sdk import Answer, SdkProvider, token_count

ANTHROPIC_ERRORS = SdkErrors(
    status=(anthropic.APIStatusError,),
    timeout=(anthropic.APITimeoutError,),
    connection=(anthropic.APIConnectionError,),
    validation=(anthropic.APIResponseValidationError,),
)


class AnthropicProvider(SdkProvider):
    """Calls a Claude model; retries 429/529/5xx/connection errors with jittered backoff."""

    name = "anthropic"
    errors = ANTHROPIC_ERRORS

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None,
        base_url: str | None = None,
        max_tokens: int = 8192,
        temperature: float | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 6,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        prices: PriceTable | None = None,
    ) -> None:
        if not api_key:
            raise ProviderError(
                "ANTHROPIC_API_KEY is not set; export it to use the anthropic provider"
            )
        super().__init__(
            model,
            api_key=api_key,
            max_tokens=max_tokens,
            temperature=temperature,
            max_retries=max_retries,
            backoff_base_s=backoff_base_s,
            backoff_max_s=backoff_max_s,
            sleep=sleep,
            rng=rng,
            prices=prices,
        )
        # max_retries=0: the SDK never retries on its own, our loop does and counts.
        self._client = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
        )

    def __repr__(self) -> str:
        return f"AnthropicProvider(model={self.model!r})"

    def _request(self, prompt: Prompt) -> Any:
        """One attempt: the static system prompt is marked for prompt caching."""
        system = [{"type": "text", "text": prompt.system, "cache_control": {"type": "ephemeral"}}]
        # This SDK's create() has no temperature argument; the API field goes in the body.
        # Unset, none is sent (newer Claude models refuse sampling parameters).
        extra = {"temperature": self.temperature} if self.temperature is not None else None
        return self._client.messages.create(
            model=self.model,
            max_tokens=self.max_tokens,
            system=system,  # type: ignore[arg-type]
            messages=list(prompt.messages),  # type: ignore[arg-type]
            extra_body=extra,
        )

    def _parse(self, message: Any) -> Answer:
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
        stop_reason = getattr(message, "stop_reason", None)
        if not texts:
            raise MalformedReply(f"the answer has no text content (stop_reason={stop_reason})")
        model = getattr(message, "model", None)
        usage = getattr(message, "usage", None)
        return Answer(
            text="".join(texts),
            model=model if isinstance(model, str) and model else self.model,
            input_tokens=token_count(getattr(usage, "input_tokens", 0)),
            output_tokens=token_count(getattr(usage, "output_tokens", 0)),
            cache_read_tokens=token_count(getattr(usage, "cache_read_input_tokens", 0)),
            cache_write_tokens=token_count(getattr(usage, "cache_creation_input_tokens", 0)),
            stop_reason=stop_reason if isinstance(stop_reason, str) else None,
        )
