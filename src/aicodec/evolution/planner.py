"""Planning an iteration: root cause, hypothesis, plan and a predicted BD-rate.

With a model, the planning prompt (``prompts/plan.md.j2``) asks for the five sections and
:func:`parse_plan` reads them. Without one (or when the model's plan is unreadable), the
rule-based :func:`rule_plan` derives them from the same facts. The prediction is the
BD-rate of the coming codec against its parent, in percent; the loop stores the measured
value beside it, so the planner's calibration can be read later.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

from aicodec.errors import GenerationError
from aicodec.scoring.bdrate import signed_percent

SECTIONS = {
    "ROOT CAUSE": "root_cause",
    "HYPOTHESIS": "hypothesis",
    "PLAN": "steps",
    "EXPECTED BD-RATE": "expected",
    "CONFIDENCE": "confidence",
}
_HEADING = re.compile(
    r"^[ \t#*_-]*(ROOT CAUSE|HYPOTHESIS|PLAN|EXPECTED BD-RATE|CONFIDENCE)[ \t*_]*:[ \t*_]*",
    re.IGNORECASE | re.MULTILINE,
)
_NUMBER = re.compile(r"[-+−]?\d+(?:\.\d+)?")
PRIOR_PREDICTION = -1.0  # percent: before any measurement, expect one threshold's worth
PRIOR_CONFIDENCE = 0.2
RECENT = 8  # iterations the rule-based planner learns from


@dataclass
class Plan:
    """A plan for one iteration and its prediction (BD-rate vs the parent, percent)."""

    planner: str
    root_cause: str
    hypothesis: str
    steps: str
    predicted_bd_rate: float | None
    confidence: float | None
    note: str | None = None

    def text(self) -> str:
        """The plan as the sections the generation prompt shows."""
        expected = signed_percent(self.predicted_bd_rate)
        return (
            f"ROOT CAUSE: {self.root_cause}\nHYPOTHESIS: {self.hypothesis}\nPLAN: {self.steps}\n"
            f"EXPECTED BD-RATE: {expected}"
        )

    def to_json(self) -> str:
        """The plan as stored in the iteration row."""
        return json.dumps(asdict(self))


@dataclass(frozen=True)
class PastIteration:
    """What the planner knows of an earlier iteration of the run (no holdout figures)."""

    number: int
    parent: int | None
    candidate: int | None
    status: str
    failure_kind: str | None
    reason: str | None
    change: str | None
    predicted: float | None
    bd_vs_parent: float | None
    hypothesis: str | None = None

    def line(self, threshold: float) -> str:
        """One prompt line: the hypothesis and change, predicted and measured BD-rate vs
        the parent (training clips only), and whether it beat the ``threshold`` (percent)."""
        made = f"candidate {self.candidate}" if self.candidate is not None else "no candidate"
        text = f"- iteration {self.number}: parent {self.parent} -> {made}"
        if self.hypothesis:
            text += f"; hypothesis: {_short(self.hypothesis)}"
        if self.change and self.change != self.hypothesis:
            text += f"; change: {_short(self.change)}"
        text += f"; predicted {signed_percent(self.predicted)}"
        if self.status != "scored":
            return text + f"; failed ({self.failure_kind}): {_short(self.reason or '')}"
        measured = self.bd_vs_parent
        beat = measured is not None and measured < -threshold
        outcome = "beat" if beat else "did not beat"
        return (
            f"{text}, measured {signed_percent(measured)} vs parent: {outcome} the "
            f"-{threshold:g} % threshold"
        )


def _short(text: str, limit: int = 240) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


@dataclass
class LabFacts:
    """The store's view the planners read: the parent, the best codecs, recent iterations."""

    parent: int
    parent_fitness: float | None
    parent_points: list[str]
    best: list[tuple[int, float]]
    recent: list[PastIteration] = field(default_factory=list)  # newest first
    threshold: float = 1.0

    def summary_lines(self) -> list[str]:
        """The parent's and the run's best fitness as prompt lines."""
        lines = [
            f"Parent: candidate {self.parent}, mean BD-rate vs x264 "
            f"{signed_percent(self.parent_fitness)} on the training clips."
        ]
        lines.append("Best codecs of this run (mean BD-rate vs x264 on the training clips):")
        lines += [f"- candidate {cid}: {fitness:+.2f} %" for cid, fitness in self.best]
        return lines


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


_CHANGE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*) \S+ -> \S+")


def rule_plan(facts: LabFacts) -> Plan:
    """The rule-based plan: from recent outcomes, parameter effects and the parent's curve."""
    recent = facts.recent[:RECENT]
    measured = [past.bd_vs_parent for past in recent if past.bd_vs_parent is not None]
    if measured:
        predicted = _mean(measured)
        wins = sum(1 for value in measured if value < -facts.threshold)
        confidence = min(0.95, max(0.05, wins / len(measured)))
    else:
        predicted, confidence = PRIOR_PREDICTION, PRIOR_CONFIDENCE
    failing = 0
    for past in recent:
        if past.status != "failed":
            break
        failing += 1
    steps = (
        f"change one to three PARAMS of candidate {facts.parent} within PARAM_RANGES; keep "
        "the bitstream format; score on the training clips and keep what lowers BD-rate"
    )
    if failing >= 2:
        last = recent[0]
        return Plan(
            "rules",
            f"the last {failing} iterations scored nothing; the latest failed "
            f"({last.failure_kind}): {last.reason}",
            "a smaller change of a codec that runs avoids the failure",
            steps,
            predicted,
            confidence,
        )
    effects: dict[str, list[float]] = {}
    for past in recent:
        if past.bd_vs_parent is None or not past.change:
            continue
        for name in _CHANGE.findall(past.change):
            effects.setdefault(name, []).append(past.bd_vs_parent)
    if effects:
        name = min(effects, key=lambda key: (_mean(effects[key]), key))
        mean = _mean(effects[name])
        return Plan(
            "rules",
            f"of the parameters changed recently, {name} moved BD-rate most: mean "
            f"{mean:+.2f} % vs the parent over {len(effects[name])} change(s)",
            f"candidate {facts.parent}'s settings are not yet tuned for these clips; further "
            f"steps in {name} and its neighbours lower the BD-rate",
            steps,
            predicted,
            confidence,
        )
    points = "; ".join(facts.parent_points[:4]) or "no stored points"
    return Plan(
        "rules",
        f"candidate {facts.parent} (BD-rate vs x264 {signed_percent(facts.parent_fitness)}) "
        f"uses its default settings on these clips ({points})",
        "its quantiser, dead-zone and motion settings were not tuned for these clips; a "
        "parameter search finds cheaper settings at equal PSNR-Y",
        steps,
        predicted,
        confidence,
    )


def parse_plan(text: str) -> Plan:
    """Read a model's planning answer; GenerationError when its sections are missing."""
    found: dict[str, str] = {}
    matches = list(_HEADING.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        key = SECTIONS[match.group(1).upper()]
        found.setdefault(key, text[match.end() : end].strip())
    required = ("root_cause", "hypothesis", "steps")
    missing = [name for name, key in SECTIONS.items() if key in required and not found.get(key)]
    if missing:
        raise GenerationError(f"the plan has no {', '.join(missing)} section")
    return Plan(
        "model",
        found["root_cause"][:2000],
        found["hypothesis"][:2000],
        found["steps"][:4000],
        _first_number(found.get("expected")),
        _confidence(found.get("confidence")),
    )


def _first_number(text: str | None) -> float | None:
    if not text:
        return None
    match = _NUMBER.search(text)
    return float(match.group(0).replace("−", "-")) if match else None


def _confidence(text: str | None) -> float | None:
    value = _first_number(text)
    if value is None:
        return None
    if text is not None and "%" in text or value > 1:
        value /= 100.0
    return min(1.0, max(0.0, value))
