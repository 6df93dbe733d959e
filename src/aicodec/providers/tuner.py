"""The offline ``tuner`` provider: PARAMS proposed by a model-based optimiser (Optuna).

No model is called and nothing but the store is read. A codec's *structure* is its source
with the ``PARAMS`` literal taken out (``structure_of``; ``structure_hash`` is its
SHA-256). For a parent, the tuner builds an Optuna study in memory from the store: every
stored candidate of the parent's structure (``store.queries.trials``) is a trial, its
value the candidate's fitness (mean BD-rate against the ladder's anchor) on the scope's
clips at its qualities, so a resumed or second run goes on from every evaluation before
it. A candidate whose evolve iteration failed (a failed run, stopped at the first stage,
an undefined BD-rate) is a pruned trial, which TPE ranks below every scored one (GP
leaves it out); one with no figure yet (never scored there, or still being scored) is no
trial, but no child repeats its PARAMS either. The search space comes from ``PARAM_RANGES``
(``search_space``): a list of alternatives is a categorical parameter, a range of two
ints an integer one, any other numeric range a float one; a parameter without a usable
range keeps the parent's value.

The sampler, ``tpe`` (TPESampler) or ``gp`` (GPSampler), is seeded from the seed, the
structure hash and the number of stored candidates of the structure, and is made afresh
for every proposal, so the proposal depends only on the stored trials and the seed: a
study rebuilt from the store proposes what the uninterrupted run would. A sampler draws
at random (uniformly within the ranges) until the structure has ``startup_trials`` scored
trials. Floats are rounded to about a thousandth of their range, and a child always
differs from every stored candidate of the structure: a proposal that repeats one is
asked again, then drawn at random. The child's source is the parent's with only the
``PARAMS`` literal rewritten (as the mutation provider writes it). The library never
prints: Optuna's log and warnings are silenced while a study runs.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import math
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler, GPSampler, RandomSampler, TPESampler
from optuna.trial import TrialState

from aicodec.errors import ConfigError, GenerationError, ProviderError
from aicodec.providers.base import Capabilities, ModelReply, Prompt, TrialScope
from aicodec.providers.mutation import (
    NOTHING_TO_CHANGE,
    Tunables,
    format_params,
    read_tunables,
    with_params,
)
from aicodec.store import Store
from aicodec.store.queries.trials import StoredTrial, structure_trials

SAMPLERS = ("tpe", "gp")
ASKS_PER_CHILD = 16  # draws of the sampler, then as many random ones, before giving up
PLACEHOLDER = b"<PARAMS>"  # what stands for the PARAMS literal in a structure's hash
_FLOAT_RESOLUTION = 1000  # floats are rounded to about 1/1000 of their range
_LINE_END_RE = re.compile(rb"\r\n|\r|\n")
_CHOICE_TYPES = (type(None), bool, int, float, str)  # what Optuna's categorical takes


@dataclass(frozen=True)
class Structure:
    """A codec's source without its PARAMS literal: the text before and after it, and the
    SHA-256 of the source with a placeholder for the literal."""

    prefix: str
    suffix: str
    digest: str


def _structure(tunables: Tunables) -> Structure:
    data = tunables.data
    before, after = data[: tunables.start], data[tunables.end :]
    digest = hashlib.sha256(before + PLACEHOLDER + after).hexdigest()
    return Structure(
        before.decode("utf-8", "surrogatepass"), after.decode("utf-8", "surrogatepass"), digest
    )


def structure_of(source: str) -> Structure:
    """The structure of a codec (GenerationError, as for the mutation provider, when it has
    no PARAMS/PARAM_RANGES literals)."""
    return _structure(read_tunables(source, "parent"))


def structure_hash(source: str) -> str:
    """SHA-256 (hex) of the source with its PARAMS literal replaced by a placeholder: two
    codecs that differ only in their PARAMS have the same structure hash."""
    return structure_of(source).digest


def _dict_literal(text: str) -> dict[str, object] | None:
    """The dict that ``text`` is exactly (one dict display, nothing around it), else None."""
    try:
        node = ast.parse(text, mode="eval").body
        value = ast.literal_eval(node)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return None
    if not isinstance(node, ast.Dict) or not isinstance(value, dict):
        return None
    data = text.encode("utf-8", "surrogatepass")
    starts = [0] + [match.end() for match in _LINE_END_RE.finditer(data)]
    assert node.end_lineno is not None and node.end_col_offset is not None
    end = starts[node.end_lineno - 1] + node.end_col_offset  # ast columns count UTF-8 bytes
    if node.lineno != 1 or node.col_offset != 0 or end != len(data):
        return None
    return value


# ------------------------------------------------------------------------------ the space


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and (
        isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    )


def _same(a: object, b: object) -> bool:
    """Equal values, telling bools apart from the numbers they equal."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def search_space(
    params: dict[str, object], ranges: dict[str, object]
) -> dict[str, BaseDistribution]:
    """The Optuna distribution of each tunable parameter, in the PARAMS order.

    A list of two or more distinct alternatives (None, bools, numbers, strings) is a
    ``CategoricalDistribution``; a range ``(low, high)`` of two ints with low < high an
    ``IntDistribution``; of two numbers otherwise a ``FloatDistribution``. A parameter with
    no range, any other range, or a value of another kind than its range is not tuned.
    """
    space: dict[str, BaseDistribution] = {}
    for key, value in params.items():
        rng = ranges.get(key)
        if isinstance(rng, list):
            choices: list[object] = []
            for choice in rng:
                if isinstance(choice, _CHOICE_TYPES) and not any(
                    _same(choice, known) for known in choices
                ):
                    choices.append(choice)
            if len(choices) == len(rng) >= 2:
                space[key] = CategoricalDistribution(choices)  # type: ignore[arg-type]
            continue
        if not (isinstance(rng, tuple) and len(rng) == 2 and all(map(_is_number, rng))):
            continue
        low, high = rng
        if not low < high or not _is_number(value):
            continue
        if isinstance(low, int) and isinstance(high, int):
            if isinstance(value, int):
                space[key] = IntDistribution(low, high)
        else:
            space[key] = FloatDistribution(float(low), float(high))
    return space


def _fits(value: object, distribution: BaseDistribution) -> bool:
    """Whether a stored value lies in a distribution (as the tuner reads it)."""
    if isinstance(distribution, CategoricalDistribution):
        return any(_same(value, choice) for choice in distribution.choices)
    if isinstance(distribution, IntDistribution):
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and distribution.low <= value <= distribution.high
        )
    if isinstance(distribution, FloatDistribution):
        return _is_number(value) and distribution.low <= float(value) <= distribution.high  # type: ignore[arg-type]
    return False


def _digits(distribution: FloatDistribution) -> int:
    return max(
        0, math.ceil(-math.log10((distribution.high - distribution.low) / _FLOAT_RESOLUTION))
    )


def _child_value(value: object, distribution: BaseDistribution) -> object:
    """A sampled value as the child's literal holds it (floats rounded, choices as listed)."""
    if isinstance(distribution, CategoricalDistribution):
        return next(choice for choice in distribution.choices if _same(choice, value))
    if isinstance(distribution, IntDistribution):
        return int(value)  # type: ignore[call-overload]
    assert isinstance(distribution, FloatDistribution)
    rounded = round(float(value), _digits(distribution))  # type: ignore[arg-type]
    return float(min(max(rounded, distribution.low), distribution.high))


# ------------------------------------------------------------------------------ the study


@contextmanager
def _quiet() -> Iterator[None]:
    """Optuna's log and Python warnings off while a study runs (the library never prints)."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        optuna.logging.set_verbosity(level)


def sampler_seed(seed: int, structure: Structure, stored: int) -> int:
    """The sampler's seed: the provider's seed mixed with the structure hash and how many
    candidates of the structure are stored (a 32-bit integer)."""
    text = f"{seed}:{structure.digest}:{stored}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "big")


def make_sampler(name: str, seed: int, startup_trials: int) -> BaseSampler:
    """A fresh Optuna sampler: ``tpe`` or ``gp``."""
    if name == "tpe":
        return TPESampler(seed=seed, n_startup_trials=startup_trials)
    if name == "gp":
        if importlib.util.find_spec("torch") is None:
            raise ConfigError(
                "the tuner's gp sampler needs torch: pip install 'aicodec[torch]', or use tpe"
            )
        return GPSampler(seed=seed, n_startup_trials=startup_trials, deterministic_objective=True)
    raise ConfigError(f"unknown tuner sampler {name!r}; use {' or '.join(SAMPLERS)}")


@dataclass
class TunerStudy:
    """A parent's study as rebuilt from the store: the Optuna study with one trial per
    stored evaluation of its structure, and the PARAMS of every stored candidate of the
    structure (as literals), which no child may repeat."""

    study: optuna.Study
    space: dict[str, BaseDistribution]
    seen: set[str]
    trials: int  # trials added to the study
    seed: int  # the sampler's seed


def rebuild_study(
    tunables: Tunables,
    stored: Sequence[StoredTrial],
    structure: Structure,
    *,
    seed: int,
    sampler: str,
    startup_trials: int,
) -> TunerStudy:
    """The study of a parent from the stored candidates of its structure (see the module)."""
    space = search_space(tunables.params, tunables.ranges)
    rows: list[tuple[dict[str, object], StoredTrial]] = []
    seen = {format_params(tunables.params)}
    for trial in stored:
        params = _dict_literal(trial.params_text)
        if params is None:
            continue
        seen.add(format_params(params))
        if all(key in params and _fits(params[key], dist) for key, dist in space.items()):
            rows.append(({key: params[key] for key in space}, trial))
    chosen_seed = sampler_seed(seed, structure, len(stored))
    with _quiet():
        study = optuna.create_study(
            direction="minimize", sampler=make_sampler(sampler, chosen_seed, startup_trials)
        )
        added = 0
        for params, trial in rows:
            if trial.fitness is not None:
                made = optuna.trial.create_trial(
                    params=params, distributions=space, value=trial.fitness
                )
            elif trial.failed:  # TPE ranks it below every scored trial; GP leaves it out
                made = optuna.trial.create_trial(
                    params=params, distributions=space, state=TrialState.PRUNED
                )
            else:
                continue
            study.add_trial(made)
            added += 1
    return TunerStudy(study, space, seen, added, chosen_seed)


def _ask(tuner: TunerStudy, tunables: Tunables) -> dict[str, object] | None:
    """The next PARAMS no stored or proposed candidate has, else None after the tries."""
    for tries in range(2 * ASKS_PER_CHILD):
        if tries == ASKS_PER_CHILD:  # the sampler keeps repeating itself: draw at random
            tuner.study.sampler = RandomSampler(seed=tuner.seed)
        trial = tuner.study.ask(tuner.space)
        child = dict(tunables.params)
        for key, distribution in tuner.space.items():
            child[key] = _child_value(trial.params[key], distribution)
        literal = format_params(child)
        if literal not in tuner.seen:
            tuner.seen.add(literal)
            return child
    return None


class TunerProvider:
    """Offline provider whose children's PARAMS a model-based optimiser (Optuna) proposes from
    every stored evaluation of the parent's structure."""

    name = "tuner"
    capabilities = Capabilities(
        writes_code_by_model=False,
        plans=False,
        proposes_locally=True,
        repeats_improving_steps=False,
        retries_duplicates=False,
        origin="mutation",
    )

    def __init__(
        self,
        store: Store,
        seed: int = 0,
        *,
        sampler: str = "tpe",
        startup_trials: int = 1,
        origin: str | None = None,
    ) -> None:
        """``origin`` (default ``mutation``) is recorded for its candidates: an evolve run's
        tuning iterations record ``tuned``."""
        if sampler not in SAMPLERS:
            raise ConfigError(f"unknown tuner sampler {sampler!r}; use {' or '.join(SAMPLERS)}")
        if isinstance(startup_trials, bool) or not isinstance(startup_trials, int):
            raise ConfigError(f"tuner startup trials must be an integer, not {startup_trials!r}")
        if startup_trials < 0:
            raise ConfigError(f"tuner startup trials must be 0 or more, not {startup_trials}")
        self.store = store
        self.seed = int(seed)
        self.sampler = sampler
        self.startup_trials = startup_trials
        self.model = f"optuna-{optuna.__version__}-{sampler}"
        if origin is not None:
            self.capabilities = replace(TunerProvider.capabilities, origin=origin)

    def study(self, parent_source: str, scope: TrialScope | None = None) -> TunerStudy:
        """The parent's study, rebuilt from the store (GenerationError when the parent has no
        tunables or none of them can change)."""
        tunables = read_tunables(parent_source, "parent")
        return self._study(tunables, scope)

    def _study(self, tunables: Tunables, scope: TrialScope | None) -> TunerStudy:
        if not search_space(tunables.params, tunables.ranges):
            raise GenerationError(NOTHING_TO_CHANGE)
        structure = _structure(tunables)
        scope = scope or TrialScope((), ())
        stored = structure_trials(
            self.store,
            structure.prefix,
            structure.suffix,
            scope.clip_ids,
            scope.qualities,
            scope.hidden,
        )
        return rebuild_study(
            tunables,
            stored,
            structure,
            seed=self.seed,
            sampler=self.sampler,
            startup_trials=self.startup_trials,
        )

    def propose(
        self,
        parent_source: str,
        count: int = 1,
        *,
        attempt: int = 0,
        repeat_from: str | None = None,
        scope: TrialScope | None = None,
    ) -> list[str]:
        """Up to ``count`` children of the parent whose PARAMS the sampler proposes from the
        stored evaluations of its structure within ``scope`` (without one, no stored
        candidate has a figure). ``attempt`` and ``repeat_from`` are not used: the stored
        trials decide. GenerationError when the parent has no tunables, none can change, or
        no PARAMS are left that the structure has not tried."""
        if count < 1:
            return []
        tunables = read_tunables(parent_source, "parent")
        tuner = self._study(tunables, scope)
        children: list[str] = []
        with _quiet():
            for _ in range(count):
                params = _ask(tuner, tunables)
                if params is None:
                    break
                children.append(with_params(tunables, format_params(params)))
        if not children:
            raise GenerationError(
                "the tuner found no PARAMS within PARAM_RANGES that this codec structure has "
                f"not tried ({2 * ASKS_PER_CHILD} draws)"
            )
        return children

    def complete(self, prompt: Prompt) -> ModelReply:
        """Not offered: the tuner calls no model and answers no prompt."""
        raise ProviderError("the tuner provider calls no model; it answers no prompts")

    def priced(self) -> bool:
        """Always: it costs nothing."""
        return True
