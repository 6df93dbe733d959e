"""Choosing rate values so an encoder's RD curve covers the anchor's PSNR-Y range."""

from __future__ import annotations

from collections.abc import Callable


def nearest_rate(known: dict[int, float], target: float) -> int:
    """The evaluated rate value whose PSNR-Y is closest to ``target`` (dB)."""
    return min(known, key=lambda rate: (abs(known[rate] - target), rate))


def next_guess(
    known: dict[int, float], target: float, lo: int, hi: int, db_per_step: float
) -> int | None:
    """The next rate value to try for ``target`` dB, or None when no untried value can help.

    PSNR-Y falls as the rate value (a quantiser) rises. Inside a bracket the guess is the
    linear interpolation between its ends; outside, it steps from the nearest value by the
    local slope (or ``db_per_step`` dB per unit when only one point is known).
    """
    above = [rate for rate, psnr in known.items() if psnr >= target]  # better than target
    below = [rate for rate, psnr in known.items() if psnr < target]
    if above and below:
        left, right = max(above), min(below)
        if right - left <= 1:
            return None
        fraction = (known[left] - target) / (known[left] - known[right])
        guess = round(left + fraction * (right - left))
        return min(max(guess, left + 1), right - 1)
    nearest = nearest_rate(known, target)
    slope = db_per_step
    others = sorted(known, key=lambda rate: abs(rate - nearest))[1:]
    if others and others[0] != nearest:
        local = (known[nearest] - known[others[0]]) / (others[0] - nearest)
        if local > 0.05:
            slope = local
    step = (known[nearest] - target) / slope
    guess = min(max(round(nearest + step), lo), hi)
    if guess == nearest:
        guess = min(max(nearest + (1 if step > 0 else -1), lo), hi)
    return None if guess in known else guess


def choose_rates(
    evaluate: Callable[[int], float],
    targets: list[float],
    *,
    lo: int,
    hi: int,
    start: int,
    db_per_step: float,
    tolerance_db: float,
    max_encodes_per_target: int,
) -> list[int]:
    """Rate values whose PSNR-Y (from ``evaluate``) best match each target (dB), all distinct.

    ``evaluate(rate)`` encodes once and returns PSNR-Y in dB; results are remembered, so a
    value is never evaluated twice. Returns as many distinct values as there are targets
    where the encoder's range allows it.
    """
    known: dict[int, float] = {}

    def measure(rate: int) -> None:
        if rate not in known:
            known[rate] = evaluate(rate)

    measure(min(max(start, lo), hi))
    chosen: list[int] = []
    for target in sorted(targets, reverse=True):
        for _ in range(max_encodes_per_target):
            best = nearest_rate(known, target)
            if abs(known[best] - target) <= tolerance_db and best not in chosen:
                break
            guess = next_guess(known, target, lo, hi, db_per_step)
            if guess is None:
                break
            measure(guess)
        free = [rate for rate in known if rate not in chosen]
        if free:
            chosen.append(nearest_rate({rate: known[rate] for rate in free}, target))
        else:
            spare = _unused_neighbour(known, chosen, lo, hi)
            if spare is not None:
                measure(spare)
                chosen.append(spare)
    return sorted(chosen)


def _unused_neighbour(known: dict[int, float], chosen: list[int], lo: int, hi: int) -> int | None:
    """An untried rate value next to the chosen ones, to keep the values distinct."""
    for rate in sorted(chosen):
        for candidate in (rate + 1, rate - 1):
            if lo <= candidate <= hi and candidate not in known:
                return candidate
    return None
