"""The stored evaluations of one codec structure: the trials a parameter search learns from.

A structure is a codec's source with its ``PARAMS`` literal taken out: the text before the
literal (``prefix``) and after it (``suffix``). Every stored candidate whose source is
``prefix + X + suffix`` is a candidate of that structure, and ``X`` is its ``PARAMS``
literal (the caller checks that ``X`` is one dict literal). Its figure is its fitness:
the mean BD-rate against the ladder's anchor of its latest scores on the given clips at
the given qualities (``points.fitness``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select

from aicodec.store import CandidateRecord, EvolutionIteration, Store
from aicodec.store.queries.points import _latest_scores, anchor_name


@dataclass(frozen=True)
class StoredTrial:
    """A stored candidate of a structure: its id, the text of its PARAMS literal, its
    fitness (None when it has none on the clips at the qualities) and whether an evolve
    iteration that ran it failed (a failed run, stopped at the first stage, undefined
    BD-rate)."""

    candidate_id: int
    params_text: str
    fitness: float | None
    failed: bool


def structure_trials(
    store: Store,
    prefix: str,
    suffix: str,
    clip_ids: Sequence[int],
    qualities: Sequence[int],
    hidden: Collection[int] = (),
) -> list[StoredTrial]:
    """Every stored candidate whose source is ``prefix + X + suffix``, oldest first, with
    ``X``, its fitness on ``clip_ids`` at ``qualities`` and whether an iteration that ran it
    failed. The ``hidden`` candidates (still being scored) are listed with neither figure
    nor failure. The sources are compared in the database: only ``X`` is read back."""
    start, tail = len(prefix), len(suffix)
    source = CandidateRecord.source
    length = func.length(source)
    statement = (
        select(
            CandidateRecord.id,
            func.substr(source, start + 1, length - start - tail),
        )
        .where(
            length >= start + tail,
            func.substr(source, 1, start) == prefix,
            func.substr(source, length - tail + 1, tail) == suffix,
        )
        .order_by(CandidateRecord.id)
    )
    with store.session() as session:
        found = [(int(row[0]), str(row[1] or "")) for row in session.execute(statement)]
        known = [candidate for candidate, _ in found if candidate not in hidden]
        scores = (
            _latest_scores(session, qualities, candidate_ids=known, clip_ids=clip_ids)
            if known and clip_ids
            else {}
        )
        failed = (
            set(
                session.scalars(
                    select(EvolutionIteration.candidate_id).where(
                        EvolutionIteration.status == "failed",
                        EvolutionIteration.candidate_id.in_(known),
                    )
                )
            )
            if known
            else set()
        )
    anchor = anchor_name()
    trials: list[StoredTrial] = []
    for candidate, text in found:
        if candidate in hidden:
            trials.append(StoredTrial(candidate, text, None, False))
            continue
        values = [(scores.get((candidate, clip)) or {}).get(anchor) for clip in clip_ids]
        defined = [value for value in values if value is not None]
        value = sum(defined) / len(defined) if defined and len(defined) == len(values) else None
        trials.append(StoredTrial(candidate, text, value, value is None and candidate in failed))
    return trials
