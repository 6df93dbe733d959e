"""What the prompts show: the parent beside the ladder on the training clips, its per-frame
PSNR-Y in short, PSNR-U/V, times against a child's limits, recent iterations; from a real
store filled by real scoring of a small clip."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update

from aicodec.clips import Clip, load_clip
from aicodec.evolution.planner import PastIteration
from aicodec.generation.material import gather
from aicodec.generation.prompts import (
    ParentCodec,
    estimate_tokens,
    generate_prompt,
    plan_prompt,
    timing_text,
)
from aicodec.ladder import load_ladder
from aicodec.providers.base import Prompt
from aicodec.providers.replay import prompt_hash
from aicodec.sandbox.runner import wall_limit
from aicodec.scoring.candidate import (
    ScoreOutcome,
    run_and_measure,
    score_clips,
    stored_frame_psnr_y,
)
from aicodec.settings import Settings
from aicodec.store import (
    BaselineEncode,
    EvolutionIteration,
    EvolutionRun,
    RunRecord,
    Store,
)

SEED = Path(__file__).resolve().parents[1] / "baselines" / "seeds" / "intra_dct.py"
QUALITIES = [30, 50, 70, 90]


@dataclass
class Lab:
    """A store where the intra seed is scored on a training and a holdout clip."""

    store: Store
    settings: Settings
    training: Clip
    holdout: Clip
    outcomes: list[ScoreOutcome]
    parent: ParentCodec

    def runs(self, clip: Clip) -> list[RunRecord]:
        """The parent's stored runs on ``clip``, by quality."""
        from aicodec.clips.records import record_clip

        with self.store.session() as session:
            return list(
                session.scalars(
                    select(RunRecord)
                    .where(RunRecord.clip_id == record_clip(self.store, clip))
                    .order_by(RunRecord.quality)
                )
            )

    def ladder_rows(self, clip: Clip) -> list[BaselineEncode]:
        """The stored x264 encodes of ``clip``."""
        from aicodec.clips.records import record_clip

        with self.store.session() as session:
            return list(
                session.scalars(
                    select(BaselineEncode).where(
                        BaselineEncode.clip_id == record_clip(self.store, clip)
                    )
                )
            )

    def training_id(self) -> int:
        from aicodec.clips.records import record_clip

        return record_clip(self.store, self.training)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    folder = tmp_path_factory.mktemp("prompt-material")
    settings = Settings(db=f"sqlite:///{folder / 'store.db'}")
    paths = [folder / "training.y4m", folder / "holdout.y4m"]
    load_clip(None, settings, count=4).frames.write_y4m(paths[0])
    load_clip(None, settings, start=10, count=4).frames.write_y4m(paths[1])
    training, holdout = (load_clip(path, settings) for path in paths)
    store = Store(settings.db)
    source = SEED.read_text(encoding="utf-8")
    outcomes = score_clips(
        source,
        "intra_dct.py",
        [training, holdout],
        store,
        settings,
        load_ladder(settings.ladder_file),
        QUALITIES,
        encoders=["x264"],
    )
    parent = ParentCodec(outcomes[0].candidate_id, "intra_dct.py", source)
    return Lab(store, settings, training, holdout, outcomes, parent)


def frame_psnr_y_by_numpy(reference: np.ndarray, decoded: np.ndarray) -> list[float]:
    """Each frame's PSNR-Y (dB) from its mean squared error, computed here independently."""
    errors = (reference.astype(np.float64) - decoded.astype(np.float64)) ** 2
    return [10 * math.log10(255.0**2 / float(mse)) for mse in errors.mean(axis=(1, 2))]


def test_each_run_stores_its_per_frame_psnr_y(lab: Lab) -> None:
    outcome = lab.outcomes[0]
    assert outcome.run is not None
    decoded = {point.quality: point.decoded for point in outcome.run.points}
    for row in lab.runs(lab.training):
        stored = json.loads(row.frame_psnr_y_json or "null")
        frames = decoded[row.quality]
        assert frames is not None
        expected = frame_psnr_y_by_numpy(lab.training.frames.y, frames.y)
        assert stored == pytest.approx(expected, abs=1e-9)
        # the clip's PSNR-Y is the PSNR of the mean of the frames' squared errors
        mean_mse = float(np.mean([255.0**2 / 10 ** (value / 10) for value in stored]))
        assert row.psnr_y == pytest.approx(10 * math.log10(255.0**2 / mean_mse), abs=1e-9)


def expected_figures(lab: Lab, clip: Clip, times: bool = True) -> list[str]:
    """Strings the prompt must hold for ``clip``: the ladder's points, the parent's PSNR-U/V,
    first and worst frame of each profile, and (``times``) times against a child's limits."""
    figures = [f"{row.kbps:.1f} at {row.psnr_y:.2f}" for row in lab.ladder_rows(clip)]
    assert len(figures) == 4  # the anchor's four rate points
    for run in lab.runs(clip):
        assert run.encode_wall_seconds and run.decode_wall_seconds and run.psnr_y
        figures.append(f"PSNR-Y {run.psnr_y:.2f} dB, U {run.psnr_u:.2f}, V {run.psnr_v:.2f}")
        if times:
            limit = wall_limit(lab.settings, run.encode_wall_seconds)
            figures.append(f"encode {run.encode_wall_seconds:.2f} s (child limit {limit:.0f} s)")
            limit = wall_limit(lab.settings, run.decode_wall_seconds)
            figures.append(f"decode {run.decode_wall_seconds:.2f} s (child limit {limit:.0f} s)")
        values = stored_frame_psnr_y(run)
        worst = min(range(len(values)), key=lambda index: values[index])
        mean = sum(values[1:]) / 3
        figures.append(
            f"q{run.quality}: frame 0 {values[0]:.2f} dB, frames 1-3 mean "
            f"{mean:.2f} dB; worst: #{worst} {values[worst]:.2f}"
        )
    return figures


def test_both_prompts_show_the_training_clips_beside_the_ladder_never_the_holdout(
    lab: Lab,
) -> None:
    material = gather(lab.store, lab.settings, lab.parent.id, clip_ids=[lab.training_id()])
    generation = generate_prompt(lab.settings, lab.parent, material).messages[0]["content"]
    planning = gather(
        lab.store, lab.settings, lab.parent.id, clip_ids=[lab.training_id()], failures=False
    )
    plan = plan_prompt(lab.settings, planning).messages[0]["content"]
    for text in (generation, plan):
        for figure in expected_figures(lab, lab.training):
            assert figure in text
        assert "## training.y4m: BD-rate vs x264-medium " in text
        assert "holdout" not in text
        for figure in expected_figures(lab, lab.holdout, times=False):
            assert figure not in text
        assert "dropped" not in text
    # with no clips named (aicodec generate without clips), every scored clip is shown
    everything = gather(lab.store, lab.settings, lab.parent.id)
    text = generate_prompt(lab.settings, lab.parent, everything).messages[0]["content"]
    assert "## holdout.y4m: BD-rate" in text and "## training.y4m: BD-rate" in text


def test_a_tight_budget_drops_whole_blocks_and_says_which(lab: Lab) -> None:
    material = gather(lab.store, lab.settings, lab.parent.id, clip_ids=[lab.training_id()])
    full = generate_prompt(lab.settings, lab.parent, material)
    size = estimate_tokens(full.system) + estimate_tokens(full.messages[0]["content"])
    tight = lab.settings.model_copy(update={"prompt_budget_tokens": size - 20})
    text = generate_prompt(tight, lab.parent, material).messages[0]["content"]
    assert "(dropped to fit the prompt budget: per-frame profile of training.y4m)" in text
    assert "Per-frame PSNR-Y" not in text and "frames 1-3 mean" not in text
    ladder = [f"{row.kbps:.1f} at {row.psnr_y:.2f}" for row in lab.ladder_rows(lab.training)]
    assert all(figure in text for figure in ladder)  # the ladder stays
    recent = [
        PastIteration(n, 1, n + 1, "scored", None, None, f"step {n}", -1.0, -0.5, f"idea {n}")
        for n in range(9, 0, -1)
    ]
    many = gather(
        lab.store, lab.settings, lab.parent.id, clip_ids=[lab.training_id()], recent=recent
    )
    roomy = generate_prompt(lab.settings, lab.parent, many).messages[0]["content"]
    assert (
        "- iteration 9: parent 1 -> candidate 10; hypothesis: idea 9; change: step 9; "
        "predicted -1.00 %, measured -0.50 % vs parent: did not beat the -1 % threshold" in roomy
    )
    assert "- iteration 2:" in roomy and "- iteration 1:" not in roomy  # the newest 8
    size = estimate_tokens(full.system) + estimate_tokens(roomy)
    tight = lab.settings.model_copy(update={"prompt_budget_tokens": size - 20})
    text = generate_prompt(tight, lab.parent, many).messages[0]["content"]
    assert "(dropped to fit the prompt budget: iteration 2)" in text  # older ones go first
    assert "- iteration 3:" in text and "frames 1-3 mean" in text
    older = [
        line
        for line in roomy.splitlines()
        if line.startswith(tuple(f"- iteration {n}:" for n in range(2, 7)))
    ]
    older_tokens = estimate_tokens("\n".join(older))
    tighter = lab.settings.model_copy(update={"prompt_budget_tokens": size - older_tokens - 10})
    text = generate_prompt(tighter, lab.parent, many).messages[0]["content"]
    assert (
        "(dropped to fit the prompt budget: 5 older iterations, per-frame profile of "
        "training.y4m" in text
    )
    assert "- iteration 9:" in text and "- iteration 6:" not in text


def test_stored_iterations_show_outside_evolve_and_old_runs_say_no_profile(lab: Lab) -> None:
    with lab.store.session() as session:
        run = EvolutionRun(
            batch="b",
            status="finished",
            iterations_planned=2,
            provider="anthropic",
            provider_reason="r",
            seed=0,
            start_parent_id=lab.parent.id,
            config_json="{}",
        )
        session.add(run)
        session.flush()
        plan = json.dumps({"hypothesis": "a finer chroma quantiser"})
        session.add(
            EvolutionIteration(
                run_id=run.id,
                number=1,
                status="failed",
                stage="end",
                plan_json=plan,
                predicted_bd_rate=-2.0,
                failure_kind="no-code",
                reason="no python code block",
            )
        )
        session.add(EvolutionIteration(run_id=run.id, number=2, status="running", stage="plan"))
        run_id = run.id
    material = gather(lab.store, lab.settings, lab.parent.id, clip_ids=[lab.training_id()])
    text = generate_prompt(lab.settings, lab.parent, material).messages[0]["content"]
    assert f"# Recent iterations of evolve run {run_id}, newest first" in text
    assert (
        "- iteration 1: parent None -> no candidate; hypothesis: a finer chroma quantiser; "
        "predicted -2.00 %; failed (no-code): no python code block"
    ) in text
    assert "- iteration 2" not in text  # not finished
    # runs stored before per-frame PSNR-Y was kept: reused as they are, the prompt says so
    with lab.store.session() as session:
        session.execute(update(RunRecord).values(frame_psnr_y_json=None))
    again = run_and_measure(
        lab.parent.source, "intra_dct.py", lab.training, lab.store, lab.settings, QUALITIES
    )
    assert again.reused and all(point.frame_psnr_y == () for point in again.points)
    assert again.points == lab.outcomes[0].points  # the figures, without the per-frame list
    material = gather(lab.store, lab.settings, lab.parent.id, clip_ids=[lab.training_id()])
    text = generate_prompt(lab.settings, lab.parent, material).messages[0]["content"]
    assert "Per-frame PSNR-Y: not stored for these runs" in text


def test_a_prompts_replay_identity_leaves_out_measured_times_only(lab: Lab) -> None:
    material = gather(lab.store, lab.settings, lab.parent.id, clip_ids=[lab.training_id()])
    prompt = generate_prompt(lab.settings, lab.parent, material)
    text = prompt.messages[0]["content"]
    run = lab.runs(lab.training)[0]
    assert run.encode_wall_seconds is not None and run.kbps is not None
    limit = wall_limit(lab.settings, run.encode_wall_seconds)
    timed = timing_text("encode", run.encode_wall_seconds, limit)
    slower = timing_text("encode", run.encode_wall_seconds + 7.5, 40.0)
    assert timed in text

    def with_text(changed: str) -> Prompt:
        return replace(prompt, messages=({"role": "user", "content": changed},))

    assert prompt_hash(with_text(text.replace(timed, slower))) == prompt_hash(prompt)
    other_rate = text.replace(f"{run.kbps:.1f} kbps", f"{run.kbps + 1:.1f} kbps")
    assert prompt_hash(with_text(other_rate)) != prompt_hash(prompt)
