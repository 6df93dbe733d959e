"""The adoption policy applied to stored runs and scores: a Decision, nothing written."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aicodec.errors import AdoptionError, BDRateError
from aicodec.ladder.spec import ladder_anchor
from aicodec.scoring.bdrate import RDPoint, bd_compare
from aicodec.scoring.metrics import finite_or_none
from aicodec.settings import Settings
from aicodec.store import AdoptionRecord, CandidateRecord, ClipRecord, Store
from aicodec.store.queries.points import (
    adopted_best,
    candidate_points,
    ladder_bd_rates,
    normal_qualities,
    parse_quality_key,
)

POLICY = (
    "A candidate is adopted when it has successful, deterministic stored runs at the evaluation "
    "qualities on every evaluation clip, its mean BD-rate (PSNR-Y, pchip, from the stored kbps "
    "and PSNR-Y points) against the current best over those clips is below -threshold (default "
    "-1 %), and its mean decode time is at most adopt_max_decode_slowdown (default 4) times the "
    "best's. The current best is the last adopted candidate. The first adoption, while no codec "
    "is adopted yet, is measured against the seed it descends from (its nearest ancestor of "
    "origin seed with stored runs on the same clips, else its oldest ancestor with such runs), "
    "else against x264-medium from the candidate's stored scores (no decode-time check then). "
    "Against a codec, its BD-rate on PSNR-YUV (6:1:1) must also not be positive, so that a "
    "luma gain paid for with chroma is not adopted."
)


@dataclass
class Decision:
    """Whether a candidate was adopted, against what, why, and the commit and tag made."""

    candidate_id: int
    adopted: bool
    forced: bool
    reason: str
    bd_rate_vs_best: float | None
    compared_with: int | str | None
    per_clip: dict[str, dict[str, Any]]
    commit: str | None
    tag: str | None
    threshold: float
    clips: list[int] = field(default_factory=list)
    qualities: list[int] = field(default_factory=list)
    decode_slowdown: float | None = None
    bd_rate_yuv_vs_best: float | None = None
    record_id: int | None = None
    policy: str = POLICY

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready decision (per-clip keys are clip ids as text)."""
        return asdict(self)


# --- reading the store ------------------------------------------------------------------------


def stored_candidate(session: Session, candidate_id: int) -> CandidateRecord:
    """The stored candidate; AdoptionError when the id is unknown."""
    found = session.get(CandidateRecord, candidate_id)
    if found is None:
        raise AdoptionError(f"no candidate {candidate_id} in the store")
    return found


def candidate_source(store: Store, candidate_id: int) -> tuple[str, str]:
    """A stored candidate's source and name; AdoptionError when the id is unknown."""
    with store.session() as session:
        found = stored_candidate(session, candidate_id)
        return found.source, found.name


def _clip_info(session: Session, clip_id: int) -> dict[str, Any]:
    found = session.get(ClipRecord, clip_id)
    if found is None:
        raise AdoptionError(f"no clip {clip_id} in the store")
    return {
        "id": found.id,
        "name": found.name,
        "content_hash": found.content_hash,
        "width": found.width,
        "height": found.height,
        "frames": found.frame_count,
        "start": found.start_frame,
        "fps": f"{found.fps_num}/{found.fps_den}",
    }


def _per_clip(
    session: Session, candidate_id: int, clip_ids: Sequence[int], qualities: Sequence[int]
) -> dict[str, dict[str, Any]]:
    """Per clip: the clip, the candidate's stored points and its stored ladder BD-rates."""
    result: dict[str, dict[str, Any]] = {}
    for clip_id in clip_ids:
        points, _ = candidate_points(session, candidate_id, clip_id, qualities)
        result[str(clip_id)] = {
            "clip": _clip_info(session, clip_id),
            "points": points,
            "bd_rate_vs_best": None,
            "reference_points": None,
            "bd_rate_vs_ladder": ladder_bd_rates(session, candidate_id, clip_id, qualities),
        }
    return result


def adopted_decision(store: Store, candidate_id: int) -> Decision | None:
    """The earlier decision that adopted this candidate (with its commit and tag), if any."""
    with store.session() as session:
        row = session.scalar(
            select(AdoptionRecord)
            .where(
                AdoptionRecord.candidate_id == candidate_id,
                AdoptionRecord.adopted.is_(True),
                AdoptionRecord.commit.is_not(None),
            )
            .order_by(AdoptionRecord.id.desc())
        )
        if row is None:
            return None
        clip_ids = [int(value) for value in json.loads(row.clips)]
        qualities = parse_quality_key(row.qualities) or []
        stored = row.compared_with
        compared: int | str | None = (
            int(stored) if stored is not None and stored.isdigit() else stored
        )
        return Decision(
            candidate_id=candidate_id,
            adopted=True,
            forced=row.forced,
            reason=f"already adopted as {row.tag} (commit {(row.commit or '')[:12]}): {row.reason}",
            bd_rate_vs_best=row.bd_rate_vs_best,
            compared_with=compared,
            per_clip=_per_clip(session, candidate_id, clip_ids, qualities),
            commit=row.commit,
            tag=row.tag,
            threshold=row.threshold,
            clips=clip_ids,
            qualities=qualities,
            record_id=row.id,
        )


# --- the policy -------------------------------------------------------------------------------


def _ancestor_with_runs(
    session: Session, candidate: CandidateRecord, clip_ids: Sequence[int], qualities: Sequence[int]
) -> int | None:
    """The seed the candidate descends from: its nearest ancestor of origin ``seed`` with
    successful stored runs at the qualities on every clip, else its oldest ancestor with them."""
    seen = {candidate.id}
    parent_id = candidate.parent_id
    oldest: int | None = None
    while parent_id is not None and parent_id not in seen:
        seen.add(parent_id)
        parent = session.get(CandidateRecord, parent_id)
        if parent is None:
            break
        if all(
            candidate_points(session, parent.id, clip, qualities)[1] is None for clip in clip_ids
        ):
            if parent.origin == "seed":
                return parent.id
            oldest = parent.id
        parent_id = parent.parent_id
    return oldest


def _mean_decode(points: list[dict[str, Any]]) -> float:
    values = [point["decode_seconds"] or 0.0 for point in points]
    return sum(values) / len(values) if values else 0.0


def decide(
    store: Store,
    settings: Settings,
    candidate_id: int,
    clip_ids: Sequence[int],
    qualities: Sequence[int],
) -> Decision:
    """Apply the adoption policy to the stored runs and scores (no git, nothing written)."""
    clip_ids = list(dict.fromkeys(int(clip) for clip in clip_ids))
    qualities = normal_qualities(qualities)
    if not clip_ids:
        raise AdoptionError("adoption needs at least one evaluation clip")
    if len(qualities) < 4:
        raise AdoptionError("adoption needs at least 4 qualities: BD-rate needs 4 rate points")
    threshold = settings.adopt_threshold_percent
    with store.session() as session:
        candidate = stored_candidate(session, candidate_id)
        per_clip = _per_clip(session, candidate_id, clip_ids, qualities)
        decision = Decision(
            candidate_id=candidate_id,
            adopted=False,
            forced=False,
            reason="",
            bd_rate_vs_best=None,
            compared_with=None,
            per_clip=per_clip,
            commit=None,
            tag=None,
            threshold=threshold,
            clips=clip_ids,
            qualities=qualities,
        )
        for clip_id in clip_ids:
            _, problem = candidate_points(session, candidate_id, clip_id, qualities)
            if problem is not None:
                decision.reason = f"not adopted: candidate {candidate_id} {problem}"
                return decision
        best = adopted_best(session)
        if best is not None and best.candidate_id == candidate_id:
            decision.compared_with = candidate_id
            decision.reason = (
                f"not adopted: candidate {candidate_id} is already the current best ({best.tag})"
            )
            return decision
        if best is not None:
            reference: int | None = best.candidate_id
            label = f"the current best (candidate {reference})"
        else:
            reference = _ancestor_with_runs(session, candidate, clip_ids, qualities)
            label = f"its seed (candidate {reference}; no codec adopted yet)"
        if reference is None:
            return _against_x264(decision, candidate_id, ladder_anchor(settings.ladder_file))
        decision.compared_with = reference
        return _against_candidate(session, settings, decision, reference, label)


def _against_x264(decision: Decision, candidate_id: int, anchor: str) -> Decision:
    """First adoption without an ancestor: the stored BD-rate vs the ladder's anchor (x264-medium
    as shipped) on each clip."""
    decision.compared_with = anchor
    label = f"{anchor} from its stored scores (no codec adopted yet, no ancestor with runs)"
    values: list[float] = []
    for clip_key, entry in decision.per_clip.items():
        ladder = entry["bd_rate_vs_ladder"] or {}
        value = ladder.get(anchor)
        if value is None:
            missing = "undefined" if anchor in ladder else "not stored"
            decision.reason = (
                f"not adopted: candidate {candidate_id}'s BD-rate vs {anchor} on clip {clip_key} "
                f"at qualities {','.join(map(str, decision.qualities))} is {missing}; "
                "score it there first"
            )
            return decision
        entry["bd_rate_vs_best"] = value
        values.append(value)
    return _conclude(decision, sum(values) / len(values), None, label)


def points_bd_rate(
    settings: Settings,
    anchor: Sequence[dict[str, Any]],
    test: Sequence[dict[str, Any]],
    metric: str = "psnr_y",
) -> tuple[float | None, str | None]:
    """BD-rate (percent, on ``metric``: psnr_y or psnr_yuv) of ``test`` points against
    ``anchor`` points; (None, why) when undefined."""
    if any(finite_or_none(point.get(metric)) is None for point in (*anchor, *test)):
        return None, f"a point has no finite {metric}"
    try:
        result = bd_compare(
            [RDPoint(point["kbps"], point[metric]) for point in anchor],
            [RDPoint(point["kbps"], point[metric]) for point in test],
            method=settings.bd_method,
            min_overlap=settings.bd_min_overlap,
        )
    except BDRateError as exc:
        return None, str(exc)
    value = finite_or_none(result.bd_rate_percent)
    if value is None:
        return None, result.warnings[0] if result.warnings else "no shared PSNR-Y range"
    return value, None


def bd_rate_between(
    store: Store,
    settings: Settings,
    candidate_id: int,
    reference_id: int,
    clip_ids: Sequence[int],
    qualities: Sequence[int],
    metric: str = "psnr_y",
) -> tuple[float | None, str | None]:
    """Mean BD-rate (percent, on ``metric``) of one candidate's stored points against
    another's over the clips; (None, why) when a run is missing or a BD-rate is undefined."""
    values: list[float] = []
    with store.session() as session:
        for clip_id in clip_ids:
            theirs, problem = candidate_points(session, reference_id, clip_id, qualities)
            if problem is not None:
                return None, f"candidate {reference_id} {problem}"
            mine, problem = candidate_points(session, candidate_id, clip_id, qualities)
            if problem is not None:
                return None, f"candidate {candidate_id} {problem}"
            value, problem = points_bd_rate(settings, theirs, mine, metric)
            if value is None:
                return None, f"BD-rate undefined on clip {clip_id}: {problem}"
            values.append(value)
    if not values:
        return None, "no clips"
    return sum(values) / len(values), None


def _against_candidate(
    session: Session, settings: Settings, decision: Decision, reference: int, label: str
) -> Decision:
    """BD-rate of the candidate's stored points against the reference candidate's, per clip."""
    values: list[float] = []
    yuv: list[float | None] = []
    mine: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    for clip_key, entry in decision.per_clip.items():
        points, problem = candidate_points(session, reference, int(clip_key), decision.qualities)
        if problem is not None:
            decision.reason = (
                f"not adopted: cannot compare with {label}: it {problem}; run it there first"
            )
            return decision
        entry["reference_points"] = points
        value, problem = points_bd_rate(settings, points, entry["points"])
        if value is None:
            decision.reason = (
                f"not adopted: BD-rate vs {label} is undefined on clip {clip_key}: {problem}"
            )
            return decision
        entry["bd_rate_vs_best"] = value
        entry["bd_rate_yuv_vs_best"], _ = points_bd_rate(
            settings, points, entry["points"], "psnr_yuv"
        )
        values.append(value)
        yuv.append(entry["bd_rate_yuv_vs_best"])
        mine += entry["points"]
        theirs += points
    best_decode = _mean_decode(theirs)
    slowdown = _mean_decode(mine) / best_decode if best_decode > 0 else None
    known = [value for value in yuv if value is not None]
    if len(known) == len(yuv):
        decision.bd_rate_yuv_vs_best = sum(known) / len(known)
    return _conclude(decision, sum(values) / len(values), slowdown, label, settings)


def _conclude(
    decision: Decision,
    mean: float,
    slowdown: float | None,
    label: str,
    settings: Settings | None = None,
) -> Decision:
    """Apply the threshold and the decode-time limit to the mean BD-rate and the slowdown."""
    decision.bd_rate_vs_best = mean
    decision.decode_slowdown = slowdown
    threshold = decision.threshold
    clips = len(decision.per_clip)
    figure = f"mean BD-rate {mean:+.2f} % vs {label} over {clips} clip(s)"
    if slowdown is None or settings is None:
        decode = "decode time not compared"
        decode_ok = True
    else:
        limit = settings.adopt_max_decode_slowdown
        decode = f"decode time {slowdown:.2f}x the reference's (limit {limit:g}x)"
        decode_ok = slowdown <= limit
    yuv = decision.bd_rate_yuv_vs_best
    if settings is None:
        colour, colour_ok = "PSNR-YUV not compared", True
    elif yuv is None:
        colour, colour_ok = "BD-rate on PSNR-YUV undefined", False
    else:
        colour, colour_ok = f"BD-rate on PSNR-YUV (6:1:1) {yuv:+.2f} % (limit 0)", yuv <= 0
    checks = f"{decode}; {colour}"
    if mean >= -threshold:
        decision.reason = f"not adopted: {figure} is not below -{threshold:g} %; {checks}"
    elif not decode_ok:
        decision.reason = f"not adopted: {figure} beats -{threshold:g} %, but {decode}"
    elif not colour_ok:
        decision.reason = (
            f"not adopted: {figure} beats -{threshold:g} %, but {colour}: the luma gain is "
            "paid for with chroma"
        )
    else:
        decision.adopted = True
        decision.reason = f"adopted: {figure} beats -{threshold:g} %; {checks}"
    return decision
