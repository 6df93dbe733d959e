"""What every model provider takes and gives: a prompt in, a reply (text, tokens, cost) out."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from aicodec.errors import ProviderError

PRICES_FILE = Path(__file__).resolve().parent / "prices.toml"


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt: the static system text (cacheable) and the conversation."""

    system: str
    messages: tuple[dict[str, str], ...]  # {"role": "user"|"assistant", "content": text}
    purpose: str = "generate"  # generate, plan or repair


@dataclass(frozen=True)
class ModelReply:
    """One successful model call: the answer text and what it cost."""

    text: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    latency_s: float = 0.0
    retries: int = 0
    cost_usd: float = 0.0
    stop_reason: str | None = None


@dataclass
class CallFailure:
    """What a failed call cost before it gave up (for the model-call log)."""

    retries: int = 0
    latency_s: float = 0.0
    notes: list[str] = field(default_factory=list)


class ProviderCallError(ProviderError):
    """A model call that failed after its retries; carries the attempt history."""

    def __init__(self, message: str, failure: CallFailure) -> None:
        super().__init__(message)
        self.failure = failure


@dataclass(frozen=True)
class Price:
    """USD per million tokens for one model."""

    input: float
    output: float
    cache_read: float
    cache_write: float


@lru_cache(maxsize=4)
def load_prices(path: Path = PRICES_FILE) -> dict[str, Price]:
    """The price table (model name -> Price), kept as data in prices.toml."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProviderError(f"price table {path} cannot be read: {exc}") from None
    return {
        name: Price(
            float(entry["input"]),
            float(entry["output"]),
            float(entry.get("cache_read", entry["input"])),
            float(entry.get("cache_write", entry["input"])),
        )
        for name, entry in data.get("models", {}).items()
    }


def call_cost(
    model: str, input_tokens: int, output_tokens: int, cache_read: int = 0, cache_write: int = 0
) -> float:
    """Cost of one call in USD from the price table (0 for a model the table lacks)."""
    price = load_prices().get(model)
    if price is None:
        return 0.0
    per_token = 1e-6
    return per_token * (
        input_tokens * price.input
        + output_tokens * price.output
        + cache_read * price.cache_read
        + cache_write * price.cache_write
    )
