"""The codec repository: each adopted codec committed (codec.py, codec.json) and tagged."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aicodec.adoption.decision import Decision, stored_candidate
from aicodec.errors import AdoptionError
from aicodec.scoring.bdrate import signed_percent
from aicodec.scoring.metrics import finite_or_none, json_safe
from aicodec.store import Store

if TYPE_CHECKING:  # GitPython is imported only when a commit is made
    import git

TAG_PATTERN = re.compile(r"^v(\d+)$")


def _git() -> Any:
    try:
        import git
    except ImportError:  # pragma: no cover - GitPython is a dependency
        raise AdoptionError("GitPython is not installed: pip install GitPython") from None
    return git


def open_repo(path: Path, *, create: bool) -> git.Repo | None:
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
    open_repo(Path(path), create=False)


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


def _ladder_means(decision: Decision, figures: Sequence[str]) -> dict[str, float | None]:
    """Mean BD-rate vs each standard encoder over the clips, when every clip has it."""
    means: dict[str, float | None] = {}
    for name in figures:
        values = [
            (entry["bd_rate_vs_ladder"] or {}).get(name) for entry in decision.per_clip.values()
        ]
        clean = [value for value in values if value is not None]
        means[name] = sum(clean) / len(clean) if clean and len(clean) == len(values) else None
    return means


def _message(
    decision: Decision, candidate: dict[str, Any], tag: str, figures: Sequence[str]
) -> str:
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
    for name, value in _ladder_means(decision, figures).items():
        lines.append(f"  vs {name}: {signed_percent(value)}")
    for key, entry in decision.per_clip.items():
        clip = entry["clip"]
        ladder = entry["bd_rate_vs_ladder"] or {}
        lines += [
            "",
            f"Clip {key}: {clip['name']} ({clip['width']}x{clip['height']}, {clip['frames']} "
            f"frames from {clip['start']}, content hash {clip['content_hash'][:16]})",
            f"  BD-rate vs previous best {signed_percent(entry['bd_rate_vs_best'])}; "
            + ", ".join(f"vs {name} {signed_percent(ladder.get(name))}" for name in figures),
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


def commit_decision(
    repo: git.Repo, store: Store, decision: Decision, figures: Sequence[str]
) -> tuple[str, str]:
    """Write codec.py and codec.json, commit them and tag the commit; (sha, tag). ``figures``:
    the ladder encoders whose mean BD-rates the message and codec.json show."""
    with store.session() as session:
        record = stored_candidate(session, decision.candidate_id)
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
        "bd_rate_vs_ladder": _ladder_means(decision, figures),
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
            _message(decision, candidate, tag, figures), author=actor, committer=actor
        )
        repo.create_tag(tag, ref=commit)
    except (OSError, git.GitError) as exc:
        raise AdoptionError(f"cannot commit to the codec repository {root}: {exc}") from None
    return commit.hexsha, tag
