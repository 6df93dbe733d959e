"""aicodec generate and logs: provider choice, the offline path, prompts within budget."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from aicodec.errors import GenerationError
from aicodec.generation.material import failures_section
from aicodec.generation.prompts import (
    Block,
    ParentCodec,
    PromptMaterial,
    Section,
    estimate_tokens,
    generate_prompt,
    plan_prompt,
)
from aicodec.settings import Settings
from tests.test_cli import assert_one_line_error

SEEDS = Path(__file__).resolve().parents[1] / "baselines" / "seeds"


def aicodec_env(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``aicodec ARGS`` with exactly the given extra environment (keys removed)."""
    removed = ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "AICODEC_PROVIDER")
    base = {key: value for key, value in os.environ.items() if key not in removed}
    return subprocess.run(
        [sys.executable, "-m", "aicodec", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=600,
        check=False,
    )


@pytest.mark.slow
def test_offline_generation_without_a_key(tmp_path: Path) -> None:
    db = str(tmp_path / "store.db")
    # a fixed parent: whether two rounds' random draws collide depends on the parent's bytes,
    # and the default (hybrid) seed is still being tuned
    generate = ("generate", "--parent", str(SEEDS / "intra_dct.py"))
    result = aicodec_env(*generate, "--n", "3", "--db", db, "--json")
    assert result.returncode == 0, result.stderr
    assert "provider: mutation (no ANTHROPIC_API_KEY: offline mutation search)" in result.stderr
    data = json.loads(result.stdout)
    assert data["provider"] == "mutation" and data["calls"] == 0
    candidates = data["candidates"]
    assert len(candidates) == 3 and len({item["code_hash"] for item in candidates}) == 3
    for item in candidates:
        assert {"id", "valid", "code_hash", "parent", "origin"} <= set(item)
        assert item["valid"] and item["origin"] == "mutation" and item["status"] == "new"
        assert item["parent"] == data["parent"]
    assert all(" -> " in item["reason"] for item in candidates)  # which parameters changed
    again = json.loads(aicodec_env(*generate, "--n", "3", "--db", db, "--json").stdout)
    assert {item["status"] for item in again["candidates"]} == {"new"}  # a new round
    fresh = json.loads(
        aicodec_env(*generate, "--n", "3", "--db", str(tmp_path / "other.db"), "--json").stdout
    )  # the same seed on an empty store repeats the first round exactly
    assert [i["code_hash"] for i in fresh["candidates"]] == [i["code_hash"] for i in candidates]
    other_seed = json.loads(
        aicodec_env(*generate, "--n", "2", "--seed", "7", "--db", db, "--json").stdout
    )
    assert {item["status"] for item in other_seed["candidates"]} == {"new"}


@pytest.mark.slow
def test_children_of_a_stored_candidate_and_of_a_file(tmp_path: Path) -> None:
    db = str(tmp_path / "store.db")
    first = json.loads(aicodec_env("generate", "--db", db, "--json").stdout)
    with sqlite3.connect(tmp_path / "store.db") as connection:  # no --parent: the hybrid seed
        seed = connection.execute(
            "SELECT name, origin, source FROM candidates WHERE id = ?", (first["parent"],)
        ).fetchone()
    assert seed == ("hybrid.py", "seed", (SEEDS / "hybrid.py").read_text(encoding="utf-8"))
    child_id = str(first["candidates"][0]["id"])
    grand = json.loads(aicodec_env("generate", "--parent", child_id, "--db", db, "--json").stdout)
    assert grand["parent"] == int(child_id)
    from_file = aicodec_env(
        "generate", "--parent", str(SEEDS / "intra_dct.py"), "--db", db, "--json"
    )
    assert json.loads(from_file.stdout)["candidates"][0]["valid"] is True
    assert_one_line_error(aicodec_env("generate", "--parent", "999", "--db", db), "no candidate")
    hostile = Path(__file__).parent / "hostile_static" / "import_os.py"
    assert_one_line_error(
        aicodec_env("generate", "--parent", str(hostile), "--db", db), "not a valid codec"
    )


@pytest.mark.slow  # one of the slowest of the fast lane
def test_anthropic_without_a_key_is_one_line(tmp_path: Path) -> None:
    result = aicodec_env("generate", "--provider", "anthropic", "--db", str(tmp_path / "s.db"))
    assert_one_line_error(result, "ANTHROPIC_API_KEY")
    assert_one_line_error(
        aicodec_env("generate", "--provider", "openai", "--db", str(tmp_path / "s.db")),
        "AICODEC_OPENAI_BASE_URL",
    )
    assert_one_line_error(
        aicodec_env("generate", "--provider", "gpt9", "--db", str(tmp_path / "s.db")), "gpt9"
    )


def failures_material(lines: list[str]) -> PromptMaterial:
    """Prompt material with only a failures section."""
    return PromptMaterial((failures_section(lines),))


def test_prompt_history_is_trimmed_by_whole_entries_to_fit_the_budget() -> None:
    source = (SEEDS / "intra_dct.py").read_text()
    parent = ParentCodec(1, "intra_dct.py", source)
    failures = [
        f"- candidate {i}, quality 60: encode error: ValueError number {i}" for i in range(400)
    ]
    roomy = generate_prompt(Settings(), parent, failures_material(failures[:3]))
    assert "ValueError number 2" in roomy.messages[0]["content"]
    assert "dropped" not in roomy.messages[0]["content"]
    tight = Settings(prompt_budget_tokens=estimate_tokens(roomy.system) + 7000)
    prompt = generate_prompt(tight, parent, failures_material(failures))
    text = prompt.messages[0]["content"]
    assert estimate_tokens(prompt.system) + estimate_tokens(text) <= tight.prompt_budget_tokens
    assert "ValueError number 0\n" in text  # newest kept
    assert "ValueError number 399" not in text  # oldest left out
    kept = text.count("- candidate ")
    assert f"(dropped to fit the prompt budget: {400 - kept} older failures)" in text
    for line in text.splitlines():
        if line.startswith("- candidate"):
            assert line.endswith(line.split()[-1]) and "ValueError number" in line  # whole lines
    with pytest.raises(GenerationError, match="over the"):
        generate_prompt(Settings(prompt_budget_tokens=2000), parent, PromptMaterial())
    assert prompt.system.count("encode(frames, quality: int) -> bytes") == 1  # the contract


@pytest.mark.slow
def test_planning_prompt_asks_for_the_plan_sections_within_budget() -> None:
    entries = Settings().prompt_budget_tokens // 10  # about 40 tokens each: four budgets' worth
    note = "decode 0.52 s; qp_shift 0.0 -> 1.25, lambda_scale 1.0 -> 0.8, search_range 12 -> 16"
    history = tuple(
        Block((f"- candidate {i}: BD-rate vs x264 +{60 + i}.0 %, {note}",), 0, "entries", "entry")
        for i in range(entries)
    )
    material = PromptMaterial((Section("# Candidates", (), history),), None, ("Parent: c 1",))
    prompt = plan_prompt(Settings(), material)
    text = prompt.messages[0]["content"]
    assert prompt.purpose == "plan"
    for section in ("ROOT CAUSE:", "HYPOTHESIS:", "PLAN:", "EXPECTED BD-RATE:", "CONFIDENCE:"):
        assert section in text
    assert "Parent: c 1" in text and "- candidate 0:" in text
    assert f"- candidate {entries - 1}:" not in text and " entries)" in text
    total = estimate_tokens(prompt.system) + estimate_tokens(text)
    assert total <= Settings().prompt_budget_tokens


def test_default_parent_is_the_adopted_codec_before_the_best_scored(tmp_path: Path) -> None:
    from aicodec.candidates.records import record_candidate
    from aicodec.generation.generate import resolve_parent
    from aicodec.store import AdoptionRecord, ClipRecord, ScoreRecord, Store

    store = Store(str(tmp_path / "store.db"))
    intra = record_candidate(store, (SEEDS / "intra_dct.py").read_text(), "intra_dct.py", "seed")
    motion = record_candidate(store, (SEEDS / "motion_dct.py").read_text(), "motion_dct.py", "seed")
    with store.session() as session:
        clip = ClipRecord(
            content_hash="c" * 64,
            name="c",
            source="c",
            start_frame=0,
            width=2,
            height=2,
            frame_count=1,
            fps_num=1,
            fps_den=1,
        )
        session.add(clip)
        session.flush()
        session.add(
            ScoreRecord(
                candidate_id=motion,
                clip_id=clip.id,
                qualities="20,40,60,80",
                bd_rate_json='{"x264-medium": 70.0}',
            )
        )
    assert resolve_parent(store, None).id == motion  # best scored, nothing adopted
    with store.session() as session:
        session.add(
            AdoptionRecord(
                candidate_id=intra,
                compared_with="x264-medium",
                adopted=True,
                forced=True,
                reason="forced",
                threshold=1.0,
                clips="[]",
                qualities="20,40,60,80",
            )
        )
    assert resolve_parent(store, None).id == intra  # the adopted current best comes first
    store.close()


def test_the_default_parent_is_the_hybrid_seed_and_its_prompt_fits(tmp_path: Path) -> None:
    from aicodec.generation.generate import DEFAULT_SEED, resolve_parent
    from aicodec.store import Store

    store = Store(str(tmp_path / "store.db"))
    parent = resolve_parent(store, None)  # an empty store: nothing adopted or scored
    store.close()
    assert DEFAULT_SEED == parent.name == "hybrid.py"
    assert parent.source == (SEEDS / "hybrid.py").read_text(encoding="utf-8")
    failures = [f"- candidate {i}, quality 60: decode error: IndexError {i}" for i in range(30)]
    settings = Settings()
    prompt = generate_prompt(settings, parent, failures_material(failures))
    text = prompt.messages[0]["content"]
    assert parent.source in text and "IndexError 29" in text  # the whole codec, all history
    assert estimate_tokens(prompt.system) + estimate_tokens(text) <= settings.prompt_budget_tokens
    # the complete file would not fit in an answer, so the prompt asks for edits
    assert estimate_tokens(parent.source) > settings.max_tokens
    assert "answer with SEARCH/REPLACE edits, not the complete file" in text.replace("\n", " ")
    intra = ParentCodec(1, "intra_dct.py", (SEEDS / "intra_dct.py").read_text())
    short = generate_prompt(settings, intra, failures_material(failures))
    assert "not the complete file" not in short.messages[0]["content"]
