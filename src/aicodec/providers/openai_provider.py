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
from aicodec.providers.base import ModelReply, Prompt, call_cost
from aicodec.providers.retry import (
    Failure,
    MalformedReply,
    SdkErrors,
    call_with_retries,
    classify_sdk_error,
    retry_policy,
)

OPENAI_ERRORS = SdkErrors(
    status=(openai.APIStatusError,),
    timeout=(openai.APITimeoutError,),
    connection=(openai.APIConnectionError,),
    validation=(openai.APIResponseValidationError,),
)
# Local servers ignore the key, but the client library wants one.
PLACEHOLDER_KEY = "none"


def _int(value: Any) -> int:
    """A token count from the usage block (absent or not a number counts as 0)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class OpenAIProvider:
    """Calls a model behind an OpenAI-compatible ``/chat/completions`` endpoint."""

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str | None = None,
        max_tokens: int = 8192,
        temperature: float = 0.7,
        timeout_s: float = 120.0,
        max_retries: int = 6,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not base_url:
            raise ProviderError(
                "the openai provider needs a base URL of an OpenAI-compatible server "
                "(for example http://127.0.0.1:8000/v1)"
            )
        if not model:
            raise ProviderError("the openai provider needs a model name")
        self.model = model
        self.base_url = base_url
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._api_key = api_key
        self._policy = retry_policy(max_retries, backoff_base_s, backoff_max_s, sleep, rng)
        # max_retries=0: the SDK never retries on its own, our loop does and counts.
        self._client = openai.OpenAI(
            api_key=api_key or PLACEHOLDER_KEY, base_url=base_url, timeout=timeout_s, max_retries=0
        )

    def __repr__(self) -> str:
        return f"OpenAIProvider(model={self.model!r}, base_url={self.base_url!r})"

    def complete(self, prompt: Prompt) -> ModelReply:
        """Send one prompt and return the answer, or raise ProviderCallError after retries."""
        outcome = call_with_retries(
            lambda: self._parse(self._request(prompt)),
            self._classify,
            self._policy,
            label=f"openai call to {self.model} at {self.base_url}",
            secrets=(self._api_key,),
        )
        text, model, usage, stop_reason = outcome.value
        prompt_tokens = _int(getattr(usage, "prompt_tokens", 0))
        output_tokens = _int(getattr(usage, "completion_tokens", 0))
        details = getattr(usage, "prompt_tokens_details", None)
        cache_read = min(_int(getattr(details, "cached_tokens", 0)), prompt_tokens)
        # input_tokens is the uncached part, as for Anthropic and in the price table.
        input_tokens = prompt_tokens - cache_read
        counts = (input_tokens, output_tokens, cache_read, 0)
        cost = call_cost(self.model, *counts) or call_cost(model, *counts)
        return ModelReply(
            text=text,
            provider=self.name,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=0,
            latency_s=outcome.latency_s,
            retries=outcome.retries,
            cost_usd=cost,
            stop_reason=stop_reason,
        )

    def _request(self, prompt: Prompt) -> Any:
        """One attempt: the system prompt first, then the conversation."""
        messages = [{"role": "system", "content": prompt.system}, *prompt.messages]
        return self._client.chat.completions.create(
            model=self.model,
            messages=messages,  # type: ignore[arg-type]
            max_tokens=self.max_tokens,
            temperature=self.temperature,
        )

    def _parse(self, completion: Any) -> tuple[str, str, Any, str | None]:
        """Text, model, usage and finish reason of the first choice."""
        choices = getattr(completion, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise MalformedReply("the answer has no choices")
        choice = choices[0]
        text = getattr(getattr(choice, "message", None), "content", None)
        if not isinstance(text, str):
            reason = getattr(choice, "finish_reason", None)
            raise MalformedReply(f"the answer has no text content (finish_reason={reason})")
        model = getattr(completion, "model", None)
        reason = getattr(choice, "finish_reason", None)
        return (
            text,
            model if isinstance(model, str) and model else self.model,
            getattr(completion, "usage", None),
            reason if isinstance(reason, str) else None,
        )

    def _classify(self, exc: Exception) -> Failure:
        """Classify an attempt's exception with the OpenAI SDK's error classes."""
        return classify_sdk_error(exc, OPENAI_ERRORS)
