"""generate driven by the real anthropic client against a fake Messages API on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aicodec.candidates.edits import EditError, extract_candidate
from aicodec.errors import ConfigError
from aicodec.generation.generate import GenerationRequest, generate_candidates, resolve_parent
from aicodec.providers.anthropic_provider import AnthropicProvider
from aicodec.providers.base import load_prices, price_table
from aicodec.settings import Settings
from aicodec.store import GenerationRecord, Store
from tests.fake_llm import Reply, Status, fake_llm_fixture
from tests.test_cli import assert_one_line_error
from tests.test_generate import aicodec_env

fake_llm = fake_llm_fixture()
SEED = Path(__file__).resolve().parents[1] / "baselines" / "seeds" / "intra_dct.py"
KEY = "sk-ant-test-KEY-0123456789"
PARENT = SEED.read_text()
BETTER = PARENT.replace('"quant_scale": 1.0', '"quant_scale": 1.15', 1)
HOSTILE = "import os\n\n" + PARENT


def fenced(code: str) -> str:
    return f"I coarsen the quantiser a little.\n\n```python\n{code}```\n"


def env_for(server) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        "ANTHROPIC_API_KEY": KEY,
        "ANTHROPIC_BASE_URL": server.url,
        "AICODEC_LLM_MAX_RETRIES": "1",
    }


MISSED_EDIT = "<<<<<<< SEARCH\nthis line is not in the parent\n=======\nx = 1\n>>>>>>> REPLACE\n"
GOOD_EDIT = (
    '<<<<<<< SEARCH\n    "quant_scale": 1.0,\n=======\n    "quant_scale": 1.3,\n>>>>>>> REPLACE\n'
)
MISSED_MESSAGE = "block 1: the SEARCH text is not in the parent"

SCRIPT = (
    Reply(fenced(BETTER), input_tokens=9000, output_tokens=4000, cache_read_tokens=1200),
    Reply(MISSED_EDIT),
    Reply(GOOD_EDIT),
    Reply("I think the codec is already perfect. No changes."),
    Reply(fenced(HOSTILE)),
    Reply(fenced(BETTER.replace('"deadzone": 0.15', '"deadzone": 0.25', 1))),
)


@pytest.mark.slow
def test_generate_with_claude_logs_every_call(fake_llm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert '"quant_scale": 1.0' in PARENT and '"deadzone": 0.15' in PARENT
    server = fake_llm(*SCRIPT)
    db = tmp_path / "store.db"
    args = ("generate", "--parent", str(SEED), "--n", "4", "--repairs", "1", "--db", str(db))
    result = aicodec_env(*args, "--json", env=env_for(server))
    assert result.returncode == 0, result.stderr
    assert "provider: anthropic (ANTHROPIC_API_KEY is set)" in result.stderr
    data = json.loads(result.stdout)
    statuses = [(item["status"], item["repairs"]) for item in data["candidates"]]
    assert statuses == [("new", 0), ("new", 1), ("failed", 0), ("new", 1)]
    reasons = [item["reason"] or "" for item in data["candidates"]]
    assert "no python code block" in reasons[2]
    assert data["calls"] == 6 and data["cost_usd"] > 0
    # what was sent: the cached system prompt with the contract, the parent in the message
    first = server.requests[0].body
    assert first["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert "def encode(frames, quality: int) -> bytes" in first["system"][0]["text"]
    assert PARENT.splitlines()[0] in first["messages"][0]["content"]
    edit_repair = server.requests[2].body["messages"]
    assert [turn["role"] for turn in edit_repair] == ["user", "assistant", "user"]
    assert MISSED_MESSAGE in edit_repair[2]["content"]
    repair = server.requests[5].body["messages"]
    assert [turn["role"] for turn in repair] == ["user", "assistant", "user"]
    assert "[import]" in repair[2]["content"]
    # the log: every call, its tokens and cost, never the key
    logs = json.loads(aicodec_env("logs", "--db", str(db), "--json").stdout)
    assert len(logs["calls"]) == 6
    newest_first = [call["purpose"] for call in logs["calls"]]
    assert newest_first == ["repair", "generate", "generate", "repair", "generate", "generate"]
    assert logs["calls"][-1]["cache_read_tokens"] == 1200
    assert logs["runs"][0]["calls"] == 6
    found = json.loads(
        aicodec_env("logs", "--db", str(db), "-q", "already perfect", "--json").stdout
    )
    assert [call["purpose"] for call in found["calls"]] == ["generate"]
    assert KEY.encode() not in db.read_bytes()
    assert "totals per run" in aicodec_env("logs", "--db", str(db)).stdout

    # replay: the recorded answers give the same candidates and decisions in a fresh store
    fresh = tmp_path / "fresh.db"
    replay = aicodec_env(
        *args[:-1], str(fresh), "--provider", "replay", "--json", env={"AICODEC_REPLAY_DB": str(db)}
    )
    assert replay.returncode == 0, replay.stderr
    again = json.loads(replay.stdout)
    keys = ("status", "repairs", "code_hash", "valid")
    assert [[item[k] for k in keys] for item in again["candidates"]] == [
        [item[k] for k in keys] for item in data["candidates"]
    ]


def test_budgets_stop_generation_cleanly(fake_llm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = fake_llm(*SCRIPT)
    result = aicodec_env(
        "generate",
        "--parent",
        str(SEED),
        "--n",
        "4",
        "--max-tokens",
        "100",
        "--db",
        str(tmp_path / "s.db"),
        "--json",
        env=env_for(server),
    )
    data = json.loads(result.stdout)
    assert data["calls"] == 1 and len(data["candidates"]) == 1
    assert data["stopped"].startswith("max-tokens 100 reached")
    assert "stopped: max-tokens" in result.stderr


@pytest.mark.slow
def test_a_model_that_answers_garbage_or_is_down(fake_llm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    garbage = fake_llm(*(Reply("no code here, sorry") for _ in range(3)))
    result = aicodec_env(
        "generate",
        "--parent",
        str(SEED),
        "--n",
        "3",
        "--db",
        str(tmp_path / "g.db"),
        "--json",
        env=env_for(garbage),
    )
    assert result.returncode == 1
    assert {item["status"] for item in json.loads(result.stdout)["candidates"]} == {"failed"}
    down = fake_llm(*(Status(529, headers={"retry-after": "0"}) for _ in range(4)))
    db = tmp_path / "d.db"
    failed = aicodec_env(
        "generate", "--parent", str(SEED), "--db", str(db), "--json", env=env_for(down)
    )
    assert failed.returncode == 1
    data = json.loads(failed.stdout)
    assert data["stopped"].startswith("provider failed") and KEY not in failed.stdout
    calls = json.loads(aicodec_env("logs", "--db", str(db), "--json").stdout)["calls"]
    assert len(calls) == 1 and calls[0]["retries"] == 1 and calls[0]["error"]
    unauthorised = fake_llm(Status(401))
    refused = aicodec_env(
        "generate", "--parent", str(SEED), "--db", str(db), env=env_for(unauthorised)
    )
    assert refused.returncode == 1 and KEY not in refused.stderr + refused.stdout
    assert_one_line_error(
        aicodec_env("generate", "--provider", "replay", "--db", str(tmp_path / "empty.db")),
        "no recorded model answers",
    )


def test_generate_with_a_local_openai_compatible_server(fake_llm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = fake_llm(Reply(fenced(BETTER)))
    args = ("--base-url", server.openai_url, "--model", "local-coder")
    result = aicodec_env(
        "generate", "--parent", str(SEED), *args, "--db", str(tmp_path / "o.db"), "--json"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["provider"] == "openai" and data["model"] == "local-coder"
    assert [item["status"] for item in data["candidates"]] == ["new"]
    sent = server.requests[0]
    assert sent.path == "/v1/chat/completions" and sent.body["model"] == "local-coder"
    assert sent.body["messages"][0]["role"] == "system"


# ------------------------------------------------ a SEARCH that misses gets its repair turn


@pytest.mark.parametrize("repairs", [1, 0])
def test_a_missed_search_gets_a_repair_turn(fake_llm, tmp_path: Path, repairs: int) -> None:  # type: ignore[no-untyped-def]
    server = fake_llm(Reply(MISSED_EDIT), Reply(GOOD_EDIT))
    store = Store(str(tmp_path / "s.db"))
    try:
        provider = AnthropicProvider(
            "claude-sonnet-5-5", api_key=KEY, base_url=server.url, max_retries=0
        )
        outcome = generate_candidates(
            store,
            Settings(),
            provider,
            "test",
            resolve_parent(store, str(SEED)),
            GenerationRequest(count=1, repairs=repairs),
        )
        with store.session() as session:
            recorded = [(row.status, row.repairs) for row in session.query(GenerationRecord)]
    finally:
        store.close()
    with pytest.raises(EditError) as missed:
        extract_candidate(MISSED_EDIT, PARENT)
    message = str(missed.value)  # the nearest-line message edits.py builds
    assert message.startswith(MISSED_MESSAGE) and "; the closest is line " in message
    (candidate,) = outcome.candidates
    if repairs == 0:  # no turn left: failed with that message, after one call
        assert (candidate.status, candidate.repairs, candidate.reason) == ("failed", 0, message)
        assert len(server.requests) == 1 and recorded == [("failed", 0)]
        return
    assert (candidate.status, candidate.repairs, candidate.origin) == ("new", 1, "llm")
    assert candidate.candidate_id is not None and recorded == [("new", 1)]
    second = server.requests[1].body["messages"]
    assert second[1] == {"role": "assistant", "content": MISSED_EDIT}
    assert message in second[2]["content"]


# ---------------------------------------------------------- budgets that cannot fail silently

UNPRICED = "claude-experimental-9"


@pytest.mark.slow
def test_max_cost_with_an_unpriced_model_is_refused(fake_llm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = fake_llm(Reply(fenced(BETTER)))
    args = ("--parent", str(SEED), "--model", UNPRICED, "--max-cost", "1")
    refused = aicodec_env("generate", *args, "--db", str(tmp_path / "g.db"), env=env_for(server))
    assert_one_line_error(refused, f"model {UNPRICED} is not in the price table")
    assert "--prices" in refused.stderr
    assert server.requests == []
    # without --max-cost the same model works (its cost is not known: logged as 0)
    prices = tmp_path / "prices.toml"
    prices.write_text(f'[models."{UNPRICED}"]\ninput = 1.0\noutput = 2.0\n')
    accepted = aicodec_env(
        "generate",
        *args,
        "--prices",
        str(prices),
        "--db",
        str(tmp_path / "a.db"),
        "--json",
        env=env_for(server),
    )
    assert accepted.returncode == 0, accepted.stderr
    data = json.loads(accepted.stdout)
    assert [item["status"] for item in data["candidates"]] == ["new"]
    assert data["cost_usd"] == pytest.approx((120 * 1.0 + 30 * 2.0) / 1e6)
    assert len(server.requests) == 1


def test_evolve_refuses_max_cost_with_an_unpriced_model(fake_llm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = fake_llm(Reply(fenced(BETTER)))
    refused = aicodec_env(
        "evolve",
        "--iterations",
        "1",
        "--frames",
        "4",
        "--encoders",
        "x264",
        "--model",
        UNPRICED,
        "--max-cost",
        "1",
        "--git-repo",
        str(tmp_path / "codecs"),
        "--db",
        str(tmp_path / "e.db"),
        env=env_for(server),
    )
    assert_one_line_error(refused, f"model {UNPRICED} is not in the price table")
    assert server.requests == []


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "does not exist"),
        ("[models.x\ninput = 1", "is not valid TOML"),
        ("[models.x]\ninput = -1.0\noutput = 2.0\n", "models.x.input must be 0 or more"),
        ("[models.x]\ninput = 1.0\n", "models.x has no output price"),
        ('[models.x]\ninput = "1"\noutput = 2.0\n', "models.x.input must be a number"),
    ],
)
def test_prices_file_errors_are_one_line(tmp_path: Path, content: str | None, said: str) -> None:
    path = tmp_path / "prices.toml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=said) as caught:
        price_table(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_prices_file_cli_error_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "prices.toml"
    bad.write_text("[models.x]\ninput = -1.0\noutput = 2.0\n")
    result = aicodec_env(
        "generate",
        "--provider",
        "mutation",
        "--parent",
        str(SEED),
        "--prices",
        str(bad),
        "--db",
        str(tmp_path / "p.db"),
    )
    assert_one_line_error(result, "models.x.input must be 0 or more")


def test_the_default_model_and_the_documented_models_are_priced() -> None:
    table = load_prices()
    assert Settings().model in table
    root = SEED.parents[2]
    docs = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    text = "\n".join(path.read_text() for path in docs)
    import re

    named = set(re.findall(r"`(claude-[a-z0-9-]+)`", text))
    assert named, "the docs name no Claude model"
    for name in named:
        assert name in table, name
