"""Choosing each iteration's parent: islands, each climbing from its own best codec.

The rule (its settings live in :class:`aicodec.settings.Settings`, ``evolve_*``):

* Iteration ``n`` works on island ``(n - 1) mod islands``. Every island starts with the
  run's starting codec; a codec an iteration scores joins that iteration's island.
* Every ``migrate_every`` iterations the best codec of the whole run joins every island,
  so a good line spreads while the islands keep their own alternatives.
* The parent is the island's best codec (lowest mean BD-rate against x264 on the training
  clips), except with probability ``explore``, when it is drawn uniformly from the
  island's next ``top - 1`` best codecs.
* The draw uses a generator seeded with the run's seed and the iteration number only, so
  a run and its replay choose the same parents. Fitness depends on measured bits and
  PSNR-Y only (no timings), for the same reason.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Member:
    """A scored codec of the run: its candidate id and fitness (mean BD-rate vs x264, %)."""

    candidate_id: int
    fitness: float


@dataclass(frozen=True)
class IslandRule:
    """The parent-selection rule's settings."""

    islands: int
    explore: float
    top: int
    migrate_every: int

    def describe(self) -> str:
        """The rule in one sentence, stored with every run."""
        return (
            f"{self.islands} island(s); iteration n works on island (n-1) mod {self.islands}; "
            f"parent = the island's best codec (lowest mean BD-rate vs x264 on the training "
            f"clips), or with probability {self.explore:g} one of its next {self.top - 1} best; "
            f"every {self.migrate_every} iterations the run's best joins every island"
        )

    def island(self, number: int) -> int:
        """The island iteration ``number`` (from 1) works on."""
        return (number - 1) % self.islands


def _ranked(members: Sequence[Member]) -> list[Member]:
    unique = {member.candidate_id: member for member in members}
    return sorted(unique.values(), key=lambda member: (member.fitness, member.candidate_id))


def island_members(
    rule: IslandRule, start: Member, scored: Sequence[tuple[int, Member]], number: int
) -> list[Member]:
    """The members of iteration ``number``'s island, best first.

    ``scored`` lists (iteration number, codec) for the run's scored iterations; only those
    before ``number`` count.
    """
    islands: list[list[Member]] = [[start] for _ in range(rule.islands)]
    everyone = [start]
    for done, member in sorted(scored, key=lambda item: item[0]):
        if done >= number:
            continue
        islands[rule.island(done)].append(member)
        everyone.append(member)
        if done % rule.migrate_every == 0:
            best = _ranked(everyone)[0]
            for island in islands:
                island.append(best)
    return _ranked(islands[rule.island(number)])


def choose_parent(
    rule: IslandRule, seed: int, start: Member, scored: Sequence[tuple[int, Member]], number: int
) -> tuple[int, str]:
    """Iteration ``number``'s parent (candidate id) and why it was chosen."""
    ranked = island_members(rule, start, scored, number)
    island = rule.island(number)
    draw = random.Random(f"{seed}:{number}")
    others = ranked[1 : rule.top]
    if others and draw.random() < rule.explore:
        chosen = draw.choice(others)
        place = ranked.index(chosen) + 1
        return chosen.candidate_id, (
            f"explore: island {island}'s #{place} codec (BD-rate vs x264 {chosen.fitness:+.2f} %)"
        )
    best = ranked[0]
    return best.candidate_id, (
        f"island {island}'s best codec (BD-rate vs x264 {best.fitness:+.2f} %, "
        f"{len(ranked)} member(s))"
    )
