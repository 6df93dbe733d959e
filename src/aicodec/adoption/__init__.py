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
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aicodec.errors import AdoptionError, BDRateError
from aicodec.scoring.bdrate import RDPoint, bd_compare, signed_percent
from aicodec.scoring.metrics import finite_or_none, json_safe
from aicodec.settings import Settings
from aicodec.store import (
    AdoptionRecord,
    CandidateRecord,
    ClipRecord,
    Store,
)
from aicodec.store.queries.points import (
    X264,
    adopted_best,
    candidate_points,
    ladder_bd_rates,
    normal_qualities,
    parse_quality_key,
    quality_key,
)

if TYPE_CHECKING:  # GitPython is imported only when a commit is made
    import git

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
LADDER_FIGURES = ("x264-medium", "x265-medium", "vvenc-medium")
TAG_PATTERN = re.compile(r"^v(\d+)$")


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


def _candidate(session: Session, candidate_id: int) -> CandidateRecord:
    found = session.get(CandidateRecord, candidate_id)
    if found is None:
        raise AdoptionError(f"no candidate {candidate_id} in the store")
    return found


def candidate_source(store: Store, candidate_id: int) -> tuple[str, str]:
    """A stored candidate's source and name; AdoptionError when the id is unknown."""
    with store.session() as session:
        found = _candidate(session, candidate_id)
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
        candidate = _candidate(session, candidate_id)
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
            return _against_x264(decision, candidate_id)
        decision.compared_with = reference
        return _against_candidate(session, settings, decision, reference, label)


def _against_x264(decision: Decision, candidate_id: int) -> Decision:
    """First adoption without an ancestor: the stored BD-rate vs x264-medium on each clip."""
    decision.compared_with = X264
    label = f"{X264} from its stored scores (no codec adopted yet, no ancestor with runs)"
    values: list[float] = []
    for clip_key, entry in decision.per_clip.items():
        ladder = entry["bd_rate_vs_ladder"] or {}
        value = ladder.get(X264)
        if value is None:
            missing = "undefined" if X264 in ladder else "not stored"
            decision.reason = (
                f"not adopted: candidate {candidate_id}'s BD-rate vs {X264} on clip {clip_key} "
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


# --- the codec repository ---------------------------------------------------------------------


def _git() -> Any:
    try:
        import git
    except ImportError:  # pragma: no cover - GitPython is a dependency
        raise AdoptionError("GitPython is not installed: pip install GitPython") from None
    return git


def _open_repo(path: Path, *, create: bool) -> git.Repo | None:
    """The codec repository at ``path``, created when absent or empty (if ``create``).

    AdoptionError (one line) when the path is a file, a non-empty folder that is not the
    root of a git repository, a bare repository, or a repository with uncommitted changes.
    """
    git = _git()
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise AdoptionError(f"codec repository {path} is a file, not a git repository")
    if not path.exists() or not any(path.iterdir()):
        if not create:
            return None
        try:
            path.mkdir(parents=True, exist_ok=True)
            return git.Repo.init(path)
        except (OSError, git.GitError) as exc:
            raise AdoptionError(f"cannot create the codec repository {path}: {exc}") from None
    try:
        repo = git.Repo(path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise AdoptionError(
            f"codec repository {path} exists and is not a git repository; give --git-repo a "
            "new or empty folder or a clean git repository"
        ) from None
    if repo.bare or repo.working_tree_dir is None:
        raise AdoptionError(f"codec repository {path} is a bare git repository")
    if Path(repo.working_tree_dir).resolve() != path.resolve():
        raise AdoptionError(
            f"codec repository {path} is inside the git repository {repo.working_tree_dir}, "
            "not the root of one"
        )
    if repo.is_dirty(index=True, working_tree=True, untracked_files=True):
        changed = [item.a_path for item in repo.index.diff(None)] + repo.untracked_files
        if repo.head.is_valid():
            changed += [item.a_path for item in repo.index.diff("HEAD")]
        names = ", ".join(sorted(set(changed))[:3]) or "staged changes"
        raise AdoptionError(
            f"codec repository {path} has uncommitted changes ({names}); commit or discard them "
            "first"
        )
    return repo


def check_codec_repo(path: Path) -> None:
    """Refuse early (AdoptionError) a repository path an adoption could not commit to."""
    _open_repo(Path(path), create=False)


def _next_tag(repo: git.Repo) -> str:
    numbers = [int(match.group(1)) for tag in repo.tags if (match := TAG_PATTERN.match(tag.name))]
    return f"v{max(numbers, default=0) + 1}"


def _actor(repo: git.Repo) -> Any:
    """The repository's configured identity, else the lab's own."""
    git = _git()
    reader = repo.config_reader()
    name = reader.get_value("user", "name", "aicodec")
    email = reader.get_value("user", "email", "aicodec@localhost")
    return git.Actor(str(name), str(email))


def _ladder_means(decision: Decision) -> dict[str, float | None]:
    """Mean BD-rate vs each standard encoder over the clips, when every clip has it."""
    means: dict[str, float | None] = {}
    for name in LADDER_FIGURES:
        values = [
            (entry["bd_rate_vs_ladder"] or {}).get(name) for entry in decision.per_clip.values()
        ]
        clean = [value for value in values if value is not None]
        means[name] = sum(clean) / len(clean) if clean and len(clean) == len(values) else None
    return means


def _message(decision: Decision, candidate: dict[str, Any], tag: str) -> str:
    """The commit message: headline, BD-rates vs the previous best and the ladder, RD points."""
    reference = decision.compared_with
    previous = f"candidate {reference}" if isinstance(reference, int) else str(reference)
    bd = "n/a" if decision.bd_rate_vs_best is None else f"{decision.bd_rate_vs_best:+.2f} %"
    lines = [
        f"adopt candidate {decision.candidate_id}: BD-rate {bd} vs previous best",
        "",
        f"Candidate {decision.candidate_id} ({candidate['name']}, origin {candidate['origin']}, "
        f"parent {candidate['parent']}, code hash {candidate['code_hash'][:16]}) as {tag}.",
        f"Decision{' (forced)' if decision.forced else ''}: {decision.reason}",
        "",
        f"BD-rate (PSNR-Y, pchip; mean over {len(decision.per_clip)} clip(s), "
        "negative = fewer bits at equal PSNR-Y):",
        f"  vs previous best ({previous}): {signed_percent(decision.bd_rate_vs_best)}",
    ]
    for name, value in _ladder_means(decision).items():
        lines.append(f"  vs {name}: {signed_percent(value)}")
    for key, entry in decision.per_clip.items():
        clip = entry["clip"]
        ladder = entry["bd_rate_vs_ladder"] or {}
        lines += [
            "",
            f"Clip {key}: {clip['name']} ({clip['width']}x{clip['height']}, {clip['frames']} "
            f"frames from {clip['start']}, content hash {clip['content_hash'][:16]})",
            f"  BD-rate vs previous best {signed_percent(entry['bd_rate_vs_best'])}; "
            + ", ".join(f"vs {name} {signed_percent(ladder.get(name))}" for name in LADDER_FIGURES),
        ]
        for point in entry["points"]:
            psnr = finite_or_none(point["psnr_y"])
            psnr_text = "inf" if psnr is None else f"{psnr:.2f}"
            lines.append(f"  q{point['quality']}: {point['kbps']:.2f} kbps, PSNR-Y {psnr_text} dB")
    return "\n".join(lines) + "\n"


def _committed_before(repo: git.Repo, code_hash: str) -> tuple[str, str] | None:
    """(sha, tag) when HEAD already commits this code as a tagged adoption.

    That happens when the lab was killed between the commit and recording the decision;
    the commit is then taken over instead of being made twice.
    """
    if not repo.head.is_valid():
        return None
    head = repo.head.commit
    try:
        meta = json.loads(head.tree["codec.json"].data_stream.read().decode("utf-8"))
    except (KeyError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(meta, dict) or meta.get("code_hash") != code_hash:
        return None
    tag = next((tag.name for tag in repo.tags if tag.commit == head), None)
    if tag is None:  # killed between the commit and the tag
        tag = _next_tag(repo)
        repo.create_tag(tag, ref=head)
    return head.hexsha, tag


def _commit(repo: git.Repo, store: Store, decision: Decision) -> tuple[str, str]:
    """Write codec.py and codec.json, commit them and tag the commit; (sha, tag)."""
    with store.session() as session:
        record = _candidate(session, decision.candidate_id)
        source, code_hash = record.source, record.code_hash
        candidate = {
            "id": record.id,
            "name": record.name,
            "code_hash": record.code_hash,
            "parent": record.parent_id,
            "origin": record.origin,
        }
    earlier = _committed_before(repo, code_hash)
    if earlier is not None:
        return earlier
    tag = _next_tag(repo)
    root = Path(str(repo.working_tree_dir))
    meta = {
        "candidate": candidate["id"],
        "name": candidate["name"],
        "code_hash": candidate["code_hash"],
        "parent": candidate["parent"],
        "origin": candidate["origin"],
        "tag": tag,
        "clips": decision.clips,
        "qualities": decision.qualities,
        "compared_with": decision.compared_with,
        "bd_rate_vs_best": decision.bd_rate_vs_best,
        "bd_rate_vs_ladder": _ladder_means(decision),
        "per_clip": decision.per_clip,
        "decision": {
            "adopted": decision.adopted,
            "forced": decision.forced,
            "reason": decision.reason,
            "threshold": decision.threshold,
            "decode_slowdown": decision.decode_slowdown,
            "policy": decision.policy,
        },
    }
    git = _git()
    try:
        (root / "codec.py").write_text(source, encoding="utf-8")
        (root / "codec.json").write_text(
            json.dumps(json_safe(meta), indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
        repo.index.add(["codec.py", "codec.json"])
        actor = _actor(repo)
        commit = repo.index.commit(
            _message(decision, candidate, tag), author=actor, committer=actor
        )
        repo.create_tag(tag, ref=commit)
    except (OSError, git.GitError) as exc:
        raise AdoptionError(f"cannot commit to the codec repository {root}: {exc}") from None
    return commit.hexsha, tag


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
        repo = _open_repo(Path(repo_path or settings.codec_repo), create=True)
        assert repo is not None
        if not decision.adopted:
            decision.adopted, decision.forced = True, True
            decision.reason = f"forced past the policy, which said: {decision.reason}"
        decision.commit, decision.tag = _commit(repo, store, decision)
    _record(store, decision)
    return decision
