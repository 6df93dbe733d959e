"""Any OpenAI-compatible chat endpoint (vLLM, llama.cpp server, Ollama) with our retry loop.

Streaming is not used: one plain ``chat.completions.create`` call per attempt.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import openai

from aicodec.errors import ProviderError
from aicodec.providers.base import PriceTable, Prompt
from aicodec.providers.retry import MalformedReply, SdkErrors
from aicodec.providers.sdk import Answer, SdkProvider, token_count

OPENAI_ERRORS = SdkErrors(
    status=(openai.APIStatusError,),
    timeout=(openai.APITimeoutError,),
    connection=(openai.APIConnectionError,),
    validation=(openai.APIResponseValidationError,),
)
# Local servers ignore the key, but the client library wants one.
PLACEHOLDER_KEY = "none"


class OpenAIProvider(SdkProvider):
    """Calls a model behind an OpenAI-compatible ``/chat/completions`` endpoint."""

    name = "openai"
    errors = OPENAI_ERRORS

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str | None = None,
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
        if not base_url:
            raise ProviderError(
                "the openai provider needs a base URL of an OpenAI-compatible server "
                "(for example http://127.0.0.1:8000/v1)"
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
        self.base_url = base_url
        # max_retries=0: the SDK never retries on its own, our loop does and counts.
        self._client = openai.OpenAI(
            api_key=api_key or PLACEHOLDER_KEY, base_url=base_url, timeout=timeout_s, max_retries=0
        )

    def __repr__(self) -> str:
        return f"OpenAIProvider(model={self.model!r}, base_url={self.base_url!r})"

    def _label(self) -> str:
        """How a failed call names itself: the model and the server."""
        return f"openai call to {self.model} at {self.base_url}"

    def _request(self, prompt: Prompt) -> Any:
        """One attempt: the system prompt first, then the conversation (temperature if set)."""
        messages = [{"role": "system", "content": prompt.system}, *prompt.messages]
        sampling: dict[str, Any] = {}
        if self.temperature is not None:
            sampling["temperature"] = self.temperature
        return self._client.chat.completions.create(
            model=self.model,
            messages=messages,  # type: ignore[arg-type]
            max_tokens=self.max_tokens,
            **sampling,
        )

    def _parse(self, completion: Any) -> Answer:
        """Text, model, usage and finish reason of the first choice."""
        choices = getattr(completion, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise MalformedReply("the answer has no choices")
        choice = choices[0]
        text = getattr(getattr(choice, "message", None), "content", None)
        reason = getattr(choice, "finish_reason", None)
        if not isinstance(text, str):
            raise MalformedReply(f"the answer has no text content (finish_reason={reason})")
        model = getattr(completion, "model", None)
        usage = getattr(completion, "usage", None)
        prompt_tokens = token_count(getattr(usage, "prompt_tokens", 0))
        details = getattr(usage, "prompt_tokens_details", None)
        cache_read = min(token_count(getattr(details, "cached_tokens", 0)), prompt_tokens)
        return Answer(
            text=text,
            model=model if isinstance(model, str) and model else self.model,
            # input_tokens is the uncached part, as for Anthropic and in the price table.
            input_tokens=prompt_tokens - cache_read,
            output_tokens=token_count(getattr(usage, "completion_tokens", 0)),
            cache_read_tokens=cache_read,
            cache_write_tokens=0,
            stop_reason=reason if isinstance(reason, str) else None,
        )
