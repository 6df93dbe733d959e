"""What every model provider takes and gives: a prompt in, a reply (text, tokens, cost) out."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from aicodec.errors import ConfigError, ProviderError

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


PriceTable = Mapping[str, Price]  # model name -> its price


def _price_entry(name: str, entry: object, where: Path) -> Price:
    """One ``[models.NAME]`` table as a Price; ConfigError naming the file and the model."""
    if not isinstance(entry, dict):
        raise ConfigError(f"price table {where}: models.{name} must be a table of prices")
    values: dict[str, float] = {}
    for key in ("input", "output", "cache_read", "cache_write"):
        if key not in entry:
            if key in ("input", "output"):
                raise ConfigError(f"price table {where}: models.{name} has no {key} price")
            continue
        value = entry[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"price table {where}: models.{name}.{key} must be a number")
        if not math.isfinite(value) or value < 0:
            raise ConfigError(
                f"price table {where}: models.{name}.{key} must be 0 or more, not {value}"
            )
        values[key] = float(value)
    unknown = sorted(set(entry) - {"input", "output", "cache_read", "cache_write"})
    if unknown:
        raise ConfigError(f"price table {where}: models.{name} has an unknown key {unknown[0]}")
    return Price(
        values["input"],
        values["output"],
        values.get("cache_read", values["input"]),
        values.get("cache_write", values["input"]),
    )


@lru_cache(maxsize=8)
def load_prices(path: Path = PRICES_FILE) -> dict[str, Price]:
    """A price table file (TOML, ``[models.NAME]`` with input, output and optional cache_read
    and cache_write in USD per million tokens); ConfigError in one line when it is unusable."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"price table {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"price table {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"price table {path} is not valid TOML: {exc}") from None
    models = data.get("models", {})
    if not isinstance(models, dict) or set(data) - {"models"}:
        raise ConfigError(f"price table {path}: put each model under [models.NAME]")
    return {name: _price_entry(name, entry, path) for name, entry in models.items()}


def price_table(extra: Path | None = None) -> dict[str, Price]:
    """The built-in price table with the models of ``extra`` (a prices file) merged over it."""
    table = dict(load_prices())
    if extra is not None:
        table.update(load_prices(Path(extra)))
    return table


def call_cost(
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_read: int = 0,
    cache_write: int = 0,
    prices: PriceTable | None = None,
) -> float:
    """Cost of one call in USD from the price table (built-in unless given); 0 for a model
    the table lacks (``--max-cost`` refuses such a model before any call)."""
    price = (load_prices() if prices is None else prices).get(model)
    if price is None:
        return 0.0
    per_token = 1e-6
    return per_token * (
        input_tokens * price.input
        + output_tokens * price.output
        + cache_read * price.cache_read
        + cache_write * price.cache_write
    )


# ------------------------------------------------------------------------ the protocol


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do; the lab asks these instead of a provider's name."""

    writes_code_by_model: bool  # complete() answers a generation prompt with code
    plans: bool  # complete() can answer the planning prompt
    proposes_locally: bool  # propose() makes children itself, with no prompt and no model
    repeats_improving_steps: bool  # propose() repeats the step that improved the parent
    retries_duplicates: bool  # another draw may differ when a child is a duplicate
    origin: str  # the origin recorded for its candidates: "llm" or "mutation"


@dataclass(frozen=True)
class TrialScope:
    """Which stored evaluations a provider that learns from the store may read.

    A candidate's figure is its fitness (mean BD-rate against the ladder's anchor) on
    ``clip_ids`` at ``qualities``; the ``hidden`` candidates (still being scored) count as
    tried, never as measured.
    """

    clip_ids: tuple[int, ...]
    qualities: tuple[int, ...]
    hidden: frozenset[int] = frozenset()


MODEL_CAPABILITIES = Capabilities(
    writes_code_by_model=True,
    plans=True,
    proposes_locally=False,
    repeats_improving_steps=False,
    retries_duplicates=False,
    origin="llm",
)


class Provider(Protocol):
    """What every provider has: a name, a model, its capabilities and both ways to make code.

    A provider whose capabilities say it does not answer prompts (or does not propose
    locally) raises ProviderError from ``complete`` (or ``propose``).
    """

    name: str
    model: str
    capabilities: Capabilities

    def complete(self, prompt: Prompt) -> ModelReply:
        """Answer one prompt (ProviderCallError after the retries)."""
        ...

    def propose(
        self,
        parent_source: str,
        count: int = 1,
        *,
        attempt: int = 0,
        repeat_from: str | None = None,
        scope: TrialScope | None = None,
    ) -> list[str]:
        """Up to ``count`` children of a parent source, made without a model (``scope``: the
        stored evaluations a provider that learns from the store reads)."""
        ...

    def priced(self) -> bool:
        """Whether the cost of its calls is known before calling (true when they are free)."""
        ...


class AnswersPrompts:
    """The part every model-backed provider shares: it writes code only through prompts."""

    name: str
    capabilities: Capabilities = MODEL_CAPABILITIES

    def propose(
        self,
        parent_source: str,
        count: int = 1,
        *,
        attempt: int = 0,
        repeat_from: str | None = None,
        scope: TrialScope | None = None,
    ) -> list[str]:
        """Not offered: ProviderError (this provider writes code only in answer to a prompt)."""
        raise ProviderError(f"the {self.name} provider answers prompts; it proposes nothing")


def refuse_unpriced_budget(provider: Provider, max_cost: float | None) -> None:
    """ConfigError when a cost budget is asked of a provider whose calls cannot be priced."""
    if max_cost is None or provider.priced():
        return
    raise ConfigError(
        f"--max-cost cannot be kept: model {provider.model} is not in the price table; "
        "give its prices with --prices FILE or AICODEC_PRICES_FILE "
        f'([models."{provider.model}"] input = ..., output = ..., USD per million tokens)'
    )
