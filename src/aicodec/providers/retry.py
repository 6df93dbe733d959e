"""The retry loop shared by the network providers: classify, back off with jitter, keep notes."""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from aicodec.errors import ProviderError
from aicodec.providers.base import CallFailure, ProviderCallError

T = TypeVar("T")

SCRUBBED = "***"
NOTE_LIMIT = 300
# 408 (the server timed out waiting) and 429 (rate limit) are the retryable 4xx; 529 is
# Anthropic's "overloaded", and every other 5xx is retryable too.
RETRYABLE_4XX = frozenset({408, 429})


class MalformedReply(Exception):
    """A 200 answer that cannot be used (no text, missing fields); never retried."""


@dataclass(frozen=True)
class Failure:
    """One failed attempt: what happened (one line), whether to retry, any server-asked wait."""

    summary: str
    retryable: bool
    retry_after_s: float | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait between attempts (sleep and rng injectable for tests)."""

    max_retries: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)


def retry_policy(
    max_retries: int,
    backoff_base_s: float,
    backoff_max_s: float,
    sleep: Callable[[float], None],
    rng: random.Random | None,
) -> RetryPolicy:
    """A checked RetryPolicy (ProviderError for a negative retry count)."""
    if max_retries < 0:
        raise ProviderError(f"max_retries must be 0 or more, not {max_retries}")
    return RetryPolicy(
        max_retries=max_retries,
        backoff_base_s=backoff_base_s,
        backoff_max_s=backoff_max_s,
        sleep=sleep,
        rng=rng if rng is not None else random.Random(),
    )


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """A successful call: its value, the retries it took and its wall time including waits."""

    value: T
    retries: int
    latency_s: float


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP status is worth another attempt (408, 429, 529 and every 5xx)."""
    return status in RETRYABLE_4XX or 500 <= status <= 599


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``retry-after`` header (integer or float), or None when absent or unusable."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def backoff_delay(
    attempt: int,
    *,
    base_s: float,
    max_s: float,
    rng: random.Random,
    retry_after_s: float | None = None,
) -> float:
    """Wait before retry number ``attempt`` (0-based): retry-after if given, else full jitter."""
    if retry_after_s is not None:
        return min(max_s, retry_after_s)
    ceiling = min(max_s, base_s * 2.0 ** min(attempt, 62))
    return rng.uniform(0.0, max(0.0, ceiling))


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every secret (non-empty ones only) in ``text`` with ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, SCRUBBED)
    return text


def one_line(text: str, limit: int = NOTE_LIMIT) -> str:
    """Collapse whitespace to single spaces and cut the text to ``limit`` characters."""
    flat = re.sub(r"\s+", " ", text).strip()
    if len(flat) > limit:
        flat = flat[: limit - 3].rstrip() + "..."
    return flat


def error_detail(body: object) -> str:
    """The human-readable part of an API error body (``error.message``, ``message`` or the text)."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            kind = inner.get("type")
            message = inner.get("message")
            parts = [str(part) for part in (kind, message) if part]
            if parts:
                return ": ".join(parts)
        elif isinstance(inner, str) and inner:
            return inner
        message = body.get("message")
        if message:
            return str(message)
        return ""
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    if body is None:
        return ""
    return str(body)


def status_failure(status: int, headers: Mapping[str, str] | None, detail: str) -> Failure:
    """Classify an HTTP error answer, reading ``retry-after`` from its headers."""
    retry_after = parse_retry_after(headers.get("retry-after")) if headers is not None else None
    summary = f"HTTP {status}" + (f" {detail}" if detail else "")
    return Failure(summary, is_retryable_status(status), retry_after)


@dataclass(frozen=True)
class SdkErrors:
    """The exception classes of one client library, as the classifier needs them."""

    status: tuple[type[BaseException], ...]
    timeout: tuple[type[BaseException], ...]
    connection: tuple[type[BaseException], ...]
    validation: tuple[type[BaseException], ...]


def classify_sdk_error(exc: Exception, kinds: SdkErrors) -> Failure:
    """Turn an exception of a client library (or MalformedReply) into a classified Failure."""
    if isinstance(exc, MalformedReply):
        return Failure(f"malformed answer: {exc}", retryable=False)
    if isinstance(exc, kinds.validation):
        return Failure(f"malformed answer: {_describe(exc)}", retryable=False)
    if isinstance(exc, kinds.status):
        status = int(getattr(exc, "status_code", 0) or 0)
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
        return status_failure(status, headers, error_detail(getattr(exc, "body", None)))
    if isinstance(exc, kinds.timeout):
        url = _address(exc)
        waited = f"timed out waiting for {url}" if url else "timed out"
        return Failure(f"{waited} ({_describe(exc.__cause__ or exc)})", retryable=True)
    if isinstance(exc, kinds.connection):
        url = _address(exc)
        failed = f"connection error to {url}" if url else "connection error"
        return Failure(f"{failed} ({_describe(exc.__cause__ or exc)})", retryable=True)
    if isinstance(exc, json.JSONDecodeError):
        return Failure(f"malformed answer: the body is not JSON ({exc})", retryable=False)
    return Failure(f"unexpected client error ({_describe(exc)})", retryable=False)


def _address(exc: BaseException) -> str:
    """The URL a failed request was sent to, where the client says it; else empty."""
    try:
        url = getattr(exc, "request", None) and exc.request.url  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # an httpx error made without its request
        return ""
    return str(url) if url else ""


def _describe(exc: BaseException) -> str:
    """``Type: message`` of an exception, or just the type when it has no message."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def call_with_retries(
    call: Callable[[], T],
    classify: Callable[[Exception], Failure],
    policy: RetryPolicy,
    *,
    label: str,
    secrets: Iterable[str | None] = (),
) -> Outcome[T]:
    """Run ``call`` until it succeeds, a failure is not retryable, or the retries run out."""
    secret_list = [secret for secret in secrets if secret]
    started = time.monotonic()
    notes: list[str] = []
    attempt = 0
    while True:
        try:
            value = call()
        except Exception as exc:  # classify decides; anything it does not know is final
            failure = classify(exc)
            summary = one_line(scrub(failure.summary, secret_list))
            if not failure.retryable or attempt >= policy.max_retries:
                notes.append(f"attempt {attempt + 1}: {summary}")
                message = _final_message(label, summary, failure.retryable, attempt)
                elapsed = time.monotonic() - started
                raise ProviderCallError(
                    one_line(scrub(message, secret_list), limit=2 * NOTE_LIMIT),
                    CallFailure(retries=attempt, latency_s=elapsed, notes=notes),
                ) from None
            delay = backoff_delay(
                attempt,
                base_s=policy.backoff_base_s,
                max_s=policy.backoff_max_s,
                rng=policy.rng,
                retry_after_s=failure.retry_after_s,
            )
            notes.append(f"attempt {attempt + 1}: {summary}; retrying in {delay:.2f} s")
            policy.sleep(delay)
            attempt += 1
            continue
        return Outcome(value, attempt, time.monotonic() - started)


def _final_message(label: str, summary: str, retryable: bool, retries: int) -> str:
    """The one line said when a call gives up."""
    if retryable:
        return f"{label} failed after {retries} retries: {summary}"
    if retries:
        return f"{label} failed (not retryable, after {retries} retries): {summary}"
    return f"{label} failed (not retryable): {summary}"
