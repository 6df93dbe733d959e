"""The network providers against a fake LLM server, through the real client libraries over HTTP.

Streaming is not used by the providers (one plain create call per attempt), so none is tested.
Sleeps are recorded instead of waited; the jitter comes from a seeded random generator.
"""

from __future__ import annotations

import json
import random
import socket
import time

import pytest

from aicodec.errors import ProviderError
from aicodec.providers.anthropic_provider import AnthropicProvider
from aicodec.providers.base import ModelReply, Prompt, ProviderCallError, call_cost
from aicodec.providers.openai_provider import OpenAIProvider
from aicodec.providers.retry import backoff_delay, parse_retry_after, scrub
from tests.fake_llm import Drop, FakeLLM, Huge, Raw, Reply, Sleep, Status, fake_llm_fixture

fake_llm = fake_llm_fixture()

ANTHROPIC_KEY = "sk-ant-test-KEY123"
OPENAI_KEY = "sk-openai-test-KEY456"
MODEL = "claude-sonnet-5-5"  # the default model, priced in prices.toml
SEED = 1234
PROMPT = Prompt(
    system="You write video codecs.",
    messages=({"role": "user", "content": "Write a codec."},),
)
ENV_TO_CLEAR = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_CUSTOM_HEADERS",
    "ANTHROPIC_PROFILE",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key, base URL or proxy from the environment reaches the clients."""
    for name in ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)


class Sleeps(list[float]):
    """Records every requested sleep instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def anthropic(server: FakeLLM | str, sleeps: Sleeps, **options: object) -> AnthropicProvider:
    """An Anthropic provider pointed at the fake server (or a given base URL)."""
    base_url = server if isinstance(server, str) else server.url
    settings: dict[str, object] = {
        "api_key": ANTHROPIC_KEY,
        "base_url": base_url,
        "max_tokens": 1000,
        "temperature": 0.5,
        "timeout_s": 5.0,
        "max_retries": 3,
        "backoff_base_s": 1.0,
        "backoff_max_s": 10.0,
        "sleep": sleeps,
        "rng": random.Random(SEED),
    }
    settings.update(options)
    return AnthropicProvider(MODEL, **settings)  # type: ignore[arg-type]


def openai_provider(
    server: FakeLLM, sleeps: Sleeps, model: str = "qwen-local", **options: object
) -> OpenAIProvider:
    """An OpenAI-compatible provider pointed at the fake server."""
    settings: dict[str, object] = {
        "base_url": server.openai_url,
        "max_tokens": 800,
        "temperature": 0.2,
        "timeout_s": 5.0,
        "max_retries": 3,
        "backoff_base_s": 1.0,
        "backoff_max_s": 10.0,
        "sleep": sleeps,
        "rng": random.Random(SEED),
    }
    settings.update(options)
    return OpenAIProvider(model, **settings)  # type: ignore[arg-type]


def jitter_bounds(count: int, base: float = 1.0, cap: float = 10.0) -> list[float]:
    """The full-jitter ceilings of the first ``count`` retries."""
    return [min(cap, base * 2**attempt) for attempt in range(count)]


def assert_key_absent(error: ProviderCallError, key: str) -> None:
    """The key is in neither the message nor any note."""
    assert key not in str(error)
    assert all(key not in note for note in error.failure.notes)


def free_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---------------------------------------------------------------- Anthropic: success


def test_anthropic_normal_answer_and_request(fake_llm) -> None:
    server = fake_llm(
        Reply(
            "def encode(): ...",
            input_tokens=1200,
            output_tokens=300,
            cache_read_tokens=1000,
            cache_write_tokens=500,
        )
    )
    sleeps = Sleeps()
    reply = anthropic(server, sleeps).complete(PROMPT)

    assert isinstance(reply, ModelReply)
    assert reply.text == "def encode(): ..."
    assert reply.provider == "anthropic"
    assert reply.model == MODEL
    assert (reply.input_tokens, reply.output_tokens) == (1200, 300)
    assert (reply.cache_read_tokens, reply.cache_write_tokens) == (1000, 500)
    assert reply.cost_usd == pytest.approx(call_cost(MODEL, 1200, 300, 1000, 500))
    assert reply.cost_usd > 0
    assert reply.latency_s > 0
    assert reply.retries == 0
    assert reply.stop_reason == "end_turn"
    assert sleeps == []

    (request,) = server.requests
    assert request.path == "/v1/messages"
    body = request.body
    assert body["model"] == MODEL
    assert body["max_tokens"] == 1000
    assert body["temperature"] == 0.5
    assert body["system"] == [
        {"type": "text", "text": PROMPT.system, "cache_control": {"type": "ephemeral"}}
    ]
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["messages"] == [{"role": "user", "content": "Write a codec."}]
    assert "stream" not in body or body["stream"] is False
    # The key travels in exactly one auth header (this SDK version sends it as a bearer
    # token; older ones used x-api-key) and nowhere else, not in the body either.
    carriers = [name for name, value in request.headers.items() if ANTHROPIC_KEY in value]
    assert len(carriers) == 1
    assert carriers[0] in ("x-api-key", "authorization")
    assert request.headers[carriers[0]] in (ANTHROPIC_KEY, f"Bearer {ANTHROPIC_KEY}")
    assert ANTHROPIC_KEY.encode() not in request.raw


def test_anthropic_model_as_answered_priced_by_alias(fake_llm) -> None:
    server = fake_llm(Reply("x", model=f"{MODEL}-20261001"))
    reply = anthropic(server, Sleeps()).complete(PROMPT)
    assert reply.model == f"{MODEL}-20261001"
    assert reply.cost_usd == pytest.approx(call_cost(MODEL, 120, 30))


def test_anthropic_unknown_model_costs_zero(fake_llm) -> None:
    server = fake_llm(Reply("x"))
    provider = AnthropicProvider(
        "claude-experimental", api_key=ANTHROPIC_KEY, base_url=server.url, sleep=Sleeps()
    )
    reply = provider.complete(PROMPT)
    assert reply.model == "claude-experimental"
    assert reply.cost_usd == 0.0


def test_anthropic_joins_text_blocks_only(fake_llm) -> None:
    answer = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "first "},
            {"type": "text", "text": "second"},
        ],
        "stop_reason": "max_tokens",
        "usage": {"input_tokens": 5, "output_tokens": 6},
    }
    server = fake_llm(Raw(json.dumps(answer).encode()))
    reply = anthropic(server, Sleeps()).complete(PROMPT)
    assert reply.text == "first second"
    assert reply.stop_reason == "max_tokens"
    assert (reply.cache_read_tokens, reply.cache_write_tokens) == (0, 0)


def test_anthropic_enormous_answer_is_returned_intact(fake_llm) -> None:
    huge = Huge(2 * 1024 * 1024)
    server = fake_llm(huge)
    reply = anthropic(server, Sleeps()).complete(PROMPT)
    assert len(reply.text) == 2 * 1024 * 1024
    assert reply.text == huge.text


# ---------------------------------------------------------------- Anthropic: retries


def test_anthropic_529_then_429_retry_after_then_success(fake_llm) -> None:
    server = fake_llm(Status(529), Status(429, headers={"retry-after": "2"}), Reply("done"))
    sleeps = Sleeps()
    reply = anthropic(server, sleeps).complete(PROMPT)

    assert reply.text == "done"
    assert reply.retries == 2
    assert len(sleeps) == 2
    assert 0.0 <= sleeps[0] <= 1.0  # full jitter, attempt 0: uniform(0, base)
    assert sleeps[0] == random.Random(SEED).uniform(0.0, 1.0)  # the seeded draw
    assert sleeps[1] == 2.0  # retry-after honoured instead of the jitter
    assert len(server.requests) == 3


def test_anthropic_5xx_then_success(fake_llm) -> None:
    server = fake_llm(Status(500), Status(502), Status(503), Reply("fine"))
    sleeps = Sleeps()
    reply = anthropic(server, sleeps, max_retries=3).complete(PROMPT)
    assert reply.text == "fine"
    assert reply.retries == 3
    assert all(0.0 <= s <= bound for s, bound in zip(sleeps, jitter_bounds(3), strict=True))


def test_anthropic_retry_after_is_capped_and_may_be_a_float(fake_llm) -> None:
    server = fake_llm(
        Status(429, headers={"retry-after": "120"}),
        Status(529, headers={"retry-after": "0.25"}),
        Reply("ok"),
    )
    sleeps = Sleeps()
    reply = anthropic(server, sleeps, backoff_max_s=5.0).complete(PROMPT)
    assert reply.retries == 2
    assert sleeps == [5.0, 0.25]


def test_anthropic_gives_up_after_max_retries_with_notes(fake_llm) -> None:
    server = fake_llm(*[Status(529)] * 5)
    sleeps = Sleeps()
    with pytest.raises(ProviderCallError) as caught:
        anthropic(server, sleeps, max_retries=2).complete(PROMPT)
    error = caught.value
    assert "after 2 retries" in str(error)
    assert "529" in str(error)
    assert "\n" not in str(error)
    assert error.failure.retries == 2
    assert error.failure.latency_s > 0
    assert len(error.failure.notes) == 3
    assert all("HTTP 529" in note for note in error.failure.notes)
    assert len(sleeps) == 2
    assert len(server.requests) == 3


def test_anthropic_empty_script_answers_500_and_is_retried(fake_llm) -> None:
    server = fake_llm()
    with pytest.raises(ProviderCallError, match="HTTP 500"):
        anthropic(server, Sleeps(), max_retries=1).complete(PROMPT)
    assert len(server.requests) == 2


def test_anthropic_dropped_connection_is_retried(fake_llm) -> None:
    server = fake_llm(Drop(), Reply("after drop"))
    reply = anthropic(server, Sleeps()).complete(PROMPT)
    assert reply.text == "after drop"
    assert reply.retries == 1


def test_anthropic_connection_errors_exhaust_retries(fake_llm) -> None:
    server = fake_llm(Drop(), Drop(), Drop())
    sleeps = Sleeps()
    with pytest.raises(ProviderCallError) as caught:
        anthropic(server, sleeps, max_retries=2).complete(PROMPT)
    assert caught.value.failure.retries == 2
    assert len(caught.value.failure.notes) == 3
    assert all("connection error" in note for note in caught.value.failure.notes)
    assert len(sleeps) == 2


def test_anthropic_wrong_port_is_a_connection_error() -> None:
    sleeps, port = Sleeps(), free_port()
    provider = anthropic(f"http://127.0.0.1:{port}", sleeps, max_retries=2)
    with pytest.raises(ProviderCallError) as caught:
        provider.complete(PROMPT)
    error = caught.value
    assert "after 2 retries" in str(error)
    assert f"connection error to http://127.0.0.1:{port}/v1/messages (" in str(error)
    assert len(error.failure.notes) == 3
    assert len(sleeps) == 2
    assert_key_absent(error, ANTHROPIC_KEY)


def test_anthropic_timeout_then_success(fake_llm) -> None:
    server = fake_llm(Sleep(5.0), Reply("patience"))
    reply = anthropic(server, Sleeps(), timeout_s=0.3).complete(PROMPT)
    assert reply.text == "patience"
    assert reply.retries == 1
    assert reply.latency_s >= 0.3


def test_anthropic_timeouts_exhaust_retries(fake_llm) -> None:
    server = fake_llm(Sleep(5.0), Sleep(5.0))
    sleeps = Sleeps()
    started = time.monotonic()
    with pytest.raises(ProviderCallError) as caught:
        anthropic(server, sleeps, timeout_s=0.3, max_retries=1).complete(PROMPT)
    assert time.monotonic() - started < 4.0
    error = caught.value
    assert "timed out" in str(error)
    assert error.failure.retries == 1
    assert len(error.failure.notes) == 2
    assert all("timed out" in note for note in error.failure.notes)
    assert len(sleeps) == 1


# ---------------------------------------------------------------- Anthropic: final errors


@pytest.mark.parametrize("code", [400, 401, 403, 404, 413])
def test_anthropic_client_errors_are_not_retried_and_hide_the_key(fake_llm, code: int) -> None:
    # A careless server echoes the key in its error text; it must be scrubbed.
    body = {"type": "error", "error": {"type": "x", "message": f"bad key {ANTHROPIC_KEY}"}}
    server = fake_llm(Status(code, body=body), Reply("never reached"))
    sleeps = Sleeps()
    with pytest.raises(ProviderCallError) as caught:
        anthropic(server, sleeps).complete(PROMPT)
    error = caught.value
    message = str(error)
    assert f"HTTP {code}" in message
    assert "not retryable" in message
    assert "\n" not in message
    assert "***" in message
    assert_key_absent(error, ANTHROPIC_KEY)
    assert error.failure.retries == 0
    assert len(error.failure.notes) == 1
    assert sleeps == []
    assert len(server.requests) == 1
    assert server.remaining == 1


@pytest.mark.parametrize(
    "body",
    [
        b"this is not json {",
        b'{"type": "message", "role": "assistant"}',
        b'{"type": "message", "content": [{"type": "tool_use", "id": "t", "name": "f", '
        b'"input": {}}], "usage": {"input_tokens": 1, "output_tokens": 1}}',
    ],
    ids=["not-json", "no-content", "no-text-block"],
)
def test_anthropic_malformed_200_is_a_clear_final_error(fake_llm, body: bytes) -> None:
    server = fake_llm(Raw(body), Reply("never reached"))
    sleeps = Sleeps()
    with pytest.raises(ProviderCallError) as caught:
        anthropic(server, sleeps).complete(PROMPT)
    message = str(caught.value)
    assert "malformed answer" in message
    assert "\n" not in message
    assert caught.value.failure.retries == 0
    assert sleeps == []
    assert len(server.requests) == 1


@pytest.mark.parametrize("key", [None, ""])
def test_anthropic_missing_key_fails_at_construction(key: str | None) -> None:
    with pytest.raises(ProviderError) as caught:
        AnthropicProvider(MODEL, api_key=key)
    message = str(caught.value)
    assert message.startswith("ANTHROPIC_API_KEY is not set; ")
    assert "\n" not in message
    assert not isinstance(caught.value, ProviderCallError)


def test_no_temperature_is_sent_unless_set(fake_llm) -> None:
    # Claude models from Sonnet 5 on answer 400 to any sampling parameter.
    server = fake_llm(Reply("x"), Reply("y"))
    anthropic(server, Sleeps(), temperature=None).complete(PROMPT)
    openai_provider(server, Sleeps(), temperature=None).complete(PROMPT)
    assert [("temperature" in request.body) for request in server.requests] == [False, False]


def test_providers_declare_capabilities_not_names(fake_llm) -> None:
    from aicodec.providers.mutation import MutationProvider

    server = fake_llm()
    model_providers = (anthropic(server, Sleeps()), openai_provider(server, Sleeps()))
    for provider in model_providers:
        assert provider.capabilities.writes_code_by_model and provider.capabilities.plans
        assert not provider.capabilities.proposes_locally
        with pytest.raises(ProviderError, match="proposes nothing"):
            provider.propose("PARAMS = {}")
    mutation = MutationProvider()
    assert mutation.capabilities.proposes_locally and not mutation.capabilities.plans
    with pytest.raises(ProviderError, match="answers no prompts"):
        mutation.complete(PROMPT)
    assert server.requests == []


# ---------------------------------------------------------------- OpenAI-compatible


def test_openai_normal_answer_and_request(fake_llm) -> None:
    server = fake_llm(Reply("print('hi')", input_tokens=90, output_tokens=40, cache_read_tokens=10))
    sleeps = Sleeps()
    reply = openai_provider(server, sleeps).complete(PROMPT)

    assert reply.text == "print('hi')"
    assert reply.provider == "openai"
    assert reply.model == "qwen-local"
    assert (reply.input_tokens, reply.output_tokens) == (90, 40)  # uncached input
    assert reply.cache_read_tokens == 10
    assert reply.cache_write_tokens == 0
    assert reply.cost_usd == 0.0  # a local model is not in the price table
    assert reply.latency_s > 0
    assert reply.retries == 0
    assert reply.stop_reason == "stop"

    (request,) = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.body["model"] == "qwen-local"
    assert request.body["max_tokens"] == 800
    assert request.body["temperature"] == 0.2
    assert request.body["messages"] == [
        {"role": "system", "content": PROMPT.system},
        {"role": "user", "content": "Write a codec."},
    ]
    assert request.headers["authorization"] == "Bearer none"  # placeholder for local servers


def test_openai_priced_model_and_key_only_in_authorization(fake_llm) -> None:
    server = fake_llm(Reply("x"))
    reply = openai_provider(server, Sleeps(), model=MODEL, api_key=OPENAI_KEY).complete(PROMPT)
    assert reply.cost_usd == pytest.approx(call_cost(MODEL, 120, 30))
    (request,) = server.requests
    assert request.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    others = {name: value for name, value in request.headers.items() if name != "authorization"}
    assert OPENAI_KEY not in json.dumps(others)
    assert OPENAI_KEY.encode() not in request.raw


def test_openai_429_retry_after_then_success(fake_llm) -> None:
    server = fake_llm(Status(429, headers={"retry-after": "2"}), Status(503), Reply("ok"))
    sleeps = Sleeps()
    reply = openai_provider(server, sleeps).complete(PROMPT)
    assert reply.text == "ok"
    assert reply.retries == 2
    assert sleeps[0] == 2.0
    assert 0.0 <= sleeps[1] <= 2.0


def test_openai_timeouts_exhaust_retries(fake_llm) -> None:
    server = fake_llm(Sleep(5.0), Sleep(5.0))
    sleeps = Sleeps()
    with pytest.raises(ProviderCallError) as caught:
        openai_provider(server, sleeps, timeout_s=0.3, max_retries=1).complete(PROMPT)
    assert "timed out" in str(caught.value)
    assert caught.value.failure.retries == 1
    assert len(caught.value.failure.notes) == 2
    assert len(sleeps) == 1


def test_openai_401_not_retried_and_key_scrubbed(fake_llm) -> None:
    body = {"error": {"message": f"Incorrect API key provided: {OPENAI_KEY}", "type": "auth"}}
    server = fake_llm(Status(401, body=body), Reply("never reached"))
    sleeps = Sleeps()
    with pytest.raises(ProviderCallError) as caught:
        openai_provider(server, sleeps, api_key=OPENAI_KEY).complete(PROMPT)
    error = caught.value
    assert "HTTP 401" in str(error)
    assert "***" in str(error)
    assert "\n" not in str(error)
    assert_key_absent(error, OPENAI_KEY)
    assert error.failure.retries == 0
    assert sleeps == []
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "body",
    [b"<html>oops</html>", b'{"object": "chat.completion", "choices": []}'],
    ids=["not-json", "no-choices"],
)
def test_openai_malformed_200_is_a_clear_final_error(fake_llm, body: bytes) -> None:
    server = fake_llm(Raw(body), Reply("never reached"))
    sleeps = Sleeps()
    with pytest.raises(ProviderCallError, match="malformed answer") as caught:
        openai_provider(server, sleeps).complete(PROMPT)
    assert caught.value.failure.retries == 0
    assert sleeps == []
    assert len(server.requests) == 1


def test_openai_enormous_answer_is_returned_intact(fake_llm) -> None:
    huge = Huge(2 * 1024 * 1024)
    server = fake_llm(huge)
    assert openai_provider(server, Sleeps()).complete(PROMPT).text == huge.text


@pytest.mark.parametrize("base_url", [None, ""])
def test_openai_missing_base_url_fails_at_construction(base_url: str | None) -> None:
    with pytest.raises(ProviderError) as caught:
        OpenAIProvider("qwen-local", base_url=base_url)  # type: ignore[arg-type]
    assert "base URL" in str(caught.value)
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------- the retry helpers


def test_retry_helpers() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after("-3") is None
    assert parse_retry_after("nan") is None
    rng = random.Random(SEED)
    for attempt in range(12):
        delay = backoff_delay(attempt, base_s=1.0, max_s=60.0, rng=rng)
        assert 0.0 <= delay <= min(60.0, 2.0**attempt)
    assert backoff_delay(3, base_s=1.0, max_s=60.0, rng=rng, retry_after_s=7.0) == 7.0
    assert backoff_delay(3, base_s=1.0, max_s=5.0, rng=rng, retry_after_s=7.0) == 5.0
    assert scrub("key=abc and abc", ["abc", None, ""]) == "key=*** and ***"


def test_fake_server_stops_cleanly_with_a_sleeping_handler() -> None:
    with FakeLLM([Sleep(30.0)]) as server:
        provider = anthropic(server, Sleeps(), timeout_s=0.2, max_retries=0)
        with pytest.raises(ProviderCallError):
            provider.complete(PROMPT)
        started = time.monotonic()
    assert time.monotonic() - started < 5.0
    assert server.errors == []
