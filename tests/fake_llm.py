"""A scripted fake LLM server speaking the Anthropic Messages and OpenAI chat-completions APIs.

The server binds 127.0.0.1 on a free port and answers ``POST /v1/messages`` and
``POST /v1/chat/completions``. Each request consumes the next behaviour of its script
(``Reply``, ``Status``, ``Sleep``, ``Raw``, ``Huge``, ``Drop``); when the script is empty it
answers 500. Every request is recorded (path, lower-cased headers, parsed JSON body) so that
tests can check what the real client libraries sent.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

ANTHROPIC_PATH = "/v1/messages"
OPENAI_PATH = "/v1/chat/completions"
MAX_REQUEST_BYTES = 64 * 1024**2
HANDLER_SOCKET_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Reply:
    """A normal answer carrying ``text`` (the model name echoes the request unless given)."""

    text: str = "ok"
    model: str | None = None
    input_tokens: int = 120
    output_tokens: int = 30
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    stop_reason: str = "end_turn"  # Anthropic; the OpenAI answer uses finish_reason
    finish_reason: str = "stop"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Huge:
    """A normal answer whose text is ``n_chars`` long (a repeated, checkable pattern)."""

    n_chars: int
    unit: str = "0123456789abcdefghijklmnopqrstuvwxyz\n"

    @property
    def text(self) -> str:
        """The exact text the server sends."""
        repeats = self.n_chars // len(self.unit) + 1
        return (self.unit * repeats)[: self.n_chars]


@dataclass(frozen=True)
class Status:
    """An HTTP error answer; ``body`` None gives an API-shaped error JSON for the path."""

    code: int
    body: Mapping[str, Any] | bytes | str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sleep:
    """Hold the connection ``seconds`` (woken early when the server stops), then send ``then``."""

    seconds: float
    then: Reply | Status | None = None


@dataclass(frozen=True)
class Raw:
    """Send ``body`` bytes as they are (by default a 200 that claims to be JSON)."""

    body: bytes
    status: int = 200
    content_type: str = "application/json"


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering anything."""


Behaviour = Reply | Huge | Status | Sleep | Raw | Drop


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes


ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def anthropic_message(reply: Reply | Huge, model: str) -> dict[str, Any]:
    """The JSON of an Anthropic Messages API answer."""
    text = reply.text
    base = reply if isinstance(reply, Reply) else Reply()
    return {
        "id": "msg_fake_0001",
        "type": "message",
        "role": "assistant",
        "model": base.model or model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": base.stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": base.input_tokens,
            "output_tokens": base.output_tokens,
            "cache_read_input_tokens": base.cache_read_tokens,
            "cache_creation_input_tokens": base.cache_write_tokens,
        },
    }


def openai_completion(reply: Reply | Huge, model: str) -> dict[str, Any]:
    """The JSON of an OpenAI chat-completion answer."""
    base = reply if isinstance(reply, Reply) else Reply()
    prompt_tokens = base.input_tokens + base.cache_read_tokens
    return {
        "id": "chatcmpl-fake-0001",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": base.model or model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text},
                "finish_reason": base.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": base.output_tokens,
            "total_tokens": prompt_tokens + base.output_tokens,
            "prompt_tokens_details": {"cached_tokens": base.cache_read_tokens},
        },
    }


def error_body(path: str, code: int) -> dict[str, Any]:
    """An API-shaped error body for ``code`` in the dialect of ``path``."""
    kind = ERROR_TYPES.get(code, "api_error")
    message = f"fake server error {code}"
    if path == OPENAI_PATH:
        return {"error": {"message": message, "type": kind, "param": None, "code": str(code)}}
    return {"type": "error", "error": {"type": kind, "message": message}}


class _Server(ThreadingHTTPServer):
    """The HTTP server; handler threads are joined on close."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, owner: FakeLLM) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Keep handler errors for the tests instead of printing them."""
        self.owner.errors.append(f"error while serving {client_address}")


class _Handler(BaseHTTPRequestHandler):
    """Answers one request per connection from the owner's script."""

    server: _Server
    protocol_version = "HTTP/1.0"
    timeout = HANDLER_SOCKET_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:
        """Stay silent."""

    def do_POST(self) -> None:
        """Record the request, then act out the next behaviour of the script."""
        owner = self.server.owner
        path = urlsplit(self.path).path
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_REQUEST_BYTES:
            self._send_json(413, error_body(path, 413))
            return
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {name.lower(): value for name, value in self.headers.items()}
        owner.record(RecordedRequest("POST", path, headers, body, raw))
        if path not in (ANTHROPIC_PATH, OPENAI_PATH):
            self._send_json(404, error_body(path, 404))
            return
        model = body.get("model", "unknown") if isinstance(body, dict) else "unknown"
        self._act(owner.next_behaviour(), path, model)

    def _act(self, behaviour: Behaviour | None, path: str, model: str) -> None:
        """Send what one behaviour says (None: the script ran out, answer 500)."""
        if behaviour is None:
            self._send_json(500, error_body(path, 500))
        elif isinstance(behaviour, Reply | Huge):
            build = openai_completion if path == OPENAI_PATH else anthropic_message
            extra = behaviour.headers if isinstance(behaviour, Reply) else {}
            self._send_json(200, build(behaviour, model), extra)
        elif isinstance(behaviour, Status):
            body = (
                behaviour.body if behaviour.body is not None else error_body(path, behaviour.code)
            )
            if isinstance(body, Mapping):
                self._send_json(behaviour.code, body, behaviour.headers)
            else:
                data = body.encode() if isinstance(body, str) else body
                self._send_bytes(behaviour.code, data, "text/plain", behaviour.headers)
        elif isinstance(behaviour, Sleep):
            self.server.owner.stopping.wait(behaviour.seconds)
            self._act(behaviour.then or Reply("late answer"), path, model)
        elif isinstance(behaviour, Raw):
            self._send_bytes(behaviour.status, behaviour.body, behaviour.content_type, {})
        else:  # Drop: say nothing and let the connection close
            self.close_connection = True

    def _send_json(
        self, code: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        """Send a JSON answer."""
        data = json.dumps(payload).encode()
        self._send_bytes(code, data, "application/json", headers or {})

    def _send_bytes(
        self, code: int, data: bytes, content_type: str, headers: Mapping[str, str]
    ) -> None:
        """Send an answer; a client that already hung up is not an error."""
        try:
            self.send_response(code)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True


class FakeLLM:
    """The fake server: start it (or use ``with``), point a client at ``url``, read ``requests``."""

    def __init__(self, script: Iterable[Behaviour] = ()) -> None:
        self._script: deque[Behaviour] = deque(script)
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeLLM:
        """Bind a free port on 127.0.0.1 and serve in a background thread."""
        if self._server is not None:
            return self
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Wake sleeping handlers, stop serving, close the socket and join every thread."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self.stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._server is None:
            raise RuntimeError("the fake LLM server is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL for the Anthropic client."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        """Base URL for the OpenAI client (it appends /chat/completions)."""
        return f"{self.url}/v1"

    def add(self, *behaviours: Behaviour) -> None:
        """Append behaviours to the script."""
        with self._lock:
            self._script.extend(behaviours)

    def next_behaviour(self) -> Behaviour | None:
        """Take the next behaviour, or None when the script ran out."""
        with self._lock:
            return self._script.popleft() if self._script else None

    def record(self, request: RecordedRequest) -> None:
        """Keep one received request."""
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def remaining(self) -> int:
        """How many behaviours of the script are left."""
        with self._lock:
            return len(self._script)


def fake_llm_fixture(name: str = "fake_llm") -> Callable[..., Any]:
    """A pytest fixture yielding ``start(*script) -> FakeLLM``; every server stops at teardown.

    Use it in a test module as ``fake_llm = fake_llm_fixture()``.
    """

    def fixture() -> Iterator[Callable[..., FakeLLM]]:
        servers: list[FakeLLM] = []

        def start(*script: Behaviour) -> FakeLLM:
            server = FakeLLM(script).start()
            servers.append(server)
            return server

        try:
            yield start
        finally:
            for server in servers:
                server.stop()

    return pytest.fixture(fixture, name=name)
