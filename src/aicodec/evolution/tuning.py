"""Tuning iterations: the PARAMS of a new structure a model wrote, tuned before the loop
goes on.

An *idea* is a codec of the run that a model wrote (origin ``llm``) whose structure (its
source without the PARAMS literal, ``providers.tuner.structure_hash``) differs from its
parent's, or that has no PARAMS at all, and that ran in full: scored, or with an undefined
BD-rate (one stopped at the first stage has no full evaluation its tuned codecs could be
measured against). It was judged with the parameters the model wrote only.
While iteration n knows an idea (finished by iteration n - parallel) with fewer than
``tune_trials`` tuning iterations before n (those in flight counted), iteration n tunes
the oldest such idea: its parent is the idea, its plan a rule plan (no model call), and
the run's tuner (``make_tuner``: Optuna's TPE, origin ``tuned``) proposes its PARAMS from
every stored evaluation of the idea's structure. It is then screened, scored and judged
against the best like any candidate. A tuning iteration that cannot propose (the idea has
no PARAMS/PARAM_RANGES, or the structure has no untried PARAMS left) fails with kind
``generation``, and the idea is tuned no further.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aicodec.errors import GenerationError
from aicodec.evolution.planner import Plan
from aicodec.providers.base import Provider
from aicodec.settings import Settings
from aicodec.store import Store

TUNED = "tuned"  # the origin of a tuning iteration's row and candidate
IDEA_ORIGINS = ("llm",)  # the origins of model-written codecs
RAN = ("bd-undefined",)  # failures of a codec that ran in full and decoded correctly
ENDS_TUNING = "generation"  # a tuning iteration that failed so: the idea is tuned no further


@dataclass(frozen=True)
class Tuning:
    """A tuning iteration: trial ``trial`` of ``trials`` on the idea (a candidate id)."""

    idea: int
    trial: int
    trials: int

    def rule(self) -> str:
        """The parent rule stored with the iteration."""
        return f"tune idea {self.idea}: trial {self.trial} of {self.trials}"


def due_tuning(
    ideas: Sequence[int], tuned: Sequence[tuple[int | None, str | None]], trials: int
) -> Tuning | None:
    """The tuning the next iteration does, if any: the oldest of ``ideas`` (candidate ids,
    oldest first) with fewer than ``trials`` tuning iterations in ``tuned`` (the parent and
    failure kind of every earlier tuning iteration, in flight included) and none that
    failed for want of PARAMS to propose (kind ``generation``)."""
    if trials <= 0:
        return None
    for idea in ideas:
        kinds = [kind for parent, kind in tuned if parent == idea]
        if len(kinds) < trials and ENDS_TUNING not in kinds:
            return Tuning(idea, len(kinds) + 1, trials)
    return None


def structure_key(source: str) -> str | None:
    """A codec's structure hash; None when it has no PARAMS/PARAM_RANGES literals."""
    from aicodec.providers.tuner import structure_hash

    try:
        return structure_hash(source)
    except GenerationError:
        return None


def new_structure(source: str, parent_source: str) -> bool:
    """Whether a codec's structure differs from its parent's (one without PARAMS always
    does: its tuning then ends at once, with the reason)."""
    mine = structure_key(source)
    return mine is None or mine != structure_key(parent_source)


def tuning_plan(tuning: Tuning) -> Plan:
    """The rule plan of a tuning iteration: no prediction, no model call."""
    return Plan(
        planner="rules",
        root_cause=(
            f"candidate {tuning.idea} is a new structure a model wrote; it was judged with "
            "the parameters it was written with only"
        ),
        hypothesis="other PARAMS within its PARAM_RANGES suit the new structure better",
        steps=(
            f"{tuning.rule()}: the tuner (Optuna) proposes its PARAMS from every stored "
            "evaluation of its structure; the code is not changed"
        ),
        predicted_bd_rate=None,
        confidence=None,
    )


def make_tuner(settings: Settings, store: Store, seed: int) -> Provider:
    """The run's tuner for its tuning iterations (its candidates' origin: ``tuned``)."""
    from aicodec.providers.tuner import TunerProvider

    return TunerProvider(
        store,
        seed=seed,
        sampler=settings.tuner_sampler,
        startup_trials=settings.tuner_startup_trials,
        origin=TUNED,
    )
