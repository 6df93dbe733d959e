"""Adopting a candidate as the lab's best codec and committing it to the codec repository.

Policy (the same text is returned in every decision as ``policy``):

A candidate is adopted when it has successful, deterministic stored runs at the evaluation
qualities on every evaluation clip, its mean BD-rate (PSNR-Y, pchip, from the stored kbps
and PSNR-Y points) against the current best over those clips is below -threshold (default
-1 %), and its mean decode time is at most ``adopt_max_decode_slowdown`` (default 4) times
the best's. The current best is the last adopted candidate. The first adoption, while no
codec is adopted yet, is measured against the seed it descends from (its nearest ancestor
of origin ``seed`` with stored runs on the same clips, else its oldest ancestor with such
runs), else against x264-medium from the candidate's stored scores (no decode-time check
then); the reason says which. Against a codec, the candidate's BD-rate on PSNR-YUV (6:1:1)
must also not be positive, so a luma gain paid for with chroma is not adopted.

An adopted (or forced) candidate is committed to a git repository (``codec.py``, the
source, and ``codec.json``, its figures) and tagged ``v1``, ``v2``, ... Every decision,
adopted or not, is recorded in the store's ``adoptions`` table. The library never prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aicodec.adoption.decision import (
    POLICY,
    Decision,
    adopted_decision,
    bd_rate_between,
    candidate_source,
    decide,
    points_bd_rate,
)
from aicodec.adoption.repository import check_codec_repo, commit_decision, open_repo
from aicodec.errors import SandboxError, ValidationError
from aicodec.ladder import load_ladder
from aicodec.scoring.metrics import finite_or_none
from aicodec.settings import Settings
from aicodec.store import AdoptionRecord, Store
from aicodec.store.queries.points import current_best, quality_key

__all__ = [
    "POLICY",
    "Decision",
    "adopt",
    "RunAdoption",
    "adopt_in_run",
    "adopted_decision",
    "bd_rate_between",
    "candidate_source",
    "check_codec_repo",
    "decide",
    "points_bd_rate",
]


def _record(store: Store, decision: Decision) -> None:
    compared = decision.compared_with
    with store.session() as session:
        row = AdoptionRecord(
            candidate_id=decision.candidate_id,
            compared_with=None if compared is None else str(compared),
            adopted=decision.adopted,
            forced=decision.forced,
            reason=decision.reason,
            bd_rate_vs_best=finite_or_none(decision.bd_rate_vs_best),
            threshold=decision.threshold,
            commit=decision.commit,
            tag=decision.tag,
            clips=json.dumps(decision.clips),
            qualities=quality_key(decision.qualities),
        )
        session.add(row)
        session.flush()
        decision.record_id = row.id


def adopt(
    store: Store,
    settings: Settings,
    candidate_id: int,
    clip_ids: Sequence[int],
    qualities: Sequence[int],
    *,
    force: bool = False,
    repo_path: Path | None = None,
) -> Decision:
    """Decide, and commit and tag an adopted (or forced) candidate; record the decision.

    A candidate adopted before is not committed again: its earlier decision comes back.
    AdoptionError (one line) when the codec repository is unusable.
    """
    earlier = adopted_decision(store, candidate_id)
    if earlier is not None:
        return earlier
    decision = decide(store, settings, candidate_id, clip_ids, qualities)
    if decision.adopted or force:
        repo = open_repo(Path(repo_path or settings.codec_repo), create=True)
        assert repo is not None
        if not decision.adopted:
            decision.adopted, decision.forced = True, True
            decision.reason = f"forced past the policy, which said: {decision.reason}"
        figures = load_ladder(settings.ladder_file).compared_names()
        decision.commit, decision.tag = commit_decision(repo, store, decision, figures)
    _record(store, decision)
    return decision


@dataclass(frozen=True)
class RunAdoption:
    """What an evolve iteration's adoption came to: adopted or not, why, the stored decision."""

    adopted: bool
    reason: str
    record_id: int | None = None


def adopt_in_run(
    store: Store,
    settings: Settings,
    candidate_id: int,
    *,
    training_ids: Sequence[int],
    holdout_ids: Sequence[int],
    start_id: int,
    qualities: Sequence[int],
    repo_path: Path,
    score_holdout: Callable[[], object],
) -> RunAdoption:
    """An evolve iteration's whole adoption decision.

    Without holdout clips it is decided on the training clips. With them, the candidate must
    first beat the reference (the adopted best, else the run's start) by the threshold on the
    training clips; only then is it run on the holdout clips (``score_holdout``: a
    SandboxError or ValidationError there is a no) and decided on them.
    """
    evaluation = training_ids
    if holdout_ids:
        threshold = settings.adopt_threshold_percent
        reference = current_best(store) or start_id
        gain, problem = bd_rate_between(
            store, settings, candidate_id, reference, training_ids, qualities
        )
        if gain is None or gain >= -threshold:
            figure = problem if gain is None else f"{gain:+.2f} %"
            return RunAdoption(
                False,
                f"not adopted: BD-rate vs candidate {reference} on the training clips is "
                f"{figure}, not below -{threshold:g} %; holdout clips not run",
            )
        try:
            score_holdout()
        except (SandboxError, ValidationError) as exc:
            return RunAdoption(False, f"not adopted: fails on a holdout clip: {exc}")
        evaluation = holdout_ids
    decision = adopt(store, settings, candidate_id, evaluation, qualities, repo_path=repo_path)
    return RunAdoption(decision.adopted, decision.reason, decision.record_id)
